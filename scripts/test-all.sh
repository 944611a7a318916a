#!/usr/bin/env bash
# The whole test suite, from a fresh machine: builds (or reuses from the cache outside the
# checkout) what the tests need, then runs every test, including the real-control-plane tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real Kubernetes control plane of the integration tests (tests/control-plane/pins.env):
# built from the Go module proxy on a fresh machine, reused from ~/.cache/tandem when present.
bash tests/control-plane/build.sh

# The event log's system-call order test runs its child under strace.
if ! command -v strace >/dev/null 2>&1; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get install -y strace || {
        "${as_root[@]}" apt-get update && "${as_root[@]}" apt-get install -y strace
    }
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo test --workspace --all-features --release
# The engine's own tests once more in a debug build, whose overflow checks turn any arithmetic
# slip on extreme inputs into a failure.
cargo test -p tandem-engine --all-features
