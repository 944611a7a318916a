//! The payloads of earlier format versions, frozen: their records and snapshots keep decoding
//! after the format moved on.
//!
//! - Version 2 added the agent report's copy progress and the reason a database is not serving,
//!   a member's `starting_since` and an issued effect's last error; a version 1 report decodes
//!   with neither known (`CopyProgress::Idle`, no reason).
//! - Version 3 added the role label effect (`Action::LabelPod`, `EffectKey::Label`), appended
//!   to their enums, so a version 2 record decodes as a version 3 one; a member's view gained
//!   its pod's known `label`, so a version 2 snapshot decodes with the label unknown.
//! - Version 4 added the event `LeaseShortened`, appended to its enum, so a version 3 record
//!   decodes as a version 4 one. Snapshot version 4 added a member's `unreachable_since` and the
//!   state's `lease_floor`; an earlier snapshot decodes with the first unknown (the member's
//!   silence counts from its last recorded contact) and no floor.
//!
//! - Version 5 added the agent report's `timeline`; a version 2 to 4 report decodes with the
//!   timeline unknown (`Timeline::default`), so a copy it describes cannot be placed in the
//!   history and is handled as before timelines were reported. Its events gained the rewind
//!   (`Action::Rewind`, `EffectKey::Rewind`), the relaxing and restoring of synchronous commit
//!   (`Event::SyncRelaxed`, `Event::SyncRestoreConfirmed`, `Event::SyncRestored`,
//!   `Action::RelaxSync`, `Action::RestoreSync`
//!   and their effect keys) and the replication mode `SyncPreferred`, all appended to their
//!   enums. Snapshot version 5 holds the new report in each member's view, and the state's
//!   `standby_missing_since`, `sync_relaxed` and `sync_restore_confirmed` (an earlier snapshot decodes with neither: no
//!   earlier build relaxed synchronous commit).
//!
//! Only the types whose encoding changed are mirrored here; every other type is shared with the
//! current format. The variants must stay in their version 1 order.

use crate::config::Spec;
use crate::effect::Effect;
use crate::event::{self, EffectKey, FenceEvidence};
use crate::input::{self, NodeStatus, Outcome, PodObservation, Process, VolumeObservation};
use crate::record::Record as Current;
use crate::state::{self, ClusterState};
use crate::transitions::Reason;
use crate::types::{
    ConfigHash, EffectId, Lsn, MemberId, NodeName, PodUid, PvName, PvcUid, Role, Seq, Timestamp,
};
use serde::Deserialize;

/// A record of version 1 (`Record<ReportV1>`) or of versions 2 to 4 (`Record<ReportV4>`).
#[derive(Deserialize)]
pub(crate) struct Record<R> {
    seq: Seq,
    at: Timestamp,
    input: Input<R>,
    events: Vec<Event<R>>,
    effects: Vec<Effect>,
}

/// A version 1 agent report.
#[derive(Clone, Copy, Deserialize)]
pub(crate) struct ReportV1 {
    process: Process,
    role: Role,
    lsn: Lsn,
    replication_connected: bool,
    in_sync: bool,
    copy_complete: bool,
    config_hash: ConfigHash,
}

/// A version 2 to 4 agent report: the current one but its `timeline`.
#[derive(Clone, Copy, Deserialize)]
pub(crate) struct ReportV4 {
    process: Process,
    role: Role,
    lsn: Lsn,
    replication_connected: bool,
    in_sync: bool,
    copy_complete: bool,
    config_hash: ConfigHash,
    copy: input::CopyProgress,
    not_serving: Option<input::NotServing>,
}

#[derive(Deserialize)]
enum Poll<R> {
    Unreachable,
    Report(R),
}

