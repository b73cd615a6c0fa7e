//! The statements of the reports, and the figures they return. Each statement goes through
//! [`Database::run`] for its deadline.
//!
//! The availability views (migration 0004) are grouped by host and process; each is queried on
//! its own with the host (and the process) in its WHERE clause, which MariaDB pushes inside the
//! view and serves from an index. Joining the views to `PROCESS_STATS` instead would compute
//! every view in full first (19 s instead of 0.1 s for 9,000 processes), so the rows are
//! matched up here, by process id.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use sqlx::{AssertSqlSafe, FromRow};

use super::{ProcessRef, ReportError};
use crate::db::Database;

/// The sampler's current row of one process on one host (`PROCESS_STATS`).
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct CurrentStats {
    pub alive: bool,
    pub pid: Option<i32>,
    /// NULL until the process is restarted successfully for the first time.
    pub last_restart: Option<NaiveDateTime>,
    pub total_restarts: i32,
    pub avg_response_ms: Option<f64>,
    pub max_response_ms: Option<f64>,
    pub last_response_ms: Option<f64>,
    pub avg_mem_pct: Option<f64>,
    pub max_mem_pct: Option<f64>,
    pub last_mem_pct: Option<f64>,
    pub avg_cpu_pct: Option<f64>,
    pub last_cpu_pct: Option<f64>,
    /// When monitoring of the process began on this host.
    pub first_seen: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

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
    pub process: ProcessRef,
    /// None when the sampler of this host has no row for the process (not sampled here yet).
    pub current: Option<CurrentStats>,
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

#[derive(FromRow)]
struct StatsRow {
    process_id: i32,
    process_name: String,
    #[sqlx(flatten)]
    current: CurrentStats,
}

const STATS_SELECT: &str = "SELECT process_id, process_name, alive, pid, last_restart, \
     total_restarts, avg_response_ms, max_response_ms, last_response_ms, avg_mem_pct, \
     max_mem_pct, last_mem_pct, avg_cpu_pct, last_cpu_pct, first_seen, updated_at \
     FROM PROCESS_STATS WHERE host = ?";

/// The `PROCESS_STATS` rows in scope, by name.
async fn current_stats(
    db: &Database,
    scope: Scope<'_>,
) -> Result<Vec<(ProcessRef, CurrentStats)>, ReportError> {
    let sql = scope.sql(STATS_SELECT, " ORDER BY process_name, process_id");
    let query = sqlx::query_as::<_, StatsRow>(sql).bind(scope.host);
    let rows = db.run(query.fetch_all(db.pool())).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let process = ProcessRef {
                process_id: row.process_id,
                name: row.process_name,
            };
            (process, row.current)
        })
        .collect())
}

/// The current statistics of every process this host samples, by name.
pub async fn host_stats(
    db: &Database,
    host: &str,
) -> Result<Vec<(ProcessRef, CurrentStats)>, ReportError> {
    current_stats(
        db,
        Scope {
            host,
            process_id: None,
        },
    )
    .await
}

/// The current statistics of one process on this host, if it is sampled here.
pub async fn process_stats(
    db: &Database,
    host: &str,
    process_id: i32,
) -> Result<Option<CurrentStats>, ReportError> {
    let scope = Scope {
        host,
        process_id: Some(process_id),
    };
    let mut rows = current_stats(db, scope).await?;
    Ok(rows.pop().map(|(_, current)| current))
}

/// The full report of every process this host samples, by name.
pub async fn host_reports(db: &Database, host: &str) -> Result<Vec<ProcessReport>, ReportError> {
    let scope = Scope {
        host,
        process_id: None,
    };
    let processes = current_stats(db, scope).await?;
    let processes = processes
        .into_iter()
        .map(|(process, current)| (process, Some(current)))
        .collect();
    reports(db, scope, processes).await
}

/// The full report of one process on this host, sampled here or not.
pub async fn process_report(
    db: &Database,
    host: &str,
    process: ProcessRef,
) -> Result<ProcessReport, ReportError> {
    let scope = Scope {
        host,
        process_id: Some(process.process_id),
    };
    let current = process_stats(db, host, process.process_id).await?;
    let mut reports = reports(db, scope, vec![(process.clone(), current)]).await?;
    Ok(reports.pop().unwrap_or(ProcessReport {
        process,
        current: None,
        max_cpu_pct: None,
        uptime: Uptime::default(),
        recovery: Recovery::default(),
        failures: None,
    }))
}

/// Adds the figures of the views and of the samples to the processes' current statistics.
async fn reports(
    db: &Database,
    scope: Scope<'_>,
    processes: Vec<(ProcessRef, Option<CurrentStats>)>,
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
        .map(|(process, current)| {
            let id = process.process_id;
            let (recoveries, mttr_s, recoveries_24h, mttr_24h_s) =
                mttr.remove(&id).unwrap_or_default();
            let (events, successes, success_pct) = success.remove(&id).unwrap_or_default();
            ProcessReport {
                current,
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
                process,
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

/// The `PROCESE` process called exactly `name`. Should several rows share the name, the one
/// this host samples wins, then the lowest id.
pub async fn resolve_process(
    db: &Database,
    host: &str,
    name: &str,
) -> Result<ProcessRef, ReportError> {
    // The column's collation ignores case; names of executables do not, hence the check below.
    let query = sqlx::query_as::<_, (i32, String)>(
        "SELECT p.process_id, p.process_name FROM PROCESE p \
         LEFT JOIN PROCESS_STATS s ON s.host = ? AND s.process_id = p.process_id \
         WHERE p.process_name = ? ORDER BY s.process_id IS NULL, p.process_id",
    )
    .bind(host)
    .bind(name);
    let rows = db.run(query.fetch_all(db.pool())).await?;
    rows.into_iter()
        .find(|(_, found)| found == name)
        .map(|(process_id, name)| ProcessRef { process_id, name })
        .ok_or_else(|| ReportError::UnknownProcess(name.to_owned()))
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

/// The latest row of `HEALTH_SCORE` for a host.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct HealthRow {
    pub computed_at: NaiveDateTime,
    pub total: f64,
    pub restart_status: Option<f64>,
    pub response_status: Option<f64>,
    pub memory_status: Option<f64>,
    pub availability_status: Option<f64>,
    pub restarts_in_window: i32,
}

/// The latest health score of `host`; None before the first one.
pub async fn latest_health_row(
    db: &Database,
    host: &str,
) -> Result<Option<HealthRow>, ReportError> {
    let query = sqlx::query_as::<_, HealthRow>(
        "SELECT computed_at, total, restart_status, response_status, memory_status, \
         availability_status, restarts_in_window FROM HEALTH_SCORE WHERE host = ? \
         ORDER BY computed_at DESC, id DESC LIMIT 1",
    )
    .bind(host);
    Ok(db.run(query.fetch_optional(db.pool())).await?)
}
