//! Notes fit `STATUS_PROCESS.notes VARCHAR(100)` under strict and non-strict `sql_mode`.

mod common;

use std::time::Duration;

use common::fixture::Fixture;
use monitor_service::db::{Database, alarms};
use sqlx::Executor;
use sqlx::mysql::MySqlPoolOptions;

/// A pool on the fixture's database whose sessions use `mode`.
async fn database_with_sql_mode(world: &Fixture, mode: &'static str) -> Database {
    let pool = MySqlPoolOptions::new()
        .max_connections(1)
        .after_connect(move |connection, _| {
            Box::pin(async move {
                connection
                    .execute(sqlx::AssertSqlSafe(format!(
                        "SET SESSION sql_mode = '{mode}'"
                    )))
                    .await
                    .map(|_| ())
            })
        })
        .connect_with(world.db.connect_options())
        .await
        .expect("connect");
    Database::with_pool(pool, Duration::from_secs(10))
}

async fn note_round_trip(mode: &'static str) {
    let world = Fixture::new().await;
    world.add_process(1, "noted").await;
    let db = database_with_sql_mode(&world, mode).await;
    // A multi-byte character (four bytes in UTF-8) at position 100, more after it.
    let text = format!("{}𝄞é and more", "n".repeat(99));

    let written = alarms::write_note_if_changed(&db, 1, &text)
        .await
        .expect("write the note");
    assert!(written, "a new note is written");
    let note = world.status(1).await.1.expect("a note");
    assert_eq!(note.chars().count(), 100);
    assert!(note.ends_with('𝄞'), "{note}");

    let changed = alarms::write_note_if_changed(&db, 1, &text)
        .await
        .expect("write again");
    assert!(!changed, "the same note is not written twice");
    db.close().await;
}

#[tokio::test]
async fn a_multibyte_character_at_position_100_fits_under_strict_sql_mode() {
    note_round_trip("STRICT_ALL_TABLES,STRICT_TRANS_TABLES").await;
}

#[tokio::test]
async fn a_multibyte_character_at_position_100_fits_under_non_strict_sql_mode() {
    note_round_trip("").await;
}
