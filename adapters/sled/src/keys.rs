//! The key layout. Each stream is one sled tree named `stream/<name>`; inside it, a chunk of
//! contiguous records is stored under `c` + the sequence numbers of its first and last record,
//! and a snapshot under `s` + the sequence number of the last record it covers, all big-endian
//! so that key order is sequence order.

use crate::error::LogError;
use tandem_engine::Seq;

/// The prefix of a stream's tree name.
pub(crate) const STREAM_TREE_PREFIX: &[u8] = b"stream/";
/// The tag of chunk keys.
pub(crate) const CHUNK_TAG: u8 = b'c';
/// The tag of snapshot keys.
pub(crate) const SNAPSHOT_TAG: u8 = b's';
/// The key, in a stream's tree, of the leadership epoch its writer holds (no record or snapshot
/// key is one byte long).
pub(crate) const EPOCH_KEY: &[u8] = b"e";
/// The key, in a stream's tree, of the stream's incarnation.
pub(crate) const INCARNATION_KEY: &[u8] = b"i";
/// Stream names are at most this long: a Kubernetes namespace, a slash and an object name fit.
pub const MAX_STREAM_NAME_BYTES: usize = 320;

/// The length of a chunk key: the tag, then the first and the last sequence number.
pub(crate) const CHUNK_KEY_LEN: usize = 17;

/// The key of a snapshot.
pub(crate) fn key(tag: u8, seq: Seq) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = tag;
    key[1..].copy_from_slice(&seq.0.to_be_bytes());
    key
}

/// Reads a snapshot key back: its sequence number, if it has the tag and the length.
pub(crate) fn parse(stream: &str, tag: u8, key: &[u8]) -> Result<Seq, LogError> {
    match <[u8; 9]>::try_from(key) {
        Ok(bytes) if bytes[0] == tag => {
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&bytes[1..]);
            Ok(Seq(u64::from_be_bytes(seq)))
        }
        _ => Err(corrupt(stream, key)),
    }
}

/// The key of the chunk holding the records `first..=last`. Chunks never overlap, so the
/// order of their keys is the order of their records.
pub(crate) fn chunk_key(first: Seq, last: Seq) -> [u8; CHUNK_KEY_LEN] {
    let mut key = [0u8; CHUNK_KEY_LEN];
    key[0] = CHUNK_TAG;
    key[1..9].copy_from_slice(&first.0.to_be_bytes());
    key[9..].copy_from_slice(&last.0.to_be_bytes());
    key
}

/// Reads a chunk key back: the first and the last sequence number of the chunk's records.
pub(crate) fn parse_chunk(stream: &str, key: &[u8]) -> Result<(Seq, Seq), LogError> {
    match <[u8; CHUNK_KEY_LEN]>::try_from(key) {
        Ok(bytes) if bytes[0] == CHUNK_TAG => {
            let mut first = [0u8; 8];
            let mut last = [0u8; 8];
            first.copy_from_slice(&bytes[1..9]);
            last.copy_from_slice(&bytes[9..]);
            let (first, last) = (u64::from_be_bytes(first), u64::from_be_bytes(last));
            if first == 0 || first > last {
                return Err(corrupt(stream, key));
            }
            Ok((Seq(first), Seq(last)))
        }
        _ => Err(corrupt(stream, key)),
    }
}

fn corrupt(stream: &str, key: &[u8]) -> LogError {
    LogError::CorruptKey {
        stream: stream.to_string(),
        key: key.to_vec(),
    }
}

/// The tree name of a stream, after checking the name.
pub(crate) fn tree_name(stream: &str) -> Result<Vec<u8>, LogError> {
    let refuse = |reason| {
        Err(LogError::InvalidStreamName {
            stream: stream.to_string(),
            reason,
        })
    };
    if stream.is_empty() {
        return refuse("it is empty");
    }
    if stream.len() > MAX_STREAM_NAME_BYTES {
        return refuse("it is longer than 320 bytes");
    }
    if stream.chars().any(char::is_control) {
        return refuse("it contains a control character");
    }
    let mut name = STREAM_TREE_PREFIX.to_vec();
    name.extend_from_slice(stream.as_bytes());
    Ok(name)
}

/// The stream a tree holds, `None` for trees that are not streams (sled's default tree).
pub(crate) fn stream_of_tree(tree: &[u8]) -> Option<String> {
    let name = tree.strip_prefix(STREAM_TREE_PREFIX)?;
    String::from_utf8(name.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_sequence_number() {
        let low = key(SNAPSHOT_TAG, Seq(255));
        let high = key(SNAPSHOT_TAG, Seq(256));
        assert!(low < high);
        assert_eq!(parse("s", SNAPSHOT_TAG, &high).ok(), Some(Seq(256)));
        let early = chunk_key(Seq(1), Seq(255));
        let late = chunk_key(Seq(256), Seq(256));
        assert!(early < late);
        assert_eq!(parse_chunk("s", &late).ok(), Some((Seq(256), Seq(256))));
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(parse("s", SNAPSHOT_TAG, &chunk_key(Seq(1), Seq(1))).is_err());
        assert!(parse("s", SNAPSHOT_TAG, b"s123").is_err());
        assert!(parse_chunk("s", &key(SNAPSHOT_TAG, Seq(1))).is_err());
        assert!(parse_chunk("s", &chunk_key(Seq(5), Seq(4))).is_err());
        assert!(parse_chunk("s", &chunk_key(Seq(0), Seq(4))).is_err());
    }

    #[test]
    fn stream_names_are_checked() {
        assert!(tree_name("").is_err());
        assert!(tree_name("a\nb").is_err());
        assert!(tree_name(&"x".repeat(321)).is_err());
        let tree = tree_name("default/pg").expect("a valid name");
        assert_eq!(stream_of_tree(&tree).as_deref(), Some("default/pg"));
        assert_eq!(stream_of_tree(b"__sled__default"), None);
    }
}
