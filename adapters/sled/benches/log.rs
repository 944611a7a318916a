//! The event log's performance, every figure beside a baseline measured in the same run, on
//! the same filesystem:
//!
//! - single durable appends (p50, p99) against a raw `write` + `fdatasync` loop of the same
//!   bytes, in alternating blocks so that both see the same device;
//! - batched durable appends (1,000 records per append) against the raw loop writing each
//!   batch's bytes with one `fdatasync`;
//! - concurrent appenders on separate streams (group commit) against one appender;
//! - recovery (open plus fold) of a stream of 1,000,000 records, with and without snapshots,
//!   written in appends of 1,000 records and, without snapshots, one record per append as the
//!   operator writes, against decoding and folding the same records from memory. The stream is
//!   written by one child process and recovered by another, as an operator restarting would.
//!
//! `cargo bench -p tandem-sled --bench log`. `TANDEM_BENCH_DIR` picks the filesystem (default:
//! the system's temporary directory); `TANDEM_BENCH_RECOVERY_RECORDS` the stream length;
//! `TANDEM_BENCH_RECOVERY_ONLY` skips everything but recovery.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_engine::{EngineState, Record, Seq};
use tandem_sled::{EventLog, LogConfig, Steady, Workload};

/// The allocator the binaries that embed the log run with (`tandem-sim`, `tandem-operator`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SINGLE_BLOCKS: usize = 10;
const SINGLE_APPENDS_PER_BLOCK: usize = 300;
const BATCH_RECORDS: usize = 1_000;
const BATCHES: usize = 100;
const CONCURRENT_APPENDERS: usize = 4;
const CONCURRENT_APPENDS_EACH: usize = 500;
const DEFAULT_RECOVERY_RECORDS: u64 = 1_000_000;

