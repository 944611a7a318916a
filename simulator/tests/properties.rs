//! Property tests on the simulator's world: scenarios generated from the whole scenario language
//! (every fault and action, targets of the kind each fault hits, extreme but valid parameters,
//! entries from the first milliseconds of initialization to the end of the fault phase), in both
//! topologies and both replication modes, each run on the world with every invariant checked
//! after every step, the timer table included, and judged as `explore` judges a seed: after a
//! quiet phase long enough for a correct recovery, the cluster is back in `Normal` without losing
//! acknowledged writes beyond what async accepts. The same scenario run twice gives the same
//! trace hash, every record's bytes included.
//!
//! Where `explore` draws from its own seeds, these strategies are proptest's: a failure shrinks
//! to a small scenario, printed as a file that `tandem-sim run --check-timer-table FILE` fails on
//! the same way. The configuration and the world are explore's own draws, and so is the
//! judgement (`tandem_sim::explore`): the attempt budgets, the loss budget, the quiet phase, the
//! rules about nodes lost for good and reboots.
//!
//! The cases come from a fixed seed, so that every run checks the same ones; set
//! `PROPTEST_RNG_SEED` to draw others. A failure proptest finds is kept in
//! `properties.proptest-regressions` beside this file and tried first in later runs, by every
//! test of the file: commit it with the fix.
//!
//! Findings the engine does not pass yet are known failures: a minimal scenario each in
//! `tests/known-failures/`, which must keep failing the way it is recorded, and the cases of
//! the fixed seed that hit them, set aside by fingerprint ([`KNOWN_CASES`]). Drawn from another
//! seed, cases that hit them fail the property.

use proptest::prelude::*;
use proptest::strategy::{Union, ValueTree};
use proptest::test_runner::{RngSeed, TestError, TestRunner};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use strum::IntoEnumIterator;
use tandem_engine::{Spec, StateKind, Topology};
use tandem_sim::explore::{self, EARLY_MS, FLAP_LIMIT_MS, SLOW_START_LIMIT_MS};
use tandem_sim::run::{Rng, RunOptions, RunReport, Sabotage, run};
use tandem_sim::scenario::{
    ClusterStateName, Fault, FaultKind, Millis, Scenario, Target, TimelineEntry, UserAction,
    UserActionKind, What, WorldConfig, load, parse, to_yaml,
};
use tandem_sled::EventLog;

/// Master-slave cases in every run: about 15 s of one core in release.
const MASTER_SLAVE_CASES: u32 = 2_000;

/// Standalone cases in every run: about 15 s of one core in release.
const STANDALONE_CASES: u32 = 3_500;

/// Scenarios run twice for determinism, of either topology.
const DETERMINISM_CASES: u32 = 100;

/// The seed of a run's cases, so that a run is reproducible. Set `PROPTEST_RNG_SEED` to draw
/// other cases (and print the seed to reproduce them).
const CI_SEED: u64 = 0x0051_3B0A_2026;

/// The simulated time of a case: explore's default `--duration`.
const DURATION_MS: Millis = 3_600_000;

/// Faults and actions drawn per case, at most (a `stop` with its `start`, and a
/// `pause-failover` with its `resume-failover`, are one draw).
const MAX_DRAWS: usize = 8;

fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig {
        cases,
        // Each shrinking step is a run of a simulated hour.
        max_shrink_iters: 1_024,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(CI_SEED);
    }
    config
}

// --- the strategies ------------------------------------------------------------------------------

/// When an entry fires: often in the first seconds, to the millisecond, while the cluster
/// initializes and there may be no active yet; otherwise anywhere in the fault phase, its first
/// and last moments included.
fn at(fault_phase: Millis) -> impl Strategy<Value = Millis> {
    prop_oneof![
        1 => Just(0),
        2 => 0..10_000_u64,
        2 => 0..EARLY_MS,
        6 => 0..=fault_phase,
        1 => Just(fault_phase),
    ]
}

/// How long a fault lasts, when it may last until `limit`: from nothing (or a millisecond) to
/// `limit` itself, short ones more often.
fn lasting(limit: Millis) -> impl Strategy<Value = Millis> {
    prop_oneof![
        1 => Just(0),
        1 => Just(1.min(limit)),
        4 => 0..=limit.min(60_000),
        3 => 0..=limit,
        1 => Just(limit),
    ]
}

