//! The event log: one directory, one stream per cluster.

use crate::config::LogConfig;
use crate::directory::{self, DurableFiles, SLED_DIRECTORY};
use crate::error::LogError;
use crate::group_commit::GroupCommit;
use crate::keys::{self, SNAPSHOT_TAG};
use crate::read::{self, Records, storage};
use crate::recovery::{self, Recovered};
use crate::witness::Witness;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tandem_engine::limits::MAX_RECORD_BYTES;
use tandem_engine::{EngineState, Record, Seq};

/// The key, in sled's default tree, of the format marker written when a log is created.
const FORMAT_KEY: &[u8] = b"tandem/format";
const FORMAT_VALUE: &[u8] = b"tandem-event-log 1";

/// One prune removes at most this many records, so that a lowered retention does not turn one
/// append into a huge batch; the rest goes with the next appends.
pub const MAX_PRUNE_RECORDS_PER_BATCH: u64 = 100_000;

/// The records of an append are stored in chunks of at most this many bytes (a record larger
/// than this is a chunk of its own): one sled value per chunk instead of one per record. sled
/// keeps up to 17 values in a leaf node and writes a node of more than 128 KiB as a file of its
/// own (a blob), so a full leaf of chunks this size still fits in sled's log.
pub const CHUNK_BYTES: usize = 7 * 1024;

/// An open event log. Shared between threads by reference (`&EventLog` or an `Arc`).
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    config: LogConfig,
    db: sled::Db,
    streams: Mutex<BTreeMap<String, Arc<Mutex<Stream>>>>,
    group: GroupCommit,
    files: Mutex<DurableFiles>,
    witness: Mutex<Witness>,
    /// The streams found damaged at open, with what is wrong: every access to one is
    /// [`LogError::Damaged`] until it is removed.
    damaged: Mutex<BTreeMap<String, String>>,
    /// The directory, locked. Declared last so that sled is closed before the lock is released.
    _lock: File,
}

/// A stream's writer side: its tree and, once loaded, its folded state.
#[derive(Debug)]
struct Stream {
    tree: sled::Tree,
    loaded: Option<Loaded>,
}

/// What a writer keeps about a stream between appends.
#[derive(Debug)]
struct Loaded {
    /// The state before the last record, which is what a snapshot holds (see
    /// `recovery::Folded`); the whole state when the stream has no record after its base.
    /// Keeping the last record apart, instead of the state after it, spares a copy of the state
    /// on every append.
    before_last: EngineState,
    /// The stream's last record, not folded into `before_last`.
    last: Option<Record>,
    first: Seq,
    snapshots: Vec<Seq>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every holder leaves the value consistent or marks it for reloading before it can panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventLog {
    /// Opens the log in `path`, creating it if the directory is absent or empty.
    ///
    /// Errors: [`LogError::NotATandemLog`] for a directory that holds something else,
    /// [`LogError::Locked`] when another process has the log open.
    pub fn open(path: impl AsRef<Path>, config: LogConfig) -> Result<EventLog, LogError> {
        let path = path.as_ref().to_path_buf();
        let claim = directory::claim(&path)?;
        let sled_path = path.join(SLED_DIRECTORY);
        let db = open_sled(&path, &sled_path, &config)?;
        check_format(&db, &path, claim.existing)?;
        let mut files = DurableFiles::open(&sled_path)?;
        // Makes the creation (or whatever a previous process left unflushed) durable.
        db.flush().map_err(storage(&path))?;
        files.sync()?;
        directory::sync_directory(&path)?;
        if !claim.existing {
            // The witness exists before the marker: a log never lacks it.
            Witness::create(&path)?;
            directory::write_marker(&path)?;
        }
        let witness = Witness::open(&path)?;
        let damaged = damaged_streams(&db, &path, &witness)?;
        Ok(EventLog {
            files: Mutex::new(files),
            witness: Mutex::new(witness),
            damaged: Mutex::new(damaged),
            path,
            config,
            db,
            streams: Mutex::new(BTreeMap::new()),
            group: GroupCommit::default(),
            _lock: claim.lock,
        })
    }

    /// Opens the log in `path` for reading, without writing to it: a copy of it, in a new
    /// temporary directory (under `TMPDIR`), is opened and checked as [`EventLog::open`] checks
    /// a log, and goes away with the returned [`Inspection`]. Opening a log lets sled recover
    /// its files, which writes to them and, on a damaged log, makes the loss permanent; a copy
    /// spares the original, and the log may even be open in another process meanwhile.
    ///
    /// Errors: [`LogError::NoLog`] when `path` holds no log (nothing is created), the errors of
    /// [`EventLog::open`] otherwise, naming the copy's path.
    pub fn inspect(path: impl AsRef<Path>) -> Result<Inspection, LogError> {
        let path = path.as_ref();
        let copy = tempfile::Builder::new()
            .prefix("tandem-log-inspection-")
            .tempdir()
            .map_err(directory::io_error(
                "create a temporary directory",
                &std::env::temp_dir(),
            ))?;
        let log_copy = copy.path().join("log");
        std::fs::create_dir(&log_copy)
            .map_err(directory::io_error("create directory", &log_copy))?;
        directory::copy_log(path, &log_copy)?;
        let config = LogConfig {
            durable_appends: false,
            ..LogConfig::default()
        };
        let log = EventLog::open(&log_copy, config)?;
        Ok(Inspection {
            log,
            original: path.to_path_buf(),
            _copy: copy,
        })
    }

    /// The log's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> LogConfig {
        self.config
    }

