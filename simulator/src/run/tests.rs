//! The verdict, end to end: small scenarios run through [`run`] whose expectations must fail
//! (or hold) for the reason named in `Failure::what`, and the matching of state names.

use super::*;
use crate::scenario::parse;
use std::path::Path;

/// Runs the scenario written `text` with `options`, on a fresh log.
fn run_with(text: &str, options: &RunOptions) -> RunReport {
    let scenario = parse(Path::new("test.yaml"), text).expect("a valid scenario");
    let (log, _directory) = temporary_log().expect("a log");
    run(&scenario, options, &log).expect("a run")
}

fn run_text(text: &str) -> RunReport {
    run_with(text, &RunOptions::default())
}

/// The failure of a run that must fail with `what`.
#[track_caller]
fn failed(report: &RunReport, what: &str) -> Failure {
    let failure = report
        .failure
        .clone()
        .unwrap_or_else(|| panic!("passed, not {what}: visited {:?}", report.visited));
    assert_eq!(failure.what, what, "{failure:?}");
    failure
}

#[track_caller]
fn passed(report: &RunReport) {
    assert!(report.passed(), "{:?}", report.failure);
}

/// Five quiet minutes: initialization, then `Normal`.
fn quiet(expect: &str) -> String {
    format!("name: quiet\ndescription: d\ntopology: master-slave\nduration: 5m\n{expect}")
}

/// A stop at 2 min and a start at 5 min: `Normal` is entered twice.
fn stop_and_start(expect: &str) -> String {
    format!(
        "name: stop-and-start\ndescription: d\ntopology: master-slave\nduration: 8m\ntimeline:\n  - at: 2m\n    action: stop\n  - at: 5m\n    action: start\n{expect}"
    )
}

/// A switchover to the active, refused, then one to member 1.
fn switchovers(expect: &str) -> String {
    format!(
        "name: switchovers\ndescription: d\ntopology: master-slave\nduration: 6m\ntimeline:\n  - at: 2m\n    action: switchover\n    to: 0\n  - at: 4m\n    action: switchover\n    to: 1\n{expect}"
    )
}

/// The active partitioned from 2 min for 90 s: the last fault ends at 3 min 30 s.
const PARTITION_ENDS_MS: Millis = 210_000;

fn partitioned_active(expect: &str) -> String {
    format!(
        "name: partitioned-active\ndescription: d\ntopology: master-slave\nduration: 10m\ntimeline:\n  - at: 2m\n    fault: partition\n    target: active\n    for: 90s\n{expect}"
    )
}

/// Async, the standby trailing by a second of writes (50), and the active's node lost for good:
/// the engine may promote over that lag, and the writes are gone.
fn async_failover(expect: &str) -> String {
    format!(
        "name: async-failover\ndescription: d\ntopology: master-slave\nduration: 10m\ncluster:\n  replication: async\n  maxLagOnFailoverBytes: 1000000\n  nodeLostTimeout: 120\nworld:\n  replicationLagMs: 1000\ntimeline:\n  - at: 2m\n    fault: node-loss\n    target: node-of-active\n{expect}"
    )
}

#[test]
fn a_quiet_run_meets_its_expectations() {
    let report = run_text(&quiet(
        "expect:\n  finalState: Normal\n  visits: [Normal]\n  never: [ActiveDown, BothDown]\n  recoveredWithin: 1m\n",
    ));
    passed(&report);
    assert_eq!(report.visited, vec![ClusterState::Normal]);
    assert_eq!(report.final_state, ClusterState::Normal);
    assert!(report.acknowledged_writes > 0);
    assert_eq!(report.lost_writes, 0);
}

