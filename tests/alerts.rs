//! `[alert]` against real receivers: a tiny HTTP server started by each test on port 0 gets
//! the webhook's POSTs, and a real command gets the hook's. The events come from the real
//! service (in-process, or the binary) handling real alarms on real processes, with a real
//! database that a proxy breaks.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::fixture::{Fixture, PATIENCE, kill_all, pids_of};
use common::{DbProxy, monitor, wait_for, wait_until};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::AbortOnDropHandle;

/// How the receiver answers a request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Ok,
    Fail,
    /// Reads the request and never answers.
    Hang,
}

/// A webhook receiver: answers per its plan (then 200), and keeps the JSON of every request
/// it answered 200 to.
struct Receiver {
    addr: SocketAddr,
    events: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
    _task: AbortOnDropHandle<()>,
}

impl Receiver {
    async fn start(plan: &[Answer]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("its address");
        let events = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let plan = Arc::new(Mutex::new(plan.iter().copied().collect::<VecDeque<_>>()));
        let (kept, counted) = (Arc::clone(&events), Arc::clone(&requests));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let answer = plan.lock().expect("plan").pop_front().unwrap_or(Answer::Ok);
                let (kept, counted) = (Arc::clone(&kept), Arc::clone(&counted));
                tokio::spawn(answer_one(stream, answer, kept, counted));
            }
        });
        Receiver {
            addr,
            events,
            requests,
            _task: AbortOnDropHandle::new(task),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/T000/secret-token", self.addr)
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().expect("events").clone()
    }

    fn kinds(&self) -> Vec<String> {
        let events = self.events();
        let kinds = events
            .iter()
            .map(|event| event["kind"].as_str().unwrap_or("?"));
        kinds.map(str::to_owned).collect()
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    async fn wait_kinds(&self, count: usize) -> Vec<String> {
        wait_until(
            PATIENCE,
            &format!("{count} events at the receiver"),
            || async { self.events().len() >= count },
        )
        .await;
        self.kinds()
    }
}

/// Reads one request (headers, then Content-Length bytes) and answers it as told.
async fn answer_one(
    mut stream: TcpStream,
    answer: Answer,
    kept: Arc<Mutex<Vec<Value>>>,
    counted: Arc<AtomicUsize>,
) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let body_at = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&bytes[..body_at]).to_ascii_lowercase();
    assert!(
        head.starts_with("post /hooks/t000/secret-token http/1.1"),
        "{head}"
    );
    assert!(head.contains("content-type: application/json"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("a Content-Length");
    while bytes.len() < body_at + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    counted.fetch_add(1, Ordering::Relaxed);
    let status = match answer {
        Answer::Hang => return std::future::pending().await,
        Answer::Fail => "500 Internal Server Error",
        Answer::Ok => {
            let event = serde_json::from_slice(&bytes[body_at..]).expect("the body is JSON");
            kept.lock().expect("events").push(event);
            "200 OK"
        }
    };
    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = stream.write_all(reply.as_bytes()).await;
}

fn alert_section(receiver: &Receiver, extra: &str) -> String {
    format!("[alert]\nwebhook = {}\n{extra}\n", receiver.url())
}

/// Asserts the fields every event has.
fn assert_common(event: &Value, kind: &str, process: Option<&str>) {
    assert_eq!(event["kind"], kind, "{event}");
    assert_eq!(event["host"], "testhost", "{event}");
    match process {
        Some(name) => assert_eq!(event["process"], name, "{event}"),
        None => assert!(event.get("process").is_none(), "{event}"),
    }
    let at = event["at"].as_str().expect("at");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{event}");
    assert!(at.ends_with('Z'), "UTC: {event}");
    assert!(
        event["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{event}"
    );
}

#[tokio::test]
async fn a_failure_then_a_recovery_sends_each_event_once_in_order() {
    let world = Fixture::new().await;
    let receiver = Receiver::start(&[]).await;
    let name = world.unique_name("alr");
    world.add_process(1, &name).await;
    let flag = world.path("healthy");
    let processes = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = true\n\
         health_check_command = test -e {}\nhealth_check_timeout = 0.3\nmax_attempts = 1\n\
         {}",
        flag.display(),
        alert_section(&receiver, "")
    );
    let monitor = "max_restart_failures = 1\ncircuit_reset_time = 3";
    let service = world.run_in_process(world.config(monitor, &processes));
    world.raise_alarm(1).await;

    let kinds = receiver.wait_kinds(2).await;
    assert_eq!(kinds, ["restart_failed", "breaker_opened"]);
    // Healthy from now on: the breaker's trial, 3 s after it opened, succeeds.
    std::fs::write(&flag, "").expect("the flag");
    world.wait_cleared(1).await;
    let kinds = receiver.wait_kinds(4).await;
    assert_eq!(
        kinds,
        [
            "restart_failed",
            "breaker_opened",
            "restart_succeeded",
            "breaker_closed"
        ]
    );
    let events = receiver.events();
    for (event, kind) in events.iter().zip(&kinds) {
        assert_common(event, kind, Some(&name));
        assert_eq!(event["count"], 1, "{event}");
    }
    assert_eq!(events[0]["attempts"], 1);
    assert!(
        events[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("health check"))
    );
    assert!(events[1]["until"].is_string(), "{}", events[1]);
    assert_eq!(events[2]["method"], "process");
    let (_, note) = world.status(1).await;
    assert_eq!(events[2]["message"].as_str(), note.as_deref(), "the note");
    service.stop().await;
    assert_eq!(receiver.events().len(), 4, "{:?}", receiver.kinds());
}

#[tokio::test]
async fn deaths_and_a_crash_loop_are_alerted_with_their_cause() {
    let world = Fixture::new().await;
    let receiver = Receiver::start(&[]).await;
    let (name, mut first) = world.add_sleeper(1, "alc").await;
    let processes = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = {}\n\
         max_attempts = 1\nmax_restarts = 1\nrestart_window = 60\n{}",
        world.start_command(&name),
        alert_section(&receiver, "min_interval = 0")
    );
    let monitor = "stats_interval = 0.2\nauto_alarm = true\ndead_after = 1\n\
                   dead_recheck_interval = 0.01\nmax_restart_failures = 1";
    let service = world.run_in_process(world.config(monitor, &processes));
    wait_until(PATIENCE, "the sampler watches it", || async {
        world
            .count("SELECT COUNT(*) FROM PROCESS_STATS WHERE process_id = ?", 1)
            .await
            > 0
    })
    .await;

    first.kill().expect("kill the first");
    let _ = first.wait();
    let kinds = receiver.wait_kinds(2).await;
    assert_eq!(kinds, ["auto_alarm", "restart_succeeded"]);
    // Killed only once the sampler watches the new process: a kill during the restart is
    // the restart's own business, not a death.
    world.wait_cleared(1).await;
    let restarted = wait_for(
        PATIENCE,
        "the sampler watches the restarted one",
        || async {
            let pid = pids_of(&name).first().copied()?;
            let sampled: Option<Option<i32>> = sqlx::query_scalar(
                "SELECT pid FROM PROCESS_STATS WHERE process_id = 1 AND alive = 1",
            )
            .fetch_optional(&world.db.pool)
            .await
            .expect("read PROCESS_STATS");
            (sampled.flatten() == Some(pid)).then_some(pid)
        },
    )
    .await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(restarted),
        nix::sys::signal::Signal::SIGKILL,
    );
    let kinds = receiver.wait_kinds(5).await;
    assert_eq!(
        kinds,
        [
            "auto_alarm",
            "restart_succeeded",
            "auto_alarm",
            "crash_loop",
            "breaker_opened"
        ]
    );
    let events = receiver.events();
    for (event, kind) in events.iter().zip(&kinds) {
        assert_common(event, kind, Some(&name));
    }
    assert_eq!(events[0]["cause"], "dead");
    assert_eq!(events[3]["restarts"], 1);
    assert!(
        events[3]["message"]
            .as_str()
            .is_some_and(|m| m.contains("crash loop"))
    );
    service.stop().await;
    kill_all(&name);
}

