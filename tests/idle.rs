//! What an idle host writes and reads (issue 13's fleet goal): between refreshes, a row of
//! `PROCESS_STATS` is written again only when its process changed state, and the health score
//! only when it moved; `PROCESE` and `RESTART_EVENTS` are read again when the poll saw them
//! change, which still happens at once.

mod common;

use chrono::{DateTime, Utc};
use common::fixture::{Fixture, PATIENCE};
use common::wait_until;
use sqlx::Row;

/// Samples every 0.2 s, polls every 0.2 s (the fixture's), no auto alarm, no heartbeat.
const QUICK: &str = "stats_interval = 0.2";

fn section(name: &str) -> String {
    format!("[process.{name}]\n")
}

/// `PROCESS_STATS.updated_at` of each process, by id.
async fn updated(world: &Fixture) -> Vec<(i32, DateTime<Utc>, i8)> {
    sqlx::query("SELECT process_id, updated_at, alive FROM PROCESS_STATS ORDER BY process_id")
        .fetch_all(&world.db.pool)
        .await
        .expect("read PROCESS_STATS")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

async fn scores(world: &Fixture) -> Vec<(f64, f64)> {
    sqlx::query("SELECT total, availability_status FROM HEALTH_SCORE ORDER BY id")
        .fetch_all(&world.db.pool)
        .await
        .expect("read HEALTH_SCORE")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test]
async fn an_idle_host_writes_again_only_the_rows_that_changed() {
    let world = Fixture::new().await;
    let (a, mut first) = world.add_sleeper(1, "qa").await;
    let (b, mut second) = world.add_sleeper(2, "qb").await;
    let config = world.config(QUICK, &format!("{}{}", section(&a), section(&b)));
    let service = world.run_in_process(config);
    wait_until(PATIENCE, "both processes sampled and a score", || async {
        updated(&world).await.len() == 2 && !scores(&world).await.is_empty()
    })
    .await;
    let before = updated(&world).await;
    let scored = scores(&world).await;

    // Ten samples of two sleeping processes: nothing to write but the samples.
    world.wait_samples(10).await;
    assert_eq!(
        updated(&world).await,
        before,
        "rows rewritten while nothing changed"
    );
    assert_eq!(
        scores(&world).await,
        scored,
        "scores written while the score stood"
    );

    // A death is a change of state: its row and a score go at the next sample; the other
    // process's row stays as it was.
    let _ = second.kill();
    let _ = second.wait();
    wait_until(
        PATIENCE,
        "the dead process's row and a lower score",
        || async {
            let rows = updated(&world).await;
            let scores = scores(&world).await;
            rows.get(1).is_some_and(|row| row.2 == 0)
                && scores
                    .last()
                    .is_some_and(|(_, availability)| *availability == 0.5)
        },
    )
    .await;
    assert_eq!(
        updated(&world).await[0],
        before[0],
        "the live process's row was rewritten"
    );

    service.stop().await;
    let _ = first.kill();
    let _ = first.wait();
    let _ = (a, b);
}

#[tokio::test]
async fn a_process_added_to_procese_and_a_restart_recorded_elsewhere_are_seen_at_once() {
    let world = Fixture::new().await;
    let (a, mut first) = world.add_sleeper(1, "na").await;
    let b = world.unique_name("nb");
    let mut second = world.start_sleeper(&b);
    let text = world.config_text(QUICK, &format!("{}{}", section(&a), section(&b)))
        + "[health]\nwindow = 600\n";
    let service = world.run_in_process(world.parse(&text));
    wait_until(PATIENCE, "the first process sampled", || async {
        updated(&world).await.len() == 1
    })
    .await;
    world.wait_samples(3).await;

    // Another system adds the second process to PROCESE: it is sampled without a reload.
    world.add_process(2, &b).await;
    wait_until(PATIENCE, "the process added to PROCESE sampled", || async {
        updated(&world).await.len() == 2
    })
    .await;

    // A restart recorded by another client (the CLI's `restart`) counts in the health
    // window at the next sample, though this monitor did not do it.
    sqlx::query(
        "INSERT INTO RESTART_EVENTS (process_id, process_name, host, trigger_source, \
         detected_at, started_at, finished_at, strategy, attempts, success) \
         VALUES (1, ?, 'testhost', 'manual', NOW(3), NOW(3), NOW(3), 'process', 1, 1)",
    )
    .bind(&a)
    .execute(&world.db.pool)
    .await
    .expect("record a restart");
    wait_until(
        PATIENCE,
        "the restart counted in the health score",
        || async {
            sqlx::query("SELECT restarts_in_window FROM HEALTH_SCORE ORDER BY id DESC LIMIT 1")
                .fetch_optional(&world.db.pool)
                .await
                .expect("read HEALTH_SCORE")
                .is_some_and(|row| row.get::<i32, _>(0) == 1)
        },
    )
    .await;
    wait_until(PATIENCE, "the restart counted in PROCESS_STATS", || async {
        world
            .count(
                "SELECT COUNT(*) FROM PROCESS_STATS WHERE process_id = ? AND total_restarts = 1",
                1,
            )
            .await
            == 1
    })
    .await;

    service.stop().await;
    for running in [&mut first, &mut second] {
        let _ = running.kill();
        let _ = running.wait();
    }
}
