//! Footprint figures, printed (not asserted): `cargo bench --bench footprint`.
//!
//! Reproduce (from the repository root; `cargo bench` builds with the release profile):
//!
//! ```sh
//! scripts/ensure-mariadb.sh
//! cargo bench --bench footprint                # everything (about 4 minutes)
//! cargo bench --bench footprint -- sampling    # 1. sampling 1,000 processes
//! cargo bench --bench footprint -- restore     # 2. kill -> restored with auto_alarm
//! FOOTPRINT_KILLS=5 cargo bench --bench footprint -- restore   # a quick look
//! ```
//!
//! 1. Sampling 1,000 processes: 1,000 `sleep`s are started and watched as the sampler watches
//!    them (`Watched::open` on a `FoundProcess` of PID and start time, plus the pidfd exit
//!    notice), then `Watched::read` over all 1,000 is timed once a second, 20 times: median and
//!    p90 of the wall time and of this process's CPU time (`getrusage`). For comparison: a
//!    pread of each kept-open `/proc/PID/stat` alone, the same reads opening it each time, and
//!    one discovery scan
//!    (`ProcessTable::new()`, then `find` for one name and for all 1,000 names, which is what
//!    the sampler does when every process is missing). The sampler's whole cycle (database
//!    writes included) at 1,000 processes is what
//!    `FOOTPRINT_PROCESSES=1000 scripts/footprint.sh sampling` measures.
//! 2. Kill -> restored: the service in-process (its own thread and single-threaded runtime,
//!    as the daemon), a fresh database, `stats_interval = 1`, `heartbeat_interval = 1`,
//!    `auto_alarm = true`, `dead_recheck_interval` default, one watched sleeper with
//!    `restart_strategy = process`, `restart_delay = 0`, `start_command = exec SLEEPER 1000`,
//!    and 100 other monitored sleeps alive; every process has the same health check. Each
//!    round finds the sleeper's PID in /proc, SIGKILLs it and polls /proc every 1 ms until a
//!    new live (not zombie) process of that name exists: restored = t1 - t0. The next kill
//!    waits until the restart event is finished and `PROCESS_STATS.pid` shows the new PID (the
//!    sampler watches it). Printed for the issue's setting, a health check that passes at once
//!    (`true`), with `dead_after = 3` (default) and `dead_after = 1`; then for `dead_after = 3`
//!    with `pgrep -x %s` as every health check, a heavy load (100 pgreps a second, each reading
//!    all of /proc, keep both cores of a small machine busy for a good part of each second).
//!    With where the time goes: the service's own log events (alarm raised after the
//!    debounce, restart begun after claim/breaker/event) timed against the kill, and the steps
//!    timed by themselves (process table scan, each statement, spawn to exec).
//!
//! Needs the MariaDB of `MONITOR_TEST_DATABASE_URL` (default `mysql://root@127.0.0.1:3306`).
//! The machine should be quiet: every figure here is a time.

use std::collections::HashSet;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use monitor_service::alarm::TriggerSource;
use monitor_service::config::ProcessMatch;
use monitor_service::db::Database;
use monitor_service::db::claims::{self, ClaimKey};
use monitor_service::db::events::{self, EventStart};
use monitor_service::db::stats as store;
use monitor_service::process::watch::{self, Units, Watched};
use monitor_service::process::{FoundProcess, ProcessTable, stat};
use sqlx::Row;
use sqlx::mysql::MySqlPool;
use tracing_subscriber::layer::SubscriberExt;

mod common;

use common::procs::{
    Service, Sleepers, comm_state, cpu_ms, env_number, live_named, ms, prefix, proc_pids,
    raise_open_files_limit, sleep_binary, spread,
};
use common::{Bench, Error, run_figures, wants};

// ---------------------------------------------------------------------------------------------
// Shared helpers

// ---------------------------------------------------------------------------------------------
// 1. Sampling 1,000 processes

