//! Reading a stream's tree: records in order, with every check that a record is the one its
//! key promises.

use crate::error::LogError;
use crate::keys::{self, RECORD_TAG, SNAPSHOT_TAG};
use tandem_engine::{Record, Seq};

/// Decodes a stored record and checks it is the one its key names.
pub(crate) fn decode_record(stream: &str, seq: Seq, bytes: &[u8]) -> Result<Record, LogError> {
    let record = Record::decode(bytes).map_err(|source| LogError::CorruptRecord {
        stream: stream.to_string(),
        seq,
        source,
    })?;
    if record.seq != seq {
        return Err(LogError::MisplacedRecord {
            stream: stream.to_string(),
            seq,
            found: record.seq,
        });
    }
    Ok(record)
}

pub(crate) fn storage(path: &std::path::Path) -> impl Fn(sled::Error) -> LogError + '_ {
    move |source| LogError::Storage {
        path: path.to_path_buf(),
        source,
    }
}

/// The first or last stored key with `tag`, as a sequence number.
pub(crate) fn edge(
    tree: &sled::Tree,
    path: &std::path::Path,
    stream: &str,
    tag: u8,
    last: bool,
) -> Result<Option<Seq>, LogError> {
    let mut scan = tree.scan_prefix([tag]);
    let entry = if last { scan.next_back() } else { scan.next() };
    match entry {
        None => Ok(None),
        Some(entry) => {
            let (key, _) = entry.map_err(storage(path))?;
            keys::parse(stream, tag, &key).map(Some)
        }
    }
}

/// The stored snapshots' sequence numbers and bytes, newest first.
pub(crate) fn snapshots_newest_first(
    tree: &sled::Tree,
    path: &std::path::Path,
    stream: &str,
) -> Result<Vec<(Seq, sled::IVec)>, LogError> {
    let mut out = Vec::new();
    for entry in tree.scan_prefix([SNAPSHOT_TAG]).rev() {
        let (key, value) = entry.map_err(storage(path))?;
        out.push((keys::parse(stream, SNAPSHOT_TAG, &key)?, value));
    }
    Ok(out)
}

/// The records of a stream from a sequence number on, in order, each decoded and checked; an
/// error (a gap, a corrupt record) ends the iteration.
pub struct Records {
    stream: String,
    path: std::path::PathBuf,
    inner: sled::Iter,
    expected: Seq,
    failed: bool,
}

impl Records {
    pub(crate) fn new(
        tree: &sled::Tree,
        path: &std::path::Path,
        stream: &str,
        from: Seq,
    ) -> Records {
        let start = keys::key(RECORD_TAG, from);
        let end = keys::key(RECORD_TAG, Seq(u64::MAX));
        Records {
            stream: stream.to_string(),
            path: path.to_path_buf(),
            inner: tree.range(start..=end),
            expected: from,
            failed: false,
        }
    }

    fn decode(&mut self, key: &[u8], value: &[u8]) -> Result<Record, LogError> {
        let seq = keys::parse(&self.stream, RECORD_TAG, key)?;
        if seq != self.expected {
            return Err(LogError::Gap {
                stream: self.stream.clone(),
                expected: self.expected,
                found: seq,
            });
        }
        let record = decode_record(&self.stream, seq, value)?;
        self.expected = seq.next();
        Ok(record)
    }
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("stream", &self.stream)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl Iterator for Records {
    type Item = Result<Record, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match self.inner.next()? {
            Ok((key, value)) => self.decode(&key, &value),
            Err(source) => Err(storage(&self.path)(source)),
        };
        self.failed = item.is_err();
        Some(item)
    }
}
