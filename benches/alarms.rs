//! Alarm handling figures, printed (not asserted): `cargo bench --bench alarms`.
//!
//! 1. Alarm row set → restart begun (`RESTART_EVENTS.started_at`), p50/p99 over 100 alarms
//!    with `check_interval = 1`, both ends read from the database clock.
//! 2. 1,000 alarms raised at once on trivial processes: each handled exactly once, the most
//!    restarts seen at once against `max_parallel_restarts`, and the time it took.
//! 3. Statements per idle poll, from the server's `Questions` counter.
//!
//! Needs the MariaDB of `MONITOR_TEST_DATABASE_URL` (default `mysql://root@127.0.0.1:3306`);
//! `scripts/bench.sh` brings it up first. Run it on a quiet server: the idle-poll figure
//! counts every statement the server sees.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use monitor_service::config::Config;
use sqlx::mysql::MySqlPool;
use sqlx::{AssertSqlSafe, Row};
use tokio_util::sync::CancellationToken;

mod common;

use common::{Bench, Error, run_figures, wants};

/// The alarm figures are about polling and restarting alone.
const NO_SAMPLING: &str = "stats_interval = 0\nheartbeat_interval = 0\n";

impl Bench {
    async fn add_processes(&self, count: i32, prefix: &str) -> Result<(), Error> {
        for chunk in (1..=count).collect::<Vec<_>>().chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|id| format!("({id}, '{prefix}{id}')"))
                .collect();
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO PROCESE VALUES {}",
                values.join(",")
            )))
            .execute(&self.pool)
            .await?;
            let status: Vec<String> = chunk
                .iter()
                .map(|id| format!("({id}, 0, 0, NULL)"))
                .collect();
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO STATUS_PROCESS VALUES {}",
                status.join(",")
            )))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}

fn start(config: Config) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        if let Err(error) = monitor_service::service::run(config, token).await {
            eprintln!("service: {error}");
        }
    });
    (shutdown, task)
}

async fn stop(service: (CancellationToken, tokio::task::JoinHandle<()>)) {
    service.0.cancel();
    let _ = service.1.await;
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

const TRIVIAL: &str = "[process.default]\nrestart_strategy = process\nstart_command = true\n\
    health_check_command = true\nmax_attempts = 1\nrestart_delay = 0\n";

async fn latency() -> Result<(), Error> {
    let bench = Bench::new("latency").await?;
    bench.add_processes(1, "latency").await?;
    let service = start(bench.config(&format!("{NO_SAMPLING}check_interval = 1"), TRIVIAL)?);
    let mut samples = Vec::new();
    for round in 0..100u64 {
        // Spread the raises over the poll period.
        tokio::time::sleep(Duration::from_millis(137 * (round % 8))).await;
        let raised: DateTime<Utc> = sqlx::query("SELECT NOW(3)")
            .fetch_one(&bench.pool)
            .await?
            .try_get(0)?;
        sqlx::query("UPDATE STATUS_PROCESS SET alarma = 1 WHERE process_id = 1")
            .execute(&bench.pool)
            .await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let row = sqlx::query(
                "SELECT (SELECT alarma FROM STATUS_PROCESS WHERE process_id = 1), \
                 (SELECT MAX(started_at) FROM RESTART_EVENTS WHERE finished_at IS NOT NULL)",
            )
            .fetch_one(&bench.pool)
            .await?;
            let alarma: i8 = row.try_get(0)?;
            let started: Option<DateTime<Utc>> = row.try_get(1)?;
            if let (0, Some(started)) = (alarma, started) {
                samples.push((started - raised).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                break;
            }
            if Instant::now() > deadline {
                return Err("an alarm was not handled within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    stop(service).await;
    samples.sort_by(f64::total_cmp);
    println!(
        "alarm set -> restart begun (check_interval = 1 s, {} alarms): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (goal p99 <= 1050 ms)",
        samples.len(),
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples.last().copied().unwrap_or(0.0)
    );
    bench.drop().await
}

async fn thousand() -> Result<(), Error> {
    let bench = Bench::new("thousand").await?;
    bench.add_processes(1000, "trivial").await?;
    let parallel = 4;
    let service = start(bench.config(
        &format!("{NO_SAMPLING}check_interval = 1\nmax_parallel_restarts = {parallel}"),
        TRIVIAL,
    )?);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let began = Instant::now();
    sqlx::query("UPDATE STATUS_PROCESS SET alarma = 1")
        .execute(&bench.pool)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while bench
        .scalar_i64("SELECT COUNT(*) FROM STATUS_PROCESS WHERE alarma <> 0")
        .await?
        > 0
    {
        if Instant::now() > deadline {
            return Err("1,000 alarms not handled within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = began.elapsed();
    stop(service).await;
    let events = bench
        .scalar_i64("SELECT COUNT(*) FROM RESTART_EVENTS")
        .await?;
    let distinct = bench
        .scalar_i64("SELECT COUNT(DISTINCT process_id) FROM RESTART_EVENTS")
        .await?;
    let overlap = bench
        .scalar_i64(
            "SELECT MAX(n) FROM (SELECT (SELECT COUNT(*) FROM RESTART_EVENTS b \
             WHERE b.started_at <= a.started_at AND b.finished_at > a.started_at) AS n \
             FROM RESTART_EVENTS a) AS o",
        )
        .await?;
    println!(
        "1,000 alarms at once: {events} events for {distinct} processes (exactly once: {}), \
         most at once {overlap} (max_parallel_restarts = {parallel}), all cleared in {:.2} s ({:.1} ms per alarm)",
        events == 1000 && distinct == 1000,
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / 1000.0
    );
    bench.drop().await
}

async fn questions(pool: &MySqlPool) -> Result<i64, Error> {
    let row = sqlx::query("SHOW GLOBAL STATUS LIKE 'Questions'")
        .fetch_one(pool)
        .await?;
    Ok(row.try_get::<String, _>(1)?.parse()?)
}

async fn idle_poll() -> Result<(), Error> {
    let bench = Bench::new("idle").await?;
    bench.add_processes(50, "idle").await?;
    let interval = 0.2;
    let service = start(bench.config(
        &format!("{NO_SAMPLING}check_interval = {interval}"),
        TRIVIAL,
    )?);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // What reading the counter costs by itself.
    let a = questions(&bench.pool).await?;
    let b = questions(&bench.pool).await?;
    let own = b - a;
    let window = Duration::from_secs(20);
    let before = questions(&bench.pool).await?;
    let began = Instant::now();
    tokio::time::sleep(window).await;
    let after = questions(&bench.pool).await?;
    let polls = began.elapsed().as_secs_f64() / interval;
    stop(service).await;
    let per_poll = (after - before - own) as f64 / polls;
    println!(
        "statements per idle poll: {per_poll:.2} ({} statements over {polls:.0} polls of {interval} s; goal 1)",
        after - before - own
    );
    bench.drop().await
}

fn main() -> Result<(), Error> {
    run_figures(async {
        if wants("idle") {
            idle_poll().await?;
        }
        if wants("latency") {
            latency().await?;
        }
        if wants("thousand") {
            thousand().await?;
        }
        Ok(())
    })
}
