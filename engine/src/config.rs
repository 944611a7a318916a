//! The configuration the engine reads and its validation (`docs/state-machine.md`, Configuration).
//!
//! Field names follow the `ZenithCluster` CRD, so an error names the field a user wrote. The
//! messages are identical to the CRD's validation messages: the operator and the simulator refuse
//! exactly what the API server refuses.

use crate::types::{ConfigHash, MemberId, Replication, Topology};
use serde::{Deserialize, Serialize};

/// A configuration refused by validation: the field it is about and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {field}: {message}")]
pub struct ConfigError {
    /// The CRD field name (camelCase), for example `unreachableTimeout`.
    pub field: &'static str,
    /// The message, identical to the CRD's validation message.
    pub message: String,
}

impl ConfigError {
    fn new(field: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            field,
            message: message.into(),
        }
    }
}

/// A user's request for a planned switchover: a token that changes per request, and an
/// optional target member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchoverRequest {
    /// Changing the token asks for a new switchover.
    pub token: String,
    /// The member to make active; the standby when absent.
    pub to: Option<MemberId>,
}

/// How a file writes the value of a spec field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A whole number that fits in 32 bits (seconds, attempts).
    Number32,
    /// A whole number of bytes.
    Bytes,
    /// `true` or `false`.
    Flag,
    /// `sync` or `async`.
    Replication,
}

/// The value of a spec field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValue {
    /// A whole number (`Number32` or `Bytes`).
    Number(u64),
    /// A flag.
    Flag(bool),
    /// A replication mode.
    Replication(Replication),
}

impl std::fmt::Display for FieldValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Number(number) => write!(f, "{number}"),
            FieldValue::Flag(flag) => write!(f, "{flag}"),
            FieldValue::Replication(mode) => f.write_str(mode.name()),
        }
    }
}

/// One field of the spec that a file sets by its CRD name (a simulator scenario's `cluster:`, a
/// transcript's `set`): [`SPEC_FIELDS`] is the one table of those names, and the CRD's
/// conversion is tested against it.
pub struct SpecField {
    /// The CRD name (camelCase).
    pub name: &'static str,
    /// The section of the `ZenithCluster` spec that holds it: `zenithSpec` or `haSpec`.
    pub section: &'static str,
    /// How its value is written.
    pub kind: FieldKind,
    get: fn(&Spec) -> Option<FieldValue>,
    set: fn(&mut Spec, FieldValue) -> Option<()>,
}

impl SpecField {
    /// The field's value in `spec` (`None`: an optional field that is absent).
    pub fn get(&self, spec: &Spec) -> Option<FieldValue> {
        (self.get)(spec)
    }

    /// Sets the field in `spec`; refuses a value of another kind or out of its range.
    pub fn set(&self, spec: &mut Spec, value: FieldValue) -> Result<(), String> {
        (self.set)(spec, value).ok_or_else(|| match self.kind {
            FieldKind::Number32 => format!("{} must be at most {}", self.name, u32::MAX),
            FieldKind::Bytes => format!("{} must be a whole number of bytes", self.name),
            FieldKind::Flag => format!("{} must be true or false", self.name),
            FieldKind::Replication => format!("{} must be sync or async", self.name),
        })
    }

    /// Parses `text` as a value of this field.
    pub fn parse(&self, text: &str) -> Result<FieldValue, String> {
        let refused = || format!("{}: {text:?} is not a {:?} value", self.name, self.kind);
        match self.kind {
            FieldKind::Number32 | FieldKind::Bytes => {
                text.parse().map(FieldValue::Number).map_err(|_| refused())
            }
            FieldKind::Flag => text.parse().map(FieldValue::Flag).map_err(|_| refused()),
            FieldKind::Replication => match text {
                "sync" => Ok(FieldValue::Replication(Replication::Sync)),
                "async" => Ok(FieldValue::Replication(Replication::Async)),
                _ => Err(refused()),
            },
        }
    }
}

fn number32(value: FieldValue) -> Option<u32> {
    match value {
        FieldValue::Number(number) => u32::try_from(number).ok(),
        _ => None,
    }
}

fn bytes(value: FieldValue) -> Option<u64> {
    match value {
        FieldValue::Number(number) => Some(number),
        _ => None,
    }
}

fn flag(value: FieldValue) -> Option<bool> {
    match value {
        FieldValue::Flag(flag) => Some(flag),
        _ => None,
    }
}

