//! `[database] host` as a list, against the one test server: a dead first entry is passed
//! over by the daemon and by the commands, and a server cut under a running daemon (a
//! `DbProxy` in front of the real one) is left for the next of the list, without an alarm
//! lost or handled twice.

mod common;

use common::fixture::{Fixture, PATIENCE};
use common::{DbProxy, monitor, wait_until};
use nix::sys::signal::Signal;

fn log(world: &Fixture) -> String {
    std::fs::read_to_string(world.path("monitor.log")).unwrap_or_default()
}

/// A port on loopback where nothing listens: bound, then let go.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    listener.local_addr().expect("address").port()
}

/// The test database's `[database]` section with `host` listing `ports` on 127.0.0.1.
fn section_listing(world: &Fixture, ports: &[u16]) -> String {
    let first = world.db.database_section_on_port(ports[0]);
    let list: Vec<String> = ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    let replaced = first.replace(
        &format!("host = 127.0.0.1\nport = {}\n", ports[0]),
        &format!("host = {}\n", list.join(", ")),
    );
    assert_ne!(first, replaced, "the section's host and port lines");
    replaced
}

/// A process whose restart appends its name to `starts`.
fn counted_process(name: &str, starts: &std::path::Path) -> String {
    format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = echo %s >> {}\n\
         health_check_command = true\nmax_attempts = 1\n",
        starts.display()
    )
}

fn starts_of(starts: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(starts)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_list_whose_first_server_is_down_is_served_by_the_next_for_daemon_and_commands() {
    let world = Fixture::new().await;
    let real = world.db.server_addr().port();
    let name = world.unique_name("list");
    let starts = world.path("starts");
    let database = section_listing(&world, &[dead_port(), real]);
    let text = world.config_text_with(&database, "", &counted_process(&name, &starts));
    let config = world.write_config(&text);
    world.add_process(1, &name).await;

    // A command: the dead server costs one refused connection, not the command.
    monitor(&config)
        .args(["alarm", "set", &name])
        .assert()
        .success();
    assert_eq!(world.status(1).await.0, 1);
    let listed = monitor(&config).args(["alarm", "list"]).assert().success();
    let listed = String::from_utf8_lossy(&listed.get_output().stdout).into_owned();
    assert!(listed.contains(&name), "{listed}");

    let mut daemon = world.spawn_binary(&config);
    let note = world.wait_cleared(1).await;
    assert!(note.contains("restarted"), "{note}");
    assert_eq!(starts_of(&starts), vec![name.clone()]);
    let expected = format!("database server 127.0.0.1:{real} answers");
    wait_until(PATIENCE, "the server that answers is logged", || async {
        log(&world).contains(&expected)
    })
    .await;
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, Some(0));
}

#[tokio::test]
async fn a_daemon_whose_server_is_cut_moves_to_the_next_and_back_round_robin() {
    let world = Fixture::new().await;
    let first = DbProxy::start(world.db.server_addr()).await;
    let second = DbProxy::start(world.db.server_addr()).await;
    let names: Vec<String> = (0..3).map(|_| world.unique_name("rr")).collect();
    let starts = world.path("starts");
    let sections: String = names
        .iter()
        .map(|name| counted_process(name, &starts))
        .collect();
    let database = section_listing(&world, &[first.port(), second.port()]);
    let config = world.write_config(&world.config_text_with(&database, "", &sections));
    for (id, name) in (1..).zip(&names) {
        world.add_process(id, name).await;
    }
    let mut daemon = world.spawn_binary(&config);

    world.raise_alarm(1).await;
    world.wait_cleared(1).await;
    assert!(first.open_connections() > 0, "the first server serves");
    assert_eq!(second.open_connections(), 0, "the second is not used yet");

    first.cut();
    world.raise_alarm(2).await;
    world.wait_cleared(2).await;
    assert!(second.open_connections() > 0, "the second server took over");
    let lost = format!("database server 127.0.0.1:{} lost", first.port());
    let answers = format!(
        "database server 127.0.0.1:{} answers, in place of 127.0.0.1:{}",
        second.port(),
        first.port()
    );
    wait_until(PATIENCE, "the move is logged", || async {
        let log = log(&world);
        log.contains(&lost) && log.contains(&answers)
    })
    .await;

    // Round robin: losing the second goes back to the first, restored meanwhile.
    first.restore().await;
    second.cut();
    world.raise_alarm(3).await;
    world.wait_cleared(3).await;
    assert!(first.open_connections() > 0, "back on the first server");

    assert_eq!(
        starts_of(&starts),
        names,
        "each alarm handled once, in order"
    );
    for id in 1..=3 {
        let events = world
            .count(
                "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ? AND success = 1",
                id,
            )
            .await;
        assert_eq!(events, 1, "process {id}");
    }
    assert_eq!(
        log(&world).matches(&lost).count(),
        1,
        "the move is logged once"
    );
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, Some(0));
}
