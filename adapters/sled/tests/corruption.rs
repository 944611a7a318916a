//! Bad bytes: flipped, truncated, of another version, misplaced, missing. Each is detected with
//! the documented error naming the stream and sequence number; a snapshot of another version
//! is skipped and the stream folded from its start.

use std::path::Path;
use tandem_engine::record::{FORMAT_VERSION, SNAPSHOT_VERSION, peek_version};
use tandem_engine::{DecodeError, Engine, EngineState, Record, Seq};
use tandem_sled::{EventLog, LogConfig, LogError, SkipReason, Workload};

const STREAM: &str = "default/pg";

fn config() -> LogConfig {
    LogConfig {
        snapshot_every_records: 10,
        retain_records: u64::MAX,
        ..LogConfig::default()
    }
}

/// A log holding 25 records of one stream (snapshot at 9 and 19), closed.
fn written_log() -> (tempfile::TempDir, Vec<Record>) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let records = Workload::new().records(25);
    let log = EventLog::open(directory.path(), config()).expect("a new log");
    let mut tail = Seq(0);
    for record in &records {
        tail = log
            .append(STREAM, tail, std::slice::from_ref(record))
            .expect("an append");
    }
    (directory, records)
}

fn chunk_key(first: u64, last: u64) -> Vec<u8> {
    let mut key = vec![b'c'];
    key.extend_from_slice(&first.to_be_bytes());
    key.extend_from_slice(&last.to_be_bytes());
    key
}

