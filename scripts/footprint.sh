#!/usr/bin/env bash
# The daemon's own footprint while it watches N processes: RSS and CPU of the RELEASE binary,
# run as a separate process, read from /proc (figures printed, nothing asserted).
#
# Reproduce (from the repository root):
#
#   scripts/footprint.sh                                # both modes, 3 runs each, 10 s + 60 s
#   scripts/footprint.sh heartbeat                      # only health_check_command = pgrep -x %s
#   scripts/footprint.sh sampling                       # only health_check_command = (empty)
#   FOOTPRINT_SECONDS=10 FOOTPRINT_WARMUP=3 FOOTPRINT_RUNS=1 scripts/footprint.sh   # quick look
#   FOOTPRINT_PROCESSES=1000 scripts/footprint.sh sampling   # the sampler at 1,000 processes
#
# For each run: a fresh database `footprint_bench` created by `monitor_service migrate`, N
# `sleep`s started here under unique short names (symlinks to sleep) and registered in
# PROCESE / STATUS_PROCESS, and `monitor_service -c CONFIG run` with stats_interval = 1,
# heartbeat_interval = 1, check_interval = 1 (config mode 600, log and lock in a temp dir,
# stderr = false). After FOOTPRINT_WARMUP seconds, /proc/PID/stat is read at both ends of a
# FOOTPRINT_SECONDS window: utime+stime is the daemon's own CPU, cutime+cstime that of its
# (reaped) children, i.e. the health checks. VmRSS is read every second of the window
# (/proc/PID/status) and VmHWM at its end. Modes and runs are interleaved, and the medians
# over the runs are printed last. Everything is removed at the end (trap): the daemon, the
# sleeps, the temp dir and the database.
#
#   FOOTPRINT_SECONDS    measured window in seconds [60]
#   FOOTPRINT_WARMUP     seconds before the window [10]
#   FOOTPRINT_RUNS       runs per mode [3]
#   FOOTPRINT_PROCESSES  monitored sleeps [100]
#   FOOTPRINT_NO_BUILD   set to skip `cargo build --release`
#   FOOTPRINT_ALERT_WEBHOOK  a URL: the daemon runs with [alert] webhook = it (alerts on, no
#                        event expected while all the sleeps live)
#   MONITOR_TEST_DB_HOST / MONITOR_TEST_DB_PORT   the MariaDB [127.0.0.1:3306], root, no password
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

seconds=${FOOTPRINT_SECONDS:-60}
warmup=${FOOTPRINT_WARMUP:-10}
runs=${FOOTPRINT_RUNS:-3}
count=${FOOTPRINT_PROCESSES:-100}
db_host=${MONITOR_TEST_DB_HOST:-127.0.0.1}
db_port=${MONITOR_TEST_DB_PORT:-3306}
database=footprint_bench
case "${1:-all}" in
all) modes=(heartbeat sampling) ;;
heartbeat | sampling) modes=("$1") ;;
*)
    echo "usage: scripts/footprint.sh [heartbeat|sampling]" >&2
    exit 64
    ;;
esac

say() { echo "footprint: $*" >&2; }

scripts/ensure-mariadb.sh
if [ -z "${FOOTPRINT_NO_BUILD:-}" ]; then
    cargo build --release --quiet
fi
bin=${CARGO_TARGET_DIR:-target}/release/monitor_service
[ -x "$bin" ] || {
    say "no release binary at $bin"
    exit 1
}
client=$(command -v mariadb || command -v mysql) || {
    say "no mariadb/mysql client"
    exit 1
}
sleep_bin=$(command -v sleep)
sleep_bin=$(readlink -f "$sleep_bin")
ticks=$(getconf CLK_TCK)

sql() { "$client" --no-defaults --protocol=TCP -h"$db_host" -P"$db_port" -uroot -N -B "$@"; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/footprint.XXXXXX")
daemon=""
sleepers=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_daemon
    if [ "${#sleepers[@]}" -gt 0 ]; then
        kill -KILL "${sleepers[@]}" 2>/dev/null || true
        wait "${sleepers[@]}" 2>/dev/null || true
    fi
    sql -e "DROP DATABASE IF EXISTS \`$database\`" 2>/dev/null || true
    rm -rf "$dir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_daemon() {
    [ -n "$daemon" ] || return 0
    kill -TERM "$daemon" 2>/dev/null || true
    local i
    for i in $(seq 100); do
        kill -0 "$daemon" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    daemon=""
}

