//! A bounded exhaustive check on the simulator's world: every sequence of up to [`DEPTH`]
//! entries drawn from a fixed alphabet of the scenario language's faults and user actions, one
//! polling interval apart, from three starting points of a master-slave pair under strict `sync`
//! replication, is run as a scenario and must keep every safety invariant.
//!
//! Each sequence is a [`Scenario`] like any other: the world of `tandem-sim`, the one driver on a
//! real event log, the faults as the language defines them, and the checks of every run after
//! every step (no split brain, fence before promote and the engine's own checker, no
//! destruction of the newest copy, one address for the active, a stopped cluster runs no pod,
//! and at the end no lost acknowledged writes and clients routed to the active). There is no
//! model of the world here and no vocabulary of its own: what the world does to a crashed
//! process, a lost node or a restarted operator is what every scenario meets.
//!
//! The alphabet ([`alphabet`]) is each member's process crash, without a restart and with one
//! 5 s later, its freeze, the deletion of its pod, its partition from the operator, its isolation
//! (from replication too), a reboot of its node and the loss of the node for good with its
//! volume; an operator crash with and without its log; Kubernetes API errors; a switchover; and
//! an interval with no entry, so that sequences also differ in when their entries come. The
//! outages last 40 s: longer than `unreachableTimeout`, so that they start a failover, and
//! shorter than `nodeLostTimeout`, so that a node that comes back keeps its data. Client writes
//! flow all along, as in every run. The replication faults, the full disk, slow starts, agent
//! flaps and the other user actions are left to explore and the property tests: each letter
//! multiplies the search by the size of the alphabet, and these fit the time of a test run.
//!
//! The entries come one polling interval apart, so that every member is polled between two of
//! them and the engine decides on each one before the next comes. The starting points
//! ([`from_normal`], [`from_a_partitioned_active`], [`from_a_standby_rebuild`]): a pair in
//! `Normal`; the same pair with its active partitioned 20 s before the first entry, its agent's
//! lease running out 1.5 s after it and the failover starting before the second; and the
//! standby's pod deleted, its copy from the active in progress from before the first entry to
//! after the third. The starting points are not symmetric (member 0 is the active), so no
//! sequence is skipped as the mirror image of another.
//!
//! After the last entry, a run goes on for [`QUIET_MS`]: the longest chain of decisions a
//! sequence leads to (an outage, `nodeLostTimeout`, a copy that failed unseen waited out by
//! `standbyStartTimeout`, a copy) fits in it, and so does the minute after which routing is
//! judged. Safety is the property: any failure but the scenario's expectations fails the test,
//! and so does a cluster serving again (`Normal` at the end) after the world destroyed
//! acknowledged writes, which explore's judgement says only a person may accept. Whether the
//! cluster recovers is explore's and the property tests' to judge, after a quiet phase of half
//! an hour or more, and so is the timer table, which bears on when the engine decides, not on
//! what. A sequence that failed is not extended, and one that ends with an interval with no
//! entry is not run: it is its prefix.
//!
//! A failure prints the sequence as a scenario file that `tandem-sim run FILE` fails on the same
//! way. `TANDEM_EXHAUSTIVE_DEPTH` asks for another depth. The default depth meets no finding;
//! depth 4 meets findings the engine does not pass yet, on file with the property tests' in
//! `tests/known-failures/`, and its sequences that hit them are set aside ([`KNOWN_CASES`]).
//! A last test breaks the operator on purpose (it copies the standby from an active that stopped
//! answering) and the search finds it.

use std::cell::Cell;
use std::time::{Duration, Instant};
use tandem_engine::{ClusterState, Health, Replication, Role, Spec, Topology};
use tandem_sim::explore;
use tandem_sim::run::{Failure, RunOptions, RunReport, Sabotage, run};
use tandem_sim::scenario::{
    Fault, Millis, Scenario, Target, TimelineEntry, UserAction, What, WorldConfig, format_duration,
    parse, to_yaml,
};
use tandem_sled::EventLog;

