//! `scripts/test_alarm.sh`, the interactive alarm menu, driven through its standard input
//! against a real database: display, set one, set all, reset all, the end of input, the exit
//! codes, and a password that reaches the mysql client without ever being on a command line.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::fixture::Fixture;
use common::server_connection;
use sqlx::{AssertSqlSafe, Connection, Row};

/// The script runs a handful of mysql clients per command: generous for a slow shared machine.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(60);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test_alarm.sh")
}

/// How one run of the script ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn assert_ok(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "the script failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `test_alarm.sh ARGS` with `input` on its stdin (then the end of input), without the
/// environment variables that would override the config, plus `env`.
async fn run_script(args: &[&str], input: &str, env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut command = assert_cmd::Command::new(script());
        command
            .env_remove("MONITOR_SERVICE_CONFIG")
            .env_remove("MONITOR_DB_PASSWORD")
            .args(&args)
            .write_stdin(input)
            .timeout(SCRIPT_DEADLINE);
        for (key, value) in &env {
            command.env(key, value);
        }
        let output = command
            .output()
            .expect("the script runs to its end in time");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .expect("the thread running the script")
}

/// Runs the script on the fixture's config (the test database, as root).
async fn menu(fixture: &Fixture, input: &str) -> Run {
    let config = fixture.write_config(&fixture.config_text("", ""));
    run_script(&["-c", path_text(&config)], input, &[]).await
}

fn path_text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// `alarma` of every process that has a `STATUS_PROCESS` row, by id.
async fn alarms(fixture: &Fixture) -> Vec<(i32, i8)> {
    sqlx::query("SELECT process_id, alarma FROM STATUS_PROCESS ORDER BY process_id")
        .fetch_all(&fixture.db.pool)
        .await
        .expect("read STATUS_PROCESS")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// `(sound, notes)` of a process.
async fn sound_and_notes(fixture: &Fixture, id: i32) -> (i8, Option<String>) {
    let row = sqlx::query("SELECT sound, notes FROM STATUS_PROCESS WHERE process_id = ?")
        .bind(id)
        .fetch_one(&fixture.db.pool)
        .await
        .expect("read STATUS_PROCESS");
    (row.get(0), row.get(1))
}

async fn set_sound_and_notes(fixture: &Fixture, id: i32, sound: i8, notes: &str) {
    sqlx::query("UPDATE STATUS_PROCESS SET sound = ?, notes = ? WHERE process_id = ?")
        .bind(sound)
        .bind(notes)
        .bind(id)
        .execute(&fixture.db.pool)
        .await
        .expect("update STATUS_PROCESS");
}

/// A process in `PROCESE` only, as another system may leave it.
async fn add_process_without_status(fixture: &Fixture, id: i32, name: &str) {
    sqlx::query("INSERT INTO PROCESE (process_id, process_name) VALUES (?, ?)")
        .bind(id)
        .bind(name)
        .execute(&fixture.db.pool)
        .await
        .expect("insert PROCESE");
}

/// The line of the display table that starts with `id`, its cells split on blanks.
fn display_row(stdout: &str, id: i32) -> Vec<String> {
    let id = id.to_string();
    stdout
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.len() >= 4 && cells[0] == id)
        .unwrap_or_else(|| panic!("no row for id {id} in:\n{stdout}"))
}