fn main() {
    let records = std::env::var("TANDEM_BENCH_RECOVERY_RECORDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_RECOVERY_RECORDS);
    if let Ok(phase) = std::env::var(RECOVERY_PHASE) {
        recovery_phase(&phase, records);
        return;
    }
    let base = std::env::var_os("TANDEM_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let root = tempfile::tempdir_in(&base).expect("a benchmark directory");
    println!("benchmark directory: {}", root.path().display());
    if std::env::var_os("TANDEM_BENCH_RECOVERY_ONLY").is_none() {
        single_appends(root.path(), Steady::PodChange);
        single_appends(root.path(), Steady::Contact);
        batched_appends(root.path());
        concurrent_appends(root.path());
    }
    for (snapshot_every_records, per_append) in
        [(10_000u64, BATCH_RECORDS), (0, BATCH_RECORDS), (0, 1)]
    {
        recovery(root.path(), records, snapshot_every_records, per_append);
    }
}

/// Set in the child processes of the recovery measurement: `write` or `measure`.
const RECOVERY_PHASE: &str = "TANDEM_BENCH_RECOVERY_PHASE";
const RECOVERY_PATH: &str = "TANDEM_BENCH_RECOVERY_PATH";
const RECOVERY_SNAPSHOTS: &str = "TANDEM_BENCH_RECOVERY_SNAPSHOT_EVERY";
/// Records per append when the stream is written: 1,000, or 1 as the operator writes.
const RECOVERY_PER_APPEND: &str = "TANDEM_BENCH_RECOVERY_PER_APPEND";

/// Runs a recovery phase in a child process of its own and returns what it printed. A
/// recovering operator is a fresh process, and sled's process-wide state (its deferred
/// reclamation, its thread pool) would carry the writing's work over into the recovery.
fn recovery_child(
    phase: &str,
    path: &Path,
    snapshot_every_records: u64,
    per_append: usize,
) -> String {
    let exe = std::env::current_exe().expect("the benchmark's executable");
    let output = std::process::Command::new(exe)
        .env(RECOVERY_PHASE, phase)
        .env(RECOVERY_PATH, path)
        .env(RECOVERY_SNAPSHOTS, snapshot_every_records.to_string())
        .env(RECOVERY_PER_APPEND, per_append.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("a recovery phase runs");
    assert!(output.status.success(), "the {phase} phase failed");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn recovery_phase(phase: &str, count: u64) {
    let path = std::path::PathBuf::from(std::env::var_os(RECOVERY_PATH).expect("a path"));
    let snapshot_every_records = std::env::var(RECOVERY_SNAPSHOTS)
        .ok()
        .and_then(|value| value.parse().ok())
        .expect("a snapshot interval");
    let config = LogConfig {
        snapshot_every_records,
        ..LogConfig::default()
    };
    if phase == "write" {
        let per_append = std::env::var(RECOVERY_PER_APPEND)
            .ok()
            .and_then(|value| value.parse().ok())
            .expect("records per append");
        println!(
            "{}",
            write_stream(&path, config, count, per_append).as_secs_f64()
        );
        return;
    }
    let started = Instant::now();
    let log = open(&path, config);
    let opened = started.elapsed();
    let recovered = log.recover("bench").expect("a recovery");
    let total = started.elapsed();
    assert_eq!(recovered.engine.state().seq(), Seq(count));
    println!(
        "{} {} {} {}",
        opened.as_secs_f64(),
        total.as_secs_f64(),
        recovered.snapshot.map_or(0, |seq| seq.0),
        recovered.records_folded
    );
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// A raw append-only file: `write` then `fdatasync`, as a log without any structure would.
struct RawLog(std::fs::File);

impl RawLog {
    fn create(path: &Path) -> RawLog {
        RawLog(std::fs::File::create(path).expect("the baseline file"))
    }

    fn append(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).expect("a write");
        self.0.sync_data().expect("an fdatasync");
    }
}

fn open(path: &Path, config: LogConfig) -> EventLog {
    EventLog::open(path, config).expect("the log opens")
}

/// Single appends of steady-state records, measured in alternating blocks: a block of log
/// appends, then a block of raw appends of the same bytes, and so on.
fn single_appends(root: &Path, steady: Steady) {
    const WARMUP: usize = 100;
    let total = SINGLE_BLOCKS * SINGLE_APPENDS_PER_BLOCK;
    let mut workload = Workload::new().steady(steady);
    // The stream's first records bring the cluster up; they are appended unmeasured.
    let bootstrap = workload.records(20);
    let records = workload.records(total + WARMUP);
    let bytes = records[WARMUP].encode().len();
    let log = open(
        &root.join(format!("single-{steady:?}")),
        LogConfig::default(),
    );
    let mut raw = RawLog::create(&root.join(format!("raw-single-{steady:?}")));
    let mut tail = log.append("bench", Seq(0), &bootstrap).expect("an append");
    let mut append = |record: &Record| {
        let started = Instant::now();
        tail = log
            .append("bench", tail, std::slice::from_ref(record))
            .expect("an append");
        started.elapsed()
    };
    let mut raw_append = |record: &Record| {
        let encoded = record.encode();
        let started = Instant::now();
        raw.append(&encoded);
        started.elapsed()
    };
    for record in &records[..WARMUP] {
        append(record);
        raw_append(record);
    }
    let mut ours = Vec::with_capacity(total);
    let mut theirs = Vec::with_capacity(total);
    for block in records[WARMUP..].chunks(SINGLE_APPENDS_PER_BLOCK) {
        ours.extend(block.iter().map(&mut append));
        theirs.extend(block.iter().map(&mut raw_append));
    }
    ours.sort();
    theirs.sort();
    let (p50, p99) = (percentile(&ours, 0.5), percentile(&ours, 0.99));
    let (raw50, raw99) = (percentile(&theirs, 0.5), percentile(&theirs, 0.99));
    println!(
        "single durable append, {steady:?} records of {bytes} bytes, {} samples each:\n  \
         log p50 {:.0} us, p99 {:.0} us | raw write+fdatasync p50 {:.0} us, p99 {:.0} us | \
         ratio p50 {:.2}x, p99 {:.2}x",
        ours.len(),
        micros(p50),
        micros(p99),
        micros(raw50),
        micros(raw99),
        micros(p50) / micros(raw50),
        micros(p99) / micros(raw99),
    );
}

/// Appends of 1,000 records each, against the raw loop writing each batch's bytes at once.
fn batched_appends(root: &Path) {
    let mut workload = Workload::new().steady(Steady::PodChange);
    let batches: Vec<Vec<Record>> = (0..BATCHES)
        .map(|_| workload.records(BATCH_RECORDS))
        .collect();
    let log = open(&root.join("batched"), LogConfig::default());
    let mut tail = Seq(0);
    let started = Instant::now();
    for batch in &batches {
        tail = log.append("bench", tail, batch).expect("an append");
    }
    let ours = started.elapsed();
    let mut raw = RawLog::create(&root.join("raw-batched"));
    let encoded: Vec<Vec<u8>> = batches
        .iter()
        .map(|batch| batch.iter().flat_map(Record::encode).collect())
        .collect();
    let started = Instant::now();
    for bytes in &encoded {
        raw.append(bytes);
    }
    let theirs = started.elapsed();
    let records = (BATCHES * BATCH_RECORDS) as f64;
    let bytes = encoded.iter().map(Vec::len).sum::<usize>() as f64 / records;
    println!(
        "batched durable appends, {BATCH_RECORDS} records of {bytes:.0} bytes per append:\n  \
         log {:.0} records/s | raw write+fdatasync {:.0} records/s | ratio {:.2}x slower",
        records / ours.as_secs_f64(),
        records / theirs.as_secs_f64(),
        ours.as_secs_f64() / theirs.as_secs_f64(),
    );
}

/// Single appends from several threads, each on its own stream: group commit shares flushes.
fn concurrent_appends(root: &Path) {
    let log = Arc::new(open(&root.join("concurrent"), LogConfig::default()));
    let run = |threads: usize| {
        let started = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|index| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let stream = format!("bench-{threads}-{index}");
                    let records = Workload::new().records(CONCURRENT_APPENDS_EACH);
                    let mut tail = Seq(0);
                    for record in &records {
                        tail = log
                            .append(&stream, tail, std::slice::from_ref(record))
                            .expect("an append");
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("an appender");
        }
        (threads * CONCURRENT_APPENDS_EACH) as f64 / started.elapsed().as_secs_f64()
    };
    let one = run(1);
    let many = run(CONCURRENT_APPENDERS);
    println!(
        "concurrent single appends (group commit):\n  \
         1 appender {one:.0} appends/s | {CONCURRENT_APPENDERS} appenders {many:.0} appends/s | \
         ratio {:.2}x",
        many / one
    );
}

/// Waits until sled's background threads have closed a dropped log's file, so that the
/// reopening measured next does not wait for them.
fn wait_for_close(path: &Path) {
    let db = std::fs::File::open(path.join("sled").join("db")).expect("sled's file");
    for _ in 0..1_000 {
        if db.try_lock().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes a stream of `count` records in appends of `per_append`; returns the decode-and-fold
/// time of the same records from memory (the baseline). A stream written one record per append
/// is written without waiting for each to be durable (a million durable appends would take most
/// of an hour): sled packs its buffers differently then, but each record is still a value of its
/// own, which is what recovery reads.
fn write_stream(path: &Path, config: LogConfig, count: u64, per_append: usize) -> Duration {
    let config = LogConfig {
        durable_appends: per_append > 1,
        ..config
    };
    let log = open(path, config);
    let mut workload = Workload::new().steady(Steady::PodChange);
    let mut tail = Seq(0);
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    while tail.0 < count {
        let size = (count - tail.0).min(BATCH_RECORDS as u64) as usize;
        let records = workload.records(size);
        for group in records.chunks(per_append) {
            tail = log.append("bench", tail, group).expect("an append");
        }
        encoded.extend(records.iter().map(Record::encode));
    }
    drop(log);
    wait_for_close(path);
    let mut state = EngineState::new();
    let started = Instant::now();
    for bytes in &encoded {
        let record = Record::decode(bytes).expect("a record");
        state.apply_record(&record).expect("contiguous records");
    }
    started.elapsed()
}

fn recovery(root: &Path, count: u64, snapshot_every_records: u64, per_append: usize) {
    let name = match (snapshot_every_records, per_append) {
        (0, 1) => "without snapshots, written one record per append",
        (0, _) => "without snapshots",
        _ => "with snapshots",
    };
    let path = root.join(format!("recovery-{snapshot_every_records}-{per_append}"));
    let baseline: f64 = recovery_child("write", &path, snapshot_every_records, per_append)
        .parse()
        .expect("the baseline in seconds");
    let measured = recovery_child("measure", &path, snapshot_every_records, per_append);
    let fields: Vec<f64> = measured
        .split(' ')
        .map(|field| field.parse().expect("a number"))
        .collect();
    let [opened, total, snapshot, folded] = fields[..] else {
        panic!("unexpected measurement {measured:?}");
    };
    println!(
        "recovery of {count} records {name} (from snapshot {snapshot}, {folded} records folded):\n  \
         open {opened:.3} s + fold {:.3} s = {total:.3} s | decode+fold of all {count} records \
         from memory {baseline:.3} s | ratio {:.2}x",
        total - opened,
        total / baseline,
    );
}
