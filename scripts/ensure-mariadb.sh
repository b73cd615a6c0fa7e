#!/usr/bin/env bash
# Makes sure a MariaDB (or MySQL) server answers on $MONITOR_TEST_DB_HOST:$MONITOR_TEST_DB_PORT
# (default 127.0.0.1:3306) and, when that server is local, that `root` logs in over TCP without a
# password, as the tests and the demo expect. On a fresh machine it installs MariaDB (apt-get or
# dnf), initialises its data directory and starts it, with or without systemd.
#
# Idempotent, and silent when everything is already in place. Exits non-zero with one clear
# line when the server cannot be brought up.
#
#   MONITOR_TEST_DB_HOST   server address [127.0.0.1]
#   MONITOR_TEST_DB_PORT   server port [3306]
#   MONITOR_TEST_DB_WAIT   seconds to wait for a starting server [60]
set -euo pipefail

host=${MONITOR_TEST_DB_HOST:-127.0.0.1}
port=${MONITOR_TEST_DB_PORT:-3306}
wait_seconds=${MONITOR_TEST_DB_WAIT:-60}
install_log=${TMPDIR:-/tmp}/ensure-mariadb-install.log
server_log=${TMPDIR:-/tmp}/ensure-mariadb-server.log
# Set when a server process was already there: then waiting is all we can do.
already_running=""
# Set when start-stop-daemon started the server, so that a server that dies is seen at once.
started_server=""

say() { echo "ensure-mariadb: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# Runs a command as root: directly when we are root, else through sudo without a prompt.
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

client_bin() { first_command mariadb mysql; }
admin_bin() { first_command mariadb-admin mysqladmin; }

server_bin() {
    local candidate
    for candidate in /usr/sbin/mariadbd /usr/sbin/mysqld /usr/libexec/mariadbd /usr/libexec/mysqld; do
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

is_local() {
    case "$host" in
    127.0.0.1 | localhost | ::1) return 0 ;;
    *) return 1 ;;
    esac
}

# The server accepts TCP connections (mysqladmin ping also succeeds on "access denied").
answers() {
    local admin
    admin=$(admin_bin) || return 1
    "$admin" --no-defaults --protocol=TCP -h"$host" -P"$port" -uroot --connect-timeout=2 \
        ping >/dev/null 2>&1
}

# root logs in over TCP without a password. --no-defaults keeps a ~/.my.cnf out of the answer.
root_over_tcp() {
    local client
    client=$(client_bin) || return 1
    "$client" --no-defaults --protocol=TCP -h"$host" -P"$port" -uroot --connect-timeout=2 \
        -e 'SELECT 1' >/dev/null 2>&1
}

install_packages() {
    local packages
    if command -v apt-get >/dev/null 2>&1; then
        if is_local; then packages="mariadb-server mariadb-client"; else packages="mariadb-client"; fi
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
        if is_local; then packages="mariadb-server mariadb"; else packages="mariadb"; fi
        say "installing $packages with $(basename "$dnf") (log: $install_log)"
        # shellcheck disable=SC2086
        if ! as_root "$dnf" install -y $packages >"$install_log" 2>&1; then
            tail -n 20 "$install_log" >&2
            die "$(basename "$dnf") could not install $packages"
        fi
    else
        die "MariaDB is not installed and neither apt-get nor dnf is available to install it"
    fi
}

# The server's data directory, as its own configuration says.
data_dir() {
    local dir=""
    if command -v my_print_defaults >/dev/null 2>&1; then
        dir=$(my_print_defaults --mysqld 2>/dev/null | sed -n 's/^--datadir=//p' | tail -n 1)
    fi
    echo "${dir:-/var/lib/mysql}"
}

init_data_dir() {
    local dir install_db
    dir=$(data_dir)
    if [ -d "$dir/mysql" ]; then
        return 0
    fi
    install_db=$(first_command mariadb-install-db mysql_install_db) ||
        die "the data directory $dir is empty and mariadb-install-db is missing"
    say "initialising the data directory $dir"
    as_root install -d -o mysql -g mysql -m 0750 "$dir"
    if ! as_root "$install_db" --user=mysql --datadir="$dir" >"$install_log" 2>&1; then
        tail -n 20 "$install_log" >&2
        die "$install_db failed"
    fi
}

