//! `tandem-sim explore`: swarm testing. Each seed draws a fault mix and its timing, then a quiet
//! phase in which the cluster must return to `Normal` (liveness). A failing seed is shrunk to a
//! minimal timeline and written out as a scenario file that reproduces it.

use crate::catalog::Progress;
use crate::data::WRITE_BYTES;
use crate::run::{Failure, Rng, RunError, RunOptions, RunReport, Sabotage, run};
use crate::scenario::{
    ClusterStateName, Expect, Fault, Millis, Scenario, Target, TimelineEntry, UserAction, What,
    WorldConfig, format_duration, to_yaml,
};
use anyhow::{Context, bail};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;
use tandem_engine::{Replication, Spec, StateKind, Topology};
use tandem_sled::EventLog;

/// The share of a seed's duration in which faults are injected; the rest is the quiet phase.
const FAULT_PHASE_PERCENT: u64 = 50;

/// The quiet phase also leaves this long, plus two copies, for a correct recovery: detecting a
/// lost node, waiting out a copy that failed unseen, and copying again take that long when
/// copies take minutes.
const RECOVERY_MS: Millis = 20 * 60_000;

/// Shrinking stops after this many candidate runs.
const MAX_SHRINK_RUNS: usize = 400;

/// What to explore.
#[derive(Clone, Debug)]
pub struct ExploreOptions {
    /// The topology.
    pub topology: Topology,
    /// The seeds, both ends included.
    pub seeds: RangeInclusive<u64>,
    /// Simulated time per seed.
    pub duration_ms: Millis,
    /// Where failing scenarios are written.
    pub out: PathBuf,
    /// A deliberate defect (tests only).
    pub sabotage: Sabotage,
}

impl ExploreOptions {
    /// Parses the command line's `--seeds A..B` (B excluded) or `A..=B` (B included, so that
    /// the largest seed can be run too) and `--duration`.
    pub fn parse(
        topology: Topology,
        seeds: &str,
        duration: &str,
        out: PathBuf,
    ) -> anyhow::Result<ExploreOptions> {
        let (from, to) = seeds
            .split_once("..")
            .with_context(|| format!("--seeds {seeds:?}: expected A..B or A..=B"))?;
        let (to, inclusive) = match to.strip_prefix('=') {
            Some(to) => (to, true),
            None => (to, false),
        };
        let from: u64 = from
            .trim()
            .parse()
            .with_context(|| format!("--seeds {seeds:?}: {from:?} is not a number"))?;
        let to: u64 = to
            .trim()
            .parse()
            .with_context(|| format!("--seeds {seeds:?}: {to:?} is not a number"))?;
        let last = if inclusive {
            Some(to)
        } else {
            to.checked_sub(1)
        };
        let Some(last) = last.filter(|last| *last >= from) else {
            bail!("--seeds {seeds:?}: the range is empty");
        };
        let duration_ms = crate::scenario::parse_duration(duration)
            .map_err(|message| anyhow::anyhow!("--duration: {message}"))?;
        if duration_ms < 10 * 60_000 {
            bail!("--duration {duration:?}: at least 10m, for the quiet phase");
        }
        Ok(ExploreOptions {
            topology,
            seeds: from..=last,
            duration_ms,
            out,
            sabotage: Sabotage::None,
        })
    }
}

/// A failing seed.
#[derive(Clone, Debug)]
pub struct FailedSeed {
    /// The seed.
    pub seed: u64,
    /// Why the drawn scenario failed.
    pub failure: Failure,
    /// The drawn scenario, as written beside the shrunk one.
    pub unshrunk: Scenario,
    /// The shrunk scenario: it fails the same way ([`same_failure`]).
    pub shrunk: Scenario,
    /// Why the shrunk scenario fails.
    pub shrunk_failure: Failure,
    /// Where the shrunk scenario was written.
    pub path: Option<PathBuf>,
    /// Where the drawn scenario was written.
    pub unshrunk_path: Option<PathBuf>,
}

/// The outcome of an exploration.
#[derive(Clone, Debug)]
pub struct Exploration {
    /// Seeds run.
    pub seeds: u64,
    /// The failing seeds, in seed order.
    pub failures: Vec<FailedSeed>,
    /// Simulated milliseconds in all.
    pub simulated_ms: u64,
    /// Wall time.
    pub wall_secs: f64,
}