#[derive(Deserialize)]
enum Input<R> {
    Agent {
        member: MemberId,
        poll: Poll<R>,
    },
    Pod {
        member: MemberId,
        pod: Option<PodObservation>,
    },
    Volume {
        member: MemberId,
        volume: VolumeObservation,
    },
    Node {
        node: NodeName,
        status: NodeStatus,
    },
    Spec(Spec),
    Timer,
    EffectFinished {
        id: EffectId,
        outcome: Outcome,
    },
    Recovered {
        log_lost: bool,
    },
}

#[derive(Deserialize)]
enum Event<R> {
    Created {
        spec: Spec,
        at: Timestamp,
    },
    SpecChanged {
        spec: Spec,
    },
    SpecRejected {
        field: String,
        message: String,
    },
    Contact {
        member: MemberId,
        at: Timestamp,
        report: R,
        lag_bytes: u64,
    },
    Unreachable {
        member: MemberId,
        at: Timestamp,
    },
    PodObserved {
        member: MemberId,
        pod: Option<PodObservation>,
    },
    VolumeObserved {
        member: MemberId,
        volume: VolumeObservation,
    },
    NodeObserved {
        node: NodeName,
        status: NodeStatus,
        at: Timestamp,
    },
    Transition {
        from: ClusterState,
        to: ClusterState,
        reason: Reason,
        detail: String,
        at: Timestamp,
    },
    Promoting {
        member: MemberId,
        fence: FenceEvidence,
        accepted_lag_bytes: Option<u64>,
    },
    Issued {
        id: EffectId,
        key: EffectKey,
        at: Timestamp,
    },
    Finished {
        id: EffectId,
        outcome: Outcome,
    },
    AttemptCounted {
        attempts: u32,
    },
    PodCondemned {
        member: MemberId,
        uid: PodUid,
    },
    ReexamineSeen {
        token: String,
        acted: bool,
    },
    SwitchoverSeen {
        token: String,
        acted: bool,
    },
    LagAccepted {
        bytes: Option<u64>,
    },
    VolumeAssigned {
        member: MemberId,
        node: NodeName,
        generation: u32,
    },
    VolumeReleased {
        member: MemberId,
        generation: u32,
    },
    ActiveAdopted {
        member: MemberId,
    },
    Recovered {
        log_lost: bool,
        at: Timestamp,
    },
    InputRefused {
        input: String,
        reason: String,
    },
    LeaseShortened {
        until: Timestamp,
    },
}

impl From<ReportV1> for input::AgentReport {
    fn from(v1: ReportV1) -> input::AgentReport {
        input::AgentReport {
            process: v1.process,
            role: v1.role,
            lsn: v1.lsn,
            replication_connected: v1.replication_connected,
            in_sync: v1.in_sync,
            copy_complete: v1.copy_complete,
            config_hash: v1.config_hash,
            copy: input::CopyProgress::Idle,
            not_serving: None,
            timeline: input::Timeline::default(),
        }
    }
}

impl From<ReportV4> for input::AgentReport {
    fn from(v4: ReportV4) -> input::AgentReport {
        input::AgentReport {
            process: v4.process,
            role: v4.role,
            lsn: v4.lsn,
            replication_connected: v4.replication_connected,
            in_sync: v4.in_sync,
            copy_complete: v4.copy_complete,
            config_hash: v4.config_hash,
            copy: v4.copy,
            not_serving: v4.not_serving,
            timeline: input::Timeline::default(),
        }
    }
}

impl<R: Into<input::AgentReport>> From<Input<R>> for input::Input {
    fn from(v1: Input<R>) -> input::Input {
        use input::Input as I;
        match v1 {
            Input::Agent { member, poll } => I::Agent {
                member,
                poll: match poll {
                    Poll::Unreachable => input::Poll::Unreachable,
                    Poll::Report(report) => input::Poll::Report(report.into()),
                },
            },
            Input::Pod { member, pod } => I::Pod { member, pod },
            Input::Volume { member, volume } => I::Volume { member, volume },
            Input::Node { node, status } => I::Node { node, status },
            Input::Spec(spec) => I::Spec(spec),
            Input::Timer => I::Timer,
            Input::EffectFinished { id, outcome } => I::EffectFinished { id, outcome },
            Input::Recovered { log_lost } => I::Recovered { log_lost },
        }
    }
}

