//! `config.ini` through the public API: what loads, what is refused and how it is reported,
//! the file-permission rule for passwords, and the effective settings printed back.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use monitor_service::config::{
    Config, MemoryLimit, ProcessMatch, RestartStrategy, render_effective,
};

const PATH: &str = "/etc/monitor_service/config.ini";

/// `[monitor] host` set, so that nothing depends on the machine running the tests.
fn with_host(text: &str) -> String {
    const HOST: &str = "[monitor]\nhost = test-host\n";
    if text.contains("[monitor]\n") {
        text.replacen("[monitor]\n", HOST, 1)
    } else {
        format!("{HOST}{text}")
    }
}

fn load(text: &str) -> Config {
    Config::from_ini_text(Path::new(PATH), &with_host(text), None).expect("a valid config")
}

fn problems(text: &str) -> Vec<String> {
    Config::from_ini_text(Path::new(PATH), &with_host(text), None)
        .expect_err("an invalid config")
        .lines()
}

fn problem(text: &str) -> String {
    let mut problems = problems(text);
    assert_eq!(problems.len(), 1, "exactly one problem: {problems:#?}");
    problems.remove(0)
}

fn matcher_patterns(matcher: &ProcessMatch) -> Vec<(usize, String)> {
    match matcher {
        ProcessMatch::Name => Vec::new(),
        ProcessMatch::CommandLine(regex) => vec![(usize::MAX, regex.as_str().to_owned())],
        ProcessMatch::Arguments(arguments) => arguments
            .iter()
            .map(|(index, regex)| (*index, regex.as_str().to_owned()))
            .collect(),
    }
}

#[test]
fn an_empty_file_is_refused_with_one_line_naming_it() {
    for text in ["", "\n  \n", "; only a comment\n# and another\n"] {
        let error = Config::from_ini_text(Path::new(PATH), text, None).expect_err("refused");
        assert_eq!(
            error.lines(),
            [format!(
                "{PATH}: has no [section] at all: an empty file is not a configuration \
                 (start from the reference config.ini)"
            )],
            "{text:?}"
        );
    }
}

#[test]
fn a_section_without_keys_gives_the_documented_defaults() {
    let config = Config::from_ini_text(Path::new(PATH), "[database]\n", None).expect("valid");
    assert_eq!(config.database.host, "localhost");
    assert_eq!(config.database.port, 3306);
    assert_eq!(config.database.socket, None);
    assert_eq!(config.database.user, "root");
    assert!(config.database.password.is_none());
    assert_eq!(config.database.database, "v_process_monitor");
    assert_eq!(config.database.max_connections, 4);
    assert!(config.database.auto_migrate);
    assert!(!config.monitor.host.is_empty(), "the system hostname");
    assert_eq!(config.monitor.check_interval, Duration::from_secs(300));
    assert_eq!(config.monitor.circuit_reset_time, Duration::from_secs(1800));
    assert_eq!(config.monitor.stats_interval, Some(Duration::from_secs(10)));
    assert_eq!(config.monitor.http_listen, None);
    assert_eq!(
        config.monitor.lock_file,
        Path::new("/run/monitor_service.lock")
    );
    let log_file = config.logging.log_file.as_deref();
    assert_eq!(log_file, Some(Path::new("/var/log/monitor_service.log")));
    assert_eq!(config.logging.level, "info");
    assert_eq!(config.logging.max_log_bytes, 5120 * 1024);
    assert_eq!(config.health.threshold, 0.5);
    let default = &config.default_process;
    assert_eq!(default.restart_strategy, RestartStrategy::Auto);
    assert_eq!(default.health_check_command.as_deref(), Some("pgrep %s"));
    assert_eq!(default.restart_delay, Duration::from_secs(2));
    assert_eq!(default.max_attempts, 2);
    assert!(matches!(default.matcher, ProcessMatch::Name));
    assert!(config.processes.is_empty());
}

