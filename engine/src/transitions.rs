//! The transition table: every edge the engine may take, per topology, with its reason.
//!
//! The engine checks each transition it records against this table (an assertion that stays on
//! in release builds), and the state diagrams in `docs/state-machine.md` are generated from it,
//! so the table, the code and the pictures cannot drift apart.

use crate::state::StateKind;
use crate::types::Topology;
use serde::{Deserialize, Serialize};

/// Why a transition happened: the label of an edge of the transition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reason {
    /// All members are healthy for the first time.
    Initialized,
    /// The cluster did not become `Normal` within `initTimeout`.
    InitTimeout,
    /// An agent reported an unrecoverable initialization error.
    InitError,
    /// The active became `Down`, `Gone` or `Lost`.
    ActiveFailed,
    /// The standby became `Down`, `Gone` or `Lost`.
    StandbyFailed,
    /// Both members failed.
    BothFailed,
    /// The standby is up but its replication link is broken.
    ReplicationBroken,
    /// The standby stayed behind for longer than `lagTimeout`.
    LagTimeout,
    /// The standby's database is restarting in its pod.
    StandbyRestarting,
    /// The user asked for a switchover.
    SwitchoverRequested,
    /// A step of the rolling configuration change.
    RollingChange,
    /// The user set `spec.stopped`.
    StopRequested,
    /// The promoted standby confirmed its new role.
    PromotionConfirmed,
    /// The standby may not be promoted (lag, sync state or an incomplete copy).
    StandbyNotCaughtUp,
    /// No member may be promoted and the newest copy is gone.
    NoSafeCandidate,
    /// The replacement standby is starting or catching up.
    StandbyStarting,
    /// The standby was rebuilt `maxRebuildAttempts` times without success.
    RebuildAttemptsExhausted,
    /// The standby became healthy.
    StandbyRecovered,
    /// The standby did not become healthy within `standbyStartTimeout`.
    StandbyStartTimeout,
    /// The standby's replication works again.
    ReplicationRestored,
    /// The standby's replication was not restored within `unreachableTimeout`.
    ReplicationNotRestored,
    /// The member holding the newest data was determined.
    NewestChosen,
    /// Which member holds the newest data cannot be told; the engine does not guess.
    NewestUnknown,
    /// No member holds any data any more.
    AllDataLost,
    /// The chosen member is active again.
    ActiveRestored,
    /// The chosen member's data is lost.
    ChosenLost,
    /// The chosen member did not come up within `waitForActiveTimeout`.
    WaitTimeout,
    /// The switchover's target is the active; the old active rejoins as standby.
    SwitchoverCompleted,
    /// The switchover could not proceed safely; the old active stays (or is again) active.
    SwitchoverAborted,
    /// The switchover did not finish within `switchoverTimeout`.
    SwitchoverTimeout,
    /// The user changed `spec.reexamine`.
    ReexamineRequested,
    /// The engine looked at the members afresh.
    Reexamined,
    /// The driver recovered without its log; the engine derives where it stands.
    LogLost,
    /// Every pod is gone after a stop.
    AllPodsStopped,
    /// The user cleared `spec.stopped`.
    StartRequested,
    /// The last active's pod exists again after a start.
    StartingLastActive,
    /// The single member works again.
    ActiveRecovered,
    /// The single member's data is lost.
    DataLost,
    /// The single member was restarted `maxRestartAttempts` times without becoming healthy.
    RestartsExhausted,
    /// The only member that could become active holds an incomplete copy.
    IncompleteData,
    /// The promotion failed `MAX_PROMOTE_ATTEMPTS` times in a row.
    PromotionFailed,
}

