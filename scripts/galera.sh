#!/usr/bin/env bash
# A three-node MariaDB Galera cluster on 127.0.0.1 for the cluster tests, started directly from
# the installed mariadbd and galera-4 (installed with apt-get or dnf when missing), without
# systemd. Each node runs in the background with its own configuration, data, socket and logs
# under one directory; root logs in over TCP without a password, as on the test server.
#
#   scripts/galera.sh start      bring the cluster up (reuses a whole one; starts missing nodes
#                                of a partial one; bootstraps from scratch when none runs)
#   scripts/galera.sh status     one line per node; exits 1 unless all three are Synced in one
#                                cluster of 3
#   scripts/galera.sh stop       SIGKILL every node (and what an SST left running), remove the
#                                directory
#   scripts/galera.sh kill N     SIGKILL node N's mariadbd (N = 1, 2 or 3)
#   scripts/galera.sh restart N  start node N again and wait until it has rejoined (IST or SST)
#
# Node N (1..3) listens for clients on BASE+N-1 and for Galera on BASE+10N (group
# communication), BASE+10N+1 (IST) and BASE+10N+2 (SST): ports 4306..4338 by default.
#
#   GALERA_BASE_PORT  first client port [4306]
#   GALERA_DIR        data, configuration and logs [${TMPDIR:-/tmp}/monitor_service-galera-BASE]
#   GALERA_WAIT       seconds to wait for each node to be Synced, or to die [120]
#   GALERA_PROVIDER   path of libgalera_smm.so [found in the usual places]
set -euo pipefail

base_port=${GALERA_BASE_PORT:-4306}
launched_pid=""
[[ $base_port =~ ^[0-9]+$ ]] && [ "$base_port" -ge 1024 ] && [ "$base_port" -le 65000 ] || {
    echo "galera: error: GALERA_BASE_PORT must be a port in 1024..65000, not '$base_port'" >&2
    exit 1
}
cluster_dir=${GALERA_DIR:-${TMPDIR:-/tmp}/monitor_service-galera-$base_port}
wait_seconds=${GALERA_WAIT:-120}
install_log=${TMPDIR:-/tmp}/galera-install.log
nodes=(1 2 3)