/// Runs the exploration and prints its summary; returns whether every seed passed.
pub fn explore(options: &ExploreOptions, logs: &[EventLog]) -> anyhow::Result<bool> {
    let result = explore_seeds(options, logs, true)?;
    println!(
        "{} seeds of {} ({}), {} failed; {:.1} seeds/s, simulated/wall {:.0}x",
        result.seeds,
        format_duration(options.duration_ms),
        options.topology.name(),
        result.failures.len(),
        result.seeds as f64 / result.wall_secs.max(1e-9),
        result.simulated_ms as f64 / (result.wall_secs * 1000.0).max(1e-9),
    );
    let shown = |path: &Option<PathBuf>| {
        path.as_ref()
            .map_or("not written".to_string(), |p| p.display().to_string())
    };
    for failed in &result.failures {
        println!(
            "seed {}: {}: {}\n  shrunk to {} of {} timeline entries: {} (drawn: {})",
            failed.seed,
            failed.failure.what,
            failed.failure.detail,
            failed.shrunk.timeline.len(),
            failed.unshrunk.timeline.len(),
            shown(&failed.path),
            shown(&failed.unshrunk_path),
        );
    }
    Ok(result.failures.is_empty())
}

/// Runs every seed; shrinks and writes out failures. There is one worker thread per log (see
/// [`workers`]): each writes to a log of its own, since threads sharing one sled database
/// contend in it.
pub fn explore_seeds(
    options: &ExploreOptions,
    logs: &[EventLog],
    show_progress: bool,
) -> anyhow::Result<Exploration> {
    assert!(!logs.is_empty(), "explore needs a log per worker");
    let started = Instant::now();
    let (first, last) = (*options.seeds.start(), *options.seeds.end());
    // For the progress line only: `0..=u64::MAX` has one seed more than a `usize` counts.
    let total = usize::try_from(last.saturating_sub(first))
        .map_or(usize::MAX, |count| count.saturating_add(1));
    let progress = Mutex::new(Progress::new(if show_progress { total } else { 0 }));
    let seeds = Seeds::new(&options.seeds);
    // Seeds are independent: workers take the next seed until none is left, and the results
    // are put back in seed order, so the outcome does not depend on the scheduling.
    let outcomes: Vec<anyhow::Result<Vec<SeedOutcome>>> = std::thread::scope(|scope| {
        let (seeds, progress) = (&seeds, &progress);
        let handles: Vec<_> = logs
            .iter()
            .map(|log| {
                scope.spawn(move || {
                    let mut outcomes = Vec::new();
                    while let Some(seed) = seeds.take() {
                        outcomes.push(explore_seed(seed, options, log)?);
                        let mut progress = progress.lock().unwrap_or_else(PoisonError::into_inner);
                        progress.tick(&format!("seed {seed}"));
                    }
                    Ok(outcomes)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("an explore worker panicked")))
            })
            .collect()
    });
    let mut all = Vec::new();
    for outcome in outcomes {
        all.extend(outcome?);
    }
    all.sort_by_key(|outcome| outcome.seed);
    let seeds_run = all.len() as u64;
    let simulated_ms = all.iter().map(|outcome| outcome.simulated_ms).sum();
    let failures = all
        .into_iter()
        .filter_map(|outcome| outcome.failure)
        .collect();
    Ok(Exploration {
        seeds: seeds_run,
        failures,
        simulated_ms,
        wall_secs: started.elapsed().as_secs_f64(),
    })
}

/// The seeds not yet taken, handed out in order to the workers. The last one is taken without
/// counting past it, so that a range ending at `u64::MAX` ends.
struct Seeds {
    next: Mutex<Option<u64>>,
    last: u64,
}

impl Seeds {
    fn new(range: &RangeInclusive<u64>) -> Seeds {
        Seeds {
            next: Mutex::new((range.start() <= range.end()).then_some(*range.start())),
            last: *range.end(),
        }
    }

    /// The next seed, or `None` once every seed was taken.
    fn take(&self) -> Option<u64> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let seed = (*next)?;
        *next = (seed < self.last).then(|| seed + 1);
        Some(seed)
    }
}

/// Explore runs on at most this many threads.
const MAX_WORKERS: usize = 8;

/// How many workers explore runs: one per available core, at most [`MAX_WORKERS`].
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_WORKERS)
}

/// One seed's result.
struct SeedOutcome {
    seed: u64,
    simulated_ms: u64,
    failure: Option<FailedSeed>,
}

