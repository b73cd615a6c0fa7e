//! Primary and standby through the database (`[ha]`): two real monitors, each with its own
//! `host`, lock file and log, on one real MariaDB. Their fence, promote and demote commands
//! append a line with the time (`date +%s.%N`) to one shared file, so the order of what the
//! hosts did can be compared afterwards.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::fixture::{Fixture, Monitor, kill_all, pids_of};
use common::{DbProxy, wait_for, wait_until};
use nix::sys::signal::Signal;
use sqlx::Row;

/// Generous: the machines are shared, and each wait ends as soon as its condition holds.
const PATIENCE: Duration = Duration::from_secs(30);

/// One host of the group.
struct Host {
    name: &'static str,
    priority: i32,
    /// The `[database]` section it uses (direct, or through a proxy).
    database: String,
    /// Lines added to its `[monitor]` section.
    monitor: String,
}

/// A group under test: the world, the shared command log, the hosts' process sections.
struct Group {
    world: Fixture,
    /// `[ha]` keys beyond the common ones.
    ha: String,
    /// Process sections, the same on every host.
    processes: String,
}

impl Group {
    async fn new(ha: &str) -> Group {
        Group {
            world: Fixture::new().await,
            ha: ha.to_owned(),
            processes: String::new(),
        }
    }

    fn log(&self) -> PathBuf {
        self.world.path("commands.log")
    }

    fn host(&self, name: &'static str, priority: i32) -> Host {
        Host {
            name,
            priority,
            database: self.world.db.database_section(),
            monitor: String::new(),
        }
    }

    /// Writes `host`'s config in a folder of its own and starts its monitor.
    fn start(&self, host: &Host) -> Monitor {
        let dir = self.world.path(host.name);
        std::fs::create_dir_all(&dir).expect("a folder per host");
        let log = self.log();
        let log = log.display();
        let fail = self.world.path("fence.fail");
        let text = format!(
            "{database}connect_timeout = 1\nquery_timeout = 2\n\n\
             [monitor]\nhost = {name}\ncheck_interval = 0.2\nstats_interval = 0.3\n\
             heartbeat_interval = 0\nlock_file = {dir}/monitor.lock\nshutdown_grace = 5\n{monitor}\n\
             [logging]\nlog_file = {dir}/monitor.log\nstderr = false\nlevel = debug\n\n\
             [health]\nthreshold = 0.8\n\n\
             [ha]\ngroup = pair\npriority = {priority}\n{ha}\n\
             fence_command = if [ -e {fail} ]; then exit 1; fi; \
             echo \"{name} fence $1 $2 $(date +%s.%N)\" >> {log}\n\
             promote_command = echo \"{name} promote $1 $(date +%s.%N)\" >> {log}\n\
             demote_command = echo \"{name} demote - $(date +%s.%N)\" >> {log}\n\n\
             {processes}\n",
            database = host.database,
            monitor = host.monitor,
            name = host.name,
            priority = host.priority,
            dir = dir.display(),
            fail = fail.display(),
            ha = self.ha,
            processes = self.processes,
        );
        let config = common::write_config(&dir, &text);
        self.world.spawn_binary(&config)
    }

    fn config_of(&self, host: &str) -> PathBuf {
        self.world.path(host).join("config.ini")
    }

    /// The commands the hosts ran, in order: (host, what, argument, argument, time).
    fn commands(&self) -> Vec<Command> {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        text.lines().filter_map(Command::parse).collect()
    }

    async fn holder(&self) -> Option<(String, u64)> {
        let row = sqlx::query("SELECT holder, epoch FROM HA_LEASE WHERE group_name = 'pair'")
            .fetch_optional(&self.world.db.pool)
            .await
            .expect("read HA_LEASE")?;
        let holder: Option<String> = row.get("holder");
        holder.map(|holder| (holder, row.get("epoch")))
    }

    async fn wait_holder(&self, host: &str) -> u64 {
        wait_for(PATIENCE, &format!("{host} holds the lease"), || async {
            match self.holder().await {
                Some((holder, epoch)) if holder == host => Some(epoch),
                _ => None,
            }
        })
        .await
    }

