//! The operator's lists of the whole control plane, whatever host they concern: the processes
//! of `PROCESE` (the shell completes their names), the one name resolver, every alarm with its
//! note, and every circuit breaker.

use chrono::{DateTime, Utc};

use super::view::{BreakerView, breaker_policy};
use super::{ProcessRef, ReportError};
use crate::config::Config;
use crate::db::Database;
use crate::db::breaker::breaker_from_row;

/// Every process of `PROCESE`, by id.
pub async fn processes(db: &Database) -> Result<Vec<ProcessRef>, ReportError> {
    let query = sqlx::query_as::<_, (i32, String)>(
        "SELECT process_id, process_name FROM PROCESE ORDER BY process_id",
    );
    let rows = db.run(query.fetch_all(db.pool())).await?;
    Ok(rows
        .into_iter()
        .map(|(process_id, name)| ProcessRef { process_id, name })
        .collect())
}

/// The `PROCESE` process called exactly `name`, case and all (executables' names are case
/// sensitive, while the column's collation is not). Should several rows share the name, the
/// one this host samples wins, then the lowest id. Every command that takes a name uses this.
pub async fn resolve(db: &Database, host: &str, name: &str) -> Result<ProcessRef, ReportError> {
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

/// A process of `PROCESE` with its alarm and note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmEntry {
    pub process: ProcessRef,
    pub alarm: bool,
    pub note: Option<String>,
}

/// Every process of `PROCESE` with its alarm, by id.
pub async fn alarms(db: &Database) -> Result<Vec<AlarmEntry>, ReportError> {
    let query = sqlx::query_as::<_, (i32, String, i64, Option<String>)>(
        "SELECT p.process_id, p.process_name, CAST(COALESCE(s.alarma, 0) <> 0 AS SIGNED), \
         s.notes FROM PROCESE p LEFT JOIN STATUS_PROCESS s ON s.process_id = p.process_id \
         ORDER BY p.process_id",
    );
    let rows = db.run(query.fetch_all(db.pool())).await?;
    Ok(rows
        .into_iter()
        .map(|(process_id, name, alarm, note)| AlarmEntry {
            process: ProcessRef { process_id, name },
            alarm: alarm != 0,
            note,
        })
        .collect())
}

/// Every circuit breaker of `CIRCUIT_BREAKER`, by process id.
pub async fn breakers(
    db: &Database,
    config: &Config,
) -> Result<Vec<(ProcessRef, BreakerView)>, ReportError> {
    let query = sqlx::query_as::<_, (i32, String, String, i32, Option<DateTime<Utc>>)>(
        "SELECT p.process_id, p.process_name, CAST(b.state AS CHAR), b.consecutive_failures, \
         b.opened_at FROM CIRCUIT_BREAKER b JOIN PROCESE p ON p.process_id = b.process_id \
         ORDER BY p.process_id",
    );
    let rows = db.run(query.fetch_all(db.pool())).await?;
    let policy = breaker_policy(config);
    Ok(rows
        .into_iter()
        .map(|(process_id, name, state, failures, opened_at)| {
            let breaker = breaker_from_row(Some(&state), Some(failures), opened_at);
            (
                ProcessRef { process_id, name },
                BreakerView::new(breaker, policy),
            )
        })
        .collect())
}
