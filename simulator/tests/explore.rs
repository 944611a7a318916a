//! Swarm testing in every run: thousands of seeds with random fault mixes must keep every
//! invariant and recover, and a deliberately broken policy must be caught and shrunk to a
//! scenario that fails the same way.

use std::path::PathBuf;
use tandem_engine::{Replication, Topology};
use tandem_sim::explore::{ExploreOptions, explore_seeds};
use tandem_sim::run::{RunOptions, Sabotage, log_config, run};
use tandem_sim::scenario::{Fault, Scenario, Target, UserAction, What, load, parse};
use tandem_sled::EventLog;

fn log(dir: &tempfile::TempDir) -> EventLog {
    EventLog::open(dir.path().join("log"), log_config()).expect("a log in a temporary directory")
}

/// One log per explore worker.
fn logs(dir: &tempfile::TempDir) -> Vec<EventLog> {
    (0..tandem_sim::explore::workers())
        .map(|worker| {
            EventLog::open(dir.path().join(format!("worker-{worker}")), log_config())
                .expect("a log in a temporary directory")
        })
        .collect()
}

fn options(topology: Topology, seeds: std::ops::Range<u64>, out: PathBuf) -> ExploreOptions {
    let mut options = ExploreOptions::parse(topology, "1..2", "1h", out).expect("valid options");
    options.seeds = seeds.start..=seeds.end - 1;
    options
}

/// A range that ends at the largest seed ends: several workers take its seeds, and none
/// counts past the last one.
#[test]
fn seeds_up_to_the_largest_run_once_each_and_end() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = ExploreOptions::parse(
        Topology::Standalone,
        "18446744073709551614..=18446744073709551615",
        "10m",
        dir.path().to_path_buf(),
    )
    .expect("valid options");
    let logs: Vec<EventLog> = (0..3)
        .map(|worker| {
            EventLog::open(dir.path().join(format!("worker-{worker}")), log_config())
                .expect("a log in a temporary directory")
        })
        .collect();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = explore_seeds(&options, &logs, false).map(|result| result.seeds);
        let _ = sender.send(result.map_err(|error| error.to_string()));
    });
    let seeds = receiver
        .recv_timeout(std::time::Duration::from_secs(300))
        .expect("the exploration ends");
    assert_eq!(seeds, Ok(2));
}

fn assert_no_failure(topology: Topology, seeds: std::ops::Range<u64>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = options(topology, seeds.clone(), dir.path().to_path_buf());
    let result = explore_seeds(&options, &logs(&dir), false).expect("exploration runs");
    let failed: Vec<String> = result
        .failures
        .iter()
        .map(|failed| {
            format!(
                "seed {}: {}: {}\n{}",
                failed.seed,
                failed.failure.what,
                failed.failure.detail,
                tandem_sim::scenario::to_yaml(&failed.shrunk)
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} seeds failed:\n{}",
        failed.len(),
        result.seeds,
        failed.join("\n")
    );
    assert_eq!(result.seeds, seeds.end - seeds.start);
    println!(
        "{} {} seeds of 1 h: {:.1} s, {:.0} seeds/s",
        result.seeds,
        topology.name(),
        result.wall_secs,
        result.seeds as f64 / result.wall_secs
    );
}

#[test]
fn two_thousand_master_slave_seeds_keep_the_invariants_and_recover() {
    assert_no_failure(Topology::MasterSlave, 1..2_001);
}

#[test]
fn five_hundred_standalone_seeds_keep_the_invariants_and_recover() {
    assert_no_failure(Topology::Standalone, 1..501);
}

/// Promoting without fencing is caught by the world's checks, shrunk to a minimal timeline, and
/// the written scenario reproduces the failure.
#[test]
fn a_broken_policy_is_caught_and_shrunk() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = log(&dir);
    let mut options = options(Topology::MasterSlave, 1..41, dir.path().to_path_buf());
    options.sabotage = Sabotage::PromoteWithoutFencing;
    let result =
        explore_seeds(&options, std::slice::from_ref(&log), false).expect("exploration runs");
    assert!(
        !result.failures.is_empty(),
        "the broken policy went unnoticed in 40 seeds"
    );
    let failed = &result.failures[0];
    let (seed, shrunk, path) = (failed.seed, &failed.shrunk, &failed.path);
    let generated = tandem_sim::explore::generate(Topology::MasterSlave, seed, options.duration_ms);
    assert_eq!(failed.unshrunk, generated);
    assert!(shrunk.timeline.len() <= generated.timeline.len());
    assert!(
        shrunk.timeline.len() <= 2,
        "not shrunk: {:?}",
        shrunk.timeline
    );
    let path = path.as_ref().expect("the shrunk scenario was written");
    let reloaded = load(path).expect("the written scenario parses");
    let sabotaged = RunOptions {
        sabotage: Sabotage::PromoteWithoutFencing,
        ..RunOptions::default()
    };
    let report = run(&reloaded, &sabotaged, &log).expect("a run");
    let failure = report
        .failure
        .expect("the written scenario reproduces the failure");
    assert!(
        ["no split brain", "fence before promote", "no lost writes"]
            .contains(&failure.what.as_str()),
        "{failure:?}"
    );
    let honest = run(&reloaded, &RunOptions::default(), &log).expect("a run");
    assert!(
        honest.passed(),
        "the real engine passes the same timeline: {:?}",
        honest.failure
    );
}

