//! The integration test binary's runner (`harness = false`), on `libtest-mimic`: libtest's
//! command line, filtering and report, with a time limit on each test. The control plane is
//! started by the first selected test that needs it, shared by the others, and stopped after the
//! run, which fails if any process it started is still alive. A panicking test fails alone; the
//! teardown still happens.

use std::future::Future;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use tokio::runtime::{Handle, Runtime};

use crate::cluster::ControlPlane;

/// The longest a single test may run.
pub const TEST_TIME_LIMIT: Duration = Duration::from_secs(300);

/// What the control-plane tests share: made by the first of them, taken apart after the run.
struct Shared {
    runtime: Runtime,
    /// The control plane, or why it did not start.
    control_plane: Result<Arc<ControlPlane>, String>,
}

/// Empty until a test needs the control plane.
static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

/// A test that needs no control plane.
pub fn plain(name: &'static str, body: impl FnOnce() + Send + 'static) -> Trial {
    Trial::test(name, move || {
        // A thread of its own, named as libtest names it, so that the time limit can end the wait.
        let (finished, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                body();
                let _ = finished.send(());
            })?;
        if done.recv_timeout(TEST_TIME_LIMIT) == Err(RecvTimeoutError::Timeout) {
            return Err(over_time());
        }
        // Its panic fails this test, with libtest-mimic's message.
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok(())
    })
}

/// A test against the run's shared control plane.
pub fn control_plane<F>(
    name: &'static str,
    body: impl FnOnce(Arc<ControlPlane>) -> F + Send + 'static,
) -> Trial
where
    F: Future<Output = ()>,
{
    Trial::test(name, move || {
        let (runtime, control_plane) = shared();
        let control_plane = control_plane?;
        // On time-out the future is dropped, which cancels the test.
        runtime
            .block_on(async { tokio::time::timeout(TEST_TIME_LIMIT, body(control_plane)).await })
            .map_err(|_| over_time())
    })
}

fn over_time() -> Failed {
    format!("the test did not finish within {TEST_TIME_LIMIT:?}").into()
}

/// The shared runtime and control plane, started on first use.
fn shared() -> (Handle, Result<Arc<ControlPlane>, String>) {
    let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    let shared = slot.get_or_insert_with(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let control_plane = match runtime.block_on(ControlPlane::start()) {
            Ok(control_plane) => {
                println!(
                    "control plane ready in {:.1}s ({})",
                    control_plane.startup().as_secs_f64(),
                    control_plane.directory().display()
                );
                Ok(Arc::new(control_plane))
            }
            Err(error) => Err(format!("the control plane did not start: {error}")),
        };
        Shared {
            runtime,
            control_plane,
        }
    });
    (
        shared.runtime.handle().clone(),
        shared.control_plane.clone(),
    )
}

/// Runs the tests as the command line asks and returns the process's exit code.
pub fn run(tests: Vec<Trial>) -> ExitCode {
    let mut arguments = Arguments::from_args();
    // One test at a time unless asked otherwise: they share the control plane and its nodes.
    arguments.test_threads.get_or_insert(1);
    let conclusion = libtest_mimic::run(&arguments, tests);
    let taken = SHARED.lock().unwrap_or_else(PoisonError::into_inner).take();
    let Some(Shared {
        runtime,
        control_plane: Ok(control_plane),
    }) = taken
    else {
        return conclusion.exit_code();
    };
    let stopped = stop(control_plane);
    // The tasks the tests left go with the runtime, and with them any hold on the control plane,
    // whose drop then stops it.
    drop(runtime);
    match stopped {
        Ok(()) => {
            println!("control plane stopped: no process of it is left\n");
            conclusion.exit_code()
        }
        Err(message) => {
            println!("error: {message}\n");
            ExitCode::from(101)
        }
    }
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
