#!/usr/bin/env bash
# Installs monitor_service on this machine: the Installation Guide of process-monitor-service.md,
# automated.
#
#   sudo scripts/install.sh [--binary PATH] [--no-db] [--dry-run]
#   sudo scripts/install.sh --uninstall [--purge] [--dry-run]
#   scripts/install.sh --prefix DIR        (or DESTDIR=DIR scripts/install.sh): stage for packaging
#
# Puts the binary, config.ini (mode 600), migrations/ and scripts under /opt/monitor_service, the
# unit in /etc/systemd/system, the man page in /usr/share/man/man8 and a link
# /usr/bin/monitor_service; creates and migrates the database; enables and starts the unit when
# systemd runs. Running it again is safe: a file already in place is left untouched (so a second
# run changes nothing), and an existing config.ini is never overwritten: when the shipped one
# differs, it is written beside it as config.ini.new, as rpm does with .rpmnew.
#
#   --binary PATH  the binary to install [target/release/monitor_service, built if missing]
#   --prefix DIR   install everything under DIR (DESTDIR does the same): no systemctl, no database
#   --no-db        do not create or migrate the database
#   --dry-run      print what would be done and change nothing
#   --uninstall    stop and disable the unit, remove the binary, unit, man page, migrations and
#                  scripts; keep config.ini, the log and the database
#   --purge        with --uninstall: also remove config.ini and the log files (the database is
#                  never dropped: other systems write PROCESE and STATUS_PROCESS)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

app_dir=/opt/monitor_service
unit_dir=/etc/systemd/system
man_dir=/usr/share/man/man8
bin_link=/usr/bin/monitor_service
unit=monitor_service.service
default_log=/var/log/monitor_service.log

say() { printf 'install.sh: %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() {
    printf 'install.sh: error: %s\n' "$1" >&2
    exit "${2:-1}"
}
usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

binary=""
root=${DESTDIR:-}
with_db=true
dry_run=false
uninstall=false
purge=false
while [ $# -gt 0 ]; do
    case $1 in
    --binary) binary=${2:?--binary needs a path}; shift ;;
    --binary=*) binary=${1#*=} ;;
    --prefix) root=${2:?--prefix needs a directory}; shift ;;
    --prefix=*) root=${1#*=} ;;
    --no-db) with_db=false ;;
    --dry-run) dry_run=true ;;
    --uninstall) uninstall=true ;;
    --purge) purge=true ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" 64 ;;
    esac
    shift
done
if $purge && ! $uninstall; then
    die "--purge goes with --uninstall" 64
fi

# Staging under a root is for packaging: the machine's systemd and database are not this
# install's business then.
staged=false
if [ -n "$root" ]; then
    staged=true
    root=${root%/}
    with_db=false
fi
is_root=false
if [ "$(id -u)" -eq 0 ]; then
    is_root=true
fi
if ! $staged && ! $is_root && ! $dry_run; then
    die "run as root (sudo), or stage with --prefix DIR"
fi
systemd_runs=false
if ! $staged && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemd_runs=true
fi

# Set by the install steps, so that the actions afterwards run only when something changed.
changed_service=false
changed_man=false

# Runs a command that changes the system, or prints it in a dry run.
act() {
    if $dry_run; then
        say "would run: $*"
    else
        "$@"
    fi
}

# The permission bits of a file in octal (600), empty if it does not exist.
mode_of() { stat -c %a "$1" 2>/dev/null || true; }

# Whether the file is owned as it should be: root:root when installing as root, anything
# otherwise (only root can chown).
owned_right() { ! $is_root || [ "$(stat -c %u:%g "$1")" = 0:0 ]; }

# install_file SOURCE DEST MODE: copies SOURCE to DEST (under the root) unless DEST already has
# the same content, mode and owner. Prints what it did; returns 1 when DEST was left as it was.
install_file() {
    local source=$1 dest=$root$2 mode=$3
    if [ -f "$dest" ] && cmp -s "$source" "$dest" && [ "$(mode_of "$dest")" = "$mode" ] &&
        owned_right "$dest"; then
        say "unchanged $dest"
        return 1
    fi
    if $dry_run; then
        say "would install $dest (mode $mode)"
        return 0
    fi
    local owner=()
    if $is_root; then
        owner=(-o root -g root)
    fi
    # install(1) replaces DEST by a new file instead of writing into it, so a running binary
    # is replaced without "Text file busy".
    install -D -m "$mode" "${owner[@]}" "$source" "$dest"
    say "installed $dest (mode $mode)"
}