/// Runs one seed; shrinks it and writes it out (drawn and shrunk) if it fails.
fn explore_seed(
    seed: u64,
    options: &ExploreOptions,
    log: &EventLog,
) -> anyhow::Result<SeedOutcome> {
    let scenario = generate(options.topology, seed, options.duration_ms);
    let report = run_once(&scenario, options, log)?;
    let Some(failure) = report.failure.clone() else {
        return Ok(SeedOutcome {
            seed,
            simulated_ms: report.simulated_ms,
            failure: None,
        });
    };
    let (shrunk, shrunk_report) = shrink(scenario.clone(), &report, options, log)?;
    let shrunk_failure = shrunk_report
        .failure
        .clone()
        .expect("a shrunk scenario fails");
    let base = format!("explore-{}-seed-{seed}", options.topology.name());
    let write = |name: String, scenario: &Scenario, report: &RunReport| {
        let path = options.out.join(name);
        std::fs::write(&path, to_yaml(&reproducible(scenario, report)))
            .ok()
            .map(|()| path)
    };
    let path = write(format!("{base}.yaml"), &shrunk, &shrunk_report);
    let unshrunk_path = write(format!("{base}-unshrunk.yaml"), &scenario, &report);
    Ok(SeedOutcome {
        seed,
        simulated_ms: report.simulated_ms,
        failure: Some(FailedSeed {
            seed,
            failure,
            unshrunk: scenario,
            shrunk,
            shrunk_failure,
            path,
            unshrunk_path,
        }),
    })
}

/// The scenario as written out: its description says how it fails, and when explore's
/// judgement differs from the file's (a node lost for good destroyed acknowledged writes, and
/// the cluster did not end in `ManualInterventionRequired` or `Failed`), its expectation is
/// rewritten so that `tandem-sim run` fails the same way.
pub fn reproducible(scenario: &Scenario, report: &RunReport) -> Scenario {
    let mut scenario = scenario.clone();
    let Some(failure) = &report.failure else {
        return scenario;
    };
    scenario.description = format!(
        "{} It fails: {}: {}",
        scenario.description, failure.what, failure.detail
    );
    if failure.what == FINAL_STATE && report.destroyed_writes > 0 {
        scenario.expect.final_state = Some(ClusterStateName::of_kind(
            StateKind::ManualInterventionRequired,
        ));
        scenario.expect.max_lost_writes = report.acknowledged_writes;
    }
    scenario
}

/// The expectation of the final state, as failures name it.
const FINAL_STATE: &str = "expect.finalState";

/// Whether two failing runs fail the same way: the same invariant or expectation, and for the
/// final state, the same kind of state reached under the same rule (writes destroyed by the world
/// or not). A cluster stuck in `ManualInterventionRequired` and one stuck in `Initializing` fail
/// the same expectation for different reasons.
pub fn same_failure(original: &RunReport, candidate: &RunReport) -> bool {
    match (&original.failure, &candidate.failure) {
        (Some(original_failure), Some(candidate_failure)) => {
            original_failure.what == candidate_failure.what
                && (original_failure.what != FINAL_STATE
                    || ((original.destroyed_writes > 0) == (candidate.destroyed_writes > 0)
                        && original.final_state.kind() == candidate.final_state.kind()))
        }
        _ => false,
    }
}

fn run_once(
    scenario: &Scenario,
    options: &ExploreOptions,
    log: &EventLog,
) -> Result<RunReport, RunError> {
    let stream = format!(
        "explore-{}-{}-{}",
        scenario.name,
        scenario.timeline.len(),
        log_counter()
    );
    let run_options = RunOptions {
        sabotage: options.sabotage,
        stream: Some(stream),
        intervention_after_destroyed_writes: true,
        skip_record_hash: true,
        ..RunOptions::default()
    };
    let report = run(scenario, &run_options, log)?;
    // A passing run is of no further interest: its streams go, so that the log stays small
    // however many seeds run. A failing run's streams stay, for `tandem-sim replay`.
    if report.passed() {
        report.remove_streams(log)?;
    }
    Ok(report)
}

