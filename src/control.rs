//! The operator's commands that read and write the control plane directly, whether or not the
//! daemon runs: `status`, `alarm list|set|clear`, `breaker list|reset`, and the names the
//! shell completes. Each returns the text to print.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::config::Config;
use crate::db::{Database, DbError};
use crate::process::ProcessTable;
use crate::report::text::{Align, table};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown process \"{0}\": not in PROCESE")]
    Unknown(String),
    #[error("\"{0}\" is in PROCESE but not configured on this host ({1}): nothing to run")]
    NotHere(String, String),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("{0}")]
    Json(String),
}

/// A process of `PROCESE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub process_id: i32,
    pub name: String,
}

/// Every process of `PROCESE`, by id.
pub async fn processes(db: &Database) -> Result<Vec<Named>, DbError> {
    let rows = db
        .run(
            sqlx::query("SELECT process_id, process_name FROM PROCESE ORDER BY process_id")
                .fetch_all(db.pool()),
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Named {
                process_id: row.try_get(0)?,
                name: row.try_get(1)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// The process called exactly `name`, or the error that names it.
pub async fn resolve(db: &Database, name: &str) -> Result<Named, ControlError> {
    processes(db)
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ControlError::Unknown(name.to_owned()))
}

/// What `alarm set|clear` applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    One(String),
    All,
}

/// Sets (`raise`) or clears the alarm of one process or all; returns what changed. Raising
/// gives a process of `PROCESE` without a `STATUS_PROCESS` row one (`sound` 0, no note), as
/// the menu of `scripts/test_alarm.sh` does: the operator named a process that exists, and a
/// raise that silently did nothing would leave it unwatched.
pub async fn set_alarm(
    db: &Database,
    target: &Target,
    raise: bool,
) -> Result<String, ControlError> {
    match (target, raise) {
        (Target::One(name), true) => {
            let process = resolve(db, name).await?;
            db.run(
                sqlx::query(
                    "INSERT INTO STATUS_PROCESS (process_id, alarma, sound) VALUES (?, 1, 0) \
                     ON DUPLICATE KEY UPDATE alarma = 1",
                )
                .bind(process.process_id)
                .execute(db.pool()),
            )
            .await?;
            Ok(format!("alarm raised on {name}"))
        }
        (Target::One(name), false) => {
            let process = resolve(db, name).await?;
            let result = db
                .run(
                    sqlx::query("UPDATE STATUS_PROCESS SET alarma = 0 WHERE process_id = ?")
                        .bind(process.process_id)
                        .execute(db.pool()),
                )
                .await?;
            if result.rows_affected() == 0 {
                return Ok(format!(
                    "{name} has no STATUS_PROCESS row: no alarm to clear"
                ));
            }
            Ok(format!("alarm cleared on {name}"))
        }
        (Target::All, true) => {
            let changed = db.run(raise_all(db)).await?;
            Ok(format!("alarm raised on {changed} processes"))
        }
        (Target::All, false) => {
            let result = db
                .run(
                    sqlx::query("UPDATE STATUS_PROCESS SET alarma = 0 WHERE alarma <> 0")
                        .execute(db.pool()),
                )
                .await?;
            Ok(format!(
                "alarm cleared on {} processes",
                result.rows_affected()
            ))
        }
    }
}

/// Raises every process of `PROCESE`, with a `STATUS_PROCESS` row or not; returns how many
/// changed. One transaction, so the count is of one moment.
async fn raise_all(db: &Database) -> Result<u64, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let updated = sqlx::query("UPDATE STATUS_PROCESS SET alarma = 1 WHERE alarma <> 1")
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let inserted = sqlx::query(
        "INSERT INTO STATUS_PROCESS (process_id, alarma, sound) \
         SELECT p.process_id, 1, 0 FROM PROCESE p \
         WHERE NOT EXISTS (SELECT 1 FROM STATUS_PROCESS s WHERE s.process_id = p.process_id)",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(updated + inserted)
}

pub async fn alarm_list(db: &Database) -> Result<String, ControlError> {
    let rows = db
        .run(
            sqlx::query(
                "SELECT p.process_id, p.process_name, COALESCE(s.alarma, 0), COALESCE(s.notes, '') \
                 FROM PROCESE p LEFT JOIN STATUS_PROCESS s ON s.process_id = p.process_id \
                 ORDER BY p.process_id",
            )
            .fetch_all(db.pool()),
        )
        .await?;
    let mut lines = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i32 = row.try_get(0).map_err(DbError::from)?;
        let name: String = row.try_get(1).map_err(DbError::from)?;
        let alarma: i8 = row.try_get(2).map_err(DbError::from)?;
        let notes: String = row.try_get(3).map_err(DbError::from)?;
        let alarm = if alarma != 0 { "ALARM" } else { "-" };
        lines.push(vec![id.to_string(), name, alarm.to_owned(), notes]);
    }
    let columns = [
        ("ID", Align::Right),
        ("NAME", Align::Left),
        ("ALARM", Align::Left),
        ("NOTES", Align::Left),
    ];
    Ok(table(&columns, &lines))
}

