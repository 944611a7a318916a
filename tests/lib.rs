//! Workspace-level test support.
//!
//! - [`cluster`]: a real Kubernetes control plane (etcd, kube-apiserver, controller-manager,
//!   scheduler, kwok with three fake nodes), started once per test run.
//! - [`runner`]: the runner of the single integration test binary (on `libtest-mimic`), which
//!   owns that control plane and guarantees that no process outlives the run.
//! - [`invalid`]: `ZenithCluster` objects that break one rule each, with the field and message
//!   every validator must give.
//! - [`examples`]: the committed example objects.

pub mod cluster;
pub mod examples;
pub mod invalid;
pub mod runner;