    async fn events(&self) -> Vec<Event> {
        let rows = sqlx::query(
            "SELECT epoch, from_host, to_host, CAST(reason AS CHAR) AS reason, \
             CAST(outcome AS CHAR) AS outcome, at FROM HA_EVENTS ORDER BY id",
        )
        .fetch_all(&self.world.db.pool)
        .await
        .expect("read HA_EVENTS");
        rows.iter()
            .map(|row| Event {
                epoch: row.get("epoch"),
                from: row.get("from_host"),
                to: row.get("to_host"),
                reason: row.get("reason"),
                outcome: row.get("outcome"),
                at: row.get("at"),
            })
            .collect()
    }

    /// `host`'s health rows, oldest first: (total, computed_at).
    async fn scores(&self, host: &str) -> Vec<(f64, DateTime<Utc>)> {
        sqlx::query("SELECT total, computed_at FROM HEALTH_SCORE WHERE host = ? ORDER BY id")
            .bind(host)
            .fetch_all(&self.world.db.pool)
            .await
            .expect("read HEALTH_SCORE")
            .iter()
            .map(|row| (row.get("total"), row.get("computed_at")))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Command {
    host: String,
    what: String,
    arguments: Vec<String>,
    at: f64,
}

impl Command {
    fn parse(line: &str) -> Option<Command> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (at, rest) = words.split_last()?;
        let [host, what, arguments @ ..] = rest else {
            return None;
        };
        Some(Command {
            host: (*host).to_owned(),
            what: (*what).to_owned(),
            arguments: arguments.iter().map(|a| (*a).to_owned()).collect(),
            at: at.parse().ok()?,
        })
    }
}

#[derive(Debug, Clone)]
struct Event {
    epoch: u64,
    from: Option<String>,
    to: Option<String>,
    reason: String,
    outcome: String,
    at: DateTime<Utc>,
}

fn seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_micros() as f64 / 1e6
}

fn one(commands: &[Command], host: &str, what: &str) -> Command {
    let found: Vec<&Command> = commands
        .iter()
        .filter(|c| c.host == host && c.what == what)
        .collect();
    assert_eq!(found.len(), 1, "{host} ran {what} once: {commands:?}");
    found[0].clone()
}

/// A process that only the primary runs, one per host (both run on this one machine).
fn primary_only(world: &Fixture, name: &str, host: &str) -> String {
    format!(
        "[process.{name}]\nhosts = {host}\nactive_on = primary\nrequired = false\n\
         restart_strategy = process\nstart_command = {start}\n\
         health_check_command = pgrep -x %s\nrestart_delay = 0\nmax_attempts = 2\n\
         stop_timeout = 2\n\n",
        start = world.start_command(name),
    )
}

