//! `depends_on` end to end, with the real binary, MariaDB and real processes: a chain killed
//! at once comes back in dependency order with only its root cause auto-alarmed, an alarm
//! waits while its dependency is dead and goes once it is back, a dependency's open breaker
//! keeps its dependents from being tried, and `restart_with_dependencies`.

mod common;

use std::os::unix::fs::PermissionsExt;

use chrono::NaiveDateTime;
use common::fixture::{Fixture, PATIENCE, Running, kill_all, pids_of};
use common::{monitor, wait_for, wait_until};
use sqlx::Row;

/// One finished restart event.
#[derive(Debug, Clone)]
struct Event {
    process_id: i32,
    success: bool,
    source: String,
    started_at: NaiveDateTime,
    finished_at: NaiveDateTime,
}

/// Every finished restart event, in the order they began.
async fn events(world: &Fixture) -> Vec<Event> {
    sqlx::query(
        "SELECT process_id, success, trigger_source, started_at, finished_at FROM RESTART_EVENTS \
         WHERE finished_at IS NOT NULL ORDER BY started_at, id",
    )
    .fetch_all(&world.db.pool)
    .await
    .expect("read RESTART_EVENTS")
    .iter()
    .map(|row| Event {
        process_id: row.get(0),
        success: row.get::<i8, _>(1) != 0,
        source: row.get(2),
        started_at: row.get(3),
        finished_at: row.get(4),
    })
    .collect()
}

/// The one successful event of process `id`, once there is one.
async fn success_of(world: &Fixture, id: i32) -> Event {
    wait_for(PATIENCE, "a successful restart", || async {
        events(world)
            .await
            .into_iter()
            .find(|e| e.process_id == id && e.success)
    })
    .await
}

/// A process section restarted by its `start_command`, with `extra` lines.
fn section(world: &Fixture, name: &str, extra: &str) -> String {
    format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = {}\nrestart_delay = 0\n\
         {extra}\n",
        world.start_command(name)
    )
}

/// Waits until the sampler has recorded process `id` alive as `pid`.
async fn wait_sampled_alive(world: &Fixture, id: i32, pid: u32) {
    let pid = i32::try_from(pid).expect("pid");
    wait_until(PATIENCE, "the process sampled alive", || async {
        sqlx::query("SELECT pid FROM PROCESS_STATS WHERE process_id = ? AND alive = 1")
            .bind(id)
            .fetch_optional(&world.db.pool)
            .await
            .expect("read PROCESS_STATS")
            .is_some_and(|row| row.get::<Option<i32>, _>(0) == Some(pid))
    })
    .await;
}

fn log(world: &Fixture) -> String {
    std::fs::read_to_string(world.path("monitor.log")).unwrap_or_default()
}

/// Three sleepers registered as 1, 2, 3.
async fn three(world: &Fixture, prefixes: [&str; 3]) -> ([String; 3], [Running; 3]) {
    let (a, ra) = world.add_sleeper(1, prefixes[0]).await;
    let (b, rb) = world.add_sleeper(2, prefixes[1]).await;
    let (c, rc) = world.add_sleeper(3, prefixes[2]).await;
    ([a, b, c], [ra, rb, rc])
}

