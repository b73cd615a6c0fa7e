#!/usr/bin/env bash
# test_alarm.sh: the interactive alarm menu of monitor_service, to simulate alarm conditions.
#
#   test_alarm.sh [-c PATH]
#
# It reads the [database] section of the same config.ini as the service (-c PATH, else
# $MONITOR_SERVICE_CONFIG, else /opt/monitor_service/config.ini; MONITOR_DB_PASSWORD overrides
# the password) and offers:
#
#   1  display all services and their status      3  set all services in alarm
#   2  set one service in alarm (chosen by id)    4  reset all alarms
#   q  quit (so does the end of input)
#
# It also works on piped input: printf '2\n7\nq\n' | test_alarm.sh -c config.ini
#
# The password never appears on a command line: it goes to the mysql client in an option file
# of mode 600 in a private temporary folder, removed when the script exits. The client reads
# that file only (--defaults-file), so ~/.my.cnf cannot swap the user or password for others.
# Nothing typed at the menu reaches SQL: a process is chosen by an id checked to be an integer
# of the list, or by a name matched here, and only its integer id goes into the statement.
#
# Exit codes (sysexits): 0 ok, 64 usage, 69 database unavailable, 78 bad configuration.
set -euo pipefail

readonly PROGRAM=${0##*/}
readonly DEFAULT_CONFIG=/opt/monitor_service/config.ini
readonly EX_USAGE=64 EX_UNAVAILABLE=69 EX_CONFIG=78

usage() {
    cat <<EOF
Usage: $PROGRAM [-c PATH]

The interactive alarm menu of monitor_service: display the services and their status, set one
or all of them in alarm (STATUS_PROCESS.alarma = 1), reset all alarms.

Options:
  -c, --config PATH  config.ini to read the [database] settings from
                     (default: \$MONITOR_SERVICE_CONFIG, else $DEFAULT_CONFIG)
  -h, --help         show this help and exit

MONITOR_DB_PASSWORD, when set and not empty, overrides [database] password.
Commands are read from standard input, so it also runs piped:
  printf '2\\n7\\nq\\n' | $PROGRAM -c config.ini
EOF
}

# One clear line on stderr, then exit with the given code.
die() {
    local code=$1
    shift
    printf '%s: error: %s\n' "$PROGRAM" "$*" >&2
    exit "$code"
}

usage_error() {
    printf '%s: %s\n' "$PROGRAM" "$*" >&2
    usage >&2
    exit "$EX_USAGE"
}

# --- command line ------------------------------------------------------------------------------

config=${MONITOR_SERVICE_CONFIG:-$DEFAULT_CONFIG}
while (($# > 0)); do
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    -c | --config)
        (($# >= 2)) || usage_error "option $1 needs a PATH"
        config=$2
        shift 2
        ;;
    --config=*)
        config=${1#--config=}
        shift
        ;;
    -c?*)
        config=${1#-c}
        shift
        ;;
    --)
        shift
        (($# == 0)) || usage_error "unexpected argument: $1"
        ;;
    -*) usage_error "unknown option: $1" ;;
    *) usage_error "unexpected argument: $1" ;;
    esac
done
[[ -n $config ]] || usage_error "the config PATH is empty"

# --- config.ini ---------------------------------------------------------------------------------

if [[ -d $config ]]; then
    die "$EX_CONFIG" "cannot read config $config: it is a directory"
elif [[ ! -e $config ]]; then
    die "$EX_CONFIG" "cannot read config $config: no such file"
elif [[ ! -r $config ]] || ! : <"$config" 2>/dev/null; then
    die "$EX_CONFIG" "cannot read config $config: permission denied"
fi

# Prints `key=value` for the keys of [database] that this script uses, the first of each, read
# as the service reads config.ini: comments are lines starting with ; or # (after blanks), the
# key ends at the first = or :, the value is everything after it with surrounding blanks
# removed (so it keeps any ; or # inside), a quoted part loses its quotes, backslashes are kept
# and a line ending in a backslash goes on on the next line.
read_database_section() {
    LC_ALL=C awk '
        function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
        # As rust-ini: quoted parts lose their quotes (a backslash keeps the next character in
        # them), the unquoted rest is trimmed.
        function value_of(v,    out, q, i, c, first) {
            sub(/^[ \t]+/, "", v)
            out = ""
            first = 1
            while (1) {
                c = substr(v, 1, 1)
                if (c == "\"" || c == "\047") {
                    q = c
                    for (i = 2; i <= length(v); i++) {
                        c = substr(v, i, 1)
                        if (c == "\\") { out = out substr(v, i, 2); i++; continue }
                        if (c == q) break
                        out = out c
                    }
                    v = substr(v, i + 1)
                    first = 0
                    continue
                }
                if (v == "") break
                if (first) v = trim(v); else sub(/[ \t]+$/, "", v)
                out = out v
                break
            }
            return out
        }
        function handle(line,    t, split_at, eq, colon, key) {
            t = trim(line)
            if (t == "" || t ~ /^[;#]/) return
            if (t ~ /^\[/) {
                section = t
                sub(/^\[/, "", section)
                sub(/\][ \t]*$/, "", section)
                section = trim(section)
                return
            }
            if (section != "database") return
            eq = index(line, "="); colon = index(line, ":")
            split_at = (eq && colon) ? (eq < colon ? eq : colon) : (eq ? eq : colon)
            if (!split_at) return
            key = trim(substr(line, 1, split_at - 1))
            if (key in wanted && !(key in seen)) {
                seen[key] = 1
                printf "%s=%s\n", key, value_of(substr(line, split_at + 1))
            }
        }
        BEGIN {
            n = split("host port socket user password database connect_timeout", keys, " ")
            for (i = 1; i <= n; i++) wanted[keys[i]] = 1
            section = ""
            pending = ""
        }
        {
            line = $0
            sub(/\r$/, "", line)
            if (NR == 1 && substr(line, 1, 3) == "\357\273\277") line = substr(line, 4)
            line = pending line
            pending = ""
            # An odd number of backslashes at the end: the value goes on on the next line.
            if (match(line, /\\+$/) && RLENGTH % 2 == 1) {
                pending = substr(line, 1, length(line) - 1)
                next
            }
            handle(line)
        }
        END { if (pending != "") handle(pending) }
    ' "$config"
}

db_host=localhost db_port=3306 db_socket="" db_user=root db_password="" db_name=v_process_monitor
db_timeout=5
settings=$(read_database_section) || die "$EX_CONFIG" "cannot read config $config"
while IFS= read -r setting; do
    value=${setting#*=}
    case ${setting%%=*} in
    host) db_host=$value ;;
    port) db_port=$value ;;
    socket) db_socket=$value ;;
    user) db_user=$value ;;
    password) db_password=$value ;;
    database) db_name=$value ;;
    connect_timeout) db_timeout=$value ;;
    esac
