//! The process table and stopping processes, with real child processes.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::child::{is_gone, state_of};
use common::{wait_for, wait_until};
use monitor_service::config::ProcessMatch;
use monitor_service::process::watch::{Units, Watched};
use monitor_service::process::{FoundProcess, ProcessTable, StopOutcome, matches, stop};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use regex::Regex;
use tokio::process::{Child, Command};

const DEADLINE: Duration = Duration::from_secs(5);

/// Refreshes the table until `find` gives a non-empty answer, and returns it.
async fn found(table: &mut ProcessTable, name: &str, matcher: &ProcessMatch) -> Vec<FoundProcess> {
    let what = format!("{name} is found with {matcher:?}");
    wait_for(DEADLINE, &what, || {
        *table = ProcessTable::new().expect("the process table");
        let found = table.find(name, matcher);
        async move { (!found.is_empty()).then_some(found) }
    })
    .await
}

/// A number no other process has on its command line: `sleep` adds it to its duration, so
/// `sleep 30 0.NNN` is a sleep that only this test started.
fn unique() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!(
        "0.{}{:04}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn regex(text: &str) -> Regex {
    Regex::new(text).expect("a valid regex")
}

fn pid_of(child: &Child) -> i32 {
    i32::try_from(child.id().expect("a running child")).expect("a PID fits i32")
}

/// A child started by a test, killed with its whole process group when the test ends.
struct Spawned {
    child: Child,
    own_group: bool,
}

impl Spawned {
    fn pid(&self) -> i32 {
        pid_of(&self.child)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let pid = Pid::from_raw(i32::try_from(pid).expect("a PID fits i32"));
            let _ = if self.own_group {
                killpg(pid, Signal::SIGKILL)
            } else {
                kill(pid, Signal::SIGKILL)
            };
        }
    }
}

/// Starts `program args` in a process group of its own.
fn spawn_group(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Spawned {
    let mut command = Command::new(program);
    command.args(args).process_group(0);
    Spawned {
        child: command.spawn().expect("spawned"),
        own_group: true,
    }
}

fn shell_group(text: &str) -> Spawned {
    spawn_group("/bin/sh", &["-c", text])
}

async fn read_pid(file: &Path) -> i32 {
    common::child::read_pid(file, DEADLINE).await
}

fn by_arguments(list: &[(usize, &str)]) -> ProcessMatch {
    ProcessMatch::Arguments(
        list.iter()
            .map(|(index, text)| (*index, regex(text)))
            .collect(),
    )
}

fn by_line(text: &str) -> ProcessMatch {
    ProcessMatch::CommandLine(regex(text))
}

#[test]
fn matching_rules_follow_the_configuration() {
    const JAVA: &str =
        "/opt/jdk/bin/java -Xmx1g -cp kafka.jar kafka.Kafka config/server.properties";
    const LONG: &str = "./a-very-long-process-name --flag";
    use ProcessMatch::Name;
    // (name, matcher, command line split on spaces, executable, expected)
    let cases = [
        ("java", Name, JAVA, None, true),
        ("java", Name, "renamed x", Some("/opt/jdk/bin/java"), true),
        ("jav", Name, JAVA, Some("/opt/jdk/bin/java"), false),
        ("kafka", Name, JAVA, None, false),
        ("nginx", Name, "nginx", None, true),
        ("a-very-long-process-name", Name, LONG, None, true),
        ("a-very-long-pro", Name, LONG, None, false),
        ("nginx", Name, "", Some("/usr/sbin/nginx"), false),
        ("kthreadd", Name, "", None, false),
        ("x", by_line("kafka\\.jar kafka\\.Kafka"), JAVA, None, true),
        ("x", by_line("^/opt/jdk/bin/java -Xmx1g"), JAVA, None, true),
        ("x", by_line("zookeeper"), JAVA, None, false),
        ("x", by_line(".*"), "", None, false),
        (
            "x",
            by_arguments(&[(0, "java"), (4, "^kafka\\.Kafka$")]),
            JAVA,
            None,
            true,
        ),
        (
            "x",
            by_arguments(&[(0, "java"), (4, "zookeeper")]),
            JAVA,
            None,
            false,
        ),
        (
            "x",
            by_arguments(&[(0, "java"), (22, ".*")]),
            JAVA,
            None,
            false,
        ),
        ("x", by_arguments(&[]), JAVA, None, true),
        ("x", by_arguments(&[]), "", None, false),
    ];
    for (name, matcher, cmdline, exe, expected) in cases {
        let args: Vec<String> = cmdline.split_whitespace().map(str::to_owned).collect();
        let exe = exe.map(Path::new);
        let result = matches(name, &matcher, &args, exe);
        assert_eq!(result, expected, "{name} {matcher:?} {cmdline:?} {exe:?}");
    }
}

#[tokio::test]
async fn a_sleep_is_found_by_its_command_line_and_by_its_arguments() {
    let token = unique();
    let sleep = spawn_group("sleep", &["30", &token]);
    let mut table = ProcessTable::new().expect("the process table");

    let whole = ProcessMatch::CommandLine(regex(&format!("^sleep 30 {}$", regex::escape(&token))));
    let by_line = found(&mut table, "sleeper", &whole).await;
    assert_eq!(
        by_line.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [sleep.pid()]
    );

    let arguments = ProcessMatch::Arguments(vec![
        (0, regex("^sleep$")),
        (2, regex(&regex::escape(&token))),
    ]);
    assert_eq!(table.find("sleeper", &arguments), by_line);
    let missing =
        ProcessMatch::Arguments(vec![(2, regex(&regex::escape(&token))), (3, regex(".*"))]);
    assert_eq!(table.find("sleeper", &missing), []);
}

#[tokio::test]
async fn a_process_that_execs_after_it_was_first_seen_is_found_by_its_new_command_line() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let go = dir.path().join("go");
    let token = unique();
    let text = format!(
        "while [ ! -e {} ]; do sleep 0.01; done; exec sleep 30 {token}",
        go.display()
    );
    let shell = shell_group(&text);
    let sleep = ProcessMatch::Arguments(vec![
        (0, regex("^sleep$")),
        (2, regex(&regex::escape(&token))),
    ]);
    let mut table = ProcessTable::new().expect("the process table");
    assert_eq!(table.find("sleeper", &sleep), [], "found before the exec");

    std::fs::write(&go, "").expect("the go file");
    let after = found(&mut table, "sleeper", &sleep).await;
    assert_eq!(
        after.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [shell.pid()]
    );
}

