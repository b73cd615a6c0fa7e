//! The migration lock: one row of `MIGRATION_LOCK` that a migrator inserts before it touches
//! the schema and deletes when done, so that migrators (several `migrate` commands, monitors
//! starting on several hosts) take turns instead of racing on `_sqlx_migrations`.
//!
//! A row rather than `GET_LOCK`: Galera does not replicate `GET_LOCK` (nor `LOCK TABLES`), so
//! two nodes would both grant it; a row's primary key is certified by the whole cluster (the
//! loser's commit fails with a duplicate key or a deadlock, 1213). sqlx's own lock is
//! `GET_LOCK(name, -1)`, which MariaDB answers at once with NULL (a negative timeout is not
//! "forever" there), so it never serialised anything; the migrator runs with it off.
//!
//! The row carries an expiry by the database clock, so that a migrator that died does not hold
//! the lock forever: once `expires_at` is past, one conditional `UPDATE` lets exactly one
//! waiter take it over. The holder's work has a deadline shorter than the expiry, so a live
//! holder is never overtaken.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Database, DbError};

/// The table, created by the migrator itself: it must exist before any migration runs.
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS MIGRATION_LOCK (\
     id INT PRIMARY KEY, \
     owner VARCHAR(255) NOT NULL, \
     acquired_at DATETIME(3) NOT NULL, \
     expires_at DATETIME(3) NOT NULL\
     ) DEFAULT CHARSET = utf8mb4";

/// After this long waiting, the waiter says so once (a `migrate` run by hand would otherwise
/// sit silent while another host migrates, or until a dead migrator's lock expires).
const SAY_WAITING_AFTER: Duration = Duration::from_secs(5);

/// Duplicate key: the row is there. Deadlock: Galera's certification gave the row to a
/// migrator on another node.
const TAKEN_ERRORS: &[u16] = &[1062, 1213];

/// Who holds the lock, and until when by the database clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub owner: String,
    pub expires_at: DateTime<Utc>,
}

/// The lock, held until [`MigrationLock::release`] (or its expiry, if this process dies).
#[derive(Debug)]
pub struct MigrationLock {
    owner: String,
}

impl MigrationLock {
    /// Takes the lock for `ttl`, waiting up to `wait` (with backoff) while another migrator
    /// holds it.
    pub async fn acquire(
        db: &Database,
        ttl: Duration,
        wait: Duration,
    ) -> Result<MigrationLock, DbError> {
        db.run(sqlx::query(CREATE_TABLE).execute(db.pool())).await?;
        let owner = owner_name();
        let ttl_us = super::micros(ttl);
        let started = Instant::now();
        let mut tries = 0u32;
        let mut said_waiting = false;
        loop {
            if try_take(db, &owner, ttl_us).await? {
                return Ok(MigrationLock { owner });
            }
            // Released between the two statements: try again at once.
            let Some(holder) = holder(db, false).await? else {
                continue;
            };
            if started.elapsed() >= wait {
                return Err(DbError::MigrationLockHeld {
                    owner: holder.owner,
                    until: holder.expires_at,
                    waited: wait,
                });
            }
            if !said_waiting && started.elapsed() >= SAY_WAITING_AFTER {
                tracing::warn!(
                    "waiting for the migration lock held by {} (until {} at the latest)",
                    holder.owner,
                    holder.expires_at
                );
                said_waiting = true;
            }
            tokio::time::sleep(retry_after(tries)).await;
            tries = tries.saturating_add(1);
        }
    }

    /// Deletes the row. Should that fail, the lock expires by itself.
    pub async fn release(self, db: &Database) {
        let deleted = db
            .run(
                sqlx::query("DELETE FROM MIGRATION_LOCK WHERE id = 1 AND owner = ?")
                    .bind(&self.owner)
                    .execute(db.pool()),
            )
            .await;
        if let Err(error) = deleted {
            tracing::warn!("releasing the migration lock: {error}; it expires by itself");
        }
    }
}

/// The lock's holder, if any; with `live_only`, not one whose lock has expired.
/// No `MIGRATION_LOCK` table yet means no holder.
pub async fn holder(db: &Database, live_only: bool) -> Result<Option<LockHolder>, DbError> {
    let statement = if live_only {
        "SELECT owner, expires_at FROM MIGRATION_LOCK WHERE id = 1 AND expires_at > NOW(3)"
    } else {
        "SELECT owner, expires_at FROM MIGRATION_LOCK WHERE id = 1"
    };
    let row = match db
        .run(sqlx::query(statement).fetch_optional(db.pool()))
        .await
    {
        Ok(row) => row,
        Err(error) if error.server_number() == Some(1146) => None,
        Err(error) => return Err(error),
    };
    row.map(|row| {
        Ok(LockHolder {
            owner: row.try_get(0)?,
            expires_at: row.try_get(1)?,
        })
    })
    .transpose()
    .map_err(|error: sqlx::Error| DbError::from(error))
}

/// One attempt: insert the row, or take over one that has expired.
async fn try_take(db: &Database, owner: &str, ttl_us: i64) -> Result<bool, DbError> {
    let inserted = db
        .run(
            sqlx::query(
                "INSERT INTO MIGRATION_LOCK (id, owner, acquired_at, expires_at) \
                 VALUES (1, ?, NOW(3), NOW(3) + INTERVAL ? MICROSECOND)",
            )
            .bind(owner)
            .bind(ttl_us)
            .execute(db.pool()),
        )
        .await;
    match inserted {
        Ok(_) => return Ok(true),
        Err(error) if is_taken(&error) => {}
        Err(error) => return Err(error),
    }
    let taken_over = db
        .run(
            sqlx::query(
                "UPDATE MIGRATION_LOCK SET owner = ?, acquired_at = NOW(3), \
                 expires_at = NOW(3) + INTERVAL ? MICROSECOND \
                 WHERE id = 1 AND expires_at < NOW(3)",
            )
            .bind(owner)
            .bind(ttl_us)
            .execute(db.pool()),
        )
        .await;
    match taken_over {
        Ok(done) if done.rows_affected() == 1 => {
            tracing::warn!("took over an expired migration lock: its migrator did not finish");
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(error) if is_taken(&error) => Ok(false),
        Err(error) => Err(error),
    }
}

fn is_taken(error: &DbError) -> bool {
    error
        .server_number()
        .is_some_and(|number| TAKEN_ERRORS.contains(&number))
}

/// Short at first (an up-to-date schema takes milliseconds to check), doubling to a second.
fn retry_after(tries: u32) -> Duration {
    Duration::from_millis(50)
        .saturating_mul(2u32.saturating_pow(tries.min(5)))
        .min(Duration::from_secs(1))
}

/// Names this migrator for the operator (host and PID) and uniquely (the time), so that a
/// release never deletes another's row.
fn owner_name() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!(
        "migrate@{host}/{}/{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_short_and_stay_under_a_second() {
        assert_eq!(retry_after(0), Duration::from_millis(50));
        assert_eq!(retry_after(1), Duration::from_millis(100));
        assert_eq!(retry_after(4), Duration::from_millis(800));
        assert_eq!(retry_after(5), Duration::from_secs(1));
        assert_eq!(retry_after(u32::MAX), Duration::from_secs(1));
    }
}
