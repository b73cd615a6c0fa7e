//! Galera: finding out that the server is a cluster node, making its reads causal, and what
//! its errors mean.
//!
//! - A connection to a node (`wsrep_on = ON`) gets `wsrep_sync_wait = 1` for its whole
//!   session, so every read on it waits until the node has applied what the cluster committed
//!   before the read began: the claim, the alarm and breaker read after claiming, the HA
//!   lease, whatever decides, never acts on a node that lags. Nothing has to be marked:
//!   every connection of the pool is set up so ([`prepare_connection`]); a write waits at its
//!   certification anyway.
//! - A write that lost the certification against another node's fails with 1213 (at COMMIT,
//!   or at the statement for autocommit): the whole transaction is run again
//!   ([`Database::run_retrying`]). 1047 means the node is not ready (not in the primary
//!   component): the pool moves to the next server (`servers.rs`) and the retry goes there.
//! - Not used, because Galera does not replicate them: `GET_LOCK` (`MIGRATION_LOCK` is a row
//!   instead), `LOCK TABLES`, XA; `SELECT … FOR UPDATE` would lock the local node only, so
//!   claims are rows whose primary and unique keys the cluster certifies.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use sqlx::{MySqlConnection, Row};

use super::{Database, DbError};

/// `wsrep_sync_wait`'s bit for reads (SELECT, SHOW, BEGIN).
pub const SYNC_WAIT_READS: u8 = 1;

/// A write conflict: a deadlock, or on Galera a failed certification.
pub const CONFLICT: u16 = 1213;
/// `WSREP has not yet prepared node for application use`: a node outside the primary component,
/// or still joining.
pub const NODE_NOT_READY: u16 = 1047;

/// How often a transaction that lost a certification is run again before its error is
/// returned (the caller's own retry, if any, takes over from there).
const ATTEMPTS: u32 = 6;

/// What the server the pool connects to turned out to be.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeKind(Arc<AtomicU8>);

// 0: not connected yet.
const SINGLE: u8 = 1;
const GALERA: u8 = 2;

impl NodeKind {
    pub(crate) fn is_galera(&self) -> bool {
        self.0.load(Ordering::Relaxed) == GALERA
    }

    /// Logs once per change of kind: a list of servers may mix them, rarely on purpose.
    fn record(&self, galera: bool) {
        let now = if galera { GALERA } else { SINGLE };
        let before = self.0.swap(now, Ordering::Relaxed);
        if before == now {
            return;
        }
        if galera {
            tracing::info!(
                "database server is a Galera node: reads wait for causality (wsrep_sync_wait = {SYNC_WAIT_READS})"
            );
        } else if before == GALERA {
            tracing::warn!("database server is not a Galera node, unlike the one before");
        }
    }
}

/// Run on every new connection of the pool (its `after_connect`): one `SHOW VARIABLES`, and on
/// a Galera node the session's `wsrep_sync_wait`. MySQL has no `wsrep_on` at all: no row.
pub(crate) async fn prepare_connection(
    connection: &mut MySqlConnection,
    kind: &NodeKind,
) -> Result<(), sqlx::Error> {
    let row = sqlx::query("SHOW VARIABLES LIKE 'wsrep\\_on'")
        .fetch_optional(&mut *connection)
        .await?;
    // SHOW's columns may come typed as binary strings: read the bytes whatever the type.
    let on = row.is_some_and(|row| {
        row.try_get_unchecked::<String, _>(1)
            .is_ok_and(|value| value.eq_ignore_ascii_case("ON"))
    });
    if on {
        let set = format!("SET SESSION wsrep_sync_wait = {SYNC_WAIT_READS}");
        sqlx::query(sqlx::AssertSqlSafe(set))
            .execute(&mut *connection)
            .await?;
    }
    kind.record(on);
    Ok(())
}

/// Whether running the whole transaction again may succeed: a lost certification (1213), or
/// a node not ready (1047), the pool having moved to another server meanwhile.
pub fn is_retryable(error: &DbError) -> bool {
    matches!(error.server_number(), Some(CONFLICT | NODE_NOT_READY))
}

/// Whether the error says the server itself is gone or will not serve (rather than refusing
/// a statement): the pool should move to the next server of the list.
pub fn means_server_lost(error: &DbError) -> bool {
    const LOST: &[u16] = &[
        NODE_NOT_READY,
        1040, // too many connections
        1053, // server shutdown
        1129, // host blocked
        1130, // host not allowed
        1290, // read-only
        1927, // connection killed
        2002,
        2003,
        2006,
        2013,
    ];
    match error {
        DbError::Timeout(_) => true,
        DbError::Sql(sql) | DbError::Migrate(sqlx::migrate::MigrateError::Execute(sql)) => {
            match sql {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::WorkerCrashed => true,
                _ => error.server_number().is_some_and(|n| LOST.contains(&n)),
            }
        }
        _ => false,
    }
}

/// The pause before running a conflicted transaction again: 20 ms doubling, with up to as
/// much again of jitter so that two monitors in conflict do not meet again in step.
fn conflict_backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(20).saturating_mul(1 << attempt.min(8));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let jitter = base.mul_f64(f64::from(nanos % 1000) / 1000.0);
    base + jitter
}

impl Database {
    /// As [`Database::run`], and a transaction (or statement) that lost a certification, or
    /// met a node not ready, is run again whole, with backoff: `operation` makes it anew
    /// each time. Only for work that is right to do again from its start.
    pub async fn run_retrying<T, E, F, Fut>(&self, mut operation: F) -> Result<T, DbError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<DbError>,
    {
        let mut attempt = 0;
        loop {
            match self.run(operation()).await {
                Err(error) if is_retryable(&error) && attempt + 1 < ATTEMPTS => {
                    tracing::debug!("running a transaction again: {error}");
                    tokio::time::sleep(conflict_backoff(attempt)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Whether the server last connected to is a Galera node.
    pub fn is_galera(&self) -> bool {
        self.node_kind.is_galera()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_backoff_doubles_and_stays_short() {
        for attempt in 0..ATTEMPTS {
            let pause = conflict_backoff(attempt);
            let base = Duration::from_millis(20) * (1 << attempt);
            assert!(pause >= base && pause <= base * 2, "{attempt}: {pause:?}");
        }
        assert!(conflict_backoff(40) <= Duration::from_millis(20 * 256 * 2));
    }

    #[test]
    fn a_statement_timeout_means_the_server_is_lost_and_a_lock_timeout_does_not() {
        assert!(means_server_lost(&DbError::Timeout(Duration::from_secs(1))));
        assert!(means_server_lost(&DbError::Sql(sqlx::Error::PoolTimedOut)));
        assert!(!means_server_lost(&DbError::Sql(sqlx::Error::RowNotFound)));
        assert!(!is_retryable(&DbError::Timeout(Duration::from_secs(1))));
    }
}
