//! One process name, one cycle at a time on a host: two `PROCESE` rows naming the same
//! process, a manual command reaching it through another id, and expired claims in the way.

mod common;

use std::time::Duration;

use assert_cmd::Command;
use chrono::{DateTime, Utc};
use common::fixture::{Fixture, kill_all, pids_of};
use monitor_service::alarm::TriggerSource;
use monitor_service::db::Database;
use monitor_service::db::claims::{self, Claim, ClaimKey};
use predicates::prelude::*;
use sqlx::Row;

#[tokio::test]
async fn two_alarms_on_one_process_name_are_handled_one_after_the_other() {
    let world = Fixture::new().await;
    let name = world.unique_name("twin");
    world.add_process(6, &name).await;
    world.add_process(7, &name).await;
    // A health check that takes a while keeps each cycle open long enough for two at once to
    // overlap, were they allowed to.
    let section = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = {}\n\
         health_check_command = sleep 0.3; pgrep -x %s\nhealth_check_timeout = 5\n\
         restart_delay = 0\nmax_attempts = 1\nstop_timeout = 5\n",
        world.start_command(&name)
    );
    let service = world.run_in_process(world.config("", &section));
    sqlx::query("UPDATE STATUS_PROCESS SET alarma = 1 WHERE process_id IN (6, 7)")
        .execute(&world.db.pool)
        .await
        .expect("raise both alarms");

    for id in [6, 7] {
        let note = world.wait_cleared(id).await;
        assert!(note.starts_with("restarted via process"), "{id}: {note}");
    }
    assert_eq!(pids_of(&name).len(), 1, "exactly one instance runs");
    let rows = sqlx::query(
        "SELECT process_id, started_at, finished_at, success FROM RESTART_EVENTS ORDER BY id",
    )
    .fetch_all(&world.db.pool)
    .await
    .expect("read the events");
    assert_eq!(rows.len(), 2, "one cycle per alarm");
    let spans: Vec<(i32, DateTime<Utc>, DateTime<Utc>, i8)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert!(spans.iter().all(|s| s.3 == 1), "{spans:?}");
    assert_ne!(spans[0].0, spans[1].0, "{spans:?}");
    assert!(spans[0].2 <= spans[1].1, "the cycles overlapped: {spans:?}");
    let failures = world
        .count(
            "SELECT COUNT(*) FROM CIRCUIT_BREAKER \
             WHERE consecutive_failures > 0 AND process_id <> ?",
            0,
        )
        .await;
    assert_eq!(failures, 0, "no breaker failure");

    service.stop().await;
    kill_all(&name);
}

#[tokio::test]
async fn a_manual_restart_is_refused_while_the_same_name_is_claimed_through_another_id() {
    let world = Fixture::new().await;
    let name = world.unique_name("alias");
    world.add_process(1, &name).await;
    world.add_process(2, &name).await;
    let live_claim = "INSERT INTO ALARM_CLAIM \
        (process_id, host, process_name, owner, trigger_source, claimed_at, expires_at) \
        VALUES (2, 'testhost', ?, 'daemon@testhost/1/1', 'alarm', NOW(3), NOW(3) + INTERVAL 1 HOUR)";
    sqlx::query(live_claim)
        .bind(&name)
        .execute(&world.db.pool)
        .await
        .expect("claim");
    let section = format!("[process.{name}]\nrestart_strategy = process\nstart_command = true\n");
    let config = world.write_config(&world.config_text("", &section));
    Command::new(common::monitor_bin())
        .arg("-c")
        .arg(&config)
        .args(["restart", &name])
        .assert()
        // 75: temporarily unavailable, try again when the other cycle is done.
        .code(75)
        .stderr(predicate::str::contains(
            "being handled by daemon@testhost/1/1",
        ));
    let events = world
        .count(
            "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id > ?",
            0,
        )
        .await;
    assert_eq!(events, 0, "nothing was run");
}

#[tokio::test]
async fn an_expired_claim_on_the_same_name_is_taken_over_by_exactly_one_claimant() {
    let world = Fixture::new().await;
    let db = Database::with_pool(world.db.pool.clone(), Duration::from_secs(10));
    // A dead monitor's claim on the name through id 9, expired.
    sqlx::query(
        "INSERT INTO ALARM_CLAIM \
         (process_id, host, process_name, owner, trigger_source, claimed_at, expires_at) \
         VALUES (9, 'testhost', 'x', 'daemon@testhost/1/1', 'alarm', NOW(3) - INTERVAL 2 MINUTE, \
         NOW(3) - INTERVAL 1 MINUTE)",
    )
    .execute(&world.db.pool)
    .await
    .expect("expired claim");
    let lease = Duration::from_secs(60);
    let key = |process_id| ClaimKey {
        process_id,
        host: "testhost",
        process_name: "x",
    };
    let claimants = (0..8).map(|n| {
        let db = db.clone();
        async move {
            let owner = format!("claimant{n}");
            claims::claim(&db, key(6 + n % 2), &owner, TriggerSource::Alarm, lease).await
        }
    });
    let outcomes: Vec<Claim> = futures_outcomes(claimants).await;
    let winners = outcomes.iter().filter(|c| c.is_ours()).count();
    assert_eq!(winners, 1, "{outcomes:?}");
    let rows = world
        .count(
            "SELECT COUNT(*) FROM ALARM_CLAIM WHERE process_name = 'x' AND process_id <> ?",
            9,
        )
        .await;
    assert_eq!(rows, 1, "the expired claim was replaced by the winner's");
}

/// Runs the claimants at once, each on a task of its own.
async fn futures_outcomes<F>(claimants: impl Iterator<Item = F>) -> Vec<Claim>
where
    F: std::future::Future<Output = Result<Claim, monitor_service::db::DbError>> + Send + 'static,
{
    let tasks: Vec<_> = claimants.map(tokio::spawn).collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        let outcome = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("a claim answers within its deadline")
            .expect("the claimant did not panic")
            .expect("the claim reached the database");
        outcomes.push(outcome);
    }
    outcomes
}