    /// Appends records to a stream, atomically (all or none), and returns once they are
    /// durable (see `docs/event-log.md`), with the stream's new tail.
    ///
    /// `tail` is the sequence number of the stream's last record as the caller knows it
    /// (`Seq(0)` for a new stream); when the log's tail differs, nothing is written and the
    /// error is [`LogError::Conflict`]. The records must be numbered `tail + 1`, `tail + 2`, ...
    /// Concurrent appends, to any streams, share durable flushes (group commit).
    pub fn append(&self, stream: &str, tail: Seq, records: &[Record]) -> Result<Seq, LogError> {
        self.check_usable()?;
        let handle = self.stream(stream)?;
        let (new_tail, snapshot_written) = {
            let mut guard = lock(&handle);
            let outcome = self.write(stream, &mut guard, tail, records);
            if let Err(
                LogError::Storage { .. }
                | LogError::InvalidRecord { .. }
                | LogError::RecordTooLarge { .. },
            ) = outcome
            {
                // The folded state is ahead of what was stored: fold again next time. The
                // other errors come before anything is folded.
                guard.loaded = None;
            }
            outcome?
        };
        if new_tail != tail {
            if self.config.durable_appends {
                self.flush_durably()?;
                // Only a durable tail may be witnessed: a higher one would report a loss that
                // never happened.
                let mut witness = lock(&self.witness);
                witness.raise(stream, new_tail)?;
                if snapshot_written {
                    witness.sync()?;
                }
            } else {
                lock(&self.witness).raise_later(stream, new_tail);
            }
        }
        Ok(new_tail)
    }

    /// Writes a snapshot now, durably, unless the newest one is recent, and returns the
    /// sequence number it covers (`Seq(0)` when the stream has no records). The snapshot holds
    /// the state before the stream's last record (so that a record always follows it).
    pub fn snapshot(&self, stream: &str) -> Result<Seq, LogError> {
        self.check_usable()?;
        let handle = self.stream(stream)?;
        let (seq, tail) = {
            let mut guard = lock(&handle);
            let Stream { tree, loaded } = &mut *guard;
            let loaded = self.load(stream, tree, loaded)?;
            let seq = match (&loaded.last, &loaded.before_last) {
                (Some(_), state) if loaded.snapshots.last() < Some(&state.seq()) => {
                    let seq = state.seq();
                    tree.insert(keys::key(SNAPSHOT_TAG, seq), state.encode_snapshot())
                        .map_err(storage(&self.path))?;
                    loaded.snapshots.push(seq);
                    seq
                }
                _ => loaded.snapshots.last().copied().unwrap_or(Seq(0)),
            };
            (seq, loaded.tail())
        };
        self.flush_durably()?;
        let mut witness = lock(&self.witness);
        witness.raise(stream, tail)?;
        witness.sync()?;
        Ok(seq)
    }

