//! systemd's notify protocol: READY=1 once the loops run, WATCHDOG=1 after each completed
//! iteration of the poll loop (so a wedged loop gets the daemon restarted, while a database
//! that is down does not), and a one-line STATUS=. Without `NOTIFY_SOCKET` every call is a
//! no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::db::{Availability, Database};
use crate::ha::HaStatus;

/// What the poll loop reports after each iteration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollStatus {
    pub iterations: u64,
    pub processes: usize,
    pub alarms: usize,
    pub open_breakers: u32,
}

impl PollStatus {
    /// The STATUS= line: what `systemctl status` shows.
    pub fn line(&self, database: Availability) -> String {
        let database = match database {
            Availability::Up => "up",
            Availability::Down => "DOWN",
            Availability::Unknown => "connecting",
        };
        format!(
            "{} processes, {} in alarm, {} breakers open, database {database}",
            self.processes, self.alarms, self.open_breakers
        )
    }
}

/// The STATUS= line with the HA role in front, when the host is in a group.
pub fn with_role(line: String, ha: Option<&HaStatus>) -> String {
    match ha {
        Some(ha) => format!("{} of {} (epoch {}), {line}", ha.role, ha.group, ha.epoch),
        None => line,
    }
}

/// The watchdog interval systemd asked for, if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {error}");
    }
}

pub fn ready() {
    send(&[NotifyState::Ready]);
}

pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Pings the watchdog and updates the status after every completed poll iteration.
pub async fn run(
    mut status: watch::Receiver<PollStatus>,
    mut ha: watch::Receiver<Option<HaStatus>>,
    db: Database,
    shutdown: CancellationToken,
) {
    let watchdog = watchdog_interval().is_some();
    let mut last_line = String::new();
    loop {
        let progressed = tokio::select! {
            changed = status.changed() => if changed.is_err() { return } else { true },
            // A change of role shows at once; it is not progress of the poll loop.
            Ok(()) = ha.changed() => false,
            () = shutdown.cancelled() => return,
        };
        let now = *status.borrow_and_update();
        let line = with_role(now.line(db.availability()), ha.borrow_and_update().as_ref());
        let mut states = Vec::with_capacity(2);
        if watchdog && progressed {
            states.push(NotifyState::Watchdog);
        }
        if line != last_line {
            states.push(NotifyState::Status(&line));
        }
        if !states.is_empty() {
            send(&states);
        }
        last_line = line;
    }
}
