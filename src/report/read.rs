//! The statements of the detail reports (`stats`, `stats NAME`): the availability views, the
//! restart events, the health score and the monitor's start, added to the processes of
//! `read_host`. Each statement goes through [`Database::run`] for
//! its deadline.
//!
//! The availability views (migration 0004) are grouped by host and process; each is queried on
//! its own with the host (and the process) in its WHERE clause, which MariaDB pushes inside the
//! view and serves from an index. Joining the views to `PROCESS_STATS` instead would compute
//! every view in full first (19 s instead of 0.1 s for 9,000 processes), so the rows are
//! matched up here, by process id.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use sqlx::AssertSqlSafe;

use super::ReportError;
use super::view::ProcessView;
use crate::db::Database;

/// Uptime percentages over the last hour, day and week (`PROCESS_UPTIME`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Uptime {
    pub hour: Option<f64>,
    pub day: Option<f64>,
    pub week: Option<f64>,
}

/// How restarts went (`PROCESS_MTTR`, `RESTART_SUCCESS_RATE`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Recovery {
    /// Successful restarts, and their mean time from detection to the end, in seconds.
    pub recoveries: i64,
    pub mttr_s: Option<f64>,
    pub recoveries_24h: i64,
    pub mttr_24h_s: Option<f64>,
    /// Finished restart events, how many succeeded, and the percentage.
    pub events: i64,
    pub successes: i64,
    pub success_pct: Option<f64>,
}

/// Outages since monitoring began (`PROCESS_MTBF`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Failures {
    pub outages: i64,
    pub downtime_s: f64,
    /// Mean up time between two outages, in seconds; None before the first outage.
    pub mtbf_s: Option<f64>,
}

/// Everything the text reports show about one process on one host.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessReport {
    pub view: ProcessView,
    /// The highest CPU among the samples kept (`stats_retention`).
    pub max_cpu_pct: Option<f64>,
    pub uptime: Uptime,
    pub recovery: Recovery,
    /// None when the process is not monitored on this host.
    pub failures: Option<Failures>,
}

/// How a restart event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartOutcome {
    Succeeded,
    Failed,
    /// Not finished yet.
    Running,
}

/// One row of `RESTART_EVENTS`, as the detail page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartEvent {
    pub started_at: NaiveDateTime,
    pub trigger_source: String,
    pub strategy: Option<String>,
    pub attempts: i32,
    pub outcome: RestartOutcome,
    pub error: Option<String>,
}

/// Which processes a read covers: every process of a host, or one of them.
#[derive(Debug, Clone, Copy)]
struct Scope<'a> {
    host: &'a str,
    process_id: Option<i32>,
}

impl Scope<'_> {
    /// `base`, which ends in `WHERE host = ?`, narrowed to the process if there is one, then
    /// `tail`. The host is bound; the process id is written into the text, because MariaDB
    /// (10.11) pushes a bound `process_id = ?` no deeper than the outside of a grouped view,
    /// which is then computed for the whole host (0.1 s instead of 1 ms with 3,000
    /// processes), while a literal reaches the index. An `i32` printed is only digits and a
    /// sign, so this text stays safe.
    fn sql(&self, base: &str, tail: &str) -> AssertSqlSafe<String> {
        let process = match self.process_id {
            Some(id) => format!(" AND process_id = {id}"),
            None => String::new(),
        };
        AssertSqlSafe(format!("{base}{process}{tail}"))
    }
}

/// The reports of these processes of the host, one of them (`process_id`) or all.
pub async fn reports(
    db: &Database,
    host: &str,
    process_id: Option<i32>,
    processes: Vec<ProcessView>,
) -> Result<Vec<ProcessReport>, ReportError> {
    reports_in(db, Scope { host, process_id }, processes).await
}

/// Adds the figures of the views and of the samples to the processes' current statistics.
async fn reports_in(
    db: &Database,
    scope: Scope<'_>,
    processes: Vec<ProcessView>,
) -> Result<Vec<ProcessReport>, ReportError> {
    // Independent reads: side by side on the pool's connections, the slowest sets the pace.
    let (mut uptime, mut mttr, mut success, mut failures, mut max_cpu) = tokio::try_join!(
        read_uptime(db, scope),
        read_mttr(db, scope),
        read_success_rates(db, scope),
        read_failures(db, scope),
        read_max_cpu(db, scope),
    )?;
    Ok(processes
        .into_iter()
        .map(|view| {
            let id = view.process.process_id;
            let (recoveries, mttr_s, recoveries_24h, mttr_24h_s) =
                mttr.remove(&id).unwrap_or_default();
            let (events, successes, success_pct) = success.remove(&id).unwrap_or_default();
            ProcessReport {
                max_cpu_pct: max_cpu.remove(&id).flatten(),
                uptime: uptime.remove(&id).unwrap_or_default(),
                recovery: Recovery {
                    recoveries,
                    mttr_s,
                    recoveries_24h,
                    mttr_24h_s,
                    events,
                    successes,
                    success_pct,
                },
                failures: failures.remove(&id),
                view,
            }
        })
        .collect())
}

