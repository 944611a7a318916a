//! `tandem-sim explore`: swarm testing. Each seed draws a fault mix and its timing, then a quiet
//! phase in which the cluster must return to `Normal` (liveness). A failing seed is shrunk to a
//! minimal timeline and written out as a scenario file that reproduces it.

use crate::catalog::Progress;
use crate::data::WRITE_BYTES;
use crate::run::{Rng, RunError, RunOptions, RunReport, Sabotage, run};
use crate::scenario::{
    Action, ClusterStateName, Expect, Fault, Millis, Scenario, Target, TimelineEntry, What,
    WorldConfig, format_duration, to_yaml,
};
use anyhow::{Context, bail};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;
use tandem_engine::{Replication, Spec, Topology};
use tandem_sled::EventLog;

/// The share of a seed's duration in which faults are injected; the rest is the quiet phase.
const FAULT_PHASE_PERCENT: u64 = 50;

/// Shrinking stops after this many candidate runs.
const MAX_SHRINK_RUNS: usize = 400;

/// What to explore.
#[derive(Clone, Debug)]
pub struct ExploreOptions {
    /// The topology.
    pub topology: Topology,
    /// The seeds.
    pub seeds: Range<u64>,
    /// Simulated time per seed.
    pub duration_ms: Millis,
    /// Where failing scenarios are written.
    pub out: PathBuf,
    /// A deliberate defect (tests only).
    pub sabotage: Sabotage,
}

impl ExploreOptions {
    /// Parses the command line's `--seeds A..B` and `--duration`.
    pub fn parse(
        topology: Topology,
        seeds: &str,
        duration: &str,
        out: PathBuf,
    ) -> anyhow::Result<ExploreOptions> {
        let (from, to) = seeds
            .split_once("..")
            .with_context(|| format!("--seeds {seeds:?}: expected A..B"))?;
        let from: u64 = from
            .trim()
            .parse()
            .with_context(|| format!("--seeds {seeds:?}: {from:?} is not a number"))?;
        let to: u64 = to
            .trim()
            .parse()
            .with_context(|| format!("--seeds {seeds:?}: {to:?} is not a number"))?;
        if to <= from {
            bail!("--seeds {seeds:?}: the range is empty");
        }
        let duration_ms = parse_duration(duration)
            .with_context(|| format!("--duration {duration:?}: expected e.g. 30m or 1h"))?;
        if duration_ms < 10 * 60_000 {
            bail!("--duration {duration:?}: at least 10m, for the quiet phase");
        }
        Ok(ExploreOptions {
            topology,
            seeds: from..to,
            duration_ms,
            out,
            sabotage: Sabotage::None,
        })
    }
}

fn parse_duration(text: &str) -> Option<Millis> {
    let index = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(index);
    let value: u64 = number.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    value.checked_mul(factor)
}

/// The outcome of an exploration.
#[derive(Clone, Debug)]
pub struct Exploration {
    /// Seeds run.
    pub seeds: u64,
    /// The failing seeds, with the shrunk scenario and where it was written.
    pub failures: Vec<(u64, Scenario, Option<PathBuf>)>,
    /// Simulated milliseconds in all.
    pub simulated_ms: u64,
    /// Wall time.
    pub wall_secs: f64,
}

/// Runs the exploration and prints its summary; returns whether every seed passed.
pub fn explore(options: &ExploreOptions, log: &EventLog) -> anyhow::Result<bool> {
    let result = explore_seeds(options, log, true)?;
    println!(
        "{} seeds of {} ({}), {} failed; {:.1} seeds/s, simulated/wall {:.0}x",
        result.seeds,
        format_duration(options.duration_ms),
        options.topology.name(),
        result.failures.len(),
        result.seeds as f64 / result.wall_secs.max(1e-9),
        result.simulated_ms as f64 / (result.wall_secs * 1000.0).max(1e-9),
    );
    for (seed, scenario, path) in &result.failures {
        let written = path
            .as_ref()
            .map_or("not written".to_string(), |p| p.display().to_string());
        println!(
            "seed {seed}: shrunk to {} timeline entries: {written}",
            scenario.timeline.len()
        );
    }
    Ok(result.failures.is_empty())
}

