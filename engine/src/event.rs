//! Events: the facts the engine records about itself. The log stores them; state is their fold
//! ([`crate::EngineState::apply`]).

use crate::config::Spec;
use crate::input::{AgentReport, NodeStatus, Outcome, PodObservation, VolumeObservation};
use crate::state::ClusterState;
use crate::transitions::Reason;
use crate::types::{EffectId, MemberId, NodeName, PodUid, Role, Timestamp};
use serde::{Deserialize, Serialize};

/// One recorded fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The cluster was created with this spec.
    Created {
        /// The spec.
        spec: Spec,
        /// When.
        at: Timestamp,
    },
    /// The user changed the spec, and the change was valid.
    SpecChanged {
        /// The new spec.
        spec: Spec,
    },
    /// A spec change was refused; the previous spec stays in force.
    SpecRejected {
        /// The field at fault.
        field: String,
        /// Why.
        message: String,
    },
    /// A successful agent contact, recorded (contact times are recorded at most every quarter of
    /// `unreachableTimeout` while nothing else changes).
    Contact {
        /// The member.
        member: MemberId,
        /// When the contact happened.
        at: Timestamp,
        /// What the agent reported.
        report: AgentReport,
        /// For a standby: how far behind the active's recorded LSN it was.
        lag_bytes: u64,
    },
    /// The first failed poll after a successful one.
    Unreachable {
        /// The member.
        member: MemberId,
        /// When.
        at: Timestamp,
    },
    /// A member's pod changed.
    PodObserved {
        /// The member.
        member: MemberId,
        /// The pod, `None` when it does not exist.
        pod: Option<PodObservation>,
    },
    /// A member's volume changed.
    VolumeObserved {
        /// The member.
        member: MemberId,
        /// The volume.
        volume: VolumeObservation,
    },
    /// A node changed.
    NodeObserved {
        /// The node.
        node: NodeName,
        /// Its status.
        status: NodeStatus,
        /// When.
        at: Timestamp,
    },
    /// The cluster state changed.
    Transition {
        /// From.
        from: ClusterState,
        /// To.
        to: ClusterState,
        /// Why, as a code of the transition table.
        reason: Reason,
        /// Why, for people: the observation and the figures behind it.
        detail: String,
        /// When.
        at: Timestamp,
    },
    /// The engine decided to promote `member`: from now on it is the active in the engine's
    /// view, and the previous active was fenced as `fence` says.
    Promoting {
        /// The member promoted.
        member: MemberId,
        /// How the previous active was known to be fenced.
        fence: FenceEvidence,
        /// The lag a person accepted for this promotion (after `reexamine`), if any.
        accepted_lag_bytes: Option<u64>,
    },
    /// An effect was emitted.
    Issued {
        /// Its id.
        id: EffectId,
        /// What it was about, for retries.
        key: EffectKey,
        /// When.
        at: Timestamp,
    },
    /// An effect finished.
    Finished {
        /// Its id.
        id: EffectId,
        /// How it went.
        outcome: Outcome,
    },
    /// A standby rebuild (master-slave) or a restart (standalone) was counted.
    AttemptCounted {
        /// The count after this attempt.
        attempts: u32,
    },
    /// The member's current pod is broken and must be replaced before it counts again.
    PodCondemned {
        /// The member.
        member: MemberId,
        /// The pod's UID.
        uid: PodUid,
    },
    /// The user's `reexamine` token was consumed.
    ReexamineSeen {
        /// The token.
        token: String,
        /// Whether it was acted on (it is only acted on in hands-off states).
        acted: bool,
    },
    /// The user's `switchover` token was consumed.
    SwitchoverSeen {
        /// The token.
        token: String,
        /// Whether it started a switchover.
        acted: bool,
    },
    /// A person accepted losing up to this many bytes (`reexamine` from manual intervention).
    LagAccepted {
        /// The accepted lag, or `None` to clear a previous acceptance.
        bytes: Option<u64>,
    },
    /// The member was given a new volume on `node` (generation `generation`).
    VolumeAssigned {
        /// The member.
        member: MemberId,
        /// The node chosen for its local PV.
        node: NodeName,
        /// The volume's generation.
        generation: u32,
    },
    /// The member's volume of `generation` is being released (its PVC and PV deleted).
    VolumeReleased {
        /// The member.
        member: MemberId,
        /// The released volume's generation.
        generation: u32,
    },
    /// After a recovery without log, the member found holding the active role was adopted as
    /// the active.
    ActiveAdopted {
        /// The member.
        member: MemberId,
    },
    /// The driver restarted.
    Recovered {
        /// Whether it lost its log.
        log_lost: bool,
        /// When.
        at: Timestamp,
    },
    /// An input reached a limit of the engine (`crate::limits`) and was refused.
    InputRefused {
        /// The kind of input (as [`crate::Input::kind`] names it).
        input: String,
        /// Which limit, with the figures.
        reason: String,
    },
    /// The spec change recorded in the same step shortened the agents' lease. An agent polled
    /// before the change may hold the previous, longer lease: no member's silence counts as its
    /// lease run out before `until`.
    LeaseShortened {
        /// The change's time, plus the previous lease, plus the poll deadline: by then a lease
        /// given by a poll asked before the change has run out.
        until: Timestamp,
    },
    /// Under `syncPreferred`, the standby was out for `SYNC_RELAX_AFTER_MS`: from now on it is
    /// not a lossless failover candidate (a failover to it needs a person), and the active is
    /// told to stop waiting for it. Recorded before the active is told.
    SyncRelaxed {
        /// When.
        at: Timestamp,
    },
    /// The active confirmed that it waits for its standby again (the `RestoreSync` effect was
    /// carried out): every write it acknowledges from now on is on its standby. The standby is
    /// not a lossless candidate yet: it may lack writes acknowledged before.
    SyncRestoreConfirmed {
        /// When the engine learnt it.
        at: Timestamp,
    },
    /// After the restore was confirmed, the active reported a position and the standby, later,
    /// at least that position: it holds every acknowledged write, and is a lossless failover
    /// candidate again.
    SyncRestored {
        /// When.
        at: Timestamp,
    },
}

