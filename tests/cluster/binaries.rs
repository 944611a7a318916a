//! Finds the control-plane binaries that `tests/control-plane/build.sh` put in the cache, from the
//! same pins file and the same cache rules.

use std::path::PathBuf;

/// The pins file, read at compile time so the tests and the build script cannot disagree.
const PINS: &str = include_str!("../control-plane/pins.env");
/// The binaries the control plane needs.
pub const NAMES: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

/// Where the binaries and kwok's stages are.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The directory holding the five binaries.
    pub bin: PathBuf,
    /// kwok's Stage objects (node start-up and heartbeat, pod life cycle).
    pub stages: PathBuf,
}

/// The control plane has not been built for these pins.
#[derive(Debug, thiserror::Error)]
#[error(
    "the control-plane binaries {missing:?} are not in {directory}: run `bash tests/control-plane/build.sh` \
     (pins: tests/control-plane/pins.env; cache root: $TANDEM_CONTROL_PLANE_CACHE or ~/.cache/tandem/control-plane)"
)]
pub struct MissingBinaries {
    /// The directory searched.
    pub directory: String,
    /// What is missing there.
    pub missing: Vec<String>,
}

/// A value of the pins file.
pub fn pin(key: &str) -> Option<&'static str> {
    PINS.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .find(|(name, _)| name.trim() == key)
        .map(|(_, value)| value.trim())
}

/// The cache directory of this build: the same key as build.sh.
pub fn cache_directory() -> PathBuf {
    let root = match std::env::var_os("TANDEM_CONTROL_PLANE_CACHE") {
        Some(root) => PathBuf::from(root),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                });
            cache.join("tandem").join("control-plane")
        }
    };
    let value = |key: &str| pin(key).unwrap_or("unpinned");
    root.join(format!(
        "k8s-{}_etcd-{}_kwok-{}_r{}",
        value("KUBERNETES_VERSION"),
        value("ETCD_VERSION"),
        value("KWOK_VERSION"),
        value("BUILD_RECIPE"),
    ))
}

/// Finds the binaries, or says what is missing and how to build it.
pub fn locate() -> Result<Binaries, MissingBinaries> {
    let directory = cache_directory();
    let binaries = Binaries {
        bin: directory.join("bin"),
        stages: directory.join("stages").join("kwok-stages.yaml"),
    };
    let mut missing: Vec<String> = NAMES
        .iter()
        .filter(|name| !binaries.bin.join(name).is_file())
        .map(|name| (*name).to_owned())
        .collect();
    if !binaries.stages.is_file() {
        missing.push("stages/kwok-stages.yaml".to_owned());
    }
    if !directory.join("complete").is_file() {
        missing.push("complete (the build did not finish)".to_owned());
    }
    if missing.is_empty() {
        Ok(binaries)
    } else {
        Err(MissingBinaries {
            directory: directory.display().to_string(),
            missing,
        })
    }
}
