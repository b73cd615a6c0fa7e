//! The schema: migrations on a fresh database, on one made by the original `setup.sql`, and
//! through the `migrate` and `check-config --db` commands.

mod common;

use std::time::Duration;

use assert_cmd::Command;
use common::{TestDb, monitor_bin, write_config};
use monitor_service::db::Database;
use predicates::str::contains;
use sqlx::Row;

/// The original design's setup.sql, as other systems already ran it.
const SETUP_SQL: &[&str] = &[
    "CREATE TABLE PROCESE (process_id INT PRIMARY KEY, process_name VARCHAR(100) NOT NULL)",
    "CREATE TABLE STATUS_PROCESS (process_id INT PRIMARY KEY, alarma TINYINT NOT NULL DEFAULT 0, \
     sound TINYINT NOT NULL DEFAULT 0, notes VARCHAR(100), \
     FOREIGN KEY (process_id) REFERENCES PROCESE(process_id))",
    "INSERT INTO PROCESE VALUES (1, 'httpd'), (2, 'mysqld')",
    "INSERT INTO STATUS_PROCESS VALUES (1, 1, 1, 'raised by the NOC'), (2, 0, 0, NULL)",
];

async fn columns(db: &TestDb, table: &str) -> Vec<String> {
    sqlx::query(
        "SELECT CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE, ' ', IS_NULLABLE) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(&db.pool)
    .await
    .expect("read columns")
    .iter()
    .map(|row| row.get(0))
    .collect()
}

#[tokio::test]
async fn migrations_keep_the_original_tables_and_their_data() {
    let db = TestDb::new().await;
    for statement in SETUP_SQL {
        sqlx::query(*statement)
            .execute(&db.pool)
            .await
            .expect("setup.sql");
    }
    let before = (
        columns(&db, "PROCESE").await,
        columns(&db, "STATUS_PROCESS").await,
    );
    let database = Database::with_pool(db.pool.clone(), Duration::from_secs(30));
    database.migrate().await.expect("migrate over setup.sql");
    database
        .migrate()
        .await
        .expect("migrating twice is a no-op");

    assert_eq!(columns(&db, "PROCESE").await, before.0);
    assert_eq!(columns(&db, "STATUS_PROCESS").await, before.1);
    let row = sqlx::query("SELECT alarma, sound, notes FROM STATUS_PROCESS WHERE process_id = 1")
        .fetch_one(&db.pool)
        .await
        .expect("data kept");
    assert_eq!(row.get::<i8, _>(0), 1);
    assert_eq!(row.get::<i8, _>(1), 1);
    assert_eq!(row.get::<String, _>(2), "raised by the NOC");
    for table in ["RESTART_EVENTS", "CIRCUIT_BREAKER", "ALARM_CLAIM"] {
        assert!(!columns(&db, table).await.is_empty(), "{table} exists");
    }
    db.drop_database().await;
}

#[tokio::test]
async fn a_fresh_database_gets_the_contract_columns() {
    let db = TestDb::new().await;
    Database::with_pool(db.pool.clone(), Duration::from_secs(30))
        .migrate()
        .await
        .expect("migrate");
    assert_eq!(
        columns(&db, "PROCESE").await,
        ["process_id int(11) NO", "process_name varchar(100) NO"]
    );
    assert_eq!(
        columns(&db, "STATUS_PROCESS").await,
        [
            "process_id int(11) NO",
            "alarma tinyint(4) NO",
            "sound tinyint(4) NO",
            "notes varchar(100) YES"
        ]
    );
    db.drop_database().await;
}

#[tokio::test]
async fn the_migrate_command_creates_the_database_and_check_config_sees_it() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = format!("{}_new", db.name);
    let section = db.database_section().replace(
        &format!("database = {}", db.name),
        &format!("database = {fresh}"),
    );
    let config = write_config(dir.path(), &section);

    Command::new(monitor_bin())
        .args(["-c", config.to_str().expect("utf-8 path"), "migrate"])
        .assert()
        .success()
        .stdout(contains("schema up to date"));
    Command::new(monitor_bin())
        .args([
            "-c",
            config.to_str().expect("utf-8 path"),
            "check-config",
            "--db",
        ])
        .assert()
        .success()
        .stdout(contains("; database: reachable, schema up to date"));

    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{fresh}`")))
        .execute(&db.pool)
        .await
        .expect("drop");
    db.drop_database().await;
}

#[test]
fn migrate_exits_69_when_the_database_is_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Port 9 (discard) on loopback: nothing listens there.
    let config = write_config(
        dir.path(),
        "[database]\nhost = 127.0.0.1\nport = 9\nconnect_timeout = 1\n",
    );
    Command::new(monitor_bin())
        .args(["-c", config.to_str().expect("utf-8 path"), "migrate"])
        .assert()
        .code(69)
        .stderr(contains("monitor_service: "));
}
