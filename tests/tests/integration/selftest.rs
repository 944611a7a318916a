//! The runner's own promise, tested from outside: whether a test fails or the whole run is
//! killed, no process of its control plane survives. Each case runs this same binary as a child
//! with a test that exists only there (selected by `TANDEM_RUNNER_SELFTEST`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use libtest_mimic::Trial;
use tandem_tests::cluster::supervisor::wait_for_no_process_mentioning;
use tandem_tests::runner::{control_plane, plain};

/// The environment variable that adds the self-test cases to a child run.
const SELFTEST: &str = "TANDEM_RUNNER_SELFTEST";
/// How long the processes of a dead run may take to go.
const CLEANUP_LIMIT: Duration = Duration::from_secs(10);

pub fn tests() -> Vec<Trial> {
    let mut tests = vec![
        plain(
            "harness::a_failing_test_leaves_no_process",
            a_failing_test_leaves_no_process,
        ),
        plain(
            "harness::a_killed_run_leaves_no_process",
            a_killed_run_leaves_no_process,
        ),
    ];
    if std::env::var_os(SELFTEST).is_some() {
        tests.push(control_plane("selftest::panics", |_| async {
            panic!("this test fails on purpose")
        }));
        tests.push(control_plane("selftest::hangs", |cp| async move {
            let _held = cp;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }));
    }
    tests
}

/// Starts this binary running only the self-test `name`; returns it with its stdout lines.
fn child(
    name: &str,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", name])
        .env(SELFTEST, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the test binary runs");
    let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    (child, lines)
}

/// Reads the child's output until its control plane is ready; returns its directory.
fn ready_directory(lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>) -> String {
    for line in lines.map_while(Result::ok) {
        // The first test that needs the control plane reports it, after its own name.
        if let Some((_, rest)) = line.split_once("control plane ready in ") {
            let directory = rest
                .split_once('(')
                .map(|(_, rest)| rest.trim_end_matches(')'));
            return directory.expect("the directory is reported").to_owned();
        }
    }
    panic!("the child run ended before its control plane was ready");
}

fn a_failing_test_leaves_no_process() {
    let (mut child, mut lines) = child("selftest::panics");
    let directory = ready_directory(&mut lines);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("the child run ends");
    assert_eq!(
        status.code(),
        Some(101),
        "the failing test fails the run: {rest:#?}"
    );
    for expected in [
        "---- selftest::panics ----",
        "test panicked: this test fails on purpose",
    ] {
        assert!(rest.iter().any(|line| line == expected), "{rest:#?}");
    }
    assert!(
        rest.iter()
            .any(|line| line.starts_with("test result: FAILED. 0 passed; 1 failed;")),
        "{rest:#?}"
    );
    let survivors = wait_for_no_process_mentioning(&directory, CLEANUP_LIMIT);
    assert!(
        survivors.is_empty(),
        "processes survived a failed test: {survivors:?}"
    );
    assert!(
        !std::path::Path::new(&directory).exists(),
        "{directory} was not removed"
    );
}

fn a_killed_run_leaves_no_process() {
    let (mut child, mut lines) = child("selftest::hangs");
    let directory = ready_directory(&mut lines);
    assert!(
        !tandem_tests::cluster::supervisor::processes_mentioning(&directory).is_empty(),
        "the child's control plane runs"
    );
    // SIGKILL: no destructor, no handler runs in the child; only the watchdog is left to act.
    child.kill().expect("the child run can be killed");
    child.wait().expect("the child run is reaped");
    let survivors = wait_for_no_process_mentioning(&directory, CLEANUP_LIMIT);
    let _ = std::fs::remove_dir_all(&directory);
    assert!(
        survivors.is_empty(),
        "processes survived a killed run: {survivors:?}"
    );
}
