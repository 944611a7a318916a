//! The observe phase: records what changed in the world, and only what matters, and refuses
//! an input that reaches a limit.

use super::Ctx;
use crate::config::Spec;
use crate::effect::Action;
use crate::event::Event;
use crate::input::{AgentReport, Input, NodeStatus, PodObservation, Poll, VolumeObservation};
use crate::limits::{MAX_NAME_BYTES, MAX_NODES};
use crate::state::{ClusterState, EngineState, StateKind};
use crate::transitions::Reason;
use crate::types::{MemberId, NodeName, Topology};

/// Why an input is refused, if it reaches a limit ([`crate::limits`]): names and tokens too long
/// to be Kubernetes names, or one node more than the engine keeps track of.
fn refusal(state: &EngineState, input: &Input) -> Option<String> {
    let too_long = |what: &str, name: &str| {
        (name.len() > MAX_NAME_BYTES)
            .then(|| format!("{what} of {} bytes, more than {MAX_NAME_BYTES}", name.len()))
    };
    match input {
        Input::Spec(spec) => too_long("the reexamine token", &spec.reexamine).or_else(|| {
            let request = spec.switchover.as_ref()?;
            too_long("the switchover token", &request.token)
        }),
        Input::Node { node, .. } => too_long("a node name", &node.0).or_else(|| {
            let new = state.node(node).is_none();
            (new && state.nodes.len() >= MAX_NODES)
                .then(|| format!("node {node}: the engine tracks at most {MAX_NODES} nodes"))
        }),
        Input::Pod { pod: Some(pod), .. } => too_long("a pod UID", &pod.uid.0).or_else(|| {
            let node = pod.node.as_ref()?;
            too_long("a node name", &node.0)
        }),
        Input::Volume { volume, .. } => {
            let pvc = volume
                .pvc
                .as_ref()
                .and_then(|uid| too_long("a PVC UID", &uid.0));
            let pv = volume.pv.as_ref().and_then(|(name, node)| {
                too_long("a PV name", &name.0).or_else(|| too_long("a node name", &node.0))
            });
            pvc.or(pv)
        }
        _ => None,
    }
}

pub(super) fn observe(ctx: &mut Ctx<'_>, input: &Input) {
    if let Some(reason) = refusal(ctx.state, input) {
        let kind = input.kind().to_string();
        ctx.record(Event::InputRefused {
            input: kind.clone(),
            reason: reason.clone(),
        });
        ctx.report(Action::EmitEvent {
            warning: true,
            reason: "InputRefused".into(),
            message: format!("{kind} refused: {reason}"),
        });
        return;
    }
    match input {
        Input::Spec(spec) => observe_spec(ctx, spec),
        Input::Agent { member, poll } => {
            if !is_member(ctx.state, *member) {
                return;
            }
            match poll {
                Poll::Unreachable => {
                    if ctx.state.member(*member).reachable {
                        let at = ctx.now;
                        ctx.record(Event::Unreachable {
                            member: *member,
                            at,
                        });
                    }
                }
                Poll::Report(report) => observe_report(ctx, *member, report),
            }
        }
        Input::Pod { member, pod } => observe_pod(ctx, *member, pod.as_ref()),
        Input::Volume { member, volume } => observe_volume(ctx, *member, volume),
        Input::Node { node, status } => observe_node(ctx, node, *status),
        Input::Timer => {}
        Input::EffectFinished { id, outcome } => {
            // Only the latest issue of a key is tracked: outcomes of older ones are stale.
            let tracked = ctx.state.issued.iter().any(|issued| issued.id == *id);
            if tracked {
                ctx.record(Event::Finished {
                    id: *id,
                    outcome: *outcome,
                });
            }
        }
        Input::Recovered { log_lost } => {
            let at = ctx.now;
            ctx.record(Event::Recovered {
                log_lost: *log_lost,
                at,
            });
        }
    }
}

fn is_member(state: &EngineState, member: MemberId) -> bool {
    let count = state.topology().map_or(2, Topology::member_count);
    member.0 < count
}

