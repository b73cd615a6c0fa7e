//! The sampler against real processes and MariaDB: finding processes, statistics, outages,
//! auto alarms through the pidfd, the health score and the low-health command.

mod common;

use std::process::Command;

use chrono::{DateTime, Utc};
use common::fixture::{Fixture, PATIENCE, kill_all, pids_of};
use common::{wait_for, wait_until};
use sqlx::Row;

/// Quick sampling, no heartbeat, no auto alarm unless the test says so.
const QUICK: &str = "stats_interval = 0.2";

#[derive(Debug, Clone, PartialEq)]
struct Stats {
    alive: bool,
    pid: Option<i32>,
    total_restarts: i32,
    last_restart: Option<DateTime<Utc>>,
    last_mem_pct: Option<f64>,
    avg_cpu_pct: Option<f64>,
    last_response_ms: Option<f64>,
}

async fn stats(world: &Fixture, id: i32) -> Option<Stats> {
    let row = sqlx::query(
        "SELECT alive, pid, total_restarts, last_restart, last_mem_pct, avg_cpu_pct, \
         last_response_ms FROM PROCESS_STATS WHERE process_id = ? AND host = 'testhost'",
    )
    .bind(id)
    .fetch_optional(&world.db.pool)
    .await
    .expect("read PROCESS_STATS")?;
    Some(Stats {
        alive: row.get::<i8, _>(0) != 0,
        pid: row.get(1),
        total_restarts: row.get(2),
        last_restart: row.get(3),
        last_mem_pct: row.get(4),
        avg_cpu_pct: row.get(5),
        last_response_ms: row.get(6),
    })
}

async fn wait_stats(world: &Fixture, id: i32, what: &str, check: impl Fn(&Stats) -> bool) -> Stats {
    wait_for(PATIENCE, what, || async {
        stats(world, id).await.filter(|s| check(s))
    })
    .await
}

fn section(name: &str, body: &str) -> String {
    format!("[process.{name}]\n{body}\n")
}

