//! Stage two of reading `config.ini`: the raw sections of `raw` become the typed `Config`.
//!
//! Every problem is collected with its section and key before anything is returned, so that an
//! operator fixes a broken file in one pass instead of one restart per mistake. A missing key
//! takes its default; a key that is present but wrong is a problem, never silently a default.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::raw::{self, RawConfig};
use super::values::{
    Span, compile, parse_argument_index, parse_bool, parse_hosts, parse_level, parse_listen,
    parse_names, parse_period_or_off, parse_real, parse_seconds, parse_strategy, parse_unit,
    parse_whole,
};
use super::{
    Config, DatabaseConfig, HealthConfig, LoggingConfig, MonitorConfig, ProcessConfig,
    ProcessMatch, RestartStrategy, Secret, is_valid_process_name,
};

/// Everything wrong with a config file, one problem per line when displayed:
/// `PATH: [section] key: why`, `PATH: [section]: why`, `PATH:LINE: why` or `PATH: why`.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_all(.path, .problems))]
pub struct ConfigError {
    path: PathBuf,
    problems: Vec<Problem>,
}

impl ConfigError {
    fn new(path: &Path, problems: Vec<Problem>) -> ConfigError {
        let path = path.to_owned();
        ConfigError { path, problems }
    }

    /// The file the problems are about.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The problems, one printable line each, in the order they were found.
    pub fn lines(&self) -> Vec<String> {
        self.problems.iter().map(|p| p.render(&self.path)).collect()
    }
}

fn render_all(path: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| p.render(path)).collect();
    lines.join("\n")
}

/// One thing wrong with the file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    place: Place,
    why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    File,
    Line(usize),
    Section(String),
    Key(String, String),
}

impl Problem {
    pub(super) fn file(why: String) -> Problem {
        let place = Place::File;
        Problem { place, why }
    }

    pub(super) fn line(number: usize, why: String) -> Problem {
        let place = Place::Line(number);
        Problem { place, why }
    }

    pub(super) fn section(section: &str, why: String) -> Problem {
        let place = Place::Section(section.to_owned());
        Problem { place, why }
    }

    pub(super) fn key(section: &str, key: &str, why: String) -> Problem {
        let place = Place::Key(section.to_owned(), key.to_owned());
        Problem { place, why }
    }

    pub(super) fn render(&self, path: &Path) -> String {
        let (path, why) = (path.display(), &self.why);
        match &self.place {
            Place::File => format!("{path}: {why}"),
            Place::Line(number) => format!("{path}:{number}: {why}"),
            Place::Section(section) => format!("{path}: [{section}]: {why}"),
            Place::Key(section, key) => format!("{path}: [{section}] {key}: {why}"),
        }
    }
}

/// Reads and validates the file at `path`, refusing it when it holds a password that group or
/// others could read (monit refuses its rc file for the same reason).
pub(super) fn load(path: &Path, password_override: Option<String>) -> Result<Config, ConfigError> {
    let refuse = |problems| ConfigError::new(path, problems);
    let (text, mode) = read(path).map_err(|why| refuse(vec![Problem::file(why)]))?;
    let raw = raw::parse(&text).map_err(refuse)?;
    let mut problems = Vec::new();
    let holds_password = raw
        .get("database", "password")
        .is_some_and(|password| !password.is_empty());
    if holds_password && mode & 0o077 != 0 {
        problems.push(Problem::file(format!(
            "holds a password but group or others may access it (mode {:04o}): run chmod 600 {}",
            mode & 0o7777,
            path.display()
        )));
    }
    build(path, &raw, password_override, problems)
}

/// Validates INI text as if read from `path`, without looking at the file itself.
pub(super) fn from_text(
    path: &Path,
    text: &str,
    password_override: Option<String>,
) -> Result<Config, ConfigError> {
    let raw = raw::parse(text).map_err(|problems| ConfigError::new(path, problems))?;
    build(path, &raw, password_override, Vec::new())
}

/// The text and permission bits of the file, both from one open so they describe the same file.
fn read(path: &Path) -> Result<(String, u32), String> {
    let cannot = |error: std::io::Error| format!("cannot read: {error}");
    let mut file = File::open(path).map_err(cannot)?;
    let mode = file.metadata().map_err(cannot)?.permissions().mode();
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(cannot)?;
    Ok((text, mode))
}

