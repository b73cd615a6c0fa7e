//! A hard limit of open files too small to watch every process through descriptors: the
//! watchers leave room for restarts, commands and the database, and the processes beyond
//! that are watched by sampling.

mod common;

use std::time::Duration;

use common::fixture::{Fixture, kill_all, pids_of};
use common::wait_until;

/// Longer than the fixture's patience: a hundred processes sampled once a second, twenty
/// deaths counted `dead_after` samples each, and their restarts, on a shared machine.
const DEADLINE: Duration = Duration::from_secs(90);
const COUNT: i32 = 100;

#[tokio::test]
async fn restarts_keep_their_descriptors_under_a_hard_limit_of_64_and_sampled_deaths_are_seen() {
    let world = Fixture::new().await;
    let names: Vec<String> = (0..COUNT).map(|_| world.unique_name("fd")).collect();
    let mut running: Vec<_> = names.iter().map(|n| world.start_sleeper(n)).collect();
    for (id, name) in (1..).zip(&names) {
        world.add_process(id, name).await;
    }
    // Every process falls to [process.default]; `%s` is the name, so each starts its own
    // sleeper.
    let default = format!(
        "[process.default]\nrestart_strategy = process\nstart_command = exec {}/%s 1000\n\
         stop_timeout = 5\nrestart_delay = 0\nmax_attempts = 2\n",
        world.dir.path().display()
    );
    let config = world.write_config(&world.config_text(
        "stats_interval = 1\nauto_alarm = true\nmax_restart_failures = 100",
        &default,
    ));
    let mut command = std::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" -c \"$1\" run")
        .arg(common::monitor_bin())
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _monitor = common::fixture::Monitor(command.spawn().expect("start monitor_service"));

    let alive = "SELECT COUNT(*) FROM PROCESS_STATS WHERE alive = 1 AND process_id <= ?";
    wait_until(DEADLINE, "every process seen alive", || async {
        world.count(alive, COUNT).await == i64::from(COUNT)
    })
    .await;

    // Five alarms at once: each restart needs pipes, a pidfd and the process table's scan.
    sqlx::query("UPDATE STATUS_PROCESS SET alarma = 1 WHERE process_id <= 5")
        .execute(&world.db.pool)
        .await
        .expect("raise five alarms");
    let cleared = "SELECT COUNT(*) FROM STATUS_PROCESS WHERE alarma = 0 AND process_id <= ?";
    wait_until(DEADLINE, "the five alarms cleared", || async {
        world.count(cleared, 5).await == 5
    })
    .await;

    // Twenty deaths: at most a few of them can be watched through a pidfd under this limit,
    // so most are seen by sampling, and each is auto-alarmed and restarted.
    for child in running.iter_mut().skip(20).take(20) {
        let _ = child.kill();
        let _ = child.wait();
    }
    // The auto alarm is written before it is sent, so the poll may take it first: `alarm`.
    let restarted = "SELECT COUNT(DISTINCT process_id) FROM RESTART_EVENTS \
                     WHERE trigger_source IN ('auto', 'alarm') AND success = 1 \
                     AND process_id > ?";
    wait_until(DEADLINE, "the twenty dead processes restarted", || async {
        world.count(restarted, 20).await == 20
    })
    .await;
    let failed = world
        .count(
            "SELECT COUNT(*) FROM RESTART_EVENTS WHERE success = 0 AND process_id > ?",
            0,
        )
        .await;
    assert_eq!(failed, 0, "no restart failed for the watchers' sake");
    for name in names.iter().skip(20).take(20) {
        assert_eq!(pids_of(name).len(), 1, "{name} runs once");
    }
    let log = std::fs::read_to_string(world.path("monitor.log")).expect("the log");
    assert_eq!(
        log.matches("sampled every stats_interval").count(),
        1,
        "sampling instead of descriptors is logged once"
    );
    assert!(!log.contains("Too many open files"), "{log}");

    drop(running);
    for name in &names {
        kill_all(name);
    }
}
