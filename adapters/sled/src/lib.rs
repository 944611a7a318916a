//! # tandem-sled
//!
//! The event log of tandem, on [sled](https://docs.rs/sled/0.34.7): the operator writes each
//! engine step's record here before carrying out its effects, and the simulator and its replay
//! command read it back.
//!
//! - One **stream** per cluster, holding the engine's [`Record`](tandem_engine::Record)s under
//!   contiguous sequence numbers, stored as exactly the bytes of `Record::encode`.
//! - [`EventLog::append`] writes one or more records atomically, after checking the caller's
//!   idea of the tail ([`LogError::Conflict`] otherwise), and returns once they are durable:
//!   sled's flush completed by `fdatasync` (module `directory`), shared between concurrent
//!   appenders (module `group_commit`).
//! - Snapshots of the folded state every [`LogConfig::snapshot_every_records`]; recovery
//!   ([`EventLog::recover`]) starts from the newest usable one ([`recovery`]); records covered
//!   by a snapshot are pruned beyond [`LogConfig::retain_records`].
//! - Corruption, foreign directories and a second opener are errors naming the stream and
//!   sequence number or the path ([`LogError`]), never panics and never a wrong state.
//!
//! `docs/event-log.md` describes the layout and the exact durability guarantee.
//!
//! ## Map
//!
//! - [`log`]: [`EventLog`], the API.
//! - [`config`]: the tunables, [`LogConfig`].
//! - `keys`: the key layout.
//! - `read`: reading and checking stored records ([`Records`]).
//! - [`recovery`]: folding a stream ([`Recovered`]).
//! - `directory`: the marker, the lock, the `fsync`s.
//! - `group_commit`: shared durable flushes.
//! - `witness`: noticing that sled lost records.
//! - [`workload`]: a deterministic engine-driven record source for tests and benchmarks.
//! - [`error`]: the error type, [`LogError`].

#![forbid(unsafe_code)]

pub mod config;
mod directory;
pub mod error;
mod group_commit;
mod keys;
pub mod log;
mod read;
pub mod recovery;
mod witness;
pub mod workload;

pub use config::LogConfig;
pub use directory::{LAYOUT_VERSION, MARKER_FILE};
pub use error::LogError;
pub use keys::MAX_STREAM_NAME_BYTES;
pub use log::{EventLog, Inspection};
pub use read::Records;
pub use recovery::{Recovered, SkipReason, SkippedSnapshot};
pub use witness::{COMPACT_AFTER_BYTES, WITNESS_FILE};
pub use workload::{Steady, Workload};
