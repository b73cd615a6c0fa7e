//! The quick re-checks after a watched process exits, as timers: each exit schedules its
//! `dead_after` re-checks, `dead_recheck_interval` apart from the exit, and the sampler's loop
//! runs all those due at once with one look at the process table. So 100 processes killed
//! together are counted dead together, rather than one after another behind each other's
//! waits, and the loop stays free for everything else meanwhile.
//!
//! A re-check looks for a process that took the place of the one that exited: one started
//! since the exit, or another instance already known. So each exit keeps a [`Listing`] of
//! the PIDs from before it (one taken when the process was last known alive: at its last
//! sample, or when it was found), and the re-check reads only the processes it lacks, not the
//! whole table: among 1,000 long-lived processes that is one directory read instead of two
//! thousand files.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::process::Listing;

/// An exit as the re-checks see it: when it was seen, and PIDs listed before it.
#[derive(Debug, Clone)]
pub struct ExitSeen {
    pub at: Instant,
    pub before: Arc<Listing>,
}

/// The next re-check of one process.
#[derive(Debug, Clone)]
struct Pending {
    due: Instant,
    /// Which check it is: 1 is the first after the exit itself.
    check: u32,
    exit: ExitSeen,
}

/// A re-check that is due: the process, which check, and its exit.
#[derive(Debug, Clone)]
pub struct Due {
    pub process_id: i32,
    pub check: u32,
    pub exit: ExitSeen,
}

#[derive(Debug, Default)]
pub struct Rechecks {
    pending: HashMap<i32, Pending>,
}

impl Rechecks {
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// An exit seen now, of a process last known alive after the listing `before`; without
    /// one, the re-checks read the whole table.
    pub fn exit_now(before: Option<Arc<Listing>>) -> ExitSeen {
        ExitSeen {
            at: Instant::now(),
            before: before.unwrap_or_default(),
        }
    }

    /// Schedules check `check` of `process_id` at `exit.at + check × interval`, replacing
    /// whatever was pending for it.
    pub fn schedule(&mut self, process_id: i32, exit: ExitSeen, check: u32, interval: Duration) {
        let due = crate::deadline::after(exit.at, interval.saturating_mul(check));
        let pending = Pending { due, check, exit };
        self.pending.insert(process_id, pending);
    }

    /// Waits until the earliest re-check is due; forever when there is none.
    pub async fn next_due(&self) {
        match self.pending.values().map(|p| p.due).min() {
            Some(due) => tokio::time::sleep_until(due).await,
            None => std::future::pending().await,
        }
    }

    /// Takes every re-check due at `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<Due> {
        let due: Vec<Due> = self
            .pending
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(&process_id, p)| Due {
                process_id,
                check: p.check,
                exit: p.exit.clone(),
            })
            .collect();
        for taken in &due {
            self.pending.remove(&taken.process_id);
        }
        due
    }
}

/// The distinct listings of `due`: most exits share the one of the last sample.
pub fn listings(due: &[Due]) -> Vec<Arc<Listing>> {
    let mut listings: Vec<Arc<Listing>> = Vec::new();
    for d in due {
        if !listings.iter().any(|l| Arc::ptr_eq(l, &d.exit.before)) {
            listings.push(d.exit.before.clone());
        }
    }
    listings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rechecks_fall_due_from_the_exit_and_a_new_one_replaces_the_old() {
        let mut rechecks = Rechecks::default();
        let seen = Rechecks::exit_now(None);
        let exit = seen.at;
        let interval = Duration::from_millis(10);
        rechecks.schedule(1, seen.clone(), 1, interval);
        rechecks.schedule(2, seen.clone(), 2, interval);
        assert!(rechecks.take_due(exit).is_empty());
        let at_10 = rechecks.take_due(exit + Duration::from_millis(10));
        assert_eq!(at_10.len(), 1);
        assert_eq!((at_10[0].process_id, at_10[0].check), (1, 1));
        rechecks.schedule(2, seen, 3, interval);
        assert!(
            rechecks
                .take_due(exit + Duration::from_millis(20))
                .is_empty()
        );
        assert_eq!(rechecks.take_due(exit + Duration::from_millis(30)).len(), 1);
        assert!(rechecks.is_empty());
    }
}
