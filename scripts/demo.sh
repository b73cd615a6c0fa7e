#!/usr/bin/env bash
# A demonstration of monitor_service on this machine, in the foreground:
#
#   scripts/demo.sh
#
# It makes sure MariaDB runs, builds the release binary, writes demo/config.ini, starts a sample
# process called demo_sleeper, registers it in the database v_process_monitor_demo (created and
# migrated here) and runs the service, which then restarts demo_sleeper when an alarm is raised
# for it. Stop with Ctrl-C; demo_sleeper keeps running (`pkill -x demo_sleeper` ends it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
demo="$root/demo"
config="$demo/config.ini"
binary="$root/target/release/monitor_service"
database=v_process_monitor_demo

step() { printf '==> %s\n' "$*"; }

if [ -d "$HOME/.cargo/bin" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi

step "MariaDB on 127.0.0.1:3306"
MONITOR_TEST_DB_HOST=127.0.0.1 MONITOR_TEST_DB_PORT=3306 scripts/ensure-mariadb.sh
sql() {
    "$(command -v mariadb || command -v mysql)" --no-defaults --protocol=TCP -h127.0.0.1 -P3306 \
        -uroot "$@"
}

step "cargo build --release"
cargo build --release --quiet

step "writing $config"
mkdir -p "$demo"
# The sample is a copy of sleep under its own name, so that the process name, argv[0] and the
# executable all read demo_sleeper, as `pgrep -x` and the service's process lookup expect.
if [ ! -x "$demo/demo_sleeper" ]; then
    cp "$(command -v sleep)" "$demo/demo_sleeper"
fi
(
    umask 077
    cat >"$config" <<EOF
; Written by scripts/demo.sh; rewritten on every run.
[database]
host = 127.0.0.1
port = 3306
user = root
database = $database

[monitor]
check_interval = 2
lock_file = $demo/monitor_service.lock

[logging]
log_file = $demo/monitor_service.log
level = info
stderr = true

[process.demo_sleeper]
restart_strategy = process
start_command = exec $demo/demo_sleeper 100000
health_check_command = pgrep -x %s
health_check_timeout = 5
restart_delay = 1
max_attempts = 2
EOF
)
chmod 600 "$config"

step "starting the sample process demo_sleeper"
if pgrep -x demo_sleeper >/dev/null; then
    echo "    already running (pid $(pgrep -x demo_sleeper | tr '\n' ' '))"
else
    setsid "$demo/demo_sleeper" 100000 </dev/null >/dev/null 2>&1 &
    echo "    pid $!"
fi

step "database $database: create, migrate, register demo_sleeper as process 1"
sql -e "CREATE DATABASE IF NOT EXISTS \`$database\`"
"$binary" -c "$config" migrate
sql "$database" -e "
    INSERT IGNORE INTO PROCESE (process_id, process_name) VALUES (1, 'demo_sleeper');
    INSERT IGNORE INTO STATUS_PROCESS (process_id, alarma, sound) VALUES (1, 0, 0);"

cat <<EOF

The service now watches demo_sleeper (process 1). From another terminal:

  raise an alarm (the service stops demo_sleeper's process group, starts it again, checks
  it with pgrep and clears the alarm with a note):
    mysql -h127.0.0.1 -uroot $database -e "UPDATE STATUS_PROCESS SET alarma=1 WHERE process_id=1"

  kill the sample, then raise the alarm (the service starts it and clears the alarm):
    pkill -x demo_sleeper
    mysql -h127.0.0.1 -uroot $database -e "UPDATE STATUS_PROCESS SET alarma=1 WHERE process_id=1"

  look:
    mysql -h127.0.0.1 -uroot $database -e "SELECT * FROM STATUS_PROCESS; SELECT * FROM RESTART_EVENTS"
    tail -f $demo/monitor_service.log

Ctrl-C stops the service; demo_sleeper keeps running (pkill -x demo_sleeper).

EOF

step "$binary -c $config run"
exec "$binary" -c "$config" run
