//! The rules of each master-slave state. The standalone topology shares some of them
//! (initializing, stopping) and their helpers.

use super::policy::{
    condemned, copy_source_ready, delete_pod, ensure_promoted, ensure_volume, fence, lost,
    nothing_written, pod_node_unavailable, promote, provision_volumes, rebuild,
    release_and_reassign, replace_pod, replace_pod_record_only, rewind, set_replicas, up,
};
use super::{Ctx, fence_rogue_actives, pending_switchover, refuse_switchover_token};
use crate::config::POLL_DEADLINE_S;
use crate::effect::Action;
use crate::event::{EffectKey, Event, FenceEvidence};
use crate::input::{CopyProgress, EffectError, Lineage, NotServing, Process};
use crate::limits::MAX_PROMOTE_ATTEMPTS;
use crate::state::{ClusterState, Guarantee, Health};
use crate::timers::Timer;
use crate::transitions::Reason;
use crate::types::{MemberId, Replication, Role, Topology};

pub(super) fn decide_master_slave(ctx: &mut Ctx<'_>) {
    match ctx.state.cluster {
        ClusterState::Initializing => initializing(ctx),
        ClusterState::Normal => normal(ctx),
        ClusterState::ActiveDown => active_down(ctx),
        ClusterState::StandbyDown => standby_down(ctx),
        ClusterState::StandbyPartiallyStarting => standby_partially_starting(ctx),
        ClusterState::StandbyPartiallyDown => standby_partially_down(ctx),
        ClusterState::BothDown => both_down(ctx),
        ClusterState::WaitingForActive(member) => waiting_for_active(ctx, member),
        ClusterState::Switchover(target) => switchover(ctx, target),
        ClusterState::Reexamine => reexamine(ctx),
        ClusterState::Stopping => stopping(ctx),
        ClusterState::Starting => starting(ctx),
        ClusterState::Stopped | ClusterState::ManualInterventionRequired | ClusterState::Failed => {
        }
    }
    if ctx.state.cluster != ClusterState::Normal {
        refuse_switchover_token(ctx, "the cluster is not Normal");
    }
    synchronous_commit(ctx);
}

/// Under `syncPreferred`, keeps writes flowing while the standby is out, without ever counting
/// it as a lossless failover candidate when it is not:
///
/// - the active reported no standby for `SYNC_RELAX_AFTER_MS`: `SyncRelaxed` is recorded, and
///   only then is the active told to stop waiting (`RelaxSync`);
/// - the standby is back, `Healthy` and in sync: the active is told to wait again
///   (`RestoreSync`); once that is carried out, `SyncRestoreConfirmed` is recorded;
/// - after that, the active reported a position and the standby, later, at least that position:
///   it holds every acknowledged write, and `SyncRestored` is recorded.
///
/// A standby that goes away again before `SyncRestored` relaxes again after the same bound.
fn synchronous_commit(ctx: &mut Ctx<'_>) {
    let serving = matches!(
        ctx.state.cluster,
        ClusterState::Normal
            | ClusterState::StandbyDown
            | ClusterState::StandbyPartiallyStarting
            | ClusterState::StandbyPartiallyDown
    );
    let Some(active) = ctx.state.active else {
        return;
    };
    if ctx.spec().replication != Replication::SyncPreferred
        || ctx.hands_off()
        || !serving
        || !ctx.state.active_confirmed
        || !ctx.health(active).works()
    {
        return;
    }
    let standby = active.peer();
    let view = ctx.state.member(standby);
    // The standby's own report may be newer than the active's: a standby back in sync is not
    // relaxed for.
    let back = ctx.health(standby) == Health::Healthy
        && view.reachable
        && view.report.replication_connected
        && view.report.in_sync;
    if ctx.expired(&Timer::SyncRelax) && !back {
        let at = ctx.now;
        let since = ctx.state.standby_missing_since.unwrap_or(at);
        ctx.record(Event::SyncRelaxed { at });
        ctx.report(Action::EmitEvent {
            warning: true,
            reason: "SyncRelaxed".into(),
            message: format!(
                "{active} has had no standby since {since}: it acknowledges writes without one; \
                 a failover to {} now needs a person until it is back in sync",
                active.peer()
            ),
        });
        ctx.issue(
            EffectKey::RelaxSync(active),
            Action::RelaxSync { member: active },
        );
        return;
    }
    if !ctx.state.sync_relaxed {
        return;
    }
    if let Some(confirmed) = ctx.state.sync_restore_confirmed {
        let (a, s) = (ctx.state.member(active), ctx.state.member(standby));
        // The active's position from a report asked after the confirmation bounds every write it
        // acknowledged before strict waiting resumed; a standby that reported at least that
        // position later holds them all. A contact is stamped when its answer arrives, and a
        // poll is answered within POLL_DEADLINE_S, so one recorded later than that after the
        // confirmation was asked after it.
        let asked_after = confirmed.plus_ms(u64::from(POLL_DEADLINE_S) * 1000);
        let caught_up = a.last_contact.is_some_and(|at| at > asked_after)
            && s.last_contact > a.last_contact
            && s.report.replication_connected
            && s.report.lsn >= a.report.lsn;
        if caught_up {
            let at = ctx.now;
            ctx.record(Event::SyncRestored { at });
            ctx.report(Action::EmitEvent {
                warning: false,
                reason: "SyncRestored".into(),
                message: format!(
                    "{active} waits for {standby} again, and {standby} holds every acknowledged \
                     write"
                ),
            });
        }
        return;
    }
    if ctx.carried_out(EffectKey::RestoreSync(active)) {
        let at = ctx.now;
        ctx.record(Event::SyncRestoreConfirmed { at });
        return;
    }
    if back {
        ctx.issue(
            EffectKey::RestoreSync(active),
            Action::RestoreSync { member: active },
        );
    } else if !ctx.carried_out(EffectKey::RelaxSync(active)) {
        // A new active, or one whose database restarted, waits for a standby again: tell it.
        ctx.issue(
            EffectKey::RelaxSync(active),
            Action::RelaxSync { member: active },
        );
    }
}

pub(super) fn describe(ctx: &Ctx<'_>, member: MemberId) -> String {
    format!("{member} is {}", ctx.health(member).name())
}

/// Evidence that `member` accepts no writes, if there is any.
fn fence_evidence(ctx: &Ctx<'_>, member: MemberId) -> Option<FenceEvidence> {
    let view = ctx.state.member(member);
    match &view.pod {
        None => return Some(FenceEvidence::PodGone),
        Some(_) if view.reachable => {
            let report = &view.report;
            if report.process != Process::Running || report.role != Role::Active {
                return Some(FenceEvidence::AgentConfirmed);
            }
            return None;
        }
        Some(_) => {}
    }
    ctx.state
        .contact_expired(member, ctx.now)
        .then_some(FenceEvidence::LeaseExpired)
}

