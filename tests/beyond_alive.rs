//! Beyond "is it alive", against real processes and MariaDB: a process that stops answering
//! its health check is restarted after `hang_after`, one that allocates past `max_memory` is
//! restarted, and one that dies right after each good restart ends with an open breaker
//! after `max_restarts`.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use common::fixture::{Fixture, PATIENCE, kill_all, pids_of};
use common::{wait_for, wait_until};
use sqlx::Row;

fn section(name: &str, body: &str) -> String {
    format!("[process.{name}]\n{body}\n")
}

/// A `pre_restart_command` that holds the restart until the test creates `go`, so that the
/// test can read the alarm's note before the restart replaces it.
fn held_until(go: &Path) -> String {
    format!(
        "pre_restart_command = until test -f {}; do sleep 0.05; done\ncommand_timeout = 30",
        go.display()
    )
}

/// Waits until process 1 is in alarm with a note starting with `prefix`; returns the note.
async fn wait_alarm_note(world: &Fixture, prefix: &str) -> String {
    let what = format!("an alarm noted {prefix:?}");
    wait_for(PATIENCE, &what, || async {
        match world.status(1).await {
            (1, Some(note)) if note.starts_with(prefix) => Some(note),
            _ => None,
        }
    })
    .await
}

/// `(trigger_source, detected_at)` of process 1's first restart event, once it exists.
async fn first_event(world: &Fixture) -> (String, DateTime<Utc>) {
    wait_for(PATIENCE, "a restart event", || async {
        let row = sqlx::query(
            "SELECT trigger_source, detected_at FROM RESTART_EVENTS WHERE process_id = 1 \
             ORDER BY id LIMIT 1",
        )
        .fetch_optional(&world.db.pool)
        .await
        .expect("read RESTART_EVENTS")?;
        Some((row.get(0), row.get(1)))
    })
    .await
}

async fn database_now(world: &Fixture) -> DateTime<Utc> {
    sqlx::query("SELECT NOW(3)")
        .fetch_one(&world.db.pool)
        .await
        .expect("the database clock")
        .get(0)
}

#[tokio::test]
async fn a_process_whose_health_check_starts_failing_is_restarted_after_hang_after_and_not_before()
{
    let world = Fixture::new().await;
    let (name, first) = world.add_sleeper(1, "hang").await;
    let healthy = world.path("healthy");
    std::fs::write(&healthy, "").expect("create the file the health check tests");
    let go = world.path("go");
    let body = format!(
        "restart_strategy = process\nstart_command = touch {file} && exec {sleeper} 1000\n\
         health_check_command = test -f {file}\nhang_after = 2\nrestart_delay = 0\n{held}",
        file = healthy.display(),
        sleeper = world.sleeper(&name).display(),
        held = held_until(&go),
    );
    let monitor = "stats_interval = 0.2\nheartbeat_interval = 0.2\nauto_alarm = true\n\
                   dead_after = 2\ndead_recheck_interval = 0.01";
    let service = world.run_in_process(world.config(monitor, &section(&name, &body)));

    // Healthy for longer than hang_after: each good heartbeat starts the count again.
    wait_until(PATIENCE, "3 s of healthy heartbeats", || async {
        world
            .count(
                "SELECT COUNT(*) FROM PROCESS_SAMPLES WHERE process_id = ? \
                 AND kind = 'heartbeat' AND check_ok = 1",
                1,
            )
            .await
            >= 15
    })
    .await;
    assert_eq!(world.status(1).await.0, 0, "a healthy process is not hung");
    assert_eq!(
        world
            .count(
                "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ?",
                1
            )
            .await,
        0
    );

    let removed_at = database_now(&world).await;
    std::fs::remove_file(&healthy).expect("remove the file the health check tests");
    let note = wait_alarm_note(&world, "hung:").await;
    assert_eq!(note, "hung: no healthy heartbeat for 2 s");
    let (source, detected_at) = first_event(&world).await;
    assert_eq!(source, "hang");
    // The last healthy heartbeat ran at most one interval (and a check) before the removal.
    let waited = (detected_at - removed_at).num_milliseconds();
    assert!(waited >= 1500, "hung after {waited} ms, before hang_after");

    std::fs::write(&go, "").expect("let the restart go on");
    let (success, strategy, _, _) = world.wait_event(1).await;
    assert!(success);
    assert_eq!(strategy.as_deref(), Some("process"));
    let note = world.wait_cleared(1).await;
    assert!(note.starts_with("restarted via process"), "{note}");
    let old = i32::try_from(first.id()).expect("pid");
    let now = pids_of(&name);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0], old);
    assert!(healthy.exists(), "the start command made it healthy again");

    service.stop().await;
    kill_all(&name);
}

