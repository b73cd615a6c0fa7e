//! What a child process may inherit from the service's environment.

use tokio::process::Command;

/// Variables that must not reach a child: systemd's notification and socket-activation
/// variables would let a child speak for the service (or steal its sockets), and the database
/// password and the alert webhook (whose URL may hold a token) are secrets. A process started
/// again as it was found ([`crate::process::launch`]) is recorded without them either.
pub const SCRUBBED_ENVIRONMENT: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "MONITOR_DB_PASSWORD",
    "MONITOR_ALERT_WEBHOOK",
];

/// Removes [`SCRUBBED_ENVIRONMENT`] from what `command` passes to its child.
pub(super) fn scrub_environment(command: &mut Command) {
    for variable in SCRUBBED_ENVIRONMENT {
        command.env_remove(variable);
    }
}
