//! The process page in a real browser: headless Chromium (Debian's `chromium`) loads
//! `GET /process/{name}` served by the service in-process against real MariaDB, from samples,
//! restarts and an outage this test wrote; the charts are there with its data points, and a
//! screenshot of the page is not blank. `MONITOR_UPDATE_SCREENSHOT=1` also copies the
//! screenshot to `docs/process-page.png`, the one README.md shows.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::fixture::{Fixture, InProcess, PATIENCE};
use common::wait_until;
use tokio::net::TcpStream;
use tokio::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";
/// A browser's first start on a busy two-core machine takes a while.
const BROWSER_PATIENCE: Duration = Duration::from_secs(90);
/// The spike among the samples: it must survive the downsampling.
const SPIKE: f64 = 87.5;
const SAMPLES: i64 = 900;

/// Runs headless Chromium on `url` with `action` (`--dump-dom`, `--screenshot=…`) and returns
/// what it printed; its process group is killed if it outlives the deadline.
async fn chromium(world: &Fixture, action: &str, url: &str) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: `apt-get install chromium` (scripts/test.sh does it)"
    );
    let profile = world.path(&format!("profile-{}", action.len()));
    let log = std::fs::File::create(world.path("chromium.log")).expect("a log for chromium");
    let mut browser = Command::new(CHROMIUM);
    browser
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--window-size=1000,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(action)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .process_group(0)
        .kill_on_drop(true);
    let child = browser.spawn().expect("start chromium");
    let group = child.id().and_then(|pid| i32::try_from(pid).ok());
    let output = tokio::time::timeout(BROWSER_PATIENCE, child.wait_with_output()).await;
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(group),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let output = output.expect("chromium in time").expect("chromium runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn serve(world: &Fixture, processes: &str) -> (InProcess, SocketAddr) {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let config = world.config(
        &format!("http_listen = {addr}\ncircuit_reset_time = 600"),
        processes,
    );
    let service = world.run_in_process(config);
    wait_until(PATIENCE, "the status page answers", || async move {
        TcpStream::connect(addr).await.is_ok()
    })
    .await;
    (service, addr)
}

async fn sql(world: &Fixture, statement: &'static str, id: i32) {
    sqlx::query(statement)
        .bind(id)
        .execute(&world.db.pool)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

/// The last 45 minutes of process `id`: a sample and a heartbeat every 3 s, CPU with one
/// spike, memory climbing, response times; a failed and a good restart; a 5-minute outage.
async fn write_history(world: &Fixture, id: i32, name: &str) {
    let mut rows = Vec::new();
    for i in 0..SAMPLES {
        let cpu = if i == 450 {
            SPIKE
        } else {
            5.0 + (i % 7) as f64
        };
        let ago = (SAMPLES - i) * 3;
        rows.push(format!(
            "({id}, 'testhost', 'sample', NOW(3) - INTERVAL {ago} SECOND, 1, 4242, {cpu}, {}, \
             1000, NULL, NULL), ({id}, 'testhost', 'heartbeat', NOW(3) - INTERVAL {ago} SECOND, \
             NULL, NULL, NULL, NULL, NULL, {}, 1)",
            1.0 + i as f64 / 300.0,
            10.0 + (i % 11) as f64
        ));
    }
    let insert = format!(
        "INSERT INTO PROCESS_SAMPLES (process_id, host, kind, sampled_at, alive, pid, cpu_pct, \
         mem_pct, rss_bytes, response_ms, check_ok) VALUES {}",
        rows.join(", ")
    );
    sqlx::query(sqlx::AssertSqlSafe(insert))
        .execute(&world.db.pool)
        .await
        .expect("insert the samples");
    let events = format!(
        "INSERT INTO RESTART_EVENTS (process_id, process_name, host, trigger_source, detected_at, \
         started_at, finished_at, strategy, attempts, success, error) VALUES \
         (?, '{name}', 'testhost', 'auto', NOW(3) - INTERVAL 20 MINUTE, NOW(3) - INTERVAL 20 MINUTE, \
          NOW(3) - INTERVAL 1199 SECOND, 'process', 1, 0, 'health check: exit 1'), \
         (?, '{name}', 'testhost', 'auto', NOW(3) - INTERVAL 16 MINUTE, NOW(3) - INTERVAL 16 MINUTE, \
          NOW(3) - INTERVAL 959 SECOND, 'process', 1, 1, NULL)"
    );
    sqlx::query(sqlx::AssertSqlSafe(events))
        .bind(id)
        .bind(id)
        .execute(&world.db.pool)
        .await
        .expect("insert the restarts");
    sql(
        world,
        "INSERT INTO PROCESS_OUTAGES (process_id, host, down_at, up_at) VALUES \
         (?, 'testhost', NOW(3) - INTERVAL 21 MINUTE, NOW(3) - INTERVAL 16 MINUTE)",
        id,
    )
    .await;
}

/// `<svg id="ID" …>…</svg>` of the page.
fn chart<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("no chart {id} in\n{dom}"));
    let end = dom[start..].find("</svg>").expect("the chart's end");
    &dom[start..start + end]
}

