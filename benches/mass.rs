//! Many processes down at once, printed (not asserted): `cargo bench --bench mass`.
//!
//! Reproduce (from the repository root; `cargo bench` builds with the release profile):
//!
//! ```sh
//! scripts/ensure-mariadb.sh
//! cargo bench --bench mass            # everything (about 2 minutes)
//! cargo bench --bench mass -- kill    # 1. N killed at once (MASS_COUNTS, default 100,1000)
//! cargo bench --bench mass -- single  # 1b. one killed at a time among N
//! cargo bench --bench mass -- hang    # 2. 100 hung at once
//! cargo bench --bench mass -- tree    # 3. 100 in dependency chains 10 deep, killed at once
//! MASS_RUNS=5 cargo bench --bench mass -- kill   # more runs for the medians (default 3)
//! ```
//!
//! The service runs in this process, on a thread and single-threaded runtime of its own as the
//! daemon does, against a fresh database; the defaults but `auto_alarm = true`,
//! `heartbeat_interval = 0` (but for 2) and the processes' settings:
//! `restart_strategy = process`, `start_command = DIR/NAME 1000` (renamed `sleep`s, started
//! directly), no health check (a started process counts as up, as monit and supervisord count
//! it), `restart_delay = 0`. Restored means a new live process of the name is in `/proc`; the
//! bench looks every 5 ms, reading only PIDs it has not seen.
//!
//! 1. kill: N sleeps watched, all SIGKILLed in one loop; per run the time until all N run
//!    again and the median and p90 of each one's kill → restored. Flat from 100 to 1,000 is
//!    the goal, with all 100 back in ≤ 1 s.
//! 1. single (1b): among N watched, ten processes killed one at a time: kill → restored,
//!    which should not grow with N (the process table's size).
//! 2. hang: 100 sleeps with `health_check_command = test -e DIR/ok/NAME`, `hang_after = 3`,
//!    `heartbeat_interval = 1`, `start_command` that creates the file and execs the sleep. All
//!    files removed at once: the time until each was restarted (`hang_after` counts from the
//!    last healthy heartbeat, so between 2 and 3 s of it fall after the removal). And this
//!    process's CPU while the 100 heartbeats a second run with nothing wrong.
//! 3. tree: 100 sleeps in ten chains ten deep (`c{L}` depends on `c{L-1}`), all killed at
//!    once: the time until all run again, when each level was back, and whether any process
//!    was restarted before its dependency's restart had finished.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::Row;

mod common;

use common::procs::{
    Service, Sleepers, comm_state, cpu_ms, env_number, live_named, ms, prefix, proc_pids,
    raise_open_files_limit, spread,
};
use common::{Bench, Error, run_figures, wants};

/// How long a run may take before the bench gives up on it.
const GIVE_UP: Duration = Duration::from_secs(60);

/// The settings every process shares, over the defaults.
fn default_section(dir: &Path) -> String {
    format!(
        "[process.default]\nrestart_strategy = process\nstart_command = {}/%s 1000\n\
         health_check_command =\nrestart_delay = 0\n",
        dir.display()
    )
}

/// A world of `count` sleeps named `{tag}{i}`, registered as processes 1..=count.
async fn world(tag: &str, count: usize) -> Result<(Bench, Sleepers), Error> {
    raise_open_files_limit();
    let bench = Bench::new(tag).await?;
    let sleepers = Sleepers::start(bench.dir.path(), &prefix(tag), count)?;
    let rows: Vec<String> = (1..=count).map(|i| format!("({i}, ?)")).collect();
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO PROCESE (process_id, process_name) VALUES {}",
        rows.join(", ")
    )));
    for name in &sleepers.names {
        insert = insert.bind(name);
    }
    insert.execute(&bench.pool).await?;
    sqlx::query("INSERT INTO STATUS_PROCESS (process_id, alarma, sound) SELECT process_id, 0, 0 FROM PROCESE")
        .execute(&bench.pool)
        .await?;
    Ok((bench, sleepers))
}