    /// Removes the records the retention policy lets go (those covered by a snapshot and not
    /// among the last `retain_records`), durably. Returns how many were removed.
    pub fn prune(&self, stream: &str) -> Result<u64, LogError> {
        self.check_usable()?;
        let handle = self.stream(stream)?;
        let removed = {
            let mut guard = lock(&handle);
            let Stream { tree, loaded } = &mut *guard;
            let loaded = self.load(stream, tree, loaded)?;
            let mut batch = sled::Batch::default();
            let plan = plan_prune(stream, tree, &self.path, loaded, &self.config, &[])?;
            plan.add_to(&mut batch);
            tree.apply_batch(batch).map_err(storage(&self.path))?;
            plan.commit(loaded)
        };
        if removed > 0 {
            self.flush_durably()?;
        }
        Ok(removed)
    }

    /// Folds a stream from disk: the newest usable snapshot, then the records after it. A
    /// stream that does not exist folds to a new engine.
    pub fn recover(&self, stream: &str) -> Result<Recovered, LogError> {
        let tree = self.existing_tree(stream)?;
        match tree {
            Some(tree) => {
                let recovered = recovery::fold(&tree, &self.path, stream)?.recovered;
                lock(&self.witness).check(stream, recovered.engine.state().seq())?;
                Ok(recovered)
            }
            None => {
                lock(&self.witness).check(stream, Seq(0))?;
                Ok(Recovered {
                    engine: tandem_engine::Engine::new(),
                    snapshot: None,
                    records_folded: 0,
                    skipped_snapshots: Vec::new(),
                    first_retained: Seq(1),
                })
            }
        }
    }

    /// The records of a stream from `from` on, in order, lazily. Reading a pruned record is
    /// [`LogError::Pruned`].
    pub fn records(&self, stream: &str, from: Seq) -> Result<Records, LogError> {
        let tree = self.existing_or_empty_tree(stream)?;
        let first = read::chunk_edge(&tree, &self.path, stream, false)?;
        if let Some((first, _)) = first.filter(|(first, _)| from < *first) {
            return Err(LogError::Pruned {
                stream: stream.to_string(),
                requested: from,
                first_retained: first,
            });
        }
        Ok(Records::new(&tree, &self.path, stream, from.max(Seq(1))))
    }

    /// The records `first..=last` of a stream (fewer when the stream ends before `last`).
    pub fn read_range(&self, stream: &str, first: Seq, last: Seq) -> Result<Vec<Record>, LogError> {
        let mut out = Vec::new();
        for record in self.records(stream, first)? {
            let record = record?;
            if record.seq > last {
                break;
            }
            out.push(record);
        }
        Ok(out)
    }

    /// The last record of a stream, `None` when the stream holds none.
    pub fn tail(&self, stream: &str) -> Result<Option<Record>, LogError> {
        let tree = self.existing_or_empty_tree(stream)?;
        let Some((_, last)) = read::chunk_edge(&tree, &self.path, stream, true)? else {
            return Ok(None);
        };
        // Reads the last chunk through, so that bytes after its last record are found.
        let mut records = Records::new(&tree, &self.path, stream, last);
        let record = records.next().transpose()?;
        match records.next() {
            Some(Err(error)) => Err(error),
            _ => Ok(record),
        }
    }

    /// The sequence number of a stream's last record (`Seq(0)` for an empty stream), counting
    /// records that were pruned after a snapshot.
    pub fn tail_seq(&self, stream: &str) -> Result<Seq, LogError> {
        let tree = self.existing_or_empty_tree(stream)?;
        stored_tail(&tree, &self.path, stream)
    }

    /// Removes a stream, its records and snapshots, and returns whether it existed; durably
    /// when appends are durable. Nobody may be appending to the stream meanwhile: a later
    /// append starts the stream afresh, from `Seq(0)`.
    pub fn remove_stream(&self, stream: &str) -> Result<bool, LogError> {
        self.check_usable()?;
        let name = keys::tree_name(stream)?;
        let mut streams = lock(&self.streams);
        // Waits for an append in flight on the stream's handle.
        let handle = streams.remove(stream);
        let _writer = handle.as_ref().map(|handle| lock(handle));
        lock(&self.damaged).remove(stream);
        // The witness forgets it first: a crash in between leaves a stream without a witness
        // (checked less), never a witness without its stream (which would read as a loss).
        lock(&self.witness).forget(stream)?;
        let existed = self.db.drop_tree(name).map_err(storage(&self.path))?;
        if existed && self.config.durable_appends {
            self.flush_durably()?;
        }
        Ok(existed)
    }