/// Whether the member's pod is scheduled on another node than the one holding (or chosen for)
/// its volume: after a release and a new volume elsewhere, the old pod stays pinned to the old
/// node until it is deleted.
fn misplaced_pod(ctx: &Ctx<'_>, member: MemberId) -> bool {
    let view = ctx.state.member(member);
    let pod_node = view.pod.as_ref().and_then(|pod| pod.node.as_ref());
    match (pod_node, &view.pv, &view.assigned_node) {
        (Some(pod_node), None, Some(assigned)) => pod_node != assigned,
        (Some(pod_node), Some((_, pv_node)), _) => pod_node != pv_node,
        _ => false,
    }
}

// --- states ----------------------------------------------------------------------------------

pub(super) fn initializing(ctx: &mut Ctx<'_>) {
    if let Some(done) = init_outcome(ctx) {
        let (to, reason, detail) = done;
        ctx.transition(to, reason, detail);
        return;
    }
    let first = MemberId::FIRST;
    let other_complete = ctx.spec().topology == Topology::MasterSlave
        && !lost(ctx, first.peer())
        && ctx.state.member(first.peer()).report.copy_complete;
    if other_complete && ctx.state.active_confirmed && ctx.health(first).failed() {
        // The first active failed once the standby-to-be held a complete copy: the usual
        // failover rules apply, before the cluster ever was Normal.
        let detail = describe(ctx, first);
        ctx.transition(ClusterState::ActiveDown, Reason::ActiveFailed, detail);
        return;
    }
    if lost(ctx, first) && nothing_written(ctx) {
        // No member was ever promoted, so no write was ever accepted: the first member's volume
        // is released and placed on another ready node, and initialization starts over there.
        release_and_reassign(ctx, first);
        return;
    }
    // The other member was copying and has not been heard from since: its copy may have
    // completed. Unknown alone changes nothing: it is waited for (within initTimeout).
    let peer = first.peer();
    let peer_view = ctx.state.member(peer);
    let peer_may_hold_a_copy = ctx.spec().topology == Topology::MasterSlave
        && !lost(ctx, peer)
        && !peer_view.reachable
        && matches!(peer_view.report.copy, CopyProgress::Copying { .. });
    if lost(ctx, first) && !other_complete && peer_may_hold_a_copy {
        return;
    }
    if lost(ctx, first) && !other_complete {
        // The first member's data is the only database there is: without it nothing remains to
        // make a cluster of, and no person can do better.
        let detail = format!("{first}'s data is lost before any other member held a copy");
        ctx.transition(ClusterState::Failed, Reason::AllDataLost, detail);
        return;
    }
    provision_volumes(ctx);
    set_replicas(ctx, ctx.spec().topology.member_count());
    for member in ctx.spec().topology.members() {
        // A database its agent reports down is restarted: its pod is replaced (the volume stays).
        let view = ctx.state.member(member);
        if view.reachable && view.report.process == Process::Down {
            replace_pod(ctx, member);
        }
        // A pod still pinned to the node its volume left is replaced, so that it follows (with
        // force once that node is unavailable and the lease ran out).
        if misplaced_pod(ctx, member) {
            delete_pod(ctx, member);
        }
    }
    if ctx.state.active.is_none() {
        if up(ctx, first) && ctx.state.member(first).report.copy_complete {
            promote(ctx, first, FenceEvidence::NoPreviousActive, None);
        }
        return;
    }
    // The first active restarted and lost its role: it holds the only complete data, so it is
    // promoted again.
    let view = ctx.state.member(first);
    if ctx.state.active_confirmed
        && up(ctx, first)
        && view.report.role == Role::None
        && view.report.copy_complete
    {
        promote(ctx, first, FenceEvidence::NoPreviousActive, None);
        return;
    }
    ensure_promoted(ctx);
    if ctx.spec().topology == Topology::MasterSlave && lost(ctx, first.peer()) {
        // The standby-to-be holds nothing yet: its volume is released and placed on a spare node.
        release_and_reassign(ctx, first.peer());
        return;
    }
    if ctx.spec().topology == Topology::MasterSlave && misplaced_pod(ctx, first.peer()) {
        return; // its pod is being replaced (above): no copy into it meanwhile
    }
    if ctx.spec().topology == Topology::MasterSlave && copy_source_ready(ctx, first) {
        let standby = first.peer();
        let view = ctx.state.member(standby);
        if up(ctx, standby) && (view.report.role == Role::None || copy_failed(ctx, standby)) {
            rebuild(ctx, standby, first);
        }
    }
}

/// Initialization ends: all healthy, an unrecoverable error, or the timeout.
fn init_outcome(ctx: &Ctx<'_>) -> Option<(ClusterState, Reason, String)> {
    let members: Vec<MemberId> = ctx.spec().topology.members().collect();
    for &member in &members {
        let view = ctx.state.member(member);
        if view.reachable && view.report.process == Process::InitFailed {
            let detail = format!("{member} reported an unrecoverable initialization error");
            return Some((ClusterState::Failed, Reason::InitError, detail));
        }
    }
    let healthy = members
        .iter()
        .all(|member| ctx.health(*member) == Health::Healthy);
    if healthy && ctx.state.active_confirmed {
        let detail = "every member is Healthy".to_string();
        return Some((ClusterState::Normal, Reason::Initialized, detail));
    }
    if ctx.expired(&Timer::StateTimeout) {
        let detail = format!(
            "not Normal within initTimeout ({}s)",
            ctx.spec().init_timeout_s
        );
        return Some((ClusterState::Failed, Reason::InitTimeout, detail));
    }
    None
}

/// The pair's roles: (active, standby). Only called where an active exists.
fn pair(ctx: &Ctx<'_>) -> (MemberId, MemberId) {
    let active = ctx.state.active.unwrap_or(MemberId::FIRST);
    (active, active.peer())
}

