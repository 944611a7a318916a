//! `ZenithCluster` objects that break the rules, each with the fields and messages that the API
//! server and the Rust validation must both give.

use serde_json::{Value, json};
use tandem_crds::messages;

use crate::examples::Example;

/// An invalid object: an example, changed.
pub struct InvalidCase {
    /// What the case breaks.
    pub name: &'static str,
    /// The example it starts from.
    pub example: Example,
    /// `false`: the changed object is created. `true`: the example is created, then updated to
    /// the changed object (rules that forbid changes).
    pub update: bool,
    /// The change.
    pub change: fn(&mut Value),
    /// The broken rules: the field path, and the message (`None` where the API server and serde
    /// word a type error differently; the field must still be named).
    pub expected: &'static [(&'static str, Option<&'static str>)],
}

impl InvalidCase {
    /// The changed object, named after the case.
    pub fn object(&self) -> Value {
        let mut object = self.example.json();
        (self.change)(&mut object);
        object
    }
}

fn zenith(object: &mut Value, field: &str, value: Value) {
    object["spec"]["zenithSpec"][field] = value;
}

fn ha(object: &mut Value, field: &str, value: Value) {
    if object["spec"].get("haSpec").is_none() {
        object["spec"]["haSpec"] = json!({});
    }
    object["spec"]["haSpec"][field] = value;
}

const REPLICAS: &str = "spec.zenithSpec.replicas";
const UNREACHABLE: &str = "spec.zenithSpec.unreachableTimeout";

