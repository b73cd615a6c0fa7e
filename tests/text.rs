//! Database text, both ways: what the service writes into columns of other character sets
//! (`latin1`, 3-byte `utf8`) under strict `sql_mode`, and what the operator's commands print of
//! text other systems wrote (terminal escapes in names and notes). Also `alarm set` on a
//! process that has no `STATUS_PROCESS` row yet.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::fixture::{Fixture, PATIENCE};
use common::{TestDb, monitor, wait_for, wait_until};
use monitor_service::db::Database;
use sqlx::Row;

/// A fresh database whose original tables are `latin1`, as MySQL 5.7 made them by default,
/// migrated after.
async fn latin1_world() -> Fixture {
    let db = TestDb::new().await;
    for statement in [
        "CREATE TABLE PROCESE (process_id INT PRIMARY KEY, process_name VARCHAR(100) NOT NULL) \
         DEFAULT CHARSET = latin1",
        "CREATE TABLE STATUS_PROCESS (process_id INT PRIMARY KEY, alarma TINYINT NOT NULL DEFAULT 0, \
         sound TINYINT NOT NULL DEFAULT 0, notes VARCHAR(100), \
         FOREIGN KEY (process_id) REFERENCES PROCESE(process_id)) DEFAULT CHARSET = latin1",
    ] {
        sqlx::query(statement)
            .execute(&db.pool)
            .await
            .expect("create a latin1 table");
    }
    Database::with_pool(db.pool.clone(), Duration::from_secs(30))
        .migrate()
        .await
        .expect("migrate over latin1 tables");
    let dir = tempfile::tempdir().expect("temporary folder");
    Fixture { db, dir }
}

/// The service's connections take the server's `sql_mode`: the test means something only if
/// that is strict.
async fn assert_strict(world: &Fixture) {
    let mode: String = sqlx::query("SELECT @@SESSION.sql_mode")
        .fetch_one(&world.db.pool)
        .await
        .expect("read sql_mode")
        .get(0);
    assert!(mode.contains("STRICT_TRANS_TABLES"), "sql_mode {mode}");
}