macro_rules! number32_field {
    ($name:literal, $section:literal, $field:ident) => {
        SpecField {
            name: $name,
            section: $section,
            kind: FieldKind::Number32,
            get: |spec| Some(FieldValue::Number(spec.$field.into())),
            set: |spec, value| {
                spec.$field = number32(value)?;
                Some(())
            },
        }
    };
}

macro_rules! bytes_field {
    ($name:literal, $field:ident) => {
        SpecField {
            name: $name,
            section: "haSpec",
            kind: FieldKind::Bytes,
            get: |spec| Some(FieldValue::Number(spec.$field)),
            set: |spec, value| {
                spec.$field = bytes(value)?;
                Some(())
            },
        }
    };
}

/// The spec fields a file sets by name, in the order error messages list them. `stopped`,
/// `reexamine` and `switchover` are not among them: they change during a run.
pub const SPEC_FIELDS: &[SpecField] = &[
    number32_field!("pollingInterval", "zenithSpec", polling_interval_s),
    number32_field!("unreachableTimeout", "zenithSpec", unreachable_timeout_s),
    number32_field!("agentLeaseSeconds", "haSpec", agent_lease_s),
    number32_field!("nodeLostTimeout", "haSpec", node_lost_timeout_s),
    SpecField {
        name: "replication",
        section: "haSpec",
        kind: FieldKind::Replication,
        get: |spec| Some(FieldValue::Replication(spec.replication)),
        set: |spec, value| match value {
            FieldValue::Replication(mode) => {
                spec.replication = mode;
                Some(())
            }
            _ => None,
        },
    },
    bytes_field!("maxLagOnFailoverBytes", max_lag_on_failover_bytes),
    bytes_field!("lagThresholdBytes", lag_threshold_bytes),
    number32_field!("lagTimeout", "haSpec", lag_timeout_s),
    number32_field!("initTimeout", "haSpec", init_timeout_s),
    number32_field!("standbyStartTimeout", "haSpec", standby_start_timeout_s),
    number32_field!("switchoverTimeout", "haSpec", switchover_timeout_s),
    number32_field!("maxRebuildAttempts", "haSpec", max_rebuild_attempts),
    number32_field!("maxRestartAttempts", "haSpec", max_restart_attempts),
    SpecField {
        name: "waitForActiveTimeout",
        section: "haSpec",
        kind: FieldKind::Number32,
        get: |spec| {
            spec.wait_for_active_timeout_s
                .map(|seconds| FieldValue::Number(seconds.into()))
        },
        set: |spec, value| {
            spec.wait_for_active_timeout_s = Some(number32(value)?);
            Some(())
        },
    },
    SpecField {
        name: "autoFailover",
        section: "haSpec",
        kind: FieldKind::Flag,
        get: |spec| Some(FieldValue::Flag(spec.auto_failover)),
        set: |spec, value| {
            spec.auto_failover = flag(value)?;
            Some(())
        },
    },
];

/// The spec field named `name`, if a file may set it.
pub fn spec_field(name: &str) -> Option<&'static SpecField> {
    SPEC_FIELDS.iter().find(|field| field.name == name)
}

/// The desired state of one cluster, as the user wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Master-slave (`replicas: 2`) or standalone (`replicas: 1`). Immutable.
    pub topology: Topology,
    /// `pollingInterval`: seconds between two agent polls.
    pub polling_interval_s: u32,
    /// `unreachableTimeout`: seconds without contact after which a member is `Down`.
    pub unreachable_timeout_s: u32,
    /// `agentLeaseSeconds`: an agent not polled for this long stops accepting writes by itself.
    pub agent_lease_s: u32,
    /// `nodeLostTimeout`: seconds a node may be not ready before its local volumes count as lost.
    pub node_lost_timeout_s: u32,
    /// `replication`: `sync` or `async`.
    pub replication: Replication,
    /// `maxLagOnFailoverBytes`: the largest lag (async) a standby may have to be promoted.
    pub max_lag_on_failover_bytes: u64,
    /// `lagThresholdBytes`: a standby further behind than this is `CatchingUp`.
    pub lag_threshold_bytes: u64,
    /// `lagTimeout`: seconds a standby may stay `CatchingUp` before replication is restarted.
    pub lag_timeout_s: u32,
    /// `initTimeout`: seconds to reach `Normal` from creation.
    pub init_timeout_s: u32,
    /// `standbyStartTimeout`: seconds for a rebuilt standby to become `Healthy`.
    pub standby_start_timeout_s: u32,
    /// `switchoverTimeout`: seconds a planned switchover may take.
    pub switchover_timeout_s: u32,
    /// `maxRebuildAttempts`: standby rebuilds before manual intervention is required.
    pub max_rebuild_attempts: u32,
    /// `maxRestartAttempts`: standalone restarts before the cluster is `Failed`.
    pub max_restart_attempts: u32,
    /// `waitForActiveTimeout`: seconds to wait for the member holding the newest data to come
    /// back before a person is asked (default one hour); forever when absent.
    pub wait_for_active_timeout_s: Option<u32>,
    /// `autoFailover`: when false, the engine only reports (hands off).
    pub auto_failover: bool,
    /// `stopped`: stop the cluster, keeping its data.
    pub stopped: bool,
    /// `reexamine`: changing this token asks the engine to look afresh (and accepts the lag).
    pub reexamine: String,
    /// `switchover`: a planned role swap.
    pub switchover: Option<SwitchoverRequest>,
    /// The hash of the desired instance and database configuration; a change starts the
    /// rolling configuration change.
    pub config_hash: ConfigHash,
}