/// Wiping a copy to rebuild it from an active that no longer answers is caught by the world's
/// newest-copy guard, which does not count a copy on a node gone for good as surviving; the real
/// engine passes the same timeline.
#[test]
fn rebuilding_from_an_unreachable_active_is_caught() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = log(&dir);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/restarted-standby-outlives-active-node.yaml");
    let scenario = load(&path).expect("the catalog scenario parses");
    let sabotaged = RunOptions {
        sabotage: Sabotage::RebuildFromUnreachableActive,
        ..RunOptions::default()
    };
    let report = run(&scenario, &sabotaged, &log).expect("a run");
    let failure = report.failure.expect("the broken policy is caught");
    assert_eq!(
        failure.what, "no destruction of the newest copy",
        "{failure:?}"
    );
    let honest = run(&scenario, &RunOptions::default(), &log).expect("a run");
    assert!(honest.passed(), "{:?}", honest.failure);
}

/// The shrinker keeps the failure it started from: every shrunk scenario fails with the same
/// invariant or expectation as the drawn one, the written files (shrunk and drawn) reproduce it,
/// and a stop never loses its start (nor a pause its resume) on the way. In these seeds the
/// broken policy also loses writes or stalls the cluster, and removing entries easily leaves a
/// bare split brain instead: a shrinker content with any failure reports the wrong one.
#[test]
fn shrinking_keeps_the_kind_of_failure() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = log(&dir);
    let mut options = options(Topology::MasterSlave, 141..181, dir.path().to_path_buf());
    options.sabotage = Sabotage::PromoteWithoutFencing;
    let result =
        explore_seeds(&options, std::slice::from_ref(&log), false).expect("exploration runs");
    assert!(
        !result.failures.is_empty(),
        "the broken policy went unnoticed in 40 seeds"
    );
    // As `tandem-sim run` runs them.
    let sabotaged = RunOptions {
        sabotage: Sabotage::PromoteWithoutFencing,
        ..RunOptions::default()
    };
    let count = |scenario: &Scenario, action: UserAction| {
        scenario
            .timeline
            .iter()
            .filter(|entry| entry.what == What::Action(action.clone()))
            .count()
    };
    let mut kinds = Vec::new();
    for failed in &result.failures {
        let seed = failed.seed;
        assert_eq!(
            failed.shrunk_failure.what, failed.failure.what,
            "seed {seed} shrank to another failure"
        );
        let shrunk = &failed.shrunk;
        assert_eq!(
            count(shrunk, UserAction::Stop),
            count(shrunk, UserAction::Start)
        );
        assert_eq!(
            count(shrunk, UserAction::PauseFailover),
            count(shrunk, UserAction::ResumeFailover)
        );
        for path in [&failed.path, &failed.unshrunk_path] {
            let path = path.as_ref().expect("both scenarios were written");
            let reloaded = load(path).expect("a written scenario parses");
            let report = run(&reloaded, &sabotaged, &log).expect("a run");
            let failure = report.failure.expect("a written scenario fails");
            assert_eq!(failure.what, failed.failure.what, "{}", path.display());
        }
        kinds.push(failed.failure.what.clone());
    }
    kinds.sort();
    kinds.dedup();
    assert!(
        kinds.len() > 1,
        "only one kind of failure in these seeds: {kinds:?}"
    );
    println!("failures kept while shrinking: {}", kinds.join(", "));
}

