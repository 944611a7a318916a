//! # tandem-sim
//!
//! A seeded, virtual-time world for the tandem engine: it replays failure scenarios written in
//! YAML, explores random fault schedules, and checks the safety invariants after every step.
//!
//! - [`scenario`]: the scenario language (types and parser).
//! - [`timeline`]: the timeline picture.
//! - [`world`]: the simulated world; [`data`]: the ground truth about written data.
//! - [`run`]: running a scenario, with the invariant checks and the expectations.
//! - [`catalog`]: running many, and the summary table; [`explore`]: swarm testing and shrinking.
//! - [`logtool`]: replaying and inspecting event logs.

pub mod catalog;
pub mod data;
pub mod explore;
pub mod logtool;
pub mod run;
pub mod scenario;
pub mod timeline;
pub mod world;
