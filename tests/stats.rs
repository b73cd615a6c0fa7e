//! The statistics read side against the real MariaDB: the availability views of migration
//! 0004 with crafted rows (times relative to the database clock), every query of
//! `scripts/stats_queries.sql`, the statistics document, and the `stats` and `health` commands
//! through the real binary.

mod common;

use std::time::Duration;

use common::fixture::Fixture;
use monitor_service::db::Database;
use monitor_service::report::{self, ReportError};
use predicates::str::contains;
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;

const HOST: &str = "web1";
const OTHER_HOST: &str = "web2";
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Rows are written a few milliseconds before the views read them: percentages may move by
/// that much, durations grow by it.
const PCT_TOLERANCE: f64 = 0.05;
const SECONDS_TOLERANCE: f64 = 2.0;

fn database(world: &Fixture) -> Database {
    Database::with_pool(world.db.pool.clone(), Duration::from_secs(30))
}

fn assert_near(actual: Option<f64>, expected: f64, tolerance: f64, what: &str) {
    let actual = actual.unwrap_or_else(|| panic!("{what} is NULL, expected {expected}"));
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what} is {actual}, expected {expected} ± {tolerance}"
    );
}

/// A `PROCESS_STATS` row: alive, monitored since `first_seen_ago` seconds.
async fn monitored(world: &Fixture, host: &str, id: i32, name: &str, first_seen_ago: i64) {
    sqlx::query(
        "INSERT INTO PROCESS_STATS (process_id, host, process_name, alive, pid, total_restarts, \
         first_seen, updated_at) \
         VALUES (?, ?, ?, 1, 1000 + ?, 0, NOW(3) - INTERVAL ? SECOND, NOW(3))",
    )
    .bind(id)
    .bind(host)
    .bind(name)
    .bind(id)
    .bind(first_seen_ago)
    .execute(&world.db.pool)
    .await
    .expect("insert PROCESS_STATS");
}

/// A `PROCESS_OUTAGES` row from `down_ago` to `up_ago` seconds ago (None: still down).
async fn outage(world: &Fixture, host: &str, id: i32, down_ago: i64, up_ago: Option<i64>) {
    sqlx::query(
        "INSERT INTO PROCESS_OUTAGES (process_id, host, down_at, up_at) VALUES \
         (?, ?, NOW(3) - INTERVAL ? SECOND, NOW(3) - INTERVAL ? SECOND)",
    )
    .bind(id)
    .bind(host)
    .bind(down_ago)
    .bind(up_ago)
    .execute(&world.db.pool)
    .await
    .expect("insert PROCESS_OUTAGES");
}

/// How a crafted restart event ended.
#[derive(Clone, Copy)]
enum Outcome {
    Succeeded,
    Failed,
    Running,
}

/// A `RESTART_EVENTS` row detected and started `started_ago` seconds ago, finished `took`
/// seconds later unless still running.
async fn event(
    world: &Fixture,
    host: &str,
    id: i32,
    started_ago: i64,
    took: i64,
    outcome: Outcome,
) {
    let (finished, success, error) = match outcome {
        Outcome::Succeeded => (true, Some(1), None),
        Outcome::Failed => (true, Some(0), Some("health check failed: exit status 1")),
        Outcome::Running => (false, None, None),
    };
    sqlx::query(
        "INSERT INTO RESTART_EVENTS (process_id, process_name, host, trigger_source, \
         detected_at, started_at, finished_at, strategy, attempts, success, error) \
         VALUES (?, CONCAT('p', ?), ?, 'alarm', NOW(3) - INTERVAL ? SECOND, \
         NOW(3) - INTERVAL ? SECOND, IF(?, NOW(3) - INTERVAL ? SECOND, NULL), 'process', 1, ?, ?)",
    )
    .bind(id)
    .bind(id)
    .bind(host)
    .bind(started_ago)
    .bind(started_ago)
    .bind(finished)
    .bind(started_ago - took)
    .bind(success)
    .bind(error)
    .execute(&world.db.pool)
    .await
    .expect("insert RESTART_EVENTS");
}

/// process_id, process_name, uptime_1h_pct, uptime_24h_pct, uptime_7d_pct
type UptimeRow = (i32, String, Option<f64>, Option<f64>, Option<f64>);