/// Resume in place: the confirmed active stopped accepting writes by itself (its agent's lease
/// ran out) or its database restarted under it, and it is up again with a complete copy holding
/// at least every position recorded for its peer. No other member was promoted since (it is still
/// the engine's active), so it still holds the newest data and nothing else accepts writes: it is
/// promoted again where it is, and the standby keeps its copy. Returns whether it did.
fn resume_in_place(ctx: &mut Ctx<'_>) -> bool {
    let (active, standby) = pair(ctx);
    if !ctx.state.active_confirmed || ctx.hands_off() {
        return false;
    }
    let view = ctx.state.member(active);
    let report = view.report;
    let self_stopped = matches!(
        report.not_serving,
        Some(NotServing::LeaseExpired | NotServing::Restarted)
    );
    let peer = ctx.state.member(standby).report;
    let newest = peer.lsn.ahead_of(report.lsn) == 0;
    let resumable = self_stopped
        && report.role == Role::None
        && report.copy_complete
        && !lost(ctx, active)
        && up(ctx, active)
        && !condemned(ctx, active)
        && peer.role != Role::Active
        && newest;
    if !resumable {
        return false;
    }
    let why = match report.not_serving {
        Some(NotServing::LeaseExpired) => "stopped accepting writes when its agent's lease ran out",
        _ => "restarted and came back with no role",
    };
    promote(ctx, active, FenceEvidence::NoPreviousActive, None);
    ctx.report(Action::EmitEvent {
        warning: false,
        reason: RESUMED_IN_PLACE.to_owned(),
        message: format!(
            "{active} {why}; it holds the newest data (LSN {}) and no other member was \
             promoted since: it is promoted again in place, {standby} keeps its copy",
            report.lsn.0
        ),
    });
    true
}

/// The Kubernetes event's reason when the active is promoted again in place.
pub(crate) const RESUMED_IN_PLACE: &str = "ResumedInPlace";

/// Common failure checks of the states where the active runs: the active or both failing. The
/// active resumes in place first when it can ([`resume_in_place`]).
fn active_or_both_failed(ctx: &mut Ctx<'_>) -> bool {
    resume_in_place(ctx);
    let (active, standby) = pair(ctx);
    // An active being promoted again in place whose promotion is refused again and again has
    // failed: the failover rules take over (it is fenced: it holds no role).
    if let Some(why) = promotion_given_up(ctx) {
        let detail = format!("{why} (promoting it again in place)");
        ctx.transition(ClusterState::ActiveDown, Reason::ActiveFailed, detail);
        return true;
    }
    let (ha, hs) = (ctx.health(active), ctx.health(standby));
    if ha.failed() && hs.failed() {
        let detail = format!("{} and {}", describe(ctx, active), describe(ctx, standby));
        ctx.transition(ClusterState::BothDown, Reason::BothFailed, detail);
        return true;
    }
    if ha.failed() {
        let detail = describe(ctx, active);
        ctx.transition(ClusterState::ActiveDown, Reason::ActiveFailed, detail);
        return true;
    }
    false
}

fn normal(ctx: &mut Ctx<'_>) {
    if active_or_both_failed(ctx) {
        return;
    }
    let (active, standby) = pair(ctx);
    let hs = ctx.health(standby);
    // Each of these healths rules out the others and the lag timeout below.
    let exit = match hs {
        health if health.failed() => Some((ClusterState::StandbyDown, Reason::StandbyFailed)),
        Health::Degraded => Some((
            ClusterState::StandbyPartiallyDown,
            Reason::ReplicationBroken,
        )),
        Health::Starting => Some((
            ClusterState::StandbyPartiallyStarting,
            Reason::StandbyRestarting,
        )),
        _ => None,
    };
    if let Some((to, reason)) = exit {
        ctx.transition(to, reason, describe(ctx, standby));
        return;
    }
    if hs == Health::CatchingUp && ctx.expired(&Timer::Lagging(standby)) {
        let lag = ctx.state.member(standby).lag_bytes;
        let detail = format!("{standby} is {lag} bytes behind for longer than lagTimeout");
        ctx.transition(
            ClusterState::StandbyPartiallyDown,
            Reason::LagTimeout,
            detail,
        );
        return;
    }
    ensure_promoted(ctx);
    // A planned role swap starts only from a settled pair: the active confirmed in its role.
    let settled = ctx.state.active_confirmed && ctx.health(active) == Health::Healthy;
    if !settled {
        return;
    }
    if requested_switchover(ctx, active, standby) {
        return;
    }
    rolling_change(ctx, active, standby);
}

/// Whether the standby is healthy and holds everything the active wrote (lag 0).
fn caught_up(ctx: &Ctx<'_>, active: MemberId, standby: MemberId) -> bool {
    let view = ctx.state.member(standby);
    // Up too: a standby whose pod is being deleted is no switchover target.
    ctx.health(standby) == Health::Healthy && up(ctx, standby) && view.report.copy_complete && {
        match ctx.state.guarantee() {
            Guarantee::Strict => view.in_sync,
            // A switchover drains the demoted active whatever the mode: level is enough.
            Guarantee::Relaxed | Guarantee::Async => {
                view.lag_bytes == 0 || {
                    ctx.state
                        .member(active)
                        .report
                        .lsn
                        .ahead_of(view.report.lsn)
                        == 0
                }
            }
        }
    }
}

fn requested_switchover(ctx: &mut Ctx<'_>, active: MemberId, standby: MemberId) -> bool {
    let Some(token) = pending_switchover(ctx) else {
        return false;
    };
    let target = ctx
        .spec()
        .switchover
        .as_ref()
        .and_then(|request| request.to)
        .unwrap_or(standby);
    if target == active {
        refuse_switchover_token(ctx, &format!("{target} is already the active"));
        return false;
    }
    if ctx.health(standby) != Health::Healthy || !up(ctx, standby) {
        refuse_switchover_token(
            ctx,
            &format!("{} (it must be Healthy)", describe(ctx, standby)),
        );
        return false;
    }
    ctx.record(Event::SwitchoverSeen {
        token: token.clone(),
        acted: true,
    });
    let detail = format!("the user asked for a switchover to {target} (token {token:?})");
    ctx.transition(
        ClusterState::Switchover(target),
        Reason::SwitchoverRequested,
        detail,
    );
    true
}

/// The rolling configuration change, level-triggered: replace the standby's pod until it runs the desired
/// configuration, then switch over to it, then replace the old active's pod.
fn rolling_change(ctx: &mut Ctx<'_>, active: MemberId, standby: MemberId) {
    let desired = ctx.spec().config_hash;
    let standby_hash = ctx.state.member(standby).report.config_hash;
    let active_hash = ctx.state.member(active).report.config_hash;
    if standby_hash != desired {
        replace_pod(ctx, standby);
        return;
    }
    if active_hash != desired && caught_up(ctx, active, standby) {
        let detail = format!("rolling configuration change: {standby} runs the new configuration");
        ctx.transition(
            ClusterState::Switchover(standby),
            Reason::RollingChange,
            detail,
        );
    }
}

