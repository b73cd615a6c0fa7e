//! Tests of the shared test helpers in `tests/common`, against the real MariaDB: if these fail,
//! the other integration tests cannot be trusted.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{DbProxy, TestDb, database_exists, wait_for, wait_until, wait_until_sync};
use sqlx::mysql::{MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::{Connection, MySql};

async fn current_database(pool: &MySqlPool) -> Option<String> {
    sqlx::query_scalar::<MySql, Option<String>>("SELECT DATABASE()")
        .fetch_one(pool)
        .await
        .expect("SELECT DATABASE() answers")
}

/// A pool through the proxy that gives up quickly, as the service would with a short timeout.
async fn pool_through(db: &TestDb, proxy: &DbProxy) -> Result<MySqlPool, sqlx::Error> {
    MySqlPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(db.connect_options().host("127.0.0.1").port(proxy.port()))
        .await
}

async fn select_one(pool: &MySqlPool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar::<MySql, i32>("SELECT 1")
        .fetch_one(pool)
        .await
}

#[tokio::test]
async fn test_db_creates_a_fresh_empty_database_and_drop_removes_it() {
    let db = TestDb::new().await;
    assert!(db.name.starts_with("test_"), "{}", db.name);
    assert!(database_exists(&db.name).await);
    assert_eq!(current_database(&db.pool).await.as_deref(), Some(&*db.name));
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    )
    .fetch_one(&db.pool)
    .await
    .expect("information_schema.TABLES is readable");
    assert_eq!(tables, 0);

    let name = db.name.clone();
    drop(db);
    assert!(!database_exists(&name).await);
}

