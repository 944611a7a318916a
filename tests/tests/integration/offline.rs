//! Tests that need no control plane.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use tandem_crds::validation::parse_and_validate;
use tandem_tests::cluster::supervisor::Supervisor;
use tandem_tests::examples::Example;
use tandem_tests::invalid::{cases, check_refusals};
use tandem_tests::runner::plain;

/// How long the watchdog may take to clean up after its parent is gone.
const WATCHDOG_LIMIT: Duration = Duration::from_secs(10);

pub fn tests() -> Vec<Trial> {
    vec![
        plain(
            "validation::rust_accepts_the_examples",
            rust_accepts_the_examples,
        ),
        plain(
            "validation::rust_refuses_every_invalid_case",
            rust_refuses_every_invalid_case,
        ),
        plain(
            "harness::watchdog_stops_the_group_when_the_runner_dies",
            watchdog_stops_the_group_when_the_runner_dies,
        ),
    ]
}

fn rust_accepts_the_examples() {
    for example in Example::ALL {
        let parsed = parse_and_validate(example.json(), None);
        assert!(parsed.is_ok(), "{example:?}: {parsed:?}");
    }
}

fn rust_refuses_every_invalid_case() {
    let cases = cases();
    assert!(
        cases.len() >= 10,
        "the catalog of invalid objects holds at least 10 of them"
    );
    for case in &cases {
        let previous = case.update.then(|| {
            parse_and_validate(case.example.json(), None)
                .expect("the example is valid")
                .spec
        });
        let refusals = match parse_and_validate(case.object(), previous.as_ref()) {
            Ok(_) => panic!("{}: Rust validation accepted it", case.name),
            Err(errors) => errors
                .into_iter()
                .map(|error| (error.field, error.message))
                .collect::<Vec<_>>(),
        };
        check_refusals(case, "Rust validation", &refusals);
    }
}

/// The guarantee behind "no orphaned process": when the runner dies without cleaning up (here a
/// stand-in parent killed with SIGKILL), the watchdog kills every process of the group.
fn watchdog_stops_the_group_when_the_runner_dies() {
    let logs = std::env::temp_dir().join(format!("tandem-watchdog-test-{}", std::process::id()));
    let mut parent = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("sleep runs");
    let mut supervisor = Supervisor::watching(parent.id(), &logs).expect("the watchdog starts");
    let mut member = std::process::Command::new("sleep");
    member.arg("601");
    supervisor
        .spawn("member", member)
        .expect("the member starts");
    assert!(
        supervisor.check_running().is_ok(),
        "the member runs while the parent lives"
    );

    parent.kill().expect("the stand-in parent can be killed");
    parent.wait().expect("the stand-in parent is reaped");
    let deadline = Instant::now() + WATCHDOG_LIMIT;
    while supervisor.check_running().is_ok() {
        assert!(
            Instant::now() < deadline,
            "the watchdog left the member running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let group = supervisor.group();
    drop(supervisor);
    let _ = std::fs::remove_dir_all(&logs);
    let members = std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            // Field 5 of /proc/<pid>/stat, after the parenthesised command, is the group.
            let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
            after.split_whitespace().nth(2) == Some(group.to_string().as_str())
        })
        .count();
    assert_eq!(members, 0, "processes remain in the group {group}");
}
