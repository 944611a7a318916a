//! The `tandem-sim` command line: exit codes, outputs, and the log commands on a real log.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem-sim"))
        .args(args)
        .output()
        .expect("tandem-sim runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn catalog(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    path.to_str().expect("a UTF-8 path").to_string()
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("writing a scenario");
    path.to_str().expect("a UTF-8 path").to_string()
}

#[test]
fn a_passing_run_exits_0_with_its_summary_trace_and_timeline() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let trace = dir.path().join("trace.jsonl");
    let svg = dir.path().join("timeline.svg");
    let output = sim(&[
        "run",
        &catalog("active-process-crash.yaml"),
        "--trace",
        trace.to_str().expect("UTF-8"),
        "--timeline",
        svg.to_str().expect("UTF-8"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("1 passed, 0 failed"),
        "{}",
        text(&output)
    );
    let trace = std::fs::read_to_string(&trace).expect("the trace");
    assert!(trace.lines().count() > 100);
    for line in trace.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert!(value.get("t").is_some() && value.get("type").is_some());
    }
    assert!(
        trace.contains("Promoting"),
        "the trace holds the engine's events"
    );
    let svg = std::fs::read_to_string(&svg).expect("the picture");
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..80.min(svg.len())]
    );
    assert!(svg.contains("ActiveDown"));
}

