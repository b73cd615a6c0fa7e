//! The operator's commands through the real binary, against a real database, with and
//! without the daemon: status, alarm, breaker, start/stop/restart, completions, the shell.

mod common;

use assert_cmd::Command;
use common::fixture::{Fixture, kill_all, pids_of};
use predicates::prelude::*;
use sqlx::Row;

fn monitor(config: &std::path::Path) -> Command {
    let mut command = Command::new(common::monitor_bin());
    command.arg("-c").arg(config);
    command
}

async fn breaker_state(world: &Fixture, id: i32) -> Option<String> {
    sqlx::query("SELECT state FROM CIRCUIT_BREAKER WHERE process_id = ?")
        .bind(id)
        .fetch_optional(&world.db.pool)
        .await
        .expect("read the breaker")
        .map(|row| row.get(0))
}

#[tokio::test]
async fn alarm_commands_set_list_and_clear_alarms() {
    let world = Fixture::new().await;
    world.add_process(1, "alpha").await;
    world.add_process(2, "beta").await;
    let config = world.write_config(&world.config_text("", ""));

    monitor(&config)
        .args(["alarm", "set", "alpha"])
        .assert()
        .success()
        .stdout("alarm raised on alpha\n");
    assert_eq!(world.status(1).await.0, 1);
    assert_eq!(world.status(2).await.0, 0);
    monitor(&config)
        .args(["alarm", "list"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"1\s+alpha\s+ALARM").expect("regex"))
        .stdout(predicate::str::is_match(r"2\s+beta\s+-").expect("regex"));
    monitor(&config)
        .args(["alarm", "set", "--all"])
        .assert()
        .success()
        .stdout("alarm raised on 1 processes\n");
    monitor(&config)
        .args(["alarm", "clear", "--all"])
        .assert()
        .success()
        .stdout("alarm cleared on 2 processes\n");
    assert_eq!((world.status(1).await.0, world.status(2).await.0), (0, 0));
}

#[tokio::test]
async fn an_unknown_name_exits_64_and_changes_nothing() {
    let world = Fixture::new().await;
    world.add_process(1, "alpha").await;
    let config = world.write_config(&world.config_text("", ""));
    for args in [
        vec!["alarm", "set", "nosuch"],
        vec!["restart", "nosuch"],
        vec!["breaker", "reset", "nosuch"],
    ] {
        monitor(&config)
            .args(&args)
            .assert()
            .code(64)
            .stderr("monitor_service: unknown process \"nosuch\": not in PROCESE\n");
    }
    assert_eq!(world.status(1).await.0, 0);
    assert_eq!(
        world
            .count(
                "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id > ?",
                0
            )
            .await,
        0
    );
    monitor(&config).args(["alarm", "set"]).assert().code(64);
}

#[tokio::test]
async fn restart_runs_the_strategy_records_a_manual_event_and_closes_an_open_breaker() {
    let world = Fixture::new().await;
    let name = world.unique_name("man");
    world.add_process(1, &name).await;
    world.open_breaker(1).await;
    let section = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = {}\n\
         health_check_command = pgrep -x %s\n",
        world.start_command(&name)
    );
    let config = world.write_config(&world.config_text("", &section));

    monitor(&config)
        .args(["restart", &name])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!(
            "restart {name}: done via process"
        )));
    assert_eq!(pids_of(&name).len(), 1);
    let row =
        sqlx::query("SELECT trigger_source, success FROM RESTART_EVENTS WHERE process_id = 1")
            .fetch_one(&world.db.pool)
            .await
            .expect("the event");
    assert_eq!(row.get::<String, _>(0), "manual");
    assert_eq!(row.get::<i8, _>(1), 1);
    assert_eq!(breaker_state(&world, 1).await.as_deref(), Some("closed"));

    monitor(&config).args(["status"]).assert().success().stdout(
        predicate::str::is_match(format!(r"{name}\s+yes\s+\d+\s+-\s+closed")).expect("regex"),
    );
    monitor(&config)
        .args(["stop", &name])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!(
            "stop {name}: done via process"
        )));
    assert!(pids_of(&name).is_empty(), "stopped");
    monitor(&config)
        .args(["status", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"alive\": false"));
    monitor(&config).args(["start", &name]).assert().success();
    assert_eq!(pids_of(&name).len(), 1);
    assert_eq!(
        world
            .count("SELECT COUNT(*) FROM RESTART_EVENTS WHERE trigger_source = 'manual' AND process_id = ?", 1)
            .await,
        3
    );
    kill_all(&name);
}

