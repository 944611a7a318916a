//! The scenario language (`docs/simulator.md`): one YAML file describes a cluster,
//! a world for it to live in, a timeline of faults and user actions, and what must hold.
//!
//! These types are what a parsed scenario is; [`parse()`] and [`load`] build them from YAML with
//! errors that name the file, the line and the key ([`ScenarioError`]), and [`to_yaml`] writes
//! one back in the same format.
//!
//! - `file`: the file as serde reads and writes it, every value with its line;
//! - `read`: from the file to a [`Scenario`], checking what serde cannot (a target against the
//!   members, a time against the run);
//! - `write`: the way back;
//! - `limits`: the largest value, count and file the language accepts.

mod error;
mod file;
mod limits;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub use error::ScenarioError;
pub use file::{format_duration, parse_duration};
pub use limits::{
    MAX_COPY_MEGABYTES_PER_SECOND, MAX_DATA_GIGABYTES, MAX_DURATION_MS, MAX_EXPECTED_STATES,
    MAX_FILE_BYTES, MAX_NAME_BYTES, MAX_NODES, MAX_TIMELINE_ENTRIES, MAX_WRITES_PER_SECOND,
};
pub use read::{DEFAULT_DURATION_MS, DEFAULT_SEED, load, parse};
pub use write::to_yaml;

use strum::{EnumDiscriminants, IntoStaticStr};
use tandem_engine::{ClusterState, MemberId, Spec, StateKind, Topology};

/// Milliseconds of simulated time.
pub type Millis = u64;

/// One scenario file, parsed and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// `name`: unique in a catalog.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `topology`.
    pub topology: Topology,
    /// `seed` (default 1); the command line may override it.
    pub seed: u64,
    /// `duration` (default 30m).
    pub duration_ms: Millis,
    /// `cluster`: the engine configuration, CRD field names, over the CRD defaults.
    pub cluster: Spec,
    /// `world`: the simulated world's knobs, over the documented defaults.
    pub world: WorldConfig,
    /// `timeline`, in the order written (entries fire in time order; ties in written order).
    pub timeline: Vec<TimelineEntry>,
    /// `expect`.
    pub expect: Expect,
}

/// The world's knobs (`world:`).
#[derive(Clone, Debug, PartialEq)]
pub struct WorldConfig {
    /// `nodes` (default 3).
    pub nodes: u32,
    /// `podStartSeconds` (default 5): a recreated pod's database is up after this long.
    pub pod_start_ms: Millis,
    /// `rebuildSeconds` (default 20): copying a standby from the active takes this long, plus
    /// the time the data's size takes at the copy rate ([`WorldConfig::copy_ms`]).
    pub rebuild_ms: Millis,
    /// `dataGigabytes` (default 0): the database's size in GiB, beside the run's own writes.
    pub data_gigabytes: u64,
    /// `copyMegabytesPerSecond` (default 100): how fast a full copy moves the data, in MiB a
    /// second.
    pub copy_megabytes_per_second: u64,
    /// `writesPerSecond` (default 50): client writes sent to whoever is active.
    pub writes_per_second: u32,
    /// `replicationLagMs` (default 5): async, how far a standby trails the active.
    pub replication_lag_ms: Millis,
    /// `apiLatencyMs` (default 20): how long a Kubernetes API call takes.
    pub api_latency_ms: Millis,
    /// `agentLatencyMs` (default 5): how long an agent poll or command takes.
    pub agent_latency_ms: Millis,
    /// `agentsReportHistory` (default true): an agent reports where its member's data stands
    /// in the history of promotions; when false it reports no history, and the engine copies
    /// afresh every member it cannot place (one that restarted, or a former active).
    pub agents_report_history: bool,
    /// `agentsRewind` (default true): an agent can rewind its member's diverged suffix; when
    /// false it refuses every rewind, and a diverged member is copied afresh.
    pub agents_rewind: bool,
}

impl Default for WorldConfig {
    fn default() -> WorldConfig {
        WorldConfig {
            nodes: 3,
            pod_start_ms: 5_000,
            rebuild_ms: 20_000,
            data_gigabytes: 0,
            copy_megabytes_per_second: 100,
            writes_per_second: 50,
            replication_lag_ms: 5,
            api_latency_ms: 20,
            agent_latency_ms: 5,
            agents_report_history: true,
            agents_rewind: true,
        }
    }
}

