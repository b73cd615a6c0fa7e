//! Helpers shared by the integration tests: each test file says `mod common;` and takes what it
//! needs. They work against the real MariaDB named by `MONITOR_TEST_DATABASE_URL` (default
//! `mysql://root@127.0.0.1:3306`), which `scripts/test.sh` brings up.
//!
//! - [`TestDb`]: a fresh, empty `test_…` database per test, so tests run in parallel; dropped
//!   when the test passes, kept (and named on stderr) when it fails.
//! - [`DbProxy`]: a TCP proxy in front of the server that a test can cut and restore, to break
//!   the database for real.
//! - [`wait_until`], [`wait_for`], [`wait_until_sync`]: poll a condition under a deadline instead
//!   of sleeping a fixed time.
//! - [`write_config`], [`monitor_bin`], [`monitor`]: run the real binary on a real config file.
//! - [`child`]: what a test reads of the processes it started (state, gone, a PID from a file).

// Not every test file uses every helper.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Connection};

// Not every test file uses the proxy.
#[allow(unused_imports)]
pub use proxy::DbProxy;

/// The environment variable naming the server the tests may create databases on.
pub const DATABASE_URL_ENV: &str = "MONITOR_TEST_DATABASE_URL";
/// The server used when `MONITOR_TEST_DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "mysql://root@127.0.0.1:3306";

/// How often the `wait_*` helpers look at their condition.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The server URL the tests use, without a database.
pub fn server_url() -> String {
    std::env::var(DATABASE_URL_ENV).unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// Connect options for the test server, without a database selected.
pub fn server_options() -> MySqlConnectOptions {
    let url = server_url();
    MySqlConnectOptions::from_str(&url)
        .unwrap_or_else(|error| panic!("{DATABASE_URL_ENV}={url} is not a MySQL URL: {error}"))
}

/// One connection to the test server, without a database selected.
pub async fn server_connection() -> MySqlConnection {
    let options = server_options();
    MySqlConnection::connect_with(&options)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot connect to the test database server {}:{} ({error}); \
             run scripts/test.sh, or scripts/ensure-mariadb.sh first",
                options.get_host(),
                options.get_port()
            )
        })
}

/// Whether the test server has a database called `name`.
pub async fn database_exists(name: &str) -> bool {
    let mut connection = server_connection().await;
    let found: Option<String> = sqlx::query_scalar(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
    )
    .bind(name)
    .fetch_optional(&mut connection)
    .await
    .expect("information_schema.SCHEMATA is readable");
    found.is_some()
}

/// A fresh, empty database of its own for one test, with a pool on it.
///
/// Its name is `test_<unix seconds, 8 hex>_<random, 16 hex>`. It drops itself when it goes out
/// of scope at the end of a test that passed; a test that fails (panics) keeps its database for
/// inspection and says its name on stderr, and `scripts/test.sh` drops such leftovers once they
/// are an hour old.
pub struct TestDb {
    /// The database's name.
    pub name: String,
    /// A pool on the database (5 connections at most, 10 s acquire timeout).
    pub pool: MySqlPool,
    /// Options to connect to this database, to build other pools (through a [`DbProxy`], say).
    options: MySqlConnectOptions,
    /// `mysql://user:password@host:port` as given, so that [`TestDb::url`] needs no re-encoding.
    authority: String,
    /// The password, decoded, for config files.
    password: Option<String>,
}

impl TestDb {
    /// Creates the database on the server of `MONITOR_TEST_DATABASE_URL` and connects to it.
    pub async fn new() -> TestDb {
        let url = server_url();
        let name = unique_database_name();
        let mut connection = server_connection().await;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("cannot create the test database {name}: {error}"));
        let _ = connection.close().await;

        let options = server_options().database(&name);
        let pool = MySqlPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the test database {name}: {error}"));
        let (authority, password) = split_url(&url);
        TestDb {
            name,
            pool,
            options,
            authority,
            password,
        }
    }

    /// `mysql://user[:password]@host:port/NAME`, the URL of this database.
    pub fn url(&self) -> String {
        format!("{}/{}", self.authority, self.name)
    }

    pub fn host(&self) -> &str {
        self.options.get_host()
    }

    pub fn port(&self) -> u16 {
        self.options.get_port()
    }

    pub fn user(&self) -> &str {
        self.options.get_username()
    }

    /// The password of the URL, if it has one.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Options to connect to this database; change the port to go through a [`DbProxy`].
    pub fn connect_options(&self) -> MySqlConnectOptions {
        self.options.clone()
    }

    /// The server's socket address, for [`DbProxy::start`]. IPv4 first, since MariaDB often
    /// listens on 127.0.0.1 only.
    pub fn server_addr(&self) -> SocketAddr {
        let addresses: Vec<SocketAddr> = (self.host(), self.port())
            .to_socket_addrs()
            .unwrap_or_else(|error| panic!("cannot resolve {}: {error}", self.host()))
            .collect();
        addresses
            .iter()
            .find(|address| address.is_ipv4())
            .or(addresses.first())
            .copied()
            .unwrap_or_else(|| panic!("{} resolves to no address", self.host()))
    }

    /// A `[database]` section of config.ini pointing at this database.
    pub fn database_section(&self) -> String {
        self.database_section_at(self.host(), self.port())
    }

    /// A `[database]` section pointing at this database through `127.0.0.1:port`, where a
    /// [`DbProxy`] listens.
    pub fn database_section_on_port(&self, port: u16) -> String {
        self.database_section_at("127.0.0.1", port)
    }

    fn database_section_at(&self, host: &str, port: u16) -> String {
        let mut section = format!(
            "[database]\nhost = {host}\nport = {port}\nuser = {}\n",
            self.user()
        );
        if let Some(password) = self.password().filter(|password| !password.is_empty()) {
            section.push_str(&format!("password = {password}\n"));
        }
        section.push_str(&format!("database = {}\n", self.name));
        section
    }
}

