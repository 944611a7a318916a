//! Running a scenario: the event loop of the world and the operator process, the invariant
//! checks after every step, and the expectations at the end.

use crate::data::Position;
use crate::scenario::{
    Action as UserAction, ClusterStateName, Fault, Millis, Scenario, Target, What,
};
use crate::timeline::{Mark, MarkKind, MemberSample, Sample, Timeline};
use crate::world::{Changed, Later, World};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use tandem_driver::{AskTicket, Driver, DriverError, Listing, MemberListing, Observed};
use tandem_engine::{
    Action, ClusterState, Effect, EffectError, Executor, Input, MemberId, Outcome, Poll, Record,
    Role, Seq, Spec, StateKind, SwitchoverRequest, Timestamp, Topology,
};
use tandem_sled::EventLog;

/// How many of the last steps a failure report shows.
pub const LAST_STEPS: usize = 24;

/// A poll that gets no answer times out after this long.
const POLL_TIMEOUT_MS: Millis = 1_000;

/// How long a cluster is `Normal` before its labels must route clients to its active: enough
/// for a failed label patch to be retried.
const ROUTING_SETTLE_MS: Millis = 60_000;

/// Every run stops after this many events, whatever its duration: a bound on runaway loops.
pub const MAX_EVENTS: u64 = 20_000_000;

/// Deliberate defects, to prove the checkers can fail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sabotage {
    /// The operator runs the engine as it is.
    #[default]
    None,
    /// The operator promotes the standby the moment a poll of the active fails, without
    /// fencing it: a broken policy.
    PromoteWithoutFencing,
    /// The operator rebuilds the standby from the active the moment a poll of the active fails
    /// (the source may never finish the copy): a broken policy.
    RebuildFromUnreachableActive,
}

/// Options of a run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Keep every input, event and effect as JSON lines.
    pub trace: bool,
    /// A deliberate defect.
    pub sabotage: Sabotage,
    /// The log stream's name (default: the scenario's name and seed).
    pub stream: Option<String>,
    /// Explore's judgement of the end of the run: when a node lost for good took the only copy
    /// of acknowledged writes ([`RunReport::destroyed_writes`]), no careful operator can bring
    /// the cluster back without losing them, so the run must end in `ManualInterventionRequired`
    /// or `Failed` instead of what `expect` says, and `expect.maxLostWrites` does not apply.
    pub intervention_after_destroyed_writes: bool,
    /// Leaves the records out of [`RunReport::trace_hash`], sparing an encoding of each (explore,
    /// which never compares hashes, runs this way).
    pub skip_record_hash: bool,
    /// After every step, checks the timer table (`tandem_engine::testing::check_timer_table`):
    /// a `Timer` just before the engine's next deadline, on a copy of the engine, records
    /// nothing. It costs a copy of the engine and a step per step (the property tests run so).
    pub check_timer_table: bool,
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Simulated time.
    pub at_ms: Millis,
    /// Which invariant or expectation.
    pub what: String,
    /// What was seen.
    pub detail: String,
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The scenario.
    pub name: String,
    /// The scenario's topology.
    pub topology: Topology,
    /// The seed used.
    pub seed: u64,
    /// The first violated invariant or unmet expectation.
    pub failure: Option<Failure>,
    /// The last steps before the failure (empty when the run passed).
    pub last_steps: Vec<String>,
    /// Transitions taken.
    pub transitions: u64,
    /// The states entered, in order.
    pub visited: Vec<ClusterState>,
    /// The state at the end.
    pub final_state: ClusterState,
    /// From the end of the last fault to the final state, if it was reached after it.
    pub recovered_after_ms: Option<Millis>,
    /// Simulated time.
    pub simulated_ms: Millis,
    /// Wall time.
    pub wall: Duration,
    /// Acknowledged writes, and those the final active lacks.
    pub acknowledged_writes: u64,
    /// Acknowledged writes lost.
    pub lost_writes: u64,
    /// Acknowledged writes that the world itself destroyed: when a node went for good, the
    /// writes that no surviving complete copy held any more (0 when every loss left one).
    pub destroyed_writes: u64,
    /// A hash of everything recorded and observed: the same scenario and seed give the same.
    pub trace_hash: u64,
    /// The records the operator wrote.
    pub records: u64,
    /// The log streams the operator wrote: the first, then one per lost log.
    pub streams: Vec<String>,
    /// The JSON lines of the trace, if asked for.
    pub trace: Vec<String>,
    /// The picture's data.
    pub timeline: Timeline,
}

impl RunReport {
    /// Whether every invariant and expectation held.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// Simulated time over wall time.
    pub fn speedup(&self) -> f64 {
        self.simulated_ms as f64 / (self.wall.as_secs_f64() * 1000.0).max(1e-9)
    }
}