#[tokio::test]
async fn the_higher_priority_leads_and_four_low_rows_in_a_row_move_the_role_with_its_processes() {
    let mut group = Group::new("lease_ttl = 2\nrenew_interval = 0.5\ntakeover_after = 4").await;
    let world = &group.world;
    let (vital, mut sleeper) = world.add_sleeper(1, "vital").await;
    let only_a = world.unique_name("onlya");
    let only_b = world.unique_name("onlyb");
    world.add_process(2, &only_a).await;
    world.add_process(3, &only_b).await;
    let processes = format!(
        "[process.{vital}]\nhosts = a\n\n{}{}",
        primary_only(world, &only_a, "a"),
        primary_only(world, &only_b, "b")
    );
    group.processes = processes;
    let (a, b) = (group.host("a", 10), group.host("b", 0));
    let _b = group.start(&b);
    let _a = group.start(&a);

    assert_eq!(
        group.wait_holder("a").await,
        1,
        "the first holder has epoch 1"
    );
    wait_until(PATIENCE, "a's primary-only process runs", || async {
        !pids_of(&only_a).is_empty()
    })
    .await;
    assert!(
        pids_of(&only_b).is_empty(),
        "a standby never starts its primary-only process"
    );

    // One low row: the role stays.
    let rows_before = group.scores("a").await.len();
    sleeper.kill().expect("kill the vital process");
    let _ = sleeper.wait();
    wait_until(PATIENCE, "a low row for a", || async {
        group.scores("a").await[rows_before..]
            .iter()
            .any(|(total, _)| *total < 0.8)
    })
    .await;
    let _back = world.start_sleeper(&vital);
    let dip_end = wait_for(PATIENCE, "a healthy row after the dip", || async {
        let rows = group.scores("a").await;
        let low = rows[rows_before..].iter().position(|(t, _)| *t < 0.8)?;
        let healthy = rows[rows_before + low..]
            .iter()
            .position(|(t, _)| *t >= 0.8)?;
        Some(rows_before + low + healthy)
    })
    .await;
    wait_until(PATIENCE, "five more rows of a after the dip", || async {
        group.scores("a").await.len() > dip_end + 5
    })
    .await;
    let low_in_dip = group.scores("a").await[rows_before..dip_end]
        .iter()
        .filter(|(t, _)| *t < 0.8)
        .count();
    assert!(low_in_dip < 4, "the dip was short: {low_in_dip} low rows");
    assert_eq!(
        group.holder().await,
        Some(("a".into(), 1)),
        "a dip does not move the role"
    );

    // Kept down: the standby takes over after four low rows, and not before.
    kill_all(&vital);
    drop(_back);
    assert_eq!(group.wait_holder("b").await, 2);
    let events = group.events().await;
    let takeover = events.last().expect("an event").clone();
    assert_eq!(
        (
            takeover.from.as_deref(),
            takeover.to.as_deref(),
            takeover.reason.as_str()
        ),
        (Some("a"), Some("b"), "low_health"),
        "{events:?}"
    );
    let before: Vec<f64> = group
        .scores("a")
        .await
        .iter()
        .filter(|(_, at)| *at <= takeover.at)
        .map(|(t, _)| *t)
        .collect();
    let low_run = before.iter().rev().take_while(|t| **t < 0.8).count();
    assert!(
        low_run >= 4,
        "four low rows in a row before the takeover: {before:?}"
    );

    wait_until(PATIENCE, "b's primary-only process runs", || async {
        !pids_of(&only_b).is_empty()
    })
    .await;
    wait_until(PATIENCE, "a stopped its primary-only process", || async {
        pids_of(&only_a).is_empty()
    })
    .await;
    wait_until(PATIENCE, "a ran demote_command", || async {
        group
            .commands()
            .iter()
            .any(|c| c.host == "a" && c.what == "demote")
    })
    .await;
    let commands = group.commands();
    let fence = one(&commands, "b", "fence");
    assert_eq!(
        fence.arguments,
        ["a", "2"],
        "fenced the old host with the new epoch"
    );
    let promote_b = one(&commands, "b", "promote");
    assert_eq!(promote_b.arguments, ["2"]);
    assert!(
        fence.at <= promote_b.at,
        "fence before promote: {commands:?}"
    );
    assert_eq!(one(&commands, "a", "promote").arguments, ["1"]);
    kill_all(&only_a);
    kill_all(&only_b);
}