#[tokio::test]
async fn display_shows_every_service_with_its_alarm_sound_and_notes() {
    let fixture = Fixture::new().await;
    fixture.add_process(3, "alpha_svc").await;
    fixture.add_process(12, "beta_svc").await;
    add_process_without_status(&fixture, 40, "gamma_svc").await;
    fixture.raise_alarm(12).await;
    set_sound_and_notes(&fixture, 12, 1, "restart failed; see log #2").await;

    let run = menu(&fixture, "1\nq\n").await;
    run.assert_ok();

    let header = run
        .stdout
        .lines()
        .find(|line| line.contains("NAME"))
        .unwrap_or_else(|| panic!("no table header in:\n{}", run.stdout));
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(columns, ["ID", "NAME", "ALARM", "SOUND", "NOTES"]);
    assert_eq!(display_row(&run.stdout, 3), ["3", "alpha_svc", "no", "0"]);
    assert_eq!(
        display_row(&run.stdout, 12),
        [
            "12", "beta_svc", "yes", "1", "restart", "failed;", "see", "log", "#2"
        ]
    );
    assert_eq!(display_row(&run.stdout, 40), ["40", "gamma_svc", "-", "-"]);
    // The columns are aligned: every name starts where the header's NAME does.
    let name_at = header.find("NAME").expect("NAME in the header");
    for name in ["alpha_svc", "beta_svc", "gamma_svc"] {
        let line = run
            .stdout
            .lines()
            .find(|line| line.contains(name))
            .expect("the service's row");
        assert_eq!(line.find(name), Some(name_at), "misaligned: {line:?}");
    }
    assert!(
        run.stdout.contains("3 services, 1 in alarm"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stderr, "");
    // Displaying changes nothing.
    assert_eq!(alarms(&fixture).await, [(3, 0), (12, 1)]);
}

#[tokio::test]
async fn choosing_a_service_raises_exactly_its_alarm() {
    let fixture = Fixture::new().await;
    for (id, name) in [(3, "alpha_svc"), (12, "beta_svc"), (40, "gamma_svc")] {
        fixture.add_process(id, name).await;
    }
    set_sound_and_notes(&fixture, 12, 1, "a note").await;

    // By id, as listed.
    let run = menu(&fixture, "2\n12\nq\n").await;
    run.assert_ok();
    for listed in ["3) alpha_svc", "12) beta_svc", "40) gamma_svc"] {
        assert!(
            run.stdout.contains(listed),
            "{listed} not listed:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout
            .contains("Alarm set for beta_svc (id 12): 1 row changed."),
        "{}",
        run.stdout
    );
    assert_eq!(alarms(&fixture).await, [(3, 0), (12, 1), (40, 0)]);
    // Only alarma changes.
    assert_eq!(
        sound_and_notes(&fixture, 12).await,
        (1, Some("a note".into()))
    );

    // By name, with blanks around it; and again, which changes nothing.
    let run = menu(&fixture, "2\n  gamma_svc \n2\n040\n").await;
    run.assert_ok();
    assert!(
        run.stdout
            .contains("Alarm set for gamma_svc (id 40): 1 row changed."),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("gamma_svc (id 40) was already in alarm: 0 rows changed."),
        "{}",
        run.stdout
    );
    assert_eq!(alarms(&fixture).await, [(3, 0), (12, 1), (40, 1)]);
}

#[tokio::test]
async fn a_choice_that_is_not_a_listed_service_changes_nothing() {
    let fixture = Fixture::new().await;
    fixture.add_process(3, "alpha_svc").await;
    fixture.add_process(12, "beta_svc").await;

    let input = "2\n99\n2\n3 OR 1=1\n2\n12; UPDATE STATUS_PROCESS SET alarma = 1\n\
                 2\nalpha_svc' OR '1'='1\n2\n\n7\nq\n";
    let run = menu(&fixture, input).await;
    run.assert_ok();
    assert_eq!(alarms(&fixture).await, [(3, 0), (12, 0)]);
    let refusals = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("No service with id or name"))
        .count();
    assert_eq!(refusals, 4, "stderr:\n{}", run.stderr);
    assert!(run.stdout.contains("Cancelled: nothing changed."));
    assert!(
        run.stderr.contains("Unknown choice \"7\""),
        "stderr:\n{}",
        run.stderr
    );
    // Back at the menu after each refusal: the last one is still answered.
    assert_eq!(run.stdout.matches("Choice: ").count(), 7);
}

#[tokio::test]
async fn set_all_raises_every_alarm_and_reset_all_clears_them() {
    let fixture = Fixture::new().await;
    fixture.add_process(3, "alpha_svc").await;
    fixture.add_process(12, "beta_svc").await;
    add_process_without_status(&fixture, 40, "gamma_svc").await;
    fixture.raise_alarm(12).await;
    set_sound_and_notes(&fixture, 3, 1, "kept").await;

    let run = menu(&fixture, "3\n").await;
    run.assert_ok();
    assert!(
        run.stdout.contains(
            "All services set in alarm: 2 rows changed (1 new STATUS_PROCESS row); 3 in alarm now."
        ),
        "{}",
        run.stdout
    );
    assert_eq!(alarms(&fixture).await, [(3, 1), (12, 1), (40, 1)]);

    let run = menu(&fixture, "4\n4\n").await;
    run.assert_ok();
    assert!(
        run.stdout.contains("All alarms reset: 3 rows changed."),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("All alarms reset: 0 rows changed."),
        "{}",
        run.stdout
    );
    assert_eq!(alarms(&fixture).await, [(3, 0), (12, 0), (40, 0)]);
    assert_eq!(sound_and_notes(&fixture, 3).await, (1, Some("kept".into())));
}

#[tokio::test]
async fn the_end_of_input_exits_cleanly() {
    let fixture = Fixture::new().await;
    fixture.add_process(3, "alpha_svc").await;

    // At the menu prompt: a newline so the shell prompt starts on a line of its own.
    let run = menu(&fixture, "").await;
    run.assert_ok();
    assert!(run.stdout.ends_with("Choice: \n"), "{:?}", run.stdout);
    assert_eq!(run.stderr, "");

    // A last line without a newline still counts.
    let run = menu(&fixture, "1").await;
    run.assert_ok();
    assert_eq!(display_row(&run.stdout, 3), ["3", "alpha_svc", "no", "0"]);

    // At the prompt of option 2: nothing changes.
    let run = menu(&fixture, "2\n").await;
    run.assert_ok();
    assert_eq!(alarms(&fixture).await, [(3, 0)]);
}

/// The first of `mariadb` and `mysql` on PATH, as the script picks it.
fn real_client() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["mariadb", "mysql"]
        .iter()
        .find_map(|name| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
        .expect("a mysql client (mariadb or mysql) on PATH")
}

/// A folder with `mariadb` and `mysql` that record their arguments, their environment and the
/// mode of the option file they are given, then run the real client with the same arguments.
fn recording_clients(fixture: &Fixture) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = fixture.path("fakebin");
    let log = fixture.path("calls");
    std::fs::create_dir_all(&bin).expect("create fakebin");
    std::fs::create_dir_all(&log).expect("create calls");
    let wrapper = format!(
        "#!/bin/sh\n\
         log='{log}'\n\
         printf '%s\\0' \"$@\" > \"$log/argv.$$\"\n\
         env > \"$log/env.$$\"\n\
         for arg in \"$@\"; do\n\
         \x20   case $arg in --defaults-file=*) stat -c %a \"${{arg#--defaults-file=}}\" > \"$log/mode.$$\";; esac\n\
         done\n\
         exec '{real}' \"$@\"\n",
        log = log.display(),
        real = real_client().display(),
    );
    for name in ["mariadb", "mysql"] {
        let path = bin.join(name);
        std::fs::write(&path, &wrapper).expect("write a recording client");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod a recording client");
    }
    (bin, log)
}