# The sleeps: symlinks to sleep under unique short names (pgrep -x sees 15 characters).
prefix=$(printf 'fp%x_' $(($$ % 0xffff)))
mkdir "$dir/bin"
names=()
for i in $(seq "$count"); do
    name="$prefix$i"
    ln -s "$sleep_bin" "$dir/bin/$name"
    "$dir/bin/$name" 100000 </dev/null >/dev/null 2>&1 &
    sleepers+=($!)
    names+=("$name")
done
say "$count sleeps started as ${prefix}1..${prefix}$count"

write_config() { # mode
    local check=""
    [ "$1" = heartbeat ] && check="pgrep -x %s"
    (
        umask 077
        cat >"$dir/config.ini" <<EOF
[database]
host = $db_host
port = $db_port
user = root
password =
database = $database

[monitor]
host = footprint
check_interval = 1
stats_interval = 1
heartbeat_interval = 1
lock_file = $dir/monitor.lock

[logging]
log_file = $dir/monitor.log
stderr = false

[process.default]
health_check_command = $check
EOF
        if [ -n "${FOOTPRINT_ALERT_WEBHOOK:-}" ]; then
            printf '\n[alert]\nwebhook = %s\n' "$FOOTPRINT_ALERT_WEBHOOK" >>"$dir/config.ini"
        fi
    )
    chmod 600 "$dir/config.ini"
}

fresh_database() {
    sql -e "DROP DATABASE IF EXISTS \`$database\`"
    env -u MONITOR_SERVICE_CONFIG -u MONITOR_DB_PASSWORD "$bin" -c "$dir/config.ini" migrate >/dev/null
    local values="" status="" i
    for i in "${!names[@]}"; do
        values+="${values:+,}($((i + 1)),'${names[$i]}')"
        status+="${status:+,}($((i + 1)),0,0,NULL)"
    done
    sql "$database" -e "INSERT INTO PROCESE VALUES $values; INSERT INTO STATUS_PROCESS VALUES $status"
}

