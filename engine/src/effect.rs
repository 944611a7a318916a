//! Effects: what the engine asks the world to do. An adapter (Kubernetes, or the simulator's
//! world) carries them out, and reports back with [`crate::Input::EffectFinished`].
//!
//! Every effect is safe to carry out twice: deletions carry UID preconditions, agent commands are
//! idempotent, bindings check what is already bound.

use crate::state::{ClusterState, Health};
use crate::types::{
    ConfigHash, EffectId, Lsn, MemberId, NodeName, PodUid, PvcUid, Role, Seq, Timestamp,
};
use serde::{Deserialize, Serialize};

/// An effect with its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    /// Unique within the cluster's history; the outcome comes back with it.
    pub id: EffectId,
    /// What to do.
    pub action: Action,
}

/// The things the engine can ask for.
///
/// The log encodes a variant by its position: a new variant is appended, never inserted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Delete a member's pod, only if its UID is still `uid`. The StatefulSet recreates it.
    DeletePod {
        /// The member.
        member: MemberId,
        /// The UID precondition.
        uid: PodUid,
        /// Seconds of graceful termination. Never zero: a forced deletion would remove the object
        /// while the process may still run, which is not fencing.
        grace_period_s: u32,
    },
    /// Make the member's database the active.
    Promote {
        /// The member.
        member: MemberId,
    },
    /// Gracefully turn the member's active database into a read-only one (planned).
    Demote {
        /// The member.
        member: MemberId,
    },
    /// Stop the member's database from accepting writes, whatever it is doing.
    Fence {
        /// The member.
        member: MemberId,
    },
    /// Wipe the member's data and copy it afresh from the active, then replicate.
    Rebuild {
        /// The member to rebuild.
        member: MemberId,
        /// The active it copies from.
        from: MemberId,
    },
    /// Reconnect the member's replication to the active.
    RestartReplication {
        /// The member.
        member: MemberId,
        /// The active to replicate from.
        from: MemberId,
    },
    /// Create a local PV for the member on `node`. Its name is derived by the adapter from the
    /// cluster, the member and `generation`.
    ProvisionLocalPv {
        /// The member.
        member: MemberId,
        /// The node that holds the disk.
        node: NodeName,
        /// Increases each time the member gets a new volume.
        generation: u32,
    },
    /// Pre-bind the member's PVC to the PV of `generation` (claimRef and volumeName).
    BindPvc {
        /// The member.
        member: MemberId,
        /// Which PV.
        generation: u32,
    },
    /// Release a lost member's volume: delete the PVC (UID precondition), clear the PV's
    /// finalizers and delete it.
    ReleaseVolume {
        /// The member.
        member: MemberId,
        /// The PVC's UID precondition, when the PVC is known.
        pvc: Option<PvcUid>,
        /// The generation of the PV to release.
        generation: u32,
    },
    /// Scale the member pods: 0 to stop the cluster, the topology's count to run it.
    SetReplicas {
        /// The number of pods.
        replicas: u8,
    },
    /// Write the cluster's status.
    UpdateStatus(Box<Status>),
    /// Emit a Kubernetes event on the cluster object.
    EmitEvent {
        /// A warning rather than a normal event.
        warning: bool,
        /// A CamelCase reason.
        reason: String,
        /// A sentence for people.
        message: String,
    },
    /// Set the role label of the member's pod, only if its UID is still `uid`: `Active` routes
    /// the `-rw` Service to it, `Standby` the `-ro` Service, `None` removes the label. The
    /// engine sets `Active` on a pod only once no other pod is known to carry it (the fencing
    /// rule: the old active's label is removed first).
    LabelPod {
        /// The member.
        member: MemberId,
        /// The UID precondition.
        uid: PodUid,
        /// The role the label names (`None`: no label).
        role: Role,
    },
    /// Discard the member's diverged suffix, back to the last position its history shares with
    /// `from`'s, then replicate from `from` (PostgreSQL's `pg_rewind`). The agent refuses when it
    /// cannot rewind; a rewind that stops short leaves the copy incomplete, like a failed copy.
    Rewind {
        /// The member to rewind.
        member: MemberId,
        /// The active whose history it rejoins.
        from: MemberId,
    },
    /// Let the active acknowledge writes without waiting for its standby (`syncPreferred`, the
    /// standby out). The engine recorded `SyncRelaxed` first.
    RelaxSync {
        /// The active.
        member: MemberId,
    },
    /// Make the active wait for its standby again before acknowledging a write.
    RestoreSync {
        /// The active.
        member: MemberId,
    },
}