#[tokio::test]
async fn a_killed_primary_loses_the_role_once_its_lease_expires() {
    let group = Group::new("lease_ttl = 2\nrenew_interval = 0.5\ntakeover_after = 3").await;
    let (a, mut b) = (group.host("a", 1), group.host("b", 0));
    let page = free_address();
    b.monitor = format!("http_listen = {page}\n");
    let mut monitor_a = group.start(&a);
    let _b = group.start(&b);
    group.wait_holder("a").await;
    wait_until(PATIENCE, "b's /health says standby", || async {
        http_get(page, "/health")
            .await
            .contains("\"role\": \"standby\"")
    })
    .await;

    monitor_a.signal(Signal::SIGKILL);
    let _ = monitor_a.0.wait();
    let expires: DateTime<Utc> =
        sqlx::query_scalar("SELECT expires_at FROM HA_LEASE WHERE group_name = 'pair'")
            .fetch_one(&group.world.db.pool)
            .await
            .expect("read the lease");
    assert_eq!(group.wait_holder("b").await, 2);
    let takeover = group.events().await.last().cloned().expect("an event");
    assert_eq!(takeover.reason, "expired");
    assert_eq!(takeover.from.as_deref(), Some("a"));
    assert!(
        takeover.at >= expires,
        "not before the lease expired: {takeover:?}"
    );
    let commands = group.commands();
    assert_eq!(one(&commands, "b", "fence").arguments, ["a", "2"]);

    wait_until(PATIENCE, "b's /health says primary at epoch 2", || async {
        let health = http_get(page, "/health").await;
        health.contains("\"role\": \"primary\"") && health.contains("\"epoch\": 2")
    })
    .await;
    let metrics = http_get(page, "/metrics").await;
    assert!(
        metrics.contains("monitor_service_ha_primary{group=\"pair\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("monitor_service_ha_epoch{group=\"pair\"} 2"),
        "{metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
    let html = http_get(page, "/").await;
    assert!(html.contains("<b id=\"ha-role\">primary</b>"), "{html}");
}

fn free_address() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// The body of `GET path`, or "" when the page does not answer (yet).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.ok()?;
        Some(reply.split_once("\r\n\r\n")?.1.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

#[test]
fn bad_ha_settings_are_reported_one_line_each() {
    let text = "[monitor]\nhost = a\nstats_interval = 0\n\n[ha]\ngroup = pair\n\
                lease_ttl = 3\nrenew_interval = 2\ntakeover_after = 0\npriority = high\n\
                colour = red\n\n[process.x]\nactive_on = sometimes\n";
    let error = monitor_service::config::Config::from_ini_text(Path::new("c.ini"), text, None)
        .expect_err("refused");
    let lines = error.lines();
    for expected in [
        "[ha] renew_interval: must be at most a third of lease_ttl",
        "[ha] takeover_after: must be between 1 and 1000",
        "[ha] priority: \"high\" is not a whole number",
        "[ha] colour: unknown key",
        "[ha]: needs stats_interval above 0",
        "[process.x] active_on: \"sometimes\" is not one of any, primary",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(expected)),
            "{expected} in {lines:#?}"
        );
    }
    let alone = "[ha]\npriority = 3\n\n[process.y]\nactive_on = primary\n";
    let error = monitor_service::config::Config::from_ini_text(Path::new("c.ini"), alone, None)
        .expect_err("refused");
    let lines = error.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[ha]: has settings but no group")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[process.y] active_on: = primary needs an [ha]"))
    );
}

#[test]
fn ha_settings_read_back_from_check_config_and_are_all_documented() {
    let text = "[ha]\ngroup = pair\npriority = -2\nlease_ttl = 6\nrenew_interval = 2\n\
                fence_command = fence \"$1\" \"$2\"\n\n[process.x]\nactive_on = primary\n";
    let path = Path::new("c.ini");
    let config = monitor_service::config::Config::from_ini_text(path, text, None).expect("valid");
    let ha = config.ha.clone().expect("[ha] is on");
    assert_eq!((ha.priority, ha.takeover_after), (-2, 3));
    assert_eq!(ha.renew_interval, Duration::from_secs(2));
    let rendered = monitor_service::config::render_effective(&config);
    let again =
        monitor_service::config::Config::from_ini_text(path, &rendered, None).expect("reads back");
    assert_eq!(again.ha, config.ha);
    let reference = include_str!("../config.ini");
    for key in [
        "group",
        "priority",
        "lease_ttl",
        "renew_interval",
        "takeover_after",
        "fence_command",
        "promote_command",
        "demote_command",
        "active_on",
    ] {
        assert!(rendered.contains(&format!("\n{key} =")), "{key} rendered");
        assert!(
            reference.contains(&format!("; {key} =")),
            "config.ini documents {key}"
        );
    }
}