async fn sampling() -> Result<(), Error> {
    const COUNT: usize = 1000;
    let samples = env_number("FOOTPRINT_SAMPLES", 20);
    raise_open_files_limit();
    let dir = tempfile::tempdir()?;
    let sleepers = Sleepers::start(dir.path(), &prefix("s"), COUNT)?;
    let units = Units::of_this_system();

    // Watch them as the sampler does: stat kept open, and a pidfd for the exit.
    let mut watched = Vec::with_capacity(COUNT);
    let mut notices = Vec::with_capacity(COUNT);
    for child in &sleepers.children {
        let pid = child.id() as i32;
        let start_time = stat::read(pid).ok_or("a sleeper is gone")?.start_time;
        let found = FoundProcess { pid, start_time };
        watched.push(Watched::open(found)?);
        notices.push(watch::exit_notice(found)?);
    }
    let pids: Vec<i32> = watched.iter().map(|w| w.process.pid).collect();
    // The first read only sets the CPU baseline.
    for w in &mut watched {
        w.read(units);
    }

    let (mut wall, mut cpu, mut open_wall, mut open_cpu) = (vec![], vec![], vec![], vec![]);
    for _ in 0..samples {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (c0, t0) = (cpu_ms(), Instant::now());
        let alive = watched.iter_mut().filter_map(|w| w.read(units)).count();
        let took = t0.elapsed();
        cpu.push(cpu_ms() - c0);
        wall.push(ms(took));
        if alive != COUNT {
            return Err(format!("only {alive} of {COUNT} read alive").into());
        }
        // The same, opening /proc/PID/stat each time.
        let (c0, t0) = (cpu_ms(), Instant::now());
        let alive = pids.iter().filter_map(|&pid| stat::read(pid)).count();
        open_wall.push(ms(t0.elapsed()));
        open_cpu.push(cpu_ms() - c0);
        if alive != COUNT {
            return Err(format!("only {alive} of {COUNT} opened").into());
        }
    }
    let (w50, w90, wmax) = spread(&wall);
    let (c50, c90, _) = spread(&cpu);
    // What the stat file alone costs, kept open and read with pread: the floor of any reading
    // of CPU time through it.
    let stats: Vec<std::fs::File> = pids
        .iter()
        .map(|pid| std::fs::File::open(format!("/proc/{pid}/stat")))
        .collect::<Result<_, _>>()?;
    let mut pread_cpu = vec![];
    for _ in 0..samples {
        use std::os::unix::fs::FileExt;
        let mut buffer = [0u8; 1024];
        let c0 = cpu_ms();
        let read = stats
            .iter()
            .filter(|f| f.read_at(&mut buffer, 0).is_ok())
            .count();
        pread_cpu.push(cpu_ms() - c0);
        std::hint::black_box(read);
    }
    drop(stats);
    let (s50, _, _) = spread(&pread_cpu);
    println!(
        "sampling {COUNT} watched processes (Watched::read: CPU clock + pread of the kept-open \
         statm, {samples} samples 1 s apart): CPU p50 {c50:.2} ms, p90 {c90:.2} ms per sample \
         (goal <= 5 ms); wall p50 {w50:.2} ms, p90 {w90:.2} ms, max {wmax:.2} ms; {:.2} us per \
         process",
        c50 * 1000.0 / COUNT as f64
    );
    let (o50, o90, _) = spread(&open_wall);
    let (oc50, _, _) = spread(&open_cpu);
    println!(
        "  for comparison, /proc/PID/stat: kept open, pread alone CPU p50 {s50:.2} ms ({:.1}x); \
         open+read+close each time CPU p50 {oc50:.2} ms ({:.1}x), wall p50 {o50:.2} ms, p90 {o90:.2} ms",
        s50 / c50,
        oc50 / c50
    );

    // One discovery scan, as `find_missing` does it.
    let (mut scan_wall, mut scan_cpu, mut one, mut all) = (vec![], vec![], vec![], vec![]);
    let processes = proc_pids().len();
    for round in 0..5 {
        let (c0, t0) = (cpu_ms(), Instant::now());
        let table = ProcessTable::new()?;
        scan_wall.push(ms(t0.elapsed()));
        scan_cpu.push(cpu_ms() - c0);
        let t0 = Instant::now();
        let found = table.find(&sleepers.names[round], &ProcessMatch::Name);
        one.push(ms(t0.elapsed()));
        if found.len() != 1 {
            return Err(format!("find({}) found {found:?}", sleepers.names[round]).into());
        }
        if round < 2 {
            let t0 = Instant::now();
            let found: usize = sleepers
                .names
                .iter()
                .map(|name| table.find(name, &ProcessMatch::Name).len())
                .sum();
            all.push(ms(t0.elapsed()));
            if found != COUNT {
                return Err(format!("find over all names found {found}").into());
            }
        }
    }
    let (s50, _, smax) = spread(&scan_wall);
    let (sc50, _, _) = spread(&scan_cpu);
    let (f50, _, _) = spread(&one);
    let (a50, _, _) = spread(&all);
    println!(
        "  one discovery scan of {processes} processes: ProcessTable::new() wall p50 {s50:.1} ms \
         (max {smax:.1}), CPU p50 {sc50:.1} ms ({:.0}x a sample); then find(one name) {f50:.2} ms, \
         find for all {COUNT} names {a50:.0} ms",
        sc50 / c50
    );
    drop(notices);
    drop(watched);
    drop(sleepers);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Kill -> restored with auto_alarm

/// The service's log events, with when they happened, captured in-process.
static LOG: Mutex<Vec<(Instant, String)>> = Mutex::new(Vec::new());

struct Capture;

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let at = Instant::now();
        if *event.metadata().level() > tracing::Level::INFO {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        LOG.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((at, message.0));
    }
}