/// A fresh stream name per run, so shrinking runs never meet an earlier stream.
fn log_counter() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Greedy shrinking that keeps the failure ([`same_failure`]): drop timeline entries, then put
/// drawn configuration back to the explore defaults, then end the run shortly after a failure
/// seen during it. Returns the shrunk scenario and its failing run.
pub fn shrink(
    mut scenario: Scenario,
    original: &RunReport,
    options: &ExploreOptions,
    log: &EventLog,
) -> anyhow::Result<(Scenario, RunReport)> {
    let drawn_entries = scenario.timeline.len();
    let mut runs = 0;
    let mut last = original.clone();
    let fails =
        |candidate: &Scenario, last: &mut RunReport, runs: &mut usize| -> anyhow::Result<bool> {
            *runs += 1;
            let report = run_once(candidate, options, log)?;
            let same = same_failure(original, &report);
            if same {
                *last = report;
            }
            Ok(same)
        };
    let mut changed = true;
    while changed && runs < MAX_SHRINK_RUNS {
        changed = false;
        let mut index = 0;
        loop {
            let units = removal_units(&scenario.timeline);
            if index >= units.len() || runs >= MAX_SHRINK_RUNS {
                break;
            }
            let mut candidate = scenario.clone();
            let unit = &units[index];
            candidate.timeline = (0..scenario.timeline.len())
                .filter(|entry| !unit.contains(entry))
                .map(|entry| scenario.timeline[entry].clone())
                .collect();
            if fails(&candidate, &mut last, &mut runs)? {
                scenario = candidate;
                changed = true;
            } else {
                index += 1;
            }
        }
    }
    for simplify in SIMPLIFICATIONS {
        if runs >= MAX_SHRINK_RUNS {
            break;
        }
        let mut candidate = scenario.clone();
        simplify(&mut candidate);
        // Under async, a simpler configuration may rightly lose more.
        let budget = loss_budget(&candidate.cluster, &candidate.world, drawn_entries);
        candidate.expect.max_lost_writes = candidate.expect.max_lost_writes.max(budget);
        if candidate != scenario
            && candidate.cluster.validate().is_ok()
            && fails(&candidate, &mut last, &mut runs)?
        {
            scenario = candidate;
        }
    }
    // A failure seen during the run (not a judgement of its end) shows again in a run that ends
    // shortly after it: everything up to it happens the same way. A judgement of the end keeps
    // the whole quiet phase, which a slow but correct recovery may need.
    let failed_at = last.failure.as_ref().map_or(u64::MAX, |f| f.at_ms);
    if failed_at < scenario.duration_ms {
        let mut candidate = scenario.clone();
        candidate.duration_ms = (failed_at / 60_000 + 2) * 60_000;
        // Entries past the new end would make the written file invalid.
        let end = candidate.duration_ms;
        candidate.timeline.retain(|entry| entry.at_ms <= end);
        if candidate.duration_ms < scenario.duration_ms && fails(&candidate, &mut last, &mut runs)?
        {
            scenario = candidate;
        }
    }
    scenario.name = format!("{}-shrunk", scenario.name);
    scenario.description = format!(
        "{} Shrunk to a minimal timeline that still fails the same way.",
        scenario.description
    );
    Ok((scenario, last))
}

/// What the shrinker removes together: each entry alone, except that a `stop` goes with the
/// `start` that follows it and a `pause-failover` with its `resume-failover` (a cluster left
/// stopped or paused rightly never returns to `Normal`); a closing action that nothing opened
/// goes alone.
fn removal_units(timeline: &[TimelineEntry]) -> Vec<Vec<usize>> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut open: Vec<(UserAction, usize)> = Vec::new();
    for (index, entry) in timeline.iter().enumerate() {
        let closes = match &entry.what {
            What::Action(UserAction::Start) => Some(UserAction::Stop),
            What::Action(UserAction::ResumeFailover) => Some(UserAction::PauseFailover),
            _ => None,
        };
        let opened = match &entry.what {
            What::Action(action @ (UserAction::Stop | UserAction::PauseFailover)) => {
                Some(action.clone())
            }
            _ => None,
        };
        if let Some(opener) = closes {
            // The earliest open pair of the same kind.
            if let Some(position) = open.iter().position(|(action, _)| *action == opener) {
                let (_, unit) = open.remove(position);
                units[unit].push(index);
                continue;
            }
        }
        units.push(vec![index]);
        if let Some(action) = opened {
            open.push((action, units.len() - 1));
        }
    }
    units
}

/// Drawn configuration put back to the explore defaults, one knob at a time, while shrinking.
/// None of them can make a correct recovery impossible: the timeouts that depend on the copy
/// time follow it, and an attempt budget is only ever raised.
const SIMPLIFICATIONS: [fn(&mut Scenario); 4] = [
    |scenario| {
        let defaults = Spec::defaults(scenario.topology);
        scenario.cluster.polling_interval_s = defaults.polling_interval_s;
        scenario.cluster.unreachable_timeout_s = defaults.unreachable_timeout_s;
        scenario.cluster.agent_lease_s = defaults.agent_lease_s;
        fit_timeouts(&mut scenario.cluster, &scenario.world, scenario.duration_ms);
    },
    |scenario| {
        scenario.world.rebuild_ms = WorldConfig::default().rebuild_ms;
        fit_timeouts(&mut scenario.cluster, &scenario.world, scenario.duration_ms);
    },
    |scenario| scenario.cluster.max_lag_on_failover_bytes = 0,
    |scenario| {
        let defaults = Spec::defaults(scenario.topology);
        let spec = &mut scenario.cluster;
        spec.max_rebuild_attempts = spec.max_rebuild_attempts.max(defaults.max_rebuild_attempts);
        spec.max_restart_attempts = spec.max_restart_attempts.max(defaults.max_restart_attempts);
    },
];

