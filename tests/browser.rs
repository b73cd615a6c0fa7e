//! The status page in a real browser: headless Chromium (Debian's `chromium`) loads the page
//! served by the service running in-process against real MariaDB, and a real click on Refresh
//! posts the form, follows the redirect and shows the result of the fresh check.
//!
//! The click goes through the DevTools protocol over `--remote-debugging-pipe`: JSON messages
//! ended by a NUL byte on file descriptors 3 (to the browser) and 4 (from it), which `sh`
//! connects to the child's stdin and stdout. No WebSocket client is needed.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::fixture::{Fixture, InProcess, PATIENCE};
use common::wait_until;
use serde_json::{Value, json};
use sqlx::Row;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Where Debian installs Chromium; `scripts/test.sh` installs it.
const CHROMIUM: &str = "/usr/bin/chromium";
/// A browser's first start on a busy two-core machine takes a while.
const BROWSER_PATIENCE: Duration = Duration::from_secs(90);
const HOSTILE_NAME: &str = "<b>x&y</b>";

fn chromium() -> PathBuf {
    let path = PathBuf::from(CHROMIUM);
    assert!(
        path.exists(),
        "{CHROMIUM} is missing: `apt-get install chromium` (scripts/test.sh does it)"
    );
    path
}

/// Flags for a quiet, self-contained headless browser that talks to nothing but the page.
fn browser_flags(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--window-size=1280,800",
    ]
    .iter()
    .map(|flag| (*flag).to_owned())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// The browser's process group, killed when the test ends so that no renderer outlives it.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn group_of(child: &Child) -> Group {
    Group(
        child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .expect("the browser's pid"),
    )
}

/// Starts the service with the status page on a free port; returns its address once it
/// accepts connections.
async fn serve(world: &Fixture, monitor: &str, processes: &str) -> (InProcess, SocketAddr) {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let config = world.config(&format!("http_listen = {addr}\n{monitor}"), processes);
    let service = world.run_in_process(config);
    wait_until(PATIENCE, "the status page answers", || async move {
        TcpStream::connect(addr).await.is_ok()
    })
    .await;
    (service, addr)
}

/// Waits until the sampler has written the process's statistics and a health score.
async fn wait_sampled(world: &Fixture, id: i32) {
    wait_until(PATIENCE, "the first sample and health score", || async {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM PROCESS_STATS WHERE process_id = ?) \
             * (SELECT COUNT(*) FROM HEALTH_SCORE)",
        )
        .bind(id)
        .fetch_one(&world.db.pool)
        .await
        .expect("read the statistics");
        row.get::<i64, _>(0) > 0
    })
    .await;
}

#[tokio::test]
async fn chromium_shows_the_processes_and_the_health_score() {
    let world = Fixture::new().await;
    let (name, child) = world.add_sleeper(1, "shown").await;
    world.add_process(2, HOSTILE_NAME).await;
    world.raise_alarm(2).await;
    let section = format!("[process.{name}]\n");
    let (service, addr) = serve(&world, "stats_interval = 3600", &section).await;
    wait_sampled(&world, 1).await;

    let mut browser = Command::new(chromium());
    browser
        .args(browser_flags(&world.path("profile")))
        .arg("--dump-dom")
        .arg(format!("http://{addr}/"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file(&world))
        .process_group(0)
        .kill_on_drop(true);
    let browser = browser.spawn().expect("start chromium");
    let _group = group_of(&browser);
    let output = tokio::time::timeout(BROWSER_PATIENCE, browser.wait_with_output())
        .await
        .expect("chromium dumps the page in time")
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&output.stdout);

    assert!(dom.contains("<table id=\"processes\">"), "{dom}");
    let live = format!(
        "<td><a href=\"/process/{name}\">{name}</a></td><td class=\"alive\">yes</td>\
         <td class=\"number\">{}</td>",
        child.id()
    );
    assert!(dom.contains(&live), "no {live} in\n{dom}");
    // Parsed as text, not as markup: serialized back with the entities.
    assert!(
        dom.contains(">&lt;b&gt;x&amp;y&lt;/b&gt;</a></td>"),
        "{dom}"
    );
    assert!(dom.contains("<td class=\"alarm\">ALARM</td>"), "{dom}");
    let score = dom
        .split_once("<b id=\"health-score\">")
        .and_then(|(_, rest)| rest.split_once("</b>"))
        .map(|(score, _)| score.to_owned())
        .unwrap_or_default();
    assert!(
        score.parse::<f64>().is_ok(),
        "health score {score:?} in\n{dom}"
    );

    service.stop().await;
}

