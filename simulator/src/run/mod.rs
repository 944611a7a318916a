//! Running a scenario: the event loop of the world and the operator process (here), the
//! operator in the world (`operator`), the timeline's faults and actions (`faults`), and the
//! judgement (`verdict`): the invariants after every step and the expectations at the end.

mod faults;
mod operator;
#[cfg(test)]
mod tests;
mod verdict;

use crate::data::Position;
use crate::scenario::{ClusterStateName, Fault, Millis, Scenario, Target, UserAction, What};
use crate::timeline::{Mark, MarkKind, MemberSample, Sample, Timeline};
use crate::world::{Changed, Later, NodeIndex, Service, World};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use tandem_driver::{AskTicket, Driver, DriverError, Listing, MemberListing, Observed};
use tandem_engine::{
    Action, ClusterState, Effect, EffectError, Executor, Input, MemberId, Outcome, Poll, Record,
    Role, Seq, Spec, StateKind, SwitchoverRequest, Timestamp, Topology,
};
use tandem_sled::{EventLog, LogConfig, LogError};

/// How many of the last steps a failure report shows.
pub const LAST_STEPS: usize = 24;

/// A poll that gets no answer times out after this long: within the deadline the spec's timing
/// rules count on (`POLL_DEADLINE_S`, the operator's status-call timeout).
const POLL_TIMEOUT_MS: Millis = 1_000;
const _: () = assert!(POLL_TIMEOUT_MS <= tandem_engine::config::POLL_DEADLINE_S as Millis * 1000);

/// How long a cluster is `Normal` before its labels must route clients to its active: enough
/// for a failed label patch to be retried.
const ROUTING_SETTLE_MS: Millis = 60_000;

/// Every run stops after this many events, whatever its duration: a bound on runaway loops. A
/// run that reaches it fails ("the run reaches its end"). The busiest day a scenario can
/// describe takes about 200,000.
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
    /// The most events the run may take before it fails: [`MAX_EVENTS`] when `None`.
    pub max_events: Option<u64>,
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
    /// What the run cost the database's users.
    pub costs: Costs,
}

/// What a run cost the database's users, measured on the world from the first time the
/// database took writes (and, for the last two, the first time the pair was whole: a standby
/// receiving the active's writes). Time while the user has the cluster stopped does not count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Costs {
    /// The time clients' writes were not acknowledged: no member accepted them, a full disk, or
    /// strict sync without a standby.
    pub write_outage_ms: Millis,
    /// The time with reduced redundancy (master-slave): no standby received the active's writes.
    pub degraded_ms: Millis,
    /// Full copies of a member's data started (rebuilds), not counting the copy that first made
    /// the pair whole.
    pub full_copies: u32,
    /// Rewinds started: a member's diverged suffix discarded, the rest of its data kept.
    pub rewinds: u32,
}

/// Measures [`Costs`] as time advances.
#[derive(Clone, Copy, Debug, Default)]
struct CostMeter {
    costs: Costs,
    /// The database took a write.
    wrote: bool,
    /// The copies and rewinds the world had started when the pair was first whole.
    copies_when_whole: Option<(u32, u32)>,
}

impl CostMeter {
    /// Counts the interval `span` in which clients got `service`.
    fn count(&mut self, service: Service, span: Millis, stopped: bool, topology: Topology) {
        self.wrote |= service.writes;
        if stopped {
            return;
        }
        if self.wrote && !service.writes {
            self.costs.write_outage_ms += span;
        }
        if topology == Topology::MasterSlave
            && self.copies_when_whole.is_some()
            && !service.redundant
        {
            self.costs.degraded_ms += span;
        }
    }

    /// Notes the copies and rewinds the world started, once the pair is whole.
    fn whole(&mut self, service: Service, started: (u32, u32)) {
        if service.redundant && self.copies_when_whole.is_none() {
            self.copies_when_whole = Some(started);
        }
    }

    /// The costs, with the copies and rewinds started since the pair was first whole.
    fn costs(&self, (copies, rewinds): (u32, u32)) -> Costs {
        let (whole_copies, whole_rewinds) = self.copies_when_whole.unwrap_or((copies, rewinds));
        Costs {
            full_copies: copies.saturating_sub(whole_copies),
            rewinds: rewinds.saturating_sub(whole_rewinds),
            ..self.costs
        }
    }
}

