//! The history the status page draws: one process's samples, restarts and outages over the
//! last hours (`GET /process/{name}`), and for the main table each process's outages over the
//! last day and its last restart's outcome. Times are the database's (UTC), with its `NOW(3)`
//! as the end, so that the axis and the rows agree whatever this machine's clock says.

use std::collections::HashMap;

use chrono::NaiveDateTime;

use super::ReportError;
use crate::db::Database;

/// The most sample rows one chart reads: a day of samples and heartbeats every second.
const MOST_SAMPLES: u32 = 200_000;

/// One row of `PROCESS_SAMPLES`: a sample has CPU and memory, a heartbeat a response time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplePoint {
    pub at: NaiveDateTime,
    pub cpu_pct: Option<f64>,
    pub mem_pct: Option<f64>,
    pub response_ms: Option<f64>,
}

/// An outage of `PROCESS_OUTAGES`; `up_at` is `None` while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub down_at: NaiveDateTime,
    pub up_at: Option<NaiveDateTime>,
}

/// A restart of `RESTART_EVENTS`: when it ended (or began, while it runs), and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartMark {
    pub at: NaiveDateTime,
    /// `None` while it runs.
    pub success: Option<bool>,
    pub error: Option<String>,
}

/// What one process's page draws.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub since: NaiveDateTime,
    pub now: NaiveDateTime,
    pub samples: Vec<SamplePoint>,
    pub restarts: Vec<RestartMark>,
    pub outages: Vec<Outage>,
}

/// What the main table adds to the host's view, by process id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableHistory {
    /// The database's time now; `None` only for a view built without the database.
    pub now: Option<NaiveDateTime>,
    /// Outages over the last 24 hours.
    pub outages: HashMap<i32, Vec<Outage>>,
    pub last_restart: HashMap<i32, RestartMark>,
}

type SampleRow = (NaiveDateTime, Option<f64>, Option<f64>, Option<f64>);
type RestartRow = (
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<bool>,
    Option<String>,
);

/// The last `hours` of process `process_id` on `host`.
pub async fn process_history(
    db: &Database,
    host: &str,
    process_id: i32,
    hours: u32,
) -> Result<History, ReportError> {
    let now: NaiveDateTime = db
        .run(sqlx::query_scalar("SELECT NOW(3)").fetch_one(db.pool()))
        .await?;
    let since = now - chrono::Duration::hours(i64::from(hours));
    let samples = sqlx::query_as::<_, SampleRow>(
        "SELECT sampled_at, cpu_pct, mem_pct, response_ms FROM PROCESS_SAMPLES \
         WHERE host = ? AND process_id = ? AND sampled_at >= ? ORDER BY sampled_at LIMIT ?",
    )
    .bind(host)
    .bind(process_id)
    .bind(since)
    .bind(MOST_SAMPLES);
    let samples = db.run(samples.fetch_all(db.pool())).await?;
    let restarts = sqlx::query_as::<_, RestartRow>(
        "SELECT started_at, finished_at, success, error FROM RESTART_EVENTS \
         WHERE host = ? AND process_id = ? AND started_at >= ? ORDER BY started_at, id",
    )
    .bind(host)
    .bind(process_id)
    .bind(since);
    let restarts = db.run(restarts.fetch_all(db.pool())).await?;
    let outages = sqlx::query_as::<_, (NaiveDateTime, Option<NaiveDateTime>)>(
        "SELECT down_at, up_at FROM PROCESS_OUTAGES WHERE host = ? AND process_id = ? \
         AND (up_at IS NULL OR up_at >= ?) ORDER BY down_at",
    )
    .bind(host)
    .bind(process_id)
    .bind(since);
    let outages = db.run(outages.fetch_all(db.pool())).await?;
    Ok(History {
        since,
        now,
        samples: samples
            .into_iter()
            .map(|(at, cpu_pct, mem_pct, response_ms)| SamplePoint {
                at,
                cpu_pct,
                mem_pct,
                response_ms,
            })
            .collect(),
        restarts: restarts.into_iter().map(restart_mark).collect(),
        outages: outages
            .into_iter()
            .map(|(down_at, up_at)| Outage { down_at, up_at })
            .collect(),
    })
}

/// The outages of the last day and the last restart of each process of `host`.
pub async fn table_history(db: &Database, host: &str) -> Result<TableHistory, ReportError> {
    let now: NaiveDateTime = db
        .run(sqlx::query_scalar("SELECT NOW(3)").fetch_one(db.pool()))
        .await?;
    let since = now - chrono::Duration::hours(24);
    let outages = sqlx::query_as::<_, (i32, NaiveDateTime, Option<NaiveDateTime>)>(
        "SELECT process_id, down_at, up_at FROM PROCESS_OUTAGES WHERE host = ? \
         AND (up_at IS NULL OR up_at >= ?) ORDER BY down_at",
    )
    .bind(host)
    .bind(since);
    let outages = db.run(outages.fetch_all(db.pool())).await?;
    let last = sqlx::query_as::<
        _,
        (
            i32,
            NaiveDateTime,
            Option<NaiveDateTime>,
            Option<bool>,
            Option<String>,
        ),
    >(
        "SELECT e.process_id, e.started_at, e.finished_at, e.success, e.error \
         FROM RESTART_EVENTS e JOIN (SELECT MAX(id) AS id FROM RESTART_EVENTS WHERE host = ? \
         GROUP BY process_id) l ON l.id = e.id",
    )
    .bind(host);
    let last = db.run(last.fetch_all(db.pool())).await?;
    let mut history = TableHistory {
        now: Some(now),
        ..TableHistory::default()
    };
    for (process_id, down_at, up_at) in outages {
        let outage = Outage { down_at, up_at };
        history.outages.entry(process_id).or_default().push(outage);
    }
    for (process_id, started_at, finished_at, success, error) in last {
        let mark = restart_mark((started_at, finished_at, success, error));
        history.last_restart.insert(process_id, mark);
    }
    Ok(history)
}

/// A running event (not finished) has no outcome yet, whatever its `success` says.
fn restart_mark((started_at, finished_at, success, error): RestartRow) -> RestartMark {
    RestartMark {
        at: finished_at.unwrap_or(started_at),
        success: finished_at.and(success),
        error,
    }
}