#[test]
fn unknown_sections_are_refused() {
    assert_eq!(
        problem("[databse]\nhost = x\n"),
        format!("{PATH}: [databse]: unknown section")
    );
}

#[test]
fn unknown_keys_are_refused() {
    assert_eq!(
        problem("[database]\nhostname = x\n"),
        format!("{PATH}: [database] hostname: unknown key")
    );
}

#[test]
fn a_number_that_is_not_a_number_is_quoted_in_the_message() {
    assert_eq!(
        problem("[database]\nport = 33o6\n"),
        format!("{PATH}: [database] port: \"33o6\" is not a whole number")
    );
    assert_eq!(
        problem("[health]\nthreshold = half\n"),
        format!("{PATH}: [health] threshold: \"half\" is not a number")
    );
    assert_eq!(
        problem("[process.default]\nrestart_delay = 5s\n"),
        format!("{PATH}: [process.default] restart_delay: \"5s\" is not a number of seconds")
    );
}

#[test]
fn a_trailing_comment_in_a_number_is_explained() {
    assert_eq!(
        problem("[monitor]\ncheck_interval = 60 ; one minute\n"),
        format!(
            "{PATH}: [monitor] check_interval: \"60 ; one minute\" is not a number of seconds \
             (a ; or # after the = belongs to the value: comments go on their own line)"
        )
    );
}

#[test]
fn negative_durations_are_refused() {
    assert_eq!(
        problem("[monitor]\ncircuit_reset_time = -1\n"),
        format!("{PATH}: [monitor] circuit_reset_time: must be 0 or more seconds, not -1")
    );
}

#[test]
fn durations_that_must_be_positive_refuse_zero_and_others_take_fractions() {
    assert_eq!(
        problem("[monitor]\ncheck_interval = 0\n"),
        format!("{PATH}: [monitor] check_interval: must be at least 0.1 seconds, not 0")
    );
    assert_eq!(
        problem("[process.default]\nhealth_check_timeout = 0\n"),
        format!("{PATH}: [process.default] health_check_timeout: must be more than 0 seconds")
    );
    let config = load("[process.default]\nrestart_delay = 0.25\nstop_timeout = 0\n");
    let default = &config.default_process;
    assert_eq!(default.restart_delay, Duration::from_millis(250));
    assert_eq!(default.stop_timeout, Duration::ZERO);
}

#[test]
fn durations_longer_than_a_year_are_refused_in_every_section() {
    let found = problems(
        "[database]\nquery_timeout = 1e19\n\
         [monitor]\ncheck_interval = 1e19\ncircuit_reset_time = 9.3e18\nstats_interval = 4e7\n\
         [health]\nwindow = 31536001\n\
         [process.default]\nhealth_check_timeout = 1e19\nstop_timeout = 1e19\n",
    );
    let year = "must be at most 31536000 seconds (a year)";
    assert_eq!(
        found,
        [
            format!("{PATH}: [database] query_timeout: {year}, not 1e19"),
            format!("{PATH}: [monitor] check_interval: {year}, not 1e19"),
            format!("{PATH}: [monitor] circuit_reset_time: {year}, not 9.3e18"),
            format!("{PATH}: [monitor] stats_interval: {year}, not 4e7"),
            format!("{PATH}: [health] window: {year}, not 31536001"),
            format!("{PATH}: [process.default] health_check_timeout: {year}, not 1e19"),
            format!("{PATH}: [process.default] stop_timeout: {year}, not 1e19"),
        ]
    );
    let config = load("[monitor]\ncircuit_reset_time = 31536000\n");
    assert_eq!(
        config.monitor.circuit_reset_time,
        Duration::from_secs(31_536_000)
    );
}

