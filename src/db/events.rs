//! `RESTART_EVENTS` and the end of a cycle: the event row, the breaker, the alarm and its
//! note, and the claim, written in one transaction so that they never disagree.

use chrono::{DateTime, Utc};
use sqlx::{MySqlConnection, Row};

use super::columns::{self, TextColumns};
use super::{Database, DbError, micros};
use crate::alarm::TriggerSource;
use crate::breaker::{BreakerPolicy, CircuitBreaker, CycleOutcome};
use crate::note::Repertoire;

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
    let result = db
        .run_retrying(|| {
            sqlx::query(
                "INSERT INTO RESTART_EVENTS \
                 (process_id, process_name, host, trigger_source, detected_at, started_at) \
                 VALUES (?, ?, ?, ?, NOW(3) - INTERVAL ? MICROSECOND, NOW(3))",
            )
            .bind(start.process_id)
            .bind(start.process_name)
            .bind(start.host)
            .bind(start.source.as_str())
            .bind(micros(start.detected_ago))
            .execute(db.pool())
        })
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
    pub error: Option<String>,
    /// The breaker before the cycle, its policy and the cycle's outcome: the new state is
    /// computed with the database clock inside the transaction. `None` leaves it untouched.
    pub breaker: Option<(CircuitBreaker, BreakerPolicy, CycleOutcome)>,
    /// Clear `alarma` (success) or leave it raised.
    pub clear_alarm: bool,
    /// Builds the note from the database clock's time.
    pub note: &'a (dyn Fn(DateTime<Utc>) -> String + Sync),
    pub claim_owner: &'a str,
}

/// Writes the end of a cycle in one transaction, the claim released last. The note and the
/// error are fitted to what their columns can store, so a `latin1` table under strict
/// `sql_mode` cannot take the event, the breaker and the claim down with them.
pub async fn finish(db: &Database, end: &EventEnd<'_>) -> Result<(), DbError> {
    let columns = db.text_columns().await;
    let refused = db
        .run_retrying(|| finish_in_transaction(db, end, columns))
        .await?;
    if refused {
        db.forget_text_columns();
    }
    Ok(())
}

/// Returns whether the server refused a text, so that the columns are read again.
async fn finish_in_transaction(
    db: &Database,
    end: &EventEnd<'_>,
    columns: TextColumns,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let now: DateTime<Utc> = sqlx::query("SELECT NOW(3)")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let mut refused = finish_event(&mut tx, end, columns.error).await?;
    if let Some((breaker, policy, outcome)) = end.breaker {
        let after = breaker.record(policy, outcome, now);
        super::breaker::save(&mut *tx, end.process_id, after).await?;
    }
    let note = crate::note::fit(&(end.note)(now));
    refused |= finish_alarm(&mut tx, end, &note, columns.notes).await?;
    sqlx::query("DELETE FROM ALARM_CLAIM WHERE process_id = ? AND owner = ?")
        .bind(end.process_id)
        .bind(end.claim_owner)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(refused)
}

/// The values to try for a text column, best first: what the column can store of `text`,
/// ASCII only (should its character set have been misjudged), then no text at all. MySQL
/// undoes a refused statement alone and the transaction goes on, so the next try needs no
/// savepoint; an error that may end the transaction is returned instead (`columns::refused`).
fn fallbacks(text: Option<&str>, repertoire: Repertoire) -> Vec<Option<String>> {
    let mut tries: Vec<Option<String>> = text
        .map(|text| columns::candidates(text, repertoire))
        .unwrap_or_default()
        .into_iter()
        .map(Some)
        .collect();
    tries.push(None);
    tries
}

/// The event row's end; returns whether a text was refused on the way.
async fn finish_event(
    tx: &mut MySqlConnection,
    end: &EventEnd<'_>,
    repertoire: Repertoire,
) -> Result<bool, sqlx::Error> {
    let error = end
        .error
        .as_deref()
        .map(|e| e.chars().take(255).collect::<String>());
    let tries = fallbacks(error.as_deref(), repertoire);
    let last = tries.len() - 1;
    for (n, error) in tries.into_iter().enumerate() {
        let written = sqlx::query(
            "UPDATE RESTART_EVENTS SET finished_at = NOW(3), strategy = ?, attempts = ?, \
             success = ?, error = ? WHERE id = ?",
        )
        .bind(end.strategy)
        .bind(end.attempts)
        .bind(end.success)
        .bind(error)
        .bind(end.event_id)
        .execute(&mut *tx)
        .await;
        match written {
            Err(error) if n < last && columns::refused(&error) => {
                tracing::warn!("the database refused the error text of an event: {error}");
            }
            written => return written.map(|_| n > 0),
        }
    }
    Ok(true)
}

/// The alarm (cleared or left) and its note; returns whether a text was refused on the way.
/// The last resort keeps the note that was there, so that the outcome still lands.
async fn finish_alarm(
    tx: &mut MySqlConnection,
    end: &EventEnd<'_>,
    note: &str,
    repertoire: Repertoire,
) -> Result<bool, sqlx::Error> {
    let tries = fallbacks(Some(note), repertoire);
    let last = tries.len() - 1;
    for (n, note) in tries.into_iter().enumerate() {
        let written = sqlx::query(
            "UPDATE STATUS_PROCESS SET alarma = IF(?, 0, alarma), notes = COALESCE(?, notes) \
             WHERE process_id = ?",
        )
        .bind(end.clear_alarm)
        .bind(note)
        .bind(end.process_id)
        .execute(&mut *tx)
        .await;
        match written {
            Err(error) if n < last && columns::refused(&error) => {
                tracing::warn!("the database refused a note: {error}");
            }
            written => return written.map(|_| n > 0),
        }
    }
    Ok(true)
}

/// The successful restarts of `process_id` on `host` that began within `window` of the
/// database clock, whatever their trigger: what `max_restarts` counts.
pub async fn successful_restarts_within(
    db: &Database,
    host: &str,
    process_id: i32,
    window: std::time::Duration,
) -> Result<u32, DbError> {
    let row = db
        .run(
            sqlx::query(
                "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ? AND host = ? \
                 AND success = 1 AND started_at >= NOW(3) - INTERVAL ? MICROSECOND",
            )
            .bind(process_id)
            .bind(host)
            .bind(micros(window))
            .fetch_one(db.pool()),
        )
        .await?;
    let count: i64 = row.try_get(0).map_err(DbError::from)?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}
