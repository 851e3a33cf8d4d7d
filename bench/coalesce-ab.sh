#!/usr/bin/env bash
# Wake-up coalescing A/B: --coalesce-usecs 0 against 50, three alternating pairs at 500 kpps
# (xsktap-bench ab's defaults; further flags are passed on), measured as the harness measures.
# Needs root and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
exec target/release/xsktap-bench ab --a-flags="--coalesce-usecs 0" --b-flags="--coalesce-usecs 50" "$@"