/// Errors that stop a run before it can judge anything (the log failed).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The event log failed.
    #[error("event log: {0}")]
    Log(#[from] tandem_sled::LogError),
    /// The engine refused an input.
    #[error("engine: {0}")]
    Engine(#[from] tandem_engine::EngineError),
}

impl From<DriverError> for RunError {
    fn from(error: DriverError) -> RunError {
        match error {
            DriverError::Engine(error) => RunError::Engine(error),
            DriverError::Log(error) => RunError::Log(error),
        }
    }
}

#[derive(Clone, Debug)]
enum Ev {
    World(Later),
    Fire(usize),
    Boundary,
    Thaw(u8),
    Poll(u8),
    Deliver {
        incarnation: u64,
        input: Input,
    },
    /// An effect's outcome reaches the operator.
    Finished {
        incarnation: u64,
        effect: Effect,
        outcome: Outcome,
    },
    /// An agent's answer to a poll.
    Answer {
        incarnation: u64,
        ticket: AskTicket,
        poll: Poll,
    },
    Wake {
        incarnation: u64,
    },
    Effect {
        incarnation: u64,
        effect: Effect,
    },
    OperatorRestart {
        lose_log: bool,
    },
}

/// SplitMix64: a small, seeded generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }

    /// A fraction in [0, 1).
    pub fn fraction(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The operator process: the engine and its log.
struct Operator<'a> {
    up: bool,
    incarnation: u64,
    driver: Driver<&'a tandem_sled::EventLog>,
    /// The stream the cluster's log started on.
    stream: String,
    spec: Spec,
    wake_at: Option<Millis>,
    lost_logs: u32,
}

struct Sim<'a> {
    scenario: &'a Scenario,
    options: &'a RunOptions,
    log: &'a EventLog,
    world: World,
    operator: Operator<'a>,
    /// Boxed: an event holds inputs and effects, and the map moves its entries around.
    queue: BTreeMap<(Millis, u64), Box<Ev>>,
    queued: u64,
    now: Millis,
    settled: Millis,
    rng: Rng,
    api_error_rate: f64,
    api_errors_until: Millis,
    failure: Option<Failure>,
    last_steps: VecDeque<String>,
    recent_inputs: VecDeque<(Millis, Input)>,
    last_sample: Option<DrawnState>,
    trace: Vec<String>,
    hash: u64,
    timeline: Timeline,
    visited: Vec<(Millis, ClusterState)>,
    last_fault_end: Millis,
    records: u64,
    config_hash: u64,
    destroyed_writes: u64,
    /// A node lost for good left no complete copy of a database that served.
    no_copy_left: bool,
    /// Some member was the active at some point, or the engine asked for a promotion (which,
    /// for all it can tell, may have taken effect).
    served: bool,
    /// A node lost for good left no complete copy, of a database that may not have served yet.
    unserved_copy_lost: bool,
    /// An engine without its log faced no complete copy after such a loss: it cannot tell
    /// whether the lost copy served, so it may not start over on an empty one.
    unknowable: bool,
}

/// What the picture shows at one time: the cluster state (none while the operator is down) and
/// each member.
type DrawnState = (
    Option<tandem_engine::ClusterState>,
    [Option<MemberSample>; 2],
);

/// The last steps for a report: the noted lines and the recent inputs, in time order.
fn merge_steps(lines: VecDeque<String>, inputs: VecDeque<(Millis, Input)>) -> Vec<String> {
    let mut steps: Vec<(Millis, String)> = lines
        .into_iter()
        .map(|line| {
            let at = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|value| value.get("t").and_then(serde_json::Value::as_u64))
                .unwrap_or(0);
            (at, line)
        })
        .collect();
    for (at, input) in inputs {
        let line = serde_json::json!({ "t": at, "type": "input", "detail": format!("{input:?}") });
        steps.push((at, line.to_string()));
    }
    steps.sort_by_key(|(at, _)| *at);
    let skip = steps.len().saturating_sub(LAST_STEPS);
    steps.into_iter().skip(skip).map(|(_, line)| line).collect()
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Feeds a value's postcard encoding to [`fnv`] as it is produced, without building it.
struct FnvFlavor(u64);

impl postcard::ser_flavors::Flavor for FnvFlavor {
    type Output = u64;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0 = fnv(self.0, &[byte]);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0 = fnv(self.0, bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<u64> {
        Ok(self.0)
    }
}

/// The stream an operator writes to after losing its log `lost` times (the first stream when
/// `lost` is 0).
fn stream_after_lost_log(first: &str, lost: u32) -> String {
    match lost {
        0 => first.to_string(),
        lost => format!("{first}-lost{lost}"),
    }
}

/// Runs one scenario against a fresh operator writing to `log`.
pub fn run(
    scenario: &Scenario,
    options: &RunOptions,
    log: &EventLog,
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let seed = options.seed.unwrap_or(scenario.seed);
    let stream = options
        .stream
        .clone()
        .unwrap_or_else(|| format!("{}-{seed}", scenario.name));
    let spec = scenario.cluster.clone();
    let world = World::new(
        scenario.world.clone(),
        scenario.topology,
        spec.replication,
        u64::from(spec.agent_lease_s) * 1000,
    );
    // A stream left by an earlier run of the same name and seed: start a fresh one.
    let tail = log.tail_seq(&stream)?;
    let stream = if tail == Seq(0) {
        stream
    } else {
        format!("{stream}-{}", tail.0)
    };
    let mut sim = Sim {
        scenario,
        options,
        log,
        world,
        operator: Operator {
            up: true,
            incarnation: 0,
            driver: Driver::fresh(log, &stream)?,
            stream,
            spec,
            wake_at: None,
            lost_logs: 0,
        },
        queue: BTreeMap::new(),
        queued: 0,
        now: 0,
        settled: 0,
        rng: Rng::new(seed),
        api_error_rate: 0.0,
        api_errors_until: 0,
        failure: None,
        last_steps: VecDeque::new(),
        recent_inputs: VecDeque::new(),
        last_sample: None,
        trace: Vec::new(),
        hash: FNV_OFFSET,
        timeline: Timeline {
            title: format!("{} (seed {seed})", scenario.name),
            members: scenario.topology.member_count(),
            duration_ms: scenario.duration_ms,
            ..Timeline::default()
        },
        visited: Vec::new(),
        last_fault_end: 0,
        records: 0,
        config_hash: scenario.cluster.config_hash.0,
        destroyed_writes: 0,
        no_copy_left: false,
        served: false,
        unserved_copy_lost: false,
        unknowable: false,
    };
    sim.world.config_hash = sim.config_hash;
    sim.start()?;
    sim.run_loop()?;
    Ok(sim.finish(seed, started))
}

impl Sim<'_> {
    fn push(&mut self, at: Millis, event: Ev) {
        self.queued += 1;
        self.queue
            .insert((at.max(self.now), self.queued), Box::new(event));
    }

    fn step_note(&mut self, line: String) {
        self.hash = fnv(self.hash, line.as_bytes());
        if self.last_steps.len() == LAST_STEPS {
            self.last_steps.pop_front();
        }
        if self.options.trace {
            self.trace.push(line.clone());
        }
        self.last_steps.push_back(line);
    }