fn active_down(ctx: &mut Ctx<'_>) {
    let (active, standby) = pair(ctx);
    if let Some(promoted) = ctx.state.promoted_in_state {
        promotion_progress(ctx, promoted);
        return;
    }
    let hs = ctx.health(standby);
    if hs.failed() {
        let detail = format!("{} and {}", describe(ctx, active), describe(ctx, standby));
        ctx.transition(ClusterState::BothDown, Reason::BothFailed, detail);
        return;
    }
    let decided = hs.works() || (hs == Health::Starting && up(ctx, standby));
    if !decided {
        // Unknown, or not up yet: hold. The old active may come back first, with its data: it
        // resumes in place, and the promotion is waited for like any other.
        resume_in_place(ctx);
        return;
    }
    match promotable(ctx, active, standby) {
        Ok(accepted) => match fence_evidence(ctx, active) {
            Some(evidence) => promote(ctx, standby, evidence, accepted),
            None => fence(ctx, active),
        },
        Err(why) => {
            if lost(ctx, active) {
                // The active's data is lost: the standby's copy may still hold every
                // acknowledged write (the rule WaitingForActive and BothDown apply too).
                let refused = format!("{why}, and {active}'s data is lost");
                choose_survivor(ctx, active, Reason::NoSafeCandidate, |_| refused);
            } else {
                let detail = format!("{why}: waiting for {active}, which holds the newest data");
                ctx.transition(
                    ClusterState::WaitingForActive(active),
                    Reason::StandbyNotCaughtUp,
                    detail,
                );
            }
        }
    }
}

/// After the promotion was decided: wait for it to be confirmed.
fn promotion_progress(ctx: &mut Ctx<'_>, promoted: MemberId) {
    if promotion_exhausted(ctx) {
        return;
    }
    let old = promoted.peer();
    let health = ctx.health(promoted);
    if health.works() && ctx.state.active_confirmed {
        let detail = format!("{promoted} confirmed the active role; {old} is to be rebuilt");
        ctx.transition(
            ClusterState::StandbyDown,
            Reason::PromotionConfirmed,
            detail,
        );
        return;
    }
    if health.failed() {
        let detail = format!("{} while being promoted", describe(ctx, promoted));
        ctx.transition(ClusterState::BothDown, Reason::BothFailed, detail);
        return;
    }
    ensure_promoted(ctx);
}

/// A promotion asked for [`MAX_PROMOTE_ATTEMPTS`] times whose latest attempt failed with an
/// answer (not a timeout) cannot succeed by being asked again: manual intervention, carrying the
/// agent's error. Returns whether it transitioned.
fn promotion_exhausted(ctx: &mut Ctx<'_>) -> bool {
    let Some(detail) = promotion_given_up(ctx) else {
        return false;
    };
    ctx.transition(
        ClusterState::ManualInterventionRequired,
        Reason::PromotionFailed,
        detail,
    );
    true
}

/// Why the promotion of the engine's unconfirmed active cannot succeed by being asked again, if
/// it cannot: asked [`MAX_PROMOTE_ATTEMPTS`] times, the latest attempt refused with an answer. A
/// command that timed out may not have reached the agent (one that flaps, say): asking again can
/// help, so only an answer that refuses counts towards giving up.
fn promotion_given_up(ctx: &Ctx<'_>) -> Option<String> {
    let active = ctx.state.active.filter(|_| !ctx.state.active_confirmed)?;
    let issued = ctx
        .state
        .issued
        .iter()
        .find(|issued| issued.key == EffectKey::Promote(active))?;
    let timed_out = issued.error == Some(crate::input::EffectError::Timeout);
    if !issued.failed || issued.attempts < MAX_PROMOTE_ATTEMPTS || timed_out {
        return None;
    }
    let error = issued
        .error
        .map_or_else(|| "unknown".to_string(), |error| format!("{error:?}"));
    Some(format!(
        "promoting {active} failed {} times; the last error: {error}",
        issued.attempts
    ))
}

/// The rule "promote only what is caught up". `Ok` carries the lag a person accepted, if the
/// promotion relies on it.
fn promotable(ctx: &Ctx<'_>, active: MemberId, standby: MemberId) -> Result<Option<u64>, String> {
    let view = ctx.state.member(standby);
    if !view.report.copy_complete {
        return Err(format!("{standby}'s copy from the active never completed"));
    }
    // A member that restarted has no role but keeps its data: its copy is a candidate.
    if view.report.role == Role::Active {
        return Err(format!("{standby} claims the active role"));
    }
    let lag = lag_behind(ctx, active, standby);
    let spec = ctx.spec();
    let verdict = match ctx.state.guarantee() {
        Guarantee::Strict if view.in_sync => Ok(None),
        Guarantee::Strict => Err(format!(
            "{standby} was not in sync at the last contact with the active"
        )),
        Guarantee::Relaxed => Err(format!(
            "synchronous commit is relaxed: the active acknowledged writes without {standby}"
        )),
        Guarantee::Async if lag <= spec.max_lag_on_failover_bytes => Ok(None),
        Guarantee::Async => Err(format!(
            "{standby} is {lag} bytes behind, more than maxLagOnFailoverBytes ({})",
            spec.max_lag_on_failover_bytes
        )),
    };
    match (verdict, ctx.state.accepted_lag_bytes) {
        (Err(_), Some(accepted)) if lag <= accepted && lost(ctx, active) => Ok(Some(lag)),
        (verdict, _) => verdict,
    }
}

fn standby_down(ctx: &mut Ctx<'_>) {
    let (active, standby) = pair(ctx);
    if active_or_both_failed(ctx) {
        return;
    }
    ensure_promoted(ctx);
    let attempts = ctx.state.attempts;
    let max = ctx.spec().max_rebuild_attempts;
    if attempts >= max {
        let detail = format!("{standby} was rebuilt {attempts} times without becoming Healthy");
        ctx.transition(
            ClusterState::ManualInterventionRequired,
            Reason::RebuildAttemptsExhausted,
            detail,
        );
        return;
    }
    if !ctx.expired(&Timer::Backoff) {
        return;
    }
    replace_standby(ctx, active, standby);
}