#[tokio::test]
async fn uptime_is_the_share_of_each_window_not_covered_by_outages_since_first_seen() {
    let world = Fixture::new().await;
    // Monitored 2 h; down from 40 to 10 minutes ago: 30 of the last 60 minutes, 30 of 120.
    monitored(&world, HOST, 1, "two_hours", 2 * HOUR).await;
    outage(&world, HOST, 1, 40 * 60, Some(10 * 60)).await;
    // Monitored 10 minutes, down for the last 5 and still down: every window is those 10.
    monitored(&world, HOST, 2, "ten_minutes", 10 * 60).await;
    outage(&world, HOST, 2, 5 * 60, None).await;
    // Monitored 10 days: an outage before the week (ignored), one across the week's start
    // (30 minutes of it inside), one of an hour 2 days ago.
    monitored(&world, HOST, 3, "ten_days", 10 * DAY).await;
    outage(&world, HOST, 3, 8 * DAY, Some(8 * DAY - 2 * HOUR)).await;
    outage(&world, HOST, 3, 7 * DAY + 30 * 60, Some(7 * DAY - 30 * 60)).await;
    outage(&world, HOST, 3, 2 * DAY, Some(2 * DAY - HOUR)).await;
    // Monitored 30 minutes; an outage that began before monitoring counts from first_seen.
    monitored(&world, HOST, 4, "late", 30 * 60).await;
    outage(&world, HOST, 4, HOUR, Some(15 * 60)).await;
    // Never down.
    monitored(&world, HOST, 5, "steady", 3 * DAY).await;
    // The same process on another host, down all along, changes nothing here.
    monitored(&world, OTHER_HOST, 1, "two_hours", 2 * HOUR).await;
    outage(&world, OTHER_HOST, 1, 2 * HOUR, None).await;

    let rows: Vec<UptimeRow> = sqlx::query_as(
        "SELECT process_id, process_name, uptime_1h_pct, uptime_24h_pct, uptime_7d_pct \
         FROM PROCESS_UPTIME WHERE host = ? ORDER BY process_id",
    )
    .bind(HOST)
    .fetch_all(&world.db.pool)
    .await
    .expect("read PROCESS_UPTIME");

    let week_down = (30 * 60 + HOUR) as f64;
    let expected = [
        (1, [50.0, 75.0, 75.0]),
        (2, [50.0, 50.0, 50.0]),
        (
            3,
            [100.0, 100.0, 100.0 * (1.0 - week_down / (7 * DAY) as f64)],
        ),
        (4, [50.0, 50.0, 50.0]),
        (5, [100.0, 100.0, 100.0]),
    ];
    assert_eq!(rows.len(), expected.len(), "{rows:?}");
    for ((id, _, hour, day, week), (expected_id, [h, d, w])) in rows.iter().zip(expected) {
        assert_eq!(*id, expected_id);
        assert_near(*hour, h, PCT_TOLERANCE, &format!("process {id} 1 h"));
        assert_near(*day, d, PCT_TOLERANCE, &format!("process {id} 24 h"));
        assert_near(*week, w, PCT_TOLERANCE, &format!("process {id} 7 d"));
    }
    assert_eq!(rows[0].1, "two_hours");
}

#[tokio::test]
async fn uptime_is_null_for_a_process_whose_monitoring_has_not_begun() {
    let world = Fixture::new().await;
    // A clock step backwards can leave first_seen ahead of now: nothing measured yet.
    monitored(&world, HOST, 1, "ahead", -60).await;
    let row: (Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT uptime_1h_pct, uptime_24h_pct, uptime_7d_pct FROM PROCESS_UPTIME WHERE host = ?",
    )
    .bind(HOST)
    .fetch_one(&world.db.pool)
    .await
    .expect("read PROCESS_UPTIME");
    assert_eq!(row, (None, None, None));
}

/// host, process_id, process_name, recoveries, mttr_s, recoveries_24h, mttr_24h_s
type MttrRow = (
    String,
    i32,
    Option<String>,
    i64,
    Option<f64>,
    i64,
    Option<f64>,
);

