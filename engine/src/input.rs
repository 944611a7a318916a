//! Observations: what the outside world tells the engine.

use crate::config::Spec;
use crate::types::{ConfigHash, EffectId, Lsn, MemberId, NodeName, PodUid, PvName, PvcUid, Role};
use serde::{Deserialize, Serialize};

/// One observation. It goes into [`crate::Engine::step`] together with the time it was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// The result of polling a member's agent.
    Agent {
        /// The member polled.
        member: MemberId,
        /// What the poll returned.
        poll: Poll,
    },
    /// A member's pod changed; `None` when the pod object does not exist.
    Pod {
        /// The member whose pod this is.
        member: MemberId,
        /// The pod as observed.
        pod: Option<PodObservation>,
    },
    /// A member's PVC or PV changed.
    Volume {
        /// The member whose volume this is.
        member: MemberId,
        /// The volume as observed.
        volume: VolumeObservation,
    },
    /// A node changed.
    Node {
        /// The node's name.
        node: NodeName,
        /// Its readiness, or that it is deleted.
        status: NodeStatus,
    },
    /// The user's spec changed (the first one creates the cluster).
    Spec(Spec),
    /// A deadline the engine asked for (see [`crate::Engine::next_deadline`]) has passed.
    Timer,
    /// An effect the engine emitted has finished.
    EffectFinished {
        /// The effect's id.
        id: EffectId,
        /// How it went.
        outcome: Outcome,
    },
    /// The driver restarted. `log_lost` is true when it came back without its log and the
    /// engine must derive where it stands from observation alone. The driver then reports what
    /// its watches list (nodes, volumes, pods) before it gives the spec: the engine decides
    /// nothing before it has a spec, and once it has one, a pod not reported yet counts as gone.
    Recovered {
        /// Whether the event log was lost.
        log_lost: bool,
    },
}

impl Input {
    /// A short name for the kind of input, for traces and reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Agent {
                poll: Poll::Report(_),
                ..
            } => "agent-report",
            Input::Agent {
                poll: Poll::Unreachable,
                ..
            } => "agent-unreachable",
            Input::Pod { .. } => "pod",
            Input::Volume { .. } => "volume",
            Input::Node { .. } => "node",
            Input::Spec(_) => "spec",
            Input::Timer => "timer",
            Input::EffectFinished { .. } => "effect-finished",
            Input::Recovered { .. } => "recovered",
        }
    }
}

/// The result of one agent poll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Poll {
    /// The agent did not answer (timeout, refused, partitioned).
    Unreachable,
    /// The agent answered.
    Report(AgentReport),
}

/// What an agent reports about its database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    /// The database process.
    pub process: Process,
    /// The role the database holds.
    pub role: Role,
    /// The active: the LSN it has written and acknowledged. A standby: the LSN it has received.
    pub lsn: Lsn,
    /// The active: its standby is connected. A standby: it is connected to the active.
    pub replication_connected: bool,
    /// A standby: it is a synchronous standby, in sync with the active.
    pub in_sync: bool,
    /// The member's data directory holds a complete copy (false while a rebuild copies).
    pub copy_complete: bool,
    /// The configuration hash the database runs with.
    pub config_hash: ConfigHash,
    /// The copy (rebuild) the agent runs or last ran for this member.
    pub copy: CopyProgress,
    /// Why the database is not serving as the active, when the agent knows.
    pub not_serving: Option<NotServing>,
    /// Where the member's data stands in the cluster's history of promotions.
    pub timeline: Timeline,
}

/// Where a copy of the data stands in the history of promotions: every promotion starts a new
/// timeline at the position where the promoted copy stood (PostgreSQL's timelines, a TimesTen
/// pair's replication epochs). The agent reports the copy's current timeline, the one it
/// branched from and the position of the branch; that is enough to tell whether a copy is a
/// prefix of the active's history (it replicates on), diverged from it (it is rewound), or
/// cannot be placed (it is copied afresh).
///
/// Timeline `0` means unknown: an agent that reports no history, or a report recorded before
/// reports carried one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// The copy's current timeline; `0` when unknown.
    pub id: u64,
    /// The timeline it branched from; `0` when it is the first, or unknown.
    pub parent: u64,
    /// The position at which it branched from `parent`: the parent's last position this
    /// timeline shares.
    pub branched_at: Lsn,
}

/// How a member's copy relates to the active's history ([`Timeline::lineage`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lineage {
    /// A prefix of the active's history: replication continues from where it stands.
    Prefix,
    /// It holds a suffix the active's history does not: only that suffix must be discarded.
    Diverged,
    /// The reports do not tell (a history is unknown).
    Unknown,
}

impl Timeline {
    /// How a copy on timeline `self` at `lsn` relates to the history of the active, which is on
    /// `active`.
    pub fn lineage(self, lsn: Lsn, active: Timeline) -> Lineage {
        if self.id == 0 || active.id == 0 {
            return Lineage::Unknown;
        }
        if self == active {
            return Lineage::Prefix;
        }
        if self.id == active.parent && lsn <= active.branched_at {
            return Lineage::Prefix;
        }
        // On the parent past the branch, on a timeline of its own (a timeline of the same number
        // that branched elsewhere is one: two databases number their timelines apart), or on an
        // older one that the report does not place: a rewind finds the common position and
        // discards what follows.
        Lineage::Diverged
    }
}