    /// Records that `stream` is written from now on under leadership `epoch` (the operator's
    /// Lease, `docs/operator.md`), durably when appends are durable, before the writer acts.
    /// An epoch never goes back: an older one than the log holds is [`LogError::EpochBehind`].
    /// The stream is created if it does not exist (with no record).
    pub fn set_epoch(&self, stream: &str, epoch: u64) -> Result<(), LogError> {
        self.check_usable()?;
        let held = self.epoch(stream)?;
        if epoch < held {
            return Err(LogError::EpochBehind {
                stream: stream.to_string(),
                held,
                offered: epoch,
            });
        }
        if epoch == held {
            return Ok(());
        }
        self.store_u64(stream, keys::EPOCH_KEY, epoch)
    }

    /// Names this life of `stream` with `incarnation` (any value the writer picks, the wall
    /// clock for the operator), durably, unless the stream already has one: a stream removed
    /// and started again gets a new one, so that names derived from it (agent command ids) are
    /// not those of its earlier life. Returns the stream's incarnation.
    pub fn incarnate(&self, stream: &str, incarnation: u64) -> Result<u64, LogError> {
        self.check_usable()?;
        if let Some(held) = self.stored_u64(stream, keys::INCARNATION_KEY)? {
            return Ok(held);
        }
        self.store_u64(stream, keys::INCARNATION_KEY, incarnation)?;
        Ok(incarnation)
    }

    /// The incarnation of `stream` ([`EventLog::incarnate`]), `None` when it has none.
    pub fn incarnation(&self, stream: &str) -> Result<Option<u64>, LogError> {
        self.stored_u64(stream, keys::INCARNATION_KEY)
    }

    fn store_u64(&self, stream: &str, key: &[u8], value: u64) -> Result<(), LogError> {
        let handle = self.stream(stream)?;
        {
            let guard = lock(&handle);
            let mut bytes = value.to_be_bytes().to_vec();
            bytes.extend_from_slice(&crc32fast::hash(&bytes).to_be_bytes());
            guard.tree.insert(key, bytes).map_err(storage(&self.path))?;
        }
        if self.config.durable_appends {
            self.flush_durably()?;
        }
        Ok(())
    }

    fn stored_u64(&self, stream: &str, key: &[u8]) -> Result<Option<u64>, LogError> {
        let Some(tree) = self.existing_tree(stream)? else {
            return Ok(None);
        };
        let Some(value) = tree.get(key).map_err(storage(&self.path))? else {
            return Ok(None);
        };
        let corrupt = || LogError::CorruptEpoch {
            stream: stream.to_string(),
        };
        let (number, crc) = value.split_at_checked(8).ok_or_else(corrupt)?;
        let crc: [u8; 4] = crc.try_into().map_err(|_| corrupt())?;
        if crc32fast::hash(number).to_be_bytes() != crc {
            return Err(corrupt());
        }
        let number: [u8; 8] = number.try_into().map_err(|_| corrupt())?;
        Ok(Some(u64::from_be_bytes(number)))
    }

    /// The leadership epoch `stream` was last written under, `0` when none was recorded (a
    /// stream written without leader election, or none at all).
    pub fn epoch(&self, stream: &str) -> Result<u64, LogError> {
        Ok(self.stored_u64(stream, keys::EPOCH_KEY)?.unwrap_or(0))
    }

    /// The names of the streams in the log, in order.
    pub fn streams(&self) -> Result<Vec<String>, LogError> {
        let mut names: Vec<String> = self
            .db
            .tree_names()
            .iter()
            .filter_map(|name| keys::stream_of_tree(name))
            .collect();
        names.sort();
        Ok(names)
    }
}

impl EventLog {
    /// The streams found damaged when the log was opened, with what is wrong with each.
    pub fn damaged_streams(&self) -> BTreeMap<String, String> {
        lock(&self.damaged).clone()
    }

    /// A stream found damaged at open is refused by every read and write.
    fn check_stream(&self, stream: &str) -> Result<(), LogError> {
        match lock(&self.damaged).get(stream) {
            Some(detail) => Err(LogError::Damaged {
                path: self.path.clone(),
                detail: detail.clone(),
            }),
            None => Ok(()),
        }
    }

    fn check_usable(&self) -> Result<(), LogError> {
        match self.group.failure() {
            Some(cause) => Err(LogError::Poisoned {
                path: self.path.clone(),
                cause,
            }),
            None => Ok(()),
        }
    }

