//! The log's API: appends, reads, recovery, conflicts, snapshots, retention, foreign and locked
//! directories.

use tandem_engine::{Engine, EngineState, Record, Seq};
use tandem_sled::{EventLog, LogConfig, LogError, Workload};

fn records(count: usize) -> Vec<Record> {
    Workload::new().records(count)
}

fn fold_all(records: &[Record]) -> EngineState {
    let engine =
        Engine::recover(EngineState::new(), records).expect("workload records are contiguous");
    engine.state().clone()
}

fn small_config() -> LogConfig {
    LogConfig {
        snapshot_every_records: 10,
        retain_records: 15,
        ..LogConfig::default()
    }
}

#[test]
fn appends_are_read_back_and_folded() -> Result<(), LogError> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let log = EventLog::open(directory.path(), LogConfig::default())?;
    let all = records(25);
    assert_eq!(log.append("default/pg", Seq(0), &all[..1])?, Seq(1));
    assert_eq!(log.append("default/pg", Seq(1), &all[1..25])?, Seq(25));
    assert_eq!(
        log.read_range("default/pg", Seq(3), Seq(7))?,
        all[2..7].to_vec()
    );
    assert_eq!(log.tail("default/pg")?.as_ref(), all.last());
    assert_eq!(log.tail_seq("default/pg")?, Seq(25));
    assert_eq!(log.streams()?, vec!["default/pg".to_string()]);
    drop(log);
    let log = EventLog::open(directory.path(), LogConfig::default())?;
    let recovered = log.recover("default/pg")?;
    assert_eq!(recovered.engine.state(), &fold_all(&all));
    assert_eq!(recovered.records_folded, 25);
    assert_eq!(
        log.recover("other/absent")?.engine.state(),
        &EngineState::new()
    );
    assert_eq!(
        log.streams()?.len(),
        1,
        "reading an absent stream does not create it"
    );
    Ok(())
}

