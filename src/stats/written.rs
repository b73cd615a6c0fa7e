//! What the writer keeps between batches, so that an idle host sends little more than its
//! samples: the restarts within the health window, read again only when the poll saw a new
//! one, and what it last wrote of `PROCESS_STATS` and `HEALTH_SCORE`, written again when it
//! changed and at least every [`REFRESH`].
//!
//! A batch without a restart mark (no fresh poll to go by) is treated as after a restart:
//! everything is read and written, as if nothing were kept.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::db::stats::{self as store, CurrentStats};
use crate::db::{Database, DbError};
use crate::deadline;
use crate::health::HealthScore;

/// The longest a process's row in `PROCESS_STATS`, or the host's latest `HEALTH_SCORE`, goes
/// without being written again: the figures there are at most this old.
pub const REFRESH: Duration = Duration::from_secs(60);

/// A change of a health sub-score or total smaller than this is not written before
/// [`REFRESH`]: below the two decimals the score is shown with.
const SCORE_STEP: f64 = 0.005;

/// The restarts of this host that began within the health window.
#[derive(Debug, Default)]
pub struct RestartWindow {
    /// The poll's restart mark and the window they were read with.
    read: Option<(i64, Duration)>,
    /// Each restart's process, and when it leaves the window.
    leaving: Vec<(i32, Instant)>,
}

impl RestartWindow {
    /// How many restarts of the `required` processes began within `window`. Read from
    /// `RESTART_EVENTS` unless they were read at this `mark` (the newest restart the poll
    /// saw) and window already.
    pub async fn count(
        &mut self,
        db: &Database,
        host: &str,
        (required, window): (&[i32], Duration),
        mark: Option<i64>,
    ) -> Result<u32, DbError> {
        let known = mark.is_some_and(|mark| self.read == Some((mark, window)));
        if !known {
            let read_at = Instant::now();
            let began = store::restarts_begun_within(db, host, window).await?;
            self.leaving = began
                .into_iter()
                .map(|(id, age)| (id, deadline::after(read_at, window.saturating_sub(age))))
                .collect();
            self.read = mark.map(|mark| (mark, window));
        }
        let now = Instant::now();
        self.leaving.retain(|(_, leaves)| *leaves > now);
        let counted = self.leaving.iter().filter(|(id, _)| required.contains(id));
        Ok(u32::try_from(counted.count()).unwrap_or(u32::MAX))
    }
}

/// What was last written of the statistics and the health score.
#[derive(Debug, Default)]
pub struct Written {
    stats: HashMap<i32, CurrentStats>,
    /// When every row was last written, and at which restart mark.
    all_stats: Option<(Instant, i64)>,
    health: Option<(HealthScore, Instant)>,
}

impl Written {
    /// The rows of `current` to write now, and whether that is all of them: all once
    /// [`REFRESH`] has passed, after a restart was recorded (the restart figures come from
    /// `RESTART_EVENTS`), without a mark, or when `all` is asked; otherwise those new or
    /// whose state changed (alive, PID, the last heartbeat, name, required).
    pub fn stats_due(
        &self,
        current: Vec<CurrentStats>,
        mark: Option<i64>,
        all: bool,
    ) -> (Vec<CurrentStats>, bool) {
        let stale = self
            .all_stats
            .is_none_or(|(at, written_mark)| at.elapsed() >= REFRESH || mark != Some(written_mark));
        if all || stale {
            return (current, true);
        }
        let changed = current
            .into_iter()
            .filter(|row| {
                self.stats
                    .get(&row.process_id)
                    .is_none_or(|written| !same_state(written, row))
            })
            .collect();
        (changed, false)
    }

    /// `rows` are written (all of them when `all`), at `mark`.
    pub fn stats_written(&mut self, rows: Vec<CurrentStats>, all: bool, mark: Option<i64>) {
        if all {
            self.stats.clear();
            self.all_stats = mark.map(|mark| (Instant::now(), mark));
        }
        self.stats
            .extend(rows.into_iter().map(|row| (row.process_id, row)));
    }

    /// Whether `score` is to be written: when it moved, when the last one is [`REFRESH`] old,
    /// or when `always` (a standby judges the primary by the age of its latest score).
    pub fn health_due(&self, score: &HealthScore, always: bool) -> bool {
        always
            || self
                .health
                .as_ref()
                .is_none_or(|(written, at)| at.elapsed() >= REFRESH || moved(written, score))
    }