/// How long dropping a test database may take, from the end of the test.
const DROP_DEADLINE: Duration = Duration::from_secs(30);

/// How long the `DROP DATABASE` may wait for a lock held by a connection the test left in a
/// transaction, so that it fails with a message before [`DROP_DEADLINE`] rather than hang.
const DROP_LOCK_WAIT_SECONDS: u32 = 20;

impl Drop for TestDb {
    /// Drops the database when the test passed; keeps it, and names it, when the test failed.
    ///
    /// `Drop` cannot await, and the test's runtime (current-thread, most often) is blocked in
    /// here, so the `DROP DATABASE` runs on a thread of its own with a runtime of its own, on a
    /// connection of its own: the pool's connections belong to the blocked runtime.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept test database {} for inspection", self.name);
            return;
        }
        let name = self.name.clone();
        let (done, outcome) = std::sync::mpsc::channel();
        let dropper = std::thread::Builder::new()
            .name(format!("drop-{name}"))
            .spawn(move || {
                let _ = done.send(drop_database_blocking(&name));
            });
        if let Err(error) = dropper {
            panic!(
                "cannot start a thread to drop the test database {}: {error}",
                self.name
            );
        }
        match outcome.recv_timeout(DROP_DEADLINE) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("cannot drop the test database {}: {error}", self.name),
            Err(_) => panic!(
                "dropping the test database {} took more than {DROP_DEADLINE:?}",
                self.name
            ),
        }
    }
}

/// `DROP DATABASE IF EXISTS name` on a fresh connection, from a runtime built here.
fn drop_database_blocking(name: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("no runtime: {error}"))?;
    runtime.block_on(async {
        let mut connection = MySqlConnection::connect_with(&server_options())
            .await
            .map_err(|error| error.to_string())?;
        let statements = [
            format!("SET SESSION lock_wait_timeout = {DROP_LOCK_WAIT_SECONDS}"),
            format!("DROP DATABASE IF EXISTS `{name}`"),
        ];
        for statement in statements {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut connection)
                .await
                .map_err(|error| error.to_string())?;
        }
        let _ = connection.close().await;
        Ok(())
    })
}

/// `test_<unix seconds>_<random>`: the time lets `scripts/test.sh` drop only old leftovers, the
/// random part (process id, clock, counter, hashed with a per-process random key) keeps parallel
/// tests and parallel runs apart.
fn unique_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut hasher = RandomState::new().build_hasher();
    now.as_nanos().hash(&mut hasher);
    std::process::id().hash(&mut hasher);
    COUNTER.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
    // Truncating to 32 bits keeps 8 hex digits until 2106.
    format!("test_{:08x}_{:016x}", now.as_secs() as u32, hasher.finish())
}

/// Splits `mysql://user:password@host:port/db?query` into `mysql://user:password@host:port` and
/// the decoded password.
fn split_url(url: &str) -> (String, Option<String>) {
    let scheme_end = url.find("://").map_or(0, |index| index + 3);
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |index| scheme_end + index);
    let authority = &url[..authority_end];
    let password = url[scheme_end..authority_end]
        .rsplit_once('@')
        .and_then(|(user_info, _)| user_info.split_once(':'))
        .map(|(_, password)| percent_decode(password));
    (authority.to_owned(), password)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Polls `condition` every 20 ms until it returns true; panics with `what` once `deadline` has
/// passed. Uses tokio's clock, so it also works under `tokio::time::pause()`.
pub async fn wait_until<F, Fut>(deadline: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(deadline, what, move || {
        let check = condition();
        async move { check.await.then_some(()) }
    })
    .await
}

/// Polls `probe` every 20 ms until it returns `Some`, and returns that value; panics with `what`
/// once `deadline` has passed. A probe that hangs is cut off at the deadline too.
pub async fn wait_for<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Ok(Some(value)) = tokio::time::timeout_at(give_up, probe()).await {
            return value;
        }
        if tokio::time::Instant::now() >= give_up {
            panic!("timed out after {deadline:?} waiting until {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// [`wait_until`] for tests without a runtime: blocks the thread between polls, so never call it
/// from async code.
pub fn wait_until_sync(deadline: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + deadline;
    loop {
        if condition() {
            return;
        }
        if std::time::Instant::now() >= give_up {
            panic!("timed out after {deadline:?} waiting until {what}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Writes `body` to `dir/config.ini` with mode 0600 (the service refuses a config holding a
/// password that others can read) and returns its path.
pub fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("config.ini");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    file.write_all(body.as_bytes())
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    // `mode` applies only when the file is created.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|error| panic!("cannot chmod {}: {error}", path.display()));
    path
}

/// The `monitor_service` binary cargo built for these tests.
pub fn monitor_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin!("monitor_service").to_path_buf()
}

/// `monitor_service -c CONFIG`, with the environment variables that would override the config
/// (`MONITOR_SERVICE_CONFIG`, `MONITOR_DB_PASSWORD`) removed; add the subcommand and run it.
pub fn monitor(config: &Path) -> assert_cmd::Command {
    let mut command = assert_cmd::Command::new(monitor_bin());
    command
        .env_remove("MONITOR_SERVICE_CONFIG")
        .env_remove("MONITOR_DB_PASSWORD")
        .arg("-c")
        .arg(config);
    command
}

// A fresh migrated database, a temporary folder and named processes.
pub mod fixture;

// What a test reads of the processes it started.
pub mod child;

// The proxy that breaks the database for real.
mod proxy;
