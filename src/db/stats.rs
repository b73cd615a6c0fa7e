//! The sampler's statements: the roster of processes, samples and current statistics written
//! in batches (one statement for all processes, not one per process), outages, auto alarms,
//! the health score, the monitor's start, and pruning.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{MySql, QueryBuilder, Row};

use super::{Database, DbError, duration_of_micros, micros};
use crate::health::HealthScore;

/// Rows per statement: well under the protocol's 65,535 placeholders.
const BATCH: usize = 400;

/// A process of `PROCESE`, with whether it is in alarm now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    pub process_id: i32,
    pub process_name: String,
    pub alarm_raised: bool,
}

/// The rows of `PROCESE` named in `names` (all for `None`), with their alarms.
pub async fn roster(db: &Database, names: Option<&[&str]>) -> Result<Vec<RosterRow>, DbError> {
    let mut query = QueryBuilder::<MySql>::new(
        "SELECT p.process_id, p.process_name, CAST(COALESCE(s.alarma, 0) <> 0 AS SIGNED) \
         FROM (SELECT process_id, process_name FROM PROCESE",
    );
    super::alarms::push_names_filter(&mut query, names);
    query.push(
        ") p LEFT JOIN STATUS_PROCESS s ON s.process_id = p.process_id ORDER BY p.process_id",
    );
    let rows = db.run(query.build().fetch_all(db.pool())).await?;
    rows.iter()
        .map(|row| {
            Ok(RosterRow {
                process_id: row.try_get(0)?,
                process_name: row.try_get(1)?,
                alarm_raised: row.try_get::<i64, _>(2)? != 0,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// Records this monitor's start on `host`; returns the start time by the database clock.
pub async fn record_start(db: &Database, host: &str, pid: u32) -> Result<DateTime<Utc>, DbError> {
    db.run(
        sqlx::query(
            "INSERT INTO MONITOR_INSTANCE (host, pid, version, started_at, updated_at) \
             VALUES (?, ?, ?, NOW(3), NOW(3)) ON DUPLICATE KEY UPDATE pid = VALUES(pid), \
             version = VALUES(version), started_at = NOW(3), updated_at = NOW(3)",
        )
        .bind(host)
        .bind(pid)
        .bind(env!("CARGO_PKG_VERSION"))
        .execute(db.pool()),
    )
    .await?;
    let row = db
        .run(
            sqlx::query("SELECT started_at FROM MONITOR_INSTANCE WHERE host = ?")
                .bind(host)
                .fetch_one(db.pool()),
        )
        .await?;
    row.try_get(0).map_err(DbError::from)
}

/// One row of `PROCESS_SAMPLES`.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    /// The process table's view of a process.
    Usage {
        process_id: i32,
        alive: bool,
        pid: Option<i32>,
        cpu_pct: Option<f64>,
        mem_pct: Option<f64>,
        rss_bytes: Option<u64>,
    },
    /// One health check.
    Heartbeat {
        process_id: i32,
        response_ms: f64,
        ok: bool,
    },
}

pub async fn insert_samples(db: &Database, host: &str, samples: &[Sample]) -> Result<(), DbError> {
    for chunk in samples.chunks(BATCH) {
        let mut query = QueryBuilder::<MySql>::new(
            "INSERT INTO PROCESS_SAMPLES (process_id, host, kind, sampled_at, alive, pid, \
             cpu_pct, mem_pct, rss_bytes, response_ms, check_ok) ",
        );
        query.push_values(chunk, |mut row, sample| match sample {
            Sample::Usage {
                process_id,
                alive,
                pid,
                cpu_pct,
                mem_pct,
                rss_bytes,
            } => {
                row.push_bind(*process_id)
                    .push_bind(host)
                    .push("'sample'")
                    .push("NOW(3)")
                    .push_bind(*alive)
                    .push_bind(*pid)
                    .push_bind(*cpu_pct)
                    .push_bind(*mem_pct)
                    .push_bind(*rss_bytes)
                    .push("NULL")
                    .push("NULL");
            }
            Sample::Heartbeat {
                process_id,
                response_ms,
                ok,
            } => {
                row.push_bind(*process_id)
                    .push_bind(host)
                    .push("'heartbeat'")
                    .push("NOW(3)")
                    .push("NULL")
                    .push("NULL")
                    .push("NULL")
                    .push("NULL")
                    .push("NULL")
                    .push_bind(*response_ms)
                    .push_bind(*ok);
            }
        });
        db.run(query.build().execute(db.pool())).await?;
    }
    Ok(())
}

/// The current statistics of one process, as `PROCESS_STATS` holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentStats {
    pub process_id: i32,
    pub process_name: String,
    pub required: bool,
    pub alive: bool,
    pub pid: Option<i32>,
    pub rss_bytes: Option<u64>,
    pub avg_response_ms: Option<f64>,
    pub max_response_ms: Option<f64>,
    pub last_response_ms: Option<f64>,
    pub last_check_ok: Option<bool>,
    pub avg_mem_pct: Option<f64>,
    pub max_mem_pct: Option<f64>,
    pub last_mem_pct: Option<f64>,
    pub avg_cpu_pct: Option<f64>,
    pub last_cpu_pct: Option<f64>,
}

/// Upserts the current statistics of every process in one statement per batch. The restart
/// count and the last restart come from `RESTART_EVENTS`; a process never restarted shows the
/// monitor's start as its last restart.
pub async fn upsert_stats(
    db: &Database,
    host: &str,
    monitor_start: DateTime<Utc>,
    rows: &[CurrentStats],
) -> Result<(), DbError> {
    for chunk in rows.chunks(BATCH) {
        let mut query = QueryBuilder::<MySql>::new(
            "INSERT INTO PROCESS_STATS (process_id, host, process_name, required, alive, pid, \
             rss_bytes, total_restarts, last_restart, avg_response_ms, max_response_ms, \
             last_response_ms, last_check_ok, avg_mem_pct, max_mem_pct, last_mem_pct, \
             avg_cpu_pct, last_cpu_pct, first_seen, updated_at) ",
        );
        query.push_values(chunk, |mut row, stats| {
            row.push_bind(stats.process_id)
                .push_bind(host)
                .push_bind(&stats.process_name)
                .push_bind(stats.required)
                .push_bind(stats.alive)
                .push_bind(stats.pid)
                .push_bind(stats.rss_bytes);
            row.push("(SELECT COUNT(*) FROM RESTART_EVENTS e WHERE e.process_id = ")
                .push_bind_unseparated(stats.process_id)
                .push_unseparated(" AND e.host = ")
                .push_bind_unseparated(host)
                .push_unseparated(" AND e.success = 1)");
            row.push(
                "COALESCE((SELECT MAX(e.finished_at) FROM RESTART_EVENTS e WHERE e.process_id = ",
            )
            .push_bind_unseparated(stats.process_id)
            .push_unseparated(" AND e.host = ")
            .push_bind_unseparated(host)
            .push_unseparated(" AND e.success = 1), ")
            .push_bind_unseparated(monitor_start)
            .push_unseparated(")");
            row.push_bind(stats.avg_response_ms)
                .push_bind(stats.max_response_ms)
                .push_bind(stats.last_response_ms)
                .push_bind(stats.last_check_ok)
                .push_bind(stats.avg_mem_pct)
                .push_bind(stats.max_mem_pct)
                .push_bind(stats.last_mem_pct)
                .push_bind(stats.avg_cpu_pct)
                .push_bind(stats.last_cpu_pct)
                .push("NOW(3)")
                .push("NOW(3)");
        });
        query.push(
            " ON DUPLICATE KEY UPDATE process_name = VALUES(process_name), \
             required = VALUES(required), alive = VALUES(alive), pid = VALUES(pid), \
             rss_bytes = VALUES(rss_bytes), total_restarts = VALUES(total_restarts), \
             last_restart = VALUES(last_restart), avg_response_ms = VALUES(avg_response_ms), \
             max_response_ms = VALUES(max_response_ms), \
             last_response_ms = VALUES(last_response_ms), \
             last_check_ok = VALUES(last_check_ok), avg_mem_pct = VALUES(avg_mem_pct), \
             max_mem_pct = VALUES(max_mem_pct), last_mem_pct = VALUES(last_mem_pct), \
             avg_cpu_pct = VALUES(avg_cpu_pct), last_cpu_pct = VALUES(last_cpu_pct), \
             updated_at = NOW(3)",
        );
        db.run(query.build().execute(db.pool())).await?;
    }
    Ok(())
}

/// Opens an outage for each of `process_ids` on `host` that has none open, in one statement.
pub async fn outages_began(db: &Database, host: &str, process_ids: &[i32]) -> Result<(), DbError> {
    if process_ids.is_empty() {
        return Ok(());
    }
    db.run_retrying(|| async {
        let mut query = QueryBuilder::<MySql>::new(
            "INSERT INTO PROCESS_OUTAGES (process_id, host, down_at) SELECT t.id, ",
        );
        query.push_bind(host).push(", NOW(3) FROM (");
        let mut ids = query.separated(" UNION ALL ");
        for id in process_ids {
            ids.push("SELECT ")
                .push_bind_unseparated(*id)
                .push_unseparated(" AS id");
        }
        query
            .push(") t WHERE NOT EXISTS (SELECT 1 FROM PROCESS_OUTAGES o WHERE o.host = ")
            .push_bind(host)
            .push(" AND o.process_id = t.id AND o.up_at IS NULL)");
        query.build().execute(db.pool()).await
    })
    .await?;
    Ok(())
}

/// Closes the open outages of `process_ids` on `host`, seen alive again, in one statement.
pub async fn outages_ended(db: &Database, host: &str, process_ids: &[i32]) -> Result<(), DbError> {
    if process_ids.is_empty() {
        return Ok(());
    }
    db.run_retrying(|| async {
        let mut query =
            QueryBuilder::<MySql>::new("UPDATE PROCESS_OUTAGES SET up_at = NOW(3) WHERE host = ");
        query
            .push_bind(host)
            .push(" AND up_at IS NULL AND process_id IN (");
        let mut ids = query.separated(", ");
        for id in process_ids {
            ids.push_bind(*id);
        }
        query.push(")");
        query.build().execute(db.pool()).await
    })
    .await?;
    Ok(())
}

/// Raises the alarm of a process found dead, unless it is already raised. Returns whether
/// this call raised it.
pub async fn raise_alarm(db: &Database, process_id: i32, note: &str) -> Result<bool, DbError> {
    let repertoire = db.text_columns().await.notes;
    let note = crate::note::fit(note);
    let result = super::columns::write_text(db, &note, repertoire, |note| async move {
        db.run_retrying(||
            sqlx::query(
                "UPDATE STATUS_PROCESS SET alarma = 1, notes = ? WHERE process_id = ? AND alarma = 0",
            )
            .bind(&note)
            .bind(process_id)
            .execute(db.pool()),
        )
        .await
    })
    .await?;
    Ok(result.rows_affected() > 0)
}

/// The restarts on `host` that began within `window`: each one's process and how long ago it
/// began, by the database clock.
pub async fn restarts_begun_within(
    db: &Database,
    host: &str,
    window: Duration,
) -> Result<Vec<(i32, Duration)>, DbError> {
    let rows = db
        .run(
            sqlx::query(
                "SELECT process_id, TIMESTAMPDIFF(MICROSECOND, started_at, NOW(3)) \
                 FROM RESTART_EVENTS WHERE host = ? \
                 AND started_at >= NOW(3) - INTERVAL ? MICROSECOND",
            )
            .bind(host)
            .bind(micros(window))
            .fetch_all(db.pool()),
        )
        .await?;
    rows.iter()
        .map(|row| {
            let age: i64 = row.try_get(1)?;
            Ok((row.try_get(0)?, duration_of_micros(age)))
        })
        .collect()
}

pub async fn insert_health(db: &Database, host: &str, score: &HealthScore) -> Result<(), DbError> {
    db.run(
        sqlx::query(
            "INSERT INTO HEALTH_SCORE (host, computed_at, total, restart_status, \
             response_status, memory_status, availability_status, restarts_in_window) \
             VALUES (?, NOW(3), ?, ?, ?, ?, ?, ?)",
        )
        .bind(host)
        .bind(score.total)
        .bind(score.restart)
        .bind(score.response)
        .bind(score.memory)
        .bind(score.availability)
        .bind(score.restarts_in_window)
        .execute(db.pool()),
    )
    .await?;
    Ok(())
}

/// Deletes samples and scores older than `retention`, a batch at a time so that no statement
/// holds locks for long. Returns how many rows went.
pub async fn prune(db: &Database, retention: Duration) -> Result<u64, DbError> {
    let mut removed = 0;
    for table in ["PROCESS_SAMPLES", "HEALTH_SCORE"] {
        let column = if table == "HEALTH_SCORE" {
            "computed_at"
        } else {
            "sampled_at"
        };
        let statement = format!(
            "DELETE FROM {table} WHERE {column} < NOW(3) - INTERVAL ? MICROSECOND LIMIT 5000"
        );
        loop {
            let result = db
                .run_retrying(|| {
                    sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                        .bind(micros(retention))
                        .execute(db.pool())
                })
                .await?;
            removed += result.rows_affected();
            if result.rows_affected() < 5000 {
                break;
            }
        }
    }
    Ok(removed)
}

/// Aggregates of the samples still within the retention window, per process, metric and
/// bucket age (whole `span`s before now): what the sampler's windows start from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAggregate {
    pub process_id: i32,
    pub age: u64,
    pub metric: Metric,
    pub sum: f64,
    pub count: u64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Cpu,
    Memory,
    Response,
}

pub async fn stored_aggregates(
    db: &Database,
    host: &str,
    retention: Duration,
    span: Duration,
) -> Result<Vec<StoredAggregate>, DbError> {
    let rows = db
        .run(
            sqlx::query(
                "SELECT process_id, \
                 CAST(FLOOR(TIMESTAMPDIFF(MICROSECOND, sampled_at, NOW(3)) / ?) AS SIGNED) AS age, \
                 SUM(cpu_pct), COUNT(cpu_pct), MAX(cpu_pct), \
                 SUM(mem_pct), COUNT(mem_pct), MAX(mem_pct), \
                 SUM(response_ms), COUNT(response_ms), MAX(response_ms) \
                 FROM PROCESS_SAMPLES WHERE host = ? AND sampled_at >= NOW(3) - INTERVAL ? MICROSECOND \
                 GROUP BY process_id, age",
            )
            .bind(micros(span).max(1))
            .bind(host)
            .bind(micros(retention))
            .fetch_all(db.pool()),
        )
        .await?;
    let mut aggregates = Vec::new();
    for row in &rows {
        let process_id: i32 = row.try_get(0).map_err(DbError::from)?;
        let age: i64 = row.try_get(1).map_err(DbError::from)?;
        for (metric, at) in [(Metric::Cpu, 2), (Metric::Memory, 5), (Metric::Response, 8)] {
            let sum: Option<f64> = row.try_get(at).map_err(DbError::from)?;
            let count: i64 = row.try_get(at + 1).map_err(DbError::from)?;
            let max: Option<f64> = row.try_get(at + 2).map_err(DbError::from)?;
            if let (Some(sum), Some(max), true) = (sum, max, count > 0) {
                aggregates.push(StoredAggregate {
                    process_id,
                    age: u64::try_from(age).unwrap_or(0),
                    metric,
                    sum,
                    count: u64::try_from(count).unwrap_or(0),
                    max,
                });
            }
        }
    }
    Ok(aggregates)
}