pub async fn breaker_list(db: &Database, config: &Config) -> Result<String, ControlError> {
    let rows = db
        .run(
            sqlx::query(
                "SELECT p.process_name, b.state, b.consecutive_failures, b.opened_at \
                 FROM CIRCUIT_BREAKER b JOIN PROCESE p ON p.process_id = b.process_id \
                 ORDER BY p.process_id",
            )
            .fetch_all(db.pool()),
        )
        .await?;
    let reset = chrono::Duration::from_std(config.monitor.circuit_reset_time).unwrap_or_default();
    let mut lines = Vec::with_capacity(rows.len());
    for row in &rows {
        let name: String = row.try_get(0).map_err(DbError::from)?;
        let state: String = row.try_get(1).map_err(DbError::from)?;
        let failures: i32 = row.try_get(2).map_err(DbError::from)?;
        let opened: Option<DateTime<Utc>> = row.try_get(3).map_err(DbError::from)?;
        let until = match (state.as_str(), opened) {
            ("open", Some(opened)) => crate::note::timestamp(opened + reset),
            _ => "-".to_owned(),
        };
        let opened = opened.map_or_else(|| "-".to_owned(), crate::note::timestamp);
        lines.push(vec![name, state, failures.to_string(), opened, until]);
    }
    let columns = [
        ("NAME", Align::Left),
        ("STATE", Align::Left),
        ("FAILURES", Align::Right),
        ("OPENED (UTC)", Align::Left),
        ("TRIAL FROM (UTC)", Align::Left),
    ];
    Ok(table(&columns, &lines))
}

pub async fn breaker_reset(db: &Database, name: &str) -> Result<String, ControlError> {
    let process = resolve(db, name).await?;
    db.run(crate::db::breaker::save(
        db.pool(),
        process.process_id,
        Default::default(),
    ))
    .await?;
    Ok(format!(
        "circuit breaker of {name} reset: closed, 0 failures"
    ))
}

/// One row of `status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRow {
    pub name: String,
    pub alive: bool,
    pub pid: Option<i32>,
    pub alarm: bool,
    pub breaker: String,
    pub last_restart: Option<String>,
    pub restarts: i64,
    pub cpu_pct: Option<f64>,
    pub mem_pct: Option<f64>,
    pub response_ms: Option<f64>,
}

/// Every process of this host: alive and PID from the process table now, the rest from the
/// database.
pub async fn status(db: &Database, config: &Config) -> Result<Vec<StatusRow>, ControlError> {
    let rows = db
        .run(
            sqlx::query(
                "SELECT p.process_id, p.process_name, COALESCE(s.alarma, 0), \
                 COALESCE(b.state, 'closed'), \
                 (SELECT MAX(e.finished_at) FROM RESTART_EVENTS e WHERE e.process_id = p.process_id \
                  AND e.host = ? AND e.success = 1), \
                 (SELECT COUNT(*) FROM RESTART_EVENTS e WHERE e.process_id = p.process_id \
                  AND e.host = ? AND e.success = 1), \
                 st.last_cpu_pct, st.last_mem_pct, st.last_response_ms \
                 FROM PROCESE p LEFT JOIN STATUS_PROCESS s ON s.process_id = p.process_id \
                 LEFT JOIN CIRCUIT_BREAKER b ON b.process_id = p.process_id \
                 LEFT JOIN PROCESS_STATS st ON st.process_id = p.process_id AND st.host = ? \
                 ORDER BY p.process_id",
            )
            .bind(&config.monitor.host)
            .bind(&config.monitor.host)
            .bind(&config.monitor.host)
            .fetch_all(db.pool()),
        )
        .await?;
    let table = ProcessTable::new().ok();
    let mut status = Vec::with_capacity(rows.len());
    for row in &rows {
        let name: String = row.try_get(1).map_err(DbError::from)?;
        let Some(process) = crate::config::is_valid_process_name(&name)
            .then(|| config.process(&name))
            .flatten()
        else {
            continue;
        };
        let found = table
            .as_ref()
            .map(|t| t.find(&process.name, &process.matcher))
            .unwrap_or_default();
        let alarma: i8 = row.try_get(2).map_err(DbError::from)?;
        let last: Option<DateTime<Utc>> = row.try_get(4).map_err(DbError::from)?;
        status.push(StatusRow {
            alive: !found.is_empty(),
            pid: found.first().map(|p| p.pid),
            alarm: alarma != 0,
            breaker: row.try_get(3).map_err(DbError::from)?,
            last_restart: last.map(crate::note::timestamp),
            restarts: row.try_get(5).map_err(DbError::from)?,
            cpu_pct: row.try_get(6).map_err(DbError::from)?,
            mem_pct: row.try_get(7).map_err(DbError::from)?,
            response_ms: row.try_get(8).map_err(DbError::from)?,
            name,
        });
    }
    Ok(status)
}

pub fn status_text(rows: &[StatusRow]) -> String {
    let number = |value: Option<f64>, digits: usize| {
        value.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
    };
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.name.clone(),
                if row.alive { "yes" } else { "NO" }.to_owned(),
                row.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                if row.alarm { "ALARM" } else { "-" }.to_owned(),
                row.breaker.clone(),
                row.last_restart.clone().unwrap_or_else(|| "-".to_owned()),
                row.restarts.to_string(),
                number(row.cpu_pct, 1),
                number(row.mem_pct, 1),
                number(row.response_ms, 0),
            ]
        })
        .collect();
    let columns = [
        ("NAME", Align::Left),
        ("ALIVE", Align::Left),
        ("PID", Align::Right),
        ("ALARM", Align::Left),
        ("BREAKER", Align::Left),
        ("LAST RESTART (UTC)", Align::Left),
        ("RESTARTS", Align::Right),
        ("CPU %", Align::Right),
        ("MEM %", Align::Right),
        ("RESP ms", Align::Right),
    ];
    table(&columns, &lines)
}

pub fn status_json(rows: &[StatusRow]) -> Result<String, ControlError> {
    serde_json::to_string_pretty(rows).map_err(|e| ControlError::Json(e.to_string()))
}
