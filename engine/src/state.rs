//! The engine's state: a fold of its events. [`EngineState::apply`] is the only way it changes.
//!
//! Member health is not stored: it is derived afresh, at every step, from what was recorded
//! and the current time ([`EngineState::health`]).

use crate::config::Spec;
use crate::event::{EffectKey, Event};
use crate::input::{
    AgentReport, CopyProgress, EffectError, NodeStatus, Outcome, PodObservation, Process,
    VolumeObservation,
};
use crate::timers::Timer;
use crate::transitions::Reason;
use crate::types::{
    EffectId, MemberId, NodeName, PodUid, PvName, PvcUid, Replication, Role, Seq, Timestamp,
    Topology,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The state of a cluster (`docs/state-machine.md`, Cluster states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterState {
    /// Creating pods and volumes; member 0 becomes the active.
    Initializing,
    /// Everything works.
    Normal,
    /// The active failed; fence it, promote the standby if it may be.
    ActiveDown,
    /// The active runs alone; the standby is being replaced.
    StandbyDown,
    /// A new or rebuilt standby is starting or catching up.
    StandbyPartiallyStarting,
    /// The standby is up but its replication is broken or too slow.
    StandbyPartiallyDown,
    /// Neither member works.
    BothDown,
    /// Waiting for this member's database, the one with the newest data.
    WaitingForActive(MemberId),
    /// A planned role swap to this member.
    Switchover(MemberId),
    /// Automation stopped for safety; a person must act (`reexamine`).
    ManualInterventionRequired,
    /// Looking at the members afresh.
    Reexamine,
    /// Stopping on the user's request.
    Stopping,
    /// Stopped, data kept.
    Stopped,
    /// Starting again after a stop.
    Starting,
    /// Automation gave up.
    Failed,
}

impl ClusterState {
    /// The state without its member argument.
    pub fn kind(self) -> StateKind {
        match self {
            ClusterState::Initializing => StateKind::Initializing,
            ClusterState::Normal => StateKind::Normal,
            ClusterState::ActiveDown => StateKind::ActiveDown,
            ClusterState::StandbyDown => StateKind::StandbyDown,
            ClusterState::StandbyPartiallyStarting => StateKind::StandbyPartiallyStarting,
            ClusterState::StandbyPartiallyDown => StateKind::StandbyPartiallyDown,
            ClusterState::BothDown => StateKind::BothDown,
            ClusterState::WaitingForActive(_) => StateKind::WaitingForActive,
            ClusterState::Switchover(_) => StateKind::Switchover,
            ClusterState::ManualInterventionRequired => StateKind::ManualInterventionRequired,
            ClusterState::Reexamine => StateKind::Reexamine,
            ClusterState::Stopping => StateKind::Stopping,
            ClusterState::Stopped => StateKind::Stopped,
            ClusterState::Starting => StateKind::Starting,
            ClusterState::Failed => StateKind::Failed,
        }
    }

    /// Whether automation is stopped here: no effect but status and events.
    pub fn is_hands_off(self) -> bool {
        matches!(
            self,
            ClusterState::ManualInterventionRequired | ClusterState::Failed
        )
    }
}

impl fmt::Display for ClusterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterState::WaitingForActive(member) => write!(f, "WaitingForActive({member})"),
            ClusterState::Switchover(member) => write!(f, "Switchover({member})"),
            other => f.write_str(other.kind().name()),
        }
    }
}

/// A cluster state without its argument: the vertices of the transition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StateKind {
    /// See [`ClusterState::Initializing`].
    Initializing,
    /// See [`ClusterState::Normal`].
    Normal,
    /// See [`ClusterState::ActiveDown`].
    ActiveDown,
    /// See [`ClusterState::StandbyDown`].
    StandbyDown,
    /// See [`ClusterState::StandbyPartiallyStarting`].
    StandbyPartiallyStarting,
    /// See [`ClusterState::StandbyPartiallyDown`].
    StandbyPartiallyDown,
    /// See [`ClusterState::BothDown`].
    BothDown,
    /// See [`ClusterState::WaitingForActive`].
    WaitingForActive,
    /// See [`ClusterState::Switchover`].
    Switchover,
    /// See [`ClusterState::ManualInterventionRequired`].
    ManualInterventionRequired,
    /// See [`ClusterState::Reexamine`].
    Reexamine,
    /// See [`ClusterState::Stopping`].
    Stopping,
    /// See [`ClusterState::Stopped`].
    Stopped,
    /// See [`ClusterState::Starting`].
    Starting,
    /// See [`ClusterState::Failed`].
    Failed,
}