# Fields of /proc/PID/stat after the command name: f[0] is field 3 (state), so field N is
# f[N-3]: utime 14, stime 15, cutime 16, cstime 17.
proc_cpu() { # pid -> "own children" in ticks
    local stat rest f
    stat=$(<"/proc/$1/stat")
    rest=${stat##*) }
    read -ra f <<<"$rest"
    echo "$((f[11] + f[12])) $((f[13] + f[14]))"
}

status_kb() { # pid key -> kB
    local key value _
    while read -r key value _; do
        if [ "$key" = "$2:" ]; then
            echo "$value"
            return 0
        fi
    done <"/proc/$1/status"
    echo 0
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

server_pid=$(pgrep -xo mariadbd || pgrep -xo mysqld || true)
declare -A results

one_run() { # mode run
    local mode=$1 run=$2
    write_config "$mode"
    fresh_database
    : >"$dir/monitor.log"
    env -u MONITOR_SERVICE_CONFIG -u MONITOR_DB_PASSWORD "$bin" -c "$dir/config.ini" run \
        </dev/null >/dev/null 2>&1 &
    daemon=$!
    sleep "$warmup"
    if ! kill -0 "$daemon" 2>/dev/null; then
        tail -n 20 "$dir/monitor.log" >&2 || true
        say "the daemon exited during the warm-up"
        exit 1
    fi
    local own0 child0 own1 child1 t0 t1 server0=0 server1=0 rss=()
    read -r own0 child0 < <(proc_cpu "$daemon")
    [ -n "$server_pid" ] && read -r server0 _ < <(proc_cpu "$server_pid")
    local beats0
    beats0=$(sql "$database" -e "SELECT COUNT(*) FROM PROCESS_SAMPLES WHERE kind = 'heartbeat'")
    t0=$EPOCHREALTIME
    for _ in $(seq "$seconds"); do
        sleep 1
        rss+=("$(status_kb "$daemon" VmRSS)")
    done
    read -r own1 child1 < <(proc_cpu "$daemon")
    [ -n "$server_pid" ] && read -r server1 _ < <(proc_cpu "$server_pid")
    t1=$EPOCHREALTIME
    local hwm elapsed own_pct child_pct server_pct rss_med rss_max
    hwm=$(status_kb "$daemon" VmHWM)
    local anon file threads
    anon=$(status_kb "$daemon" RssAnon)
    file=$(status_kb "$daemon" RssFile)
    threads=$(status_kb "$daemon" Threads)
    elapsed=$(calc "%.3f" "$t1 - $t0")
    own_pct=$(calc "%.3f" "($own1 - $own0) * 100 / $ticks / $elapsed")
    child_pct=$(calc "%.3f" "($child1 - $child0) * 100 / $ticks / $elapsed")
    server_pct=$(calc "%.3f" "($server1 - $server0) * 100 / $ticks / $elapsed")
    rss_med=$(printf '%s\n' "${rss[@]}" | median)
    rss_max=$(printf '%s\n' "${rss[@]}" | sort -g | tail -n 1)
    stop_daemon
    # Sanity, read after the window: every sleep alive in PROCESS_STATS, heartbeats written.
    local alive beats per_check=""
    alive=$(sql "$database" -e "SELECT COUNT(*) FROM PROCESS_STATS WHERE alive = 1")
    beats=$(sql "$database" -e "SELECT COUNT(*) FROM PROCESS_SAMPLES WHERE kind = 'heartbeat'")
    beats=$((beats - beats0))
    # The daemon's own CPU per health check it ran: spawning, reaping, recording.
    if [ "$beats" -gt 0 ]; then
        per_check=$(calc %.3f "($own1 - $own0) * 1000 / $ticks / $beats")
        results[$mode.check]+="$per_check "
        per_check=" ($per_check ms per check)"
    fi
    printf '  %-9s run %d: RSS %5.1f MB (max %5.1f, VmHWM %5.1f; at the end anon %.1f + file %.1f, %d threads), CPU own %.3f %%%s, children %.3f %% of one core over %.0f s; mariadbd %.2f %%; alive %s/%s, health checks in window %s\n' \
        "$mode" "$run" "$(calc %.2f "$rss_med / 1024")" "$(calc %.2f "$rss_max / 1024")" \
        "$(calc %.2f "$hwm / 1024")" "$(calc %.2f "$anon / 1024")" "$(calc %.2f "$file / 1024")" "$threads" "$own_pct" "$per_check" "$child_pct" "$elapsed" "$server_pct" \
        "$alive" "$count" "$beats"
    results[$mode.rss]+="$rss_med "
    results[$mode.hwm]+="$hwm "
    results[$mode.own]+="$own_pct "
    results[$mode.child]+="$child_pct "
    results[$mode.server]+="$server_pct "
}

echo "footprint of monitor_service (release) watching $count sleeps, stats_interval = 1, heartbeat_interval = 1: $runs run(s) per mode, ${warmup} s warm-up, ${seconds} s window"
for run in $(seq "$runs"); do
    for mode in "${modes[@]}"; do
        one_run "$mode" "$run"
    done
done

# shellcheck disable=SC2086 # the list is meant to split
med() { printf '%s\n' ${results[$1]} | median; }
for mode in "${modes[@]}"; do
    rss_mb=$(calc %.2f "$(med "$mode.rss") / 1024")
    hwm_mb=$(calc %.2f "$(med "$mode.hwm") / 1024")
    own=$(med "$mode.own")
    child=$(med "$mode.child")
    case $mode in
    heartbeat) what="health_check_command = pgrep -x %s, $count checks/s" ;;
    sampling) what="health_check_command empty, sampling only" ;;
    esac
    check=""
    if [ -n "${results[$mode.check]:-}" ]; then
        check=" ($(med "$mode.check") ms of its own CPU per health check)"
    fi
    printf 'daemon footprint, %s (median of %d): RSS %s MB, VmHWM %s MB (goal <= 8 MB; monit 14.8, supervisord 31: %sx and %sx smaller); CPU own %.3f %% of one core (goal <= 0.5 %%; monit 1.15 %%: %.2fx)%s, children %.3f %%, mariadbd %.2f %%\n' \
        "$what" "$runs" "$rss_mb" "$hwm_mb" "$(calc %.1f "14.8 / $rss_mb")" "$(calc %.1f "31 / $rss_mb")" \
        "$own" "$(calc %.3f "$own / 1.15")" "$check" "$child" "$(med "$mode.server")"
done
