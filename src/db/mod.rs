//! The database: a lazily connecting pool, embedded migrations, and the one wrapper every
//! statement goes through, which gives it a deadline and keeps track of whether the database
//! answers (logging once per change, not once per failure).
//!
//! The submodules hold the statements, grouped by the table they serve.

pub mod alarms;
pub mod breaker;
pub mod claims;
pub mod columns;
pub mod events;
pub mod galera;
pub mod ha;
pub mod migrate;
pub mod migration_lock;
mod servers;
pub mod stats;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

use crate::config::{DatabaseConfig, DbServer};

/// A duration in whole microseconds, for `INTERVAL ? MICROSECOND`; one past `i64` (some
/// 292,000 years) is held at the maximum.
pub(crate) fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// A `TIMESTAMPDIFF(MICROSECOND, …)` as a duration; one below zero (a time a moment ahead of
/// the server's `NOW(3)`) as zero.
pub(crate) fn duration_of_micros(micros: i64) -> Duration {
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// The schema, embedded at build time (`build.rs` makes cargo watch the folder).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migrating the schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "another migration holds the schema's lock ({owner}, until {until} at the latest); \
         waited {waited:?}: try again later"
    )]
    MigrationLockHeld {
        owner: String,
        until: chrono::DateTime<chrono::Utc>,
        waited: Duration,
    },
}

impl DbError {
    /// Whether the error says the database is out of reach (as opposed to a statement it
    /// refused): the caller should wait and try again rather than give up on the work.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Timeout(_) => true,
            DbError::Sql(error) => sql_error_is_unavailable(error),
            DbError::Migrate(sqlx::migrate::MigrateError::Execute(error)) => {
                sql_error_is_unavailable(error)
            }
            DbError::Migrate(_) | DbError::MigrationLockHeld { .. } => false,
        }
    }

    /// The server's error number, when the error is one.
    pub fn server_number(&self) -> Option<u16> {
        let sql = match self {
            DbError::Sql(error) | DbError::Migrate(sqlx::migrate::MigrateError::Execute(error)) => {
                error
            }
            _ => return None,
        };
        match sql {
            sqlx::Error::Database(error) => error
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|error| error.number()),
            _ => None,
        }
    }
}

/// Server errors that mean "not now" rather than "never": refused logins and a missing
/// database (an operator fixes those, not us, so keep trying quietly), too many connections,
/// server shutdown, connection killed, query interrupted, lock wait timeout, deadlock,
/// read-only (a failover in progress), a Galera node not ready, and the client's
/// lost-connection codes.
const UNAVAILABLE_ERRORS: &[u16] = &[
    1040, 1044, 1045, 1047, 1049, 1053, 1129, 1130, 1203, 1205, 1213, 1226, 1290, 1317, 1836, 1927,
    2002, 2003, 2006, 2013,
];

fn sql_error_is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|error| UNAVAILABLE_ERRORS.contains(&error.number())),
        _ => false,
    }
}

/// Whether the database answered the last statement: unknown until the first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Unknown,
    Up,
    Down,
}

/// A change of [`Availability`], with the error that made the database count as down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityChange {
    pub now: Availability,
    pub error: Option<String>,
}

/// The pool and what the service knows of the database's health. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Database {
    pool: MySqlPool,
    query_timeout: Duration,
    availability: Arc<AtomicU8>,
    /// Each change of `availability`, for whoever follows them (the alerts).
    changes: Arc<tokio::sync::watch::Sender<AvailabilityChange>>,
    /// What the text columns can store (`columns.rs`).
    text_columns: columns::Cache,
    /// The list of servers and the one in use (`servers.rs`).
    servers: Arc<servers::Servers>,
    /// Whether the server is a Galera node (`galera.rs`).
    node_kind: galera::NodeKind,
}

impl Database {
    /// A pool that connects on first use, so the service starts while the database is down.
    pub fn connect_lazy(config: &DatabaseConfig) -> Database {
        let servers = Arc::new(servers::Servers::new(config.servers.clone()));
        let node_kind = galera::NodeKind::default();
        let (left_behind, kind) = (servers.clone(), node_kind.clone());
        let pool = MySqlPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(0)
            .acquire_timeout(config.connect_timeout)
            // A ping before every statement would double the round trips of an idle poll; a
            // dead connection shows up as an error on the statement, which is retried by the
            // caller's next cycle anyway.
            .test_before_acquire(false)
            .idle_timeout(Duration::from_secs(600))
            .before_acquire(move |_, meta| {
                let keep = !left_behind.is_left_behind(meta.age);
                Box::pin(async move { Ok(keep) })
            })
            .after_connect(move |connection, _| {
                let kind = kind.clone();
                Box::pin(async move { galera::prepare_connection(connection, &kind).await })
            })
            .connect_lazy_with(connect_options(config, None).database(&config.database));
        Database {
            servers,
            node_kind,
            ..Database::with_pool(pool, config.query_timeout)
        }
    }

