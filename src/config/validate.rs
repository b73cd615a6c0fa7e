//! Stage two of reading `config.ini`: the raw sections of `raw` become the typed `Config`.
//!
//! Every problem is collected with its section and key before anything is returned, so that an
//! operator fixes a broken file in one pass instead of one restart per mistake. A missing key
//! takes its default; a key that is present but wrong is a problem, never silently a default.
//! The fixed sections are read by `sections`, the process sections by `process_section`, one key
//! at a time through `fields::Fields`; `dependencies` checks what `depends_on` names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::alert::{WEBHOOK_ENV, read_alert};
use super::dependencies::check_dependency_cycles;
use super::fields::Fields;
use super::ha::{check_ha, read_ha};
use super::problem::{ConfigError, Problem};
use super::process_section::{ProcessKind, builtin_process, read_process};
use super::raw::{self, RawConfig};
use super::sections::{read_database, read_health, read_logging, read_monitor};
use super::{
    Config, DEFAULT_PROCESS_SECTION, FIXED_SECTIONS, MonitorConfig, PROCESS_PREFIX, ProcessConfig,
    Role, is_valid_process_name,
};

/// The typed configuration of `raw`, or every problem of it and of `problems` (found earlier,
/// such as the file's mode).
pub(super) fn build(
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
    let ha = read_section(raw, "ha", problems, read_ha);
    let webhook = std::env::var(WEBHOOK_ENV).ok();
    let alert = read_section(raw, "alert", problems, |f| read_alert(f, webhook));
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
    check_hang_after(raw, &monitor, &default_process, &processes, problems);
    check_ha(
        ha.as_ref(),
        &monitor,
        &default_process,
        &processes,
        problems,
    );
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
        ha,
        role: Role::Primary,
        alert,
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

/// `hang_after` is counted in heartbeats: it needs them on (`heartbeat_interval`), a command to
/// run (`health_check_command`), and at least two of them, so that one slow heartbeat is not a
/// hang. Checked on each process as it will run ([`as_they_run`]).
fn check_hang_after(
    raw: &RawConfig,
    monitor: &MonitorConfig,
    default_process: &ProcessConfig,
    processes: &BTreeMap<String, ProcessConfig>,
    problems: &mut Vec<Problem>,
) {
    let why = |process: &ProcessConfig| {
        let hang_after = process.hang_after?;
        match monitor.heartbeat_interval {
            None => Some("needs heartbeats: heartbeat_interval in [monitor] is 0 (off)".to_owned()),
            Some(beat) if hang_after < beat.saturating_mul(2) => Some(format!(
                "must be at least two heartbeats ({} seconds with heartbeat_interval = {})",
                beat.saturating_mul(2).as_secs_f64(),
                beat.as_secs_f64()
            )),
            Some(_) if process.health_check_command.is_none() => {
                Some("needs a health_check_command: it is what the heartbeat runs".to_owned())
            }
            Some(_) => None,
        }
    };
    let keys = ["hang_after", "health_check_command"];
    let runs = as_they_run(raw, monitor, default_process, processes, &keys, why);
    for (section, why) in runs {
        problems.push(Problem::key(&section, "hang_after", why));
    }
}

/// A check across keys, made on each process as it will run rather than on the
/// `[process.default]` template alone: every named process, and the default itself when
/// processes without a section run with it (`allow_unconfigured`). A problem a named process
/// only inherits (it sets none of `keys`) is reported once, at `[process.default]`, when the
/// default is checked too. Returns the sections with their problems.
fn as_they_run(
    raw: &RawConfig,
    monitor: &MonitorConfig,
    default_process: &ProcessConfig,
    processes: &BTreeMap<String, ProcessConfig>,
    keys: &[&str],
    check: impl Fn(&ProcessConfig) -> Option<String>,
) -> Vec<(String, String)> {
    let default_problem = monitor
        .allow_unconfigured
        .then(|| check(default_process))
        .flatten();
    let mut found = Vec::new();
    if let Some(why) = &default_problem {
        found.push((DEFAULT_PROCESS_SECTION.to_owned(), why.clone()));
    }
    for (name, process) in processes {
        let Some(why) = check(process) else {
            continue;
        };
        let section = format!("{PROCESS_PREFIX}{name}");
        let sets_a_key = raw
            .entries(&section)
            .iter()
            .any(|(key, _)| keys.contains(&key.as_str()));
        if sets_a_key || default_problem.as_ref() != Some(&why) {
            found.push((section, why));
        }
    }
    found
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