/// The copy an agent runs to rebuild its member from the active.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CopyProgress {
    /// No copy runs, and the last one (if any) completed.
    #[default]
    Idle,
    /// A copy runs; `percent` of the data has arrived.
    Copying {
        /// How much of the data has arrived, 0 to 100.
        percent: u8,
    },
    /// The last copy stopped before it completed (its source went away, the link broke, the
    /// disk filled): the member's data is incomplete and no copy runs.
    Failed,
}

/// Why a member's database does not hold the active role, as its agent knows it. The engine
/// uses it to tell a database that lost its role from one that never had it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotServing {
    /// Starting, and not yet told its role.
    Starting,
    /// The process crashed (or its container restarted it) and came back with no role.
    Restarted,
    /// Demoted on the operator's command (a planned switchover or a stop).
    Demoted,
    /// Fenced on the operator's command.
    Fenced,
    /// It stopped accepting writes by itself when its agent's lease ran out.
    LeaseExpired,
}

/// The state of a database process as its agent sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Process {
    /// Starting up, not yet serving.
    #[default]
    Starting,
    /// Up and serving in its role.
    Running,
    /// Stopped or crashed.
    Down,
    /// Initialization failed and will not succeed by retrying.
    InitFailed,
}

/// A pod as observed through the Kubernetes API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodObservation {
    /// The pod's UID.
    pub uid: PodUid,
    /// The node it is scheduled on, once scheduled.
    pub node: Option<NodeName>,
    /// Whether its containers are running.
    pub running: bool,
    /// Whether it is being deleted (deletion timestamp set).
    pub deleting: bool,
}

/// A member's PVC and PV as observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeObservation {
    /// The PVC's UID, when the PVC exists.
    pub pvc: Option<PvcUid>,
    /// The bound PV and its node, when bound.
    pub pv: Option<(PvName, NodeName)>,
    /// The PVC or PV was lost (phase `Lost`, or deleted under the member).
    pub lost: bool,
}

/// A node's condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeStatus {
    /// Ready.
    Ready,
    /// Not ready (unreachable kubelet, pressure, reboot).
    NotReady,
    /// The node object was deleted.
    Deleted,
}

/// How an effect went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Carried out.
    Ok,
    /// Not carried out.
    Failed(EffectError),
}

/// Why an effect was not carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EffectError {
    /// A precondition (UID, resource version) did not hold.
    Conflict,
    /// The object was not there.
    NotFound,
    /// No answer in time.
    Timeout,
    /// The server or agent answered with an error.
    ServerError,
    /// The request was refused as invalid.
    Rejected,
    /// The driver did not carry it out: right before its turn, the engine no longer wanted it
    /// ([`crate::Engine::still_wanted`]), because what was observed since contradicts it.
    Withdrawn,
}

#[cfg(test)]
mod tests {
    use super::{Lineage, Timeline};
    use crate::types::Lsn;

    fn at(id: u64, parent: u64, branched_at: u64) -> Timeline {
        Timeline {
            id,
            parent,
            branched_at: Lsn(branched_at),
        }
    }

    #[test]
    fn a_copy_is_placed_against_the_active_s_last_branch() {
        let active = at(3, 2, 1_000);
        // The active's own timeline: a prefix whatever the position.
        assert_eq!(at(3, 2, 1_000).lineage(Lsn(5_000), active), Lineage::Prefix);
        // The parent up to the branch, the branch included: a prefix; past it: diverged.
        assert_eq!(at(2, 1, 10).lineage(Lsn(1_000), active), Lineage::Prefix);
        assert_eq!(at(2, 1, 10).lineage(Lsn(999), active), Lineage::Prefix);
        assert_eq!(at(2, 1, 10).lineage(Lsn(1_001), active), Lineage::Diverged);
        // The same number, branched elsewhere: another database's timeline.
        assert_eq!(at(3, 2, 900).lineage(Lsn(950), active), Lineage::Diverged);
        assert_eq!(at(3, 1, 1_000).lineage(Lsn(950), active), Lineage::Diverged);
        // Older, or of its own: rewound, which discards nothing that is a prefix.
        assert_eq!(at(1, 0, 0).lineage(Lsn(5), active), Lineage::Diverged);
        assert_eq!(
            at(4, 2, 1_000).lineage(Lsn(1_200), active),
            Lineage::Diverged
        );
        // Unknown on either side.
        assert_eq!(
            Timeline::default().lineage(Lsn(5), active),
            Lineage::Unknown
        );
        assert_eq!(
            active.lineage(Lsn(5), Timeline::default()),
            Lineage::Unknown
        );
        // Extreme values place as any other.
        let far = at(u64::MAX, u64::MAX - 1, u64::MAX);
        assert_eq!(
            at(u64::MAX - 1, 0, 0).lineage(Lsn(u64::MAX), far),
            Lineage::Prefix
        );
    }
}