#[tokio::test]
async fn a_manual_restart_waits_its_turn_behind_a_live_claim() {
    let world = Fixture::new().await;
    let name = world.unique_name("busy");
    world.add_process(1, &name).await;
    sqlx::query(
        "INSERT INTO ALARM_CLAIM (process_id, owner, trigger_source, claimed_at, expires_at) \
         VALUES (1, 'daemon@testhost/1/1', 'alarm', NOW(3), NOW(3) + INTERVAL 1 HOUR)",
    )
    .execute(&world.db.pool)
    .await
    .expect("claim");
    let section = format!("[process.{name}]\nrestart_strategy = process\nstart_command = true\n");
    let config = world.write_config(&world.config_text("", &section));
    monitor(&config)
        .args(["restart", &name])
        .assert()
        .code(75)
        .stderr(predicate::str::contains(
            "being handled by daemon@testhost/1/1",
        ));
}

#[tokio::test]
async fn breaker_commands_list_and_reset() {
    let world = Fixture::new().await;
    world.add_process(1, "alpha").await;
    world.open_breaker(1).await;
    let config = world.write_config(&world.config_text("", ""));
    monitor(&config)
        .args(["breaker", "list"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"alpha\s+open\s+3").expect("regex"));
    monitor(&config)
        .args(["breaker", "reset", "alpha"])
        .assert()
        .success()
        .stdout("circuit breaker of alpha reset: closed, 0 failures\n");
    assert_eq!(breaker_state(&world, 1).await.as_deref(), Some("closed"));
}

#[test]
fn completions_are_printed_for_each_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::write_config(dir.path(), "[database]\nhost = 127.0.0.1\n");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef"),
        ("fish", "complete -c"),
    ] {
        monitor(&config)
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains(marker));
    }
}

#[tokio::test]
async fn the_shell_reads_commands_from_stdin_when_it_is_not_a_terminal() {
    let world = Fixture::new().await;
    world.add_process(1, "alpha").await;
    let config = world.write_config(&world.config_text("", ""));
    monitor(&config)
        .arg("shell")
        .write_stdin(
            "alarm set alpha\nalarm list\nrestart nosuch\nbogus\nexit\nalarm clear alpha\n",
        )
        .assert()
        .success()
        .stdout(predicate::str::contains("alarm raised on alpha"))
        .stdout(predicate::str::is_match(r"alpha\s+ALARM").expect("regex"))
        .stderr(predicate::str::contains("unknown process \"nosuch\""))
        .stderr(predicate::str::contains("unrecognized subcommand 'bogus'"));
    assert_eq!(world.status(1).await.0, 1, "nothing after exit ran");
    monitor(&config)
        .arg("shell")
        .write_stdin("alarm clear alpha\n")
        .assert()
        .success();
    assert_eq!(
        world.status(1).await.0,
        0,
        "end of input ends the shell cleanly"
    );
}

#[tokio::test]
async fn a_refused_login_is_one_plain_line_on_stderr_and_exit_status_69() {
    let world = Fixture::new().await;
    let database: String = world
        .db
        .database_section()
        .lines()
        .filter(|line| !line.starts_with("password"))
        .map(|line| format!("{line}\n"))
        .collect();
    let wrong = format!("{database}password = not-the-password\n");
    let config = world.write_config(&world.config_text_with(&wrong, "", ""));
    for command in [&["check-config", "--db"][..], &["migrate"]] {
        // stderr is a pipe here, as under a script or systemd: no colours.
        let output = common::monitor(&config)
            .args(command)
            .timeout(common::fixture::PATIENCE)
            .output()
            .expect("run monitor_service");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(69), "{command:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{command:?}: {stderr}");
        assert!(!stderr.contains('\u{1b}'), "{command:?}: {stderr:?}");
        assert!(
            stderr.starts_with("monitor_service: database: ") && stderr.contains("1045"),
            "{command:?}: {stderr}"
        );
        assert!(!stderr.contains("not-the-password"), "{stderr}");
    }
}
