//! `tandem-sim replay` and `tandem-sim log show|verify|export`: reading a tandem-sled log.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::Path;
use tandem_engine::{Engine, Event, Record, Seq};
use tandem_sled::{EventLog, Inspection};

/// Opens a copy of the log: reading never writes to it, and never creates one.
fn open(dir: &Path) -> Result<Inspection> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    EventLog::inspect(dir).with_context(|| format!("reading the log in {}", dir.display()))
}

fn streams(log: &Inspection, only: Option<&str>) -> Result<Vec<String>> {
    // Streams sled lost entirely are known only to the witness.
    let mut all = log.streams()?;
    all.extend(log.damaged_streams().into_keys());
    all.sort();
    all.dedup();
    match only {
        None => Ok(all),
        Some(name) if all.iter().any(|stream| stream == name) => Ok(vec![name.to_string()]),
        Some(name) => bail!(
            "{}: no stream {name:?} (streams: {})",
            log.original().display(),
            all.join(", ")
        ),
    }
}

fn records(log: &Inspection, stream: &str) -> Result<Vec<Record>> {
    Ok(log.records(stream, Seq(1))?)
}

/// One line per record: sequence number, time, input, transitions and effects.
fn describe(record: &Record) -> String {
    let mut line = format!(
        "{:>6}  {:>10}  {}",
        record.seq.0,
        record.at.to_string(),
        record.input.kind()
    );
    for event in &record.events {
        if let Event::Transition {
            from,
            to,
            reason,
            detail,
            ..
        } = event
        {
            line.push_str(&format!("  [{from} -> {to} ({reason:?}): {detail}]"));
        }
    }
    let effects: Vec<&str> = record
        .effects
        .iter()
        .filter(|e| !e.action.is_report())
        .map(|e| e.action.name())
        .collect();
    if !effects.is_empty() {
        line.push_str(&format!("  effects: {}", effects.join(", ")));
    }
    line
}

/// Prints every record of every stream (or one).
pub fn show(dir: &Path, only: Option<&str>) -> Result<bool> {
    let log = open(dir)?;
    let mut out = std::io::stdout().lock();
    for stream in streams(&log, only)? {
        writeln!(out, "stream {stream}")?;
        for record in records(&log, &stream)? {
            writeln!(out, "{}", describe(&record))?;
        }
    }
    Ok(true)
}

/// Writes every record as a JSON line.
pub fn export(dir: &Path, only: Option<&str>) -> Result<bool> {
    let log = open(dir)?;
    let mut out = std::io::stdout().lock();
    for stream in streams(&log, only)? {
        for record in records(&log, &stream)? {
            let line = serde_json::json!({ "stream": stream, "record": record });
            writeln!(out, "{line}")?;
        }
    }
    Ok(true)
}

/// Checks every record (checksum, version, sequence) and that the fold from the newest snapshot
/// equals the fold from the first record.
pub fn verify(dir: &Path) -> Result<bool> {
    let log = open(dir)?;
    let mut ok = true;
    for stream in streams(&log, None)? {
        let verdict = (|| -> Result<(bool, String)> {
            let records = records(&log, &stream)?;
            let recovered = log.recover(&stream)?;
            let from_start = Engine::recover(tandem_engine::EngineState::new(), &records);
            let tail = log.tail_seq(&stream)?;
            let (fine, verdict) = match (&from_start, records.first().map(|r| r.seq)) {
                (Ok(engine), Some(Seq(1)) | None) if engine.state() == recovered.engine.state() => {
                    (true, "ok".to_string())
                }
                (Ok(_), Some(Seq(1)) | None) => (
                    false,
                    "MISMATCH: the snapshot's fold differs from the records' fold".to_string(),
                ),
                (Err(error), _) => (false, format!("BROKEN: {error}")),
                (Ok(_), Some(first)) => (
                    true,
                    format!("ok (records before {first} pruned; recovered from a snapshot)"),
                ),
            };
            Ok((
                fine,
                format!("{} records, tail {tail}: {verdict}", records.len()),
            ))
        })()
        .unwrap_or_else(|error| (false, format!("BROKEN: {error:#}")));
        ok &= verdict.0;
        println!("{stream}: {}", verdict.1);
    }
    Ok(ok)
}

/// Re-decides every recorded input with this build of the engine and reports the first place
/// its decisions differ from the recorded ones; prints each stream's history.
pub fn replay(dir: &Path) -> Result<bool> {
    let log = open(dir)?;
    let mut same = true;
    for stream in streams(&log, None)? {
        let records = records(&log, &stream)?;
        println!("stream {stream}: {} records", records.len());
        if records.first().is_some_and(|record| record.seq != Seq(1)) {
            println!("  cannot replay: the first records were pruned");
            continue;
        }
        if let Some(difference) = replay_stream(&records)? {
            println!("  DIFFERS at record {difference}");
            same = false;
        }
        for record in &records {
            for event in &record.events {
                if let Event::Transition {
                    to,
                    reason,
                    detail,
                    at,
                    ..
                } = event
                {
                    println!(
                        "  {:>10}  {:<32} {reason:?}: {detail}",
                        at.to_string(),
                        to.to_string()
                    );
                }
            }
        }
    }
    Ok(same)
}

/// Feeds the recorded inputs to a fresh engine; returns a description of the first difference.
pub fn replay_stream(records: &[Record]) -> Result<Option<String>> {
    let mut engine = Engine::new();
    for record in records {
        let step = engine.step(record.at, record.input.clone())?;
        let now = step.record().cloned();
        step.commit(|_| Ok::<(), std::convert::Infallible>(()))?;
        match now {
            Some(now) if now.events == record.events && now.effects == record.effects => {}
            Some(now) => {
                let event = now
                    .events
                    .iter()
                    .zip(&record.events)
                    .position(|(a, b)| a != b);
                return Ok(Some(format!(
                    "{} ({}): recorded {} events and {} effects, this build decides {} and {}{}",
                    record.seq,
                    record.input.kind(),
                    record.events.len(),
                    record.effects.len(),
                    now.events.len(),
                    now.effects.len(),
                    event
                        .map(|index| format!(
                            "; event {index} differs: recorded {:?}, now {:?}",
                            record.events[index], now.events[index]
                        ))
                        .unwrap_or_default()
                )));
            }
            None => {
                return Ok(Some(format!(
                    "{}: this build decides nothing for {}",
                    record.seq,
                    record.input.kind()
                )));
            }
        }
    }
    Ok(None)
}
