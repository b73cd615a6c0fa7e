//! The binary as systemd runs it: the notify protocol on a real datagram socket, the watchdog
//! pinged only while the poll loop completes iterations, and SIGHUP reloading the config.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::fixture::{Fixture, PATIENCE};
use common::{wait_for, wait_until};
use nix::sys::signal::Signal;

/// Collects what the service sends to NOTIFY_SOCKET, with the time each datagram came.
struct NotifySocket {
    socket: UnixDatagram,
    path: String,
    received: Vec<(Instant, String)>,
}

impl NotifySocket {
    fn bind(world: &Fixture) -> NotifySocket {
        let path = world.path("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        NotifySocket {
            socket,
            path: path.display().to_string(),
            received: Vec::new(),
        }
    }

    /// Reads what has arrived so far.
    fn drain(&mut self) {
        let mut buffer = [0u8; 4096];
        while let Ok(length) = self.socket.recv(&mut buffer) {
            let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
            self.received.push((Instant::now(), text));
        }
    }

    fn lines(&self) -> Vec<String> {
        self.received
            .iter()
            .flat_map(|(_, text)| text.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }

    fn watchdog_times(&self) -> Vec<Instant> {
        self.received
            .iter()
            .filter(|(_, text)| text.lines().any(|l| l == "WATCHDOG=1"))
            .map(|(at, _)| *at)
            .collect()
    }
}

#[tokio::test]
async fn the_service_notifies_ready_status_and_watchdog_while_it_polls() {
    let world = Fixture::new().await;
    let mut notify = NotifySocket::bind(&world);
    let config = world.write_config(&world.config_text("check_interval = 300", ""));
    let mut monitor = world.spawn_binary_with(
        &config,
        &[("NOTIFY_SOCKET", &notify.path), ("WATCHDOG_USEC", "200000")],
    );
    // check_interval is 300 s, yet the loop wakes every 100 ms for the watchdog.
    wait_until(PATIENCE, "several watchdog pings", || {
        notify.drain();
        let pings = notify.watchdog_times().len();
        async move { pings >= 5 }
    })
    .await;
    let lines = notify.lines();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("READY=1"),
        "{lines:?}"
    );
    let status = lines
        .iter()
        .find(|l| l.starts_with("STATUS="))
        .expect("a status line");
    assert!(
        status.contains("0 in alarm, 0 breakers open, database"),
        "{status}"
    );

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
    notify.drain();
    assert!(notify.lines().contains(&"STOPPING=1".to_owned()));
}

#[tokio::test]
async fn the_watchdog_is_not_pinged_while_a_poll_hangs() {
    let world = Fixture::new().await;
    let mut notify = NotifySocket::bind(&world);
    // A server that accepts connections and never answers: every poll hangs until the
    // connect deadline (2 s in the test config).
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = blackhole.local_addr().expect("address").port();
    let text = world.config_text_with(
        &world.db.database_section_on_port(port),
        "check_interval = 0.1",
        "",
    );
    let config = world.write_config(&text);
    let mut monitor = world.spawn_binary_with(
        &config,
        &[("NOTIFY_SOCKET", &notify.path), ("WATCHDOG_USEC", "200000")],
    );
    wait_until(PATIENCE, "three pings", || {
        notify.drain();
        let pings = notify.watchdog_times().len();
        async move { pings >= 3 }
    })
    .await;
    let times = notify.watchdog_times();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Each iteration waits out a hung poll: no ping comes in between.
    assert!(
        gaps.iter().all(|gap| *gap >= Duration::from_millis(1500)),
        "pings while the poll hung: {gaps:?}"
    );

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
    drop(blackhole);
}

fn log(world: &Fixture) -> String {
    std::fs::read_to_string(world.path("monitor.log")).unwrap_or_default()
}

#[tokio::test]
async fn sighup_reloads_a_good_config_and_keeps_the_old_one_when_the_new_is_bad() {
    let world = Fixture::new().await;
    let name = world.unique_name("hup");
    world.add_process(1, &name).await;
    let config = world.write_config(&world.config_text("allow_unconfigured = false", ""));
    let mut monitor = world.spawn_binary(&config);
    wait_until(PATIENCE, "the service started", || async {
        log(&world).contains("started")
    })
    .await;

    // A bad config: refused, and the service goes on.
    std::fs::write(&config, "[monitor]\ncheck_interval = never\n").expect("write");
    monitor.signal(Signal::SIGHUP);
    wait_until(PATIENCE, "the reload refused", || async {
        log(&world).contains("reload refused, the running configuration stays")
    })
    .await;
    assert!(log(&world).contains("[monitor] check_interval"));

    // A good config that adds the process: its alarm is handled without a restart.
    let section = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = true\n\
         health_check_command = true\n"
    );
    std::fs::write(
        &config,
        world.config_text("allow_unconfigured = false", &section),
    )
    .expect("write");
    monitor.signal(Signal::SIGHUP);
    wait_until(PATIENCE, "the reload applied", || async {
        log(&world).contains("configuration reloaded")
    })
    .await;
    world.raise_alarm(1).await;
    let note = world.wait_cleared(1).await;
    assert!(note.starts_with("restarted via process"), "{note}");

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
}

