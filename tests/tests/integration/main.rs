//! The workspace's integration tests: one binary with its own runner on `libtest-mimic` (see
//! `tandem_tests::runner`). Tests against the real control plane are compiled with the
//! `control-plane` feature, which `cargo test --all-features` turns on.

use std::process::ExitCode;

use tandem_tests::runner;

#[cfg(feature = "control-plane")]
mod crd;
#[cfg(feature = "control-plane")]
mod deploy;
#[cfg(feature = "control-plane")]
mod effects;
#[cfg(feature = "control-plane")]
mod faults;
mod offline;
#[cfg(feature = "control-plane")]
mod operator;
#[cfg(feature = "control-plane")]
mod selftest;
#[cfg(feature = "control-plane")]
mod support;
#[cfg(feature = "control-plane")]
mod workloads;

fn main() -> ExitCode {
    let offline = offline::tests().into_iter();
    #[cfg(feature = "control-plane")]
    let tests = offline
        .chain(crd::tests())
        .chain(workloads::tests())
        .chain(faults::tests())
        .chain(effects::tests())
        .chain(deploy::tests())
        .chain(operator::tests())
        .chain(selftest::tests());
    #[cfg(not(feature = "control-plane"))]
    let tests = offline;
    runner::run(tests.collect())
}