impl Spec {
    /// The documented defaults for a topology (those of the CRD).
    pub fn defaults(topology: Topology) -> Spec {
        Spec {
            topology,
            polling_interval_s: 10,
            unreachable_timeout_s: 30,
            agent_lease_s: 22,
            node_lost_timeout_s: 300,
            replication: Replication::Sync,
            max_lag_on_failover_bytes: 0,
            lag_threshold_bytes: 16 * 1024 * 1024,
            lag_timeout_s: 120,
            init_timeout_s: 600,
            standby_start_timeout_s: 600,
            switchover_timeout_s: 120,
            max_rebuild_attempts: 5,
            max_restart_attempts: 5,
            wait_for_active_timeout_s: Some(3600),
            auto_failover: true,
            stopped: false,
            reexamine: String::new(),
            switchover: None,
            config_hash: ConfigHash(0),
        }
    }

    /// Checks every rule and returns the first violation.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.violations().into_iter().next() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Every rule this configuration violates, in a fixed order.
    pub fn violations(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if self.polling_interval_s < 1 {
            errors.push(ConfigError::new(
                "pollingInterval",
                messages::POLLING_INTERVAL,
            ));
        }
        if u64::from(self.unreachable_timeout_s) < 2 * u64::from(self.polling_interval_s) {
            errors.push(ConfigError::new(
                "unreachableTimeout",
                messages::UNREACHABLE_TIMEOUT_POLLING,
            ));
        }
        if self.agent_lease_s < 1 {
            errors.push(ConfigError::new(
                "agentLeaseSeconds",
                messages::AGENT_LEASE_SECONDS,
            ));
        }
        if u64::from(self.unreachable_timeout_s) * 3 <= u64::from(self.agent_lease_s) * 4 {
            errors.push(ConfigError::new("unreachableTimeout", LEASE_MESSAGE));
        }
        let at_least_one: [(&'static str, u32, &'static str); 8] = [
            (
                "nodeLostTimeout",
                self.node_lost_timeout_s,
                messages::NODE_LOST_TIMEOUT,
            ),
            ("lagTimeout", self.lag_timeout_s, messages::LAG_TIMEOUT),
            ("initTimeout", self.init_timeout_s, messages::INIT_TIMEOUT),
            (
                "standbyStartTimeout",
                self.standby_start_timeout_s,
                messages::STANDBY_START_TIMEOUT,
            ),
            (
                "switchoverTimeout",
                self.switchover_timeout_s,
                messages::SWITCHOVER_TIMEOUT,
            ),
            (
                "waitForActiveTimeout",
                self.wait_for_active_timeout_s.unwrap_or(1),
                messages::WAIT_FOR_ACTIVE_TIMEOUT,
            ),
            (
                "maxRebuildAttempts",
                self.max_rebuild_attempts,
                messages::MAX_REBUILD_ATTEMPTS,
            ),
            (
                "maxRestartAttempts",
                self.max_restart_attempts,
                messages::MAX_RESTART_ATTEMPTS,
            ),
        ];
        for (field, value, message) in at_least_one {
            if value < 1 {
                errors.push(ConfigError::new(field, message));
            }
        }
        if let Some(SwitchoverRequest {
            to: Some(member), ..
        }) = &self.switchover
            && member.0 >= self.topology.member_count()
        {
            errors.push(ConfigError::new("switchover", messages::SWITCHOVER_TO));
        }
        errors
    }