#[tokio::test]
async fn a_long_name_is_matched_whole_by_argv0_and_by_the_executable() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let long = format!("sleep-monitor-test-{}", unique().replace('.', "-"));
    let linked = dir.path().join(&long);
    symlink(which("sleep"), &linked).expect("a symlink");
    let by_link = spawn_group(&linked, &["30"]);

    let mut table = ProcessTable::new().expect("the process table");
    let pids = |found: Vec<FoundProcess>| found.iter().map(|p| p.pid).collect::<Vec<_>>();
    assert_eq!(
        pids(found(&mut table, &long, &ProcessMatch::Name).await),
        [by_link.pid()]
    );
    // The kernel's comm is the first 15 characters; they are not the process's name.
    assert_eq!(table.find(&long[..15], &ProcessMatch::Name), []);

    // A copy started under another argv[0] is found by its executable's name. The copy is made
    // by `cp`, so this multi-threaded test never holds the file open for writing when it execs.
    let copied_name = format!("{long}-copy");
    let copied = dir.path().join(&copied_name);
    let status = std::process::Command::new("cp")
        .arg(which("sleep"))
        .arg(&copied)
        .status()
        .expect("cp ran");
    assert!(status.success());
    let mut command = Command::new(&copied);
    command.arg0("renamed-argv0").arg("30").process_group(0);
    let by_exe = Spawned {
        child: command.spawn().expect("spawned"),
        own_group: true,
    };
    assert_eq!(
        pids(found(&mut table, &copied_name, &ProcessMatch::Name).await),
        [by_exe.pid()]
    );
}

fn which(program: &str) -> PathBuf {
    let output = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .expect("sh ran");
    PathBuf::from(
        String::from_utf8(output.stdout)
            .expect("a UTF-8 path")
            .trim(),
    )
}