#[test]
fn periods_that_wake_the_service_have_a_floor() {
    let found = problems(
        "[monitor]\ncheck_interval = 0.0000001\nstats_interval = 0.01\n\
         heartbeat_interval = 0.05\ndead_recheck_interval = 0.0001\n",
    );
    assert_eq!(
        found,
        [
            format!(
                "{PATH}: [monitor] check_interval: must be at least 0.1 seconds, not 0.0000001"
            ),
            format!(
                "{PATH}: [monitor] stats_interval: must be 0 (off) or at least 0.1 seconds, not 0.01"
            ),
            format!(
                "{PATH}: [monitor] heartbeat_interval: must be 0 (off) or at least 0.1 seconds, \
                 not 0.05"
            ),
            format!(
                "{PATH}: [monitor] dead_recheck_interval: must be at least 0.001 seconds, not 0.0001"
            ),
        ]
    );
    let config = load("[monitor]\ncheck_interval = 0.1\ndead_recheck_interval = 0.001\n");
    assert_eq!(config.monitor.check_interval, Duration::from_millis(100));
    assert_eq!(
        config.monitor.dead_recheck_interval,
        Duration::from_millis(1)
    );
}

#[test]
fn values_out_of_range_are_refused() {
    let found = problems(
        "[database]\nmax_connections = 101\nport = 0\n\
         [health]\nthreshold = 1.5\nmemory_bad_pct = 101\n\
         [process.default]\nmax_attempts = 0\n",
    );
    assert_eq!(
        found,
        [
            format!("{PATH}: [database] port: must be between 1 and 65535, not 0"),
            format!("{PATH}: [database] max_connections: must be between 1 and 100, not 101"),
            format!("{PATH}: [health] memory_bad_pct: must be between 0 and 100, not 101"),
            format!("{PATH}: [health] threshold: must be between 0 and 1, not 1.5"),
            format!("{PATH}: [process.default] max_attempts: must be at least 1, not 0"),
        ]
    );
}

#[test]
fn health_bounds_and_weights_must_make_sense_together() {
    let found = problems(
        "[health]\nrestart_weight = 0\nresponse_weight = 0\nmemory_weight = 0\n\
         availability_weight = 0\nresponse_good = 5\nmemory_good_pct = 20\n",
    );
    assert_eq!(
        found,
        [
            format!("{PATH}: [health]: at least one of the weights must be above 0"),
            format!("{PATH}: [health] response_good: must be less than response_bad (5)"),
            format!("{PATH}: [health] memory_good_pct: must be less than memory_bad_pct (10)"),
        ]
    );
}

#[test]
fn booleans_other_than_the_usual_words_are_refused() {
    assert_eq!(
        problem("[monitor]\nauto_alarm = sometimes\n"),
        format!("{PATH}: [monitor] auto_alarm: \"sometimes\" is not a boolean (true or false)")
    );
    let config = load("[monitor]\nauto_alarm = YES\nallow_unconfigured = off\n");
    assert!(config.monitor.auto_alarm);
    assert!(!config.monitor.allow_unconfigured);
}

#[test]
fn bad_regexes_are_refused_naming_their_key() {
    let found = problems("[process.a]\nmatch = (unclosed\n[process.b]\nmatch.1 = [z-a]\n");
    assert_eq!(
        found,
        [
            format!("{PATH}: [process.a] match: invalid regex: unclosed group"),
            format!(
                "{PATH}: [process.b] match.1: invalid regex: invalid character class range, \
                 the start must be <= the end"
            ),
        ]
    );
}

#[test]
fn match_n_needs_an_argument_number() {
    assert_eq!(
        problem("[process.a]\nmatch.first = x\n"),
        format!(
            "{PATH}: [process.a] match.first: N in match.N must be an argument number: 0, 1, 2..."
        )
    );
}

#[test]
fn an_unknown_restart_strategy_is_refused() {
    assert_eq!(
        problem("[process.a]\nrestart_strategy = reboot\n"),
        format!(
            "{PATH}: [process.a] restart_strategy: \"reboot\" is not a restart strategy \
             (service, process or auto)"
        )
    );
}

