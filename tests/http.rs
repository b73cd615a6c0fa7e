//! The status page against real MariaDB and real processes, the service running in-process:
//! each endpoint, the Refresh, the limits, hostile clients and a database that goes away.
//!
//! Requests are written by hand over a `TcpStream` (HTTP/1.1, `Connection: close`), so the
//! tests see exactly the bytes the server sends and need no HTTP client crate.

mod common;

use std::net::SocketAddr;

use common::fixture::{Fixture, InProcess, PATIENCE};
use common::{DbProxy, wait_for, wait_until};
use monitor_service::config::Config;
use sqlx::Row;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A process name that is markup: stored in `PROCESE` by someone else, shown escaped.
const HOSTILE_NAME: &str = "<b>x&y</b>\"'";
const HOSTILE_ESCAPED: &str = "&lt;b&gt;x&amp;y&lt;/b&gt;&quot;&#39;";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Sends `request` as it is and reads the response until the server closes the connection.
async fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await?;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no complete head in {text:?}")))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: body.to_owned(),
    };
    if reply
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        reply.body = dechunk(&reply.body);
    }
    Ok(reply)
}

fn dechunk(mut chunked: &str) -> String {
    let mut body = String::new();
    while let Some((size, rest)) = chunked.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        body.push_str(&rest[..size]);
        chunked = &rest[size + 2..];
    }
    body
}

async fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tokio::time::timeout(PATIENCE, exchange(addr, text.as_bytes()))
        .await
        .unwrap_or_else(|_| panic!("{method} {path} answered within {PATIENCE:?}"))
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path).await
}

/// A port that was free a moment ago. The service binds it at once; another test taking it
/// in between would need the kernel to hand out the same ephemeral port twice in a row.
fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// Starts the service and waits until its status page answers; returns the page's address.
async fn serve(world: &Fixture, config: Config) -> (InProcess, SocketAddr) {
    let addr = config.monitor.http_listen.expect("http_listen is set");
    let service = world.run_in_process(config);
    wait_until(PATIENCE, "the status page answers", || async move {
        TcpStream::connect(addr).await.is_ok()
    })
    .await;
    (service, addr)
}

/// The config of a test: the fixture's, with the status page on a free port.
fn config(world: &Fixture, monitor: &str, processes: &str) -> Config {
    let addr = free_address();
    world.config(&format!("http_listen = {addr}\n{monitor}"), processes)
}

fn section(name: &str) -> String {
    format!("[process.{name}]\n")
}

/// The texts of the cells of the row of `name` (as written in the page, escaped).
fn cells(page: &str, name: &str) -> Vec<String> {
    let marker = format!("data-process=\"{name}\">");
    let row = page
        .split_once(&marker)
        .and_then(|(_, rest)| rest.split_once("</tr>"))
        .map(|(row, _)| row)
        .unwrap_or_else(|| panic!("no row for {name} in\n{page}"));
    row.split("</td>")
        .filter(|cell| cell.contains("<td"))
        .map(|cell| text_of(cell.split_once("<td").map_or(cell, |(_, rest)| rest)))
        .collect()
}

