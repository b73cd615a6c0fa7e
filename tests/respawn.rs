//! Respawn as found, against real processes and MariaDB: the `process` strategy without
//! `start_command` starts a process again as the sampler found it running (argv, working
//! directory, environment less secrets, detached in its own session), and keeps the alarm of
//! one it never saw running, with a note, without charging its breaker.

mod common;

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::fixture::{Fixture, PATIENCE, kill_all, pids_of};
use common::{wait_for, wait_until};

/// argv, working directory, environment and session of a running process, from `/proc`.
struct Seen {
    argv: Vec<String>,
    cwd: PathBuf,
    environment: HashMap<String, String>,
    parent: i32,
    session: i32,
}

fn seen(pid: i32) -> Seen {
    let nul_separated = |file: &str| -> Vec<String> {
        let bytes = std::fs::read(format!("/proc/{pid}/{file}")).expect("readable /proc file");
        bytes
            .strip_suffix(&[0])
            .unwrap_or(&bytes)
            .split(|&b| b == 0)
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect()
    };
    let environment = nul_separated("environ")
        .into_iter()
        .filter_map(|entry| {
            let (name, value) = entry.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("readable stat");
    let (_, after_name) = stat.rsplit_once(')').expect("a stat line");
    let fields: Vec<i32> = after_name
        .split_whitespace()
        .skip(1)
        .take(3)
        .map(|field| field.parse().expect("a number"))
        .collect();
    Seen {
        argv: nul_separated("cmdline"),
        cwd: std::fs::read_link(format!("/proc/{pid}/cwd")).expect("a working directory"),
        environment,
        parent: fields[0],
        session: fields[2],
    }
}

/// Waits until the sampler has written process 1 alive: it has found it, and recorded how it
/// was started.
async fn wait_seen_alive(world: &Fixture) {
    let alive = "SELECT COUNT(*) FROM PROCESS_STATS WHERE process_id = ? AND alive = 1";
    wait_until(PATIENCE, "the sampler sees the process alive", || async {
        world.count(alive, 1).await > 0
    })
    .await;
}

#[tokio::test]
async fn a_process_started_by_hand_is_respawned_as_it_was_started() {
    let world = Fixture::new().await;
    let name = world.unique_name("found");
    let workdir = world.path("work dir");
    std::fs::create_dir_all(&workdir).expect("a working directory");
    // Started as an operator's script would: arguments, a folder of its own, a variable, and
    // the database password in its environment that must not be passed on.
    let mut by_hand = Command::new(world.sleeper(&name));
    by_hand
        .args(["900", "100"])
        .current_dir(&workdir)
        .env("RESPAWN_MARK", "kept with spaces")
        .env("MONITOR_DB_PASSWORD", "not-for-children")
        .stdin(Stdio::null())
        .process_group(0);
    let mut first = by_hand.spawn().expect("start the process by hand");
    world.add_process(1, &name).await;
    let body = "restart_strategy = process\nhealth_check_command = pgrep -f %s\nrestart_delay = 0";
    let monitor = "stats_interval = 0.2\nauto_alarm = true\ndead_after = 2\n\
                   dead_recheck_interval = 0.01";
    let service =
        world.run_in_process(world.config(monitor, &format!("[process.{name}]\n{body}\n")));
    // Seen alive (and so recorded) by the sampler before it dies.
    wait_seen_alive(&world).await;
    let before = seen(i32::try_from(first.id()).expect("a pid"));
    first.kill().expect("kill the process");
    first.wait().expect("reap it");

    let (success, strategy, _, error) = world.wait_event(1).await;
    assert!(success, "respawned: {error:?}");
    assert_eq!(strategy.as_deref(), Some("process"));
    let pid = wait_for(PATIENCE, "the respawned process", || async {
        pids_of(&name).first().copied()
    })
    .await;
    let after = seen(pid);
    assert_eq!(after.argv, before.argv);
    assert_eq!(after.argv[1..], ["900", "100"]);
    assert_eq!(after.cwd, workdir);
    assert_eq!(
        after.environment.get("RESPAWN_MARK").map(String::as_str),
        Some("kept with spaces")
    );
    assert!(!after.environment.contains_key("MONITOR_DB_PASSWORD"));
    assert_eq!(after.session, pid, "detached in a session of its own");
    // The monitor runs in this test process: it started the process itself, no shell between.
    let monitor = i32::try_from(std::process::id()).expect("pid");
    assert_eq!(after.parent, monitor, "started directly by the monitor");
    let note = world.wait_cleared(1).await;
    assert!(note.starts_with("restarted via process"), "{note}");

    service.stop().await;
    kill_all(&name);
}

#[tokio::test]
async fn a_process_never_seen_running_keeps_its_alarm_until_it_can_be_started() {
    let world = Fixture::new().await;
    let name = world.unique_name("never");
    world.add_process(1, &name).await;
    let body = "restart_strategy = process\nrestart_delay = 0";
    let monitor = "stats_interval = 0.2";
    let service =
        world.run_in_process(world.config(monitor, &format!("[process.{name}]\n{body}\n")));
    world.raise_alarm(1).await;
    let note = wait_for(PATIENCE, "the note", || async {
        world.status(1).await.1.filter(|note| !note.is_empty())
    })
    .await;
    assert_eq!(note, "no start_command and never seen running");
    // Polled again and again: still raised, never tried, never charged. The sampler's rows
    // count the time, one every 0.2 s, as the polls do (check_interval = 0.2).
    let dead_samples = "SELECT COUNT(*) FROM PROCESS_SAMPLES WHERE process_id = ? \
                        AND kind = 'sample' AND alive = 0";
    let seen_dead = world.count(dead_samples, 1).await;
    wait_until(PATIENCE, "ten more samples, and as many polls", || async {
        world.count(dead_samples, 1).await >= seen_dead + 10
    })
    .await;
    assert_eq!(world.status(1).await.0, 1, "the alarm stays raised");
    let events = "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ?";
    assert_eq!(world.count(events, 1).await, 0);
    let failures = "SELECT COALESCE(MAX(consecutive_failures), 0) FROM CIRCUIT_BREAKER \
                    WHERE process_id = ?";
    assert_eq!(
        world.count(failures, 1).await,
        0,
        "the breaker is not charged"
    );

    // Once it runs, the alarm is handled: the restart stops it and starts it as found.
    let mut by_hand = world.start_sleeper(&name);
    let (success, _, _, error) = world.wait_event(1).await;
    assert!(success, "{error:?}");
    world.wait_cleared(1).await;
    let _ = by_hand.0.wait();
    let respawned = pids_of(&name);
    assert_eq!(respawned.len(), 1, "{respawned:?}");

    service.stop().await;
    kill_all(&name);
}

/// The real user and group of a process, from `/proc/PID/status`.
fn user_of(pid: i32) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let first = |key: &str| -> u32 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .expect("an id")
    };
    (first("Uid:"), first("Gid:"))
}