#[tokio::test]
async fn a_zombie_is_dead_and_never_found() {
    let token = unique();
    // The background sleep's parent becomes `sleep 30` through exec, which never reaps it.
    let parent = shell_group(&format!("sleep 30 {token} & exec sleep 30"));
    let matcher = ProcessMatch::Arguments(vec![
        (0, regex("^sleep$")),
        (2, regex(&regex::escape(&token))),
    ]);
    let mut table = ProcessTable::new().expect("the process table");
    let before = found(&mut table, "sleeper", &matcher).await;
    assert_eq!(before.len(), 1);
    let zombie = before[0].pid;
    assert_ne!(zombie, parent.pid());
    let units = Units::of_this_system();
    let mut watched = Watched::open(before[0]).expect("watched");
    let usage = watched.read(units).expect("alive");
    assert!(usage.rss_bytes > 0, "{usage:?}");

    kill(Pid::from_raw(zombie), Signal::SIGKILL).expect("killed");
    let what = format!("{zombie} is a zombie");
    wait_until(
        DEADLINE,
        &what,
        || async move { state_of(zombie) == Some('Z') },
    )
    .await;
    table = ProcessTable::new().expect("the process table");
    assert_eq!(table.find("sleeper", &matcher), []);
    assert_eq!(watched.read(units), None, "a watched zombie reads as dead");
    assert!(Watched::open(before[0]).is_err(), "a zombie is not watched");
}

#[tokio::test]
async fn a_watched_process_counts_the_cpu_time_of_all_its_threads() {
    let pid = i32::try_from(std::process::id()).expect("a PID fits i32");
    let stat = || monitor_service::process::stat::read(pid).expect("this process");
    let own = FoundProcess {
        pid,
        start_time: stat().start_time,
    };
    let units = Units::of_this_system();
    let mut watched = Watched::open(own).expect("watching this process");
    let ticks = || stat().cpu_ticks;
    let (ticks_before, at) = (ticks(), Instant::now());
    // Two threads busy for 400 ms: the stat file's ticks sum every thread, and so must the
    // watched reading.
    let busy: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let end = Instant::now() + Duration::from_millis(400);
                let mut spins = 0u64;
                while Instant::now() < end {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            })
        })
        .collect();
    for thread in busy {
        thread.join().expect("a busy thread");
    }
    let usage = watched.read(units).expect("alive");
    let seconds = at.elapsed().as_secs_f64();
    let clk_tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .expect("CLK_TCK")
        .expect("CLK_TCK is set") as f64;
    let from_stat = (ticks() - ticks_before) as f64 / clk_tck * 100.0 / seconds;
    let from_clock = usage.cpu_pct.expect("a CPU figure");
    assert!(from_clock > 40.0, "busy threads: {from_clock:.0} %");
    assert!(
        (from_clock - from_stat).abs() < 30.0,
        "CPU clock {from_clock:.0} % against /proc/PID/stat {from_stat:.0} %"
    );
}

#[tokio::test]
async fn the_monitor_never_finds_itself() {
    let exe = std::env::current_exe().expect("the test binary");
    let own_name = exe
        .file_name()
        .and_then(|name| name.to_str())
        .expect("a file name");
    let table = ProcessTable::new().expect("the process table");
    let own_pid = i32::try_from(std::process::id()).expect("a PID fits i32");
    assert!(
        table
            .find(own_name, &ProcessMatch::Name)
            .iter()
            .all(|p| p.pid != own_pid)
    );
}

#[tokio::test]
async fn stop_kills_with_sigkill_a_process_that_ignores_sigterm() {
    let token = unique();
    let stubborn = shell_group(&format!("trap '' TERM; exec sleep 60 {token}"));
    let matcher = ProcessMatch::Arguments(vec![
        (0, regex("^sleep$")),
        (2, regex(&regex::escape(&token))),
    ]);
    let mut table = ProcessTable::new().expect("the process table");
    let targets = found(&mut table, "stubborn", &matcher).await;

    let outcome = stop(&targets, Duration::from_millis(200)).await;
    assert_eq!(
        outcome,
        StopOutcome::Killed {
            after: Duration::from_millis(200)
        }
    );
    assert_eq!(outcome.to_string(), "killed with SIGKILL after 0.2s");
    assert!(is_gone(stubborn.pid()));
}