impl StateKind {
    /// Every state, in table order.
    pub const ALL: [StateKind; 15] = [
        StateKind::Initializing,
        StateKind::Normal,
        StateKind::ActiveDown,
        StateKind::StandbyDown,
        StateKind::StandbyPartiallyStarting,
        StateKind::StandbyPartiallyDown,
        StateKind::BothDown,
        StateKind::WaitingForActive,
        StateKind::Switchover,
        StateKind::ManualInterventionRequired,
        StateKind::Reexamine,
        StateKind::Stopping,
        StateKind::Stopped,
        StateKind::Starting,
        StateKind::Failed,
    ];

    /// The state's name as the reference writes it.
    pub fn name(self) -> &'static str {
        match self {
            StateKind::Initializing => "Initializing",
            StateKind::Normal => "Normal",
            StateKind::ActiveDown => "ActiveDown",
            StateKind::StandbyDown => "StandbyDown",
            StateKind::StandbyPartiallyStarting => "StandbyPartiallyStarting",
            StateKind::StandbyPartiallyDown => "StandbyPartiallyDown",
            StateKind::BothDown => "BothDown",
            StateKind::WaitingForActive => "WaitingForActive",
            StateKind::Switchover => "Switchover",
            StateKind::ManualInterventionRequired => "ManualInterventionRequired",
            StateKind::Reexamine => "Reexamine",
            StateKind::Stopping => "Stopping",
            StateKind::Stopped => "Stopped",
            StateKind::Starting => "Starting",
            StateKind::Failed => "Failed",
        }
    }

    /// Parses a name written as in the reference.
    pub fn from_name(name: &str) -> Option<StateKind> {
        StateKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// A member's health (`docs/state-machine.md`, Member health), derived at every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Health {
    /// Reachable, up, in the expected role, replicating within the lag threshold.
    Healthy,
    /// A standby that is behind, or still copying its data.
    CatchingUp,
    /// The pod exists and the database is starting (or awaits its role).
    Starting,
    /// Up, but its replication link is broken, or it claims a role it must not hold.
    Degraded,
    /// Not reachable, for less than `unreachableTimeout`: a hold.
    Unknown,
    /// Unreachable for `unreachableTimeout` or longer, or its process is down.
    Down,
    /// Its pod object does not exist.
    Gone,
    /// Its data is gone.
    Lost,
}

impl Health {
    /// Up and serving: the member works in its role, perhaps imperfectly.
    pub fn works(self) -> bool {
        matches!(
            self,
            Health::Healthy | Health::CatchingUp | Health::Degraded
        )
    }

    /// Failed: the states that start a failover or a rebuild.
    pub fn failed(self) -> bool {
        matches!(self, Health::Down | Health::Gone | Health::Lost)
    }

    /// The name as the reference writes it.
    pub fn name(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::CatchingUp => "CatchingUp",
            Health::Starting => "Starting",
            Health::Degraded => "Degraded",
            Health::Unknown => "Unknown",
            Health::Down => "Down",
            Health::Gone => "Gone",
            Health::Lost => "Lost",
        }
    }
}

/// What the engine remembers about one member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// The last recorded successful contact (may trail the true last contact by less than the
    /// contact granularity).
    pub last_contact: Option<Timestamp>,
    /// Whether the last poll succeeded.
    pub reachable: bool,
    /// When the first poll failed after the last recorded contact, while no poll has succeeded
    /// since: the member's silence counts from then (`Timer::Silent`).
    pub unreachable_since: Option<Timestamp>,
    /// Whether the member's current pod has been contacted at all.
    pub contacted_this_pod: bool,
    /// The last recorded report.
    pub report: AgentReport,
    /// A standby's lag behind the active's recorded LSN, as of its last recorded contact.
    pub lag_bytes: u64,
    /// Since when the lag exceeds `lagThresholdBytes`.
    pub lagging_since: Option<Timestamp>,
    /// Whether the standby was in sync at the last contact with a live active.
    pub in_sync: bool,
    /// The pod; `None` when it does not exist (or was never seen).
    pub pod: Option<PodObservation>,
    /// A pod declared broken: it must be replaced before the member counts as recovering.
    pub condemned_pod: Option<PodUid>,
    /// The PVC's UID.
    pub pvc: Option<PvcUid>,
    /// The bound PV and its node.
    pub pv: Option<(PvName, NodeName)>,
    /// The PVC or PV was reported lost.
    pub volume_lost: bool,
    /// Increases each time the member is given a new volume.
    pub volume_generation: u32,
    /// The node chosen for the member's latest volume.
    pub assigned_node: Option<NodeName>,
    /// Since when the member's agent reports its database starting, while it does.
    pub starting_since: Option<Timestamp>,
    /// The role label the member's current pod is known to carry (`Some(Role::None)`: none);
    /// `None` while unknown (a new pod, or one seen only after a recovery without log).
    pub label: Option<Role>,
}

