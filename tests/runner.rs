//! The integration test binary's runner (`harness = false`): it starts the control plane once,
//! only if a selected test needs it, runs the tests one after the other with a time limit each,
//! reports them as libtest does, then stops the control plane and fails the run if any process it
//! started is still alive. A panicking test fails alone; the teardown still happens.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::ControlPlane;

/// The longest a single test may run.
pub const TEST_TIME_LIMIT: Duration = Duration::from_secs(300);

/// A test's future.
pub type TestFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One test.
pub struct Test {
    /// Its name, as filters match it.
    pub name: &'static str,
    /// What it needs and runs.
    pub body: Body,
}

/// A test body.
pub enum Body {
    /// Needs no control plane.
    Plain(fn()),
    /// Runs against the shared control plane.
    ControlPlane(fn(Arc<ControlPlane>) -> TestFuture),
}

/// What the command line asks for (the subset of libtest's options that matter here; the others
/// are accepted and ignored so that `cargo test -- ...` works).
#[derive(Debug, Default)]
struct Options {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
}

impl Options {
    fn parse(arguments: impl Iterator<Item = String>) -> Self {
        const WITH_VALUE: [&str; 6] = [
            "--test-threads",
            "--format",
            "--color",
            "--logfile",
            "-Z",
            "--shuffle-seed",
        ];
        let mut options = Self::default();
        let mut arguments = arguments.skip(1);
        while let Some(argument) = arguments.next() {
            match argument.as_str() {
                "--exact" => options.exact = true,
                "--list" => options.list = true,
                "--skip" => options.skips.extend(arguments.next()),
                flag if WITH_VALUE.contains(&flag) => {
                    arguments.next();
                }
                flag if flag.starts_with('-') => {}
                filter => options.filters.push(filter.to_owned()),
            }
        }
        options
    }

    fn selects(&self, name: &str) -> bool {
        let matches = |pattern: &String| {
            if self.exact {
                name == pattern
            } else {
                name.contains(pattern.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skips.iter().any(matches)
    }
}

/// Runs the selected tests and returns the process's exit code.
pub fn run(tests: Vec<Test>) -> ExitCode {
    let options = Options::parse(std::env::args());
    let selected: Vec<Test> = tests
        .into_iter()
        .filter(|test| options.selects(test.name))
        .collect();
    if options.list {
        for test in &selected {
            println!("{}: test", test.name);
        }
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    // The control-plane runs end with one more check: every process stopped.
    let count = selected.len() + usize::from(selected.iter().any(needs_control_plane));
    println!("\nrunning {count} tests");
    let (passed, failures) = runtime.block_on(run_selected(&selected));
    report(&failures, passed, started.elapsed())
}

fn needs_control_plane(test: &Test) -> bool {
    matches!(test.body, Body::ControlPlane(_))
}

/// Runs the tests; returns how many passed, and the failures as (name, message).
async fn run_selected(selected: &[Test]) -> (usize, Vec<(String, String)>) {
    let mut failures = Vec::new();
    let mut passed = 0;
    let control_plane = if selected.iter().any(needs_control_plane) {
        match ControlPlane::start().await {
            Ok(control_plane) => {
                println!(
                    "control plane ready in {:.1}s ({})",
                    control_plane.startup().as_secs_f64(),
                    control_plane.directory().display()
                );
                Ok(Arc::new(control_plane))
            }
            Err(error) => Err(format!("the control plane did not start: {error}")),
        }
    } else {
        Err(String::new())
    };
    for test in selected {
        let outcome = match (&test.body, &control_plane) {
            (Body::Plain(body), _) => run_plain(*body),
            (Body::ControlPlane(body), Ok(control_plane)) => {
                run_async(body(control_plane.clone())).await
            }
            (Body::ControlPlane(_), Err(error)) => Err(error.clone()),
        };
        match outcome {
            Ok(elapsed) => {
                passed += 1;
                println!("test {} ... ok ({:.1}s)", test.name, elapsed.as_secs_f64());
            }
            Err(message) => {
                println!("test {} ... FAILED", test.name);
                failures.push((test.name.to_owned(), message));
            }
        }
    }
    if control_plane.is_err() && selected.iter().any(needs_control_plane) {
        println!(
            "test control_plane::every_process_is_stopped_at_the_end ... ignored (no control plane)"
        );
    }
    if let Ok(control_plane) = control_plane {
        let name = "control_plane::every_process_is_stopped_at_the_end";
        match stop(control_plane) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(message) => {
                println!("test {name} ... FAILED");
                failures.push((name.to_owned(), message));
            }
        }
    }
    (passed, failures)
}

fn run_plain(body: fn()) -> Result<Duration, String> {
    let started = Instant::now();
    std::panic::catch_unwind(body)
        .map(|()| started.elapsed())
        .map_err(panic_message)
}

async fn run_async(future: TestFuture) -> Result<Duration, String> {
    let started = Instant::now();
    // A task of its own: a panic inside fails this test only.
    let task = tokio::spawn(AssertUnwindSafe(future));
    let abort = task.abort_handle();
    match tokio::time::timeout(TEST_TIME_LIMIT, task).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(error)) if error.is_panic() => Err(panic_message(error.into_panic())),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => {
            abort.abort();
            Err(format!(
                "the test did not finish within {TEST_TIME_LIMIT:?}"
            ))
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| {
            payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
        })
        .unwrap_or_else(|| "the test panicked".to_owned())
}

/// Stops the control plane once the tests are done with it; fails if a process survives.
fn stop(control_plane: Arc<ControlPlane>) -> Result<(), String> {
    let control_plane = Arc::try_unwrap(control_plane)
        .map_err(|_| "a test still holds the control plane after the run".to_owned())?;
    let processes = control_plane.processes();
    let survivors = control_plane.stop();
    let still_alive: Vec<&(String, u32)> = processes
        .iter()
        .filter(|(_, pid)| {
            std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(*pid)
        })
        .collect();
    if survivors.is_empty() && still_alive.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "processes survived the run: {survivors:?} {still_alive:?}"
        ))
    }
}

fn is_zombie(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .any(|line| line.starts_with("State:") && line.contains('Z'))
}

fn report(failures: &[(String, String)], passed: usize, elapsed: Duration) -> ExitCode {
    if !failures.is_empty() {
        println!("\nfailures:");
        for (name, message) in failures.iter() {
            println!("\n---- {name} ----\n{message}");
        }
        println!("\nfailures:");
        for (name, _) in failures.iter() {
            println!("    {name}");
        }
    }
    let result = if failures.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {result}. {passed} passed; {} failed; finished in {:.2}s\n",
        failures.len(),
        elapsed.as_secs_f64()
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(101)
    }
}
