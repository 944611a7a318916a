//! The log record format, defined once here: one record per step, holding the input, the events
//! it produced and the effects it emitted. The sled adapter and the simulator store these bytes.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "TR" (record) or "TS" (snapshot)
//! 2       2     format version, big-endian (currently 3; versions 1 and 2 are still read)
//! 4       4     payload length, big-endian
//! 8       4     CRC-32 (IEEE) of bytes 2..8 followed by the payload, big-endian
//! 12      n     payload: the postcard encoding of the record (or snapshot)
//! ```
//!
//! The format is a compatibility surface: golden byte fixtures (`engine/tests/fixtures/`) must
//! keep decoding. A new format gets a new version; old versions keep their decoders.

use crate::effect::Effect;
use crate::event::Event;
use crate::input::Input;
use crate::limits::{MAX_RECORD_BYTES, MAX_SNAPSHOT_BYTES};
use crate::state::EngineState;
use crate::types::{Seq, Timestamp};
use serde::{Deserialize, Serialize};

/// The record format version written by this build. Version 2 added the agent report's copy
/// progress and the reason a database is not serving; version 3 the role label effect; version 4
/// the `LeaseShortened` event; version 5 the agent report's timeline and the rewind. Older
/// records keep decoding.
pub const FORMAT_VERSION: u16 = 5;

/// The record format versions this build reads.
pub const READ_FORMAT_VERSIONS: [u16; 5] = [1, 2, 3, 4, 5];

/// The snapshot format version written by this build. Snapshots of a version this build does
/// not read are not decoded: a reader folds the stream from its start instead.
pub const SNAPSHOT_VERSION: u16 = 5;

/// The snapshot format versions this build reads.
pub const READ_SNAPSHOT_VERSIONS: [u16; 5] = [1, 2, 3, 4, 5];

const RECORD_MAGIC: [u8; 2] = *b"TR";
const SNAPSHOT_MAGIC: [u8; 2] = *b"TS";
const HEADER_LEN: usize = 12;

/// One step of one cluster, as logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The record's position in the cluster's stream (contiguous, from 1).
    pub seq: Seq,
    /// When the input was observed.
    pub at: Timestamp,
    /// The input.
    pub input: Input,
    /// The events the step recorded, in order.
    pub events: Vec<Event>,
    /// The effects the step emitted, in order.
    pub effects: Vec<Effect>,
}

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a header.
    #[error("truncated: {len} bytes, shorter than the {HEADER_LEN}-byte header")]
    TooShort {
        /// The length found.
        len: usize,
    },
    /// The bytes do not start with the expected magic.
    #[error("not a tandem {what}: bad magic {found:02x?}")]
    BadMagic {
        /// What was expected ("record" or "snapshot").
        what: &'static str,
        /// The bytes found.
        found: [u8; 2],
    },
    /// A version this build cannot read.
    #[error("unknown format version {version} (this build reads version {supported})")]
    UnknownVersion {
        /// The version found.
        version: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// The header announces a payload larger than the format allows
    /// ([`crate::limits::MAX_RECORD_BYTES`], [`crate::limits::MAX_SNAPSHOT_BYTES`]).
    #[error(
        "the header announces {announced} payload bytes, more than the {limit} a {what} may hold"
    )]
    TooLarge {
        /// What was expected ("record" or "snapshot").
        what: &'static str,
        /// The payload length in the header.
        announced: u64,
        /// The limit.
        limit: usize,
    },
    /// The payload is shorter (or longer) than its header says.
    #[error("truncated: the header announces {expected} payload bytes, {found} are present")]
    Truncated {
        /// Announced.
        expected: u64,
        /// Present.
        found: u64,
    },
    /// The checksum does not match.
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// Stored in the header.
        stored: u32,
        /// Computed over the bytes.
        computed: u32,
    },
    /// The checksum matched but the payload does not decode.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// The payload decodes but holds a value the engine cannot hold (see `validate`).
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What was decoded ("snapshot").
        what: &'static str,
        /// What is out of bounds.
        detail: String,
    },
}