impl MemberView {
    /// The node holding the member's data: the PV's node, else the pod's.
    pub fn node(&self) -> Option<&NodeName> {
        match (&self.pv, &self.assigned_node) {
            (Some((_, node)), _) | (None, Some(node)) => Some(node),
            (None, None) => self.pod.as_ref().and_then(|pod| pod.node.as_ref()),
        }
    }
}

/// What the engine remembers about a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// The node's name.
    pub name: NodeName,
    /// Its last status.
    pub status: NodeStatus,
    /// Since when it is not ready (or deleted).
    pub unavailable_since: Option<Timestamp>,
}

/// An effect the engine emitted and may retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    /// The latest id issued for the key.
    pub id: EffectId,
    /// What it is about.
    pub key: EffectKey,
    /// When it was last issued.
    pub at: Timestamp,
    /// How many times it was issued since the cluster entered its state.
    pub attempts: u32,
    /// Whether the latest issue is known to have failed.
    pub failed: bool,
    /// Whether the latest issue is known to have been carried out.
    pub succeeded: bool,
    /// Why the latest issue failed, when it did.
    pub error: Option<EffectError>,
}

/// What the active's acknowledged writes say about its standby's copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guarantee {
    /// Strict sync (`sync`, or `syncPreferred` not relaxed): the active acknowledges a write
    /// only once its standby has it.
    Strict,
    /// `syncPreferred`, relaxed: the active acknowledges writes without its standby, which is
    /// not a lossless failover candidate; a failover to it needs a person.
    Relaxed,
    /// `async`: the standby trails by its lag, and may be promoted within
    /// `maxLagOnFailoverBytes`.
    Async,
}

/// The state of one cluster: a fold of its events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineState {
    pub(crate) seq: Seq,
    pub(crate) spec: Option<Spec>,
    pub(crate) cluster: ClusterState,
    pub(crate) previous: Option<ClusterState>,
    pub(crate) since: Timestamp,
    pub(crate) reason: Option<Reason>,
    pub(crate) detail: String,
    pub(crate) active: Option<MemberId>,
    pub(crate) active_confirmed: bool,
    pub(crate) accepted_lag_bytes: Option<u64>,
    pub(crate) members: [MemberView; 2],
    pub(crate) nodes: Vec<NodeView>,
    pub(crate) issued: Vec<Issued>,
    pub(crate) next_effect: u64,
    pub(crate) attempts: u32,
    pub(crate) reexamine_token: String,
    pub(crate) switchover_token: String,
    pub(crate) log_lost: bool,
    pub(crate) transitions: u64,
    pub(crate) observing_since: Timestamp,
    pub(crate) promoted_in_state: Option<MemberId>,
    /// No member's silence counts as its lease run out before this (a lease shortened by a spec
    /// change: `Event::LeaseShortened`).
    pub(crate) lease_floor: Timestamp,
    /// Since when the engine's active, running in its role, reports no standby connected (from
    /// its first such recorded report; cleared by one with a standby, and by a promotion).
    pub(crate) standby_missing_since: Option<Timestamp>,
    /// Under `syncPreferred`: the active may acknowledge writes its standby lacks
    /// (`Event::SyncRelaxed`), so the standby is not a lossless failover candidate.
    pub(crate) sync_relaxed: bool,
    /// While relaxed: when the engine learnt the active waits for its standby again
    /// (`Event::SyncRestoreConfirmed`).
    pub(crate) sync_restore_confirmed: Option<Timestamp>,
}

impl Default for EngineState {
    fn default() -> EngineState {
        EngineState::new()
    }
}

