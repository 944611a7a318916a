//! The crash test: a child process appends in a loop and is killed with SIGKILL at random
//! moments; after each kill the log is reopened and checked. Every acknowledged append is
//! present, sequence numbers are contiguous, no record is torn (each decodes and checksums),
//! and recovery from the newest snapshot agrees with folding every record from the first.
//!
//! `TANDEM_CRASH_ROUNDS` sets the number of rounds (default 60), `TANDEM_CRASH_SEED` the seed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tandem_engine::{Engine, EngineState, Record, Seq};
use tandem_sled::{EventLog, LogConfig};

const CHILD: &str = env!("CARGO_BIN_EXE_tandem-sled-crash-child");
const STREAMS: u32 = 3;
const SNAPSHOT_EVERY_RECORDS: u64 = 37;
/// A child that has not said "ready" within this long has failed.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The kill comes this long after "ready", at most.
const MAX_KILL_DELAY_MS: u64 = 150;

/// xorshift64*: the test's own seeded randomness, printed so a failure can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

#[test]
fn sigkill_never_loses_an_acknowledged_append() {
    let rounds = env_number("TANDEM_CRASH_ROUNDS").unwrap_or(60);
    let seed = env_number("TANDEM_CRASH_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |since| since.as_nanos() as u64 | 1)
    });
    eprintln!("crash test: {rounds} rounds, TANDEM_CRASH_SEED={seed}");
    let mut random = Random(seed);
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut acknowledged: BTreeMap<String, Seq> = BTreeMap::new();
    for round in 0..rounds {
        let delay = Duration::from_millis(random.below(MAX_KILL_DELAY_MS));
        let acks = run_and_kill(directory.path(), delay);
        for (stream, seq) in acks {
            let known = acknowledged.entry(stream).or_default();
            assert!(seq > *known, "round {round}: acknowledgements go forward");
            *known = seq;
        }
        check(directory.path(), &acknowledged, round);
    }
    let total: u64 = acknowledged.values().map(|seq| seq.0).sum();
    eprintln!("crash test: {total} records acknowledged over {rounds} kills");
    assert!(total > rounds, "the children made progress");
}

/// Runs the child until `delay` after it is ready, kills it, returns what it acknowledged.
fn run_and_kill(directory: &std::path::Path, delay: Duration) -> Vec<(String, Seq)> {
    let mut child = Command::new(CHILD)
        .arg(directory)
        .arg(STREAMS.to_string())
        .arg(SNAPSHOT_EVERY_RECORDS.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the crash child starts");
    let stdout = child.stdout.take().expect("a piped stdout");
    let (ready_sender, ready) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "ready" {
                let _ = ready_sender.send(());
                continue;
            }
            let (stream, seq) = line.split_once(' ').expect("<stream> <seq>");
            acks.push((
                stream.to_string(),
                Seq(seq.parse().expect("a sequence number")),
            ));
        }
        acks
    });
    let started = Instant::now();
    if ready.recv_timeout(READY_TIMEOUT).is_err() {
        let _ = child.kill();
        let status = child.wait();
        panic!(
            "the child did not get ready in {:?}: {status:?}",
            started.elapsed()
        );
    }
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("the child is reaped");
    assert!(
        !status.success(),
        "the child was killed, not finished: {status:?}"
    );
    reader.join().expect("the reader thread")
}

/// Reopens the log and checks every stream against what was acknowledged.
fn check(directory: &std::path::Path, acknowledged: &BTreeMap<String, Seq>, round: u64) {
    let config = LogConfig {
        snapshot_every_records: SNAPSHOT_EVERY_RECORDS,
        retain_records: u64::MAX,
        ..LogConfig::default()
    };
    let log = EventLog::open(directory, config)
        .unwrap_or_else(|error| panic!("round {round}: reopening: {error}"));
    for (stream, acked) in acknowledged {
        let records: Vec<Record> = log
            .records(stream, Seq(1))
            .and_then(|records| records.collect::<Result<_, _>>())
            .unwrap_or_else(|error| panic!("round {round}: reading {stream}: {error}"));
        let tail = records.last().map_or(Seq(0), |record| record.seq);
        assert!(
            tail >= *acked,
            "round {round}: {stream} ends at {tail}, {acked} was acknowledged"
        );
        // `records` checked contiguity from 1 and every checksum; folding checks it again.
        let folded = Engine::recover(EngineState::new(), &records)
            .unwrap_or_else(|error| panic!("round {round}: folding {stream}: {error}"));
        let recovered = log
            .recover(stream)
            .unwrap_or_else(|error| panic!("round {round}: recovering {stream}: {error}"));
        assert_eq!(
            recovered.engine.state(),
            folded.state(),
            "round {round}: {stream}: recovery from snapshot {:?} differs from the fold",
            recovered.snapshot
        );
        assert!(
            recovered.skipped_snapshots.is_empty(),
            "round {round}: {stream}: {:?}",
            recovered.skipped_snapshots
        );
    }
}

/// A log held by another process is `Locked`, naming the directory; once that process is
/// gone, even by SIGKILL, the log opens.
#[test]
fn a_log_open_in_another_process_is_locked() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut child = Command::new(CHILD)
        .arg(directory.path())
        .arg("1")
        .arg("0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the crash child starts");
    let stdout = child.stdout.take().expect("a piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines.next().and_then(Result::ok);
    let second = EventLog::open(directory.path(), LogConfig::default());
    child.kill().expect("SIGKILL");
    child.wait().expect("the child is reaped");
    assert_eq!(ready.as_deref(), Some("ready"));
    match second {
        Err(tandem_sled::LogError::Locked { path }) => assert_eq!(path, directory.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(lines);
    EventLog::open(directory.path(), LogConfig::default()).expect("the log opens after the kill");
}
