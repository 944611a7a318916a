//! A small reactive world that carries out the engine's effects and produces observations, and
//! the generated fault plans it runs, so that generated sequences reach deep states. It stands
//! on the harness and the raw-input strategies; nothing else in `testing` stands on it.

use super::{Harness, Violation, arb_raw_input, check_timer_table, node_name};
use crate::config::{Spec, SwitchoverRequest};
use crate::effect::{Action, Effect};
use crate::input::{
    AgentReport, EffectError, Input, NodeStatus, Outcome, PodObservation, Poll, Process,
    VolumeObservation,
};
use crate::types::{ConfigHash, Lsn, MemberId, PodUid, PvName, PvcUid, Role, Timestamp, Topology};
use proptest::prelude::*;

/// The world's side of one member.
#[derive(Clone, Debug, Default)]
pub struct MiniMember {
    /// The pod, if it exists.
    pub pod: Option<PodObservation>,
    /// When a deleted pod comes back, if it will.
    pub recreate_at: Option<u64>,
    /// When a starting database becomes `Running`.
    pub running_at: Option<u64>,
    /// The database process.
    pub process: Process,
    /// Its role.
    pub role: Role,
    /// Its LSN.
    pub lsn: u64,
    /// Replication connected.
    pub connected: bool,
    /// Its data is a complete copy.
    pub copy_complete: bool,
    /// When a rebuild's copy completes.
    pub copy_done_at: Option<u64>,
    /// The operator cannot reach its agent until then.
    pub partitioned_until: u64,
    /// Its node index.
    pub node: usize,
    /// The configuration hash it runs with.
    pub hash: u64,
    /// The role label on its pod (`Role::None`: none).
    pub label: Role,
}

/// A small deterministic world that answers the engine's effects, for generated tests.
#[derive(Clone, Debug)]
pub struct MiniWorld {
    /// The topology.
    pub topology: Topology,
    /// The spec in force (the world sends changes of it).
    pub spec: Spec,
    /// Milliseconds.
    pub now: u64,
    /// The members.
    pub members: Vec<MiniMember>,
    /// Node readiness.
    pub nodes_ready: [bool; 3],
    /// A counter for pod UIDs.
    pub next_uid: u64,
    /// Effects fail while this is true.
    pub failing: bool,
    /// The pod count the StatefulSet wants.
    pub replicas: u8,
    /// Inputs waiting to be delivered.
    pub inbox: Vec<Input>,
}

const POD_START_MS: u64 = 5_000;

const REBUILD_MS: u64 = 15_000;

impl MiniWorld {
    /// A world for a new cluster of `topology`, configured by `spec`.
    pub fn new(spec: Spec) -> MiniWorld {
        let topology = spec.topology;
        let members = topology
            .members()
            .map(|member| MiniMember {
                node: member.index(),
                ..MiniMember::default()
            })
            .collect();
        MiniWorld {
            topology,
            spec,
            now: 0,
            members,
            nodes_ready: [true; 3],
            next_uid: 1,
            failing: false,
            replicas: 0,
            inbox: Vec::new(),
        }
    }

    /// The inputs that create the cluster: nodes, then the spec.
    pub fn creation(&mut self) -> Vec<Input> {
        let mut inputs: Vec<Input> = (0..3)
            .map(|index| Input::Node {
                node: node_name(index),
                status: NodeStatus::Ready,
            })
            .collect();
        inputs.push(Input::Spec(self.spec.clone()));
        inputs
    }

    fn new_pod(&mut self, member: usize) -> PodObservation {
        self.next_uid += 1;
        let node = self.members[member].node;
        PodObservation {
            uid: PodUid(format!("uid-{}", self.next_uid)),
            node: Some(node_name(node)),
            running: true,
            deleting: false,
        }
    }

    /// Carries out effects; returns inputs reporting outcomes and immediate observations.
    pub fn apply(&mut self, effects: &[Effect]) {
        for effect in effects {
            if effect.action.is_report() {
                continue;
            }
            let outcome = if self.failing {
                Outcome::Failed(EffectError::ServerError)
            } else if self.carry_out(&effect.action) {
                Outcome::Ok
            } else {
                Outcome::Failed(EffectError::Rejected)
            };
            self.inbox.push(Input::EffectFinished {
                id: effect.id,
                outcome,
            });
        }
    }

    fn active_lsn(&self) -> u64 {
        self.members
            .iter()
            .filter(|m| m.role == Role::Active)
            .map(|m| m.lsn)
            .max()
            .unwrap_or(0)
    }

