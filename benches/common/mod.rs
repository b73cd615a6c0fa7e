//! What both benchmarks stand on: a fresh database per run, migrated, and a config pointing
//! at it with files in a temporary folder; and their `main`: a runtime, and the figures named
//! on the command line.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use monitor_service::config::Config;
use monitor_service::db::Database;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Row};

pub mod procs;

pub type Error = Box<dyn std::error::Error>;

pub struct Bench {
    pub pool: MySqlPool,
    name: String,
    options: MySqlConnectOptions,
    pub dir: tempfile::TempDir,
}

impl Bench {
    pub async fn new(tag: &str) -> Result<Bench, Error> {
        let url = std::env::var("MONITOR_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned());
        let options = MySqlConnectOptions::from_str(&url)?;
        let name = format!("bench_{tag}_{}", std::process::id());
        let server = MySqlPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`")))
            .execute(&server)
            .await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&server)
            .await?;
        server.close().await;
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .connect_with(options.clone().database(&name))
            .await?;
        Database::with_pool(pool.clone(), Duration::from_secs(60))
            .migrate()
            .await?;
        Ok(Bench {
            pool,
            name,
            options,
            dir: tempfile::tempdir()?,
        })
    }

    pub fn config(&self, monitor: &str, processes: &str) -> Result<Config, Error> {
        let text = format!(
            "[database]\nhost = {}\nport = {}\nuser = {}\ndatabase = {}\n\n\
             [monitor]\nhost = bench\nlock_file = {}\n{monitor}\n\n\
             [logging]\nlog_file =\nstderr = false\n\n{processes}\n",
            self.options.get_host(),
            self.options.get_port(),
            self.options.get_username(),
            self.name,
            self.dir.path().join("lock").display(),
        );
        Ok(Config::from_ini_text(
            &self.dir.path().join("config.ini"),
            &text,
            None,
        )?)
    }

    /// Registers a process in `PROCESE` and `STATUS_PROCESS`, not in alarm.
    // The alarms benchmark registers its processes in bulk.
    #[allow(dead_code)]
    pub async fn add_process(&self, id: i32, name: &str) -> Result<(), Error> {
        sqlx::query("INSERT INTO PROCESE (process_id, process_name) VALUES (?, ?)")
            .bind(id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO STATUS_PROCESS (process_id, alarma, sound) VALUES (?, 0, 0)")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn scalar_i64(&self, sql: &'static str) -> Result<i64, Error> {
        Ok(sqlx::query(sql).fetch_one(&self.pool).await?.try_get(0)?)
    }

    pub async fn drop(self) -> Result<(), Error> {
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE `{}`", self.name)))
            .execute(&self.pool)
            .await?;
        self.pool.close().await;
        Ok(())
    }
}

/// Whether the figure `name` was asked for: `cargo bench --bench NAME FIGURE` runs one figure,
/// without a figure every one runs. Options (cargo adds `--bench`) are not figures.
pub fn wants(name: &str) -> bool {
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    only.is_none_or(|only| only == name)
}

/// Runs the figures of a benchmark's `main` on a current-thread runtime, as the service runs.
pub fn run_figures(figures: impl Future<Output = Result<(), Error>>) -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(figures)
}
