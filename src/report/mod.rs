//! The SQL that reads for operators, and the shapes it returns; formatting is elsewhere (the
//! command line's renderers for the terminal, the status page's for the page and metrics).
//!
//! - [`view`]: the shapes of that read.
//! - [`host`]: the one read of a host's processes ([`HostView`], [`ProcessView`]) that every
//!   surface shows, and the rule for where alive, PID and restarts come from.
//! - [`read`]: the detail figures of `stats` over the availability views of migration 0004,
//!   `RESTART_EVENTS`, `HEALTH_SCORE` and `MONITOR_INSTANCE`.
//! - [`lists`]: `PROCESE` names, the one name resolver, the alarm and breaker lists.
//! - [`document`]: the statistics document (`stats --json`, `GET /process_stats`), a pure
//!   conversion of the view.
//! - [`history`]: what the status page draws: samples, restarts and outages over time.
//! - [`health`]: the latest health score of a host with its verdict against the threshold.
//!
//! Each statement goes through [`Database::run`](crate::db::Database::run), for its deadline.

pub mod document;
pub mod health;
pub mod history;
pub mod host;
pub mod lists;
pub mod read;
pub mod view;

use chrono::NaiveDateTime;

use crate::db::DbError;

pub use document::{ProcStats, StatisticsDocument, statistics_document};
pub use health::{HealthReport, latest_health};
pub use history::{History, TableHistory, process_history, table_history};
pub use host::{read_host, read_process};
pub use read::{Failures, ProcessReport, Recovery, RestartEvent, RestartOutcome, Uptime};
pub use view::{BreakerView, HostView, ProcessView, Usage};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A name that `PROCESE` does not hold: the operator's mistake.
    #[error("unknown process \"{0}\": not in PROCESE")]
    UnknownProcess(String),
    #[error(transparent)]
    Database(#[from] DbError),
}

/// A process of `PROCESE`: its id and its name, as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRef {
    pub process_id: i32,
    pub name: String,
}

/// How the reports write times: the database's UTC time, to the second.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

pub fn timestamp(time: NaiveDateTime) -> String {
    time.format(TIME_FORMAT).to_string()
}
