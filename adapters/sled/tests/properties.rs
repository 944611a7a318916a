//! Property test: random sequences of append, snapshot, prune, reopen and crash. After every
//! operation the stream folds to the state of the acknowledged records, and its tail is the
//! last acknowledged record.
//!
//! A crash copies the log's directory while the log is open (what a SIGKILL leaves: every
//! acknowledged append was flushed to the files) and continues on the copy.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use tandem_engine::{Engine, EngineState, Record, Seq};
use tandem_sled::{EventLog, LogConfig, Workload};

const STREAM: &str = "prop/cluster";

#[derive(Clone, Debug)]
enum Operation {
    Append(usize),
    Snapshot,
    Prune,
    Reopen,
    Crash,
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        6 => (1usize..6).prop_map(Operation::Append),
        1 => Just(Operation::Snapshot),
        1 => Just(Operation::Prune),
        1 => Just(Operation::Reopen),
        1 => Just(Operation::Crash),
    ]
}

fn config(snapshot_every_records: u64, retain_records: u64) -> LogConfig {
    LogConfig {
        snapshot_every_records,
        retain_records,
        ..LogConfig::default()
    }
}

fn copy_directory(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_directory(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The model: the acknowledged records, and the workload that makes more.
struct Model {
    acknowledged: Vec<Record>,
    workload: Workload,
}

fn check(log: &EventLog, model: &Model, step: usize) -> Result<(), TestCaseError> {
    let recovered = log
        .recover(STREAM)
        .map_err(|error| TestCaseError::fail(format!("step {step}: {error}")))?;
    let folded = Engine::recover(EngineState::new(), &model.acknowledged).expect("a fold");
    prop_assert_eq!(recovered.engine.state(), folded.state(), "step {}", step);
    let tail = log
        .tail_seq(STREAM)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(tail, Seq(model.acknowledged.len() as u64), "step {}", step);
    Ok(())
}

fn apply(
    log: EventLog,
    operation: &Operation,
    model: &mut Model,
    root: &Path,
    generation: &mut u32,
    config: LogConfig,
) -> Result<EventLog, TestCaseError> {
    let fail = |error: tandem_sled::LogError| TestCaseError::fail(error.to_string());
    match operation {
        Operation::Append(count) => {
            let records = model.workload.records(*count);
            let tail = Seq(model.acknowledged.len() as u64);
            log.append(STREAM, tail, &records).map_err(fail)?;
            model.acknowledged.extend(records);
            Ok(log)
        }
        Operation::Snapshot => log.snapshot(STREAM).map(|_| log).map_err(fail),
        Operation::Prune => {
            log.prune(STREAM).map_err(fail)?;
            Ok(log)
        }
        Operation::Reopen => {
            let path = log.path().to_path_buf();
            drop(log);
            EventLog::open(path, config).map_err(fail)
        }
        Operation::Crash => {
            *generation += 1;
            let copy: PathBuf = root.join(format!("crash-{generation}"));
            copy_directory(log.path(), &copy).map_err(|e| TestCaseError::fail(e.to_string()))?;
            drop(log);
            EventLog::open(copy, config).map_err(fail)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_stream_folds_to_the_acknowledged_records(
        operations in proptest::collection::vec(operation(), 1..40),
        snapshot_every_records in 0u64..6,
        retain_records in 0u64..5,
    ) {
        let root = tempfile::tempdir().expect("a temporary directory");
        let config = config(snapshot_every_records, retain_records);
        let mut log = EventLog::open(root.path().join("log"), config)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut model = Model { acknowledged: Vec::new(), workload: Workload::new() };
        let mut generation = 0;
        for (step, operation) in operations.iter().enumerate() {
            log = apply(log, operation, &mut model, root.path(), &mut generation, config)?;
            check(&log, &model, step)?;
        }
    }
}