#[test]
fn a_stale_tail_is_a_conflict_and_writes_nothing() -> Result<(), LogError> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let log = EventLog::open(directory.path(), LogConfig::default())?;
    let all = records(3);
    log.append("s", Seq(0), &all[..2])?;
    let error = log.append("s", Seq(1), &all[1..3]);
    assert!(
        matches!(
            error,
            Err(LogError::Conflict { ref stream, expected_tail: Seq(1), actual_tail: Seq(2) })
                if stream == "s"
        ),
        "{error:?}"
    );
    let error = log.append("s", Seq(2), &[all[0].clone()]);
    assert!(
        matches!(
            error,
            Err(LogError::NotContiguous {
                expected: Seq(3),
                found: Seq(1),
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(log.tail_seq("s")?, Seq(2));
    assert_eq!(log.append("s", Seq(2), &all[2..])?, Seq(3));
    Ok(())
}

#[test]
fn snapshots_are_used_and_records_beyond_retention_pruned() -> Result<(), LogError> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let log = EventLog::open(directory.path(), small_config())?;
    let all = records(47);
    let mut tail = Seq(0);
    for chunk in all.chunks(3) {
        tail = log.append("s", tail, chunk)?;
    }
    drop(log);
    let log = EventLog::open(directory.path(), small_config())?;
    let recovered = log.recover("s")?;
    assert_eq!(recovered.engine.state(), &fold_all(&all));
    // Appends of three: the one from 39 to 42 crossed 40 and snapshot the state before 42.
    assert_eq!(recovered.snapshot, Some(Seq(41)));
    assert_eq!(recovered.records_folded, 6);
    assert_eq!(
        recovered.engine.now(),
        all[46].at,
        "the engine knows the latest time"
    );
    // That append pruned up to its tail less 15 records: 1..=27.
    assert_eq!(recovered.first_retained, Seq(28));
    let error = log.read_range("s", Seq(1), Seq(5));
    assert!(
        matches!(
            error,
            Err(LogError::Pruned {
                first_retained: Seq(28),
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(log.read_range("s", Seq(28), Seq(47))?, all[27..].to_vec());
    Ok(())
}

#[test]
fn explicit_snapshot_and_prune() -> Result<(), LogError> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let config = LogConfig {
        snapshot_every_records: 0,
        retain_records: 2,
        ..LogConfig::default()
    };
    let log = EventLog::open(directory.path(), config)?;
    let all = records(9);
    // Two appends, two chunks: records 1 to 7, and 8 and 9.
    log.append("s", Seq(0), &all[..7])?;
    log.append("s", Seq(7), &all[7..])?;
    assert_eq!(log.prune("s")?, 0, "nothing is covered by a snapshot yet");
    assert_eq!(log.snapshot("s")?, Seq(8));
    assert_eq!(
        log.snapshot("s")?,
        Seq(8),
        "no second snapshot of the same state"
    );
    assert_eq!(log.prune("s")?, 7);
    let recovered = log.recover("s")?;
    assert_eq!(recovered.snapshot, Some(Seq(8)));
    assert_eq!(recovered.engine.state(), &fold_all(&all));
    assert_eq!(log.read_range("s", Seq(8), Seq(9))?, all[7..].to_vec());
    // Pruning removes whole chunks: one chunk holding records to keep stays whole.
    log.append("t", Seq(0), &all)?;
    assert_eq!(log.snapshot("t")?, Seq(8));
    assert_eq!(log.prune("t")?, 0);
    assert_eq!(log.read_range("t", Seq(1), Seq(9))?, all);
    Ok(())
}

#[test]
fn a_second_open_is_locked_out() -> Result<(), LogError> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let _log = EventLog::open(directory.path(), LogConfig::default())?;
    let error = EventLog::open(directory.path(), LogConfig::default());
    match error {
        Err(LogError::Locked { path }) => assert!(path.starts_with(directory.path())),
        other => panic!("expected Locked, got {other:?}"),
    }
    Ok(())
}

#[test]
fn a_foreign_directory_is_refused() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(directory.path().join("PG_VERSION"), "17\n").expect("a file");
    let error = EventLog::open(directory.path(), LogConfig::default());
    match error {
        Err(LogError::NotATandemLog { path, detail }) => {
            assert_eq!(path, directory.path());
            assert!(detail.contains("PG_VERSION"), "{detail}");
        }
        other => panic!("expected NotATandemLog, got {other:?}"),
    }
    let other = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        other.path().join(tandem_sled::MARKER_FILE),
        "something-else 1\n",
    )
    .expect("a file");
    let error = EventLog::open(other.path(), LogConfig::default());
    assert!(
        matches!(error, Err(LogError::NotATandemLog { .. })),
        "{error:?}"
    );
    let newer = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        newer.path().join(tandem_sled::MARKER_FILE),
        "tandem-event-log 9\n",
    )
    .expect("a file");
    let error = EventLog::open(newer.path(), LogConfig::default());
    assert!(
        matches!(
            error,
            Err(LogError::UnsupportedLayout {
                found: 9,
                supported: tandem_sled::LAYOUT_VERSION,
                ..
            })
        ),
        "{error:?}"
    );
    // Logs of the first layout (watermarks) and of the second (one sled value per record), as
    // older builds wrote them, are refused with a message that says so.
    for (version, extra) in [(1u32, "WATERMARKS"), (2, tandem_sled::WITNESS_FILE)] {
        let older = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(
            older.path().join(tandem_sled::MARKER_FILE),
            format!("tandem-event-log {version}\n"),
        )
        .expect("a file");
        std::fs::write(older.path().join(extra), "").expect("a file");
        let error = EventLog::open(older.path(), LogConfig::default());
        match error {
            Err(error @ LogError::UnsupportedLayout { found, .. }) if found == version => {
                let message = error.to_string();
                assert!(message.contains("older build"), "{message}");
            }
            other => panic!("expected UnsupportedLayout, got {other:?}"),
        }
        assert!(
            !older.path().join("sled").exists(),
            "a refused directory is left as it was"
        );
    }
}

#[test]
fn a_stream_gone_from_sled_but_witnessed_is_damaged_and_refused_by_every_path() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let all = records(5);
    {
        let log = EventLog::open(directory.path(), LogConfig::default()).expect("a new log");
        log.append("default/pg", Seq(0), &all).expect("an append");
        log.append("default/other", Seq(0), &all[..2])
            .expect("an append");
    }
    // Remove the stream's tree behind the log's back (as a lost part of sled's file would).
    for _ in 0..300 {
        if let Ok(db) = sled::open(directory.path().join("sled")) {
            db.drop_tree("stream/default/pg").expect("dropped");
            db.flush().expect("flushed");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let log = EventLog::open(directory.path(), LogConfig::default()).expect("the log opens");
    assert_eq!(log.damaged_streams().len(), 1);
    let damaged = |result: Result<(), LogError>| {
        assert!(
            matches!(&result, Err(LogError::Damaged { detail, .. }) if detail.contains("default/pg")),
            "{result:?}"
        );
    };
    damaged(log.recover("default/pg").map(|_| ()));
    damaged(log.records("default/pg", Seq(1)).map(|_| ()));
    damaged(log.tail("default/pg").map(|_| ()));
    damaged(log.tail_seq("default/pg").map(|_| ()));
    damaged(log.append("default/pg", Seq(0), &all[..1]).map(|_| ()));
    // The other stream is untouched.
    assert_eq!(log.tail_seq("default/other").expect("a tail"), Seq(2));
    // A person may remove the damaged stream; it then starts afresh.
    assert!(!log.remove_stream("default/pg").expect("removed"));
    assert_eq!(
        log.append("default/pg", Seq(0), &all[..1])
            .expect("an append"),
        Seq(1)
    );
}

#[test]
fn invalid_stream_names_are_refused() -> Result<(), LogError> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let log = EventLog::open(directory.path(), LogConfig::default())?;
    let error = log.append("", Seq(0), &records(1));
    assert!(
        matches!(error, Err(LogError::InvalidStreamName { .. })),
        "{error:?}"
    );
    Ok(())
}

#[test]
fn a_removed_stream_is_gone_and_starts_afresh() -> Result<(), LogError> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let all = records(25);
    {
        let log = EventLog::open(directory.path(), small_config())?;
        // Past a snapshot, as a long-lived stream is.
        log.append("default/gone", Seq(0), &all)?;
        log.append("default/kept", Seq(0), &all[..3])?;
        assert!(log.remove_stream("default/gone")?);
        assert!(!log.remove_stream("default/gone")?);
        assert_eq!(log.streams()?, vec!["default/kept".to_string()]);
        assert_eq!(log.tail_seq("default/gone")?, Seq(0));
    }
    // Reopened: no trace of the stream, and no witness reporting its records as lost.
    let log = EventLog::open(directory.path(), small_config())?;
    assert_eq!(log.recover("default/gone")?.engine.state().seq(), Seq(0));
    assert_eq!(log.append("default/gone", Seq(0), &all[..2])?, Seq(2));
    assert_eq!(
        log.read_range("default/gone", Seq(1), Seq(2))?,
        all[..2].to_vec()
    );
    assert_eq!(log.tail_seq("default/kept")?, Seq(3));
    Ok(())
}