say() { echo "galera: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

client_port() { echo $((base_port + $1 - 1)); }
gcomm_port() { echo $((base_port + 10 * $1)); }
ist_port() { echo $((base_port + 10 * $1 + 1)); }
sst_port() { echo $((base_port + 10 * $1 + 2)); }
node_dir() { echo "$cluster_dir/node$1"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "must be root (or have sudo) to run: $*"
    fi
}

first_command() {
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

first_file() {
    local candidate
    for candidate in "$@"; do
        if [ -e "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

server_bin() {
    first_file /usr/sbin/mariadbd /usr/libexec/mariadbd /usr/sbin/mysqld /usr/libexec/mysqld
}
provider_lib() {
    if [ -n "${GALERA_PROVIDER:-}" ]; then
        first_file "$GALERA_PROVIDER"
        return
    fi
    first_file /usr/lib/galera/libgalera_smm.so /usr/lib64/galera-4/libgalera_smm.so \
        /usr/lib64/galera/libgalera_smm.so /usr/lib/libgalera_smm.so
}
client_bin() { first_command mariadb mysql; }
install_db_bin() { first_command mariadb-install-db mysql_install_db; }

# Everything a node needs: the server, Galera, the client, rsync for the SST, and one of the
# socket tools wsrep_sst_rsync uses to see its rsync daemon listen.
missing_anything() {
    server_bin >/dev/null && provider_lib >/dev/null && client_bin >/dev/null &&
        install_db_bin >/dev/null && first_command rsync >/dev/null &&
        first_command ss lsof sockstat >/dev/null && return 1
    return 0
}

install_packages() {
    local packages
    if command -v apt-get >/dev/null 2>&1; then
        packages="mariadb-server mariadb-client galera-4 rsync iproute2"
        say "installing $packages with apt-get (log: $install_log)"
        # shellcheck disable=SC2086 # the package list is meant to split
        if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get update &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y $packages; } \
            >"$install_log" 2>&1; then
            tail -n 20 "$install_log" >&2
            die "apt-get could not install $packages"
        fi
    elif first_command dnf yum >/dev/null; then
        local dnf
        dnf=$(first_command dnf yum)
        packages="mariadb-server mariadb-server-galera galera mariadb rsync iproute"
        say "installing $packages with $(basename "$dnf") (log: $install_log)"
        # shellcheck disable=SC2086
        if ! as_root "$dnf" install -y $packages >"$install_log" 2>&1; then
            tail -n 20 "$install_log" >&2
            die "$(basename "$dnf") could not install $packages"
        fi
    else
        die "MariaDB or Galera is missing and neither apt-get nor dnf is available to install them"
    fi
    missing_anything && die "still missing after installing: mariadbd, libgalera_smm.so," \
        "the mariadb client, mariadb-install-db, rsync or ss"
    return 0
}

# The pid of node N's mariadbd, found by the configuration file on its command line, so that a
# server of the same binary on another port (the test server on 3306) is never mistaken for it.
node_pid() {
    local cnf proc comm args
    cnf="--defaults-file=$(node_dir "$1")/my.cnf"
    # Builtins only: this runs in every wait loop, over every process of the machine.
    for proc in /proc/[0-9]*; do
        { read -r comm <"$proc/comm"; } 2>/dev/null || continue
        case "$comm" in mariadbd | mysqld) ;; *) continue ;; esac
        { mapfile -t -d '' args <"$proc/cmdline"; } 2>/dev/null || continue
        # A node's first argument is always its --defaults-file.
        if [ "${args[1]:-}" = "$cnf" ]; then
            echo "${proc#/proc/}"
            return 0
        fi
    done
    return 1
}

sql() {
    local port=$1
    shift
    "$(client_bin)" --no-defaults --protocol=TCP -h127.0.0.1 -P"$port" -uroot \
        --connect-timeout=2 -N -B -e "$@"
}

# "SIZE STATE" of node N, or nothing when it does not answer.
wsrep_state() {
    sql "$(client_port "$1")" "SELECT
        (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
          WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'),
        (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
          WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE_COMMENT')" 2>/dev/null | tr '\t' ' '
}

# The user the nodes run as: mariadbd refuses root unless told --user=root, and the SST's rsync
# daemon takes the same user, so as root we use mysql when it exists.
run_user() {
    if [ "$(id -u)" -ne 0 ]; then
        id -un
    elif id mysql >/dev/null 2>&1; then
        echo mysql
    else
        echo root
    fi
}

write_config() {
    local n=$1 dir provider peers="" m options
    dir=$(node_dir "$n")
    provider=$(provider_lib)
    for m in "${nodes[@]}"; do
        peers+="${peers:+,}127.0.0.1:$(gcomm_port "$m")"
    done
    # Galera listens on every address unless told; the IST listens where it is told.
    options="base_host=127.0.0.1;base_port=$(gcomm_port "$n")"
    options+=";gmcast.listen_addr=tcp://127.0.0.1:$(gcomm_port "$n")"
    options+=";ist.recv_addr=127.0.0.1:$(ist_port "$n");gcache.size=32M"
    cat >"$dir/my.cnf" <<EOF
# Node $n of the test cluster made by scripts/galera.sh; removed by its stop.
[mysqld]
datadir=$dir/data
socket=$dir/mysqld.sock
pid-file=$dir/mariadbd.pid
log-error=$dir/error.log
port=$(client_port "$n")
bind-address=127.0.0.1
skip-name-resolve
# Small: the machine is shared.
performance_schema=OFF
innodb_buffer_pool_size=32M
innodb_log_file_size=16M
innodb_flush_log_at_trx_commit=2
key_buffer_size=1M
# Galera needs these.
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
wsrep_on=ON
wsrep_provider=$provider
wsrep_cluster_name=monitor_service_test_$base_port
wsrep_cluster_address=gcomm://$peers
wsrep_node_name=node$n
wsrep_node_address=127.0.0.1
wsrep_node_incoming_address=127.0.0.1:$(client_port "$n")
wsrep_provider_options="$options"
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:$(sst_port "$n")
EOF
}

prepare_node() {
    local n=$1 dir user
    dir=$(node_dir "$n")
    user=$(run_user)
    mkdir -p "$dir/data"
    write_config "$n"
    # The SST scripts run as the node's user and write beside the data.
    [ "$user" = "$(id -un)" ] || chown -R "$user:" "$dir"
}

# The data of the first node: root@127.0.0.1 without a password (the "normal" method). The
# others get theirs from it by SST, so they start empty.
initialise_first_node() {
    local dir
    dir=$(node_dir 1)
    if ! "$(install_db_bin)" --defaults-file="$dir/my.cnf" --user="$(run_user)" \
        --auth-root-authentication-method=normal --skip-test-db \
        >"$dir/install-db.log" 2>&1 9>&-; then
        tail -n 20 "$dir/install-db.log" >&2
        die "mariadb-install-db failed for node 1 (log: $dir/install-db.log)"
    fi
}

launch_node() {
    local n=$1 dir
    shift
    dir=$(node_dir "$n")
    # Detached from this shell and its descriptors, so that a caller reading our output is not
    # held open by the servers.
    setsid "$(server_bin)" --defaults-file="$dir/my.cnf" --user="$(run_user)" "$@" \
        </dev/null >>"$dir/console.log" 2>&1 9>&- &
    # setsid becomes mariadbd under this pid: until it has, node_pid cannot see the node.
    launched_pid=$!
    # Not a job of this shell: its death (by `kill N`) is no news to print.
    disown
}

# Waits until node N is Synced; PID, when given, is the process just launched for it.
wait_until_synced() {
    local n=$1 pid=${2:-} end=$((SECONDS + wait_seconds)) state=""
    while :; do
        state=$(wsrep_state "$n" || true)
        case "$state" in
        *" Synced") return 0 ;;
        esac
        if ! { [ -n "$pid" ] && alive "$pid"; } && ! node_pid "$n" >/dev/null; then
            tail -n 20 "$(node_dir "$n")/error.log" >&2 2>/dev/null || true
            die "node $n exited while starting (log: $(node_dir "$n")/error.log)"
        fi
        if [ "$SECONDS" -ge "$end" ]; then
            tail -n 20 "$(node_dir "$n")/error.log" >&2 2>/dev/null || true
            die "node $n is not Synced after ${wait_seconds}s (state: ${state:-no answer})"
        fi
        sleep 0.3
    done
}

# Where a node killed mid-flight stopped, as "--wsrep-start-position=UUID:SEQNO", so that it can
# ask for just the missing write sets (IST) instead of a full copy (SST): a kill leaves seqno -1
# in grastate.dat, and --wsrep-recover reads the real position from InnoDB, as mysqld_safe and
# the systemd unit do. Nothing when there is no data or nothing to recover.
recovered_position() {
    local dir position
    dir=$(node_dir "$1")
    grep -qx 'seqno: *-1' "$dir/data/grastate.dat" 2>/dev/null || return 0
    "$(server_bin)" --defaults-file="$dir/my.cnf" --user="$(run_user)" --wsrep-recover \
        --log-error="$dir/recover.log" </dev/null >/dev/null 2>&1 9>&- || return 0
    position=$(sed -n 's/.*WSREP: Recovered position: *//p' "$dir/recover.log" | tail -n 1)
    if [[ $position =~ ^[0-9a-f-]{36}:[0-9]+$ ]]; then
        echo "--wsrep-start-position=$position"
    fi
}

# Joins node N to the running nodes and waits until it is Synced. A node that died keeps its
# data and asks for IST; one whose data is gone gets a full SST.
join_node() {
    local n=$1 start=$SECONDS position
    prepare_node "$n"
    position=$(recovered_position "$n")
    # shellcheck disable=SC2086 # empty when there is no position: no argument at all
    launch_node "$n" $position
    wait_until_synced "$n" "$launched_pid"
    say "node $n joined in $((SECONDS - start))s (port $(client_port "$n"))"
}

cluster_whole() {
    local n
    for n in "${nodes[@]}"; do
        [ "$(wsrep_state "$n" 2>/dev/null)" = "3 Synced" ] || return 1
    done
}

running_nodes() {
    local n
    for n in "${nodes[@]}"; do
        if node_pid "$n" >/dev/null; then echo "$n"; fi
    done
}

ports_text() { echo "$(client_port 1), $(client_port 2), $(client_port 3)"; }

# Made by us, so ours to remove: a GALERA_DIR pointing elsewhere by mistake is left alone.
marker=.made-by-galera.sh

remove_cluster_dir() {
    if [ -e "$cluster_dir" ] && [ ! -e "$cluster_dir/$marker" ]; then
        die "$cluster_dir was not made by $0: not removing it (check GALERA_DIR)"
    fi
    rm -rf "$cluster_dir"
}

cmd_start() {
    local n start=$SECONDS running
    if cluster_whole; then
        say "cluster already up on ports $(ports_text)"
        return 0
    fi
    if missing_anything; then install_packages; fi
    running=$(running_nodes)
    if [ -z "$running" ]; then
        # Nothing runs: whatever is left from before is stale, and a test cluster starts clean.
        remove_cluster_dir
        mkdir -p "$cluster_dir"
        touch "$cluster_dir/$marker"
        say "bootstrapping a new cluster in $cluster_dir"
        prepare_node 1
        initialise_first_node
        launch_node 1 --wsrep-new-cluster
        wait_until_synced 1 "$launched_pid"
        running=1
    fi
    for n in "${nodes[@]}"; do
        # Ones started earlier but not yet Synced (still in SST) are waited for, not restarted.
        if grep -qx "$n" <<<"$running"; then
            wait_until_synced "$n"
        else
            join_node "$n"
        fi
    done
    cluster_whole || die "the nodes are Synced but not one cluster of 3 (see: $0 status)"
    say "cluster up on ports $(ports_text) in $((SECONDS - start))s (data: $cluster_dir)"
}

cmd_status() {
    local n pid state size comment whole=0
    for n in "${nodes[@]}"; do
        pid=$(node_pid "$n" || true)
        state=$(wsrep_state "$n" || true)
        size=${state%% *} comment=${state#* }
        printf 'node %s  port %s  pid %-7s  wsrep_cluster_size %-2s  ' \
            "$n" "$(client_port "$n")" "${pid:--}" "${size:--}"
        printf 'wsrep_local_state_comment %s\n' "${comment:--}"
        [ "$state" = "3 Synced" ] || whole=1
    done
    return "$whole"
}

# The process runs: a zombie (whose parent has not reaped it yet) counts as gone.
alive() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [ "${stat:0:1}" != Z ]
}

# SIGKILL, and wait until they are gone. The data goes with them, so a clean shutdown would only
# cost time: a node leaving alone waits for the others to see it go.
kill_pids() {
    local end=$((SECONDS + wait_seconds)) pid
    kill -KILL "$@" 2>/dev/null || true
    for pid in "$@"; do
        while alive "$pid"; do
            [ "$SECONDS" -lt "$end" ] || die "pid $pid still runs ${wait_seconds}s after SIGKILL"
            sleep 0.05
        done
    done
}

# Processes left by an SST of a killed node (its rsync daemon, wsrep_sst_rsync), recognised by
# their name and DIR (ours, or one node's) on their command line.
leftover_pids() {
    local dir=$1 proc comm args
    for proc in /proc/[0-9]*; do
        { read -r comm <"$proc/comm"; } 2>/dev/null || continue
        case "$comm" in rsync | wsrep_sst_* | mariadbd | mysqld) ;; *) continue ;; esac
        { mapfile -t -d '' args <"$proc/cmdline"; } 2>/dev/null || continue
        if [[ "${args[*]}" == *"$dir/"* ]]; then
            echo "${proc#/proc/}"
        fi
    done
}