/// Why records could not be folded into a state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    /// A record's sequence number is not the next one.
    #[error("sequence gap: expected record {expected}, found {found}")]
    Gap {
        /// The sequence number expected.
        expected: Seq,
        /// The one found.
        found: Seq,
    },
    /// A record's transition does not start where the fold of the records before it stands:
    /// the log does not hold one history.
    #[error("record {seq}: a transition from {from} while the cluster is {current}")]
    Inconsistent {
        /// The record.
        seq: Seq,
        /// Where the transition starts.
        from: crate::state::ClusterState,
        /// Where the fold stands.
        current: crate::state::ClusterState,
    },
    /// A record's event holds a value the engine cannot hold: a member beyond the cluster, a
    /// name longer than a Kubernetes name, an effect id beyond the limit (see `validate`).
    #[error("record {seq}: {detail}")]
    Invalid {
        /// The record.
        seq: Seq,
        /// What is out of bounds.
        detail: String,
    },
}

impl Record {
    /// The length of the payload in encoded bytes: what [`crate::limits::MAX_RECORD_BYTES`]
    /// bounds. `None` when the bytes are shorter than a header.
    pub fn payload_len(encoded: &[u8]) -> Option<usize> {
        encoded.len().checked_sub(HEADER_LEN)
    }

    /// The length of the encoded record at the start of `bytes`, header and payload, as its
    /// header announces it: what lets encoded records be stored one after another and told
    /// apart again. `None` when `bytes` is shorter than a header. Nothing is checked: decoding
    /// `bytes[..len]` (or all of `bytes` when they are shorter) reports what is wrong.
    pub fn framed_len(bytes: &[u8]) -> Option<usize> {
        let header = bytes.get(..HEADER_LEN)?;
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        Some(HEADER_LEN + len as usize)
    }

    /// Encodes the record with header and checksum.
    pub fn encode(&self) -> Vec<u8> {
        frame(RECORD_MAGIC, FORMAT_VERSION, self)
    }

    /// Decodes and verifies a record, of the current format version or an older one.
    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        let (version, payload) = unframe(RECORD_MAGIC, &READ_FORMAT_VERSIONS, "record", bytes)?;
        let malformed = |error: postcard::Error| DecodeError::Malformed(error.to_string());
        use crate::record_old::{Record as Old, ReportV1, ReportV4};
        match version {
            1 => Ok(postcard::from_bytes::<Old<ReportV1>>(payload)
                .map_err(malformed)?
                .into()),
            // Versions 3 and 4 only appended enum variants: a version 2 or 3 payload is a
            // version 4 one.
            2..=4 => Ok(postcard::from_bytes::<Old<ReportV4>>(payload)
                .map_err(malformed)?
                .into()),
            _ => postcard::from_bytes(payload).map_err(malformed),
        }
    }
}

impl EngineState {
    /// Folds one record: checks it ([`EngineState::check_record`]), then applies its events.
    /// A refused record leaves the state as it was.
    pub fn apply_record(&mut self, record: &Record) -> Result<(), FoldError> {
        self.check_record(record)?;
        for event in &record.events {
            self.apply(event);
        }
        self.seq = record.seq;
        Ok(())
    }

    /// Whether `record` may be folded into this state: it is the next in sequence, its
    /// transitions start where the state stands and chain, and its events hold only values the
    /// engine can hold (module `validate`). A writer checks a record with this before it stores
    /// it, so that no reader is ever handed a record it refuses.
    pub fn check_record(&self, record: &Record) -> Result<(), FoldError> {
        let expected = self.seq.next();
        if record.seq != expected {
            return Err(FoldError::Gap {
                expected,
                found: record.seq,
            });
        }
        let mut current = self.cluster;
        for event in &record.events {
            if let crate::event::Event::Transition { from, to, .. } = event {
                if *from != current {
                    return Err(FoldError::Inconsistent {
                        seq: record.seq,
                        from: *from,
                        current,
                    });
                }
                current = *to;
            }
        }
        crate::validate::events(self, &record.events).map_err(|detail| FoldError::Invalid {
            seq: record.seq,
            detail,
        })
    }