#[tokio::test]
async fn a_test_db_dropped_by_a_failing_test_is_kept_for_inspection() {
    let db = TestDb::new().await;
    let name = db.name.clone();
    // The database is dropped while this panic unwinds, as at the end of a failing test.
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _db = db;
        panic!("a test fails while holding its database");
    }));
    assert!(failed.is_err());
    assert!(database_exists(&name).await, "{name} was dropped");

    let mut connection = common::server_connection().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{name}`")))
        .execute(&mut connection)
        .await
        .expect("the kept database can be dropped by hand");
}

#[tokio::test]
async fn test_dbs_created_together_are_distinct() {
    let (first, second) = tokio::join!(TestDb::new(), TestDb::new());
    assert_ne!(first.name, second.name);
}

#[tokio::test]
async fn test_db_url_and_database_section_point_at_the_test_database() {
    let db = TestDb::new().await;
    let pool = MySqlPool::connect(&db.url()).await.expect("url() connects");
    assert_eq!(current_database(&pool).await.as_deref(), Some(&*db.name));
    pool.close().await;

    let section = db.database_section_on_port(4242);
    assert!(section.starts_with("[database]\n"), "{section}");
    assert!(section.contains("host = 127.0.0.1\n"), "{section}");
    assert!(section.contains("port = 4242\n"), "{section}");
    assert!(
        section.contains(&format!("user = {}\n", db.user())),
        "{section}"
    );
    assert!(
        section.contains(&format!("database = {}\n", db.name)),
        "{section}"
    );
    let direct = db.database_section();
    assert!(
        direct.contains(&format!("host = {}\nport = {}\n", db.host(), db.port())),
        "{direct}"
    );
}

#[tokio::test]
async fn db_proxy_forwards_queries_to_the_database() {
    let db = TestDb::new().await;
    let proxy = DbProxy::start(db.server_addr()).await;
    let pool = pool_through(&db, &proxy).await.expect("the proxy forwards");
    assert_eq!(
        select_one(&pool).await.expect("SELECT 1 through the proxy"),
        1
    );
    assert_eq!(current_database(&pool).await.as_deref(), Some(&*db.name));
    assert!(proxy.open_connections() >= 1);
    pool.close().await;
}

#[tokio::test]
async fn db_proxy_cut_closes_open_connections() {
    let db = TestDb::new().await;
    let proxy = DbProxy::start(db.server_addr()).await;
    let options = db.connect_options().host("127.0.0.1").port(proxy.port());
    let mut connection = MySqlConnection::connect_with(&options)
        .await
        .expect("a connection through the proxy");
    connection.ping().await.expect("the connection works");

    proxy.cut();
    assert_eq!(proxy.open_connections(), 0);
    assert!(
        connection.ping().await.is_err(),
        "a cut connection still answers"
    );
}

#[tokio::test]
async fn db_proxy_refuses_new_connections_after_cut_and_accepts_them_after_restore() {
    let db = TestDb::new().await;
    let proxy = DbProxy::start(db.server_addr()).await;
    let port = proxy.port();

    proxy.cut();
    let refused = pool_through(&db, &proxy).await;
    assert!(refused.is_err(), "connected through a cut proxy");

    proxy.restore().await;
    assert_eq!(proxy.port(), port);
    let pool = pool_through(&db, &proxy)
        .await
        .expect("the restored proxy forwards again");
    assert_eq!(select_one(&pool).await.expect("SELECT 1 after restore"), 1);
    pool.close().await;
}

#[tokio::test]
async fn a_pool_recovers_through_the_proxy_after_a_cut() {
    let db = TestDb::new().await;
    let proxy = DbProxy::start(db.server_addr()).await;
    let pool = pool_through(&db, &proxy).await.expect("the proxy forwards");
    select_one(&pool).await.expect("SELECT 1 before the cut");

    proxy.cut();
    assert!(
        select_one(&pool).await.is_err(),
        "a query went through a cut proxy"
    );

    proxy.restore().await;
    wait_until(Duration::from_secs(10), "the pool reconnects", || async {
        select_one(&pool).await.is_ok()
    })
    .await;
    pool.close().await;
}

#[tokio::test]
async fn wait_until_returns_as_soon_as_the_condition_holds() {
    let calls = AtomicUsize::new(0);
    wait_until(Duration::from_secs(10), "the third call", || async {
        calls.fetch_add(1, Ordering::SeqCst) + 1 == 3
    })
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn wait_until_sees_a_condition_set_by_another_task() {
    let flag = Arc::new(AtomicBool::new(false));
    let setter = Arc::clone(&flag);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        setter.store(true, Ordering::SeqCst);
    });
    wait_until(Duration::from_secs(10), "the flag is set", || {
        let flag = Arc::clone(&flag);
        async move { flag.load(Ordering::SeqCst) }
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "waiting until the impossible happens")]
async fn wait_until_panics_with_what_it_waited_for_at_the_deadline() {
    wait_until(
        Duration::from_millis(100),
        "the impossible happens",
        || async { false },
    )
    .await;
}

#[tokio::test]
async fn wait_for_returns_the_value_found() {
    let calls = AtomicUsize::new(0);
    let found = wait_for(Duration::from_secs(10), "a value", || async {
        let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
        (call == 2).then_some(call * 10)
    })
    .await;
    assert_eq!(found, 20);
}

#[test]
fn wait_until_sync_returns_as_soon_as_the_condition_holds() {
    let mut calls = 0;
    wait_until_sync(Duration::from_secs(10), "the second call", || {
        calls += 1;
        calls == 2
    });
    assert_eq!(calls, 2);
}

#[test]
#[should_panic(expected = "waiting until never")]
fn wait_until_sync_panics_at_the_deadline() {
    wait_until_sync(Duration::from_millis(50), "never", || false);
}

#[test]
fn write_config_writes_a_file_only_its_owner_can_read() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = common::write_config(dir.path(), "[database]\npassword = secret\n");
    assert_eq!(
        std::fs::read_to_string(&path).expect("the config reads back"),
        "[database]\npassword = secret\n"
    );
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn monitor_bin_is_the_built_binary() {
    let binary = common::monitor_bin();
    assert!(binary.is_file(), "{}", binary.display());
    assert_eq!(
        binary.file_name().and_then(|name| name.to_str()),
        Some("monitor_service")
    );
}
