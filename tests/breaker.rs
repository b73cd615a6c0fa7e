//! Circuit breakers and claims, through the service running in-process against MariaDB.

mod common;

use common::fixture::{Fixture, PATIENCE, kill_all};
use common::wait_for;
use sqlx::Row;

/// A process whose restart always fails at once.
fn failing(name: &str) -> String {
    format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = exit 1\n\
         max_attempts = 1\nrestart_delay = 0\n"
    )
}

/// A process whose restart always works.
fn working(name: &str) -> String {
    format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = true\n\
         health_check_command = true\nmax_attempts = 1\n"
    )
}

async fn breaker(world: &Fixture, id: i32) -> Option<(String, i32, bool)> {
    sqlx::query(
        "SELECT state, consecutive_failures, opened_at > NOW(3) - INTERVAL 1 MINUTE \
         FROM CIRCUIT_BREAKER WHERE process_id = ?",
    )
    .bind(id)
    .fetch_optional(&world.db.pool)
    .await
    .expect("read CIRCUIT_BREAKER")
    .map(|row| {
        (
            row.get(0),
            row.get(1),
            row.get::<Option<i64>, _>(2).unwrap_or(0) != 0,
        )
    })
}

async fn events(world: &Fixture, id: i32) -> i64 {
    world
        .count(
            "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ?",
            id,
        )
        .await
}

async fn set_breaker(world: &Fixture, id: i32, state: &str, failures: i32, opened_ago_s: i64) {
    sqlx::query(
        "INSERT INTO CIRCUIT_BREAKER (process_id, state, consecutive_failures, opened_at, updated_at) \
         VALUES (?, ?, ?, NOW(3) - INTERVAL ? SECOND, NOW(3))",
    )
    .bind(id)
    .bind(state)
    .bind(failures)
    .bind(opened_ago_s)
    .execute(&world.db.pool)
    .await
    .expect("write CIRCUIT_BREAKER");
}

/// Raises a fresh alarm on a process that always restarts, and waits until it is handled:
/// proof that the service has polled since everything before it.
async fn prove_a_poll_happened(world: &Fixture, id: i32) {
    world.raise_alarm(id).await;
    world.wait_cleared(id).await;
}

#[tokio::test]
async fn breaker_opens_after_max_restart_failures_and_then_refuses_with_a_note() {
    let world = Fixture::new().await;
    let (name, probe) = (world.unique_name("bo"), world.unique_name("probe"));
    let config = world.config(
        "max_restart_failures = 2\ncircuit_reset_time = 3600",
        &format!("{}\n{}", failing(&name), working(&probe)),
    );
    world.add_process(1, &name).await;
    world.add_process(2, &probe).await;
    let service = world.run_in_process(config);
    world.raise_alarm(1).await;

    let note = wait_for(PATIENCE, "the breaker's note", || async {
        world
            .status(1)
            .await
            .1
            .filter(|n| n.starts_with("circuit breaker open"))
    })
    .await;
    assert!(
        note.starts_with("circuit breaker open after 2 failed restarts: no restart until "),
        "{note}"
    );
    assert_eq!(breaker(&world, 1).await, Some(("open".into(), 2, true)));
    assert_eq!(world.status(1).await.0, 1, "the alarm stays raised");

    prove_a_poll_happened(&world, 2).await;
    prove_a_poll_happened(&world, 2).await;
    assert_eq!(events(&world, 1).await, 2, "no restart tried while open");

    service.stop().await;
}

#[tokio::test]
async fn the_breaker_survives_a_restart_of_the_service() {
    let world = Fixture::new().await;
    let (name, probe) = (world.unique_name("bs"), world.unique_name("probe"));
    let sections = format!("{}\n{}", failing(&name), working(&probe));
    let monitor = "max_restart_failures = 1\ncircuit_reset_time = 3600";
    world.add_process(1, &name).await;
    world.add_process(2, &probe).await;
    world.raise_alarm(1).await;

    let first = world.run_in_process(world.config(monitor, &sections));
    wait_for(PATIENCE, "the breaker to open", || async {
        breaker(&world, 1).await.filter(|b| b.0 == "open")
    })
    .await;
    first.stop().await;

    let second = world.run_in_process(world.config(monitor, &sections));
    prove_a_poll_happened(&world, 2).await;
    assert_eq!(
        events(&world, 1).await,
        1,
        "the new run respects the open breaker"
    );
    assert_eq!(breaker(&world, 1).await.map(|b| b.0), Some("open".into()));

    second.stop().await;
}