    /// sled's flush, completed by the `fsync`s it leaves out, shared by concurrent callers.
    fn flush_durably(&self) -> Result<(), LogError> {
        let flush = || {
            self.db.flush().map_err(storage(&self.path))?;
            lock(&self.files).sync()
        };
        let poisoned = |cause| LogError::Poisoned {
            path: self.path.clone(),
            cause,
        };
        self.group.wait_durable(flush, poisoned)
    }

    /// The writer handle of a stream, creating the stream's tree if needed.
    fn stream(&self, stream: &str) -> Result<Arc<Mutex<Stream>>, LogError> {
        self.check_stream(stream)?;
        let mut streams = lock(&self.streams);
        if let Some(handle) = streams.get(stream) {
            return Ok(Arc::clone(handle));
        }
        let name = keys::tree_name(stream)?;
        let tree = self.db.open_tree(name).map_err(storage(&self.path))?;
        let handle = Arc::new(Mutex::new(Stream { tree, loaded: None }));
        streams.insert(stream.to_string(), Arc::clone(&handle));
        Ok(handle)
    }

    /// A stream's tree if the stream exists; readers never create one.
    fn existing_tree(&self, stream: &str) -> Result<Option<sled::Tree>, LogError> {
        self.check_stream(stream)?;
        if let Some(handle) = lock(&self.streams).get(stream) {
            return Ok(Some(lock(handle).tree.clone()));
        }
        let name = keys::tree_name(stream)?;
        if !self.db.tree_names().iter().any(|tree| tree == &name[..]) {
            return Ok(None);
        }
        self.db
            .open_tree(name)
            .map(Some)
            .map_err(storage(&self.path))
    }

    /// A stream's tree, or for a stream that does not exist sled's default tree, which holds
    /// only the format key: record and snapshot scans find nothing in it.
    fn existing_or_empty_tree(&self, stream: &str) -> Result<sled::Tree, LogError> {
        Ok(self
            .existing_tree(stream)?
            .unwrap_or_else(|| (*self.db).clone()))
    }

    /// The writer's view of a stream, folded from disk on first use.
    fn load<'a>(
        &self,
        stream: &str,
        tree: &sled::Tree,
        loaded: &'a mut Option<Loaded>,
    ) -> Result<&'a mut Loaded, LogError> {
        let value = match loaded.take() {
            Some(value) => value,
            None => {
                let folded = recovery::fold(tree, &self.path, stream)?;
                let tail = folded.recovered.engine.state().seq();
                lock(&self.witness).check(stream, tail)?;
                let (before_last, last) = match folded.before_last {
                    Some((state, record)) => (state, Some(record)),
                    None => (folded.recovered.engine.state().clone(), None),
                };
                Loaded {
                    before_last,
                    last,
                    first: folded.recovered.first_retained,
                    snapshots: folded.usable_snapshots,
                }
            }
        };
        Ok(loaded.insert(value))
    }

    /// Checks and writes an append as one sled batch: the records in chunks, and when the
    /// append crosses a snapshot boundary, the snapshot and the pruning it allows.
    fn write(
        &self,
        stream: &str,
        handle: &mut Stream,
        tail: Seq,
        records: &[Record],
    ) -> Result<(Seq, bool), LogError> {
        let Stream { tree, loaded } = handle;
        let loaded = self.load(stream, tree, loaded)?;
        let actual_tail = loaded.tail();
        if actual_tail != tail {
            return Err(LogError::Conflict {
                stream: stream.to_string(),
                expected_tail: tail,
                actual_tail,
            });
        }
        let every = self.config.snapshot_every_records;
        let crosses = |seq: Seq| every > 0 && seq.0 / every > tail.0 / every;
        let mut expected = tail;
        for record in records {
            expected = expected.next();
            if record.seq != expected {
                return Err(LogError::NotContiguous {
                    stream: stream.to_string(),
                    expected,
                    found: record.seq,
                });
            }
        }
        let Some((newest, earlier)) = records.split_last() else {
            return Ok((tail, false));
        };
        let mut chunks = Chunks::new(records.len() > 1);
        for record in earlier {
            let bytes = encode(stream, record)?;
            if let Some(previous) = loaded.last.take() {
                // It was checked against this state when it was appended, or folded when the
                // stream was loaded.
                loaded
                    .before_last
                    .apply_record(&previous)
                    .map_err(|error| recovery::gap(stream, error))?;
            }
            // Checks the record (a record no reader would fold is not stored) and folds it.
            loaded
                .before_last
                .apply_record(record)
                .map_err(|error| recovery::gap(stream, error))?;
            chunks.push(record.seq, &bytes);
        }
        let bytes = encode(stream, newest)?;
        if let Some(previous) = loaded.last.take() {
            loaded
                .before_last
                .apply_record(&previous)
                .map_err(|error| recovery::gap(stream, error))?;
        }
        loaded
            .before_last
            .check_record(newest)
            .map_err(|error| recovery::gap(stream, error))?;
        loaded.last = Some(newest.clone());
        chunks.push(newest.seq, &bytes);
        let new_tail = newest.seq;
        let mut plan = PrunePlan::default();
        let snapshot = crosses(new_tail).then_some(&loaded.before_last);
        let snapshot_written = snapshot.is_some();
        let mut chunks = chunks.done();
        if chunks.len() == 1 && snapshot.is_none() {
            // One key is atomic on its own, and a batch costs sled a manifest and a sealed
            // write buffer of its own.
            if let Some((first, last, bytes)) = chunks.pop() {
                tree.insert(&keys::chunk_key(first, last)[..], bytes)
                    .map_err(storage(&self.path))?;
            }
            return Ok((new_tail, false));
        }
        // The chunks go into the batch first: a later removal of the same key (pruning with
        // no records retained) must win.
        let mut batch = sled::Batch::default();
        let mut written = Vec::with_capacity(chunks.len());
        for (first, last, bytes) in chunks {
            batch.insert(&keys::chunk_key(first, last)[..], bytes);
            written.push((first, last));
        }
        if let Some(state) = snapshot {
            let seq = state.seq();
            batch.insert(&keys::key(SNAPSHOT_TAG, seq)[..], state.encode_snapshot());
            loaded.snapshots.push(seq);
            plan = plan_prune(stream, tree, &self.path, loaded, &self.config, &written)?;
            plan.add_to(&mut batch);
        }
        tree.apply_batch(batch).map_err(storage(&self.path))?;
        plan.commit(loaded);
        Ok((new_tail, snapshot_written))
    }
}