    fn trace_line(&mut self, kind: &str, detail: String) {
        let line = serde_json::json!({ "t": self.now, "type": kind, "detail": detail }).to_string();
        self.step_note(line);
    }

    /// Notes an input: kept for the failure report (and the trace), formatted only when needed.
    fn note_input(&mut self, input: &Input) {
        if self.options.trace {
            self.trace_line("input", format!("{input:?}"));
            return;
        }
        if self.recent_inputs.len() == LAST_STEPS {
            self.recent_inputs.pop_front();
        }
        self.recent_inputs.push_back((self.now, input.clone()));
    }

    fn fail(&mut self, what: &str, detail: String) {
        if self.failure.is_none() {
            self.trace_line("violation", format!("{what}: {detail}"));
            self.timeline.marks.push(Mark {
                at_ms: self.now,
                until_ms: None,
                label: what.to_string(),
                kind: MarkKind::Violation,
            });
            self.failure = Some(Failure {
                at_ms: self.now,
                what: what.to_string(),
                detail,
            });
        }
    }

    fn start(&mut self) -> Result<(), RunError> {
        for (index, entry) in self.scenario.timeline.iter().enumerate() {
            self.queued += 1;
            self.queue
                .insert((entry.at_ms, self.queued), Box::new(Ev::Fire(index)));
        }
        for node in 0..self.world.nodes.len() {
            let (name, status) = self.world.node_observation(node);
            self.operator_input(Input::Node { node: name, status })?;
        }
        self.operator_input(Input::Spec(self.operator.spec.clone()))?;
        self.start_polls();
        Ok(())
    }

    fn start_polls(&mut self) {
        let polling_ms = self.operator.spec.polling_interval_ms();
        for member in 0..self.world.members.len() as u8 {
            let offset = 1_000 + u64::from(member) * 100;
            self.push(self.now + offset.min(polling_ms), Ev::Poll(member));
        }
    }

    fn run_loop(&mut self) -> Result<(), RunError> {
        let end = self.scenario.duration_ms;
        let mut events = 0u64;
        while let Some((&(at, _), _)) = self.queue.first_key_value() {
            if at > end || self.failure.is_some() || events >= MAX_EVENTS {
                break;
            }
            let (_, event) = self.queue.pop_first().expect("just seen");
            events += 1;
            self.advance(at);
            self.handle(*event)?;
            self.drain_world();
            self.served |= self.world.active().is_some();
            self.sample();
        }
        if self.failure.is_none() {
            self.advance(end.max(self.now));
        }
        Ok(())
    }

    /// Moves time to `at`, settling writes and replication over the interval.
    fn advance(&mut self, at: Millis) {
        if at > self.settled {
            if let Some(members) = self.world.settle(self.settled, at) {
                let names: Vec<String> = members.iter().map(|m| format!("member-{m}")).collect();
                self.now = self.settled;
                self.fail(
                    "no split brain",
                    format!(
                        "{} accept client writes at the same time",
                        names.join(" and ")
                    ),
                );
            }
            self.settled = at;
        }
        self.now = at;
    }

    fn handle(&mut self, event: Ev) -> Result<(), RunError> {
        match event {
            Ev::World(later) => self.world_later(later),
            Ev::Fire(index) => self.fire(index)?,
            Ev::Boundary => {}
            Ev::Thaw(member) => self.world.thaw(member, self.now),
            Ev::Poll(member) => self.poll(member),
            Ev::Deliver { incarnation, input } => {
                if self.operator.up && incarnation == self.operator.incarnation {
                    self.operator_input(input)?;
                }
            }
            Ev::Answer {
                incarnation,
                ticket,
                poll,
            } => {
                if self.operator.up && incarnation == self.operator.incarnation {
                    self.answer(ticket, poll)?;
                }
            }
            Ev::Finished {
                incarnation,
                effect,
                outcome,
            } => {
                if self.operator.up && incarnation == self.operator.incarnation {
                    let now = Timestamp(self.now);
                    if effect.id != tandem_engine::REPORT_EFFECT_ID {
                        self.note_input(&Input::EffectFinished {
                            id: effect.id,
                            outcome,
                        });
                    }
                    if let Some(observed) = self.operator.driver.finished(now, &effect, outcome)? {
                        self.handle_observed(observed);
                    }
                }
            }
            Ev::Wake { incarnation } => {
                if self.operator.up && incarnation == self.operator.incarnation {
                    self.operator.wake_at = None;
                    self.operator_input(Input::Timer)?;
                }
            }
            Ev::Effect {
                incarnation,
                effect,
            } => self.carry_out(incarnation, effect),
            Ev::OperatorRestart { lose_log } => self.operator_restart(lose_log)?,
        }
        Ok(())
    }

    fn world_later(&mut self, later: Later) {
        let now = self.now;
        match later {
            Later::ProcessUp { member, uid } => self.world.process_up(member, &uid, now),
            Later::PodGone { member, uid } => self.world.pod_gone(member, &uid, now),
            Later::Reconcile => self.world.reconcile(now),
            Later::CopyDone { member, token } => self.world.copy_done(member, token, now),
            Later::LeaseCheck { member, polled_at } => {
                self.world.lease_check(member, polled_at, now)
            }
            Later::Restart { member, uid } => self.world.restart(member, &uid, now),
            // A reboot that a loss for good overtook never ends.
            Later::NodeBack { node } if self.world.nodes[node].gone_for_good => {}
            Later::NodeBack { node } => self.world.node_back(node, now),
            Later::Boundary => {}
        }
    }

