//! A deterministic source of real engine records, for the crash test, the property tests and
//! the benchmark: a standalone cluster brought up, then one of two steady inputs:
//!
//! - [`Steady::Contact`]: the agent reporting at every contact granularity with a moving LSN.
//!   Each step records one `Contact` event: about 45 bytes encoded, the commonest record of a
//!   quiet cluster.
//! - [`Steady::PodChange`]: the pod observed with a new UID (Kubernetes UUIDs, a cloud node
//!   name). Each step records one `PodObserved` event: about 190 bytes encoded.

use std::collections::VecDeque;
use tandem_engine::{
    AgentReport, ClusterState, Engine, Input, Lsn, MemberId, NodeName, NodeStatus, PodObservation,
    PodUid, Poll, Process, PvName, PvcUid, Record, Role, Spec, Timestamp, Topology,
    VolumeObservation,
};

/// An input that records nothing is skipped; this many in a row means the script is stuck.
pub const MAX_QUIET_INPUTS: u32 = 64;

/// What the workload feeds the engine once the cluster is up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Steady {
    /// Agent reports: small `Contact` records.
    #[default]
    Contact,
    /// Pod observations with a new UID each time: `PodObserved` records of about 190 bytes.
    PodChange,
}

/// The node the workload's pod runs on, named as a cloud provider names nodes.
const NODE_NAME: &str = "ip-10-0-12-34.eu-west-1.compute.internal";

/// Drives an engine and hands out the records of its steps.
#[derive(Debug)]
pub struct Workload {
    engine: Engine,
    pending: VecDeque<(Timestamp, Input)>,
    interval_ms: u64,
    steady: Steady,
}

impl Default for Workload {
    fn default() -> Workload {
        Workload::new()
    }
}

impl Workload {
    /// A workload for a new cluster: its first records bring the cluster up.
    pub fn new() -> Workload {
        Workload::resume(Engine::new())
    }

    /// A workload that continues from an engine recovered from a log.
    pub fn resume(engine: Engine) -> Workload {
        let spec = engine
            .state()
            .spec()
            .cloned()
            .unwrap_or_else(|| Spec::defaults(Topology::Standalone));
        let interval_ms = spec.contact_granularity_ms().max(1);
        let mut pending = VecDeque::new();
        if engine.state().cluster() != ClusterState::Normal {
            pending.extend(bootstrap(engine.now(), &spec));
        }
        Workload {
            engine,
            pending,
            interval_ms,
            steady: Steady::Contact,
        }
    }

    /// The same workload with another steady input.
    pub fn steady(self, steady: Steady) -> Workload {
        Workload { steady, ..self }
    }

    /// The engine, holding the state of every record handed out.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The next record, `None` if the engine stopped recording (which a standalone cluster in
    /// the steady state does not do) or refused an input.
    pub fn next_record(&mut self) -> Option<Record> {
        for _ in 0..MAX_QUIET_INPUTS {
            let (at, input) = match self.pending.pop_front() {
                Some(next) => next,
                None => match self.steady {
                    Steady::Contact => self.steady_report(),
                    Steady::PodChange => self.pod_change(),
                },
            };
            let step = self.engine.step(at, input).ok()?;
            let record = step.record().cloned();
            step.commit(|_| Ok::<(), ()>(())).ok()?;
            if record.is_some() {
                return record;
            }
        }
        None
    }

    /// The next `count` records (fewer only if [`Workload::next_record`] gives out).
    pub fn records(&mut self, count: usize) -> Vec<Record> {
        (0..count).map_while(|_| self.next_record()).collect()
    }

    fn steady_report(&self) -> (Timestamp, Input) {
        let at = self.engine.now().plus_ms(self.interval_ms);
        let report = AgentReport {
            process: Process::Running,
            role: Role::Active,
            lsn: Lsn(at.0.saturating_mul(16)),
            copy_complete: true,
            ..AgentReport::default()
        };
        let poll = Poll::Report(report);
        (
            at,
            Input::Agent {
                member: MemberId(0),
                poll,
            },
        )
    }
}

impl Workload {
    fn pod_change(&self) -> (Timestamp, Input) {
        let at = self.engine.now().plus_ms(1_000);
        let serial = self.engine.state().seq().0;
        let pod = PodObservation {
            uid: PodUid(format!("5f0c2a1e-8d3b-4c7a-9e21-{serial:012x}")),
            node: Some(NodeName(NODE_NAME.to_string())),
            running: true,
            deleting: false,
        };
        let member = MemberId(0);
        (
            at,
            Input::Pod {
                member,
                pod: Some(pod),
            },
        )
    }
}

/// The inputs that bring a standalone cluster to `Normal`: its node, spec, volume and pod,
/// then its agent reporting a running database that becomes the active.
fn bootstrap(at: Timestamp, spec: &Spec) -> Vec<(Timestamp, Input)> {
    let member = MemberId(0);
    let node = NodeName(NODE_NAME.to_string());
    let volume = VolumeObservation {
        pvc: Some(PvcUid("pvc-0".to_string())),
        pv: Some((PvName("pv-0".to_string()), node.clone())),
        lost: false,
    };
    let pod = PodObservation {
        uid: PodUid("pod-0".to_string()),
        node: Some(node.clone()),
        running: true,
        deleting: false,
    };
    let fresh = AgentReport {
        process: Process::Running,
        copy_complete: true,
        ..AgentReport::default()
    };
    let active = AgentReport {
        role: Role::Active,
        ..fresh
    };
    let report = |report| Input::Agent {
        member,
        poll: Poll::Report(report),
    };
    let later = at.plus_ms(5_000);
    vec![
        (
            at,
            Input::Node {
                node,
                status: NodeStatus::Ready,
            },
        ),
        (at, Input::Spec(spec.clone())),
        (at, Input::Volume { member, volume }),
        (
            at,
            Input::Pod {
                member,
                pod: Some(pod),
            },
        ),
        (later, report(fresh)),
        (later, report(active)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_reaches_normal_and_keeps_recording() {
        let mut workload = Workload::new();
        let records = workload.records(50);
        assert_eq!(records.len(), 50);
        assert_eq!(workload.engine().state().cluster(), ClusterState::Normal);
        let steady = records.last().map(|record| record.encode().len());
        assert!(
            steady.is_some_and(|len| (30..400).contains(&len)),
            "{steady:?}"
        );
        let resumed = Workload::resume(workload.engine().clone()).records(3);
        assert_eq!(resumed.first().map(|record| record.seq.0), Some(51));
        let mut pods = Workload::new().steady(Steady::PodChange);
        let records = pods.records(20);
        assert_eq!(records.len(), 20);
        let size = records.last().map(|record| record.encode().len());
        assert!(
            size.is_some_and(|len| (150..250).contains(&len)),
            "{size:?}"
        );
        assert_eq!(pods.engine().state().cluster(), ClusterState::Normal);
    }
}