#[test]
fn visits_must_come_in_order() {
    let report = run_text(&stop_and_start(
        "expect:\n  visits: [Normal, Stopping, Stopped, Starting, Normal]\n",
    ));
    passed(&report);
    // Gaps are allowed.
    passed(&run_text(&stop_and_start(
        "expect:\n  visits: [Stopping, Normal]\n",
    )));
    // Both were visited, in the other order.
    let report = run_text(&stop_and_start("expect:\n  visits: [Stopped, Stopping]\n"));
    let failure = failed(&report, "expect.visits");
    assert!(
        failure
            .detail
            .starts_with("Stopping was not visited in order; visited: Normal, Stopping"),
        "{failure:?}"
    );
    // Each visit is one entry: `Normal` was entered twice, not three times.
    passed(&run_text(&stop_and_start(
        "expect:\n  visits: [Normal, Normal]\n",
    )));
    let report = run_text(&stop_and_start(
        "expect:\n  visits: [Normal, Normal, Normal]\n",
    ));
    let failure = failed(&report, "expect.visits");
    assert!(failure.detail.starts_with("Normal was not visited"));
    // A state never entered.
    let report = run_text(&quiet("expect:\n  visits: [Normal, ActiveDown]\n"));
    let failure = failed(&report, "expect.visits");
    assert!(failure.detail.starts_with("ActiveDown was not visited"));
}

#[test]
fn a_state_entered_fails_never() {
    let report = run_text(&stop_and_start("expect:\n  never: [BothDown, Stopped]\n"));
    let failure = failed(&report, "expect.never");
    assert_eq!(failure.detail, "Stopped was entered");
    passed(&run_text(&stop_and_start(
        "expect:\n  never: [BothDown, ActiveDown]\n",
    )));
}

/// A state with a member matches only that member's; without one, any member's.
#[test]
fn a_state_named_with_its_member_matches_only_that_member() {
    let report = run_text(&switchovers(
        "expect:\n  visits: [Switchover(member-1), Normal]\n  never: [Switchover(member-0)]\n",
    ));
    passed(&report);
    assert!(
        report
            .visited
            .contains(&ClusterState::Switchover(MemberId(1)))
    );
    let report = run_text(&switchovers("expect:\n  visits: [Switchover(member-0)]\n"));
    let failure = failed(&report, "expect.visits");
    assert!(
        failure
            .detail
            .starts_with("Switchover(member-0) was not visited")
    );
    let report = run_text(&switchovers("expect:\n  never: [Switchover]\n"));
    let failure = failed(&report, "expect.never");
    assert_eq!(failure.detail, "Switchover(member-1) was entered");
    let report = run_text(&switchovers("expect:\n  never: [Switchover(member-1)]\n"));
    failed(&report, "expect.never");
}

#[test]
fn cluster_state_names_match_by_kind_and_member() {
    let any = ClusterStateName::of_kind(StateKind::WaitingForActive);
    let zero = ClusterStateName {
        member: Some(MemberId(0)),
        ..any
    };
    assert!(any.matches(ClusterState::WaitingForActive(MemberId(0))));
    assert!(any.matches(ClusterState::WaitingForActive(MemberId(1))));
    assert!(zero.matches(ClusterState::WaitingForActive(MemberId(0))));
    assert!(!zero.matches(ClusterState::WaitingForActive(MemberId(1))));
    assert!(!zero.matches(ClusterState::Switchover(MemberId(0))));
    assert!(!any.matches(ClusterState::Normal));
    let switchover = ClusterStateName {
        kind: StateKind::Switchover,
        member: Some(MemberId(1)),
    };
    assert!(switchover.matches(ClusterState::Switchover(MemberId(1))));
    assert!(!switchover.matches(ClusterState::Switchover(MemberId(0))));
    let normal = ClusterStateName::of_kind(StateKind::Normal);
    assert!(normal.matches(ClusterState::Normal));
    assert!(!normal.matches(ClusterState::Stopped));
    // A member on a kind that names none matches nothing.
    let odd = ClusterStateName {
        member: Some(MemberId(0)),
        ..normal
    };
    assert!(!odd.matches(ClusterState::Normal));
}

#[test]
fn the_final_state_must_be_the_expected_one() {
    let report = run_text(&quiet("expect:\n  finalState: Stopped\n"));
    let failure = failed(&report, "expect.finalState");
    assert_eq!(failure.detail, "the cluster ends in Normal, not Stopped");
    assert_eq!(report.recovered_after_ms, None, "Stopped was never reached");
    let report = run_text(&switchovers(
        "expect:\n  finalState: WaitingForActive(member-0)\n",
    ));
    failed(&report, "expect.finalState");
}

