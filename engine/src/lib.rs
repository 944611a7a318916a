//! # tandem-engine
//!
//! The pure, deterministic core of tandem, an event-sourced high-availability engine for database
//! clusters on Kubernetes (an active/standby pair, or a single instance).
//!
//! Observations go in ([`Input`]) with the time they were made; the engine decides; what it
//! decided comes out as [`Event`]s, facts to record, and [`Effect`]s, requests to the world. The
//! events of a step are persisted before any of its effects is carried out: [`Step::commit`]
//! hands out the effects only after the record was persisted. EngineState ([`EngineState`]) is a fold of
//! the events, so the log is the truth.
//!
//! The engine performs no IO, reads no clock, draws no random number and iterates no hash map:
//! the same inputs give the same bytes out.
//!
//! ## Map
//!
//! - [`types`]: identifiers, positions and small value types.
//! - [`config`]: the spec the engine reads, and its validation.
//! - [`input`], [`event`], [`effect`]: the vocabulary of a step.
//! - [`state`]: the state, its fold ([`EngineState::apply`]) and member health.
//! - [`transitions`]: the transition table, checked on every transition and drawn as diagrams.
//! - [`record`]: the log record and snapshot formats.
//! - [`checker`]: the invariant checker, recomputed from each step's record.
//! - [`limits`]: every limit, in one place.
//! - [`engine`](mod@engine): the driving API ([`Engine`], [`Step`]).
//! - `testing` (feature `testing`): input generators and the invariant checker.
//!
//! See `engine/examples/embed.rs` for a driver that persists before acting.

#![forbid(unsafe_code)]

pub mod checker;
pub mod config;
pub mod effect;
pub mod engine;
pub mod event;
pub mod input;
pub mod limits;
mod machine;
pub mod record;
mod record_old;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod timers;
pub mod transitions;
pub mod types;
mod validate;

pub use config::{ConfigError, Spec, SwitchoverRequest};
pub use effect::{Action, Effect, Executor, MemberStatus, Status};
pub use engine::{Engine, EngineError, PollTicket, Step};
pub use event::{EffectKey, Event, FenceEvidence};
pub use input::{
    AgentReport, CopyProgress, EffectError, Input, Lineage, NodeStatus, NotServing, Outcome,
    PodObservation, Poll, Process, Timeline, VolumeObservation,
};
pub use limits::MAX_TRANSITIONS_PER_STEP;
pub use machine::REPORT_EFFECT_ID;
pub use record::{DecodeError, FoldError, Record};
pub use state::{ClusterState, EngineState, Guarantee, Health, StateKind};
pub use transitions::Reason;
pub use types::{
    ConfigHash, EffectId, Lsn, MemberId, NodeName, PodUid, PvName, PvcUid, Replication, Role, Seq,
    Timestamp, Topology,
};