/// The text of a cell (`class="x">…`), its markup (a link, say) left out.
fn text_of(cell: &str) -> String {
    let content = cell.split_once('>').map_or("", |(_, content)| content);
    let mut text = String::new();
    let mut in_tag = false;
    for character in content.chars() {
        match character {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// `(alive, updated_at)` of a process's `PROCESS_STATS` row, once there is one.
async fn sampled(world: &Fixture, id: i32) -> Option<(bool, chrono::DateTime<chrono::Utc>)> {
    let row = sqlx::query(
        "SELECT alive, updated_at FROM PROCESS_STATS WHERE process_id = ? AND host = 'testhost'",
    )
    .bind(id)
    .fetch_optional(&world.db.pool)
    .await
    .expect("read PROCESS_STATS")?;
    Some((row.get::<i8, _>(0) != 0, row.get(1)))
}

/// Waits until the sampler has written its first sample and health score.
async fn wait_first_sample(addr: SocketAddr) {
    wait_until(PATIENCE, "a health score is served", || async move {
        let reply = get(addr, "/health").await;
        reply.status == 200 && !reply.body.contains("\"total\": null")
    })
    .await;
}

/// Serves the process `name` with statistics on (the first sample is taken at start, the next
/// in an hour), once its first sample and the health score are in.
async fn serve_sampled(world: &Fixture, name: &str) -> (InProcess, SocketAddr) {
    let (service, addr) = serve(
        world,
        config(world, "stats_interval = 3600", &section(name)),
    )
    .await;
    wait_first_sample(addr).await;
    (service, addr)
}

#[tokio::test]
async fn the_page_lists_every_process_with_alarms_and_open_breakers_highlighted_and_names_escaped()
{
    let world = Fixture::new().await;
    let (name, child) = world.add_sleeper(1, "page").await;
    world.add_process(2, HOSTILE_NAME).await;
    world.raise_alarm(2).await;
    world.open_breaker(1).await;
    let (service, addr) = serve_sampled(&world, &name).await;

    let page = get(addr, "/").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.header("content-security-policy")
            .is_some_and(|policy| policy.starts_with("default-src 'none'")),
        "{page:?}"
    );
    let body = &page.body;
    assert!(
        body.contains(&format!(
            "<tr class=\"breaker-open\" data-process=\"{name}\">"
        )),
        "{body}"
    );
    let pid = child.id().to_string();
    let live = cells(body, &name);
    assert_eq!(
        live[..5],
        [name.as_str(), "yes", pid.as_str(), "no", "open"],
        "{live:?}"
    );
    assert_eq!(live[6], "0", "restarts: {live:?}");
    assert!(body.contains(&format!(
        "<tr class=\"alarm\" data-process=\"{HOSTILE_ESCAPED}\">"
    )));
    let hostile = cells(body, HOSTILE_ESCAPED);
    assert_eq!(
        hostile[..5],
        [HOSTILE_ESCAPED, "—", "—", "ALARM", "closed"],
        "{hostile:?}"
    );
    assert!(!body.contains("<b>x"), "a name went out unescaped:\n{body}");
    assert!(body.contains("<h1>monitor_service on testhost</h1>"));
    assert!(
        !body.contains("<b id=\"monitor-start\">never</b>"),
        "{body}"
    );
    assert!(!body.contains("no score yet"), "{body}");
    assert!(body.contains("<b id=\"alarm-count\">1</b>"), "{body}");
    assert!(body.contains("<form method=\"post\" action=\"/refresh\">"));
    for outside in ["<script", "<link", "src=", "http://", "https://", "url("] {
        assert!(!body.contains(outside), "the page loads {outside}");
    }

    service.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the status page still listens after the service stopped"
    );
}

#[tokio::test]
async fn process_stats_serves_the_statistics_document_of_the_contract() {
    let world = Fixture::new().await;
    let (name, _child) = world.add_sleeper(1, "doc").await;
    let (service, addr) = serve_sampled(&world, &name).await;

    let reply = get(addr, "/process_stats").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let document: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    let keys: Vec<&str> = document
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["monitorTimeOfStart", "procStats"]);
    assert!(document["monitorTimeOfStart"].is_string(), "{document}");
    let entry = &document["procStats"][0];
    let mut keys: Vec<&str> = entry
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = [
        "procName",
        "alive",
        "lastRestart",
        "totalRestarts",
        "avgResponseTimeMS",
        "maxResponseTimeMS",
        "lastResponseTimeMS",
        "avgMemUsagePct",
        "maxMemUsagePct",
        "lastMemUsagePct",
        "avgCpuUsagePct",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(entry["procName"], name.as_str());
    assert_eq!(entry["alive"], true);
    assert_eq!(entry["totalRestarts"], 0);

    service.stop().await;
}

#[tokio::test]
async fn health_serves_the_score_as_json() {
    let world = Fixture::new().await;
    let (name, _child) = world.add_sleeper(1, "score").await;
    let (service, addr) = serve_sampled(&world, &name).await;

    let reply = get(addr, "/health").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let report: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(report["host"], "testhost");
    let total = report["total"].as_f64().expect("a total");
    assert!((0.0..=1.0).contains(&total), "{report}");
    assert!(report["threshold"].is_number(), "{report}");
    assert!(report["computedAt"].is_string(), "{report}");
    assert_eq!(
        report["low"],
        total < report["threshold"].as_f64().unwrap_or(0.0)
    );

    service.stop().await;
}

#[tokio::test]
async fn metrics_are_openmetrics_text_with_a_process_label() {
    let world = Fixture::new().await;
    let (name, _child) = world.add_sleeper(1, "metric").await;
    world.add_process(2, HOSTILE_NAME).await;
    world.raise_alarm(2).await;
    let (service, addr) = serve_sampled(&world, &name).await;

    let reply = get(addr, "/metrics").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some(OPENMETRICS));
    let text = &reply.body;
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_openmetrics(text);
    let label = format!("{{process=\"{name}\"}}");
    for series in [
        format!("monitor_service_process_alive{label} 1"),
        format!("monitor_service_process_in_alarm{label} 0"),
        format!("monitor_service_process_breaker_open{label} 0"),
        format!("monitor_service_process_restarts_total{label} 0"),
        "monitor_service_process_in_alarm{process=\"<b>x&y</b>\\\"'\"} 1".to_owned(),
        "monitor_service_up 1".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == series), "no {series} in\n{text}");
    }
    for family in [
        "monitor_service_process_cpu_percent",
        "monitor_service_process_memory_percent",
        "monitor_service_health_score",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(family) && !l.starts_with('#')),
            "no {family} in\n{text}"
        );
    }

    service.stop().await;
}