#[test]
fn an_unmet_expectation_exits_1_and_names_it_with_the_seed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let scenario = write(
        dir.path(),
        "wrong.yaml",
        "name: wrong\ntopology: master-slave\nduration: 10m\ntimeline:\n  - at: 2m\n    fault: crash-process\n    target: active\nexpect:\n  never: [ActiveDown]\n",
    );
    let output = sim(&["run", &scenario, "--seed", "42"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let out = text(&output);
    assert!(
        out.contains("expect.never") && out.contains("seed 42") && out.contains("last steps"),
        "{out}"
    );
}

#[test]
fn bad_input_exits_2_naming_the_file_line_and_key() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let scenario = write(
        dir.path(),
        "bad.yaml",
        "name: bad\ntopology: master-slave\ntimeline:\n  - at: 2m\n    fault: crash-proces\n    target: active\n",
    );
    let output = sim(&["run", &scenario]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let out = text(&output);
    assert!(
        out.contains("bad.yaml:5") && out.contains("timeline[0].fault"),
        "{out}"
    );
    let output = sim(&["run", "/nonexistent/scenario.yaml"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let output = sim(&["explore", "--seeds", "5..1"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let output = sim(&["log", "verify", "/nonexistent/log"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn what_is_not_a_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = sim(&["run", "/dev/zero"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "tandem-sim: /dev/zero: cannot read: it is a character device, not a regular file\n"
    );
    // A directory ending in .yaml, inside a directory given to run.
    std::fs::create_dir(dir.path().join("odd.yaml")).expect("a directory");
    let output = sim(&["run", dir.path().to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("odd.yaml: cannot read: it is a directory, not a regular file"),
        "{}",
        text(&output)
    );
}

#[test]
fn names_at_their_longest_run_and_output_stays_where_asked() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let scenarios = dir.path().join("scenarios");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&scenarios).expect("a directory");
    std::fs::create_dir_all(&out).expect("a directory");
    let long = "n".repeat(tandem_sim::scenario::MAX_NAME_BYTES);
    for (file, name) in [("a.yaml", long.as_str()), ("b.yaml", "a name, é")] {
        write(
            &scenarios,
            file,
            &format!("name: {name:?}\ntopology: standalone\nduration: 10m\n"),
        );
    }
    let trace = out.join("t.jsonl");
    let svg = out.join("p.svg");
    let output = sim(&[
        "run",
        scenarios.to_str().expect("UTF-8"),
        "--trace",
        trace.to_str().expect("UTF-8"),
        "--timeline",
        svg.to_str().expect("UTF-8"),
        "--seed",
        "18446744073709551615",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .expect("the output directory")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .into_string()
                .expect("UTF-8")
        })
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "p-a name, é.svg".to_owned(),
            format!("p-{long}.svg"),
            "t-a name, é.jsonl".to_owned(),
            format!("t-{long}.jsonl"),
        ]
    );
    assert_eq!(
        std::fs::read_dir(dir.path())
            .expect("the directory")
            .count(),
        2
    );
    // A name with a path in it is refused before anything runs.
    let bad = write(
        &scenarios,
        "c.yaml",
        "name: ../../escape\ntopology: standalone\n",
    );
    let output = sim(&["run", &bad, "--trace", trace.to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains(
            "c.yaml:1: name: the name contains '/': a name names files, and has no path separator"
        ),
        "{}",
        text(&output)
    );
}

#[test]
fn a_kept_log_can_be_shown_verified_exported_and_replayed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join("log");
    let log_arg = log.to_str().expect("UTF-8");
    let output = sim(&[
        "run",
        &catalog("operator-crash-mid-failover.yaml"),
        &catalog("standalone-process-crash.yaml"),
        "--log",
        log_arg,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    let shown = sim(&["log", "show", log_arg]);
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
    assert!(
        text(&shown).contains("stream operator-crash-mid-failover-1"),
        "{}",
        text(&shown)
    );
    assert!(text(&shown).contains("ActiveDown"));

    let verified = sim(&["log", "verify", log_arg]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    assert!(text(&verified).contains(": ok"), "{}", text(&verified));

    let exported = sim(&[
        "log",
        "export",
        log_arg,
        "--stream",
        "standalone-process-crash-1",
    ]);
    assert_eq!(exported.status.code(), Some(0), "{}", text(&exported));
    let stdout = String::from_utf8_lossy(&exported.stdout).to_string();
    assert!(stdout.lines().count() > 10);
    for line in stdout.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(value["stream"], "standalone-process-crash-1");
    }

    let replayed = sim(&["replay", log_arg]);
    assert_eq!(replayed.status.code(), Some(0), "{}", text(&replayed));
    let out = text(&replayed);
    assert!(!out.contains("DIFFERS"), "{out}");
    assert!(
        out.contains("PromotionConfirmed"),
        "the history of each cluster: {out}"
    );
}

/// Every file of a directory, with its bytes, recursively.
fn snapshot_of(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("a listing") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("a file");
                files.insert(path, bytes);
            }
        }
    }
    files
}

/// Every command that reads a log.
const READERS: [&[&str]; 4] = [
    &["log", "verify"],
    &["log", "show"],
    &["log", "export"],
    &["replay"],
];

#[test]
fn reading_a_log_never_writes_to_it_nor_creates_one() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join("log");
    let log_arg = log.to_str().expect("UTF-8");
    let output = sim(&[
        "run",
        &catalog("active-process-crash.yaml"),
        "--log",
        log_arg,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let untouched = snapshot_of(&log);
    for command in READERS {
        let mut args = command.to_vec();
        args.push(log_arg);
        let output = sim(&args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{command:?}: {}",
            text(&output)
        );
        assert!(
            snapshot_of(&log) == untouched,
            "{command:?} changed the log's files"
        );
    }

    // Damage that removes acknowledged records: every reader refuses it, naming the log, and
    // the damage stays as it was, so that undoing it brings the records back.
    let db = log.join("sled").join("db");
    let flip = || {
        let mut bytes = std::fs::read(&db).expect("sled's file");
        bytes[4000] ^= 0x5a;
        std::fs::write(&db, &bytes).expect("the damaged file");
    };
    flip();
    let damaged = snapshot_of(&log);
    for command in READERS {
        let mut args = command.to_vec();
        args.push(log_arg);
        let output = sim(&args);
        assert_ne!(
            output.status.code(),
            Some(0),
            "{command:?}: {}",
            text(&output)
        );
        let out = text(&output);
        assert!(
            out.contains("damaged") && out.contains(log_arg) && out.contains("acknowledged"),
            "{command:?}: {out}"
        );
        assert!(
            snapshot_of(&log) == damaged,
            "{command:?} changed the log's files"
        );
    }
    flip();
    let verified = sim(&["log", "verify", log_arg]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));

    // An empty directory holds no log: an error, and nothing is created.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("a directory");
    let empty_arg = empty.to_str().expect("UTF-8");
    for command in READERS {
        let mut args = command.to_vec();
        args.push(empty_arg);
        let output = sim(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command:?}: {}",
            text(&output)
        );
        assert!(
            text(&output).contains("no tandem event log"),
            "{}",
            text(&output)
        );
        assert_eq!(
            std::fs::read_dir(&empty).expect("a listing").count(),
            0,
            "{command:?} created something"
        );
    }
}

#[test]
fn the_diagram_is_printed_in_both_formats() {
    let dot = sim(&["diagram", "--format", "dot"]);
    assert_eq!(dot.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&dot.stdout).starts_with("digraph"));
    let mermaid = sim(&["diagram", "--format", "mermaid", "--topology", "standalone"]);
    assert!(String::from_utf8_lossy(&mermaid.stdout).contains("stateDiagram-v2"));
}
