//! Every value the scenario language accepts runs: each key at the largest value it takes, the
//! others as the catalog writes them. A debug build (`cargo test` without `--release`) checks
//! every addition and multiplication for overflow, so a time or a count that wraps fails here
//! where it is computed; in any build, each fault fires, ends no earlier than it starts and
//! where the scenario says, and a run that passes has reached its end.

use std::path::Path;
use tandem_sim::run::{RunOptions, run};
use tandem_sim::scenario::{
    MAX_DURATION_MS, MAX_EXPECTED_STATES, MAX_NODES, MAX_TIMELINE_ENTRIES, MAX_WRITES_PER_SECOND,
    What, parse,
};
use tandem_sim::timeline::MarkKind;

/// The largest `u64` and `u32`, as YAML writes them.
const U64: u64 = u64::MAX;
/// The largest byte count a spec holds (int64, as the resource's schema).
const I64: i64 = i64::MAX;
const U32: u32 = u32::MAX;

/// Scenarios with one key, or a few that go together, at the largest value accepted.
fn cases() -> Vec<(String, String)> {
    let day = "24h";
    let seconds = MAX_DURATION_MS / 1_000;
    let ms = MAX_DURATION_MS;
    let wps = MAX_WRITES_PER_SECOND;
    let nodes = MAX_NODES;
    let mut cases: Vec<(&str, String)> = vec![
        (
            "agent-latency",
            format!(
                "world:\n  agentLatencyMs: {ms}\ntimeline:\n  \
                 - {{at: 10m, fault: crash-process, target: active}}\n"
            ),
        ),
        (
            "api-latency",
            format!(
                "world:\n  apiLatencyMs: {ms}\ntimeline:\n  \
                 - {{at: 10m, fault: delete-pod, target: active}}\n"
            ),
        ),
        (
            "replication-lag",
            format!(
                "cluster:\n  replication: async\nworld:\n  replicationLagMs: {ms}\n  \
                 writesPerSecond: {wps}\ntimeline:\n  - {{at: 10m, fault: crash-process, target: active}}\n"
            ),
        ),
        (
            "writes-per-second",
            format!(
                "duration: {day}\nworld:\n  writesPerSecond: {wps}\ntimeline:\n  \
                 - {{at: 10m, fault: crash-process, target: active}}\n"
            ),
        ),
        (
            "pod-start",
            format!(
                "world:\n  podStartSeconds: {seconds}\ntimeline:\n  \
                 - {{at: 1m, fault: delete-pod, target: active}}\n"
            ),
        ),
        (
            "rebuild",
            format!(
                "world:\n  rebuildSeconds: {seconds}\ntimeline:\n  \
                 - {{at: 1m, fault: node-loss, target: node-of-standby}}\n"
            ),
        ),
        (
            "nodes",
            format!(
                "world:\n  nodes: {nodes}\ntimeline:\n  \
                 - {{at: 1m, fault: node-loss, target: node-{}, for: {day}}}\n",
                nodes - 1
            ),
        ),
        (
            "duration",
            format!(
                "duration: {day}\ntimeline:\n  - {{at: {day}, fault: partition, target: active, \
                 for: {day}}}\n"
            ),
        ),
        (
            "busiest-day",
            format!(
                "duration: {day}\ncluster:\n  pollingInterval: 1\n  unreachableTimeout: 30\n  \
                 agentLeaseSeconds: 4\ntimeline:\n  - {{at: 1m, fault: api-errors, rate: 0.5, \
                 for: {day}}}\n  - {{at: 2m, fault: agent-flap, target: active, period: 1ms, \
                 for: {day}}}\n"
            ),
        ),
        (
            "config-hash",
            format!(
                "timeline:\n  - {{at: 1m, action: config-change, hash: {U64}}}\n  \
                 - {{at: 2m, action: config-change}}\n"
            ),
        ),
        (
            "seed",
            format!(
                "seed: {U64}\ntimeline:\n  - {{at: 1m, fault: crash-process, target: active}}\n"
            ),
        ),
        (
            "expect",
            format!(
                "timeline:\n  - {{at: 1m, fault: crash-process, target: active}}\nexpect:\n  \
                 finalState: Normal\n  recoveredWithin: {day}\n  maxLostWrites: {U64}\n  \
                 visits: [{}]\n  never: [{}]\n",
                vec!["Normal"; MAX_EXPECTED_STATES].join(", "),
                vec!["Failed"; MAX_EXPECTED_STATES].join(", ")
            ),
        ),
        (
            "cluster-timing",
            format!(
                "cluster:\n  pollingInterval: {}\n  unreachableTimeout: {U32}\n  \
                 agentLeaseSeconds: {}\n  nodeLostTimeout: {U32}\n  lagTimeout: {U32}\n  \
                 initTimeout: {U32}\n  standbyStartTimeout: {U32}\n  switchoverTimeout: {U32}\n  \
                 waitForActiveTimeout: {U32}\n  maxRebuildAttempts: {U32}\n  \
                 maxRestartAttempts: {U32}\ntimeline:\n  \
                 - {{at: 1m, fault: crash-process, target: active}}\n",
                U32 / 2,
                U32 / 4 * 3
            ),
        ),
        (
            "cluster-bytes",
            format!(
                "cluster:\n  replication: async\n  maxLagOnFailoverBytes: {I64}\n  \
                 lagThresholdBytes: {I64}\ntimeline:\n  \
                 - {{at: 1m, fault: crash-process, target: active}}\n"
            ),
        ),
        (
            "timeline-entries",
            format!(
                "duration: {day}\ntimeline:\n{}",
                (0..MAX_TIMELINE_ENTRIES)
                    .map(|index| {
                        let action = if index % 2 == 0 {
                            "pause-failover"
                        } else {
                            "resume-failover"
                        };
                        format!("  - {{at: {}s, action: {action}}}\n", index + 1)
                    })
                    .collect::<String>()
            ),
        ),
    ];
    // Each fault, with its longest span, early in the run and at its very end.
    let faults = [
        format!("fault: crash-process, target: active, restartAfter: {day}"),
        format!("fault: hang-process, target: active, for: {day}"),
        format!("fault: partition, target: active, for: {day}"),
        format!("fault: isolate, target: active, for: {day}"),
        format!("fault: replication-stall, target: standby, for: {day}"),
        format!("fault: replication-break, target: standby, for: {day}"),
        format!("fault: disk-full, target: active, for: {day}"),
        format!("fault: node-loss, target: node-of-active, for: {day}"),
        format!("fault: slow-start, target: active, seconds: {seconds}"),
        format!("fault: agent-flap, target: active, period: {day}, for: {day}"),
        format!("fault: operator-crash, restartAfter: {day}, loseLog: true"),
        format!("fault: operator-crash, restartAfter: {day}"),
        format!("fault: api-errors, rate: 1, for: {day}"),
    ];
    let fault_cases: Vec<(String, String)> = faults
        .iter()
        .enumerate()
        .map(|(index, fault)| {
            (
                format!("fault-{index}"),
                format!(
                    "timeline:\n  - {{at: 1m, {fault}}}\n  \
                     - {{at: 2m, fault: crash-process, target: active}}\n  - {{at: 30m, {fault}}}\n"
                ),
            )
        })
        .collect();
    let mut all: Vec<(String, String)> = cases
        .drain(..)
        .map(|(name, body)| (name.to_owned(), body))
        .collect();
    all.extend(fault_cases);
    all.into_iter()
        .map(|(name, body)| {
            let text = format!("name: {name}\ntopology: master-slave\n{body}");
            (name, text)
        })
        .collect()
}