#[tokio::test]
async fn stop_wakes_a_suspended_process_so_that_its_sigterm_handler_runs() {
    let token = unique();
    // Linux kills a stopped process at once for a signal it does not handle; a handled
    // SIGTERM waits until the process is continued.
    let shell = shell_group(&format!(
        "trap 'exit 0' TERM; : {token}; while :; do sleep 0.05; done"
    ));
    let matcher = by_line(&format!("^/bin/sh -c trap .* {}", regex::escape(&token)));
    let mut table = ProcessTable::new().expect("the process table");
    let targets = found(&mut table, "suspended", &matcher).await;
    kill(Pid::from_raw(shell.pid()), Signal::SIGSTOP).expect("stopped");
    let stopped = shell.pid();
    wait_until(DEADLINE, "the shell is stopped", || async move {
        state_of(stopped) == Some('T')
    })
    .await;

    assert_eq!(
        stop(&targets, Duration::from_secs(2)).await,
        StopOutcome::Terminated
    );
}

#[tokio::test]
async fn stop_terminates_the_whole_process_group() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pid_file = dir.path().join("child");
    let token = unique();
    let leader = shell_group(&format!(
        "sleep 60 {token} & echo $! > {}; wait",
        pid_file.display()
    ));
    let child = read_pid(&pid_file).await;
    // The shell forks before the child execs sleep: until then the child shows the shell's
    // command line too, and the scan below would find it.
    wait_until(DEADLINE, "the child runs sleep", || async move {
        std::fs::read(format!("/proc/{child}/cmdline")).is_ok_and(|line| line.starts_with(b"sleep"))
    })
    .await;
    let matcher = ProcessMatch::CommandLine(regex(&format!(
        "^/bin/sh -c sleep 60 {}",
        regex::escape(&token)
    )));
    let mut table = ProcessTable::new().expect("the process table");
    let targets = found(&mut table, "leader", &matcher).await;
    assert_eq!(
        targets.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [leader.pid()]
    );

    assert_eq!(stop(&targets, DEADLINE).await, StopOutcome::Terminated);
    let what = format!("the leader's child {child} is gone (it survived)");
    wait_until(DEADLINE, &what, || async move { is_gone(child) }).await;
}

#[tokio::test]
async fn stop_spares_a_group_leader_that_is_not_a_target() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pid_file = dir.path().join("child");
    let token = unique();
    let leader = shell_group(&format!(
        "sleep 60 {token} & echo $! > {}; exec sleep 60",
        pid_file.display()
    ));
    read_pid(&pid_file).await;
    let matcher = ProcessMatch::Arguments(vec![
        (0, regex("^sleep$")),
        (2, regex(&regex::escape(&token))),
    ]);
    let mut table = ProcessTable::new().expect("the process table");
    let targets = found(&mut table, "worker", &matcher).await;
    assert_ne!(targets[0].pid, leader.pid());

    assert_eq!(stop(&targets, DEADLINE).await, StopOutcome::Terminated);
    assert!(!is_gone(leader.pid()), "the group leader was killed too");
}

#[tokio::test]
async fn stop_in_the_monitors_own_group_signals_only_the_target() {
    let token = unique();
    // No group of its own: SIGTERM to its group would reach this test process.
    let child = Command::new("sleep")
        .args(["60", &token])
        .spawn()
        .expect("spawned");
    let sleep = Spawned {
        child,
        own_group: false,
    };
    let matcher = ProcessMatch::Arguments(vec![(2, regex(&regex::escape(&token)))]);
    let mut table = ProcessTable::new().expect("the process table");
    let targets = found(&mut table, "sleeper", &matcher).await;

    assert_eq!(stop(&targets, DEADLINE).await, StopOutcome::Terminated);
    assert!(is_gone(sleep.pid()));
}

#[tokio::test]
async fn stopping_processes_that_are_already_gone_succeeds_at_once() {
    assert_eq!(stop(&[], DEADLINE).await, StopOutcome::Terminated);
    let stale = FoundProcess {
        pid: i32::MAX,
        start_time: 1,
    };
    assert_eq!(stop(&[stale], DEADLINE).await, StopOutcome::Terminated);
    let own = FoundProcess {
        pid: i32::try_from(std::process::id()).expect("a PID fits i32"),
        start_time: 1,
    };
    assert_eq!(
        stop(&[own], DEADLINE).await,
        StopOutcome::Terminated,
        "a reused PID was signalled"
    );
}
