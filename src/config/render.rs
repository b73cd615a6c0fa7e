//! The effective settings as INI text, printed by `check-config`: every section and key with
//! the value the service will use, defaults and inheritance resolved, the password masked.
//! The text reads back as the same configuration, so an operator can start a new file from it.

use std::time::Duration;

use super::{Config, ProcessConfig, ProcessMatch};

/// What `password` shows when one is set; the real one is never printed.
const MASK: &str = "********";

/// The effective configuration as INI text.
pub fn render_effective(config: &Config) -> String {
    let mut page = Page::default();
    page.comment(&format!(
        "Effective configuration of {}",
        config.path.display()
    ));

    database(&mut page, &config.database);
    monitor(&mut page, &config.monitor);

    let logging = &config.logging;
    page.section("logging");
    page.key("log_file", path_or_empty(logging.log_file.as_deref()));
    page.key("level", &logging.level);
    page.key("stderr", logging.stderr);
    page.key("max_log_size", logging.max_log_bytes / 1024);
    page.key("log_files_to_keep", logging.log_files_to_keep);

    let health = &config.health;
    page.section("health");
    page.key("window", seconds(health.window));
    page.key("restart_weight", health.restart_weight);
    page.key("response_weight", health.response_weight);
    page.key("memory_weight", health.memory_weight);
    page.key("availability_weight", health.availability_weight);
    page.key("response_good", health.response_good);
    page.key("response_bad", health.response_bad);
    page.key("memory_good_pct", health.memory_good_pct);
    page.key("memory_bad_pct", health.memory_bad_pct);
    page.key("threshold", health.threshold);
    page.key(
        "on_low_health_command",
        optional(&health.on_low_health_command),
    );

    ha(&mut page, config.ha.as_ref());
    alert(&mut page, config);
    page.section("process.default");
    process(&mut page, &config.default_process);
    for (name, settings) in &config.processes {
        page.section(&format!("process.{name}"));
        page.key("service_name", settings.service_name());
        matcher(&mut page, &settings.matcher);
        process(&mut page, settings);
    }
    page.text
}

/// `[database]`, the password masked.
fn database(page: &mut Page, database: &super::DatabaseConfig) {
    page.section("database");
    page.key("host", &database.host);
    page.key("port", database.port);
    page.key("socket", path_or_empty(database.socket.as_deref()));
    page.key("user", &database.user);
    page.key("password", database.password.as_ref().map_or("", |_| MASK));
    page.key("database", &database.database);
    page.key("connect_timeout", seconds(database.connect_timeout));
    page.key("query_timeout", seconds(database.query_timeout));
    page.key("max_connections", database.max_connections);
    page.key("auto_migrate", database.auto_migrate);
}

fn monitor(page: &mut Page, monitor: &super::MonitorConfig) {
    page.section("monitor");
    page.key("host", &monitor.host);
    page.key("check_interval", seconds(monitor.check_interval));
    page.key("max_restart_failures", monitor.max_restart_failures);
    page.key("circuit_reset_time", seconds(monitor.circuit_reset_time));
    page.key("max_parallel_restarts", monitor.max_parallel_restarts);
    page.key("stats_interval", seconds_or_off(monitor.stats_interval));
    page.key("stats_retention", seconds(monitor.stats_retention));
    page.key(
        "heartbeat_interval",
        seconds_or_off(monitor.heartbeat_interval),
    );
    page.key("auto_alarm", monitor.auto_alarm);
    page.key("dead_after", monitor.dead_after);
    page.key(
        "dead_recheck_interval",
        seconds(monitor.dead_recheck_interval),
    );
    let http_listen = monitor.http_listen.map(|a| a.to_string());
    page.key("http_listen", http_listen.unwrap_or_default());
    page.key("allow_unconfigured", monitor.allow_unconfigured);
    page.key("lock_file", monitor.lock_file.display());
    page.key("shutdown_grace", seconds(monitor.shutdown_grace));
}

/// `[ha]`, when it is on.
fn ha(page: &mut Page, ha: Option<&super::HaConfig>) {
    let Some(ha) = ha else { return };
    page.section("ha");
    page.key("group", &ha.group);
    page.key("priority", ha.priority);
    page.key("lease_ttl", seconds(ha.lease_ttl));
    page.key("renew_interval", seconds(ha.renew_interval));
    page.key("takeover_after", ha.takeover_after);
    page.key("fence_command", optional(&ha.fence_command));
    page.key("promote_command", optional(&ha.promote_command));
    page.key("demote_command", optional(&ha.demote_command));
}

