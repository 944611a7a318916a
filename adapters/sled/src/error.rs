//! The crate's one error type. Every variant names the path, or the stream and sequence number,
//! it is about.

use std::path::{Path, PathBuf};
use tandem_engine::{DecodeError, Seq};

/// Why an operation on the event log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file-system operation failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done ("open", "fsync", ...).
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// sled reported an error.
    #[error("storage error in {path}: {source}")]
    Storage {
        /// The log's directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: sled::Error,
    },
    /// The directory holds files but no tandem log marker, or a marker of another format.
    #[error("{path} is not a tandem event log: {detail}")]
    NotATandemLog {
        /// The directory.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// Reading a log where there is none: the directory is absent, or holds no marker. Readers
    /// never create a log.
    #[error("{path} holds no tandem event log (no TANDEM_LOG marker): nothing to read")]
    NoLog {
        /// The directory.
        path: PathBuf,
    },
    /// The directory holds a tandem log of a layout version this build cannot read: an older
    /// one (this build reads only its own, see `docs/event-log.md`), or a newer one.
    #[error(
        "{path} holds a tandem event log of layout version {found}, {}; this build reads layout version {supported} only",
        if found < supported { "written by an older build" } else { "written by a newer build" }
    )]
    UnsupportedLayout {
        /// The directory.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The log's files are damaged beyond what sled recovers from.
    #[error("the event log in {path} is damaged: {detail}")]
    Damaged {
        /// The log's directory.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Another process (or another handle in this one) has the log open.
    #[error("{path} is locked: another process has this event log open")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A stream name the log does not accept.
    #[error("invalid stream name {stream:?}: {reason}")]
    InvalidStreamName {
        /// The name given.
        stream: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The caller's idea of the stream's tail is not the log's: another writer appended first.
    #[error(
        "conflict on stream {stream}: the append expected tail {expected_tail}, the log's tail is {actual_tail}"
    )]
    Conflict {
        /// The stream.
        stream: String,
        /// The tail the caller expected.
        expected_tail: Seq,
        /// The tail in the log.
        actual_tail: Seq,
    },
    /// The records given to an append are not numbered contiguously after the tail.
    #[error("append to stream {stream}: expected record {expected}, was given record {found}")]
    NotContiguous {
        /// The stream.
        stream: String,
        /// The sequence number expected.
        expected: Seq,
        /// The one given.
        found: Seq,
    },
    /// A stored record does not decode (checksum mismatch, truncation, unknown version...),
    /// or its bytes are missing from the end of its chunk.
    #[error("stream {stream}, record {seq}: {source}")]
    CorruptRecord {
        /// The stream.
        stream: String,
        /// The record's place: its chunk's first record, plus its position in the chunk.
        seq: Seq,
        /// What is wrong with its bytes.
        #[source]
        source: DecodeError,
    },
    /// A stored record decodes, but carries another sequence number than its place in its
    /// chunk.
    #[error("stream {stream}: the record stored as {seq} says it is record {found}")]
    MisplacedRecord {
        /// The stream.
        stream: String,
        /// The place it is stored at.
        seq: Seq,
        /// The sequence number inside the record.
        found: Seq,
    },
    /// A chunk of records holds bytes after the last record its key names.
    #[error(
        "stream {stream}: the chunk of records {first} to {last} holds {bytes} bytes after record {last}"
    )]
    CorruptChunk {
        /// The stream.
        stream: String,
        /// The first record its key names.
        first: Seq,
        /// The last record its key names.
        last: Seq,
        /// How many bytes follow that record.
        bytes: usize,
    },
    /// A key in a stream's tree that the layout does not define.
    #[error("stream {stream}: unexpected key {key:02x?}")]
    CorruptKey {
        /// The stream.
        stream: String,
        /// The key.
        key: Vec<u8>,
    },
    /// A stored record does not continue the history of the records before it (a transition
    /// that starts elsewhere than the fold stands): the stream does not hold one history.
    #[error("stream {stream}: record {seq} does not follow the records before it: {detail}")]
    Inconsistent {
        /// The stream.
        stream: String,
        /// The record.
        seq: Seq,
        /// What the fold found.
        detail: String,
    },
    /// A record holds a value the engine cannot hold (a member beyond the cluster, a name longer
    /// than a Kubernetes name, an effect id beyond the limit). Readers refuse it rather than
    /// fold it, and writers refuse to store it.
    #[error("stream {stream}: record {seq} is invalid: {detail}")]
    InvalidRecord {
        /// The stream.
        stream: String,
        /// The record.
        seq: Seq,
        /// What is out of bounds.
        detail: String,
    },
    /// A record is larger than any reader accepts: it is not stored.
    #[error(
        "stream {stream}: record {seq} has a payload of {bytes} bytes, more than the {limit} a record may hold"
    )]
    RecordTooLarge {
        /// The stream.
        stream: String,
        /// The record.
        seq: Seq,
        /// Its payload's size.
        bytes: usize,
        /// The limit (`tandem_engine::limits::MAX_RECORD_BYTES`).
        limit: usize,
    },
    /// Records are missing inside the stream: the stored sequence numbers are not contiguous.
    #[error("stream {stream}: record {expected} is missing (the next stored record is {found})")]
    Gap {
        /// The stream.
        stream: String,
        /// The sequence number expected.
        expected: Seq,
        /// The next one stored.
        found: Seq,
    },
    /// The records asked for were pruned (they are covered by a snapshot).
    #[error(
        "stream {stream}: record {requested} was pruned; the first retained record is {first_retained}"
    )]
    Pruned {
        /// The stream.
        stream: String,
        /// The first sequence number asked for.
        requested: Seq,
        /// The first record still stored.
        first_retained: Seq,
    },
    /// The stream's early records were pruned and no usable snapshot covers them.
    #[error(
        "stream {stream} cannot be recovered: records before {first_retained} were pruned and no usable snapshot covers them ({detail})"
    )]
    SnapshotRequired {
        /// The stream.
        stream: String,
        /// The first record still stored.
        first_retained: Seq,
        /// Why the snapshots found were not usable.
        detail: String,
    },
    /// A stream's leadership epoch may only grow: a writer of an older leadership came after
    /// a newer one.
    #[error("stream {stream} was written under leadership epoch {held}; epoch {offered} is older")]
    EpochBehind {
        /// The stream.
        stream: String,
        /// The epoch the log holds for the stream.
        held: u64,
        /// The epoch offered.
        offered: u64,
    },
    /// A stream's stored leadership epoch or incarnation does not check (checksum or length).
    #[error("stream {stream}: its stored leadership epoch or incarnation is corrupt")]
    CorruptEpoch {
        /// The stream.
        stream: String,
    },
    /// A durable flush failed earlier: what reached the disk is unknown, so the log refuses
    /// further appends until it is reopened (and recovered from what is on disk).
    #[error("the event log in {path} is poisoned by a failed flush ({cause}); reopen it")]
    Poisoned {
        /// The log's directory.
        path: PathBuf,
        /// The failure.
        cause: String,
    },
}