#[tokio::test]
async fn mttr_averages_detection_to_the_end_of_successful_restarts() {
    let world = Fixture::new().await;
    event(&world, HOST, 1, 2 * DAY, 10, Outcome::Succeeded).await;
    event(&world, HOST, 1, HOUR, 4, Outcome::Succeeded).await;
    event(&world, HOST, 1, 30 * 60, 100, Outcome::Failed).await;
    event(&world, HOST, 1, 60, 0, Outcome::Running).await;
    event(&world, OTHER_HOST, 1, HOUR, 50, Outcome::Succeeded).await;
    event(&world, HOST, 2, 3 * DAY, 30, Outcome::Failed).await;

    let rows: Vec<MttrRow> = sqlx::query_as(
        "SELECT host, process_id, process_name, recoveries, mttr_s, recoveries_24h, \
             mttr_24h_s FROM PROCESS_MTTR ORDER BY host, process_id",
    )
    .fetch_all(&world.db.pool)
    .await
    .expect("read PROCESS_MTTR");
    assert_eq!(
        rows,
        [
            (
                HOST.to_owned(),
                1,
                Some("p1".to_owned()),
                2,
                Some(7.0),
                1,
                Some(4.0)
            ),
            (
                OTHER_HOST.to_owned(),
                1,
                Some("p1".to_owned()),
                1,
                Some(50.0),
                1,
                Some(50.0)
            ),
        ],
        "process 2 never recovered, so it has no row"
    );
}

#[tokio::test]
async fn mtbf_divides_the_time_up_by_the_number_of_outages() {
    let world = Fixture::new().await;
    monitored(&world, HOST, 1, "flaky", 10 * HOUR).await;
    outage(&world, HOST, 1, 8 * HOUR, Some(8 * HOUR - 30 * 60)).await;
    outage(&world, HOST, 1, 2 * HOUR, Some(2 * HOUR - 30 * 60)).await;
    monitored(&world, HOST, 2, "solid", 10 * HOUR).await;
    // Still down for the last 10 minutes of its hour: 50 minutes up, one failure.
    monitored(&world, HOST, 3, "down", HOUR).await;
    outage(&world, HOST, 3, 10 * 60, None).await;

    let rows: Vec<(i32, f64, f64, i64, Option<f64>)> = sqlx::query_as(
        "SELECT process_id, monitored_s, downtime_s, outages, mtbf_s FROM PROCESS_MTBF \
         WHERE host = ? ORDER BY process_id",
    )
    .bind(HOST)
    .fetch_all(&world.db.pool)
    .await
    .expect("read PROCESS_MTBF");
    assert_eq!(rows.len(), 3);

    let (_, monitored_s, downtime_s, outages, mtbf) = rows[0];
    assert_near(Some(monitored_s), 36_000.0, SECONDS_TOLERANCE, "monitored");
    assert_near(Some(downtime_s), 3_600.0, 0.01, "downtime");
    assert_eq!(outages, 2);
    assert_near(mtbf, (36_000.0 - 3_600.0) / 2.0, SECONDS_TOLERANCE, "MTBF");

    assert_eq!((rows[1].3, rows[1].4), (0, None), "no outage, no MTBF");
    assert_near(Some(rows[1].2), 0.0, 0.0, "no downtime");

    assert_eq!(rows[2].3, 1);
    assert_near(rows[2].4, 50.0 * 60.0, SECONDS_TOLERANCE, "MTBF while down");
}

#[tokio::test]
async fn restart_success_rate_counts_finished_events_only() {
    let world = Fixture::new().await;
    for ago in [DAY, HOUR, 60] {
        event(&world, HOST, 1, ago, 5, Outcome::Succeeded).await;
    }
    event(&world, HOST, 1, 2 * DAY, 5, Outcome::Failed).await;
    event(&world, HOST, 1, 10, 0, Outcome::Running).await;
    event(&world, HOST, 2, 10, 0, Outcome::Running).await;

    let rows: Vec<(i32, i64, i64, i64, Option<f64>)> = sqlx::query_as(
        "SELECT process_id, events, successes, failures, success_pct \
         FROM RESTART_SUCCESS_RATE WHERE host = ? ORDER BY process_id",
    )
    .bind(HOST)
    .fetch_all(&world.db.pool)
    .await
    .expect("read RESTART_SUCCESS_RATE");
    assert_eq!(
        rows,
        [(1, 4, 3, 1, Some(75.0))],
        "a process with only a running restart has no rate yet"
    );
}