#[test]
fn a_bad_process_name_in_a_section_header_is_refused() {
    assert_eq!(
        problem("[process.$(id)]\nrestart_delay = 1\n"),
        format!(
            "{PATH}: [process.$(id)]: \"$(id)\" is not a valid process name (letters, digits \
             and @._:- only, at most 100, not starting with -)"
        )
    );
    assert_eq!(
        problem("[process.-rf]\n"),
        format!(
            "{PATH}: [process.-rf]: \"-rf\" is not a valid process name (letters, digits \
             and @._:- only, at most 100, not starting with -)"
        )
    );
}

#[test]
fn match_and_match_n_cannot_be_used_together() {
    assert_eq!(
        problem("[process.a]\nmatch = x\nmatch.0 = y\n"),
        format!("{PATH}: [process.a]: match and match.N cannot be used together")
    );
}

#[test]
fn keys_for_one_process_are_refused_in_the_default_section() {
    let found = problems("[process.default]\nmatch = x\nmatch.1 = y\nservice_name = z\n");
    let why = "only makes sense in a [process.NAME] section, for one process";
    assert_eq!(
        found,
        [
            format!("{PATH}: [process.default] service_name: {why}"),
            format!("{PATH}: [process.default] match: {why}"),
            format!("{PATH}: [process.default] match.1: {why}"),
        ]
    );
}

#[test]
fn the_process_strategy_without_start_command_respawns_as_found() {
    // As a new user writes it: the strategy once in the default section, a start command in
    // the sections that have one, none in the others.
    let config = load(
        "[process.default]\nrestart_strategy = process\n\n\
         [process.worker]\nstart_command = /opt/x/bin/worker --queue q\n\n[process.found]\n",
    );
    assert_eq!(
        config.default_process.restart_strategy,
        RestartStrategy::Process
    );
    assert_eq!(
        config.processes["found"].restart_strategy,
        RestartStrategy::Process
    );
    assert_eq!(config.processes["found"].start_command, None);
    let config = load("[process.worker]\nrestart_strategy = process\n");
    assert_eq!(config.processes["worker"].start_command, None);
}

#[test]
fn checks_across_keys_are_made_on_each_process_as_it_runs() {
    // The default template lacks a health check, but every process that runs has one, and no
    // process runs with the default alone: valid.
    let sections = "[process.default]\nhang_after = 30\nhealth_check_command =\n\n\
                    [process.a]\nhealth_check_command = test -e /tmp/a\n\n\
                    [process.b]\nhealth_check_command = test -e /tmp/b\n";
    let config = load(&format!(
        "[monitor]\nallow_unconfigured = false\n{sections}"
    ));
    assert_eq!(
        config.processes["b"].hang_after,
        Some(Duration::from_secs(30))
    );
    // With allow_unconfigured, processes without a section run with the default: refused,
    // once, where the mistake is.
    let found = problem(sections);
    assert!(
        found.starts_with(&format!(
            "{PATH}: [process.default] hang_after: needs a health_check"
        )),
        "{found}"
    );
    // A section that inherits the mistake without the default running reports it itself.
    let text = "[monitor]\nallow_unconfigured = false\n[process.default]\nhang_after = 30\n\
                health_check_command =\n\n[process.a]\n";
    let found = problem(text);
    assert!(
        found.starts_with(&format!("{PATH}: [process.a] hang_after: needs a")),
        "{found}"
    );
}

#[test]
fn depends_on_must_name_configured_processes() {
    let found = problems("[process.app]\ndepends_on = db, cache\n[process.db]\n");
    assert_eq!(
        found,
        [format!(
            "{PATH}: [process.app] depends_on: \"cache\" is not a configured process \
             (no [process.cache])"
        )]
    );
    let config = load("[process.app]\ndepends_on = db cache\n[process.db]\n[process.cache]\n");
    assert_eq!(config.processes["app"].depends_on, ["db", "cache"]);
}

