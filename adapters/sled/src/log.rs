//! The event log: one directory, one stream per cluster.

use crate::config::LogConfig;
use crate::directory::{self, DurableFiles, SLED_DIRECTORY};
use crate::error::LogError;
use crate::group_commit::GroupCommit;
use crate::keys::{self, RECORD_TAG, SNAPSHOT_TAG};
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
            let plan = plan_prune(loaded, &self.config);
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
        let first = read::edge(&tree, &self.path, stream, RECORD_TAG, false)?;
        if let Some(first) = first.filter(|first| from < *first) {
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
        let Some(entry) = tree.scan_prefix([RECORD_TAG]).next_back() else {
            return Ok(None);
        };
        let (key, value) = entry.map_err(storage(&self.path))?;
        let seq = keys::parse(stream, RECORD_TAG, &key)?;
        read::decode_record(stream, seq, &value).map(Some)
    }

    /// The sequence number of a stream's last record (`Seq(0)` for an empty stream), counting
    /// records that were pruned after a snapshot.
    pub fn tail_seq(&self, stream: &str) -> Result<Seq, LogError> {
        let tree = self.existing_or_empty_tree(stream)?;
        let record = read::edge(&tree, &self.path, stream, RECORD_TAG, true)?;
        let snapshot = recovery::newest_snapshot(&tree, &self.path, stream)?;
        Ok(record.max(snapshot).unwrap_or(Seq(0)))
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

    /// Checks and writes an append as one sled batch: the records, and when the append crosses
    /// a snapshot boundary, the snapshot and the pruning it allows.
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
        let mut encoded = Vec::with_capacity(records.len());
        for record in records {
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
            if let Some(previous) = loaded.last.take() {
                // It was checked against this state when it was appended, or folded when the
                // stream was loaded.
                loaded
                    .before_last
                    .apply_record(&previous)
                    .map_err(|error| recovery::gap(stream, error))?;
            }
            // A record no reader would fold is not stored.
            loaded
                .before_last
                .check_record(record)
                .map_err(|error| recovery::gap(stream, error))?;
            loaded.last = Some(record.clone());
            encoded.push((keys::key(RECORD_TAG, record.seq), bytes));
        }
        let new_tail = loaded.tail();
        let mut plan = PrunePlan::default();
        let snapshot = (new_tail != tail && crosses(new_tail)).then_some(&loaded.before_last);
        let snapshot_written = snapshot.is_some();
        // The records go into the batch first: a later removal of the same key (pruning with
        // no records retained) must win.
        let mut batch = sled::Batch::default();
        let alone = (encoded.len() == 1 && snapshot.is_none())
            .then(|| encoded.pop())
            .flatten();
        for (key, bytes) in encoded {
            batch.insert(&key[..], bytes);
        }
        if let Some(state) = snapshot {
            let seq = state.seq();
            batch.insert(&keys::key(SNAPSHOT_TAG, seq)[..], state.encode_snapshot());
            loaded.snapshots.push(seq);
            plan = plan_prune(loaded, &self.config);
            plan.add_to(&mut batch);
        }
        match alone {
            // One key is atomic on its own, and a batch costs sled a manifest and a sealed
            // write buffer of its own.
            Some((key, bytes)) => tree.insert(&key[..], bytes).map(|_| ()),
            None => tree.apply_batch(batch),
        }
        .map_err(storage(&self.path))?;
        plan.commit(loaded);
        Ok((new_tail, snapshot_written))
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
        let record = read::edge(&tree, path, stream, RECORD_TAG, true)?;
        let snapshot = recovery::newest_snapshot(&tree, path, stream)?;
        let tail = record.max(snapshot).unwrap_or(Seq(0));
        if let Err(LogError::Damaged { detail, .. }) = witness.check(stream, tail) {
            damaged.insert(stream.clone(), detail);
        }
    }
    Ok(damaged)
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

/// What a prune removes: a range of records, and the snapshots left without the records
/// that follow them.
impl Loaded {
    fn tail(&self) -> Seq {
        self.last
            .as_ref()
            .map_or_else(|| self.before_last.seq(), |record| record.seq)
    }
}

#[derive(Debug, Default)]
struct PrunePlan {
    records: Option<(Seq, Seq)>,
    snapshots: Vec<Seq>,
}

/// Records up to the newest snapshot may go, except the last `retain_records`.
fn plan_prune(loaded: &Loaded, config: &LogConfig) -> PrunePlan {
    let Some(&newest) = loaded.snapshots.last() else {
        return PrunePlan::default();
    };
    let tail = loaded.tail();
    let through = newest.min(Seq(tail.0.saturating_sub(config.retain_records)));
    let first = loaded.first;
    let records = (through >= first).then(|| {
        let bounded = first.0.saturating_add(MAX_PRUNE_RECORDS_PER_BATCH - 1);
        (first, Seq(through.0.min(bounded)))
    });
    let new_first = records.map_or(first, |(_, last)| last.next());
    let snapshots = loaded
        .snapshots
        .iter()
        .filter(|seq| **seq != newest && seq.next() < new_first)
        .copied()
        .collect();
    PrunePlan { records, snapshots }
}

impl PrunePlan {
    fn add_to(&self, batch: &mut sled::Batch) {
        if let Some((first, last)) = self.records {
            for seq in first.0..=last.0 {
                batch.remove(&keys::key(RECORD_TAG, Seq(seq))[..]);
            }
        }
        for seq in &self.snapshots {
            batch.remove(&keys::key(SNAPSHOT_TAG, *seq)[..]);
        }
    }

    /// Updates the writer's view once the batch is written; returns the records removed.
    fn commit(&self, loaded: &mut Loaded) -> u64 {
        loaded.snapshots.retain(|seq| !self.snapshots.contains(seq));
        match self.records {
            Some((first, last)) => {
                loaded.first = last.next();
                last.0 - first.0 + 1
            }
            None => 0,
        }
    }
}
