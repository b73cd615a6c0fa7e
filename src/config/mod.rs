//! The service's configuration: `config.ini` read (`load`), split into raw sections of strings
//! (`raw`), then validated into the typed `Config` below (`validate`), with every problem
//! reported at once by section and key (`problem`).

mod alert;
mod dependencies;
mod fields;
mod ha;
mod load;
mod problem;
mod process_section;
mod raw;
mod render;
mod sections;
mod servers;
mod validate;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

pub use alert::{AlertConfig, EventKind, WEBHOOK_ENV};
pub use ha::{ActiveOn, HaConfig, Role};
pub use problem::ConfigError;
pub use render::render_effective;
pub use servers::{DbServer, parse_servers};

/// The environment variable that overrides `[database] password`.
pub const PASSWORD_ENV: &str = "MONITOR_DB_PASSWORD";
/// The environment variable that names the config file when `-c` is not given.
pub const CONFIG_ENV: &str = "MONITOR_SERVICE_CONFIG";
/// Where the config lives when neither `-c` nor `MONITOR_SERVICE_CONFIG` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/opt/monitor_service/config.ini";

/// The sections every file may have besides the process sections.
const FIXED_SECTIONS: [&str; 6] = ["database", "monitor", "logging", "health", "ha", "alert"];
/// The base of every process section.
const DEFAULT_PROCESS_SECTION: &str = "process.default";
/// What starts the section of one process, `[process.NAME]`.
const PROCESS_PREFIX: &str = "process.";

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, for messages.
    pub path: PathBuf,
    /// The `[sections]` the file had: a reload refuses a file that lost its `[database]`
    /// (half written, or emptied by mistake) rather than fall back to the defaults.
    pub sections: BTreeSet<String>,
    pub database: DatabaseConfig,
    pub monitor: MonitorConfig,
    pub logging: LoggingConfig,
    pub health: HealthConfig,
    /// `[ha]`; `None` when it has no `group`.
    pub ha: Option<HaConfig>,
    /// The role this host holds now ([`Role`]): not from the file.
    pub role: Role,
    pub alert: AlertConfig,
    /// `[process.default]` merged over the built-in defaults: used for processes of `PROCESE`
    /// that have no section of their own (when `allow_unconfigured`), and as the base of every
    /// `[process.NAME]`.
    pub default_process: ProcessConfig,
    /// `[process.NAME]` sections, by NAME, each already merged over `default_process`.
    pub processes: BTreeMap<String, ProcessConfig>,
}

impl Config {
    /// Reads and validates the file at `path`. `password_override` (the caller reads it from
    /// `MONITOR_DB_PASSWORD`) replaces `[database] password` unless it is empty.
    pub fn load(path: &Path, password_override: Option<String>) -> Result<Config, ConfigError> {
        load::from_file(path, password_override)
    }

    /// Validates INI text as if read from `path` (no file-permission check), for tests and
    /// benchmarks.
    pub fn from_ini_text(
        path: &Path,
        text: &str,
        password_override: Option<String>,
    ) -> Result<Config, ConfigError> {
        load::from_text(path, text, password_override)
    }

    /// The settings for the process called `name` on this host: its own section, or the
    /// default section when unconfigured processes are allowed. `None` when the process is not
    /// this host's to handle.
    pub fn process(&self, name: &str) -> Option<ProcessConfig> {
        match self.processes.get(name) {
            Some(process)
                if process.runs_on(&self.monitor.host) && self.role.runs(process.active_on) =>
            {
                Some(process.clone())
            }
            Some(_) => None,
            None if self.monitor.allow_unconfigured
                && self.role.runs(self.default_process.active_on) =>
            {
                Some(self.default_process.named(name))
            }
            None => None,
        }
    }