#[test]
fn dependency_cycles_are_refused() {
    let found = problems("[process.a]\ndepends_on = b\n[process.b]\ndepends_on = a\n");
    assert_eq!(
        found,
        [
            format!("{PATH}: [process.a] depends_on: depends on itself: a -> b -> a"),
            format!("{PATH}: [process.b] depends_on: depends on itself: b -> a -> b"),
        ]
    );
}

#[test]
fn a_key_set_twice_is_refused() {
    assert_eq!(
        problem("[database]\nuser = a\nuser = b\n"),
        format!("{PATH}: [database] user: is set more than once")
    );
}

#[test]
fn keys_before_any_section_and_unreadable_lines_are_refused() {
    let text = "check_interval = 5\n[monitor]\nhost = h\n";
    let error = Config::from_ini_text(Path::new(PATH), text, None).expect_err("refused");
    let expected = format!("{PATH}: `check_interval` is set before any [section]");
    assert_eq!(error.lines(), [expected]);
    let text = "[monitor]\nhost = h\ncheck_interval 5\n";
    let error = Config::from_ini_text(Path::new(PATH), text, None).expect_err("refused");
    let expected =
        format!("{PATH}:3: expected `key = value`, a [section] or a comment (`;` or `#` first)");
    assert_eq!(error.lines(), [expected]);
}

#[test]
fn every_problem_is_reported_at_once_with_its_section_and_key() {
    let text = "[database]\nport = many\ncolour = blue\n\
                [monitor]\ndead_after = 0\nauto_alarm = perhaps\n\
                [extra]\n\
                [process.web]\nrestart_strategy = fast\nmatch = (\n";
    let error = Config::from_ini_text(Path::new(PATH), text, None).expect_err("refused");
    let expected = [
        format!("{PATH}: [extra]: unknown section"),
        format!("{PATH}: [database] port: \"many\" is not a whole number"),
        format!("{PATH}: [database] colour: unknown key"),
        format!("{PATH}: [monitor] auto_alarm: \"perhaps\" is not a boolean (true or false)"),
        format!("{PATH}: [monitor] dead_after: must be at least 1, not 0"),
        format!("{PATH}: [process.web] match: invalid regex: unclosed group"),
        format!(
            "{PATH}: [process.web] restart_strategy: \"fast\" is not a restart strategy \
             (service, process or auto)"
        ),
    ];
    assert_eq!(error.lines(), expected);
    assert_eq!(error.to_string(), expected.join("\n"));
    assert_eq!(error.path(), Path::new(PATH));
}

#[test]
fn backslashes_in_regexes_and_commands_survive() {
    let config = load(
        "[process.logger]\nmatch = \\d+\\.log\n\
         health_check_command = printf 'ok\\n' | grep -q ok\n",
    );
    let logger = &config.processes["logger"];
    assert_eq!(
        matcher_patterns(&logger.matcher),
        [(usize::MAX, r"\d+\.log".to_owned())]
    );
    let command = logger.health_check_command.as_deref();
    assert_eq!(command, Some(r"printf 'ok\n' | grep -q ok"));
}

#[test]
fn percent_s_and_inline_semicolons_stay_in_commands() {
    let config =
        load("[process.default]\npre_restart_command = logger restarting %s; sync # flush\n");
    let command = config.default_process.pre_restart_command.as_deref();
    assert_eq!(command, Some("logger restarting %s; sync # flush"));
}

#[test]
fn match_n_keeps_every_argument_pattern_in_order() {
    let config = load("[process.worker]\nmatch.2 = ^reports$\nmatch.0 = /worker$\n");
    assert_eq!(
        matcher_patterns(&config.processes["worker"].matcher),
        [(0, "/worker$".to_owned()), (2, "^reports$".to_owned())]
    );
}