fn replace_standby(ctx: &mut Ctx<'_>, active: MemberId, standby: MemberId) {
    let hs = ctx.health(standby);
    if hs == Health::Lost {
        release_and_reassign(ctx, standby);
        return;
    }
    ensure_volume(ctx, standby);
    if !ctx.state.active_confirmed {
        return;
    }
    if misplaced_pod(ctx, standby) {
        // The member's volume moved to another node: its pod, pinned to the old one, is
        // replaced so that the StatefulSet recreates it (and its PVC) where the volume now is.
        delete_pod(ctx, standby);
        return;
    }
    if pod_node_unavailable(ctx, standby) && !ctx.state.member(standby).contacted_this_pod {
        // A pod pending on a node that is not ready cannot start there, and replacing it again
        // changes nothing: wait for the node to come back or to count as lost.
        return;
    }
    let recovering = matches!(hs, Health::Starting | Health::CatchingUp | Health::Healthy)
        || (hs == Health::Degraded && ctx.state.member(standby).report.role != Role::Active);
    if recovering && !condemned(ctx, standby) {
        let detail = format!(
            "{} (replacing it; {active} is active)",
            describe(ctx, standby)
        );
        ctx.transition(
            ClusterState::StandbyPartiallyStarting,
            Reason::StandbyStarting,
            detail,
        );
        return;
    }
    if matches!(hs, Health::Gone | Health::Unknown) {
        return;
    }
    replace_pod(ctx, standby);
}

/// The exits shared by the states that bring a standby back: the active (or both) failing, the
/// standby `Healthy` again (to `Normal`, for `recovered`), or failed (to `StandbyDown`, counting
/// an attempt when `counted`). Returns whether a transition was taken.
fn standby_settled(ctx: &mut Ctx<'_>, recovered: Reason, counted: bool) -> bool {
    if active_or_both_failed(ctx) {
        return true;
    }
    let (_, standby) = pair(ctx);
    let hs = ctx.health(standby);
    if hs == Health::Healthy {
        ctx.transition(ClusterState::Normal, recovered, describe(ctx, standby));
        return true;
    }
    if hs.failed() {
        if counted {
            count_attempt(ctx);
        }
        let detail = describe(ctx, standby);
        ctx.transition(ClusterState::StandbyDown, Reason::StandbyFailed, detail);
        return true;
    }
    false
}

fn standby_partially_starting(ctx: &mut Ctx<'_>) {
    if standby_settled(ctx, Reason::StandbyRecovered, true) {
        return;
    }
    let (active, standby) = pair(ctx);
    let timeout_s = ctx.spec().standby_start_timeout_s;
    if ctx.expired(&Timer::StateTimeout) {
        count_attempt(ctx);
        replace_pod_record_only(ctx, standby);
        let detail = format!(
            "{} after standbyStartTimeout ({timeout_s}s)",
            describe(ctx, standby)
        );
        ctx.transition(
            ClusterState::StandbyDown,
            Reason::StandbyStartTimeout,
            detail,
        );
        return;
    }
    ensure_promoted(ctx);
    start_replication(ctx, active, standby);
}

/// Whether the member's agent reported, since the member's latest rebuild was issued, that the
/// copy stopped before it completed.
fn copy_failed(ctx: &Ctx<'_>, member: MemberId) -> bool {
    let view = ctx.state.member(member);
    view.report.copy == CopyProgress::Failed && view.reachable
}

pub(super) fn count_attempt(ctx: &mut Ctx<'_>) {
    let attempts = ctx.state.attempts + 1;
    ctx.record(Event::AttemptCounted { attempts });
}

/// Gets a starting standby replicating, at the least cost its copy allows: a copy that is a
/// prefix of the active's history replicates on, one that diverged is rewound, and only one that
/// is incomplete, cannot be placed, or could not be rewound is copied afresh.
fn start_replication(ctx: &mut Ctx<'_>, active: MemberId, standby: MemberId) {
    if !copy_source_ready(ctx, active) || !up(ctx, standby) {
        return;
    }
    let report = ctx.state.member(standby).report;
    let copying = matches!(report.copy, CopyProgress::Copying { .. });
    if copy_failed(ctx, standby) || (report.role == Role::None && !report.copy_complete && !copying)
    {
        // A copy that stopped short is issued again at once. It does not count as a rebuild: a
        // lasting fault (a broken link) would spend the budget in minutes; the state's
        // standbyStartTimeout bounds how long copies may keep failing.
        rebuild(ctx, standby, active);
        return;
    }
    if !report.copy_complete || report.role == Role::Active {
        return; // a copy or a rewind runs; or the old active has not stopped being one yet
    }
    let active_timeline = ctx.state.member(active).report.timeline;
    match report.timeline.lineage(report.lsn, active_timeline) {
        Lineage::Prefix => {
            if report.role == Role::None || !report.replication_connected {
                restart_replication(ctx, standby, active);
            }
        }
        Lineage::Diverged if rewind_refused(ctx, standby) => rebuild(ctx, standby, active),
        Lineage::Diverged => rewind(ctx, standby, active),
        // Without a history to compare, a copy with no role cannot be placed: it is copied
        // afresh. A standby that lost its link is reconnected.
        Lineage::Unknown if report.role == Role::None => rebuild(ctx, standby, active),
        Lineage::Unknown => {
            if !report.replication_connected {
                restart_replication(ctx, standby, active);
            }
        }
    }
}

fn restart_replication(ctx: &mut Ctx<'_>, standby: MemberId, active: MemberId) {
    let action = Action::RestartReplication {
        member: standby,
        from: active,
    };
    ctx.issue(EffectKey::RestartReplication(standby), action);
}

/// Whether the member's agent refused the latest rewind in this state (it cannot rewind, or the
/// rewind failed before it discarded anything): the member is copied afresh instead.
fn rewind_refused(ctx: &Ctx<'_>, member: MemberId) -> bool {
    ctx.state.issued.iter().any(|issued| {
        issued.key == EffectKey::Rewind(member)
            && issued.failed
            && issued.error == Some(EffectError::Rejected)
    })
}

fn standby_partially_down(ctx: &mut Ctx<'_>) {
    if standby_settled(ctx, Reason::ReplicationRestored, false) {
        return;
    }
    ensure_promoted(ctx);
    let (active, standby) = pair(ctx);
    // Replication is restored only from an active that answers, serving in its role: while the
    // active is Unknown, or being promoted again (it resumes in place), the standby's link is not
    // judged, and the standby's copy, which may be needed, is kept.
    if ctx.expired(&Timer::StateTimeout) && ctx.health(active).works() {
        replace_pod_record_only(ctx, standby);
        let detail = format!(
            "{} after unreachableTimeout; rebuilding it",
            describe(ctx, standby)
        );
        ctx.transition(
            ClusterState::StandbyDown,
            Reason::ReplicationNotRestored,
            detail,
        );
        return;
    }
    if up(ctx, standby) && ctx.state.member(standby).report.role != Role::Active {
        let action = Action::RestartReplication {
            member: standby,
            from: active,
        };
        ctx.issue(EffectKey::RestartReplication(standby), action);
    }
}