/// Every drawn scenario validates, writes out and reads back the same, and means something: a
/// configuration `Spec::validate` accepts (its timing rules keep the lease above the gap between
/// two polls), replication
/// faults on a standby, a full disk on the active, no replication fault or switchover for a
/// standalone cluster, at most one node lost for good (under async, none), and across the seeds
/// every kind of variety the generator promises.
#[test]
fn drawn_scenarios_are_valid_and_meaningful() {
    let mut early = 0;
    let mut long_outages = 0;
    let mut lost_for_good_with_others = 0;
    let mut rebuilds = std::collections::BTreeSet::new();
    let mut timings = std::collections::BTreeSet::new();
    let mut budgets = std::collections::BTreeSet::new();
    for topology in [Topology::MasterSlave, Topology::Standalone] {
        for seed in 1..2_001 {
            let scenario = tandem_sim::explore::generate(topology, seed, 3_600_000);
            let spec = &scenario.cluster;
            assert_eq!(spec.validate(), Ok(()), "seed {seed}");
            let yaml = tandem_sim::scenario::to_yaml(&scenario);
            let mut back =
                parse(std::path::Path::new("drawn.yaml"), &yaml).expect("a drawn scenario parses");
            for (entry, drawn) in back.timeline.iter_mut().zip(&scenario.timeline) {
                entry.line = drawn.line;
            }
            assert_eq!(back, scenario, "seed {seed}:\n{yaml}");
            let mut forever = 0;
            for entry in &scenario.timeline {
                early += usize::from(entry.at_ms < 60_000);
                match &entry.what {
                    What::Fault(
                        Fault::ReplicationStall { .. } | Fault::ReplicationBreak { .. },
                        target,
                    ) => {
                        assert_eq!(topology, Topology::MasterSlave, "seed {seed}");
                        assert!(
                            matches!(target, Some(Target::Standby | Target::Member(1))),
                            "seed {seed}: {target:?}"
                        );
                    }
                    What::Fault(Fault::DiskFull { .. }, target) => assert!(
                        matches!(target, Some(Target::Active | Target::Member(0))),
                        "seed {seed}: {target:?}"
                    ),
                    What::Fault(Fault::NodeLoss { for_ms: None }, _) => forever += 1,
                    What::Fault(
                        Fault::NodeLoss {
                            for_ms: Some(for_ms),
                        },
                        _,
                    ) => assert!(
                        *for_ms < u64::from(spec.node_lost_timeout_s) * 1000,
                        "seed {seed}"
                    ),
                    What::Fault(
                        Fault::OperatorCrash {
                            restart_after_ms, ..
                        },
                        _,
                    ) => {
                        long_outages +=
                            usize::from(*restart_after_ms > u64::from(spec.agent_lease_s) * 1000);
                    }
                    What::Action(UserAction::Switchover { .. }) => {
                        assert_eq!(topology, Topology::MasterSlave, "seed {seed}");
                    }
                    _ => {}
                }
            }
            assert!(forever <= 1, "seed {seed}");
            if forever == 1 {
                assert!(
                    topology == Topology::Standalone || spec.replication == Replication::Sync,
                    "seed {seed}"
                );
                lost_for_good_with_others += usize::from(scenario.timeline.len() > 1);
            }
            rebuilds.insert(scenario.world.rebuild_ms / 60_000);
            timings.insert((spec.polling_interval_s, spec.unreachable_timeout_s));
            budgets.insert(spec.max_rebuild_attempts.min(spec.max_restart_attempts));
        }
    }
    assert!(early > 100 && long_outages > 100 && lost_for_good_with_others > 100);
    // Copies of seconds to ten minutes, many timings, budgets down to a single attempt.
    assert!(
        rebuilds.contains(&0) && rebuilds.contains(&9),
        "{rebuilds:?}"
    );
    assert!(timings.len() > 50, "{timings:?}");
    assert!(budgets.contains(&1), "{budgets:?}");
}
