#!/usr/bin/env bash
# The test command of monitor_service, the same locally and in CI (.ci/run calls it):
# brings up MariaDB, then runs rustfmt, clippy and every test target, the cluster tests on a
# Galera cluster it starts (scripts/galera.sh) and stops again.
#
#   scripts/test.sh                 everything
#   scripts/test.sh NAME [-- ARGS]  extra arguments go to `cargo test` (a filter, --nocapture...)
#
# The integration tests reach the database through MONITOR_TEST_DATABASE_URL
# [mysql://root@127.0.0.1:3306]; each test creates and drops its own `test_…` database. The
# cluster tests find the cluster through MONITOR_TEST_GALERA_PORTS, set below.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

stage() { printf '==> %s\n' "$*"; }
die() {
    echo "test.sh: error: $*" >&2
    exit 1
}

if [ -d "$HOME/.cargo/bin" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust with rustup)"

# Split the URL into its parts, so that ensure-mariadb.sh looks after the right server and the
# clean-up below logs in as the tests do. Percent-encoding in the URL is not decoded here.
export MONITOR_TEST_DATABASE_URL=${MONITOR_TEST_DATABASE_URL:-mysql://root@${MONITOR_TEST_DB_HOST:-127.0.0.1}:${MONITOR_TEST_DB_PORT:-3306}}
url_pattern='^mysql://(([^:@/]*)(:([^@/]*))?@)?([^:/?]+)(:([0-9]+))?'
[[ $MONITOR_TEST_DATABASE_URL =~ $url_pattern ]] ||
    die "MONITOR_TEST_DATABASE_URL is not a mysql:// URL: $MONITOR_TEST_DATABASE_URL"
db_user=${BASH_REMATCH[2]:-root}
db_password=${BASH_REMATCH[4]}
export MONITOR_TEST_DB_HOST=${BASH_REMATCH[5]}
export MONITOR_TEST_DB_PORT=${BASH_REMATCH[7]:-3306}

stage "database: ensure MariaDB answers on $MONITOR_TEST_DB_HOST:$MONITOR_TEST_DB_PORT"
scripts/ensure-mariadb.sh

sql() {
    MYSQL_PWD=$db_password "$(command -v mariadb || command -v mysql)" --no-defaults \
        --protocol=TCP -h"$MONITOR_TEST_DB_HOST" -P"$MONITOR_TEST_DB_PORT" -u"$db_user" \
        --batch --skip-column-names -e "$1"
}

# tests/common/mod.rs names its databases test_<unix seconds, hex>_<random hex>. Drop only those
# more than an hour old: a younger one may belong to a test run going on beside this one.
stage "database: drop test databases left over by runs more than an hour old"
cutoff=$(($(date +%s) - 3600))
dropped=0
names=$(sql "SHOW DATABASES LIKE 'test\\_%'")
for name in $names; do
    if [[ $name =~ ^test_([0-9a-f]{8})_[0-9a-f]{16}$ ]] && ((16#${BASH_REMATCH[1]} < cutoff)); then
        sql "DROP DATABASE IF EXISTS \`$name\`"
        dropped=$((dropped + 1))
    fi
done
if [ "$dropped" -gt 0 ]; then
    echo "    dropped $dropped leftover test database(s)"
fi

stage "tools: chromium, mandoc and rpm (Debian packages), cargo-generate-rpm"
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v mandoc >/dev/null 2>&1 || missing+=(mandoc)
command -v rpm >/dev/null 2>&1 || missing+=(rpm)
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "${missing[*]} missing and there is no apt-get"
    { apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null ||
        die "installing ${missing[*]} failed"
fi
# About 4 minutes on 2 cores, once per machine.
if ! command -v cargo-generate-rpm >/dev/null 2>&1; then
    cargo install cargo-generate-rpm --locked --quiet || die "installing cargo-generate-rpm failed"
fi

stage "cargo fmt --all -- --check"
cargo fmt --all -- --check

stage "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

# The cluster tests (tests/galera.rs) run on a three-node Galera cluster on loopback, started
# here and stopped on the way out whatever happens, unless a whole one was running already.
export GALERA_BASE_PORT=${GALERA_BASE_PORT:-4306}
stage "galera: three nodes on 127.0.0.1:$GALERA_BASE_PORT-$((GALERA_BASE_PORT + 2))"
if scripts/galera.sh status >/dev/null 2>&1; then
    echo "    a whole cluster runs already: used as it is, and left running"
else
    trap 'stage "galera: stop"; scripts/galera.sh stop || true' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    scripts/galera.sh start || die "the Galera cluster did not start (see scripts/galera.sh)"
fi
export MONITOR_TEST_GALERA_PORTS="$GALERA_BASE_PORT,$((GALERA_BASE_PORT + 1)),$((GALERA_BASE_PORT + 2))"

stage "cargo test${*:+ $*}"
cargo test --no-fail-fast "$@"
