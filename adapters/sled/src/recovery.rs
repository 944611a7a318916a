//! Folding a stream into engine state: the newest usable snapshot, then the records after it.

use crate::error::LogError;
use crate::read::{self, Records};
use std::path::Path;
use tandem_engine::{DecodeError, Engine, EngineState, Record, Seq};

/// Records are decoded and folded this many at a time, so memory stays bounded however long
/// the stream is.
pub const FOLD_CHUNK_RECORDS: usize = 4096;

/// A stream folded back into an engine.
#[derive(Debug)]
pub struct Recovered {
    /// The engine, holding the state of every stored record.
    pub engine: Engine,
    /// The snapshot the fold started from, `None` when it started from the first record.
    pub snapshot: Option<Seq>,
    /// How many records were folded (those after the snapshot).
    pub records_folded: u64,
    /// Newer snapshots that could not be used, and why.
    pub skipped_snapshots: Vec<SkippedSnapshot>,
    /// The first record still stored (the tail's successor when none is).
    pub first_retained: Seq,
}

/// A snapshot recovery did not use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSnapshot {
    /// The last record it covers.
    pub seq: Seq,
    /// Why it was not used.
    pub reason: SkipReason,
}

/// Why a snapshot was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// It does not decode: another format version (written by another build), or corruption.
    Undecodable(DecodeError),
    /// It decodes, but to the state after another record than its key says.
    WrongSeq {
        /// The sequence number of the decoded state.
        found: Seq,
    },
    /// Records between it and the first retained record were pruned.
    RecordsPruned {
        /// The first record still stored.
        first_retained: Seq,
    },
}

impl std::fmt::Display for SkippedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            SkipReason::Undecodable(error) => write!(f, "snapshot {}: {error}", self.seq),
            SkipReason::WrongSeq { found } => {
                write!(
                    f,
                    "snapshot {} holds the state after record {found}",
                    self.seq
                )
            }
            SkipReason::RecordsPruned { first_retained } => write!(
                f,
                "snapshot {}: the records after it up to {first_retained} were pruned",
                self.seq
            ),
        }
    }
}

/// Where a fold starts.
struct Base {
    state: EngineState,
    snapshot: Option<Seq>,
    skipped: Vec<SkippedSnapshot>,
    usable: Vec<Seq>,
}

/// A stream folded, with what the writer keeps besides.
pub(crate) struct Folded {
    /// The recovery.
    pub(crate) recovered: Recovered,
    /// The usable snapshots, ascending (the writer prunes by them).
    pub(crate) usable_snapshots: Vec<Seq>,
    /// The state before the last record, and that record; `None` when the fold met no record.
    /// Snapshots are taken of this state, so that at least one record always follows a
    /// snapshot: folding that record is how a recovered engine learns the latest time recorded.
    pub(crate) before_last: Option<(EngineState, Record)>,
}

/// Folds a stream's tree.
pub(crate) fn fold(tree: &sled::Tree, path: &Path, stream: &str) -> Result<Folded, LogError> {
    let first = read::chunk_edge(tree, path, stream, false)?.map(|(first, _)| first);
    let base = choose_base(tree, path, stream, first)?;
    let from = base.state.seq().next();
    let (engine, before_last, records_folded) = fold_records(tree, path, stream, from, base.state)?;
    let first_retained = first.unwrap_or_else(|| engine.state().seq().next());
    let mut usable_snapshots = base.usable;
    usable_snapshots.sort();
    let recovered = Recovered {
        engine,
        snapshot: base.snapshot,
        records_folded,
        skipped_snapshots: base.skipped,
        first_retained,
    };
    Ok(Folded {
        recovered,
        usable_snapshots,
        before_last,
    })
}