impl Reason {
    /// The reason's name, as written in transcripts and as the reason of Kubernetes events
    /// (CamelCase, as Kubernetes writes reasons). A stable name, not Rust's `Debug`: renaming a
    /// variant does not rename what people filter Events on.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Initialized => "Initialized",
            Reason::InitTimeout => "InitTimeout",
            Reason::InitError => "InitError",
            Reason::ActiveFailed => "ActiveFailed",
            Reason::StandbyFailed => "StandbyFailed",
            Reason::BothFailed => "BothFailed",
            Reason::ReplicationBroken => "ReplicationBroken",
            Reason::LagTimeout => "LagTimeout",
            Reason::StandbyRestarting => "StandbyRestarting",
            Reason::SwitchoverRequested => "SwitchoverRequested",
            Reason::RollingChange => "RollingChange",
            Reason::StopRequested => "StopRequested",
            Reason::PromotionConfirmed => "PromotionConfirmed",
            Reason::StandbyNotCaughtUp => "StandbyNotCaughtUp",
            Reason::NoSafeCandidate => "NoSafeCandidate",
            Reason::StandbyStarting => "StandbyStarting",
            Reason::RebuildAttemptsExhausted => "RebuildAttemptsExhausted",
            Reason::StandbyRecovered => "StandbyRecovered",
            Reason::StandbyStartTimeout => "StandbyStartTimeout",
            Reason::ReplicationRestored => "ReplicationRestored",
            Reason::ReplicationNotRestored => "ReplicationNotRestored",
            Reason::NewestChosen => "NewestChosen",
            Reason::NewestUnknown => "NewestUnknown",
            Reason::AllDataLost => "AllDataLost",
            Reason::ActiveRestored => "ActiveRestored",
            Reason::ChosenLost => "ChosenLost",
            Reason::WaitTimeout => "WaitTimeout",
            Reason::SwitchoverCompleted => "SwitchoverCompleted",
            Reason::SwitchoverAborted => "SwitchoverAborted",
            Reason::SwitchoverTimeout => "SwitchoverTimeout",
            Reason::ReexamineRequested => "ReexamineRequested",
            Reason::Reexamined => "Reexamined",
            Reason::LogLost => "LogLost",
            Reason::AllPodsStopped => "AllPodsStopped",
            Reason::StartRequested => "StartRequested",
            Reason::StartingLastActive => "StartingLastActive",
            Reason::ActiveRecovered => "ActiveRecovered",
            Reason::DataLost => "DataLost",
            Reason::RestartsExhausted => "RestartsExhausted",
            Reason::IncompleteData => "IncompleteData",
            Reason::PromotionFailed => "PromotionFailed",
        }
    }
}

use Reason as R;
use StateKind as S;

/// The states from which a user's stop request is honoured: every state where automation runs.
const STOPPABLE: [StateKind; 11] = [
    S::Initializing,
    S::Normal,
    S::ActiveDown,
    S::StandbyDown,
    S::StandbyPartiallyStarting,
    S::StandbyPartiallyDown,
    S::BothDown,
    S::WaitingForActive,
    S::Switchover,
    S::Reexamine,
    S::Starting,
];