    /// Queues what the world scheduled, and tells the operator's watches what changed.
    fn drain_world(&mut self) {
        for (at, later) in std::mem::take(&mut self.world.later) {
            self.push(at, Ev::World(later));
        }
        let changed = std::mem::take(&mut self.world.changed);
        if !self.operator.up {
            return;
        }
        let latency = self.world.config.api_latency_ms;
        for change in changed {
            let input = match change {
                Changed::Pod(member) => Input::Pod {
                    member: MemberId(member),
                    pod: self.world.pod_observation(member),
                },
                Changed::Volume(member) => Input::Volume {
                    member: MemberId(member),
                    volume: self.world.volume_observation(member),
                },
                Changed::Node(node) => {
                    let (node, status) = self.world.node_observation(node);
                    Input::Node { node, status }
                }
            };
            let incarnation = self.operator.incarnation;
            self.push(self.now + latency, Ev::Deliver { incarnation, input });
        }
    }

    fn poll(&mut self, member: u8) {
        if !self.operator.up {
            return;
        }
        let incarnation = self.operator.incarnation;
        let (delay, poll) = if self.world.agent_reachable(member, self.now) {
            let report = self.world.report(member, self.now);
            (self.world.config.agent_latency_ms, Poll::Report(report))
        } else {
            (POLL_TIMEOUT_MS, Poll::Unreachable)
        };
        if poll == Poll::Unreachable {
            match self.options.sabotage {
                Sabotage::None => {}
                Sabotage::PromoteWithoutFencing => self.sabotage_promote(member),
                Sabotage::RebuildFromUnreachableActive => self.sabotage_rebuild(member),
            }
        }
        let ticket = self.operator.driver.ask(MemberId(member));
        self.push(
            self.now + delay,
            Ev::Answer {
                incarnation,
                ticket,
                poll,
            },
        );
        let polling_ms = self.operator.spec.polling_interval_ms();
        self.push(self.now + polling_ms, Ev::Poll(member));
    }

    /// An agent's answer reaches the operator: given to the engine unless the engine replaced
    /// or wiped the member's data since the poll was asked (the operator does the same).
    fn answer(&mut self, ticket: AskTicket, poll: Poll) -> Result<(), RunError> {
        let member = ticket.member();
        self.note_input(&Input::Agent {
            member,
            poll: poll.clone(),
        });
        match self
            .operator
            .driver
            .answer(Timestamp(self.now), ticket, poll)?
        {
            Some(observed) => self.handle_observed(observed),
            None => self.trace_line(
                "operator",
                format!("dropped {member}'s answer to a poll asked before its data changed"),
            ),
        }
        Ok(())
    }

    /// The broken policy: promote the other member at once, fencing nothing.
    fn sabotage_promote(&mut self, unreachable: u8) {
        if self.world.members[usize::from(unreachable)].role != Role::Active {
            return;
        }
        let other = MemberId(unreachable).peer().0;
        if usize::from(other) < self.world.members.len() && self.world.promote(other) {
            self.trace_line(
                "sabotage",
                format!("promoted member-{other} without fencing member-{unreachable}"),
            );
        }
    }

    /// The broken policy: wipe the other member to copy it from an active that did not answer.
    fn sabotage_rebuild(&mut self, unreachable: u8) {
        let other = MemberId(unreachable).peer().0;
        let is_active =
            self.operator.driver.engine().state().active() == Some(MemberId(unreachable));
        if !is_active || usize::from(other) >= self.world.members.len() {
            return;
        }
        let action = Action::Rebuild {
            member: MemberId(other),
            from: MemberId(unreachable),
        };
        if self.apply(&action) {
            self.trace_line(
                "sabotage",
                format!("rebuilt member-{other} from the unreachable member-{unreachable}"),
            );
        }
    }

    // --- the operator ---------------------------------------------------------------------------

    fn operator_input(&mut self, input: Input) -> Result<(), RunError> {
        self.note_input(&input);
        let observed = self.operator.driver.observe(Timestamp(self.now), input)?;
        self.handle_observed(observed);
        Ok(())
    }

    /// What the driver's step produced: traced, checked against the world, and its effects
    /// sent on their way.
    fn handle_observed(&mut self, observed: Observed) {
        if let Some(record) = &observed.record {
            self.records += 1;
            if !self.options.skip_record_hash {
                self.hash = postcard::serialize_with_flavor(record, FnvFlavor(self.hash))
                    .expect("hashing a record cannot fail");
            }
            self.note_record(record);
        }
        if let Some(violation) = observed.violation {
            self.fail(violation.invariant, violation.detail);
        }
        if self.options.check_timer_table
            && let Err(violation) =
                tandem_engine::testing::check_timer_table(self.operator.driver.engine())
        {
            self.fail(violation.invariant, violation.detail);
        }
        if let Some(record) = &observed.record {
            self.check_stopped(record);
        }
        for effect in observed.effects {
            self.dispatch(effect);
        }
        self.schedule_wake();
    }

    /// A cluster the engine declares stopped runs no pod: the engine saw every pod gone.
    fn check_stopped(&mut self, record: &Record) {
        let stopped = record.events.iter().any(|event| {
            matches!(
                event,
                tandem_engine::Event::Transition {
                    to: tandem_engine::ClusterState::Stopped,
                    ..
                }
            )
        });
        if !stopped {
            return;
        }
        let running: Vec<String> = (0..self.world.members.len() as u8)
            .filter(|member| self.world.pod_observation(*member).is_some())
            .map(|member| format!("member-{member}"))
            .collect();
        if !running.is_empty() {
            self.fail(
                "a stopped cluster runs no pod",
                format!("Stopped while the pods of {} exist", running.join(" and ")),
            );
        }
    }

    fn note_unknowable(&mut self) {
        self.unknowable |= self.unserved_copy_lost
            && !self.complete_copy_survives()
            && self.operator.driver.engine().state().log_lost();
    }

    fn note_record(&mut self, record: &Record) {
        for event in &record.events {
            if let tandem_engine::Event::Transition {
                to, reason, detail, ..
            } = event
            {
                self.visited.push((self.now, *to));
                self.trace_line("event", format!("-> {to} ({reason:?}): {detail}"));
            } else if self.options.trace {
                self.trace_line("event", format!("{event:?}"));
            }
        }
        if self.options.trace {
            for effect in &record.effects {
                self.trace_line("effect", format!("{:?}", effect.action));
            }
        }
    }

