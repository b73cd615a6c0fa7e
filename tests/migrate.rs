//! The schema: migrations on a fresh database, on one made by the original `setup.sql`, and
//! through the `migrate` and `check-config --db` commands; a migration that failed part-way,
//! migrators running at once, and `run` on a fresh database.

mod common;

use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use common::fixture::{Fixture, PATIENCE};
use common::{TestDb, monitor, monitor_bin, wait_until, wait_until_sync, write_config};
use monitor_service::db::{Database, MIGRATOR};
use nix::sys::signal::Signal;
use predicates::str::contains;
use sqlx::{Executor, Row};

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

/// A `PROCESE` made by another system with a wider key than the contract's: the foreign key
/// of `STATUS_PROCESS` cannot refer to it, so migration 1 fails after its first statement.
const FOREIGN_PROCESE: &str =
    "CREATE TABLE PROCESE (process_id BIGINT PRIMARY KEY, process_name VARCHAR(100) NOT NULL)";
const FIX_PROCESE: &str = "ALTER TABLE PROCESE MODIFY process_id INT NOT NULL";

/// A world whose database is empty (no migrations applied), unlike `Fixture::new`'s.
async fn unmigrated_world() -> Fixture {
    Fixture {
        db: TestDb::new().await,
        dir: tempfile::tempdir().expect("tempdir"),
    }
}

/// `(version, success)` of every row of `_sqlx_migrations`.
async fn applied(db: &TestDb) -> Vec<(i64, bool)> {
    sqlx::query("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&db.pool)
        .await
        .expect("read _sqlx_migrations")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn all_applied() -> Vec<(i64, bool)> {
    MIGRATOR.iter().map(|m| (m.version, true)).collect()
}

async fn assert_schema_complete(db: &TestDb) {
    assert_eq!(applied(db).await, all_applied());
    for table in [
        "STATUS_PROCESS",
        "RESTART_EVENTS",
        "ALARM_CLAIM",
        "MONITOR_INSTANCE",
        "HEALTH_SCORE",
        "PROCESS_UPTIME",
        "TOP_RESTARTERS",
    ] {
        assert!(!columns(db, table).await.is_empty(), "{table} exists");
    }
}

fn log(world: &Fixture) -> String {
    std::fs::read_to_string(world.path("monitor.log")).unwrap_or_default()
}

/// Runs the real service on the world's database until it has recorded its start (which the
/// sampler does once the schema is there), stops it, and returns its log.
async fn run_until_started(world: &Fixture) -> String {
    let text = world.config_text("stats_interval = 0.2", "");
    let mut service = world.spawn_binary(&world.write_config(&text));
    wait_until(PATIENCE, "the monitor records its start", || async {
        sqlx::query("SELECT 1 FROM MONITOR_INSTANCE WHERE host = 'testhost'")
            .fetch_optional(&world.db.pool)
            .await
            .is_ok_and(|row| row.is_some())
    })
    .await;
    service.signal(Signal::SIGTERM);
    assert_eq!(service.exit_code().await, Some(0));
    log(world)
}

#[tokio::test]
async fn migrations_can_run_again() {
    let db = TestDb::new().await;
    let database = Database::with_pool(db.pool.clone(), Duration::from_secs(30));
    database.migrate().await.expect("migrate");
    for migration in MIGRATOR.iter() {
        db.pool
            .execute(migration.sql.clone())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "migration {} fails when applied again: {error}",
                    migration.version
                )
            });
    }
    database.migrate().await.expect("migrate after that");
    assert_schema_complete(&db).await;
}

#[tokio::test]
async fn a_migration_that_failed_part_way_is_applied_again_once_its_cause_is_fixed() {
    let world = unmigrated_world().await;
    sqlx::query(FOREIGN_PROCESE)
        .execute(&world.db.pool)
        .await
        .expect("PROCESE of another system");
    let config = world.write_config(&world.config_text("", ""));

    monitor(&config)
        .arg("migrate")
        .assert()
        .code(70)
        .stderr(contains("Foreign key constraint"));
    assert_eq!(applied(&world.db).await, [(1, false)]);
    monitor(&config)
        .args(["check-config", "--db"])
        .assert()
        .code(69)
        .stderr(contains("migration 1 (original tables) failed part-way"));

    sqlx::query(FIX_PROCESE)
        .execute(&world.db.pool)
        .await
        .expect("fix PROCESE");
    monitor(&config)
        .arg("migrate")
        .assert()
        .success()
        .stdout(contains(format!(
            "{} migrations applied",
            MIGRATOR.iter().count()
        )));
    assert_schema_complete(&world.db).await;
    monitor(&config)
        .args(["check-config", "--db"])
        .assert()
        .success()
        .stdout(contains("; database: reachable, schema up to date"));
}

#[tokio::test]
async fn run_applies_a_migration_that_failed_part_way_once_its_cause_is_fixed() {
    let world = unmigrated_world().await;
    sqlx::query(FOREIGN_PROCESE)
        .execute(&world.db.pool)
        .await
        .expect("PROCESE of another system");
    let database = Database::with_pool(world.db.pool.clone(), Duration::from_secs(30));
    let failed = database.migrate().await.expect_err("the foreign key fails");
    assert!(failed.to_string().contains("Foreign key"), "{failed}");
    sqlx::query(FIX_PROCESE)
        .execute(&world.db.pool)
        .await
        .expect("fix PROCESE");

    let log = run_until_started(&world).await;
    assert_schema_complete(&world.db).await;
    assert!(!log.contains("partially applied"), "{log}");
    assert!(log.contains("applying it again"), "{log}");
}