impl<R: Into<input::AgentReport>> From<Event<R>> for event::Event {
    fn from(v1: Event<R>) -> event::Event {
        use event::Event as E;
        match v1 {
            Event::Created { spec, at } => E::Created { spec, at },
            Event::SpecChanged { spec } => E::SpecChanged { spec },
            Event::SpecRejected { field, message } => E::SpecRejected { field, message },
            Event::Contact {
                member,
                at,
                report,
                lag_bytes,
            } => E::Contact {
                member,
                at,
                report: report.into(),
                lag_bytes,
            },
            Event::Unreachable { member, at } => E::Unreachable { member, at },
            Event::PodObserved { member, pod } => E::PodObserved { member, pod },
            Event::VolumeObserved { member, volume } => E::VolumeObserved { member, volume },
            Event::NodeObserved { node, status, at } => E::NodeObserved { node, status, at },
            Event::Transition {
                from,
                to,
                reason,
                detail,
                at,
            } => E::Transition {
                from,
                to,
                reason,
                detail,
                at,
            },
            Event::Promoting {
                member,
                fence,
                accepted_lag_bytes,
            } => E::Promoting {
                member,
                fence,
                accepted_lag_bytes,
            },
            Event::Issued { id, key, at } => E::Issued { id, key, at },
            Event::Finished { id, outcome } => E::Finished { id, outcome },
            Event::AttemptCounted { attempts } => E::AttemptCounted { attempts },
            Event::PodCondemned { member, uid } => E::PodCondemned { member, uid },
            Event::ReexamineSeen { token, acted } => E::ReexamineSeen { token, acted },
            Event::SwitchoverSeen { token, acted } => E::SwitchoverSeen { token, acted },
            Event::LagAccepted { bytes } => E::LagAccepted { bytes },
            Event::VolumeAssigned {
                member,
                node,
                generation,
            } => E::VolumeAssigned {
                member,
                node,
                generation,
            },
            Event::VolumeReleased { member, generation } => {
                E::VolumeReleased { member, generation }
            }
            Event::ActiveAdopted { member } => E::ActiveAdopted { member },
            Event::Recovered { log_lost, at } => E::Recovered { log_lost, at },
            Event::InputRefused { input, reason } => E::InputRefused { input, reason },
            Event::LeaseShortened { until } => E::LeaseShortened { until },
        }
    }
}

impl<R: Into<input::AgentReport>> From<Record<R>> for Current {
    fn from(v1: Record<R>) -> Current {
        Current {
            seq: v1.seq,
            at: v1.at,
            input: v1.input.into(),
            events: v1.events.into_iter().map(Into::into).collect(),
            effects: v1.effects,
        }
    }
}

/// A snapshot of versions 1 to 4: the state before the agent report gained its version 2 fields
/// and a member's view gained `starting_since` (version 1, `StateV1`), before a member's view
/// gained its pod's `label` (version 2), `unreachable_since` (version 3), and the state its
/// `lease_floor` (before version 4, `F = Absent`), and before the version 5 report and
/// synchronous-commit fields.
#[derive(Deserialize)]
pub(crate) struct EngineState<M, I, F> {
    seq: Seq,
    spec: Option<Spec>,
    cluster: ClusterState,
    previous: Option<ClusterState>,
    since: Timestamp,
    reason: Option<Reason>,
    detail: String,
    active: Option<MemberId>,
    active_confirmed: bool,
    accepted_lag_bytes: Option<u64>,
    members: [M; 2],
    nodes: Vec<state::NodeView>,
    issued: Vec<I>,
    next_effect: u64,
    attempts: u32,
    reexamine_token: String,
    switchover_token: String,
    log_lost: bool,
    transitions: u64,
    observing_since: Timestamp,
    promoted_in_state: Option<MemberId>,
    lease_floor: F,
}