#[test]
fn named_processes_inherit_what_they_do_not_set_from_the_default_section() {
    let config = load(
        "[process.default]\nrestart_delay = 7\nhealth_check_command = check %s\nhosts = a, b\n\
         [process.web]\nrestart_delay = 1\nservice_name = httpd\n\
         [process.quiet]\nhealth_check_command =\nhosts =\n",
    );
    let web = &config.processes["web"];
    assert_eq!(web.name, "web");
    assert_eq!(web.restart_delay, Duration::from_secs(1));
    assert_eq!(web.health_check_command.as_deref(), Some("check %s"));
    assert_eq!(web.service_name(), "httpd");
    assert_eq!(
        web.hosts.as_deref(),
        Some(["a".to_owned(), "b".to_owned()].as_slice())
    );
    assert_eq!(web.max_attempts, 2, "the built-in default");
    let quiet = &config.processes["quiet"];
    assert_eq!(quiet.restart_delay, Duration::from_secs(7));
    assert_eq!(quiet.health_check_command, None, "empty means none");
    assert_eq!(quiet.hosts, None, "empty means every host");
    assert_eq!(quiet.service_name(), "quiet");
}

#[test]
fn zero_turns_statistics_and_heartbeats_off_and_sizes_are_kilobytes() {
    let config = load(
        "[monitor]\nstats_interval = 0\nheartbeat_interval = 0\nhttp_listen = 127.0.0.1:9187\n\
         [logging]\nmax_log_size = 2\nlog_file =\n",
    );
    assert_eq!(config.monitor.stats_interval, None);
    assert_eq!(config.monitor.heartbeat_interval, None);
    let listen = config.monitor.http_listen.map(|a| a.to_string());
    assert_eq!(listen.as_deref(), Some("127.0.0.1:9187"));
    assert_eq!(config.logging.max_log_bytes, 2048);
    assert_eq!(config.logging.log_file, None);
    assert_eq!(
        problem("[monitor]\nhttp_listen = localhost\n"),
        format!(
            "{PATH}: [monitor] http_listen: \"localhost\" is not an address and port like \
             127.0.0.1:9187"
        )
    );
}

fn config_file(text: &str, mode: u32) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(with_host(text).as_bytes()).expect("written");
    fs::set_permissions(file.path(), fs::Permissions::from_mode(mode)).expect("chmod");
    file
}

#[test]
fn a_password_in_a_file_others_can_read_is_refused() {
    let file = config_file("[database]\npassword = hunter2\n", 0o644);
    let error = Config::load(file.path(), None).expect_err("refused");
    let path = file.path().display();
    let expected = format!(
        "{path}: holds a password but group or others may access it (mode 0644): \
         run chmod 600 {path}"
    );
    assert_eq!(error.lines(), [expected]);
    assert!(!error.to_string().contains("hunter2"));
}

#[test]
fn a_password_in_a_file_only_its_owner_can_read_is_accepted() {
    let file = config_file("[database]\npassword = hunter2\n", 0o600);
    let config = Config::load(file.path(), None).expect("accepted");
    let password = config.database.password.as_ref().map(|p| p.expose());
    assert_eq!(password, Some("hunter2"));
    assert_eq!(config.path, file.path());
}

#[test]
fn a_readable_file_without_a_password_is_accepted_even_with_the_environment_password() {
    let file = config_file("[database]\npassword =\n", 0o644);
    let config = Config::load(file.path(), Some("from-env".into())).expect("accepted");
    let password = config.database.password.as_ref().map(|p| p.expose());
    assert_eq!(password, Some("from-env"));
}