/// Runs every seed; shrinks and writes out failures.
pub fn explore_seeds(
    options: &ExploreOptions,
    log: &EventLog,
    show_progress: bool,
) -> anyhow::Result<Exploration> {
    let started = Instant::now();
    let total = options.seeds.clone().count();
    let progress = Mutex::new(Progress::new(if show_progress { total } else { 0 }));
    let next = AtomicU64::new(options.seeds.start);
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_WORKERS);
    // Seeds are independent: workers take the next seed until none is left, and the results
    // are put back in seed order, so the outcome does not depend on the scheduling.
    let outcomes: Vec<anyhow::Result<Vec<SeedOutcome>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut outcomes = Vec::new();
                    loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= options.seeds.end {
                            return Ok(outcomes);
                        }
                        outcomes.push(explore_seed(seed, options, log)?);
                        let mut progress = progress.lock().unwrap_or_else(PoisonError::into_inner);
                        progress.tick(&format!("seed {seed}"));
                    }
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
    let simulated_ms = all.iter().map(|outcome| outcome.simulated_ms).sum();
    let failures = all
        .into_iter()
        .filter_map(|outcome| outcome.failure)
        .collect();
    Ok(Exploration {
        seeds: total as u64,
        failures,
        simulated_ms,
        wall_secs: started.elapsed().as_secs_f64(),
    })
}

/// Explore runs on at most this many threads.
const MAX_WORKERS: usize = 8;

/// One seed's result.
struct SeedOutcome {
    seed: u64,
    simulated_ms: u64,
    failure: Option<(u64, Scenario, Option<PathBuf>)>,
}

/// Runs one seed; shrinks and writes it out if it fails.
fn explore_seed(
    seed: u64,
    options: &ExploreOptions,
    log: &EventLog,
) -> anyhow::Result<SeedOutcome> {
    let scenario = generate(options.topology, seed, options.duration_ms);
    let report = run_once(&scenario, options, log)?;
    let failure = if report.passed() {
        None
    } else {
        let shrunk = shrink(scenario, options, log)?;
        let name = format!("explore-{}-seed-{seed}.yaml", options.topology.name());
        let path = options.out.join(name);
        let written = std::fs::write(&path, to_yaml(&shrunk)).ok().map(|()| path);
        Some((seed, shrunk, written))
    };
    Ok(SeedOutcome {
        seed,
        simulated_ms: report.simulated_ms,
        failure,
    })
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
        ..RunOptions::default()
    };
    run(scenario, &run_options, log)
}

/// A fresh stream name per run, so shrinking runs never meet an earlier stream.
fn log_counter() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Greedy shrinking: drop timeline entries while the run still fails, then shorten what is
/// left (fault durations, then the run itself).
pub fn shrink(
    mut scenario: Scenario,
    options: &ExploreOptions,
    log: &EventLog,
) -> anyhow::Result<Scenario> {
    let mut runs = 0;
    let fails = |candidate: &Scenario, runs: &mut usize| -> anyhow::Result<bool> {
        *runs += 1;
        Ok(!run_once(candidate, options, log)?.passed())
    };
    let mut changed = true;
    while changed && runs < MAX_SHRINK_RUNS {
        changed = false;
        let mut index = 0;
        while index < scenario.timeline.len() && runs < MAX_SHRINK_RUNS {
            let mut candidate = scenario.clone();
            candidate.timeline.remove(index);
            if fails(&candidate, &mut runs)? {
                scenario = candidate;
                changed = true;
            } else {
                index += 1;
            }
        }
    }
    // The failure must show before the end: cut the run to just after the last entry's effects.
    let last = scenario
        .timeline
        .iter()
        .map(|entry| entry.at_ms)
        .max()
        .unwrap_or(0);
    let mut candidate = scenario.clone();
    candidate.duration_ms = (last + 20 * 60_000).min(scenario.duration_ms);
    if candidate.duration_ms < scenario.duration_ms && fails(&candidate, &mut runs)? {
        scenario = candidate;
    }
    scenario.name = format!("{}-shrunk", scenario.name);
    scenario.description = format!(
        "{} Shrunk to a minimal timeline that still fails.",
        scenario.description
    );
    Ok(scenario)
}

