//! The real binary: signals, the instance lock, children that outlive it, strategies that go
//! through `systemctl` (a fake one on PATH), and the database going away under it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::fixture::{Fixture, Monitor, PATIENCE, kill_all, pids_of};
use common::{DbProxy, monitor_bin, wait_for, wait_until};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

fn log(world: &Fixture) -> String {
    std::fs::read_to_string(world.path("monitor.log")).unwrap_or_default()
}

async fn wait_log(world: &Fixture, needle: &str) {
    wait_until(PATIENCE, needle, || async { log(world).contains(needle) }).await;
}

fn script(path: &Path, body: &str) -> PathBuf {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.to_owned()
}

#[tokio::test]
async fn sigterm_stops_the_service_with_exit_status_0() {
    let world = Fixture::new().await;
    let config = world.write_config(&world.config_text("", ""));
    let mut child = world.spawn_binary(&config);
    wait_log(&world, "database connected").await;
    child.signal(Signal::SIGTERM);
    assert_eq!(child.exit_code().await, Some(0));
    assert!(log(&world).contains("SIGTERM received"));
}

#[tokio::test]
async fn a_second_instance_is_refused_and_names_the_pid_holding_the_lock() {
    let world = Fixture::new().await;
    let config = world.write_config(&world.config_text("", ""));
    let mut first = world.spawn_binary(&config);
    wait_log(&world, "started").await;

    let second = Command::new(monitor_bin())
        .arg("-c")
        .arg(&config)
        .arg("run")
        .output()
        .expect("run a second instance");
    assert_eq!(second.status.code(), Some(75));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("(PID {})", first.pid())),
        "names the holder: {stderr}"
    );

    first.signal(Signal::SIGINT);
    assert_eq!(first.exit_code().await, Some(0));
}

#[tokio::test]
async fn a_respawned_process_outlives_the_service_and_inherits_nothing() {
    let world = Fixture::new().await;
    let name = world.unique_name("out");
    let section = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = {}\n\
         health_check_command = pgrep -x %s\n",
        world.start_command(&name)
    );
    let config = world.write_config(&world.config_text("", &section));
    world.add_process(1, &name).await;
    world.raise_alarm(1).await;
    let mut monitor = world.spawn_binary_with(
        &config,
        &[
            ("NOTIFY_SOCKET", "/run/systemd/notify"),
            ("MONITOR_DB_PASSWORD", ""),
        ],
    );
    world.wait_cleared(1).await;
    let pid = pids_of(&name)[0];

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
    assert_eq!(
        pids_of(&name),
        vec![pid],
        "still running after the monitor stopped"
    );

    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list fds")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut fds = fds;
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"], "no inherited descriptors");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    let environ = String::from_utf8_lossy(&environ);
    assert!(!environ.contains("NOTIFY_SOCKET="), "{environ}");
    assert!(!environ.contains("MONITOR_DB_PASSWORD="), "{environ}");
    let sid = nix::unistd::getsid(Some(Pid::from_raw(pid))).expect("session");
    assert_ne!(sid, nix::unistd::getsid(None).expect("own session"));

    kill_all(&name);
}