/// The explore defaults: the CRD's, with a node loss noticed within minutes.
fn explore_spec(topology: Topology) -> Spec {
    let mut spec = Spec::defaults(topology);
    spec.node_lost_timeout_s = 120;
    spec.standby_start_timeout_s = 300;
    spec
}

/// Sets the timeouts that a correct recovery must never reach to what the copy time and the
/// run allow: `standbyStartTimeout` covers a slow start, a copy and a few polls (no more: a
/// copy that failed unseen is only retried once it runs out), and `initTimeout` outlasts the
/// run (faults during `Initializing` may rightly delay it by a lot; giving up on it is a
/// choice, not something liveness can judge).
fn fit_timeouts(spec: &mut Spec, world: &WorldConfig, duration_ms: Millis) {
    let rebuild_s = u32::try_from(world.copy_ms().div_ceil(1000)).unwrap_or(u32::MAX);
    let slack_s = 180 + 6 * spec.polling_interval_s;
    spec.standby_start_timeout_s = 300.max(rebuild_s.saturating_add(slack_s));
    let run_s = u32::try_from(duration_ms / 1000).unwrap_or(u32::MAX);
    spec.init_timeout_s = 600.max(run_s);
}

/// What a drawn scenario with `entries` timeline entries must reach: `Normal` at the end,
/// losing at most what async accepts for them (`loss_budget`).
pub fn recovery_expected(spec: &Spec, world: &WorldConfig, entries: usize) -> Expect {
    Expect {
        final_state: Some(ClusterStateName::of_kind(StateKind::Normal)),
        recovered_within_ms: None,
        visits: Vec::new(),
        never: Vec::new(),
        max_lost_writes: loss_budget(spec, world, entries),
        ..Expect::default()
    }
}

/// The acknowledged writes a run may lose: none under sync; under async, per fault (each may
/// cost one failover), the lag the engine may promote over, and what a cut-off active
/// acknowledges between its last contact and the end of its lease.
fn loss_budget(spec: &Spec, world: &WorldConfig, entries: usize) -> u64 {
    match (spec.topology, spec.replication) {
        (Topology::Standalone, _) | (_, Replication::Sync | Replication::SyncPreferred) => 0,
        (Topology::MasterSlave, Replication::Async) => {
            let window_ms = world.replication_lag_ms
                + u64::from(spec.agent_lease_s + spec.polling_interval_s) * 1000;
            let per_failover = u64::from(world.writes_per_second) * window_ms / 1000
                + 1
                + spec.max_lag_on_failover_bytes / WRITE_BYTES;
            per_failover * (entries as u64 + 1)
        }
    }
}

/// The world of one seed: a copy (a standby's rebuild) takes from 5 s to 10 min, and at most
/// a sixth of the run. In half the seeds most of that time is the data's size: a database of
/// some GiB to hundreds of GiB, copied at 50 to 500 MiB/s, its size chosen so that the copy
/// takes the time drawn.
pub fn draw_world(rng: &mut Rng, duration_ms: Millis) -> WorldConfig {
    let longest_s = (duration_ms / 6_000).clamp(6, 600);
    let copy_s = match rng.below(20) {
        0..=9 => between(rng, 5, 60),
        10..=16 => between(rng, 60, 180),
        _ => between(rng, 180, 600),
    }
    .min(longest_s);
    let mut world = WorldConfig {
        rebuild_ms: copy_s * 1000,
        ..WorldConfig::default()
    };
    // Decided from the copy time drawn, not from further draws, so that the rest of the seed's
    // draws stay what they were.
    if copy_s % 2 == 0 && copy_s > 6 {
        let rate = [50, 100, 200, 500][(copy_s / 2 % 4) as usize];
        // A copy starts in a few seconds; the rest moves the data.
        let start_s = 2 + copy_s / 8 % 4;
        world.copy_megabytes_per_second = rate;
        world.data_gigabytes = (copy_s - start_s) * rate / 1024;
        world.rebuild_ms = (copy_s * 1000).saturating_sub(world.copy_ms() - world.rebuild_ms);
    }
    world
}

/// A number in `from..to`.
fn between(rng: &mut Rng, from: u64, to: u64) -> u64 {
    from + rng.below(to.saturating_sub(from))
}

/// One of `choices`.
fn pick<T: Copy>(rng: &mut Rng, choices: &[T]) -> T {
    choices[rng.below(choices.len() as u64) as usize]
}

