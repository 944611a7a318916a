//! The key layout. Each stream is one sled tree named `stream/<name>`; inside it, a record is
//! stored under `r` + its sequence number and a snapshot under `s` + the sequence number of the
//! last record it covers, both big-endian so that key order is sequence order.

use crate::error::LogError;
use tandem_engine::Seq;

/// The prefix of a stream's tree name.
pub(crate) const STREAM_TREE_PREFIX: &[u8] = b"stream/";
/// The tag of record keys.
pub(crate) const RECORD_TAG: u8 = b'r';
/// The tag of snapshot keys.
pub(crate) const SNAPSHOT_TAG: u8 = b's';
/// Stream names are at most this long: a Kubernetes namespace, a slash and an object name fit.
pub const MAX_STREAM_NAME_BYTES: usize = 320;

/// The key of a record or snapshot.
pub(crate) fn key(tag: u8, seq: Seq) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = tag;
    key[1..].copy_from_slice(&seq.0.to_be_bytes());
    key
}

/// Reads a key back: its sequence number, if it has the tag and the length.
pub(crate) fn parse(stream: &str, tag: u8, key: &[u8]) -> Result<Seq, LogError> {
    match <[u8; 9]>::try_from(key) {
        Ok(bytes) if bytes[0] == tag => {
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&bytes[1..]);
            Ok(Seq(u64::from_be_bytes(seq)))
        }
        _ => Err(LogError::CorruptKey {
            stream: stream.to_string(),
            key: key.to_vec(),
        }),
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
        let low = key(RECORD_TAG, Seq(255));
        let high = key(RECORD_TAG, Seq(256));
        assert!(low < high);
        assert_eq!(parse("s", RECORD_TAG, &high).ok(), Some(Seq(256)));
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(parse("s", RECORD_TAG, &key(SNAPSHOT_TAG, Seq(1))).is_err());
        assert!(parse("s", RECORD_TAG, b"r123").is_err());
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