    fn schedule_wake(&mut self) {
        let Some(deadline) = self.operator.driver.next_wake() else {
            return;
        };
        let at = deadline.0;
        if self.operator.wake_at.is_some_and(|wake| wake <= at) {
            return;
        }
        self.operator.wake_at = Some(at);
        let incarnation = self.operator.incarnation;
        self.push(at, Ev::Wake { incarnation });
    }

    fn dispatch(&mut self, effect: Effect) {
        // A promotion asked for may have taken effect, as far as the engine can tell.
        self.served |= matches!(effect.action, Action::Promote { .. });
        let latency = match effect.action.executor() {
            Executor::Agent => self.world.config.agent_latency_ms,
            Executor::Kubernetes | Executor::Report => self.world.config.api_latency_ms,
        };
        let incarnation = self.operator.incarnation;
        self.push(
            self.now + latency,
            Ev::Effect {
                incarnation,
                effect,
            },
        );
    }

    /// The world carries out an effect, and its outcome goes back to the operator.
    fn carry_out(&mut self, incarnation: u64, effect: Effect) {
        let current = self.operator.up && incarnation == self.operator.incarnation;
        // Right before a destructive call, the driver asks the engine whether it still wants it.
        let withdrawn = current
            .then(|| self.operator.driver.before_carrying_out(&effect))
            .flatten();
        let outcome = if let Some(outcome) = withdrawn {
            self.trace_line(
                "withdrawn",
                format!("{:?}: no longer wanted", effect.action),
            );
            outcome
        } else {
            self.execute(&effect.action)
        };
        if !self.operator.up || incarnation != self.operator.incarnation {
            return;
        }
        let latency = self.world.config.api_latency_ms;
        self.push(
            self.now + latency,
            Ev::Finished {
                incarnation,
                effect,
                outcome,
            },
        );
    }

    fn api_error(&mut self) -> Option<EffectError> {
        if self.now >= self.api_errors_until || self.rng.fraction() >= self.api_error_rate {
            return None;
        }
        Some(match self.rng.below(3) {
            0 => EffectError::Conflict,
            1 => EffectError::ServerError,
            _ => EffectError::Timeout,
        })
    }

    fn execute(&mut self, action: &Action) -> Outcome {
        let now = self.now;
        if action.executor() == Executor::Agent {
            let member = action.member().expect("agent commands name a member").0;
            if !self.world.agent_reachable(member, now) {
                return Outcome::Failed(EffectError::Timeout);
            }
        } else if let Some(error) = self.api_error() {
            // A timed-out call may still have been carried out.
            if error != EffectError::Timeout || self.rng.below(2) == 0 {
                return Outcome::Failed(error);
            }
            self.apply(action);
            return Outcome::Failed(error);
        }
        if self.apply(action) {
            Outcome::Ok
        } else {
            Outcome::Failed(EffectError::Rejected)
        }
    }

    fn apply(&mut self, action: &Action) -> bool {
        let now = self.now;
        match action {
            Action::DeletePod {
                member,
                uid,
                grace_period_s,
            } => {
                let matches = self.world.members[member.index()]
                    .pod
                    .as_ref()
                    .is_some_and(|pod| pod.uid == uid.0);
                if matches {
                    self.world.delete_pod(member.0, now, *grace_period_s == 0);
                }
                matches
            }
            Action::Promote { member } => {
                let others_accepting = (0..self.world.members.len() as u8)
                    .filter(|m| *m != member.0)
                    .any(|m| self.world.accepting_writes(m, now));
                let promoted = self.world.promote(member.0);
                if promoted && others_accepting {
                    self.fail(
                        "fence before promote",
                        format!("{member} promoted while another member accepts writes"),
                    );
                }
                promoted
            }
            Action::Demote { member } => self.world.demote(member.0, Role::Standby),
            Action::Fence { member } => self.world.demote(member.0, Role::None),
            Action::Rebuild { member, from } => {
                self.guard_newest(member.0, "rebuild");
                self.world.rebuild(member.0, from.0, now)
            }
            Action::RestartReplication { member, from } => {
                self.world.restart_replication(member.0, from.0)
            }
            Action::ProvisionLocalPv {
                member,
                node,
                generation,
            } => self.world.provision(member.0, node, *generation),
            Action::BindPvc { member, .. } => self.world.bind_pvc(member.0, now),
            Action::ReleaseVolume {
                member,
                pvc,
                generation,
            } => {
                self.guard_newest(member.0, "release-volume");
                self.world.release(member.0, pvc.as_ref(), *generation)
            }
            Action::SetReplicas { replicas } => {
                self.world.set_replicas(*replicas, now);
                true
            }
            Action::LabelPod { member, uid, role } => {
                let labelled = self.world.label_pod(member.0, &uid.0, *role);
                let active = self.world.labelled_active();
                if active.len() > 1 {
                    self.fail(
                        "one address for the active",
                        format!("the pods of members {active:?} both carry the active label"),
                    );
                }
                labelled
            }
            Action::UpdateStatus(_) | Action::EmitEvent { .. } => true,
        }
    }

    fn guard_newest(&mut self, member: u8, what: &str) {
        if self.world.holds_the_newest_copy(member) {
            self.fail(
                "no destruction of the newest copy",
                format!(
                    "{what} of member-{member}, which holds acknowledged writes no other copy has"
                ),
            );
        }
    }