/// Who carries an action out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Executor {
    /// The member's agent: a command to its database.
    Agent,
    /// The Kubernetes API: pods, volumes, labels, the StatefulSet.
    Kubernetes,
    /// The Kubernetes API, for what the engine reports: status and Events.
    Report,
}

impl Action {
    /// Who carries the action out; every action names one, so that a new action does not
    /// compile until it is routed.
    pub fn executor(&self) -> Executor {
        match self {
            Action::Promote { .. }
            | Action::Demote { .. }
            | Action::Fence { .. }
            | Action::Rebuild { .. }
            | Action::Rewind { .. }
            | Action::RelaxSync { .. }
            | Action::RestoreSync { .. }
            | Action::RestartReplication { .. } => Executor::Agent,
            Action::DeletePod { .. }
            | Action::ProvisionLocalPv { .. }
            | Action::BindPvc { .. }
            | Action::ReleaseVolume { .. }
            | Action::SetReplicas { .. }
            | Action::LabelPod { .. } => Executor::Kubernetes,
            Action::UpdateStatus(_) | Action::EmitEvent { .. } => Executor::Report,
        }
    }

    /// Whether this action only reports (allowed in hands-off states).
    pub fn is_report(&self) -> bool {
        self.executor() == Executor::Report
    }

    /// Whether the action destroys something that cannot be had back: a pod (and the process
    /// in it), a member's data (a rebuild wipes it first, a rewind discards its diverged
    /// suffix), or a volume. The driver asks
    /// [`crate::Engine::still_wanted`] right before carrying one out.
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Action::DeletePod { .. }
                | Action::Rebuild { .. }
                | Action::Rewind { .. }
                | Action::ReleaseVolume { .. }
        )
    }

    /// Whether the driver asks [`crate::Engine::still_wanted`] right before carrying the action
    /// out: the destructive actions, and routing clients to a new active (a label that named
    /// the active after it changed would route writes to two databases).
    pub fn checks_premise(&self) -> bool {
        self.is_destructive()
            || matches!(
                self,
                Action::LabelPod {
                    role: Role::Active,
                    ..
                }
            )
    }

    /// The member the action is about, if any.
    pub fn member(&self) -> Option<MemberId> {
        match self {
            Action::DeletePod { member, .. }
            | Action::Promote { member }
            | Action::Demote { member }
            | Action::Fence { member }
            | Action::RelaxSync { member }
            | Action::RestoreSync { member }
            | Action::Rebuild { member, .. }
            | Action::Rewind { member, .. }
            | Action::RestartReplication { member, .. }
            | Action::ProvisionLocalPv { member, .. }
            | Action::BindPvc { member, .. }
            | Action::ReleaseVolume { member, .. }
            | Action::LabelPod { member, .. } => Some(*member),
            Action::SetReplicas { .. } | Action::UpdateStatus(_) | Action::EmitEvent { .. } => None,
        }
    }

    /// A short name for the kind of action.
    pub fn name(&self) -> &'static str {
        match self {
            Action::DeletePod { .. } => "delete-pod",
            Action::Promote { .. } => "promote",
            Action::Demote { .. } => "demote",
            Action::Fence { .. } => "fence",
            Action::Rebuild { .. } => "rebuild",
            Action::Rewind { .. } => "rewind",
            Action::RelaxSync { .. } => "relax-sync",
            Action::RestoreSync { .. } => "restore-sync",
            Action::RestartReplication { .. } => "restart-replication",
            Action::ProvisionLocalPv { .. } => "provision-local-pv",
            Action::BindPvc { .. } => "bind-pvc",
            Action::ReleaseVolume { .. } => "release-volume",
            Action::LabelPod { .. } => "label-pod",
            Action::SetReplicas { .. } => "set-replicas",
            Action::UpdateStatus(_) => "update-status",
            Action::EmitEvent { .. } => "emit-event",
        }
    }
}

/// The cluster status the engine publishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The cluster state.
    pub state: ClusterState,
    /// The state before it.
    pub previous_state: Option<ClusterState>,
    /// When the current state was entered.
    pub since: Timestamp,
    /// Why the current state was entered.
    pub reason: String,
    /// The member the engine holds as the active.
    pub active: Option<MemberId>,
    /// Per member.
    pub members: Vec<MemberStatus>,
    /// The sequence number of the record this status belongs to.
    pub seq: Seq,
}

/// One member in the status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// The member.
    pub member: MemberId,
    /// The role its database last reported.
    pub role: Role,
    /// Its derived health.
    pub health: Health,
    /// The node holding its volume (or running its pod).
    pub node: Option<NodeName>,
    /// The LSN it last reported.
    pub lsn: Lsn,
    /// The configuration hash it last reported.
    pub config_hash: ConfigHash,
}