impl WorldConfig {
    /// How long a full copy takes: `rebuildSeconds`, plus the data's size at the copy rate. A
    /// database of 300 GiB copied at 100 MiB/s adds 51m12s.
    pub fn copy_ms(&self) -> Millis {
        let size_ms = self.data_gigabytes * 1024 * 1000 / self.copy_megabytes_per_second.max(1);
        self.rebuild_ms.saturating_add(size_ms)
    }

    /// How fast a connected standby receives what it lacks, in bytes a millisecond: the copy
    /// rate, the network's.
    pub fn stream_bytes_per_ms(&self) -> u64 {
        ((self.copy_megabytes_per_second.max(1) << 20) / 1000).max(1)
    }

    /// How long a rewind of `diverged_bytes` takes: the database restarts (`podStartSeconds`)
    /// after the diverged suffix's blocks are copied back from the active at the copy rate.
    pub fn rewind_ms(&self, diverged_bytes: u64) -> Millis {
        self.pod_start_ms
            .saturating_add(diverged_bytes.div_ceil(self.stream_bytes_per_ms()))
    }
}

/// One entry of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineEntry {
    /// `at`.
    pub at_ms: Millis,
    /// A fault or a user action.
    pub what: What,
    /// The 1-based line of the entry in its file, for messages.
    pub line: u32,
}

/// What a timeline entry does.
#[derive(Clone, Debug, PartialEq)]
pub enum What {
    /// `fault:` with its `target` (none for `operator-crash` and `api-errors`).
    Fault(Fault, Option<Target>),
    /// `action:`.
    Action(UserAction),
}

/// Who a fault hits, resolved when the entry fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `active`: the member holding the active role in the world.
    Active,
    /// `standby`.
    Standby,
    /// `member-N`.
    Member(u8),
    /// `node-of-active`.
    NodeOfActive,
    /// `node-of-standby`.
    NodeOfStandby,
    /// `node-N`.
    Node(u32),
}

/// The faults of the scenario language, with their parameters. [`FaultKind`] names them: the
/// name in scenario files is the variant's, in kebab case (`crash-process`).
#[derive(Clone, Debug, PartialEq, EnumDiscriminants)]
#[strum_discriminants(
    name(FaultKind),
    derive(IntoStaticStr, strum::EnumIter, serde::Deserialize, serde::Serialize),
    strum(serialize_all = "kebab-case"),
    serde(rename_all = "kebab-case")
)]
pub enum Fault {
    /// `crash-process`, `restartAfter` (default 10s; `never` is `None`).
    CrashProcess {
        /// When the container restarts the process.
        restart_after_ms: Option<Millis>,
    },
    /// `hang-process`, `for`.
    HangProcess {
        /// How long.
        for_ms: Millis,
    },
    /// `delete-pod`.
    DeletePod,
    /// `partition`, `for`.
    Partition {
        /// How long.
        for_ms: Millis,
    },
    /// `isolate`, `for`.
    Isolate {
        /// How long.
        for_ms: Millis,
    },
    /// `node-loss`, `for` (absent: forever).
    NodeLoss {
        /// How long, if it comes back.
        for_ms: Option<Millis>,
    },
    /// `replication-stall`, `for`.
    ReplicationStall {
        /// How long.
        for_ms: Millis,
    },
    /// `replication-break`, `for`.
    ReplicationBreak {
        /// How long.
        for_ms: Millis,
    },
    /// `disk-full`, `for`.
    DiskFull {
        /// How long.
        for_ms: Millis,
    },
    /// `slow-start`, `seconds`.
    SlowStart {
        /// The next start's duration.
        start_ms: Millis,
    },
    /// `agent-flap`, `period`, `for`.
    AgentFlap {
        /// Reachable / unreachable alternate every period.
        period_ms: Millis,
        /// How long.
        for_ms: Millis,
    },
    /// `operator-crash`, `restartAfter` (default 5s), `loseLog` (default false).
    OperatorCrash {
        /// When the operator restarts.
        restart_after_ms: Millis,
        /// Whether its log is lost.
        lose_log: bool,
    },
    /// `api-errors`, `rate`, `for`.
    ApiErrors {
        /// The fraction of calls that fail, in [0, 1].
        rate: f64,
        /// How long.
        for_ms: Millis,
    },
}