/// The longest sequence explored from each starting point in every test run: 9,261 sequences
/// each, about a minute of one core for the three. `TANDEM_EXHAUSTIVE_DEPTH` asks for another
/// depth; each level multiplies the time by the size of the alphabet (depth 4: about 25 minutes).
const DEPTH: usize = 3;

fn depth() -> usize {
    std::env::var("TANDEM_EXHAUSTIVE_DEPTH")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEPTH)
}

/// The time between two entries of a sequence: the polling interval of [`spec`].
const SPACING_MS: Millis = 10_000;

/// How long the alphabet's outages last: longer than `unreachableTimeout`, shorter than
/// `nodeLostTimeout`.
const OUTAGE_MS: Millis = 40_000;

/// How soon a crashed process restarts, and a crashed operator: within the agents' lease.
const BRIEF_MS: Millis = 5_000;

/// How long a run goes on after its sequence's last entry.
const QUIET_MS: Millis = 600_000;

/// The configuration: the CRD's defaults (strict `sync`, polls every 10 s, a member unreachable
/// after 30 s, a lease of 22 s), with explore's timeouts: a node lost after 2 minutes and a
/// standby's start given 5.
fn spec() -> Spec {
    let mut spec = Spec::defaults(Topology::MasterSlave);
    spec.replication = Replication::Sync;
    spec.node_lost_timeout_s = 120;
    spec.standby_start_timeout_s = 300;
    spec
}

// --- the alphabet --------------------------------------------------------------------------------

/// A letter: the fault or action of one timeline entry, or none (an interval with no entry).
struct Letter {
    /// As a scenario file says it.
    label: String,
    what: Option<What>,
}

fn wait() -> Letter {
    Letter {
        label: "nothing".to_string(),
        what: None,
    }
}

fn fault(fault: Fault, target: Option<Target>) -> Letter {
    let mut label = fault.name().to_string();
    if let Some(target) = target {
        label.push_str(&format!(" {target}"));
    }
    let duration = format_duration;
    let parameters = match &fault {
        Fault::CrashProcess {
            restart_after_ms: Some(ms),
        } => format!(" restartAfter {}", duration(*ms)),
        Fault::CrashProcess {
            restart_after_ms: None,
        } => " restartAfter never".to_string(),
        Fault::NodeLoss { for_ms: None } => " for good".to_string(),
        Fault::NodeLoss { for_ms: Some(ms) }
        | Fault::HangProcess { for_ms: ms }
        | Fault::Partition { for_ms: ms }
        | Fault::Isolate { for_ms: ms }
        | Fault::ReplicationStall { for_ms: ms }
        | Fault::ReplicationBreak { for_ms: ms }
        | Fault::DiskFull { for_ms: ms } => format!(" for {}", duration(*ms)),
        Fault::OperatorCrash {
            restart_after_ms,
            lose_log,
        } => format!(
            " restartAfter {}{}",
            duration(*restart_after_ms),
            if *lose_log { " loseLog" } else { "" }
        ),
        Fault::ApiErrors { rate, for_ms } => format!(" rate {rate} for {}", duration(*for_ms)),
        Fault::SlowStart { start_ms } => format!(" seconds {}", duration(*start_ms)),
        Fault::AgentFlap { period_ms, for_ms } => {
            format!(" period {} for {}", duration(*period_ms), duration(*for_ms))
        }
        Fault::DeletePod => String::new(),
    };
    label.push_str(&parameters);
    Letter {
        label,
        what: Some(What::Fault(fault, target)),
    }
}