#[tokio::test]
async fn a_process_of_another_user_is_respawned_as_that_user() {
    const NOBODY: u32 = 65534;
    assert!(
        nix::unistd::geteuid().is_root(),
        "the tests run as root (scripts/test.sh): only root starts a process as another user"
    );
    let world = Fixture::new().await;
    let name = world.unique_name("user");
    // sleep itself, found by its arguments: the test's folder is not open to nobody.
    let marker = format!("0.{}", std::process::id());
    let mut by_hand = Command::new("sleep");
    by_hand
        .args(["1000", &marker])
        .current_dir("/")
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .process_group(0);
    let mut first = by_hand.spawn().expect("start sleep as nobody");
    let first_pid = i32::try_from(first.id()).expect("pid");
    world.add_process(1, &name).await;
    let body = format!(
        "match = ^\\S*sleep 1000 {marker}$\nrestart_strategy = process\n\
         health_check_command =\nrestart_delay = 0"
    );
    let monitor = "stats_interval = 0.2\nauto_alarm = true\ndead_after = 2\n\
                   dead_recheck_interval = 0.01";
    let service =
        world.run_in_process(world.config(monitor, &format!("[process.{name}]\n{body}\n")));
    wait_seen_alive(&world).await;
    assert_eq!(user_of(first_pid), (NOBODY, NOBODY));
    first.kill().expect("kill the process");
    first.wait().expect("reap it");

    let (success, _, _, error) = world.wait_event(1).await;
    assert!(success, "respawned: {error:?}");
    let pid = wait_for(PATIENCE, "the respawned process", || async {
        respawned_sleep(&marker)
    })
    .await;
    assert_ne!(pid, first_pid);
    assert_eq!(user_of(pid), (NOBODY, NOBODY), "as the user it ran as");
    service.stop().await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The `sleep 1000 MARKER` running now, if any.
fn respawned_sleep(marker: &str) -> Option<i32> {
    let wanted = format!("1000\0{marker}\0");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let alive = !state.rsplit_once(')')?.1.trim_start().starts_with('Z');
            (alive && cmdline.ends_with(wanted.as_bytes())).then_some(pid)
        })
}
