//! Alarms handled end to end by the service running in-process: real MariaDB, real child
//! processes. Strategies that need a fake `systemctl` on PATH run the real binary instead
//! (tests/lifecycle.rs), since PATH is shared by every test of this process.

mod common;

use common::fixture::{Fixture, PATIENCE, kill_all, pids_of};
use common::{wait_for, wait_until};

fn process_section(name: &str, body: &str) -> String {
    format!("[process.{name}]\n{body}\n")
}

#[tokio::test]
async fn process_strategy_starts_a_dead_process_and_clears_the_alarm() {
    let world = Fixture::new().await;
    let name = world.unique_name("ps");
    let section = process_section(
        &name,
        &format!(
            "restart_strategy = process\nstart_command = {}\nhealth_check_command = pgrep -x %s\n\
             health_check_timeout = 5\nrestart_delay = 0\nmax_attempts = 2",
            world.start_command(&name)
        ),
    );
    let service = world.run_in_process(world.config("", &section));
    world.add_process(1, &name).await;
    world.raise_alarm(1).await;

    let note = world.wait_cleared(1).await;
    assert!(
        note.starts_with("restarted via process (attempt 1/2) at "),
        "{note}"
    );
    assert!(note.contains("by monitor_service@testhost"), "{note}");
    assert_eq!(pids_of(&name).len(), 1, "exactly one instance runs");
    let (success, strategy, attempts, error) = world.wait_event(1).await;
    assert!(success);
    assert_eq!(strategy.as_deref(), Some("process"));
    assert_eq!(attempts, 1);
    assert_eq!(error, None);

    service.stop().await;
    kill_all(&name);
}

#[tokio::test]
async fn process_strategy_replaces_a_running_process_and_its_group() {
    let world = Fixture::new().await;
    let name = world.unique_name("pr");
    let mut old = world.start_sleeper(&name);
    let old_pid = i32::try_from(old.id()).expect("pid");
    let section = process_section(
        &name,
        &format!(
            "restart_strategy = process\nstart_command = {}\nhealth_check_command = pgrep -x %s\n\
             stop_timeout = 5",
            world.start_command(&name)
        ),
    );
    let service = world.run_in_process(world.config("", &section));
    world.add_process(1, &name).await;
    world.raise_alarm(1).await;

    world.wait_cleared(1).await;
    let status = old.wait().expect("the old process is reaped");
    assert!(
        !status.success(),
        "the old process was signalled: {status:?}"
    );
    let now = pids_of(&name);
    assert_eq!(now.len(), 1, "one new instance: {now:?}");
    assert_ne!(now[0], old_pid);

    service.stop().await;
    kill_all(&name);
}

#[tokio::test]
async fn a_failing_pre_restart_command_fails_the_attempt_and_keeps_the_alarm() {
    let world = Fixture::new().await;
    let name = world.unique_name("pre");
    let section = process_section(
        &name,
        &format!(
            "restart_strategy = process\nstart_command = {}\n\
             pre_restart_command = echo broken config >&2; exit 3\n\
             restart_delay = 0\nmax_attempts = 2",
            world.start_command(&name)
        ),
    );
    let service = world.run_in_process(world.config("max_restart_failures = 100", &section));
    world.add_process(1, &name).await;
    world.raise_alarm(1).await;

    let (success, _, attempts, error) = world.wait_event(1).await;
    assert!(!success);
    assert_eq!(attempts, 2);
    assert_eq!(
        error.as_deref(),
        Some("pre-restart command: exit 3: broken config")
    );
    let (alarma, note) = world.status(1).await;
    assert_eq!(alarma, 1, "the alarm stays raised for the next poll");
    let note = note.unwrap_or_default();
    assert!(
        note.starts_with("restart failed: pre-restart command: exit 3: broken config (2 attempts)"),
        "{note}"
    );
    assert!(pids_of(&name).is_empty(), "nothing was started");

    service.stop().await;
}

#[tokio::test]
async fn a_health_check_that_hangs_fails_at_its_deadline() {
    let world = Fixture::new().await;
    let name = world.unique_name("hang");
    let section = process_section(
        &name,
        &format!(
            "restart_strategy = process\nstart_command = {}\n\
             health_check_command = sleep 60\nhealth_check_timeout = 0.5\nmax_attempts = 1",
            world.start_command(&name)
        ),
    );
    let service = world.run_in_process(world.config("max_restart_failures = 100", &section));
    world.add_process(1, &name).await;
    world.raise_alarm(1).await;

    let (success, strategy, _, error) = world.wait_event(1).await;
    assert!(!success);
    assert_eq!(strategy.as_deref(), Some("process"));
    assert_eq!(
        error.as_deref(),
        Some("process: health check: timed out after 500ms")
    );

    service.stop().await;
    kill_all(&name);
}

#[tokio::test]
async fn a_start_command_that_is_not_found_says_so_in_the_note() {
    let world = Fixture::new().await;
    let name = world.unique_name("nf");
    let section = process_section(
        &name,
        "restart_strategy = process\nstart_command = /nonexistent/daemon --foreground\n\
         max_attempts = 1",
    );
    let service = world.run_in_process(world.config("max_restart_failures = 100", &section));
    world.add_process(1, &name).await;
    world.raise_alarm(1).await;

    let (success, _, _, error) = world.wait_event(1).await;
    assert!(!success);
    let error = error.unwrap_or_default();
    assert!(error.starts_with("process: start_command: "), "{error}");
    assert!(error.contains("not found"), "{error}");

    service.stop().await;
}

