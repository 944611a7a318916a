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
    let mut progress = Progress::new(if show_progress {
        options.seeds.clone().count()
    } else {
        0
    });
    let mut failures = Vec::new();
    let mut simulated_ms = 0;
    for seed in options.seeds.clone() {
        let scenario = generate(options.topology, seed, options.duration_ms);
        let report = run_once(&scenario, options, log)?;
        simulated_ms += report.simulated_ms;
        if !report.passed() {
            let shrunk = shrink(scenario, options, log)?;
            let path = options.out.join(format!(
                "explore-{}-seed-{seed}.yaml",
                options.topology.name()
            ));
            let written = std::fs::write(&path, to_yaml(&shrunk)).ok().map(|()| path);
            failures.push((seed, shrunk, written));
        }
        progress.tick(&format!("seed {seed}"));
    }
    Ok(Exploration {
        seeds: options.seeds.clone().count() as u64,
        failures,
        simulated_ms,
        wall_secs: started.elapsed().as_secs_f64(),
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
    use std::sync::atomic::{AtomicU64, Ordering};
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
    timeline.sort_by_key(|entry: &TimelineEntry| entry.at_ms);
    // Lag the async rule lets the engine accept, plus what replication trails by.
    let world = WorldConfig::default();
    let max_lost_writes = match replication {
        Replication::Sync => 0,
        Replication::Async => {
            spec.max_lag_on_failover_bytes / WRITE_BYTES
                + u64::from(world.writes_per_second) * world.replication_lag_ms / 1000
                + 1
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
            let forever = !*permanent_loss && replication == Replication::Sync && rng.below(3) == 0;
            *permanent_loss |= forever;
            let for_ms = (!forever).then(|| seconds(rng, 10, 300));
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