/// Encodes a record for storing, refusing one that readers would refuse as too large.
fn encode(stream: &str, record: &Record) -> Result<Vec<u8>, LogError> {
    let bytes = record.encode();
    let payload = Record::payload_len(&bytes).unwrap_or_default();
    if payload > MAX_RECORD_BYTES {
        return Err(LogError::RecordTooLarge {
            stream: stream.to_string(),
            seq: record.seq,
            bytes: payload,
            limit: MAX_RECORD_BYTES,
        });
    }
    Ok(bytes)
}

/// The chunks of an append: encoded records one after another, at most [`CHUNK_BYTES`] each,
/// unless one record alone is larger.
struct Chunks {
    done: Vec<(Seq, Seq, Vec<u8>)>,
    /// Whether more than one record is coming: chunks are then allocated at their full size.
    many: bool,
}

impl Chunks {
    fn new(many: bool) -> Chunks {
        Chunks {
            done: Vec::new(),
            many,
        }
    }

    fn push(&mut self, seq: Seq, bytes: &[u8]) {
        match self.done.last_mut() {
            Some((_, last, chunk)) if chunk.len() + bytes.len() <= CHUNK_BYTES => {
                chunk.extend_from_slice(bytes);
                *last = seq;
            }
            _ => {
                let capacity = if self.many { CHUNK_BYTES } else { 0 };
                let mut chunk = Vec::with_capacity(capacity.max(bytes.len()));
                chunk.extend_from_slice(bytes);
                self.done.push((seq, seq, chunk));
            }
        }
    }

    fn done(self) -> Vec<(Seq, Seq, Vec<u8>)> {
        self.done
    }
}

/// A log opened for reading through a copy ([`EventLog::inspect`]): the read half of
/// [`EventLog`]'s API, with errors that name the log that was copied. The copy is removed when
/// the inspection is dropped.
#[derive(Debug)]
pub struct Inspection {
    log: EventLog,
    original: PathBuf,
    _copy: tempfile::TempDir,
}

impl Inspection {
    /// The directory of the log that was copied.
    pub fn original(&self) -> &Path {
        &self.original
    }

    fn named<T>(&self, result: Result<T, LogError>) -> Result<T, LogError> {
        result.map_err(|error| error.relocated(self.log.path(), &self.original))
    }