#[tokio::test]
async fn top_restarters_count_restarts_of_the_last_day_and_week() {
    let world = Fixture::new().await;
    for ago in [60, HOUR, 20 * HOUR] {
        event(&world, HOST, 1, ago, 5, Outcome::Succeeded).await;
    }
    event(&world, HOST, 1, 3 * DAY, 5, Outcome::Failed).await;
    event(&world, HOST, 1, 10 * DAY, 5, Outcome::Succeeded).await;
    event(&world, HOST, 2, 2 * HOUR, 5, Outcome::Failed).await;
    event(&world, HOST, 2, 2 * DAY, 5, Outcome::Succeeded).await;
    event(&world, HOST, 3, 10 * DAY, 5, Outcome::Succeeded).await;

    let rows: Vec<(i32, i64, i64, i64)> = sqlx::query_as(
        "SELECT process_id, restarts_24h, restarts_7d, failures_24h FROM TOP_RESTARTERS \
         WHERE host = ? ORDER BY restarts_24h DESC, restarts_7d DESC",
    )
    .bind(HOST)
    .fetch_all(&world.db.pool)
    .await
    .expect("read TOP_RESTARTERS");
    assert_eq!(
        rows,
        [(1, 3, 4, 0), (2, 1, 2, 1)],
        "process 3 restarted only before the week"
    );
}

/// The statements of scripts/stats_queries.sql: comment lines dropped, split after each line
/// that ends with `;`.
fn stats_queries() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stats_queries.sql");
    let text = std::fs::read_to_string(path).expect("read scripts/stats_queries.sql");
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim_start().starts_with("--") || line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.ends_with(';') {
            statements.push(std::mem::take(&mut current));
        }
    }
    assert!(
        current.trim().is_empty(),
        "text after the last `;`: {current}"
    );
    statements
}

#[tokio::test]
async fn every_query_of_stats_queries_sql_runs_on_a_migrated_database() {
    let world = Fixture::new().await;
    world.add_process(1, "httpd").await;
    monitored(&world, HOST, 1, "httpd", DAY).await;
    outage(&world, HOST, 1, HOUR, None).await;
    sqlx::query("UPDATE PROCESS_STATS SET alive = 0")
        .execute(&world.db.pool)
        .await
        .expect("kill httpd");
    event(&world, HOST, 1, HOUR, 5, Outcome::Failed).await;
    event(&world, HOST, 1, 60, 5, Outcome::Succeeded).await;
    sqlx::query(
        "INSERT INTO HEALTH_SCORE (host, computed_at, total, restart_status, response_status, \
         memory_status, availability_status, restarts_in_window) \
         VALUES (?, NOW(3), 0.75, 1, NULL, 0.5, 0.75, 1)",
    )
    .bind(HOST)
    .execute(&world.db.pool)
    .await
    .expect("insert HEALTH_SCORE");

    let statements = stats_queries();
    assert_eq!(statements.len(), 9, "the file holds nine queries");
    for statement in &statements {
        let rows = sqlx::query(AssertSqlSafe(statement.clone()))
            .fetch_all(&world.db.pool)
            .await
            .unwrap_or_else(|error| panic!("{error}\nin:\n{statement}"));
        assert!(!rows.is_empty(), "no rows from:\n{statement}");
    }
}

