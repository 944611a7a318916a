//! The witness: for each stream, the tail last acknowledged, in a file beside sled's, so that
//! sled losing records (a damaged, truncated, zeroed or deleted file) is noticed at open.
//!
//! sled takes the first damaged message in its file for the torn end of its log and recovers
//! what precedes it, silently. A stream that recovers to less than its witness has lost
//! acknowledged records; a stream the witness names that sled no longer has has lost all of
//! them. Both are [`LogError::Damaged`].
//!
//! The file is a sequence of entries, each appended after the durable flush of an append (the
//! records are durable before their witness exists, so a witness never claims more than the
//! disk holds, even across a power loss). Entries are not `fsync`ed one by one: a kill of the
//! process loses none of them, since they reached the kernel, and a power loss may lose the
//! latest ones, which only makes the witness lag. The file is `fsync`ed at every snapshot and
//! when the log closes, so after a power loss the witness lags by less than
//! `snapshot_every_records` records. Once the file outgrows [`COMPACT_AFTER_BYTES`], it is
//! rewritten atomically with one entry per stream.
//!
//! An entry: a kind byte (`T`: the stream's tail is `seq`; `R`: the stream was removed), the
//! stream name's length (u16, big-endian), the name, `seq` (u64, big-endian), and a CRC-32 of
//! all of these. Reading stops at the first entry that does not check: what follows is the
//! torn end of an interrupted write, and the file is cut there before anything is appended.

use crate::directory::{io_error as io, sync_directory};
use crate::error::LogError;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use tandem_engine::Seq;

/// The witness file, in the log's directory.
pub const WITNESS_FILE: &str = "WITNESS";
const WITNESS_TEMPORARY: &str = "WITNESS.tmp";

/// Past this size the file is rewritten with one entry per stream: a stream appended to a
/// million times costs 20 MB of entries otherwise.
pub const COMPACT_AFTER_BYTES: u64 = 1 << 20;

const TAIL: u8 = b'T';
const REMOVED: u8 = b'R';

/// The witness of a log: the tails, and the file they are appended to.
#[derive(Debug)]
pub(crate) struct Witness {
    directory: PathBuf,
    file: File,
    /// The tails written to the file.
    tails: BTreeMap<String, Seq>,
    /// The file's length.
    len: u64,
    /// Tails raised but not written yet: a log whose appends are not durable writes them once
    /// sled has flushed.
    pending: BTreeMap<String, Seq>,
}

/// Sets a stream's tail in `map`. Called on every append: no allocation once the stream is
/// known.
fn set(map: &mut BTreeMap<String, Seq>, stream: &str, seq: Seq) {
    match map.get_mut(stream) {
        Some(tail) => *tail = seq,
        None => {
            map.insert(stream.to_string(), seq);
        }
    }
}