impl LogError {
    /// The same error, with a path under `from` named as under `to`, and `from` in a message
    /// replaced by `to`: an error found in a copy of a log ([`crate::EventLog::inspect`]) names
    /// the log that was copied.
    pub(crate) fn relocated(self, from: &Path, to: &Path) -> LogError {
        let path = |path: PathBuf| match path.strip_prefix(from) {
            Ok(rest) if rest.as_os_str().is_empty() => to.to_path_buf(),
            Ok(rest) => to.join(rest),
            Err(_) => path,
        };
        let text =
            |text: String| text.replace(&from.display().to_string(), &to.display().to_string());
        match self {
            LogError::Io {
                operation,
                path: at,
                source,
            } => LogError::Io {
                operation,
                path: path(at),
                source,
            },
            LogError::Storage { path: at, source } => LogError::Storage {
                path: path(at),
                source,
            },
            LogError::NotATandemLog { path: at, detail } => LogError::NotATandemLog {
                path: path(at),
                detail: text(detail),
            },
            LogError::NoLog { path: at } => LogError::NoLog { path: path(at) },
            LogError::UnsupportedLayout {
                path: at,
                found,
                supported,
            } => LogError::UnsupportedLayout {
                path: path(at),
                found,
                supported,
            },
            LogError::Damaged { path: at, detail } => LogError::Damaged {
                path: path(at),
                detail: text(detail),
            },
            LogError::Locked { path: at } => LogError::Locked { path: path(at) },
            LogError::Poisoned { path: at, cause } => LogError::Poisoned {
                path: path(at),
                cause: text(cause),
            },
            other => other,
        }
    }
}