/// Every case; at least one per rule.
pub fn cases() -> Vec<InvalidCase> {
    vec![
        InvalidCase {
            name: "replicas-three",
            example: Example::MasterSlave,
            update: false,
            change: |o| zenith(o, "replicas", json!(3)),
            expected: &[(REPLICAS, Some(messages::REPLICAS))],
        },
        InvalidCase {
            name: "replicas-zero",
            example: Example::Standalone,
            update: false,
            change: |o| zenith(o, "replicas", json!(0)),
            expected: &[(REPLICAS, Some(messages::REPLICAS))],
        },
        InvalidCase {
            name: "polling-interval-zero",
            example: Example::MasterSlave,
            update: false,
            change: |o| zenith(o, "pollingInterval", json!(0)),
            expected: &[(
                "spec.zenithSpec.pollingInterval",
                Some(messages::POLLING_INTERVAL),
            )],
        },
        InvalidCase {
            name: "unreachable-below-twice-polling",
            example: Example::MasterSlave,
            update: false,
            change: |o| {
                zenith(o, "pollingInterval", json!(20));
                zenith(o, "unreachableTimeout", json!(39));
                ha(o, "agentLeaseSeconds", json!(23));
            },
            expected: &[(UNREACHABLE, Some(messages::UNREACHABLE_TIMEOUT_POLLING))],
        },
        InvalidCase {
            name: "unreachable-within-lease-and-granularity",
            example: Example::MasterSlave,
            update: false,
            // 26 * 3 = 78 is not above 20 * 4 = 80, though 26 exceeds the lease of 20.
            change: |o| zenith(o, "unreachableTimeout", json!(26)),
            expected: &[(UNREACHABLE, Some(messages::UNREACHABLE_TIMEOUT_LEASE))],
        },
        InvalidCase {
            name: "unreachable-without-room-for-a-lease",
            example: Example::Standalone,
            update: false,
            // No agentLeaseSeconds: the lease derived from 5 s, (15 - 1) / 4 = 3, would not
            // outlast a poll every second and its 2 s deadline (15 is not above 4 + 12).
            change: |o| {
                zenith(o, "pollingInterval", json!(1));
                zenith(o, "unreachableTimeout", json!(5));
            },
            expected: &[(UNREACHABLE, Some(messages::UNREACHABLE_TIMEOUT_LEASE_ROOM))],
        },
        InvalidCase {
            name: "agent-lease-zero",
            example: Example::Standalone,
            update: false,
            change: |o| ha(o, "agentLeaseSeconds", json!(0)),
            expected: &[(
                "spec.haSpec.agentLeaseSeconds",
                Some(messages::AGENT_LEASE_SECONDS),
            )],
        },
        InvalidCase {
            name: "node-lost-timeout-zero",
            example: Example::MasterSlave,
            update: false,
            change: |o| ha(o, "nodeLostTimeout", json!(0)),
            expected: &[(
                "spec.haSpec.nodeLostTimeout",
                Some(messages::NODE_LOST_TIMEOUT),
            )],
        },
        InvalidCase {
            name: "lag-timeout-negative",
            example: Example::MasterSlave,
            update: false,
            change: |o| ha(o, "lagTimeout", json!(-5)),
            expected: &[("spec.haSpec.lagTimeout", Some(messages::LAG_TIMEOUT))],
        },
        InvalidCase {
            name: "init-timeout-zero",
            example: Example::Standalone,
            update: false,
            change: |o| ha(o, "initTimeout", json!(0)),
            expected: &[("spec.haSpec.initTimeout", Some(messages::INIT_TIMEOUT))],
        },
        InvalidCase {
            name: "standby-start-timeout-zero",
            example: Example::MasterSlave,
            update: false,
            change: |o| ha(o, "standbyStartTimeout", json!(0)),
            expected: &[(
                "spec.haSpec.standbyStartTimeout",
                Some(messages::STANDBY_START_TIMEOUT),
            )],
        },
        InvalidCase {
            name: "switchover-timeout-zero",
            example: Example::MasterSlave,
            update: false,
            change: |o| ha(o, "switchoverTimeout", json!(0)),
            expected: &[(
                "spec.haSpec.switchoverTimeout",
                Some(messages::SWITCHOVER_TIMEOUT),
            )],
        },
        InvalidCase {
            name: "wait-for-active-timeout-zero",
            example: Example::MasterSlave,
            update: false,
            change: |o| ha(o, "waitForActiveTimeout", json!(0)),
            expected: &[(
                "spec.haSpec.waitForActiveTimeout",
                Some(messages::WAIT_FOR_ACTIVE_TIMEOUT),
            )],
        },
        InvalidCase {
            name: "max-rebuild-attempts-zero",
            example: Example::MasterSlave,
            update: false,
            change: |o| ha(o, "maxRebuildAttempts", json!(0)),
            expected: &[(
                "spec.haSpec.maxRebuildAttempts",
                Some(messages::MAX_REBUILD_ATTEMPTS),
            )],
        },
        InvalidCase {
            name: "max-restart-attempts-zero",
            example: Example::Standalone,
            update: false,
            change: |o| ha(o, "maxRestartAttempts", json!(0)),
            expected: &[(
                "spec.haSpec.maxRestartAttempts",
                Some(messages::MAX_RESTART_ATTEMPTS),
            )],
        },
        InvalidCase {
            name: "storage-size-not-a-quantity",
            example: Example::MasterSlave,
            update: false,
            change: |o| zenith(o, "storageSize", json!("5 gigabytes")),
            expected: &[("spec.zenithSpec.storageSize", Some(messages::STORAGE_SIZE))],
        },
        InvalidCase {
            name: "switchover-to-absent-member",
            example: Example::Standalone,
            update: false,
            change: |o| ha(o, "switchover", json!({"token": "t1", "to": 1})),
            expected: &[("spec.haSpec.switchover.to", Some(messages::SWITCHOVER_TO))],
        },
        InvalidCase {
            name: "replication-not-sync-or-async",
            example: Example::MasterSlave,
            update: false,
            change: |o| ha(o, "replication", json!("quorum")),
            expected: &[("spec.haSpec.replication", None)],
        },
        InvalidCase {
            name: "several-rules-at-once",
            example: Example::MasterSlave,
            update: false,
            change: |o| {
                zenith(o, "replicas", json!(5));
                zenith(o, "pollingInterval", json!(0));
                ha(o, "maxRestartAttempts", json!(0));
            },
            expected: &[
                (REPLICAS, Some(messages::REPLICAS)),
                (
                    "spec.zenithSpec.pollingInterval",
                    Some(messages::POLLING_INTERVAL),
                ),
                (
                    "spec.haSpec.maxRestartAttempts",
                    Some(messages::MAX_RESTART_ATTEMPTS),
                ),
            ],
        },
        InvalidCase {
            name: "lease-shorter-than-the-gap-between-polls",
            example: Example::MasterSlave,
            update: false,
            // Passes every other rule: the agent would fence itself between every two polls.
            change: |o| {
                zenith(o, "pollingInterval", json!(100));
                zenith(o, "unreachableTimeout", json!(200));
                ha(o, "agentLeaseSeconds", json!(1));
            },
            expected: &[(
                "spec.haSpec.agentLeaseSeconds",
                Some(messages::AGENT_LEASE_POLLING),
            )],
        },
        InvalidCase {
            name: "waits-within-the-gap-between-polls",
            example: Example::MasterSlave,
            update: false,
            change: |o| {
                ha(o, "lagTimeout", json!(12));
                ha(o, "initTimeout", json!(5));
                ha(o, "standbyStartTimeout", json!(12));
                ha(o, "switchoverTimeout", json!(1));
                ha(o, "waitForActiveTimeout", json!(12));
            },
            expected: &[
                (
                    "spec.haSpec.lagTimeout",
                    Some(messages::LAG_TIMEOUT_POLLING),
                ),
                (
                    "spec.haSpec.initTimeout",
                    Some(messages::INIT_TIMEOUT_POLLING),
                ),
                (
                    "spec.haSpec.standbyStartTimeout",
                    Some(messages::STANDBY_START_TIMEOUT_POLLING),
                ),
                (
                    "spec.haSpec.switchoverTimeout",
                    Some(messages::SWITCHOVER_TIMEOUT_POLLING),
                ),
                (
                    "spec.haSpec.waitForActiveTimeout",
                    Some(messages::WAIT_FOR_ACTIVE_TIMEOUT_POLLING),
                ),
            ],
        },
        InvalidCase {
            name: "timeouts-beyond-32-bits",
            example: Example::MasterSlave,
            update: false,
            change: |o| {
                ha(o, "nodeLostTimeout", json!(1_000_000_000_000_i64));
                zenith(o, "unreachableTimeout", json!(i64::MAX));
                ha(o, "maxRebuildAttempts", json!(4_294_967_296_i64));
            },
            expected: &[
                (
                    "spec.haSpec.nodeLostTimeout",
                    Some(messages::NODE_LOST_TIMEOUT),
                ),
                (UNREACHABLE, Some(messages::UNREACHABLE_TIMEOUT)),
                (
                    "spec.haSpec.maxRebuildAttempts",
                    Some(messages::MAX_REBUILD_ATTEMPTS),
                ),
            ],
        },
        InvalidCase {
            name: "storage-size-negative",
            example: Example::MasterSlave,
            update: false,
            change: |o| zenith(o, "storageSize", json!("-5Gi")),
            expected: &[("spec.zenithSpec.storageSize", Some(messages::STORAGE_SIZE))],
        },
        InvalidCase {
            name: "storage-size-a-bare-suffix",
            example: Example::Standalone,
            update: false,
            change: |o| zenith(o, "storageSize", json!("Gi")),
            expected: &[("spec.zenithSpec.storageSize", Some(messages::STORAGE_SIZE))],
        },
        InvalidCase {
            name: "storage-size-a-huge-exponent",
            example: Example::MasterSlave,
            update: false,
            change: |o| zenith(o, "storageSize", json!("9e999999999")),
            expected: &[("spec.zenithSpec.storageSize", Some(messages::STORAGE_SIZE))],
        },
        InvalidCase {
            name: "lag-negative",
            example: Example::MasterSlave,
            update: false,
            change: |o| ha(o, "maxLagOnFailoverBytes", json!(-1)),
            expected: &[(
                "spec.haSpec.maxLagOnFailoverBytes",
                Some(messages::MAX_LAG_ON_FAILOVER_BYTES),
            )],
        },
        InvalidCase {
            name: "lag-beyond-int64",
            example: Example::MasterSlave,
            update: false,
            change: |o| ha(o, "lagThresholdBytes", json!(u64::MAX)),
            // The API server and serde word a number beyond int64 differently.
            expected: &[("spec.haSpec.lagThresholdBytes", None)],
        },
        InvalidCase {
            name: "switchover-token-empty",
            example: Example::MasterSlave,
            update: false,
            change: |o| ha(o, "switchover", json!({"token": ""})),
            expected: &[(
                "spec.haSpec.switchover.token",
                Some(messages::SWITCHOVER_TOKEN),
            )],
        },
        InvalidCase {
            name: "switchover-token-longer-than-a-name",
            example: Example::MasterSlave,
            update: false,
            // 254 characters: the schema's maxLength refuses it before the rule, with the API
            // server's own words ("Too long"); Rust gives the rule's message.
            change: |o| ha(o, "switchover", json!({"token": "t".repeat(254)})),
            expected: &[("spec.haSpec.switchover.token", None)],
        },
        InvalidCase {
            name: "reexamine-token-longer-than-a-name",
            example: Example::Standalone,
            update: false,
            // 127 characters, 254 bytes.
            change: |o| ha(o, "reexamine", json!("é".repeat(127))),
            expected: &[("spec.haSpec.reexamine", Some(messages::REEXAMINE))],
        },
        InvalidCase {
            name: "replicas-changed",
            example: Example::MasterSlave,
            update: true,
            change: |o| zenith(o, "replicas", json!(1)),
            expected: &[(REPLICAS, Some(messages::REPLICAS_IMMUTABLE))],
        },
        InvalidCase {
            name: "replication-changed",
            example: Example::MasterSlave,
            update: true,
            change: |o| ha(o, "replication", json!("async")),
            expected: &[(
                "spec.haSpec.replication",
                Some(messages::REPLICATION_IMMUTABLE),
            )],
        },
        InvalidCase {
            name: "storage-class-changed",
            example: Example::Standalone,
            update: true,
            change: |o| zenith(o, "storageClassName", json!("other-storage")),
            expected: &[(
                "spec.zenithSpec.storageClassName",
                Some(messages::STORAGE_CLASS_IMMUTABLE),
            )],
        },
    ]
}

