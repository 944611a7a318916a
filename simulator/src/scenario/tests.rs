//! The scenario language as a public interface (tested through the public API only): the catalog's examples parse, every
//! kind of mistake is refused with its file, line and key, `to_yaml` writes what `parse` reads,
//! and no input makes the parser panic.

use crate::scenario::{
    ClusterStateName, Expect, Fault, MAX_COPY_MEGABYTES_PER_SECOND, MAX_DATA_GIGABYTES,
    MAX_DURATION_MS, MAX_EXPECTED_STATES, MAX_FILE_BYTES, MAX_NAME_BYTES, MAX_NODES,
    MAX_TIMELINE_ENTRIES, MAX_WRITES_PER_SECOND, Scenario, ScenarioError, Target, TimelineEntry,
    UserAction, What, WorldConfig, load, parse, to_yaml,
};
use proptest::prelude::*;
use std::path::Path;
use tandem_engine::config::{MAX_BYTES, POLL_DEADLINE_S};
use tandem_engine::{MemberId, Replication, Spec, StateKind, Topology};

/// A scenario with every section, commented as a first scenario file would be.
const COMMENTED_EXAMPLE: &str = r#"name: active-process-crash            # required, unique in a catalog
description: The active's database process dies; the standby takes over and no write is lost.
topology: master-slave                # master-slave | standalone
seed: 7                               # optional, default 1; the command line can override it
duration: 30m                         # simulated time to run; default 30m
cluster:                              # engine configuration, same field names as the CRD spec
  pollingInterval: 10
  unreachableTimeout: 30
  replication: sync                   # sync | async
  maxLagOnFailoverBytes: 0
world:                                # optional; defaults are documented by the simulator
  nodes: 3
  podStartSeconds: 5                  # a recreated pod's database is up after this long
  rebuildSeconds: 20                  # copying a standby from the active takes this long
  writesPerSecond: 50                 # client writes sent to whoever is active
  replicationLagMs: 5                 # async: how far a standby trails the active
timeline:
  - at: 2m
    fault: crash-process
    target: active
  - at: 10m
    fault: partition
    target: standby
    for: 90s
  - at: 20m
    action: switchover
expect:
  finalState: Normal                  # the cluster state at the end of the run
  recoveredWithin: 2m                 # from the end of the last fault to finalState
  visits: [ActiveDown, StandbyDown, StandbyPartiallyStarting, Normal]   # in this order, gaps allowed
  never: [BothDown, ManualInterventionRequired]
  maxLostWrites: 0                    # acknowledged writes that may be lost; default 0
  maxFullCopies: 1                    # full copies of a member's data after the pair was whole
  maxWriteOutage: 1m                  # time without acknowledged writes
  maxDegradedTime: 2m                 # time without a standby receiving the writes
"#;

const FILE: &str = "scenarios/x.yaml";

fn parse_text(text: &str) -> Result<Scenario, ScenarioError> {
    parse(Path::new(FILE), text)
}

fn names(list: &[&str]) -> Vec<ClusterStateName> {
    list.iter().map(|name| state(name)).collect()
}

/// A state name written `Kind` or `Kind(member-N)`.
fn state(text: &str) -> ClusterStateName {
    let (kind, member) = match text.split_once('(') {
        Some((kind, member)) => (kind, member.strip_suffix(')')),
        None => (text, None),
    };
    ClusterStateName {
        kind: StateKind::from_name(kind).expect("a state kind"),
        member: member.map(|member| {
            MemberId(
                member
                    .strip_prefix("member-")
                    .expect("member-N")
                    .parse()
                    .expect("N"),
            )
        }),
    }
}

#[test]
fn the_commented_example_parses_to_what_it_says() {
    let scenario = parse_text(COMMENTED_EXAMPLE).unwrap();
    assert_eq!(scenario.name, "active-process-crash");
    assert_eq!(
        scenario.description,
        "The active's database process dies; the standby takes over and no write is lost."
    );
    assert_eq!(scenario.topology, Topology::MasterSlave);
    assert_eq!(scenario.seed, 7);
    assert_eq!(scenario.duration_ms, 30 * 60_000);
    assert_eq!(scenario.cluster, Spec::defaults(Topology::MasterSlave));
    assert_eq!(scenario.world, WorldConfig::default());
    assert_eq!(
        scenario.timeline,
        vec![
            TimelineEntry {
                at_ms: 120_000,
                what: What::Fault(
                    Fault::CrashProcess {
                        restart_after_ms: Some(10_000)
                    },
                    Some(Target::Active)
                ),
                line: 18,
            },
            TimelineEntry {
                at_ms: 600_000,
                what: What::Fault(Fault::Partition { for_ms: 90_000 }, Some(Target::Standby)),
                line: 21,
            },
            TimelineEntry {
                at_ms: 1_200_000,
                what: What::Action(UserAction::Switchover { to: None }),
                line: 25,
            },
        ]
    );
    assert_eq!(
        scenario.expect,
        Expect {
            final_state: Some(state("Normal")),
            recovered_within_ms: Some(120_000),
            visits: names(&[
                "ActiveDown",
                "StandbyDown",
                "StandbyPartiallyStarting",
                "Normal"
            ]),
            never: names(&["BothDown", "ManualInterventionRequired"]),
            max_lost_writes: 0,
            max_full_copies: Some(1),
            max_write_outage_ms: Some(60_000),
            max_degraded_ms: Some(120_000),
        }
    );
}

/// Every fault and action with every parameter, and every `cluster:` and `world:` key.
const EVERYTHING: &str = r#"name: everything
topology: master-slave
duration: 2h
cluster:
  pollingInterval: 5
  unreachableTimeout: 20
  agentLeaseSeconds: 10
  nodeLostTimeout: 120
  replication: async
  maxLagOnFailoverBytes: 1048576
  lagThresholdBytes: 4096
  lagTimeout: 60
  initTimeout: 300
  standbyStartTimeout: 400
  switchoverTimeout: 90
  maxRebuildAttempts: 3
  maxRestartAttempts: 2
  waitForActiveTimeout: 600
  autoFailover: false
world:
  nodes: 4
  podStartSeconds: 2.5
  rebuildSeconds: 40
  writesPerSecond: 100
  replicationLagMs: 50
  apiLatencyMs: 30
  agentLatencyMs: 7
