//! The configuration the engine reads and its validation (`docs/state-machine.md`, Configuration).
//!
//! Field names follow the `ZenithCluster` CRD, so an error names the field a user wrote. The
//! messages are identical to the CRD's validation messages: the operator and the simulator refuse
//! exactly what the API server refuses.

use crate::limits::MAX_NAME_BYTES;
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
    /// The values it may take, for a number.
    pub range: Option<FieldRange>,
    /// Whether it may be absent (`waitForActiveTimeout`: wait forever; `agentLeaseSeconds`: the
    /// lease follows `unreachableTimeout`, [`derived_agent_lease_s`]).
    pub optional: bool,
    get: fn(&Spec) -> Option<FieldValue>,
    set: fn(&mut Spec, FieldValue) -> Option<()>,
}

/// The values a numeric spec field may take, and the message that refuses another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldRange {
    /// The smallest value.
    pub min: u64,
    /// The largest value.
    pub max: u64,
    /// The message of the rule, naming the field.
    pub message: &'static str,
}

impl FieldRange {
    /// Whether `value` is in the range.
    pub fn holds(&self, value: i128) -> bool {
        (i128::from(self.min)..=i128::from(self.max)).contains(&value)
    }
}

/// The largest value of a field counted in seconds or attempts: what the engine holds in 32
/// bits (136 years of seconds).
pub const MAX_SECONDS: u64 = u32::MAX as u64;

/// The largest value of a field counted in bytes: the largest whole number the resource's
/// schema holds (int64).
pub const MAX_BYTES: u64 = i64::MAX as u64;

/// How two fields must compare: `times × field` is at least, or above, `other_times × other +
/// plus`. Each timing rule of the spec is one of these ([`TIMING_RULES`]); the resource's schema
/// states the same rules, built from this table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimingRule {
    /// The field the rule is about, which a refusal names.
    pub field: &'static str,
    /// Its factor.
    pub times: u64,
    /// `true`: strictly above; `false`: at least.
    pub strictly: bool,
    /// The field it is compared with.
    pub other: &'static str,
    /// That field's factor.
    pub other_times: u64,
    /// A constant added to the other side, in the fields' unit.
    pub plus: u64,
    /// The message, naming both fields.
    pub message: &'static str,
}

impl TimingRule {
    /// Whether the rule holds for these values of its two fields.
    pub fn holds(&self, value: i128, other: i128) -> bool {
        let left = i128::from(self.times) * value;
        let right = i128::from(self.other_times) * other + i128::from(self.plus);
        if self.strictly {
            left > right
        } else {
            left >= right
        }
    }
}