#[tokio::test]
async fn live_and_never_seen_processes_are_sampled() {
    let world = Fixture::new().await;
    let (alive, never) = (world.unique_name("live"), world.unique_name("never"));
    let mut child = world.start_sleeper(&alive);
    world.add_process(1, &alive).await;
    world.add_process(2, &never).await;
    let sections = format!("{}\n{}", section(&alive, ""), section(&never, ""));
    let service = world.run_in_process(world.config(QUICK, &sections));

    let live = wait_stats(&world, 1, "the live process sampled twice", |s| {
        s.alive && s.avg_cpu_pct.is_some()
    })
    .await;
    assert_eq!(live.pid, Some(i32::try_from(child.id()).expect("pid")));
    assert!(
        live.last_mem_pct.is_some_and(|m| m > 0.0 && m < 5.0),
        "{live:?}"
    );
    assert_eq!(live.total_restarts, 0);

    let dead = wait_stats(&world, 2, "the missing process sampled", |_| true).await;
    assert!(!dead.alive);
    assert_eq!(dead.pid, None);
    assert_eq!(dead.last_mem_pct, None);
    let started: DateTime<Utc> =
        sqlx::query("SELECT started_at FROM MONITOR_INSTANCE WHERE host = 'testhost'")
            .fetch_one(&world.db.pool)
            .await
            .expect("the monitor recorded its start")
            .get(0);
    assert_eq!(
        dead.last_restart,
        Some(started),
        "never restarted: the monitor's start"
    );
    wait_until(PATIENCE, "samples stored", || async {
        world
            .count(
                "SELECT COUNT(*) FROM PROCESS_SAMPLES WHERE process_id = ? AND kind = 'sample'",
                1,
            )
            .await
            >= 2
    })
    .await;

    service.stop().await;
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn processes_are_found_by_command_line_and_by_arguments() {
    let world = Fixture::new().await;
    let (by_line, by_args) = (world.unique_name("line"), world.unique_name("args"));
    let bin = world.unique_name("bin");
    let sleeper = world.sleeper(&bin);
    let line = world.start(&sleeper, &["1000", "11"]);
    let args = world.start(&sleeper, &["1000", "22"]);
    let _decoy = world.start(&sleeper, &["1000", "23"]);
    world.add_process(1, &by_line).await;
    world.add_process(2, &by_args).await;
    let sections = format!(
        "{}\n{}",
        section(&by_line, &format!("match = /{bin} 1000 11$")),
        section(
            &by_args,
            &format!("match.0 = /{bin}$\nmatch.1 = ^1000$\nmatch.2 = ^22$")
        )
    );
    let service = world.run_in_process(world.config(QUICK, &sections));

    let first = wait_stats(&world, 1, "found by match", |s| s.alive).await;
    assert_eq!(first.pid, Some(i32::try_from(line.id()).expect("pid")));
    let second = wait_stats(&world, 2, "found by match.N", |s| s.alive).await;
    assert_eq!(second.pid, Some(i32::try_from(args.id()).expect("pid")));

    service.stop().await;
}

#[tokio::test]
async fn a_zombie_counts_as_dead() {
    let world = Fixture::new().await;
    let name = world.unique_name("zomb");
    let sleeper = world.sleeper(&name);
    // The sleeper exits at once; its parent execs into sleep and never reaps it.
    let mut parent = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{} 0 & exec sleep 60", sleeper.display()))
        .spawn()
        .expect("start the parent");
    wait_until(PATIENCE, "the sleeper is a zombie", || async {
        zombie_named(&name)
    })
    .await;
    world.add_process(1, &name).await;
    let service = world.run_in_process(world.config(QUICK, &section(&name, "")));

    let seen = wait_stats(&world, 1, "the zombie sampled", |_| true).await;
    assert!(!seen.alive);
    assert_eq!(seen.pid, None);

    service.stop().await;
    let _ = parent.kill();
    let _ = parent.wait();
}

/// Whether a zombie whose name is `name` exists.
fn zombie_named(name: &str) -> bool {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries.flatten().any(|entry| {
                std::fs::read_to_string(entry.path().join("stat"))
                    .is_ok_and(|stat| stat.contains(&format!("({name}) Z")))
            })
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn a_process_replaced_under_the_same_name_is_recorded_with_its_new_pid() {
    let world = Fixture::new().await;
    let (name, mut first) = world.add_sleeper(1, "repl").await;
    let service = world.run_in_process(world.config(QUICK, &section(&name, "")));
    let old = i32::try_from(first.id()).expect("pid");
    wait_stats(&world, 1, "the first process", |s| s.pid == Some(old)).await;

    let _ = first.kill();
    let _ = first.wait();
    let mut second = world.start_sleeper(&name);
    let new = i32::try_from(second.id()).expect("pid");
    let seen = wait_stats(&world, 1, "the replacement", |s| s.pid == Some(new)).await;
    assert!(seen.alive);
    let outages = world
        .count(
            "SELECT COUNT(*) FROM PROCESS_OUTAGES WHERE process_id = ?",
            1,
        )
        .await;
    assert!(
        outages <= 1,
        "at most the one gap between the two: {outages}"
    );

    service.stop().await;
    let _ = second.kill();
    let _ = second.wait();
}

fn auto(dead_after: u32, stats_interval: &str) -> String {
    format!(
        "stats_interval = {stats_interval}\nauto_alarm = true\ndead_after = {dead_after}\ndead_recheck_interval = 0.01"
    )
}

#[tokio::test]
async fn a_death_is_noticed_through_the_pidfd_and_restarted_as_an_auto_alarm() {
    let world = Fixture::new().await;
    let (name, mut first) = world.add_sleeper(1, "pidfd").await;
    let body = format!(
        "restart_strategy = process\nstart_command = {}\nhealth_check_command = pgrep -x %s\n\
         restart_delay = 0",
        world.start_command(&name)
    );
    // Samples an hour apart: only the pidfd can see the death in time.
    let config = world.config(&auto(2, "3600"), &section(&name, &body));
    let service = world.run_in_process(config);
    let old = i32::try_from(first.id()).expect("pid");
    wait_stats(&world, 1, "the first sample", |s| s.pid == Some(old)).await;

    let _ = first.kill();
    let _ = first.wait();
    let (success, strategy, _, _) = world.wait_event(1).await;
    assert!(success);
    assert_eq!(strategy.as_deref(), Some("process"));
    let note = world.wait_cleared(1).await;
    assert!(note.starts_with("restarted via process"), "{note}");
    let source: String =
        sqlx::query("SELECT trigger_source FROM RESTART_EVENTS WHERE process_id = 1")
            .fetch_one(&world.db.pool)
            .await
            .expect("the restart event")
            .get(0);
    assert_eq!(source, "auto");
    let now = pids_of(&name);
    assert_eq!(now.len(), 1);
    assert_ne!(now[0], old);

    // The new process is watched at once: its death is noticed too.
    kill_all(&name);
    wait_until(PATIENCE, "the second restart", || async {
        world
            .count(
                "SELECT COUNT(*) FROM RESTART_EVENTS WHERE success = 1 AND process_id = ?",
                1,
            )
            .await
            == 2
    })
    .await;

    service.stop().await;
    kill_all(&name);
}

#[tokio::test]
async fn a_process_that_dies_before_its_restart_ends_is_alarmed_again() {
    let world = Fixture::new().await;
    let (name, mut first) = world.add_sleeper(1, "gone").await;
    // The start command daemonizes it (and is done), and the health check passes by killing
    // the process it checks: a restart that succeeds leaves the process dead before the
    // sampler could watch it.
    let body = format!(
        "restart_strategy = process\nstart_command = {} 1000 &\n\
         health_check_command = pkill -x %s\nrestart_delay = 0\nmax_restarts = 0",
        world.sleeper(&name).display()
    );
    // Samples an hour apart: the deaths are found by the restart's end and its re-checks.
    let config = world.config(&auto(2, "3600"), &section(&name, &body));
    let service = world.run_in_process(config);
    let old = i32::try_from(first.id()).expect("pid");
    wait_stats(&world, 1, "the first sample", |s| s.pid == Some(old)).await;

    let _ = first.kill();
    let _ = first.wait();
    // The first restart succeeds, and its process is dead when it ends: the sampler alarms
    // it again itself (the dead streak counts from the restart), with no sample to find it.
    let auto_alarms = "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ? \
                       AND trigger_source = 'auto'";
    wait_until(PATIENCE, "a second auto alarm", || async {
        world.count(auto_alarms, 1).await >= 2
    })
    .await;
    let first_restart =
        "SELECT success FROM RESTART_EVENTS WHERE process_id = ? ORDER BY id LIMIT 1";
    assert_eq!(
        world.count(first_restart, 1).await,
        1,
        "the first restart succeeded"
    );

    service.stop().await;
    kill_all(&name);
}

/// Waits until the one outage of process `id` has ended.
async fn wait_outage_closed(world: &Fixture, id: i32) {
    let closed = "SELECT COUNT(*) FROM PROCESS_OUTAGES WHERE process_id = ? AND up_at IS NOT NULL";
    wait_until(PATIENCE, "the outage closed", || async {
        world.count(closed, id).await == 1
    })
    .await;
}

async fn restarts_of(world: &Fixture, id: i32) -> i64 {
    world
        .count(
            "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ?",
            id,
        )
        .await
}

#[tokio::test]
async fn a_process_that_flaps_once_is_not_alarmed_when_dead_after_is_larger() {
    let world = Fixture::new().await;
    let (name, mut first) = world.add_sleeper(1, "flap").await;
    let body = format!("start_command = {}", world.start_command(&name));
    let monitor =
        "stats_interval = 3600\nauto_alarm = true\ndead_after = 3\ndead_recheck_interval = 0.5";
    let service = world.run_in_process(world.config(monitor, &section(&name, &body)));
    let old = i32::try_from(first.id()).expect("pid");
    wait_stats(&world, 1, "the first sample", |s| s.pid == Some(old)).await;

    // Killed and at once replaced: the first re-check, half a second later, finds it back.
    let _ = first.kill();
    let _ = first.wait();
    let mut second = world.start_sleeper(&name);
    wait_outage_closed(&world, 1).await;
    assert_eq!(world.status(1).await.0, 0, "no alarm for a flap");
    assert_eq!(restarts_of(&world, 1).await, 0, "no restart for a flap");

    service.stop().await;
    let _ = second.kill();
    let _ = second.wait();
}

#[tokio::test]
async fn another_instance_seen_before_keeps_a_process_up_when_the_watched_one_exits() {
    let world = Fixture::new().await;
    let (name, first) = world.add_sleeper(1, "twin").await;
    let second = world.start_sleeper(&name);
    let body = format!("start_command = {}", world.start_command(&name));
    let monitor =
        "stats_interval = 3600\nauto_alarm = true\ndead_after = 3\ndead_recheck_interval = 0.05";
    let service = world.run_in_process(world.config(monitor, &section(&name, &body)));
    let pid = |child: &std::process::Child| i32::try_from(child.id()).expect("pid");
    let (first_pid, second_pid) = (pid(&first), pid(&second));
    let watched = first_pid.min(second_pid);
    wait_stats(&world, 1, "the first sample", |s| s.pid == Some(watched)).await;

    // The watched one (the lower PID) exits; the other, older than the exit, runs on: the
    // re-checks find it although it is no new process.
    let (mut gone, mut kept) = if first_pid == watched {
        (first, second)
    } else {
        (second, first)
    };
    let _ = gone.kill();
    let _ = gone.wait();
    wait_outage_closed(&world, 1).await;
    assert_eq!(
        restarts_of(&world, 1).await,
        0,
        "not restarted: another instance runs"
    );

    service.stop().await;
    let _ = kept.kill();
    let _ = kept.wait();
}

#[tokio::test]
async fn a_process_that_is_not_required_raises_no_alarm() {
    let world = Fixture::new().await;
    let (name, mut child) = world.add_sleeper(1, "opt").await;
    let body = format!(
        "required = false\nstart_command = {}",
        world.start_command(&name)
    );
    let service = world.run_in_process(world.config(&auto(1, "0.2"), &section(&name, &body)));
    wait_stats(&world, 1, "the first sample", |s| s.alive).await;

    let _ = child.kill();
    let _ = child.wait();
    wait_stats(&world, 1, "seen dead", |s| !s.alive).await;
    wait_until(PATIENCE, "the outage recorded", || async {
        world
            .count(
                "SELECT COUNT(*) FROM PROCESS_OUTAGES WHERE process_id = ? AND up_at IS NULL",
                1,
            )
            .await
            == 1
    })
    .await;
    // Several samples later, still no alarm.
    let samples = world
        .count(
            "SELECT COUNT(*) FROM PROCESS_SAMPLES WHERE process_id = ?",
            1,
        )
        .await;
    wait_until(PATIENCE, "three more samples", || async {
        world
            .count(
                "SELECT COUNT(*) FROM PROCESS_SAMPLES WHERE process_id = ?",
                1,
            )
            .await
            >= samples + 3
    })
    .await;
    assert_eq!(world.status(1).await.0, 0);

    service.stop().await;
}

#[tokio::test]
async fn samples_older_than_the_retention_are_pruned() {
    let world = Fixture::new().await;
    let name = world.unique_name("prune");
    world.add_process(1, &name).await;
    sqlx::query(
        "INSERT INTO PROCESS_SAMPLES (process_id, host, kind, sampled_at, alive) \
         VALUES (1, 'testhost', 'sample', NOW(3) - INTERVAL 2 HOUR, 1)",
    )
    .execute(&world.db.pool)
    .await
    .expect("an old sample");
    let service = world.run_in_process(world.config(
        "stats_interval = 0.2\nstats_retention = 3600",
        &section(&name, ""),
    ));
    wait_until(PATIENCE, "the old sample pruned", || async {
        world
            .count(
                "SELECT COUNT(*) FROM PROCESS_SAMPLES WHERE sampled_at < NOW(3) - INTERVAL ? HOUR",
                1,
            )
            .await
            == 0
    })
    .await;
    assert!(
        world
            .count(
                "SELECT COUNT(*) FROM PROCESS_SAMPLES WHERE process_id = ?",
                1
            )
            .await
            > 0
    );

    service.stop().await;
}

#[tokio::test]
async fn the_heartbeat_records_response_times() {
    let world = Fixture::new().await;
    let (name, mut child) = world.add_sleeper(1, "beat").await;
    let body = "health_check_command = pgrep -x %s";
    let config = world.config(
        "stats_interval = 0.2\nheartbeat_interval = 0.2",
        &section(&name, body),
    );
    let service = world.run_in_process(config);

    let seen = wait_stats(&world, 1, "a heartbeat", |s| s.last_response_ms.is_some()).await;
    assert!(
        seen.last_response_ms
            .is_some_and(|ms| ms > 0.0 && ms < 5000.0),
        "{seen:?}"
    );
    let ok: i64 = world
        .count("SELECT COUNT(*) FROM PROCESS_SAMPLES WHERE process_id = ? AND kind = 'heartbeat' AND check_ok = 1", 1)
        .await;
    assert!(ok >= 1);

    service.stop().await;
    let _ = child.kill();
    let _ = child.wait();
}

async fn latest_health(world: &Fixture) -> Option<(f64, Option<f64>, Option<f64>)> {
    sqlx::query(
        "SELECT total, availability_status, restart_status FROM HEALTH_SCORE \
         WHERE host = 'testhost' ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(&world.db.pool)
    .await
    .expect("read HEALTH_SCORE")
    .map(|row| (row.get(0), row.get(1), row.get(2)))
}

#[tokio::test]
async fn the_health_score_falls_when_a_required_process_is_kept_dead_and_the_command_runs_once() {
    let world = Fixture::new().await;
    let (a, b) = (world.unique_name("ha"), world.unique_name("hb"));
    let mut first = world.start_sleeper(&a);
    let mut second = world.start_sleeper(&b);
    world.add_process(1, &a).await;
    world.add_process(2, &b).await;
    let crossings = world.path("crossings");
    let text = world.config_text(QUICK, &format!("{}\n{}", section(&a, ""), section(&b, "")))
        + &format!(
            "[health]\nthreshold = 0.9\non_low_health_command = echo \"%s\" >> {}\n",
            crossings.display()
        );
    let service = world.run_in_process(world.parse(&text));
    wait_until(PATIENCE, "a healthy score", || async {
        latest_health(&world)
            .await
            .is_some_and(|(total, availability, _)| total > 0.99 && availability == Some(1.0))
    })
    .await;

    let _ = second.kill();
    let _ = second.wait();
    wait_until(PATIENCE, "the score to fall", || async {
        latest_health(&world)
            .await
            .is_some_and(|(total, availability, _)| availability == Some(0.5) && total < 0.9)
    })
    .await;
    // Stays low for several samples; the command ran once.
    world.wait_samples(3).await;
    let ran = wait_for(PATIENCE, "the low-health command", || async {
        std::fs::read_to_string(&crossings)
            .ok()
            .filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(ran.lines().count(), 1, "{ran}");
    let score: f64 = ran.trim().parse().expect("the score is the argument");
    assert!(score < 0.9, "{score}");

    service.stop().await;
    let _ = first.kill();
    let _ = first.wait();
}

#[tokio::test]
async fn the_health_score_falls_when_restarts_come_fast() {
    let world = Fixture::new().await;
    let name = world.unique_name("fast");
    world.add_process(1, &name).await;
    // Six restarts in a row on purpose: no crash loop limit (max_restarts = 0).
    let body = "restart_strategy = process\nstart_command = true\nhealth_check_command = true\n\
                max_attempts = 1\nmax_restarts = 0";
    let text = world.config_text(
        "stats_interval = 0.2\nmax_restart_failures = 100",
        &section(&name, body),
    ) + "[health]\nwindow = 30\n";
    let service = world.run_in_process(world.parse(&text));
    for _ in 0..6 {
        world.raise_alarm(1).await;
        world.wait_cleared(1).await;
    }
    // Six restarts in a 30 s window: 0.2 per second.
    wait_until(PATIENCE, "the restart sub-score", || async {
        latest_health(&world)
            .await
            .is_some_and(|(_, _, restart)| restart.is_some_and(|r| (r - 0.8).abs() < 1e-9))
    })
    .await;
    let seen = wait_stats(&world, 1, "six restarts counted", |s| s.total_restarts == 6).await;
    assert!(seen.last_restart.is_some());

    service.stop().await;
}

#[tokio::test]
async fn more_processes_than_the_soft_limit_of_open_files_allows_are_all_watched() {
    let world = Fixture::new().await;
    // Two descriptors a process: 40 of them need more than a soft limit of 64 leaves.
    const COUNT: i32 = 40;
    let names: Vec<String> = (0..COUNT).map(|_| world.unique_name("nofile")).collect();
    let _running: Vec<_> = names.iter().map(|n| world.start_sleeper(n)).collect();
    let mut sections = String::new();
    for (id, name) in (1..).zip(&names) {
        world.add_process(id, name).await;
        sections.push_str(&section(name, ""));
    }
    // A process restarted after the raise: its start command records its own soft limit.
    let (target, limit) = (world.unique_name("nofile"), world.path("limit"));
    world.add_process(COUNT + 1, &target).await;
    let start = format!(
        "ulimit -S -n > {}; exec {} 1000",
        limit.display(),
        world.sleeper(&target).display()
    );
    sections.push_str(&section(
        &target,
        &format!("restart_strategy = process\nstart_command = {start}\nrequired = false"),
    ));
    let config = world.write_config(&world.config_text(QUICK, &sections));
    let mut command = std::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg("ulimit -S -n 64 && exec \"$0\" -c \"$1\" run")
        .arg(common::monitor_bin())
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _monitor = common::fixture::Monitor(command.spawn().expect("start monitor_service"));

    wait_until(
        PATIENCE,
        "every process watched: alive, with memory",
        || async {
            world
                .count(
                    "SELECT COUNT(*) FROM PROCESS_STATS WHERE alive = 1 AND pid IS NOT NULL \
                 AND last_mem_pct IS NOT NULL AND process_id <= ?",
                    COUNT,
                )
                .await
                == i64::from(COUNT)
        },
    )
    .await;
    let log = std::fs::read_to_string(world.path("monitor.log")).expect("the log");
    assert!(
        log.contains("raised the soft limit of open files from 64 to"),
        "{log}"
    );
    world.raise_alarm(COUNT + 1).await;
    let (success, _, _, error) = world.wait_event(COUNT + 1).await;
    assert!(success, "{error:?}");
    let recorded = std::fs::read_to_string(&limit).expect("the start command ran");
    assert_eq!(
        recorded.trim(),
        "64",
        "the start command gets the original soft limit"
    );

    kill_all(&target);
}
