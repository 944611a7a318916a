//! The effect policy: how an effect is issued (never while hands-off, never before its retry is
//! due, never destroying the newest copy of the data, never labelling a second pod active),
//! whether one issued earlier is still wanted when the driver is about to carry it out, the
//! routing of clients by role labels, and the effects the rules ask for (pod deletion and
//! replacement, promotion, fencing, replicas, volumes, rebuilds).

use super::Ctx;
use crate::effect::{Action, Effect};
use crate::event::{EffectKey, Event, FenceEvidence};
use crate::input::{NodeStatus, Process};
use crate::state::{ClusterState, EngineState};
use crate::timers::Timer;
use crate::types::{MemberId, Role, Timestamp, Topology};

/// Graceful termination granted to a deleted pod.
const POD_GRACE_PERIOD_S: u32 = 30;

impl Ctx<'_> {
    /// Issues `action` under `key`, unless the engine is hands-off or the same key was issued
    /// too recently. Returns whether it was issued. A key names one effect, so the outcome of
    /// every effect is tracked and a failure is retried on its own.
    pub(super) fn issue(&mut self, key: EffectKey, action: Action) -> bool {
        if !self.may_issue(key) {
            return false;
        }
        assert!(
            !self.destroys_newest(&action),
            "{} would destroy the newest copy of the data",
            action.name()
        );
        if let Action::LabelPod {
            member,
            role: Role::Active,
            ..
        } = action
        {
            assert!(
                peer_unlabelled(self, member),
                "{member} labelled active while its peer's pod may carry the label"
            );
        }
        assert!(
            action
                .member()
                .is_none_or(|member| member.0 < self.spec().topology.member_count()),
            "{} names a member outside the topology",
            action.name()
        );
        let id = self.state.next_effect_id();
        assert!(
            id.0 <= crate::limits::MAX_EFFECT_ID,
            "effect id {} beyond the limit",
            id.0
        );
        let at = self.now;
        self.record(Event::Issued { id, key, at });
        self.effects.push(Effect { id, action });
        true
    }

    /// Whether an effect under `key` may be issued now: automation runs and the key is due.
    fn may_issue(&self, key: EffectKey) -> bool {
        !self.hands_off()
            && self
                .state
                .deadline(&Timer::Retry(key))
                .is_none_or(|due| self.now >= due)
    }

    /// Whether the latest effect under `key`, issued in the current state, was carried out.
    pub(super) fn carried_out(&self, key: EffectKey) -> bool {
        self.state
            .issued
            .iter()
            .any(|issued| issued.key == key && issued.succeeded)
    }

    /// Invariant 3: no effect wipes or releases the newest copy, nor the only copy.
    fn destroys_newest(&self, action: &Action) -> bool {
        match action {
            Action::Rebuild { member, from } | Action::Rewind { member, from } => {
                *member == *from || !copy_source_ready(self, *from) || self.is_newest(*member)
            }
            Action::ReleaseVolume { member, .. } => self.is_newest(*member),
            _ => false,
        }
    }

    fn is_newest(&self, member: MemberId) -> bool {
        if nothing_written(self) {
            return false;
        }
        match self.state.cluster {
            ClusterState::WaitingForActive(chosen) => chosen == member,
            _ => self.state.active == Some(member) || self.spec().topology == Topology::Standalone,
        }
    }
}

/// Whether a destructive effect issued earlier still rests on its premise, judged on the state
/// now: the driver asks right before it carries out a pod deletion, a volume release or a
/// rebuild, since observations that arrived after the effect was issued may contradict it (the
/// node came back, the pod was replaced, the source stopped being the active, the other copy went
/// away). Other effects are always still wanted.
pub(crate) fn still_wanted(state: &EngineState, now: Timestamp, action: &Action) -> bool {
    let mut scratch = state.clone();
    let ctx = Ctx::new(&mut scratch, now);
    if ctx.state.spec.is_none() || ctx.hands_off() {
        return !action.checks_premise();
    }
    match action {
        Action::DeletePod {
            member,
            uid,
            grace_period_s,
        } => {
            let same_pod = is_current_pod(&ctx, *member, uid);
            let forced_premise = *grace_period_s > 0
                || (pod_node_unavailable(&ctx, *member) && ctx.state.contact_expired(*member, now));
            same_pod && forced_premise
        }
        Action::ReleaseVolume { member, .. } => {
            let survivor = member.peer();
            let survivor_holds_data = ctx.spec().topology == Topology::MasterSlave
                && !lost(&ctx, survivor)
                && ctx.state.active == Some(survivor);
            lost(&ctx, *member)
                && (survivor_holds_data || nothing_written(&ctx))
                && !ctx.destroys_newest(action)
        }
        Action::Rebuild { .. } | Action::Rewind { .. } => !ctx.destroys_newest(action),
        Action::LabelPod {
            member,
            uid,
            role: Role::Active,
        } => {
            let same_pod = is_current_pod(&ctx, *member, uid);
            same_pod
                && wanted_label(&ctx, *member) == Some(Role::Active)
                && peer_unlabelled(&ctx, *member)
        }
        _ => true,
    }
}