/// A member, by role or by ordinal (roles resolve when the entry fires).
fn member(topology: Topology) -> impl Strategy<Value = Target> {
    let members = topology.member_count();
    let mut choices = vec![
        Just(Target::Active).boxed(),
        (0..members).prop_map(Target::Member).boxed(),
    ];
    if members > 1 {
        choices.push(Just(Target::Standby).boxed());
    }
    Union::new(choices)
}

/// A node, by whose it is or by ordinal.
fn node(topology: Topology, nodes: u32) -> impl Strategy<Value = Target> {
    let mut choices = vec![
        Just(Target::NodeOfActive).boxed(),
        (0..nodes).prop_map(Target::Node).boxed(),
    ];
    if topology.member_count() > 1 {
        choices.push(Just(Target::NodeOfStandby).boxed());
    }
    Union::new(choices)
}

fn entry(at_ms: Millis, what: What) -> TimelineEntry {
    TimelineEntry {
        at_ms,
        what,
        line: 0,
    }
}

/// One draw: a fault or an action at some time of the fault phase, or a pair of actions.
///
/// Every fault of the language hits any target of its kind (a replication fault may hit the
/// active, a full disk the standby: a person may write that) and ends within the fault phase, so
/// that the quiet phase stays what explore's judgement counts on. Explore's limits apply where
/// its judgement needs them: a reboot stays shorter than [`explore::reboot_limit_ms`] (a longer
/// one rightly counts as a lost node) and a slow start shorter than [`SLOW_START_LIMIT_MS`] (what
/// `standbyStartTimeout` leaves for one), and an agent flap shorter than [`FLAP_LIMIT_MS`] (a
/// promotion that keeps failing ends in `ManualInterventionRequired` by design). A `stop` comes with a later `start` and a
/// `pause-failover` with a later `resume-failover`, both within the fault phase: a cluster left
/// stopped or paused rightly never returns to `Normal`. A `start` or a `resume-failover` may also
/// come alone.
fn draw(
    topology: Topology,
    spec: &Spec,
    world: &WorldConfig,
    fault_phase: Millis,
) -> impl Strategy<Value = Vec<TimelineEntry>> + use<> {
    let longest_reboot = explore::reboot_limit_ms(spec) - 1;
    let (members, nodes) = (topology.member_count(), world.nodes);
    at(fault_phase).prop_flat_map(move |at| {
        let left = fault_phase - at;
        let fault = |fault: Fault, target: Option<Target>| What::Fault(fault, target);
        let what = prop_oneof![
            (proptest::option::of(lasting(left)), member(topology)).prop_map(
                move |(restart_after_ms, target)| fault(
                    Fault::CrashProcess { restart_after_ms },
                    Some(target)
                )
            ),
            (lasting(left), member(topology)).prop_map(move |(for_ms, target)| fault(
                Fault::HangProcess { for_ms },
                Some(target)
            )),
            member(topology).prop_map(move |target| fault(Fault::DeletePod, Some(target))),
            (lasting(left), member(topology))
                .prop_map(move |(for_ms, target)| fault(Fault::Partition { for_ms }, Some(target))),
            (lasting(left), member(topology))
                .prop_map(move |(for_ms, target)| fault(Fault::Isolate { for_ms }, Some(target))),
            // `None` is a loss for good, which `scenario` keeps only where explore's judgement
            // can say what a correct recovery is.
            (
                prop_oneof![
                    1 => Just(None),
                    2 => lasting(left.min(longest_reboot)).prop_map(Some),
                ],
                node(topology, nodes)
            )
                .prop_map(move |(for_ms, target)| fault(Fault::NodeLoss { for_ms }, Some(target))),
            (lasting(left), member(topology)).prop_map(move |(for_ms, target)| fault(
                Fault::ReplicationStall { for_ms },
                Some(target)
            )),
            (lasting(left), member(topology)).prop_map(move |(for_ms, target)| fault(
                Fault::ReplicationBreak { for_ms },
                Some(target)
            )),
            (lasting(left), member(topology))
                .prop_map(move |(for_ms, target)| fault(Fault::DiskFull { for_ms }, Some(target))),
            (
                prop_oneof![
                    Just(0),
                    0..SLOW_START_LIMIT_MS,
                    Just(SLOW_START_LIMIT_MS - 1)
                ],
                member(topology)
            )
                .prop_map(move |(start_ms, target)| fault(
                    Fault::SlowStart { start_ms },
                    Some(target)
                )),
            (
                prop_oneof![Just(1), 1..=1_000_u64, 1..=600_000_u64, Just(DURATION_MS)],
                lasting(left.min(FLAP_LIMIT_MS - 1)),
                member(topology)
            )
                .prop_map(move |(period_ms, for_ms, target)| fault(
                    Fault::AgentFlap { period_ms, for_ms },
                    Some(target)
                )),
            (lasting(left), any::<bool>()).prop_map(move |(restart_after_ms, lose_log)| fault(
                Fault::OperatorCrash {
                    restart_after_ms,
                    lose_log
                },
                None
            )),
            (
                prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0_f64],
                lasting(left)
            )
                .prop_map(move |(rate, for_ms)| fault(Fault::ApiErrors { rate, for_ms }, None)),
            proptest::option::of(0..members)
                .prop_map(|to| What::Action(UserAction::Switchover { to })),
            proptest::option::of(prop_oneof![Just(0), Just(1), Just(u64::MAX), any::<u64>()])
                .prop_map(|hash| What::Action(UserAction::ConfigChange { hash })),
            Just(What::Action(UserAction::Reexamine)),
            Just(What::Action(UserAction::Start)),
            Just(What::Action(UserAction::ResumeFailover)),
        ];
        let pair = (
            prop_oneof![
                Just((UserAction::Stop, UserAction::Start)),
                Just((UserAction::PauseFailover, UserAction::ResumeFailover)),
            ],
            lasting(left),
        )
            .prop_map(move |((first, second), after)| {
                vec![
                    entry(at, What::Action(first)),
                    entry(at + after, What::Action(second)),
                ]
            });
        prop_oneof![
            8 => what.prop_map(move |what| vec![entry(at, what)]),
            1 => pair,
        ]
    })
}