/// The first captured event at or after `since` whose message starts with `prefix`.
fn logged(since: Instant, prefix: &str) -> Option<Instant> {
    LOG.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|(at, message)| *at >= since && message.starts_with(prefix))
        .map(|(at, _)| *at)
}

/// The service on a thread of its own with a single-threaded runtime, as the daemon runs it,
/// so that the measuring loop never holds it up.
/// Polls `check` every 20 ms for at most 20 s.
async fn wait_for<F, Fut>(what: &str, mut check: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Error>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await? {
        if Instant::now() > deadline {
            return Err(format!("waited 20 s for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Per-round times in ms after the kill.
#[derive(Default)]
struct Round {
    restored: f64,
    /// The service logged "found dead ... alarm raised" (after the debounce and its UPDATE).
    alarm: Option<f64>,
    /// The service logged "restarting" (after claim, breaker read and the event INSERT).
    begun: Option<f64>,
    /// The service logged "restarted via" (after the health check passed).
    done: Option<f64>,
}

struct Setup {
    dead_after: u32,
    /// Every process's `health_check_command`.
    check: &'static str,
}

const TARGET_ID: i32 = 1;
/// A health check that passes at once.
const PASSES: &str = "true";
/// A health check that reads all of /proc.
const PGREP: &str = "pgrep -x %s";

/// What one setup measured.
struct Restores {
    /// The default `dead_recheck_interval`.
    recheck: Duration,
    rounds: Vec<Round>,
    /// `ProcessTable::new()` + `find` timed from the bench's thread while the service ran.
    scans: Vec<f64>,
    /// The steps alone, measured after the service stopped (first setup only).
    steps: Option<String>,
}

async fn restore(setup: &Setup, kills: usize) -> Result<Restores, Error> {
    raise_open_files_limit();
    let bench = Bench::new(&format!("restore{}", setup.dead_after)).await?;
    let tag = prefix("r");
    let target = format!("{tag}0");
    let background = Sleepers::start(bench.dir.path(), &tag, 100)?;
    let sleeper = bench.dir.path().join(&target);
    symlink(sleep_binary()?, &sleeper)?;
    let mut first = Command::new(&sleeper)
        .arg("1000")
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()?;
    bench.add_process(TARGET_ID, &target).await?;
    for (i, name) in background.names.iter().enumerate() {
        bench.add_process(i as i32 + 2, name).await?;
    }
    let monitor = format!(
        "check_interval = 1\nstats_interval = 1\nheartbeat_interval = 1\nauto_alarm = true\n\
         dead_after = {}",
        setup.dead_after
    );
    let processes = format!(
        "[process.default]\nhealth_check_command = {}\n\n\
         [process.{target}]\nrestart_strategy = process\nrestart_delay = 0\n\
         start_command = exec {} 1000\n",
        setup.check,
        sleeper.display()
    );
    let config = bench.config(&monitor, &processes)?;
    let recheck = config.monitor.dead_recheck_interval;
    let service = Service::start(config)?;
    let measured = kill_rounds(&bench, &target, &mut first, kills).await;
    service.stop();
    // Whatever happened: no sleeper is left behind, restarted ones included.
    let _ = first.kill();
    let _ = first.wait();
    for pid in live_named(&target, proc_pids()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let (rounds, scans) = match measured {
        Ok(measured) => measured,
        Err(error) => {
            drop(background);
            let _ = bench.drop().await;
            return Err(error);
        }
    };
    let failed = bench
        .scalar_i64("SELECT COUNT(*) FROM RESTART_EVENTS WHERE success = 0")
        .await?;
    if failed > 0 {
        eprintln!("warning: {failed} restart events failed");
    }
    let steps = if setup.dead_after == 3 && setup.check == PASSES {
        Some(steps(&bench, &target).await?)
    } else {
        None
    };
    drop(background);
    bench.drop().await?;
    Ok(Restores {
        recheck,
        rounds,
        scans,
        steps,
    })
}

/// The kills, one after another, then process table scans timed under the same load.
async fn kill_rounds(
    bench: &Bench,
    target: &str,
    first: &mut Child,
    kills: usize,
) -> Result<(Vec<Round>, Vec<f64>), Error> {
    let stats_pid = |pool: MySqlPool| async move {
        let row = sqlx::query("SELECT pid FROM PROCESS_STATS WHERE process_id = ? AND alive = 1")
            .bind(TARGET_ID)
            .fetch_optional(&pool)
            .await?;
        Ok::<Option<i32>, Error>(row.map(|r| r.try_get(0)).transpose()?.flatten())
    };
    let mut current = first.id() as i32;
    wait_for("the sampler to watch the first sleeper", || {
        let pool = bench.pool.clone();
        async move { Ok(stats_pid(pool).await? == Some(current)) }
    })
    .await?;
    // Let the heartbeat and the sampler settle.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut rounds = Vec::with_capacity(kills);
    let mut reaped_first = false;
    for round in 0..kills {
        // Spread the kills over the sampling and heartbeat second.
        tokio::time::sleep(Duration::from_millis(137 * (round as u64 % 8))).await;
        let live = live_named(target, proc_pids());
        if live != [current] {
            return Err(format!("expected {target} as pid {current}, found {live:?}").into());
        }
        let before: HashSet<i32> = proc_pids().into_iter().collect();
        let t0 = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(current),
            nix::sys::signal::Signal::SIGKILL,
        )?;
        let new = loop {
            std::thread::sleep(Duration::from_millis(1));
            let fresh = proc_pids().into_iter().filter(|pid| !before.contains(pid));
            if let Some(&pid) = live_named(target, fresh).first() {
                break pid;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                return Err(format!("{target} not restored within 30 s").into());
            }
        };
        let restored = ms(t0.elapsed());
        if !reaped_first {
            let _ = first.wait();
            reaped_first = true;
        }
        let pool = bench.pool.clone();
        wait_for("the restart event to finish", || async move {
            Ok(bench
                .scalar_i64("SELECT COUNT(*) FROM RESTART_EVENTS WHERE finished_at IS NOT NULL")
                .await?
                > round as i64)
        })
        .await?;
        wait_for("the sampler to watch the new sleeper", || {
            let pool = pool.clone();
            async move { Ok(stats_pid(pool).await? == Some(new)) }
        })
        .await?;
        let after = |prefix: &str| logged(t0, prefix).map(|at| ms(at.duration_since(t0)));
        rounds.push(Round {
            restored,
            alarm: after("found dead"),
            begun: after("restarting"),
            done: after("restarted via"),
        });
        current = new;
    }
    // A process table scan, as each debounce re-check and the restart's stop step do one,
    // under the same load (heartbeat or not).
    let mut scans = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let table = ProcessTable::new()?;
        let _ = table.find(target, &ProcessMatch::Name);
        scans.push(ms(t.elapsed()));
        tokio::time::sleep(Duration::from_millis(97)).await;
    }
    Ok((rounds, scans))
}

fn report(setup: &Setup, measured: &Restores) {
    let rounds = &measured.rounds;
    let restored: Vec<f64> = rounds.iter().map(|r| r.restored).collect();
    let (p50, p90, max) = spread(&restored);
    println!(
        "kill -> restored (auto_alarm, dead_after = {}, dead_recheck_interval = {} s, 100 other \
         sleeps, health check `{}` every 1 s, {} kills): median {p50:.0} ms, p90 {p90:.0} ms, \
         max {max:.0} ms (goal median <= 50 ms; monit 521 ms: {:.1}x faster, supervisord \
         1011 ms: {:.1}x)",
        setup.dead_after,
        measured.recheck.as_secs_f64(),
        setup.check,
        rounds.len(),
        521.0 / p50,
        1011.0 / p50,
    );
    let stage = |f: fn(&Round) -> Option<f64>| -> String {
        let values: Vec<f64> = rounds.iter().filter_map(f).collect();
        if values.is_empty() {
            return "n/a".into();
        }
        let (a, b, _) = spread(&values);
        format!("{a:.0}/{b:.0}")
    };
    let (scan50, scan90, _) = spread(&measured.scans);
    // An alarm later than a second after the kill came from the per-sample checks, not from
    // the pidfd's quick re-checks.
    let slow = rounds
        .iter()
        .filter(|r| r.alarm.is_some_and(|a| a > 900.0))
        .count();
    println!(
        "  where the time goes (median/p90 ms after the kill): alarm raised {} (pidfd, outage row, \
         {} re-check(s) {} ms apart with a process table scan each, UPDATE alarm); restart begun {} \
         (claim, breaker read, event INSERT); new process live {} (scan for the old one, spawn sh, \
         exec); health check passed {}; one process table scan under this load {scan50:.1}/{scan90:.1}; \
         alarms later than 900 ms (death seen by a sample before the pidfd notice): {slow}",
        stage(|r| r.alarm),
        setup.dead_after.saturating_sub(1),
        measured.recheck.as_millis(),
        stage(|r| r.begun),
        stage(|r| Some(r.restored)),
        stage(|r| r.done),
    );
    if let Some(steps) = &measured.steps {
        println!("{steps}");
    }
}

/// The steps of a restore, timed by themselves with the service stopped (lower bounds: no
/// heartbeat competes), 20 times each.
async fn steps(bench: &Bench, target: &str) -> Result<String, Error> {
    let db = Database::with_pool(bench.pool.clone(), Duration::from_secs(10));
    let processes = proc_pids().len();
    let mut scan = vec![];
    let (mut outage, mut raise, mut claim, mut load, mut begin, mut spawn) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let sleeper = bench.dir.path().join(target);
    for _ in 0..20 {
        let t = Instant::now();
        let table = ProcessTable::new()?;
        let _ = table.find(target, &ProcessMatch::Name);
        scan.push(ms(t.elapsed()));

        let t = Instant::now();
        store::outages_began(&db, "bench", &[TARGET_ID]).await?;
        outage.push(ms(t.elapsed()));
        sqlx::query("UPDATE STATUS_PROCESS SET alarma = 0 WHERE process_id = ?")
            .bind(TARGET_ID)
            .execute(&bench.pool)
            .await?;
        let t = Instant::now();
        store::raise_alarm(&db, TARGET_ID, "bench").await?;
        raise.push(ms(t.elapsed()));
        let t = Instant::now();
        claims::claim(
            &db,
            ClaimKey {
                process_id: TARGET_ID,
                host: "bench",
                process_name: target,
            },
            "bench",
            TriggerSource::Auto,
            Duration::from_secs(60),
        )
        .await?;
        claim.push(ms(t.elapsed()));
        let t = Instant::now();
        monitor_service::db::breaker::load(&db, TARGET_ID).await?;
        load.push(ms(t.elapsed()));
        let t = Instant::now();
        events::begin(
            &db,
            &EventStart {
                process_id: TARGET_ID,
                process_name: target,
                host: "bench",
                source: TriggerSource::Auto,
                detected_ago: Duration::ZERO,
            },
        )
        .await?;
        begin.push(ms(t.elapsed()));
        claims::release(&db, TARGET_ID, "bench").await?;

        // spawn_detached of `exec SLEEPER 1000` until the new process shows its name.
        let text = format!("exec {} 1000", sleeper.display());
        let t = Instant::now();
        let mut child = monitor_service::command::spawn_detached(&text, target)?;
        let pid = child.id().ok_or("no pid")? as i32;
        while comm_state(pid).is_none_or(|(comm, _)| comm != target) {
            std::thread::sleep(Duration::from_micros(200));
        }
        spawn.push(ms(t.elapsed()));
        child.kill().await?;
    }
    let f = |v: &[f64]| {
        let (a, b, _) = spread(v);
        format!("{a:.1}/{b:.1}")
    };
    Ok(format!(
        "  steps alone (median/p90 ms, service stopped): process table scan of {processes} processes {}, \
         outage INSERT {}, alarm UPDATE {}, claim INSERT {}, breaker SELECT {}, event INSERT {}, \
         spawn_detached to exec {}",
        f(&scan),
        f(&outage),
        f(&raise),
        f(&claim),
        f(&load),
        f(&begin),
        f(&spawn),
    ))
}

async fn restores() -> Result<(), Error> {
    let kills = env_number("FOOTPRINT_KILLS", 20);
    let subscriber = tracing_subscriber::registry().with(Capture);
    let _ = tracing::subscriber::set_global_default(subscriber);
    for setup in [
        Setup {
            dead_after: 3,
            check: PASSES,
        },
        Setup {
            dead_after: 1,
            check: PASSES,
        },
        Setup {
            dead_after: 3,
            check: PGREP,
        },
    ] {
        let measured = restore(&setup, kills).await?;
        report(&setup, &measured);
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    run_figures(async {
        if wants("sampling") {
            sampling().await?;
        }
        if wants("restore") {
            restores().await?;
        }
        Ok(())
    })
}