cmd_stop() {
    local n pid pids=()
    for n in "${nodes[@]}"; do
        if pid=$(node_pid "$n"); then pids+=("$pid"); fi
    done
    if [ "${#pids[@]}" -gt 0 ]; then
        kill_pids "${pids[@]}"
        say "stopped the nodes (pids ${pids[*]})"
    fi
    # shellcheck disable=SC2046 # one pid a word
    set -- $(leftover_pids "$cluster_dir")
    if [ "$#" -gt 0 ]; then
        kill_pids "$@"
        say "stopped what a state transfer left running (pids $*)"
    fi
    remove_cluster_dir
}

node_number() {
    [[ ${1:-} =~ ^[123]$ ]] || die "which node? expected 1, 2 or 3, got '${1:-}'"
    echo "$1"
}

cmd_kill() {
    local n pid
    n=$(node_number "${1:-}")
    pid=$(node_pid "$n") || die "node $n is not running"
    # Gone when this returns, with what its SST had running (which would hold its SST port), so
    # that a restart right after never finds them still there.
    # shellcheck disable=SC2046 # one pid a word
    kill_pids "$pid" $(leftover_pids "$(node_dir "$n")")
    say "killed node $n (pid $pid)"
}

cmd_restart() {
    local n others="" m
    n=$(node_number "${1:-}")
    if node_pid "$n" >/dev/null; then
        wait_until_synced "$n"
        say "node $n already runs"
        return 0
    fi
    for m in "${nodes[@]}"; do
        if [ "$m" != "$n" ] && node_pid "$m" >/dev/null; then others+=" $m"; fi
    done
    [ -n "$others" ] || die "no other node runs for node $n to join: use scripts/galera.sh start"
    join_node "$n"
}

# One command at a time on a cluster (tests may start it from several processes at once). The
# servers are started without this descriptor, or they would hold the lock for their lifetime.
take_lock() {
    exec 9>"${cluster_dir%/}.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w "$wait_seconds" 9 || die "another $0 holds ${cluster_dir%/}.lock"
    fi
}

case "${1:-}" in
start | stop | kill | restart) take_lock ;;
esac
case "${1:-}" in
start) cmd_start ;;
status) cmd_status ;;
stop) cmd_stop ;;
kill) cmd_kill "${2:-}" ;;
restart) cmd_restart "${2:-}" ;;
*)
    echo "usage: $0 start|status|stop|kill N|restart N" >&2
    exit 64
    ;;
esac
