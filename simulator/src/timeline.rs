//! The timeline picture (`--timeline FILE.svg`): one lane per member (its role and health over
//! time), the cluster state as a band, faults and actions marked.
//!
//! The runner fills a [`Timeline`]; [`render_svg`] draws it.

mod svg;
#[cfg(test)]
mod tests;

pub use svg::{format_clock, render_svg};

use tandem_engine::{Health, Role};

/// What the runner recorded for the picture.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    /// The scenario's name and seed, for the title.
    pub title: String,
    /// The number of members (lanes).
    pub members: u8,
    /// The simulated duration, in milliseconds.
    pub duration_ms: u64,
    /// Samples, in time order: one whenever anything drawn changes.
    pub samples: Vec<Sample>,
    /// Faults, actions and violations.
    pub marks: Vec<Mark>,
}

/// The drawn situation from `at_ms` until the next sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// When.
    pub at_ms: u64,
    /// The cluster state as the engine holds it (`ClusterState`'s display form), or `operator
    /// down` while the operator process is down.
    pub state: String,
    /// Per member, in ordinal order.
    pub members: Vec<MemberSample>,
}

/// One member at one time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberSample {
    /// The role its database holds in the world.
    pub role: Role,
    /// The health the engine derives.
    pub health: Health,
    /// Whether it accepts client writes right now.
    pub accepting_writes: bool,
    /// Whether its data is being copied afresh (a full copy) right now.
    pub copying: bool,
    /// Whether its diverged suffix is being rewound right now.
    pub rewinding: bool,
}

/// A marked event or interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// When it starts.
    pub at_ms: u64,
    /// When it ends, for a fault with a duration.
    pub until_ms: Option<u64>,
    /// What, for people (e.g. `partition active 90s`).
    pub label: String,
    /// Which kind.
    pub kind: MarkKind,
}

/// The kinds of marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkKind {
    /// A fault.
    Fault,
    /// A user action.
    Action,
    /// A violated invariant or expectation.
    Violation,
}