fn encode(kind: u8, stream: &str, seq: Seq, out: &mut Vec<u8>) {
    let start = out.len();
    out.push(kind);
    // Stream names are at most `MAX_STREAM_NAME_BYTES` (320) long.
    out.extend_from_slice(&(stream.len() as u16).to_be_bytes());
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(&seq.0.to_be_bytes());
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Parses the entries of `bytes`; returns the tails and the length of the valid prefix.
fn parse(bytes: &[u8]) -> (BTreeMap<String, Seq>, usize) {
    let mut tails = BTreeMap::new();
    let mut at = 0;
    loop {
        let Some(entry) = parse_entry(&bytes[at..]) else {
            return (tails, at);
        };
        let (kind, stream, seq, len) = entry;
        match kind {
            TAIL => {
                tails.insert(stream, seq);
            }
            _ => {
                tails.remove(&stream);
            }
        }
        at += len;
    }
}

fn parse_entry(bytes: &[u8]) -> Option<(u8, String, Seq, usize)> {
    let kind = *bytes.first()?;
    if kind != TAIL && kind != REMOVED {
        return None;
    }
    let name_len = usize::from(u16::from_be_bytes([*bytes.get(1)?, *bytes.get(2)?]));
    let seq_at = 3 + name_len;
    let crc_at = seq_at + 8;
    let len = crc_at + 4;
    let entry = bytes.get(..len)?;
    let stored = u32::from_be_bytes(entry[crc_at..len].try_into().ok()?);
    if crc32fast::hash(&entry[..crc_at]) != stored {
        return None;
    }
    let stream = String::from_utf8(entry[3..seq_at].to_vec()).ok()?;
    let seq = Seq(u64::from_be_bytes(entry[seq_at..crc_at].try_into().ok()?));
    Some((kind, stream, seq, len))
}

impl Witness {
    /// Creates an empty witness file, durably (a new log, before its marker is written).
    pub(crate) fn create(directory: &Path) -> Result<(), LogError> {
        let path = directory.join(WITNESS_FILE);
        let file = File::create(&path).map_err(io("create", &path))?;
        file.sync_all().map_err(io("fsync", &path))?;
        sync_directory(directory)
    }

    /// Reads the witness of the log in `directory` and opens it for appending. A log without
    /// its witness file is damaged: the file is created with the log, and without it nothing
    /// could tell a log that lost records from one that never had them. A torn end (an entry
    /// whose write was interrupted) is cut off.
    pub(crate) fn open(directory: &Path) -> Result<Witness, LogError> {
        let path = directory.join(WITNESS_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(LogError::Damaged {
                    path: path.clone(),
                    detail: format!(
                        "the log has no {WITNESS_FILE} file: it cannot tell whether records \
                         were lost"
                    ),
                });
            }
            Err(source) => return Err(io("read", &path)(source)),
        };
        let (tails, valid) = parse(&bytes);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io("open", &path))?;
        if valid < bytes.len() {
            file.set_len(valid as u64).map_err(io("truncate", &path))?;
            file.sync_all().map_err(io("fsync", &path))?;
        }
        Ok(Witness {
            directory: directory.to_path_buf(),
            file,
            tails,
            len: valid as u64,
            pending: BTreeMap::new(),
        })
    }

    /// The streams the witness knows, with their tails.
    pub(crate) fn tails(&self) -> &BTreeMap<String, Seq> {
        &self.tails
    }

    /// Checks that a stream recovered at least to its witness.
    pub(crate) fn check(&self, stream: &str, tail: Seq) -> Result<(), LogError> {
        match self.tails.get(stream) {
            Some(witnessed) if tail < *witnessed => Err(LogError::Damaged {
                path: self.directory.clone(),
                detail: format!(
                    "stream {stream} ends at record {tail}, but record {witnessed} was \
                     acknowledged: records were lost from sled's files"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Records that `stream`'s records up to `seq` are durable: the entry is appended now.
    pub(crate) fn raise(&mut self, stream: &str, seq: Seq) -> Result<(), LogError> {
        self.pending.remove(stream);
        if self.tails.get(stream).is_some_and(|tail| *tail >= seq) {
            return Ok(());
        }
        set(&mut self.tails, stream, seq);
        let mut entry = Vec::with_capacity(32 + stream.len());
        encode(TAIL, stream, seq, &mut entry);
        self.append(&entry)
    }

    /// Records that `stream`'s records up to `seq` are written but not durable yet: the entry
    /// waits for [`Witness::write_pending`], called once they are.
    pub(crate) fn raise_later(&mut self, stream: &str, seq: Seq) {
        set(&mut self.pending, stream, seq);
    }

    /// Writes the tails raised for later, once their records are durable.
    pub(crate) fn write_pending(&mut self) -> Result<(), LogError> {
        for (stream, seq) in std::mem::take(&mut self.pending) {
            self.raise(&stream, seq)?;
        }
        Ok(())
    }

    /// Forgets a stream (it is being removed), durably.
    pub(crate) fn forget(&mut self, stream: &str) -> Result<(), LogError> {
        self.pending.remove(stream);
        if self.tails.remove(stream).is_none() {
            return Ok(());
        }
        let mut entry = Vec::new();
        encode(REMOVED, stream, Seq(0), &mut entry);
        self.append(&entry)?;
        self.sync()
    }

    /// Makes the entries written so far durable.
    pub(crate) fn sync(&self) -> Result<(), LogError> {
        let path = self.directory.join(WITNESS_FILE);
        self.file.sync_data().map_err(io("fsync", &path))
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        if self.len + bytes.len() as u64 > COMPACT_AFTER_BYTES {
            return self.compact();
        }
        let path = self.directory.join(WITNESS_FILE);
        self.file.write_all(bytes).map_err(io("write", &path))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Rewrites the file with one entry per stream, atomically (temporary file, `fsync`,
    /// rename, `fsync` of the directory).
    fn compact(&mut self) -> Result<(), LogError> {
        let mut bytes = Vec::new();
        for (stream, seq) in &self.tails {
            encode(TAIL, stream, *seq, &mut bytes);
        }
        let temporary = self.directory.join(WITNESS_TEMPORARY);
        let mut file = File::create(&temporary).map_err(io("create", &temporary))?;
        file.write_all(&bytes).map_err(io("write", &temporary))?;
        file.sync_all().map_err(io("fsync", &temporary))?;
        let path = self.directory.join(WITNESS_FILE);
        fs::rename(&temporary, &path).map_err(io("rename", &path))?;
        sync_directory(&self.directory)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io("open", &path))?;
        self.len = bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporary() -> tempfile::TempDir {
        tempfile::tempdir().expect("a temporary directory")
    }

    #[test]
    fn tails_survive_a_reopen_and_catch_a_short_stream() -> Result<(), LogError> {
        let directory = temporary();
        Witness::create(directory.path())?;
        let mut witness = Witness::open(directory.path())?;
        witness.raise("ns/a b", Seq(40))?;
        witness.raise("ns/a b", Seq(30))?;
        witness.raise("other", Seq(5))?;
        witness.forget("other")?;
        let witness = Witness::open(directory.path())?;
        assert_eq!(witness.tails().len(), 1);
        assert!(witness.check("ns/a b", Seq(40)).is_ok());
        assert!(matches!(
            witness.check("ns/a b", Seq(39)),
            Err(LogError::Damaged { .. })
        ));
        assert!(witness.check("other", Seq(0)).is_ok());
        Ok(())
    }

    #[test]
    fn a_torn_end_is_cut_and_a_missing_file_is_damage() -> Result<(), LogError> {
        let directory = temporary();
        Witness::create(directory.path())?;
        let mut witness = Witness::open(directory.path())?;
        witness.raise("s", Seq(7))?;
        drop(witness);
        let path = directory.path().join(WITNESS_FILE);
        let mut bytes = fs::read(&path).map_err(io("read", &path))?;
        let whole = bytes.len();
        // Half of a second entry, as an interrupted write leaves it.
        let mut second = Vec::new();
        encode(TAIL, "s", Seq(8), &mut second);
        bytes.extend_from_slice(&second[..second.len() / 2]);
        fs::write(&path, &bytes).map_err(io("write", &path))?;
        let mut witness = Witness::open(directory.path())?;
        assert_eq!(witness.tails().get("s"), Some(&Seq(7)));
        assert_eq!(
            fs::metadata(&path).map_err(io("stat", &path))?.len(),
            whole as u64
        );
        witness.raise("s", Seq(9))?;
        assert_eq!(
            Witness::open(directory.path())?.tails().get("s"),
            Some(&Seq(9))
        );
        fs::remove_file(&path).map_err(io("remove", &path))?;
        assert!(matches!(
            Witness::open(directory.path()),
            Err(LogError::Damaged { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_large_file_is_compacted_to_one_entry_per_stream() -> Result<(), LogError> {
        let directory = temporary();
        Witness::create(directory.path())?;
        let mut witness = Witness::open(directory.path())?;
        for seq in 1..=60_000 {
            witness.raise("stream", Seq(seq))?;
        }
        let path = directory.path().join(WITNESS_FILE);
        let len = fs::metadata(&path).map_err(io("stat", &path))?.len();
        assert!(len <= COMPACT_AFTER_BYTES, "{len}");
        assert_eq!(
            Witness::open(directory.path())?.tails().get("stream"),
            Some(&Seq(60_000))
        );
        Ok(())
    }
}