/// The files of `dir` whose names start with `prefix`, read.
fn recorded(dir: &Path, prefix: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the recordings")
        .map(|entry| entry.expect("a recording").path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(prefix))
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read(path).expect("read a recording"))
        .collect()
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Runs `sql` on the server as the tests' own user.
async fn server_sql(sql: String) {
    let mut connection = server_connection().await;
    sqlx::raw_sql(AssertSqlSafe(sql.clone()))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    let _ = connection.close().await;
}

/// `text` as the inside of a single-quoted SQL string.
fn sql_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

#[tokio::test]
async fn the_password_reaches_the_client_but_never_a_command_line() {
    let fixture = Fixture::new().await;
    fixture.add_process(3, "alpha_svc").await;
    fixture.add_process(12, "beta_svc").await;

    // A user of our own with a password that INI, option files and shells all find awkward:
    // a leading blank (kept by the quotes), ; and # (not comments after the =), a double quote,
    // a backslash and a $.
    let suffix = fixture.db.name.rsplit('_').next().expect("a random suffix");
    let user = format!("ta_{suffix}");
    let password = format!(" pw;#\"q\\x${suffix}");
    server_sql(format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{}'",
        sql_string(&password)
    ))
    .await;
    server_sql(format!(
        "GRANT ALL ON `{}`.* TO '{user}'@'%'",
        fixture.db.name
    ))
    .await;

    let section = |password_line: &str| {
        format!(
            "[database]\nhost = {}\nport = {}\nuser = {user}\n{password_line}\ndatabase = {}\n",
            fixture.db.host(),
            fixture.db.port(),
            fixture.db.name
        )
    };
    let (bin, log) = recording_clients(&fixture);
    let tmp = fixture.path("tmp");
    std::fs::create_dir_all(&tmp).expect("create tmp");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [("PATH", path.as_str()), ("TMPDIR", path_text(&tmp))];

    // The password from the config, in quotes as the service's own renderer writes it.
    let config = fixture.write_config(&fixture.config_text_with(
        &section(&format!("password = '{password}'")),
        "",
        "",
    ));
    let with_config = run_script(&["-c", path_text(&config)], "2\n12\n", &env).await;
    let after_config = alarms(&fixture).await;

    // MONITOR_DB_PASSWORD wins over a wrong one in the file.
    let config =
        fixture.write_config(&fixture.config_text_with(&section("password = wrong"), "", ""));
    let mut with_env = env.to_vec();
    with_env.push(("MONITOR_DB_PASSWORD", password.as_str()));
    let with_variable = run_script(&["-c", path_text(&config)], "3\n", &with_env).await;
    let after_variable = alarms(&fixture).await;

    // The wrong password alone is refused: the user really needs its password.
    let refused = run_script(&["-c", path_text(&config)], "", &env).await;

    let argvs = recorded(&log, "argv.");
    let envs = recorded(&log, "env.");
    let modes = recorded(&log, "mode.");
    let leftovers = std::fs::read_dir(&tmp).expect("read tmp").count();

    server_sql(format!("DROP USER '{user}'@'%'")).await;

    with_config.assert_ok();
    assert_eq!(after_config, [(3, 0), (12, 1)]);
    with_variable.assert_ok();
    assert_eq!(after_variable, [(3, 1), (12, 1)]);
    assert_eq!(refused.code, Some(69), "stderr: {}", refused.stderr);
    assert!(
        refused.stderr.contains("Access denied"),
        "stderr: {}",
        refused.stderr
    );
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);

    // Every run went through the recording clients, several calls each.
    assert!(argvs.len() >= 7, "only {} client calls", argvs.len());
    assert_eq!(argvs.len(), envs.len());
    for argv in &argvs {
        assert!(
            !contains_bytes(argv, password.trim().as_bytes()),
            "the password is on a command line: {:?}",
            String::from_utf8_lossy(argv)
        );
        assert!(
            !contains_bytes(argv, b"wrong"),
            "a password is on a command line: {:?}",
            String::from_utf8_lossy(argv)
        );
        assert!(
            argv.starts_with(b"--defaults-file="),
            "the option file is not the first argument: {:?}",
            String::from_utf8_lossy(argv)
        );
    }
    for env in &envs {
        assert!(
            !contains_bytes(env, password.trim().as_bytes()),
            "the password is in the client's environment"
        );
        assert!(
            !contains_bytes(env, b"MYSQL_PWD"),
            "MYSQL_PWD is in the client's environment"
        );
    }
    // The option file is private while it exists, and gone once the script has ended.
    assert_eq!(modes.len(), argvs.len());
    for mode in &modes {
        assert_eq!(String::from_utf8_lossy(mode).trim(), "600");
    }
    assert_eq!(leftovers, 0, "the script left files in TMPDIR");
}

