//! A monitored world for one test: a fresh migrated database, a temporary folder, processes
//! to watch (real `sleep`s under unique names), and the service running in-process or as the
//! real binary.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use monitor_service::config::Config;
use monitor_service::db::Database;
use sqlx::Row;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{TestDb, monitor_bin, wait_for, write_config};

pub struct Fixture {
    pub db: TestDb,
    pub dir: tempfile::TempDir,
}

/// What a test waits for at most: generous, since the machines are shared and slow.
pub const PATIENCE: Duration = Duration::from_secs(20);

impl Fixture {
    /// A fresh database with the schema applied, and an empty folder.
    pub async fn new() -> Fixture {
        let db = TestDb::new().await;
        Database::with_pool(db.pool.clone(), Duration::from_secs(30))
            .migrate()
            .await
            .expect("migrating the test database");
        let dir = tempfile::tempdir().expect("temporary folder");
        Fixture { db, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A process name no other test uses, short enough for `pgrep -x` (15 characters).
    pub fn unique_name(&self, prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}{:x}{n}", std::process::id() % 0xfff)
    }

    /// A `sleep` reachable under `name`, so that the process it runs is found by that name.
    pub fn sleeper(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        if !path.exists() {
            symlink(sleep_binary(), &path).expect("symlink to sleep");
        }
        path
    }

    /// Starts the sleeper called `name` in a process group of its own, as an operator's
    /// init script would.
    pub fn start_sleeper(&self, name: &str) -> Running {
        self.start(&self.sleeper(name), &["1000"])
    }

    /// Starts `program` with `args`; it is killed when the test ends, even by a panic.
    pub fn start(&self, program: &Path, args: &[&str]) -> Running {
        use std::os::unix::process::CommandExt;
        Running(
            Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start a test process"),
        )
    }

    /// The `start_command` that runs the sleeper called `name` in the foreground.
    pub fn start_command(&self, name: &str) -> String {
        format!("exec {} 1000", self.sleeper(name).display())
    }

    /// Registers a process in `PROCESE` and `STATUS_PROCESS`, not in alarm.
    pub async fn add_process(&self, id: i32, name: &str) {
        sqlx::query("INSERT INTO PROCESE (process_id, process_name) VALUES (?, ?)")
            .bind(id)
            .bind(name)
            .execute(&self.db.pool)
            .await
            .expect("insert PROCESE");
        sqlx::query("INSERT INTO STATUS_PROCESS (process_id, alarma, sound) VALUES (?, 0, 0)")
            .bind(id)
            .execute(&self.db.pool)
            .await
            .expect("insert STATUS_PROCESS");
    }

    /// Starts a sleeper under a fresh name made from `prefix` and registers it as process
    /// `id`; returns the name and the running sleeper.
    pub async fn add_sleeper(&self, id: i32, prefix: &str) -> (String, Running) {
        let name = self.unique_name(prefix);
        let sleeper = self.start_sleeper(&name);
        self.add_process(id, &name).await;
        (name, sleeper)
    }

    /// Opens the circuit breaker of `id` now, after 3 failures.
    pub async fn open_breaker(&self, id: i32) {
        sqlx::query(
            "INSERT INTO CIRCUIT_BREAKER (process_id, state, consecutive_failures, opened_at, \
             updated_at) VALUES (?, 'open', 3, NOW(3), NOW(3))",
        )
        .bind(id)
        .execute(&self.db.pool)
        .await
        .expect("insert CIRCUIT_BREAKER");
    }

    pub async fn raise_alarm(&self, id: i32) {
        sqlx::query("UPDATE STATUS_PROCESS SET alarma = 1 WHERE process_id = ?")
            .bind(id)
            .execute(&self.db.pool)
            .await
            .expect("raise alarm");
    }

    /// `(alarma, notes)` of a process.
    pub async fn status(&self, id: i32) -> (i8, Option<String>) {
        let row = sqlx::query("SELECT alarma, notes FROM STATUS_PROCESS WHERE process_id = ?")
            .bind(id)
            .fetch_one(&self.db.pool)
            .await
            .expect("read STATUS_PROCESS");
        (row.get(0), row.get(1))
    }

    /// Waits until the alarm of `id` is cleared, and returns the note.
    pub async fn wait_cleared(&self, id: i32) -> String {
        wait_for(PATIENCE, "the alarm is cleared", || async {
            match self.status(id).await {
                (0, note) => Some(note.unwrap_or_default()),
                _ => None,
            }
        })
        .await
    }

    /// Waits until a finished `RESTART_EVENTS` row exists for `id`, and returns
    /// `(success, strategy, attempts, error)` of the latest.
    pub async fn wait_event(&self, id: i32) -> (bool, Option<String>, i32, Option<String>) {
        wait_for(PATIENCE, "a finished restart event", || async {
            let row = sqlx::query(
                "SELECT success, strategy, attempts, error FROM RESTART_EVENTS \
                 WHERE process_id = ? AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
            )
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await
            .expect("read RESTART_EVENTS")?;
            Some((row.get::<i8, _>(0) != 0, row.get(1), row.get(2), row.get(3)))
        })
        .await
    }

    pub async fn count(&self, sql: &'static str, id: i32) -> i64 {
        sqlx::query(sql)
            .bind(id)
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
            .get(0)
    }

    /// Waits until the sampler has written `count` more samples than it had now.
    pub async fn wait_samples(&self, count: i64) {
        let sql = "SELECT CAST(COALESCE(MAX(id), 0) AS SIGNED) FROM PROCESS_SAMPLES WHERE id > ?";
        let last = i32::try_from(self.count(sql, 0).await).expect("a test's sample ids");
        let sql = "SELECT COUNT(DISTINCT sampled_at) FROM PROCESS_SAMPLES \
                   WHERE kind = 'sample' AND id > ?";
        super::wait_until(PATIENCE, "more samples", || async {
            self.count(sql, last).await >= count
        })
        .await;
    }

    /// config.ini text: the test database, quick polling, files in the temporary folder, then
    /// `monitor` lines for `[monitor]` and the process sections.
    pub fn config_text(&self, monitor: &str, processes: &str) -> String {
        self.config_text_with(&self.db.database_section(), monitor, processes)
    }

    pub fn config_text_with(&self, database: &str, monitor: &str, processes: &str) -> String {
        let lock = self.path("monitor.lock");
        let lock = lock.display().to_string();
        let defaults = [
            ("host", "testhost"),
            ("check_interval", "0.2"),
            ("stats_interval", "0"),
            ("heartbeat_interval", "0"),
            ("lock_file", lock.as_str()),
            ("shutdown_grace", "10"),
        ];
        // The test's own [monitor] lines win over these defaults.
        let set_by_test = |key: &str| {
            monitor
                .lines()
                .any(|line| line.split('=').next().is_some_and(|k| k.trim() == key))
        };
        let mut section = String::from("[monitor]\n");
        for (key, value) in defaults.iter().filter(|(key, _)| !set_by_test(key)) {
            section.push_str(&format!("{key} = {value}\n"));
        }
        format!(
            "{database}connect_timeout = 2\nquery_timeout = 5\n\n{section}{monitor}\n\n\
             [logging]\nlog_file = {log}\nstderr = false\nlevel = debug\n\n{processes}\n",
            log = self.path("monitor.log").display(),
        )
    }

    pub fn config(&self, monitor: &str, processes: &str) -> Config {
        self.parse(&self.config_text(monitor, processes))
    }

    pub fn parse(&self, text: &str) -> Config {
        Config::from_ini_text(&self.path("config.ini"), text, None)
            .unwrap_or_else(|error| panic!("test config is invalid:\n{error}\n{text}"))
    }

    /// Writes the config to `config.ini` (mode 600) for the binary.
    pub fn write_config(&self, text: &str) -> PathBuf {
        write_config(self.dir.path(), text)
    }

    /// Runs the service in this process until the returned handle is stopped.
    pub fn run_in_process(&self, config: Config) -> InProcess {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(monitor_service::service::run(config, shutdown.clone()));
        InProcess { shutdown, task }
    }

    /// Starts the real binary: `monitor_service -c config run`.
    pub fn spawn_binary(&self, config: &Path) -> Monitor {
        self.spawn_binary_with(config, &[])
    }

    /// Starts the real binary with `env` added to its environment.
    pub fn spawn_binary_with(&self, config: &Path, env: &[(&str, &str)]) -> Monitor {
        let mut command = Command::new(monitor_bin());
        command
            .arg("-c")
            .arg(config)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        Monitor(command.spawn().expect("start monitor_service"))
    }
}

/// The real binary running; killed if the test ends (or fails) before it exits.
pub struct Monitor(pub Child);

impl Monitor {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("signal the monitor");
    }

    /// Waits for the monitor to exit and returns its exit code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        let child = &mut self.0;
        let status = wait_for(PATIENCE, "monitor_service exits", || {
            let status = child.try_wait().expect("wait for the monitor");
            async move { status }
        })
        .await;
        status.code()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A child process of the test, killed and reaped when dropped.
pub struct Running(pub Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The service running inside the test's runtime.
pub struct InProcess {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), monitor_service::service::ServiceError>>,
}

impl InProcess {
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the service stops within the deadline")
            .expect("the service task did not panic")
            .expect("the service ended without error");
    }
}

fn sleep_binary() -> PathBuf {
    ["/usr/bin/sleep", "/bin/sleep"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("sleep is installed")
}

/// The PIDs of processes whose argv\[0\] ends with `/name`.
pub fn pids_of(name: &str) -> Vec<i32> {
    let suffix = format!("/{name}");
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                stat.rsplit_once(')')
                    .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false);
        if alive && String::from_utf8_lossy(argv0).ends_with(&suffix) {
            pids.push(pid);
        }
    }
    pids
}

/// Kills every process found by [`pids_of`], so no test leaves sleepers behind.
pub fn kill_all(name: &str) {
    for pid in pids_of(name) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