/// A PATH holding a fake `systemctl` (when `body` is given) and `pgrep`, nothing else.
fn fake_path(world: &Fixture, systemctl: Option<&str>) -> String {
    let bin = world.path("bin");
    std::fs::create_dir_all(&bin).expect("bin folder");
    if let Some(body) = systemctl {
        script(&bin.join("systemctl"), body);
    }
    let pgrep = ["/usr/bin/pgrep", "/bin/pgrep"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("pgrep is installed");
    let _ = std::os::unix::fs::symlink(pgrep, bin.join("pgrep"));
    bin.display().to_string()
}

async fn run_with_path(world: &Fixture, path: &str, section: &str) -> Monitor {
    let config = world.write_config(&world.config_text("", section));
    let monitor = world.spawn_binary_with(&config, &[("PATH", path)]);
    wait_log(world, "started").await;
    monitor
}

#[tokio::test]
async fn service_strategy_restarts_the_unit_through_systemctl() {
    let world = Fixture::new().await;
    let name = world.unique_name("svc");
    let calls = world.path("systemctl.calls");
    let sleeper = world.sleeper(&name);
    let path = fake_path(
        &world,
        Some(&format!(
            // Like systemd, the unit runs apart from systemctl, which returns once it started.
            "echo \"$@\" >> {calls}\n/usr/bin/setsid -f {sleeper} 1000 >/dev/null 2>&1\n\
             until {path}/pgrep -x {name} >/dev/null; do /usr/bin/sleep 0.01; done",
            calls = calls.display(),
            sleeper = sleeper.display(),
            path = world.path("bin").display(),
        )),
    );
    let section = format!(
        "[process.{name}]\nrestart_strategy = service\nservice_name = {name}-unit.service\n\
         health_check_command = pgrep -x %s\n"
    );
    world.add_process(1, &name).await;
    let mut monitor = run_with_path(&world, &path, &section).await;
    world.raise_alarm(1).await;

    let note = world.wait_cleared(1).await;
    assert!(
        note.starts_with("restarted via service (attempt 1/2)"),
        "{note}"
    );
    let calls = std::fs::read_to_string(&calls).expect("systemctl was called");
    assert_eq!(calls.trim(), format!("restart -- {name}-unit.service"));
    let (success, strategy, _, _) = world.wait_event(1).await;
    assert!(success);
    assert_eq!(strategy.as_deref(), Some("service"));

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
    kill_all(&name);
}

async fn auto_falls_back(world: Fixture, systemctl: Option<&str>, expected_reason: &str) {
    let name = world.unique_name("auto");
    let path = fake_path(&world, systemctl);
    let section = format!(
        "[process.{name}]\nrestart_strategy = auto\nstart_command = {}\n\
         health_check_command = pgrep -x %s\nhealth_check_timeout = 1\n",
        world.start_command(&name)
    );
    world.add_process(1, &name).await;
    let mut monitor = run_with_path(&world, &path, &section).await;
    world.raise_alarm(1).await;

    let note = world.wait_cleared(1).await;
    assert!(
        note.starts_with("restarted via process (attempt 1/2)"),
        "{note}"
    );
    assert_eq!(pids_of(&name).len(), 1);
    let (success, strategy, _, _) = world.wait_event(1).await;
    assert!(success);
    assert_eq!(strategy.as_deref(), Some("process"));
    wait_log(&world, expected_reason).await;

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
    kill_all(&name);
}

#[tokio::test]
async fn auto_falls_back_to_the_process_strategy_when_systemctl_fails() {
    let world = Fixture::new().await;
    auto_falls_back(
        world,
        Some("echo unit not found >&2; exit 5"),
        "exit 5: unit not found",
    )
    .await;
}

#[tokio::test]
async fn auto_falls_back_to_the_process_strategy_when_systemctl_is_absent() {
    let world = Fixture::new().await;
    auto_falls_back(world, None, "command not found: systemctl").await;
}

#[tokio::test]
async fn auto_falls_back_when_the_service_restart_leaves_the_process_unhealthy() {
    let world = Fixture::new().await;
    auto_falls_back(world, Some("exit 0"), "service: health check: ").await;
}

#[tokio::test]
async fn the_service_starts_while_the_database_is_down_and_works_once_it_is_back() {
    let world = Fixture::new().await;
    let proxy = DbProxy::start(world.db.server_addr()).await;
    proxy.cut();
    let name = world.unique_name("down");
    let section = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = true\n\
         health_check_command = true\n"
    );
    let text = world.config_text_with(
        &world.db.database_section_on_port(proxy.port()),
        "",
        &section,
    );
    let config = world.write_config(&text);
    let mut monitor = world.spawn_binary(&config);
    world.add_process(1, &name).await;
    world.raise_alarm(1).await;
    wait_log(&world, "database unavailable").await;
    // Several polls fail; the state change is logged once.
    wait_until(PATIENCE, "several failed polls", || async {
        log(&world).matches("poll failed").count() >= 3
    })
    .await;
    assert_eq!(log(&world).matches("database unavailable").count(), 1);

    proxy.restore().await;
    world.wait_cleared(1).await;
    wait_log(&world, "database available again").await;
    assert_eq!(
        world
            .count(
                "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ?",
                1
            )
            .await,
        1
    );

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
}