/// Each line is a `# HELP`, `# TYPE` or `# UNIT` of a family, or a sample of a family
/// declared before it, and the text ends with `# EOF`.
fn assert_openmetrics(text: &str) {
    let sample = regex::Regex::new(
        r#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"\})? (-?[0-9.]+(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$"#,
    )
    .expect("a valid regex");
    let mut families: Vec<(String, String)> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" {
            assert!(lines.peek().is_none(), "text after # EOF");
            return;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            families.push((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        let captures = sample
            .captures(line)
            .unwrap_or_else(|| panic!("not an OpenMetrics sample: {line}"));
        let name = &captures[1];
        assert!(
            families.iter().any(|(family, kind)| match kind.as_str() {
                "counter" =>
                    name == format!("{family}_total") || name == format!("{family}_created"),
                _ => name == family,
            }),
            "{name} has no # TYPE before it"
        );
    }
    panic!("no # EOF at the end");
}

#[tokio::test]
async fn refresh_checks_every_process_now_and_redirects_to_the_page() {
    let world = Fixture::new().await;
    let name = world.unique_name("fresh");
    world.add_process(1, &name).await;
    let processes = format!("{}health_check_command = true\n", section(&name));
    let monitor = "stats_interval = 3600\nheartbeat_interval = 3600";
    let (service, addr) = serve(&world, config(&world, monitor, &processes)).await;
    let (alive, first) = wait_for(PATIENCE, "the first sample", || sampled(&world, 1)).await;
    assert!(!alive, "not started yet");

    // Started after the first sample: only a check now can see it before the hour is up.
    let child = world.start_sleeper(&name);
    let reply = request(addr, "POST", "/refresh").await;
    assert_eq!(reply.status, 303, "{reply:?}");
    assert_eq!(reply.header("location"), Some("/"));

    // The redirect comes once the sample is written: no waiting needed.
    let (alive, updated) = sampled(&world, 1).await.expect("still sampled");
    assert!(alive, "the refresh found the process");
    assert!(
        updated > first,
        "updated_at {updated} did not move past {first}"
    );
    let page = get(addr, "/").await;
    let row = cells(&page.body, &name);
    assert_eq!(
        row[1..3],
        ["yes", child.id().to_string().as_str()],
        "{row:?}"
    );

    service.stop().await;
}

#[tokio::test]
async fn refresh_with_statistics_off_still_redirects_at_once() {
    let world = Fixture::new().await;
    let (service, addr) = serve(&world, config(&world, "stats_interval = 0", "")).await;

    let reply = request(addr, "POST", "/refresh").await;
    assert_eq!(reply.status, 303, "{reply:?}");
    assert_eq!(reply.header("location"), Some("/"));
    let page = get(addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("No process of this host in PROCESE."),
        "{}",
        page.body
    );

    service.stop().await;
}

#[tokio::test]
async fn unknown_paths_oversized_bodies_and_huge_headers_are_refused() {
    let world = Fixture::new().await;
    let (service, addr) = serve(&world, config(&world, "", "")).await;

    assert_eq!(get(addr, "/nothing/here").await.status, 404);
    assert_eq!(get(addr, "/refresh").await.status, 405);
    assert_eq!(request(addr, "DELETE", "/").await.status, 405);

    // Only the head is sent: the server must refuse on the announced length alone.
    let oversized = format!(
        "POST /refresh HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100000\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n"
    );
    let reply = exchange(addr, oversized.as_bytes())
        .await
        .expect("an answer");
    assert_eq!(reply.status, 413, "{reply:?}");

    let huge = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    // The server stops reading at its limit; closing with the rest unread may reset the
    // connection before the 431 is read. Either way the request is refused.
    if let Ok(reply) = exchange(addr, huge.as_bytes()).await {
        assert_eq!(reply.status, 431, "{reply:?}");
    }

    assert_eq!(get(addr, "/health").await.status, 200, "still serving");
    service.stop().await;
}

#[tokio::test]
async fn silent_and_slow_clients_neither_stall_others_nor_stay_connected() {
    let world = Fixture::new().await;
    let (service, addr) = serve(&world, config(&world, "", "")).await;

    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: ")
        .await
        .expect("half a head");
    for _ in 0..3 {
        let reply = get(addr, "/health").await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }

    // The header deadline (10 s) closes both; a read then sees the end, or a reset.
    for (what, stream) in [("silent", &mut silent), ("slow", &mut slow)] {
        let mut buffer = [0u8; 512];
        let mut ended = false;
        let give_up = tokio::time::Instant::now() + PATIENCE;
        while let Ok(read) = tokio::time::timeout_at(give_up, stream.read(&mut buffer)).await {
            // An error response (408) may come first; the end follows.
            if matches!(read, Ok(0) | Err(_)) {
                ended = true;
                break;
            }
        }
        assert!(
            ended,
            "the {what} client is still connected after {PATIENCE:?}"
        );
    }

    service.stop().await;
}

#[tokio::test]
async fn a_database_outage_gives_503_at_once_and_the_page_comes_back_with_the_database() {
    let world = Fixture::new().await;
    let proxy = DbProxy::start(world.db.server_addr()).await;
    let database = world.db.database_section_on_port(proxy.port());
    let addr = free_address();
    let text = world.config_text_with(&database, &format!("http_listen = {addr}\n"), "");
    let (service, _) = serve(&world, world.parse(&text)).await;
    wait_until(PATIENCE, "the page is served", || async move {
        get(addr, "/").await.status == 200
    })
    .await;

    proxy.cut();
    for path in ["/", "/health", "/process_stats", "/metrics"] {
        let reply = get(addr, path).await;
        assert_eq!(reply.status, 503, "{path}: {reply:?}");
        assert!(reply.body.contains("database unavailable"), "{reply:?}");
        assert_eq!(reply.header("retry-after"), Some("5"));
    }

    proxy.restore().await;
    wait_until(PATIENCE, "the page is served again", || async move {
        get(addr, "/").await.status == 200
    })
    .await;

    service.stop().await;
    drop(proxy);
}

#[tokio::test]
async fn an_address_in_use_stops_the_service_with_a_clear_error() {
    let world = Fixture::new().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address");
    let service = world.run_in_process(world.config(&format!("http_listen = {addr}"), ""));

    let outcome = tokio::time::timeout(PATIENCE, service.task)
        .await
        .expect("the service gives up at once")
        .expect("no panic");
    let error = outcome.expect_err("the service refuses to start");
    let message = error.to_string();
    assert!(
        message.contains(&addr.to_string()) && message.contains("http_listen"),
        "{message}"
    );

    drop(taken);
}

/// The value at `key` of the entry of `name` in a JSON array (`status --json`) or in the
/// statistics document's `procStats`.
fn entry<'a>(list: &'a serde_json::Value, key: &str, name: &str) -> &'a serde_json::Value {
    list.as_array()
        .and_then(|list| list.iter().find(|e| e[key] == name))
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[tokio::test]
async fn right_after_a_restart_status_stats_and_the_page_agree_on_alive_pid_and_restarts() {
    let world = Fixture::new().await;
    let name = world.unique_name("agree");
    world.add_process(1, &name).await;
    let section = format!(
        "[process.{name}]\nrestart_strategy = process\nstart_command = {}\n",
        world.start_command(&name)
    );
    let addr = free_address();
    let text = world.config_text(
        &format!("http_listen = {addr}\nstats_interval = 3600"),
        &section,
    );
    let path = world.write_config(&text);
    let (service, addr) = serve(&world, world.parse(&text)).await;
    world.raise_alarm(1).await;
    wait_until(PATIENCE, "the restart succeeded", || async {
        world
            .count(
                "SELECT COUNT(*) FROM RESTART_EVENTS WHERE process_id = ? AND success = 1",
                1,
            )
            .await
            == 1
    })
    .await;
    let pids = common::fixture::pids_of(&name);
    assert_eq!(pids.len(), 1, "one process started: {pids:?}");
    let pid = serde_json::json!(pids[0]);

    let json_of = |args: &[&str]| -> serde_json::Value {
        let output = common::monitor(&path).args(args).output().expect("runs");
        assert!(output.status.success(), "{args:?}: {output:?}");
        serde_json::from_slice(&output.stdout).expect("JSON")
    };
    let status = json_of(&["status", "--json"]);
    let status = entry(&status, "name", &name);
    assert_eq!(
        (&status["alive"], &status["pid"], &status["restarts"]),
        (&serde_json::json!(true), &pid, &serde_json::json!(1)),
        "status: {status}"
    );
    for document in [
        json_of(&["stats", "--json"]),
        serde_json::from_str(&get(addr, "/process_stats").await.body).expect("JSON"),
    ] {
        let stats = entry(&document["procStats"], "procName", &name);
        assert_eq!(
            (&stats["alive"], &stats["totalRestarts"]),
            (&serde_json::json!(true), &serde_json::json!(1)),
            "{document}"
        );
    }
    let page = get(addr, "/").await.body;
    let cells = cells(&page, &name);
    assert_eq!(
        [cells[1].as_str(), cells[2].as_str(), cells[6].as_str()],
        ["yes", pids[0].to_string().as_str(), "1"],
        "{cells:?}"
    );
    let metrics = get(addr, "/metrics").await.body;
    for series in [
        format!("monitor_service_process_alive{{process=\"{name}\"}} 1"),
        format!("monitor_service_process_restarts_total{{process=\"{name}\"}} 1"),
    ] {
        assert!(
            metrics.lines().any(|l| l == series),
            "no {series} in\n{metrics}"
        );
    }

    service.stop().await;
    common::fixture::kill_all(&name);
}
