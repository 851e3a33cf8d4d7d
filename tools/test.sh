#!/usr/bin/env bash
# Installs what xsktap needs, builds everything, and runs every test: the unit
# tests and the privileged end-to-end tests (which build their own network
# namespaces), plus formatting and lint checks. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "test.sh: run as root: the end-to-end tests create network namespaces and attach XDP inside them" >&2
    exit 1
fi
tools/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test -p xsktap-core (pure: no root, no clang needed)"
cargo test -p xsktap-core --release
# The privileged tests are #[ignore = "needs root"]: run them too, as root.
echo "== cargo test --workspace, privileged tests included"
cargo test --workspace --release -- --include-ignored --test-threads=2