/// The master-slave edges other than the stop requests.
const MASTER_SLAVE: &[(StateKind, StateKind, Reason)] = &[
    (S::Initializing, S::Normal, R::Initialized),
    (S::Initializing, S::Failed, R::InitTimeout),
    (S::Initializing, S::Failed, R::InitError),
    (S::Initializing, S::Reexamine, R::LogLost),
    (S::Initializing, S::Failed, R::AllDataLost),
    (S::Initializing, S::ActiveDown, R::ActiveFailed),
    (S::Normal, S::ActiveDown, R::ActiveFailed),
    (S::Normal, S::StandbyDown, R::StandbyFailed),
    (S::Normal, S::BothDown, R::BothFailed),
    (S::Normal, S::StandbyPartiallyDown, R::ReplicationBroken),
    (S::Normal, S::StandbyPartiallyDown, R::LagTimeout),
    (S::Normal, S::StandbyPartiallyStarting, R::StandbyRestarting),
    (S::Normal, S::Switchover, R::SwitchoverRequested),
    (S::Normal, S::Switchover, R::RollingChange),
    (S::ActiveDown, S::StandbyDown, R::PromotionConfirmed),
    (S::ActiveDown, S::WaitingForActive, R::StandbyNotCaughtUp),
    (
        S::ActiveDown,
        S::ManualInterventionRequired,
        R::NoSafeCandidate,
    ),
    (S::ActiveDown, S::BothDown, R::BothFailed),
    (
        S::StandbyDown,
        S::StandbyPartiallyStarting,
        R::StandbyStarting,
    ),
    (S::StandbyDown, S::ActiveDown, R::ActiveFailed),
    (S::StandbyDown, S::BothDown, R::BothFailed),
    (
        S::StandbyDown,
        S::ManualInterventionRequired,
        R::RebuildAttemptsExhausted,
    ),
    (S::StandbyPartiallyStarting, S::Normal, R::StandbyRecovered),
    (
        S::StandbyPartiallyStarting,
        S::StandbyDown,
        R::StandbyFailed,
    ),
    (
        S::StandbyPartiallyStarting,
        S::StandbyDown,
        R::StandbyStartTimeout,
    ),
    (S::StandbyPartiallyStarting, S::ActiveDown, R::ActiveFailed),
    (S::StandbyPartiallyStarting, S::BothDown, R::BothFailed),
    (S::StandbyPartiallyDown, S::Normal, R::ReplicationRestored),
    (S::StandbyPartiallyDown, S::StandbyDown, R::StandbyFailed),
    (
        S::StandbyPartiallyDown,
        S::StandbyDown,
        R::ReplicationNotRestored,
    ),
    (S::StandbyPartiallyDown, S::ActiveDown, R::ActiveFailed),
    (S::StandbyPartiallyDown, S::BothDown, R::BothFailed),
    (S::BothDown, S::WaitingForActive, R::NewestChosen),
    (S::ActiveDown, S::WaitingForActive, R::NewestChosen),
    (S::BothDown, S::ManualInterventionRequired, R::NewestUnknown),
    (S::BothDown, S::Failed, R::AllDataLost),
    (S::WaitingForActive, S::StandbyDown, R::ActiveRestored),
    (
        S::WaitingForActive,
        S::ManualInterventionRequired,
        R::ChosenLost,
    ),
    (
        S::WaitingForActive,
        S::ManualInterventionRequired,
        R::WaitTimeout,
    ),
    (S::WaitingForActive, S::Failed, R::AllDataLost),
    (
        S::Switchover,
        S::StandbyPartiallyStarting,
        R::SwitchoverCompleted,
    ),
    (S::Switchover, S::Normal, R::SwitchoverAborted),
    (
        S::Switchover,
        S::ManualInterventionRequired,
        R::SwitchoverTimeout,
    ),
    (S::Switchover, S::ActiveDown, R::ActiveFailed),
    (
        S::ManualInterventionRequired,
        S::Reexamine,
        R::ReexamineRequested,
    ),
    (S::Failed, S::Reexamine, R::ReexamineRequested),
    (S::Reexamine, S::Normal, R::Reexamined),
    (S::Reexamine, S::StandbyDown, R::Reexamined),
    (S::Reexamine, S::ActiveDown, R::Reexamined),
    (S::Reexamine, S::BothDown, R::Reexamined),
    (S::Reexamine, S::WaitingForActive, R::Reexamined),
    (S::Reexamine, S::ManualInterventionRequired, R::Reexamined),
    (S::Reexamine, S::Initializing, R::Reexamined),
    (S::Stopping, S::Stopped, R::AllPodsStopped),
    (S::Stopping, S::Starting, R::StartRequested),
    (S::Stopped, S::Starting, R::StartRequested),
    (S::Starting, S::WaitingForActive, R::StartingLastActive),
    (S::Starting, S::Reexamine, R::LogLost),
    (
        S::ActiveDown,
        S::ManualInterventionRequired,
        R::PromotionFailed,
    ),
    (
        S::WaitingForActive,
        S::ManualInterventionRequired,
        R::PromotionFailed,
    ),
    (S::WaitingForActive, S::WaitingForActive, R::NewestChosen),
];

/// The standalone edges other than the stop requests.
const STANDALONE: &[(StateKind, StateKind, Reason)] = &[
    (S::Initializing, S::Normal, R::Initialized),
    (S::Initializing, S::Failed, R::InitTimeout),
    (S::Initializing, S::Failed, R::InitError),
    (S::Initializing, S::Reexamine, R::LogLost),
    (S::Initializing, S::Failed, R::AllDataLost),
    (S::Normal, S::ActiveDown, R::ActiveFailed),
    (S::ActiveDown, S::Normal, R::ActiveRecovered),
    (S::ActiveDown, S::Failed, R::DataLost),
    (S::ActiveDown, S::Failed, R::RestartsExhausted),
    (
        S::ActiveDown,
        S::ManualInterventionRequired,
        R::IncompleteData,
    ),
    (
        S::ManualInterventionRequired,
        S::Reexamine,
        R::ReexamineRequested,
    ),
    (S::Failed, S::Reexamine, R::ReexamineRequested),
    (S::Reexamine, S::Normal, R::Reexamined),
    (S::Reexamine, S::ActiveDown, R::Reexamined),
    (S::Reexamine, S::Failed, R::Reexamined),
    (S::Reexamine, S::Initializing, R::Reexamined),
    (S::Stopping, S::Stopped, R::AllPodsStopped),
    (S::Stopping, S::Starting, R::StartRequested),
    (S::Stopped, S::Starting, R::StartRequested),
    (S::Starting, S::Normal, R::ActiveRecovered),
    (S::Starting, S::ActiveDown, R::ActiveFailed),
    (S::Starting, S::Reexamine, R::LogLost),
    (S::Starting, S::Failed, R::DataLost),
    (
        S::Starting,
        S::ManualInterventionRequired,
        R::IncompleteData,
    ),
    (
        S::ActiveDown,
        S::ManualInterventionRequired,
        R::PromotionFailed,
    ),
    (
        S::Starting,
        S::ManualInterventionRequired,
        R::PromotionFailed,
    ),
];