#[tokio::test]
async fn a_half_open_breaker_admits_one_trial_which_closes_it_on_success() {
    let world = Fixture::new().await;
    let name = world.unique_name("ho");
    world.add_process(1, &name).await;
    set_breaker(&world, 1, "open", 3, 7200).await;
    world.raise_alarm(1).await;

    let service = world.run_in_process(world.config("circuit_reset_time = 1800", &working(&name)));
    let note = world.wait_cleared(1).await;
    assert!(note.starts_with("restarted via process"), "{note}");
    assert_eq!(breaker(&world, 1).await, Some(("closed".into(), 0, false)));
    assert_eq!(events(&world, 1).await, 1, "exactly one trial");

    service.stop().await;
}

#[tokio::test]
async fn a_failed_trial_reopens_the_breaker_with_a_fresh_timer() {
    let world = Fixture::new().await;
    let name = world.unique_name("ft");
    world.add_process(1, &name).await;
    set_breaker(&world, 1, "open", 3, 7200).await;
    world.raise_alarm(1).await;

    let service = world.run_in_process(world.config(
        "circuit_reset_time = 1800\nmax_restart_failures = 3",
        &failing(&name),
    ));
    let reopened = wait_for(PATIENCE, "the trial to fail", || async {
        breaker(&world, 1).await.filter(|b| b.0 == "open" && b.2)
    })
    .await;
    assert_eq!(reopened, ("open".into(), 4, true));
    wait_for(PATIENCE, "the open note", || async {
        world
            .status(1)
            .await
            .1
            .filter(|n| n.starts_with("circuit breaker open"))
    })
    .await;
    assert_eq!(events(&world, 1).await, 1, "one trial, then refusals");

    service.stop().await;
}

#[tokio::test]
async fn two_monitors_sharing_the_database_never_handle_the_same_alarm_twice() {
    let world = Fixture::new().await;
    let name = world.unique_name("two");
    let counter = world.path("starts");
    let section = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = echo start >> {}\n\
         health_check_command = sleep 0.5\nmax_attempts = 1\n",
        counter.display()
    );
    world.add_process(1, &name).await;
    let text_a = world.config_text("", &section);
    let text_b = text_a
        .replace("host = testhost", "host = otherhost")
        .replace("monitor.lock", "other.lock");
    let a = world.run_in_process(world.parse(&text_a));
    let b = world.run_in_process(world.parse(&text_b));
    for _ in 0..5 {
        world.raise_alarm(1).await;
        world.wait_cleared(1).await;
    }
    a.stop().await;
    b.stop().await;
    let starts = std::fs::read_to_string(&counter).unwrap_or_default();
    assert_eq!(starts.lines().count(), 5, "each alarm handled exactly once");
    assert_eq!(events(&world, 1).await, 5);
}

#[tokio::test]
async fn a_claim_left_by_a_dead_monitor_expires_and_the_alarm_is_retried_once() {
    let world = Fixture::new().await;
    let name = world.unique_name("ce");
    world.add_process(1, &name).await;
    // A monitor on another host claimed the alarm and died: its lease runs out in 1.5 s.
    let expiry: chrono::DateTime<chrono::Utc> =
        sqlx::query("SELECT NOW(3) + INTERVAL 1500000 MICROSECOND")
            .fetch_one(&world.db.pool)
            .await
            .expect("read the clock")
            .get(0);
    sqlx::query(
        "INSERT INTO ALARM_CLAIM (process_id, owner, trigger_source, claimed_at, expires_at) \
         VALUES (1, 'daemon@elsewhere/1/1', 'alarm', NOW(3), ?)",
    )
    .bind(expiry)
    .execute(&world.db.pool)
    .await
    .expect("insert claim");
    world.raise_alarm(1).await;

    let service = world.run_in_process(world.config("", &working(&name)));
    world.wait_cleared(1).await;
    let row = sqlx::query("SELECT COUNT(*) FROM ALARM_CLAIM")
        .fetch_one(&world.db.pool)
        .await
        .expect("count claims");
    assert_eq!(row.get::<i64, _>(0), 0, "the claim was released");
    assert_eq!(events(&world, 1).await, 1, "retried once");
    let started: chrono::DateTime<chrono::Utc> =
        sqlx::query("SELECT started_at FROM RESTART_EVENTS WHERE process_id = 1")
            .fetch_one(&world.db.pool)
            .await
            .expect("read the event")
            .get(0);
    assert!(
        started >= expiry,
        "not before the lease ran out: {started} < {expiry}"
    );

    service.stop().await;
    kill_all(&name);
}
