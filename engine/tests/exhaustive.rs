//! A bounded exhaustive check: every sequence of up to `DEPTH` abstract inputs (agent reports,
//! unreachability, node and pod changes, lost volumes, effect outcomes, time passing, operator
//! restarts, client writes) from `Normal` and from a few other states of a master-slave pair
//! under strict sync. After every step the engine's invariant checker runs, and a model of the
//! world checks where the acknowledged writes truly are: no two members accept writes, no write
//! goes to an active that lacks an acknowledged write, and no effect wipes the only surviving
//! copy of one. States already seen are not explored again. Making a copy start from a source
//! that is not up (the rule behind the first lost-write finding) fails this test at depth 3.

use std::collections::HashSet;
use tandem_engine::checker::{Before, Checker};
use tandem_engine::testing::{bootstrap_inputs, node_name, test_spec};
use tandem_engine::{
    Action, AgentReport, CopyProgress, Effect, EffectError, Engine, EngineState, Input, Lsn,
    MemberId, NodeStatus, Outcome, PodObservation, PodUid, Poll, Process, PvName, PvcUid,
    Replication, Role, Spec, Timestamp, Topology, VolumeObservation,
};

/// The longest sequence explored from each starting state in every test run;
/// `TANDEM_EXHAUSTIVE_DEPTH` asks for another depth (each level multiplies the time by up to 17).
const DEPTH: usize = 5;

fn depth() -> usize {
    std::env::var("TANDEM_EXHAUSTIVE_DEPTH")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEPTH)
}

/// How long the world moves on at a tick.
const TICK_MS: u64 = 10_000;