    /// See [`EventLog::streams`].
    pub fn streams(&self) -> Result<Vec<String>, LogError> {
        self.named(self.log.streams())
    }

    /// See [`EventLog::damaged_streams`].
    pub fn damaged_streams(&self) -> BTreeMap<String, String> {
        let copy = self.log.path().display().to_string();
        let original = self.original.display().to_string();
        self.log
            .damaged_streams()
            .into_iter()
            .map(|(stream, detail)| (stream, detail.replace(&copy, &original)))
            .collect()
    }

    /// See [`EventLog::records`]; the records are read through to the end before they are
    /// returned, so that every error names the original log.
    pub fn records(&self, stream: &str, from: Seq) -> Result<Vec<Record>, LogError> {
        let records = self.named(self.log.records(stream, from))?;
        records
            .map(|record| self.named(record))
            .collect::<Result<Vec<_>, _>>()
    }

    /// See [`EventLog::recover`].
    pub fn recover(&self, stream: &str) -> Result<Recovered, LogError> {
        self.named(self.log.recover(stream))
    }

    /// See [`EventLog::tail_seq`].
    pub fn tail_seq(&self, stream: &str) -> Result<Seq, LogError> {
        self.named(self.log.tail_seq(stream))
    }
}

impl Drop for EventLog {
    /// Closing the log: sled writes what it still buffers, and the witness follows it.
    fn drop(&mut self) {
        if self.group.failure().is_some() {
            return;
        }
        let witness = self
            .witness
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if self.config.durable_appends {
            let _ = witness.sync();
        } else if self.db.flush().is_ok() && lock(&self.files).sync().is_ok() {
            let _ = witness.write_pending().and_then(|()| witness.sync());
        }
    }
}

/// The streams the witness names that sled lost, entirely or at their end, with what is lost.
fn damaged_streams(
    db: &sled::Db,
    path: &Path,
    witness: &Witness,
) -> Result<BTreeMap<String, String>, LogError> {
    let names = db.tree_names();
    let mut damaged = BTreeMap::new();
    for (stream, witnessed) in witness.tails() {
        let name = keys::tree_name(stream)?;
        if !names.iter().any(|tree| tree == &name[..]) {
            damaged.insert(
                stream.clone(),
                format!(
                    "stream {stream} is gone from sled's files, but its records up to \
                     {witnessed} were acknowledged"
                ),
            );
            continue;
        }
        let tree = db.open_tree(name).map_err(storage(path))?;
        let tail = stored_tail(&tree, path, stream)?;
        if let Err(LogError::Damaged { detail, .. }) = witness.check(stream, tail) {
            damaged.insert(stream.clone(), detail);
        }
    }
    Ok(damaged)
}

/// The sequence number of a stream's last record, as its last chunk's key and its newest
/// snapshot's key name it (`Seq(0)` for an empty stream).
fn stored_tail(tree: &sled::Tree, path: &Path, stream: &str) -> Result<Seq, LogError> {
    let record = read::chunk_edge(tree, path, stream, true)?.map(|(_, last)| last);
    let snapshot = read::newest_snapshot(tree, path, stream)?;
    Ok(record.max(snapshot).unwrap_or(Seq(0)))
}

/// sled releases its lock on `db` when the last of its background threads lets go of the file,
/// shortly after the `Db` is dropped. Holding the log's own lock, a failure to take sled's can
/// only be such a lingering handle in this process: it is retried this many times, 10 ms apart.
pub const SLED_LOCK_RETRIES: u32 = 300;