    /// Carries out one action; returns whether it applied (an agent refuses a command its
    /// database cannot take, an API server a deletion whose precondition fails).
    fn carry_out(&mut self, action: &Action) -> bool {
        let now = self.now;
        match action {
            Action::DeletePod { member, uid, .. } => {
                let index = member.index();
                let matches = self.members[index]
                    .pod
                    .as_ref()
                    .is_some_and(|pod| pod.uid == *uid);
                if matches {
                    self.kill_pod(index);
                }
                matches
            }
            Action::Promote { member } => {
                let db = &mut self.members[member.index()];
                let running = db.process == Process::Running;
                if running {
                    db.role = Role::Active;
                }
                running
            }
            Action::Demote { member } | Action::Fence { member } => {
                let db = &mut self.members[member.index()];
                if db.role == Role::Active {
                    let demote = matches!(action, Action::Demote { .. });
                    db.role = if demote { Role::Standby } else { Role::None };
                    db.connected = false;
                }
                true
            }
            Action::Rebuild { member, .. } => {
                let db = &mut self.members[member.index()];
                let able = db.process == Process::Running && db.role != Role::Active;
                if able && db.copy_done_at.is_none() {
                    db.role = Role::Standby;
                    db.copy_complete = false;
                    db.copy_done_at = Some(now + REBUILD_MS);
                }
                able
            }
            Action::RestartReplication { member, .. } => {
                let db = &mut self.members[member.index()];
                let able = db.role == Role::Standby && db.copy_complete;
                if able {
                    db.connected = true;
                }
                able
            }
            Action::ProvisionLocalPv {
                member,
                node,
                generation,
            } => {
                let index = member.index();
                if let Some(node_index) = (0..3).find(|i| node_name(*i) == *node) {
                    self.members[index].node = node_index;
                }
                let volume = VolumeObservation {
                    pvc: Some(PvcUid(format!("pvc-{}-{generation}", member.0))),
                    pv: Some((
                        PvName(format!("pv-{}-{generation}", member.0)),
                        node.clone(),
                    )),
                    lost: false,
                };
                self.inbox.push(Input::Volume {
                    member: *member,
                    volume,
                });
                true
            }
            Action::ReleaseVolume { member, .. } => {
                let volume = VolumeObservation {
                    pvc: None,
                    pv: None,
                    lost: false,
                };
                self.inbox.push(Input::Volume {
                    member: *member,
                    volume,
                });
                let db = &mut self.members[member.index()];
                db.lsn = 0;
                db.copy_complete = false;
                true
            }
            Action::SetReplicas { replicas } => {
                self.replicas = *replicas;
                for index in 0..self.members.len() {
                    if index >= usize::from(*replicas) && self.members[index].pod.is_some() {
                        self.kill_pod(index);
                        self.members[index].recreate_at = None;
                    } else if index < usize::from(*replicas) && self.members[index].pod.is_none() {
                        self.members[index].recreate_at.get_or_insert(now + 1_000);
                    }
                }
                true
            }
            Action::LabelPod { member, uid, role } => {
                let index = member.index();
                let matches = self.members[index]
                    .pod
                    .as_ref()
                    .is_some_and(|pod| pod.uid == *uid);
                if matches {
                    self.members[index].label = *role;
                    let labelled_active = self
                        .members
                        .iter()
                        .filter(|m| m.label == Role::Active)
                        .count();
                    assert!(
                        labelled_active <= 1,
                        "two pods carry the active label at {} ms",
                        self.now
                    );
                }
                matches
            }
            Action::BindPvc { .. } | Action::UpdateStatus(_) | Action::EmitEvent { .. } => true,
        }
    }

    fn kill_pod(&mut self, index: usize) {
        let now = self.now;
        let db = &mut self.members[index];
        db.pod = None;
        db.label = Role::None;
        db.process = Process::Down;
        db.role = Role::None;
        db.connected = false;
        db.copy_done_at = None;
        if self.nodes_ready[db.node] && usize::from(self.replicas) > index {
            db.recreate_at = Some(now + POD_START_MS);
        }
        self.inbox.push(Input::Pod {
            member: MemberId(index as u8),
            pod: None,
        });
    }