const FIXED_SECTIONS: [&str; 4] = ["database", "monitor", "logging", "health"];
const DEFAULT_PROCESS_SECTION: &str = "process.default";
const PROCESS_PREFIX: &str = "process.";

fn build(
    path: &Path,
    raw: &RawConfig,
    password_override: Option<String>,
    mut problems: Vec<Problem>,
) -> Result<Config, ConfigError> {
    problems.extend(raw.problems.iter().cloned());
    // Every key has a default, so an empty file would "validate" into a monitor of nothing on
    // localhost: what a truncated or not yet written file looks like, never what was meant.
    if raw.sections.is_empty() && raw.problems.is_empty() {
        let why = "has no [section] at all: an empty file is not a configuration (start from \
                   the reference config.ini)";
        problems.push(Problem::file(why.to_owned()));
    }
    let named = process_sections(raw, &mut problems);
    let known: BTreeSet<&str> = named.iter().map(|(name, _)| *name).collect();
    let problems = &mut problems;
    let database = read_section(raw, "database", problems, |f| {
        read_database(f, password_override)
    });
    let monitor = read_section(raw, "monitor", problems, read_monitor);
    let logging = read_section(raw, "logging", problems, read_logging);
    let health = read_section(raw, "health", problems, read_health);
    let builtin = builtin_process();
    let default_process = read_section(raw, DEFAULT_PROCESS_SECTION, problems, |f| {
        read_process(f, &builtin, ProcessKind::Default, &known)
    });
    let mut processes = BTreeMap::new();
    for (name, section) in named {
        let mut fields = Fields::new(&section.name, &section.entries, problems);
        let kind = ProcessKind::Named(name);
        let process = read_process(&mut fields, &default_process, kind, &known);
        fields.finish();
        processes.insert(name.to_owned(), process);
    }
    check_dependency_cycles(&processes, problems);
    if !problems.is_empty() {
        return Err(ConfigError::new(path, std::mem::take(problems)));
    }
    Ok(Config {
        path: path.to_owned(),
        sections: raw.sections.iter().map(|s| s.name.clone()).collect(),
        database,
        monitor,
        logging,
        health,
        default_process,
        processes,
    })
}

/// The `[process.NAME]` sections with a valid NAME; every other unexpected section is a problem.
fn process_sections<'a>(
    raw: &'a RawConfig,
    problems: &mut Vec<Problem>,
) -> Vec<(&'a str, &'a raw::RawSection)> {
    let mut named = Vec::new();
    for section in &raw.sections {
        let name = section.name.as_str();
        if FIXED_SECTIONS.contains(&name) || name == DEFAULT_PROCESS_SECTION {
            continue;
        }
        match name.strip_prefix(PROCESS_PREFIX) {
            Some(process) if is_valid_process_name(process) => named.push((process, section)),
            Some(process) => problems.push(Problem::section(
                name,
                format!(
                    "\"{process}\" is not a valid process name (letters, digits and @._:- only, \
                     at most 100, not starting with -)"
                ),
            )),
            None => problems.push(Problem::section(name, "unknown section".into())),
        }
    }
    named
}

