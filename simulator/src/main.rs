//! `tandem-sim`: runs failure scenarios against the tandem engine in virtual time, explores
//! random fault schedules, replays and inspects event logs, and draws the state machine.
//!
//! Exit codes: 0 when everything held, 1 when an invariant or expectation failed, 2 for bad
//! input (a scenario file, an argument, a log that cannot be read).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use tandem_engine::Topology;
use tandem_sim::catalog::{
    failure_details, load_all, output_path, run_all, scenario_paths, summary,
};
use tandem_sim::explore::{ExploreOptions, explore};
use tandem_sim::logtool;
use tandem_sim::run::RunOptions;
use tandem_sim::timeline::render_svg;
use tandem_sled::EventLog;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tandem-sim",
    version,
    about = "A deterministic failure simulator for tandem"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs scenario files (or every scenario of directories).
    Run {
        /// Scenario files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Overrides each scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Writes every input, event and effect as JSON lines.
        #[arg(long, value_name = "FILE.jsonl")]
        trace: Option<PathBuf>,
        /// Draws the timeline picture.
        #[arg(long, value_name = "FILE.svg")]
        timeline: Option<PathBuf>,
        /// Keeps the event log in this directory (default: a temporary one).
        #[arg(long, value_name = "DIR")]
        log: Option<PathBuf>,
        /// Also checks the timer table after every step, as the property tests do: a timer
        /// just before the engine's next deadline records nothing.
        #[arg(long)]
        check_timer_table: bool,
    },
    /// Measures the catalog's speed: runs every scenario several times on one thread and prints
    /// simulated over wall time per topology.
    Bench {
        /// Scenario files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// How many times each scenario runs.
        #[arg(long, default_value_t = 9)]
        rounds: usize,
    },
    /// Swarm testing: random fault mixes per seed, then a quiet phase where the cluster must
    /// recover; a failure is shrunk and written out as a scenario.
    Explore {
        /// master-slave or standalone.
        #[arg(long, value_enum, default_value = "master-slave")]
        topology: TopologyArg,
        /// Seeds, as `A..B` (B excluded) or `A..=B` (B included).
        #[arg(long, default_value = "1..101")]
        seeds: String,
        /// Simulated time per seed (faults, then the quiet phase).
        #[arg(long, default_value = "1h")]
        duration: String,
        /// Where failing scenarios are written.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
        /// Keeps the event logs in this directory, one per worker in `worker-N` (default: a
        /// temporary one). The streams of passing runs are removed.
        #[arg(long, value_name = "DIR")]
        log: Option<PathBuf>,
    },
    /// Re-decides every recorded input with this build of the engine, and prints each cluster's
    /// history.
    Replay {
        /// The event log's directory.
        log_dir: PathBuf,
    },
    /// Inspects an event log.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Prints the state machine as DOT or Mermaid.
    Diagram {
        /// dot or mermaid.
        #[arg(long, value_enum, default_value = "dot")]
        format: DiagramFormat,
        /// master-slave or standalone.
        #[arg(long, value_enum, default_value = "master-slave")]
        topology: TopologyArg,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Prints the records of every stream (or one).
    Show {
        /// The event log's directory.
        log_dir: PathBuf,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
    /// Checks every record: checksums, versions, sequence, and that the fold works.
    Verify {
        /// The event log's directory.
        log_dir: PathBuf,
    },
    /// Writes every record as JSON lines.
    Export {
        /// The event log's directory.
        log_dir: PathBuf,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum TopologyArg {
    MasterSlave,
    Standalone,
}

impl From<TopologyArg> for Topology {
    fn from(arg: TopologyArg) -> Topology {
        match arg {
            TopologyArg::MasterSlave => Topology::MasterSlave,
            TopologyArg::Standalone => Topology::Standalone,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum DiagramFormat {
    Dot,
    Mermaid,
}

/// A failure of the run itself (bad input), as opposed to a failed check.
struct BadInput(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for BadInput {
    fn from(error: E) -> BadInput {
        BadInput(error.into())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match dispatch(cli.command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(BadInput(error)) => {
            eprintln!("tandem-sim: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Opens the log in `dir`, or in a temporary directory kept alive by the returned guard.
fn open_log(dir: Option<PathBuf>) -> Result<(EventLog, Option<tempfile::TempDir>)> {
    let config = tandem_sim::run::log_config();
    match dir {
        Some(dir) => Ok((
            EventLog::open(&dir, config).with_context(|| format!("opening {}", dir.display()))?,
            None,
        )),
        None => {
            let (log, temporary) = tandem_sim::run::temporary_log()?;
            Ok((log, Some(temporary)))
        }
    }
}

/// Opens one log per explore worker, in `worker-N` under `dir` or under a temporary
/// directory kept alive by the returned guard.
fn open_worker_logs(
    dir: Option<PathBuf>,
    workers: usize,
) -> Result<(Vec<EventLog>, Option<tempfile::TempDir>)> {
    let (dir, guard) = match dir {
        Some(dir) => (dir, None),
        None => {
            let temporary = tempfile::tempdir().context("creating a temporary directory")?;
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    let logs = (0..workers)
        .map(|worker| {
            let path = dir.join(format!("worker-{worker}"));
            EventLog::open(&path, tandem_sim::run::log_config())
                .with_context(|| format!("opening {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((logs, guard))
}

fn dispatch(command: Command) -> Result<bool, BadInput> {
    match command {
        Command::Run {
            paths,
            seed,
            trace,
            timeline,
            log,
            check_timer_table,
        } => run_command(paths, seed, trace, timeline, log, check_timer_table),
        Command::Bench { paths, rounds } => {
            let scenarios = load_all(&scenario_paths(&paths)?)?;
            let (log, _guard) = open_log(None)?;
            print!("{}", tandem_sim::catalog::bench(&scenarios, rounds, &log)?);
            Ok(true)
        }
        Command::Explore {
            topology,
            seeds,
            duration,
            out,
            log,
        } => {
            let options = ExploreOptions::parse(topology.into(), &seeds, &duration, out)?;
            let (logs, _guard) = open_worker_logs(log, tandem_sim::explore::workers())?;
            Ok(explore(&options, &logs)?)
        }
        Command::Replay { log_dir } => Ok(logtool::replay(&log_dir)?),
        Command::Log { command } => match command {
            LogCommand::Show { log_dir, stream } => Ok(logtool::show(&log_dir, stream.as_deref())?),
            LogCommand::Verify { log_dir } => Ok(logtool::verify(&log_dir)?),
            LogCommand::Export { log_dir, stream } => {
                Ok(logtool::export(&log_dir, stream.as_deref())?)
            }
        },
        Command::Diagram { format, topology } => {
            let topology = topology.into();
            let text = match format {
                DiagramFormat::Dot => tandem_engine::transitions::dot(topology),
                DiagramFormat::Mermaid => tandem_engine::transitions::mermaid(topology),
            };
            print!("{text}");
            Ok(true)
        }
    }
}

fn run_command(
    paths: Vec<PathBuf>,
    seed: Option<u64>,
    trace: Option<PathBuf>,
    timeline: Option<PathBuf>,
    log: Option<PathBuf>,
    check_timer_table: bool,
) -> Result<bool, BadInput> {
    let scenarios = load_all(&scenario_paths(&paths)?)?;
    let (log, _guard) = open_log(log)?;
    let options = RunOptions {
        seed,
        trace: trace.is_some(),
        check_timer_table,
        ..RunOptions::default()
    };
    let reports = run_all(&scenarios, &options, &log)?;
    let many = reports.len() > 1;
    for report in &reports {
        if let Some(path) = &trace {
            let path = output_path(path, &report.name, many);
            let mut text = report.trace.join("\n");
            text.push('\n');
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(path) = &timeline {
            let path = output_path(path, &report.name, many);
            std::fs::write(&path, render_svg(&report.timeline))
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    print!("{}", summary(&reports));
    for report in &reports {
        if let Some(details) = failure_details(report) {
            println!("\n{details}");
        }
    }
    Ok(reports.iter().all(|report| report.passed()))
}
