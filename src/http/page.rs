//! The status page: one self-contained HTML document (an inline style, no script, nothing
//! fetched from elsewhere) with the host's processes in a table and a Refresh button.
//!
//! Every text that comes from the database or the configuration is escaped: process names
//! are whatever other systems wrote into `PROCESE`.

use std::fmt::Write;

use super::chart::{self, outages_within, outcome};
use crate::report::health::Verdict;
use crate::report::history::TableHistory;
use crate::report::timestamp;
use crate::report::{HostView, ProcessView};

/// Shown for a figure that is not known.
const UNKNOWN: &str = "—";

/// Alarms red, open breakers amber, a low health score red; legible in print and on a phone.
pub(super) const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1a1a1a;background:#fff}\
h1{font-size:1.4rem;margin:0 0 .5rem}\
.summary{margin:.25rem 0}\
.summary span{margin-right:1.5rem}\
form{margin:1rem 0}\
button{font-size:1rem;padding:.4rem 1.2rem;cursor:pointer}\
table{border-collapse:collapse;width:100%}\
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;white-space:nowrap}\
th{background:#f0f0f0}\
td.number{text-align:right;font-variant-numeric:tabular-nums}\
tr.breaker-open td{background:#ffe8b3}\
tr.alarm td{background:#ffd6d6}\
td.alarm,.low{color:#a00000;font-weight:bold}\
td.breaker-open{color:#8a5a00;font-weight:bold}\
td.dead{color:#a00000}\
td.why{white-space:normal;min-width:16rem}\
td a{color:inherit}\
footer{margin-top:1rem;font-size:.9rem;color:#555}";

const COLUMNS: [&str; 14] = [
    "name",
    "alive",
    "pid",
    "alarm",
    "breaker",
    "last restart",
    "restarts",
    "cpu %",
    "mem %",
    "response ms",
    "updated",
    "last outcome",
    "why",
    "last 24 h",
];

/// The page for `status`, without history (the unit tests' page).
#[cfg(test)]
pub fn render(status: &HostView) -> String {
    render_with(status, &TableHistory::default())
}

/// The page for `status`, with each process's last day and last restart from `history`.
pub fn render_with(status: &HostView, history: &TableHistory) -> String {
    let mut html = String::with_capacity(2048 + status.processes.len() * 400);
    let host = escape(&status.host);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(html, "<title>monitor_service on {host}</title>");
    let _ = writeln!(html, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(html, "<h1>monitor_service on {host}</h1>");
    summary(&mut html, status);
    html.push_str(
        "<form method=\"post\" action=\"/refresh\">\
         <button type=\"submit\" id=\"refresh\">Refresh</button> \
         checks every process now and shows the result</form>\n",
    );
    table(&mut html, &status.processes, history);
    html.push_str(
        "<footer>Also: <a href=\"/process_stats\">/process_stats</a> · \
         <a href=\"/health\">/health</a> · <a href=\"/metrics\">/metrics</a></footer>\n\
         </body>\n</html>\n",
    );
    html
}

fn summary(html: &mut String, status: &HostView) {
    let start = status
        .monitor_start
        .map_or_else(|| "never".to_owned(), timestamp);
    let health = &status.health;
    let (class, score) = match (health.verdict(), health.total) {
        (Verdict::Low, Some(total)) => (" class=\"low\"", format!("{total:.3} (low)")),
        (_, Some(total)) => ("", format!("{total:.3}")),
        _ => ("", "no score yet".to_owned()),
    };
    let alarms = status.processes.iter().filter(|p| p.alarm).count();
    let _ = writeln!(
        html,
        "<p class=\"summary\"><span>Monitor started: <b id=\"monitor-start\">{start}</b></span>\
         <span>Health score: <b id=\"health-score\"{class}>{score}</b> \
         (threshold {threshold})</span>\
         <span>Processes: {count}, in alarm: <b id=\"alarm-count\">{alarms}</b></span></p>",
        threshold = health.threshold,
        count = status.processes.len(),
    );
}

fn table(html: &mut String, processes: &[ProcessView], history: &TableHistory) {
    html.push_str("<table id=\"processes\">\n<thead><tr>");
    for column in COLUMNS {
        let _ = write!(html, "<th>{column}</th>");
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    if processes.is_empty() {
        let _ = writeln!(
            html,
            "<tr><td colspan=\"{}\">No process of this host in PROCESE.</td></tr>",
            COLUMNS.len()
        );
    }
    for process in processes {
        row(html, process);
        history_cells(html, process, history);
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody>\n</table>\n");
}

fn row(html: &mut String, process: &ProcessView) {
    let name = escape(&process.process.name);
    let open = process.breaker.is_open();
    let class = match (process.alarm, open) {
        (true, _) => " class=\"alarm\"",
        (false, true) => " class=\"breaker-open\"",
        (false, false) => "",
    };
    let link = path_segment(&process.process.name);
    let _ = write!(
        html,
        "<tr{class} data-process=\"{name}\"><td><a href=\"/process/{link}\">{name}</a></td>"
    );
    match process.alive {
        Some(true) => html.push_str("<td class=\"alive\">yes</td>"),
        Some(false) => html.push_str("<td class=\"dead\">no</td>"),
        None => cell(html, "", UNKNOWN),
    }
    number(html, process.pid.map(|pid| pid.to_string()));
    if process.alarm {
        cell(html, "alarm", "ALARM");
    } else {
        cell(html, "", "no");
    }
    let breaker = process.breaker.state.as_str();
    cell(html, if open { "breaker-open" } else { "" }, breaker);
    let last_restart = process.restarts.map(|_| {
        process
            .last_restart
            .map_or_else(|| "never".to_owned(), timestamp)
    });
    cell(html, "", last_restart.as_deref().unwrap_or(UNKNOWN));
    number(html, process.restarts.map(|n| n.to_string()));
    let usage = process.usage.as_ref();
    number(html, decimals(usage.and_then(|u| u.last_cpu_pct), 1));
    number(html, decimals(usage.and_then(|u| u.last_mem_pct), 1));
    number(html, decimals(usage.and_then(|u| u.last_response_ms), 0));
    let updated = usage.map(|u| timestamp(u.updated_at));
    cell(html, "updated", updated.as_deref().unwrap_or(UNKNOWN));
}

/// The cells a new user asked for: how the last restart went, why a process is in alarm and
/// until when its breaker holds, and its last day.
fn history_cells(html: &mut String, process: &ProcessView, history: &TableHistory) {
    let id = process.process.process_id;
    match history.last_restart.get(&id) {
        Some(last) => {
            let class = match last.success {
                Some(false) => "failed",
                _ => "outcome",
            };
            let _ = write!(
                html,
                "<td class=\"{class}\">{} at {}</td>",
                outcome(last.success),
                timestamp(last.at)
            );
        }
        None => cell(html, "outcome", UNKNOWN),
    }
    let mut why = String::new();
    if process.alarm {
        why.push_str(&escape(process.note.as_deref().unwrap_or_default()));
    }
    if let (true, Some(until)) = (process.breaker.is_open(), process.breaker.reopens_at) {
        // The daemon's own note for an open breaker already says until when.
        let until = until.format("%Y-%m-%d %H:%M:%S").to_string();
        if !why.contains(&until) {
            let separator = if why.is_empty() { "" } else { " · " };
            let _ = write!(why, "{separator}breaker open until {until} UTC");
        }
    }
    cell(html, "why", &why);
    let Some(now) = history.now else {
        return cell(html, "strip", UNKNOWN);
    };
    let since = now - chrono::Duration::hours(24);
    let span = (now - since).num_seconds() as f64;
    let known_from = process
        .usage
        .as_ref()
        .map(|usage| ((usage.first_seen - since).num_milliseconds() as f64 / 1000.0).max(0.0));
    let outages = history
        .outages
        .get(&id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let outages = outages_within(outages, since, now);
    let _ = write!(
        html,
        "<td class=\"strip\">{}</td>",
        chart::strip(span, known_from, &outages)
    );
}

/// `name` as one segment of a URL path: unreserved characters as they are, every other byte
/// percent-encoded.
pub fn path_segment(name: &str) -> String {
    let mut segment = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@:".contains(&byte) {
            segment.push(char::from(byte));
        } else {
            let _ = write!(segment, "%{byte:02X}");
        }
    }
    segment
}

/// A cell of text that is already safe: fixed words, numbers and times.
fn cell(html: &mut String, class: &str, text: &str) {
    if class.is_empty() {
        let _ = write!(html, "<td>{text}</td>");
    } else {
        let _ = write!(html, "<td class=\"{class}\">{text}</td>");
    }
}

fn number(html: &mut String, text: Option<String>) {
    cell(html, "number", text.as_deref().unwrap_or(UNKNOWN));
}

fn decimals(value: Option<f64>, places: usize) -> Option<String> {
    value
        .filter(|v| v.is_finite())
        .map(|v| format!("{v:.places$}"))
}

/// Text made safe for HTML element content and quoted attribute values; control characters
/// are spelled out as the terminal commands spell them (`\x1b`), so that `curl` of the page
/// to a terminal is as safe as a browser.
pub fn escape(text: &str) -> String {
    let text = crate::printable::printable(text);
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerState;
    use crate::report::HealthReport;
    use crate::report::view::tests::{at, view};

    fn process(name: &str, alarm: bool, breaker: BreakerState) -> ProcessView {
        view(1, name, alarm, breaker, true)
    }

    fn status(processes: Vec<ProcessView>) -> HostView {
        HostView {
            host: "web<1>".to_owned(),
            monitor_start: Some(at(9, 30, 0)),
            health: HealthReport::new("web<1>", None, 0.5),
            processes,
        }
    }

    #[test]
    fn escape_spells_out_control_characters() {
        assert_eq!(escape("a\u{1b}]0;x\u{7}<"), "a\\x1b]0;x\\x07&lt;");
    }

    #[test]
    fn escape_turns_markup_into_text() {
        assert_eq!(
            escape("<b a='1'>\"x\" & y</b>"),
            "&lt;b a=&#39;1&#39;&gt;&quot;x&quot; &amp; y&lt;/b&gt;"
        );
        assert_eq!(escape("plain-name_1"), "plain-name_1");
    }

    #[test]
    fn rows_in_alarm_are_red_and_open_breakers_amber() {
        let page = render(&status(vec![
            process("api", true, BreakerState::Open),
            process("db", false, BreakerState::HalfOpen),
            process("web", false, BreakerState::Closed),
        ]));
        assert!(
            page.contains("<tr class=\"alarm\" data-process=\"api\">"),
            "{page}"
        );
        assert!(page.contains("<tr class=\"breaker-open\" data-process=\"db\">"));
        assert!(page.contains("<tr data-process=\"web\">"));
        assert!(page.contains("<td class=\"alarm\">ALARM</td>"));
        assert!(page.contains("<td class=\"breaker-open\">half_open</td>"));
    }

    #[test]
    fn names_from_the_database_are_escaped_everywhere() {
        let page = render(&status(vec![process(
            "<script>x</script>\"",
            false,
            BreakerState::Closed,
        )]));
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("data-process=\"&lt;script&gt;x&lt;/script&gt;&quot;\""));
        assert!(page.contains("<title>monitor_service on web&lt;1&gt;</title>"));
    }

    #[test]
    fn the_page_shows_the_figures_and_needs_nothing_from_elsewhere() {
        let page = render(&status(vec![process("api", false, BreakerState::Closed)]));
        let row = page
            .split("data-process=\"api\">")
            .nth(1)
            .and_then(|rest| rest.split("</tr>").next())
            .expect("the row of api");
        assert_eq!(
            row,
            "<td><a href=\"/process/api\">api</a></td><td class=\"alive\">yes</td>\
             <td class=\"number\">4242</td><td>no</td>\
             <td>closed</td><td>never</td><td class=\"number\">2</td>\
             <td class=\"number\">2.4</td><td class=\"number\">1.2</td>\
             <td class=\"number\">12</td><td class=\"updated\">2024-05-01 12:00:05</td>\
             <td class=\"outcome\">—</td><td class=\"why\"></td><td class=\"strip\">—</td>"
        );
        assert!(page.contains("<b id=\"monitor-start\">2024-05-01 09:30:00</b>"));
        assert!(page.contains("<b id=\"health-score\">no score yet</b>"));
        assert!(page.contains("<form method=\"post\" action=\"/refresh\">"));
        for outside in [
            "<script", "<link", "src=", "http://", "https://", "@import", "url(",
        ] {
            assert!(!page.contains(outside), "the page contains {outside}");
        }
    }

    #[test]
    fn a_process_not_sampled_yet_shows_unknown_figures() {
        let unsampled = view(1, "api", false, BreakerState::Closed, false);
        let page = render(&status(vec![unsampled]));
        assert!(page.contains("api</a></td><td>—</td><td class=\"number\">—</td><td>no</td>"));
    }

    #[test]
    fn a_process_in_alarm_says_why_until_when_and_how_its_last_restart_went() {
        use crate::report::history::{Outage, RestartMark};
        let mut api = process("api", true, BreakerState::Open);
        api.note = Some("restart failed: <exit 1>".into());
        api.breaker.reopens_at = Some(at(13, 0, 0).and_utc());
        let mut history = TableHistory {
            now: Some(at(12, 30, 0)),
            ..TableHistory::default()
        };
        let failed = RestartMark {
            at: at(12, 0, 0),
            success: Some(false),
            error: Some("exit 1".into()),
        };
        history.last_restart.insert(1, failed);
        let outage = Outage {
            down_at: at(11, 0, 0),
            up_at: None,
        };
        history.outages.insert(1, vec![outage]);
        let page = render_with(&status(vec![api]), &history);
        assert!(
            page.contains("<td class=\"failed\">failed at 2024-05-01 12:00:00</td>"),
            "{page}"
        );
        assert!(
            page.contains(
                "<td class=\"why\">restart failed: &lt;exit 1&gt; · breaker open until \
             2024-05-01 13:00:00 UTC</td>"
            ),
            "{page}"
        );
        assert!(page.contains("<rect class=\"down\""), "{page}");
    }

    #[test]
    fn links_to_a_process_encode_its_name() {
        assert_eq!(path_segment("api-1.x@h:2"), "api-1.x@h:2");
        assert_eq!(path_segment("a b/<c>"), "a%20b%2F%3Cc%3E");
    }

    #[test]
    fn an_empty_host_says_so() {
        let page = render(&status(Vec::new()));
        assert!(page.contains("No process of this host in PROCESE."));
    }
}