done <<<"$settings"

bad_setting() { die "$EX_CONFIG" "$config: [database] $1 $2"; }
[[ -n $db_host ]] || bad_setting host "must not be empty (the default is localhost)"
[[ -n $db_user ]] || bad_setting user "must not be empty (the default is root)"
[[ -n $db_name ]] || bad_setting database "must not be empty (the default is v_process_monitor)"
if [[ ! $db_port =~ ^[0-9]{1,5}$ ]] || ((10#$db_port < 1 || 10#$db_port > 65535)); then
    bad_setting port "must be a whole number from 1 to 65535, not \"$db_port\""
fi
db_port=$((10#$db_port))
if [[ ! $db_timeout =~ ^[0-9]{1,6}(\.[0-9]*)?$ ]] || [[ $db_timeout =~ ^0*(\.0*)?$ ]]; then
    bad_setting connect_timeout "must be a positive number of seconds, not \"$db_timeout\""
fi
# host may be a list, tried in order as the service does: HOST, HOST:PORT, [IPv6] or [IPv6]:PORT,
# comma-separated; an entry without a port takes port.
server_hosts=() server_ports=()
IFS=',' read -r -a entries <<<"$db_host"
[[ $db_host == *, ]] && entries+=("")
for entry in "${entries[@]}"; do
    entry=${entry#"${entry%%[![:space:]]*}"}
    entry=${entry%"${entry##*[![:space:]]}"}
    entry_port=$db_port
    if [[ $entry =~ ^\[([^]]+)\](:([0-9]{1,5}))?$ ]]; then
        entry_host=${BASH_REMATCH[1]} entry_port=${BASH_REMATCH[3]:-$db_port}
    elif [[ $entry =~ ^([^:[:space:]]+):([0-9]{1,5})$ ]]; then
        entry_host=${BASH_REMATCH[1]} entry_port=${BASH_REMATCH[2]}
    elif [[ $entry =~ ^[^[:space:]]+$ ]]; then
        entry_host=$entry
    else
        bad_setting host "has a wrong entry \"$entry\" (a list is HOST, HOST:PORT or [IPv6]:PORT, comma-separated)"
    fi
    ((10#$entry_port >= 1 && 10#$entry_port <= 65535)) ||
        bad_setting host "has a wrong port in \"$entry\" (1 to 65535)"
    server_hosts+=("$entry_host")
    server_ports+=("$((10#$entry_port))")
done
if [[ -n $db_socket && ${#server_hosts[@]} -gt 1 ]]; then
    bad_setting socket "reaches one local server: it cannot go with a list of hosts"
fi

# The client counts whole seconds: round a fraction up.
connect_seconds=$((10#${db_timeout%%.*} + 0))
[[ $db_timeout =~ \.[0-9]*[1-9] ]] && connect_seconds=$((connect_seconds + 1))

# As the service does, refuse a file with a password that group or others may read.
if [[ -n $db_password ]]; then
    mode=$(stat -L -c %a -- "$config" 2>/dev/null || echo 600)
    if (((8#$mode & 8#077) != 0)); then
        die "$EX_CONFIG" "$config holds a password but group or others may access it" \
            "(mode $(printf '%04o' "$((8#$mode))")): run chmod 600 $config"
    fi
fi
if [[ -n ${MONITOR_DB_PASSWORD:-} ]]; then
    db_password=$MONITOR_DB_PASSWORD
fi
# Not handed down to the clients: their environment would show it to the user's other processes.
unset MONITOR_DB_PASSWORD

# --- the mysql client ---------------------------------------------------------------------------

client=$(command -v mariadb || command -v mysql || true)
[[ -n $client ]] || die "$EX_UNAVAILABLE" "no mysql client found (install mariadb-client or mysql-client)"

umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/test_alarm.XXXXXX") ||
    die "$EX_UNAVAILABLE" "cannot create a temporary folder"
trap 'rm -rf -- "$work"' EXIT
trap 'printf "\n"; exit 130' INT
trap 'exit 143' TERM
option_file=$work/client.cnf
error_file=$work/client.err

# A value for an option file: double-quoted, with \ and " escaped.
option_value() {
    local value=${1//\\/\\\\}
    printf '"%s"' "${value//\"/\\\"}"
}

# The client's option file for server $1 (an index of the list).
write_option_file() {
    {
        echo "[client]"
        if [[ -n $db_socket ]]; then
            echo "protocol=SOCKET"
            echo "socket=$(option_value "$db_socket")"
        else
            # As the service does: TCP even to localhost, where the client would take a socket.
            echo "protocol=TCP"
            echo "host=$(option_value "${server_hosts[$1]}")"
            echo "port=${server_ports[$1]}"
        fi
        echo "user=$(option_value "$db_user")"
        if [[ -n $db_password ]]; then
            echo "password=$(option_value "$db_password")"
        fi
        echo "database=$(option_value "$db_name")"
        echo "connect-timeout=$connect_seconds"
        echo "default-character-set=utf8mb4"
    } >"$option_file"
    if [[ -n $db_socket ]]; then
        where="database $db_name via $db_socket as $db_user"
    elif [[ ${server_hosts[$1]} == *:* ]]; then
        where="database $db_name on [${server_hosts[$1]}]:${server_ports[$1]} as $db_user"
    else
        where="database $db_name on ${server_hosts[$1]}:${server_ports[$1]} as $db_user"
    fi
}

# Runs SQL, rows tab-separated on stdout. The client's stdin is not the menu's input.
sql() {
    "$client" --defaults-file="$option_file" --batch --skip-column-names -e "$1" \
        </dev/null 2>"$error_file"
}

# The client's error message, on one line.
client_error() {
    local message
    message=$(tr -s '\n\t' '  ' <"$error_file")
    message=${message% }
    printf '%s' "${message:-the mysql client failed}"
}

# A failed statement at the menu: say so and go back to the menu.
report_failure() {
    printf '%s: %s failed: %s\n' "$PROGRAM" "$1" "$(client_error)" >&2
}

# The first server of the list that answers, as the service's commands do.
unreachable=()
for index in "${!server_hosts[@]}"; do
    write_option_file "$index"
    if sql "SELECT 1" >/dev/null; then
        unreachable=()
        break
    fi
    unreachable+=("$where: $(client_error)")
done
if [[ ${#unreachable[@]} -eq 1 ]]; then
    die "$EX_UNAVAILABLE" "cannot reach the ${unreachable[0]}"
elif [[ ${#unreachable[@]} -gt 1 ]]; then
    die "$EX_UNAVAILABLE" "cannot reach any server of the list: $(printf '%s; ' "${unreachable[@]}")"
fi
tables=$(sql "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()
    AND TABLE_NAME IN ('PROCESE', 'STATUS_PROCESS')") ||
    die "$EX_UNAVAILABLE" "cannot read the tables of the $where: $(client_error)"
if [[ $tables != 2 ]]; then
    die "$EX_UNAVAILABLE" "the $where has no PROCESE and STATUS_PROCESS tables:" \
        "run monitor_service -c $config migrate"
fi

# --- the menu -----------------------------------------------------------------------------------

# Every process with its status; a process without a STATUS_PROCESS row shows "-".
readonly LIST_SQL="SELECT p.process_id, p.process_name,
        CASE WHEN s.process_id IS NULL THEN '-' WHEN s.alarma <> 0 THEN 'yes' ELSE 'no' END,
        IFNULL(s.sound, '-'), IFNULL(s.notes, '')
    FROM PROCESE p LEFT JOIN STATUS_PROCESS s ON s.process_id = p.process_id
    ORDER BY p.process_id"

# Leading and trailing blanks removed.
trim() {
    local text=$1
    text=${text#"${text%%[![:space:]]*}"}
    printf '%s' "${text%"${text##*[![:space:]]}"}"
}

# Reads one line into the variable named $1; false at the end of input. A last line without a
# newline still counts. Piped input is echoed after the prompt, so that the output reads as a
# transcript.
read_line() {
    local -n into=$1
    into=""
    IFS= read -r into || [[ -n $into ]] || return 1
    [[ -t 0 ]] || printf '%s\n' "$(printable "$into")"
}

# Printable for echoing back what was typed.
printable() { printf '%s' "${1//[^[:print:]]/?}"; }

display_all() {
    local rows
    if ! rows=$(sql "$LIST_SQL"); then
        report_failure "reading the processes"
        return 0
    fi
    if [[ -z $rows ]]; then
        echo "No services: PROCESE is empty."
        return 0
    fi
    printf '%s\n' "$rows" | awk -F '\t' '
        {
            n++
            for (i = 1; i <= 5; i++) { cell[n, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
            if ($3 == "yes") alarms++
        }
        END {
            split("ID NAME ALARM SOUND NOTES", head, " ")
            for (i = 1; i <= 4; i++) if (length(head[i]) > w[i]) w[i] = length(head[i])
            fmt = "%" w[1] "s  %-" w[2] "s  %-" w[3] "s  %-" w[4] "s  %s\n"
            printf fmt, head[1], head[2], head[3], head[4], head[5]
            for (r = 1; r <= n; r++) {
                line = sprintf(fmt, cell[r, 1], cell[r, 2], cell[r, 3], cell[r, 4], cell[r, 5])
                sub(/ +\n$/, "\n", line)
                printf "%s", line
            }
            printf "%d service%s, %d in alarm\n", n, n == 1 ? "" : "s", alarms
        }'
}

set_one() {
    local rows id name answer chosen="" chosen_name="" result digits sign=""
    if ! rows=$(sql "$LIST_SQL"); then
        report_failure "reading the processes"
        return 0
    fi
    if [[ -z $rows ]]; then
        echo "No services: PROCESE is empty."
        return 0
    fi
    echo "Services:"
    printf '%s\n' "$rows" | awk -F '\t' '
        { n++; id[n] = $1; name[n] = $2; state[n] = $3; if (length($1) > w) w = length($1) }
        END {
            for (r = 1; r <= n; r++) {
                note = state[r] == "yes" ? "  (in alarm)" : state[r] == "-" ? "  (no status row)" : ""
                printf "  %" w "s) %s%s\n", id[r], name[r], note
            }
        }'
    printf 'Service to set in alarm, by id or name (empty to cancel): '
    if ! read_line answer; then
        echo
        return 0
    fi
    answer=$(trim "$answer")
    if [[ -z $answer ]]; then
        echo "Cancelled: nothing changed."
        return 0
    fi
    # An id: an integer, compared in canonical form with the ids of the list.
    if [[ $answer =~ ^([-+]?)0*([0-9]{1,10})$ ]]; then
        [[ ${BASH_REMATCH[1]} == - ]] && sign=-
        digits=$((10#${BASH_REMATCH[2]}))
        [[ $digits == 0 ]] && sign=""
        answer=$sign$digits
    fi
    while IFS=$'\t' read -r id name _; do
        if [[ $id == "$answer" || $name == "$answer" ]]; then
            chosen=$id
            chosen_name=$name
            break
        fi
    done <<<"$rows"
    if [[ -z $chosen || ! $chosen =~ ^-?[0-9]+$ ]]; then
        printf 'No service with id or name "%s" in the list: nothing changed.\n' \
            "$(printable "$answer")" >&2
        return 0
    fi
    # A service without a STATUS_PROCESS row gets one. ROW_COUNT(): 1 inserted, 2 updated,
    # 0 already in alarm.
    if ! result=$(sql "INSERT INTO STATUS_PROCESS (process_id, alarma, sound) VALUES ($chosen, 1, 0)
            ON DUPLICATE KEY UPDATE alarma = IF(alarma = 0, 1, alarma);
        SELECT ROW_COUNT()"); then
        report_failure "setting $chosen_name (id $chosen) in alarm"
        return 0
    fi
    case $result in
    0) echo "$chosen_name (id $chosen) was already in alarm: 0 rows changed." ;;
    1) echo "Alarm set for $chosen_name (id $chosen), in a new STATUS_PROCESS row: 1 row changed." ;;
    2) echo "Alarm set for $chosen_name (id $chosen): 1 row changed." ;;
    *) echo "Alarm set for $chosen_name (id $chosen): $result rows changed." ;;
    esac
}

set_all() {
    local result updated inserted total
    if ! result=$(sql "START TRANSACTION;
        UPDATE STATUS_PROCESS SET alarma = 1 WHERE alarma = 0;
        SELECT ROW_COUNT();
        INSERT INTO STATUS_PROCESS (process_id, alarma, sound)
            SELECT p.process_id, 1, 0 FROM PROCESE p
            WHERE NOT EXISTS (SELECT 1 FROM STATUS_PROCESS s WHERE s.process_id = p.process_id);
        SELECT ROW_COUNT();
        SELECT COUNT(*) FROM STATUS_PROCESS WHERE alarma <> 0;
        COMMIT"); then
        report_failure "setting all services in alarm"
        return 0
    fi
    { read -r updated && read -r inserted && read -r total; } <<<"$result"
    printf 'All services set in alarm: %d row%s changed' "$((updated + inserted))" \
        "$( ((updated + inserted == 1)) || echo s)"
    if ((inserted > 0)); then
        printf ' (%d new STATUS_PROCESS row%s)' "$inserted" "$( ((inserted == 1)) || echo s)"
    fi
    printf '; %d in alarm now.\n' "$total"
}

reset_all() {
    local result
    if ! result=$(sql "UPDATE STATUS_PROCESS SET alarma = 0 WHERE alarma <> 0; SELECT ROW_COUNT()"); then
        report_failure "resetting the alarms"
        return 0
    fi
    printf 'All alarms reset: %d row%s changed.\n' "$result" "$( ((result == 1)) || echo s)"
}

show_menu() {
    cat <<EOF

Alarm test menu: $where
  1) Display all services and their status
  2) Set one service in alarm
  3) Set all services in alarm
  4) Reset all alarms
  q) Quit
EOF
}

show_menu
while :; do
    printf 'Choice: '
    if ! read_line choice; then
        echo
        exit 0
    fi
    choice=$(trim "$choice")
    case $choice in
    1) display_all ;;
    2) set_one ;;
    3) set_all ;;
    4) reset_all ;;
    q | Q | quit | exit) exit 0 ;;
    "") continue ;;
    *)
        printf 'Unknown choice "%s": enter 1, 2, 3, 4 or q.\n' "$(printable "$choice")" >&2
        ;;
    esac
    show_menu
done
