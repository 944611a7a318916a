//! The harness: an engine with an in-memory log that commits and checks every step, the check
//! of the timer table a driving world runs after every step, and the scripted inputs tests
//! start from.

use super::{Before, Checker, Violation};
use crate::config::Spec;
use crate::effect::Effect;
use crate::engine::Engine;
use crate::input::{
    AgentReport, Input, NodeStatus, PodObservation, Poll, Process, VolumeObservation,
};
use crate::record::Record;
use crate::state::{ClusterState, EngineState};
use crate::types::{
    ConfigHash, Lsn, MemberId, NodeName, PodUid, PvName, PvcUid, Role, Timestamp, Topology,
};

/// An engine with an in-memory log: every step is committed (the record encoded, stored, and
/// decoded back) and checked.
#[derive(Debug, Default)]
pub struct Harness {
    /// The engine.
    pub engine: Engine,
    /// The encoded records, in order.
    pub log: Vec<Vec<u8>>,
    /// The checker.
    pub checker: Checker,
}

impl Harness {
    /// A harness for a new cluster.
    pub fn new() -> Harness {
        Harness::default()
    }

    /// Steps the engine, commits, checks; returns the effects.
    pub fn step(&mut self, now: Timestamp, input: Input) -> Result<Vec<Effect>, Violation> {
        let before = Before::of(self.engine.state());
        let step = self.engine.step(now, input).map_err(|error| Violation {
            invariant: "api",
            at: now,
            seq: 0,
            detail: error.to_string(),
        })?;
        let record = step.record().cloned();
        let log = &mut self.log;
        let effects = step
            .commit(|record| {
                let bytes = record.encode();
                let decoded = Record::decode(&bytes).map_err(|error| error.to_string())?;
                if decoded != *record {
                    return Err("a record does not survive encoding".to_string());
                }
                log.push(bytes);
                Ok(())
            })
            .map_err(|detail| Violation {
                invariant: "record format",
                at: now,
                seq: 0,
                detail,
            })?;
        self.checker
            .check(&before, record.as_ref(), self.engine.state(), now)?;
        Ok(effects)
    }

    /// Simulates a driver restart that keeps its log: a fresh engine folded from the log.
    pub fn restart(&mut self, now: Timestamp) -> Result<Vec<Effect>, Violation> {
        let records: Vec<Record> = self
            .log
            .iter()
            .map(|bytes| Record::decode(bytes).expect("the harness wrote these bytes"))
            .collect();
        let engine = Engine::recover(EngineState::new(), &records).map_err(|error| Violation {
            invariant: "7 (replay)",
            at: now,
            seq: 0,
            detail: error.to_string(),
        })?;
        if engine.state() != self.engine.state() {
            return Err(Violation {
                invariant: "7 (replay)",
                at: now,
                seq: 0,
                detail: "recovery from the log differs from the live state".into(),
            });
        }
        self.engine = engine;
        self.step(now, Input::Recovered { log_lost: false })
    }
}

/// The timer table is the only source of time: a `Timer` input just before `engine`'s next
/// deadline (on a copy of the engine) records nothing, neither a transition nor an effect.
/// Returns a violation naming what it recorded. A world that drives the engine checks it after
/// every step (the simulator does, with `RunOptions::check_timer_table`).
pub fn check_timer_table(engine: &Engine) -> Result<(), Violation> {
    let now = engine.now();
    let Some(deadline) = engine.next_deadline() else {
        return Ok(());
    };
    let just_before = Timestamp(deadline.0 - 1);
    if just_before <= now {
        return Ok(());
    }
    let mut copy = engine.clone();
    let step = copy
        .step(just_before, Input::Timer)
        .map_err(|error| Violation {
            invariant: "api",
            at: just_before,
            seq: 0,
            detail: error.to_string(),
        })?;
    if let Some(record) = step.record() {
        return Err(Violation {
            invariant: "timer table",
            at: just_before,
            seq: record.seq.0,
            detail: format!(
                "a timer before the next deadline ({deadline}) recorded {:?}",
                record.events
            ),
        });
    }
    Ok(())
}

/// The name of node `index` in the worlds tests build (`node-0`, `node-1`, ...).
pub fn node_name(index: usize) -> NodeName {
    NodeName(format!("node-{index}"))
}

// ---------------------------------------------------------------------------------------------
// Scripted inputs
// ---------------------------------------------------------------------------------------------

/// The report of a member in the steady state: running, replicating, with a complete copy.
pub fn steady_report(role: Role, lsn: u64, topology: Topology) -> AgentReport {
    let connected = topology == Topology::MasterSlave;
    AgentReport {
        process: Process::Running,
        role,
        lsn: Lsn(lsn),
        replication_connected: connected,
        in_sync: role == Role::Standby,
        copy_complete: true,
        config_hash: ConfigHash(0),
        ..AgentReport::default()
    }
}

/// The inputs that take a new cluster to `Normal` with member 0 active, all at time 0 and 5 s:
/// nodes, the spec, volumes and pods, member 0 promoted, member 1 rebuilt from it.
pub fn bootstrap_inputs(spec: &Spec) -> Vec<(Timestamp, Input)> {
    let topology = spec.topology;
    let mut inputs: Vec<(Timestamp, Input)> = (0..3)
        .map(|index| {
            (
                Timestamp(0),
                Input::Node {
                    node: node_name(index),
                    status: NodeStatus::Ready,
                },
            )
        })
        .collect();
    inputs.push((Timestamp(0), Input::Spec(spec.clone())));
    for member in topology.members() {
        let node = node_name(member.index());
        let volume = VolumeObservation {
            pvc: Some(PvcUid(format!("pvc-{}", member.0))),
            pv: Some((PvName(format!("pv-{}", member.0)), node.clone())),
            lost: false,
        };
        inputs.push((Timestamp(0), Input::Volume { member, volume }));
        let pod = PodObservation {
            uid: PodUid(format!("p{}", member.0)),
            node: Some(node),
            running: true,
            deleting: false,
        };
        inputs.push((
            Timestamp(0),
            Input::Pod {
                member,
                pod: Some(pod),
            },
        ));
    }
    let at = Timestamp(5_000);
    let report = |member: u8, report: AgentReport| {
        (
            at,
            Input::Agent {
                member: MemberId(member),
                poll: Poll::Report(report),
            },
        )
    };
    let fresh = AgentReport {
        process: Process::Running,
        copy_complete: true,
        ..AgentReport::default()
    };
    inputs.push(report(0, fresh));
    inputs.push(report(
        0,
        AgentReport {
            role: Role::Active,
            ..fresh
        },
    ));
    if topology == Topology::MasterSlave {
        inputs.push(report(
            1,
            AgentReport {
                copy_complete: false,
                ..fresh
            },
        ));
        inputs.push(report(1, steady_report(Role::Standby, 0, topology)));
        inputs.push(report(0, steady_report(Role::Active, 0, topology)));
    }
    inputs
}

/// A harness holding a cluster brought to `Normal` by [`bootstrap_inputs`].
pub fn normal_cluster(spec: &Spec) -> Harness {
    let mut harness = Harness::new();
    for (at, input) in bootstrap_inputs(spec) {
        harness
            .step(at, input)
            .expect("the bootstrap sequence keeps the invariants");
    }
    assert_eq!(
        harness.engine.state().cluster(),
        ClusterState::Normal,
        "bootstrap reaches Normal"
    );
    harness
}