/// The configuration of one seed: the replication mode, the timing of polls, contact and lease,
/// how soon a node counts as lost, and the lag async may promote over, drawn until
/// `Spec::validate` accepts them (which keeps the lease above the gap between two polls, among
/// its timing rules). The attempt budgets are drawn later, once the timeline is known.
pub fn draw_spec(
    rng: &mut Rng,
    topology: Topology,
    world: &WorldConfig,
    duration_ms: Millis,
) -> Spec {
    let mut spec = explore_spec(topology);
    if topology == Topology::MasterSlave {
        // One draw: odd is async (half the seeds), 2 is syncPreferred (a quarter), 0 strict sync.
        match rng.below(4) {
            2 => spec.replication = Replication::SyncPreferred,
            mode if mode % 2 == 1 => {
                spec.replication = Replication::Async;
                spec.max_lag_on_failover_bytes = pick(rng, &[0, 0, 1_000, 20_000]);
            }
            _ => {}
        }
    }
    spec.node_lost_timeout_s = pick(rng, &[60, 120, 120, 300]);
    // The CRD's timing in a third of the seeds; otherwise drawn.
    if rng.below(3) != 0 {
        for _ in 0..1_000 {
            let mut candidate = spec.clone();
            // Short intervals cost the most events: they are drawn less often.
            let polling = pick(rng, &[1, 2, 3, 5, 10, 15, 15, 20, 20, 30, 30]);
            candidate.polling_interval_s = polling;
            candidate.unreachable_timeout_s =
                polling * 2 + rng.below(u64::from(polling) * 4 + 20) as u32;
            candidate.agent_lease_s =
                polling + 1 + rng.below(u64::from(candidate.unreachable_timeout_s)) as u32;
            if candidate.validate().is_ok() {
                spec = candidate;
                break;
            }
        }
    }
    fit_timeouts(&mut spec, world, duration_ms);
    debug_assert_eq!(spec.validate(), Ok(()));
    spec
}

/// How many attempts the drawn faults may rightly spend (a standby rebuilt again, a standalone
/// database restarted) before the cluster is back in `Normal`: one per entry, plus one per
/// `unreachableTimeout` of its duration.
pub fn attempts_spent(spec: &Spec, timeline: &[TimelineEntry]) -> u32 {
    let unreachable_ms = spec.unreachable_timeout_ms().max(1);
    let spent: u64 = timeline
        .iter()
        .map(|entry| {
            let lasts = match &entry.what {
                What::Fault(fault, _) => match *fault {
                    Fault::CrashProcess { restart_after_ms } => {
                        restart_after_ms.unwrap_or(unreachable_ms)
                    }
                    Fault::NodeLoss { for_ms: None } => unreachable_ms,
                    Fault::SlowStart { start_ms } => start_ms,
                    _ => fault.window_ms().unwrap_or(0),
                },
                What::Action(_) => 0,
            };
            1 + lasts / unreachable_ms
        })
        .sum();
    u32::try_from(spent).unwrap_or(u32::MAX)
}

/// How long the fault phase of a run of `duration_ms` in `world` lasts, from its start: half
/// the run, less when the quiet phase after it would leave less than `RECOVERY_MS` plus two
/// copies, but at least a sixth of the run.
pub fn fault_phase_ms(world: &WorldConfig, duration_ms: Millis) -> Millis {
    (duration_ms * FAULT_PHASE_PERCENT / 100)
        .min(duration_ms.saturating_sub(2 * world.copy_ms() + RECOVERY_MS))
        .max(duration_ms / 6)
}

/// Draws the scenario of one seed: its configuration and world, then a fault mix in the first
/// half (from the first second: `Initializing` too), quiet in the second.
pub fn generate(topology: Topology, seed: u64, duration_ms: Millis) -> Scenario {
    let mut rng = Rng::new(seed.wrapping_mul(0x5851_F42D_4C95_7F2D));
    let world = draw_world(&mut rng, duration_ms);
    let mut spec = draw_spec(&mut rng, topology, &world, duration_ms);
    let fault_phase = fault_phase_ms(&world, duration_ms);
    let count = 1 + rng.below(6);
    let mut timeline = Vec::new();
    let mut permanent_loss = false;
    for _ in 0..count {
        let at_ms = if rng.below(8) == 0 {
            // Early: while the cluster initializes, to the tenth of a second.
            rng.below(EARLY_MS / 100) * 100
        } else {
            rng.below(fault_phase / 1000) * 1000
        };
        let entries = draw(
            &mut rng,
            &spec,
            world.nodes,
            at_ms,
            fault_phase,
            &mut permanent_loss,
        );
        timeline.extend(entries);
    }
    timeline.sort_by_key(|entry: &TimelineEntry| entry.at_ms);
    // Budgets from barely enough for what the faults may spend to a few more.
    let budget = attempts_spent(&spec, &timeline);
    spec.max_rebuild_attempts = budget + rng.below(4) as u32;
    spec.max_restart_attempts = budget + rng.below(4) as u32;
    debug_assert_eq!(spec.validate(), Ok(()));
    let expect = recovery_expected(&spec, &world, timeline.len());
    Scenario {
        name: format!("explore-{}-{seed}", topology.name()),
        description: format!("Drawn by tandem-sim explore from seed {seed}."),
        topology,
        seed,
        duration_ms,
        cluster: spec,
        world,
        timeline,
        expect,
    }
}