/// A scenario of `topology`: explore's draws of the configuration and the world (from a seed
/// proptest draws), a timeline of up to [`MAX_DRAWS`] draws in explore's fault phase, and
/// explore's judgement.
fn scenario(topology: Topology) -> impl Strategy<Value = Scenario> {
    (any::<u64>(), any::<u64>()).prop_flat_map(move |(setting, seed)| {
        let mut rng = Rng::new(setting);
        let world = explore::draw_world(&mut rng, DURATION_MS);
        let spec = explore::draw_spec(&mut rng, topology, &world, DURATION_MS);
        let fault_phase = explore::fault_phase_ms(&world, DURATION_MS);
        let draws =
            proptest::collection::vec(draw(topology, &spec, &world, fault_phase), 0..=MAX_DRAWS);
        (draws, 0_u32..4, 0_u32..4).prop_map(move |(draws, more_rebuilds, more_restarts)| {
            let timeline = draws.into_iter().flatten().collect();
            let mut scenario = Scenario {
                name: format!("property-{}", topology.name()),
                description: "Generated by the simulator's property tests.".into(),
                topology,
                seed,
                duration_ms: DURATION_MS,
                cluster: spec.clone(),
                world: world.clone(),
                timeline,
                expect: Default::default(),
            };
            judge(&mut scenario, fault_phase, more_rebuilds, more_restarts);
            scenario
        })
    })
}

/// Brings a generated timeline within what explore's judgement can judge, then sets the
/// attempt budgets (from what the faults may rightly spend to a few more) and the expectation.
fn judge(scenario: &mut Scenario, fault_phase: Millis, more_rebuilds: u32, more_restarts: u32) {
    let spec = &mut scenario.cluster;
    let timeline = &mut scenario.timeline;
    // At most one node lost for good, and none under async master-slave: a loss beyond that
    // is a reboot as long as allowed.
    let mut may_lose = explore::may_lose_a_node_for_good(spec);
    let longest_reboot = explore::reboot_limit_ms(spec) - 1;
    for entry in timeline.iter_mut() {
        if let What::Fault(
            Fault::NodeLoss {
                for_ms: for_ms @ None,
            },
            _,
        ) = &mut entry.what
        {
            if !may_lose {
                *for_ms = Some(longest_reboot.min(fault_phase - entry.at_ms));
            }
            may_lose = false;
        }
    }
    // A `reexamine` moves a cluster out of `ManualInterventionRequired` or `Failed` and accepts
    // losses on a person's behalf. Where a node lost for good or a lost log makes stopping for a
    // person the right end, explore's judgement cannot judge what comes after it: no
    // `reexamine` there. Elsewhere, a correct engine never stops for a person, and the
    // expectation says so: a `reexamine` cannot hide a wrong stop.
    let stops_rightly = timeline.iter().any(|entry| {
        matches!(
            entry.what,
            What::Fault(Fault::NodeLoss { for_ms: None }, _)
                | What::Fault(Fault::OperatorCrash { lose_log: true, .. }, _)
        )
    });
    let reexamine = What::Action(UserAction::Reexamine);
    if stops_rightly {
        timeline.retain(|entry| entry.what != reexamine);
    }
    timeline.sort_by_key(|entry| entry.at_ms);
    // A quiet timeline spends nothing, and a budget is at least one attempt.
    let spent = explore::attempts_spent(spec, timeline).max(1);
    spec.max_rebuild_attempts = spent.saturating_add(more_rebuilds);
    spec.max_restart_attempts = spent.saturating_add(more_restarts);
    scenario.expect = explore::recovery_expected(spec, &scenario.world, timeline.len());
    if timeline.iter().any(|entry| entry.what == reexamine) {
        scenario.expect.never = vec![
            ClusterStateName::of_kind(StateKind::ManualInterventionRequired),
            ClusterStateName::of_kind(StateKind::Failed),
        ];
    }
}