#[tokio::test]
async fn the_health_score_and_the_database_going_and_coming_are_alerted() {
    let world = Fixture::new().await;
    let receiver = Receiver::start(&[]).await;
    let proxy = DbProxy::start(world.db.server_addr()).await;
    let name = world.unique_name("alh");
    world.add_process(1, &name).await;
    let processes = format!(
        "[health]\nthreshold = 0.9\n\n[process.{name}]\n{}",
        alert_section(&receiver, "")
    );
    let text = world.config_text_with(
        &world.db.database_section_on_port(proxy.port()),
        "stats_interval = 0.2",
        &processes,
    );
    let service = world.run_in_process(world.parse(&text));

    // Dead and required: the availability sub-score is 0.
    assert_eq!(receiver.wait_kinds(1).await, ["low_health"]);
    let _running = world.start_sleeper(&name);
    assert_eq!(
        receiver.wait_kinds(2).await,
        ["low_health", "health_recovered"]
    );
    proxy.cut();
    receiver.wait_kinds(3).await;
    proxy.restore().await;
    let kinds = receiver.wait_kinds(4).await;
    assert_eq!(
        kinds,
        [
            "low_health",
            "health_recovered",
            "database_down",
            "database_up"
        ]
    );
    let events = receiver.events();
    for (event, kind) in events.iter().zip(&kinds) {
        assert_common(event, kind, None);
    }
    assert!(
        events[0]["score"].as_f64().is_some_and(|s| s < 0.9),
        "{}",
        events[0]
    );
    assert_eq!(events[0]["threshold"], 0.9);
    assert!(events[2]["error"].is_string(), "{}", events[2]);
    service.stop().await;
}

