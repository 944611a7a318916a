//! Reading a stream's tree: records in order, out of their chunks, with every check that a
//! record is the one its place promises.

use crate::error::LogError;
use crate::keys::{self, CHUNK_TAG, SNAPSHOT_TAG};
use tandem_engine::{Record, Seq};

/// Decodes a stored record and checks it is the one its place names.
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

/// The first or last chunk of a stream: the sequence numbers of its first and last record.
pub(crate) fn chunk_edge(
    tree: &sled::Tree,
    path: &std::path::Path,
    stream: &str,
    last: bool,
) -> Result<Option<(Seq, Seq)>, LogError> {
    let mut scan = tree.scan_prefix([CHUNK_TAG]);
    let entry = if last { scan.next_back() } else { scan.next() };
    match entry {
        None => Ok(None),
        Some(entry) => {
            let (key, _) = entry.map_err(storage(path))?;
            keys::parse_chunk(stream, &key).map(Some)
        }
    }
}

/// The sequence number of the newest snapshot.
pub(crate) fn newest_snapshot(
    tree: &sled::Tree,
    path: &std::path::Path,
    stream: &str,
) -> Result<Option<Seq>, LogError> {
    match tree.scan_prefix([SNAPSHOT_TAG]).next_back() {
        None => Ok(None),
        Some(entry) => {
            let (key, _) = entry.map_err(storage(path))?;
            keys::parse(stream, SNAPSHOT_TAG, &key).map(Some)
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

/// The bytes of the record at the start of `rest`: as many as its header announces, or all of
/// `rest` when it is shorter (decoding them then reports the truncation), and whether the
/// record is whole.
fn frame(rest: &[u8]) -> (&[u8], bool) {
    match Record::framed_len(rest) {
        Some(len) if len <= rest.len() => (&rest[..len], true),
        _ => (rest, false),
    }
}

/// The chunk a [`Records`] is reading.
struct Chunk {
    bytes: sled::IVec,
    offset: usize,
    first: Seq,
    /// The sequence number of the record at `offset`.
    next: Seq,
    last: Seq,
}

/// The records of a stream from a sequence number on, in order, each decoded and checked; an
/// error (a gap, a corrupt record) ends the iteration.
pub struct Records {
    stream: String,
    path: std::path::PathBuf,
    inner: sled::Iter,
    chunk: Option<Chunk>,
    /// The sequence number of the next record returned.
    expected: Seq,
    /// An error found before the first chunk was read.
    pending: Option<LogError>,
    failed: bool,
}

impl Records {
    /// Starts at the chunk holding `from`, or at the first chunk after it (a gap, unless
    /// `from` is past the stream's end).
    pub(crate) fn new(
        tree: &sled::Tree,
        path: &std::path::Path,
        stream: &str,
        from: Seq,
    ) -> Records {
        let holding = tree
            .range(keys::chunk_key(Seq(0), Seq(0))..=keys::chunk_key(from, Seq(u64::MAX)))
            .next_back();
        let (start, pending) = match holding {
            Some(Ok((key, _))) => match keys::parse_chunk(stream, &key) {
                Ok((first, last)) if last >= from => (keys::chunk_key(first, last), None),
                Ok(_) => (keys::chunk_key(from, Seq(0)), None),
                Err(error) => (keys::chunk_key(from, Seq(0)), Some(error)),
            },
            Some(Err(error)) => (keys::chunk_key(from, Seq(0)), Some(storage(path)(error))),
            None => (keys::chunk_key(from, Seq(0)), None),
        };
        let end = keys::chunk_key(Seq(u64::MAX), Seq(u64::MAX));
        Records {
            stream: stream.to_string(),
            path: path.to_path_buf(),
            inner: tree.range(start..=end),
            chunk: None,
            expected: from,
            pending,
            failed: false,
        }
    }

    /// Opens the next chunk, which must hold the expected record.
    fn open(&mut self, key: &[u8], bytes: sled::IVec) -> Result<(), LogError> {
        let (first, last) = keys::parse_chunk(&self.stream, key)?;
        if first > self.expected {
            return Err(LogError::Gap {
                stream: self.stream.clone(),
                expected: self.expected,
                found: first,
            });
        }
        self.chunk = Some(Chunk {
            bytes,
            offset: 0,
            first,
            next: first,
            last,
        });
        Ok(())
    }

    /// The next record of the open chunk: `None` once the chunk is read through.
    fn next_in_chunk(&mut self) -> Option<Result<Record, LogError>> {
        let chunk = self.chunk.as_mut()?;
        loop {
            let rest = &chunk.bytes[chunk.offset..];
            if chunk.next > chunk.last {
                if !rest.is_empty() {
                    return Some(Err(LogError::CorruptChunk {
                        stream: self.stream.clone(),
                        first: chunk.first,
                        last: chunk.last,
                        bytes: rest.len(),
                    }));
                }
                self.chunk = None;
                return None;
            }
            let seq = chunk.next;
            let (bytes, whole) = frame(rest);
            chunk.offset += bytes.len();
            chunk.next = seq.next();
            if seq < self.expected && whole {
                // Before the first record asked for: skipped, unread.
                continue;
            }
            // Bytes after the chunk's last record are damage: found with the last record, so
            // that a reader stopping there (a fold's reader at the end of its run) sees it too.
            let trailing = chunk.bytes.len() - chunk.offset;
            if seq == chunk.last && trailing > 0 {
                return Some(Err(LogError::CorruptChunk {
                    stream: self.stream.clone(),
                    first: chunk.first,
                    last: chunk.last,
                    bytes: trailing,
                }));
            }
            let record = decode_record(&self.stream, seq, bytes);
            if record.is_ok() {
                self.expected = seq.next();
            }
            return Some(record);
        }
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
        let item = loop {
            if let Some(error) = self.pending.take() {
                break Err(error);
            }
            if let Some(record) = self.next_in_chunk() {
                break record;
            }
            let opened = match self.inner.next()? {
                Ok((key, value)) => self.open(&key, value),
                Err(source) => Err(storage(&self.path)(source)),
            };
            if let Err(error) = opened {
                break Err(error);
            }
        };
        self.failed = item.is_err();
        Some(item)
    }
}
