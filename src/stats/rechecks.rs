//! The quick re-checks after a watched process exits, as timers: each exit schedules its
//! `dead_after` re-checks, `dead_recheck_interval` apart from the exit, and the sampler's loop
//! runs all those due at once with one scan of the process table. So 100 processes killed
//! together are counted dead together, rather than one after another behind each other's
//! waits, and the loop stays free for everything else meanwhile.

use std::collections::HashMap;

use tokio::time::Instant;

/// The next re-check of one process.
#[derive(Debug, Clone, Copy)]
struct Pending {
    due: Instant,
    /// Which check it is: 1 is the first after the exit itself.
    check: u32,
    exit_seen: Instant,
}

/// A re-check that is due: the process, which check, and when its exit was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub process_id: i32,
    pub check: u32,
    pub exit_seen: Instant,
}

#[derive(Debug, Default)]
pub struct Rechecks {
    pending: HashMap<i32, Pending>,
}

impl Rechecks {
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Schedules check `check` of `process_id` at `exit_seen + check × interval`, replacing
    /// whatever was pending for it.
    pub fn schedule(
        &mut self,
        process_id: i32,
        exit_seen: Instant,
        check: u32,
        interval: std::time::Duration,
    ) {
        let due = crate::deadline::after(exit_seen, interval.saturating_mul(check));
        let pending = Pending {
            due,
            check,
            exit_seen,
        };
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
                exit_seen: p.exit_seen,
            })
            .collect();
        for taken in &due {
            self.pending.remove(&taken.process_id);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rechecks_fall_due_from_the_exit_and_a_new_one_replaces_the_old() {
        let mut rechecks = Rechecks::default();
        let exit = Instant::now();
        let interval = Duration::from_millis(10);
        rechecks.schedule(1, exit, 1, interval);
        rechecks.schedule(2, exit, 2, interval);
        assert!(rechecks.take_due(exit).is_empty());
        let at_10 = rechecks.take_due(exit + Duration::from_millis(10));
        assert_eq!(at_10.len(), 1);
        assert_eq!((at_10[0].process_id, at_10[0].check), (1, 1));
        rechecks.schedule(2, exit, 3, interval);
        assert!(
            rechecks
                .take_due(exit + Duration::from_millis(20))
                .is_empty()
        );
        assert_eq!(rechecks.take_due(exit + Duration::from_millis(30)).len(), 1);
        assert!(rechecks.is_empty());
    }
}