/// The alphabet: an interval with no entry, then each member's faults (the node faults hit the
/// node the member starts on), then the operator's, the API's and a switchover.
fn alphabet() -> Vec<Letter> {
    let mut letters = vec![wait()];
    for member in 0..2_u8 {
        let target = Some(Target::Member(member));
        let node = Some(Target::Node(u32::from(member)));
        letters.extend([
            fault(
                Fault::CrashProcess {
                    restart_after_ms: None,
                },
                target,
            ),
            fault(
                Fault::CrashProcess {
                    restart_after_ms: Some(BRIEF_MS),
                },
                target,
            ),
            fault(Fault::HangProcess { for_ms: OUTAGE_MS }, target),
            fault(Fault::DeletePod, target),
            fault(Fault::Partition { for_ms: OUTAGE_MS }, target),
            fault(Fault::Isolate { for_ms: OUTAGE_MS }, target),
            fault(
                Fault::NodeLoss {
                    for_ms: Some(OUTAGE_MS),
                },
                node,
            ),
            fault(Fault::NodeLoss { for_ms: None }, node),
        ]);
    }
    letters.extend([
        fault(
            Fault::OperatorCrash {
                restart_after_ms: BRIEF_MS,
                lose_log: false,
            },
            None,
        ),
        fault(
            Fault::OperatorCrash {
                restart_after_ms: BRIEF_MS,
                lose_log: true,
            },
            None,
        ),
        fault(
            Fault::ApiErrors {
                rate: 0.5,
                for_ms: OUTAGE_MS,
            },
            None,
        ),
        Letter {
            label: "switchover".to_string(),
            what: Some(What::Action(UserAction::Switchover { to: None })),
        },
    ]);
    letters
}

// --- the starting points -------------------------------------------------------------------------

/// Where the sequences start: a world and the entries that lead there before the first entry of
/// a sequence.
struct Start {
    name: &'static str,
    world: WorldConfig,
    prefix: Vec<TimelineEntry>,
    first_entry_ms: Millis,
}

fn entry(at_ms: Millis, what: What) -> TimelineEntry {
    TimelineEntry {
        at_ms,
        what,
        line: 0,
    }
}

/// The pair is `Normal` 51 s after its creation; the first entry comes half a second after the
/// active's third poll in `Normal` (polls of member 0 at 1 s past each 10 s).
fn from_normal() -> Start {
    Start {
        name: "Normal",
        world: WorldConfig::default(),
        prefix: Vec::new(),
        first_entry_ms: 81_500,
    }
}

/// The active is partitioned from the operator half a second after a poll, 20 s before the
/// first entry, for a minute: its agent fences its database 1.5 s after the first entry (22 s
/// after its last poll), the operator counts it unreachable half a second before the second
/// (30 s after its last answer), and it is back 40 s after the first.
fn from_a_partitioned_active() -> Start {
    Start {
        name: "a partitioned active",
        world: WorldConfig::default(),
        prefix: vec![entry(
            61_500,
            What::Fault(
                Fault::Partition {
                    for_ms: 3 * OUTAGE_MS / 2,
                },
                Some(Target::Member(0)),
            ),
        )],
        first_entry_ms: 81_500,
    }
}

/// Copies take a minute here (the first one too, so the pair is `Normal` a minute later); the
/// standby's pod is deleted 20 s before the first entry, its new pod starts with no role and
/// the engine copies it afresh from the active, from 10 s before the first entry to 30 s after
/// the third.
fn from_a_standby_rebuild() -> Start {
    Start {
        name: "a standby rebuild",
        // Agents that report no history: the standby, its pod deleted, is copied afresh.
        world: WorldConfig {
            rebuild_ms: 60_000,
            agents_report_history: false,
            ..WorldConfig::default()
        },
        prefix: vec![entry(
            121_500,
            What::Fault(Fault::DeletePod, Some(Target::Member(1))),
        )],
        first_entry_ms: 141_500,
    }
}

fn starting_points() -> [Start; 3] {
    [
        from_normal(),
        from_a_partitioned_active(),
        from_a_standby_rebuild(),
    ]
}

