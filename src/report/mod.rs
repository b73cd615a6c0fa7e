//! The statistics read side: what the sampler, the restarter and the health scorer wrote, read
//! back and presented to operators (`stats`, `health`) and, later, to the HTTP page.
//!
//! - [`read`]: the statements, over `PROCESS_STATS`, the availability views of migration 0004,
//!   `RESTART_EVENTS`, `HEALTH_SCORE` and `MONITOR_INSTANCE`; each one through
//!   [`Database::run`](crate::db::Database::run), for its deadline.
//! - [`document`]: the statistics document of `process-stats-design-review.md` (`stats --json`,
//!   `GET /process_stats`).
//! - [`health`]: the latest health score of a host with its verdict against the threshold.
//! - [`text`]: the aligned tables and detail pages printed for people.
//! - [`command`]: the `stats` and `health` commands, from the configuration to stdout.
//!
//! Reading and presenting are kept apart so that the presentation is a pure function of the
//! figures, tested without a database.

pub mod command;
pub mod document;
pub mod health;
pub mod read;
pub mod text;

use crate::db::DbError;

pub use document::{ProcStats, StatisticsDocument, statistics_document};
pub use health::{HealthReport, latest_health};
pub use read::{
    CurrentStats, Failures, ProcessReport, Recovery, RestartEvent, RestartOutcome, Uptime,
    host_reports, host_stats, monitor_start, process_report, process_stats, recent_events,
    resolve_process,
};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// `stats NAME` for a name that `PROCESE` does not hold: the operator's mistake.
    #[error("unknown process \"{0}\": not in PROCESE")]
    UnknownProcess(String),
    #[error(transparent)]
    Database(#[from] DbError),
}

/// A process of `PROCESE` as the reports name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRef {
    pub process_id: i32,
    pub name: String,
}
