#!/usr/bin/env bash
# The fleet benchmark: 50 monitors on one MariaDB, each with its own [monitor] host, lock file
# and 20 processes (1,000 in all), check_interval = 1, stats_interval = 10. Prints:
#
#   - statements per second of the whole fleet when idle (SHOW GLOBAL STATUS deltas: Questions
#     and the Com_* counters that moved), against the goal of one statement per monitor per
#     check_interval plus two per monitor per stats_interval;
#   - the server's CPU over that window (utime + stime of its mariadbd, from /proc);
#   - alarm set -> restart begun (RESTART_EVENTS.started_at, database clock), p50/p99 over
#     ALARMS alarms on processes picked across the fleet, with all 50 polling; goal p99 <=
#     check_interval + 100 ms.
#
# The server is a MariaDB of its own (FLEET_PORT, data under a temporary folder, removed at
# the end), so that no other client's statements count; the monitors are the release binary
# (built if missing), the processes `sleep`s under their names. Nothing is left running.
#
#   FLEET_MONITORS [50]  FLEET_PROCESSES [20 per monitor]  FLEET_PORT [3406]
#   FLEET_IDLE [60 s measured]  FLEET_ALARMS [100]  MONITOR_BIN [target/release/monitor_service]
#
# Run it alone: `flock /tmp/monitor_service-bench.lock scripts/fleet-bench.sh`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

monitors=${FLEET_MONITORS:-50}
per_monitor=${FLEET_PROCESSES:-20}
port=${FLEET_PORT:-3406}
idle_seconds=${FLEET_IDLE:-60}
alarms=${FLEET_ALARMS:-100}
bin=${MONITOR_BIN:-target/release/monitor_service}

