//! The service on a three-node Galera cluster (`scripts/galera.sh`): three monitors, each on
//! a node of its own with the other two behind it in its `host` list, share 1,000 alarms
//! raised at once on one node. A node is SIGKILLed in the middle: its monitor goes on through
//! another node. Each alarm is handled exactly once (the start commands are counted), the
//! killed node rejoins, and the claims, breakers and alarms read the same on every node.
//!
//! The cluster comes from `MONITOR_TEST_GALERA_PORTS` (three client ports, as
//! `scripts/test.sh` sets it after `scripts/galera.sh start`). Without it the test starts the
//! cluster itself through the script (and stops it again, unless one was running already):
//! it never passes without a cluster.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::fixture::Monitor;
use common::{monitor_bin, wait_for, wait_until, write_config};
use nix::sys::signal::Signal;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Row};

const PORTS_ENV: &str = "MONITOR_TEST_GALERA_PORTS";
const GOOD: i32 = 995;
const BAD: i32 = 5;
const ALL: i32 = GOOD + BAD;
/// How long the whole handling of the alarms may take on a shared, slow machine.
const HANDLING: Duration = Duration::from_secs(240);

/// The three nodes' client ports, and whether this test started them.
struct Cluster {
    ports: [u16; 3],
    started_here: bool,
}

fn galera_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/galera.sh")
}

impl Cluster {
    fn up() -> Cluster {
        if let Ok(text) = std::env::var(PORTS_ENV) {
            let ports: Vec<u16> = text
                .split(',')
                .map(|port| port.trim().parse().ok())
                .collect::<Option<_>>()
                .unwrap_or_else(|| panic!("{PORTS_ENV}={text:?}: three ports, comma-separated"));
            let ports: [u16; 3] = ports
                .try_into()
                .unwrap_or_else(|_| panic!("{PORTS_ENV}={text:?}: three ports"));
            return Cluster {
                ports,
                started_here: false,
            };
        }
        let base: u16 = std::env::var("GALERA_BASE_PORT")
            .ok()
            .and_then(|port| port.parse().ok())
            .unwrap_or(4306);
        let mut cluster = Cluster {
            ports: [base, base + 1, base + 2],
            started_here: false,
        };
        if !cluster.script(&["status"]) {
            eprintln!("{PORTS_ENV} is unset: starting the cluster with scripts/galera.sh");
            assert!(cluster.script(&["start"]), "scripts/galera.sh start failed");
            cluster.started_here = true;
        }
        cluster
    }

