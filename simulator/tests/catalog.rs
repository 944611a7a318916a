//! Every scenario of the catalog passes, and runs are deterministic.

use std::path::PathBuf;
use tandem_sim::catalog::{failure_details, load_all, run_all, scenario_paths, summary};
use tandem_sim::run::{RunOptions, run};
use tandem_sled::{EventLog, LogConfig};

fn catalog() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn log(dir: &tempfile::TempDir) -> EventLog {
    let config = LogConfig {
        durable_appends: false,
        ..LogConfig::default()
    };
    EventLog::open(dir.path().join("log"), config).expect("a log in a temporary directory")
}

#[test]
fn every_catalog_scenario_passes() {
    let scenarios =
        load_all(&scenario_paths(&[catalog()]).expect("the catalog")).expect("valid scenarios");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let reports = run_all(&scenarios, &RunOptions::default(), &log(&dir)).expect("runs");
    println!("{}", summary(&reports));
    let failures: Vec<String> = reports.iter().filter_map(failure_details).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_same_scenario_and_seed_give_the_same_trace_hash() {
    let scenarios =
        load_all(&scenario_paths(&[catalog()]).expect("the catalog")).expect("valid scenarios");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = log(&dir);
    for scenario in &scenarios {
        let first = run(scenario, &RunOptions::default(), &log).expect("a run");
        let second = run(scenario, &RunOptions::default(), &log).expect("a run");
        assert_eq!(first.trace_hash, second.trace_hash, "{}", scenario.name);
        let other_seed = RunOptions {
            seed: Some(scenario.seed + 1),
            ..RunOptions::default()
        };
        let third = run(scenario, &other_seed, &log).expect("a run");
        assert_eq!(third.seed, scenario.seed + 1);
    }
}