fn points(svg: &str) -> usize {
    svg.split(" points=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map_or(0, |line| line.split_whitespace().count())
}

#[tokio::test]
async fn chromium_shows_the_charts_drawn_from_the_samples_and_a_screenshot_of_them() {
    let world = Fixture::new().await;
    let (name, _child) = world.add_sleeper(1, "chart").await;
    write_history(&world, 1, &name).await;
    // A second process in alarm behind an open breaker: the table says why and until when.
    let stuck = world.unique_name("stuck");
    world.add_process(2, &stuck).await;
    world.open_breaker(2).await;
    sql(&world, "UPDATE STATUS_PROCESS SET alarma = 1, notes = 'restart failed: exit 1' WHERE process_id = ?", 2).await;
    let processes = format!(
        "[process.{name}]\n[process.{stuck}]\nrestart_strategy = process\nstart_command = true\n"
    );
    let (service, addr) = serve(&world, &processes).await;

    let page = format!("http://{addr}/process/{name}");
    let dom = chromium(&world, "--dump-dom", &page).await;
    let cpu = chart(&dom, "chart-cpu");
    assert!(
        cpu.contains(&format!("data-max=\"{SPIKE}\"")),
        "the spike survives: {cpu}"
    );
    let drawn = points(cpu);
    assert!(
        (100..=2 * 240).contains(&drawn),
        "{drawn} points drawn of {SAMPLES}"
    );
    assert_eq!(cpu.matches("class=\"restart\"").count(), 2, "{cpu}");
    assert_eq!(cpu.matches("class=\"outage\"").count(), 1, "{cpu}");
    assert!(points(chart(&dom, "chart-memory")) > 100);
    let response = chart(&dom, "chart-response");
    assert!(
        points(response) > 100 && response.contains("data-max=\"20\""),
        "{response}"
    );
    assert!(
        dom.contains("health check: exit 1"),
        "the restarts are listed: {dom}"
    );

    // The daemon finds the breaker open and says so in the note, which the table shows.
    let note = common::wait_for(PATIENCE, "the breaker's note", || async {
        let (_, note) = world.status(2).await;
        note.filter(|note| note.contains("until"))
    })
    .await;
    let table = chromium(&world, "--dump-dom", &format!("http://{addr}/")).await;
    assert!(
        table.contains(&format!("<a href=\"/process/{name}\">{name}</a>")),
        "{table}"
    );
    assert!(table.contains("<svg class=\"strip\""), "{table}");
    assert!(
        table.contains("succeeded at "),
        "the last restart's outcome: {table}"
    );
    assert!(
        table.contains(&format!("<td class=\"why\">{note}</td>")) && note.contains("until"),
        "why, and until when: {table}"
    );

    let shot = world.path("process-page.png");
    let blank = world.path("blank.png");
    chromium(&world, &format!("--screenshot={}", shot.display()), &page).await;
    chromium(
        &world,
        &format!("--screenshot={}", blank.display()),
        "about:blank",
    )
    .await;
    let size = |path: &PathBuf| std::fs::metadata(path).map_or(0, |m| m.len());
    assert!(
        size(&shot) > 20_000 && size(&shot) > 4 * size(&blank),
        "the screenshot looks blank: {} bytes, a blank page {} bytes",
        size(&shot),
        size(&blank)
    );
    if std::env::var_os("MONITOR_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/process-page.png");
        std::fs::copy(&shot, docs).expect("copy the screenshot to docs/");
    }
    service.stop().await;
}

#[tokio::test]
async fn an_unknown_process_has_no_page_and_hours_are_bounded() {
    let world = Fixture::new().await;
    let (name, _child) = world.add_sleeper(1, "chartb").await;
    let (service, addr) = serve(&world, &format!("[process.{name}]\n")).await;
    let get = |path: String| async move {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
            .await
            .expect("send");
        let mut answer = String::new();
        let read = tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer);
        tokio::time::timeout(PATIENCE, read)
            .await
            .expect("in time")
            .expect("read");
        answer
    };
    let missing = get("/process/nobody%3Chere".to_owned()).await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let day = get(format!("/process/{name}?hours=24")).await;
    assert!(day.starts_with("HTTP/1.1 200"), "{day}");
    assert!(
        day.contains("last 24 hour(s)") && day.contains("<svg id=\"chart-cpu\""),
        "{day}"
    );
    let huge = get(format!("/process/{name}?hours=99999")).await;
    assert!(huge.contains("last 168 hour(s)"), "{huge}");
    service.stop().await;
}