    /// Wraps an existing pool (tests build theirs with their own options).
    pub fn with_pool(pool: MySqlPool, query_timeout: Duration) -> Database {
        Database {
            pool,
            query_timeout,
            availability: Arc::new(AtomicU8::new(Availability::Unknown as u8)),
            changes: Arc::new(tokio::sync::watch::Sender::new(AvailabilityChange {
                now: Availability::Unknown,
                error: None,
            })),
            text_columns: columns::Cache::default(),
            servers: Arc::new(servers::Servers::new(Vec::new())),
            node_kind: galera::NodeKind::default(),
        }
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    pub fn availability(&self) -> Availability {
        match self.availability.load(Ordering::Relaxed) {
            1 => Availability::Up,
            2 => Availability::Down,
            _ => Availability::Unknown,
        }
    }

    /// Follows the changes of [`Database::availability`].
    pub fn availability_changes(&self) -> tokio::sync::watch::Receiver<AvailabilityChange> {
        self.changes.subscribe()
    }

    /// Runs one database operation under the statement deadline, noting whether the database
    /// answered. Every statement of the service goes through here.
    pub async fn run<T, E, F>(&self, operation: F) -> Result<T, DbError>
    where
        F: Future<Output = Result<T, E>>,
        E: Into<DbError>,
    {
        // Single-threaded: nothing moved the pool between the caller's `pool()` and here.
        let began_on = self.servers.current();
        let result = match tokio::time::timeout(self.query_timeout, operation).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(DbError::Timeout(self.query_timeout)),
        };
        match &result {
            Ok(_) => {
                self.observe(Availability::Up, None);
                self.servers.answered(began_on);
            }
            // The server answered: another writer won, or the server chose a deadlock victim.
            Err(error) if error.server_number() == Some(galera::CONFLICT) => {
                self.observe(Availability::Up, None)
            }
            Err(error) if error.is_unavailable() => {
                self.observe(Availability::Down, Some(error));
                if galera::means_server_lost(error) {
                    self.servers.lose(began_on, &self.pool, error);
                }
            }
            Err(_) => self.observe(Availability::Up, None),
        }
        result
    }

    /// Applies the pending migrations, one migrator at a time, a failed one again
    /// (`migrate.rs`).
    pub async fn migrate(&self) -> Result<(), DbError> {
        self.apply_migrations().await.map(|_applied| ())
    }

    /// As [`Database::migrate`], and says how many migrations this call applied.
    pub async fn apply_migrations(&self) -> Result<usize, DbError> {
        migrate::apply(self).await
    }

    /// Records the database's state and logs only when it changes.
    fn observe(&self, now: Availability, error: Option<&DbError>) {
        let before = self.availability.swap(now as u8, Ordering::Relaxed);
        if before == now as u8 {
            return;
        }
        let text = error.map(ToString::to_string);
        self.changes
            .send_replace(AvailabilityChange { now, error: text });
        match (now, error) {
            (Availability::Down, Some(error)) => {
                tracing::warn!("database unavailable: {error}; retrying with backoff")
            }
            (Availability::Up, _) if before == Availability::Down as u8 => {
                tracing::info!("database available again")
            }
            (Availability::Up, _) => tracing::info!("database connected"),
            _ => {}
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates the configured database when the server lacks it, through a connection that
    /// selects no database (the pool's own would fail to log in).
    pub async fn create_database_if_missing(&self, config: &DatabaseConfig) -> Result<(), DbError> {
        let server = MySqlPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(config.connect_timeout)
            .connect_lazy_with(connect_options(config, self.server()));
        let statement = format!(
            "CREATE DATABASE IF NOT EXISTS `{}` CHARACTER SET utf8mb4",
            config.database.replace('`', "``")
        );
        let result = match self
            .run(sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&server))
            .await
        {
            // Created by a concurrent `migrate` between the server's check and its own.
            Err(error) if error.server_number() == Some(1007) => Ok(()),
            result => result.map(|_| ()),
        };
        server.close().await;
        result
    }
}

/// The connect options for `server` (the list's first by default), without a database
/// selected. Never log them: their Debug form contains the password.
fn connect_options(config: &DatabaseConfig, server: Option<&DbServer>) -> MySqlConnectOptions {
    let (host, port) = match server.or(config.servers.first()) {
        Some(server) => (server.host.as_str(), server.port),
        None => (config.host.as_str(), config.port),
    };
    let mut options = MySqlConnectOptions::new()
        .host(host)
        .port(port)
        .username(&config.user)
        .charset("utf8mb4");
    if let Some(socket) = &config.socket {
        options = options.socket(socket);
    }
    if let Some(password) = &config.password {
        options = options.password(password.expose());
    }
    options
}

/// Backoff for retrying while the database is unreachable: 0.5 s doubling, capped at `cap`.
pub fn backoff(failures: u32, cap: Duration) -> Duration {
    let base = Duration::from_millis(500);
    let factor = 2u32.saturating_pow(failures.min(16));
    base.saturating_mul(factor)
        .min(cap)
        .max(Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let cap = Duration::from_secs(30);
        assert_eq!(backoff(0, cap), Duration::from_millis(500));
        assert_eq!(backoff(1, cap), Duration::from_secs(1));
        assert_eq!(backoff(3, cap), Duration::from_secs(4));
        assert_eq!(backoff(40, cap), cap);
        assert_eq!(backoff(5, Duration::from_secs(2)), Duration::from_secs(2));
    }
}