/// The spec of explored clusters: the defaults, with a node loss noticed within minutes.
fn explore_spec(topology: Topology, replication: Replication) -> Spec {
    let mut spec = Spec::defaults(topology);
    spec.replication = replication;
    spec.node_lost_timeout_s = 120;
    spec.standby_start_timeout_s = 300;
    spec
}

/// Draws the scenario of one seed: a fault mix in the first half, quiet in the second.
pub fn generate(topology: Topology, seed: u64, duration_ms: Millis) -> Scenario {
    let mut rng = Rng::new(seed.wrapping_mul(0x5851_F42D_4C95_7F2D));
    let replication = if topology == Topology::MasterSlave && rng.below(2) == 1 {
        Replication::Async
    } else {
        Replication::Sync
    };
    let spec = explore_spec(topology, replication);
    let fault_phase = duration_ms * FAULT_PHASE_PERCENT / 100;
    let count = 1 + rng.below(6);
    let mut timeline = Vec::new();
    let mut permanent_loss = false;
    for _ in 0..count {
        let at_ms = 60_000 + rng.below(fault_phase.saturating_sub(60_000)) / 1000 * 1000;
        let entries = draw(
            &mut rng,
            topology,
            replication,
            at_ms,
            fault_phase,
            &mut permanent_loss,
        );
        timeline.extend(entries);
    }
    if permanent_loss {
        // A node lost for good, combined with a fault that leaves the other member without a
        // complete copy, rightly ends in manual intervention (the only copy is gone): such a seed
        // keeps the loss alone, so that liveness can be required of every seed.
        timeline.retain(|entry: &TimelineEntry| {
            matches!(entry.what, What::Fault(Fault::NodeLoss { for_ms: None }, _))
        });
    }
    timeline.sort_by_key(|entry: &TimelineEntry| entry.at_ms);
    // Lag the async rule lets the engine accept, plus what replication trails by.
    let world = WorldConfig::default();
    let max_lost_writes = match replication {
        Replication::Sync => 0,
        // Async acknowledges alone: what may be lost is the lag the engine accepts, what the
        // standby trails by, and what a cut-off active acknowledges between its last contact
        // and the end of its lease (docs/simulator.md).
        Replication::Async => {
            let window_ms = world.replication_lag_ms
                + u64::from(spec.agent_lease_s + spec.polling_interval_s) * 1000;
            let per_failover = u64::from(world.writes_per_second) * window_ms / 1000 + 1;
            // Each fault may cost one failover's window.
            spec.max_lag_on_failover_bytes / WRITE_BYTES
                + per_failover * (timeline.len() as u64 + 1)
        }
    };
    Scenario {
        name: format!("explore-{}-{seed}", topology.name()),
        description: format!("Drawn by tandem-sim explore from seed {seed}."),
        topology,
        seed,
        duration_ms,
        cluster: spec,
        world,
        timeline,
        expect: Expect {
            final_state: Some(ClusterStateName("Normal".into())),
            recovered_within_ms: None,
            visits: Vec::new(),
            never: Vec::new(),
            max_lost_writes,
        },
    }
}

fn seconds(rng: &mut Rng, from: u64, to: u64) -> Millis {
    (from + rng.below(to - from)) * 1000
}

