//! Swarm testing in every run: thousands of seeds with random fault mixes must keep every
//! invariant and recover, and a deliberately broken policy must be caught and shrunk.

use std::path::PathBuf;
use tandem_engine::Topology;
use tandem_sim::explore::{ExploreOptions, explore_seeds};
use tandem_sim::run::{RunOptions, Sabotage, run};
use tandem_sim::scenario::load;
use tandem_sled::{EventLog, LogConfig};

fn log(dir: &tempfile::TempDir) -> EventLog {
    let config = LogConfig {
        durable_appends: false,
        ..LogConfig::default()
    };
    EventLog::open(dir.path().join("log"), config).expect("a log in a temporary directory")
}

fn options(topology: Topology, seeds: std::ops::Range<u64>, out: PathBuf) -> ExploreOptions {
    let mut options = ExploreOptions::parse(topology, "1..2", "1h", out).expect("valid options");
    options.seeds = seeds;
    options
}

fn assert_no_failure(topology: Topology, seeds: std::ops::Range<u64>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = options(topology, seeds.clone(), dir.path().to_path_buf());
    let result = explore_seeds(&options, &log(&dir), false).expect("exploration runs");
    let failed: Vec<String> = result
        .failures
        .iter()
        .map(|(seed, scenario, _)| {
            format!("seed {seed}:\n{}", tandem_sim::scenario::to_yaml(scenario))
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
    let result = explore_seeds(&options, &log, false).expect("exploration runs");
    assert!(
        !result.failures.is_empty(),
        "the broken policy went unnoticed in 40 seeds"
    );
    let (seed, shrunk, path) = &result.failures[0];
    let generated =
        tandem_sim::explore::generate(Topology::MasterSlave, *seed, options.duration_ms);
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