    fn operator_restart(&mut self, lose_log: bool) -> Result<(), RunError> {
        self.operator.up = true;
        self.operator.incarnation += 1;
        self.operator.wake_at = None;
        if lose_log {
            self.operator.lost_logs += 1;
            let stream = stream_after_lost_log(&self.operator.stream, self.operator.lost_logs);
            self.operator.driver = Driver::fresh(self.log, &stream)?;
        } else {
            let stream = self.operator.driver.stream().to_string();
            self.operator.driver = Driver::recover(self.log, &stream)?;
        }
        self.trace_line("operator", format!("restarted (log lost: {lose_log})"));
        // The watches list everything again; the driver gives it to the engine before the spec.
        let listing = Listing {
            nodes: (0..self.world.nodes.len())
                .map(|node| self.world.node_observation(node))
                .collect(),
            members: (0..self.world.members.len() as u8)
                .map(|member| MemberListing {
                    member: MemberId(member),
                    volume: self.world.volume_observation(member),
                    pod: self.world.pod_observation(member),
                })
                .collect(),
        };
        let spec = self.operator.spec.clone();
        let steps = self
            .operator
            .driver
            .relist(Timestamp(self.now), lose_log, listing, spec)?;
        for (index, (input, observed)) in steps.into_iter().enumerate() {
            self.note_input(&input);
            self.handle_observed(observed);
            if index == 0 {
                self.note_unknowable();
            }
        }
        self.start_polls();
        Ok(())
    }

    // --- the timeline ----------------------------------------------------------------------------

    fn resolve_member(&self, target: Target) -> Option<u8> {
        match target {
            Target::Active => self
                .world
                .active()
                .or_else(|| self.operator.driver.engine().state().active().map(|m| m.0)),
            Target::Standby => {
                let active = self.resolve_member(Target::Active)?;
                (self.world.members.len() > 1).then(|| MemberId(active).peer().0)
            }
            Target::Member(member) => {
                (usize::from(member) < self.world.members.len()).then_some(member)
            }
            _ => None,
        }
    }

    fn resolve_node(&self, target: Target) -> Option<usize> {
        match target {
            Target::NodeOfActive => self.world.node_of(self.resolve_member(Target::Active)?),
            Target::NodeOfStandby => self.world.node_of(self.resolve_member(Target::Standby)?),
            Target::Node(node) => Some(node as usize),
            other => self.world.node_of(self.resolve_member(other)?),
        }
        .filter(|node| *node < self.world.nodes.len())
    }

    fn fire(&mut self, index: usize) -> Result<(), RunError> {
        let entry = self.scenario.timeline[index].clone();
        match &entry.what {
            What::Fault(fault, target) => self.fault(fault, *target),
            What::Action(action) => self.action(action)?,
        }
        Ok(())
    }

    fn mark(&mut self, label: String, until: Option<Millis>, kind: MarkKind) {
        self.trace_line(
            if kind == MarkKind::Fault {
                "fault"
            } else {
                "action"
            },
            label.clone(),
        );
        self.timeline.marks.push(Mark {
            at_ms: self.now,
            until_ms: until,
            label,
            kind,
        });
        let end = until.unwrap_or(self.now);
        if kind == MarkKind::Fault {
            self.last_fault_end = self.last_fault_end.max(end);
        }
        if let Some(until) = until {
            self.push(until, Ev::Boundary);
        }
    }

    fn fault(&mut self, fault: &Fault, target: Option<Target>) {
        let now = self.now;
        let label = |name: &str, who: &str| format!("{name} {who}");
        if let Fault::OperatorCrash {
            restart_after_ms,
            lose_log,
        } = fault
        {
            self.operator.up = false;
            self.operator.incarnation += 1;
            let until = now + restart_after_ms;
            self.mark(
                format!(
                    "operator-crash{}",
                    if *lose_log { " (log lost)" } else { "" }
                ),
                Some(until),
                MarkKind::Fault,
            );
            self.push(
                until,
                Ev::OperatorRestart {
                    lose_log: *lose_log,
                },
            );
            return;
        }
        if let Fault::ApiErrors { rate, for_ms } = fault {
            self.api_error_rate = *rate;
            self.api_errors_until = now + for_ms;
            self.mark(
                format!("api-errors {rate}"),
                Some(now + for_ms),
                MarkKind::Fault,
            );
            return;
        }
        let target = target.unwrap_or(Target::Active);
        if let Fault::NodeLoss { for_ms } = fault {
            let Some(node) = self.resolve_node(target) else {
                self.mark(
                    format!("node-loss: no such node {target:?}"),
                    None,
                    MarkKind::Fault,
                );
                return;
            };
            if self.world.nodes[node].gone_for_good {
                // A node gone for good does not come back, with or without its disks.
                let name = self.world.nodes[node].name.clone();
                self.mark(
                    format!("node-loss: {name} is gone for good already"),
                    None,
                    MarkKind::Fault,
                );
                return;
            }
            let lacking_before = self.best_copy_lacks();
            // A database that was made the active may have accepted writes, as far as anyone
            // outside the world can tell, even if none was acknowledged yet.
            let served = self.served
                || self.world.history.acknowledged_writes() > 0
                || (0..self.world.members.len() as u8)
                    .any(|member| self.world.members[usize::from(member)].role == Role::Active);
            let any_copy_before = self.complete_copy_survives();
            let copy_before = any_copy_before && served;
            self.world.node_loss(node, now, *for_ms);
            if for_ms.is_none() {
                let destroyed = self.best_copy_lacks().saturating_sub(lacking_before);
                self.destroyed_writes += destroyed;
                // Only a loss that took the last complete copy of a database that served
                // counts: before the first promotion there is nothing to lose.
                self.no_copy_left |= copy_before && !self.complete_copy_survives();
                self.unserved_copy_lost |= any_copy_before && !self.complete_copy_survives();
                self.note_unknowable();
            }
            let name = self.world.nodes[node].name.clone();
            self.mark(
                label("node-loss", &name),
                for_ms.map(|d| now + d),
                MarkKind::Fault,
            );
            return;
        }
        let Some(member) = self.resolve_member(target) else {
            self.mark(
                format!("{}: no member for {target:?}", fault.name()),
                None,
                MarkKind::Fault,
            );
            return;
        };
        let who = format!("member-{member}");
        let until = self.member_fault(member, fault);
        self.mark(label(fault.name(), &who), until, MarkKind::Fault);
    }

