//! The crash test's child: opens the log in the directory given, then appends to its streams in
//! a loop, one thread per stream, and prints `<stream> <seq>` on stdout (flushed) after each
//! append returns, that is once the record is durable. The test kills it with SIGKILL at a
//! random moment and checks that every printed record survived.
//!
//! `tandem-sled-crash-child <directory> <streams> <snapshot-every-records>`

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use tandem_engine::Seq;
use tandem_sled::{EventLog, LogConfig, LogError, Workload};

/// Each thread stops after this many appends; the test kills the process long before.
const MAX_APPENDS_PER_STREAM: u64 = 1_000_000;
/// Appends carry one to this many records, so batches are crashed into too.
const MAX_RECORDS_PER_APPEND: u64 = 4;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(directory), Some(streams), Some(every)) = (args.get(1), args.get(2), args.get(3))
    else {
        eprintln!("usage: tandem-sled-crash-child <directory> <streams> <snapshot-every-records>");
        return ExitCode::from(2);
    };
    let (Ok(streams), Ok(every)) = (streams.parse::<u32>(), every.parse::<u64>()) else {
        eprintln!("<streams> and <snapshot-every-records> are numbers");
        return ExitCode::from(2);
    };
    match run(directory, streams, every) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tandem-sled-crash-child: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(directory: &str, streams: u32, every: u64) -> Result<(), LogError> {
    let config = LogConfig {
        snapshot_every_records: every,
        // Everything stays, so the test can fold each stream from its first record and
        // compare with what recovery from the snapshot gives.
        retain_records: u64::MAX,
        ..LogConfig::default()
    };
    let log = Arc::new(EventLog::open(directory, config)?);
    println!("ready");
    let threads: Vec<_> = (0..streams)
        .map(|index| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || append_loop(&log, &format!("crash/{index}")))
        })
        .collect();
    for thread in threads {
        thread.join().unwrap_or(Ok(()))?;
    }
    Ok(())
}

fn append_loop(log: &EventLog, stream: &str) -> Result<(), LogError> {
    let recovered = log.recover(stream)?;
    let mut tail = recovered.engine.state().seq();
    let mut workload = Workload::resume(recovered.engine);
    for round in 0..MAX_APPENDS_PER_STREAM {
        let count = 1 + (round + tail.0) % MAX_RECORDS_PER_APPEND;
        let records: Vec<_> = (0..count).map_while(|_| workload.next_record()).collect();
        let Some(last) = records.last().map(|record| record.seq) else {
            return Ok(());
        };
        tail = log.append(stream, tail, &records)?;
        debug_assert_eq!(tail, last);
        acknowledge(stream, tail);
    }
    Ok(())
}

/// One line per acknowledged append, written whole and flushed, so the parent never reads a
/// sequence number that was not acknowledged.
fn acknowledge(stream: &str, seq: Seq) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the parent is gone; there is nobody left to tell.
    let _ = writeln!(out, "{stream} {seq}");
    let _ = out.flush();
}