fn both_down(ctx: &mut Ctx<'_>) {
    match newest(ctx) {
        Newest::Member(member, why) => {
            let detail = format!("{member} holds the newest data: {why}");
            ctx.transition(
                ClusterState::WaitingForActive(member),
                Reason::NewestChosen,
                detail,
            );
        }
        Newest::Unknown(why) => {
            ctx.transition(
                ClusterState::ManualInterventionRequired,
                Reason::NewestUnknown,
                why,
            );
        }
        Newest::NoData => {
            let detail = "both members' data is lost".to_string();
            ctx.transition(ClusterState::Failed, Reason::AllDataLost, detail);
        }
    }
}

enum Newest {
    Member(MemberId, String),
    Unknown(String),
    NoData,
}

/// The rule "who is newest after BothDown".
fn newest(ctx: &Ctx<'_>) -> Newest {
    let Some(active) = ctx.state.active else {
        return Newest::Unknown("the engine never knew an active".into());
    };
    let other = active.peer();
    let (active_lost, other_lost) = (lost(ctx, active), lost(ctx, other));
    if active_lost && other_lost {
        return Newest::NoData;
    }
    if !active_lost {
        let why = if ctx.state.active_confirmed {
            "it was the active last".to_string()
        } else {
            "it was being promoted, caught up, with the previous active fenced".to_string()
        };
        return Newest::Member(active, why);
    }
    if !ctx.state.active_confirmed {
        return Newest::Unknown(format!(
            "{active} was being promoted and its data is lost: whether it accepted writes \
             cannot be told"
        ));
    }
    match survivor_holds_every_write(ctx, active) {
        Ok(why) => Newest::Member(other, format!("{active}'s data is lost and {why}")),
        Err(why) => Newest::Unknown(format!("{active}'s data is lost and {why}")),
    }
}

/// How many bytes `behind`'s recorded position trails `ahead`'s.
fn lag_behind(ctx: &Ctx<'_>, ahead: MemberId, behind: MemberId) -> u64 {
    let ahead = ctx.state.member(ahead).report.lsn;
    ahead.ahead_of(ctx.state.member(behind).report.lsn)
}

/// Whether the peer of `lost_member`, whose data is lost, is known to hold every acknowledged
/// write: `lost_member` is the engine's active, and the peer holds a complete copy, under strict
/// replication (every complete copy holds every acknowledged write), or, under async (with the active confirmed in its role), lags
/// the active's last known position by at most `maxLagOnFailoverBytes`. The one rule both
/// `BothDown` and `WaitingForActive` apply. `Ok` says why, `Err` why not.
fn survivor_holds_every_write(ctx: &Ctx<'_>, lost_member: MemberId) -> Result<String, String> {
    let other = lost_member.peer();
    let unknown = || format!("{other} is not known to hold all acknowledged writes");
    if ctx.state.active != Some(lost_member) || lost(ctx, other) {
        return Err(unknown());
    }
    let view = ctx.state.member(other);
    if !view.report.copy_complete {
        return Err(unknown());
    }
    let spec = ctx.spec();
    match ctx.state.guarantee() {
        // Strict sync: the active acknowledges a write only once its standby has it, and a copy
        // made afresh receives every write while it is made, so a complete copy holds every
        // acknowledged write whether or not it was in sync when last heard from.
        Guarantee::Strict if view.in_sync => Ok(format!("{other} was in sync")),
        Guarantee::Strict => Ok(format!(
            "{other} holds a complete copy, which under strict sync holds every acknowledged write"
        )),
        Guarantee::Relaxed => Err(format!("{} (synchronous commit is relaxed)", unknown())),
        Guarantee::Async if !view.contacted_this_pod || !ctx.state.active_confirmed => {
            Err(unknown())
        }
        Guarantee::Async => {
            let lag = lag_behind(ctx, lost_member, other);
            let why = format!("{other} lags {lag} bytes");
            if lag <= spec.max_lag_on_failover_bytes {
                Ok(why)
            } else {
                Err(why)
            }
        }
    }
}

/// With `lost_member`'s data lost: waits for its peer when the peer holds every acknowledged
/// write, and otherwise asks a person (`refused`, with the reason's detail made from why not).
fn choose_survivor(
    ctx: &mut Ctx<'_>,
    lost_member: MemberId,
    refused: Reason,
    detail: impl FnOnce(String) -> String,
) {
    match survivor_holds_every_write(ctx, lost_member) {
        Ok(holds) => {
            let detail = format!("{lost_member}'s data is lost and {holds}");
            ctx.transition(
                ClusterState::WaitingForActive(lost_member.peer()),
                Reason::NewestChosen,
                detail,
            );
        }
        Err(why) => {
            let detail = detail(why);
            ctx.transition(ClusterState::ManualInterventionRequired, refused, detail);
        }
    }
}

fn waiting_for_active(ctx: &mut Ctx<'_>, chosen: MemberId) {
    if lost(ctx, chosen) && lost(ctx, chosen.peer()) {
        let detail = "both members' data is lost".to_string();
        ctx.transition(ClusterState::Failed, Reason::AllDataLost, detail);
        return;
    }
    if lost(ctx, chosen) {
        // Before giving up, every surviving copy is reconsidered: one that holds every
        // acknowledged write is waited for instead.
        choose_survivor(ctx, chosen, Reason::ChosenLost, |why| {
            format!("{chosen}'s data is lost and {why}")
        });
        return;
    }
    if promotion_exhausted(ctx) {
        return;
    }
    if ctx.expired(&Timer::StateTimeout) {
        let detail = format!("{chosen} did not come up within waitForActiveTimeout");
        ctx.transition(
            ClusterState::ManualInterventionRequired,
            Reason::WaitTimeout,
            detail,
        );
        return;
    }
    let health = ctx.health(chosen);
    if ctx.state.active == Some(chosen) && ctx.state.active_confirmed && health.works() {
        let detail = format!("{chosen} is the active again");
        ctx.transition(ClusterState::StandbyDown, Reason::ActiveRestored, detail);
        return;
    }
    if !up(ctx, chosen) {
        bring_back(ctx, chosen);
        return;
    }
    let promoted = ctx.state.active == Some(chosen) && !ctx.state.active_confirmed;
    if promoted {
        ensure_promoted(ctx);
        return;
    }
    if !ctx.state.member(chosen).report.copy_complete {
        return; // Its copy is incomplete: it is never promoted.
    }
    let other = chosen.peer();
    match fence_evidence(ctx, other) {
        Some(evidence) => promote(ctx, chosen, evidence, None),
        None => fence(ctx, other),
    }
}