#[test]
fn the_environment_password_overrides_the_file() {
    let text = with_host("[database]\npassword = in-file\n");
    let path = Path::new(PATH);
    let config = Config::from_ini_text(path, &text, Some("from-env".into())).expect("valid");
    assert_eq!(
        config.database.password.as_ref().map(|p| p.expose()),
        Some("from-env")
    );
    let config = Config::from_ini_text(path, &text, Some(String::new())).expect("valid");
    let password = config.database.password.as_ref().map(|p| p.expose());
    assert_eq!(
        password,
        Some("in-file"),
        "an empty override counts as unset"
    );
}

#[test]
fn a_missing_file_is_reported_with_the_reason() {
    let missing = Path::new("/nonexistent/monitor_service/config.ini");
    let error = Config::load(missing, None).expect_err("refused");
    assert_eq!(
        error.lines(),
        [format!(
            "{}: cannot read: No such file or directory (os error 2)",
            missing.display()
        )]
    );
}

#[test]
fn the_effective_settings_never_show_the_password() {
    let config = load("[database]\npassword = hunter2\n");
    let rendered = render_effective(&config);
    assert!(!rendered.contains("hunter2"), "{rendered}");
    assert!(rendered.contains("\npassword = ********\n"), "{rendered}");
    let without = render_effective(&load(""));
    assert!(without.contains("\npassword =\n"), "{without}");
}

#[test]
fn the_effective_settings_read_back_as_the_same_configuration() {
    let config = load(
        "[database]\nsocket = /run/mysqld.sock\nconnect_timeout = 2.5\n\
         [monitor]\nstats_interval = 0\nhttp_listen = [::1]:9187\n\
         [logging]\nlevel = warn,monitor_service=debug\nlog_file =\n\
         [health]\nthreshold = 0.75\non_low_health_command = \"  padded \"\n\
         [process.default]\nrestart_delay = 0.1\nhosts = a b\n\
         [process.web]\nmatch = \\d+\\.log ; kept\nservice_name = httpd\n\
         [process.worker]\nrestart_strategy = process\nstart_command = '\"quoted\" start'\n\
         match.0 = /worker$\nmatch.3 = x\ndepends_on = web\nrequired = no\n",
    );
    let rendered = render_effective(&config);
    let again = Config::from_ini_text(Path::new(PATH), &rendered, None).expect("reads back");
    assert_eq!(format!("{again:?}"), format!("{config:?}"));
    assert_eq!(render_effective(&again), rendered);
    let command = again.health.on_low_health_command.as_deref();
    assert_eq!(command, Some("  padded "));
}

const REFERENCE: &str = include_str!("../config.ini");

#[test]
fn the_reference_config_loads_cleanly() {
    let config = Config::from_ini_text(Path::new("config.ini"), REFERENCE, None)
        .unwrap_or_else(|error| panic!("config.ini is invalid:\n{error}"));
    let httpd = &config.processes["httpd"];
    assert_eq!(httpd.restart_strategy, RestartStrategy::Service);
    assert_eq!(httpd.health_check_timeout, Duration::from_secs(10));
    assert!(config.database.password.is_none());
}

#[test]
fn the_reference_config_documents_every_key() {
    let config = Config::from_ini_text(Path::new("config.ini"), REFERENCE, None).expect("valid");
    for line in render_effective(&config).lines() {
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        let key = key.split('.').next().unwrap_or(key);
        let documented = REFERENCE.lines().any(|reference| {
            let reference = reference.trim_start_matches([';', ' ']);
            reference.starts_with(&format!("{key} ")) || reference.starts_with(&format!("{key}."))
        });
        assert!(documented, "config.ini does not mention `{key}`");
    }
}

