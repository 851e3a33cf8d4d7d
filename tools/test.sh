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
log=$(mktemp /tmp/xsktap-test.XXXXXX)
# A test that cannot run here (hardware, a kernel feature truly missing)
# appends one line saying why to $XSKTAP_TEST_SKIPPED and returns.
export XSKTAP_TEST_SKIPPED=$log.skipped
: >"$XSKTAP_TEST_SKIPPED"
trap 'rm -f "$log" "$XSKTAP_TEST_SKIPPED"' EXIT
cargo test --workspace --release -- --include-ignored --test-threads=2 2>&1 | tee "$log"
sed 's/^/skipped: /' "$XSKTAP_TEST_SKIPPED"
awk -v skipped="$(wc -l <"$XSKTAP_TEST_SKIPPED")" '/^test result:/ { passed += $4; ignored += $8 }
     END { printf "== %d tests passed, %d of them skipped, %d ignored\n", passed, skipped, ignored }' "$log"
