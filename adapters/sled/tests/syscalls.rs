//! What the kill tests cannot see: the page cache survives a killed process, so they would pass
//! with no `fdatasync` at all. Here the crash test's child runs under `strace`, and the order of
//! its system calls is checked: every acknowledgement it prints comes after an `fdatasync` of
//! sled's `db` file that completed after the last write into that file, and a log created under
//! new directories `fsync`s the parent of each of them. Removing the sync, or moving it after the
//! acknowledgement, fails this test.
//!
//! It needs `strace` (`scripts/test-all.sh` installs it) and fails without it.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long the child appends under `strace`.
const TRACED_FOR: Duration = Duration::from_millis(1_500);

fn is_call(line: &str, name: &str) -> bool {
    // `1234  name(...` or `1234  <... name resumed>...`
    let rest = line
        .split_once(' ')
        .map_or(line, |(_, rest)| rest.trim_start());
    rest.starts_with(&format!("{name}(")) || rest.starts_with(&format!("<... {name} resumed>"))
}

fn completes(line: &str) -> bool {
    !line.contains("<unfinished ...>")
}

fn on_db(line: &str) -> bool {
    line.contains("/sled/db>")
}

#[test]
fn every_acknowledgement_follows_a_completed_fdatasync_and_new_directories_are_synced() {
    let strace = Command::new("strace").arg("-V").output();
    assert!(
        strace.is_ok_and(|output| output.status.success()),
        "this test needs strace (scripts/test-all.sh installs it)"
    );
    let root = tempfile::tempdir().expect("a temporary directory");
    let log = root.path().join("new").join("parents").join("log");
    let trace_path = root.path().join("trace.txt");
    let child = Command::new("strace")
        .args(["-f", "-y", "-qq", "-o"])
        .arg(&trace_path)
        .args([
            "-e",
            "trace=write,pwrite64,pwritev,fdatasync,fsync,sync_file_range",
        ])
        .arg(env!("CARGO_BIN_EXE_tandem-sled-crash-child"))
        .arg(&log)
        .args(["1", "37"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group: killing strace alone would leave the child running, detached.
        .process_group(0)
        .spawn()
        .expect("strace runs the child");
    std::thread::sleep(TRACED_FOR);
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .status()
        .expect("kill runs");
    assert!(killed.success(), "the traced processes could not be killed");
    let output = child.wait_with_output().expect("the child's output");
    let acknowledged = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with("crash/"))
        .count();
    assert!(
        acknowledged >= 5,
        "the child acknowledged only {acknowledged} appends under strace"
    );
    let trace = std::fs::read_to_string(&trace_path).expect("the trace");
    check_order(&trace, &log);
}

fn check_order(trace: &str, log: &Path) {
    let lines: Vec<&str> = trace.lines().collect();
    // The acknowledgements: writes of "crash/0 <seq>\n" to standard output.
    let acks: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| is_call(line, "write") && line.contains("\"crash/0 "))
        .map(|(index, _)| index)
        .collect();
    assert!(!acks.is_empty(), "no acknowledgement in the trace");
    let mut checked = 0;
    for &ack in &acks {
        let last_write = lines[..ack].iter().rposition(|line| {
            (is_call(line, "pwrite64") || is_call(line, "pwritev")) && on_db(line)
        });
        let Some(last_write) = last_write else {
            continue;
        };
        let synced = lines[last_write + 1..ack]
            .iter()
            .any(|line| is_call(line, "fdatasync") && on_db(line) && completes(line));
        assert!(
            synced,
            "acknowledgement at trace line {} follows the write into sled's file at line {} \
             with no completed fdatasync of it in between:\n{}",
            ack + 1,
            last_write + 1,
            lines[last_write..=ack].join("\n")
        );
        checked += 1;
    }
    assert!(
        checked >= 5,
        "only {checked} acknowledgements followed a write"
    );
    // The log's directory and the two new ones above it: each one's parent is synced, so that
    // the new entries survive a power loss.
    let root = log
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("three levels");
    for parent in [
        root.to_path_buf(),
        root.join("new"),
        root.join("new").join("parents"),
    ] {
        let synced = lines.iter().any(|line| {
            is_call(line, "fsync") && line.contains(&format!("<{}>", parent.display()))
        });
        assert!(
            synced,
            "no fsync of {} in the trace: a new directory under it may not survive a power \
             loss",
            parent.display()
        );
    }
}
