//! The standalone topology's decisions: one member, no standby, so no failover:
//! a failed member is restarted in place (its local PV pins it to its node), and a lost one
//! leaves nothing to recover.

use super::master_slave::{count_attempt, describe, initializing, stopping, undecided};
use super::policy::{condemned, ensure_promoted, lost, promote, replace_pod, set_replicas, up};
use super::{Ctx, refuse_switchover_token};
use crate::event::{Event, FenceEvidence};
use crate::input::Process;
use crate::state::{ClusterState, Health};
use crate::timers::Timer;
use crate::transitions::Reason;
use crate::types::{MemberId, Role};

const ONLY: MemberId = MemberId::FIRST;

/// Decides one round for a standalone cluster.
pub(super) fn decide(ctx: &mut Ctx<'_>) {
    match ctx.state.cluster {
        ClusterState::Initializing => initializing(ctx),
        ClusterState::Normal => normal(ctx),
        ClusterState::ActiveDown => active_down(ctx),
        ClusterState::Reexamine => reexamine(ctx),
        ClusterState::Stopping => stopping(ctx),
        ClusterState::Starting => starting(ctx),
        _ => {}
    }
    refuse_switchover_token(ctx, "a standalone cluster has no standby");
}

fn normal(ctx: &mut Ctx<'_>) {
    let health = ctx.health(ONLY);
    if health.failed() {
        ctx.transition(
            ClusterState::ActiveDown,
            Reason::ActiveFailed,
            describe(ctx, ONLY),
        );
        return;
    }
    ensure_promoted(ctx);
    // The rolling configuration change of a single instance: restart it on the new
    // configuration (it passes through ActiveDown while its pod is replaced).
    let desired = ctx.spec().config_hash;
    if health == Health::Healthy && ctx.state.member(ONLY).report.config_hash != desired {
        replace_pod(ctx, ONLY);
    }
}

fn active_down(ctx: &mut Ctx<'_>) {
    if lost(ctx, ONLY) {
        let detail = format!("{ONLY}'s data is lost: it was the only copy");
        ctx.transition(ClusterState::Failed, Reason::DataLost, detail);
        return;
    }
    let health = ctx.health(ONLY);
    if health.works() {
        ctx.transition(
            ClusterState::Normal,
            Reason::ActiveRecovered,
            describe(ctx, ONLY),
        );
        return;
    }
    if restart_in_place(ctx) {
        return;
    }
    if health == Health::Gone {
        // No pod: the StatefulSet may stand at zero (a stop, or a scale-up that never landed
        // while the log was lost or failover paused). Its one pod is asked for, level-triggered.
        set_replicas(ctx, 1);
        return;
    }
    if condemned(ctx, ONLY) {
        replace_pod(ctx, ONLY); // a restart in progress
        return;
    }
    // Restarts count failures that the agent reports, not attempts: an agent that does not
    // answer is not a failure (its database may be serving), and a restart in progress is not
    // a second one. The budget is spent when a failure is reported after `maxRestartAttempts`
    // restarts.
    let view = ctx.state.member(ONLY);
    let failure_reported =
        view.reachable && matches!(view.report.process, Process::Down | Process::InitFailed);
    if health != Health::Down || !failure_reported {
        return;
    }
    let attempts = ctx.state.attempts;
    let max = ctx.spec().max_restart_attempts;
    if attempts >= max {
        let detail = format!("{ONLY} failed again after {attempts} restarts");
        ctx.transition(ClusterState::Failed, Reason::RestartsExhausted, detail);
        return;
    }
    count_attempt(ctx);
    replace_pod(ctx, ONLY);
}

/// The member's database is up without the active role (it restarted): promote it again, unless
/// its data is incomplete. Returns whether it acted.
fn restart_in_place(ctx: &mut Ctx<'_>) -> bool {
    if !up(ctx, ONLY) || ctx.state.member(ONLY).report.role == Role::Active {
        return false;
    }
    if !ctx.state.member(ONLY).report.copy_complete {
        let detail = format!("{ONLY} reports an incomplete copy of the data");
        ctx.transition(
            ClusterState::ManualInterventionRequired,
            Reason::IncompleteData,
            detail,
        );
        return true;
    }
    if ctx.state.active == Some(ONLY) && !ctx.state.active_confirmed {
        ensure_promoted(ctx);
    } else {
        promote(ctx, ONLY, FenceEvidence::NoPreviousActive, None);
    }
    true
}

fn starting(ctx: &mut Ctx<'_>) {
    set_replicas(ctx, 1);
    if ctx.state.active.is_none() {
        // No active is known (the log was lost while stopped): what the member holds decides.
        let detail = "no active is known: deriving the cluster's state from the member".to_string();
        ctx.transition(ClusterState::Reexamine, Reason::LogLost, detail);
        return;
    }
    if lost(ctx, ONLY) {
        let detail = format!("{ONLY}'s data is lost: it was the only copy");
        ctx.transition(ClusterState::Failed, Reason::DataLost, detail);
        return;
    }
    if ctx.health(ONLY).works() && ctx.state.active_confirmed {
        ctx.transition(
            ClusterState::Normal,
            Reason::ActiveRecovered,
            describe(ctx, ONLY),
        );
        return;
    }
    if restart_in_place(ctx) {
        return;
    }
    // Its database failed while starting and its container does not restart it: ActiveDown
    // replaces the pod, within the restart budget.
    let view = ctx.state.member(ONLY);
    let failure_reported = view.reachable
        && view.contacted_this_pod
        && matches!(view.report.process, Process::Down | Process::InitFailed);
    if ctx.health(ONLY) == Health::Down && failure_reported {
        let detail = format!("{} while starting", describe(ctx, ONLY));
        ctx.transition(ClusterState::ActiveDown, Reason::ActiveFailed, detail);
    }
}

fn reexamine(ctx: &mut Ctx<'_>) {
    let health = ctx.health(ONLY);
    if undecided(ctx, ONLY) && !ctx.expired(&Timer::StateTimeout) {
        // The pod runs while the engine waits to hear from it (a stop that is over may have
        // left the StatefulSet at zero).
        set_replicas(ctx, 1);
        return;
    }
    let detail = describe(ctx, ONLY);
    if ctx.state.active.is_none() {
        let view = ctx.state.member(ONLY);
        if up(ctx, ONLY) && view.report.role == Role::Active {
            ctx.record(Event::ActiveAdopted { member: ONLY });
        } else if !ctx.state.log_lost {
            let detail = "the cluster never initialized: initializing afresh".to_string();
            ctx.transition(ClusterState::Initializing, Reason::Reexamined, detail);
            return;
        } else {
            // The log is lost and the only member holds the only copy: it is the active.
            ctx.record(Event::ActiveAdopted { member: ONLY });
        }
    }
    if lost(ctx, ONLY) {
        ctx.transition(ClusterState::Failed, Reason::Reexamined, detail);
    } else if health.works() {
        ctx.transition(ClusterState::Normal, Reason::Reexamined, detail);
    } else {
        ctx.transition(ClusterState::ActiveDown, Reason::Reexamined, detail);
    }
}
