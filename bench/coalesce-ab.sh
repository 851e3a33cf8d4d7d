#!/usr/bin/env bash
# Wake-up coalescing A/B: --coalesce-usecs 0 against 50, three alternating pairs (bench/ab.sh).
exec "$(dirname "$0")/ab.sh" target/release/xsktap "--coalesce-usecs 0" \
    target/release/xsktap "--coalesce-usecs 50" 3