# ensure_dir DIR MODE: creates DIR (under the root) or fixes its mode.
ensure_dir() {
    local dir=$root$1 mode=$2
    if [ -d "$dir" ] && [ "$(mode_of "$dir")" = "$mode" ]; then
        return
    fi
    if $dry_run; then
        say "would create $dir (mode $mode)"
        return
    fi
    mkdir -p "$dir"
    chmod "$mode" "$dir"
    if $is_root; then
        chown root:root "$dir"
    fi
    say "created $dir (mode $mode)"
}

# ensure_link TARGET LINK: LINK (under the root) points to TARGET, an absolute path as seen on
# the installed system. A file that is not a link is never replaced.
ensure_link() {
    local target=$1 link=$root$2
    if [ "$(readlink "$link" 2>/dev/null)" = "$target" ]; then
        say "unchanged $link -> $target"
        return
    fi
    if [ -e "$link" ] && [ ! -L "$link" ]; then
        warn "$link exists and is not a link: left alone"
        return
    fi
    if $dry_run; then
        say "would link $link -> $target"
        return
    fi
    mkdir -p "$(dirname "$link")"
    ln -sfn "$target" "$link"
    say "linked $link -> $target"
}

# remove PATH: removes a file or link (under the root) if it is there.
remove() {
    local path=$root$1
    if [ ! -e "$path" ] && [ ! -L "$path" ]; then
        return
    fi
    if $dry_run; then
        say "would remove $path"
    else
        rm -f "$path"
        say "removed $path"
    fi
}

# remove_dir_if_empty DIR: a directory still holding files (config.ini, an operator's own
# files) is kept.
remove_dir_if_empty() {
    local dir=$root$1
    if [ ! -d "$dir" ]; then
        return
    fi
    if [ -n "$(ls -A "$dir")" ]; then
        if ! $dry_run; then
            say "kept $dir: it is not empty"
        fi
        return
    fi
    if $dry_run; then
        say "would remove $dir"
    else
        rmdir "$dir"
        say "removed $dir"
    fi
}

# The binary to install: the one named, else the release build, built when missing.
find_binary() {
    if [ -n "$binary" ]; then
        [ -f "$binary" ] || die "no binary at $binary"
        return
    fi
    binary=${CARGO_TARGET_DIR:-$repo/target}/release/monitor_service
    if [ -f "$binary" ]; then
        return
    fi
    if $dry_run; then
        say "would build $binary: cargo build --release"
        return
    fi
    if [ -d "$HOME/.cargo/bin" ]; then
        PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 ||
        die "no binary at $binary and no cargo to build it: run cargo build --release first (as your user), or pass --binary PATH"
    say "building $binary: cargo build --release"
    (cd "$repo" && cargo build --release --quiet)
}