/// Picks the newest snapshot that decodes, holds the state its key says, and has every record
/// after it still stored; without one, the start of the stream, if its first record is stored.
fn choose_base(
    tree: &sled::Tree,
    path: &Path,
    stream: &str,
    first: Option<Seq>,
) -> Result<Base, LogError> {
    let mut chosen: Option<(Seq, EngineState)> = None;
    let mut skipped = Vec::new();
    let mut usable = Vec::new();
    let snapshots = read::snapshots_newest_first(tree, path, stream)?;
    let newest = snapshots.first().map(|(seq, _)| *seq);
    for (seq, bytes) in snapshots {
        let reason = match EngineState::decode_snapshot(&bytes) {
            Err(error) => Some(SkipReason::Undecodable(error)),
            Ok(state) if state.seq() != seq => Some(SkipReason::WrongSeq { found: state.seq() }),
            Ok(_) if first.is_some_and(|first| first > seq.next()) => {
                Some(SkipReason::RecordsPruned {
                    first_retained: first.unwrap_or_default(),
                })
            }
            Ok(state) => {
                usable.push(seq);
                if chosen.is_none() {
                    chosen = Some((seq, state));
                }
                None
            }
        };
        if let (Some(reason), None) = (reason, &chosen) {
            skipped.push(SkippedSnapshot { seq, reason });
        }
    }
    if let Some((seq, state)) = chosen {
        return Ok(Base {
            state,
            snapshot: Some(seq),
            skipped,
            usable,
        });
    }
    // No usable snapshot: the fold starts from the first record, which must still be stored.
    let first_retained = match (first, newest) {
        (Some(first), _) => first,
        (None, Some(newest)) => newest.next(),
        (None, None) => Seq(1),
    };
    if first_retained != Seq(1) {
        let detail = skipped.iter().map(ToString::to_string).collect::<Vec<_>>();
        return Err(LogError::SnapshotRequired {
            stream: stream.to_string(),
            first_retained,
            detail: detail.join("; "),
        });
    }
    Ok(Base {
        state: EngineState::new(),
        snapshot: None,
        skipped,
        usable,
    })
}

/// A fold's engine, the state before the last record with that record (see
/// [`Folded::before_last`]), and the number of records folded.
type FoldedRecords = (Engine, Option<(EngineState, Record)>, u64);

/// Folds records into `state`. Decoding records costs about what folding them does, so
/// [`FOLD_READERS`] threads read and decode while this one folds: reader `r` takes chunks `r`,
/// `r + FOLD_READERS`, ... of [`FOLD_CHUNK_RECORDS`] records each, and the fold takes the
/// chunks in turn from each reader's bounded queue. The fold hands each chunk back to its
/// reader once folded, and the reader frees its records: memory allocated by one thread and
/// freed by another costs the allocator several times what it costs in one thread.
///
/// The last record goes through [`Engine::recover`], so the engine also learns the latest time
/// recorded (an engine's record times never decrease, so the latest is the last record's).
/// Also returns the state before the last record, which the writer snapshots (see
/// [`Folded::before_last`]), and the number of records folded.
fn fold_records(
    tree: &sled::Tree,
    path: &Path,
    stream: &str,
    from: Seq,
    state: EngineState,
) -> Result<FoldedRecords, LogError> {
    let last = read::chunk_edge(tree, path, stream, true)?.map(|(_, last)| last);
    let to_fold = last.map_or(0, |last| last.0.saturating_add(1).saturating_sub(from.0));
    if to_fold <= FOLD_CHUNK_RECORDS as u64 {
        // One chunk at most: readers would cost more to start than they save.
        let mut chunk = Vec::new();
        for record in Records::new(tree, path, stream, from) {
            chunk.push(record?);
        }
        let folded = chunk.len() as u64;
        return finish_fold(stream, state, chunk, folded);
    }
    std::thread::scope(|scope| {
        let mut readers = Vec::new();
        for reader in 0..FOLD_READERS {
            let (sender, receiver) = std::sync::mpsc::sync_channel(FOLD_QUEUE_CHUNKS);
            let (give_back, given_back) = std::sync::mpsc::channel();
            readers.push((receiver, give_back));
            scope.spawn(move || {
                read_chunks(tree, path, stream, from, reader, &sender, &given_back);
            });
        }
        fold_chunks(stream, &readers, state)
    })
}

/// Threads reading and decoding records during a fold.
pub const FOLD_READERS: u64 = 2;

/// Chunks each reader decodes ahead of the fold, at most: bounds a recovery's memory.
pub const FOLD_QUEUE_CHUNKS: usize = 2;

type Chunk = Result<Vec<Record>, LogError>;