/// Entries drawn in the first this many milliseconds name members and nodes, not roles: there
/// may be no active yet.
pub const EARLY_MS: Millis = 60_000;

/// Whether a drawn scenario of `spec` may lose a node for good (at most one: two would leave a
/// pair no node to spare). Not under async master-slave: whether a survivor that trails may be
/// promoted is the engine's lag rule on recorded positions, which the world's truth cannot
/// judge.
pub fn may_lose_a_node_for_good(spec: &Spec) -> bool {
    spec.replication == Replication::Sync || spec.topology == Topology::Standalone
}

/// Drawn reboots are shorter than this: a longer one rightly counts as a lost node, whose data
/// the engine may give up although the world brings it back.
pub fn reboot_limit_ms(spec: &Spec) -> Millis {
    u64::from(spec.node_lost_timeout_s)
        .saturating_sub(10)
        .max(11)
        * 1000
}

/// Drawn agent flaps are shorter than this. A promotion whose command fails
/// `MAX_PROMOTE_ATTEMPTS` times in a row (a failed one is retried a polling interval later) ends
/// in `ManualInterventionRequired` by design: a long flap of the member a failover promotes
/// makes that likely, and liveness cannot judge it.
pub const FLAP_LIMIT_MS: Millis = 200_000;

/// Drawn slow starts are shorter than this: `standbyStartTimeout` (`fit_timeouts`) leaves
/// 180 s beside a copy for a slow start and a few polls.
pub const SLOW_START_LIMIT_MS: Millis = 120_000;

fn seconds(rng: &mut Rng, from: u64, to: u64) -> Millis {
    between(rng, from, to) * 1000
}