#[tokio::test]
async fn clicking_refresh_in_chromium_shows_a_process_started_since_the_last_sample() {
    let world = Fixture::new().await;
    let name = world.unique_name("click");
    world.add_process(1, &name).await;
    let section = format!("[process.{name}]\n");
    let (service, addr) = serve(&world, "stats_interval = 3600", &section).await;
    wait_sampled(&world, 1).await;

    let mut browser = Browser::launch(&world).await;
    let page = browser.open(&format!("http://{addr}/")).await;
    let row = browser.row(&page, &name).await;
    assert_eq!(row[1], "no", "not started yet: {row:?}");

    // Only a check now can find it: the next sample is an hour away.
    let child = world.start_sleeper(&name);
    browser.click(&page, "#refresh").await;
    let pid = child.id().to_string();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let row = browser.try_row(&page, &name).await;
        if row
            .as_ref()
            .is_some_and(|row| row[1] == "yes" && row[2] == pid)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after the click the page still shows {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let path = browser.evaluate(&page, "location.pathname").await;
    assert_eq!(path, Some(json!("/")), "the redirect led back to the page");

    browser.close().await;
    service.stop().await;
}

fn log_file(world: &Fixture) -> Stdio {
    std::fs::File::create(world.path("chromium.log"))
        .map(Stdio::from)
        .expect("a log file for chromium")
}

/// Headless Chromium driven over the DevTools protocol on a pipe.
struct Browser {
    child: Child,
    _group: Group,
    commands: ChildStdin,
    replies: BufReader<ChildStdout>,
    next_id: u64,
}

/// One page (a target) and the session attached to it.
struct Page {
    session: String,
}

impl Browser {
    async fn launch(world: &Fixture) -> Browser {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#"exec "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg("sh")
            .arg(chromium())
            .args(browser_flags(&world.path("profile")))
            .arg("--remote-debugging-pipe")
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file(world))
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start chromium");
        let group = group_of(&child);
        let commands = child.stdin.take().expect("the command pipe");
        let replies = BufReader::new(child.stdout.take().expect("the reply pipe"));
        Browser {
            child,
            _group: group,
            commands,
            replies,
            next_id: 0,
        }
    }

    /// Sends one command (to a page's session, or to the browser) and returns its result, or
    /// the protocol's error as Err.
    async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        let exchange = async {
            self.commands
                .write_all(&bytes)
                .await
                .expect("write to chromium");
            loop {
                let mut reply = Vec::new();
                let read = self.replies.read_until(0, &mut reply).await;
                assert!(read.is_ok_and(|n| n > 0), "chromium closed its pipe");
                reply.pop();
                let reply: Value = serde_json::from_slice(&reply).expect("JSON from chromium");
                // Events and answers to earlier calls pass by.
                if reply["id"] == id {
                    return match reply.get("error") {
                        Some(error) => Err(error.clone()),
                        None => Ok(reply["result"].clone()),
                    };
                }
            }
        };
        tokio::time::timeout(BROWSER_PATIENCE, exchange)
            .await
            .unwrap_or_else(|_| panic!("chromium did not answer {method} in time"))
    }

    /// Opens `url` in a new page and waits until its table is there.
    async fn open(&mut self, url: &str) -> Page {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": url }))
            .await
            .expect("a new page");
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await
            .expect("attached to the page");
        let page = Page {
            session: attached["sessionId"]
                .as_str()
                .expect("a session")
                .to_owned(),
        };
        let ready = "document.readyState === 'complete' && !!document.querySelector('#processes')";
        let deadline = tokio::time::Instant::now() + BROWSER_PATIENCE;
        while self.evaluate(&page, ready).await != Some(json!(true)) {
            assert!(tokio::time::Instant::now() < deadline, "{url} did not load");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        page
    }

    /// The value of a JavaScript expression in the page; None while the page is between two
    /// documents (the expression's context was destroyed).
    async fn evaluate(&mut self, page: &Page, expression: &str) -> Option<Value> {
        let params = json!({ "expression": expression, "returnByValue": true });
        let result = self
            .call(Some(&page.session), "Runtime.evaluate", params)
            .await
            .ok()?;
        if result.get("exceptionDetails").is_some() {
            return None;
        }
        result["result"].get("value").cloned()
    }

    /// The cells of the table row whose first cell is `name`, once the page shows it.
    async fn try_row(&mut self, page: &Page, name: &str) -> Option<Vec<String>> {
        let rows = "Array.from(document.querySelectorAll('#processes tbody tr'))\
                    .map(row => Array.from(row.cells).map(cell => cell.textContent))";
        let rows: Vec<Vec<String>> =
            serde_json::from_value(self.evaluate(page, rows).await?).ok()?;
        rows.into_iter()
            .find(|row| row.first().is_some_and(|first| first == name))
    }

    async fn row(&mut self, page: &Page, name: &str) -> Vec<String> {
        let row = self.try_row(page, name).await;
        row.unwrap_or_else(|| panic!("the page has no row for {name}"))
    }

    /// A left click in the middle of the element, as a mouse would do it.
    async fn click(&mut self, page: &Page, selector: &str) {
        let centre = format!(
            "(() => {{ const box = document.querySelector('{selector}').getBoundingClientRect(); \
             return [box.x + box.width / 2, box.y + box.height / 2]; }})()"
        );
        let centre = self.evaluate(page, &centre).await.expect("the element");
        let (x, y) = (centre[0].clone(), centre[1].clone());
        for (kind, button) in [
            ("mouseMoved", "none"),
            ("mousePressed", "left"),
            ("mouseReleased", "left"),
        ] {
            let event = json!({ "type": kind, "x": x, "y": y, "button": button, "clickCount": 1 });
            self.call(Some(&page.session), "Input.dispatchMouseEvent", event)
                .await
                .unwrap_or_else(|error| panic!("{kind}: {error}"));
        }
    }

    /// Asks the browser to close and waits for it; the process group goes anyway on drop.
    async fn close(mut self) {
        self.next_id += 1;
        let mut close =
            serde_json::to_vec(&json!({ "id": self.next_id, "method": "Browser.close" }))
                .expect("JSON");
        close.push(0);
        if self.commands.write_all(&close).await.is_ok() {
            let _ = tokio::time::timeout(BROWSER_PATIENCE, self.child.wait()).await;
        }
    }
}