    /// Advances the world by `ms`, producing pod, report and timer inputs along the way.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        let now = self.now;
        let active_lsn = self.active_lsn();
        for index in 0..self.members.len() {
            let ready = self.nodes_ready[self.members[index].node];
            if self.members[index].recreate_at.is_some_and(|at| at <= now) && ready {
                self.members[index].recreate_at = None;
                let pod = self.new_pod(index);
                let db = &mut self.members[index];
                db.pod = Some(pod.clone());
                db.process = Process::Starting;
                db.running_at = Some(now + POD_START_MS);
                db.hash = self.spec.config_hash.0;
                self.inbox.push(Input::Pod {
                    member: MemberId(index as u8),
                    pod: Some(pod),
                });
            }
            let db = &mut self.members[index];
            if db.running_at.is_some_and(|at| at <= now) {
                db.running_at = None;
                db.process = Process::Running;
                db.role = Role::None;
                db.copy_complete = db.copy_complete || db.lsn > 0 || index == 0;
            }
            if db.copy_done_at.is_some_and(|at| at <= now) {
                db.copy_done_at = None;
                db.copy_complete = true;
                db.connected = true;
                db.lsn = active_lsn;
            }
        }
        // Writes, and replication to a connected standby.
        if self
            .members
            .iter()
            .any(|m| m.role == Role::Active && m.process == Process::Running)
        {
            let lsn = self.active_lsn() + ms;
            for db in &mut self.members {
                if db.role == Role::Active && db.process == Process::Running {
                    db.lsn = lsn;
                }
            }
            let connected = self
                .members
                .iter()
                .any(|m| m.role == Role::Standby && m.connected);
            for db in &mut self.members {
                if db.role == Role::Standby && db.connected && db.copy_complete {
                    db.lsn = lsn;
                }
                if db.role == Role::Active {
                    db.connected = connected;
                }
            }
        }
    }

    /// The agent polls of this moment.
    pub fn polls(&mut self) {
        let now = self.now;
        let active_lsn = self.active_lsn();
        for (index, db) in self.members.iter().enumerate() {
            let member = MemberId(index as u8);
            let reachable =
                db.pod.is_some() && db.partitioned_until <= now && self.nodes_ready[db.node];
            let poll = if reachable {
                Poll::Report(AgentReport {
                    process: db.process,
                    role: db.role,
                    lsn: Lsn(db.lsn),
                    replication_connected: db.connected,
                    in_sync: db.role == Role::Standby && db.connected && db.lsn >= active_lsn,
                    copy_complete: db.copy_complete,
                    config_hash: ConfigHash(db.hash),
                    ..AgentReport::default()
                })
            } else {
                Poll::Unreachable
            };
            self.inbox.push(Input::Agent { member, poll });
        }
    }

    /// Applies a fault or user action.
    pub fn inject(&mut self, fault: &Fault) {
        let now = self.now;
        match *fault {
            Fault::Crash(member) => {
                if let Some(db) = self.members.get_mut(member)
                    && db.pod.is_some()
                {
                    db.process = Process::Down;
                    db.role = Role::None;
                    db.connected = false;
                    db.running_at = Some(now + 10_000);
                }
            }
            Fault::Partition(member, seconds) => {
                if let Some(db) = self.members.get_mut(member) {
                    db.partitioned_until = now + u64::from(seconds) * 1000;
                }
            }
            Fault::NodeDown(node) => self.nodes_ready[node % 3] = false,
            Fault::NodeUp(node) => self.nodes_ready[node % 3] = true,
            Fault::BreakReplication(member) => {
                if let Some(db) = self.members.get_mut(member)
                    && db.role == Role::Standby
                {
                    db.connected = false;
                }
            }
            Fault::EffectsFail(failing) => self.failing = failing,
            Fault::Switchover(to) => {
                let token = format!("s{now}");
                self.spec.switchover = Some(SwitchoverRequest {
                    token,
                    to: to.map(MemberId),
                });
                self.inbox.push(Input::Spec(self.spec.clone()));
            }
            Fault::Reexamine => {
                self.spec.reexamine = format!("r{now}");
                self.inbox.push(Input::Spec(self.spec.clone()));
            }
            Fault::Stop(stopped) => {
                self.spec.stopped = stopped;
                self.inbox.push(Input::Spec(self.spec.clone()));
            }
            Fault::AutoFailover(on) => {
                self.spec.auto_failover = on;
                self.inbox.push(Input::Spec(self.spec.clone()));
            }
            Fault::ConfigChange(hash) => {
                self.spec.config_hash = ConfigHash(hash);
                self.inbox.push(Input::Spec(self.spec.clone()));
            }
            Fault::Raw(ref input) => self.inbox.push(input.clone()),
            Fault::Quiet => {}
        }
    }
}

