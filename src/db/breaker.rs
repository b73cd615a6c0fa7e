//! `CIRCUIT_BREAKER`: each process's breaker, read with the alarm it guards and the database
//! clock, so the decision in `crate::breaker` sees the state and time in one round trip.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Database, DbError};
use crate::breaker::{BreakerState, CircuitBreaker};

/// What a restart cycle needs to know before it begins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Admission {
    /// `STATUS_PROCESS.alarma <> 0` now (false also when the row is gone).
    pub alarm_raised: bool,
    pub breaker: CircuitBreaker,
    /// The database clock.
    pub now: DateTime<Utc>,
}

/// Reads the alarm, the breaker and the database clock together.
pub async fn load(db: &Database, process_id: i32) -> Result<Admission, DbError> {
    let row = db
        .run(
            sqlx::query(
                "SELECT CAST((SELECT alarma <> 0 FROM STATUS_PROCESS WHERE process_id = ?) AS SIGNED) AS raised, \
                 b.state, b.consecutive_failures, b.opened_at, NOW(3) AS now \
                 FROM (SELECT 1) AS one \
                 LEFT JOIN CIRCUIT_BREAKER b ON b.process_id = ?",
            )
            .bind(process_id)
            .bind(process_id)
            .fetch_one(db.pool()),
        )
        .await?;
    let raised: Option<i64> = row.try_get("raised").map_err(DbError::from)?;
    let state: Option<String> = row.try_get("state").map_err(DbError::from)?;
    let failures: Option<i32> = row.try_get("consecutive_failures").map_err(DbError::from)?;
    let opened_at: Option<DateTime<Utc>> = row.try_get("opened_at").map_err(DbError::from)?;
    let now: DateTime<Utc> = row.try_get("now").map_err(DbError::from)?;
    Ok(Admission {
        alarm_raised: raised.unwrap_or(0) != 0,
        breaker: breaker_from_row(state.as_deref(), failures, opened_at),
        now,
    })
}

/// A row's breaker. A state this version does not know reads as closed, so a hand-edited
/// row cannot wedge a process; an absent row is a closed breaker.
pub fn breaker_from_row(
    state: Option<&str>,
    failures: Option<i32>,
    opened_at: Option<DateTime<Utc>>,
) -> CircuitBreaker {
    let state = state
        .and_then(|s| s.parse::<BreakerState>().ok())
        .unwrap_or(BreakerState::Closed);
    CircuitBreaker {
        state,
        consecutive_failures: failures.and_then(|f| u32::try_from(f).ok()).unwrap_or(0),
        opened_at,
    }
}

/// Writes a breaker, on any executor (the outcome's transaction, or the pool).
pub async fn save<'e, E>(
    executor: E,
    process_id: i32,
    breaker: CircuitBreaker,
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::MySql>,
{
    sqlx::query(
        "INSERT INTO CIRCUIT_BREAKER (process_id, state, consecutive_failures, opened_at, updated_at) \
         VALUES (?, ?, ?, ?, NOW(3)) \
         ON DUPLICATE KEY UPDATE state = VALUES(state), \
         consecutive_failures = VALUES(consecutive_failures), \
         opened_at = VALUES(opened_at), updated_at = NOW(3)",
    )
    .bind(process_id)
    .bind(breaker.state.as_str())
    .bind(i32::try_from(breaker.consecutive_failures).unwrap_or(i32::MAX))
    .bind(breaker.opened_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// Closes the breaker of a process and forgets its failures (`breaker reset`).
pub async fn reset(db: &Database, process_id: i32) -> Result<(), DbError> {
    db.run_retrying(|| save(db.pool(), process_id, CircuitBreaker::default()))
        .await?;
    Ok(())
}