#[tokio::test]
async fn help_and_usage_errors() {
    let help = run_script(&["-h"], "", &[]).await;
    help.assert_ok();
    assert!(help.stdout.starts_with("Usage: test_alarm.sh [-c PATH]"));
    assert!(help.stdout.contains("MONITOR_DB_PASSWORD"));

    for args in [
        &["-x"][..],
        &["--bogus"],
        &["-c"],
        &["-c", "/nonexistent/config.ini", "extra"],
    ] {
        let run = run_script(args, "", &[]).await;
        assert_eq!(run.code, Some(64), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("Usage:"), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{args:?}");
    }
}

#[tokio::test]
async fn a_config_that_cannot_be_read_exits_78() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let missing = dir.path().join("missing.ini");
    let missing = path_text(&missing);

    let run = run_script(&["-c", missing], "1\n", &[]).await;
    assert_eq!(run.code, Some(78));
    assert_eq!(
        run.stderr,
        format!("test_alarm.sh: error: cannot read config {missing}: no such file\n")
    );
    assert_eq!(run.stdout, "");

    // The default path comes from MONITOR_SERVICE_CONFIG.
    let run = run_script(&[], "", &[("MONITOR_SERVICE_CONFIG", missing)]).await;
    assert_eq!(run.code, Some(78));
    assert!(run.stderr.contains(missing), "{}", run.stderr);

    // A value the client cannot use.
    let config = common::write_config(dir.path(), "[database]\nport = 33x6\n");
    let run = run_script(&["-c", path_text(&config)], "", &[]).await;
    assert_eq!(run.code, Some(78));
    assert!(
        run.stderr
            .contains("[database] port must be a whole number"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn an_unreachable_database_exits_69() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = common::write_config(
        dir.path(),
        "[database]\nhost = 127.0.0.1\nport = 9\nconnect_timeout = 2\n",
    );
    let run = run_script(&["-c", path_text(&config)], "1\n", &[]).await;
    assert_eq!(run.code, Some(69), "stderr: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "test_alarm.sh: error: cannot reach the database v_process_monitor on 127.0.0.1:9"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[tokio::test]
async fn a_host_list_whose_first_server_is_down_is_served_by_the_next() {
    let fixture = Fixture::new().await;
    fixture.add_process(1, "listed").await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let real = fixture.db.server_addr().port();
    let mut section = format!(
        "[database]\nhost = 127.0.0.1:{dead}, 127.0.0.1:{real}\nuser = {}\ndatabase = {}\n",
        fixture.db.user(),
        fixture.db.name
    );
    if let Some(password) = fixture.db.password().filter(|p| !p.is_empty()) {
        section.push_str(&format!("password = {password}\n"));
    }
    let config = fixture.write_config(&fixture.config_text_with(&section, "", ""));
    let run = run_script(&["-c", path_text(&config)], "2\n1\nq\n", &[]).await;
    run.assert_ok();
    assert_eq!(fixture.status(1).await.0, 1, "{}", run.stdout);

    // None that answers: every server is named, and the script exits 69.
    let section = section.replace(
        &format!("127.0.0.1:{dead}, 127.0.0.1:{real}"),
        &format!("127.0.0.1:{dead}, [::1]:{dead}"),
    );
    let config = fixture.write_config(&fixture.config_text_with(&section, "", ""));
    let run = run_script(&["-c", path_text(&config)], "q\n", &[]).await;
    assert_eq!(run.code, Some(69), "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot reach any server of the list")
            && run.stderr.contains(&format!("[::1]:{dead}")),
        "{}",
        run.stderr
    );
}