#[tokio::test]
async fn a_restart_finished_while_the_database_is_cut_is_recorded_once_it_is_back() {
    let world = Fixture::new().await;
    let proxy = DbProxy::start(world.db.server_addr()).await;
    let name = world.unique_name("cut");
    let gate = world.path("gate");
    let starts = world.path("starts");
    // The health check passes once the test opens the gate, so the database can be cut while
    // the restart is under way.
    let section = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = echo >> {}\n\
         health_check_command = test -e {}\nhealth_check_timeout = 30\nmax_attempts = 1\n",
        starts.display(),
        gate.display()
    );
    let text = world.config_text_with(
        &world.db.database_section_on_port(proxy.port()),
        "",
        &section,
    );
    let config = world.write_config(&text);
    world.add_process(1, &name).await;
    let mut monitor = world.spawn_binary(&config);
    world.raise_alarm(1).await;
    wait_until(PATIENCE, "the restart began", || async { starts.exists() }).await;

    proxy.cut();
    std::fs::write(&gate, b"").expect("open the gate");
    wait_log(&world, "database unavailable").await;
    assert_eq!(
        world.status(1).await.0,
        1,
        "not cleared while the database is away"
    );
    proxy.restore().await;

    world.wait_cleared(1).await;
    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
    let started = std::fs::read_to_string(&starts).unwrap_or_default();
    assert_eq!(started.lines().count(), 1, "restarted once, recorded once");
    assert_eq!(
        world
            .count(
                "SELECT COUNT(*) FROM RESTART_EVENTS WHERE success = 1 AND process_id = ?",
                1
            )
            .await,
        1
    );
}

#[tokio::test]
async fn killed_database_connections_are_replaced_without_losing_an_alarm() {
    let world = Fixture::new().await;
    let name = world.unique_name("kill");
    let section = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = true\nhealth_check_command = true\n"
    );
    let config = world.write_config(&world.config_text("", &section));
    world.add_process(1, &name).await;
    let mut monitor = world.spawn_binary(&config);
    wait_log(&world, "database connected").await;

    // Kill every connection the monitor holds (all connections to this database but ours).
    let ours: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
        .fetch_one(&world.db.pool)
        .await
        .expect("own connection id");
    let killed = wait_for(PATIENCE, "the monitor's connections", || async {
        let ids: Vec<u64> = sqlx::query_scalar(
            "SELECT CAST(ID AS UNSIGNED) FROM information_schema.PROCESSLIST \
             WHERE DB = DATABASE() AND ID <> ?",
        )
        .bind(ours)
        .fetch_all(&world.db.pool)
        .await
        .ok()?;
        (!ids.is_empty()).then_some(ids)
    })
    .await;
    for id in &killed {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("KILL CONNECTION {id}")))
            .execute(&world.db.pool)
            .await;
    }
    world.raise_alarm(1).await;
    world.wait_cleared(1).await;
    assert_eq!(
        world
            .count(
                "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ?",
                1
            )
            .await,
        1
    );

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
}

#[tokio::test]
async fn sigterm_lets_a_running_restart_finish_and_record_its_outcome() {
    let world = Fixture::new().await;
    let name = world.unique_name("grace");
    let began = world.path("began");
    let section = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = touch {}\n\
         health_check_command = sleep 1\nhealth_check_timeout = 10\n",
        began.display()
    );
    let config = world.write_config(&world.config_text("", &section));
    world.add_process(1, &name).await;
    world.raise_alarm(1).await;
    let mut monitor = world.spawn_binary(&config);
    wait_until(PATIENCE, "the restart began", || async { began.exists() }).await;

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
    let (alarma, note) = world.status(1).await;
    assert_eq!(alarma, 0, "the restart under way finished before the exit");
    assert!(
        note.unwrap_or_default()
            .starts_with("restarted via process")
    );
}

#[tokio::test]
async fn the_password_never_reaches_the_log_or_stderr() {
    let world = Fixture::new().await;
    let password = "Sup3r-secret-pw";
    let text = world.config_text("", "").replace(
        "[database]\n",
        &format!("[database]\npassword = {password}\n"),
    );
    let config = world.write_config(&text);
    let output = Command::new(monitor_bin())
        .arg("-c")
        .arg(&config)
        .arg("check-config")
        .output()
        .expect("check-config");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("password = ********"), "{printed}");
    assert!(!printed.contains(password));

    // The server refuses the password: the error is logged, the password is not.
    let mut monitor = world.spawn_binary_with(&config, &[("MONITOR_DB_PASSWORD", password)]);
    wait_log(&world, "database unavailable").await;
    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
    assert!(!log(&world).contains(password), "{}", log(&world));
}