timeline:
  - {at: 0s, fault: crash-process, target: member-1, restartAfter: never}
  - {at: 1s, fault: crash-process, target: active, restartAfter: 500ms}
  - {at: 2s, fault: hang-process, target: standby, for: 30s}
  - {at: 3s, fault: delete-pod, target: member-0}
  - {at: 4s, fault: partition, target: active, for: 1m}
  - {at: 5s, fault: isolate, target: standby, for: 2m}
  - {at: 6s, fault: node-loss, target: node-of-active}
  - {at: 7s, fault: node-loss, target: node-3, for: 5m}
  - {at: 8s, fault: replication-stall, target: standby, for: 10s}
  - {at: 9s, fault: replication-break, target: standby, for: 20s}
  - {at: 10s, fault: disk-full, target: active, for: 15s}
  - {at: 11s, fault: slow-start, target: member-1, seconds: 45}
  - {at: 12s, fault: agent-flap, target: active, period: 5s, for: 1m}
  - {at: 13s, fault: operator-crash}
  - {at: 14s, fault: operator-crash, restartAfter: 30s, loseLog: true}
  - {at: 15s, fault: api-errors, rate: 0.25, for: 1m}
  - {at: 16s, fault: node-loss, target: node-of-standby, for: 1h}
  - {at: 20m, action: switchover, to: member-1}
  - {at: 21m, action: switchover, to: 0}
  - {at: 22m, action: config-change, hash: 42}
  - {at: 23m, action: config-change}
  - {at: 24m, action: stop}
  - {at: 25m, action: start}
  - {at: 26m, action: reexamine}
  - {at: 27m, action: pause-failover}
  - {at: 28m, action: resume-failover}
expect:
  finalState: WaitingForActive(member-0)
  visits: [Switchover(member-1), Normal]
  never: []
  maxLostWrites: 3
"#;

#[test]
fn every_key_fault_and_action_parses() {
    let scenario = parse_text(EVERYTHING).unwrap();
    let cluster = &scenario.cluster;
    assert_eq!(cluster.polling_interval_s, 5);
    assert_eq!(cluster.replication, Replication::Async);
    assert_eq!(cluster.max_lag_on_failover_bytes, 1_048_576);
    assert_eq!(cluster.wait_for_active_timeout_s, Some(600));
    assert!(!cluster.auto_failover);
    assert_eq!(scenario.world.pod_start_ms, 2_500);
    assert_eq!(scenario.world.nodes, 4);
    assert_eq!(scenario.world.agent_latency_ms, 7);
    let what: Vec<&What> = scenario.timeline.iter().map(|entry| &entry.what).collect();
    assert_eq!(
        what[0],
        &What::Fault(
            Fault::CrashProcess {
                restart_after_ms: None
            },
            Some(Target::Member(1))
        )
    );
    assert_eq!(
        what[7],
        &What::Fault(
            Fault::NodeLoss {
                for_ms: Some(300_000)
            },
            Some(Target::Node(3))
        )
    );
    assert_eq!(
        what[10],
        &What::Fault(Fault::DiskFull { for_ms: 15_000 }, Some(Target::Active))
    );
    assert_eq!(
        what[12],
        &What::Fault(
            Fault::AgentFlap {
                period_ms: 5_000,
                for_ms: 60_000
            },
            Some(Target::Active)
        )
    );
    assert_eq!(
        what[13],
        &What::Fault(
            Fault::OperatorCrash {
                restart_after_ms: 5_000,
                lose_log: false
            },
            None
        )
    );
    assert_eq!(
        what[15],
        &What::Fault(
            Fault::ApiErrors {
                rate: 0.25,
                for_ms: 60_000
            },
            None
        )
    );
    assert_eq!(
        what[18],
        &What::Action(UserAction::Switchover { to: Some(0) })
    );
    assert_eq!(
        what[19],
        &What::Action(UserAction::ConfigChange { hash: Some(42) })
    );
    assert_eq!(what[25], &What::Action(UserAction::ResumeFailover));
    assert_eq!(scenario.timeline[3].line, 32);
    assert_eq!(scenario.expect.max_lost_writes, 3);
}

#[test]
fn durations_are_written_as_go_writes_them() {
    let scenario = parse_text(
        "name: x\ntopology: master-slave\nduration: 1h30m\ntimeline:\n  - at: 3m30s\n    action: stop\n  - at: 1500ms\n    action: start\n",
    )
    .unwrap();
    assert_eq!(scenario.duration_ms, 5_400_000);
    assert_eq!(scenario.timeline[0].at_ms, 210_000);
    assert_eq!(scenario.timeline[1].at_ms, 1_500);
}

#[test]
fn a_minimal_scenario_takes_the_defaults() {
    let scenario = parse_text("name: quiet\ntopology: standalone\n").unwrap();
    assert_eq!(scenario.seed, 1);
    assert_eq!(scenario.duration_ms, 30 * 60_000);
    assert_eq!(scenario.cluster, Spec::defaults(Topology::Standalone));
    assert!(scenario.timeline.is_empty());
    assert_eq!(scenario.expect, Expect::default());
}

#[test]
fn load_reads_a_file_and_names_it() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("crash.yaml");
    std::fs::write(&path, COMMENTED_EXAMPLE).unwrap();
    assert_eq!(load(&path).unwrap().name, "active-process-crash");
    let missing = directory.path().join("absent.yaml");
    let error = load(&missing).unwrap_err();
    assert!(matches!(error, ScenarioError::Read { .. }));
    assert!(
        error
            .to_string()
            .starts_with(&missing.display().to_string())
    );
}

/// Asserts `text` is refused at `line` about `key`, with `fragment` in the message.
#[track_caller]
fn refused(text: &str, line: u32, key: &str, fragment: &str) {
    if let Err(failure) = check_refused(text, line, key, fragment) {
        panic!("{failure}");
    }
}

/// Whether `text` is refused at `line` about `key`, with `fragment` in the message.
fn check_refused(text: &str, line: u32, key: &str, fragment: &str) -> Result<(), String> {
    let error = match parse_text(text) {
        Ok(scenario) => return Err(format!("accepted: {scenario:?}\n{text}")),
        Err(error) => error,
    };
    let message = error.to_string();
    let prefix = format!("{FILE}:{line}: {key}: ");
    if !message.starts_with(&prefix) || !message.contains(fragment) {
        return Err(format!(
            "{message:?} is not {prefix:?}...{fragment:?}\n{text}"
        ));
    }
    if error.file() != Path::new(FILE) || error.line() != Some(line) || error.key() != Some(key) {
        return Err(format!("{error:?}: not {FILE}:{line}: {key}"));
    }
    Ok(())
}

/// A valid head; the cases below append to it (the timeline starts on line 4).
const HEAD: &str = "name: x\ntopology: master-slave\ntimeline:\n";

