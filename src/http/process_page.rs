//! `GET /process/{name}`: one process's CPU %, memory % and response time over the last hour
//! (`?hours=24` for a day) as inline SVG charts, its restarts marked and its outages shaded,
//! and the restarts listed. Self-contained like the main page: no script, nothing fetched.

use std::fmt::Write;

use super::chart::{self, BUCKETS, Chart, Mark, Point, outages_within, outcome, seconds_between};
use super::page::{STYLE, escape};
use crate::report::history::{History, SamplePoint};
use crate::report::timestamp;

/// A chart's id, title, unit, and its value in a sample.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&SamplePoint) -> Option<f64>,
);

/// The longest history a page shows, a week: longer would read more samples than a page should.
pub const MOST_HOURS: u32 = 168;

/// The page of process `name` on `host` over `hours`.
pub fn render(host: &str, name: &str, hours: u32, history: &History) -> String {
    let (host, name) = (escape(host), escape(name));
    let mut html = String::with_capacity(16 * 1024);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(html, "<title>{name} on {host}</title>");
    let _ = writeln!(
        html,
        "<style>{STYLE}svg.chart{{display:block;max-width:100%;height:auto;margin:.3rem 0 1rem}}</style>\n</head>\n<body>"
    );
    let _ = writeln!(html, "<h1>{name} on {host}</h1>");
    let other = if hours == 1 {
        "<a href=\"?hours=24\">last 24 hours</a>"
    } else {
        "<a href=\"?hours=1\">last hour</a>"
    };
    let _ = writeln!(
        html,
        "<p class=\"summary\"><a href=\"/\">all processes</a> · last {hours} hour(s), {} to {} UTC · {other}</p>",
        timestamp(history.since),
        timestamp(history.now),
    );
    let span = seconds_between(history.since, history.now);
    let marks = marks(history);
    let outages = outages_within(&history.outages, history.since, history.now);
    let axis = axis(history, hours);
    let axis = [axis[0].as_str(), axis[1].as_str(), axis[2].as_str()];
    let series: [Series; 3] = [
        ("chart-cpu", "CPU", "% of one core", |s| s.cpu_pct),
        ("chart-memory", "Memory", "% of RAM", |s| s.mem_pct),
        ("chart-response", "Response time", "ms", |s| s.response_ms),
    ];
    for (id, title, unit, value) in series {
        let points = points(history, value);
        let points = chart::downsample(&points, span, BUCKETS);
        let _ = writeln!(html, "<h2>{title} ({unit})</h2>");
        html.push_str(&chart::svg(&Chart {
            id,
            title,
            unit,
            span,
            points: &points,
            marks: &marks,
            outages: &outages,
            axis,
        }));
        html.push('\n');
    }
    html.push_str(
        "<p class=\"legend\">Shaded: the process was down. Dashed lines: restarts \
         (green succeeded, red failed, amber running).</p>\n",
    );
    restarts_table(&mut html, history);
    html.push_str("</body>\n</html>\n");
    html
}

fn restarts_table(html: &mut String, history: &History) {
    html.push_str("<h2>Restarts</h2>\n<table id=\"restarts\">\n<thead><tr><th>at</th><th>outcome</th><th>error</th></tr></thead>\n<tbody>\n");
    if history.restarts.is_empty() {
        html.push_str("<tr><td colspan=\"3\">No restart in this time.</td></tr>\n");
    }
    for restart in &history.restarts {
        let error = restart.error.as_deref().map(escape).unwrap_or_default();
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{error}</td></tr>",
            timestamp(restart.at),
            outcome(restart.success)
        );
    }
    html.push_str("</tbody>\n</table>\n");
}

fn points(history: &History, value: fn(&SamplePoint) -> Option<f64>) -> Vec<Point> {
    let samples = history.samples.iter();
    samples
        .filter_map(|sample| {
            let v = value(sample).filter(|v| v.is_finite())?;
            Some(Point {
                t: seconds_between(history.since, sample.at),
                v,
            })
        })
        .collect()
}

fn marks(history: &History) -> Vec<Mark> {
    let restarts = history.restarts.iter();
    restarts
        .map(|restart| {
            let mut label = format!(
                "restart {} at {}",
                outcome(restart.success),
                timestamp(restart.at)
            );
            if let Some(error) = &restart.error {
                let _ = write!(label, ": {}", escape(error));
            }
            Mark {
                t: seconds_between(history.since, restart.at),
                success: restart.success,
                label,
            }
        })
        .collect()
}

fn axis(history: &History, hours: u32) -> [String; 3] {
    let format = if hours <= 1 { "%H:%M" } else { "%m-%d %H:%M" };
    let middle = history.since + (history.now - history.since) / 2;
    [history.since, middle, history.now].map(|at| at.format(format).to_string())
}