    /// Checks a change from `previous` to `self`: the rules of [`Spec::validate`] plus
    /// immutability.
    pub fn validate_change(&self, previous: &Spec) -> Result<(), ConfigError> {
        if self.topology != previous.topology {
            return Err(ConfigError::new("replicas", messages::REPLICAS_IMMUTABLE));
        }
        // Under strict sync every complete copy holds every acknowledged write, a rule the
        // engine relies on when the active's data is lost; a copy made under async does not,
        // and when a switch to sync takes effect in the database cannot be observed.
        if self.replication != previous.replication {
            return Err(ConfigError::new(
                "replication",
                messages::REPLICATION_IMMUTABLE,
            ));
        }
        self.validate()
    }

    /// How often, at most, a steady member's contact time is recorded: a quarter of
    /// `unreachableTimeout`. The engine's notion of the last contact may lag the truth by less
    /// than this, which is why validation requires `unreachableTimeout` to exceed
    /// `agentLeaseSeconds` by more than it.
    pub fn contact_granularity_ms(&self) -> u64 {
        u64::from(self.unreachable_timeout_s) * 1000 / 4
    }

    /// `unreachableTimeout` in milliseconds.
    pub fn unreachable_timeout_ms(&self) -> u64 {
        u64::from(self.unreachable_timeout_s) * 1000
    }

    /// `pollingInterval` in milliseconds.
    pub fn polling_interval_ms(&self) -> u64 {
        u64::from(self.polling_interval_s) * 1000
    }
}

/// The message of the rule that ties `unreachableTimeout` to `agentLeaseSeconds`.
pub const LEASE_MESSAGE: &str = messages::UNREACHABLE_TIMEOUT_LEASE;

/// The messages of the validation rules, word for word those of the `ZenithCluster` schema's CEL
/// rules (the CRD takes them from here): the API server, the operator and the simulator refuse an
/// object with the same sentence, and each sentence names the field it is about.
pub mod messages {
    /// `zenithSpec.replicas` is neither 1 nor 2.
    pub const REPLICAS: &str = "replicas must be 1 (standalone) or 2 (master-slave)";
    /// `zenithSpec.replicas` changed after creation.
    pub const REPLICAS_IMMUTABLE: &str =
        "replicas is immutable after creation (it decides the topology)";
    /// `haSpec.replication` changed after creation.
    pub const REPLICATION_IMMUTABLE: &str = "replication is immutable after creation";
    /// `zenithSpec.storageClassName` changed after creation.
    pub const STORAGE_CLASS_IMMUTABLE: &str = "storageClassName is immutable after creation";
    /// `zenithSpec.storageSize` is not a Kubernetes quantity.
    pub const STORAGE_SIZE: &str = "storageSize must be a quantity, for example 5Gi";
    /// `zenithSpec.pollingInterval` is below 1.
    pub const POLLING_INTERVAL: &str = "pollingInterval must be at least 1 second";
    /// `zenithSpec.unreachableTimeout` is below twice `pollingInterval`.
    pub const UNREACHABLE_TIMEOUT_POLLING: &str =
        "unreachableTimeout must be at least twice pollingInterval";
    /// `zenithSpec.unreachableTimeout` does not exceed `haSpec.agentLeaseSeconds` by more than the
    /// engine's contact-time granularity (a quarter of `unreachableTimeout`).
    pub const UNREACHABLE_TIMEOUT_LEASE: &str = "unreachableTimeout must exceed agentLeaseSeconds plus \
    a quarter of unreachableTimeout (the contact-time granularity): unreachableTimeout * 3 > \
    agentLeaseSeconds * 4";
    /// `haSpec.agentLeaseSeconds` is below 1.
    pub const AGENT_LEASE_SECONDS: &str = "agentLeaseSeconds must be at least 1 second";
    /// `haSpec.nodeLostTimeout` is below 1.
    pub const NODE_LOST_TIMEOUT: &str = "nodeLostTimeout must be at least 1 second";
    /// `haSpec.lagTimeout` is below 1.
    pub const LAG_TIMEOUT: &str = "lagTimeout must be at least 1 second";
    /// `haSpec.initTimeout` is below 1.
    pub const INIT_TIMEOUT: &str = "initTimeout must be at least 1 second";
    /// `haSpec.standbyStartTimeout` is below 1.
    pub const STANDBY_START_TIMEOUT: &str = "standbyStartTimeout must be at least 1 second";
    /// `haSpec.switchoverTimeout` is below 1.
    pub const SWITCHOVER_TIMEOUT: &str = "switchoverTimeout must be at least 1 second";
    /// `haSpec.waitForActiveTimeout` is set and below 1.
    pub const WAIT_FOR_ACTIVE_TIMEOUT: &str = "waitForActiveTimeout must be at least 1 second";
    /// `haSpec.maxRebuildAttempts` is below 1.
    pub const MAX_REBUILD_ATTEMPTS: &str = "maxRebuildAttempts must be at least 1";
    /// `haSpec.maxRestartAttempts` is below 1.
    pub const MAX_RESTART_ATTEMPTS: &str = "maxRestartAttempts must be at least 1";
    /// `haSpec.switchover.to` is not the ordinal of a member of the cluster.
    pub const SWITCHOVER_TO: &str = "switchover.to must name a member of the cluster (0 or 1)";
}