// --- running -------------------------------------------------------------------------------------

thread_local! {
    /// A log per test: tests run on threads of their own, and threads sharing one sled database
    /// contend in it.
    static LOG: (EventLog, tempfile::TempDir) =
        tandem_sim::run::temporary_log().expect("a log");
}

fn with_log<T>(f: impl FnOnce(&EventLog) -> T) -> T {
    LOG.with(|(log, _)| f(log))
}

/// A fresh stream name per run.
fn stream(scenario: &Scenario) -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", scenario.name, RUNS.fetch_add(1, Ordering::Relaxed))
}

/// Explore's judgement of a run's end, with the timer table checked after every step.
fn options(scenario: &Scenario, sabotage: Sabotage) -> RunOptions {
    RunOptions {
        sabotage,
        stream: Some(stream(scenario)),
        intervention_after_destroyed_writes: true,
        skip_record_hash: true,
        check_timer_table: true,
        ..RunOptions::default()
    }
}

fn run_on(scenario: &Scenario, options: &RunOptions, log: &EventLog) -> RunReport {
    run(scenario, options, log).unwrap_or_else(|error| panic!("the run stopped: {error}"))
}

/// A passing run's streams go, so that the log stays small however many cases run; a failing
/// run's stay.
fn forget(report: &RunReport, log: &EventLog) {
    report
        .remove_streams(log)
        .expect("removing a run's streams");
}

/// The property: `scenario` keeps every invariant and recovers. A case of the fixed seed that
/// fails because of a known finding ([`KNOWN_CASES`]) is set aside, not passed.
fn holds(scenario: &Scenario, sabotage: Sabotage, log: &EventLog) -> Result<(), TestCaseError> {
    let report = run_on(scenario, &options(scenario, sabotage), log);
    let Some(failure) = &report.failure else {
        forget(&report, log);
        return Ok(());
    };
    let yaml = to_yaml(scenario);
    let fingerprint = fingerprint(&yaml);
    if sabotage == Sabotage::None
        && let Some((_, name)) = KNOWN_CASES.iter().find(|(known, _)| *known == fingerprint)
    {
        forget(&report, log);
        return Err(TestCaseError::reject(format!("known failure {name}")));
    }
    Err(TestCaseError::fail(format!(
        "{}: {} (at {} ms)\nlast steps:\n{}\n\nthe scenario (fingerprint {fingerprint:#018x}), which \
         `tandem-sim run --check-timer-table FILE` fails on the same way:\n{}",
        failure.what,
        failure.detail,
        failure.at_ms,
        report.last_steps.join("\n"),
        to_yaml(&explore::reproducible(scenario, &report)),
    )))
}