    /// Encodes the state as a snapshot, with header and checksum.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        frame(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, self)
    }

    /// Decodes and verifies a snapshot, of the current format version or an older one.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<EngineState, DecodeError> {
        let (version, payload) =
            unframe(SNAPSHOT_MAGIC, &READ_SNAPSHOT_VERSIONS, "snapshot", bytes)?;
        let malformed = |error: postcard::Error| DecodeError::Malformed(error.to_string());
        let state: EngineState = match version {
            1 => postcard::from_bytes::<crate::record_old::StateV1>(payload)
                .map_err(malformed)?
                .into(),
            2 => postcard::from_bytes::<crate::record_old::StateV2>(payload)
                .map_err(malformed)?
                .into(),
            3 => postcard::from_bytes::<crate::record_old::StateV3>(payload)
                .map_err(malformed)?
                .into(),
            4 => postcard::from_bytes::<crate::record_old::StateV4>(payload)
                .map_err(malformed)?
                .into(),
            _ => postcard::from_bytes(payload).map_err(malformed)?,
        };
        crate::validate::state(&state).map_err(|detail| DecodeError::Invalid {
            what: "snapshot",
            detail,
        })?;
        Ok(state)
    }
}

fn frame<T: Serialize>(magic: [u8; 2], version: u16, value: &T) -> Vec<u8> {
    // The payload is serialized after room for the header, which is filled in then.
    // Serializing owned, plain data into a Vec cannot fail.
    let mut out =
        postcard::to_extend(value, vec![0u8; HEADER_LEN]).expect("serializing into a Vec");
    let len = u32::try_from(out.len() - HEADER_LEN).expect("a record is smaller than 4 GiB");
    out[0..2].copy_from_slice(&magic);
    out[2..4].copy_from_slice(&version.to_be_bytes());
    out[4..8].copy_from_slice(&len.to_be_bytes());
    let (header, payload) = out.split_at(HEADER_LEN);
    let crc = checksum(&header[2..8], payload);
    out[8..12].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Checks the header and checksum; returns the version and the payload.
fn unframe<'a>(
    magic: [u8; 2],
    versions: &[u16],
    what: &'static str,
    bytes: &'a [u8],
) -> Result<(u16, &'a [u8]), DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::TooShort { len: bytes.len() });
    }
    let found = [bytes[0], bytes[1]];
    if found != magic {
        return Err(DecodeError::BadMagic { what, found });
    }
    let version = u16::from_be_bytes([bytes[2], bytes[3]]);
    if !versions.contains(&version) {
        let supported = versions.iter().copied().max().unwrap_or_default();
        return Err(DecodeError::UnknownVersion { version, supported });
    }
    let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let limit = if magic == RECORD_MAGIC {
        MAX_RECORD_BYTES
    } else {
        MAX_SNAPSHOT_BYTES
    };
    if len as usize > limit {
        return Err(DecodeError::TooLarge {
            what,
            announced: u64::from(len),
            limit,
        });
    }
    let present = (bytes.len() - HEADER_LEN) as u64;
    if u64::from(len) != present {
        return Err(DecodeError::Truncated {
            expected: u64::from(len),
            found: present,
        });
    }
    let stored = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let payload = &bytes[HEADER_LEN..];
    let computed = checksum(&bytes[2..8], payload);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    Ok((version, payload))
}