/// A process whose pre-restart command fails, writing `✗ 😀` to stderr.
fn failing_with_symbols(world: &Fixture, name: &str) -> String {
    let script = world.path("fail.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf '\\342\\234\\227 \\360\\237\\230\\200\\n' >&2\nexit 1\n",
    )
    .expect("write the failing script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("make the script executable");
    format!(
        "[process.{name}]\nrestart_strategy = process\npre_restart_command = {}\n\
         start_command = true\nhealth_check_command = true\nmax_attempts = 1\nrestart_delay = 0\n",
        script.display()
    )
}

async fn breaker(world: &Fixture, id: i32) -> Option<(String, i32)> {
    sqlx::query("SELECT state, consecutive_failures FROM CIRCUIT_BREAKER WHERE process_id = ?")
        .bind(id)
        .fetch_optional(&world.db.pool)
        .await
        .expect("read CIRCUIT_BREAKER")
        .map(|row| (row.get(0), row.get(1)))
}

#[tokio::test]
async fn a_failure_on_latin1_tables_lands_with_its_note_fitted_and_opens_the_breaker() {
    let world = latin1_world().await;
    assert_strict(&world).await;
    let name = world.unique_name("l1");
    world.add_process(1, &name).await;
    let config = world.config(
        "max_restart_failures = 2\ncircuit_reset_time = 3600",
        &failing_with_symbols(&world, &name),
    );
    world.raise_alarm(1).await;
    let service = world.run_in_process(config);

    let (success, _, _, error) = world.wait_event(1).await;
    assert!(!success);
    let error = error.expect("the event's error");
    assert!(error.contains("exit 1: ✗ 😀"), "utf8mb4 keeps it: {error}");
    let note = wait_for(PATIENCE, "the failure's note", || async {
        world
            .status(1)
            .await
            .1
            .filter(|n| n.starts_with("restart failed"))
    })
    .await;
    assert!(
        note.contains("exit 1: ? ?"),
        "latin1 gets ? for ✗ and 😀: {note}"
    );

    // The claim is released with the outcome, so the alarm, still raised, is tried again at
    // the next poll rather than at the claim's expiry, and the second failure opens the breaker.
    wait_until(PATIENCE, "the breaker opens", || async {
        breaker(&world, 1).await == Some(("open".to_owned(), 2))
    })
    .await;
    let note = wait_for(PATIENCE, "the breaker's note", || async {
        world
            .status(1)
            .await
            .1
            .filter(|n| n.starts_with("circuit breaker open"))
    })
    .await;
    assert!(note.contains("after 2 failed restarts"), "{note}");
    assert_eq!(world.status(1).await.0, 1, "the alarm stays raised");
    assert_eq!(
        world
            .count(
                "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ? AND finished_at IS NULL",
                1
            )
            .await,
        0,
        "every event finished"
    );
    assert_eq!(
        world
            .count("SELECT COUNT(*) FROM ALARM_CLAIM WHERE process_id = ?", 1)
            .await,
        0,
        "the claim is released"
    );

    service.stop().await;
}

#[tokio::test]
async fn a_notes_column_made_latin1_while_the_service_runs_still_gets_the_outcome() {
    let world = Fixture::new().await;
    assert_strict(&world).await;
    let (name, probe) = (world.unique_name("al"), world.unique_name("probe"));
    world.add_process(1, &name).await;
    world.add_process(2, &probe).await;
    let working = format!(
        "[process.{probe}]\nrestart_strategy = process\nstart_command = true\n\
         health_check_command = true\nmax_attempts = 1\n"
    );
    let config = world.write_config(&world.config_text(
        "max_restart_failures = 1\ncircuit_reset_time = 3600",
        &format!("{}\n{working}", failing_with_symbols(&world, &name)),
    ));
    // The real binary, for its log.
    let mut service = world.spawn_binary(&config);
    // A first outcome makes the service read (and keep) the columns' character sets.
    world.raise_alarm(2).await;
    world.wait_cleared(2).await;
    sqlx::query("ALTER TABLE STATUS_PROCESS MODIFY notes VARCHAR(100) CHARACTER SET latin1")
        .execute(&world.db.pool)
        .await
        .expect("make the notes latin1");

    world.raise_alarm(1).await;
    let (success, _, _, _) = world.wait_event(1).await;
    assert!(!success);
    let note = world.status(1).await.1.unwrap_or_default();
    assert!(
        note.contains("exit 1: ? ?"),
        "the refused note is written plainer: {note}"
    );
    assert_eq!(breaker(&world, 1).await, Some(("open".to_owned(), 1)));
    wait_until(PATIENCE, "the refusal is logged", || async {
        std::fs::read_to_string(world.path("monitor.log"))
            .unwrap_or_default()
            .contains("the database refused a note")
    })
    .await;
    wait_until(PATIENCE, "the claim is released", || async {
        world
            .count("SELECT COUNT(*) FROM ALARM_CLAIM WHERE process_id = ?", 1)
            .await
            == 0
    })
    .await;

    service.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(service.exit_code().await, Some(0));
}

#[tokio::test]
async fn an_error_on_a_three_byte_utf8_column_loses_only_its_emoji() {
    let world = Fixture::new().await;
    assert_strict(&world).await;
    sqlx::query("ALTER TABLE RESTART_EVENTS MODIFY error VARCHAR(255) CHARACTER SET utf8mb3 NULL")
        .execute(&world.db.pool)
        .await
        .expect("make the error column 3-byte utf8");
    let name = world.unique_name("u3");
    world.add_process(1, &name).await;
    let config = world.config("", &failing_with_symbols(&world, &name));
    world.raise_alarm(1).await;
    let service = world.run_in_process(config);

    let (success, _, _, error) = world.wait_event(1).await;
    assert!(!success);
    let error = error.expect("the event's error");
    assert!(error.contains("exit 1: ✗ ?"), "{error}");
    let note = world.status(1).await.1.unwrap_or_default();
    assert!(
        note.contains("exit 1: ✗ 😀"),
        "utf8mb4 notes keep it: {note}"
    );

    service.stop().await;
}

#[tokio::test]
async fn names_and_notes_with_terminal_escapes_print_without_them() {
    let world = Fixture::new().await;
    let hostile = "evil\u{1b}]0;pwned\u{7}";
    world.add_process(1, hostile).await;
    world.add_process(2, "calm").await;
    sqlx::query("UPDATE STATUS_PROCESS SET alarma = 1, notes = ? WHERE process_id = 2")
        .bind("from the NOC \u{1b}[2J\u{9b}31m")
        .execute(&world.db.pool)
        .await
        .expect("write a hostile note");
    sqlx::query(
        "INSERT INTO CIRCUIT_BREAKER (process_id, state, consecutive_failures, updated_at) \
         VALUES (1, 'closed', 1, NOW(3))",
    )
    .execute(&world.db.pool)
    .await
    .expect("write a breaker");
    let config = world.write_config(&world.config_text("allow_unconfigured = true", ""));

    let clean = |output: &[u8], what: &str| {
        let text = String::from_utf8_lossy(output);
        assert!(
            !output.iter().any(|b| *b == 0x1b || *b == 0x07) && !text.contains('\u{9b}'),
            "{what} prints raw control characters: {text:?}"
        );
        text.into_owned()
    };
    let list = monitor(&config)
        .args(["alarm", "list"])
        .output()
        .expect("alarm list");
    assert!(list.status.success());
    let list = clean(&list.stdout, "alarm list");
    assert!(list.contains("evil\\x1b]0;pwned\\x07"), "{list}");
    assert!(list.contains("from the NOC \\x1b[2J\\x9b31m"), "{list}");
    let breakers = monitor(&config)
        .args(["breaker", "list"])
        .output()
        .expect("breaker list");
    assert!(breakers.status.success());
    assert!(clean(&breakers.stdout, "breaker list").contains("evil\\x1b]0;pwned\\x07"));
    for args in [["status", ""], ["stats", ""]] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let output = monitor(&config).args(&args).output().expect("run");
        assert!(output.status.success(), "{args:?}");
        clean(&output.stdout, args[0]);
    }
    let shell = monitor(&config)
        .arg("shell")
        .write_stdin("alarm list\nbreaker list\nstatus\n")
        .output()
        .expect("shell");
    assert!(shell.status.success());
    clean(&shell.stdout, "shell");
    clean(&shell.stderr, "shell's errors");
}