#[test]
fn every_value_at_its_largest_runs_without_a_wrapped_time() {
    let (log, _directory) = tandem_sim::run::temporary_log().expect("a log");
    for (name, text) in cases() {
        let scenario = parse(Path::new(&format!("{name}.yaml")), &text)
            .unwrap_or_else(|error| panic!("{error}\n{text}"));
        let report = run(&scenario, &RunOptions::default(), &log)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let marks: Vec<_> = report
            .timeline
            .marks
            .iter()
            .filter(|mark| mark.kind != MarkKind::Violation)
            .collect();
        if report.passed() {
            assert_eq!(report.simulated_ms, scenario.duration_ms, "{name}");
            // Every entry fired, in time order.
            assert_eq!(marks.len(), scenario.timeline.len(), "{name}");
        }
        for (mark, entry) in marks.iter().zip(&scenario.timeline) {
            assert_eq!(mark.at_ms, entry.at_ms, "{name}: {}", mark.label);
            let span = match &entry.what {
                What::Fault(fault, _) => fault.window_ms(),
                What::Action(_) => None,
            };
            if let (Some(span), Some(until)) = (span, mark.until_ms) {
                assert_eq!(until, entry.at_ms + span, "{name}: {}", mark.label);
            }
            if let Some(until) = mark.until_ms {
                assert!(
                    until >= mark.at_ms,
                    "{name}: {} ends before it starts",
                    mark.label
                );
            }
        }
        report.remove_streams(&log).expect("removing the streams");
    }
}