impl RunReport {
    /// Whether every invariant and expectation held.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// Removes the log streams the run wrote: a passing run is of no further interest, and a
    /// log that many runs share stays small so.
    pub fn remove_streams(&self, log: &EventLog) -> Result<(), tandem_sled::LogError> {
        for stream in &self.streams {
            log.remove_stream(stream)?;
        }
        Ok(())
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

/// What the run's queue holds: something that happens in the world or to the operator at a
/// simulated time.
#[derive(Clone, Debug)]
enum Scheduled {
    World(Later),
    Fire(usize),
    Boundary,
    Thaw(MemberId),
    Poll(MemberId),
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
        asked_at: Millis,
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
    queue: BTreeMap<(Millis, u64), Box<Scheduled>>,
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
    /// What the run costs clients.
    meter: CostMeter,
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

/// The ordinals of `members`, as failure details list them (`[0, 1]`).
fn ordinals(members: &[MemberId]) -> Vec<u8> {
    members.iter().map(|member| member.0).collect()
}

/// The stream an operator writes to after losing its log `lost` times (the first stream when
/// `lost` is 0).
fn stream_after_lost_log(first: &str, lost: u32) -> String {
    match lost {
        0 => first.to_string(),
        lost => format!("{first}-lost{lost}"),
    }
}

/// The configuration of the simulator's logs: virtual time has no power loss to survive, so
/// appends skip the device flush (`LogConfig::durable_appends`); everything else is what the
/// operator runs with.
pub fn log_config() -> LogConfig {
    LogConfig {
        durable_appends: false,
        ..LogConfig::default()
    }
}

/// A simulator log ([`log_config`]) in a new temporary directory, removed with the returned
/// guard.
pub fn temporary_log() -> Result<(EventLog, tempfile::TempDir), LogError> {
    let directory = tempfile::tempdir().map_err(|source| LogError::Io {
        operation: "create a temporary directory",
        path: std::env::temp_dir(),
        source,
    })?;
    let log = EventLog::open(directory.path().join("log"), log_config())?;
    Ok((log, directory))
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
    let world = World::new(scenario.world.clone(), scenario.topology, spec.replication);
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
        meter: CostMeter::default(),
        unknowable: false,
    };
    sim.world.set_config_hash(sim.config_hash);
    sim.start()?;
    sim.run_loop()?;
    Ok(sim.finish(seed, started))
}

impl Sim<'_> {
    fn push(&mut self, at: Millis, event: Scheduled) {
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
                .insert((entry.at_ms, self.queued), Box::new(Scheduled::Fire(index)));
        }
        for node in self.world.nodes() {
            let (name, status) = self.world.node_observation(node);
            self.operator_input(Input::Node { node: name, status })?;
        }
        self.operator_input(Input::Spec(self.operator.spec.clone()))?;
        self.start_polls();
        Ok(())
    }

    fn run_loop(&mut self) -> Result<(), RunError> {
        let end = self.scenario.duration_ms;
        let mut events = 0u64;
        while let Some((&(at, _), _)) = self.queue.first_key_value() {
            if at > end || self.failure.is_some() {
                break;
            }
            let max_events = self.options.max_events.unwrap_or(MAX_EVENTS);
            if events >= max_events {
                // A run that did not reach its end was not judged: it fails, rather than
                // pass on what it did not run.
                self.fail(
                    "the run reaches its end",
                    format!(
                        "{max_events} events at {}, before the end at {}: a loop that keeps the world busy",
                        crate::scenario::format_duration(self.now),
                        crate::scenario::format_duration(end)
                    ),
                );
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
            let service = self.world.service(self.settled);
            self.meter.whole(service, self.world.started_copies());
            self.meter.count(
                service,
                at - self.settled,
                self.operator.spec.stopped,
                self.scenario.topology,
            );
            if let Some(members) = self.world.settle(self.settled, at) {
                let names: Vec<String> = members.iter().map(ToString::to_string).collect();
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

    fn handle(&mut self, event: Scheduled) -> Result<(), RunError> {
        match event {
            Scheduled::World(later) => self.world.carry_out(later, self.now),
            Scheduled::Fire(index) => self.fire(index)?,
            Scheduled::Boundary => {}
            Scheduled::Thaw(member) => self.world.thaw(member, self.now),
            Scheduled::Poll(member) => self.poll(member),
            Scheduled::Deliver { incarnation, input } => {
                if self.operator.up && incarnation == self.operator.incarnation {
                    self.operator_input(input)?;
                }
            }
            Scheduled::Answer {
                incarnation,
                ticket,
                poll,
                asked_at,
            } => {
                if self.operator.up && incarnation == self.operator.incarnation {
                    let member = ticket.member();
                    self.answer(ticket, poll)?;
                    self.schedule_poll(member, asked_at);
                }
            }
            Scheduled::Finished {
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
            Scheduled::Wake { incarnation } => {
                if self.operator.up && incarnation == self.operator.incarnation {
                    self.operator.wake_at = None;
                    self.operator_input(Input::Timer)?;
                }
            }
            Scheduled::Effect {
                incarnation,
                effect,
            } => self.carry_out(incarnation, effect),
            Scheduled::OperatorRestart { lose_log } => self.operator_restart(lose_log)?,
        }
        Ok(())
    }

    /// Queues what the world scheduled, and tells the operator's watches what changed.
    fn drain_world(&mut self) {
        for (at, later) in self.world.take_later() {
            self.push(at, Scheduled::World(later));
        }
        let changed = self.world.take_changes();
        if !self.operator.up {
            return;
        }
        let latency = self.scenario.world.api_latency_ms;
        for change in changed {
            let input = match change {
                Changed::Pod(member) => Input::Pod {
                    member,
                    pod: self.world.pod_observation(member),
                },
                Changed::Volume(member) => Input::Volume {
                    member,
                    volume: self.world.volume_observation(member),
                },
                Changed::Node(node) => {
                    let (node, status) = self.world.node_observation(node);
                    Input::Node { node, status }
                }
            };
            let incarnation = self.operator.incarnation;
            self.push(
                self.now + latency,
                Scheduled::Deliver { incarnation, input },
            );
        }
    }

    // --- the operator ---------------------------------------------------------------------------

    // --- the timeline ----------------------------------------------------------------------------

    // --- the picture and the verdict ----------------------------------------------------------------

    fn sample(&mut self) {
        let cluster = self
            .operator
            .up
            .then(|| self.operator.driver.engine().state().cluster());
        let engine_state = self.operator.driver.engine().state();
        let mut members = [None; 2];
        for (slot, member) in members.iter_mut().zip(self.world.members()) {
            *slot = Some(MemberSample {
                role: self.world.role(member),
                health: engine_state.health(member, Timestamp(self.now)),
                accepting_writes: self.world.accepting_writes(member, self.now),
                copying: self.world.copying(member),
                rewinding: self.world.rewinding(member),
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
}