impl EngineState {
    /// The state of a cluster before its first record.
    pub fn new() -> EngineState {
        EngineState {
            seq: Seq(0),
            spec: None,
            cluster: ClusterState::Initializing,
            previous: None,
            since: Timestamp(0),
            reason: None,
            detail: String::new(),
            active: None,
            active_confirmed: false,
            accepted_lag_bytes: None,
            members: [MemberView::default(), MemberView::default()],
            nodes: Vec::new(),
            issued: Vec::new(),
            next_effect: 1,
            attempts: 0,
            reexamine_token: String::new(),
            switchover_token: String::new(),
            log_lost: false,
            transitions: 0,
            observing_since: Timestamp(0),
            promoted_in_state: None,
            lease_floor: Timestamp(0),
            standby_missing_since: None,
            sync_relaxed: false,
            sync_restore_confirmed: None,
        }
    }

    /// The sequence number of the last record folded in.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// The spec in force, once the cluster exists.
    pub fn spec(&self) -> Option<&Spec> {
        self.spec.as_ref()
    }

    /// The topology, once the cluster exists.
    pub fn topology(&self) -> Option<Topology> {
        self.spec.as_ref().map(|spec| spec.topology)
    }

    /// The cluster state.
    pub fn cluster(&self) -> ClusterState {
        self.cluster
    }

    /// The state before the current one.
    pub fn previous(&self) -> Option<ClusterState> {
        self.previous
    }

    /// When the current state was entered.
    pub fn since(&self) -> Timestamp {
        self.since
    }

    /// The reason code of the last transition.
    pub fn reason(&self) -> Option<Reason> {
        self.reason
    }

    /// The reason of the last transition, for people.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The member the engine holds as the active (at most one, by construction).
    pub fn active(&self) -> Option<MemberId> {
        self.active
    }

    /// Whether the active has reported the active role since it was chosen.
    pub fn active_confirmed(&self) -> bool {
        self.active_confirmed
    }

    /// A member's recorded view.
    pub fn member(&self, member: MemberId) -> &MemberView {
        &self.members[member.index()]
    }

    /// The known nodes, sorted by name.
    pub fn nodes(&self) -> &[NodeView] {
        &self.nodes
    }

    /// The effects issued since the current state was entered.
    pub fn issued(&self) -> &[Issued] {
        &self.issued
    }

    /// Rebuild (master-slave) or restart (standalone) attempts since the last `Normal`.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How many transitions the cluster went through.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// The lag a person accepted after `reexamine`, if any.
    pub fn accepted_lag_bytes(&self) -> Option<u64> {
        self.accepted_lag_bytes
    }

    /// The id the next effect will get.
    pub fn next_effect_id(&self) -> EffectId {
        EffectId(self.next_effect)
    }

    /// The member promoted since the current state was entered, if any.
    pub fn promoted_in_state(&self) -> Option<MemberId> {
        self.promoted_in_state
    }

    /// Whether synchronous commit is relaxed (`Event::SyncRelaxed`, until `SyncRestored`).
    pub fn sync_relaxed(&self) -> bool {
        self.sync_relaxed
    }

    /// While relaxed, when the engine learnt the active waits for its standby again.
    pub fn sync_restore_confirmed(&self) -> Option<Timestamp> {
        self.sync_restore_confirmed
    }

    /// Since when the engine's active reports no standby connected.
    pub fn standby_missing_since(&self) -> Option<Timestamp> {
        self.standby_missing_since
    }

    /// What a standby's copy is known to hold, by the replication mode and whether synchronous
    /// commit is relaxed.
    pub fn guarantee(&self) -> Guarantee {
        match self.spec.as_ref().map(|spec| spec.replication) {
            Some(Replication::Async) => Guarantee::Async,
            Some(Replication::SyncPreferred) if self.sync_relaxed => Guarantee::Relaxed,
            _ => Guarantee::Strict,
        }
    }

    /// Whether the engine recovered without its log and has not yet settled where it stands.
    pub fn log_lost(&self) -> bool {
        self.log_lost
    }