#[tokio::test]
async fn four_migrate_commands_at_once_all_succeed() {
    let world = unmigrated_world().await;
    // A database that does not exist yet, so that all four create it too.
    let fresh = format!("{}_new", world.db.name);
    let section = world.db.database_section().replace(
        &format!("database = {}", world.db.name),
        &format!("database = {fresh}"),
    );
    let config = world.write_config(&world.config_text_with(&section, "", ""));
    let mut migrators: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(monitor_bin())
                .arg("-c")
                .arg(&config)
                .arg("migrate")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start migrate")
        })
        .collect();
    wait_until_sync(PATIENCE * 3, "the four migrators exit", || {
        migrators
            .iter_mut()
            .all(|child| child.try_wait().is_ok_and(|status| status.is_some()))
    });
    let mut applied_in_all = 0;
    for child in migrators {
        let output = child.wait_with_output().expect("migrate output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let applied: usize = stdout
            .split(": ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("says how many it applied: {stdout}"));
        applied_in_all += applied;
    }
    assert_eq!(applied_in_all, MIGRATOR.iter().count(), "each applied once");

    let options = world.db.connect_options().database(&fresh);
    let pool = sqlx::mysql::MySqlPool::connect_with(options)
        .await
        .expect("connect to the new database");
    let rows: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .expect("read _sqlx_migrations");
    assert_eq!(rows, all_applied());
    let locks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM MIGRATION_LOCK")
        .fetch_one(&pool)
        .await
        .expect("read MIGRATION_LOCK");
    assert_eq!(locks, 0, "the lock is released");
    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{fresh}`")))
        .execute(&world.db.pool)
        .await
        .expect("drop");
}

#[tokio::test]
async fn a_database_migrated_before_the_run_again_rule_is_accepted() {
    let db = TestDb::new().await;
    let database = Database::with_pool(db.pool.clone(), Duration::from_secs(30));
    database.migrate().await.expect("migrate");
    // What releases before the rule recorded for 0003 and 0004 (sha384sum of their files).
    for (version, earlier) in [
        (
            3,
            "E45D2310A6F87DBDEA7C87A542574995E3FB5C052550F2D12908FE09F2ECCCF5\
             38EDFD3504F81A60DE8D867293E9169E",
        ),
        (
            4,
            "BD3E59B88FF9320B38E0320D8797DC21A8A2AE8CCBC4916E4BEE7688371AB2B5\
             FB2F19D0765426D4EC3FECD7E74607BA",
        ),
    ] {
        sqlx::query("UPDATE _sqlx_migrations SET checksum = UNHEX(?) WHERE version = ?")
            .bind(earlier)
            .bind(version)
            .execute(&db.pool)
            .await
            .expect("record an earlier checksum");
    }
    assert_eq!(database.apply_migrations().await.expect("migrate"), 0);
    database.migrate().await.expect("and again");

    // Any other change to an applied migration is still refused.
    sqlx::query(
        "UPDATE _sqlx_migrations SET checksum = UNHEX(SHA2('edited', 384)) WHERE version = 3",
    )
    .execute(&db.pool)
    .await
    .expect("record a foreign checksum");
    let refused = database.migrate().await.expect_err("an edited migration");
    assert!(
        refused
            .to_string()
            .contains("migration 3 was previously applied but has been modified"),
        "{refused}"
    );
}

#[tokio::test]
async fn run_on_a_fresh_database_logs_no_error() {
    let world = unmigrated_world().await;
    let log = run_until_started(&world).await;
    assert_schema_complete(&world.db).await;
    let errors: Vec<&str> = log.lines().filter(|line| line.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test]
async fn a_lock_left_by_a_migrator_that_died_is_taken_over_once_it_expires() {
    let db = TestDb::new().await;
    let database = Database::with_pool(db.pool.clone(), Duration::from_secs(30));
    database.migrate().await.expect("migrate");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 4")
        .execute(&db.pool)
        .await
        .expect("one migration pending");
    // A migrator killed while its lock had a second left.
    sqlx::query(
        "INSERT INTO MIGRATION_LOCK (id, owner, acquired_at, expires_at) \
         VALUES (1, 'migrate@gone/1/1', NOW(3), NOW(3) + INTERVAL 1 SECOND)",
    )
    .execute(&db.pool)
    .await
    .expect("a dead migrator's lock");

    assert_eq!(database.apply_migrations().await.expect("migrate"), 1);
    assert_schema_complete(&db).await;
    let locks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM MIGRATION_LOCK")
        .fetch_one(&db.pool)
        .await
        .expect("read MIGRATION_LOCK");
    assert_eq!(locks, 0, "the lock is released");
}

#[tokio::test]
async fn run_stops_at_once_while_its_migrations_wait_for_another_migrators_lock() {
    let world = unmigrated_world().await;
    let database = Database::with_pool(world.db.pool.clone(), Duration::from_secs(30));
    database.migrate().await.expect("migrate");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 4")
        .execute(&world.db.pool)
        .await
        .expect("one migration pending");
    // A live migrator that holds the lock for an hour.
    sqlx::query(
        "INSERT INTO MIGRATION_LOCK (id, owner, acquired_at, expires_at) \
         VALUES (1, 'migrate@elsewhere/1/1', NOW(3), NOW(3) + INTERVAL 1 HOUR)",
    )
    .execute(&world.db.pool)
    .await
    .expect("another migrator's lock");
    let text = world.config_text("stats_interval = 0.2", "");
    let mut service = world.spawn_binary(&world.write_config(&text));
    wait_until(
        PATIENCE,
        "the monitor says it waits for the lock",
        || async {
            log(&world).contains("waiting for the migration lock held by migrate@elsewhere")
        },
    )
    .await;

    service.signal(Signal::SIGTERM);
    assert_eq!(service.exit_code().await, Some(0));
    assert_eq!(applied(&world.db).await.len(), MIGRATOR.iter().count() - 1);
}