/// The time at which the trace shows the last transition into `state`.
fn last_entry_into(report: &RunReport, state: &str) -> Millis {
    report
        .trace
        .iter()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| {
            line["type"] == "event"
                && line["detail"]
                    .as_str()
                    .is_some_and(|detail| detail.starts_with(&format!("-> {state} (")))
        })
        .find_map(|line| line["t"].as_u64())
        .expect("the state was entered")
}

/// `recoveredWithin` runs from the end of the last fault to the last entry into the final state;
/// a bound one millisecond short fails.
#[test]
fn recovered_within_counts_from_the_last_fault_to_the_last_entry_into_the_final_state() {
    let traced = RunOptions {
        trace: true,
        ..RunOptions::default()
    };
    let report = run_with(
        &partitioned_active("expect:\n  finalState: Normal\n"),
        &traced,
    );
    passed(&report);
    let normal_at = last_entry_into(&report, "Normal");
    assert!(normal_at > PARTITION_ENDS_MS);
    let took = normal_at - PARTITION_ENDS_MS;
    assert_eq!(report.recovered_after_ms, Some(took));
    let within = |ms: Millis| {
        partitioned_active(&format!(
            "expect:\n  finalState: Normal\n  recoveredWithin: {ms}ms\n"
        ))
    };
    passed(&run_text(&within(took)));
    let report = run_text(&within(took - 1));
    let failure = failed(&report, "expect.recoveredWithin");
    assert_eq!(
        failure.detail,
        format!(
            "recovered {took} ms after the last fault ended, more than {} ms",
            took - 1
        )
    );
    // Normal entered twice (no fault: from the start): the last entry counts.
    let report = run_with(&stop_and_start("expect:\n  finalState: Normal\n"), &traced);
    let normal_at = last_entry_into(&report, "Normal");
    assert!(normal_at > 5 * 60_000);
    assert_eq!(report.recovered_after_ms, Some(normal_at));
    let report = run_text(&stop_and_start(
        "expect:\n  finalState: Normal\n  recoveredWithin: 5m\n",
    ));
    failed(&report, "expect.recoveredWithin");
}

#[test]
fn lost_writes_beyond_max_lost_writes_fail_the_run() {
    let report = run_text(&async_failover("expect:\n  maxLostWrites: 50\n"));
    passed(&report);
    assert_eq!(report.lost_writes, 50, "the standby trailed by 50 writes");
    assert_eq!(report.final_state, ClusterState::Normal);
    let report = run_text(&async_failover("expect:\n  maxLostWrites: 49\n"));
    let failure = failed(&report, "no lost writes");
    assert_eq!(
        failure.detail,
        "50 acknowledged writes are missing from the final active (at most 49)"
    );
    // Lost writes are judged before the other expectations.
    let report = run_text(&async_failover("expect:\n  finalState: Stopped\n"));
    failed(&report, "no lost writes");
}

/// Under explore's judgement, a node lost for good that took the only copy of acknowledged
/// writes must end the run in `ManualInterventionRequired` or `Failed`, whatever `expect` says.
#[test]
fn writes_destroyed_with_a_node_require_the_cluster_to_stop_for_a_person() {
    let explore = RunOptions {
        intervention_after_destroyed_writes: true,
        ..RunOptions::default()
    };
    let report = run_with(
        &async_failover("expect:\n  finalState: Normal\n  maxLostWrites: 50\n"),
        &explore,
    );
    assert_eq!(report.destroyed_writes, 50);
    let failure = failed(&report, "expect.finalState");
    assert!(
        failure.detail.starts_with(
            "the cluster ends in Normal, not ManualInterventionRequired or Failed, although a \
             node lost for good took the only copy of 50 acknowledged writes"
        ),
        "{failure:?}"
    );
    // A standalone cluster losing its node gives up, as it must; `maxLostWrites` does not apply.
    let standalone = "name: standalone-node-loss\ndescription: d\ntopology: standalone\nduration: 10m\ncluster:\n  nodeLostTimeout: 120\ntimeline:\n  - at: 2m\n    fault: node-loss\n    target: node-of-active\nexpect:\n  finalState: Normal\n";
    let report = run_with(standalone, &explore);
    passed(&report);
    assert_eq!(report.final_state, ClusterState::Failed);
    assert!(report.destroyed_writes > 0);
    assert_eq!(report.destroyed_writes, report.acknowledged_writes);
    // The same run judged by its expectations.
    let report = run_text(standalone);
    failed(&report, "no lost writes");
}

