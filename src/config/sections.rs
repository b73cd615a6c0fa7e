//! The fixed sections of `config.ini`: `[database]`, `[monitor]`, `[logging]` and `[health]`,
//! each read key by key with its default, and the checks that span several of its keys.

use std::path::PathBuf;
use std::time::Duration;

use super::fields::Fields;
use super::servers::{DbServer, parse_servers};
use super::values::{SHORTEST_PERIOD, Span, parse_level, parse_listen};
use super::{DatabaseConfig, HealthConfig, LoggingConfig, MonitorConfig, Secret};

fn seconds(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn read_database(
    fields: &mut Fields<'_>,
    password_override: Option<String>,
) -> DatabaseConfig {
    let in_file = fields.optional("password", &None);
    // An empty MONITOR_DB_PASSWORD counts as unset, as `${VAR:-...}` would in a shell script.
    let password = password_override.filter(|p| !p.is_empty()).or(in_file);
    let host = fields.text("host", "localhost");
    let port = fields.whole("port", 3306, 1, Some(u16::MAX));
    let socket = fields.optional("socket", &None).map(PathBuf::from);
    let servers = read_servers(fields, &host, port, socket.is_some());
    DatabaseConfig {
        host,
        port,
        servers,
        socket,
        user: fields.text("user", "root"),
        password: password.map(Secret::new),
        database: fields.text("database", "v_process_monitor"),
        connect_timeout: fields.seconds("connect_timeout", seconds(5), Span::Positive),
        query_timeout: fields.seconds("query_timeout", seconds(10), Span::Positive),
        max_connections: fields.whole("max_connections", 4, 1, Some(100)),
        auto_migrate: fields.boolean("auto_migrate", true),
    }
}

/// The servers of `host`; a wrong list is reported and leaves `localhost`.
fn read_servers(fields: &mut Fields<'_>, host: &str, port: u16, socket: bool) -> Vec<DbServer> {
    let servers = parse_servers(host, port).unwrap_or_else(|why| {
        fields.fail("host", why);
        parse_servers("localhost", port).unwrap_or_default()
    });
    if socket && servers.len() > 1 {
        let why = "reaches one local server: it cannot go with a list of hosts".into();
        fields.fail("socket", why);
    }
    servers
}

/// The quick re-checks after an exit scan `/proc` `dead_after` times: a millisecond apart at
/// the least, so that a large `dead_after` cannot turn them into a busy loop.
const SHORTEST_RECHECK: Duration = Duration::from_millis(1);

pub(super) fn read_monitor(fields: &mut Fields<'_>) -> MonitorConfig {
    let period = Span::AtLeast(SHORTEST_PERIOD);
    let monitor = MonitorConfig {
        host: read_host(fields),
        check_interval: fields.seconds("check_interval", seconds(300), period),
        max_restart_failures: fields.whole("max_restart_failures", 3, 1, None),
        circuit_reset_time: fields.seconds("circuit_reset_time", seconds(1800), Span::Any),
        max_parallel_restarts: fields.whole("max_parallel_restarts", 4, 1, None),
        stats_interval: fields.seconds_or_off("stats_interval", Some(seconds(10))),
        stats_retention: fields.seconds("stats_retention", seconds(14400), Span::Positive),
        heartbeat_interval: fields.seconds_or_off("heartbeat_interval", Some(seconds(10))),
        auto_alarm: fields.boolean("auto_alarm", false),
        dead_after: fields.whole("dead_after", 3, 1, None),
        dead_recheck_interval: fields.seconds(
            "dead_recheck_interval",
            Duration::from_millis(10),
            Span::AtLeast(SHORTEST_RECHECK),
        ),
        http_listen: fields.value("http_listen", None, parse_listen),
        allow_unconfigured: fields.boolean("allow_unconfigured", true),
        lock_file: PathBuf::from(fields.text("lock_file", "/run/monitor_service.lock")),
        shutdown_grace: fields.seconds("shutdown_grace", seconds(30), Span::Any),
    };
    // Deaths are found by the sampler: without it an auto alarm would never be raised.
    if monitor.auto_alarm && monitor.stats_interval.is_none() {
        fields.fail(
            "auto_alarm",
            "needs stats_interval above 0: dead processes are found by the sampler".into(),
        );
    }
    monitor
}

/// `host`, or the system hostname when it is missing or empty.
fn read_host(fields: &mut Fields<'_>) -> String {
    match fields.take("host") {
        Some(host) if !host.is_empty() => host.to_owned(),
        _ => system_hostname().unwrap_or_else(|why| {
            fields.fail("host", format!("{why}; set it here"));
            String::new()
        }),
    }
}

fn system_hostname() -> Result<String, String> {
    let name = nix::unistd::gethostname()
        .map_err(|error| format!("cannot read the system hostname: {error}"))?;
    name.into_string()
        .map_err(|_| "the system hostname is not UTF-8".to_owned())
}

pub(super) fn read_logging(fields: &mut Fields<'_>) -> LoggingConfig {
    let default_file = Some("/var/log/monitor_service.log".to_owned());
    let max_log_kb: u64 = fields.whole("max_log_size", 5120, 1, Some(u64::MAX / 1024));
    LoggingConfig {
        log_file: fields
            .optional("log_file", &default_file)
            .map(PathBuf::from),
        level: fields.value("level", "info".to_owned(), parse_level),
        stderr: fields.boolean("stderr", true),
        max_log_bytes: max_log_kb * 1024,
        log_files_to_keep: fields.whole("log_files_to_keep", 5, 0, None),
    }
}

pub(super) fn read_health(fields: &mut Fields<'_>) -> HealthConfig {
    let health = HealthConfig {
        window: fields.seconds("window", seconds(30), Span::Positive),
        restart_weight: fields.real("restart_weight", 1.0, 0.0, None),
        response_weight: fields.real("response_weight", 1.0, 0.0, None),
        memory_weight: fields.real("memory_weight", 1.0, 0.0, None),
        availability_weight: fields.real("availability_weight", 1.0, 0.0, None),
        response_good: fields.real("response_good", 1.0, 0.0, None),
        response_bad: fields.real("response_bad", 5.0, 0.0, None),
        memory_good_pct: fields.real("memory_good_pct", 2.0, 0.0, Some(100.0)),
        memory_bad_pct: fields.real("memory_bad_pct", 10.0, 0.0, Some(100.0)),
        threshold: fields.real("threshold", 0.5, 0.0, Some(1.0)),
        on_low_health_command: fields.optional("on_low_health_command", &None),
    };
    let weights = [
        health.restart_weight,
        health.response_weight,
        health.memory_weight,
        health.availability_weight,
    ];
    if weights.iter().all(|&weight| weight <= 0.0) {
        fields.fail_section("at least one of the weights must be above 0".into());
    }
    if health.response_good >= health.response_bad {
        let why = format!("must be less than response_bad ({})", health.response_bad);
        fields.fail("response_good", why);
    }
    if health.memory_good_pct >= health.memory_bad_pct {
        let why = format!(
            "must be less than memory_bad_pct ({})",
            health.memory_bad_pct
        );
        fields.fail("memory_good_pct", why);
    }
    health
}
