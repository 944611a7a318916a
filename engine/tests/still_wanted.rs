//! A destructive effect does not outlive its premise: right before carrying one out, a driver asks
//! `Engine::still_wanted`, and observations that arrived since the effect was issued can withdraw
//! it.

use tandem_engine::testing::{Harness, normal_cluster, steady_report};
use tandem_engine::{
    Action, Effect, Input, MemberId, NodeName, NodeStatus, Poll, Role, Spec, Timestamp, Topology,
};

fn at(seconds: u64) -> Timestamp {
    Timestamp(seconds * 1000)
}

fn steady(harness: &mut Harness, when: Timestamp) {
    for (member, role) in [(0, Role::Active), (1, Role::Standby)] {
        let report = steady_report(role, 100, Topology::MasterSlave);
        let input = Input::Agent {
            member: MemberId(member),
            poll: Poll::Report(report),
        };
        harness.step(when, input).expect("the invariants hold");
    }
}

fn node(harness: &mut Harness, when: Timestamp, name: &str, status: NodeStatus) -> Vec<Effect> {
    let input = Input::Node {
        node: NodeName(name.into()),
        status,
    };
    harness.step(when, input).expect("the invariants hold")
}

fn unreachable(harness: &mut Harness, when: Timestamp, member: u8) -> Vec<Effect> {
    let input = Input::Agent {
        member: MemberId(member),
        poll: Poll::Unreachable,
    };
    harness.step(when, input).expect("the invariants hold")
}

fn find(effects: &[Effect], wanted: impl Fn(&Action) -> bool) -> Effect {
    effects
        .iter()
        .find(|effect| wanted(&effect.action))
        .cloned()
        .unwrap_or_else(|| panic!("no such effect in {effects:?}"))
}

/// A standby whose node stays not ready until it counts as lost: the engine force-deletes its pod
/// and releases its volume. Returns the harness and those two effects.
fn lost_standby() -> (Harness, Effect, Effect) {
    let mut spec = Spec::defaults(Topology::MasterSlave);
    spec.node_lost_timeout_s = 120;
    let mut harness = normal_cluster(&spec);
    steady(&mut harness, at(15));
    node(&mut harness, at(20), "node-1", NodeStatus::NotReady);
    unreachable(&mut harness, at(20), 1);
    let mut effects = Vec::new();
    for seconds in [46, 141] {
        effects.extend(harness.step(at(seconds), Input::Timer).expect("holds"));
    }
    let delete = find(&effects, |action| {
        matches!(
            action,
            Action::DeletePod {
                member: MemberId(1),
                grace_period_s: 0,
                ..
            }
        )
    });
    let release = find(&effects, |action| {
        matches!(
            action,
            Action::ReleaseVolume {
                member: MemberId(1),
                ..
            }
        )
    });
    (harness, delete, release)
}

#[test]
fn a_release_and_a_forced_deletion_are_withdrawn_when_the_node_comes_back() {
    let (mut harness, delete, release) = lost_standby();
    assert!(harness.engine.still_wanted(&delete));
    assert!(harness.engine.still_wanted(&release));
    node(&mut harness, at(142), "node-1", NodeStatus::Ready);
    assert!(!harness.engine.still_wanted(&release), "the data is back");
    assert!(
        !harness.engine.still_wanted(&delete),
        "a kubelet can confirm again"
    );
}

#[test]
fn a_release_is_withdrawn_when_the_other_copy_goes_away() {
    let (mut harness, _, release) = lost_standby();
    node(&mut harness, at(142), "node-0", NodeStatus::Deleted);
    assert!(!harness.engine.still_wanted(&release));
}

#[test]
fn a_rebuild_is_withdrawn_when_its_source_stops_being_up() {
    let mut harness = normal_cluster(&Spec::defaults(Topology::MasterSlave));
    steady(&mut harness, at(15));
    let restarted = tandem_engine::AgentReport {
        process: tandem_engine::Process::Running,
        copy_complete: true,
        ..tandem_engine::AgentReport::default()
    };
    let input = Input::Agent {
        member: MemberId(1),
        poll: Poll::Report(restarted),
    };
    let effects = harness.step(at(20), input).expect("holds");
    let rebuild = find(&effects, |action| {
        matches!(
            action,
            Action::Rebuild {
                member: MemberId(1),
                ..
            }
        )
    });
    assert!(harness.engine.still_wanted(&rebuild));
    node(&mut harness, at(21), "node-0", NodeStatus::NotReady);
    assert!(!harness.engine.still_wanted(&rebuild));
}
