//! The engine stays pure: its dependencies are an allowlist (no async runtime, no storage, no
//! Kubernetes, no IO crates, even transitively) and its source uses no hash map iteration order,
//! no clock and no unseeded randomness.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ALLOWED: &[&str] = &["serde", "thiserror", "postcard", "crc32fast", "proptest"];

const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "async-std",
    "mio",
    "sled",
    "kube",
    "kube-client",
    "kube-runtime",
    "k8s-openapi",
    "hyper",
    "reqwest",
    "rand",
    "getrandom",
    "chrono",
    "time",
    "libc",
    "nix",
    "futures",
];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The names under `[dependencies]` of the engine's manifest, with whether each is optional
/// (only the `testing` feature's generators are).
fn dependencies() -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).expect("Cargo.toml");
    let mut in_dependencies = false;
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if in_dependencies && !line.is_empty() && !line.starts_with('#') {
            let name = line
                .split(|c: char| c == '=' || c == '.' || c.is_whitespace())
                .next();
            let optional = line.contains("optional = true");
            names.push((name.expect("a dependency line").to_string(), optional));
        }
    }
    names
}

#[test]
fn dependencies_are_allowlisted() {
    let names = dependencies();
    assert!(
        !names.is_empty(),
        "the engine's [dependencies] could not be read"
    );
    for (name, optional) in &names {
        assert!(
            ALLOWED.contains(&name.as_str()),
            "tandem-engine must not depend on {name}"
        );
        assert!(
            *optional == (name == "proptest"),
            "only the testing feature's proptest is optional"
        );
    }
}

/// Walks the lockfile from the engine's direct dependencies: nothing forbidden is reachable.
#[test]
fn no_forbidden_crate_is_reachable() {
    let lock = manifest_dir().join("../Cargo.lock");
    let Ok(text) = std::fs::read_to_string(&lock) else {
        panic!(
            "{} is missing: the workspace lockfile is committed",
            lock.display()
        );
    };
    let mut packages: Vec<(String, Vec<String>)> = Vec::new();
    for block in text.split("[[package]]").skip(1) {
        let name = block
            .lines()
            .find_map(|line| line.strip_prefix("name = "))
            .map(|name| name.trim_matches('"').to_string())
            .expect("a package name");
        let dependencies = block
            .split_once("dependencies = [")
            .map(|(_, rest)| {
                rest.split(']')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|entry| {
                        entry
                            .trim()
                            .trim_matches('"')
                            .split(' ')
                            .next()
                            .map(str::to_string)
                    })
                    .filter(|entry| !entry.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        packages.push((name, dependencies));
    }
    let mut seen = BTreeSet::new();
    // The walk starts from what every build of the engine links: the optional test generators
    // (proptest, behind the `testing` feature) are not part of it.
    let mut queue: Vec<String> = dependencies()
        .into_iter()
        .filter(|(_, optional)| !optional)
        .map(|(name, _)| name)
        .collect();
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        assert!(
            !FORBIDDEN_CRATES.contains(&name.as_str()),
            "tandem-engine reaches {name}"
        );
        for (package, dependencies) in &packages {
            if *package == name {
                queue.extend(dependencies.iter().cloned());
            }
        }
    }
    assert!(
        seen.contains("serde"),
        "the walk found the engine's dependencies"
    );
}

#[test]
fn source_uses_no_clock_randomness_or_hash_maps() {
    const FORBIDDEN: &[&str] = &[
        "HashMap",
        "HashSet",
        "Instant::now",
        "SystemTime::now",
        "thread_rng",
        "std::fs",
        "std::net",
        "std::thread",
        "std::env",
    ];
    let mut checked = 0;
    for path in source_files(&manifest_dir().join("src")) {
        let text = std::fs::read_to_string(&path).expect("a source file");
        for word in FORBIDDEN {
            assert!(!text.contains(word), "{} uses {word}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} source files were checked");
}

/// Every `.rs` file under `dir`, its subdirectories included, in a stable order.
fn source_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|error| panic!("in {}: {error}", dir.display()));
            let path = entry.path();
            let kind = entry
                .file_type()
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            if kind.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