fn checksum(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

/// Reads the version of framed bytes without decoding them, so a reader can tell an unknown
/// version from corruption.
pub fn peek_version(bytes: &[u8]) -> Option<u16> {
    (bytes.len() >= 4).then(|| u16::from_be_bytes([bytes[2], bytes[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ClusterState;
    use crate::transitions::Reason;

    fn transition(from: ClusterState, to: ClusterState) -> Event {
        Event::Transition {
            from,
            to,
            reason: Reason::Initialized,
            detail: String::new(),
            at: Timestamp(1),
        }
    }

    #[test]
    fn encoded_records_one_after_another_are_told_apart_by_their_framed_length() {
        let records: Vec<Record> = (1..=3)
            .map(|seq| Record {
                seq: Seq(seq),
                at: Timestamp(seq),
                input: Input::Timer,
                events: Vec::new(),
                effects: Vec::new(),
            })
            .collect();
        let encoded: Vec<u8> = records.iter().flat_map(Record::encode).collect();
        let mut rest = &encoded[..];
        for record in &records {
            let len = Record::framed_len(rest).expect("a header");
            assert_eq!(len, record.encode().len());
            assert_eq!(Record::decode(&rest[..len]).as_ref(), Ok(record));
            rest = &rest[len..];
        }
        assert_eq!(Record::framed_len(rest), None);
        assert_eq!(Record::framed_len(&encoded[..HEADER_LEN - 1]), None);
    }

    #[test]
    fn a_record_whose_transitions_do_not_chain_is_refused_and_changes_nothing() {
        let mut state = EngineState::new();
        let record = Record {
            seq: Seq(1),
            at: Timestamp(1),
            input: Input::Timer,
            events: vec![
                transition(ClusterState::Initializing, ClusterState::Normal),
                // Starts where the first did, not where it ended.
                transition(ClusterState::Initializing, ClusterState::Stopping),
            ],
            effects: Vec::new(),
        };
        let before = state.clone();
        assert_eq!(
            state.apply_record(&record),
            Err(FoldError::Inconsistent {
                seq: Seq(1),
                from: ClusterState::Initializing,
                current: ClusterState::Normal,
            })
        );
        assert_eq!(state, before);
        let chained = Record {
            events: vec![
                transition(ClusterState::Initializing, ClusterState::Normal),
                transition(ClusterState::Normal, ClusterState::Stopping),
            ],
            ..record
        };
        assert_eq!(state.apply_record(&chained), Ok(()));
        assert_eq!(state.cluster(), ClusterState::Stopping);
        assert_eq!(state.seq(), Seq(1));
    }

    fn one_event(event: Event) -> Record {
        Record {
            seq: Seq(1),
            at: Timestamp(1),
            input: Input::Timer,
            events: vec![event],
            effects: Vec::new(),
        }
    }

    #[test]
    fn a_record_naming_what_the_engine_cannot_hold_is_refused_and_changes_nothing() {
        use crate::event::EffectKey;
        use crate::types::{EffectId, MemberId, NodeName};
        let refused = [
            Event::Unreachable {
                member: MemberId(7),
                at: Timestamp(1),
            },
            Event::Issued {
                id: EffectId(u64::MAX),
                key: EffectKey::Replicas,
                at: Timestamp(1),
            },
            Event::Issued {
                id: EffectId(1),
                key: EffectKey::Promote(MemberId(2)),
                at: Timestamp(1),
            },
            Event::NodeObserved {
                node: NodeName("n".repeat(254)),
                status: crate::input::NodeStatus::Ready,
                at: Timestamp(1),
            },
            transition(
                ClusterState::Initializing,
                ClusterState::Switchover(MemberId(9)),
            ),
        ];
        for event in refused {
            let mut state = EngineState::new();
            let before = state.clone();
            let outcome = state.apply_record(&one_event(event.clone()));
            assert!(
                matches!(outcome, Err(FoldError::Invalid { seq: Seq(1), .. })),
                "{event:?}: {outcome:?}"
            );
            assert_eq!(state, before);
        }
        let mut state = EngineState::new();
        let fine = Event::Unreachable {
            member: MemberId(1),
            at: Timestamp(1),
        };
        assert_eq!(state.apply_record(&one_event(fine)), Ok(()));
    }

    #[test]
    fn a_snapshot_naming_what_the_engine_cannot_hold_is_refused() {
        let mut state = EngineState::new();
        state.active = Some(crate::types::MemberId(7));
        let bytes = state.encode_snapshot();
        let outcome = EngineState::decode_snapshot(&bytes);
        assert!(
            matches!(
                outcome,
                Err(DecodeError::Invalid {
                    what: "snapshot",
                    ..
                })
            ),
            "{outcome:?}"
        );
        state.active = Some(crate::types::MemberId(1));
        assert!(EngineState::decode_snapshot(&state.encode_snapshot()).is_ok());
    }
}