    pub fn health_written(&mut self, score: HealthScore) {
        self.health = Some((score, Instant::now()));
    }
}

/// The same process, alive or dead with the same PID, and the same heartbeat result: only its
/// figures may differ.
fn same_state(a: &CurrentStats, b: &CurrentStats) -> bool {
    a.process_name == b.process_name
        && a.required == b.required
        && a.alive == b.alive
        && a.pid == b.pid
        && a.last_check_ok == b.last_check_ok
}

fn moved(a: &HealthScore, b: &HealthScore) -> bool {
    let step = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() >= SCORE_STEP,
        (x, y) => x.is_some() != y.is_some(),
    };
    a.restarts_in_window != b.restarts_in_window
        || step(Some(a.total), Some(b.total))
        || step(a.restart, b.restart)
        || step(a.response, b.response)
        || step(a.memory, b.memory)
        || step(a.availability, b.availability)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(process_id: i32, pid: Option<i32>, cpu: f64) -> CurrentStats {
        CurrentStats {
            process_id,
            process_name: format!("p{process_id}"),
            required: true,
            alive: pid.is_some(),
            pid,
            rss_bytes: Some(1 << 20),
            avg_response_ms: None,
            max_response_ms: None,
            last_response_ms: None,
            last_check_ok: None,
            avg_mem_pct: Some(0.1),
            max_mem_pct: Some(0.1),
            last_mem_pct: Some(0.1),
            avg_cpu_pct: Some(cpu),
            last_cpu_pct: Some(cpu),
        }
    }

    fn ids(rows: &[CurrentStats]) -> Vec<i32> {
        rows.iter().map(|row| row.process_id).collect()
    }

    #[test]
    fn between_refreshes_only_rows_whose_state_changed_are_written() {
        let mut written = Written::default();
        let first = vec![row(1, Some(10), 0.0), row(2, Some(20), 0.0)];
        let (due, all) = written.stats_due(first, Some(7), false);
        assert!(all);
        written.stats_written(due, all, Some(7));

        // Figures alone wait for the refresh; a death, a new PID or a new process do not.
        let next = vec![
            row(1, Some(10), 3.0),
            row(2, None, 0.0),
            row(3, Some(30), 0.0),
        ];
        let (due, all) = written.stats_due(next, Some(7), false);
        assert!(!all);
        assert_eq!(ids(&due), [2, 3]);
        written.stats_written(due, all, Some(7));
        let (due, _) = written.stats_due(vec![row(2, Some(21), 0.0)], Some(7), false);
        assert_eq!(ids(&due), [2]);
    }

    #[test]
    fn a_new_restart_a_missing_mark_or_a_refresh_write_every_row() {
        let mut written = Written::default();
        let rows = || vec![row(1, Some(10), 0.0), row(2, Some(20), 0.0)];
        let (due, all) = written.stats_due(rows(), Some(7), false);
        written.stats_written(due, all, Some(7));
        assert_eq!(written.stats_due(rows(), Some(7), false).0.len(), 0);
        for (mark, asked) in [(Some(8), false), (None, false), (Some(7), true)] {
            let (due, all) = written.stats_due(rows(), mark, asked);
            assert!(all, "{mark:?} {asked}");
            assert_eq!(ids(&due), [1, 2]);
        }
    }

    #[test]
    fn a_health_score_is_written_when_it_moves_or_always_when_asked() {
        let score = |total: f64, availability: Option<f64>| HealthScore {
            total,
            restart: Some(1.0),
            response: None,
            memory: Some(1.0),
            availability,
            restarts_in_window: 0,
        };
        let mut written = Written::default();
        assert!(written.health_due(&score(1.0, Some(1.0)), false));
        written.health_written(score(1.0, Some(1.0)));
        assert!(!written.health_due(&score(0.999, Some(0.998)), false));
        assert!(written.health_due(&score(0.999, Some(0.998)), true));
        assert!(written.health_due(&score(0.99, Some(1.0)), false));
        assert!(written.health_due(&score(1.0, None), false));
        let restarted = HealthScore {
            restarts_in_window: 1,
            ..score(1.0, Some(1.0))
        };
        assert!(written.health_due(&restarted, false));
    }
}