/// The spec's timing rules: every pair of timing fields whose values could leave a cluster that
/// passes every other rule unable to work, each with its reason (`docs/state-machine.md`,
/// Configuration, has the table of every pair). A rule applies when both its fields are set and
/// within their ranges; a field out of its range is refused by its range alone.
pub const TIMING_RULES: &[TimingRule] = &[
    // One missed poll is not a loss of contact.
    TimingRule {
        field: "unreachableTimeout",
        times: 1,
        strictly: false,
        other: "pollingInterval",
        other_times: 2,
        plus: 0,
        message: messages::UNREACHABLE_TIMEOUT_POLLING,
    },
    // The engine believes a lease ran out only once it has (the contact-time granularity).
    TimingRule {
        field: "unreachableTimeout",
        times: 3,
        strictly: true,
        other: "agentLeaseSeconds",
        other_times: 4,
        plus: 0,
        message: messages::UNREACHABLE_TIMEOUT_LEASE,
    },
    // The lease outlasts the gap between two polls that reach the agent: a shorter one fences a
    // healthy active between every two polls.
    TimingRule {
        field: "agentLeaseSeconds",
        times: 1,
        strictly: true,
        other: "pollingInterval",
        other_times: 1,
        plus: POLL_DEADLINE_S as u64,
        message: messages::AGENT_LEASE_POLLING,
    },
    // A wait for news that only a poll brings outlasts the gap between two polls: a shorter one
    // expires before the engine can learn that what it waited for happened.
    TimingRule {
        field: "lagTimeout",
        times: 1,
        strictly: true,
        other: "pollingInterval",
        other_times: 1,
        plus: POLL_DEADLINE_S as u64,
        message: messages::LAG_TIMEOUT_POLLING,
    },
    TimingRule {
        field: "initTimeout",
        times: 1,
        strictly: true,
        other: "pollingInterval",
        other_times: 1,
        plus: POLL_DEADLINE_S as u64,
        message: messages::INIT_TIMEOUT_POLLING,
    },
    TimingRule {
        field: "standbyStartTimeout",
        times: 1,
        strictly: true,
        other: "pollingInterval",
        other_times: 1,
        plus: POLL_DEADLINE_S as u64,
        message: messages::STANDBY_START_TIMEOUT_POLLING,
    },
    TimingRule {
        field: "switchoverTimeout",
        times: 1,
        strictly: true,
        other: "pollingInterval",
        other_times: 1,
        plus: POLL_DEADLINE_S as u64,
        message: messages::SWITCHOVER_TIMEOUT_POLLING,
    },
    TimingRule {
        field: "waitForActiveTimeout",
        times: 1,
        strictly: true,
        other: "pollingInterval",
        other_times: 1,
        plus: POLL_DEADLINE_S as u64,
        message: messages::WAIT_FOR_ACTIVE_TIMEOUT_POLLING,
    },
    // Room for a lease between the two rules above: one longer than pollingInterval plus the poll
    // deadline and shorter than three quarters of unreachableTimeout. An explicit lease that
    // passes both implies it; without one, it is what the lease derived from unreachableTimeout
    // needs (`derived_agent_lease_s`).
    TimingRule {
        field: "unreachableTimeout",
        times: 3,
        strictly: true,
        other: "pollingInterval",
        other_times: 4,
        plus: 4 * (POLL_DEADLINE_S as u64 + 1),
        message: messages::UNREACHABLE_TIMEOUT_LEASE_ROOM,
    },
];

/// `agentLeaseSeconds` when the resource does not set it: the longest lease the timing rules
/// allow for `unreachableTimeout`, the largest whole number of seconds below three quarters of it
/// (`unreachableTimeout * 3 > agentLeaseSeconds * 4`): 22 s for the default 30 s. A longer
/// `unreachableTimeout` alone thus lets the active ride out longer partitions and freezes without
/// stopping. Validation requires it to exceed `pollingInterval` plus [`POLL_DEADLINE_S`] like any
/// lease (the timing rule `unreachableTimeout * 3 > pollingInterval * 4 + 12`).
pub const fn derived_agent_lease_s(unreachable_timeout_s: u32) -> u32 {
    // At most (3 × u32::MAX − 1) / 4 < u32::MAX: the conversion back is exact.
    ((3 * unreachable_timeout_s as u64).saturating_sub(1) / 4) as u32
}

/// The longest a poll may take to reach an agent and be answered, in seconds: an operator's
/// status call gives up after it, and the poll counts as failed. The agent's lease, and every
/// wait for news from a poll, must outlast `pollingInterval` plus this.
pub const POLL_DEADLINE_S: u32 = 2;

/// How soon a member whose last poll failed, or whose current pod was never reached, is polled
/// again, in seconds (at most `pollingInterval`): as soon as that poll can have timed out, so that
/// a member reachable again is heard from within seconds, well before `unreachableTimeout`.
pub const UNREACHABLE_POLL_S: u32 = POLL_DEADLINE_S;

impl SpecField {
    /// The field's value in `spec` (`None`: an optional field that is absent).
    pub fn get(&self, spec: &Spec) -> Option<FieldValue> {
        (self.get)(spec)
    }