say() { echo "fleet-bench: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

if [ ! -x "$bin" ]; then
    say "building the release binary"
    PATH="$HOME/.cargo/bin:$PATH" cargo build --release --quiet
fi
bin=$(realpath "$bin")
server=$(command -v mariadbd || command -v mysqld || echo /usr/sbin/mariadbd)
[ -x "$server" ] || die "no mariadbd found"
install_db=$(command -v mariadb-install-db || command -v mysql_install_db) || die "no mariadb-install-db"
client=$(command -v mariadb || command -v mysql) || die "no mysql client"

work=$(mktemp -d "${TMPDIR:-/tmp}/monitor_service-fleet.XXXXXX")
server_pid="" pids=()
# The sleepers, by PID: those this script started and those the monitors started again, all
# run from $work/bin.
kill_sleepers() {
    local cmdline pid
    for cmdline in /proc/[0-9]*/cmdline; do
        pid=${cmdline#/proc/}
        pid=${pid%/cmdline}
        [[ $(tr '\0' ' ' 2>/dev/null <"$cmdline") == "$work/bin/"* ]] && kill -KILL "$pid" 2>/dev/null
    done
    return 0
}
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    kill_sleepers
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

user=$(id -un)
[ "$(id -u)" -ne 0 ] || { id mysql >/dev/null 2>&1 && user=mysql; }
mkdir -p "$work/data"
[ "$user" = "$(id -un)" ] || chown -R "$user:" "$work"
cat >"$work/my.cnf" <<EOF
[mysqld]
datadir=$work/data
socket=$work/mysqld.sock
pid-file=$work/mariadbd.pid
log-error=$work/error.log
port=$port
bind-address=127.0.0.1
skip-name-resolve
performance_schema=OFF
innodb_buffer_pool_size=128M
innodb_flush_log_at_trx_commit=2
max_connections=500
EOF
"$install_db" --defaults-file="$work/my.cnf" --user="$user" \
    --auth-root-authentication-method=normal --skip-test-db >"$work/install.log" 2>&1 ||
    die "mariadb-install-db failed: $(tail -n 5 "$work/install.log")"
"$server" --defaults-file="$work/my.cnf" --user="$user" </dev/null >>"$work/console.log" 2>&1 &
server_pid=$!

sql() { "$client" --no-defaults --protocol=TCP -h127.0.0.1 -P"$port" -uroot --batch --skip-column-names "$@"; }
for _ in $(seq 300); do sql -e "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
sql -e "SELECT 1" >/dev/null || die "the server did not start: $(tail -n 5 "$work/error.log")"
mariadbd_pid=$server_pid

# --- the fleet --------------------------------------------------------------------------------
mkdir -p "$work/bin"
ln -s "$(command -v sleep)" "$work/bin/sleeper"
name() { printf 'f%02dp%02d' "$1" "$2"; }
database_section() {
    printf '[database]\nhost = 127.0.0.1\nport = %s\nuser = root\ndatabase = fleet\n' "$port"
}
{ database_section; printf '[monitor]\nhost = migrate\n'; } >"$work/migrate.ini"
chmod 600 "$work/migrate.ini"
"$bin" -c "$work/migrate.ini" migrate >/dev/null || die "migrate failed"

values=() status=()
for m in $(seq "$monitors"); do
    for p in $(seq "$per_monitor"); do
        id=$(((m - 1) * per_monitor + p))
        values+=("($id, '$(name "$m" "$p")')")
        status+=("($id, 0, 0)")
    done
done
sql fleet -e "INSERT INTO PROCESE (process_id, process_name) VALUES $(IFS=,; echo "${values[*]}");
    INSERT INTO STATUS_PROCESS (process_id, alarma, sound) VALUES $(IFS=,; echo "${status[*]}");"

# The processes, each in a session of its own as a start command would leave it.
for m in $(seq "$monitors"); do
    for p in $(seq "$per_monitor"); do
        ln -s "$work/bin/sleeper" "$work/bin/$(name "$m" "$p")"
        setsid "$work/bin/$(name "$m" "$p")" 1000000 </dev/null >/dev/null 2>&1 &
        disown
    done
done

for m in $(seq "$monitors"); do
    dir=$work/m$m
    mkdir -p "$dir"
    {
        database_section
        printf '\n[monitor]\nhost = m%02d\ncheck_interval = 1\nstats_interval = 10\n' "$m"
        printf 'lock_file = %s/lock\nallow_unconfigured = false\n' "$dir"
        printf '\n[logging]\nlog_file = %s/log\nstderr = false\n\n' "$dir"
        for p in $(seq "$per_monitor"); do
            n=$(name "$m" "$p")
            printf '[process.%s]\nhosts = m%02d\nrestart_strategy = process\n' "$n" "$m"
            printf 'start_command = %s/bin/%s 1000000\nhealth_check_command = true\n' "$work" "$n"
            printf 'stop_timeout = 2\nmax_attempts = 1\n\n'
        done
    } >"$dir/config.ini"
    chmod 600 "$dir/config.ini"
    setsid "$bin" -c "$dir/config.ini" run </dev/null >/dev/null 2>&1 &
    pids+=($!)
done
say "$monitors monitors started, $((monitors * per_monitor)) processes; settling for 25 s"
sleep 25

# --- idle -------------------------------------------------------------------------------------
status_counters() {
    sql -e "SHOW GLOBAL STATUS WHERE Variable_name = 'Questions' OR Variable_name LIKE 'Com\\_%'"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$mariadbd_pid/stat"; }
own_a=$(status_counters | awk '$1 == "Questions" { print $2 }')
own_b=$(status_counters | awk '$1 == "Questions" { print $2 }')
own=$((own_b - own_a))
status_counters >"$work/before"
ticks_before=$(cpu_ticks)
began=$(date +%s%N)
sleep "$idle_seconds"
status_counters >"$work/after"
ticks_after=$(cpu_ticks)
elapsed=$(awk -v a="$began" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
hz=$(getconf CLK_TCK)

awk -v own="$own" -v elapsed="$elapsed" -v monitors="$monitors" -v ticks=$((ticks_after - ticks_before)) -v hz="$hz" '
    FNR == NR { before[$1] = $2; next }
    { delta[$1] = $2 - before[$1] }
    END {
        questions = delta["Questions"] - own
        goal = monitors * 1 + monitors * 2 / 10
        printf "idle, %d monitors over %.0f s: %.1f statements/s for the fleet, %.3f per monitor per second (goal <= %.1f/s for the fleet: 1 per monitor per check_interval + 2 per stats_interval)\n", monitors, elapsed, questions / elapsed, questions / elapsed / monitors, goal
        printf "  by command (per second):"
        for (name in delta) if (name != "Questions" && delta[name] > 0 && name !~ /^Com_(stmt_close|stmt_prepare|stmt_reset|show_status)$/) printf " %s %.2f", substr(name, 5), delta[name] / elapsed
        printf "\n  (prepared: Com_stmt_execute counts each statement the service sends; Com_stmt_prepare %.2f/s)\n", delta["Com_stmt_prepare"] / elapsed
        printf "server CPU (mariadbd, utime+stime): %.1f %% of one core\n", 100 * ticks / hz / elapsed
    }' "$work/before" "$work/after"

# What the sampling writes: rows per second into PROCESS_SAMPLES over the same window, and the
# bytes a row takes on disk (data and indexes, after ANALYZE).
sql fleet -e "ANALYZE TABLE PROCESS_SAMPLES" >/dev/null
read -r rows window_rows bytes < <(sql fleet -e "SELECT COUNT(*),
    SUM(sampled_at >= NOW(3) - INTERVAL $idle_seconds SECOND),
    (SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES
     WHERE TABLE_SCHEMA = 'fleet' AND TABLE_NAME = 'PROCESS_SAMPLES')
    FROM PROCESS_SAMPLES")
awk -v rows="$rows" -v recent="$window_rows" -v bytes="$bytes" -v window="$idle_seconds" 'BEGIN {
    printf "PROCESS_SAMPLES: %.1f rows/s over the last %d s (samples and heartbeats), %d rows in %.1f MB: %.0f bytes a row with its indexes\n", recent / window, window, rows, bytes / 1e6, bytes / rows
}'

# --- latency ----------------------------------------------------------------------------------
total=$((monitors * per_monitor))
samples=()
for round in $(seq "$alarms"); do
    # Spread over the fleet and over the poll period; one process is alarmed once.
    id=$(((round * 397) % total + 1))
    sleep "0.$(((round * 137) % 1000))"
    raised=$(sql fleet -e "SELECT NOW(3); UPDATE STATUS_PROCESS SET alarma = 1 WHERE process_id = $id;")
    latency=""
    for _ in $(seq 200); do
        latency=$(sql fleet -e "SELECT ROUND(TIMESTAMPDIFF(MICROSECOND, '$raised', MIN(started_at)) / 1000)
            FROM RESTART_EVENTS WHERE process_id = $id AND started_at >= '$raised'")
        [ "$latency" != "NULL" ] && break
        sleep 0.05
    done
    [ "$latency" != "NULL" ] || die "the alarm on process $id was not handled within 10 s"
    samples+=("$latency")
done
printf '%s\n' "${samples[@]}" | sort -n | awk -v n="$alarms" '
    { v[NR] = $1 }
    END {
        p50 = v[int((n * 50 + 99) / 100)]; p99 = v[int((n * 99 + 99) / 100)]
        printf "alarm set -> restart begun, %d alarms across the fleet, all polling: p50 %d ms, p99 %d ms, max %d ms (goal p99 <= 1100 ms)\n", n, p50, p99, v[n]
    }'