#[test]
fn unknown_fault_names_the_file_line_and_key() {
    let text = format!(
        "{HEAD}  - {{at: 1m, fault: delete-pod, target: active}}\n  - at: 2m\n    action: stop\n  - at: 3m\n    fault: crash-proces\n"
    );
    refused(
        &text,
        8,
        "timeline[2].fault",
        "unknown fault \"crash-proces\" (expected one of crash-process, hang-process, delete-pod",
    );
}

#[test]
fn mistakes_are_refused_with_file_line_and_key() {
    #[rustfmt::skip]
    let cases: &[(&str, u32, &str, &str)] = &[
        ("name: x\ntopology: master-slave\ncolor: red\n", 3, "color", "unknown key"),
        ("name: x\ntopology: master-slave\ncluster:\n  pollingIntervall: 5\n", 4, "cluster.pollingIntervall", "expected one of pollingInterval"),
        ("name: x\ntopology: master-slave\nworld:\n  nodes: 3\n  gravity: 9\n", 5, "world.gravity", "unknown key"),
        ("name: x\ntopology: master-slave\nexpect:\n  finalStat: Normal\n", 4, "expect.finalStat", "unknown key"),
        (&format!("{HEAD}  - at: 1m\n    action: dance\n"), 5, "timeline[0].action", "unknown action \"dance\" (expected one of switchover"),
        (&format!("{HEAD}  - at: 1m\n    fault: partition\n    target: active\n    for: 90\n"), 7, "timeline[0].for", "malformed duration 90"),
        ("name: x\ntopology: master-slave\nduration: 1m30\n", 3, "duration", "malformed duration \"1m30\""),
        (&format!("{HEAD}  - fault: delete-pod\n    target: active\n"), 4, "timeline[0].at", "missing"),
        ("topology: master-slave\nseed: 3\n", 1, "name", "missing"),
        ("name: x\nseed: 3\n", 1, "topology", "missing"),
        (&format!("{HEAD}  - at: 1m\n    fault: crash-process\n"), 4, "timeline[0].target", "crash-process needs a target"),
        (&format!("{HEAD}  - at: 1m\n    fault: operator-crash\n    target: active\n"), 6, "timeline[0].target", "operator-crash takes no target"),
        (&format!("{HEAD}  - at: 1m\n    fault: api-errors\n    rate: 0.5\n    for: 1m\n    target: standby\n" ), 8, "timeline[0].target", "api-errors takes no target"),
        (&format!("{HEAD}  - at: 1m\n    fault: api-errors\n    rate: 1.5\n    for: 1m\n"), 6, "timeline[0].rate", "from 0 to 1"),
        (&format!("{HEAD}  - at: 1m\n    fault: api-errors\n    rate: -0.1\n    for: 1m\n"), 6, "timeline[0].rate", "from 0 to 1"),
        (&format!("{HEAD}  - at: 1m\n    fault: delete-pod\n    target: member-2\n"), 6, "timeline[0].target", "there is no member-2"),
        (&format!("{HEAD}  - at: 1m\n    fault: node-loss\n    target: node-3\n"), 6, "timeline[0].target", "there is no node-3"),
        ("name: x\ntopology: standalone\ntimeline:\n  - {at: 1m, fault: delete-pod, target: member-1}\n", 4, "timeline[0].target", "there is no member-1"),
        ("name: x\ntopology: standalone\ntimeline:\n  - {at: 1m, fault: hang-process, target: standby, for: 1m}\n", 4, "timeline[0].target", "no standby"),
        ("name: x\ntopology: master-slave\nseed: seven\n", 3, "seed", "expected a whole number from 0"),
        ("name: x\ntopology: master-slave\nseed: -1\n", 3, "seed", "expected a whole number from 0"),
        ("name: x\ntopology: master-slave\ncluster: [1, 2]\n", 3, "cluster", "expected a mapping"),
        ("name: x\ntopology: master-slave\ncluster:\n  autoFailover: \"false\"\n", 4, "cluster.autoFailover", "expected true or false"),
        ("name: x\ntopology: master-slave\ncluster:\n  pollingInterval: \"10\"\n", 4, "cluster.pollingInterval", "expected a whole number, found the string \"10\""),
        ("name: x\ntopology: master-slave\ncluster:\n  nodeLostTimeout: 1000000000000\n", 4, "cluster.nodeLostTimeout", "nodeLostTimeout must be from 1 to 4294967295 seconds"),
        ("name: x\ntopology: master-slave\ncluster:\n  pollingInterval: 100\n  unreachableTimeout: 200\n  agentLeaseSeconds: 1\n", 6, "cluster.agentLeaseSeconds", "must exceed pollingInterval plus 2 seconds"),
        ("name: x\ntopology: ring\n", 2, "topology", "unknown topology \"ring\" (expected one of master-slave, standalone)"),
        ("name: x\ntopology: master-slave\nexpect:\n  visits: [Normal, Nromal]\n", 4, "expect.visits[1]", "unknown cluster state \"Nromal\""),
        ("name: x\ntopology: master-slave\nexpect:\n  finalState: WaitingForActive(member-7)\n", 4, "expect.finalState", "no member-7"),
        ("name: x\ntopology: master-slave\nexpect:\n  never: [Normal(member-0)]\n", 4, "expect.never[0]", "names no member"),
        ("name: x\ntopology: master-slave\ncluster:\n  replication: async\n  unreachableTimeout: 15\n", 5, "cluster.unreachableTimeout", "at least twice pollingInterval"),
        ("name: x\ntopology: master-slave\ncluster:\n  pollingInterval: 0\n", 4, "cluster.pollingInterval", "from 1 to 4294967295 seconds"),
        ("name: x\ntopology: master-slave\ncluster:\n  agentLeaseSeconds: 25\n", 4, "cluster.unreachableTimeout", "agentLeaseSeconds"),
        ("name: x\ntopology: master-slave\ncluster:\n  stopped: true\n", 4, "cluster.stopped", "stop and start actions"),
        ("name: x\ntopology: master-slave\ncluster:\n  switchover: {to: 1}\n", 4, "cluster.switchover", "switchover action"),
        (&format!("{HEAD}  - at: 1m\n    fault: partition\n    target: active\n    for: 1m\n    period: 5s\n" ), 8, "timeline[0].period", "partition takes no period (it takes target, for)"),
        (&format!("{HEAD}  - at: 1m\n    action: stop\n    to: member-1\n"), 6, "timeline[0].to", "stop takes no to (it takes no parameters)"),
        (&format!("{HEAD}  - at: 1m\n    fault: partition\n    action: stop\n"), 6, "timeline[0].action", "not both"),
        (&format!("{HEAD}  - at: 1m\n    target: active\n"), 4, "timeline[0].fault", "fault: or an action:"),
        (&format!("{HEAD}  - at: 1m\n    fault: partition\n    target: active\n"), 4, "timeline[0].for", "missing"),
        (&format!("{HEAD}  - at: 1m\n    fault: crash-process\n    target: node-0\n"), 6, "timeline[0].target", "crash-process hits a member"),
        (&format!("{HEAD}  - at: 1m\n    fault: node-loss\n    target: active\n"), 6, "timeline[0].target", "node-loss hits a node"),
        (&format!("{HEAD}  - at: 1m\n    fault: partition\n    target: the-active\n    for: 1m\n" ), 6, "timeline[0].target", "unknown target \"the-active\""),
        (&format!("{HEAD}  - at: 1m\n    fault: agent-flap\n    target: active\n    period: 0s\n    for: 1m\n" ), 7, "timeline[0].period", "longer than 0ms"),
        (&format!("{HEAD}  - at: 1m\n    fault: operator-crash\n    restartAfter: never\n"), 6, "timeline[0].restartAfter", "always restarts"),
        (&format!("{HEAD}  - at: 1m\n    action: switchover\n    to: member-2\n"), 6, "timeline[0].to", "no member-2"),
        (&format!("{HEAD}  - at: 1m\n    fault: slow-start\n    target: active\n    seconds: 1.2345\n" ), 7, "timeline[0].seconds", "at most three decimals"),
        (&format!("{HEAD}  - at: 40m\n    action: stop\n"), 4, "timeline[0].at", "after the end of the run (30m)"),
        (&format!("{HEAD}  - at: 1m\n    fault: delete-pod\n    target: active\n    target: standby\n" ), 7, "timeline[0].target", "written twice"),
        ("name: x\ntopology: master-slave\nexpect:\n  recoveredWithin: 2m\n", 4, "expect.finalState", "recoveredWithin counts"),
        ("name: x\ntopology: master-slave\nworld:\n  nodes: 0\n", 4, "world.nodes", "at least one node"),
        ("name: x\ntopology: master-slave\ntimeline: {at: 1m}\n", 3, "timeline", "expected a list"),
        ("name: \"\"\ntopology: master-slave\n", 1, "name", "empty"),
        ("name: 12\ntopology: master-slave\n", 1, "name", "expected a string, found 12: quote it if it is one"),
    ];
    assert!(cases.len() >= 12);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(text, line, key, fragment)| check_refused(text, *line, key, fragment).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A scenario whose `key:` (a dotted path) is `value`, its other keys valid; the key's line.
fn with_value(key: &str, value: &str) -> (String, u32) {
    let entry = |fields: &str| format!("{HEAD}  - at: 1m\n{fields}");
    match key {
        "duration" => (
            format!("name: x\ntopology: master-slave\nduration: {value}\n"),
            3,
        ),
        "expect.recoveredWithin" => (
            format!(
                "name: x\ntopology: master-slave\nexpect:\n  finalState: Normal\n  \
                 recoveredWithin: {value}\n"
            ),
            5,
        ),
        "timeline[0].at" => (format!("{HEAD}  - at: {value}\n    action: stop\n"), 4),
        "timeline[0].for" => (
            entry(&format!(
                "    fault: partition\n    target: active\n    for: {value}\n"
            )),
            7,
        ),
        "timeline[0].restartAfter" => (
            entry(&format!(
                "    fault: crash-process\n    target: active\n    restartAfter: {value}\n"
            )),
            7,
        ),
        "timeline[0].period" => (
            entry(&format!(
                "    fault: agent-flap\n    target: active\n    period: {value}\n    for: 1m\n"
            )),
            7,
        ),
        "timeline[0].seconds" => (
            entry(&format!(
                "    fault: slow-start\n    target: active\n    seconds: {value}\n"
            )),
            7,
        ),
        world => {
            let name = world.strip_prefix("world.").expect("a key of world:");
            (
                format!("name: x\ntopology: master-slave\nworld:\n  {name}: {value}\n"),
                4,
            )
        }
    }
}

/// Every key that gives a time, by how it writes one: a duration, seconds, milliseconds.
const DURATION_KEYS: &[&str] = &[
    "duration",
    "expect.recoveredWithin",
    "timeline[0].at",
    "timeline[0].for",
    "timeline[0].restartAfter",
    "timeline[0].period",
];
const SECONDS_KEYS: &[&str] = &[
    "timeline[0].seconds",
    "world.podStartSeconds",
    "world.rebuildSeconds",
];
const MILLIS_KEYS: &[&str] = &[
    "world.replicationLagMs",
    "world.apiLatencyMs",
    "world.agentLatencyMs",
];

#[test]
fn every_time_is_at_most_a_day() {
    let kinds: [(&[&str], &str, &[&str]); 3] = [
        (
            DURATION_KEYS,
            "24h",
            &[
                "24h1ms",
                "86400001ms",
                "25h",
                "5124095576030h",
                "18446744073709551s615ms",
            ],
        ),
        (
            SECONDS_KEYS,
            "86400",
            &[
                "86400.001",
                "86401",
                "1099511627.776",
                "18446744073709551615",
            ],
        ),
        (
            MILLIS_KEYS,
            "86400000",
            &["86400001", "18446744073709551615"],
        ),
    ];
    for (keys, longest, too_long) in kinds {
        for key in keys {
            // The longest time is accepted everywhere (`at` within a run that long).
            let (text, line) = with_value(key, longest);
            let text = if *key == "timeline[0].at" {
                text.replace("timeline:", "duration: 24h\ntimeline:")
            } else {
                text
            };
            if let Err(error) = parse_text(&text) {
                panic!("{key} at the limit: {error}\n{text}");
            }
            for written in too_long {
                let (text, _) = with_value(key, written);
                let unit = if SECONDS_KEYS.contains(key) {
                    " seconds"
                } else if MILLIS_KEYS.contains(key) {
                    "ms"
                } else {
                    ""
                };
                refused(
                    &text,
                    line,
                    key,
                    &format!("{written}{unit} is longer than 24h, the longest a run may last"),
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the key and however far beyond, a time longer than a day is refused with the
    /// file, the line, the key and the limit.
    #[test]
    fn any_time_beyond_a_day_is_refused(
        key in proptest::sample::select([DURATION_KEYS, SECONDS_KEYS, MILLIS_KEYS].concat()),
        ms in prop_oneof![
            MAX_DURATION_MS + 1..=u64::MAX,
            MAX_DURATION_MS + 1..=MAX_DURATION_MS * 1_000,
            Just(MAX_DURATION_MS + 1),
            Just(u64::MAX),
        ],
    ) {
        let written = if SECONDS_KEYS.contains(&key) {
            format!("{}.{:03}", ms / 1_000, ms % 1_000)
        } else if MILLIS_KEYS.contains(&key) {
            ms.to_string()
        } else {
            format!("{ms}ms")
        };
        let (text, line) = with_value(key, &written);
        let fragment = if SECONDS_KEYS.contains(&key) {
            // The message writes the number as it was read, a binary floating-point number.
            " seconds is longer than 24h, the longest a run may last".to_owned()
        } else if MILLIS_KEYS.contains(&key) {
            format!("{written}ms is longer than 24h, the longest a run may last")
        } else {
            format!("{written} is longer than 24h, the longest a run may last")
        };
        let checked = check_refused(&text, line, key, &fragment);
        prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
    }
}

#[test]
fn a_copy_rate_is_from_one_mebibyte_a_second() {
    let at = |value: u64| with_value("world.copyMegabytesPerSecond", &value.to_string()).0;
    for value in [1, MAX_COPY_MEGABYTES_PER_SECOND] {
        let world = parse_text(&at(value)).expect("in range").world;
        assert_eq!(world.copy_megabytes_per_second, value);
    }
    for value in [0, MAX_COPY_MEGABYTES_PER_SECOND + 1, u64::MAX] {
        refused(
            &at(value),
            4,
            "world.copyMegabytesPerSecond",
            &format!(
                "a copy moves from 1 to {MAX_COPY_MEGABYTES_PER_SECOND} MiB a second, not {value}"
            ),
        );
    }
    // The largest database at the slowest rate: a copy of 2^30 s, computed without wrapping.
    let mut world = parse_text(&at(1)).unwrap().world;
    world.data_gigabytes = MAX_DATA_GIGABYTES;
    assert_eq!(world.copy_ms(), world.rebuild_ms + (1_u64 << 30) * 1000);
    world.data_gigabytes = 300;
    world.copy_megabytes_per_second = 100;
    assert_eq!(world.copy_ms(), 20_000 + 3_072_000);
}

#[test]
fn counts_and_sizes_are_bounded() {
    let max = |key: &str, value: u64| with_value(key, &value.to_string()).0;
    for (key, limit) in [
        ("world.nodes", u64::from(MAX_NODES)),
        ("world.writesPerSecond", u64::from(MAX_WRITES_PER_SECOND)),
        ("world.dataGigabytes", MAX_DATA_GIGABYTES),
    ] {
        parse_text(&max(key, limit)).unwrap_or_else(|error| panic!("{key}: {error}"));
        for value in [limit + 1, u64::from(u32::MAX)] {
            refused(
                &max(key, value),
                4,
                key,
                &format!(
                    "{value} {} more than the {limit}",
                    match key {
                        "world.nodes" => "nodes are",
                        "world.dataGigabytes" => "GiB are",
                        _ => "writes a second are",
                    }
                ),
            );
        }
    }
    let timeline = |entries: usize| {
        format!(
            "{HEAD}{}",
            "  - {at: 1m, action: pause-failover}\n".repeat(entries)
        )
    };
    assert_eq!(
        parse_text(&timeline(MAX_TIMELINE_ENTRIES))
            .unwrap()
            .timeline
            .len(),
        MAX_TIMELINE_ENTRIES
    );
    refused(
        &timeline(MAX_TIMELINE_ENTRIES + 1),
        4,
        "timeline",
        "1001 entries are more than the 1000 a timeline may have",
    );
    for key in ["visits", "never"] {
        let states = |count: usize| {
            format!(
                "name: x\ntopology: master-slave\nexpect:\n  {key}: [{}]\n",
                vec!["Normal"; count].join(", ")
            )
        };
        parse_text(&states(MAX_EXPECTED_STATES)).unwrap();
        refused(
            &states(MAX_EXPECTED_STATES + 1),
            4,
            &format!("expect.{key}"),
            "101 states are more than the 100 it may list",
        );
    }
    let size = usize::try_from(MAX_FILE_BYTES).unwrap();
    let padded = |bytes: usize| {
        let text = "name: x\ntopology: master-slave\n";
        format!("{text}{}", "#".repeat(bytes - text.len()))
    };
    parse_text(&padded(size)).unwrap();
    let error = parse_text(&padded(size + 1)).unwrap_err();
    assert!(matches!(error, ScenarioError::TooLarge { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "{FILE}: cannot read: it is larger than 1048576 bytes, the most a scenario file may have"
        )
    );
}

#[test]
fn names_are_printable_short_and_name_no_path() {
    let named = |name: &str| format!("name: {name}\ntopology: master-slave\n");
    for name in [
        "x".to_owned(),
        "\"a name, with spaces: é\"".to_owned(),
        "n".repeat(MAX_NAME_BYTES),
        "é".repeat(MAX_NAME_BYTES / 2),
        "..".to_owned(),
    ] {
        parse_text(&named(&name)).unwrap_or_else(|error| panic!("{name}: {error}"));
    }
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("\"a\\u0007b\"", "the name contains the control character '\\u{7}': a name is printable"),
        ("\"a\\tb\"", "the name contains the control character '\\t': a name is printable"),
        ("\"a\\nb\"", "control character '\\n'"),
        ("\"a\\u0000b\"", "control character '\\0'"),
        ("\"a\\u009bb\"", "control character '\\u{9b}'"),
        ("../../etc/passwd", "the name contains '/': a name names files, and has no path separator"),
        ("a/b", "contains '/'"),
        ("\"a\\\\b\"", "contains '\\\\'"),
        ("\"   \"", "the name is empty"),
    ];
    for (name, fragment) in cases {
        refused(&named(name), 1, "name", fragment);
    }
    refused(
        &named(&"n".repeat(MAX_NAME_BYTES + 1)),
        1,
        "name",
        "the name is 201 bytes long, more than the 200 a name may have",
    );
    refused(
        &named(&"é".repeat(MAX_NAME_BYTES / 2 + 1)),
        1,
        "name",
        "the name is 202 bytes long",
    );
}

#[test]
fn load_reads_only_regular_files_of_bounded_size() {
    let directory = tempfile::tempdir().unwrap();
    let error = load(directory.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: cannot read: it is a directory, not a regular file",
            directory.path().display()
        )
    );
    let error = load(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/dev/zero: cannot read: it is a character device, not a regular file"
    );
    let big = directory.path().join("big.yaml");
    let mut text = String::from("name: big\ntopology: master-slave\n");
    text.push_str(&"#".repeat(usize::try_from(MAX_FILE_BYTES).unwrap() - text.len()));
    std::fs::write(&big, &text).unwrap();
    assert_eq!(load(&big).unwrap().name, "big");
    text.push('#');
    std::fs::write(&big, &text).unwrap();
    let error = load(&big).unwrap_err();
    assert!(matches!(error, ScenarioError::TooLarge { .. }), "{error}");
    assert!(error.to_string().starts_with(&big.display().to_string()));
    let binary = directory.path().join("binary.yaml");
    std::fs::write(&binary, b"name: \xff\n").unwrap();
    let error = load(&binary).unwrap_err();
    assert!(error.to_string().contains("not UTF-8 text"), "{error}");
}

/// A FIFO is refused without opening it: opening one waits for a writer.
#[cfg(unix)]
#[test]
fn load_refuses_a_fifo_without_waiting() {
    let directory = tempfile::tempdir().unwrap();
    let fifo = directory.path().join("fifo.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|status| status.success()) {
        panic!("mkfifo could not make {}", fifo.display());
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let _ = sender.send(
            load(&path)
                .map(|scenario| scenario.name)
                .map_err(|error| error.to_string()),
        );
    });
    let outcome = receiver
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("load returns at once for a FIFO");
    assert_eq!(
        outcome.unwrap_err(),
        format!(
            "{}: cannot read: it is a FIFO, not a regular file",
            fifo.display()
        )
    );
}

#[test]
fn invalid_yaml_names_the_file_and_line() {
    for (text, line) in [
        ("name: x\ntopology: master-slave\n- item\n", 3),
        (
            "name: x\ntopology: master-slave\ntimeline:\n  - at: 1m\n    fault: \"unterminated\n",
            5,
        ),
    ] {
        let error = parse_text(text).unwrap_err();
        assert!(matches!(error, ScenarioError::Syntax { .. }), "{error}");
        assert_eq!(error.line(), Some(line), "{error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("{FILE}:{line}: invalid YAML: ")),
            "{error}"
        );
    }
    let error = parse_text("").unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("{FILE}:1: name: missing (every scenario has a name)")
    );
    let error = parse_text("- a\n- b\n").unwrap_err();
    assert!(error.to_string().contains("expected a mapping"), "{error}");
    // Anchors and aliases are YAML: what they spell is checked like the rest.
    refused(
        "name: x\nbase: &b {a: 1}\nother: *b\n",
        2,
        "base",
        "unknown key",
    );
}

#[test]
fn the_commented_example_and_the_full_example_round_trip() {
    for text in [COMMENTED_EXAMPLE, EVERYTHING] {
        let scenario = parse_text(text).unwrap();
        let written = to_yaml(&scenario);
        let back = parse(Path::new("written.yaml"), &written)
            .unwrap_or_else(|error| panic!("{error}\n{written}"));
        assert_eq!(without_lines(back.clone()), without_lines(scenario));
        // Written twice, the text is the same: the format is a fixed point.
        assert_eq!(to_yaml(&back), written);
    }
}

#[test]
fn the_written_form_reads_like_the_catalog() {
    let scenario = parse_text(COMMENTED_EXAMPLE).unwrap();
    let expected = r#"name: active-process-crash
description: The active's database process dies; the standby takes over and no write is lost.
topology: master-slave
seed: 7
duration: 30m
timeline:
  - at: 2m
    fault: crash-process
    target: active
    restartAfter: 10s
  - at: 10m
    fault: partition
    target: standby
    for: 1m30s
  - at: 20m
    action: switchover
expect:
  finalState: Normal
  recoveredWithin: 2m
  visits: [ActiveDown, StandbyDown, StandbyPartiallyStarting, Normal]
  never: [BothDown, ManualInterventionRequired]
  maxFullCopies: 1
  maxWriteOutage: 1m
  maxDegradedTime: 2m
"#;
    assert_eq!(to_yaml(&scenario), expected);
}

/// Timeline lines are positions in a file, not part of what a scenario says.
fn without_lines(mut scenario: Scenario) -> Scenario {
    for entry in &mut scenario.timeline {
        entry.line = 0;
    }
    scenario
}

// ---------------------------------------------------------------------------------------------
// Generated scenarios: whatever the language can say, `to_yaml` writes and `parse` reads back.

fn topology() -> impl Strategy<Value = Topology> {
    prop_oneof![Just(Topology::MasterSlave), Just(Topology::Standalone)]
}

fn cluster(topology: Topology) -> impl Strategy<Value = Spec> {
    (
        (
            1_u32..=60,
            1_u32..=100,
            0_u32..=1_000,
            any::<bool>(),
            any::<bool>(),
        ),
        (
            0..=MAX_BYTES,
            0..=MAX_BYTES,
            1_u32..=u32::MAX,
            1_u32..=u32::MAX,
        ),
        (1_u32..=10_000, 1_u32..=10_000, 1_u32..=100, 1_u32..=100),
        (proptest::option::of(1_u32..=u32::MAX), any::<bool>()),
    )
        .prop_map(move |(timing, bytes, timeouts, rest)| {
            let (polling, lease, extra, async_replication, auto_failover) = timing;
            let mut spec = Spec::defaults(topology);
            spec.polling_interval_s = polling;
            // The lease outlasts the gap between two polls.
            let gap = polling + POLL_DEADLINE_S;
            spec.agent_lease_s = gap + lease;
            // The smallest timeout both rules allow, and then some.
            spec.unreachable_timeout_s = (2 * polling).max(spec.agent_lease_s * 4 / 3 + 1) + extra;
            spec.replication = if async_replication {
                Replication::Async
            } else {
                Replication::Sync
            };
            spec.auto_failover = auto_failover;
            (spec.max_lag_on_failover_bytes, spec.lag_threshold_bytes) = (bytes.0, bytes.1);
            // Every wait for news from a poll outlasts the gap between two polls.
            let wait = |seconds: u32| seconds.max(gap + 1);
            (spec.node_lost_timeout_s, spec.lag_timeout_s) = (bytes.2, wait(bytes.3));
            (spec.init_timeout_s, spec.standby_start_timeout_s) =
                (wait(timeouts.0), wait(timeouts.1));
            (spec.max_rebuild_attempts, spec.max_restart_attempts) = (timeouts.2, timeouts.3);
            // Absent means the default in a scenario file: a wait without end cannot be written.
            spec.wait_for_active_timeout_s = rest.0.or(spec.wait_for_active_timeout_s).map(wait);
            spec
        })
}

fn world() -> impl Strategy<Value = WorldConfig> {
    (
        prop_oneof![1_u32..=20, 1_u32..=MAX_NODES, Just(MAX_NODES)],
        seconds(),
        seconds(),
        prop_oneof![0_u32..=MAX_WRITES_PER_SECOND, Just(MAX_WRITES_PER_SECOND)],
        millis(),
        millis(),
        millis(),
        prop_oneof![
            0_u64..=1_000,
            0_u64..=MAX_DATA_GIGABYTES,
            Just(MAX_DATA_GIGABYTES)
        ],
        prop_oneof![
            1_u64..=1_000,
            1_u64..=MAX_COPY_MEGABYTES_PER_SECOND,
            Just(MAX_COPY_MEGABYTES_PER_SECOND)
        ],
        any::<(bool, bool)>(),
    )
        .prop_map(
            |(nodes, pod, rebuild, writes, lag, api, agent, data, copy, (history, rewind))| {
                WorldConfig {
                    nodes,
                    pod_start_ms: pod,
                    rebuild_ms: rebuild,
                    data_gigabytes: data,
                    copy_megabytes_per_second: copy,
                    writes_per_second: writes,
                    replication_lag_ms: lag,
                    api_latency_ms: api,
                    agent_latency_ms: agent,
                    agents_report_history: history,
                    agents_rewind: rewind,
                }
            },
        )
}

/// Spans written in seconds: whole seconds and milliseconds, up to the largest allowed.
fn seconds() -> impl Strategy<Value = u64> {
    prop_oneof![
        0_u64..=MAX_DURATION_MS,
        (0_u64..=MAX_DURATION_MS / 1_000).prop_map(|s| s * 1_000),
        Just(MAX_DURATION_MS),
    ]
}

/// Durations as a shrinker leaves them: any millisecond count, often a round one, up to the
/// largest allowed.
fn millis() -> impl Strategy<Value = u64> {
    prop_oneof![
        0_u64..=10_000_000,
        0_u64..=MAX_DURATION_MS,
        (0_u64..=MAX_DURATION_MS / 60_000).prop_map(|m| m * 60_000),
        (0_u64..=MAX_DURATION_MS / 3_600_000).prop_map(|h| h * 3_600_000),
        Just(MAX_DURATION_MS),
    ]
}

fn member_target(members: u8) -> impl Strategy<Value = Target> {
    let mut choices = vec![
        Just(Target::Active).boxed(),
        (0..members).prop_map(Target::Member).boxed(),
    ];
    if members > 1 {
        choices.push(Just(Target::Standby).boxed());
    }
    proptest::strategy::Union::new(choices)
}

fn node_target(members: u8, nodes: u32) -> impl Strategy<Value = Target> {
    let mut choices = vec![
        Just(Target::NodeOfActive).boxed(),
        (0..nodes).prop_map(Target::Node).boxed(),
    ];
    if members > 1 {
        choices.push(Just(Target::NodeOfStandby).boxed());
    }
    proptest::strategy::Union::new(choices)
}

fn what(members: u8, nodes: u32) -> impl Strategy<Value = What> {
    let member = move || member_target(members);
    prop_oneof![
        (proptest::option::of(millis()), member()).prop_map(|(restart, target)| What::Fault(
            Fault::CrashProcess {
                restart_after_ms: restart
            },
            Some(target)
        )),
        (millis(), member())
            .prop_map(|(ms, t)| What::Fault(Fault::HangProcess { for_ms: ms }, Some(t))),
        member().prop_map(|t| What::Fault(Fault::DeletePod, Some(t))),
        (millis(), member())
            .prop_map(|(ms, t)| What::Fault(Fault::Partition { for_ms: ms }, Some(t))),
        (millis(), member())
            .prop_map(|(ms, t)| What::Fault(Fault::Isolate { for_ms: ms }, Some(t))),
        (proptest::option::of(millis()), node_target(members, nodes))
            .prop_map(|(ms, t)| What::Fault(Fault::NodeLoss { for_ms: ms }, Some(t))),
        (millis(), member())
            .prop_map(|(ms, t)| What::Fault(Fault::ReplicationStall { for_ms: ms }, Some(t))),
        (millis(), member())
            .prop_map(|(ms, t)| What::Fault(Fault::ReplicationBreak { for_ms: ms }, Some(t))),
        (millis(), member())
            .prop_map(|(ms, t)| What::Fault(Fault::DiskFull { for_ms: ms }, Some(t))),
        (seconds(), member())
            .prop_map(|(ms, t)| What::Fault(Fault::SlowStart { start_ms: ms }, Some(t))),
        (1_u64..=100_000, millis(), member()).prop_map(|(period, ms, t)| What::Fault(
            Fault::AgentFlap {
                period_ms: period,
                for_ms: ms
            },
            Some(t)
        )),
        (millis(), any::<bool>()).prop_map(|(ms, lose)| What::Fault(
            Fault::OperatorCrash {
                restart_after_ms: ms,
                lose_log: lose
            },
            None
        )),
        (0.0_f64..=1.0, millis())
            .prop_map(|(rate, ms)| What::Fault(Fault::ApiErrors { rate, for_ms: ms }, None)),
        proptest::option::of(0..members).prop_map(|to| What::Action(UserAction::Switchover { to })),
        proptest::option::of(any::<u64>())
            .prop_map(|hash| What::Action(UserAction::ConfigChange { hash })),
        prop_oneof![
            Just(UserAction::Stop),
            Just(UserAction::Start),
            Just(UserAction::Reexamine),
            Just(UserAction::PauseFailover),
            Just(UserAction::ResumeFailover),
        ]
        .prop_map(What::Action),
    ]
}

fn state_name(members: u8) -> impl Strategy<Value = ClusterStateName> {
    prop_oneof![
        proptest::sample::select(StateKind::ALL.to_vec()).prop_map(ClusterStateName::of_kind),
        (
            prop_oneof![
                Just(StateKind::WaitingForActive),
                Just(StateKind::Switchover)
            ],
            0..members
        )
            .prop_map(|(kind, member)| ClusterStateName {
                kind,
                member: Some(MemberId(member)),
            }),
    ]
}

fn expect(members: u8) -> impl Strategy<Value = Expect> {
    (
        proptest::option::of((state_name(members), proptest::option::of(millis()))),
        proptest::collection::vec(state_name(members), 0..4),
        proptest::collection::vec(state_name(members), 0..4),
        any::<u64>(),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(millis()),
            proptest::option::of(millis()),
        ),
    )
        .prop_map(
            |(last, visits, never, max_lost_writes, (copies, outage, degraded))| Expect {
                final_state: last.as_ref().map(|(name, _)| *name),
                recovered_within_ms: last.and_then(|(_, within)| within),
                visits,
                never,
                max_lost_writes,
                max_full_copies: copies,
                max_write_outage_ms: outage,
                max_degraded_ms: degraded,
            },
        )
}

/// Every kind of name the language accepts, up to the longest.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,20}",
        any::<String>()
            .prop_map(|text| {
                let mut name: String = text
                    .chars()
                    .filter(|c| !c.is_control() && !matches!(c, '/' | '\\'))
                    .collect();
                while name.len() > MAX_NAME_BYTES {
                    name.pop();
                }
                name
            })
            .prop_filter("a name is not blank", |name| !name.trim().is_empty()),
        Just("n".repeat(MAX_NAME_BYTES)),
        Just("é".repeat(MAX_NAME_BYTES / 2)),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (topology(), world()).prop_flat_map(|(topology, world)| {
        let members = topology.member_count();
        (
            (name(), any::<String>(), any::<u64>(), millis()),
            cluster(topology),
            proptest::collection::vec((any::<u64>(), what(members, world.nodes)), 0..8),
            expect(members),
        )
            .prop_map(
                move |((name, description, seed, duration_ms), cluster, entries, expect)| {
                    let timeline = entries
                        .into_iter()
                        .map(|(at, what)| TimelineEntry {
                            at_ms: at % (duration_ms + 1),
                            what,
                            line: 0,
                        })
                        .collect();
                    Scenario {
                        name,
                        description,
                        topology,
                        seed,
                        duration_ms,
                        cluster,
                        world: world.clone(),
                        timeline,
                        expect,
                    }
                },
            )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn what_to_yaml_writes_parse_reads_back(scenario in scenario()) {
        let written = to_yaml(&scenario);
        let back = parse(Path::new("shrunk.yaml"), &written);
        prop_assert!(back.is_ok(), "{:?}\n{}", back.err().map(|e| e.to_string()), written);
        let back = back.unwrap();
        prop_assert_eq!(to_yaml(&back), written.clone());
        prop_assert_eq!(without_lines(back), scenario);
    }
}

// ---------------------------------------------------------------------------------------------
// Mutated input: never a panic, whatever the bytes.

/// Pieces of YAML that mean something to the parser, to splice into valid files.
const SPLICES: &[&str] = &[
    ":",
    " ",
    "\n",
    "  ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "|",
    ">",
    "---\n",
    "...\n",
    "\t",
    "?",
    "%YAML 1.2\n",
    "~",
    "null",
    "-1",
    "1e999",
    "0x",
    ".nan",
    "member-",
    "node-",
    "99999999999999999999",
    "ms",
    "h",
    "never",
    "\u{feff}",
    "\r",
    "é",
    "(",
    ")",
    "\\",
];

#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Replace(usize, char),
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut out: Vec<char> = text.chars().collect();
    for mutation in mutations {
        let len = out.len().max(1);
        match *mutation {
            Mutation::Delete(at, count) => {
                let start = at % len;
                let end = (start + count % 8).min(out.len());
                if start < end {
                    out.drain(start..end);
                }
            }
            Mutation::Insert(at, piece) => {
                let at = (at % len).min(out.len());
                let piece: Vec<char> = SPLICES[piece % SPLICES.len()].chars().collect();
                out.splice(at..at, piece);
            }
            Mutation::DuplicateLine(line) | Mutation::SwapLines(line, _) => {
                let text: String = out.iter().collect();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let count = lines.len();
                let first = line % count;
                if let Mutation::SwapLines(_, other) = mutation {
                    lines.swap(first, other % count);
                } else {
                    lines.insert(first, lines[first]);
                }
                out = lines.join("\n").chars().collect();
            }
            Mutation::Replace(at, c) => {
                if !out.is_empty() {
                    let at = at % out.len();
                    out[at] = c;
                }
            }
        }
    }
    out.into_iter().collect()
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Insert(a, b)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), any::<char>()).prop_map(|(a, c)| Mutation::Replace(a, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn mutated_scenarios_never_panic(
        base in prop_oneof![Just(COMMENTED_EXAMPLE), Just(EVERYTHING)],
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let text = mutate(base, &mutations);
        if let Err(error) = parse_text(&text) {
            // Every refusal names the file, and a line within (or just past) the text.
            let message = error.to_string();
            prop_assert!(message.starts_with(FILE), "{}", message);
            // YAML breaks lines at `\r` alone too, which `str::lines` does not.
            let breaks = text.replace("\r\n", "\n").chars().filter(|c| matches!(c, '\n' | '\r')).count();
            let lines = u32::try_from(breaks).unwrap_or(u32::MAX);
            prop_assert!(error.line().is_some_and(|line| line >= 1 && line <= lines + 1), "{} in\n{}", message, text);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse_text(&text);
    }
}

/// Every scenario of the catalog is written back by `to_yaml` to an equal scenario, so that
/// anything the catalog says, a shrunk exploration can say too.
#[test]
fn the_catalog_round_trips() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let entries = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("{}: {error}", directory.display()));
    let mut paths: Vec<_> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|error| panic!("{}: {error}", directory.display()))
                .path()
        })
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    paths.sort();
    // The catalog has 51 files: fewer than 40 means this is not the catalog, or most of it is gone.
    assert!(
        paths.len() >= 40,
        "{} holds {} scenario files",
        directory.display(),
        paths.len()
    );
    for path in paths {
        let scenario = load(&path).unwrap_or_else(|error| panic!("{error}"));
        let written = to_yaml(&scenario);
        let back = parse(&path, &written).unwrap_or_else(|error| panic!("{error}\n{written}"));
        assert_eq!(
            without_lines(back),
            without_lines(scenario),
            "{}",
            path.display()
        );
    }
}

#[test]
fn keys_driven_by_actions_are_not_offered_as_expected() {
    let error =
        parse_text("name: x\ntopology: master-slave\ncluster:\n  stoped: true\n").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("autoFailover"), "{message}");
    assert!(!message.contains("stopped"), "{message}");
    assert!(!message.contains("reexamine"), "{message}");
}