/// Two processes of HOST with fixed times, one of them never restarted, and a process of
/// another host; the monitor of HOST started at 10:00.
async fn sampled_world(world: &Fixture) {
    world.add_process(1, "beta").await;
    world.add_process(2, "alpha").await;
    world.add_process(3, "gamma").await;
    world.add_process(4, "idle").await;
    for statement in [
        "INSERT INTO MONITOR_INSTANCE (host, pid, version, started_at, updated_at) VALUES \
         ('web1', 42, '0.1.0', '2024-05-01 10:00:00.000', '2024-05-01 12:00:00.000'), \
         ('web2', 43, '0.1.0', '2024-04-01 08:00:00.000', '2024-05-01 12:00:00.000')",
        "INSERT INTO PROCESS_STATS (process_id, host, process_name, alive, pid, last_restart, \
         total_restarts, avg_response_ms, max_response_ms, last_response_ms, avg_mem_pct, \
         max_mem_pct, last_mem_pct, avg_cpu_pct, last_cpu_pct, first_seen, updated_at) VALUES \
         (1, 'web1', 'beta', 1, 4242, '2024-05-01 11:30:00.750', 3, 123.4, 320.6, 231.49, \
          2.34, 3.25, 2.2, 8.94, 7.5, '2024-05-01 10:00:01.000', '2024-05-01 12:00:00.000'), \
         (2, 'web1', 'alpha', 0, NULL, NULL, 0, NULL, NULL, NULL, 1.06, 1.5, NULL, 0.04, NULL, \
          '2024-05-01 10:00:01.000', '2024-05-01 12:00:00.000'), \
         (3, 'web2', 'gamma', 1, 77, NULL, 0, 1, 1, 1, 1, 1, 1, 1, 1, \
          '2024-04-01 08:00:00.000', '2024-05-01 12:00:00.000')",
    ] {
        sqlx::query(statement)
            .execute(&world.db.pool)
            .await
            .expect("insert the sampled world");
    }
}

fn beta_json() -> Value {
    json!({
        "procName": "beta",
        "alive": true,
        "lastRestart": "2024-05-01 11:30:00",
        "totalRestarts": 3,
        "avgResponseTimeMS": 123,
        "maxResponseTimeMS": 321,
        "lastResponseTimeMS": 231,
        "avgMemUsagePct": 2.3,
        "maxMemUsagePct": 3.3,
        "lastMemUsagePct": 2.2,
        "avgCpuUsagePct": 8.9
    })
}

fn alpha_json() -> Value {
    json!({
        "procName": "alpha",
        "alive": false,
        "lastRestart": "2024-05-01 10:00:00",
        "totalRestarts": 0,
        "avgResponseTimeMS": null,
        "maxResponseTimeMS": null,
        "lastResponseTimeMS": null,
        "avgMemUsagePct": 1.1,
        "maxMemUsagePct": 1.5,
        "lastMemUsagePct": null,
        "avgCpuUsagePct": 0.0
    })
}

#[tokio::test]
async fn the_statistics_document_lists_this_hosts_processes_with_the_monitor_start() {
    let world = Fixture::new().await;
    sampled_world(&world).await;
    let document = report::statistics_document(&database(&world), &host_config(&world), None)
        .await
        .expect("the document");
    let value = serde_json::to_value(&document).expect("serializes");
    assert_eq!(
        value,
        json!({
            "monitorTimeOfStart": "2024-05-01 10:00:00",
            "procStats": [alpha_json(), beta_json()]
        }),
        "alpha never restarted: its lastRestart is the monitor's start"
    );
}

#[tokio::test]
async fn the_statistics_document_of_one_name_has_that_process_only() {
    let world = Fixture::new().await;
    sampled_world(&world).await;
    let db = database(&world);

    let beta = report::statistics_document(&db, &host_config(&world), Some("beta"))
        .await
        .expect("beta");
    assert_eq!(
        serde_json::to_value(&beta).expect("json"),
        json!({"monitorTimeOfStart": "2024-05-01 10:00:00", "procStats": [beta_json()]})
    );

    let idle = report::statistics_document(&db, &host_config(&world), Some("idle"))
        .await
        .expect("a process of PROCESE not sampled here");
    assert_eq!(idle.proc_stats.len(), 1);
    assert_eq!(idle.proc_stats[0].alive, None);
    assert_eq!(idle.proc_stats[0].last_restart, None);

    for unknown in ["ghost", "BETA"] {
        match report::statistics_document(&db, &host_config(&world), Some(unknown)).await {
            Err(error @ ReportError::UnknownProcess(_)) => assert_eq!(
                error.to_string(),
                format!("unknown process \"{unknown}\": not in PROCESE")
            ),
            other => panic!("{unknown}: expected an unknown process, got {other:?}"),
        }
    }
}

/// The config text of these tests: the test database and this host, which handles none of
/// the crafted processes (`allow_unconfigured = false`), so that their figures are the crafted
/// `PROCESS_STATS` rows rather than a scan of this machine's process table.
fn config_text(world: &Fixture, extra: &str) -> String {
    format!(
        "{}\n[monitor]\nhost = {HOST}\nallow_unconfigured = false\n\n{extra}\n",
        world.db.database_section()
    )
}