#[tokio::test]
async fn repeats_within_min_interval_come_as_one_with_a_count() {
    let world = Fixture::new().await;
    let receiver = Receiver::start(&[]).await;
    let name = world.unique_name("alk");
    world.add_process(1, &name).await;
    let processes = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = false\nmax_attempts = 1\n{}",
        alert_section(&receiver, "events = restart_failed\nmin_interval = 2")
    );
    // The alarm stays raised after each failure, so each poll fails it again.
    let monitor = "max_restart_failures = 1000";
    let service = world.run_in_process(world.config(monitor, &processes));
    world.raise_alarm(1).await;

    receiver.wait_kinds(2).await;
    let failures = world
        .count(
            "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ? AND success = 0",
            1,
        )
        .await;
    let events = receiver.events();
    assert_eq!(receiver.kinds()[..2], ["restart_failed", "restart_failed"]);
    assert_eq!(events[0]["count"], 1, "the first at once: {}", events[0]);
    let folded = events[1]["count"].as_u64().expect("a count");
    assert!(folded >= 2, "the rest as one: {}", events[1]);
    assert!(events[1]["first_at"].is_string(), "{}", events[1]);
    assert!(failures > 2, "more failures ({failures}) than events");
    service.stop().await;
}

#[tokio::test]
async fn a_receiver_that_fails_gets_the_event_again_with_backoff() {
    let world = Fixture::new().await;
    let receiver = Receiver::start(&[Answer::Fail, Answer::Fail]).await;
    let name = world.unique_name("alf");
    world.add_process(1, &name).await;
    let processes = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = true\n\
         health_check_command = true\n{}",
        alert_section(&receiver, "webhook_retries = 3")
    );
    let service = world.run_in_process(world.config("", &processes));
    world.raise_alarm(1).await;

    assert_eq!(receiver.wait_kinds(1).await, ["restart_succeeded"]);
    assert_eq!(receiver.requests(), 3, "two 500s, then the one taken");
    service.stop().await;
}

#[tokio::test]
async fn a_receiver_that_hangs_never_holds_up_the_restarts() {
    let world = Fixture::new().await;
    let receiver = Receiver::start(&[Answer::Hang; 50]).await;
    let (first, second) = (world.unique_name("alg"), world.unique_name("alg"));
    world.add_process(1, &first).await;
    world.add_process(2, &second).await;
    let section = |name: &str| {
        format!(
            "[process.{name}]\nrestart_strategy = process\nstart_command = true\n\
             health_check_command = true\n"
        )
    };
    let processes = format!(
        "{}{}{}",
        section(&first),
        section(&second),
        alert_section(&receiver, "webhook_timeout = 30\nwebhook_retries = 5")
    );
    let service = world.run_in_process(world.config("", &processes));

    world.raise_alarm(1).await;
    world.wait_cleared(1).await;
    wait_until(PATIENCE, "the receiver holds a POST", || async {
        receiver.requests() >= 1
    })
    .await;
    // The receiver still holds the first event's POST: the next alarm is handled all the same.
    world.raise_alarm(2).await;
    world.wait_cleared(2).await;
    assert_eq!(receiver.requests(), 1, "still the first POST, unanswered");
    assert!(receiver.events().is_empty());
    service.stop().await;
}

#[tokio::test]
async fn the_command_gets_the_event_on_stdin_and_never_the_secrets() {
    let world = Fixture::new().await;
    let receiver = Receiver::start(&[]).await;
    let out = world.path("hook");
    std::fs::create_dir(&out).expect("a folder for the hook");
    let command = format!(
        "cat > {dir}/event.json; env > {dir}/env.txt; echo \"$1\" > {dir}/kind.txt",
        dir = out.display()
    );
    let text = world.config_text("", &format!("[alert]\ncommand = {command}\n"));
    let config = world.write_config(&text);
    // A password the server refuses: the database is down from the start, an event.
    let password = "pw-never-to-a-hook-7f3";
    let webhook = receiver.url();
    let env = [
        ("MONITOR_DB_PASSWORD", password),
        ("MONITOR_ALERT_WEBHOOK", webhook.as_str()),
    ];
    let mut daemon = world.spawn_binary_with(&config, &env);

    let event_file = out.join("kind.txt");
    wait_until(PATIENCE, "the hook ran", || async { event_file.exists() }).await;
    let webhook_events = receiver.wait_kinds(1).await;
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, Some(0));

    let read = |file: &str| std::fs::read_to_string(out.join(file)).expect(file);
    assert_eq!(read("kind.txt").trim(), "database_down");
    let event: Value = serde_json::from_str(&read("event.json")).expect("JSON on stdin");
    assert_common(&event, "database_down", None);
    assert_eq!(webhook_events, ["database_down"]);
    let environment = read("env.txt");
    assert!(
        !environment.contains("MONITOR_DB_PASSWORD"),
        "{environment}"
    );
    assert!(!environment.contains(password), "{environment}");
    assert!(!environment.contains("secret-token"), "{environment}");
    let log = std::fs::read_to_string(world.path("monitor.log")).expect("the log");
    assert!(
        !log.contains(password) && !log.contains("secret-token"),
        "{log}"
    );

    // check-config masks the webhook like the password.
    let output = monitor(&config)
        .env("MONITOR_ALERT_WEBHOOK", &webhook)
        .arg("check-config")
        .output()
        .expect("check-config");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("webhook = ********"), "{printed}");
    assert!(!printed.contains("secret-token"), "{printed}");
}