/// A scenario's fingerprint: FNV-1a over its file.
fn fingerprint(yaml: &str) -> u64 {
    yaml.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

// --- known failures --------------------------------------------------------------------------------

/// A finding of these properties (or of the exhaustive check, `exhaustive.rs`) that the engine
/// does not pass yet: a minimal scenario, `tests/known-failures/<name>.yaml`, which
/// [`known_failures_still_fail`] runs. Once the engine passes it, that test fails: remove the
/// entry, its file and its cases in [`KNOWN_CASES`] (and in the exhaustive check's).
struct KnownFailure {
    /// The file's name.
    name: &'static str,
    /// The invariant or expectation it fails.
    what: &'static str,
}

const KNOWN_FAILURES: &[KnownFailure] = &[
    KnownFailure {
        name: "timer-table-start-after-a-node-lost-for-good",
        what: "timer table",
    },
    KnownFailure {
        name: "lost-log-before-initialized-leaves-a-member-without-a-volume",
        what: "expect.finalState",
    },
    KnownFailure {
        name: "lost-writes-counted-on-a-member-lost-after-a-lost-log",
        what: "no lost writes",
    },
];

/// The cases of [`CI_SEED`] that fail because of a known failure: the fingerprint of the
/// generated scenario's file, and the finding (a name of [`KNOWN_FAILURES`]). A change to the
/// strategies or to the file format changes them. Cases drawn from other seeds are not listed:
/// there, the known failures fail the property.
const KNOWN_CASES: &[(u64, &str)] = &[
    (
        0x24adfedc0b218637,
        "lost-log-before-initialized-leaves-a-member-without-a-volume",
    ),
    (
        0x9f9ff8940f28566f,
        "lost-log-before-initialized-leaves-a-member-without-a-volume",
    ),
    (
        0xd01578e742e7d47c,
        "lost-log-before-initialized-leaves-a-member-without-a-volume",
    ),
];

/// Every known failure still fails, the way it is recorded.
#[test]
fn known_failures_still_fail() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/known-failures");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .map(|entry| entry.expect("a directory entry").file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut recorded: Vec<String> = KNOWN_FAILURES
        .iter()
        .map(|known| format!("{}.yaml", known.name))
        .collect();
    recorded.sort();
    assert_eq!(
        files, recorded,
        "tests/known-failures/ and KNOWN_FAILURES differ"
    );
    for (_, name) in KNOWN_CASES {
        assert!(
            KNOWN_FAILURES.iter().any(|known| known.name == *name),
            "{name} is not a known failure"
        );
    }
    with_log(|log| {
        for known in KNOWN_FAILURES {
            let path = dir.join(format!("{}.yaml", known.name));
            let scenario = load(&path).unwrap_or_else(|error| panic!("{error}"));
            let report = run_on(&scenario, &options(&scenario, Sabotage::None), log);
            let failure = report.failure.unwrap_or_else(|| {
                panic!(
                    "{} passes now: remove it from the known failures",
                    path.display()
                )
            });
            assert_eq!(
                failure.what,
                known.what,
                "{}: {}",
                path.display(),
                failure.detail
            );
        }
    });
}

proptest! {
    #![proptest_config(config(MASTER_SLAVE_CASES))]

    #[test]
    fn master_slave_scenarios_keep_the_invariants_and_recover(
        scenario in scenario(Topology::MasterSlave)
    ) {
        with_log(|log| holds(&scenario, Sabotage::None, log))?;
    }
}

proptest! {
    #![proptest_config(config(STANDALONE_CASES))]

    #[test]
    fn standalone_scenarios_keep_the_invariants_and_recover(
        scenario in scenario(Topology::Standalone)
    ) {
        with_log(|log| holds(&scenario, Sabotage::None, log))?;
    }
}

proptest! {
    #![proptest_config(config(DETERMINISM_CASES))]

    /// Two runs of the same scenario, on streams of their own, hash the same: every record's
    /// bytes, every trace line, the end.
    #[test]
    fn the_same_scenario_gives_the_same_trace(
        scenario in prop_oneof![scenario(Topology::MasterSlave), scenario(Topology::Standalone)]
    ) {
        with_log(|log| {
            let [first, second] = [(), ()].map(|()| {
                let options = RunOptions {
                    skip_record_hash: false,
                    ..options(&scenario, Sabotage::None)
                };
                run_on(&scenario, &options, log)
            });
            prop_assert_eq!(first.trace_hash, second.trace_hash, "{}", to_yaml(&scenario));
            prop_assert_eq!(first.records, second.records);
            prop_assert_eq!(&first.failure, &second.failure);
            forget(&first, log);
            forget(&second, log);
            Ok(())
        })?;
    }
}