    /// The names of `PROCESE` this host may act on: those of its sections, or `None` (every
    /// name) when unconfigured processes are allowed. A superset of what [`Config::process`]
    /// accepts, for reading only the rows that may matter.
    pub fn process_names(&self) -> Option<Vec<&str>> {
        (!self.monitor.allow_unconfigured)
            .then(|| self.processes.keys().map(String::as_str).collect())
    }

    /// The settings of a process named by the database, if this host is to act on it: the
    /// name is a valid one ([`is_valid_process_name`]) and [`Config::process`] has it.
    pub fn process_for(&self, name: &str) -> Option<ProcessConfig> {
        is_valid_process_name(name)
            .then(|| self.process(name))
            .flatten()
    }
}

/// A password that never shows in Debug or Display output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The password itself, for the one place that needs it: the connect options.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `host` as written: one server, or a list (`servers`).
    pub host: String,
    /// The default port of the list's entries.
    pub port: u16,
    /// The servers of `host`, in the order they are tried; never empty.
    pub servers: Vec<DbServer>,
    pub socket: Option<PathBuf>,
    pub user: String,
    pub password: Option<Secret>,
    pub database: String,
    pub connect_timeout: Duration,
    /// The deadline of every statement the service sends.
    pub query_timeout: Duration,
    pub max_connections: u32,
    pub auto_migrate: bool,
}

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// This machine's name in the shared tables (`RESTART_EVENTS.host`, `PROCESS_STATS.host`).
    pub host: String,
    pub check_interval: Duration,
    pub max_restart_failures: u32,
    pub circuit_reset_time: Duration,
    pub max_parallel_restarts: usize,
    /// `None` when `stats_interval = 0`.
    pub stats_interval: Option<Duration>,
    pub stats_retention: Duration,
    /// `None` when `heartbeat_interval = 0`.
    pub heartbeat_interval: Option<Duration>,
    pub auto_alarm: bool,
    pub dead_after: u32,
    /// The spacing of the quick re-checks that count `dead_after` after a watched process
    /// exits.
    pub dead_recheck_interval: Duration,
    pub http_listen: Option<SocketAddr>,
    pub allow_unconfigured: bool,
    pub lock_file: PathBuf,
    /// How long running restarts may go on after SIGTERM before the service exits anyway.
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct LoggingConfig {
    /// `None` when `log_file` is empty: log to stderr only.
    pub log_file: Option<PathBuf>,
    /// A tracing filter directive such as `info` or `monitor_service=debug`.
    pub level: String,
    pub stderr: bool,
    /// Rotate when the live file would exceed this many bytes (`max_log_size` is in KB).
    pub max_log_bytes: u64,
    pub log_files_to_keep: u32,
}

/// Weights and bounds of the health score (`health.rs` computes it from them).
#[derive(Debug, Clone)]
pub struct HealthConfig {
    pub window: Duration,
    pub restart_weight: f64,
    pub response_weight: f64,
    pub memory_weight: f64,
    pub availability_weight: f64,
    /// Response time at or below this many heartbeat intervals scores 1.
    pub response_good: f64,
    /// Response time at or above this many heartbeat intervals scores 0.
    pub response_bad: f64,
    pub memory_good_pct: f64,
    pub memory_bad_pct: f64,
    pub threshold: f64,
    pub on_low_health_command: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartStrategy {
    /// `systemctl restart <service_name>`.
    Service,
    /// Stop the process group, then spawn `start_command` detached.
    Process,
    /// `Service`, then `Process` when the service restart or its health check fails.
    Auto,
}

impl RestartStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartStrategy::Service => "service",
            RestartStrategy::Process => "process",
            RestartStrategy::Auto => "auto",
        }
    }
}

impl fmt::Display for RestartStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a process is recognised in the process table.
#[derive(Debug, Clone)]
pub enum ProcessMatch {
    /// The base name of argv\[0\] or of the executable equals the process name (`pgrep -x`,
    /// but on the whole name rather than the kernel's 15-character `comm`).
    Name,
    /// `match`: a regex searched in the whole command line, arguments joined by spaces.
    CommandLine(Regex),
    /// `match.N`: regexes searched in argument N; all must match.
    Arguments(Vec<(usize, Regex)>),
}

