//! Running many scenarios: loading a catalog (files and directories), running each, and the
//! summary table.

use crate::run::{RunError, RunOptions, RunReport, run};
use crate::scenario::{Scenario, ScenarioError, load};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use tandem_engine::Topology;
use tandem_sled::EventLog;

/// Why a catalog cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A scenario file is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A directory could not be read.
    #[error("{}: cannot read the directory: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Two scenarios have the same name.
    #[error("{}: name {name:?} is already used by {}", path.display(), other.display())]
    DuplicateName {
        /// The second file.
        path: PathBuf,
        /// The name.
        name: String,
        /// The first file with it.
        other: PathBuf,
    },
    /// Nothing to run.
    #[error("no scenario files found in {0}")]
    Empty(String),
}

/// Expands files and directories (their `*.yaml` and `*.yml` files, sorted) into scenario paths.
pub fn scenario_paths(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, CatalogError> {
    let mut paths = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = std::fs::read_dir(input).map_err(|source| CatalogError::Directory {
                path: input.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.extension()
                        .is_some_and(|ext| ext == "yaml" || ext == "yml")
                })
                .collect();
            found.sort();
            paths.extend(found);
        } else {
            paths.push(input.clone());
        }
    }
    if paths.is_empty() {
        let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        return Err(CatalogError::Empty(names.join(", ")));
    }
    Ok(paths)
}

/// Loads every scenario, failing on the first bad file, and refusing duplicate names.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Scenario>, CatalogError> {
    let mut scenarios: Vec<(PathBuf, Scenario)> = Vec::new();
    for path in paths {
        let scenario = load(path)?;
        if let Some((other, _)) = scenarios
            .iter()
            .find(|(_, other)| other.name == scenario.name)
        {
            let name = scenario.name.clone();
            return Err(CatalogError::DuplicateName {
                path: path.clone(),
                name,
                other: other.clone(),
            });
        }
        scenarios.push((path.clone(), scenario));
    }
    Ok(scenarios
        .into_iter()
        .map(|(_, scenario)| scenario)
        .collect())
}

/// A progress line on standard error, when it is a terminal and there is more than one item.
pub struct Progress {
    total: usize,
    done: usize,
    shown: bool,
}

impl Progress {
    /// A progress indicator for `total` items.
    pub fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            shown: total > 1 && std::io::stderr().is_terminal(),
        }
    }

    /// One more item is done.
    pub fn tick(&mut self, label: &str) {
        self.done += 1;
        if !self.shown {
            return;
        }
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(width - filled));
        let mut err = std::io::stderr();
        let _ = write!(err, "\r[{bar}] {}/{} {label:<40.40}", self.done, self.total);
        if self.done == self.total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

/// Runs every scenario into one log (a stream each) and returns the reports.
pub fn run_all(
    scenarios: &[Scenario],
    options: &RunOptions,
    log: &EventLog,
) -> Result<Vec<RunReport>, RunError> {
    let mut progress = Progress::new(scenarios.len());
    let mut reports = Vec::new();
    for scenario in scenarios {
        reports.push(run(scenario, options, log)?);
        progress.tick(&scenario.name);
    }
    Ok(reports)
}

/// The catalog's speed, measured: every scenario is run `rounds` times on one thread, and
/// for each topology the ratio of simulated time to the wall time of its runs is given for
/// each round (median, lowest, highest). Each run's streams are removed after it, so that
/// every round meets a log of the same size. Fails on the first failing run.
pub fn bench(scenarios: &[Scenario], rounds: usize, log: &EventLog) -> anyhow::Result<String> {
    let mut out = String::new();
    for topology in [Topology::MasterSlave, Topology::Standalone] {
        let of: Vec<&Scenario> = scenarios
            .iter()
            .filter(|scenario| scenario.topology == topology)
            .collect();
        if of.is_empty() {
            continue;
        }
        let mut ratios = Vec::new();
        for _ in 0..rounds.max(1) {
            let (mut simulated_ms, mut wall) = (0u64, std::time::Duration::ZERO);
            for scenario in &of {
                let report = run(scenario, &RunOptions::default(), log)?;
                if let Some(failure) = &report.failure {
                    anyhow::bail!(
                        "{} failed: {}: {}",
                        scenario.name,
                        failure.what,
                        failure.detail
                    );
                }
                simulated_ms += report.simulated_ms;
                wall += report.wall;
                report.remove_streams(log)?;
            }
            ratios.push(simulated_ms as f64 / (wall.as_secs_f64() * 1000.0).max(1e-9));
        }
        ratios.sort_by(f64::total_cmp);
        out.push_str(&format!(
            "{}: {} scenarios, {} rounds: simulated/wall median {:.0}x (lowest {:.0}x, highest {:.0}x)\n",
            topology.name(),
            of.len(),
            ratios.len(),
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
        ));
    }
    Ok(out)
}