fn read_section<T>(
    raw: &RawConfig,
    name: &str,
    problems: &mut Vec<Problem>,
    read: impl FnOnce(&mut Fields<'_>) -> T,
) -> T {
    let mut fields = Fields::new(name, raw.entries(name), problems);
    let value = read(&mut fields);
    fields.finish();
    value
}

fn seconds(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn read_database(fields: &mut Fields<'_>, password_override: Option<String>) -> DatabaseConfig {
    let in_file = fields.optional("password", &None);
    // An empty MONITOR_DB_PASSWORD counts as unset, as `${VAR:-...}` would in a shell script.
    let password = password_override.filter(|p| !p.is_empty()).or(in_file);
    DatabaseConfig {
        host: fields.text("host", "localhost"),
        port: fields.whole("port", 3306, 1, Some(u16::MAX)),
        socket: fields.optional("socket", &None).map(PathBuf::from),
        user: fields.text("user", "root"),
        password: password.map(Secret::new),
        database: fields.text("database", "v_process_monitor"),
        connect_timeout: fields.seconds("connect_timeout", seconds(5), Span::Positive),
        query_timeout: fields.seconds("query_timeout", seconds(10), Span::Positive),
        max_connections: fields.whole("max_connections", 4, 1, Some(100)),
        auto_migrate: fields.boolean("auto_migrate", true),
    }
}

/// The shortest poll, sample and heartbeat period: each wakes the service to do real work (a
/// query, a scan of `/proc`, a command per process), ten times a second at most.
const SHORTEST_PERIOD: Duration = Duration::from_millis(100);
/// The quick re-checks after an exit scan `/proc` `dead_after` times: a millisecond apart at
/// the least, so that a large `dead_after` cannot turn them into a busy loop.
const SHORTEST_RECHECK: Duration = Duration::from_millis(1);

fn read_monitor(fields: &mut Fields<'_>) -> MonitorConfig {
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

fn read_logging(fields: &mut Fields<'_>) -> LoggingConfig {
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

fn read_health(fields: &mut Fields<'_>) -> HealthConfig {
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

/// The settings of a process before `[process.default]` changes any of them.
fn builtin_process() -> ProcessConfig {
    ProcessConfig {
        name: "default".to_owned(),
        restart_strategy: RestartStrategy::Auto,
        pre_restart_command: None,
        health_check_command: Some("pgrep %s".to_owned()),
        health_check_timeout: seconds(5),
        restart_delay: seconds(2),
        max_attempts: 2,
        service_name: None,
        start_command: None,
        stop_timeout: seconds(10),
        command_timeout: seconds(30),
        matcher: ProcessMatch::Name,
        required: true,
        depends_on: Vec::new(),
        hosts: None,
    }
}

#[derive(Debug, Clone, Copy)]
enum ProcessKind<'a> {
    /// `[process.default]`: the base of every process, so nothing that names one process.
    Default,
    Named(&'a str),
}

/// One process section over `base`: a key the section leaves out keeps `base`'s value.
fn read_process(
    fields: &mut Fields<'_>,
    base: &ProcessConfig,
    kind: ProcessKind<'_>,
    known: &BTreeSet<&str>,
) -> ProcessConfig {
    let (name, service_name, matcher) = match kind {
        ProcessKind::Default => {
            for key in ["service_name", "match"] {
                fields.forbid(key);
            }
            for (key, _) in fields.take_prefixed("match.") {
                fields.forbid_taken(key);
            }
            ("default", None, ProcessMatch::Name)
        }
        ProcessKind::Named(name) => {
            // `None` already means the process name: one spelling per meaning.
            let service_name = fields
                .value("service_name", None, parse_unit)
                .filter(|unit| unit != name);
            (name, service_name, read_matcher(fields))
        }
    };
    let process = ProcessConfig {
        name: name.to_owned(),
        restart_strategy: fields.value("restart_strategy", base.restart_strategy, parse_strategy),
        pre_restart_command: fields.optional("pre_restart_command", &base.pre_restart_command),
        health_check_command: fields.optional("health_check_command", &base.health_check_command),
        health_check_timeout: fields.seconds(
            "health_check_timeout",
            base.health_check_timeout,
            Span::Positive,
        ),
        restart_delay: fields.seconds("restart_delay", base.restart_delay, Span::Any),
        max_attempts: fields.whole("max_attempts", base.max_attempts, 1, None),
        service_name,
        start_command: fields.optional("start_command", &base.start_command),
        stop_timeout: fields.seconds("stop_timeout", base.stop_timeout, Span::Any),
        command_timeout: fields.seconds("command_timeout", base.command_timeout, Span::Positive),
        matcher,
        required: fields.boolean("required", base.required),
        depends_on: fields.value("depends_on", base.depends_on.clone(), parse_names),
        hosts: fields.value("hosts", base.hosts.clone(), parse_hosts),
    };
    check_start_command(fields, &process, kind);
    check_dependencies_exist(fields, &process, known);
    process
}

/// Names in `depends_on` must have a section. Inherited names were checked in
/// `[process.default]`, so only a section's own `depends_on` is checked here.
fn check_dependencies_exist(
    fields: &mut Fields<'_>,
    process: &ProcessConfig,
    known: &BTreeSet<&str>,
) {
    if !fields.has("depends_on") {
        return;
    }
    for dependency in &process.depends_on {
        if !known.contains(dependency.as_str()) {
            let why =
                format!("\"{dependency}\" is not a configured process (no [process.{dependency}])");
            fields.fail("depends_on", why);
        }
    }
}

/// The `process` strategy has nothing to start without `start_command`. A named section that
/// sets neither key only inherits the mistake, which `[process.default]` already reports.
fn check_start_command(fields: &mut Fields<'_>, process: &ProcessConfig, kind: ProcessKind<'_>) {
    let sets_either = fields.has("restart_strategy") || fields.has("start_command");
    let reported_here = matches!(kind, ProcessKind::Default) || sets_either;
    if process.restart_strategy == RestartStrategy::Process
        && process.start_command.is_none()
        && reported_here
    {
        fields.fail_section("restart_strategy = process needs a start_command".into());
    }
}

/// `match` (the whole command line) or `match.N` (argument N), never both.
fn read_matcher(fields: &mut Fields<'_>) -> ProcessMatch {
    let whole = fields.take("match");
    let arguments = fields.take_prefixed("match.");
    if whole.is_some() && !arguments.is_empty() {
        fields.fail_section("match and match.N cannot be used together".into());
        return ProcessMatch::Name;
    }
    if let Some(pattern) = whole.filter(|pattern| !pattern.is_empty()) {
        return match compile(pattern) {
            Ok(regex) => ProcessMatch::CommandLine(regex),
            Err(why) => {
                fields.fail("match", why);
                ProcessMatch::Name
            }
        };
    }
    if arguments.is_empty() {
        return ProcessMatch::Name;
    }
    let mut compiled = Vec::new();
    for (key, pattern) in arguments {
        match parse_argument_index(key).and_then(|index| Ok((index, compile(pattern)?))) {
            Ok(matcher) => compiled.push(matcher),
            Err(why) => fields.fail(key, why),
        }
    }
    compiled.sort_by_key(|(index, _)| *index);
    ProcessMatch::Arguments(compiled)
}

/// Reports each process whose `depends_on` leads back to itself, with the way round.
fn check_dependency_cycles(
    processes: &BTreeMap<String, ProcessConfig>,
    problems: &mut Vec<Problem>,
) {
    for name in processes.keys() {
        if let Some(cycle) = dependency_cycle(processes, name) {
            problems.push(Problem::key(
                &format!("{PROCESS_PREFIX}{name}"),
                "depends_on",
                format!("depends on itself: {name} -> {}", cycle.join(" -> ")),
            ));
        }
    }
}

/// The dependencies leading from `start` back to `start`, if any.
fn dependency_cycle<'a>(
    processes: &'a BTreeMap<String, ProcessConfig>,
    start: &str,
) -> Option<Vec<&'a str>> {
    let mut path = Vec::new();
    let mut seen = BTreeSet::new();
    walk_dependencies(processes, start, start, &mut path, &mut seen).then_some(path)
}

fn walk_dependencies<'a>(
    processes: &'a BTreeMap<String, ProcessConfig>,
    start: &str,
    current: &str,
    path: &mut Vec<&'a str>,
    seen: &mut BTreeSet<&'a str>,
) -> bool {
    let Some(process) = processes.get(current) else {
        return false;
    };
    for next in &process.depends_on {
        path.push(next);
        if next == start
            || (seen.insert(next) && walk_dependencies(processes, start, next, path, seen))
        {
            return true;
        }
        path.pop();
    }
    false
}

/// The keys of one section, read one at a time; whatever is left unread at `finish` is unknown.
struct Fields<'a> {
    section: &'a str,
    entries: &'a [(String, String)],
    used: Vec<bool>,
    problems: &'a mut Vec<Problem>,
}

impl<'a> Fields<'a> {
    fn new(
        section: &'a str,
        entries: &'a [(String, String)],
        problems: &'a mut Vec<Problem>,
    ) -> Fields<'a> {
        let used = vec![false; entries.len()];
        Fields {
            section,
            entries,
            used,
            problems,
        }
    }

    fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    fn take(&mut self, key: &str) -> Option<&'a str> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        self.used[index] = true;
        Some(self.entries[index].1.as_str())
    }

    /// Every `prefixN = value`, in file order.
    fn take_prefixed(&mut self, prefix: &str) -> Vec<(&'a str, &'a str)> {
        let mut taken = Vec::new();
        for (index, (key, value)) in self.entries.iter().enumerate() {
            if key.starts_with(prefix) {
                self.used[index] = true;
                taken.push((key.as_str(), value.as_str()));
            }
        }
        taken
    }

    fn fail(&mut self, key: &str, why: String) {
        self.problems.push(Problem::key(self.section, key, why));
    }

    fn fail_section(&mut self, why: String) {
        self.problems.push(Problem::section(self.section, why));
    }

    /// A key that names a single process has no place in `[process.default]`.
    fn forbid(&mut self, key: &str) {
        if self.take(key).is_some() {
            self.forbid_taken(key);
        }
    }

    fn forbid_taken(&mut self, key: &str) {
        let why = "only makes sense in a [process.NAME] section, for one process";
        self.fail(key, why.to_owned());
    }

    /// The parsed value of `key`, or `default` when it is missing or wrong (wrong is reported).
    fn value<T>(
        &mut self,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        let Some(text) = self.take(key) else {
            return default;
        };
        parse(text).unwrap_or_else(|why| {
            // Other INI dialects allow trailing comments; here they are part of the value.
            let hint = if text.contains(" ;") || text.contains(" #") {
                " (a ; or # after the = belongs to the value: comments go on their own line)"
            } else {
                ""
            };
            self.fail(key, format!("{why}{hint}"));
            default
        })
    }

    /// A setting that cannot be left empty.
    fn text(&mut self, key: &str, default: &str) -> String {
        self.value(key, default.to_owned(), |text| match text {
            "" => Err(format!("must not be empty (the default is {default})")),
            text => Ok(text.to_owned()),
        })
    }

    /// A setting where an empty value means none.
    fn optional(&mut self, key: &str, default: &Option<String>) -> Option<String> {
        self.value(key, default.clone(), |text| {
            Ok((!text.is_empty()).then(|| text.to_owned()))
        })
    }

    fn boolean(&mut self, key: &str, default: bool) -> bool {
        self.value(key, default, parse_bool)
    }

    fn whole<T>(&mut self, key: &str, default: T, min: T, max: Option<T>) -> T
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        self.value(key, default, |text| parse_whole(text, min, max))
    }

    fn real(&mut self, key: &str, default: f64, min: f64, max: Option<f64>) -> f64 {
        self.value(key, default, |text| parse_real(text, min, max))
    }

    fn seconds(&mut self, key: &str, default: Duration, span: Span) -> Duration {
        self.value(key, default, |text| parse_seconds(text, span))
    }

    /// A period where 0 turns the feature off.
    fn seconds_or_off(&mut self, key: &str, default: Option<Duration>) -> Option<Duration> {
        self.value(key, default, |text| {
            parse_period_or_off(text, SHORTEST_PERIOD)
        })
    }

    fn finish(self) {
        for ((key, _), used) in self.entries.iter().zip(&self.used) {
            if !used {
                let problem = Problem::key(self.section, key, "unknown key".into());
                self.problems.push(problem);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_render_as_one_line_with_file_section_and_key() {
        let path = Path::new("/etc/m.ini");
        let rendered = [
            Problem::file("whole file".into()),
            Problem::line(7, "bad line".into()),
            Problem::section("health", "bad section".into()),
            Problem::key("monitor", "dead_after", "bad key".into()),
        ]
        .map(|problem| problem.render(path));
        assert_eq!(
            rendered,
            [
                "/etc/m.ini: whole file",
                "/etc/m.ini:7: bad line",
                "/etc/m.ini: [health]: bad section",
                "/etc/m.ini: [monitor] dead_after: bad key",
            ]
        );
    }

    fn depending(pairs: &[(&str, &[&str])]) -> BTreeMap<String, ProcessConfig> {
        pairs
            .iter()
            .map(|(name, deps)| {
                let mut process = builtin_process().named(name);
                process.depends_on = deps.iter().map(|d| (*d).to_owned()).collect();
                ((*name).to_owned(), process)
            })
            .collect()
    }

    #[test]
    fn dependency_cycles_are_found_with_their_way_round() {
        let processes = depending(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
        assert_eq!(dependency_cycle(&processes, "a"), Some(vec!["b", "c", "a"]));
        assert_eq!(dependency_cycle(&processes, "d"), None);
        let itself = depending(&[("a", &["a"])]);
        assert_eq!(dependency_cycle(&itself, "a"), Some(vec!["a"]));
        let chain = depending(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
        assert_eq!(dependency_cycle(&chain, "a"), None);
    }
}
