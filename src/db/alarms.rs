//! `STATUS_PROCESS` and `PROCESE`: the processes in alarm, their notes.

use sqlx::Row;

use super::{Database, DbError};

/// A process in alarm, as the poll sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmRow {
    pub process_id: i32,
    pub process_name: String,
}

/// Every process in alarm: the one statement of an idle poll.
pub async fn fetch_alarms(db: &Database) -> Result<Vec<AlarmRow>, DbError> {
    let rows = db
        .run(
            sqlx::query(
                "SELECT p.process_id, p.process_name \
                 FROM STATUS_PROCESS s JOIN PROCESE p ON p.process_id = s.process_id \
                 WHERE s.alarma <> 0 ORDER BY p.process_id",
            )
            .fetch_all(db.pool()),
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(AlarmRow {
                process_id: row.try_get(0)?,
                process_name: row.try_get(1)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// Writes a note and leaves the alarm as it is.
pub async fn write_note(db: &Database, process_id: i32, note: &str) -> Result<(), DbError> {
    db.run(
        sqlx::query("UPDATE STATUS_PROCESS SET notes = ? WHERE process_id = ?")
            .bind(crate::note::fit(note))
            .bind(process_id)
            .execute(db.pool()),
    )
    .await?;
    Ok(())
}

/// Writes a note unless it is already there; returns whether it changed. Lets a condition
/// that persists across polls (an open breaker, a refused name) be noted once.
pub async fn write_note_if_changed(
    db: &Database,
    process_id: i32,
    note: &str,
) -> Result<bool, DbError> {
    let result = db
        .run(
            sqlx::query(
                "UPDATE STATUS_PROCESS SET notes = ? WHERE process_id = ? AND NOT (notes <=> ?)",
            )
            .bind(crate::note::fit(note))
            .bind(process_id)
            .bind(crate::note::fit(note))
            .execute(db.pool()),
        )
        .await?;
    Ok(result.rows_affected() > 0)
}
