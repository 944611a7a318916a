//! Test support for the engine and for suites that embed it (feature `testing`):
//!
//! - [`Checker`] (re-exported from [`crate::checker`], which a driver can run in production
//!   too): the invariants, checked after every step against the engine's own outputs,
//!   recomputed independently of the deciding code;
//! - [`Harness`]: an engine with an in-memory log that commits every step and checks it;
//! - [`MiniWorld`]: a small reactive world that carries out effects and produces observations,
//!   so generated sequences reach deep states;
//! - proptest strategies ([`arb_plan`]) of fault plans mixing cooperative and adversarial inputs
//!   (stale UIDs, duplicated and reordered reports, failing effects, spec changes mid-failover).
//!
//! Every item is named from here (`testing::Harness`); the code lives in `harness` (the harness,
//! and the scripted inputs and specs tests start from), `strategies` (the strategies for raw
//! inputs) and `mini_world` (the small world and its fault plans).

mod harness;
mod mini_world;
mod strategies;

pub use crate::checker::{Before, Checker, Violation};
pub use harness::{
    Harness, bootstrap_inputs, check_timer_table, node_name, normal_cluster, steady_report,
    test_spec,
};
pub use mini_world::{
    Fault, MiniMember, MiniWorld, PlanStep, arb_fault, arb_plan, deliver, run_plan,
};
pub use strategies::{arb_copy_progress, arb_not_serving, arb_raw_input};
