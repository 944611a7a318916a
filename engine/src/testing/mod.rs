//! Test support for the engine and for suites that embed it (feature `testing`):
//!
//! - [`Checker`] (re-exported from [`crate::checker`], which a driver can run in production
//!   too): the invariants, checked after every step against the engine's own outputs,
//!   recomputed independently of the deciding code;
//! - [`Harness`]: an engine with an in-memory log that commits every step and checks it;
//! - [`check_timer_table`]: a `Timer` input just before the engine's next deadline records
//!   nothing, for a world that drives the engine to check after every step;
//! - proptest strategies for raw inputs ([`arb_raw_input`]), adversarial ones included (stale
//!   UIDs, unknown members, out-of-order observations).
//!
//! Generated fault schedules run on the simulator's world, not here: its property tests
//! (`simulator/tests/properties.rs`) draw scenarios from the scenario language and check every
//! invariant, the timer table and determinism on them, and its exhaustive check
//! (`simulator/tests/exhaustive.rs`) runs every short sequence of the language's faults from a
//! few starting points.
//!
//! Every item is named from here (`testing::Harness`); the code lives in `harness` (the harness,
//! the timer-table check, and the scripted inputs tests start from) and `strategies` (the
//! strategies for raw inputs).

mod harness;
mod strategies;

pub use crate::checker::{Before, Checker, Violation};
pub use harness::{
    Harness, bootstrap_inputs, check_timer_table, node_name, normal_cluster, steady_report,
};
pub use strategies::{arb_copy_progress, arb_not_serving, arb_raw_input, arb_timeline};