start_server() {
    local server unit
    server=$(server_bin) || die "no MariaDB/MySQL server binary found after installing"
    # systemd runs the system only when it is PID 1, which is what /run/systemd/system tells.
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        for unit in mariadb mysqld mysql; do
            if as_root systemctl start "$unit" >/dev/null 2>&1; then
                say "started the $unit systemd unit"
                return 0
            fi
        done
        die "systemctl could not start mariadb, mysqld or mysql (see journalctl -xe)"
    fi
    # Without systemd we start the server ourselves, on the port asked for.
    init_data_dir
    # Debian's default socket and pid file live here; RedHat's in /run/mariadb.
    as_root install -d -o mysql -g mysql -m 0755 /run/mysqld
    if command -v start-stop-daemon >/dev/null 2>&1; then
        if start-stop-daemon --status --exec "$server"; then
            already_running="$server"
            return 0
        fi
        local output=()
        if start-stop-daemon --help 2>&1 | grep -q -- '--output'; then
            output=(--output "$server_log")
        fi
        say "starting $server with start-stop-daemon (log: $server_log)"
        as_root start-stop-daemon --start --oknodo --background "${output[@]}" \
            --exec "$server" -- --user=mysql --port="$port"
        started_server="$server"
    elif command -v mysqld_safe >/dev/null 2>&1; then
        as_root install -d -o mysql -g mysql -m 0755 /run/mariadb
        say "starting mysqld_safe (log: $server_log)"
        as_root setsid nohup mysqld_safe --user=mysql --port="$port" </dev/null >"$server_log" 2>&1 &
    else
        die "no way to start $server: neither systemd, start-stop-daemon nor mysqld_safe"
    fi
}

wait_until_it_answers() {
    local start=$SECONDS end=$((SECONDS + wait_seconds))
    until answers; do
        if [ -n "$started_server" ] && [ $((SECONDS - start)) -ge 2 ] &&
            ! start-stop-daemon --status --exec "$started_server"; then
            if [ -s "$server_log" ]; then tail -n 20 "$server_log" >&2; fi
            die "$started_server exited right after starting (log: $server_log)"
        fi
        if [ "$SECONDS" -ge "$end" ]; then
            if [ -n "$already_running" ]; then
                die "$already_running runs but does not answer on $host:$port after" \
                    "${wait_seconds}s: check its port and bind-address"
            fi
            if [ -s "$server_log" ]; then tail -n 20 "$server_log" >&2; fi
            die "no database server answers on $host:$port after ${wait_seconds}s"
        fi
        sleep 0.5
    done
}

# Fresh Debian and RedHat installs let root in only through the unix socket (unix_socket auth),
# so we log in that way, as the system's root, and open root@127.0.0.1 (and, if the server maps
# 127.0.0.1 to localhost, root@localhost) to TCP logins without a password.
open_root_over_tcp() {
    local client
    client=$(client_bin) || die "no mariadb/mysql client found"
    say "letting root@127.0.0.1 log in over TCP without a password"
    as_root "$client" -uroot -e "
        CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" ||
        die "could not log in as root through the unix socket to open root to TCP logins"
    if root_over_tcp; then
        return 0
    fi
    # MariaDB 10.4+ keeps the socket login and adds a passwordless one; older servers and MySQL
    # understand only the plain form.
    as_root "$client" -uroot -e "ALTER USER 'root'@'localhost'
        IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')" 2>/dev/null ||
        as_root "$client" -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED BY ''" ||
        die "could not let root@localhost log in without a password"
}

main() {
    if root_over_tcp; then
        return 0
    fi
    if ! is_local; then
        client_bin >/dev/null || install_packages
        wait_until_it_answers
        return 0
    fi
    if ! server_bin >/dev/null || ! client_bin >/dev/null || ! admin_bin >/dev/null; then
        install_packages
    fi
    if ! answers; then
        start_server
        wait_until_it_answers
    fi
    if ! root_over_tcp; then
        open_root_over_tcp
        root_over_tcp || die "root still cannot log in over TCP on $host:$port without a password"
    fi
}

main