/// The scenario of a sequence of letters (indices in `letters`) from `start`.
fn scenario(start: &Start, letters: &[Letter], sequence: &[usize]) -> Scenario {
    let mut timeline = start.prefix.clone();
    let mut at_ms = start.first_entry_ms;
    for letter in sequence {
        if let Some(what) = &letters[*letter].what {
            timeline.push(entry(at_ms, what.clone()));
        }
        at_ms += SPACING_MS;
    }
    let last_ms = at_ms.saturating_sub(SPACING_MS).max(start.first_entry_ms);
    let labels: Vec<&str> = sequence
        .iter()
        .map(|letter| letters[*letter].label.as_str())
        .collect();
    Scenario {
        name: "exhaustive".to_string(),
        description: format!(
            "Found by simulator/tests/exhaustive.rs: from {}, every {} s: {}.",
            start.name,
            SPACING_MS / 1000,
            labels.join(", ")
        ),
        topology: Topology::MasterSlave,
        seed: 1,
        duration_ms: last_ms + QUIET_MS,
        cluster: spec(),
        world: start.world.clone(),
        timeline,
        expect: Default::default(),
    }
}

// --- running and judging -------------------------------------------------------------------------

thread_local! {
    /// A log per test: tests run on threads of their own, and threads sharing one sled database
    /// contend in it.
    static LOG: (EventLog, tempfile::TempDir) =
        tandem_sim::run::temporary_log().expect("a log");
    static RUNS: Cell<u64> = const { Cell::new(0) };
}

/// Runs `scenario` with explore's judgement of the end (a node lost for good may take the only
/// copy of acknowledged writes, and then only a person may accept their loss), and removes its
/// streams: runs are of no further interest once judged.
fn run_once(scenario: &Scenario, sabotage: Sabotage) -> RunReport {
    let number = RUNS.with(|runs| {
        runs.set(runs.get() + 1);
        runs.get()
    });
    LOG.with(|(log, _)| {
        let options = RunOptions {
            sabotage,
            stream: Some(format!("{}-{number}", scenario.name)),
            intervention_after_destroyed_writes: true,
            skip_record_hash: true,
            ..RunOptions::default()
        };
        let report =
            run(scenario, &options, log).unwrap_or_else(|error| panic!("the run stopped: {error}"));
        report
            .remove_streams(log)
            .expect("removing a run's streams");
        report
    })
}

/// The failure of a run that broke safety: an invariant, or a cluster that serves again although
/// the world destroyed acknowledged writes. A scenario here expects nothing more, so the only
/// expectation a run can fail is that one's: it ends neither in `ManualInterventionRequired` nor
/// in `Failed`, which is a failure to recover unless the cluster ends serving.
fn unsafe_failure(report: &RunReport) -> Option<&Failure> {
    let failure = report.failure.as_ref()?;
    if !failure.what.starts_with("expect.") {
        return Some(failure);
    }
    assert_eq!(failure.what, "expect.finalState", "{}", failure.detail);
    (report.final_state == ClusterState::Normal).then_some(failure)
}

/// A sequence that broke safety.
struct Found {
    sequence: Vec<String>,
    failure: Failure,
    last_steps: Vec<String>,
    /// The scenario, as `tandem-sim run FILE` fails on it.
    yaml: String,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}]: {}: {} (at {} ms)\nlast steps:\n{}\n\nthe scenario, which `tandem-sim run FILE` \
             fails on the same way:\n{}",
            self.sequence.join(", "),
            self.failure.what,
            self.failure.detail,
            self.failure.at_ms,
            self.last_steps.join("\n"),
            self.yaml
        )
    }
}

/// What a search did.
struct Search {
    /// Runs per sequence length (the starting point alone is length 0).
    runs: Vec<usize>,
    /// The sequences that broke safety, in the order met (depth first).
    found: Vec<Found>,
    /// The sequences that broke safety the way a known case does ([`KNOWN_CASES`]).
    known: Vec<&'static KnownCase>,
    wall: Duration,
}