/// The world's own checks catch a broken policy: promoting the standby of an active that is only
/// cut off from the operator leaves two members accepting writes.
#[test]
fn promoting_without_fencing_is_a_split_brain() {
    let sabotaged = RunOptions {
        sabotage: Sabotage::PromoteWithoutFencing,
        ..RunOptions::default()
    };
    let report = run_with(&partitioned_active(""), &sabotaged);
    let failure = failed(&report, "no split brain");
    assert_eq!(
        failure.detail,
        "member-0 and member-1 accept client writes at the same time"
    );
    assert!(failure.at_ms >= 120_000 && failure.at_ms < PARTITION_ENDS_MS);
    assert!(!report.last_steps.is_empty());
    passed(&run_text(&partitioned_active("")));
}

#[test]
fn a_run_stopped_by_its_event_limit_fails_rather_than_pass_on_what_it_did_not_run() {
    let text = "name: busy\ntopology: master-slave\nduration: 10m\n";
    let options = RunOptions {
        max_events: Some(50),
        ..RunOptions::default()
    };
    let failure = failed(&run_with(text, &options), "the run reaches its end");
    assert!(failure.detail.contains("50 events"), "{failure:?}");
    passed(&run_text(text));
}

/// A standby whose node is lost for good: its copy is made again on another node. While it is
/// away, the active has no standby (degraded), and strict sync stops writes until the copy is
/// done; the copy that first made the pair whole is not counted.
fn standby_node_lost(expect: &str) -> String {
    format!(
        "name: standby-node-lost\ndescription: d\ntopology: master-slave\nduration: 20m\ncluster:\n  nodeLostTimeout: 60\nworld:\n  rebuildSeconds: 120\ntimeline:\n  - at: 3m\n    fault: node-loss\n    target: node-of-standby\n{expect}"
    )
}

#[test]
fn a_quiet_run_costs_nothing() {
    let report = run_text(&quiet(
        "expect:\n  maxFullCopies: 0\n  maxWriteOutage: 0s\n  maxDegradedTime: 0s\n",
    ));
    passed(&report);
    assert_eq!(report.costs, Costs::default());
}

#[test]
fn a_lost_standby_costs_a_copy_and_time_without_redundancy_and_writes() {
    let report = run_text(&standby_node_lost(""));
    passed(&report);
    assert_eq!(report.costs.full_copies, 1, "{:?}", report.costs);
    // From the loss until the copy on another node is done: at least the copy's 120 s.
    assert!(report.costs.degraded_ms >= 120_000, "{:?}", report.costs);
    // Strict sync acknowledges nothing while no standby receives.
    assert!(
        report.costs.write_outage_ms >= 120_000
            && report.costs.write_outage_ms <= report.costs.degraded_ms,
        "{:?}",
        report.costs
    );
    let failure = failed(
        &run_text(&standby_node_lost("expect:\n  maxFullCopies: 0\n")),
        "expect.maxFullCopies",
    );
    assert_eq!(failure.detail, "1 full copies, more than 0");
    failed(
        &run_text(&standby_node_lost("expect:\n  maxDegradedTime: 1m\n")),
        "expect.maxDegradedTime",
    );
    failed(
        &run_text(&standby_node_lost("expect:\n  maxWriteOutage: 1m\n")),
        "expect.maxWriteOutage",
    );
}

#[test]
fn a_cluster_the_user_stopped_costs_no_outage_while_stopped() {
    let report = run_text(&stop_and_start(""));
    passed(&report);
    // Stopped for 3 of the 8 minutes; only the start's time to serve again counts.
    assert!(report.costs.write_outage_ms < 60_000, "{:?}", report.costs);
}