/// Starts `dd` under the name `name` (found by that name like any process): it fills a 64 MiB
/// buffer from /dev/zero and holds it while it waits to write into a pipe that a sleeper
/// called `reader` never reads. Only coreutils, present on every machine.
fn start_memory_hog(world: &Fixture, name: &str, reader: &str) -> common::fixture::Running {
    let dir = world.path("hog");
    std::fs::create_dir_all(&dir).expect("a folder for the hog");
    let hog = dir.join(name);
    let dd = ["/usr/bin/dd", "/bin/dd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("dd is installed");
    symlink(dd, &hog).expect("symlink to dd");
    let text = format!(
        "{} if=/dev/zero bs=64M count=1 status=none | {} 1000",
        hog.display(),
        world.sleeper(reader).display()
    );
    world.start(Path::new("/bin/sh"), &["-c", &text])
}

#[tokio::test]
async fn a_process_that_allocates_past_max_memory_is_restarted_even_without_auto_alarm() {
    let world = Fixture::new().await;
    let name = world.unique_name("mem");
    let reader = world.unique_name("memr");
    let _hog = start_memory_hog(&world, &name, &reader);
    world.add_process(1, &name).await;
    let go = world.path("go");
    let body = format!(
        "restart_strategy = process\nstart_command = {}\nhealth_check_command = pgrep -x %s\n\
         max_memory = 32M\nrestart_delay = 0\n{}",
        world.start_command(&name),
        held_until(&go),
    );
    let monitor = "stats_interval = 0.2\nauto_alarm = false\ndead_after = 2";
    let service = world.run_in_process(world.config(monitor, &section(&name, &body)));

    let note = wait_alarm_note(&world, "memory:").await;
    assert!(
        note.ends_with(" MiB above max_memory 32.0 MiB for 2 samples"),
        "{note}"
    );
    let figure: f64 = note
        .trim_start_matches("memory: ")
        .split(' ')
        .next()
        .and_then(|mib| mib.parse().ok())
        .unwrap_or_else(|| panic!("no figure in {note:?}"));
    assert!(figure >= 64.0, "{note}");
    let (source, _) = first_event(&world).await;
    assert_eq!(source, "memory");

    std::fs::write(&go, "").expect("let the restart go on");
    let (success, _, _, _) = world.wait_event(1).await;
    assert!(success);
    world.wait_cleared(1).await;
    // The sleeper that replaced the hog uses little: it is not alarmed again.
    let now = pids_of(&name);
    assert_eq!(now.len(), 1, "{now:?}");

    service.stop().await;
    kill_all(&name);
    kill_all(&reader);
}

#[tokio::test]
async fn a_process_that_exits_a_second_after_each_start_ends_with_an_open_breaker_after_max_restarts()
 {
    let world = Fixture::new().await;
    let name = world.unique_name("loop");
    world.add_process(1, &name).await;
    let body = format!(
        "restart_strategy = process\nstart_command = exec {} 1\n\
         health_check_command = pgrep -x %s\nrestart_delay = 0\nmax_attempts = 1\n\
         max_restarts = 3\nrestart_window = 60",
        world.sleeper(&name).display()
    );
    let monitor = "stats_interval = 0.2\nauto_alarm = true\ndead_after = 1\n\
                   dead_recheck_interval = 0.01\nmax_restart_failures = 3";
    let service = world.run_in_process(world.config(monitor, &section(&name, &body)));

    wait_until(PATIENCE, "the breaker is open", || async {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM CIRCUIT_BREAKER WHERE process_id = 1")
                .fetch_optional(&world.db.pool)
                .await
                .expect("read CIRCUIT_BREAKER");
        state.as_deref() == Some("open")
    })
    .await;
    let restarts = world
        .count(
            "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ? AND success = 1",
            1,
        )
        .await;
    assert_eq!(restarts, 3, "max_restarts good restarts, then none");
    let refused = world
        .count(
            "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ? AND success = 0 \
             AND attempts = 0 AND error = 'crash loop: 3 restarts in 60 s'",
            1,
        )
        .await;
    assert_eq!(refused, 3, "each refusal is a failure for the breaker");
    let (alarm, note) = world.status(1).await;
    assert_eq!(alarm, 1, "the alarm stays raised");
    let note = note.unwrap_or_default();
    assert!(
        note.starts_with("crash loop: 3 restarts in 60 s: circuit breaker open until "),
        "{note}"
    );

    service.stop().await;
    kill_all(&name);
}