    /// Folds one event into the state. This is the only mutation of a state.
    pub fn apply(&mut self, event: &Event) {
        if let Some(member) = event.forgets_data_of() {
            self.forget_data(member);
        }
        match event {
            Event::Created { spec, at } => {
                self.spec = Some(spec.clone());
                self.since = *at;
                self.observing_since = *at;
                self.reexamine_token = spec.reexamine.clone();
                self.switchover_token = spec
                    .switchover
                    .as_ref()
                    .map(|request| request.token.clone())
                    .unwrap_or_default();
            }
            Event::SpecChanged { spec } => self.spec = Some(spec.clone()),
            Event::SpecRejected { .. } => {}
            Event::Contact {
                member,
                at,
                report,
                lag_bytes,
            } => self.apply_contact(*member, *at, report, *lag_bytes),
            Event::Unreachable { member, at } => {
                let view = &mut self.members[member.index()];
                view.reachable = false;
                view.unreachable_since = Some(*at);
            }
            Event::PodObserved { member, pod } => {
                self.apply_pod(*member, pod.as_ref());
                self.forget_deleted_nodes();
            }
            Event::VolumeObserved { member, volume } => self.apply_volume(*member, volume),
            Event::NodeObserved { node, status, at } => {
                self.apply_node(node, *status, *at);
                self.forget_deleted_nodes();
            }
            Event::InputRefused { .. } => {}
            Event::LeaseShortened { until } => self.lease_floor = self.lease_floor.max(*until),
            Event::SyncRelaxed { .. } => {
                self.sync_relaxed = true;
                self.sync_restore_confirmed = None;
                // A new decision is a new request, whatever became of earlier ones.
                self.issued.retain(|issued| {
                    !matches!(
                        issued.key,
                        EffectKey::RelaxSync(_) | EffectKey::RestoreSync(_)
                    )
                });
            }
            Event::SyncRestoreConfirmed { at } => {
                self.sync_restore_confirmed = Some(*at);
                self.issued
                    .retain(|issued| !matches!(issued.key, EffectKey::RelaxSync(_)));
            }
            Event::SyncRestored { .. } => {
                self.sync_relaxed = false;
                self.sync_restore_confirmed = None;
            }
            Event::Transition {
                from,
                to,
                reason,
                detail,
                at,
            } => {
                assert_eq!(
                    *from, self.cluster,
                    "a transition starts where the state is"
                );
                self.previous = Some(*from);
                self.cluster = *to;
                self.since = *at;
                self.reason = Some(*reason);
                self.detail.clone_from(detail);
                self.issued.clear();
                self.promoted_in_state = None;
                self.transitions += 1;
                if *to == ClusterState::Normal {
                    self.attempts = 0;
                    self.accepted_lag_bytes = None;
                    self.log_lost = false;
                }
            }
            Event::Promoting {
                member,
                accepted_lag_bytes,
                ..
            } => {
                self.active = Some(*member);
                self.active_confirmed = false;
                self.promoted_in_state = Some(*member);
                // A promoted database waits for a standby (the agent promotes it so): what it
                // reports from now on says whether one is there.
                self.standby_missing_since = None;
                // A new promotion decision is a new request, whatever became of an earlier one.
                self.issued
                    .retain(|issued| issued.key != EffectKey::Promote(*member));
                if accepted_lag_bytes.is_some() {
                    self.accepted_lag_bytes = None;
                }
                let view = &mut self.members[member.index()];
                view.lag_bytes = 0;
                view.lagging_since = None;
            }
            Event::Issued { id, key, at } => {
                self.apply_issued(*id, *key, *at);
            }
            Event::Finished { id, outcome } => {
                if let Some(issued) = self.issued.iter().find(|issued| issued.id == *id)
                    && let EffectKey::Label(member, role) = issued.key
                {
                    // A call that failed may still have been carried out (a timeout after the
                    // server applied it): the pod's label is then unknown. So is it after a
                    // call that succeeded but was issued before a call to label it active.
                    let active_since = self
                        .issued
                        .iter()
                        .find(|other| other.key == EffectKey::Label(member, Role::Active))
                        .is_some_and(|other| other.id > *id);
                    self.members[member.index()].label =
                        (*outcome == Outcome::Ok && !active_since).then_some(role);
                }
                if let Some(issued) = self.issued.iter_mut().find(|issued| issued.id == *id) {
                    issued.failed = matches!(outcome, Outcome::Failed(_));
                    issued.succeeded = *outcome == Outcome::Ok;
                    issued.error = match outcome {
                        Outcome::Failed(error) => Some(*error),
                        Outcome::Ok => None,
                    };
                }
            }
            Event::AttemptCounted { attempts } => self.attempts = *attempts,
            Event::PodCondemned { member, uid } => {
                self.members[member.index()].condemned_pod = Some(uid.clone())
            }
            Event::ReexamineSeen { token, .. } => self.reexamine_token.clone_from(token),
            Event::SwitchoverSeen { token, .. } => self.switchover_token.clone_from(token),
            Event::LagAccepted { bytes } => self.accepted_lag_bytes = *bytes,
            Event::VolumeAssigned {
                member,
                node,
                generation,
            } => {
                // A new volume: what was asked for an earlier one does not apply to it.
                self.issued.retain(|issued| {
                    !matches!(issued.key, EffectKey::Volume(m) | EffectKey::Bind(m) if m == *member)
                });
                let view = &mut self.members[member.index()];
                view.volume_generation = *generation;
                view.assigned_node = Some(node.clone());
                view.volume_lost = false;
            }
            Event::VolumeReleased { member, .. } => {
                // The released volume is gone: the member needs a new one.
                self.members[member.index()].assigned_node = None;
                self.forget_deleted_nodes();
            }
            Event::ActiveAdopted { member } => {
                self.active = Some(*member);
                self.active_confirmed = true;
                self.log_lost = false;
            }
            Event::Recovered { log_lost, at } => {
                self.issued.clear();
                // A person may have changed a label while the driver was away.
                for view in &mut self.members {
                    view.label = None;
                }
                self.observing_since = *at;
                // Whether a node stayed unavailable while the driver was away is not known: it
                // may have come back and gone again. Its unavailability counts from now, so a
                // restart never makes a node lost sooner than nodeLostTimeout of observation.
                for node in &mut self.nodes {
                    if node.status == NodeStatus::NotReady {
                        node.unavailable_since = Some(*at);
                    }
                }
                if *log_lost {
                    self.log_lost = true;
                    // Whether synchronous commit was relaxed is lost with the log: under
                    // `syncPreferred` the active may acknowledge alone. The standby must earn
                    // its place as a lossless candidate again (`SyncRestored`).
                    self.sync_relaxed = true;
                    self.sync_restore_confirmed = None;
                }
            }
        }
    }

