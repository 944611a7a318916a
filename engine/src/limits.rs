//! Every limit of the engine, in one place.
//!
//! A limit that input can reach is a refusal with a named reason (the input is recorded as
//! refused and reported as a warning), never a panic. A limit that only a bug can reach is an
//! assertion, on in release builds.

/// Nodes the engine keeps track of: the largest Kubernetes cluster has 5,000. A node observed
/// beyond it is refused. Deleted nodes are forgotten once no member refers to them.
pub const MAX_NODES: usize = 5_000;

/// The longest name or UID the engine accepts in an observation (node, pod UID, PVC UID, PV
/// name), and the longest `reexamine` or `switchover` token of a spec: a Kubernetes object name
/// is at most 253 bytes. A longer one is refused, and a log holding one is invalid.
pub const MAX_NAME_BYTES: usize = 253;

/// Effects tracked at once: one per effect key (sixteen kinds per member of a pair, three of
/// them role labels, and scaling). Only a bug can exceed it: an assertion.
pub const MAX_ISSUED: usize = 33;

/// The longest string an input may carry at all. A name or token longer than
/// [`MAX_NAME_BYTES`] and up to this is recorded as refused; a longer one is not recorded: the
/// step is an error (`EngineError::InputTooLarge`), because every record holds its input and
/// must stay under [`MAX_RECORD_BYTES`]. Kubernetes bounds every one of these strings far below
/// this (names at 253 bytes, and the resource's schema its tokens).
pub const MAX_INPUT_STRING_BYTES: usize = 4_096;

/// The largest record payload a log holds. The largest record the engine produces is far
/// smaller: its input carries at most four strings (a spec's two tokens; a volume's PVC UID, PV
/// name and node), each at most [`MAX_INPUT_STRING_BYTES`]; its events and effects carry names
/// and tokens of at most [`MAX_NAME_BYTES`] and messages built from a few of them; and a step
/// emits a few dozen events and effects at most. That is under 64 KiB, and this limit leaves a
/// margin of 16 times. The log refuses to append a larger record, and readers refuse one as
/// corrupt, with the same figures.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The largest snapshot payload a log holds: a state tracks at most [`MAX_NODES`] nodes of
/// names of at most [`MAX_NAME_BYTES`] (about 1.4 MB with their status), two members and a
/// spec, so 16 MiB leaves a margin of ten times. Readers refuse a larger one as corrupt.
pub const MAX_SNAPSHOT_BYTES: usize = 16 << 20;

/// The largest effect id a log may name. Ids count up from 1, one per effect the engine emits;
/// at a thousand effects a second this bound is 146 million years away. A record or snapshot
/// naming a larger id is refused as invalid; the engine reaching it is a bug: an assertion.
pub const MAX_EFFECT_ID: u64 = 1 << 62;

/// Transitions one step may take. Decisions settle in a few (`BothDown -> WaitingForActive` at
/// once, for example); a step that still transitions after this many is a bug: an assertion.
pub const MAX_TRANSITIONS_PER_STEP: usize = 8;

/// Retries of the same effect back off up to this power of two of `pollingInterval`.
pub const MAX_BACKOFF_EXPONENT: u32 = 5;

/// Under `replication: syncPreferred`, how long the active may report no standby connected
/// before the engine relaxes synchronous commit: long enough to ride out a replication
/// connection that drops and comes back, short enough that a standby outage costs writes a few
/// seconds, not its whole length. Measured from the first recorded report of the active
/// without a standby, which comes at most `pollingInterval` after the standby went away.
pub const SYNC_RELAX_AFTER_MS: u64 = 5_000;

/// A promotion whose effect failed this many times in a row while the engine waits for it ends
/// in manual intervention, carrying the last error: it cannot succeed by being asked again.
pub const MAX_PROMOTE_ATTEMPTS: u32 = 5;