/// One edge of the transition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// From.
    pub from: StateKind,
    /// To.
    pub to: StateKind,
    /// Why.
    pub reason: Reason,
}

/// Every edge of a topology's transition table, in a fixed order.
pub fn edges(topology: Topology) -> Vec<Edge> {
    let (table, stoppable): (&[_], &[_]) = match topology {
        Topology::MasterSlave => (MASTER_SLAVE, &STOPPABLE),
        Topology::Standalone => (STANDALONE, &STANDALONE_STOPPABLE),
    };
    let mut edges: Vec<Edge> = table
        .iter()
        .map(|&(from, to, reason)| Edge { from, to, reason })
        .collect();
    for &from in stoppable {
        edges.push(Edge {
            from,
            to: S::Stopping,
            reason: R::StopRequested,
        });
    }
    edges
}

/// The standalone states from which a stop request is honoured.
const STANDALONE_STOPPABLE: [StateKind; 5] = [
    S::Initializing,
    S::Normal,
    S::ActiveDown,
    S::Reexamine,
    S::Starting,
];

/// Whether the table allows this transition.
pub fn allows(topology: Topology, from: StateKind, to: StateKind, reason: Reason) -> bool {
    let (table, stoppable): (&[_], &[_]) = match topology {
        Topology::MasterSlave => (MASTER_SLAVE, &STOPPABLE),
        Topology::Standalone => (STANDALONE, &STANDALONE_STOPPABLE),
    };
    if to == S::Stopping && reason == R::StopRequested {
        return stoppable.contains(&from);
    }
    table.contains(&(from, to, reason))
}

/// The states a topology can be in.
pub fn states(topology: Topology) -> Vec<StateKind> {
    match topology {
        Topology::MasterSlave => StateKind::ALL.to_vec(),
        Topology::Standalone => vec![
            S::Initializing,
            S::Normal,
            S::ActiveDown,
            S::ManualInterventionRequired,
            S::Reexamine,
            S::Stopping,
            S::Stopped,
            S::Starting,
            S::Failed,
        ],
    }
}

/// The state diagram as Graphviz DOT.
pub fn dot(topology: Topology) -> String {
    let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n", topology.name());
    out.push_str("  node [shape=box, style=rounded];\n");
    for state in states(topology) {
        out.push_str(&format!("  {};\n", state.name()));
    }
    for edge in edges(topology) {
        out.push_str(&format!(
            "  {} -> {} [label=\"{}\"];\n",
            edge.from.name(),
            edge.to.name(),
            edge.reason.name()
        ));
    }
    out.push_str("}\n");
    out
}

/// The state diagram as a Mermaid `stateDiagram-v2`.
pub fn mermaid(topology: Topology) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    out.push_str(&format!("  [*] --> {}\n", S::Initializing.name()));
    for edge in edges(topology) {
        out.push_str(&format!(
            "  {} --> {}: {}\n",
            edge.from.name(),
            edge.to.name(),
            edge.reason.name()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_of_each_topology_is_reachable_and_left() {
        for topology in [Topology::MasterSlave, Topology::Standalone] {
            let edges = edges(topology);
            for state in states(topology) {
                let entered = state == S::Initializing || edges.iter().any(|e| e.to == state);
                let left = edges.iter().any(|edge| edge.from == state);
                assert!(entered, "{topology:?}: {state:?} is never entered");
                assert!(left, "{topology:?}: {state:?} is never left");
            }
            for edge in &edges {
                assert!(allows(topology, edge.from, edge.to, edge.reason));
            }
        }
        assert!(!allows(
            Topology::Standalone,
            S::Normal,
            S::Switchover,
            R::SwitchoverRequested
        ));
    }
}
