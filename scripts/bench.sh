#!/usr/bin/env bash
# Prints the alarm-handling figures of benches/alarms.rs: scripts/bench.sh [latency|thousand|idle]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/ensure-mariadb.sh
export MONITOR_TEST_DATABASE_URL="${MONITOR_TEST_DATABASE_URL:-mysql://root@127.0.0.1:3306}"
exec cargo bench --bench alarms -- "$@"