#[tokio::test]
async fn a_chain_killed_at_once_comes_back_in_dependency_order_with_only_its_root_cause_alarmed() {
    let world = Fixture::new().await;
    let ([a, b, c], mut running) = three(&world, ["cha", "chb", "chc"]).await;
    // C's restart waits at a gate the test opens, so that what is alarmed meanwhile is seen.
    let gate = world.path("gate");
    let script = world.path("wait-gate");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nwhile [ ! -e {} ]; do sleep 0.05; done\n",
            gate.display()
        ),
    )
    .expect("write the gate script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let sections = format!(
        "{}{}{}",
        section(&world, &a, &format!("depends_on = {b}")),
        section(&world, &b, &format!("depends_on = {c}")),
        section(
            &world,
            &c,
            &format!(
                "pre_restart_command = {}\ncommand_timeout = 60",
                script.display()
            )
        ),
    );
    // A long poll: the auto alarms reach the restarter from the sampler alone, so each event
    // says 'auto' (a poll between the alarm's write and its hand-over would record 'alarm').
    let monitor_lines = "check_interval = 300\nstats_interval = 0.2\nauto_alarm = true\n\
                         dead_after = 2\ndead_recheck_interval = 0.01";
    let config = world.write_config(&world.config_text(monitor_lines, &sections));
    let _monitor = world.spawn_binary(&config);
    for (id, child) in (1..=3).zip(running.iter()) {
        wait_sampled_alive(&world, id, child.id()).await;
    }

    for child in running.iter_mut() {
        let _ = child.0.kill();
    }
    for child in running.iter_mut() {
        let _ = child.0.wait();
    }
    // The dependents are held back, C alone is alarmed, naming what it took down.
    wait_until(
        PATIENCE,
        "A and B held back behind their dependency",
        || async {
            let log = log(&world);
            [&a, &b].iter().all(|name| {
                log.lines().any(|line| {
                    line.contains(name.as_str()) && line.contains("alarmed only if still down")
                })
            })
        },
    )
    .await;
    let (alarm, note) = wait_for(PATIENCE, "C alarmed", || async {
        Some(world.status(3).await).filter(|(alarm, _)| *alarm == 1)
    })
    .await;
    assert_eq!(alarm, 1);
    let note = note.unwrap_or_default();
    assert!(
        note.contains("took down") && note.contains(&a) && note.contains(&b),
        "{note}"
    );
    assert_eq!(
        world.status(1).await.0,
        0,
        "A is not alarmed while C is down"
    );
    assert_eq!(
        world.status(2).await.0,
        0,
        "B is not alarmed while C is down"
    );

    std::fs::write(&gate, "").expect("open the gate");
    let [ea, eb, ec] = [
        success_of(&world, 1).await,
        success_of(&world, 2).await,
        success_of(&world, 3).await,
    ];
    assert!(ec.finished_at <= eb.started_at, "C, then B: {ec:?} {eb:?}");
    assert!(eb.finished_at <= ea.started_at, "B, then A: {eb:?} {ea:?}");
    assert!(
        [&ea, &eb, &ec].iter().all(|e| e.source == "auto"),
        "{ea:?} {eb:?} {ec:?}"
    );
    for name in [&a, &b, &c] {
        assert_eq!(pids_of(name).len(), 1, "{name} runs once");
    }
    for name in [&a, &b, &c] {
        kill_all(name);
    }
}