    /// Runs `scripts/galera.sh ARGS` for this cluster; whether it succeeded. The script
    /// bounds each of its waits (`GALERA_WAIT`).
    fn script(&self, args: &[&str]) -> bool {
        Command::new(galera_script())
            .args(args)
            .env("GALERA_BASE_PORT", self.ports[0].to_string())
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    async fn script_async(&self, args: &'static [&'static str]) -> bool {
        let (script, base) = (galera_script(), self.ports[0].to_string());
        tokio::task::spawn_blocking(move || {
            Command::new(script)
                .args(args)
                .env("GALERA_BASE_PORT", base)
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .await
        .expect("the thread running galera.sh")
    }

    /// A pool of one connection to node `n` (1..3) whose reads wait for causality.
    async fn node(&self, n: usize, database: Option<&str>) -> MySqlPool {
        let mut options = MySqlConnectOptions::new()
            .host("127.0.0.1")
            .port(self.ports[n - 1])
            .username("root");
        if let Some(database) = database {
            options = options.database(database);
        }
        MySqlPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|connection, _| {
                Box::pin(async move {
                    sqlx::query("SET SESSION wsrep_sync_wait = 1")
                        .execute(connection)
                        .await
                        .map(|_| ())
                })
            })
            .connect_with(options)
            .await
            .unwrap_or_else(|error| panic!("connecting to node {n}: {error}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started_here {
            self.script(&["stop"]);
        }
    }
}

async fn count(connection: &MySqlPool, sql: &str) -> i64 {
    sqlx::query(AssertSqlSafe(sql.to_owned()))
        .fetch_one(connection)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
        .get(0)
}

/// The config of monitor `n`: its node first in the list, then the other two.
fn monitor_config(dir: &Path, cluster: &Cluster, database: &str, n: usize) -> PathBuf {
    let order = [n - 1, n % 3, (n + 1) % 3];
    let hosts: Vec<String> = order
        .iter()
        .map(|&i| format!("127.0.0.1:{}", cluster.ports[i]))
        .collect();
    let starts = dir.join("starts");
    let own = dir.join(format!("m{n}"));
    std::fs::create_dir_all(&own).expect("the monitor's folder");
    let bad: String = (1..=BAD)
        .map(|b| {
            format!(
                "[process.bad{b:02}]\nrestart_strategy = process\nstart_command = echo %s >> {}\n\
                 health_check_command = false\nhealth_check_timeout = 0.2\nmax_attempts = 1\n\n",
                starts.display()
            )
        })
        .collect();
    let text = format!(
        "[database]\nhost = {hosts}\nuser = root\ndatabase = {database}\nconnect_timeout = 2\n\
         query_timeout = 5\n\n\
         [monitor]\nhost = m{n}\ncheck_interval = 0.3\nstats_interval = 0\nheartbeat_interval = 0\n\
         max_parallel_restarts = 8\nmax_restart_failures = 1\ncircuit_reset_time = 3600\n\
         lock_file = {lock}\nshutdown_grace = 10\n\n\
         [logging]\nlog_file = {log}\nstderr = false\nlevel = info\n\n\
         [process.default]\nrestart_strategy = process\nstart_command = echo %s >> {starts}\n\
         health_check_command = sleep 0.2\nmax_attempts = 1\n\n{bad}",
        hosts = hosts.join(", "),
        lock = own.join("lock").display(),
        log = own.join("log").display(),
        starts = starts.display(),
    );
    write_config(&own, &text)
}

fn spawn_monitor(config: &Path) -> Monitor {
    let child = Command::new(monitor_bin())
        .arg("-c")
        .arg(config)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start monitor_service");
    Monitor(child)
}

fn name_of(id: i32) -> String {
    if id > GOOD {
        format!("bad{:02}", id - GOOD)
    } else {
        format!("g{id:04}")
    }
}

fn starts(dir: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(dir.join("starts")).unwrap_or_default();
    let mut counted = BTreeMap::new();
    for line in text.lines() {
        *counted.entry(line.to_owned()).or_insert(0) += 1;
    }
    counted
}

fn log_of(dir: &Path, n: usize) -> String {
    std::fs::read_to_string(dir.join(format!("m{n}/log"))).unwrap_or_default()
}

/// Raises the 1,000 alarms in one statement on node 1, once the monitors have migrated.
async fn raise_all(cluster: &Cluster, database: &str) {
    let node1 = cluster.node(1, Some(database)).await;
    let migrations = monitor_service::db::MIGRATOR.iter().count() as i64;
    wait_until(HANDLING, "the monitors applied the migrations", || async {
        let sql = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1";
        sqlx::query(sql)
            .fetch_one(&node1)
            .await
            .is_ok_and(|row| row.get::<i64, _>(0) == migrations)
    })
    .await;
    let processes: Vec<String> = (1..=ALL)
        .map(|id| format!("({id}, '{}')", name_of(id)))
        .collect();
    let statement = format!(
        "INSERT INTO PROCESE (process_id, process_name) VALUES {}",
        processes.join(", ")
    );
    sqlx::query(AssertSqlSafe(statement))
        .execute(&node1)
        .await
        .expect("the processes");
    sqlx::query("INSERT INTO STATUS_PROCESS (process_id, alarma, sound) SELECT process_id, 1, 0 FROM PROCESE")
        .execute(&node1)
        .await
        .expect("1,000 alarms at once");
}

/// What must read the same on every node: claims, breakers, alarms and their notes' kind,
/// the successful and failed cycles per process.
async fn cluster_state(connection: &MySqlPool) -> Vec<String> {
    let queries = [
        "SELECT CONCAT_WS(' ', process_id, owner) FROM ALARM_CLAIM ORDER BY process_id",
        "SELECT CONCAT_WS(' ', process_id, state, consecutive_failures) FROM CIRCUIT_BREAKER \
         ORDER BY process_id",
        "SELECT CONCAT_WS(' ', process_id, alarma) FROM STATUS_PROCESS ORDER BY process_id",
        "SELECT CONCAT_WS(' ', process_id, success, COUNT(*)) FROM RESTART_EVENTS \
         WHERE finished_at IS NOT NULL GROUP BY process_id, success ORDER BY process_id, success",
    ];
    let mut state = Vec::new();
    for sql in queries {
        let rows = sqlx::query(sql)
            .fetch_all(connection)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
        state.extend(rows.iter().map(|row| row.get::<String, _>(0)));
        state.push("--".into());
    }
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_monitors_on_three_nodes_handle_each_of_1000_alarms_once_through_a_node_kill() {
    let cluster = Cluster::up();
    let dir = tempfile::tempdir().expect("temporary folder");
    let database = format!("test_galera_{:x}", std::process::id());
    let node1 = cluster.node(1, None).await;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE `{database}`")))
        .execute(&node1)
        .await
        .expect("the test database");

    // All three migrate at once, on three nodes: they take turns through MIGRATION_LOCK.
    let mut monitors: Vec<Monitor> = (1..=3)
        .map(|n| spawn_monitor(&monitor_config(dir.path(), &cluster, &database, n)))
        .collect();
    raise_all(&cluster, &database).await;

    // Node 2 dies in the middle of the handling.
    wait_until(HANDLING, "a fifth of the alarms handled", || async {
        starts(dir.path()).len() >= 200
    })
    .await;
    let node3 = cluster.node(3, Some(&database)).await;
    assert!(
        cluster.script_async(&["kill", "2"]).await,
        "galera.sh kill 2"
    );
    let killed_at: chrono::DateTime<chrono::Utc> = sqlx::query("SELECT NOW(3)")
        .fetch_one(&node3)
        .await
        .expect("the time of the kill")
        .get(0);
    let raised = count(
        &node3,
        "SELECT COUNT(*) FROM STATUS_PROCESS WHERE alarma <> 0",
    )
    .await;
    assert!(
        raised > i64::from(BAD) + 100,
        "the kill came too late to be in the middle: {raised} alarms left"
    );
    wait_until(HANDLING, "monitor 2 moved off the killed node", || async {
        log_of(dir.path(), 2).contains(&format!("127.0.0.1:{} lost", cluster.ports[1]))
    })
    .await;

    // Every good alarm cleared, every bad one left raised behind its open breaker.
    wait_for(HANDLING, "every good alarm handled", || async {
        let raised = count(
            &node3,
            "SELECT COUNT(*) FROM STATUS_PROCESS WHERE alarma <> 0",
        )
        .await;
        let open = count(
            &node3,
            "SELECT COUNT(*) FROM CIRCUIT_BREAKER WHERE state = 'open'",
        )
        .await;
        (raised == i64::from(BAD) && open == i64::from(BAD)).then_some(())
    })
    .await;
    let after_kill = count(
        &node3,
        &format!(
            "SELECT COUNT(*) FROM RESTART_EVENTS WHERE host = 'm2' AND success = 1 \
             AND started_at > '{}'",
            killed_at.format("%Y-%m-%d %H:%M:%S%.3f")
        ),
    )
    .await;
    assert!(
        after_kill > 0,
        "monitor 2 went on handling alarms through another node"
    );

    // Polls of the bad alarms go on meeting the open breaker: let them, then stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for monitor in &monitors {
        monitor.signal(Signal::SIGTERM);
    }
    for monitor in &mut monitors {
        assert_eq!(monitor.exit_code().await, Some(0));
    }

    let started = starts(dir.path());
    assert_eq!(started.len(), ALL as usize, "every process started");
    let twice: Vec<_> = started.iter().filter(|&(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "started more than once: {twice:?}");
    assert_eq!(
        count(
            &node3,
            "SELECT COUNT(*) FROM RESTART_EVENTS WHERE success = 1"
        )
        .await,
        i64::from(GOOD)
    );
    assert_eq!(
        count(
            &node3,
            "SELECT COUNT(*) FROM RESTART_EVENTS WHERE success = 0"
        )
        .await,
        i64::from(BAD),
        "one failed cycle per bad process: the open breaker held on every node"
    );

    // The killed node rejoins and reads as the others do.
    assert!(
        cluster.script_async(&["restart", "2"]).await,
        "galera.sh restart 2"
    );
    let mut states = Vec::new();
    for n in 1..=3 {
        let node = cluster.node(n, Some(&database)).await;
        states.push(cluster_state(&node).await);
    }
    assert!(
        states[0].first().is_some_and(|first| first == "--"),
        "no claim left: {:?}",
        &states[0][..states[0].len().min(5)]
    );
    assert_eq!(states[0], states[1], "node 1 and the rejoined node 2");
    assert_eq!(states[0], states[2], "node 1 and node 3");

    sqlx::query(AssertSqlSafe(format!("DROP DATABASE `{database}`")))
        .execute(&node3)
        .await
        .expect("drop the test database");
}