async fn read_uptime(db: &Database, scope: Scope<'_>) -> Result<HashMap<i32, Uptime>, ReportError> {
    let sql = scope.sql(
        "SELECT process_id, uptime_1h_pct, uptime_24h_pct, uptime_7d_pct \
         FROM PROCESS_UPTIME WHERE host = ?",
        "",
    );
    let query =
        sqlx::query_as::<_, (i32, Option<f64>, Option<f64>, Option<f64>)>(sql).bind(scope.host);
    let rows = db.run(query.fetch_all(db.pool())).await?;
    Ok(rows
        .into_iter()
        .map(|(id, hour, day, week)| (id, Uptime { hour, day, week }))
        .collect())
}

type MttrFigures = (i64, Option<f64>, i64, Option<f64>);

async fn read_mttr(
    db: &Database,
    scope: Scope<'_>,
) -> Result<HashMap<i32, MttrFigures>, ReportError> {
    let sql = scope.sql(
        "SELECT process_id, recoveries, mttr_s, recoveries_24h, mttr_24h_s \
         FROM PROCESS_MTTR WHERE host = ?",
        "",
    );
    let query =
        sqlx::query_as::<_, (i32, i64, Option<f64>, i64, Option<f64>)>(sql).bind(scope.host);
    let rows = db.run(query.fetch_all(db.pool())).await?;
    Ok(rows
        .into_iter()
        .map(|(id, recoveries, mttr, recoveries_24h, mttr_24h)| {
            (id, (recoveries, mttr, recoveries_24h, mttr_24h))
        })
        .collect())
}

async fn read_success_rates(
    db: &Database,
    scope: Scope<'_>,
) -> Result<HashMap<i32, (i64, i64, Option<f64>)>, ReportError> {
    let sql = scope.sql(
        "SELECT process_id, events, successes, success_pct \
         FROM RESTART_SUCCESS_RATE WHERE host = ?",
        "",
    );
    let query = sqlx::query_as::<_, (i32, i64, i64, Option<f64>)>(sql).bind(scope.host);
    let rows = db.run(query.fetch_all(db.pool())).await?;
    Ok(rows
        .into_iter()
        .map(|(id, events, successes, pct)| (id, (events, successes, pct)))
        .collect())
}

async fn read_failures(
    db: &Database,
    scope: Scope<'_>,
) -> Result<HashMap<i32, Failures>, ReportError> {
    let sql = scope.sql(
        "SELECT process_id, outages, downtime_s, mtbf_s FROM PROCESS_MTBF WHERE host = ?",
        "",
    );
    let query = sqlx::query_as::<_, (i32, i64, f64, Option<f64>)>(sql).bind(scope.host);
    let rows = db.run(query.fetch_all(db.pool())).await?;
    Ok(rows
        .into_iter()
        .map(|(id, outages, downtime_s, mtbf_s)| {
            let failures = Failures {
                outages,
                downtime_s,
                mtbf_s,
            };
            (id, failures)
        })
        .collect())
}

/// The highest CPU of each process among its samples, read from the covering index
/// `process_samples_cpu` (heartbeat rows have no CPU and do not count).
async fn read_max_cpu(
    db: &Database,
    scope: Scope<'_>,
) -> Result<HashMap<i32, Option<f64>>, ReportError> {
    let sql = scope.sql(
        "SELECT process_id, MAX(cpu_pct) FROM PROCESS_SAMPLES WHERE host = ?",
        " GROUP BY process_id",
    );
    let query = sqlx::query_as::<_, (i32, Option<f64>)>(sql).bind(scope.host);
    let rows = db.run(query.fetch_all(db.pool())).await?;
    Ok(rows.into_iter().collect())
}

/// When the monitor of `host` started (`monitorTimeOfStart`); None if it never ran.
pub async fn monitor_start(
    db: &Database,
    host: &str,
) -> Result<Option<NaiveDateTime>, ReportError> {
    let query = sqlx::query_scalar::<_, NaiveDateTime>(
        "SELECT started_at FROM MONITOR_INSTANCE WHERE host = ?",
    )
    .bind(host);
    Ok(db.run(query.fetch_optional(db.pool())).await?)
}

type EventRow = (
    NaiveDateTime,
    String,
    Option<String>,
    i32,
    Option<bool>,
    Option<NaiveDateTime>,
    Option<String>,
);

/// The latest `limit` restart events of a process on this host, newest first.
pub async fn recent_events(
    db: &Database,
    host: &str,
    process_id: i32,
    limit: u32,
) -> Result<Vec<RestartEvent>, ReportError> {
    let query = sqlx::query_as::<_, EventRow>(
        "SELECT started_at, CAST(trigger_source AS CHAR), strategy, attempts, success, \
         finished_at, error FROM RESTART_EVENTS WHERE host = ? AND process_id = ? \
         ORDER BY started_at DESC, id DESC LIMIT ?",
    )
    .bind(host)
    .bind(process_id)
    .bind(limit);
    let rows = db.run(query.fetch_all(db.pool())).await?;
    Ok(rows
        .into_iter()
        .map(
            |(started_at, trigger_source, strategy, attempts, success, finished_at, error)| {
                let outcome = match (finished_at, success) {
                    (Some(_), Some(true)) => RestartOutcome::Succeeded,
                    (Some(_), Some(false)) => RestartOutcome::Failed,
                    _ => RestartOutcome::Running,
                };
                RestartEvent {
                    started_at,
                    trigger_source,
                    strategy,
                    attempts,
                    outcome,
                    error,
                }
            },
        )
        .collect())
}