/// A field a version did not have: it takes no byte of the payload, and decodes as the field's
/// default.
#[derive(Clone, Copy, Deserialize)]
pub(crate) struct Absent;

/// A field's value as a later version holds it: its own when the version had it, else the default.
pub(crate) trait Field<T> {
    fn value(self) -> T;
}

impl<T: Default> Field<T> for Absent {
    fn value(self) -> T {
        T::default()
    }
}

impl Field<Timestamp> for Timestamp {
    fn value(self) -> Timestamp {
        self
    }
}

impl Field<Option<Timestamp>> for Option<Timestamp> {
    fn value(self) -> Option<Timestamp> {
        self
    }
}

#[derive(Deserialize)]
pub(crate) struct Issued {
    id: EffectId,
    key: EffectKey,
    at: Timestamp,
    attempts: u32,
    failed: bool,
    succeeded: bool,
}

impl From<Issued> for state::Issued {
    fn from(v1: Issued) -> state::Issued {
        state::Issued {
            id: v1.id,
            key: v1.key,
            at: v1.at,
            attempts: v1.attempts,
            failed: v1.failed,
            succeeded: v1.succeeded,
            error: None,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct MemberView {
    last_contact: Option<Timestamp>,
    reachable: bool,
    contacted_this_pod: bool,
    report: ReportV1,
    lag_bytes: u64,
    lagging_since: Option<Timestamp>,
    in_sync: bool,
    pod: Option<PodObservation>,
    condemned_pod: Option<PodUid>,
    pvc: Option<PvcUid>,
    pv: Option<(PvName, NodeName)>,
    volume_lost: bool,
    volume_generation: u32,
    assigned_node: Option<NodeName>,
}

impl From<MemberView> for state::MemberView {
    fn from(v1: MemberView) -> state::MemberView {
        // A version 1 state recorded when a database started, but not since when: the member
        // counts as starting from its last contact.
        let starting = v1.report.process == Process::Starting;
        state::MemberView {
            last_contact: v1.last_contact,
            reachable: v1.reachable,
            unreachable_since: None,
            contacted_this_pod: v1.contacted_this_pod,
            report: v1.report.into(),
            lag_bytes: v1.lag_bytes,
            lagging_since: v1.lagging_since,
            in_sync: v1.in_sync,
            pod: v1.pod,
            condemned_pod: v1.condemned_pod,
            pvc: v1.pvc,
            pv: v1.pv,
            volume_lost: v1.volume_lost,
            volume_generation: v1.volume_generation,
            assigned_node: v1.assigned_node,
            starting_since: v1.last_contact.filter(|_| starting),
            label: None,
        }
    }
}

/// A version 2 member view: the current one but the pod's `label`.
#[derive(Deserialize)]
pub(crate) struct MemberViewV2 {
    last_contact: Option<Timestamp>,
    reachable: bool,
    contacted_this_pod: bool,
    report: ReportV4,
    lag_bytes: u64,
    lagging_since: Option<Timestamp>,
    in_sync: bool,
    pod: Option<PodObservation>,
    condemned_pod: Option<PodUid>,
    pvc: Option<PvcUid>,
    pv: Option<(PvName, NodeName)>,
    volume_lost: bool,
    volume_generation: u32,
    assigned_node: Option<NodeName>,
    starting_since: Option<Timestamp>,
}

impl From<MemberViewV2> for state::MemberView {
    fn from(v2: MemberViewV2) -> state::MemberView {
        state::MemberView {
            last_contact: v2.last_contact,
            reachable: v2.reachable,
            unreachable_since: None,
            contacted_this_pod: v2.contacted_this_pod,
            report: v2.report.into(),
            lag_bytes: v2.lag_bytes,
            lagging_since: v2.lagging_since,
            in_sync: v2.in_sync,
            pod: v2.pod,
            condemned_pod: v2.condemned_pod,
            pvc: v2.pvc,
            pv: v2.pv,
            volume_lost: v2.volume_lost,
            volume_generation: v2.volume_generation,
            assigned_node: v2.assigned_node,
            starting_since: v2.starting_since,
            label: None,
        }
    }
}

/// A version 3 member view (`U = Absent`: the current one but `unreachable_since`, so its
/// silence counts from its last recorded contact, as version 3 counted it), or a version 4 one
/// (`U = Option<Timestamp>`); both with a version 4 report.
#[derive(Deserialize)]
pub(crate) struct MemberViewV3<U> {
    last_contact: Option<Timestamp>,
    reachable: bool,
    unreachable_since: U,
    contacted_this_pod: bool,
    report: ReportV4,
    lag_bytes: u64,
    lagging_since: Option<Timestamp>,
    in_sync: bool,
    pod: Option<PodObservation>,
    condemned_pod: Option<PodUid>,
    pvc: Option<PvcUid>,
    pv: Option<(PvName, NodeName)>,
    volume_lost: bool,
    volume_generation: u32,
    assigned_node: Option<NodeName>,
    starting_since: Option<Timestamp>,
    label: Option<Role>,
}

impl<U: Field<Option<Timestamp>>> From<MemberViewV3<U>> for state::MemberView {
    fn from(v3: MemberViewV3<U>) -> state::MemberView {
        state::MemberView {
            last_contact: v3.last_contact,
            reachable: v3.reachable,
            unreachable_since: v3.unreachable_since.value(),
            contacted_this_pod: v3.contacted_this_pod,
            report: v3.report.into(),
            lag_bytes: v3.lag_bytes,
            lagging_since: v3.lagging_since,
            in_sync: v3.in_sync,
            pod: v3.pod,
            condemned_pod: v3.condemned_pod,
            pvc: v3.pvc,
            pv: v3.pv,
            volume_lost: v3.volume_lost,
            volume_generation: v3.volume_generation,
            assigned_node: v3.assigned_node,
            starting_since: v3.starting_since,
            label: v3.label,
        }
    }
}

/// A version 1 snapshot.
pub(crate) type StateV1 = EngineState<MemberView, Issued, Absent>;

/// A version 2 snapshot.
pub(crate) type StateV2 = EngineState<MemberViewV2, state::Issued, Absent>;

/// A version 3 snapshot.
pub(crate) type StateV3 = EngineState<MemberViewV3<Absent>, state::Issued, Absent>;

/// A version 4 snapshot.
pub(crate) type StateV4 = EngineState<MemberViewV3<Option<Timestamp>>, state::Issued, Timestamp>;

impl<M, I, F> From<EngineState<M, I, F>> for state::EngineState
where
    M: Into<state::MemberView>,
    I: Into<state::Issued>,
    F: Field<Timestamp>,
{
    fn from(v1: EngineState<M, I, F>) -> state::EngineState {
        let [first, second] = v1.members;
        state::EngineState {
            seq: v1.seq,
            spec: v1.spec,
            cluster: v1.cluster,
            previous: v1.previous,
            since: v1.since,
            reason: v1.reason,
            detail: v1.detail,
            active: v1.active,
            active_confirmed: v1.active_confirmed,
            accepted_lag_bytes: v1.accepted_lag_bytes,
            members: [first.into(), second.into()],
            nodes: v1.nodes,
            issued: v1.issued.into_iter().map(Into::into).collect(),
            next_effect: v1.next_effect,
            attempts: v1.attempts,
            reexamine_token: v1.reexamine_token,
            switchover_token: v1.switchover_token,
            log_lost: v1.log_lost,
            transitions: v1.transitions,
            observing_since: v1.observing_since,
            promoted_in_state: v1.promoted_in_state,
            lease_floor: v1.lease_floor.value(),
            standby_missing_since: None,
            sync_relaxed: false,
            sync_restore_confirmed: None,
        }
    }
}
