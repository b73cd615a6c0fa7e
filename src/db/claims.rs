//! `ALARM_CLAIM`: leases that keep two monitors (or a monitor and a manual command) from
//! handling the same process at once. A claim is keyed twice: by `process_id` (the primary
//! key) and by host and process name (a unique key), so that two `PROCESE` rows naming the
//! same process, or a manual command and the daemon reaching it through different ids, never
//! run cycles on it at once. A lease expires if its owner dies, and then exactly one claimant
//! can take it over: the expired rows in the way are deleted and the insert is tried again,
//! and the two keys let only one insert in.

use std::time::Duration;

use super::{Database, DbError, micros};
use crate::alarm::TriggerSource;

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

/// Who holds a claim: `daemon@HOST/PID/START` for the service, `cli@HOST/PID/START` for a
/// manual command, START in microseconds since the epoch so that a PID used again is another
/// owner. Built and read here only: the host prefix is how a restarted monitor recognizes the
/// claims of its earlier runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOwner {
    text: String,
    /// The length of `daemon@HOST/` (or `cli@HOST/`) in `text`.
    prefix: usize,
}

impl ClaimOwner {
    /// This run of the service on `host`.
    pub fn daemon(host: &str) -> ClaimOwner {
        ClaimOwner::of_this_process("daemon", host)
    }

    /// A manual command on `host`.
    pub fn cli(host: &str) -> ClaimOwner {
        ClaimOwner::of_this_process("cli", host)
    }

    fn of_this_process(kind: &str, host: &str) -> ClaimOwner {
        let prefix = format!("{kind}@{host}/");
        ClaimOwner {
            prefix: prefix.len(),
            text: format!(
                "{prefix}{}/{}",
                std::process::id(),
                chrono::Utc::now().timestamp_micros()
            ),
        }
    }

    /// What `ALARM_CLAIM.owner` holds.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// What every owner of the same kind on the same host begins with.
    pub fn host_prefix(&self) -> &str {
        &self.text[..self.prefix]
    }
}

/// What a claim is on: the alarm's process id, and the process name on this host.
#[derive(Debug, Clone, Copy)]
pub struct ClaimKey<'a> {
    pub process_id: i32,
    pub host: &'a str,
    pub process_name: &'a str,
}

/// Tries to take the lease on `key` for `lease`.
pub async fn claim(
    db: &Database,
    key: ClaimKey<'_>,
    owner: &str,
    source: TriggerSource,
    lease: Duration,
) -> Result<Claim, DbError> {
    if insert(db, key, owner, source, lease, 0).await? {
        return Ok(Claim::Taken);
    }
    // A row holds one of the keys: take its place only if its lease ran out. Two claimants
    // may both get here; whichever inserts first wins and the other's insert is refused by
    // the keys, so exactly one takes over.
    let expired = db
        .run(
            sqlx::query(
                "DELETE FROM ALARM_CLAIM WHERE (process_id = ? OR (host = ? AND process_name = ?)) \
                 AND expires_at < NOW(3)",
            )
            .bind(key.process_id)
            .bind(key.host)
            .bind(key.process_name)
            .execute(db.pool()),
        )
        .await;
    let expired = match expired {
        // Another claimant on another node deleted it first: theirs to take over.
        Err(error) if error.server_number() == Some(super::galera::CONFLICT) => {
            return Ok(Claim::Busy);
        }
        expired => expired?,
    };
    if expired.rows_affected() == 0 {
        return Ok(Claim::Busy);
    }
    Ok(if insert(db, key, owner, source, lease, 1).await? {
        Claim::TakenOver
    } else {
        Claim::Busy
    })
}

