#!/usr/bin/env bash
# Takeover times of [ha], median over ROUNDS (default 20) takeovers with lease_ttl = 3,
# renew_interval = 1, stats_interval = 1, takeover_after = 3, two monitors (hosts a and b) on
# one MariaDB (MONITOR_BENCH_DB_HOST/PORT, default 127.0.0.1:3306, root, no password):
#   (a) SIGKILL of the primary's monitor -> the new primary's promote_command;
#   (b) the primary's score falling (its one required process killed) -> promote_command,
#       from the first low HEALTH_SCORE row, and from the kill.
# Goals: (a) <= lease_ttl + 1 s; (b) <= takeover_after x stats_interval + 1 s.
# Usage: scripts/takeover-bench.sh [kill|score]   (both when no argument)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
ROUNDS="${ROUNDS:-20}"
DB_HOST="${MONITOR_BENCH_DB_HOST:-127.0.0.1}"
DB_PORT="${MONITOR_BENCH_DB_PORT:-3306}"
scripts/ensure-mariadb.sh >/dev/null
cargo build --quiet
BIN="$PWD/target/debug/monitor_service"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/takeover-bench.XXXXXX")"
DB="bench_ha_$$"
MYSQL=(mysql -h "$DB_HOST" -P "$DB_PORT" -u root --batch --skip-column-names)
declare -A MONITOR VITAL

cleanup() {
    for pid in "${MONITOR[@]}" "${VITAL[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    if [[ -n "${KEEP:-}" ]]; then echo "kept $WORK and database $DB" >&2; return; fi
    "${MYSQL[@]}" -e "DROP DATABASE IF EXISTS $DB" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

sql() { "${MYSQL[@]}" "$DB" -e "$1"; }
now() { date +%s.%N; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a - b }'; }

# wait_for SECONDS COMMAND...: until the command succeeds, or fail.
wait_for() {
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@"; do
        if (( $(date +%s) > deadline )); then echo "timed out: $*" >&2; exit 1; fi
        sleep 0.02
    done
}

write_config() { # HOST PRIORITY
    local host=$1 dir="$WORK/$1"
    mkdir -p "$dir"
    cat >"$dir/config.ini" <<EOF
[database]
host = $DB_HOST
port = $DB_PORT
user = root
database = $DB
connect_timeout = 1
query_timeout = 2

[monitor]
host = $host
check_interval = 1
stats_interval = 1
heartbeat_interval = 0
lock_file = $dir/monitor.lock
shutdown_grace = 2

[logging]
log_file = $dir/monitor.log
stderr = false

[health]
threshold = 0.8

[ha]
group = bench
priority = $2
lease_ttl = 3
renew_interval = 1
takeover_after = 3
fence_command = true
promote_command = echo "$host \$1 \$(date +%s.%N)" >> $WORK/promoted.log

# Every host has the same process sections: each vital process is one host's.
[process.vitala]
hosts = a

[process.vitalb]
hosts = b
EOF
    chmod 600 "$dir/config.ini"
    ln -sf "$(command -v sleep)" "$dir/vital$host"
}

start_monitor() { "$BIN" -c "$WORK/$1/config.ini" run >/dev/null 2>&1 & MONITOR[$1]=$!; }
start_vital() { setsid "$WORK/$1/vital$1" 1000000 >/dev/null 2>&1 & VITAL[$1]=$!; }
holder() { sql "SELECT IFNULL(holder, '') FROM HA_LEASE WHERE group_name = 'bench'" 2>/dev/null; }
epoch() { sql "SELECT epoch FROM HA_LEASE WHERE group_name = 'bench'"; }
other() { if [[ $1 == a ]]; then echo b; else echo a; fi; }
is_holder() { [[ "$(holder)" == "$1" ]]; }
promoted_at() { awk -v h="$1" -v e="$2" '$1 == h && $2 == e { print $3 }' "$WORK/promoted.log" 2>/dev/null; }
has_promoted() { [[ -n "$(promoted_at "$1" "$2")" ]]; }
# A healthy row of HOST newer than SINCE (unix seconds).
healthy_since() {
    [[ "$(sql "SELECT COUNT(*) FROM HEALTH_SCORE WHERE host = '$1' AND total >= 0.8 \
        AND computed_at > FROM_UNIXTIME($2)")" -gt 0 ]]
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

setup() {
    "${MYSQL[@]}" -e "CREATE DATABASE $DB"
    write_config a 1
    write_config b 0
    "$BIN" -c "$WORK/a/config.ini" migrate >/dev/null
    sql "INSERT INTO PROCESE VALUES (1, 'vitala'), (2, 'vitalb');
         INSERT INTO STATUS_PROCESS (process_id, alarma, sound) VALUES (1, 0, 0), (2, 0, 0)"
    start_vital a; start_vital b
    start_monitor a; start_monitor b
    wait_for 30 is_holder a
    local since; since=$(date +%s)
    wait_for 30 healthy_since b "$since"
}

bench_kill() {
    : >"$WORK/kill.times"
    for _ in $(seq "$ROUNDS"); do
        local primary standby next started
        primary=$(holder); standby=$(other "$primary"); next=$(( $(epoch) + 1 ))
        started=$(now)
        kill -9 "${MONITOR[$primary]}"
        wait_for 30 has_promoted "$standby" "$next"
        minus "$(promoted_at "$standby" "$next")" "$started" >>"$WORK/kill.times"
        start_monitor "$primary"
        local since; since=$(date +%s)
        wait_for 30 healthy_since "$primary" "$since"
    done
    echo "(a) SIGKILL of the primary -> promote_command, median of $ROUNDS: \
$(median <"$WORK/kill.times") s (goal <= 4 s; min $(sort -n "$WORK/kill.times" | head -1), max $(sort -n "$WORK/kill.times" | tail -1))"
}

bench_score() {
    : >"$WORK/score.times"; : >"$WORK/score-kill.times"
    for _ in $(seq "$ROUNDS"); do
        local primary standby next started low promoted
        primary=$(holder); standby=$(other "$primary"); next=$(( $(epoch) + 1 ))
        started=$(now)
        kill -9 "${VITAL[$primary]}"
        wait_for 30 has_promoted "$standby" "$next"
        promoted=$(promoted_at "$standby" "$next")
        low=$(sql "SELECT UNIX_TIMESTAMP(MIN(computed_at)) FROM HEALTH_SCORE WHERE host = \
            '$primary' AND total < 0.8 AND computed_at >= FROM_UNIXTIME($started)")
        minus "$promoted" "$low" >>"$WORK/score.times"
        minus "$promoted" "$started" >>"$WORK/score-kill.times"
        start_vital "$primary"
        local since; since=$(date +%s)
        wait_for 30 healthy_since "$primary" "$since"
    done
    echo "(b) score falling -> promote_command, median of $ROUNDS: \
$(median <"$WORK/score.times") s from the first low row (goal <= 4 s; max $(sort -n "$WORK/score.times" | tail -1)), \
$(median <"$WORK/score-kill.times") s from the kill of its required process"
}

setup
case "${1:-both}" in
    kill) bench_kill ;;
    score) bench_score ;;
    both) bench_kill; bench_score ;;
    *) echo "usage: $0 [kill|score]" >&2; exit 64 ;;
esac
