//! `[process.default]` and `[process.NAME]`: one process's settings over a base (the built-in
//! defaults, then the default section), how it is matched in the process table, and the checks
//! that span several of its keys.

use std::collections::BTreeSet;
use std::time::Duration;

use super::dependencies::check_dependencies_exist;
use super::fields::Fields;
use super::ha::parse_active_on;
use super::values::{
    Span, compile, parse_argument_index, parse_hosts, parse_memory, parse_names, parse_strategy,
    parse_unit,
};
use super::{ActiveOn, ProcessConfig, ProcessMatch, RestartStrategy};

/// The settings of a process before `[process.default]` changes any of them.
pub(super) fn builtin_process() -> ProcessConfig {
    ProcessConfig {
        name: "default".to_owned(),
        restart_strategy: RestartStrategy::Auto,
        pre_restart_command: None,
        health_check_command: Some("pgrep %s".to_owned()),
        health_check_timeout: Duration::from_secs(5),
        restart_delay: Duration::from_secs(2),
        max_attempts: 2,
        service_name: None,
        start_command: None,
        stop_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(30),
        matcher: ProcessMatch::Name,
        required: true,
        depends_on: Vec::new(),
        restart_with_dependencies: false,
        hang_after: None,
        max_memory: None,
        max_restarts: 5,
        restart_window: Duration::from_secs(60),
        hosts: None,
        active_on: ActiveOn::Any,
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum ProcessKind<'a> {
    /// `[process.default]`: the base of every process, so nothing that names one process.
    Default,
    Named(&'a str),
}

/// One process section over `base`: a key the section leaves out keeps `base`'s value.
pub(super) fn read_process(
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
        restart_with_dependencies: fields
            .boolean("restart_with_dependencies", base.restart_with_dependencies),
        hang_after: fields.seconds_or_off("hang_after", base.hang_after),
        max_memory: fields.value("max_memory", base.max_memory, parse_memory),
        max_restarts: fields.whole("max_restarts", base.max_restarts, 0, None),
        restart_window: fields.seconds("restart_window", base.restart_window, Span::Positive),
        hosts: fields.value("hosts", base.hosts.clone(), parse_hosts),
        active_on: fields.value("active_on", base.active_on, parse_active_on),
    };
    check_dependencies_exist(fields, &process, known);
    process
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