/// A fault or user action of a generated plan.
#[derive(Clone, Debug)]
pub enum Fault {
    /// The member's database process dies (it restarts 10 s later).
    Crash(usize),
    /// The operator cannot reach the member's agent for this many seconds.
    Partition(usize, u16),
    /// A node becomes not ready.
    NodeDown(usize),
    /// A node becomes ready again.
    NodeUp(usize),
    /// The standby's replication link breaks.
    BreakReplication(usize),
    /// Effects start (true) or stop (false) failing.
    EffectsFail(bool),
    /// The user asks for a switchover.
    Switchover(Option<u8>),
    /// The user changes `reexamine`.
    Reexamine,
    /// The user sets or clears `stopped`.
    Stop(bool),
    /// The user sets `autoFailover`.
    AutoFailover(bool),
    /// The configuration changes.
    ConfigChange(u64),
    /// An adversarial raw input.
    Raw(Input),
    /// Nothing.
    Quiet,
}

/// One step of a plan: let time pass, then inject.
#[derive(Clone, Debug)]
pub struct PlanStep {
    /// Seconds to let pass first (with polls every `pollingInterval`).
    pub wait_s: u16,
    /// What happens then.
    pub fault: Fault,
}

/// A fault of a generated plan.
pub fn arb_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => (0usize..2).prop_map(Fault::Crash),
        3 => (0usize..2, 5u16..120).prop_map(|(member, seconds)| Fault::Partition(member, seconds)),
        2 => (0usize..3).prop_map(Fault::NodeDown),
        2 => (0usize..3).prop_map(Fault::NodeUp),
        2 => (0usize..2).prop_map(Fault::BreakReplication),
        1 => any::<bool>().prop_map(Fault::EffectsFail),
        2 => proptest::option::of(0u8..2).prop_map(Fault::Switchover),
        1 => Just(Fault::Reexamine),
        1 => any::<bool>().prop_map(Fault::Stop),
        1 => any::<bool>().prop_map(Fault::AutoFailover),
        1 => (1u64..4).prop_map(Fault::ConfigChange),
        3 => arb_raw_input().prop_map(Fault::Raw),
        3 => Just(Fault::Quiet),
    ]
}

/// A plan: up to `max_steps` waits and faults.
pub fn arb_plan(max_steps: usize) -> impl Strategy<Value = Vec<PlanStep>> {
    proptest::collection::vec(
        (0u16..90, arb_fault()).prop_map(|(wait_s, fault)| PlanStep { wait_s, fault }),
        0..max_steps,
    )
}

/// Runs a plan against a fresh engine in a [`MiniWorld`], checking every step. Returns the
/// encoded log (for determinism checks) or the first violation.
pub fn run_plan(spec: Spec, plan: &[PlanStep]) -> Result<Vec<Vec<u8>>, Violation> {
    let mut world = MiniWorld::new(spec);
    let mut harness = Harness::new();
    let poll_ms = world.spec.polling_interval_ms();
    let creation = world.creation();
    for input in creation {
        let effects = harness.step(Timestamp(0), input)?;
        world.apply(&effects);
    }
    // Let the cluster initialize, then run the plan, then a quiet tail.
    let tail = PlanStep {
        wait_s: 600,
        fault: Fault::EffectsFail(false),
    };
    let warmup = PlanStep {
        wait_s: 120,
        fault: Fault::Quiet,
    };
    let steps = std::iter::once(&warmup)
        .chain(plan.iter())
        .chain(std::iter::once(&tail));
    for (index, step) in steps.enumerate() {
        let mut waited = 0u64;
        let wait_ms = u64::from(step.wait_s) * 1000;
        loop {
            let slice = poll_ms.min(wait_ms - waited).max(1);
            world.advance(slice);
            waited += slice;
            world.polls();
            deliver(&mut world, &mut harness)?;
            check_timer_table(&harness.engine)?;
            if waited >= wait_ms {
                break;
            }
        }
        world.inject(&step.fault);
        if index % 7 == 3 {
            let now = Timestamp(world.now);
            let effects = harness.restart(now)?;
            world.apply(&effects);
        }
        deliver(&mut world, &mut harness)?;
    }
    Ok(harness.log)
}

/// Delivers the world's inbox to the engine (and the engine's effects back to the world) until
/// both are quiet, within a bound.
pub fn deliver(world: &mut MiniWorld, harness: &mut Harness) -> Result<(), Violation> {
    const MAX_ROUNDS: usize = 64;
    for _ in 0..MAX_ROUNDS {
        if world.inbox.is_empty() {
            if let Some(deadline) = harness.engine.next_deadline()
                && deadline.0 <= world.now
            {
                world.inbox.push(Input::Timer);
            }
            if world.inbox.is_empty() {
                return Ok(());
            }
        }
        let inbox = std::mem::take(&mut world.inbox);
        for input in inbox {
            let effects = harness.step(Timestamp(world.now), input)?;
            world.apply(&effects);
        }
    }
    Ok(())
}