#[tokio::test]
async fn names_with_shell_text_are_never_executed_and_get_a_note() {
    let world = Fixture::new().await;
    let marker = world.path("pwned");
    let names = [
        format!("x; touch {}", marker.display()),
        format!("$(touch {})", marker.display()),
        format!("`touch {}`", marker.display()),
        "-rf".to_owned(),
    ];
    // Every default command would run, were a name let through.
    let default = format!(
        "[process.default]\nrestart_strategy = process\nstart_command = touch {m}; %s\n\
         pre_restart_command = touch {m}; %s\nhealth_check_command = touch {m}; %s\n",
        m = marker.display()
    );
    let service = world.run_in_process(world.config("", &default));
    for (id, name) in (1..).zip(&names) {
        world.add_process(id, name).await;
        world.raise_alarm(id).await;
    }
    for id in 1..=4 {
        let note = wait_for(PATIENCE, "a refusal note", || async {
            world
                .status(id)
                .await
                .1
                .filter(|n| n.starts_with("not restarted"))
        })
        .await;
        assert!(note.contains("never executed"), "{note}");
        assert_eq!(world.status(id).await.0, 1, "the alarm stays raised");
    }
    assert!(!marker.exists(), "no command ran");
    assert_eq!(
        world
            .count(
                "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id > ?",
                0
            )
            .await,
        0
    );

    service.stop().await;
}

#[tokio::test]
async fn at_most_max_parallel_restarts_run_at_once() {
    let world = Fixture::new().await;
    let prefix = world.unique_name("par");
    let default = "[process.default]\nrestart_strategy = process\nstart_command = true\n\
         health_check_command = sleep 0.4\nhealth_check_timeout = 5\n";
    let service = world.run_in_process(world.config("max_parallel_restarts = 2", default));
    for id in 1..=6 {
        world.add_process(id, &format!("{prefix}_{id}")).await;
        world.raise_alarm(id).await;
    }
    for id in 1..=6 {
        world.wait_cleared(id).await;
    }
    // The most events whose [started_at, finished_at] overlap at any event's start.
    let overlap = world
        .count(
            "SELECT MAX(n) FROM (SELECT (SELECT COUNT(*) FROM RESTART_EVENTS b \
             WHERE b.started_at <= a.started_at AND b.finished_at > a.started_at) AS n \
             FROM RESTART_EVENTS a WHERE a.process_id > ?) AS o",
            0,
        )
        .await;
    assert_eq!(overlap, 2, "two at once, never more");

    service.stop().await;
}

#[tokio::test]
async fn an_unconfigured_process_uses_the_default_section_only_when_allowed() {
    let world = Fixture::new().await;
    let name = world.unique_name("un");
    let configured = world.unique_name("cf");
    let sections = format!(
        "[process.default]\nrestart_strategy = process\nstart_command = {}\n\
         health_check_command = pgrep -x %s\n\n[process.{configured}]\nstart_command = true\n\
         health_check_command = true\n",
        world.start_command(&name)
    );
    world.add_process(1, &name).await;
    world.add_process(2, &configured).await;
    world.raise_alarm(1).await;
    world.raise_alarm(2).await;
    let refusing = world.run_in_process(world.config("allow_unconfigured = false", &sections));
    // Both alarms come in the same poll: once the configured one is handled, the other was
    // seen and left alone.
    world.wait_cleared(2).await;
    refusing.stop().await;
    assert_eq!(
        world.status(1).await.0,
        1,
        "left for a monitor that handles it"
    );
    assert!(pids_of(&name).is_empty());

    let service = world.run_in_process(world.config("", &sections));
    world.wait_cleared(1).await;
    wait_until(PATIENCE, "the default start_command ran", || async {
        pids_of(&name).len() == 1
    })
    .await;

    service.stop().await;
    kill_all(&name);
}

/// The parent of `pid`, from `/proc/PID/stat` (the field after the state).
fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after_name = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
    after_name
        .split_whitespace()
        .nth(1)
        .and_then(|ppid| ppid.parse().ok())
        .expect("a parent pid")
}

fn program_of(pid: i32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    comm.trim().to_owned()
}

#[tokio::test]
async fn a_start_command_of_one_command_leaves_no_shell_behind_as_its_parent() {
    let world = Fixture::new().await;
    let simple = world.unique_name("ns");
    let redirected = world.unique_name("nr");
    // One simple command, and one that needs the shell for its redirection.
    let commands = [
        (
            &simple,
            format!("{} 1000", world.sleeper(&simple).display()),
        ),
        (
            &redirected,
            format!("{} 1000 > /dev/null", world.sleeper(&redirected).display()),
        ),
    ];
    let sections: String = commands
        .iter()
        .map(|(name, start)| {
            process_section(
                name,
                &format!(
                    "restart_strategy = process\nstart_command = {start}\n\
                     health_check_command = pgrep -x %s\nrestart_delay = 0"
                ),
            )
        })
        .collect();
    let service = world.run_in_process(world.config("", &sections));
    for (id, (name, _)) in (1..).zip(&commands) {
        world.add_process(id, name).await;
        world.raise_alarm(id).await;
    }
    for (id, (name, _)) in (1..).zip(&commands) {
        world.wait_cleared(id).await;
        let pids = pids_of(name);
        assert_eq!(pids.len(), 1, "{name}: one instance: {pids:?}");
        let parent = parent_of(pids[0]);
        let program = program_of(parent);
        assert!(
            !["sh", "dash", "bash"].contains(&program.as_str()),
            "{name} runs under a shell, {parent} ({program})"
        );
    }

    service.stop().await;
    for (name, _) in &commands {
        kill_all(name);
    }
}
