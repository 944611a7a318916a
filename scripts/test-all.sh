#!/usr/bin/env bash
# The whole test suite, from a fresh machine: builds (or reuses from the cache outside the
# checkout) what the tests need, then runs every test, including the real-control-plane tests.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo test --workspace --all-features --release