/// A reader's side of a fold: the chunks it decodes, and the folded chunks it is handed back.
type Reader = (
    std::sync::mpsc::Receiver<Chunk>,
    std::sync::mpsc::Sender<Vec<Record>>,
);

/// Reads this reader's chunks until the stream ends (a chunk shorter than full, possibly
/// empty), an error, or the fold stops listening. Chunks handed back are emptied here, which
/// frees their records in the thread that allocated them, and reused.
fn read_chunks(
    tree: &sled::Tree,
    path: &Path,
    stream: &str,
    from: Seq,
    reader: u64,
    sender: &std::sync::mpsc::SyncSender<Chunk>,
    given_back: &std::sync::mpsc::Receiver<Vec<Record>>,
) {
    let chunk_records = FOLD_CHUNK_RECORDS as u64;
    let mut index = reader;
    loop {
        let start = Seq(from.0.saturating_add(index.saturating_mul(chunk_records)));
        let mut spare = None;
        while let Ok(mut folded) = given_back.try_recv() {
            folded.clear();
            spare = Some(folded);
        }
        let mut chunk = spare.unwrap_or_else(|| Vec::with_capacity(FOLD_CHUNK_RECORDS));
        // `Records` checks that the chunk starts at `start` and is contiguous.
        for record in Records::new(tree, path, stream, start).take(FOLD_CHUNK_RECORDS) {
            match record {
                Ok(record) => chunk.push(record),
                Err(error) => {
                    let _ = sender.send(Err(error));
                    return;
                }
            }
        }
        let last = chunk.len() < FOLD_CHUNK_RECORDS;
        if sender.send(Ok(chunk)).is_err() || last {
            return;
        }
        index += FOLD_READERS;
    }
}

fn fold_chunks(
    stream: &str,
    readers: &[Reader],
    state: EngineState,
) -> Result<FoldedRecords, LogError> {
    let mut state = state;
    let mut folded = 0u64;
    // One chunk is held back, so that the last record is known when the stream ends.
    let mut held: Vec<Record> = Vec::new();
    let mut held_from = 0;
    for (index, (receiver, _)) in readers.iter().enumerate().cycle() {
        // Every reader ends on a short chunk or an error, which end this loop first.
        let Ok(chunk) = receiver.recv() else {
            break;
        };
        let chunk = chunk?;
        let end = chunk.len() < FOLD_CHUNK_RECORDS;
        folded += chunk.len() as u64;
        if !chunk.is_empty() {
            let previous = std::mem::replace(&mut held, chunk);
            for record in &previous {
                state
                    .apply_record(record)
                    .map_err(|error| gap(stream, error))?;
            }
            // A reader that has ended no longer takes chunks back: this thread frees it then.
            let _ = readers[held_from].1.send(previous);
            held_from = index;
        }
        if end {
            break;
        }
    }
    finish_fold(stream, state, held, folded)
}

/// Folds the last chunk of a stream; the last record goes through [`Engine::recover`].
fn finish_fold(
    stream: &str,
    mut state: EngineState,
    mut held: Vec<Record>,
    folded: u64,
) -> Result<FoldedRecords, LogError> {
    let Some(last) = held.pop() else {
        return Ok((
            Engine::recover(state, []).map_err(|error| gap(stream, error))?,
            None,
            0,
        ));
    };
    for record in &held {
        state
            .apply_record(record)
            .map_err(|error| gap(stream, error))?;
    }
    let before_last = state.clone();
    let engine = Engine::recover(state, [&last]).map_err(|error| gap(stream, error))?;
    Ok((engine, Some((before_last, last)), folded))
}

pub(crate) fn gap(stream: &str, error: tandem_engine::FoldError) -> LogError {
    match error {
        tandem_engine::FoldError::Gap { expected, found } => LogError::Gap {
            stream: stream.to_string(),
            expected,
            found,
        },
        tandem_engine::FoldError::Inconsistent { seq, .. } => LogError::Inconsistent {
            stream: stream.to_string(),
            seq,
            detail: error.to_string(),
        },
        tandem_engine::FoldError::Invalid { seq, detail } => LogError::InvalidRecord {
            stream: stream.to_string(),
            seq,
            detail,
        },
    }
}
