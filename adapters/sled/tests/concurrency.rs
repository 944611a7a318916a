//! Several appenders on their own streams, and two writers racing on one stream: nothing is
//! lost, and the writer that lost a race gets `Conflict`.

use std::sync::Arc;
use tandem_engine::{Engine, EngineState, Record, Seq};
use tandem_sled::{EventLog, LogConfig, LogError, Workload};

const APPENDERS: usize = 4;
const APPENDS_PER_STREAM: usize = 150;

#[test]
fn appenders_on_different_streams_lose_nothing() -> Result<(), LogError> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let config = LogConfig {
        snapshot_every_records: 50,
        retain_records: 60,
        ..LogConfig::default()
    };
    let log = Arc::new(EventLog::open(directory.path(), config)?);
    let threads: Vec<_> = (0..APPENDERS)
        .map(|index| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let stream = format!("ns/cluster-{index}");
                let records = Workload::new().records(APPENDS_PER_STREAM);
                let mut tail = Seq(0);
                for record in &records {
                    tail = log.append(&stream, tail, std::slice::from_ref(record))?;
                }
                Ok::<_, LogError>((stream, records))
            })
        })
        .collect();
    let mut written = Vec::new();
    for thread in threads {
        written.push(thread.join().expect("an appender thread")?);
    }
    drop(log);
    let log = EventLog::open(directory.path(), config)?;
    assert_eq!(log.streams()?.len(), APPENDERS);
    for (stream, records) in written {
        let recovered = log.recover(&stream)?;
        let folded = Engine::recover(EngineState::new(), &records).expect("a fold");
        assert_eq!(recovered.engine.state(), folded.state(), "{stream}");
        assert_eq!(log.tail(&stream)?.as_ref(), records.last(), "{stream}");
    }
    Ok(())
}

#[test]
fn racing_writers_on_one_stream_conflict_and_never_interleave() -> Result<(), LogError> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let log = Arc::new(EventLog::open(directory.path(), LogConfig::default())?);
    // Both writers hold the same records; each appends the next one after the tail it knows.
    let records = Arc::new(Workload::new().records(200));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let log = Arc::clone(&log);
            let records = Arc::clone(&records);
            std::thread::spawn(move || race(&log, &records))
        })
        .collect();
    let mut won = 0;
    let mut conflicts = 0;
    for writer in writers {
        let (wins, lost) = writer.join().expect("a writer thread")?;
        won += wins;
        conflicts += lost;
    }
    assert_eq!(won, records.len(), "every record was written exactly once");
    assert!(conflicts > 0, "the writers raced: {conflicts} conflicts");
    let stored: Vec<Record> = log.read_range("race", Seq(1), Seq(u64::MAX))?;
    assert_eq!(&stored, &*records);
    Ok(())
}

/// Appends until the stream holds every record; returns the appends won and the conflicts.
fn race(log: &EventLog, records: &[Record]) -> Result<(usize, usize), LogError> {
    let (mut won, mut lost) = (0, 0);
    let mut tail = Seq(0);
    while (tail.0 as usize) < records.len() {
        let next = &records[tail.0 as usize..=tail.0 as usize];
        match log.append("race", tail, next) {
            Ok(new_tail) => {
                won += 1;
                tail = new_tail;
            }
            Err(LogError::Conflict { actual_tail, .. }) => {
                lost += 1;
                tail = actual_tail;
            }
            Err(error) => return Err(error),
        }
    }
    Ok((won, lost))
}