/// Whether the member's pod is still the pod `uid` (an effect's UID precondition).
fn is_current_pod(ctx: &Ctx<'_>, member: MemberId, uid: &crate::types::PodUid) -> bool {
    ctx.state
        .member(member)
        .pod
        .as_ref()
        .is_some_and(|pod| pod.uid == *uid)
}

// ---------------------------------------------------------------------------------------------
// Client routing
// ---------------------------------------------------------------------------------------------

/// Labels each pod with the role clients reach it by: the `-rw` Service selects the pod labelled
/// active, the `-ro` Service the one labelled standby. The fencing rule holds for labels too:
/// a pod is labelled active only once its peer's pod is known not to carry that label (it was
/// removed, or the pod is gone), so no client is ever routed to two actives.
pub(super) fn route_clients(ctx: &mut Ctx<'_>) {
    for member in ctx.spec().topology.members() {
        let view = ctx.state.member(member);
        let Some(pod) = view.pod.as_ref() else {
            continue;
        };
        let Some(role) = wanted_label(ctx, member) else {
            continue;
        };
        if view.label == Some(role) || (role == Role::Active && !peer_unlabelled(ctx, member)) {
            continue;
        }
        let uid = pod.uid.clone();
        ctx.issue(
            EffectKey::Label(member, role),
            Action::LabelPod { member, uid, role },
        );
    }
}

/// The role label the member's pod should carry: active for the engine's active once it
/// confirmed its role, standby for a standby with a complete copy, none otherwise; `None` (no
/// opinion, the label stays) for an active whose promotion is not confirmed yet.
fn wanted_label(ctx: &Ctx<'_>, member: MemberId) -> Option<Role> {
    if ctx.state.active == Some(member) {
        return ctx.state.active_confirmed.then_some(Role::Active);
    }
    let report = &ctx.state.member(member).report;
    let standby = report.role == Role::Standby && report.copy_complete;
    Some(if standby { Role::Standby } else { Role::None })
}

/// Whether no pod but the member's may carry the active label: its peer has no pod, or the
/// peer's pod is known to carry another label.
fn peer_unlabelled(ctx: &Ctx<'_>, member: MemberId) -> bool {
    let peer = ctx.state.member(member.peer());
    peer.pod.is_none() || peer.label.is_some_and(|role| role != Role::Active)
}

// ---------------------------------------------------------------------------------------------
// The effects the rules ask for, and their premises
// ---------------------------------------------------------------------------------------------

/// The member's data is gone: its node is lost or its volume was lost.
pub(super) fn lost(ctx: &Ctx<'_>, member: MemberId) -> bool {
    ctx.state.data_lost(member, ctx.now)
}

/// Asks the world to fence `member`: the agent command, and the pod's deletion.
pub(super) fn fence(ctx: &mut Ctx<'_>, member: MemberId) {
    if ctx.state.member(member).reachable {
        ctx.issue(EffectKey::Fence(member), Action::Fence { member });
    }
    delete_pod(ctx, member);
}

/// Whether the member's pod sits on a node that is not ready or deleted: a graceful deletion
/// never completes there, since no kubelet confirms it.
pub(super) fn pod_node_unavailable(ctx: &Ctx<'_>, member: MemberId) -> bool {
    let pod = ctx.state.member(member).pod.as_ref();
    pod.and_then(|pod| pod.node.as_ref()).is_some_and(|name| {
        ctx.state
            .node(name)
            .is_none_or(|node| node.status != NodeStatus::Ready)
    })
}