impl Event {
    /// The member whose data the engine's own action replaces or wipes with this event: a
    /// rebuild or a rewind issued, a volume released or assigned. From then on its last report no longer
    /// describes its data, and neither does a report asked for before.
    pub fn forgets_data_of(&self) -> Option<MemberId> {
        match self {
            Event::Issued {
                key: EffectKey::Rebuild(member) | EffectKey::Rewind(member),
                ..
            }
            | Event::VolumeAssigned { member, .. }
            | Event::VolumeReleased { member, .. } => Some(*member),
            _ => None,
        }
    }
}

/// Why the previous active was known to be fenced when a member was promoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceEvidence {
    /// There was no previous active (a new cluster, or a restart of the same member).
    NoPreviousActive,
    /// The previous active's pod object no longer existed.
    PodGone,
    /// The previous active's agent confirmed it accepts no writes.
    AgentConfirmed,
    /// The previous active was not contacted for at least `unreachableTimeout`, which exceeds
    /// its agent's self-fencing lease plus the contact-time granularity.
    LeaseExpired,
}

/// What an issued effect was about: effects with the same key are retries of each other.
///
/// The log encodes a variant by its position: a new variant is appended, never inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EffectKey {
    /// Deleting the member's pod.
    DeletePod(MemberId),
    /// Promoting the member.
    Promote(MemberId),
    /// Demoting the member.
    Demote(MemberId),
    /// Fencing the member.
    Fence(MemberId),
    /// Rebuilding the member.
    Rebuild(MemberId),
    /// Restarting the member's replication.
    RestartReplication(MemberId),
    /// Giving the member a volume.
    Volume(MemberId),
    /// Releasing the member's volume.
    Release(MemberId),
    /// Scaling the pods.
    Replicas,
    /// Pre-binding the member's PVC to its assigned volume.
    Bind(MemberId),
    /// Deleting the member's pod with force, on a node that is not ready or deleted.
    ForceDeletePod(MemberId),
    /// Labelling the member's pod with a role (`None`: removing the label).
    Label(MemberId, Role),
    /// Rewinding the member's diverged suffix.
    Rewind(MemberId),
    /// Telling the active to stop waiting for its standby.
    RelaxSync(MemberId),
    /// Telling the active to wait for its standby again.
    RestoreSync(MemberId),
}

impl EffectKey {
    /// Whether the effect acts on the member's pod or the database process in it (a new pod
    /// makes it moot), rather than on its volume.
    pub fn concerns_the_pod(self) -> bool {
        match self {
            EffectKey::DeletePod(_)
            | EffectKey::ForceDeletePod(_)
            | EffectKey::Promote(_)
            | EffectKey::Demote(_)
            | EffectKey::Fence(_)
            | EffectKey::Rebuild(_)
            | EffectKey::RestartReplication(_)
            | EffectKey::Rewind(_)
            | EffectKey::RelaxSync(_)
            | EffectKey::RestoreSync(_)
            | EffectKey::Label(..) => true,
            EffectKey::Volume(_)
            | EffectKey::Bind(_)
            | EffectKey::Release(_)
            | EffectKey::Replicas => false,
        }
    }

    /// The member the key is about, if any.
    pub fn member(self) -> Option<MemberId> {
        match self {
            EffectKey::DeletePod(member)
            | EffectKey::Promote(member)
            | EffectKey::Demote(member)
            | EffectKey::Fence(member)
            | EffectKey::Rebuild(member)
            | EffectKey::RestartReplication(member)
            | EffectKey::Volume(member)
            | EffectKey::Release(member)
            | EffectKey::Bind(member)
            | EffectKey::ForceDeletePod(member)
            | EffectKey::Rewind(member)
            | EffectKey::RelaxSync(member)
            | EffectKey::RestoreSync(member)
            | EffectKey::Label(member, _) => Some(member),
            EffectKey::Replicas => None,
        }
    }
}