    /// Applies a fault to a member; returns when it ends, if it has a duration.
    fn member_fault(&mut self, member: u8, fault: &Fault) -> Option<Millis> {
        let now = self.now;
        let index = usize::from(member);
        let window = |for_ms: Millis| now + for_ms;
        match *fault {
            Fault::CrashProcess { restart_after_ms } => {
                let uid = self.world.members[index]
                    .pod
                    .as_ref()
                    .map(|pod| pod.uid.clone());
                self.world.crash(member);
                self.world.changed.push(Changed::Pod(member));
                if let (Some(after), Some(uid)) = (restart_after_ms, uid) {
                    self.push(now + after, Ev::World(Later::Restart { member, uid }));
                }
                None
            }
            Fault::HangProcess { for_ms } => {
                self.world.members[index].hung_until = window(for_ms);
                self.push(window(for_ms), Ev::Thaw(member));
                Some(window(for_ms))
            }
            Fault::DeletePod => {
                self.world.delete_pod(member, now, false);
                None
            }
            Fault::Partition { for_ms } => {
                self.world.members[index].partitioned_until = window(for_ms);
                Some(window(for_ms))
            }
            Fault::Isolate { for_ms } => {
                self.world.members[index].isolated_until = window(for_ms);
                Some(window(for_ms))
            }
            Fault::ReplicationStall { for_ms } => {
                self.world.members[index].stalled_until = window(for_ms);
                Some(window(for_ms))
            }
            Fault::ReplicationBreak { for_ms } => {
                self.world.members[index].broken_until = window(for_ms);
                Some(window(for_ms))
            }
            Fault::DiskFull { for_ms } => {
                self.world.members[index].disk_full_until = window(for_ms);
                Some(window(for_ms))
            }
            Fault::SlowStart { start_ms } => {
                self.world.members[index].slow_start_ms = Some(start_ms);
                None
            }
            Fault::AgentFlap { period_ms, for_ms } => {
                self.world.members[index].flapping = Some((now, period_ms, window(for_ms)));
                Some(window(for_ms))
            }
            Fault::NodeLoss { .. } | Fault::OperatorCrash { .. } | Fault::ApiErrors { .. } => None,
        }
    }

    fn action(&mut self, action: &UserAction) -> Result<(), RunError> {
        let now = self.now;
        let spec = &mut self.operator.spec;
        match action {
            UserAction::Switchover { to } => {
                spec.switchover = Some(SwitchoverRequest {
                    token: format!("switchover-{now}"),
                    to: to.map(MemberId),
                });
            }
            UserAction::ConfigChange { hash } => {
                self.config_hash = hash.unwrap_or(self.config_hash.wrapping_add(1));
                self.world.config_hash = self.config_hash;
                spec.config_hash = tandem_engine::ConfigHash(self.config_hash);
            }
            UserAction::Stop => spec.stopped = true,
            UserAction::Start => spec.stopped = false,
            UserAction::Reexamine => spec.reexamine = format!("reexamine-{now}"),
            UserAction::PauseFailover => spec.auto_failover = false,
            UserAction::ResumeFailover => spec.auto_failover = true,
        }
        let input = Input::Spec(self.operator.spec.clone());
        self.mark(action.name().to_string(), None, MarkKind::Action);
        if self.operator.up {
            let incarnation = self.operator.incarnation;
            self.push(
                now + self.world.config.api_latency_ms,
                Ev::Deliver { incarnation, input },
            );
        }
        Ok(())
    }

    // --- the picture and the verdict ----------------------------------------------------------------

    fn sample(&mut self) {
        let cluster = self
            .operator
            .up
            .then(|| self.operator.driver.engine().state().cluster());
        let engine_state = self.operator.driver.engine().state();
        let mut members = [None; 2];
        for (member, slot) in members
            .iter_mut()
            .enumerate()
            .take(self.world.members.len())
        {
            let id = member as u8;
            *slot = Some(MemberSample {
                role: self.world.members[member].role,
                health: engine_state.health(MemberId(id), Timestamp(self.now)),
                accepting_writes: self.world.accepting_writes(id, self.now),
            });
        }
        // Most events change nothing drawn: compare before building a sample.
        if self.last_sample == Some((cluster, members)) {
            return;
        }
        self.last_sample = Some((cluster, members));
        let state = cluster.map_or_else(|| "operator down".to_string(), |state| state.to_string());
        let members = members.into_iter().flatten().collect();
        self.timeline.samples.push(Sample {
            at_ms: self.now,
            state,
            members,
        });
    }

    /// How many acknowledged writes the best surviving complete copy lacks (all of them when
    /// there is none): a copy on a node gone for good, or released, or still being copied does
    /// not count.
    fn best_copy_lacks(&self) -> u64 {
        let world = &self.world;
        self.surviving_complete_copies()
            .map(|volume| world.history.lost_writes(Some(volume.data)))
            .min()
            .unwrap_or_else(|| world.history.acknowledged_writes())
    }

    /// The complete copies that survive: their PV exists on a node not gone for good.
    fn surviving_complete_copies(&self) -> impl Iterator<Item = &crate::world::Volume> {
        let world = &self.world;
        world.volumes.iter().filter(|volume| {
            volume.exists && volume.copy_complete && !world.nodes[volume.node].gone_for_good
        })
    }

    fn complete_copy_survives(&self) -> bool {
        self.surviving_complete_copies().next().is_some()
    }

    fn final_data(&self) -> Option<Position> {
        let designated = self.operator.driver.engine().state().active().map(|m| m.0);
        let holder = self.world.active().or(designated)?;
        // A copy on a node gone for good holds nothing any more.
        self.world
            .survives(holder)
            .then(|| self.world.data_of(holder))
            .flatten()
    }