#[tokio::test]
async fn sighup_reopens_the_log_file_after_logrotate_moved_it() {
    let world = Fixture::new().await;
    let config = world.write_config(&world.config_text("", ""));
    let mut monitor = world.spawn_binary(&config);
    wait_until(PATIENCE, "the service started", || async {
        log(&world).contains("started")
    })
    .await;
    std::fs::rename(world.path("monitor.log"), world.path("monitor.log.rotated")).expect("rotate");
    monitor.signal(Signal::SIGHUP);
    let fresh = wait_for(PATIENCE, "a new log file", || async {
        let text = log(&world);
        text.contains("configuration reloaded").then_some(text)
    })
    .await;
    assert!(
        !fresh.contains("monitor_service 0."),
        "the new file starts after the reload"
    );

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
}

/// A `[process.NAME]` section whose restart always succeeds at once.
fn quick_restart(name: &str) -> String {
    format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = true\n\
         health_check_command = true\n"
    )
}

#[tokio::test]
async fn sighup_with_a_shorter_check_interval_wakes_the_poller_at_once() {
    let world = Fixture::new().await;
    let name = world.unique_name("wake");
    world.add_process(1, &name).await;
    let section = quick_restart(&name);
    let config = world.write_config(&world.config_text("check_interval = 30", &section));
    let mut monitor = world.spawn_binary(&config);
    // The first poll runs at start; the next one would be 30 s later.
    wait_until(PATIENCE, "the service reached the database", || async {
        log(&world).contains("database connected")
    })
    .await;

    std::fs::write(&config, world.config_text("check_interval = 0.5", &section)).expect("write");
    monitor.signal(Signal::SIGHUP);
    wait_until(PATIENCE, "the reload applied", || async {
        log(&world).contains("configuration reloaded")
    })
    .await;
    world.raise_alarm(1).await;
    // Well within the old 30 s interval: the new one is in force.
    wait_for(Duration::from_secs(10), "the alarm is handled", || async {
        (world.status(1).await.0 == 0).then_some(())
    })
    .await;

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
}

#[tokio::test]
async fn sighup_keeps_the_running_config_when_the_file_is_emptied_or_loses_its_database() {
    let world = Fixture::new().await;
    let name = world.unique_name("keep");
    world.add_process(1, &name).await;
    let text = world.config_text("allow_unconfigured = false", &quick_restart(&name));
    let config = world.write_config(&text);
    let mut monitor = world.spawn_binary(&config);
    wait_until(PATIENCE, "the service started", || async {
        log(&world).contains("started")
    })
    .await;

    // Truncated, as by `> config.ini` or an editor's failed save.
    std::fs::write(&config, "").expect("truncate");
    monitor.signal(Signal::SIGHUP);
    let refused = format!(
        "reload refused, the running configuration stays: {}: has no [section] at all",
        config.display()
    );
    wait_until(PATIENCE, "the empty file refused", || async {
        log(&world).contains(&refused)
    })
    .await;

    // Everything but the [database] section.
    let monitor_at = text.find("[monitor]").expect("a [monitor] section");
    std::fs::write(&config, &text[monitor_at..]).expect("write");
    monitor.signal(Signal::SIGHUP);
    wait_until(PATIENCE, "the file without [database] refused", || async {
        log(&world).contains("the [database] section is gone")
    })
    .await;
    assert!(
        !log(&world).contains("configuration reloaded"),
        "{}",
        log(&world)
    );

    // The running configuration still polls every 0.2 s and still knows the process: with
    // the defaults it would wait 300 s, then restart it through systemctl.
    world.raise_alarm(1).await;
    let note = world.wait_cleared(1).await;
    assert!(note.starts_with("restarted via process"), "{note}");

    monitor.signal(Signal::SIGTERM);
    assert_eq!(monitor.exit_code().await, Some(0));
}
