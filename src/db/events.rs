//! `RESTART_EVENTS` and the end of a cycle: the event row, the breaker, the alarm and its
//! note, and the claim, written in one transaction so that they never disagree.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::claims::TriggerSource;
use super::{Database, DbError};
use crate::breaker::{BreakerPolicy, CircuitBreaker, CycleOutcome};

/// The start of a restart cycle.
#[derive(Debug, Clone)]
pub struct EventStart<'a> {
    pub process_id: i32,
    pub process_name: &'a str,
    pub host: &'a str,
    pub source: TriggerSource,
    /// How long before now the alarm was seen: `detected_at = NOW(3) - this`.
    pub detected_ago: std::time::Duration,
}

/// Inserts the event row of a cycle about to run; returns its id.
pub async fn begin(db: &Database, start: &EventStart<'_>) -> Result<u64, DbError> {
    let micros = i64::try_from(start.detected_ago.as_micros()).unwrap_or(i64::MAX);
    let result = db
        .run(
            sqlx::query(
                "INSERT INTO RESTART_EVENTS \
                 (process_id, process_name, host, trigger_source, detected_at, started_at) \
                 VALUES (?, ?, ?, ?, NOW(3) - INTERVAL ? MICROSECOND, NOW(3))",
            )
            .bind(start.process_id)
            .bind(start.process_name)
            .bind(start.host)
            .bind(start.source.as_str())
            .bind(micros)
            .execute(db.pool()),
        )
        .await?;
    Ok(result.last_insert_id())
}

/// How a cycle ended, ready to be written.
pub struct EventEnd<'a> {
    pub event_id: u64,
    pub process_id: i32,
    pub success: bool,
    /// The strategy that acted last (`service` or `process`), if any ran.
    pub strategy: Option<&'a str>,
    pub attempts: u32,
    pub error: Option<&'a str>,
    /// The breaker before the cycle, its policy and the cycle's outcome: the new state is
    /// computed with the database clock inside the transaction. `None` leaves it untouched.
    pub breaker: Option<(CircuitBreaker, BreakerPolicy, CycleOutcome)>,
    /// Clear `alarma` (success) or leave it raised.
    pub clear_alarm: bool,
    /// Builds the note from the database clock's time.
    pub note: &'a (dyn Fn(DateTime<Utc>) -> String + Sync),
    pub claim_owner: &'a str,
}

/// Writes the end of a cycle in one transaction, the claim released last.
pub async fn finish(db: &Database, end: &EventEnd<'_>) -> Result<(), DbError> {
    db.run(finish_in_transaction(db, end)).await
}

async fn finish_in_transaction(db: &Database, end: &EventEnd<'_>) -> Result<(), sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let now: DateTime<Utc> = sqlx::query("SELECT NOW(3)")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    sqlx::query(
        "UPDATE RESTART_EVENTS SET finished_at = NOW(3), strategy = ?, attempts = ?, \
         success = ?, error = ? WHERE id = ?",
    )
    .bind(end.strategy)
    .bind(end.attempts)
    .bind(end.success)
    .bind(end.error.map(|e| e.chars().take(255).collect::<String>()))
    .bind(end.event_id)
    .execute(&mut *tx)
    .await?;
    if let Some((breaker, policy, outcome)) = end.breaker {
        let after = breaker.record(policy, outcome, now);
        super::breaker::save(&mut *tx, end.process_id, after).await?;
    }
    let note = crate::note::fit(&(end.note)(now));
    if end.clear_alarm {
        sqlx::query("UPDATE STATUS_PROCESS SET alarma = 0, notes = ? WHERE process_id = ?")
            .bind(note)
            .bind(end.process_id)
            .execute(&mut *tx)
            .await?;
    } else {
        sqlx::query("UPDATE STATUS_PROCESS SET notes = ? WHERE process_id = ?")
            .bind(note)
            .bind(end.process_id)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM ALARM_CLAIM WHERE process_id = ? AND owner = ?")
        .bind(end.process_id)
        .bind(end.claim_owner)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