/// Deletes the member's pod (UID precondition) so that the StatefulSet recreates it.
///
/// The deletion is graceful, so the pod object stays until its kubelet confirms the process is
/// gone. On a node that is not ready or deleted no kubelet confirms anything: once the member's
/// lease expired (its database accepts no writes by itself), the pod is deleted with force, and
/// that is retried until the object is gone, even if a graceful deletion is pending.
pub(super) fn delete_pod(ctx: &mut Ctx<'_>, member: MemberId) {
    let Some(pod) = ctx.state.member(member).pod.clone() else {
        return;
    };
    let forced = pod_node_unavailable(ctx, member) && ctx.state.contact_expired(member, ctx.now);
    if forced {
        let action = Action::DeletePod {
            member,
            uid: pod.uid,
            grace_period_s: 0,
        };
        ctx.issue(EffectKey::ForceDeletePod(member), action);
    } else if !pod.deleting {
        let action = Action::DeletePod {
            member,
            uid: pod.uid,
            grace_period_s: POD_GRACE_PERIOD_S,
        };
        ctx.issue(EffectKey::DeletePod(member), action);
    }
}

/// Records the promotion decision and asks for it.
pub(super) fn promote(
    ctx: &mut Ctx<'_>,
    member: MemberId,
    fence: FenceEvidence,
    accepted: Option<u64>,
) {
    if ctx.hands_off() {
        return;
    }
    assert!(
        ctx.state.member(member).report.copy_complete,
        "{member} would be promoted with an incomplete copy"
    );
    ctx.record(Event::Promoting {
        member,
        fence,
        accepted_lag_bytes: accepted,
    });
    ctx.issue(EffectKey::Promote(member), Action::Promote { member });
}

/// Re-asks for a promotion that was decided but is not confirmed yet.
pub(super) fn ensure_promoted(ctx: &mut Ctx<'_>) {
    let Some(active) = ctx.state.active else {
        return;
    };
    let view = ctx.state.member(active);
    let waiting = !ctx.state.active_confirmed
        && view.reachable
        && view.report.process == Process::Running
        && view.report.role != Role::Active;
    if waiting {
        ctx.issue(
            EffectKey::Promote(active),
            Action::Promote { member: active },
        );
    }
}

/// Whether the member's database is up and can take a command: its agent answered with the
/// process running, and nothing observed since contradicts it (the pod is running and not being
/// deleted, and its node is not known to be unavailable).
pub(super) fn up(ctx: &Ctx<'_>, member: MemberId) -> bool {
    let view = ctx.state.member(member);
    let Some(pod) = &view.pod else { return false };
    let node_unavailable = pod
        .node
        .as_ref()
        .and_then(|node| ctx.state.node(node))
        .is_some_and(|node| node.status != NodeStatus::Ready);
    view.reachable
        && view.report.process == Process::Running
        && pod.running
        && !pod.deleting
        && !node_unavailable
}

/// Whether `from` may be the source of a copy now: the engine's active, confirmed in its role,
/// up, and reporting the active role since the driver last started. A copy wipes its target
/// first, so it never starts from a source that may not finish it.
pub(super) fn copy_source_ready(ctx: &Ctx<'_>, from: MemberId) -> bool {
    // After a driver restart, a report from before it says nothing of now: the source may have
    // stopped by itself while no one renewed its lease.
    ctx.state.active == Some(from)
        && ctx.state.active_confirmed
        && up(ctx, from)
        && ctx.state.member(from).report.role == Role::Active
        && ctx.state.heard_since_start(from)
        && !lost(ctx, from)
}

/// Gives each member without a volume a local PV on a ready node that does not hold the other
/// member's data, and sees each assigned volume through to a bound PVC.
pub(super) fn provision_volumes(ctx: &mut Ctx<'_>) {
    for member in ctx.spec().topology.members() {
        let view = ctx.state.member(member);
        if view.pv.is_none() && view.assigned_node.is_none() {
            assign_volume(ctx, member);
        }
        complete_volume(ctx, member);
    }
}

/// Level-triggered: while the member's assigned volume is not seen bound, its PV is provisioned
/// (again, until that is carried out), then its PVC pre-bound to it. Both are idempotent, so a
/// failure, or an outcome forgotten at a transition or a restart, only costs a repetition.
fn complete_volume(ctx: &mut Ctx<'_>, member: MemberId) {
    let view = ctx.state.member(member);
    let (Some(node), None) = (view.assigned_node.clone(), &view.pv) else {
        return;
    };
    let generation = view.volume_generation;
    if ctx.carried_out(EffectKey::Volume(member)) {
        let action = Action::BindPvc { member, generation };
        ctx.issue(EffectKey::Bind(member), action);
    } else {
        let action = Action::ProvisionLocalPv {
            member,
            node,
            generation,
        };
        ctx.issue(EffectKey::Volume(member), action);
    }
}