    /// Sets the field in `spec`; refuses a value of another kind or out of its range.
    pub fn set(&self, spec: &mut Spec, value: FieldValue) -> Result<(), String> {
        if let (Some(range), FieldValue::Number(number)) = (self.range, value)
            && !range.holds(i128::from(number))
        {
            return Err(range.message.to_owned());
        }
        (self.set)(spec, value).ok_or_else(|| match self.kind {
            FieldKind::Number32 | FieldKind::Bytes => {
                format!("{} must be a whole number", self.name)
            }
            FieldKind::Flag => format!("{} must be true or false", self.name),
            FieldKind::Replication => {
                format!("{} must be sync, syncPreferred or async", self.name)
            }
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
            FieldKind::Replication => Replication::from_name(text)
                .map(FieldValue::Replication)
                .ok_or_else(refused),
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
    ($name:literal, $section:literal, $field:ident, $message:expr) => {
        SpecField {
            name: $name,
            section: $section,
            kind: FieldKind::Number32,
            range: Some(FieldRange {
                min: 1,
                max: MAX_SECONDS,
                message: $message,
            }),
            optional: false,
            get: |spec| Some(FieldValue::Number(spec.$field.into())),
            set: |spec, value| {
                spec.$field = number32(value)?;
                Some(())
            },
        }
    };
}

macro_rules! bytes_field {
    ($name:literal, $field:ident, $message:expr) => {
        SpecField {
            name: $name,
            section: "haSpec",
            kind: FieldKind::Bytes,
            range: Some(FieldRange {
                min: 0,
                max: MAX_BYTES,
                message: $message,
            }),
            optional: false,
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
    number32_field!(
        "pollingInterval",
        "zenithSpec",
        polling_interval_s,
        messages::POLLING_INTERVAL
    ),
    number32_field!(
        "unreachableTimeout",
        "zenithSpec",
        unreachable_timeout_s,
        messages::UNREACHABLE_TIMEOUT
    ),
    // Absent, it follows unreachableTimeout (`derived_agent_lease_s`): the engine's spec always
    // holds the lease in force.
    SpecField {
        optional: true,
        ..number32_field!(
            "agentLeaseSeconds",
            "haSpec",
            agent_lease_s,
            messages::AGENT_LEASE_SECONDS
        )
    },
    number32_field!(
        "nodeLostTimeout",
        "haSpec",
        node_lost_timeout_s,
        messages::NODE_LOST_TIMEOUT
    ),
    SpecField {
        name: "replication",
        section: "haSpec",
        kind: FieldKind::Replication,
        range: None,
        optional: false,
        get: |spec| Some(FieldValue::Replication(spec.replication)),
        set: |spec, value| match value {
            FieldValue::Replication(mode) => {
                spec.replication = mode;
                Some(())
            }
            _ => None,
        },
    },
    bytes_field!(
        "maxLagOnFailoverBytes",
        max_lag_on_failover_bytes,
        messages::MAX_LAG_ON_FAILOVER_BYTES
    ),
    bytes_field!(
        "lagThresholdBytes",
        lag_threshold_bytes,
        messages::LAG_THRESHOLD_BYTES
    ),
    number32_field!("lagTimeout", "haSpec", lag_timeout_s, messages::LAG_TIMEOUT),
    number32_field!(
        "initTimeout",
        "haSpec",
        init_timeout_s,
        messages::INIT_TIMEOUT
    ),
    number32_field!(
        "standbyStartTimeout",
        "haSpec",
        standby_start_timeout_s,
        messages::STANDBY_START_TIMEOUT
    ),
    number32_field!(
        "switchoverTimeout",
        "haSpec",
        switchover_timeout_s,
        messages::SWITCHOVER_TIMEOUT
    ),
    number32_field!(
        "maxRebuildAttempts",
        "haSpec",
        max_rebuild_attempts,
        messages::MAX_REBUILD_ATTEMPTS
    ),
    number32_field!(
        "maxRestartAttempts",
        "haSpec",
        max_restart_attempts,
        messages::MAX_RESTART_ATTEMPTS
    ),
    SpecField {
        name: "waitForActiveTimeout",
        section: "haSpec",
        kind: FieldKind::Number32,
        range: Some(FieldRange {
            min: 1,
            max: MAX_SECONDS,
            message: messages::WAIT_FOR_ACTIVE_TIMEOUT,
        }),
        optional: true,
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
        range: None,
        optional: false,
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
    /// `replication`: `sync` (strict), `syncPreferred` or `async`.
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
    /// Gives the fields that a resource (or a scenario's `cluster:`) leaves unset and whose
    /// default follows another field their value: `agentLeaseSeconds` follows
    /// `unreachableTimeout` ([`derived_agent_lease_s`]). `is_set` says whether a field, by its
    /// name, was set.
    pub fn derive_unset(&mut self, is_set: impl Fn(&str) -> bool) {
        if !is_set("agentLeaseSeconds") {
            self.agent_lease_s = derived_agent_lease_s(self.unreachable_timeout_s);
        }
    }

    /// The documented defaults for a topology (those of the CRD).
    pub fn defaults(topology: Topology) -> Spec {
        Spec {
            topology,
            polling_interval_s: 10,
            unreachable_timeout_s: 30,
            agent_lease_s: derived_agent_lease_s(30),
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

    /// Every rule this configuration violates, in a fixed order: the range of each field
    /// ([`SPEC_FIELDS`]), the timing rules ([`TIMING_RULES`]), then the switchover request.
    pub fn violations(&self) -> Vec<ConfigError> {
        let mut errors =
            numeric_violations(
                |name| match spec_field(name).and_then(|field| field.get(self)) {
                    Some(FieldValue::Number(number)) => Some(i128::from(number)),
                    _ => None,
                },
            );
        if let Some(request) = &self.switchover {
            if !is_switchover_token(&request.token) {
                errors.push(ConfigError::new(
                    "switchover.token",
                    messages::SWITCHOVER_TOKEN,
                ));
            }
            if request
                .to
                .is_some_and(|member| member.0 >= self.topology.member_count())
            {
                errors.push(ConfigError::new("switchover.to", messages::SWITCHOVER_TO));
            }
        }
        if !is_reexamine_token(&self.reexamine) {
            errors.push(ConfigError::new("reexamine", messages::REEXAMINE));
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

    /// The lease each poll gives an agent, in seconds (`agentLeaseSeconds`), or none for a
    /// standalone member. A lease makes an active that the operator cannot reach stop accepting
    /// writes by itself, so that another member may be promoted; a standalone cluster has no
    /// other member, so its lease would protect nothing and an operator outage would stop its
    /// database.
    pub fn agent_lease(&self) -> Option<u32> {
        match self.topology {
            Topology::MasterSlave => Some(self.agent_lease_s),
            Topology::Standalone => None,
        }
    }
}

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
    /// `zenithSpec.storageSize` is not a quantity of bytes from 1 to 1Ei.
    pub const STORAGE_SIZE: &str = "storageSize must be a quantity of bytes from 1 to 1Ei, written \
    as digits with an optional fraction and suffix, for example 5Gi or 500M";
    /// `zenithSpec.pollingInterval` is out of its range.
    pub const POLLING_INTERVAL: &str = "pollingInterval must be from 1 to 4294967295 seconds";
    /// `zenithSpec.unreachableTimeout` is out of its range.
    pub const UNREACHABLE_TIMEOUT: &str = "unreachableTimeout must be from 1 to 4294967295 seconds";
    /// `zenithSpec.unreachableTimeout` is below twice `pollingInterval`.
    pub const UNREACHABLE_TIMEOUT_POLLING: &str =
        "unreachableTimeout must be at least twice pollingInterval";
    /// `zenithSpec.unreachableTimeout` does not exceed `haSpec.agentLeaseSeconds` by more than the
    /// engine's contact-time granularity (a quarter of `unreachableTimeout`).
    pub const UNREACHABLE_TIMEOUT_LEASE: &str = "unreachableTimeout must exceed agentLeaseSeconds plus \
    a quarter of unreachableTimeout (the contact-time granularity): unreachableTimeout * 3 > \
    agentLeaseSeconds * 4";
    /// `zenithSpec.unreachableTimeout` leaves no room for a lease that outlasts the gap between
    /// two polls (the lease derived from it, when `agentLeaseSeconds` is not set).
    pub const UNREACHABLE_TIMEOUT_LEASE_ROOM: &str = "unreachableTimeout must leave room for an \
    agent lease longer than pollingInterval plus 2 seconds and shorter than three quarters of \
    unreachableTimeout: unreachableTimeout * 3 must exceed pollingInterval * 4 plus 12 seconds";
    /// `haSpec.agentLeaseSeconds` is out of its range.
    pub const AGENT_LEASE_SECONDS: &str = "agentLeaseSeconds must be from 1 to 4294967295 seconds";
    /// `haSpec.agentLeaseSeconds` does not outlast the gap between two polls.
    pub const AGENT_LEASE_POLLING: &str = "agentLeaseSeconds must exceed pollingInterval plus 2 \
    seconds (a poll may take 2 seconds to reach the agent): a shorter lease fences a healthy active \
    between two polls";
    /// `haSpec.nodeLostTimeout` is out of its range.
    pub const NODE_LOST_TIMEOUT: &str = "nodeLostTimeout must be from 1 to 4294967295 seconds";
    /// `haSpec.maxLagOnFailoverBytes` is out of its range.
    pub const MAX_LAG_ON_FAILOVER_BYTES: &str =
        "maxLagOnFailoverBytes must be from 0 to 9223372036854775807 bytes";
    /// `haSpec.lagThresholdBytes` is out of its range.
    pub const LAG_THRESHOLD_BYTES: &str =
        "lagThresholdBytes must be from 0 to 9223372036854775807 bytes";
    /// `haSpec.lagTimeout` is out of its range.
    pub const LAG_TIMEOUT: &str = "lagTimeout must be from 1 to 4294967295 seconds";
    /// `haSpec.lagTimeout` does not outlast the gap between two polls.
    pub const LAG_TIMEOUT_POLLING: &str = "lagTimeout must exceed pollingInterval plus 2 seconds: \
    a lag is seen only by a poll";
    /// `haSpec.initTimeout` is out of its range.
    pub const INIT_TIMEOUT: &str = "initTimeout must be from 1 to 4294967295 seconds";
    /// `haSpec.initTimeout` does not outlast the gap between two polls.
    pub const INIT_TIMEOUT_POLLING: &str = "initTimeout must exceed pollingInterval plus 2 \
    seconds: a member's start is seen only by a poll";
    /// `haSpec.standbyStartTimeout` is out of its range.
    pub const STANDBY_START_TIMEOUT: &str =
        "standbyStartTimeout must be from 1 to 4294967295 seconds";
    /// `haSpec.standbyStartTimeout` does not outlast the gap between two polls.
    pub const STANDBY_START_TIMEOUT_POLLING: &str = "standbyStartTimeout must exceed \
    pollingInterval plus 2 seconds: a standby's start is seen only by a poll";
    /// `haSpec.switchoverTimeout` is out of its range.
    pub const SWITCHOVER_TIMEOUT: &str = "switchoverTimeout must be from 1 to 4294967295 seconds";
    /// `haSpec.switchoverTimeout` does not outlast the gap between two polls.
    pub const SWITCHOVER_TIMEOUT_POLLING: &str = "switchoverTimeout must exceed pollingInterval \
    plus 2 seconds: each step of a switchover is seen only by a poll";
    /// `haSpec.waitForActiveTimeout` is set and out of its range.
    pub const WAIT_FOR_ACTIVE_TIMEOUT: &str =
        "waitForActiveTimeout must be from 1 to 4294967295 seconds";
    /// `haSpec.waitForActiveTimeout` does not outlast the gap between two polls.
    pub const WAIT_FOR_ACTIVE_TIMEOUT_POLLING: &str = "waitForActiveTimeout must exceed \
    pollingInterval plus 2 seconds: the member waited for is heard from only by a poll";
    /// `haSpec.maxRebuildAttempts` is out of its range.
    pub const MAX_REBUILD_ATTEMPTS: &str = "maxRebuildAttempts must be from 1 to 4294967295";
    /// `haSpec.maxRestartAttempts` is out of its range.
    pub const MAX_RESTART_ATTEMPTS: &str = "maxRestartAttempts must be from 1 to 4294967295";
    /// `haSpec.switchover.to` is not the ordinal of a member of the cluster.
    pub const SWITCHOVER_TO: &str = "switchover.to must name a member of the cluster (0 or 1)";
    /// `haSpec.switchover.token` is empty or longer than a Kubernetes name.
    pub const SWITCHOVER_TOKEN: &str = "switchover.token must be 1 to 253 bytes long";
    /// `haSpec.reexamine` is longer than a Kubernetes name.
    pub const REEXAMINE: &str = "reexamine must be at most 253 bytes long";
}

/// The ranges ([`SPEC_FIELDS`]) and timing rules ([`TIMING_RULES`]) that the values `number`
/// gives break, in that order: `number` gives a numeric field's value as written, in any width
/// (`None`: absent). A timing rule applies when both its fields are present and within their
/// ranges. The engine checks its own spec with this, and the resource's validation the values
/// as the user wrote them, before any conversion.
pub fn numeric_violations(number: impl Fn(&str) -> Option<i128>) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let in_range = |name: &str| {
        let range = spec_field(name).and_then(|field| field.range)?;
        number(name).filter(|value| range.holds(*value))
    };
    for field in SPEC_FIELDS {
        if let (Some(range), Some(value)) = (field.range, number(field.name))
            && !range.holds(value)
        {
            errors.push(ConfigError::new(field.name, range.message));
        }
    }
    for rule in TIMING_RULES {
        if let (Some(value), Some(other)) = (in_range(rule.field), in_range(rule.other))
            && !rule.holds(value, other)
        {
            errors.push(ConfigError::new(rule.field, rule.message));
        }
    }
    errors
}

/// Whether `token` may identify a switchover request: not empty (a request is a change of token),
/// and at most a Kubernetes name's bytes.
pub fn is_switchover_token(token: &str) -> bool {
    (1..=MAX_NAME_BYTES).contains(&token.len())
}

/// Whether `token` may be a `reexamine` token: at most a Kubernetes name's bytes (empty: never
/// asked).
pub fn is_reexamine_token(token: &str) -> bool {
    token.len() <= MAX_NAME_BYTES
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
        assert_eq!(error.message, messages::UNREACHABLE_TIMEOUT_LEASE);
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
            "switchover.to",
        ] {
            assert!(fields.contains(&field), "{field} missing from {fields:?}");
        }
        for error in spec.violations() {
            assert!(error.message.contains(error.field), "{error}");
        }
    }

    #[test]
    fn a_lease_shorter_than_the_gap_between_polls_is_refused() {
        // Every other rule passes: the agent would fence itself between every two polls.
        let mut spec = Spec::defaults(Topology::MasterSlave);
        spec.polling_interval_s = 100;
        spec.unreachable_timeout_s = 200;
        spec.agent_lease_s = 1;
        let errors = spec.violations();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "agentLeaseSeconds");
        assert_eq!(errors[0].message, messages::AGENT_LEASE_POLLING);
        // The bound is exact: pollingInterval + POLL_DEADLINE_S is refused, one more is not.
        spec.polling_interval_s = 10;
        spec.unreachable_timeout_s = 30;
        spec.agent_lease_s = 10 + POLL_DEADLINE_S;
        assert_eq!(spec.validate().unwrap_err().field, "agentLeaseSeconds");
        spec.agent_lease_s += 1;
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn every_wait_for_a_poll_outlasts_the_gap_between_polls() {
        let waits = [
            "lagTimeout",
            "initTimeout",
            "standbyStartTimeout",
            "switchoverTimeout",
            "waitForActiveTimeout",
        ];
        for name in waits {
            let field = spec_field(name).expect("a spec field");
            let mut spec = Spec::defaults(Topology::MasterSlave);
            let gap = u64::from(spec.polling_interval_s + POLL_DEADLINE_S);
            field
                .set(&mut spec, FieldValue::Number(gap))
                .expect("in range");
            let errors = spec.violations();
            assert_eq!(errors.len(), 1, "{name}: {errors:?}");
            assert_eq!(errors[0].field, name);
            assert!(errors[0].message.starts_with(name), "{}", errors[0].message);
            field
                .set(&mut spec, FieldValue::Number(gap + 1))
                .expect("in range");
            assert_eq!(spec.validate(), Ok(()), "{name}");
        }
    }

    /// The derived lease is the longest the lease rule allows, and wherever the spec passes the
    /// room rule it outlasts the gap between two polls: a spec without a lease that validates
    /// has a valid lease.
    #[test]
    fn the_derived_lease_is_the_longest_the_rules_allow() {
        for timeout in (1..=400).chain([MAX_SECONDS as u32 - 1, MAX_SECONDS as u32]) {
            let lease = derived_agent_lease_s(timeout);
            let (timeout, lease) = (u64::from(timeout), u64::from(lease));
            assert!(3 * timeout > 4 * lease, "{timeout}: {lease}");
            assert!(
                3 * timeout <= 4 * (lease + 1),
                "{timeout}: {lease} is not the longest"
            );
        }
        assert_eq!(derived_agent_lease_s(30), 22);
        assert_eq!(derived_agent_lease_s(60), 44);
        for polling in 1..=60 {
            for timeout in 1..=200 {
                let mut spec = Spec::defaults(Topology::MasterSlave);
                spec.polling_interval_s = polling;
                spec.unreachable_timeout_s = timeout;
                spec.derive_unset(|_| false);
                let room = 3 * u64::from(timeout) > 4 * u64::from(polling) + 12;
                let lease_ok = spec.agent_lease_s > polling + POLL_DEADLINE_S;
                assert_eq!(
                    room, lease_ok,
                    "pollingInterval {polling}, unreachableTimeout {timeout}"
                );
            }
        }
    }

    #[test]
    fn the_messages_state_the_limits_the_rules_apply() {
        for field in SPEC_FIELDS {
            if let Some(range) = field.range {
                assert!(range.message.starts_with(field.name), "{}", range.message);
                assert!(
                    range.message.contains(&range.max.to_string()),
                    "{}",
                    range.message
                );
                assert!(range.message.contains(&format!("from {}", range.min)));
            }
        }
        for rule in TIMING_RULES {
            assert!(rule.message.starts_with(rule.field), "{}", rule.message);
            assert!(rule.message.contains(rule.other), "{}", rule.message);
            if rule.plus > 0 {
                assert!(
                    rule.message
                        .contains(&format!("plus {} seconds", rule.plus))
                );
            }
        }
        assert!(messages::SWITCHOVER_TOKEN.contains(&MAX_NAME_BYTES.to_string()));
        assert!(messages::REEXAMINE.contains(&MAX_NAME_BYTES.to_string()));
    }

    #[test]
    fn out_of_range_fields_are_refused_by_their_range_alone() {
        let mut spec = Spec::defaults(Topology::MasterSlave);
        spec.polling_interval_s = 0;
        let fields: Vec<&str> = spec.violations().iter().map(|error| error.field).collect();
        // A rule about pollingInterval and another field says nothing of a value out of range.
        assert_eq!(fields, ["pollingInterval"]);
        let field = spec_field("lagThresholdBytes").expect("a spec field");
        assert_eq!(
            field.set(&mut spec, FieldValue::Number(MAX_BYTES + 1)),
            Err(messages::LAG_THRESHOLD_BYTES.to_owned())
        );
        spec.switchover = Some(SwitchoverRequest {
            token: String::new(),
            to: None,
        });
        spec.reexamine = "r".repeat(MAX_NAME_BYTES + 1);
        let fields: Vec<&str> = spec.violations().iter().map(|error| error.field).collect();
        assert_eq!(fields, ["pollingInterval", "switchover.token", "reexamine"]);
    }

    #[test]
    fn only_a_pair_s_agents_hold_a_lease() {
        assert_eq!(
            Spec::defaults(Topology::MasterSlave).agent_lease(),
            Some(22)
        );
        assert_eq!(Spec::defaults(Topology::Standalone).agent_lease(), None);
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