/// Runs every sequence of up to `depth` letters from `start`, but for the extensions of one that
/// broke safety and those that end with an interval with no entry.
fn search(start: &Start, sabotage: Sabotage, depth: usize) -> Search {
    let letters = alphabet();
    let mut search = Search {
        runs: vec![0; depth + 1],
        found: Vec::new(),
        known: Vec::new(),
        wall: Duration::ZERO,
    };
    let started = Instant::now();
    let mut sequence = Vec::new();
    if try_sequence(start, &letters, sabotage, &sequence, &mut search) {
        extend(start, &letters, sabotage, depth, &mut sequence, &mut search);
    }
    search.wall = started.elapsed();
    search
}

/// Depth first: each extension of `sequence` by one letter, then its own extensions.
fn extend(
    start: &Start,
    letters: &[Letter],
    sabotage: Sabotage,
    depth: usize,
    sequence: &mut Vec<usize>,
    search: &mut Search,
) {
    if sequence.len() == depth {
        return;
    }
    for letter in 0..letters.len() {
        sequence.push(letter);
        // A sequence that ends with an interval with no entry is its prefix, which passed.
        let safe = letters[letter].what.is_none()
            || try_sequence(start, letters, sabotage, sequence, search);
        if safe {
            extend(start, letters, sabotage, depth, sequence, search);
        }
        sequence.pop();
    }
}

/// Runs one sequence; returns whether it kept safety.
fn try_sequence(
    start: &Start,
    letters: &[Letter],
    sabotage: Sabotage,
    sequence: &[usize],
    search: &mut Search,
) -> bool {
    let scenario = scenario(start, letters, sequence);
    let report = run_once(&scenario, sabotage);
    search.runs[sequence.len()] += 1;
    let Some(failure) = unsafe_failure(&report) else {
        return true;
    };
    let labels: Vec<String> = sequence
        .iter()
        .map(|letter| letters[*letter].label.clone())
        .collect();
    if sabotage == Sabotage::None
        && let Some(known) = KNOWN_CASES.iter().find(|known| {
            known.start == start.name && known.sequence == labels && known.what == failure.what
        })
    {
        search.known.push(known);
        return false;
    }
    search.found.push(Found {
        sequence: labels,
        failure: failure.clone(),
        last_steps: report.last_steps.clone(),
        yaml: to_yaml(&explore::reproducible(&scenario, &report)),
    });
    false
}

/// Searches from `start` to the depth asked for, and fails on any sequence that broke safety,
/// the shortest first.
fn every_sequence_is_safe(start: Start) {
    let depth = depth();
    let mut search = search(&start, Sabotage::None, depth);
    let runs: usize = search.runs.iter().sum();
    println!(
        "from {}: {runs} sequences run to depth {depth} ({} of each length from 1) in {:.1} s",
        start.name,
        search.runs[1..]
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        search.wall.as_secs_f64(),
    );
    for known in &search.known {
        println!(
            "set aside, known failure {}: [{}]",
            known.finding,
            known.sequence.join(", ")
        );
    }
    search.found.sort_by_key(|found| found.sequence.len());
    let every: Vec<String> = search
        .found
        .iter()
        .map(|found| {
            format!(
                "[{}]: {}: {}",
                found.sequence.join(", "),
                found.failure.what,
                found.failure.detail
            )
        })
        .collect();
    let shown: Vec<String> = search
        .found
        .iter()
        .take(3)
        .map(ToString::to_string)
        .collect();
    assert!(
        search.found.is_empty(),
        "from {}, {} of {runs} sequences broke safety:\n{}\n\nthe shortest:\n\n{}",
        start.name,
        search.found.len(),
        every.join("\n"),
        shown.join("\n\n")
    );
}

// --- known failures ------------------------------------------------------------------------------