/// A member waited for is down and stays down (its container does not restart it, or its
/// agent stays silent): after `unreachableTimeout` in the state, its pod is replaced so that the
/// StatefulSet recreates it. Replacing a pod keeps its volume, so no data is at stake.
fn bring_back(ctx: &mut Ctx<'_>, chosen: MemberId) {
    // A database that is starting makes progress: it is not replaced, however long it takes.
    let view = ctx.state.member(chosen);
    let reported_down = view.reachable && view.report.process == Process::Down;
    let silent = !view.reachable && ctx.state.contact_expired(chosen, ctx.now);
    let down_long = (reported_down || silent)
        && ctx.health(chosen) == Health::Down
        && ctx.expired(&Timer::StateGrace);
    if down_long || condemned(ctx, chosen) {
        replace_pod(ctx, chosen);
    }
}

fn switchover(ctx: &mut Ctx<'_>, target: MemberId) {
    let old = target.peer();
    if ctx.state.active == Some(target) {
        if ctx.state.active_confirmed && ctx.health(target).works() {
            let detail = format!("{target} is the active; {old} rejoins as standby");
            ctx.transition(
                ClusterState::StandbyPartiallyStarting,
                Reason::SwitchoverCompleted,
                detail,
            );
        } else if ctx.health(target).failed() {
            let detail = format!("{} right after its promotion", describe(ctx, target));
            ctx.transition(ClusterState::ActiveDown, Reason::ActiveFailed, detail);
        } else {
            ensure_promoted(ctx);
        }
        return;
    }
    if failed_ignoring_role(ctx, old) {
        ctx.transition(
            ClusterState::ActiveDown,
            Reason::ActiveFailed,
            describe(ctx, old),
        );
        return;
    }
    if !ctx.state.active_confirmed {
        // The old active's own promotion is in flight: its role says nothing about a demotion.
        ensure_promoted(ctx);
        return;
    }
    let timeout_s = ctx.spec().switchover_timeout_s;
    // An old active that stopped answering is Unknown, and one whose database starts again is
    // Starting: that alone changes nothing, and once its lease runs out (or it has been starting
    // for unreachableTimeout) it is Down and the failover rules take over (above).
    let old_view = ctx.state.member(old);
    let old_pending = !old_view.reachable || old_view.report.process == Process::Starting;
    if ctx.expired(&Timer::StateTimeout) && !old_pending {
        let detail = format!("the switchover to {target} did not finish within {timeout_s}s");
        // The old active holds every write: when it can take the role back, that is safe.
        if up(ctx, old) && ctx.state.member(old).report.copy_complete {
            abort_switchover(ctx, old, &detail);
            return;
        }
        ctx.transition(
            ClusterState::ManualInterventionRequired,
            Reason::SwitchoverTimeout,
            detail,
        );
        return;
    }
    let target_view = ctx.state.member(target);
    let target_ok = up(ctx, target)
        && !lost(ctx, target)
        && target_view.report.copy_complete
        && target_view.report.role == Role::Standby;
    if !target_ok {
        let why = format!(
            "{} (it must be up, with a complete copy)",
            describe(ctx, target)
        );
        abort_switchover(ctx, old, &why);
        return;
    }
    let old_view = ctx.state.member(old);
    if !old_view.reachable || old_view.report.process != Process::Running {
        // Unknown, or its database starting again: its position is not final yet. Hold.
        return;
    }
    if old_view.report.role == Role::Active {
        ctx.issue(EffectKey::Demote(old), Action::Demote { member: old });
        return;
    }
    // The old active is demoted: it accepts no writes, and its final LSN is recorded.
    if target_view.report.lsn >= old_view.report.lsn {
        promote(ctx, target, FenceEvidence::AgentConfirmed, None);
    }
}

/// Failed for a reason other than its role: a demoted active is not failed, and neither is one
/// whose database is starting again, until it has been starting for `unreachableTimeout`.
fn failed_ignoring_role(ctx: &Ctx<'_>, member: MemberId) -> bool {
    let view = ctx.state.member(member);
    let process_failed = match view.report.process {
        Process::Running => false,
        Process::Starting => ctx.expired(&Timer::Restarting(member)),
        Process::Down | Process::InitFailed => true,
    };
    lost(ctx, member)
        || view.pod.is_none()
        || (view.reachable && process_failed)
        || (!view.reachable && ctx.state.contact_expired(member, ctx.now))
}

fn abort_switchover(ctx: &mut Ctx<'_>, old: MemberId, why: &str) {
    let detail = format!("{why}: the switchover is aborted, {old} stays the active");
    let view = ctx.state.member(old);
    if view.report.role != Role::Active && view.report.copy_complete {
        promote(ctx, old, FenceEvidence::NoPreviousActive, None);
    }
    ctx.transition(ClusterState::Normal, Reason::SwitchoverAborted, detail);
}

pub(super) fn stopping(ctx: &mut Ctx<'_>) {
    let members: Vec<MemberId> = ctx.spec().topology.members().collect();
    // Stopped rests on the StatefulSet scaled to zero in this state, not on pods merely not seen:
    // a pod created by an earlier scale-up may not have been observed yet.
    if ctx.carried_out(EffectKey::Replicas)
        && members
            .iter()
            .all(|member| ctx.state.member(*member).pod.is_none())
    {
        let detail = "no pod runs; volumes and the service are kept".to_string();
        ctx.transition(ClusterState::Stopped, Reason::AllPodsStopped, detail);
        return;
    }
    if let Some(active) = ctx.state.active {
        let view = ctx.state.member(active);
        if up(ctx, active) && view.report.role == Role::Active {
            ctx.issue(EffectKey::Demote(active), Action::Demote { member: active });
            return;
        }
    }
    set_replicas(ctx, 0);
    // The StatefulSet deletes its pods gracefully; on a node that is not ready or deleted that
    // never completes, so such a pod is deleted with force once its lease expired.
    for member in members {
        if pod_node_unavailable(ctx, member) && ctx.state.contact_expired(member, ctx.now) {
            delete_pod(ctx, member);
        }
    }
}

fn starting(ctx: &mut Ctx<'_>) {
    set_replicas(ctx, ctx.spec().topology.member_count());
    let Some(first) = ctx.state.active else {
        // No active is known (the log was lost, or the cluster never initialized): whom to start
        // is decided from the members' data, never by default.
        let detail =
            "no active is known: deriving who holds the newest data from the members".to_string();
        ctx.transition(ClusterState::Reexamine, Reason::LogLost, detail);
        return;
    };
    if ctx.health(first) != Health::Gone {
        let detail = format!("{first} was the active last: it comes up first");
        ctx.transition(
            ClusterState::WaitingForActive(first),
            Reason::StartingLastActive,
            detail,
        );
    }
}