/// config.ini for the binary, with `extra` sections.
fn config(world: &Fixture, extra: &str) -> std::path::PathBuf {
    world.write_config(&config_text(world, extra))
}

/// The same configuration, for the library's reads.
fn host_config(world: &Fixture) -> monitor_service::config::Config {
    world.parse(&config_text(world, ""))
}

/// What `monitor_service -c PATH ARGS` prints on stdout, having succeeded.
fn stdout_of(path: &std::path::Path, args: &[&str]) -> Vec<u8> {
    common::monitor(path)
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone()
}

/// Adds restart history and samples to the sampled world, for the text reports.
async fn restart_history(world: &Fixture) {
    monitored(world, HOST, 4, "idle", HOUR).await;
    for ago in [6 * HOUR, 5 * HOUR, 4 * HOUR, 3 * HOUR, 2 * HOUR] {
        event(world, HOST, 1, ago, 3, Outcome::Succeeded).await;
    }
    event(world, HOST, 1, HOUR, 9, Outcome::Failed).await;
    sqlx::query(
        "INSERT INTO PROCESS_SAMPLES (process_id, host, kind, sampled_at, alive, cpu_pct) \
         VALUES (1, 'web1', 'sample', NOW(3), 1, 12.26), (1, 'web1', 'sample', NOW(3), 1, 3), \
         (1, 'web1', 'heartbeat', NOW(3), NULL, NULL)",
    )
    .execute(&world.db.pool)
    .await
    .expect("insert PROCESS_SAMPLES");
}

#[tokio::test]
async fn stats_prints_an_aligned_table_of_this_hosts_processes() {
    let world = Fixture::new().await;
    sampled_world(&world).await;
    restart_history(&world).await;
    let path = config(&world, "");

    let output = stdout_of(&path, &["stats"]);
    let text = String::from_utf8(output).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "host web1, monitor started 2024-05-01 10:00:00 (times in UTC)"
    );
    assert!(
        lines[1].starts_with("NAME   ALIVE   PID  RESTARTS  LAST RESTART"),
        "{text}"
    );
    let names: Vec<&str> = lines[2..]
        .iter()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(names, ["alpha", "beta", "idle"], "this host's, by name");
    // The last column is right-aligned, so every line of the table ends at the same place.
    let width = lines[1].chars().count();
    assert!(
        lines[1..].iter().all(|line| line.chars().count() == width),
        "{text}"
    );
    let beta: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        beta,
        [
            "beta",
            "yes",
            "4242",
            "3",
            "2024-05-01",
            "11:30:00",
            "100.0",
            "100.0",
            "100.0",
            "3.0",
            "83.3",
            "8.9",
            "12.3",
            "2.3",
            "3.3",
            "123",
            "231"
        ],
        "never down, MTTR 3 s, 5 of 6 restarts worked, CPU max of the samples"
    );
    let alpha: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(alpha[1..5], ["NO", "-", "0", "-"]);
}

#[tokio::test]
async fn stats_name_prints_every_figure_and_the_five_latest_restart_events() {
    let world = Fixture::new().await;
    sampled_world(&world).await;
    restart_history(&world).await;
    let path = config(&world, "");

    let output = stdout_of(&path, &["stats", "beta"]);
    let text = String::from_utf8(output).expect("utf-8");
    for line in [
        "process          beta (id 1)",
        "alive            yes",
        "pid              4242",
        "restarts         3",
        "last restart     2024-05-01 11:30:00",
        "MTTR             3.0 s over 5 restarts",
        "restart success  83.3 % (5 of 6 finished)",
        "MTBF             -",
        "outages          0",
        "cpu max          12.3 %",
        "response avg     123 ms",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    let events: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.starts_with("STARTED"))
        .skip(1)
        .collect();
    assert_eq!(events.len(), 5, "{text}");
    assert!(
        events[0].contains("alarm    process          1  FAILED   health check failed"),
        "newest first: {text}"
    );
    assert!(
        events[1..].iter().all(|line| line.contains("  ok ")),
        "{text}"
    );
}