/// Everything the service needs to know to watch and restart one process.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The name in `PROCESE.process_name` and in `[process.NAME]`.
    pub name: String,
    pub restart_strategy: RestartStrategy,
    pub pre_restart_command: Option<String>,
    pub health_check_command: Option<String>,
    pub health_check_timeout: Duration,
    pub restart_delay: Duration,
    pub max_attempts: u32,
    /// The systemd unit; `None` means the process name.
    pub service_name: Option<String>,
    pub start_command: Option<String>,
    pub stop_timeout: Duration,
    /// The deadline of `pre_restart_command` and of `systemctl restart`.
    pub command_timeout: Duration,
    pub matcher: ProcessMatch,
    pub required: bool,
    pub depends_on: Vec<String>,
    /// Restart this process after each restart of a process it depends on.
    pub restart_with_dependencies: bool,
    /// Alive without a successful heartbeat this long is hung; `None` is off.
    pub hang_after: Option<Duration>,
    /// Above this for `dead_after` samples in a row is too much; `None` is no limit.
    pub max_memory: Option<MemoryLimit>,
    /// More successful restarts than this within `restart_window` is a crash loop; 0 is no
    /// limit.
    pub max_restarts: u32,
    pub restart_window: Duration,
    /// `None` means every host.
    pub hosts: Option<Vec<String>>,
    /// `primary`: only the `[ha]` group's primary runs it.
    pub active_on: ActiveOn,
}

/// `max_memory`: a size in bytes, or a share of the machine's memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MemoryLimit {
    Bytes(u64),
    /// Percent of the machine's memory, above 0 and at most 100.
    Percent(f64),
}

impl MemoryLimit {
    /// The limit in bytes on a machine with `total_memory` bytes.
    pub fn bytes(self, total_memory: u64) -> u64 {
        match self {
            MemoryLimit::Bytes(bytes) => bytes,
            // Percent is at most 100, so the product stays within u64.
            MemoryLimit::Percent(percent) => (total_memory as f64 * percent / 100.0) as u64,
        }
    }
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MemoryLimit::Bytes(bytes) => write!(f, "{bytes}"),
            MemoryLimit::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

impl ProcessConfig {
    /// The systemd unit that the `service` strategy restarts.
    pub fn service_name(&self) -> &str {
        self.service_name.as_deref().unwrap_or(&self.name)
    }

    /// Whether this process is watched on the host called `host`.
    pub fn runs_on(&self, host: &str) -> bool {
        self.hosts
            .as_ref()
            .is_none_or(|hosts| hosts.iter().any(|h| h == host))
    }

    /// This configuration applied to another process name (the default section's use).
    pub fn named(&self, name: &str) -> ProcessConfig {
        ProcessConfig {
            name: name.to_owned(),
            ..self.clone()
        }
    }
}

/// Whether a process name may be acted on: `^[A-Za-z0-9@._:-]{1,100}$`, not starting with `-`.
/// Names from the database that fail this are never passed to a command.
pub fn is_valid_process_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@._:-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_names_follow_the_contract_pattern() {
        for good in [
            "nginx",
            "a",
            "my-app_2",
            "user@host",
            "svc:1",
            "x.y",
            &"a".repeat(100),
        ] {
            assert!(is_valid_process_name(good), "{good} should be valid");
        }
        for bad in [
            "",
            "-rf",
            "x; touch FILE",
            "$(id)",
            "`id`",
            "a b",
            "ü",
            &"a".repeat(101),
            "a\nb",
        ] {
            assert!(!is_valid_process_name(bad), "{bad:?} should be refused");
        }
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2".into());
        assert_eq!(format!("{secret:?} {secret}"), "\"********\" ********");
    }
}