/// The agents' lease (the spec's `agentLeaseSeconds`, in ms).
const LEASE_MS: u64 = 22_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Db {
    /// The current pod's number; 0 when there is no pod.
    pod: u32,
    up: bool,
    role: Role,
    /// The writes this copy holds (a prefix of the history: writes are never forked here).
    pos: u32,
    complete: bool,
    connected: bool,
    partitioned: bool,
    copy_failed: bool,
    last_polled: u64,
    /// The node holding its volume.
    node: usize,
    volume: bool,
    /// The role label on its pod.
    label: Role,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct World {
    dbs: [Db; 2],
    ready: [bool; 3],
    deleted: [bool; 3],
    acked: u32,
    now: u64,
    next_pod: u32,
    /// The world itself destroyed the only copy of acknowledged writes (a node deleted, a
    /// volume lost): from then on, losses are not the engine's.
    destroyed: bool,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Tick,
    Write,
    Crash(usize),
    Restart(usize),
    Partition(usize),
    NodeDown(usize),
    NodeDeleted(usize),
    VolumeLost(usize),
    PodGone(usize),
    OperatorRestart,
}

const ALPHABET: [Step; 17] = [
    Step::Tick,
    Step::Write,
    Step::Crash(0),
    Step::Crash(1),
    Step::Restart(0),
    Step::Restart(1),
    Step::Partition(0),
    Step::Partition(1),
    Step::NodeDown(0),
    Step::NodeDown(1),
    Step::NodeDeleted(0),
    Step::NodeDeleted(1),
    Step::VolumeLost(0),
    Step::VolumeLost(1),
    Step::PodGone(0),
    Step::PodGone(1),
    Step::OperatorRestart,
];

#[derive(Clone)]
struct Sim {
    world: World,
    engine: Engine,
    checker: Checker,
    /// Effects emitted and not carried out yet.
    pending: std::collections::VecDeque<Effect>,
}

/// Effects carried out after one input before the world is left to settle: a bound on effect
/// storms, which are findings.
const MAX_EFFECTS_PER_INPUT: usize = 64;

type Found = String;

impl Sim {
    fn start(spec: &Spec) -> Sim {
        let mut sim = Sim {
            world: World {
                dbs: [0, 1].map(|m| Db {
                    pod: m as u32 + 1,
                    up: true,
                    role: if m == 0 { Role::Active } else { Role::Standby },
                    pos: 0,
                    complete: true,
                    connected: true,
                    partitioned: false,
                    copy_failed: false,
                    last_polled: 5_000,
                    node: m,
                    volume: true,
                    label: Role::None,
                }),
                ready: [true; 3],
                deleted: [false; 3],
                acked: 0,
                now: 0,
                next_pod: 10,
                destroyed: false,
            },
            engine: Engine::new(),
            checker: Checker::new(),
            pending: std::collections::VecDeque::new(),
        };
        let initial = sim.world.clone();
        for (at, input) in bootstrap_inputs(spec) {
            sim.world.now = at.0;
            sim.input_at(at, input)
                .expect("the bootstrap keeps the invariants");
        }
        // The bootstrap's inputs describe a pair in Normal with an empty history: the world is
        // that pair, whatever its model made of the bootstrap's own effects.
        sim.world = World {
            now: 5_000,
            ..initial
        };
        // The bootstrap names pods p0 and p1: the world's pods 1 and 2.
        assert_eq!(
            sim.engine.state().cluster(),
            tandem_engine::ClusterState::Normal
        );
        sim
    }

    fn pod_uid(pod: u32) -> PodUid {
        match pod {
            1 => PodUid("p0".into()),
            2 => PodUid("p1".into()),
            n => PodUid(format!("pod-{n}")),
        }
    }

    /// One engine step: committed, checked, its effects queued.
    fn engine_step(&mut self, at: Timestamp, input: Input) -> Result<(), Found> {
        let before = Before::of(self.engine.state());
        let step = self.engine.step(at, input).map_err(|e| e.to_string())?;
        let record = step.record().cloned();
        let effects = step
            .commit(|_| Ok::<(), ()>(()))
            .expect("an in-memory commit");
        self.checker
            .check(&before, record.as_ref(), self.engine.state(), at)
            .map_err(|violation| violation.to_string())?;
        self.pending.extend(effects);
        Ok(())
    }

    /// An observation: the engine steps, then the world carries out what follows, until quiet.
    fn input_at(&mut self, at: Timestamp, input: Input) -> Result<(), Found> {
        self.engine_step(at, input)?;
        self.settle()
    }

    /// Carries out the pending effects (and those they lead to) until none is left.
    fn settle(&mut self) -> Result<(), Found> {
        for _ in 0..MAX_EFFECTS_PER_INPUT {
            let Some(effect) = self.pending.pop_front() else {
                return Ok(());
            };
            self.carry_out(&effect)?;
        }
        if self.pending.iter().all(|effect| effect.action.is_report()) {
            return Ok(());
        }
        Err(format!("effects never settle: {:?}", self.pending))
    }

    fn input(&mut self, input: Input) -> Result<(), Found> {
        self.input_at(Timestamp(self.world.now), input)
    }

    /// An observation made while effects are being carried out: queued behind them.
    fn observe(&mut self, input: Input) -> Result<(), Found> {
        self.engine_step(Timestamp(self.world.now), input)
    }

    fn reachable(&self, m: usize) -> bool {
        let db = &self.world.dbs[m];
        db.pod != 0 && !db.partitioned && self.world.ready[db.node] && !self.world.deleted[db.node]
    }

    fn poll(&mut self, m: usize) -> Result<(), Found> {
        let poll = if self.reachable(m) {
            self.world.dbs[m].last_polled = self.world.now;
            let db = &self.world.dbs[m];
            let other = &self.world.dbs[1 - m];
            let connected = match db.role {
                Role::Active => other.connected && other.up,
                _ => db.connected,
            };
            Poll::Report(AgentReport {
                process: if db.up {
                    Process::Running
                } else {
                    Process::Down
                },
                role: db.role,
                lsn: Lsn(u64::from(db.pos) * 100),
                replication_connected: connected && db.up,
                in_sync: db.role == Role::Standby && db.connected && db.pos == other.pos,
                copy_complete: db.complete,
                copy: if db.copy_failed {
                    CopyProgress::Failed
                } else {
                    CopyProgress::Idle
                },
                ..AgentReport::default()
            })
        } else {
            Poll::Unreachable
        };
        self.input(Input::Agent {
            member: MemberId(m as u8),
            poll,
        })
    }

    fn pod_input(&mut self, m: usize) -> Result<(), Found> {
        let db = &self.world.dbs[m];
        let pod = (db.pod != 0).then(|| PodObservation {
            uid: Sim::pod_uid(db.pod),
            node: Some(node_name(db.node)),
            running: db.up,
            deleting: false,
        });
        self.observe(Input::Pod {
            member: MemberId(m as u8),
            pod,
        })
    }

    fn volume_input(&mut self, m: usize, lost: bool) -> Result<(), Found> {
        let db = &self.world.dbs[m];
        let volume = if db.volume || lost {
            VolumeObservation {
                pvc: Some(PvcUid(format!("pvc-{m}"))),
                pv: (!lost).then(|| (PvName(format!("pv-{m}")), node_name(db.node))),
                lost,
            }
        } else {
            VolumeObservation {
                pvc: None,
                pv: None,
                lost: false,
            }
        };
        self.observe(Input::Volume {
            member: MemberId(m as u8),
            volume,
        })
    }

    /// Whether wiping member `m` destroys the only surviving copy of an acknowledged write.
    fn only_copy(&self, m: usize) -> bool {
        let w = &self.world;
        let other = &w.dbs[1 - m];
        let other_survives = other.volume && other.complete && !w.deleted[other.node];
        w.dbs[m].pos >= w.acked && w.acked > 0 && !(other_survives && other.pos >= w.acked)
    }

    fn carry_out(&mut self, effect: &Effect) -> Result<(), Found> {
        if effect.action.is_report() {
            return Ok(());
        }
        if !self.engine.still_wanted(effect) {
            return self.finish(effect, Outcome::Failed(EffectError::Withdrawn));
        }
        let done = match &effect.action {
            Action::DeletePod { member, uid, .. } => {
                let m = member.index();
                if Sim::pod_uid(self.world.dbs[m].pod) != *uid || self.world.dbs[m].pod == 0 {
                    false
                } else {
                    let db = &mut self.world.dbs[m];
                    db.pod = 0;
                    db.up = false;
                    db.label = Role::None;
                    db.role = Role::None;
                    db.connected = false;
                    self.finish(effect, Outcome::Ok)?;
                    self.pod_input(m)?;
                    // The StatefulSet recreates it; its database starts with no role.
                    let node = self.world.dbs[m].node;
                    if self.world.ready[node] && !self.world.deleted[node] {
                        self.world.next_pod += 1;
                        let db = &mut self.world.dbs[m];
                        db.pod = self.world.next_pod;
                        db.up = db.volume;
                        self.pod_input(m)?;
                    }
                    return Ok(());
                }
            }
            Action::Promote { member } => {
                let m = member.index();
                let db = &self.world.dbs[m];
                let ok = db.up && db.complete && self.reachable(m);
                if ok {
                    let other = &self.world.dbs[1 - m];
                    if other.role == Role::Active && other.up {
                        return Err(format!("promote {member} while the other accepts writes"));
                    }
                    self.world.dbs[m].role = Role::Active;
                    self.world.dbs[m].connected = false;
                    self.world.dbs[1 - m].connected = false;
                }
                ok
            }
            Action::Demote { member } | Action::Fence { member } => {
                let m = member.index();
                let ok = self.reachable(m);
                if ok && self.world.dbs[m].role == Role::Active {
                    let demote = matches!(effect.action, Action::Demote { .. });
                    self.world.dbs[m].role = if demote { Role::Standby } else { Role::None };
                }
                ok
            }
            Action::Rebuild { member, from } => {
                let (m, f) = (member.index(), from.index());
                if !self.reachable(m) || !self.world.dbs[m].up {
                    false
                } else {
                    if self.only_copy(m) && !self.world.destroyed {
                        return Err(format!(
                            "rebuild of {member} wipes the only copy: {:?}",
                            self.world
                        ));
                    }
                    let source = self.world.dbs[f].clone();
                    let source_ok = source.up && source.role == Role::Active && self.reachable(f);
                    let db = &mut self.world.dbs[m];
                    db.role = Role::Standby;
                    if source_ok {
                        db.pos = source.pos;
                        db.complete = true;
                        db.connected = true;
                        db.copy_failed = false;
                    } else {
                        db.pos = 0;
                        db.complete = false;
                        db.connected = false;
                        db.copy_failed = true;
                    }
                    true
                }
            }
            Action::RestartReplication { member, from } => {
                let (m, f) = (member.index(), from.index());
                let source = self.world.dbs[f].clone();
                let db = &mut self.world.dbs[m];
                let ok = db.role == Role::Standby
                    && db.complete
                    && source.role == Role::Active
                    && db.pos <= source.pos;
                if ok {
                    db.connected = true;
                }
                ok
            }
            Action::ReleaseVolume { member, .. } => {
                let m = member.index();
                if self.only_copy(m) && !self.world.destroyed {
                    return Err(format!("volume release of {member} destroys the only copy"));
                }
                let db = &mut self.world.dbs[m];
                db.volume = false;
                db.pos = 0;
                db.complete = false;
                self.finish(effect, Outcome::Ok)?;
                return self.volume_input(m, false);
            }
            Action::ProvisionLocalPv { member, node, .. } => {
                let m = member.index();
                let index = (0..3).find(|i| node_name(*i) == *node).unwrap_or(2);
                let db = &mut self.world.dbs[m];
                db.node = index;
                db.volume = true;
                db.pos = 0;
                db.complete = false;
                self.finish(effect, Outcome::Ok)?;
                return self.volume_input(m, false);
            }
            Action::LabelPod { member, uid, role } => {
                let m = member.index();
                let same =
                    self.world.dbs[m].pod != 0 && Sim::pod_uid(self.world.dbs[m].pod) == *uid;
                if same {
                    if *role == Role::Active && self.world.dbs[1 - m].label == Role::Active {
                        return Err(format!("{member} labelled active while its peer is"));
                    }
                    self.world.dbs[m].label = *role;
                }
                same
            }
            Action::BindPvc { .. } | Action::SetReplicas { .. } => true,
            Action::UpdateStatus(_) | Action::EmitEvent { .. } => true,
        };
        let outcome = if done {
            Outcome::Ok
        } else {
            Outcome::Failed(EffectError::Rejected)
        };
        self.finish(effect, outcome)
    }

    fn finish(&mut self, effect: &Effect, outcome: Outcome) -> Result<(), Found> {
        self.observe(Input::EffectFinished {
            id: effect.id,
            outcome,
        })
    }

    fn write(&mut self) -> Result<(), Found> {
        let actives: Vec<usize> = (0..2)
            .filter(|m| self.world.dbs[*m].role == Role::Active && self.world.dbs[*m].up)
            .collect();
        if actives.len() > 1 {
            return Err("two members accept writes".into());
        }
        let Some(&a) = actives.first() else {
            return Ok(());
        };
        let s = 1 - a;
        let standby = &self.world.dbs[s];
        // Strict sync: a write is acknowledged once the connected standby has it.
        let receiving = standby.up && standby.connected && standby.role == Role::Standby;
        if !receiving {
            return Ok(());
        }
        if self.world.dbs[a].pos < self.world.acked && !self.world.destroyed {
            return Err(format!(
                "member-{a} accepts writes while lacking {} acknowledged ones",
                self.world.acked - self.world.dbs[a].pos
            ));
        }
        let pos = self.world.dbs[a].pos + 1;
        self.world.dbs[a].pos = pos;
        self.world.dbs[s].pos = pos;
        self.world.acked = self.world.acked.max(pos);
        Ok(())
    }

    fn destroy(&mut self, m: usize) {
        if self.only_copy(m) {
            self.world.destroyed = true;
        }
        let db = &mut self.world.dbs[m];
        db.up = false;
        db.role = Role::None;
        db.connected = false;
    }

    fn apply(&mut self, step: Step) -> Result<(), Found> {
        self.apply_inner(step)?;
        self.settle()
    }

    fn apply_inner(&mut self, step: Step) -> Result<(), Found> {
        match step {
            Step::Tick => {
                self.world.now += TICK_MS;
                let now = self.world.now;
                for db in &mut self.world.dbs {
                    // An agent not polled for its lease fences its database.
                    if db.role == Role::Active && now >= db.last_polled + LEASE_MS {
                        db.role = Role::None;
                    }
                }
                self.poll(0)?;
                self.poll(1)?;
                self.input(Input::Timer)
            }
            Step::Write => self.write(),
            Step::Crash(m) => {
                let db = &mut self.world.dbs[m];
                db.up = false;
                db.role = Role::None;
                db.connected = false;
                self.world.dbs[1 - m].connected &= self.world.dbs[1 - m].role != Role::Standby;
                self.poll(m)
            }
            Step::Restart(m) => {
                let db = &mut self.world.dbs[m];
                if db.pod != 0 && db.volume && !db.up {
                    db.up = true;
                    db.role = Role::None;
                }
                self.poll(m)
            }
            Step::Partition(m) => {
                self.world.dbs[m].partitioned = !self.world.dbs[m].partitioned;
                self.poll(m)
            }
            Step::NodeDown(m) => {
                let node = self.world.dbs[m].node;
                self.world.ready[node] = false;
                let db = &mut self.world.dbs[m];
                db.up = false;
                db.role = Role::None;
                db.connected = false;
                self.input(Input::Node {
                    node: node_name(node),
                    status: NodeStatus::NotReady,
                })
            }
            Step::NodeDeleted(m) => {
                let node = self.world.dbs[m].node;
                self.destroy(m);
                self.world.deleted[node] = true;
                self.input(Input::Node {
                    node: node_name(node),
                    status: NodeStatus::Deleted,
                })
            }
            Step::VolumeLost(m) => {
                self.destroy(m);
                let db = &mut self.world.dbs[m];
                db.volume = false;
                db.pos = 0;
                db.complete = false;
                self.volume_input(m, true)
            }
            Step::PodGone(m) => {
                if self.world.dbs[m].pod == 0 {
                    return Ok(());
                }
                self.world.dbs[m].pod = 0;
                let db = &mut self.world.dbs[m];
                db.label = Role::None;
                db.up = false;
                db.role = Role::None;
                db.connected = false;
                self.pod_input(m)
            }
            Step::OperatorRestart => {
                let state: EngineState = self.engine.state().clone();
                self.engine = Engine::from_state(state.clone());
                self.checker = Checker::from_state(state);
                self.input(Input::Recovered { log_lost: false })?;
                for m in 0..2 {
                    self.pod_input(m)?;
                }
                Ok(())
            }
        }
    }

    fn key(&self) -> (World, Vec<u8>) {
        (self.world.clone(), self.engine.state().encode_snapshot())
    }
}

/// Explores every sequence of up to `DEPTH` steps from `start`; returns the states explored.
fn explore(start: Sim, label: &str) -> usize {
    let mut seen = HashSet::new();
    let mut frontier = vec![(start, Vec::<Step>::new())];
    seen.insert(frontier[0].0.key());
    for _ in 0..depth() {
        let mut next = Vec::new();
        for (sim, path) in &frontier {
            for step in &ALPHABET {
                let mut child = sim.clone();
                let mut path = path.clone();
                path.push(*step);
                if let Err(found) = child.apply(*step) {
                    panic!("{label}: after {path:?}: {found}");
                }
                if seen.insert(child.key()) {
                    next.push((child, path));
                }
            }
        }
        frontier = next;
    }
    seen.len()
}

fn spec() -> Spec {
    let mut spec = test_spec(Topology::MasterSlave, Replication::Sync);
    spec.node_lost_timeout_s = 30;
    spec
}

#[test]
fn every_short_sequence_from_normal_keeps_the_writes() {
    let start = Sim::start(&spec());
    let states = explore(start, "Normal");
    println!("from Normal: {states} states explored to depth {}", depth());
    assert!(states > 1_000);
}

#[test]
fn every_short_sequence_from_a_partitioned_active_keeps_the_writes() {
    let mut start = Sim::start(&spec());
    for step in [Step::Write, Step::Partition(0), Step::Tick, Step::Tick] {
        start.apply(step).expect("the prefix keeps the invariants");
    }
    // Normal, the active silent for 20 s: its lease runs out within the next steps.
    let state = start.engine.state().cluster();
    assert_eq!(state, tandem_engine::ClusterState::Normal);
    assert_eq!(
        start.engine.state().health(MemberId(0), start.engine.now()),
        tandem_engine::Health::Unknown
    );
    let states = explore(start, "partitioned active");
    println!(
        "from {state} with the active partitioned: {states} states explored to depth {}",
        depth()
    );
}

#[test]
fn every_short_sequence_from_a_standby_rebuild_keeps_the_writes() {
    let mut start = Sim::start(&spec());
    for step in [Step::Write, Step::Crash(1), Step::Tick, Step::Restart(1)] {
        start.apply(step).expect("the prefix keeps the invariants");
    }
    let state = start.engine.state().cluster();
    assert_eq!(state, tandem_engine::ClusterState::StandbyPartiallyStarting);
    let states = explore(start, "standby rebuild");
    println!(
        "from {state}: {states} states explored to depth {}",
        depth()
    );
}