/// Whether the member's situation is not known yet: unreachable for less than the timeout, not
/// observed, or starting without reporting its data.
pub(super) fn undecided(ctx: &Ctx<'_>, member: MemberId) -> bool {
    match ctx.health(member) {
        Health::Unknown | Health::Gone => true,
        Health::Starting => !up(ctx, member),
        _ => false,
    }
}

fn reexamine(ctx: &mut Ctx<'_>) {
    let members: Vec<MemberId> = ctx.spec().topology.members().collect();
    let undecided = members.iter().any(|member| undecided(ctx, *member));
    if undecided && !ctx.expired(&Timer::StateTimeout) {
        // The pods run while the engine waits to hear from them: after a lost log the
        // StatefulSet may still be scaled to zero by a stop that is over.
        set_replicas(ctx, ctx.spec().topology.member_count());
        return;
    }
    if ctx.state.active.is_none() {
        reexamine_without_history(ctx);
        return;
    }
    if adopt_repair(ctx) {
        return;
    }
    fence_rogue_actives(ctx);
    let (active, standby) = pair(ctx);
    let (ha, hs) = (ctx.health(active), ctx.health(standby));
    let detail = format!("{} and {}", describe(ctx, active), describe(ctx, standby));
    if ha.works() {
        let to = if hs == Health::Healthy {
            ClusterState::Normal
        } else {
            ClusterState::StandbyDown
        };
        ctx.transition(to, Reason::Reexamined, detail);
    } else if hs.works() {
        let lag = ctx
            .state
            .member(active)
            .report
            .lsn
            .ahead_of(ctx.state.member(standby).report.lsn);
        if lost(ctx, active) && ctx.state.previous == Some(ClusterState::ManualInterventionRequired)
        {
            ctx.record(Event::LagAccepted { bytes: Some(lag) });
        }
        ctx.transition(ClusterState::ActiveDown, Reason::Reexamined, detail);
    } else {
        ctx.transition(ClusterState::BothDown, Reason::Reexamined, detail);
    }
}

/// A person's repair: while automation was stopped, a person promoted the other member by hand.
/// When exactly one member, up with a complete copy, claims the active role, it is not the
/// engine's active, and the engine's active is known to be fenced (its pod gone, its agent
/// saying it is not active, or its lease expired), the engine adopts it instead of fencing it.
/// Returns whether it did (and looked again from there).
fn adopt_repair(ctx: &mut Ctx<'_>) -> bool {
    let Some(active) = ctx.state.active else {
        return false;
    };
    let claiming: Vec<MemberId> = ctx
        .spec()
        .topology
        .members()
        .filter(|member| {
            let report = &ctx.state.member(*member).report;
            up(ctx, *member) && report.role == Role::Active && report.copy_complete
        })
        .collect();
    let [member] = claiming[..] else {
        return false;
    };
    if member == active || fence_evidence(ctx, active).is_none() {
        return false;
    }
    ctx.record(Event::ActiveAdopted { member });
    reexamine(ctx);
    true
}

/// Reexamine with no known active: a cluster that never initialized, or a driver that lost
/// its log. The member claiming the active role is adopted; otherwise the member with the
/// highest LSN among complete copies is waited for.
fn reexamine_without_history(ctx: &mut Ctx<'_>) {
    let members: Vec<MemberId> = ctx.spec().topology.members().collect();
    let claiming: Vec<MemberId> = members
        .iter()
        .copied()
        .filter(|member| up(ctx, *member) && ctx.state.member(*member).report.role == Role::Active)
        .collect();
    if let [member] = claiming[..] {
        ctx.record(Event::ActiveAdopted { member });
        reexamine(ctx);
        return;
    }
    if claiming.len() > 1 {
        let detail = "both members claim the active role".to_string();
        ctx.transition(
            ClusterState::ManualInterventionRequired,
            Reason::Reexamined,
            detail,
        );
        return;
    }
    if !ctx.state.log_lost {
        let detail = "the cluster never initialized: initializing afresh".to_string();
        ctx.transition(ClusterState::Initializing, Reason::Reexamined, detail);
        return;
    }
    // Compare positions only when every copy that may survive was reported by a running
    // database: a member that is down, or not heard from, may hold the newest data, and the
    // engine does not guess.
    let surviving: Vec<MemberId> = members
        .iter()
        .copied()
        .filter(|member| !lost(ctx, *member))
        .collect();
    // Under strict sync every complete copy holds every acknowledged write: the active
    // acknowledges a write only once its standby has it, a standby that is down or copied
    // afresh receives nothing (so nothing is acknowledged meanwhile), and a copy made afresh
    // holds nothing until it is complete. Any complete copy that is up will do, so the engine
    // need not wait for the others. Under async a copy may trail, and a lost or silent one may
    // have held writes the others lack: positions are compared once every copy that may survive
    // was reported by a running database, and a person decides when a copy is lost.
    let strict_sync = ctx.state.guarantee() == Guarantee::Strict;
    let all_known = surviving.iter().all(|member| up(ctx, *member));
    let any_complete_up = surviving
        .iter()
        .any(|member| up(ctx, *member) && ctx.state.member(*member).report.copy_complete);
    let decided = all_known || (strict_sync && any_complete_up);
    if !decided && !ctx.expired(&Timer::StateTimeout) {
        // A member whose database stays down is brought back, so that it reports its position.
        for member in surviving {
            if !up(ctx, member) {
                bring_back(ctx, member);
            }
        }
        return;
    }
    let best = surviving
        .iter()
        .copied()
        .filter(|member| ctx.state.member(*member).report.copy_complete)
        .filter(|member| all_known || up(ctx, *member))
        .max_by_key(|member| {
            (
                ctx.state.member(*member).report.lsn,
                std::cmp::Reverse(*member),
            )
        });
    let lost_any = members.iter().any(|member| lost(ctx, *member));
    let holds_every_write = |member: MemberId| {
        !lost_any || (strict_sync && ctx.state.member(member).report.copy_complete)
    };
    match best {
        Some(member)
            if decided
                && holds_every_write(member)
                && ctx.spec().topology == Topology::MasterSlave =>
        {
            let lsn = ctx.state.member(member).report.lsn.0;
            let detail = format!("{member} holds the highest LSN ({lsn}) of the complete copies");
            ctx.transition(
                ClusterState::WaitingForActive(member),
                Reason::Reexamined,
                detail,
            );
        }
        _ => {
            let detail = if lost_any {
                "a member's data is lost, and no survivor is known to hold every acknowledged write"
                    .to_string()
            } else {
                "no member is known to hold the newest complete copy".to_string()
            };
            ctx.transition(
                ClusterState::ManualInterventionRequired,
                Reason::Reexamined,
                detail,
            );
        }
    }
}