fn open_sled(path: &Path, sled_path: &Path, config: &LogConfig) -> Result<sled::Db, LogError> {
    let mut attempts = 0;
    loop {
        let opened = sled::Config::new()
            .path(sled_path)
            .cache_capacity(config.cache_capacity_bytes)
            // Appends flush explicitly (group commit); a timer flush would only add writes.
            .flush_every_ms(None)
            .open();
        match opened {
            Err(sled::Error::Io(error)) if is_lock_error(&error) => {
                attempts += 1;
                if attempts > SLED_LOCK_RETRIES {
                    return Err(LogError::Locked {
                        path: sled_path.join("db"),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            opened => return opened.map_err(storage(path)),
        }
    }
}

/// sled 0.34.7 reports a failed `flock` as an `Other` error with this text (`config.rs`).
fn is_lock_error(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::Other
        && error.to_string().contains("could not acquire lock")
}

/// Checks sled's own format key, writing it into a new log. A log whose marker exists but whose
/// sled data has no format key has lost its data (sled recovers an empty database from a file
/// whose first segment is damaged): that is an error, not a new log.
fn check_format(db: &sled::Db, path: &Path, existing: bool) -> Result<(), LogError> {
    match db.get(FORMAT_KEY).map_err(storage(path))? {
        Some(value) if value == FORMAT_VALUE => Ok(()),
        Some(value) => Err(LogError::NotATandemLog {
            path: path.to_path_buf(),
            detail: format!("its format key holds {:?}", String::from_utf8_lossy(&value)),
        }),
        None if existing => Err(LogError::Damaged {
            path: path.to_path_buf(),
            detail: "the log exists, but sled's data holds no format key".to_string(),
        }),
        None if db
            .tree_names()
            .iter()
            .any(|name| keys::stream_of_tree(name).is_some()) =>
        {
            Err(LogError::NotATandemLog {
                path: path.to_path_buf(),
                detail: "it holds streams but no format key".to_string(),
            })
        }
        None => db
            .insert(FORMAT_KEY, FORMAT_VALUE)
            .map(|_| ())
            .map_err(storage(path)),
    }
}

impl Loaded {
    fn tail(&self) -> Seq {
        self.last
            .as_ref()
            .map_or_else(|| self.before_last.seq(), |record| record.seq)
    }
}

/// What a prune removes: chunks of records, and the snapshots left without the records that
/// follow them.
#[derive(Debug, Default)]
struct PrunePlan {
    /// The chunks removed, in order: their first and last records.
    chunks: Vec<(Seq, Seq)>,
    snapshots: Vec<Seq>,
}

/// Chunks whose records all lie up to the newest snapshot may go, except those holding any of
/// the last `retain_records`: whole chunks only, so a few more records than asked may stay.
/// `written` are the chunks of the append in progress, not in the tree yet.
fn plan_prune(
    stream: &str,
    tree: &sled::Tree,
    path: &Path,
    loaded: &Loaded,
    config: &LogConfig,
    written: &[(Seq, Seq)],
) -> Result<PrunePlan, LogError> {
    let Some(&newest) = loaded.snapshots.last() else {
        return Ok(PrunePlan::default());
    };
    let tail = loaded.tail();
    let through = newest.min(Seq(tail.0.saturating_sub(config.retain_records)));
    let mut chunks = Vec::new();
    if through >= loaded.first {
        let stored = tree
            .range(keys::chunk_key(loaded.first, loaded.first)..=keys::chunk_key(through, through));
        let mut removed = 0u64;
        let mut take = |first: Seq, last: Seq| {
            let records = last.0 - first.0 + 1;
            let fits = chunks.is_empty() || removed + records <= MAX_PRUNE_RECORDS_PER_BATCH;
            if last > through || !fits {
                return false;
            }
            removed += records;
            chunks.push((first, last));
            true
        };
        let mut more = true;
        for entry in stored {
            let (key, _) = entry.map_err(storage(path))?;
            let (first, last) = keys::parse_chunk(stream, &key)?;
            more = take(first, last);
            if !more {
                break;
            }
        }
        if more {
            for &(first, last) in written {
                if !take(first, last) {
                    break;
                }
            }
        }
    }
    let new_first = chunks.last().map_or(loaded.first, |(_, last)| last.next());
    let snapshots = loaded
        .snapshots
        .iter()
        .filter(|seq| **seq != newest && seq.next() < new_first)
        .copied()
        .collect();
    Ok(PrunePlan { chunks, snapshots })
}

impl PrunePlan {
    fn add_to(&self, batch: &mut sled::Batch) {
        for (first, last) in &self.chunks {
            batch.remove(&keys::chunk_key(*first, *last)[..]);
        }
        for seq in &self.snapshots {
            batch.remove(&keys::key(SNAPSHOT_TAG, *seq)[..]);
        }
    }

    /// Updates the writer's view once the batch is written; returns the records removed.
    fn commit(&self, loaded: &mut Loaded) -> u64 {
        loaded.snapshots.retain(|seq| !self.snapshots.contains(seq));
        match (self.chunks.first(), self.chunks.last()) {
            (Some((first, _)), Some((_, last))) => {
                loaded.first = last.next();
                last.0 - first.0 + 1
            }
            _ => 0,
        }
    }
}