fn assign_volume(ctx: &mut Ctx<'_>, member: MemberId) {
    let peer_node = (ctx.spec().topology == Topology::MasterSlave)
        .then(|| ctx.state.member(member.peer()).node().cloned())
        .flatten();
    let own_node = ctx.state.member(member).node().cloned();
    let candidate = ctx.state.nodes().iter().find(|node| {
        node.status == NodeStatus::Ready
            && Some(&node.name) != peer_node.as_ref()
            && Some(&node.name) != own_node.as_ref()
    });
    let Some(node) = candidate.map(|node| node.name.clone()) else {
        return;
    };
    if ctx.hands_off() {
        return;
    }
    let generation = ctx.state.member(member).volume_generation + 1;
    ctx.record(Event::VolumeAssigned {
        member,
        node,
        generation,
    });
    complete_volume(ctx, member);
}

/// Asks to scale the pods.
pub(super) fn set_replicas(ctx: &mut Ctx<'_>, replicas: u8) {
    ctx.issue(EffectKey::Replicas, Action::SetReplicas { replicas });
}

/// Condemns the member's current pod (once) and deletes it so the StatefulSet recreates it.
pub(super) fn replace_pod(ctx: &mut Ctx<'_>, member: MemberId) {
    let view = ctx.state.member(member);
    let Some(pod) = view.pod.clone() else { return };
    if view.condemned_pod.as_ref() != Some(&pod.uid) {
        ctx.record(Event::PodCondemned {
            member,
            uid: pod.uid.clone(),
        });
    }
    delete_pod(ctx, member);
}

/// Whether the member runs a pod declared broken.
pub(super) fn condemned(ctx: &Ctx<'_>, member: MemberId) -> bool {
    let view = ctx.state.member(member);
    matches!((&view.pod, &view.condemned_pod), (Some(pod), Some(uid)) if pod.uid == *uid)
}

/// Whether no write can have been accepted yet: the cluster is initializing and, as its log
/// shows, no member was ever promoted.
pub(super) fn nothing_written(ctx: &Ctx<'_>) -> bool {
    ctx.state.cluster == ClusterState::Initializing
        && ctx.state.active.is_none()
        && !ctx.state.log_lost
}

/// A lost member: delete its pod (with force on the lost node, once its lease expired), release
/// its volume, and give it a fresh one on another node.
pub(super) fn release_and_reassign(ctx: &mut Ctx<'_>, member: MemberId) {
    delete_pod(ctx, member);
    let view = ctx.state.member(member);
    let has_volume = view.pvc.is_some() || view.pv.is_some();
    if !has_volume {
        ensure_volume(ctx, member);
        return;
    }
    if ctx.may_issue(EffectKey::Release(member)) {
        let generation = view.volume_generation;
        let action = Action::ReleaseVolume {
            member,
            pvc: view.pvc.clone(),
            generation,
        };
        if view.assigned_node.is_some() {
            ctx.record(Event::VolumeReleased { member, generation });
        }
        ctx.issue(EffectKey::Release(member), action);
    }
}

/// Gives the member a volume if it has none (its previous one was released), and sees an
/// assigned one through to a bound PVC.
pub(super) fn ensure_volume(ctx: &mut Ctx<'_>, member: MemberId) {
    let view = ctx.state.member(member);
    // A claim with no volume bound and none assigned needs one too: the StatefulSet recreates a
    // released member's claim at once, before a ready node may be there to place its volume.
    if view.pv.is_none() && view.assigned_node.is_none() {
        assign_volume(ctx, member);
    }
    complete_volume(ctx, member);
}

/// Copies `member` afresh from `from` (whose readiness the caller checked).
pub(super) fn rebuild(ctx: &mut Ctx<'_>, member: MemberId, from: MemberId) {
    ctx.issue(EffectKey::Rebuild(member), Action::Rebuild { member, from });
}

/// Discards `member`'s diverged suffix against `from`'s history (whose readiness the caller
/// checked).
pub(super) fn rewind(ctx: &mut Ctx<'_>, member: MemberId, from: MemberId) {
    ctx.issue(EffectKey::Rewind(member), Action::Rewind { member, from });
}

/// Condemns the member's pod without deleting it yet (the next state deletes it).
pub(super) fn replace_pod_record_only(ctx: &mut Ctx<'_>, member: MemberId) {
    let view = ctx.state.member(member);
    if let Some(pod) = view.pod.clone()
        && view.condemned_pod.as_ref() != Some(&pod.uid)
    {
        ctx.record(Event::PodCondemned {
            member,
            uid: pod.uid,
        });
    }
}