#[tokio::test]
async fn alarm_set_gives_a_process_without_a_status_row_one() {
    let world = Fixture::new().await;
    for (id, name) in [(1, "alpha"), (2, "beta"), (3, "gamma")] {
        sqlx::query("INSERT INTO PROCESE (process_id, process_name) VALUES (?, ?)")
            .bind(id)
            .bind(name)
            .execute(&world.db.pool)
            .await
            .expect("insert PROCESE");
    }
    let config = world.write_config(&world.config_text("", ""));
    let row = |id: i32| {
        let pool = world.db.pool.clone();
        async move {
            sqlx::query("SELECT alarma, sound, notes FROM STATUS_PROCESS WHERE process_id = ?")
                .bind(id)
                .fetch_optional(&pool)
                .await
                .expect("read STATUS_PROCESS")
                .map(|row| {
                    (
                        row.get::<i8, _>(0),
                        row.get::<i8, _>(1),
                        row.get::<Option<String>, _>(2),
                    )
                })
        }
    };

    monitor(&config)
        .args(["alarm", "set", "alpha"])
        .assert()
        .success()
        .stdout("alarm raised on alpha\n");
    assert_eq!(
        row(1).await,
        Some((1, 0, None)),
        "a new row, in alarm, sound 0"
    );
    monitor(&config)
        .args(["alarm", "set", "alpha"])
        .assert()
        .success()
        .stdout("alarm raised on alpha\n");
    monitor(&config)
        .args(["alarm", "clear", "beta"])
        .assert()
        .success()
        .stdout("beta has no STATUS_PROCESS row: no alarm to clear\n");
    assert_eq!(row(2).await, None, "clearing creates nothing");

    sqlx::query("INSERT INTO STATUS_PROCESS (process_id, alarma, sound) VALUES (2, 0, 1)")
        .execute(&world.db.pool)
        .await
        .expect("insert STATUS_PROCESS");
    monitor(&config)
        .args(["alarm", "set", "--all"])
        .assert()
        .success()
        .stdout("alarm raised on 2 processes\n");
    assert_eq!(row(2).await, Some((1, 1, None)), "sound is left as it was");
    assert_eq!(row(3).await, Some((1, 0, None)), "gamma got a row");
}