#[tokio::test]
async fn a_primary_cut_from_the_database_demotes_itself_before_the_standby_takes_over() {
    let group = Group::new("lease_ttl = 3\nrenew_interval = 0.6\ntakeover_after = 3").await;
    let proxy = DbProxy::start(group.world.db.server_addr()).await;
    let mut a = group.host("a", 1);
    a.database = group.world.db.database_section_on_port(proxy.port());
    let b = group.host("b", 0);
    let _a = group.start(&a);
    let _b = group.start(&b);
    group.wait_holder("a").await;

    proxy.cut();
    assert_eq!(group.wait_holder("b").await, 2);
    let takeover = group.events().await.last().cloned().expect("an event");
    wait_until(PATIENCE, "b ran promote_command", || async {
        group
            .commands()
            .iter()
            .any(|c| c.host == "b" && c.what == "promote")
    })
    .await;
    let commands = group.commands();
    let demoted = one(&commands, "a", "demote").at;
    let promoted = one(&commands, "b", "promote").at;
    assert!(
        demoted < seconds(takeover.at),
        "a stopped acting ({demoted}) before b's takeover committed ({:?})",
        takeover.at
    );
    assert!(demoted < promoted, "never two primaries: {commands:?}");
    proxy.restore().await;
}

#[tokio::test]
async fn a_failing_fence_leaves_the_role_where_it_was_and_is_retried() {
    let group = Group::new("lease_ttl = 2\nrenew_interval = 0.4\ntakeover_after = 3").await;
    let (a, b) = (group.host("a", 1), group.host("b", 0));
    let mut monitor_a = group.start(&a);
    let _b = group.start(&b);
    group.wait_holder("a").await;
    let fail = group.world.path("fence.fail");
    std::fs::write(&fail, "").expect("make the fence fail");

    monitor_a.signal(Signal::SIGKILL);
    let _ = monitor_a.0.wait();
    wait_until(PATIENCE, "two failed fences", || async {
        let events = group.events().await;
        events
            .iter()
            .filter(|e| e.outcome == "fence_failed")
            .count()
            >= 2
    })
    .await;
    assert_eq!(
        group.holder().await,
        Some(("a".into(), 1)),
        "no takeover without a fence"
    );
    let failed = group.events().await.last().cloned().expect("an event");
    assert_eq!((failed.epoch, failed.to.as_deref()), (2, Some("b")));

    std::fs::remove_file(&fail).expect("let the fence succeed");
    assert_eq!(group.wait_holder("b").await, 2);
    let changed: Vec<Event> = group
        .events()
        .await
        .into_iter()
        .filter(|e| e.outcome == "changed")
        .collect();
    assert_eq!(changed.len(), 2, "to a, then to b: {changed:?}");
}

fn cli(config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(common::monitor_bin())
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .expect("run monitor_service")
}