/// Checks a list of (field, message) refusals against a case's expectations: exactly the
/// expected fields, each with a message that ends with the expected one.
pub fn check_refusals(case: &InvalidCase, who: &str, refusals: &[(String, String)]) {
    // The API server gives some type errors twice, once without a field (`<nil>`); such a
    // cause must name an expected field in its message.
    let (unplaced, refusals): (Vec<_>, Vec<_>) = refusals
        .iter()
        .cloned()
        .partition(|(field, _)| field == "<nil>");
    for (_, message) in &unplaced {
        assert!(
            case.expected
                .iter()
                .any(|(field, _)| message.contains(field)),
            "{}: {who} gave a cause without a field that names no expected field: {message}",
            case.name
        );
    }
    let refusals = refusals.as_slice();
    let mut fields: Vec<&str> = refusals.iter().map(|(field, _)| field.as_str()).collect();
    fields.sort_unstable();
    fields.dedup();
    let mut expected_fields: Vec<&str> = case.expected.iter().map(|(field, _)| *field).collect();
    expected_fields.sort_unstable();
    assert_eq!(
        fields, expected_fields,
        "{}: {who} named other fields: {refusals:?}",
        case.name
    );
    for (field, message) in case.expected {
        let Some(message) = message else { continue };
        assert!(
            refusals
                .iter()
                .any(|(named, said)| named == field && said.ends_with(message)),
            "{}: {who} did not say \"{message}\" about {field}: {refusals:?}",
            case.name
        );
    }
}
