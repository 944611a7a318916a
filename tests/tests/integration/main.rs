//! The workspace's integration tests: one binary with its own runner (see
//! `tandem_tests::runner`). Tests against the real control plane are compiled with the
//! `control-plane` feature, which `cargo test --all-features` turns on.

use std::process::ExitCode;

use tandem_tests::runner::{self, Test};

#[cfg(feature = "control-plane")]
mod crd;
mod offline;
#[cfg(feature = "control-plane")]
mod support;
#[cfg(feature = "control-plane")]
mod workloads;

fn main() -> ExitCode {
    let mut tests: Vec<Test> = offline::tests();
    #[cfg(feature = "control-plane")]
    {
        tests.extend(crd::tests());
        tests.extend(workloads::tests());
    }
    runner::run(tests)
}