/// One fault or action (or a pair: stop/start, pause/resume) at `at_ms`.
fn draw(
    rng: &mut Rng,
    topology: Topology,
    replication: Replication,
    at_ms: Millis,
    fault_phase: Millis,
    permanent_loss: &mut bool,
) -> Vec<TimelineEntry> {
    let member_target = |rng: &mut Rng| match (topology, rng.below(4)) {
        (Topology::Standalone, _) => Target::Active,
        (_, 0) => Target::Active,
        (_, 1) => Target::Standby,
        (_, n) => Target::Member((n - 2) as u8),
    };
    let entry = |at_ms, what| TimelineEntry {
        at_ms,
        what,
        line: 0,
    };
    let target = member_target(rng);
    let fault = |_: &mut Rng, fault| What::Fault(fault, Some(target));
    let fault_with =
        |rng: &mut Rng, make: fn(&mut Rng) -> Fault| What::Fault(make(rng), Some(target));
    let what = match rng.below(16) {
        0 => fault_with(rng, |rng| Fault::CrashProcess {
            restart_after_ms: Some(seconds(rng, 1, 60)),
        }),
        1 => fault_with(rng, |rng| Fault::HangProcess {
            for_ms: seconds(rng, 5, 120),
        }),
        2 => fault(rng, Fault::DeletePod),
        3 => fault_with(rng, |rng| Fault::Partition {
            for_ms: seconds(rng, 5, 180),
        }),
        4 => fault_with(rng, |rng| Fault::Isolate {
            for_ms: seconds(rng, 5, 180),
        }),
        5 => {
            // A standalone cluster's only copy lost for good is a failure by design, not a finding.
            let forever = !*permanent_loss
                && topology == Topology::MasterSlave
                && replication == Replication::Sync
                && rng.below(3) == 0;
            *permanent_loss |= forever;
            // A reboot shorter than nodeLostTimeout: a longer one rightly counts as a lost node.
            let for_ms = (!forever).then(|| seconds(rng, 10, 110));
            let standby_node = topology == Topology::MasterSlave && rng.below(2) == 1;
            let node = if standby_node {
                Target::NodeOfStandby
            } else {
                Target::NodeOfActive
            };
            What::Fault(Fault::NodeLoss { for_ms }, Some(node))
        }
        6 => fault_with(rng, |rng| Fault::ReplicationStall {
            for_ms: seconds(rng, 5, 200),
        }),
        7 => fault_with(rng, |rng| Fault::ReplicationBreak {
            for_ms: seconds(rng, 5, 200),
        }),
        8 => fault_with(rng, |rng| Fault::DiskFull {
            for_ms: seconds(rng, 5, 120),
        }),
        9 => fault_with(rng, |rng| Fault::SlowStart {
            start_ms: seconds(rng, 10, 120),
        }),
        10 => fault_with(rng, |rng| Fault::AgentFlap {
            period_ms: seconds(rng, 2, 20),
            for_ms: seconds(rng, 10, 200),
        }),
        11 => What::Fault(
            Fault::OperatorCrash {
                restart_after_ms: seconds(rng, 1, 15),
                lose_log: rng.below(4) == 0,
            },
            None,
        ),
        12 => What::Fault(
            Fault::ApiErrors {
                rate: rng.below(6) as f64 / 10.0,
                for_ms: seconds(rng, 10, 300),
            },
            None,
        ),
        13 => What::Action(Action::Switchover { to: None }),
        14 => What::Action(Action::ConfigChange { hash: None }),
        _ => {
            let (first, second) = if rng.below(2) == 0 {
                (Action::Stop, Action::Start)
            } else {
                (Action::PauseFailover, Action::ResumeFailover)
            };
            let back = (at_ms + seconds(rng, 10, 300)).min(fault_phase);
            return vec![
                entry(at_ms, What::Action(first)),
                entry(back.max(at_ms), What::Action(second)),
            ];
        }
    };
    vec![entry(at_ms, what)]
}