    /// The engine's own action replaced or wipes the member's data (a rebuild issued, a volume
    /// released or assigned): until a report made after the change says otherwise, the member
    /// holds no complete copy, no position, and is not in sync.
    fn forget_data(&mut self, member: MemberId) {
        let view = &mut self.members[member.index()];
        view.report.copy_complete = false;
        view.report.copy = CopyProgress::Copying { percent: 0 };
        view.report.lsn = crate::types::Lsn(0);
        view.report.timeline = crate::input::Timeline::default();
        view.in_sync = false;
        view.lag_bytes = 0;
        view.lagging_since = None;
    }

    fn apply_contact(&mut self, member: MemberId, at: Timestamp, report: &AgentReport, lag: u64) {
        let threshold = self
            .spec
            .as_ref()
            .map_or(u64::MAX, |spec| spec.lag_threshold_bytes);
        let is_active = self.active == Some(member);
        let view = &mut self.members[member.index()];
        view.last_contact = Some(at);
        view.reachable = true;
        view.unreachable_since = None;
        view.contacted_this_pod = true;
        let known_lsn = view.report.lsn;
        view.report = *report;
        if report.process != Process::Running {
            // A database that is not running reports no authoritative position: keep the last
            // one known, which decides who holds the newest data.
            view.report.lsn = known_lsn;
        }
        if report.process == Process::Starting {
            view.starting_since.get_or_insert(at);
        } else {
            view.starting_since = None;
        }
        view.lag_bytes = lag;
        if lag > threshold {
            view.lagging_since.get_or_insert(at);
        } else {
            view.lagging_since = None;
        }
        // Replication `sync` is strict: the active never acknowledges a write its standby has not
        // received. A standby that was in sync when its link broke therefore still holds every
        // acknowledged write; only a connected report says anything new about it.
        if report.replication_connected {
            view.in_sync = report.in_sync;
        }
        if is_active && report.role == Role::Active && report.process == Process::Running {
            self.active_confirmed = true;
            if report.replication_connected {
                self.standby_missing_since = None;
            } else {
                self.standby_missing_since.get_or_insert(at);
            }
        }
    }

    fn apply_pod(&mut self, member: MemberId, pod: Option<&PodObservation>) {
        let view = &mut self.members[member.index()];
        let same_pod = matches!((&view.pod, pod), (Some(old), Some(new)) if old.uid == new.uid);
        if !same_pod {
            // A new pod (or none): its agent has not been contacted yet, and what was asked of
            // the previous pod does not apply to this one.
            view.contacted_this_pod = false;
            view.reachable = false;
            view.unreachable_since = None;
            view.label = None;
            self.issued.retain(|issued| {
                issued.key.member() != Some(member) || !issued.key.concerns_the_pod()
            });
        }
        let view = &mut self.members[member.index()];
        view.pod = pod.cloned();
        if let (Some(condemned), Some(pod)) = (&view.condemned_pod, pod)
            && *condemned != pod.uid
        {
            view.condemned_pod = None;
        }
        if pod.is_none() {
            view.condemned_pod = None;
        }
    }