/// `[alert]`, when the file has it or it is on (a webhook from the environment).
fn alert(page: &mut Page, config: &Config) {
    if !config.sections.contains("alert") && !config.alert.is_on() {
        return;
    }
    page.section("alert");
    for (key, value) in super::alert::effective(&config.alert) {
        page.key(key, value);
    }
}

/// The keys shared by `[process.default]` and `[process.NAME]`.
fn process(page: &mut Page, settings: &ProcessConfig) {
    page.key("restart_strategy", settings.restart_strategy);
    page.key(
        "pre_restart_command",
        optional(&settings.pre_restart_command),
    );
    page.key(
        "health_check_command",
        optional(&settings.health_check_command),
    );
    page.key(
        "health_check_timeout",
        seconds(settings.health_check_timeout),
    );
    page.key("restart_delay", seconds(settings.restart_delay));
    page.key("max_attempts", settings.max_attempts);
    page.key("start_command", optional(&settings.start_command));
    page.key("stop_timeout", seconds(settings.stop_timeout));
    page.key("command_timeout", seconds(settings.command_timeout));
    page.key("required", settings.required);
    page.key("depends_on", settings.depends_on.join(", "));
    page.key(
        "restart_with_dependencies",
        settings.restart_with_dependencies,
    );
    page.key("hang_after", seconds_or_off(settings.hang_after));
    page.key(
        "max_memory",
        settings
            .max_memory
            .map(|m| m.to_string())
            .unwrap_or_default(),
    );
    page.key("max_restarts", settings.max_restarts);
    page.key("restart_window", seconds(settings.restart_window));
    page.key(
        "hosts",
        settings.hosts.as_deref().unwrap_or_default().join(", "),
    );
    page.key("active_on", settings.active_on);
}

fn matcher(page: &mut Page, matcher: &ProcessMatch) {
    match matcher {
        // An empty `match` reads back as "by name".
        ProcessMatch::Name => page.key("match", ""),
        ProcessMatch::CommandLine(regex) => page.key("match", regex.as_str()),
        ProcessMatch::Arguments(arguments) => {
            for (index, regex) in arguments {
                page.key(&format!("match.{index}"), regex.as_str());
            }
        }
    }
}

/// Seconds as the config writes them: `300`, `0.5`.
fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

fn seconds_or_off(duration: Option<Duration>) -> f64 {
    duration.map_or(0.0, seconds)
}

fn optional(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

fn path_or_empty(path: Option<&std::path::Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

/// INI text being written.
#[derive(Default)]
struct Page {
    text: String,
}

impl Page {
    fn comment(&mut self, text: &str) {
        self.text.push_str(&format!("; {text}\n"));
    }

    fn section(&mut self, name: &str) {
        self.text.push_str(&format!("\n[{name}]\n"));
    }

    fn key(&mut self, key: &str, value: impl std::fmt::Display) {
        let value = quote_if_needed(&value.to_string());
        let line = match value.as_str() {
            "" => format!("{key} =\n"),
            value => format!("{key} = {value}\n"),
        };
        self.text.push_str(&line);
    }
}

/// rust-ini trims values and strips a leading pair of quotes: a value that starts with a quote
/// or has spaces at either end is wrapped in quotes so that it reads back unchanged.
fn quote_if_needed(value: &str) -> String {
    let needs_quotes = value.starts_with(['"', '\'']) || value.trim() != value;
    match (needs_quotes, value.contains('\'')) {
        (false, _) => value.to_owned(),
        (true, false) => format!("'{value}'"),
        (true, true) => format!("\"{value}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_rust_ini_would_change_are_quoted() {
        assert_eq!(quote_if_needed("pgrep %s"), "pgrep %s");
        assert_eq!(quote_if_needed(""), "");
        assert_eq!(quote_if_needed("\"a\" b"), "'\"a\" b'");
        assert_eq!(quote_if_needed(" padded"), "' padded'");
        assert_eq!(quote_if_needed("'it' is"), "\"'it' is\"");
    }

    #[test]
    fn seconds_print_without_needless_decimals() {
        assert_eq!(seconds(Duration::from_secs(300)).to_string(), "300");
        assert_eq!(seconds(Duration::from_millis(500)).to_string(), "0.5");
        assert_eq!(seconds_or_off(None).to_string(), "0");
    }
}