#[tokio::test]
async fn stats_json_prints_the_document_of_the_contract() {
    let world = Fixture::new().await;
    sampled_world(&world).await;
    let path = config(&world, "");

    let output = stdout_of(&path, &["stats", "--json"]);
    let document: Value = serde_json::from_slice(&output).expect("stdout is JSON");
    assert_eq!(
        document,
        json!({
            "monitorTimeOfStart": "2024-05-01 10:00:00",
            "procStats": [alpha_json(), beta_json()]
        })
    );

    let output = stdout_of(&path, &["stats", "beta", "--json"]);
    let document: Value = serde_json::from_slice(&output).expect("stdout is JSON");
    assert_eq!(document["procStats"], json!([beta_json()]));
}

#[tokio::test]
async fn stats_of_an_unknown_process_is_a_usage_error_naming_it() {
    let world = Fixture::new().await;
    sampled_world(&world).await;
    let path = config(&world, "");
    common::monitor(&path)
        .args(["stats", "ghost"])
        .assert()
        .code(64)
        .stdout("")
        .stderr("monitor_service: unknown process \"ghost\": not in PROCESE\n");
}

#[tokio::test]
async fn health_prints_the_latest_score_and_its_verdict() {
    let world = Fixture::new().await;
    sqlx::query(
        "INSERT INTO HEALTH_SCORE (host, computed_at, total, restart_status, response_status, \
         memory_status, availability_status, restarts_in_window) VALUES \
         ('web1', '2024-05-01 11:59:50.000', 0.95, 1, 1, 0.8, 1, 0), \
         ('web1', '2024-05-01 12:00:00.500', 0.4166666, 0.25, NULL, 0.5, 0.5, 3), \
         ('web2', '2024-05-01 12:00:05.000', 1, 1, 1, 1, 1, 0)",
    )
    .execute(&world.db.pool)
    .await
    .expect("insert HEALTH_SCORE");
    let path = config(&world, "[health]\nthreshold = 0.5\n");

    common::monitor(&path)
        .arg("health")
        .assert()
        .success()
        .stdout(
            "health of host web1 at 2024-05-01 12:00:00 UTC\n\
             total               0.417  LOW (threshold 0.500)\n\
             restart             0.250\n\
             response            -\n\
             memory              0.500\n\
             availability        0.500\n\
             restarts in window  3\n",
        );

    let output = stdout_of(&path, &["health", "--json"]);
    let report: Value = serde_json::from_slice(&output).expect("stdout is JSON");
    assert_eq!(
        report,
        json!({
            "host": "web1",
            "computedAt": "2024-05-01 12:00:00",
            "total": 0.417,
            "restart": 0.25,
            "response": null,
            "memory": 0.5,
            "availability": 0.5,
            "restartsInWindow": 3,
            "threshold": 0.5,
            "low": true
        })
    );
}

#[tokio::test]
async fn health_without_a_score_yet_says_so_and_succeeds() {
    let world = Fixture::new().await;
    let path = config(&world, "");
    common::monitor(&path)
        .arg("health")
        .assert()
        .success()
        .stdout(contains("host web1: no health score yet"));
    let output = stdout_of(&path, &["health", "--json"]);
    let report: Value = serde_json::from_slice(&output).expect("stdout is JSON");
    assert_eq!(report["host"], "web1");
    assert_eq!(report["threshold"], 0.5);
    for key in ["computedAt", "total", "restart", "restartsInWindow", "low"] {
        assert!(report[key].is_null(), "{key}: {report}");
    }
}

#[test]
fn stats_and_health_exit_69_with_one_line_when_the_database_is_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Port 9 (discard) on loopback: nothing listens there.
    let path = common::write_config(
        dir.path(),
        "[database]\nhost = 127.0.0.1\nport = 9\nconnect_timeout = 1\n\n[monitor]\nhost = web1\n",
    );
    for args in [
        &["stats"][..],
        &["stats", "--json"],
        &["stats", "beta"],
        &["health"],
        &["health", "--json"],
    ] {
        let output = common::monitor(&path)
            .args(args)
            .assert()
            .code(69)
            .stdout("")
            .get_output()
            .stderr
            .clone();
        let stderr = String::from_utf8(output).expect("utf-8");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("monitor_service: cannot read the statistics: "),
            "{args:?}: {stderr}"
        );
    }
}