    fn finish(mut self, seed: u64, started: Instant) -> RunReport {
        let end = self.scenario.duration_ms;
        let final_state = self.operator.driver.engine().state().cluster();
        let lost_writes = self.world.history.lost_writes(self.final_data());
        if self.failure.is_none() {
            self.now = end;
            self.judge(final_state, lost_writes);
        }
        let recovered_after_ms = self
            .reached_final_state_at()
            .map(|at| at.saturating_sub(self.last_fault_end));
        self.hash = fnv(self.hash, format!("{final_state} {lost_writes}").as_bytes());
        // Only a failure shows them: a passing run does not format its last inputs.
        let last_steps = if self.failure.is_some() {
            merge_steps(self.last_steps, self.recent_inputs)
        } else {
            Vec::new()
        };
        RunReport {
            name: self.scenario.name.clone(),
            topology: self.scenario.topology,
            seed,
            failure: self.failure,
            last_steps,
            transitions: self.operator.driver.engine().state().transitions(),
            visited: self.visited.iter().map(|(_, state)| *state).collect(),
            final_state,
            recovered_after_ms,
            simulated_ms: end,
            wall: started.elapsed(),
            acknowledged_writes: self.world.history.acknowledged_writes(),
            lost_writes,
            destroyed_writes: self.destroyed_writes,
            trace_hash: self.hash,
            records: self.records,
            streams: (0..=self.operator.lost_logs)
                .map(|lost| stream_after_lost_log(&self.operator.stream, lost))
                .collect(),
            trace: self.trace,
            timeline: self.timeline,
        }
    }

    /// When the run last entered the final state it expects (`Normal` unless the scenario says),
    /// staying in it since.
    fn reached_final_state_at(&self) -> Option<Millis> {
        let wanted = self
            .scenario
            .expect
            .final_state
            .unwrap_or(ClusterStateName::of_kind(StateKind::Normal));
        self.visited
            .iter()
            .rev()
            .take_while(|(_, state)| wanted.matches(*state))
            .last()
            .map(|(at, _)| *at)
    }

    /// A cluster that has been `Normal` for [`ROUTING_SETTLE_MS`] at the end routes clients to
    /// its active: the active's pod, and no other, carries the active label.
    fn misrouted(&self, final_state: tandem_engine::ClusterState) -> Option<String> {
        let state = self.operator.driver.engine().state();
        let settled = self.now.saturating_sub(state.since().0) >= ROUTING_SETTLE_MS;
        if final_state != tandem_engine::ClusterState::Normal || !self.operator.up || !settled {
            return None;
        }
        let wanted: Vec<u8> = state.active().map(|member| member.0).into_iter().collect();
        let labelled = self.world.labelled_active();
        (labelled != wanted).then(|| {
            format!(
                "Normal since {} ms with active {wanted:?}, but the pods of {labelled:?} carry the \
                 active label",
                state.since().0
            )
        })
    }

    fn judge(&mut self, final_state: tandem_engine::ClusterState, lost_writes: u64) {
        let destroyed = self.destroyed_writes > 0 || self.no_copy_left || self.unknowable;
        if self.options.intervention_after_destroyed_writes && destroyed {
            let kind = final_state.kind();
            if !matches!(
                kind,
                StateKind::ManualInterventionRequired | StateKind::Failed
            ) {
                let detail = format!(
                    "the cluster ends in {final_state}, not ManualInterventionRequired or Failed, \
                     although a node lost for good took the only copy of {} acknowledged writes \
                     (no complete copy left: {})",
                    self.destroyed_writes, self.no_copy_left
                );
                self.fail("expect.finalState", detail);
            }
            return;
        }
        // Without its log, the engine waits a bounded time for members it has not heard from
        // (a member cut off longer may hold the newest data), then a person decides: explore
        // cannot tell that apart from a stuck cluster, and accepts it.
        let gave_up_without_log = self.operator.lost_logs > 0
            && final_state == tandem_engine::ClusterState::ManualInterventionRequired
            && self.operator.driver.engine().state().previous()
                == Some(tandem_engine::ClusterState::Reexamine);
        if self.options.intervention_after_destroyed_writes && gave_up_without_log {
            return;
        }
        let expect = &self.scenario.expect;
        if lost_writes > expect.max_lost_writes {
            let detail = format!(
                "{lost_writes} acknowledged writes are missing from the final active (at most {})",
                expect.max_lost_writes
            );
            self.fail("no lost writes", detail);
            return;
        }
        if let Some(wanted) = &expect.final_state
            && !wanted.matches(final_state)
        {
            self.fail(
                "expect.finalState",
                format!("the cluster ends in {final_state}, not {wanted}"),
            );
            return;
        }
        if let Some(detail) = self.misrouted(final_state) {
            self.fail("clients reach the active", detail);
            return;
        }
        let visited: Vec<ClusterState> = self.visited.iter().map(|(_, state)| *state).collect();
        let mut remaining = expect.visits.iter().peekable();
        for state in &visited {
            if remaining
                .peek()
                .is_some_and(|wanted| wanted.matches(*state))
            {
                remaining.next();
            }
        }
        if let Some(missing) = remaining.next() {
            let visited: Vec<String> = visited.iter().map(ToString::to_string).collect();
            self.fail(
                "expect.visits",
                format!(
                    "{missing} was not visited in order; visited: {}",
                    visited.join(", ")
                ),
            );
            return;
        }
        for never in &expect.never {
            if let Some(state) = visited.iter().find(|state| never.matches(**state)) {
                self.fail("expect.never", format!("{state} was entered"));
                return;
            }
        }
        if let Some(within) = expect.recovered_within_ms {
            let reached = self.reached_final_state_at().unwrap_or(0);
            let took = reached.saturating_sub(self.last_fault_end);
            if took > within {
                self.fail(
                    "expect.recoveredWithin",
                    format!(
                        "recovered {} ms after the last fault ended, more than {within} ms",
                        took
                    ),
                );
            }
        }
    }
}