fn snapshot_key(seq: u64) -> Vec<u8> {
    let mut key = vec![b's'];
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// sled lets go of its lock shortly after the log is dropped: retries for up to 3 s.
fn open_sled(path: &Path) -> sled::Db {
    for _ in 0..300 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    sled::open(path).expect("sled opens the log's files")
}

fn stream_tree(db: &sled::Db) -> sled::Tree {
    db.open_tree(format!("stream/{STREAM}"))
        .expect("the stream's tree")
}

/// Changes the stored snapshot of `seq` behind the log's back.
fn tamper_snapshot(
    directory: &Path,
    seq: u64,
    change: impl FnOnce(Option<Vec<u8>>) -> Option<Vec<u8>>,
) {
    let db = open_sled(&directory.join("sled"));
    let tree = stream_tree(&db);
    let key = snapshot_key(seq);
    let old = tree.get(&key).expect("a read").map(|value| value.to_vec());
    match change(old) {
        Some(new) => tree.insert(key, new).map(|_| ()),
        None => tree.remove(key).map(|_| ()),
    }
    .expect("a write");
    db.flush().expect("a flush");
}

/// The last chunk starting at or before record `seq`: its key, its value, and the first and
/// last records its key names.
fn chunk_holding(tree: &sled::Tree, seq: u64) -> (sled::IVec, sled::IVec, u64, u64) {
    let (key, value) = tree
        .range(..=chunk_key(seq, u64::MAX))
        .next_back()
        .expect("a chunk")
        .expect("a read");
    let first = u64::from_be_bytes(key[1..9].try_into().expect("a first seq"));
    let last = u64::from_be_bytes(key[9..].try_into().expect("a last seq"));
    (key, value, first, last)
}

/// Changes the stored bytes of record `seq` behind the log's back, inside the chunk that holds
/// it. Removing it (`None`) splits the chunk around it, as a record that was never stored.
fn tamper(directory: &Path, seq: u64, change: impl FnOnce(Option<Vec<u8>>) -> Option<Vec<u8>>) {
    let db = open_sled(&directory.join("sled"));
    let tree = stream_tree(&db);
    let (key, value, first, last) = chunk_holding(&tree, seq);
    assert!((first..=last).contains(&seq), "record {seq} is stored");
    let mut records = Vec::new();
    let mut rest = &value[..];
    while !rest.is_empty() {
        let len = Record::framed_len(rest).expect("a record header");
        records.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    let at = (seq - first) as usize;
    tree.remove(&key).expect("a removal");
    match change(Some(records[at].clone())) {
        Some(new) => {
            records[at] = new;
            tree.insert(key, records.concat()).expect("a write");
        }
        None => {
            if at > 0 {
                tree.insert(chunk_key(first, seq - 1), records[..at].concat())
                    .expect("a write");
            }
            if seq < last {
                tree.insert(chunk_key(seq + 1, last), records[at + 1..].concat())
                    .expect("a write");
            }
        }
    }
    db.flush().expect("a flush");
}

fn recover_error(directory: &Path) -> LogError {
    let log = EventLog::open(directory, config()).expect("the log opens");
    // Folding from the start reads every record, whatever the snapshots.
    let from_start = log
        .records(STREAM, Seq(1))
        .and_then(|records| records.collect::<Result<Vec<_>, _>>());
    let recovery = log.recover(STREAM);
    match (from_start, recovery) {
        (Err(read), Err(recovered)) => {
            assert_eq!(read.to_string(), recovered.to_string());
            read
        }
        other => panic!("corruption went unnoticed: {other:?}"),
    }
}

#[test]
fn a_flipped_byte_is_a_checksum_error_naming_stream_and_seq() {
    let (directory, _) = written_log();
    tamper(directory.path(), 23, |value| {
        let mut value = value.expect("record 23");
        let last = value.len() - 1;
        value[last] ^= 0x40;
        Some(value)
    });
    let error = recover_error(directory.path());
    assert!(
        matches!(&error, LogError::CorruptRecord { stream, seq: Seq(23), source: DecodeError::Checksum { .. } } if stream == STREAM),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(STREAM) && message.contains("23"),
        "{message}"
    );
}

#[test]
fn a_truncated_tail_record_is_detected() {
    let (directory, _) = written_log();
    tamper(directory.path(), 25, |value| {
        value.map(|value| value[..value.len() - 5].to_vec())
    });
    let error = recover_error(directory.path());
    assert!(
        matches!(
            error,
            LogError::CorruptRecord {
                seq: Seq(25),
                source: DecodeError::Truncated { .. },
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_record_of_an_unknown_version_is_named() {
    let (directory, _) = written_log();
    tamper(directory.path(), 21, |value| {
        let mut value = value.expect("record 21");
        value[2..4].copy_from_slice(&(FORMAT_VERSION + 1).to_be_bytes());
        Some(value)
    });
    let error = recover_error(directory.path());
    assert!(
        matches!(
            error,
            LogError::CorruptRecord {
                seq: Seq(21),
                source: DecodeError::UnknownVersion {
                    version,
                    supported: FORMAT_VERSION,
                },
                ..
            } if version == FORMAT_VERSION + 1
        ),
        "{error:?}"
    );
}

#[test]
fn a_record_under_the_wrong_key_or_a_missing_one_is_detected() {
    let (directory, records) = written_log();
    tamper(directory.path(), 22, |_| Some(records[20].encode()));
    let error = recover_error(directory.path());
    assert!(
        matches!(
            error,
            LogError::MisplacedRecord {
                seq: Seq(22),
                found: Seq(21),
                ..
            }
        ),
        "{error:?}"
    );
    tamper(directory.path(), 22, |_| None);
    let error = recover_error(directory.path());
    assert!(
        matches!(
            error,
            LogError::Gap {
                expected: Seq(22),
                found: Seq(23),
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_snapshot_of_another_version_is_skipped_and_the_stream_folded_from_the_start() {
    let (directory, records) = written_log();
    for seq in [9, 19] {
        tamper_snapshot(directory.path(), seq, |value| {
            let mut value = value.expect("a snapshot");
            assert_eq!(peek_version(&value), Some(SNAPSHOT_VERSION));
            value[2..4].copy_from_slice(&7u16.to_be_bytes());
            Some(value)
        });
    }
    let log = EventLog::open(directory.path(), config()).expect("the log opens");
    let recovered = log.recover(STREAM).expect("recovery without snapshots");
    assert_eq!(recovered.snapshot, None);
    assert_eq!(recovered.records_folded, 25);
    assert_eq!(recovered.skipped_snapshots.len(), 2);
    assert!(matches!(
        recovered.skipped_snapshots[0].reason,
        SkipReason::Undecodable(DecodeError::UnknownVersion { version: 7, .. })
    ));
    let folded = Engine::recover(EngineState::new(), &records).expect("a fold");
    assert_eq!(recovered.engine.state(), folded.state());
}

#[test]
fn pruned_records_without_a_usable_snapshot_are_a_clear_error() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let pruning = LogConfig {
        snapshot_every_records: 10,
        retain_records: 3,
        ..LogConfig::default()
    };
    let log = EventLog::open(directory.path(), pruning).expect("a new log");
    // One record per append, so one chunk per record: pruning removes whole chunks. The
    // append of record 10 snapshots the state after 9 and prunes 1 to 7.
    let mut tail = Seq(0);
    for record in Workload::new().records(12) {
        tail = log
            .append(STREAM, tail, std::slice::from_ref(&record))
            .expect("an append");
    }
    drop(log);
    tamper_snapshot(directory.path(), 9, |value| {
        let mut value = value.expect("the snapshot");
        value[20] ^= 1;
        Some(value)
    });
    let log = EventLog::open(directory.path(), pruning).expect("the log opens");
    let error = log.recover(STREAM).map(|recovered| recovered.snapshot);
    match error {
        Err(LogError::SnapshotRequired {
            stream,
            first_retained,
            detail,
        }) => {
            assert_eq!(stream, STREAM);
            assert_eq!(first_retained, Seq(8));
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected SnapshotRequired, got {other:?}"),
    }
}

/// Damage to the log's files, with the default configuration: sled checks each of its log
/// messages with a CRC and treats the first bad one as the torn end of its log, so without the
/// witness most of these would open to a shorter history, silently. Every one of them is either
/// refused when the log opens (`Damaged`, naming what was lost) or, when it hit nothing
/// acknowledged, leaves every record there: no outcome is a shorter history.
#[test]
fn damage_to_the_logs_files_is_refused_at_open_or_loses_nothing() {
    const RECORDS: usize = 500;
    let records = Workload::new().records(RECORDS);
    type Damage = (&'static str, Box<dyn Fn(&Path)>);
    let db = |directory: &Path| directory.join("sled").join("db");
    let rewrite = move |change: fn(&mut Vec<u8>)| {
        move |directory: &Path| {
            let path = db(directory);
            let mut bytes = std::fs::read(&path).expect("sled's file");
            change(&mut bytes);
            std::fs::write(&path, &bytes).expect("the damaged file");
        }
    };
    let mut damages: Vec<Damage> = vec![
        (
            "flip a byte at 4000",
            Box::new(rewrite(|bytes| bytes[4000] ^= 0x5a)),
        ),
        (
            "truncate to half",
            Box::new(rewrite(|bytes| bytes.truncate(bytes.len() / 2))),
        ),
        (
            "zero the last 16 KiB",
            Box::new(rewrite(|bytes| {
                let len = bytes.len();
                bytes[len.saturating_sub(16 * 1024)..].fill(0);
            })),
        ),
        (
            "zero the whole file",
            Box::new(rewrite(|bytes| bytes.fill(0))),
        ),
        ("truncate to nothing", Box::new(rewrite(Vec::clear))),
        (
            "delete sled's file",
            Box::new(move |directory: &Path| {
                std::fs::remove_file(db(directory)).expect("deleted");
            }),
        ),
        (
            "delete the witness",
            Box::new(|directory: &Path| {
                std::fs::remove_file(directory.join(tandem_sled::WITNESS_FILE)).expect("deleted");
            }),
        ),
    ];
    for offset in [100usize, 20_000, 60_000, 90_000] {
        let name: &'static str = Box::leak(format!("flip a byte at {offset}").into_boxed_str());
        damages.push((
            name,
            Box::new(move |directory: &Path| {
                let path = directory.join("sled").join("db");
                let mut bytes = std::fs::read(&path).expect("sled's file");
                let at = offset % bytes.len();
                bytes[at] ^= 0x5a;
                std::fs::write(&path, &bytes).expect("the damaged file");
            }),
        ));
    }
    let mut refused = 0;
    for (name, damage) in &damages {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let log = EventLog::open(directory.path(), LogConfig::default()).expect("a new log");
        let mut tail = Seq(0);
        for record in &records {
            tail = log
                .append(STREAM, tail, std::slice::from_ref(record))
                .expect("an append");
        }
        drop(log);
        wait_for_sled_to_close(directory.path());
        damage(directory.path());
        let recovered = EventLog::open(directory.path(), LogConfig::default())
            .and_then(|log| log.recover(STREAM).map(|recovered| recovered.engine));
        match recovered {
            Ok(engine) => {
                assert_eq!(
                    engine.state().seq(),
                    Seq(RECORDS as u64),
                    "{name}: a shorter history was accepted"
                );
                let folded = Engine::recover(EngineState::new(), &records).expect("a fold");
                assert_eq!(engine.state(), folded.state(), "{name}");
                eprintln!("{name}: nothing acknowledged was hit");
            }
            Err(error) => {
                assert!(
                    matches!(error, LogError::Damaged { .. }),
                    "{name}: {error:?}"
                );
                eprintln!("{name}: refused: {error}");
                refused += 1;
            }
        }
    }
    assert!(
        refused >= damages.len() - 1,
        "the damage that removes records is refused: {refused} of {}",
        damages.len()
    );
}

/// Waits until sled's background threads have closed its file (its `flock` is released), so
/// that nothing writes to it any more.
fn wait_for_sled_to_close(directory: &Path) {
    let db = std::fs::File::open(directory.join("sled").join("db")).expect("sled's file");
    for _ in 0..300 {
        if db.try_lock().is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("sled did not close its file within 3 s");
}

/// Recovery reads chunks of 4,096 records in two threads: a long stream folds exactly, and a
/// record missing at a chunk boundary is still a gap.
#[test]
fn a_long_stream_folds_across_chunks_and_a_gap_at_a_boundary_is_found() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let records = Workload::new().records(9_000);
    let unsnapshotted = LogConfig {
        snapshot_every_records: 0,
        ..config()
    };
    let log = EventLog::open(directory.path(), unsnapshotted).expect("a new log");
    log.append(STREAM, Seq(0), &records).expect("an append");
    let recovered = log.recover(STREAM).expect("a recovery");
    let folded = Engine::recover(EngineState::new(), &records).expect("a fold");
    assert_eq!(recovered.engine.state(), folded.state());
    assert_eq!(recovered.engine.now(), folded.now());
    assert_eq!(recovered.records_folded, 9_000);
    drop(log);
    tamper(directory.path(), 4_097, |_| None);
    let log = EventLog::open(directory.path(), unsnapshotted).expect("the log opens");
    let error = log
        .recover(STREAM)
        .map(|recovered| recovered.records_folded);
    assert!(
        matches!(
            error,
            Err(LogError::Gap {
                expected: Seq(4_097),
                found: Seq(4_098),
                ..
            })
        ),
        "{error:?}"
    );
}

/// A record that passes its checksum but names member 7 of a pair.
fn record_naming_member_7(seq: u64) -> Record {
    Record {
        seq: Seq(seq),
        at: tandem_engine::Timestamp(1_000_000),
        input: tandem_engine::Input::Timer,
        events: vec![tandem_engine::Event::Unreachable {
            member: tandem_engine::MemberId(7),
            at: tandem_engine::Timestamp(1_000_000),
        }],
        effects: Vec::new(),
    }
}

#[test]
fn a_record_beyond_the_engines_bounds_is_refused_by_readers_not_a_panic() {
    let (directory, _) = written_log();
    tamper(directory.path(), 23, |_| {
        Some(record_naming_member_7(23).encode())
    });
    let log = EventLog::open(directory.path(), config()).expect("the log opens");
    // The record decodes (its checksum is right); folding it is what fails.
    let error = log
        .recover(STREAM)
        .expect_err("the invalid record is refused");
    assert!(
        matches!(&error, LogError::InvalidRecord { stream, seq: Seq(23), .. } if stream == STREAM),
        "{error:?}"
    );
    assert!(error.to_string().contains("member 7"), "{error}");
}

#[test]
fn a_record_beyond_the_engines_bounds_is_refused_by_the_writer() {
    let (directory, records) = written_log();
    let log = EventLog::open(directory.path(), config()).expect("the log opens");
    let tail = Seq(records.len() as u64);
    let error = log
        .append(STREAM, tail, &[record_naming_member_7(tail.0 + 1)])
        .expect_err("an invalid record is refused");
    assert!(
        matches!(&error, LogError::InvalidRecord { seq, .. } if *seq == tail.next()),
        "{error:?}"
    );
    // Nothing was stored, and the stream goes on from the same tail.
    assert_eq!(log.tail_seq(STREAM).expect("the tail"), tail);
    let engine = log.recover(STREAM).expect("the stream folds");
    assert_eq!(engine.engine.state().seq(), tail);
    let next = Record {
        seq: tail.next(),
        at: tandem_engine::Timestamp(2_000_000),
        input: tandem_engine::Input::Timer,
        events: Vec::new(),
        effects: Vec::new(),
    };
    assert_eq!(
        log.append(STREAM, tail, &[next]).expect("an append"),
        tail.next()
    );
}

/// A record whose input names a node of `bytes` bytes.
fn record_of_size(seq: u64, bytes: usize) -> Record {
    Record {
        seq: Seq(seq),
        at: tandem_engine::Timestamp(2_000_000),
        input: tandem_engine::Input::Node {
            node: tandem_engine::NodeName("n".repeat(bytes)),
            status: tandem_engine::NodeStatus::Ready,
        },
        events: Vec::new(),
        effects: Vec::new(),
    }
}

#[test]
fn a_record_larger_than_readers_accept_is_refused_by_the_writer_with_the_limit() {
    use tandem_engine::limits::MAX_RECORD_BYTES;
    let (directory, records) = written_log();
    let log = EventLog::open(directory.path(), config()).expect("the log opens");
    let tail = Seq(records.len() as u64);
    let error = log
        .append(
            STREAM,
            tail,
            &[record_of_size(tail.0 + 1, MAX_RECORD_BYTES)],
        )
        .expect_err("a record over the limit is refused");
    assert!(
        matches!(&error, LogError::RecordTooLarge { seq, limit, bytes, .. }
            if *seq == tail.next() && *limit == MAX_RECORD_BYTES && *bytes > MAX_RECORD_BYTES),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&MAX_RECORD_BYTES.to_string()),
        "{error}"
    );
    assert_eq!(log.tail_seq(STREAM).expect("the tail"), tail);
    // A record just under the limit is stored and read back.
    let fits = record_of_size(tail.0 + 1, MAX_RECORD_BYTES - 64);
    assert_eq!(
        log.append(STREAM, tail, std::slice::from_ref(&fits))
            .expect("a record under the limit"),
        tail.next()
    );
    assert_eq!(log.tail(STREAM).expect("a read"), Some(fits));
}

#[test]
fn a_stored_record_larger_than_the_limit_is_named_as_too_large() {
    use tandem_engine::limits::MAX_RECORD_BYTES;
    let (directory, _) = written_log();
    tamper(directory.path(), 25, |_| {
        Some(record_of_size(25, MAX_RECORD_BYTES + 1).encode())
    });
    let error = recover_error(directory.path());
    assert!(
        matches!(
            error,
            LogError::CorruptRecord {
                seq: Seq(25),
                source: DecodeError::TooLarge { .. },
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("more than the"), "{message}");
}

/// Changes the whole stored chunk that holds record `seq`; returns its first and last record.
fn tamper_chunk(directory: &Path, seq: u64, change: impl FnOnce(&mut Vec<u8>)) -> (u64, u64) {
    let db = open_sled(&directory.join("sled"));
    let tree = stream_tree(&db);
    let (key, value, first, last) = chunk_holding(&tree, seq);
    let mut value = value.to_vec();
    change(&mut value);
    tree.insert(key, value).expect("a write");
    db.flush().expect("a flush");
    (first, last)
}

/// A log holding 40 records of one stream, appended at once: chunks of several records.
fn batched_log() -> (tempfile::TempDir, Vec<Record>) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let records = Workload::new().records(40);
    let log = EventLog::open(directory.path(), config()).expect("a new log");
    log.append(STREAM, Seq(0), &records).expect("an append");
    assert_eq!(
        log.read_range(STREAM, Seq(3), Seq(5)).expect("a range"),
        records[2..5].to_vec(),
        "a range from inside a chunk"
    );
    (directory, records)
}

#[test]
fn bytes_after_a_chunks_last_record_are_detected() {
    let (directory, _) = batched_log();
    let (first, last) = tamper_chunk(directory.path(), 3, |value| {
        value.extend_from_slice(b"stray")
    });
    assert!(last > first, "the chunk holds several records");
    let error = recover_error(directory.path());
    assert!(
        matches!(&error, LogError::CorruptChunk { first: f, last: l, bytes: 5, .. }
            if *f == Seq(first) && *l == Seq(last)),
        "{error:?}"
    );
}

/// A chunk that ends where a fold's reader stops (record 4,096, the end of the first reader's
/// run): the bytes after its last record are found by the recovery too, not only by a reader
/// that goes on.
#[test]
fn bytes_after_a_chunk_that_ends_a_readers_run_are_detected() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let records = Workload::new().records(9_000);
    let unsnapshotted = LogConfig {
        snapshot_every_records: 0,
        ..config()
    };
    let log = EventLog::open(directory.path(), unsnapshotted).expect("a new log");
    // Record 4,096 is a chunk of its own, the last of the first reader's run.
    let mut tail = log
        .append(STREAM, Seq(0), &records[..4_095])
        .expect("an append");
    for part in [&records[4_095..4_096], &records[4_096..]] {
        tail = log.append(STREAM, tail, part).expect("an append");
    }
    drop(log);
    wait_for_sled_to_close(directory.path());
    let (first, last) = tamper_chunk(directory.path(), 4_096, |value| {
        value.extend_from_slice(b"stray")
    });
    assert_eq!((first, last), (4_096, 4_096));
    let log = EventLog::open(directory.path(), unsnapshotted).expect("the log opens");
    let error = log
        .recover(STREAM)
        .map(|recovered| recovered.records_folded);
    assert!(
        matches!(
            &error,
            Err(LogError::CorruptChunk {
                first: Seq(4_096),
                last: Seq(4_096),
                bytes: 5,
                ..
            })
        ),
        "{error:?}"
    );
}

#[test]
fn a_chunk_shorter_than_its_key_says_is_detected() {
    let (directory, records) = batched_log();
    let (_, last) = tamper_chunk(directory.path(), 3, |value| {
        // Drops the chunk's last record whole: what is left still decodes.
        let len = value.len();
        let dropped = records
            .iter()
            .map(Record::encode)
            .find(|bytes| value.ends_with(bytes))
            .expect("the chunk ends with a record")
            .len();
        value.truncate(len - dropped);
    });
    let error = recover_error(directory.path());
    assert!(
        matches!(&error, LogError::CorruptRecord { seq, source: DecodeError::TooShort { len: 0 }, .. }
            if *seq == Seq(last)),
        "{error:?}"
    );
}
