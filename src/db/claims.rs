//! `ALARM_CLAIM`: leases that keep two monitors (or a monitor and a manual command) from
//! handling the same process at once. A lease expires if its owner dies, and then exactly one
//! claimant can take it over: the row's primary key and a conditional update decide.

use std::time::Duration;

use sqlx::mysql::MySqlDatabaseError;

use super::{Database, DbError};

/// Why a process is being handled: `RESTART_EVENTS.trigger_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerSource {
    Alarm,
    Manual,
    Auto,
}

impl TriggerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerSource::Alarm => "alarm",
            TriggerSource::Manual => "manual",
            TriggerSource::Auto => "auto",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The process is ours until we release it (or stop renewing).
    Taken,
    /// An expired lease of a dead owner was taken over: this is the retry.
    TakenOver,
    /// Someone else holds a live lease.
    Busy,
}

impl Claim {
    pub fn is_ours(self) -> bool {
        !matches!(self, Claim::Busy)
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Tries to take the lease on `process_id` for `lease`.
pub async fn claim(
    db: &Database,
    process_id: i32,
    owner: &str,
    source: TriggerSource,
    lease: Duration,
) -> Result<Claim, DbError> {
    let inserted = db
        .run(
            sqlx::query(
                "INSERT INTO ALARM_CLAIM \
                 (process_id, owner, trigger_source, claimed_at, expires_at) \
                 VALUES (?, ?, ?, NOW(3), NOW(3) + INTERVAL ? MICROSECOND)",
            )
            .bind(process_id)
            .bind(owner)
            .bind(source.as_str())
            .bind(micros(lease))
            .execute(db.pool()),
        )
        .await;
    match inserted {
        Ok(_) => return Ok(Claim::Taken),
        Err(DbError::Sql(sqlx::Error::Database(error)))
            if error
                .try_downcast_ref::<MySqlDatabaseError>()
                .is_some_and(|e| e.number() == 1062) => {}
        Err(error) => return Err(error),
    }
    // The row exists: take it over only if its lease ran out. InnoDB re-evaluates the WHERE
    // after a concurrent update commits, so only one of two claimants matches.
    let result = db
        .run(
            sqlx::query(
                "UPDATE ALARM_CLAIM SET owner = ?, trigger_source = ?, claimed_at = NOW(3), \
                 expires_at = NOW(3) + INTERVAL ? MICROSECOND, takeovers = takeovers + 1 \
                 WHERE process_id = ? AND expires_at < NOW(3)",
            )
            .bind(owner)
            .bind(source.as_str())
            .bind(micros(lease))
            .bind(process_id)
            .execute(db.pool()),
        )
        .await?;
    Ok(if result.rows_affected() == 1 {
        Claim::TakenOver
    } else {
        Claim::Busy
    })
}

/// Extends a lease we hold. Returns false when the lease is no longer ours.
pub async fn renew(
    db: &Database,
    process_id: i32,
    owner: &str,
    lease: Duration,
) -> Result<bool, DbError> {
    let result = db
        .run(
            sqlx::query(
                "UPDATE ALARM_CLAIM SET expires_at = NOW(3) + INTERVAL ? MICROSECOND \
                 WHERE process_id = ? AND owner = ?",
            )
            .bind(micros(lease))
            .bind(process_id)
            .bind(owner)
            .execute(db.pool()),
        )
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives a lease back.
pub async fn release(db: &Database, process_id: i32, owner: &str) -> Result<(), DbError> {
    db.run(
        sqlx::query("DELETE FROM ALARM_CLAIM WHERE process_id = ? AND owner = ?")
            .bind(process_id)
            .bind(owner)
            .execute(db.pool()),
    )
    .await?;
    Ok(())
}

/// Lets go at once of the leases that earlier runs on this host left behind: only one monitor
/// runs per host (the lock file), so their owners are dead and waiting for expiry would only
/// delay the retry.
pub async fn expire_left_by_earlier_runs(
    db: &Database,
    host_prefix: &str,
    owner: &str,
) -> Result<u64, DbError> {
    let pattern = format!(
        "{}%",
        host_prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let result = db
        .run(
            sqlx::query(
                "UPDATE ALARM_CLAIM SET expires_at = NOW(3) - INTERVAL 1 SECOND \
                 WHERE owner LIKE ? AND owner <> ? AND expires_at >= NOW(3)",
            )
            .bind(pattern)
            .bind(owner)
            .execute(db.pool()),
        )
        .await?;
    Ok(result.rows_affected())
}
