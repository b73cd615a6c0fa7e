//! `STATUS_PROCESS` and `PROCESE`: the processes in alarm, their notes.

use sqlx::{MySql, QueryBuilder, Row};

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
    pub marks: Marks,
}

/// What the sampler needs to know from the same statement, so that it reads neither
/// `PROCESE` nor `RESTART_EVENTS` while nothing changed there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    /// The rows of `PROCESE` and a checksum of their ids and names: any row added, removed or
    /// renamed changes it.
    pub procese: (i64, i64),
    /// The newest `RESTART_EVENTS.id` of this host, 0 before its first restart.
    pub last_restart: i64,
    /// Every process in alarm, by id, ascending.
    pub alarmed: Vec<i32>,
}

/// Every process in alarm, the number of breakers not closed and the [`Marks`]: the one
/// statement of an idle poll. The counts come in a row of their own joined to the alarms, so
/// they arrive even when no process is in alarm. The mark of `PROCESE` covers the rows of
/// `names` only (all rows for `None`), read from the index on `process_name`, so that its cost
/// does not grow with the fleet.
pub async fn poll(db: &Database, host: &str, names: Option<&[&str]>) -> Result<Poll, DbError> {
    let mut query = QueryBuilder::<MySql>::new(
        "SELECT o.open_breakers, r.processes, r.names, \
         (SELECT CAST(COALESCE(MAX(id), 0) AS SIGNED) FROM RESTART_EVENTS WHERE host = ",
    );
    query.push_bind(host).push(
        ") AS last_restart, a.process_id, a.process_name \
         FROM (SELECT COUNT(*) AS open_breakers FROM CIRCUIT_BREAKER \
               WHERE state IN ('open', 'half_open')) o \
         JOIN (SELECT COUNT(*) AS processes, \
               CAST(COALESCE(BIT_XOR(CRC32(CONCAT(process_id, ' ', process_name))), 0) \
               AS SIGNED) AS names FROM PROCESE",
    );
    push_names_filter(&mut query, names);
    query.push(
        ") r \
         LEFT JOIN (SELECT p.process_id, p.process_name \
                    FROM STATUS_PROCESS s JOIN PROCESE p ON p.process_id = s.process_id \
                    WHERE s.alarma <> 0) a ON TRUE \
         ORDER BY a.process_id",
    );
    let rows = db.run(query.build().fetch_all(db.pool())).await?;
    let mut poll = Poll::default();
    for row in &rows {
        let open: i64 = row.try_get(0)?;
        poll.open_breakers = u32::try_from(open).unwrap_or(u32::MAX);
        poll.marks.procese = (row.try_get(1)?, row.try_get(2)?);
        poll.marks.last_restart = row.try_get(3)?;
        let id: Option<i32> = row.try_get(4)?;
        let name: Option<String> = row.try_get(5)?;
        if let (Some(process_id), Some(process_name)) = (id, name) {
            poll.marks.alarmed.push(process_id);
            poll.alarms.push(AlarmRow {
                process_id,
                process_name,
            });
        }
    }
    Ok(poll)
}

/// The lowest process id of `PROCESE` with this name, if any.
pub async fn process_id_of(db: &Database, name: &str) -> Result<Option<i32>, DbError> {
    let row = db
        .run(
            sqlx::query("SELECT MIN(process_id) FROM PROCESE WHERE process_name = ?")
                .bind(name)
                .fetch_one(db.pool()),
        )
        .await?;
    row.try_get(0).map_err(DbError::from)
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
        db.run_retrying(|| {
            sqlx::query(
                "UPDATE STATUS_PROCESS SET notes = ? WHERE process_id = ? AND NOT (notes <=> ?)",
            )
            .bind(&note)
            .bind(process_id)
            .bind(&note)
            .execute(db.pool())
        })
        .await
    })
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Writes the note of an open breaker unless it changes nothing or the note already says why
/// the breaker opened (it begins with `keep`): the crash loop's note is more use to an operator
/// than the generic one.
pub async fn write_breaker_note(
    db: &Database,
    process_id: i32,
    note: &str,
    keep: &str,
) -> Result<bool, DbError> {
    let repertoire = db.text_columns().await.notes;
    let result = write_text(db, &crate::note::fit(note), repertoire, |note| async move {
        db.run_retrying(|| {
            sqlx::query(
                "UPDATE STATUS_PROCESS SET notes = ? WHERE process_id = ? AND NOT (notes <=> ?) \
                 AND LEFT(COALESCE(notes, ''), CHAR_LENGTH(?)) <> ?",
            )
            .bind(&note)
            .bind(process_id)
            .bind(&note)
            .bind(keep)
            .bind(keep)
            .execute(db.pool())
        })
        .await
    })
    .await?;
    Ok(result.rows_affected() > 0)
}

/// What an operator does to an alarm (`alarm set|clear`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmChange {
    Raise,
    Clear,
}

/// Raises or clears the alarm of one process; returns the rows changed (0 on a clear: the
/// process has no `STATUS_PROCESS` row). Raising gives a process of `PROCESE` without a row
/// one (`sound` 0, no note), as the menu of `scripts/test_alarm.sh` does: the operator named a
/// process that exists, and a raise that silently did nothing would leave it unwatched.
pub async fn change_alarm(
    db: &Database,
    process_id: i32,
    change: AlarmChange,
) -> Result<u64, DbError> {
    let statement = match change {
        AlarmChange::Raise => {
            "INSERT INTO STATUS_PROCESS (process_id, alarma, sound) VALUES (?, 1, 0) \
             ON DUPLICATE KEY UPDATE alarma = 1"
        }
        AlarmChange::Clear => "UPDATE STATUS_PROCESS SET alarma = 0 WHERE process_id = ?",
    };
    let result = db
        .run_retrying(|| sqlx::query(statement).bind(process_id).execute(db.pool()))
        .await?;
    Ok(result.rows_affected())
}

/// Raises or clears the alarm of every process of `PROCESE`; returns how many changed.
pub async fn change_all_alarms(db: &Database, change: AlarmChange) -> Result<u64, DbError> {
    match change {
        AlarmChange::Raise => Ok(db.run_retrying(|| raise_all(db)).await?),
        AlarmChange::Clear => {
            let statement = "UPDATE STATUS_PROCESS SET alarma = 0 WHERE alarma <> 0";
            let query = || sqlx::query(statement).execute(db.pool());
            Ok(db.run_retrying(query).await?.rows_affected())
        }
    }
}

/// Raises every process of `PROCESE`, with a `STATUS_PROCESS` row or not. One transaction,
/// so the count is of one moment.
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

/// ` WHERE process_name IN (…)` for `names`; nothing for `None` (every row); a condition no row
/// meets for no names.
pub(crate) fn push_names_filter(query: &mut QueryBuilder<MySql>, names: Option<&[&str]>) {
    let Some(names) = names else {
        return;
    };
    if names.is_empty() {
        query.push(" WHERE FALSE");
        return;
    }
    query.push(" WHERE process_name IN (");
    let mut list = query.separated(", ");
    for name in names {
        list.push_bind(*name);
    }
    query.push(")");
}
