//! The deciding core: one step turns an input into events (applied to the state as they are
//! recorded) and effects.
//!
//! A step has two phases. *Observe* records what changed in the world, and only what matters:
//! a steady member's contact is recorded at most every quarter of `unreachableTimeout`.
//! *Decide* looks at the derived health of the members and the cluster state, and takes at most
//! [`MAX_TRANSITIONS_PER_STEP`] transitions.
//!
//! This module holds the working set of a step ([`Ctx`]), the step itself and the decision's
//! dispatch. The rest lives in:
//!
//! - [`observe`](mod@observe): the observe phase, and the inputs refused at a limit;
//! - [`policy`]: the effect policy: how an effect is issued, whether one issued earlier is still
//!   wanted, client routing, and the effects the rules ask for;
//! - [`master_slave`]: the rules of each master-slave state;
//! - [`standalone`]: the rules of each standalone state.

mod master_slave;
mod observe;
mod policy;
mod standalone;

use crate::config::Spec;
use crate::effect::{Action, Effect, MemberStatus, Status};
use crate::event::{EffectKey, Event};
use crate::input::{Input, Process};
use crate::limits::MAX_TRANSITIONS_PER_STEP;
use crate::state::{ClusterState, EngineState, Health, StateKind};
use crate::timers::Timer;
use crate::transitions::{self, Reason};
use crate::types::{EffectId, MemberId, Role, Timestamp, Topology};

use observe::observe;
use policy::route_clients;

pub(crate) use policy::still_wanted;

/// The id carried by report effects (status and Kubernetes events), whose outcome is not tracked.
pub const REPORT_EFFECT_ID: EffectId = EffectId(0);

/// The working set of one step.
pub(crate) struct Ctx<'a> {
    pub(crate) state: &'a mut EngineState,
    pub(crate) now: Timestamp,
    pub(crate) events: Vec<Event>,
    pub(crate) effects: Vec<Effect>,
}