#[tokio::test]
async fn ha_takeover_and_ha_release_move_the_role_on_request() {
    let group = Group::new("lease_ttl = 2\nrenew_interval = 0.4\ntakeover_after = 3").await;
    let (a, b) = (group.host("a", 1), group.host("b", 0));
    let _a = group.start(&a);
    let _b = group.start(&b);
    group.wait_holder("a").await;
    // b needs a healthy score of its own to take over without --force.
    wait_until(PATIENCE, "b has a score", || async {
        !group.scores("b").await.is_empty()
    })
    .await;

    let took = cli(&group.config_of("b"), &["ha", "takeover"]);
    let said = String::from_utf8_lossy(&took.stdout);
    assert!(
        took.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&took.stderr)
    );
    assert!(said.contains("b is primary now (epoch 2)"), "{said}");
    let manual = group.events().await.last().cloned().expect("an event");
    assert_eq!(
        (manual.reason.as_str(), manual.from.as_deref()),
        ("manual", Some("a"))
    );
    assert_eq!(one(&group.commands(), "b", "fence").arguments, ["a", "2"]);

    let released = cli(&group.config_of("a"), &["ha", "release"]);
    let said = String::from_utf8_lossy(&released.stdout);
    assert!(released.status.success(), "{said}");
    assert!(
        said.contains("b stepped down; a is primary now (epoch 3)"),
        "{said}"
    );
    let event = group.events().await.last().cloned().expect("an event");
    assert_eq!(
        (
            event.reason.as_str(),
            event.from.as_deref(),
            event.to.as_deref()
        ),
        ("released", Some("b"), Some("a"))
    );

    let status = cli(&group.config_of("a"), &["ha", "status", "--json"]);
    let document: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("ha status --json is JSON");
    assert_eq!(document["holder"], "a");
    assert_eq!(document["epoch"], 3);
    let members = document["members"].as_array().expect("members");
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|m| m["score"].is_number()), "{document}");
    let text = cli(&group.config_of("b"), &["ha", "status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("primary  a (epoch 3"), "{text}");
}

#[tokio::test]
async fn a_standby_alone_with_a_released_role_takes_it_back() {
    let group = Group::new("lease_ttl = 1\nrenew_interval = 0.3\ntakeover_after = 3").await;
    let a = group.host("a", 0);
    let _a = group.start(&a);
    group.wait_holder("a").await;
    let released = cli(&group.config_of("a"), &["ha", "release"]);
    assert!(released.status.success());
    // Nobody else can take it: after a lease's time the one that released it takes it back.
    assert_eq!(group.wait_holder("a").await, 2);
    let event = group.events().await.last().cloned().expect("an event");
    assert_eq!(
        (event.reason.as_str(), event.to.as_deref()),
        ("released", Some("a"))
    );
}

#[tokio::test]
async fn a_standby_leaves_primary_only_processes_alone_and_a_reload_keeps_the_role() {
    let mut group = Group::new("lease_ttl = 2\nrenew_interval = 0.4\ntakeover_after = 3").await;
    let world = &group.world;
    let only_a = world.unique_name("rela");
    let only_b = world.unique_name("relb");
    world.add_process(1, &only_a).await;
    world.add_process(2, &only_b).await;
    // Required, so that a standby counting it would score 0.5, below the threshold.
    group.processes = format!(
        "{}{}",
        primary_only(world, &only_a, "a").replace("required = false", "required = true"),
        primary_only(world, &only_b, "b").replace("required = false", "required = true"),
    );
    let (a, mut b) = (group.host("a", 1), group.host("b", 0));
    b.monitor = "auto_alarm = true\ndead_after = 1\n".to_owned();
    let monitor_a = group.start(&a);
    let _b = group.start(&b);
    group.wait_holder("a").await;
    let first = wait_for(PATIENCE, "a's primary-only process runs", || async {
        pids_of(&only_a).first().copied()
    })
    .await;

    // Ten samples of the standby: its primary-only process, dead, is neither alarmed, nor
    // started, nor held against its score.
    let rows = group.scores("b").await.len();
    wait_until(PATIENCE, "ten more rows of b", || async {
        group.scores("b").await.len() >= rows + 10
    })
    .await;
    assert!(pids_of(&only_b).is_empty(), "a standby never starts it");
    let alarm = group.world.status(2).await;
    assert_eq!(alarm.0, 0, "no auto alarm on a standby: {alarm:?}");
    let scores = group.scores("b").await;
    assert!(scores[rows..].iter().all(|(t, _)| *t >= 0.8), "{scores:?}");

    // A reload keeps the role: a's alarm on its primary-only process is still handled by it.
    monitor_a.signal(Signal::SIGHUP);
    let log = group.world.path("a").join("monitor.log");
    wait_until(PATIENCE, "a reloaded", || async {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("configuration reloaded"))
    })
    .await;
    kill_all(&only_a);
    group.world.raise_alarm(1).await;
    let again = wait_for(PATIENCE, "a restarted its primary-only process", || async {
        pids_of(&only_a)
            .first()
            .copied()
            .filter(|pid| *pid != first)
    })
    .await;
    assert_ne!(again, first);
    assert_eq!(group.holder().await, Some(("a".into(), 1)));
    assert!(
        !group.commands().iter().any(|c| c.what == "demote"),
        "nobody stepped down"
    );
    kill_all(&only_a);
}