/// Waits until the sampler has written every process alive, with the PID the bench started.
async fn wait_watched(bench: &Bench, sleepers: &Sleepers) -> Result<(), Error> {
    let started: HashSet<i32> = sleepers.children.iter().map(|c| c.id() as i32).collect();
    let deadline = Instant::now() + GIVE_UP;
    loop {
        let rows = sqlx::query("SELECT pid FROM PROCESS_STATS WHERE alive = 1")
            .fetch_all(&bench.pool)
            .await?;
        let watched = rows
            .iter()
            .filter_map(|row| row.try_get::<Option<i32>, _>(0).ok().flatten())
            .filter(|pid| started.contains(pid))
            .count();
        if watched == started.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("only {watched} of {} watched", started.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// From `t0`, looks every 5 ms for a new live process of each name: when each came back.
fn wait_restored(names: &[String], old: &HashSet<i32>, t0: Instant) -> Result<Vec<f64>, Error> {
    let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut back: HashMap<String, f64> = HashMap::new();
    let mut looked: HashSet<i32> = old.clone();
    let own = comm_state(std::process::id() as i32).map(|(comm, _)| comm);
    while back.len() < wanted.len() {
        if t0.elapsed() > GIVE_UP {
            return Err(format!("{} of {} restored after 60 s", back.len(), wanted.len()).into());
        }
        std::thread::sleep(Duration::from_millis(5));
        let now = ms(t0.elapsed());
        for pid in proc_pids() {
            if looked.contains(&pid) {
                continue;
            }
            match comm_state(pid) {
                // A fork of the service not exec'd yet bears the name of this bench or of
                // the service's thread, and a shell about to exec the process is `sh`: look
                // again.
                Some((comm, _))
                    if !wanted.contains(comm.as_str())
                        && Some(&comm) != own.as_ref()
                        && !["service", "sh"].contains(&comm.as_str()) =>
                {
                    looked.insert(pid);
                }
                Some((comm, _)) if !wanted.contains(comm.as_str()) => {}
                Some((comm, state)) if !matches!(state, 'Z' | 'X') => {
                    back.entry(comm).or_insert(now);
                    looked.insert(pid);
                }
                _ => {}
            }
        }
    }
    Ok(names.iter().map(|name| back[name]).collect())
}

/// Kills every sleeper the bench started; returns their PIDs and when the first kill went.
fn kill_all(sleepers: &mut Sleepers) -> (HashSet<i32>, Instant) {
    let old: HashSet<i32> = proc_pids().into_iter().collect();
    let t0 = Instant::now();
    for child in &mut sleepers.children {
        let _ = child.kill();
    }
    (old, t0)
}

/// Stops the service, kills what it started, drops the database.
async fn finish(service: Service, bench: Bench, sleepers: Sleepers) -> Result<(), Error> {
    service.stop();
    for name in &sleepers.names {
        for pid in live_named(name, proc_pids()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    drop(sleepers);
    bench.drop().await
}

async fn failed_events(bench: &Bench) -> Result<i64, Error> {
    bench
        .scalar_i64("SELECT COUNT(*) FROM RESTART_EVENTS WHERE success = 0")
        .await
}

// ---------------------------------------------------------------------------------------------
// 1. Killed at once

async fn kill_once(count: usize) -> Result<(f64, f64, f64), Error> {
    let (bench, mut sleepers) = world("k", count).await?;
    let monitor = "auto_alarm = true\nheartbeat_interval = 0";
    let config = bench.config(monitor, &default_section(bench.dir.path()))?;
    let service = Service::start(config)?;
    wait_watched(&bench, &sleepers).await?;
    let (old, t0) = kill_all(&mut sleepers);
    let restored = wait_restored(&sleepers.names, &old, t0);
    let failed = failed_events(&bench).await?;
    finish(service, bench, sleepers).await?;
    let restored = restored?;
    if failed > 0 {
        eprintln!("warning: {failed} restart events failed");
    }
    let (median, p90, all) = spread(&restored);
    Ok((all, median, p90))
}

async fn killed_at_once() -> Result<(), Error> {
    let runs = env_number("MASS_RUNS", 3);
    let counts = std::env::var("MASS_COUNTS").unwrap_or_else(|_| "100,1000".to_owned());
    println!("1. killed at once ({runs} runs each; ms after the first kill)");
    println!(
        "   {:>6}  {:>10}  {:>16}  {:>13}",
        "count", "all back", "median each", "p90 each"
    );
    for count in counts
        .split(',')
        .filter_map(|c| c.trim().parse::<usize>().ok())
    {
        let mut figures = Vec::new();
        for _ in 0..runs {
            figures.push(kill_once(count).await?);
        }
        let column = |pick: fn(&(f64, f64, f64)) -> f64| {
            let values: Vec<f64> = figures.iter().map(pick).collect();
            let (median, _, _) = spread(&values);
            median
        };
        println!(
            "   {count:>6}  {:>10.0}  {:>16.0}  {:>13.0}",
            column(|f| f.0),
            column(|f| f.1),
            column(|f| f.2)
        );
    }
    Ok(())
}

/// One at a time among `count` watched: kill → restored, 10 kills of different processes
/// (each restarts once, far from `max_restarts`).
async fn one_at_a_time(count: usize) -> Result<Vec<f64>, Error> {
    let (bench, mut sleepers) = world("o", count).await?;
    let monitor = "auto_alarm = true\nheartbeat_interval = 0";
    let config = bench.config(monitor, &default_section(bench.dir.path()))?;
    let service = Service::start(config)?;
    wait_watched(&bench, &sleepers).await?;
    let mut restored = Vec::new();
    for round in 0..10 {
        let index = round * count / 10;
        let old: HashSet<i32> = proc_pids().into_iter().collect();
        let t0 = Instant::now();
        let _ = sleepers.children[index].kill();
        let name = sleepers.names[index].clone();
        match wait_restored(std::slice::from_ref(&name), &old, t0) {
            Ok(times) => restored.extend(times),
            Err(error) => {
                finish(service, bench, sleepers).await?;
                return Err(error);
            }
        }
        // Let the restart end and the sampler watch the new process before the next kill.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    finish(service, bench, sleepers).await?;
    Ok(restored)
}

async fn single_kills() -> Result<(), Error> {
    let counts = std::env::var("MASS_COUNTS").unwrap_or_else(|_| "100,1000".to_owned());
    println!("1b. one killed at a time among N watched (10 kills; ms kill -> restored)");
    for count in counts
        .split(',')
        .filter_map(|c| c.trim().parse::<usize>().ok())
    {
        let (median, p90, max) = spread(&one_at_a_time(count).await?);
        println!("   {count:>6}  median {median:.1}  p90 {p90:.1}  max {max:.1}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Hung at once

const HANG_AFTER_S: f64 = 3.0;

async fn hung_at_once() -> Result<(), Error> {
    let count = 100;
    let (bench, sleepers) = world("h", count).await?;
    let dir = bench.dir.path().to_owned();
    let ok = dir.join("ok");
    std::fs::create_dir_all(&ok)?;
    for name in &sleepers.names {
        std::fs::write(ok.join(name), "")?;
    }
    let monitor = "auto_alarm = true\nheartbeat_interval = 1\nstats_interval = 1";
    let processes = format!(
        "[process.default]\nrestart_strategy = process\nrestart_delay = 0\n\
         health_check_command = test -e {ok}/%s\nhang_after = {HANG_AFTER_S}\n\
         start_command = touch {ok}/%s && exec {dir}/%s 1000\n",
        ok = ok.display(),
        dir = dir.display()
    );
    let config = bench.config(monitor, &processes)?;
    let service = Service::start(config)?;
    wait_watched(&bench, &sleepers).await?;
    // Healthy heartbeats only: what 100 health checks a second cost.
    let (cpu0, wall0) = (cpu_ms(), Instant::now());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_cpu = (cpu_ms() - cpu0) / ms(wall0.elapsed()) * 100.0;

    let old: HashSet<i32> = proc_pids().into_iter().collect();
    let t0 = Instant::now();
    for name in &sleepers.names {
        std::fs::remove_file(ok.join(name))?;
    }
    let restored = wait_restored(&sleepers.names, &old, t0);
    let failed = failed_events(&bench).await?;
    let hangs = bench
        .scalar_i64("SELECT COUNT(*) FROM RESTART_EVENTS WHERE trigger_source = 'hang'")
        .await?;
    finish(service, bench, sleepers).await?;
    let (median, p90, all) = spread(&restored?);
    println!("2. hung at once: {count} processes, hang_after = {HANG_AFTER_S} s, heartbeat 1 s");
    println!(
        "   back after the files were removed: median {median:.0} ms, p90 {p90:.0} ms, all \
         {all:.0} ms (hang_after counts from the last healthy heartbeat, up to 1 s before); \
         {hangs} events with trigger_source 'hang', {failed} failed"
    );
    println!(
        "   CPU of the service while healthy: {idle_cpu:.1} % of a core (the checks' own \
         processes not counted)"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. A dependency tree

const CHAINS: usize = 10;
const DEPTH: usize = 10;

async fn tree_at_once() -> Result<(), Error> {
    let count = CHAINS * DEPTH;
    let (bench, mut sleepers) = world("t", count).await?;
    // Process i (0-based) is level i / CHAINS of chain i % CHAINS.
    let names = sleepers.names.clone();
    let mut processes = default_section(bench.dir.path());
    for (i, name) in names.iter().enumerate().skip(CHAINS) {
        processes.push_str(&format!(
            "\n[process.{name}]\ndepends_on = {}\n",
            names[i - CHAINS]
        ));
    }
    for name in names.iter().take(CHAINS) {
        processes.push_str(&format!("\n[process.{name}]\n"));
    }
    let config = bench.config("auto_alarm = true\nheartbeat_interval = 0", &processes)?;
    let service = Service::start(config)?;
    wait_watched(&bench, &sleepers).await?;
    let (old, t0) = kill_all(&mut sleepers);
    let restored = wait_restored(&names, &old, t0);
    let out_of_order = bench
        .scalar_i64(
            "SELECT COUNT(*) FROM RESTART_EVENTS x JOIN RESTART_EVENTS d ON d.process_id = x.process_id - 10 \
             WHERE x.process_id > 10 AND x.started_at < d.finished_at",
        )
        .await?;
    let failed = failed_events(&bench).await?;
    finish(service, bench, sleepers).await?;
    let restored = restored?;
    let (_, _, all) = spread(&restored);
    println!("3. dependency tree: {CHAINS} chains {DEPTH} deep, all killed at once");
    println!(
        "   all back {all:.0} ms; restarted before its dependency had finished: {out_of_order}; \
         failed: {failed}"
    );
    let levels: Vec<String> = restored
        .chunks(CHAINS)
        .map(|level| format!("{:.0}", spread(level).2))
        .collect();
    println!("   each level back (ms, root first): {}", levels.join(", "));
    Ok(())
}

/// `BENCH_LOG=FILE`: the service's log, at debug, to see where the time went.
fn log_to_file() -> Result<(), Error> {
    let Some(path) = std::env::var_os("BENCH_LOG") else {
        return Ok(());
    };
    let file = std::fs::File::create(path)?;
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter("monitor_service=debug")
        .init();
    Ok(())
}

fn main() -> Result<(), Error> {
    log_to_file()?;
    run_figures(async {
        if wants("kill") {
            killed_at_once().await?;
        }
        if wants("single") {
            single_kills().await?;
        }
        if wants("hang") {
            hung_at_once().await?;
        }
        if wants("tree") {
            tree_at_once().await?;
        }
        Ok(())
    })
}