impl Fault {
    /// The fault's name in scenario files.
    pub fn name(&self) -> &'static str {
        FaultKind::from(self).into()
    }

    /// How long the fault lasts from its start, when the scenario says: its `for`, or an
    /// operator crash's `restartAfter`. The timeline picture draws this window.
    pub fn window_ms(&self) -> Option<Millis> {
        match *self {
            Fault::HangProcess { for_ms }
            | Fault::Partition { for_ms }
            | Fault::Isolate { for_ms }
            | Fault::ReplicationStall { for_ms }
            | Fault::ReplicationBreak { for_ms }
            | Fault::DiskFull { for_ms }
            | Fault::AgentFlap { for_ms, .. }
            | Fault::ApiErrors { for_ms, .. }
            | Fault::NodeLoss {
                for_ms: Some(for_ms),
            } => Some(for_ms),
            Fault::OperatorCrash {
                restart_after_ms, ..
            } => Some(restart_after_ms),
            Fault::CrashProcess { .. }
            | Fault::DeletePod
            | Fault::SlowStart { .. }
            | Fault::NodeLoss { for_ms: None } => None,
        }
    }
}

/// The user actions of the scenario language. [`UserActionKind`] names them, as [`FaultKind`] does
/// the faults.
#[derive(Clone, Debug, PartialEq, Eq, EnumDiscriminants)]
#[strum_discriminants(
    name(UserActionKind),
    derive(IntoStaticStr, strum::EnumIter, serde::Deserialize, serde::Serialize),
    strum(serialize_all = "kebab-case"),
    serde(rename_all = "kebab-case")
)]
pub enum UserAction {
    /// `switchover`, optional `to` (a member ordinal).
    Switchover {
        /// The target.
        to: Option<u8>,
    },
    /// `config-change`, optional `hash` (default: the previous hash plus one).
    ConfigChange {
        /// The new configuration hash.
        hash: Option<u64>,
    },
    /// `stop`.
    Stop,
    /// `start`.
    Start,
    /// `reexamine`.
    Reexamine,
    /// `pause-failover`.
    PauseFailover,
    /// `resume-failover`.
    ResumeFailover,
}

impl UserAction {
    /// The action's name in scenario files.
    pub fn name(&self) -> &'static str {
        UserActionKind::from(self).into()
    }
}

/// What must hold (`expect:`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expect {
    /// `finalState`: the cluster state at the end of the run.
    pub final_state: Option<ClusterStateName>,
    /// `recoveredWithin`: from the end of the last fault to `finalState`.
    pub recovered_within_ms: Option<Millis>,
    /// `visits`: states visited in this order, gaps allowed.
    pub visits: Vec<ClusterStateName>,
    /// `never`: states never entered.
    pub never: Vec<ClusterStateName>,
    /// `maxLostWrites` (default 0).
    pub max_lost_writes: u64,
    /// `maxFullCopies`: full copies of a member's data, after the cluster was first whole
    /// ([`crate::run::Costs::full_copies`]).
    pub max_full_copies: Option<u32>,
    /// `maxWriteOutage`: the time without writes ([`crate::run::Costs::write_outage_ms`]).
    pub max_write_outage_ms: Option<Millis>,
    /// `maxDegradedTime`: the time without an in-sync standby
    /// ([`crate::run::Costs::degraded_ms`]).
    pub max_degraded_ms: Option<Millis>,
}

/// A cluster state as a scenario names it: a kind (`WaitingForActive`), or a kind with its
/// member (`WaitingForActive(member-0)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterStateName {
    /// The kind of state.
    pub kind: StateKind,
    /// The member, for the kinds that name one; `None` matches any.
    pub member: Option<MemberId>,
}

impl ClusterStateName {
    /// The name of every state of `kind`.
    pub fn of_kind(kind: StateKind) -> ClusterStateName {
        ClusterStateName { kind, member: None }
    }

    /// Whether `state` is what this name says.
    pub fn matches(&self, state: ClusterState) -> bool {
        let member = match state {
            ClusterState::WaitingForActive(member) | ClusterState::Switchover(member) => {
                Some(member)
            }
            _ => None,
        };
        state.kind() == self.kind && self.member.is_none_or(|wanted| member == Some(wanted))
    }
}

impl std::fmt::Display for ClusterStateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.member {
            Some(member) => write!(f, "{}({member})", self.kind.name()),
            None => f.write_str(self.kind.name()),
        }
    }
}
