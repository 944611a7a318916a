//! The engine stays pure: its dependencies are an allowlist (no async runtime, no storage, no
//! Kubernetes, no IO crates, even transitively) and its source uses no hash map iteration order,
//! no clock and no unseeded randomness.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

/// The workspace as Cargo resolves it (`cargo metadata`), read once per run. The workspace
/// lockfile is committed: it is read as it is (`--locked`), never rewritten.
fn metadata() -> &'static Value {
    static METADATA: OnceLock<Value> = OnceLock::new();
    METADATA.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(&cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--locked",
                "--manifest-path",
            ])
            .arg(manifest_dir().join("Cargo.toml"))
            .output()
            .unwrap_or_else(|error| panic!("running {} metadata: {error}", cargo.display()));
        assert!(
            output.status.success(),
            "cargo metadata failed ({}; the workspace lockfile is committed and current): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
    })
}

/// The engine's package in the metadata.
fn engine_package() -> &'static Value {
    let manifest = manifest_dir().join("Cargo.toml");
    let packages = metadata()["packages"].as_array().expect("packages");
    packages
        .iter()
        .find(|package| {
            package["manifest_path"]
                .as_str()
                .is_some_and(|path| Path::new(path) == manifest)
        })
        .expect("the engine's package in cargo metadata")
}

/// The engine's normal dependencies (those under `[dependencies]`), by package name, with
/// whether each is optional (only the `testing` feature's generators are).
fn dependencies() -> Vec<(String, bool)> {
    let dependencies = engine_package()["dependencies"]
        .as_array()
        .expect("dependencies");
    dependencies
        .iter()
        .filter(|dependency| dependency["kind"].is_null())
        .map(|dependency| {
            let name = dependency["name"].as_str().expect("a dependency name");
            let optional = dependency["optional"].as_bool().expect("optional");
            (name.to_string(), optional)
        })
        .collect()
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

/// Walks Cargo's resolved graph (`cargo metadata`) from the engine through normal dependencies
/// only: nothing forbidden is reachable.
#[test]
fn no_forbidden_crate_is_reachable() {
    let metadata = metadata();
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| {
            let id = package["id"].as_str().expect("a package id");
            (id, package["name"].as_str().expect("a package name"))
        })
        .collect();
    let nodes: BTreeMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("the resolved graph (resolve.nodes)")
        .iter()
        .map(|node| (node["id"].as_str().expect("a node id"), node))
        .collect();
    // The normal dependencies of a resolved package, as package ids: build and dev dependencies
    // are not linked into it.
    let normal_dependencies = |id: &str| -> Vec<&str> {
        let node = nodes
            .get(id)
            .unwrap_or_else(|| panic!("{id} is not in the resolved graph"));
        node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|dep| {
                dep["dep_kinds"]
                    .as_array()
                    .expect("dep_kinds")
                    .iter()
                    .any(|kind| kind["kind"].is_null())
            })
            .map(|dep| dep["pkg"].as_str().expect("a dependency's package id"))
            .collect()
    };
    let engine = engine_package()["id"].as_str().expect("the engine's id");
    // The walk starts from what every build of the engine links: the optional test generators
    // (proptest, behind the `testing` feature) are not part of it.
    let optional: BTreeSet<String> = dependencies()
        .into_iter()
        .filter(|(_, optional)| *optional)
        .map(|(name, _)| name)
        .collect();
    let mut queue: Vec<&str> = normal_dependencies(engine)
        .into_iter()
        .filter(|id| !optional.contains(names[id]))
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(id) = queue.pop() {
        if !seen.insert(id) {
            continue;
        }
        let name = names[id];
        assert!(
            !FORBIDDEN_CRATES.contains(&name),
            "tandem-engine reaches {name} ({id})"
        );
        queue.extend(normal_dependencies(id));
    }
    assert!(
        seen.iter().any(|id| names[id] == "serde"),
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