#[test]
fn the_keys_beyond_alive_have_their_documented_defaults_and_read_back() {
    let config = load("[process.a]\n");
    let a = &config.processes["a"];
    assert!(!a.restart_with_dependencies);
    assert_eq!(a.hang_after, None);
    assert_eq!(a.max_memory, None);
    assert_eq!(a.max_restarts, 5);
    assert_eq!(a.restart_window, Duration::from_secs(60));

    let config = load(
        "[monitor]\nheartbeat_interval = 1\n\n[process.default]\nmax_memory = 10%\n\n\
         [process.a]\nrestart_with_dependencies = true\nhang_after = 2.5\nmax_memory = 512M\n\
         max_restarts = 0\nrestart_window = 30\n\n[process.b]\nmax_memory = 1.5G\n\n\
         [process.c]\nmax_memory = 4096\n",
    );
    let a = &config.processes["a"];
    assert!(a.restart_with_dependencies);
    assert_eq!(a.hang_after, Some(Duration::from_millis(2500)));
    assert_eq!(a.max_memory, Some(MemoryLimit::Bytes(512 << 20)));
    assert_eq!(a.max_restarts, 0);
    assert_eq!(a.restart_window, Duration::from_secs(30));
    let b = config.processes["b"].max_memory.expect("a limit");
    assert_eq!(b, MemoryLimit::Bytes(3 << 29));
    assert_eq!(
        config.processes["c"].max_memory,
        Some(MemoryLimit::Bytes(4096))
    );
    let share = config.default_process.max_memory.expect("a limit");
    assert_eq!(share, MemoryLimit::Percent(10.0));
    assert_eq!(share.bytes(8 << 30), 858_993_459);
    let printed = render_effective(&config);
    for line in [
        "restart_with_dependencies = true",
        "hang_after = 2.5",
        "max_memory = 536870912",
        "max_memory = 10%",
        "max_restarts = 0",
        "restart_window = 30",
    ] {
        assert!(printed.contains(line), "{line} in {printed}");
    }
}

#[test]
fn each_key_beyond_alive_refuses_what_it_cannot_mean() {
    let cases = [
        (
            "[process.a]\nmax_memory = lots\n",
            "[process.a] max_memory: \"lots\" is not a size",
        ),
        (
            "[process.a]\nmax_memory = 512X\n",
            "[process.a] max_memory: \"512X\" is not a size",
        ),
        (
            "[process.a]\nmax_memory = 0%\n",
            "[process.a] max_memory: \"0%\" is not a share",
        ),
        (
            "[process.a]\nmax_memory = 150%\n",
            "[process.a] max_memory: \"150%\" is not a share",
        ),
        (
            "[process.a]\nmax_memory = -1G\n",
            "[process.a] max_memory: \"-1G\" is not a size",
        ),
        (
            "[process.a]\nmax_restarts = -1\n",
            "[process.a] max_restarts: must be at least 0",
        ),
        (
            "[process.a]\nrestart_window = 0\n",
            "[process.a] restart_window: must be more than 0",
        ),
        (
            "[process.a]\nrestart_with_dependencies = maybe\n",
            "[process.a] restart_with_dependencies: \"maybe\" is not a boolean",
        ),
        (
            "[process.a]\nhang_after = soon\n",
            "[process.a] hang_after: \"soon\" is not a number",
        ),
        (
            "[monitor]\nheartbeat_interval = 0\n\n[process.a]\nhang_after = 30\n",
            "[process.a] hang_after: needs heartbeats: heartbeat_interval in [monitor] is 0",
        ),
        (
            "[monitor]\nheartbeat_interval = 10\n\n[process.a]\nhang_after = 15\n",
            "[process.a] hang_after: must be at least two heartbeats (20 seconds",
        ),
        (
            "[monitor]\nheartbeat_interval = 1\n\n[process.a]\nhang_after = 5\n\
             health_check_command =\n",
            "[process.a] hang_after: needs a health_check_command",
        ),
        (
            "[monitor]\nheartbeat_interval = 0\n\n[process.default]\nhang_after = 30\n\n\
             [process.a]\n\n[process.b]\n",
            "[process.default] hang_after: needs heartbeats",
        ),
    ];
    for (text, expected) in cases {
        let found = problem(text);
        assert!(found.contains(expected), "{text:?}: {found}");
    }
}