/// Inserts the claim row; false when a row already holds its process id or its name.
async fn insert(
    db: &Database,
    key: ClaimKey<'_>,
    owner: &str,
    source: TriggerSource,
    lease: Duration,
    takeovers: i32,
) -> Result<bool, DbError> {
    let inserted = db
        .run(
            sqlx::query(
                "INSERT INTO ALARM_CLAIM (process_id, host, process_name, owner, trigger_source, \
                 claimed_at, expires_at, takeovers) \
                 VALUES (?, ?, ?, ?, ?, NOW(3), NOW(3) + INTERVAL ? MICROSECOND, ?)",
            )
            .bind(key.process_id)
            .bind(key.host)
            .bind(key.process_name)
            .bind(owner)
            .bind(source.as_str())
            .bind(micros(lease))
            .bind(takeovers)
            .execute(db.pool()),
        )
        .await;
    match inserted {
        Ok(_) => Ok(true),
        // A duplicate key: a row already holds the id or the name. Or, on Galera, another
        // node's claim on one of the keys won the certification: a claim lost, all the same.
        Err(error) if matches!(error.server_number(), Some(1062 | super::galera::CONFLICT)) => {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// Extends a lease we hold. Returns false when the lease is no longer ours.
pub async fn renew(
    db: &Database,
    process_id: i32,
    owner: &str,
    lease: Duration,
) -> Result<bool, DbError> {
    let result = db
        .run_retrying(|| {
            sqlx::query(
                "UPDATE ALARM_CLAIM SET expires_at = NOW(3) + INTERVAL ? MICROSECOND \
                 WHERE process_id = ? AND owner = ?",
            )
            .bind(micros(lease))
            .bind(process_id)
            .bind(owner)
            .execute(db.pool())
        })
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives a lease back.
pub async fn release(db: &Database, process_id: i32, owner: &str) -> Result<(), DbError> {
    db.run_retrying(|| {
        sqlx::query("DELETE FROM ALARM_CLAIM WHERE process_id = ? AND owner = ?")
            .bind(process_id)
            .bind(owner)
            .execute(db.pool())
    })
    .await?;
    Ok(())
}

/// Who holds the claim in the way of `key`: on the same id, or on the same name on its host.
/// `None` when the claim is gone meanwhile.
pub async fn holder(db: &Database, key: ClaimKey<'_>) -> Result<Option<String>, DbError> {
    use sqlx::Row;
    let row = db
        .run(
            sqlx::query(
                "SELECT owner FROM ALARM_CLAIM \
                 WHERE process_id = ? OR (host = ? AND process_name = ?) LIMIT 1",
            )
            .bind(key.process_id)
            .bind(key.host)
            .bind(key.process_name)
            .fetch_optional(db.pool()),
        )
        .await?;
    Ok(row.and_then(|r| r.try_get::<String, _>(0).ok()))
}

/// Lets go at once of the leases that earlier runs of `owner` on its host left behind: only
/// one monitor runs per host (the lock file), so their owners are dead and waiting for expiry
/// would only delay the retry.
pub async fn expire_left_by_earlier_runs(
    db: &Database,
    owner: &ClaimOwner,
) -> Result<u64, DbError> {
    let pattern = format!(
        "{}%",
        owner
            .host_prefix()
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
            .bind(owner.as_str())
            .execute(db.pool()),
        )
        .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_names_its_kind_host_process_and_start_and_shares_the_host_prefix() {
        let owner = ClaimOwner::daemon("db1");
        assert_eq!(owner.host_prefix(), "daemon@db1/");
        let rest = owner
            .as_str()
            .strip_prefix("daemon@db1/")
            .expect("the prefix");
        let (pid, start) = rest.split_once('/').expect("PID/START");
        assert_eq!(pid, std::process::id().to_string());
        assert!(
            start.parse::<i64>().is_ok_and(|micros| micros > 0),
            "{start}"
        );
        assert_eq!(ClaimOwner::cli("db1").host_prefix(), "cli@db1/");
        assert_eq!(ClaimOwner::daemon("db1/x").host_prefix(), "daemon@db1/x/");
    }
}