#[tokio::test]
async fn the_log_rotates_by_size_without_cutting_lines() {
    let world = Fixture::new().await;
    let text = world
        .config_text("", "")
        .replace("check_interval = 0.2", "check_interval = 0.1")
        .replace(
            "stderr = false",
            "stderr = false\nmax_log_size = 2\nlog_files_to_keep = 2",
        );
    let config = world.write_config(&text);
    let mut monitor = world.spawn_binary(&config);
    let rotated = || {
        std::fs::read_dir(world.dir.path())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.starts_with("monitor.log") && name != "monitor.log"
                    })
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    // Debug logging of a poll every 50 ms fills 2 KB quickly; wait for three rotations.
    wait_until(PATIENCE, "the log rotated", || {
        let rotated = rotated();
        async move { rotated.len() >= 2 }
    })
    .await;
    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));

    let rotated = rotated();
    assert!(rotated.len() <= 2, "log_files_to_keep = 2: {rotated:?}");
    for file in rotated.iter().chain([&world.path("monitor.log")]) {
        let text = std::fs::read_to_string(file).expect("read log");
        assert!(text.len() <= 2048, "{file:?} is {} bytes", text.len());
        assert!(text.ends_with('\n'), "{file:?} ends mid-line");
        for line in text.lines() {
            assert!(
                line.starts_with("20"),
                "a whole line, from its timestamp: {line:?}"
            );
        }
    }
}

#[test]
fn a_bad_config_exits_78_with_every_problem_on_its_own_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::write_config(
        dir.path(),
        "[database]\nport = lots\n\n[monitor]\ncheck_interval = -1\ncolour = blue\n\n[bogus]\n",
    );
    let output = Command::new(monitor_bin())
        .arg("-c")
        .arg(&config)
        .arg("run")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines
            .iter()
            .all(|line| line.starts_with("monitor_service: "))
    );
    for needle in [
        "[database] port",
        "[monitor] check_interval",
        "[monitor] colour",
        "[bogus]",
    ] {
        assert!(
            lines.iter().filter(|line| line.contains(needle)).count() == 1,
            "one line names {needle}: {stderr}"
        );
    }
}

/// Runs `monitor_service -c config COMMAND` to its end (killed at the deadline), and returns
/// its exit code and stderr.
fn finish(config: &Path, command: &str) -> (Option<i32>, String) {
    let output = common::monitor(config)
        .arg(command)
        .timeout(PATIENCE)
        .output()
        .expect("run monitor_service");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

#[tokio::test]
async fn a_duration_past_a_year_or_below_its_floor_exits_78_with_one_line_and_never_aborts() {
    let world = Fixture::new().await;
    let year = "must be at most 31536000 seconds (a year)";
    let cases = [
        (
            "check_interval = 1e19",
            "",
            format!("[monitor] check_interval: {year}, not 1e19"),
        ),
        (
            "",
            "[process.default]\nhealth_check_timeout = 1e19\n",
            format!("[process.default] health_check_timeout: {year}, not 1e19"),
        ),
        (
            "",
            "[process.default]\nstop_timeout = 9.3e18\n",
            format!("[process.default] stop_timeout: {year}, not 9.3e18"),
        ),
        (
            "check_interval = 0.0000001",
            "",
            "[monitor] check_interval: must be at least 0.1 seconds, not 0.0000001".to_owned(),
        ),
    ];
    for (monitor, processes, why) in cases {
        let config = world.write_config(&world.config_text(monitor, processes));
        let expected = format!("monitor_service: {}: {why}\n", config.display());
        for command in ["check-config", "run"] {
            let (code, stderr) = finish(&config, command);
            assert_eq!(
                code,
                Some(78),
                "{command} with {monitor}{processes}: {stderr}"
            );
            assert_eq!(stderr, expected, "{command}");
        }
    }
}