install_config() {
    local dest=$root$app_dir/config.ini
    if [ ! -e "$dest" ]; then
        install_file "$repo/config.ini" "$app_dir/config.ini" 600 || true
        return
    fi
    say "kept $dest: an existing config.ini is never overwritten"
    # The service refuses a config holding a password that group or others can read.
    if [ $((8#$(mode_of "$dest") & 8#077)) -ne 0 ]; then
        act chmod go-rwx "$dest"
        $dry_run || say "tightened $dest to mode $(mode_of "$dest")"
    fi
    if cmp -s "$repo/config.ini" "$dest"; then
        return
    fi
    # Shows the operator the keys and comments of this version, without touching theirs.
    install_file "$repo/config.ini" "$app_dir/config.ini.new" 600 || true
}

install_files() {
    find_binary
    ensure_dir "$app_dir" 755
    if $dry_run && [ ! -f "$binary" ]; then
        say "would install $root$app_dir/monitor_service (mode 755)"
        changed_service=true
    elif install_file "$binary" "$app_dir/monitor_service" 755; then
        changed_service=true
    fi
    ensure_link "$app_dir/monitor_service" "$bin_link"
    install_config
    local migration
    for migration in "$repo"/migrations/*.sql; do
        install_file "$migration" "$app_dir/migrations/$(basename "$migration")" 644 || true
    done
    if [ -f "$repo/scripts/test_alarm.sh" ]; then
        install_file "$repo/scripts/test_alarm.sh" "$app_dir/scripts/test_alarm.sh" 755 || true
    fi
    install_file "$repo/scripts/stats_queries.sql" "$app_dir/scripts/stats_queries.sql" 644 || true
    if install_file "$repo/$unit" "$unit_dir/$unit" 644; then
        changed_service=true
    fi
    if install_file "$repo/monitor_service.8" "$man_dir/monitor_service.8" 644; then
        changed_man=true
    fi
}

# Creates the database and applies the migrations. The install goes on without it: the service
# applies the migrations itself once the database answers (auto_migrate).
migrate_database() {
    local bin=$app_dir/monitor_service config=$app_dir/config.ini
    if $dry_run; then
        say "would run: $bin -c $config migrate"
        return
    fi
    local status=0
    "$bin" -c "$config" migrate || status=$?
    case $status in
    0) ;;
    69) warn "database not reachable: migrations skipped; once it answers, run: $bin migrate (or let the service do it)" ;;
    78) warn "$config is not valid yet: edit it, check it with: $bin check-config --db, then run: $bin migrate" ;;
    *) warn "$bin migrate failed (exit status $status): run it again once the cause is fixed" ;;
    esac
}

start_service() {
    act systemctl daemon-reload
    act systemctl enable "$unit"
    if $changed_service; then
        # Picks up a new binary or unit; respawned processes survive it (KillMode=process).
        act systemctl restart "$unit"
    else
        act systemctl start "$unit"
    fi
}

do_install() {
    install_files
    # With SELinux (RHEL's default), a new file takes the label of its directory, which is not
    # always the one the policy gives its path; restorecon sets the policy's labels, and changes
    # nothing when they are right already.
    if ! $staged && command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled; then
        act restorecon -R "$app_dir" "$unit_dir/$unit" "$man_dir/monitor_service.8"
    fi
    if $changed_man && ! $staged && command -v mandb >/dev/null 2>&1; then
        act mandb -q
    fi
    if $with_db; then
        migrate_database
    elif ! $staged; then
        say "database skipped (--no-db): run $app_dir/monitor_service migrate later"
    fi
    if $systemd_runs; then
        start_service
    elif ! $staged; then
        say "systemd is not running here (no /run/systemd/system): start the service with: systemctl enable --now $unit"
    fi
    if $dry_run; then
        say "dry run: nothing was changed"
    fi
}

# The log file named by log_file in the [logging] section of config.ini (the first one, as the
# service reads it), else the default.
configured_log() {
    local config=$root$app_dir/config.ini log=""
    if [ -f "$config" ]; then
        log=$(awk '
            /^[[:space:]]*\[/ { logging = ($0 ~ /^[[:space:]]*\[logging\][[:space:]]*$/) }
            logging && /^[[:space:]]*log_file[[:space:]]*=/ {
                sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]+$/, ""); gsub(/^"|"$/, "")
                print; exit
            }' "$config")
    fi
    printf '%s\n' "${log:-$default_log}"
}

do_uninstall() {
    if $systemd_runs && [ -e "$unit_dir/$unit" ]; then
        # KillMode=process: the processes the service started keep running.
        act systemctl disable --now "$unit"
    fi
    local log
    log=$(configured_log)
    if [ "$(readlink "$root$bin_link" 2>/dev/null)" = "$app_dir/monitor_service" ]; then
        remove "$bin_link"
    fi
    remove "$app_dir/monitor_service"
    remove "$unit_dir/$unit"
    remove "$man_dir/monitor_service.8"
    local file
    for file in "$root$app_dir"/migrations/*.sql; do
        if [ -e "$file" ]; then
            remove "${file#"$root"}"
        fi
    done
    remove "$app_dir/scripts/test_alarm.sh"
    remove "$app_dir/scripts/stats_queries.sql"
    remove "$app_dir/config.ini.new"
    remove_dir_if_empty "$app_dir/migrations"
    remove_dir_if_empty "$app_dir/scripts"
    if $purge; then
        remove "$app_dir/config.ini"
        for file in "$root$log" "$root$log".*; do
            if [ -e "$file" ]; then
                remove "${file#"$root"}"
            fi
        done
        remove_dir_if_empty "$app_dir"
        say "the database was not dropped: other systems write PROCESE and STATUS_PROCESS"
    elif [ -e "$root$app_dir/config.ini" ]; then
        say "kept $root$app_dir/config.ini, the log and the database (--purge removes the first two)"
    fi
    if $systemd_runs; then
        act systemctl daemon-reload
    fi
    if ! $staged && command -v mandb >/dev/null 2>&1; then
        act mandb -q
    fi
    if $dry_run; then
        say "dry run: nothing was changed"
    fi
}

if $uninstall; then
    do_uninstall
else
    do_install
fi