/// One fault or action (or a pair: stop/start, pause/resume) at `at_ms`. Every draw means
/// something in the world: replication faults hit a standby (an active's own replication
/// settings do nothing), a full disk hits the active (a standby's writes are replication's),
/// and a standalone cluster gets neither replication faults nor switchovers.
fn draw(
    rng: &mut Rng,
    spec: &Spec,
    nodes: u32,
    at_ms: Millis,
    fault_phase: Millis,
    permanent_loss: &mut bool,
) -> Vec<TimelineEntry> {
    let topology = spec.topology;
    let master_slave = topology == Topology::MasterSlave;
    let early = at_ms < EARLY_MS;
    let entry = |at_ms, what| TimelineEntry {
        at_ms,
        what,
        line: 0,
    };
    // Roles resolve when the entry fires; early on there may be none yet, so name a member.
    let member = |rng: &mut Rng| match (master_slave, early, rng.below(4)) {
        (false, true, _) => Target::Member(0),
        (false, false, _) => Target::Active,
        (true, true, n) => Target::Member((n % 2) as u8),
        (true, false, 0) => Target::Active,
        (true, false, 1) => Target::Standby,
        (true, false, n) => Target::Member((n - 2) as u8),
    };
    let standby = if early {
        Target::Member(1)
    } else {
        Target::Standby
    };
    let active = if early {
        Target::Member(0)
    } else {
        Target::Active
    };
    let kinds = if master_slave { 17 } else { 14 };
    let what = match rng.below(kinds) {
        0 => {
            let restart_after_ms = (rng.below(4) != 0).then(|| seconds(rng, 1, 60));
            What::Fault(Fault::CrashProcess { restart_after_ms }, Some(member(rng)))
        }
        1 => What::Fault(
            Fault::HangProcess {
                for_ms: seconds(rng, 5, 120),
            },
            Some(member(rng)),
        ),
        2 => What::Fault(Fault::DeletePod, Some(member(rng))),
        3 => What::Fault(
            Fault::Partition {
                for_ms: seconds(rng, 5, 180),
            },
            Some(member(rng)),
        ),
        4 => What::Fault(
            Fault::Isolate {
                for_ms: seconds(rng, 5, 180),
            },
            Some(member(rng)),
        ),
        5 => {
            let forever = !*permanent_loss && may_lose_a_node_for_good(spec) && rng.below(3) == 0;
            *permanent_loss |= forever;
            let for_ms = (!forever).then(|| seconds(rng, 10, reboot_limit_ms(spec) / 1000));
            let node = match (early, master_slave, rng.below(3)) {
                (true, _, _) | (false, _, 1) => Target::Node(rng.below(nodes.into()) as u32),
                (false, true, 0) => Target::NodeOfStandby,
                (false, _, _) => Target::NodeOfActive,
            };
            What::Fault(Fault::NodeLoss { for_ms }, Some(node))
        }
        6 => What::Fault(
            Fault::DiskFull {
                for_ms: seconds(rng, 5, 120),
            },
            Some(active),
        ),
        7 => What::Fault(
            Fault::SlowStart {
                start_ms: seconds(rng, 10, SLOW_START_LIMIT_MS / 1000),
            },
            Some(member(rng)),
        ),
        8 => What::Fault(
            Fault::AgentFlap {
                period_ms: seconds(rng, 2, 20),
                for_ms: seconds(rng, 10, FLAP_LIMIT_MS / 1000),
            },
            Some(member(rng)),
        ),
        9 => {
            // Outages within the agents' lease, and outages of minutes, well beyond it.
            let restart_after_ms = if rng.below(2) == 0 {
                seconds(rng, 1, 15)
            } else {
                seconds(rng, 15, 300)
            };
            What::Fault(
                Fault::OperatorCrash {
                    restart_after_ms,
                    lose_log: rng.below(4) == 0,
                },
                None,
            )
        }
        10 => What::Fault(
            Fault::ApiErrors {
                rate: rng.below(6) as f64 / 10.0,
                for_ms: seconds(rng, 10, 300),
            },
            None,
        ),
        11 => What::Action(UserAction::ConfigChange { hash: None }),
        12 | 13 => {
            let (first, second) = if rng.below(2) == 0 {
                (UserAction::Stop, UserAction::Start)
            } else {
                (UserAction::PauseFailover, UserAction::ResumeFailover)
            };
            let back = (at_ms + seconds(rng, 10, 300)).min(fault_phase);
            return vec![
                entry(at_ms, What::Action(first)),
                entry(back.max(at_ms), What::Action(second)),
            ];
        }
        // Master-slave only from here.
        14 => What::Fault(
            Fault::ReplicationStall {
                for_ms: seconds(rng, 5, 200),
            },
            Some(standby),
        ),
        15 => What::Fault(
            Fault::ReplicationBreak {
                for_ms: seconds(rng, 5, 200),
            },
            Some(standby),
        ),
        _ => {
            let to = (rng.below(3) == 0).then(|| rng.below(2) as u8);
            What::Action(UserAction::Switchover { to })
        }
    };
    vec![entry(at_ms, what)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds(text: &str) -> anyhow::Result<RangeInclusive<u64>> {
        ExploreOptions::parse(Topology::MasterSlave, text, "1h", PathBuf::from("."))
            .map(|options| options.seeds)
    }

    #[test]
    fn seed_ranges_exclude_or_include_their_end() {
        assert_eq!(seeds("1..101").unwrap(), 1..=100);
        assert_eq!(seeds("5..=5").unwrap(), 5..=5);
        assert_eq!(
            seeds("18446744073709551613..18446744073709551615").unwrap(),
            u64::MAX - 2..=u64::MAX - 1
        );
        assert_eq!(
            seeds("18446744073709551613..=18446744073709551615").unwrap(),
            u64::MAX - 2..=u64::MAX
        );
        assert_eq!(seeds("0..=18446744073709551615").unwrap(), 0..=u64::MAX);
        for empty in [
            "5..5",
            "0..0",
            "3..=2",
            "18446744073709551615..18446744073709551615",
        ] {
            let error = seeds(empty).unwrap_err().to_string();
            assert!(error.ends_with("the range is empty"), "{empty}: {error}");
        }
        for malformed in ["5", "a..3", "1..18446744073709551616", "1..=-1"] {
            assert!(seeds(malformed).is_err(), "{malformed}");
        }
    }

    /// Workers that take seeds at the same time take each seed of the range once, and stop,
    /// also when the range ends at the largest seed.
    #[test]
    fn every_seed_is_taken_once_up_to_the_largest() {
        for range in [u64::MAX - 20..=u64::MAX, u64::MAX..=u64::MAX, 0..=20, 7..=7] {
            let seeds = Seeds::new(&range);
            let mut taken: Vec<u64> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        scope.spawn(|| std::iter::from_fn(|| seeds.take()).collect::<Vec<u64>>())
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|handle| handle.join().expect("a worker"))
                    .collect()
            });
            taken.sort_unstable();
            assert_eq!(taken, range.clone().collect::<Vec<u64>>(), "{range:?}");
            assert_eq!(seeds.take(), None, "{range:?}");
        }
    }
}