    /// Whether observing `volume` under `member` means other data than its last report
    /// described: the volume is lost, or another PV is bound.
    pub fn volume_changes_data(&self, member: MemberId, volume: &VolumeObservation) -> bool {
        let view = &self.members[member.index()];
        let other_pv = matches!((&view.pv, &volume.pv), (Some(old), Some(new)) if old != new);
        volume.lost || other_pv
    }

    fn apply_volume(&mut self, member: MemberId, volume: &VolumeObservation) {
        // A lost volume, or another PV under the member, means other data than its last report
        // described: that report no longer counts.
        if self.volume_changes_data(member, volume) {
            // Its last known position stays: it is what the lost copy may have held, which the
            // lag rules compare the other copy with.
            let view = &mut self.members[member.index()];
            view.report.copy_complete = false;
            view.in_sync = false;
        }
        let view = &mut self.members[member.index()];
        view.pvc = volume.pvc.clone();
        view.pv = volume.pv.clone();
        view.volume_lost = volume.lost;
        self.forget_deleted_nodes();
    }

    /// Deleted nodes are forgotten once no member's pod, PV or assigned volume is on them, so
    /// the node table stays bounded by the nodes that exist (and those a member still needs
    /// to know are gone).
    fn forget_deleted_nodes(&mut self) {
        let members = &self.members;
        self.nodes.retain(|node| {
            node.status != NodeStatus::Deleted
                || members.iter().any(|view| {
                    let pod_node = view.pod.as_ref().and_then(|pod| pod.node.as_ref());
                    let pv_node = view.pv.as_ref().map(|(_, node)| node);
                    [pod_node, pv_node, view.assigned_node.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|name| *name == node.name)
                })
        });
        assert!(
            self.nodes.len() <= crate::limits::MAX_NODES,
            "too many nodes tracked"
        );
    }

    fn apply_node(&mut self, node: &NodeName, status: NodeStatus, at: Timestamp) {
        let position = self.nodes.binary_search_by(|view| view.name.cmp(node));
        let index = match position {
            Ok(index) => index,
            Err(index) => {
                let view = NodeView {
                    name: node.clone(),
                    status,
                    unavailable_since: None,
                };
                self.nodes.insert(index, view);
                index
            }
        };
        let view = &mut self.nodes[index];
        view.status = status;
        if status == NodeStatus::Ready {
            view.unavailable_since = None;
        } else {
            view.unavailable_since.get_or_insert(at);
        }
    }

    fn apply_issued(&mut self, id: EffectId, key: EffectKey, at: Timestamp) {
        self.next_effect = self.next_effect.max(id.0.saturating_add(1));
        if let EffectKey::Label(member, Role::Active) = key {
            // From now on the pod may carry the active label, whatever the call's outcome says.
            self.members[member.index()].label = None;
        }
        match self.issued.iter_mut().find(|issued| issued.key == key) {
            Some(issued) => {
                issued.id = id;
                issued.at = at;
                issued.attempts += 1;
                issued.failed = false;
                issued.succeeded = false;
            }
            None => self.issued.push(Issued {
                id,
                key,
                at,
                attempts: 1,
                failed: false,
                succeeded: false,
                error: None,
            }),
        }
        assert!(
            self.issued.len() <= crate::limits::MAX_ISSUED,
            "more effects tracked than there are effect keys"
        );
    }

    /// The node view of `name`, if known.
    pub fn node(&self, name: &NodeName) -> Option<&NodeView> {
        self.nodes
            .binary_search_by(|view| view.name.cmp(name))
            .ok()
            .map(|index| &self.nodes[index])
    }

    /// Whether the member's data is gone: its volume was lost, or the node holding it is deleted
    /// or not ready for `nodeLostTimeout` or longer.
    pub fn data_lost(&self, member: MemberId, now: Timestamp) -> bool {
        let view = self.member(member);
        if view.volume_lost {
            return true;
        }
        // Most of the time every node is ready: no need to look the member's node up.
        if self
            .nodes
            .iter()
            .all(|node| node.status == NodeStatus::Ready)
        {
            return false;
        }
        view.node()
            .and_then(|name| self.node_lost_deadline(name))
            .is_some_and(|deadline| now >= deadline)
    }