/// A sequence that breaks safety because of a finding the engine does not pass yet. Each finding
/// has a minimal scenario in `tests/known-failures/` (its description says what goes wrong),
/// which the property tests run with theirs (`properties.rs`, `KNOWN_FAILURES`). The search sets
/// these sequences aside, neither failing on them nor extending them, and
/// [`known_cases_still_fail`] checks that each still fails the way it is recorded; once the
/// engine passes a finding, that test fails: remove its cases here and its file and entry there.
/// They are the cases of depth 4; a deeper search meets others, which fail it, as they should.
struct KnownCase {
    /// The starting point's name.
    start: &'static str,
    /// The letters' labels.
    sequence: &'static [&'static str],
    /// The finding: its file's name in `tests/known-failures/`.
    finding: &'static str,
    /// The invariant it breaks.
    what: &'static str,
}

const STOP_AFTER_LOST_LOG: &str = "lost-writes-counted-on-a-member-lost-after-a-lost-log";

const KNOWN_CASES: &[KnownCase] = &[
    KnownCase {
        start: "Normal",
        sequence: &[
            "node-loss node-0 for 40s",
            "delete-pod member-0",
            "operator-crash restartAfter 5s loseLog",
            "node-loss node-1 for good",
        ],
        finding: STOP_AFTER_LOST_LOG,
        what: "no lost writes",
    },
    KnownCase {
        start: "Normal",
        sequence: &[
            "node-loss node-0 for 40s",
            "operator-crash restartAfter 5s loseLog",
            "delete-pod member-0",
            "node-loss node-1 for good",
        ],
        finding: STOP_AFTER_LOST_LOG,
        what: "no lost writes",
    },
    KnownCase {
        start: "a partitioned active",
        sequence: &[
            "operator-crash restartAfter 5s loseLog",
            "node-loss node-0 for 40s",
            "delete-pod member-0",
            "node-loss node-1 for good",
        ],
        finding: STOP_AFTER_LOST_LOG,
        what: "no lost writes",
    },
];

// --- the tests -----------------------------------------------------------------------------------

#[test]
fn every_short_sequence_from_normal_is_safe() {
    every_sequence_is_safe(from_normal());
}

#[test]
fn every_short_sequence_from_a_partitioned_active_is_safe() {
    every_sequence_is_safe(from_a_partitioned_active());
}

#[test]
fn every_short_sequence_from_a_standby_rebuild_is_safe() {
    every_sequence_is_safe(from_a_standby_rebuild());
}

/// The starting points are what they say at the first entry, and the partition and the copy
/// go on as said after it.
#[test]
fn the_starting_points_are_what_they_say() {
    let letters = alphabet();
    let at = |start: &Start, ms: Millis| {
        let mut scenario = scenario(start, &letters, &[]);
        scenario.duration_ms = ms;
        let report = run_once(&scenario, Sabotage::None);
        assert!(report.passed(), "{:?}", report.failure);
        let last = report.timeline.samples.last().expect("a sample");
        let members: Vec<(Role, Health)> = last
            .members
            .iter()
            .map(|member| (member.role, member.health))
            .collect();
        (report.final_state, members)
    };
    let [normal, partitioned, rebuild] = starting_points();
    let first = normal.first_entry_ms;
    assert_eq!(
        at(&normal, first),
        (
            ClusterState::Normal,
            vec![
                (Role::Active, Health::Healthy),
                (Role::Standby, Health::Healthy)
            ]
        )
    );
    // The active still holds its role at the first entry, unheard of; its agent has fenced it
    // by the second, when the operator counts it unreachable.
    let first = partitioned.first_entry_ms;
    assert_eq!(
        at(&partitioned, first),
        (
            ClusterState::Normal,
            vec![
                (Role::Active, Health::Unknown),
                (Role::Standby, Health::Healthy)
            ]
        )
    );
    let (state, members) = at(&partitioned, first + SPACING_MS);
    assert_ne!(state, ClusterState::Normal);
    assert_eq!(members[0].0, Role::None);
    // The copy is in progress from before the first entry to after the third.
    let first = rebuild.first_entry_ms;
    for ms in [first, first + 2 * SPACING_MS] {
        assert_eq!(
            at(&rebuild, ms),
            (
                ClusterState::StandbyPartiallyStarting,
                vec![
                    (Role::Active, Health::Degraded),
                    (Role::Standby, Health::CatchingUp)
                ]
            ),
            "at {ms} ms"
        );
    }
}