fn duration(ms: u64) -> String {
    if ms >= 60_000 {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

/// The summary table: scenario, result, transitions, time to recover, writes lost, what the
/// run cost clients (time without writes, time without a standby receiving them, full copies,
/// rewinds),
/// simulated/wall ratio.
pub fn summary(reports: &[RunReport]) -> String {
    let name_width = reports
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = format!(
        "{:<name_width$}  {:<6}  {:>11}  {:>10}  {:>9}  {:>9}  {:>9}  {:>6}  {:>7}  {:>10}\n",
        "scenario",
        "result",
        "transitions",
        "recovered",
        "lost",
        "no writes",
        "degraded",
        "copies",
        "rewinds",
        "sim/wall"
    );
    for report in reports {
        let recovered = report.recovered_after_ms.map_or("-".to_string(), duration);
        out.push_str(&format!(
            "{:<name_width$}  {:<6}  {:>11}  {:>10}  {:>9}  {:>9}  {:>9}  {:>6}  {:>7}  {:>9.0}x\n",
            report.name,
            if report.passed() { "ok" } else { "FAILED" },
            report.transitions,
            recovered,
            format!("{}/{}", report.lost_writes, report.acknowledged_writes),
            duration(report.costs.write_outage_ms),
            duration(report.costs.degraded_ms),
            report.costs.full_copies,
            report.costs.rewinds,
            report.speedup(),
        ));
    }
    out.push('\n');
    for topology in [Topology::MasterSlave, Topology::Standalone] {
        let of: Vec<&RunReport> = reports
            .iter()
            .filter(|report| report.topology == topology)
            .collect();
        if of.is_empty() {
            continue;
        }
        let simulated_ms: u64 = of.iter().map(|report| report.simulated_ms).sum();
        let wall: std::time::Duration = of.iter().map(|report| report.wall).sum();
        out.push_str(&format!(
            "{}: {} scenarios, {} simulated in {:.3} s of runs: {:.0}x\n",
            topology.name(),
            of.len(),
            duration(simulated_ms),
            wall.as_secs_f64(),
            simulated_ms as f64 / (wall.as_secs_f64() * 1000.0).max(1e-9),
        ));
    }
    let passed = reports.iter().filter(|report| report.passed()).count();
    out.push_str(&format!(
        "{} passed, {} failed\n",
        passed,
        reports.len() - passed
    ));
    out
}

/// The failure section of a report: what, when, the seed, and the last steps.
pub fn failure_details(report: &RunReport) -> Option<String> {
    let failure = report.failure.as_ref()?;
    let mut out = format!(
        "{}: {} violated at {} (seed {}): {}\nlast steps:\n",
        report.name,
        failure.what,
        duration(failure.at_ms),
        report.seed,
        failure.detail
    );
    for step in &report.last_steps {
        out.push_str("  ");
        out.push_str(step);
        out.push('\n');
    }
    Some(out)
}

/// Where a file of a run's output goes when several scenarios run: `path` itself for one, else
/// `path` with the scenario's name before the extension, in `path`'s directory whatever the
/// name: a scenario file's name has no path separator or control character, and one built
/// otherwise has them replaced by `_`.
pub fn output_path(path: &Path, name: &str, many: bool) -> PathBuf {
    if !many {
        return path.to_path_buf();
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("out");
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let extension = path.extension().and_then(|s| s.to_str()).unwrap_or("");
    path.with_file_name(format!("{stem}-{name}.{extension}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_files_stay_in_the_directory_asked_for() {
        let asked = Path::new("out/runs/trace.jsonl");
        assert_eq!(output_path(asked, "a/b", false), asked);
        assert_eq!(
            output_path(asked, "crash", true),
            Path::new("out/runs/trace-crash.jsonl")
        );
        for name in [
            "../../etc/passwd",
            "/etc/passwd",
            "a\\..\\..\\b",
            "..",
            "a\nb",
            "a\0b",
        ] {
            let path = output_path(asked, name, true);
            assert_eq!(
                path.parent(),
                asked.parent(),
                "{name:?}: {}",
                path.display()
            );
            let file = path.file_name().and_then(|file| file.to_str()).unwrap();
            assert!(
                file.starts_with("trace-") && file.ends_with(".jsonl"),
                "{name:?}: {file}"
            );
            assert!(!file.contains(['/', '\\', '\n', '\0']), "{name:?}: {file}");
        }
    }
}