/// The same property catches a broken policy: an operator that promotes the standby the moment
/// a poll of the active fails, without fencing it, fails it on a safety invariant within a few
/// master-slave cases.
#[test]
fn a_broken_policy_fails_the_property() {
    let config = ProptestConfig {
        // Not a regression to keep: the policy is broken on purpose.
        failure_persistence: None,
        max_shrink_iters: 16,
        ..config(100)
    };
    let mut runner = TestRunner::new(config);
    let failure = with_log(|log| {
        let result = runner.run(&scenario(Topology::MasterSlave), |scenario| {
            holds(&scenario, Sabotage::PromoteWithoutFencing, log)
        });
        match result {
            Ok(()) => None,
            Err(TestError::Fail(reason, _)) => Some(reason.message().to_string()),
            Err(TestError::Abort(reason)) => panic!("the property gave up: {reason}"),
        }
    });
    let failure = failure.expect("the broken policy went unnoticed in 100 cases");
    assert!(
        ["no split brain", "fence before promote", "no lost writes"]
            .iter()
            .any(|what| failure.starts_with(what)),
        "{failure}"
    );
}

/// The strategies say what the module promises: every scenario is one a person could write (it
/// reads back from its file the same), and across cases every fault and action of the language
/// appears, with every kind of target, both replication modes, entries in the first seconds,
/// and the extremes of the parameters.
#[test]
fn generated_scenarios_are_valid_and_cover_the_language() {
    let mut runner = TestRunner::new(config(1));
    let mut seen = BTreeSet::new();
    for topology in [Topology::MasterSlave, Topology::Standalone] {
        let strategy = scenario(topology);
        for _ in 0..3_000 {
            let scenario = strategy
                .new_tree(&mut runner)
                .expect("a scenario")
                .current();
            let yaml = to_yaml(&scenario);
            let mut back = parse(std::path::Path::new("generated.yaml"), &yaml)
                .unwrap_or_else(|error| panic!("{error}\n{yaml}"));
            for (entry, generated) in back.timeline.iter_mut().zip(&scenario.timeline) {
                entry.line = generated.line;
            }
            assert_eq!(back, scenario, "{yaml}");
            let topology = topology.name();
            let replication = scenario.cluster.replication.name();
            seen.insert(format!("{topology} {replication}"));
            for entry in &scenario.timeline {
                let name = match &entry.what {
                    What::Fault(fault, _) => fault.name(),
                    What::Action(action) => action.name(),
                };
                seen.insert(format!("{topology} {name}"));
                if let What::Fault(_, Some(target)) = &entry.what {
                    let target = format!("{target:?}");
                    let kind = target.split('(').next().unwrap_or_default();
                    seen.insert(format!("{topology} target {kind}"));
                }
                if entry.at_ms < 5_000 {
                    seen.insert(format!("{topology} in the first seconds"));
                }
                let extreme = match entry.what {
                    What::Fault(Fault::NodeLoss { for_ms: None }, _) => "lost for good",
                    What::Fault(
                        Fault::CrashProcess {
                            restart_after_ms: None,
                        },
                        _,
                    ) => "never",
                    What::Fault(Fault::Partition { for_ms: 0 }, _) => "for 0",
                    What::Fault(Fault::ApiErrors { rate: 1.0, .. }, _) => "rate 1",
                    What::Fault(Fault::AgentFlap { period_ms: 1, .. }, _) => "period 1",
                    What::Action(UserAction::ConfigChange {
                        hash: Some(u64::MAX),
                    }) => "hash max",
                    _ => continue,
                };
                seen.insert(format!("{topology} {extreme}"));
            }
        }
    }
    let mut wanted = Vec::new();
    for (topology, members) in [(Topology::MasterSlave, 2), (Topology::Standalone, 1)] {
        let topology = topology.name();
        let faults = FaultKind::iter().map(<&str>::from);
        let actions = UserActionKind::iter().map(<&str>::from);
        let targets = ["Active", "Member", "NodeOfActive", "Node"]
            .into_iter()
            .chain(
                (members > 1)
                    .then_some(["Standby", "NodeOfStandby"])
                    .into_iter()
                    .flatten(),
            )
            .map(|kind| format!("target {kind}"));
        let extremes = [
            "in the first seconds",
            "lost for good",
            "never",
            "for 0",
            "rate 1",
            "period 1",
            "hash max",
            "sync",
        ];
        let modes = (members > 1)
            .then_some(["async", "syncPreferred"])
            .into_iter()
            .flatten();
        wanted.extend(
            faults
                .chain(actions)
                .map(str::to_string)
                .chain(targets)
                .chain(extremes.into_iter().chain(modes).map(str::to_string))
                .map(|what| format!("{topology} {what}")),
        );
    }
    let missing: Vec<&String> = wanted.iter().filter(|what| !seen.contains(*what)).collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}