/// Every known case still fails the way it is recorded, and names a finding on file.
#[test]
fn known_cases_still_fail() {
    let letters = alphabet();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/known-failures");
    for known in KNOWN_CASES {
        let path = dir.join(format!("{}.yaml", known.finding));
        assert!(path.exists(), "{} is not a known failure", known.finding);
        let start = starting_points()
            .into_iter()
            .find(|start| start.name == known.start)
            .unwrap_or_else(|| panic!("no starting point {}", known.start));
        let sequence: Vec<usize> = known
            .sequence
            .iter()
            .map(|label| {
                letters
                    .iter()
                    .position(|letter| letter.label == *label)
                    .unwrap_or_else(|| panic!("no letter {label}"))
            })
            .collect();
        let report = run_once(&scenario(&start, &letters, &sequence), Sabotage::None);
        let failure = unsafe_failure(&report).unwrap_or_else(|| {
            panic!(
                "from {}, [{}] passes now: remove the known cases of {}",
                known.start,
                known.sequence.join(", "),
                known.finding
            )
        });
        assert_eq!(failure.what, known.what, "{}", failure.detail);
    }
}

/// Every sequence is a scenario a person could write: its file reads back the same.
#[test]
fn every_sequence_is_a_scenario_file() {
    let letters = alphabet();
    for start in starting_points() {
        for first in 0..letters.len() {
            for second in [0, letters.len() - 1 - first] {
                let scenario = scenario(&start, &letters, &[first, second, first]);
                let yaml = to_yaml(&scenario);
                let mut back = parse(std::path::Path::new("exhaustive.yaml"), &yaml)
                    .unwrap_or_else(|error| panic!("{error}\n{yaml}"));
                for (entry, written) in back.timeline.iter_mut().zip(&scenario.timeline) {
                    entry.line = written.line;
                }
                assert_eq!(back, scenario, "{yaml}");
            }
        }
    }
}

/// The search catches a broken operator: one that wipes the standby to copy it from the active
/// the moment a poll of the active fails (the copy may never finish, the active's node may be
/// gone for good). The shortest sequence that shows it is found within the default depth, and
/// its printed scenario fails the same way when run from its file.
#[test]
fn a_broken_operator_fails_the_search() {
    let start = from_normal();
    let sabotage = Sabotage::RebuildFromUnreachableActive;
    let found = (1..=DEPTH).find_map(|depth| {
        let mut search = search(&start, sabotage, depth);
        search.found.sort_by_key(|found| found.sequence.len());
        (!search.found.is_empty()).then(|| (depth, search.found.remove(0)))
    });
    let (depth, found) = found.expect("the broken operator went unnoticed");
    println!("the broken operator fails at depth {depth}: {found}");
    assert_eq!(
        found.failure.what, "no destruction of the newest copy",
        "{found}"
    );
    let scenario = parse(std::path::Path::new("found.yaml"), &found.yaml).expect("a scenario");
    let options = RunOptions {
        sabotage,
        ..RunOptions::default()
    };
    let report = LOG.with(|(log, _)| run(&scenario, &options, log).expect("a run"));
    let failure = report
        .failure
        .expect("the scenario fails when run from its file");
    assert_eq!(failure, found.failure);
    let honest = LOG.with(|(log, _)| run(&scenario, &RunOptions::default(), log).expect("a run"));
    assert!(honest.passed(), "{:?}", honest.failure);
}