/// What a step's status looked like, cheap to compare: a status update is emitted when it changes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct StatusKey {
    cluster: ClusterState,
    active: Option<MemberId>,
    health: [Health; 2],
    role: [Role; 2],
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(state: &'a mut EngineState, now: Timestamp) -> Ctx<'a> {
        Ctx {
            state,
            now,
            events: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// Records an event: applies it to the state and keeps it for the log.
    fn record(&mut self, event: Event) {
        self.state.apply(&event);
        self.events.push(event);
    }

    fn spec(&self) -> &Spec {
        self.state
            .spec
            .as_ref()
            .expect("decisions are only taken once the cluster exists")
    }

    fn health(&self, member: MemberId) -> Health {
        self.state.health(member, self.now)
    }

    fn transition(&mut self, to: ClusterState, reason: Reason, detail: String) {
        let from = self.state.cluster;
        assert_ne!(from, to, "a transition changes the state ({reason:?})");
        let topology = self.spec().topology;
        assert!(
            transitions::allows(topology, from.kind(), to.kind(), reason),
            "transition {from} -> {to} ({reason:?}) is not in the {topology:?} table"
        );
        let at = self.now;
        self.record(Event::Transition {
            from,
            to,
            reason,
            detail: detail.clone(),
            at,
        });
        let warning = matches!(
            to.kind(),
            StateKind::ManualInterventionRequired | StateKind::Failed
        );
        let message = format!("was {from}, now {to}: {detail}");
        self.report(Action::EmitEvent {
            warning,
            reason: reason.name().to_owned(),
            message,
        });
    }

    /// Whether effects other than reports are allowed now.
    fn hands_off(&self) -> bool {
        self.state.cluster.is_hands_off() || !self.spec().auto_failover
    }

    /// Emits a report effect (allowed everywhere).
    fn report(&mut self, action: Action) {
        assert!(action.is_report(), "{} is not a report", action.name());
        self.effects.push(Effect {
            id: REPORT_EFFECT_ID,
            action,
        });
    }

    /// Whether `timer` of the timer table has expired now.
    fn expired(&self, timer: &Timer) -> bool {
        self.state.expired(timer, self.now)
    }

    fn status_key(&self) -> StatusKey {
        let health = [self.health(MemberId(0)), self.health(MemberId(1))];
        let role = [
            self.state.members[0].report.role,
            self.state.members[1].report.role,
        ];
        StatusKey {
            cluster: self.state.cluster,
            active: self.state.active,
            health,
            role,
        }
    }

    fn status(&self) -> Status {
        let members = self
            .spec()
            .topology
            .members()
            .map(|member| {
                let view = self.state.member(member);
                MemberStatus {
                    member,
                    role: view.report.role,
                    health: self.health(member),
                    node: view.node().cloned(),
                    lsn: view.report.lsn,
                    config_hash: view.report.config_hash,
                }
            })
            .collect();
        Status {
            state: self.state.cluster,
            previous_state: self.state.previous,
            since: self.state.since,
            reason: self.state.detail.clone(),
            active: self.state.active,
            members,
            seq: self.state.seq.next(),
        }
    }
}

/// Runs one step.
pub(crate) fn step(ctx: &mut Ctx<'_>, input: &Input) {
    let before = ctx.state.spec.is_some().then(|| ctx.status_key());
    observe(ctx, input);
    if ctx.state.spec.is_none() {
        return;
    }
    let mut settled = false;
    for _ in 0..MAX_TRANSITIONS_PER_STEP {
        let transitions = ctx.state.transitions;
        decide(ctx);
        if ctx.state.transitions == transitions {
            settled = true;
            break;
        }
    }
    assert!(
        settled,
        "a step still transitions after {MAX_TRANSITIONS_PER_STEP} transitions (now {})",
        ctx.state.cluster
    );
    if !ctx.hands_off() {
        route_clients(ctx);
    }
    if !ctx.events.is_empty() && before != Some(ctx.status_key()) {
        let status = ctx.status();
        ctx.report(Action::UpdateStatus(Box::new(status)));
    }
}

// ---------------------------------------------------------------------------------------------
// Decide
// ---------------------------------------------------------------------------------------------

fn decide(ctx: &mut Ctx<'_>) {
    if handle_reexamine_token(ctx) || handle_stop(ctx) {
        return;
    }
    if ctx.hands_off() {
        refuse_switchover_token(ctx, "automation is stopped (hands off)");
        return;
    }
    if ctx.state.cluster.kind() != StateKind::Reexamine {
        // Reexamine decides about a member claiming the active role itself: a person's repair
        // is adopted there, not fenced.
        fence_rogue_actives(ctx);
    }
    match ctx.spec().topology {
        Topology::MasterSlave => master_slave::decide_master_slave(ctx),
        Topology::Standalone => standalone::decide(ctx),
    }
}

/// A changed `reexamine` token: acted on only from the hands-off states.
fn handle_reexamine_token(ctx: &mut Ctx<'_>) -> bool {
    if ctx.spec().reexamine == ctx.state.reexamine_token {
        return false;
    }
    let token = ctx.spec().reexamine.clone();
    let acted = ctx.state.cluster.is_hands_off();
    ctx.record(Event::ReexamineSeen {
        token: token.clone(),
        acted,
    });
    if !acted {
        ctx.report(Action::EmitEvent {
            warning: false,
            reason: "ReexamineIgnored".into(),
            message: format!("reexamine {token:?} ignored: automation is running"),
        });
        return false;
    }
    let detail = format!("the user changed spec.reexamine to {token:?}");
    ctx.transition(ClusterState::Reexamine, Reason::ReexamineRequested, detail);
    true
}

/// `spec.stopped` set or cleared. While failover is paused (`autoFailover` false) nothing
/// transitions, a stop included: it is honoured once automation resumes.
fn handle_stop(ctx: &mut Ctx<'_>) -> bool {
    if !ctx.spec().auto_failover {
        return false;
    }
    let stopped = ctx.spec().stopped;
    let kind = ctx.state.cluster.kind();
    let stopping = matches!(kind, StateKind::Stopping | StateKind::Stopped);
    if stopped && !stopping && !ctx.state.cluster.is_hands_off() {
        let detail = "the user set spec.stopped".to_string();
        ctx.transition(ClusterState::Stopping, Reason::StopRequested, detail);
        return true;
    }
    if !stopped && stopping {
        let detail = "the user cleared spec.stopped".to_string();
        ctx.transition(ClusterState::Starting, Reason::StartRequested, detail);
        return true;
    }
    false
}

/// A changed `switchover` token that cannot be acted on is consumed with a warning.
fn refuse_switchover_token(ctx: &mut Ctx<'_>, why: &str) {
    let Some(token) = pending_switchover(ctx) else {
        return;
    };
    ctx.record(Event::SwitchoverSeen {
        token: token.clone(),
        acted: false,
    });
    ctx.report(Action::EmitEvent {
        warning: true,
        reason: "SwitchoverRefused".into(),
        message: format!("switchover {token:?} refused: {why}"),
    });
}

fn pending_switchover(ctx: &Ctx<'_>) -> Option<String> {
    let request = ctx.spec().switchover.as_ref()?;
    (request.token != ctx.state.switchover_token).then(|| request.token.clone())
}

/// Invariant 1 in the world: a member that is not the engine's active but claims the active
/// role is fenced.
fn fence_rogue_actives(ctx: &mut Ctx<'_>) {
    let Some(active) = ctx.state.active else {
        return;
    };
    for member in ctx.spec().topology.members() {
        let view = ctx.state.member(member);
        let claims_active =
            view.report.role == Role::Active && view.report.process == Process::Running;
        if member != active && view.reachable && claims_active {
            ctx.issue(EffectKey::Fence(member), Action::Fence { member });
        }
    }
}