fn observe_spec(ctx: &mut Ctx<'_>, spec: &Spec) {
    let verdict = match &ctx.state.spec {
        None => spec.validate(),
        Some(previous) if previous == spec => return,
        Some(previous) => spec.validate_change(previous),
    };
    if let Err(error) = verdict {
        let field = error.field.to_string();
        ctx.record(Event::SpecRejected {
            field,
            message: error.message.clone(),
        });
        ctx.report(Action::EmitEvent {
            warning: true,
            reason: "SpecRejected".into(),
            message: error.to_string(),
        });
        return;
    }
    if let Some(previous) = ctx.state.spec.as_ref() {
        // A shorter lease binds an agent only once a poll gives it: until the previous one has
        // surely run out, no silence proves an agent stopped.
        let shortened = match (previous.agent_lease(), spec.agent_lease()) {
            (Some(before), Some(after)) if after < before => Some(before),
            (Some(before), None) => Some(before),
            _ => None,
        };
        ctx.record(Event::SpecChanged { spec: spec.clone() });
        if let Some(before) = shortened {
            let seconds = u64::from(before) + u64::from(crate::config::POLL_DEADLINE_S);
            let until = ctx.now.plus_ms(seconds * 1000);
            ctx.record(Event::LeaseShortened { until });
        }
        return;
    }
    let at = ctx.now;
    ctx.record(Event::Created {
        spec: spec.clone(),
        at,
    });
    if ctx.state.log_lost {
        let detail = "recovered without its log: deriving the cluster's state from observation";
        ctx.transition(ClusterState::Reexamine, Reason::LogLost, detail.into());
    }
}

/// The states in which LSN movements matter to a decision, so every change is recorded.
fn lsn_sensitive(cluster: ClusterState) -> bool {
    matches!(
        cluster.kind(),
        StateKind::ActiveDown
            | StateKind::BothDown
            | StateKind::WaitingForActive
            | StateKind::Switchover
            | StateKind::Reexamine
            | StateKind::Stopping
            | StateKind::Starting
    )
}

fn observe_report(ctx: &mut Ctx<'_>, member: MemberId, report: &AgentReport) {
    let state = &*ctx.state;
    let view = state.member(member);
    let old = &view.report;
    let lag_bytes = match state.active {
        Some(active) if active != member => state.member(active).report.lsn.ahead_of(report.lsn),
        _ => 0,
    };
    let threshold = state
        .spec
        .as_ref()
        .map_or(u64::MAX, |spec| spec.lag_threshold_bytes);
    let granularity_ms = state.spec.as_ref().map_or(0, Spec::contact_granularity_ms);
    let material = !view.reachable
        || old.process != report.process
        || old.role != report.role
        || old.replication_connected != report.replication_connected
        || old.in_sync != report.in_sync
        || old.copy_complete != report.copy_complete
        || old.config_hash != report.config_hash
        || old.timeline != report.timeline;
    let lag_flip = (lag_bytes > threshold) != view.lagging_since.is_some();
    let lsn_moved = old.lsn != report.lsn && lsn_sensitive(state.cluster);
    // The first report after a driver restart is recorded too (`copy_source_ready` asks for it).
    let refresh_due = !state.heard_since_start(member)
        || view
            .last_contact
            .is_none_or(|at| ctx.now.since_ms(at) >= granularity_ms.max(1));
    if material || lag_flip || lsn_moved || refresh_due {
        let at = ctx.now;
        ctx.record(Event::Contact {
            member,
            at,
            report: *report,
            lag_bytes,
        });
    }
}

fn observe_pod(ctx: &mut Ctx<'_>, member: MemberId, pod: Option<&PodObservation>) {
    if is_member(ctx.state, member) && ctx.state.member(member).pod.as_ref() != pod {
        ctx.record(Event::PodObserved {
            member,
            pod: pod.cloned(),
        });
    }
}

fn observe_volume(ctx: &mut Ctx<'_>, member: MemberId, volume: &VolumeObservation) {
    if !is_member(ctx.state, member) {
        return;
    }
    let view = ctx.state.member(member);
    let same = view.pvc == volume.pvc && view.pv == volume.pv && view.volume_lost == volume.lost;
    if !same {
        ctx.record(Event::VolumeObserved {
            member,
            volume: volume.clone(),
        });
    }
}

fn observe_node(ctx: &mut Ctx<'_>, node: &NodeName, status: NodeStatus) {
    if ctx.state.node(node).map(|view| view.status) != Some(status) {
        let at = ctx.now;
        ctx.record(Event::NodeObserved {
            node: node.clone(),
            status,
            at,
        });
    }
}