#[tokio::test]
async fn an_alarm_waits_while_its_dependency_is_dead_and_is_handled_once_it_is_back() {
    let world = Fixture::new().await;
    let (a, first_a) = world.add_sleeper(1, "wta").await;
    let (b, mut first_b) = world.add_sleeper(2, "wtb").await;
    let sections = format!(
        "{}{}",
        section(&world, &a, &format!("depends_on = {b}")),
        section(&world, &b, ""),
    );
    let config = world.write_config(&world.config_text("stats_interval = 0.2", &sections));
    let _monitor = world.spawn_binary(&config);
    wait_sampled_alive(&world, 1, first_a.id()).await;
    wait_sampled_alive(&world, 2, first_b.id()).await;

    let _ = first_b.0.kill();
    let _ = first_b.0.wait();
    wait_until(PATIENCE, "B sampled dead", || async {
        world
            .count(
                "SELECT COUNT(*) FROM PROCESS_STATS WHERE process_id = ? AND alive = 0",
                2,
            )
            .await
            == 1
    })
    .await;
    world.raise_alarm(1).await;
    wait_until(PATIENCE, "A's note says it waits for B", || async {
        world.status(1).await.1 == Some(format!("waiting for {b}"))
    })
    .await;
    assert_eq!(world.status(1).await.0, 1, "A's alarm stays raised");
    let charged = world
        .count(
            "SELECT COUNT(*) FROM CIRCUIT_BREAKER WHERE process_id = ? AND consecutive_failures > 0",
            1,
        )
        .await;
    assert_eq!(charged, 0, "A's breaker is untouched");
    assert!(events(&world).await.is_empty(), "nothing was restarted");
    assert_eq!(
        pids_of(&a),
        [i32::try_from(first_a.id()).expect("pid")],
        "A was not touched"
    );
    let status = monitor(&config)
        .args(["status", "--json"])
        .output()
        .expect("run status");
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let row = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == a.as_str()))
        .expect("A's row");
    assert_eq!(row["dependsOn"], serde_json::json!([b]));
    assert_eq!(row["waitingFor"], b.as_str());
    let text = monitor(&config).arg("status").output().expect("run status");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .next()
            .is_some_and(|h| h.contains("WAITING FOR")),
        "{text}"
    );

    // B's restart ends: A goes at once after it, not charged for the wait.
    world.raise_alarm(2).await;
    let eb = success_of(&world, 2).await;
    let ea = success_of(&world, 1).await;
    assert!(eb.finished_at <= ea.started_at, "B, then A: {eb:?} {ea:?}");
    world.wait_cleared(1).await;
    kill_all(&a);
    kill_all(&b);
}

#[tokio::test]
async fn an_alarm_whose_dependency_came_back_by_itself_is_handled_without_its_restart() {
    let world = Fixture::new().await;
    let (a, first_a) = world.add_sleeper(1, "bka").await;
    let (b, mut first_b) = world.add_sleeper(2, "bkb").await;
    let sections = format!(
        "{}{}",
        section(&world, &a, &format!("depends_on = {b}")),
        section(&world, &b, ""),
    );
    let config = world.write_config(&world.config_text("stats_interval = 0.2", &sections));
    let _monitor = world.spawn_binary(&config);
    wait_sampled_alive(&world, 1, first_a.id()).await;
    wait_sampled_alive(&world, 2, first_b.id()).await;
    let _ = first_b.0.kill();
    let _ = first_b.0.wait();
    wait_until(PATIENCE, "B sampled dead", || async {
        world
            .count(
                "SELECT COUNT(*) FROM PROCESS_STATS WHERE process_id = ? AND alive = 0",
                2,
            )
            .await
            == 1
    })
    .await;
    world.raise_alarm(1).await;
    wait_until(PATIENCE, "A waits for B", || async {
        world.status(1).await.1 == Some(format!("waiting for {b}"))
    })
    .await;

    // An operator starts B again: the sampler sees it and A goes.
    let _second_b = world.start_sleeper(&b);
    let ea = success_of(&world, 1).await;
    assert_eq!(ea.source, "alarm");
    world.wait_cleared(1).await;
    assert!(
        events(&world).await.iter().all(|e| e.process_id != 2),
        "B itself was not restarted"
    );
    kill_all(&a);
    kill_all(&b);
}

#[tokio::test]
async fn a_dependency_with_its_breaker_open_keeps_its_dependent_from_being_tried() {
    let world = Fixture::new().await;
    let (d, _first_d) = world.add_sleeper(1, "bod").await;
    let (x, _first_x) = world.add_sleeper(2, "box").await;
    let sections = format!(
        "{}{}",
        section(&world, &d, ""),
        section(&world, &x, &format!("depends_on = {d}")),
    );
    let config = world.write_config(&world.config_text("", &sections));
    world.open_breaker(1).await;
    world.raise_alarm(1).await;
    world.raise_alarm(2).await;
    let _monitor = world.spawn_binary(&config);
    let expected = format!("not restarted: dependency {d} has its circuit breaker open");
    wait_until(PATIENCE, "X's note names D's open breaker", || async {
        world.status(2).await.1.as_deref() == Some(expected.as_str())
    })
    .await;
    assert_eq!(world.status(2).await.0, 1, "X's alarm stays raised");
    assert!(events(&world).await.is_empty(), "nothing was tried");
    kill_all(&d);
    kill_all(&x);
}