    /// Whether the member has been unreachable for at least `unreachableTimeout`, counted from the
    /// first failed poll after its last recorded contact (`Timer::Silent`). That failure comes
    /// after the true last contact, and the recorded contact trails the true one by less than
    /// the contact granularity, which validation requires `unreachableTimeout` to exceed the
    /// agent's lease by: this implies the agent's lease truly expired.
    pub fn contact_expired(&self, member: MemberId, now: Timestamp) -> bool {
        // Never contacted since the engine started observing: the agent may have been polled
        // just before (by a previous driver), so the lease runs from then at the latest.
        self.expired(&Timer::Silent(member), now)
    }

    /// Whether a contact with the member was recorded since the driver last started (or the
    /// cluster was created): what was recorded before a restart says nothing of now.
    pub fn heard_since_start(&self, member: MemberId) -> bool {
        self.member(member)
            .last_contact
            .is_some_and(|at| at >= self.observing_since)
    }

    /// How long after asking `member`'s agent the driver asks it again, given what its answer
    /// left recorded: `pollingInterval`, or `UNREACHABLE_POLL_S` when that is shorter and the member
    /// is not reachable (its last poll failed, or its current pod was never reached).
    pub fn poll_interval_ms(&self, member: MemberId) -> u64 {
        let Some(spec) = self.spec() else {
            return u64::from(crate::config::UNREACHABLE_POLL_S) * 1000;
        };
        let interval = spec.polling_interval_ms();
        if self.member(member).reachable {
            interval
        } else {
            interval.min(u64::from(crate::config::UNREACHABLE_POLL_S) * 1000)
        }
    }

    /// The member's health at `now` (`docs/state-machine.md`, Member health).
    pub fn health(&self, member: MemberId, now: Timestamp) -> Health {
        let view = self.member(member);
        if self.data_lost(member, now) {
            return Health::Lost;
        }
        let Some(pod) = &view.pod else {
            return Health::Gone;
        };
        if !view.reachable {
            if !view.contacted_this_pod {
                return if pod.deleting {
                    Health::Down
                } else {
                    Health::Starting
                };
            }
            return if self.contact_expired(member, now) {
                Health::Down
            } else {
                Health::Unknown
            };
        }
        let report = &view.report;
        match report.process {
            Process::Down | Process::InitFailed => return Health::Down,
            Process::Starting if self.restarting_active_down(member, now) => return Health::Down,
            Process::Starting => return Health::Starting,
            Process::Running => {}
        }
        if self.active == Some(member) {
            return self.active_health(member, report);
        }
        self.standby_health(member, report)
    }

    /// The confirmed active's database restarts for `unreachableTimeout` or longer: it is not
    /// waited on forever, and counts as down.
    fn restarting_active_down(&self, member: MemberId, now: Timestamp) -> bool {
        self.expired(&Timer::Restarting(member), now)
    }

    fn active_health(&self, member: MemberId, report: &AgentReport) -> Health {
        if report.role != Role::Active {
            // Chosen and not yet promoted: starting. Confirmed before and no longer active:
            // the database restarted or was demoted under the engine, and lost its role.
            return if self.active_confirmed {
                Health::Down
            } else {
                Health::Starting
            };
        }
        let has_peer = self.topology() == Some(Topology::MasterSlave);
        if has_peer && !report.replication_connected {
            let peer = self.member(member.peer());
            if peer.reachable && peer.report.process == Process::Running {
                return Health::Degraded;
            }
        }
        Health::Healthy
    }

    fn standby_health(&self, member: MemberId, report: &AgentReport) -> Health {
        match report.role {
            Role::Active => return Health::Degraded,
            Role::None => return Health::Starting,
            Role::Standby => {}
        }
        if !report.copy_complete {
            return Health::CatchingUp;
        }
        if !report.replication_connected {
            return Health::Degraded;
        }
        if let Some(active) = self.active.filter(|active| *active != member) {
            let active_view = self.member(active);
            let active_says_broken = active_view.reachable
                && active_view.report.role == Role::Active
                && !active_view.report.replication_connected;
            if active_says_broken {
                return Health::Degraded;
            }
        }
        if self.member(member).lagging_since.is_some() {
            return Health::CatchingUp;
        }
        Health::Healthy
    }
}
