//! `STATUS_PROCESS` and `PROCESE`: the processes in alarm, their notes.

use sqlx::Row;

use super::columns::write_text;
use super::{Database, DbError};

/// A process in alarm, as the poll sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmRow {
    pub process_id: i32,
    pub process_name: String,
}

/// What one poll learns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Poll {
    pub alarms: Vec<AlarmRow>,
    /// Breakers not closed, for the service's status line.
    pub open_breakers: u32,
}

/// Every process in alarm, and the number of breakers not closed: the one statement of an
/// idle poll. The count comes in a row of its own joined to the alarms, so it arrives even
/// when no process is in alarm.
pub async fn poll(db: &Database) -> Result<Poll, DbError> {
    let rows = db
        .run(
            sqlx::query(
                "SELECT o.open_breakers, a.process_id, a.process_name \
                 FROM (SELECT COUNT(*) AS open_breakers FROM CIRCUIT_BREAKER \
                       WHERE state <> 'closed') o \
                 LEFT JOIN (SELECT p.process_id, p.process_name \
                            FROM STATUS_PROCESS s JOIN PROCESE p ON p.process_id = s.process_id \
                            WHERE s.alarma <> 0) a ON TRUE \
                 ORDER BY a.process_id",
            )
            .fetch_all(db.pool()),
        )
        .await?;
    let mut poll = Poll::default();
    for row in &rows {
        let open: i64 = row.try_get(0).map_err(DbError::from)?;
        poll.open_breakers = u32::try_from(open).unwrap_or(u32::MAX);
        let id: Option<i32> = row.try_get(1).map_err(DbError::from)?;
        let name: Option<String> = row.try_get(2).map_err(DbError::from)?;
        if let (Some(process_id), Some(process_name)) = (id, name) {
            poll.alarms.push(AlarmRow {
                process_id,
                process_name,
            });
        }
    }
    Ok(poll)
}

/// Writes a note unless it is already there; returns whether it changed. Lets a condition
/// that persists across polls (an open breaker, a refused name) be noted once.
pub async fn write_note_if_changed(
    db: &Database,
    process_id: i32,
    note: &str,
) -> Result<bool, DbError> {
    let repertoire = db.text_columns().await.notes;
    let result = write_text(db, &crate::note::fit(note), repertoire, |note| async move {
        db.run(
            sqlx::query(
                "UPDATE STATUS_PROCESS SET notes = ? WHERE process_id = ? AND NOT (notes <=> ?)",
            )
            .bind(&note)
            .bind(process_id)
            .bind(&note)
            .execute(db.pool()),
        )
        .await
    })
    .await?;
    Ok(result.rows_affected() > 0)
}