#[tokio::test]
async fn restart_with_dependencies_restarts_the_dependents_after_their_dependency() {
    let world = Fixture::new().await;
    let ([d, x, y], running) = three(&world, ["rwd", "rwx", "rwy"]).await;
    let sections = format!(
        "{}{}{}",
        section(&world, &d, ""),
        section(
            &world,
            &x,
            &format!("depends_on = {d}\nrestart_with_dependencies = true")
        ),
        section(&world, &y, &format!("depends_on = {d}")),
    );
    let config = world.write_config(&world.config_text("", &sections));
    let _monitor = world.spawn_binary(&config);
    world.raise_alarm(1).await;

    let ed = success_of(&world, 1).await;
    let ex = success_of(&world, 2).await;
    assert_eq!(ed.source, "alarm");
    assert_eq!(ex.source, "dependency");
    assert!(ed.finished_at <= ex.started_at, "D, then X: {ed:?} {ex:?}");
    let old_x = i32::try_from(running[1].id()).expect("pid");
    wait_until(PATIENCE, "X runs as a new process", || async {
        let now = pids_of(&x);
        now.len() == 1 && now[0] != old_x
    })
    .await;
    assert_eq!(world.status(2).await.0, 0, "X was never in alarm");
    assert_eq!(
        pids_of(&y),
        [i32::try_from(running[2].id()).expect("pid")],
        "Y, without restart_with_dependencies, is left alone"
    );
    assert!(events(&world).await.iter().all(|e| e.process_id != 3));
    for name in [&d, &x, &y] {
        kill_all(name);
    }
}

#[tokio::test]
async fn a_restart_from_the_command_line_restarts_the_dependents_after_it_too() {
    let world = Fixture::new().await;
    let ([d, x, y], running) = three(&world, ["cld", "clx", "cly"]).await;
    let follows = format!("depends_on = {d}\nrestart_with_dependencies = true");
    let sections = format!(
        "{}{}{}",
        section(&world, &d, ""),
        section(&world, &x, &follows),
        section(
            &world,
            &y,
            &format!("depends_on = {x}\nrestart_with_dependencies = true")
        ),
    );
    let config = world.write_config(&world.config_text("", &sections));

    // No daemon: the command itself restarts D, then X after it, then Y after X.
    let output = monitor(&config)
        .args(["restart", d.as_str()])
        .timeout(PATIENCE)
        .output()
        .expect("run restart");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("restart {d}: done")),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("restart {x}: done")),
        "{stdout}"
    );
    assert!(lines[1].ends_with(&format!("after {d}")), "{stdout}");
    assert!(lines[2].ends_with(&format!("after {x}")), "{stdout}");

    let events = events(&world).await;
    let sources: Vec<(i32, &str)> = events
        .iter()
        .map(|e| (e.process_id, e.source.as_str()))
        .collect();
    assert_eq!(
        sources,
        [(1, "manual"), (2, "dependency"), (3, "dependency")]
    );
    assert!(events.iter().all(|e| e.success), "{events:?}");
    assert!(events[0].finished_at <= events[1].started_at, "{events:?}");
    assert!(events[1].finished_at <= events[2].started_at, "{events:?}");
    for (name, old) in [&d, &x, &y].into_iter().zip(&running) {
        let old = i32::try_from(old.id()).expect("pid");
        let now = pids_of(name);
        assert!(
            now.len() == 1 && now[0] != old,
            "{name} runs as a new process: {now:?}"
        );
    }
    for name in [&d, &x, &y] {
        kill_all(name);
    }
}