/// Maps the CRD's `replicas` to a topology.
pub fn topology_from_replicas(replicas: i64) -> Result<Topology, ConfigError> {
    match replicas {
        1 => Ok(Topology::Standalone),
        2 => Ok(Topology::MasterSlave),
        _ => Err(ConfigError::new("replicas", messages::REPLICAS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_for_both_topologies() {
        assert_eq!(Spec::defaults(Topology::MasterSlave).validate(), Ok(()));
        assert_eq!(Spec::defaults(Topology::Standalone).validate(), Ok(()));
    }

    #[test]
    fn lease_rule_accounts_for_the_granularity() {
        let mut spec = Spec::defaults(Topology::MasterSlave);
        spec.unreachable_timeout_s = 30;
        spec.agent_lease_s = 22; // 30 - 7.5 = 22.5 > 22
        assert_eq!(spec.validate(), Ok(()));
        spec.agent_lease_s = 23; // 22.5 is not > 23
        let error = spec.validate().unwrap_err();
        assert_eq!(error.field, "unreachableTimeout");
        assert_eq!(error.message, LEASE_MESSAGE);
        // Greater than the lease but not by the granularity: still refused.
        spec.agent_lease_s = 29;
        assert!(spec.validate().is_err());
    }

    #[test]
    fn every_rule_names_its_field() {
        let mut spec = Spec::defaults(Topology::MasterSlave);
        spec.polling_interval_s = 0;
        spec.unreachable_timeout_s = 1;
        spec.agent_lease_s = 0;
        spec.node_lost_timeout_s = 0;
        spec.lag_timeout_s = 0;
        spec.init_timeout_s = 0;
        spec.standby_start_timeout_s = 0;
        spec.switchover_timeout_s = 0;
        spec.max_rebuild_attempts = 0;
        spec.max_restart_attempts = 0;
        spec.wait_for_active_timeout_s = Some(0);
        spec.switchover = Some(SwitchoverRequest {
            token: "x".into(),
            to: Some(MemberId(7)),
        });
        let fields: Vec<&str> = spec.violations().iter().map(|error| error.field).collect();
        for field in [
            "pollingInterval",
            "agentLeaseSeconds",
            "nodeLostTimeout",
            "lagTimeout",
            "initTimeout",
            "standbyStartTimeout",
            "switchoverTimeout",
            "maxRebuildAttempts",
            "maxRestartAttempts",
            "waitForActiveTimeout",
            "switchover",
        ] {
            assert!(fields.contains(&field), "{field} missing from {fields:?}");
        }
        for error in spec.violations() {
            assert!(error.message.contains(error.field), "{error}");
        }
    }

    #[test]
    fn polling_rule_and_replicas() {
        let mut spec = Spec::defaults(Topology::MasterSlave);
        spec.polling_interval_s = 20;
        spec.unreachable_timeout_s = 39;
        spec.agent_lease_s = 10;
        assert_eq!(spec.validate().unwrap_err().field, "unreachableTimeout");
        assert!(topology_from_replicas(3).is_err());
        assert_eq!(topology_from_replicas(1), Ok(Topology::Standalone));
        let previous = Spec::defaults(Topology::Standalone);
        let error = Spec::defaults(Topology::MasterSlave)
            .validate_change(&previous)
            .unwrap_err();
        assert_eq!(error.field, "replicas");
    }
}