#[test]
fn a_streams_leadership_epoch_survives_a_reopen_and_never_goes_back() -> Result<(), LogError> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let log = EventLog::open(directory.path(), LogConfig::default())?;
    assert_eq!(log.epoch("ns/zc/1")?, 0, "no epoch recorded: 0");
    log.set_epoch("ns/zc/1", 3)?;
    assert_eq!(log.tail_seq("ns/zc/1")?, Seq(0), "an epoch is no record");
    let all = records(4);
    assert_eq!(log.append("ns/zc/1", Seq(0), &all)?, Seq(4));
    log.set_epoch("ns/zc/1", 3)?;
    log.set_epoch("ns/zc/1", 5)?;
    assert!(matches!(
        log.set_epoch("ns/zc/1", 4),
        Err(LogError::EpochBehind {
            held: 5,
            offered: 4,
            ..
        })
    ));
    drop(log);
    let log = EventLog::open(directory.path(), LogConfig::default())?;
    assert_eq!(log.epoch("ns/zc/1")?, 5);
    assert_eq!(log.epoch("ns/other/2")?, 0);
    assert_eq!(
        log.recover("ns/zc/1")?.engine.state(),
        &fold_all(&all),
        "the epoch is not read as a record"
    );
    assert_eq!(log.append("ns/zc/1", Seq(4), &records(5)[4..])?, Seq(5));
    assert!(log.remove_stream("ns/zc/1")?);
    assert_eq!(log.epoch("ns/zc/1")?, 0, "it goes with its stream");
    Ok(())
}
