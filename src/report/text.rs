//! Text for people: the `stats` table, the detail page of one process and the health report.
//! Pure functions of the figures. Numbers are right-aligned so that magnitudes line up, an
//! unknown figure is `-`, and times are the database's UTC, to the second. Database text is
//! shown through [`printable`], the one escaping of every text renderer.

use std::borrow::Cow;
use std::fmt::Write;

use chrono::NaiveDateTime;

use super::document::timestamp;
use super::health::{HealthReport, Verdict};
use super::read::{ProcessReport, RestartEvent, RestartOutcome};

/// Which side of its column a cell keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Text of the database made safe to print: control characters (C0, DEL, C1) and the
/// bidirectional controls are written as `\x1b` or `\u{202e}`. Other systems write
/// `PROCESE` and `STATUS_PROCESS`; a name holding `ESC ]0;...` must neither retitle nor
/// recolour the operator's terminal, and should show what it holds.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match u32::from(c) {
            _ if !needs_escape(c) => out.push(c),
            code @ 0..=0xFF => {
                let _ = write!(out, "\\x{code:02x}");
            }
            code => {
                let _ = write!(out, "\\u{{{code:x}}}");
            }
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Lays out `rows` under `columns` (title, alignment), two spaces apart, without trailing
/// spaces. Widths count characters, so names outside ASCII stay aligned. Every cell goes
/// through [`printable`].
pub fn table(columns: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| printable(cell).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = columns
        .iter()
        .map(|(title, _)| title.chars().count())
        .collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let titles: Vec<String> = columns.iter().map(|(title, _)| title.to_string()).collect();
    let mut out = String::new();
    for cells in std::iter::once(&titles).chain(&rows) {
        let line: Vec<String> = cells
            .iter()
            .zip(columns.iter().zip(&widths))
            .map(|(cell, ((_, align), width))| match align {
                Align::Left => format!("{cell:<width$}"),
                Align::Right => format!("{cell:>width$}"),
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

const STATS_COLUMNS: [(&str, Align); 16] = [
    ("NAME", Align::Left),
    ("ALIVE", Align::Left),
    ("PID", Align::Right),
    ("RESTARTS", Align::Right),
    ("LAST RESTART", Align::Left),
    ("UP 1H%", Align::Right),
    ("UP 24H%", Align::Right),
    ("UP 7D%", Align::Right),
    ("MTTR s", Align::Right),
    ("OK%", Align::Right),
    ("CPU AVG%", Align::Right),
    ("CPU MAX%", Align::Right),
    ("MEM AVG%", Align::Right),
    ("MEM MAX%", Align::Right),
    ("RESP AVG ms", Align::Right),
    ("RESP LAST ms", Align::Right),
];

/// The `stats` table: one row per process of the host.
pub fn stats_table(
    host: &str,
    monitor_start: Option<NaiveDateTime>,
    reports: &[ProcessReport],
) -> String {
    let mut out = heading(host, monitor_start);
    if reports.is_empty() {
        out.push_str(&format!(
            "no statistics for host {host} yet: the service samples its processes every \
             stats_interval seconds while it runs\n"
        ));
        return out;
    }
    let rows: Vec<Vec<String>> = reports.iter().map(stats_row).collect();
    out.push_str(&table(&STATS_COLUMNS, &rows));
    out
}

fn heading(host: &str, monitor_start: Option<NaiveDateTime>) -> String {
    match monitor_start {
        Some(start) => format!(
            "host {host}, monitor started {} (times in UTC)\n",
            timestamp(start)
        ),
        None => format!("host {host}, monitor never started here (times in UTC)\n"),
    }
}

fn stats_row(report: &ProcessReport) -> Vec<String> {
    let current = report.current.as_ref();
    vec![
        report.process.name.clone(),
        alive(current.map(|c| c.alive)),
        or_dash(current.and_then(|c| c.pid)),
        or_dash(current.map(|c| c.total_restarts)),
        or_dash(current.and_then(|c| c.last_restart).map(timestamp)),
        fixed(report.uptime.hour, 1),
        fixed(report.uptime.day, 1),
        fixed(report.uptime.week, 1),
        fixed(report.recovery.mttr_s, 1),
        fixed(report.recovery.success_pct, 1),
        fixed(current.and_then(|c| c.avg_cpu_pct), 1),
        fixed(report.max_cpu_pct, 1),
        fixed(current.and_then(|c| c.avg_mem_pct), 1),
        fixed(current.and_then(|c| c.max_mem_pct), 1),
        fixed(current.and_then(|c| c.avg_response_ms), 0),
        fixed(current.and_then(|c| c.last_response_ms), 0),
    ]
}

/// The detail page of `stats NAME`: every figure on a line of its own, then the latest
/// restart events.
pub fn process_details(
    host: &str,
    monitor_start: Option<NaiveDateTime>,
    report: &ProcessReport,
    events: &[RestartEvent],
) -> String {
    let current = report.current.as_ref();
    let recovery = &report.recovery;
    let failures = report.failures.as_ref();
    let unit = |value: Option<f64>, decimals: usize, unit: &str| match value {
        Some(_) => format!("{} {unit}", fixed(value, decimals)),
        None => "-".to_owned(),
    };
    let mut lines: Vec<(&str, String)> = vec![
        (
            "process",
            format!("{} (id {})", report.process.name, report.process.process_id),
        ),
        ("host", host.to_owned()),
        ("monitor started", or_dash(monitor_start.map(timestamp))),
    ];
    if current.is_none() {
        lines.push((
            "statistics",
            format!("none: not sampled on host {host} yet"),
        ));
    }
    lines.extend([
        (
            "monitored since",
            or_dash(current.map(|c| timestamp(c.first_seen))),
        ),
        (
            "sampled at",
            or_dash(current.map(|c| timestamp(c.updated_at))),
        ),
        ("alive", alive(current.map(|c| c.alive))),
        ("pid", or_dash(current.and_then(|c| c.pid))),
        ("restarts", or_dash(current.map(|c| c.total_restarts))),
        (
            "last restart",
            match current {
                Some(c) => c.last_restart.map_or_else(|| "never".to_owned(), timestamp),
                None => "-".to_owned(),
            },
        ),
        ("uptime 1h", unit(report.uptime.hour, 1, "%")),
        ("uptime 24h", unit(report.uptime.day, 1, "%")),
        ("uptime 7d", unit(report.uptime.week, 1, "%")),
        (
            "MTTR",
            with_count(
                unit(recovery.mttr_s, 1, "s"),
                recovery.recoveries,
                "restart",
            ),
        ),
        (
            "MTTR 24h",
            with_count(
                unit(recovery.mttr_24h_s, 1, "s"),
                recovery.recoveries_24h,
                "restart",
            ),
        ),
        (
            "restart success",
            match recovery.success_pct {
                Some(pct) => format!(
                    "{pct:.1} % ({} of {} finished)",
                    recovery.successes, recovery.events
                ),
                None => "-".to_owned(),
            },
        ),
        ("MTBF", long_duration(failures.and_then(|f| f.mtbf_s))),
        (
            "outages",
            match failures {
                Some(f) if f.outages > 0 => format!(
                    "{} ({} down in all)",
                    f.outages,
                    human_duration(f.downtime_s)
                ),
                Some(f) => f.outages.to_string(),
                None => "-".to_owned(),
            },
        ),
        ("cpu avg", unit(current.and_then(|c| c.avg_cpu_pct), 1, "%")),
        ("cpu max", unit(report.max_cpu_pct, 1, "%")),
        (
            "cpu last",
            unit(current.and_then(|c| c.last_cpu_pct), 1, "%"),
        ),
        ("mem avg", unit(current.and_then(|c| c.avg_mem_pct), 1, "%")),
        ("mem max", unit(current.and_then(|c| c.max_mem_pct), 1, "%")),
        (
            "mem last",
            unit(current.and_then(|c| c.last_mem_pct), 1, "%"),
        ),
        (
            "response avg",
            unit(current.and_then(|c| c.avg_response_ms), 0, "ms"),
        ),
        (
            "response max",
            unit(current.and_then(|c| c.max_response_ms), 0, "ms"),
        ),
        (
            "response last",
            unit(current.and_then(|c| c.last_response_ms), 0, "ms"),
        ),
    ]);
    let width = lines
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (label, value) in &lines {
        out.push_str(&format!("{label:<width$}  {}\n", printable(value)));
    }
    out.push('\n');
    out.push_str(&events_table(events));
    out
}

const EVENT_COLUMNS: [(&str, Align); 6] = [
    ("STARTED", Align::Left),
    ("TRIGGER", Align::Left),
    ("STRATEGY", Align::Left),
    ("ATTEMPTS", Align::Right),
    ("OUTCOME", Align::Left),
    ("ERROR", Align::Left),
];

fn events_table(events: &[RestartEvent]) -> String {
    if events.is_empty() {
        return "restart events: none\n".to_owned();
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|event| {
            vec![
                timestamp(event.started_at),
                event.trigger_source.clone(),
                or_dash(event.strategy.as_deref()),
                event.attempts.to_string(),
                match event.outcome {
                    RestartOutcome::Succeeded => "ok",
                    RestartOutcome::Failed => "FAILED",
                    RestartOutcome::Running => "running",
                }
                .to_owned(),
                or_dash(event.error.as_deref()),
            ]
        })
        .collect();
    format!(
        "latest restart events, newest first:\n{}",
        table(&EVENT_COLUMNS, &rows)
    )
}

/// The `health` report.
pub fn health_text(report: &HealthReport) -> String {
    let Some(computed_at) = &report.computed_at else {
        return format!(
            "host {}: no health score yet (the service computes it while it runs); \
             threshold {:.3}\n",
            report.host, report.threshold
        );
    };
    let verdict = match report.verdict() {
        Verdict::Ok => "ok",
        Verdict::Low => "LOW",
        Verdict::Unknown => "-",
    };
    let lines = [
        (
            "total",
            format!(
                "{}  {verdict} (threshold {:.3})",
                fixed(report.total, 3),
                report.threshold
            ),
        ),
        ("restart", fixed(report.restart, 3)),
        ("response", fixed(report.response, 3)),
        ("memory", fixed(report.memory, 3)),
        ("availability", fixed(report.availability, 3)),
        ("restarts in window", or_dash(report.restarts_in_window)),
    ];
    let mut out = format!("health of host {} at {computed_at} UTC\n", report.host);
    for (label, value) in lines {
        out.push_str(&format!("{label:<18}  {value}\n"));
    }
    out
}

fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// `value` with `decimals` decimals, rounded half away from zero as the JSON document rounds
/// (formatting alone rounds exact halves to even: 3.25 would read 3.2 here and 3.3 there).
fn fixed(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(
        || "-".to_owned(),
        |value| {
            let scale = 10f64.powi(i32::try_from(decimals).unwrap_or(i32::MAX));
            let rounded = (value * scale).round() / scale;
            format!("{rounded:.decimals$}")
        },
    )
}

fn alive(value: Option<bool>) -> String {
    match value {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
    .to_owned()
}

fn with_count(figure: String, count: i64, noun: &str) -> String {
    match count {
        0 => figure,
        1 => format!("{figure} over 1 {noun}"),
        n => format!("{figure} over {n} {noun}s"),
    }
}

/// Seconds, with days, hours and minutes beside them once they run past a minute.
fn long_duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".to_owned(),
        Some(s) if s < 60.0 => format!("{s:.1} s"),
        Some(s) => format!("{s:.0} s ({})", human_duration(s)),
    }
}

/// `1d 2h 5m`, `3m 20s`, `4.2s`: the two largest units are enough to read a duration.
fn human_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let total = seconds.round() as u64;
    let units = [
        (total / 86_400, "d"),
        (total % 86_400 / 3_600, "h"),
        (total % 3_600 / 60, "m"),
        (total % 60, "s"),
    ];
    let first = units.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    units[first..]
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_right_aligns_numbers_and_trims_line_ends() {
        let columns = [("NAME", Align::Left), ("PID", Align::Right)];
        let rows = vec![
            vec!["httpd".to_owned(), "7".to_owned()],
            vec!["x".to_owned(), "12345".to_owned()],
        ];
        assert_eq!(
            table(&columns, &rows),
            "NAME     PID\nhttpd      7\nx      12345\n"
        );
    }

    #[test]
    fn table_counts_characters_not_bytes() {
        let columns = [("NAME", Align::Left), ("N", Align::Right)];
        let rows = vec![vec!["café".to_owned(), "1".to_owned()]];
        assert_eq!(table(&columns, &rows), "NAME  N\ncafé  1\n");
    }

    #[test]
    fn database_text_prints_without_terminal_controls() {
        assert_eq!(printable("httpd"), "httpd");
        assert_eq!(printable("\u{1b}]0;pwned\u{7}"), "\\x1b]0;pwned\\x07");
        assert_eq!(printable("a\u{9b}b\u{202e}c\td"), "a\\x9bb\\u{202e}c\\x09d");
        assert_eq!(printable("café ✗"), "café ✗");
        let columns = [("NAME", Align::Left), ("N", Align::Right)];
        let rows = vec![vec!["\u{1b}[2J".to_owned(), "1".to_owned()]];
        assert_eq!(table(&columns, &rows), "NAME     N\n\\x1b[2J  1\n");
    }

    #[test]
    fn durations_read_in_their_two_largest_units() {
        assert_eq!(human_duration(4.24), "4.2s");
        assert_eq!(human_duration(200.0), "3m 20s");
        assert_eq!(human_duration(5400.0), "1h 30m");
        assert_eq!(human_duration(93_780.0), "1d 2h");
        assert_eq!(human_duration(86_400.0), "1d");
        assert_eq!(long_duration(Some(5400.0)), "5400 s (1h 30m)");
        assert_eq!(long_duration(None), "-");
    }

    #[test]
    fn unknown_figures_are_dashes() {
        assert_eq!(fixed(None, 1), "-");
        assert_eq!(fixed(Some(66.666), 1), "66.7");
        assert_eq!(fixed(Some(3.25), 1), "3.3", "as the JSON document rounds");
        assert_eq!(fixed(Some(0.5), 0), "1");
        assert_eq!(or_dash(None::<i32>), "-");
        assert_eq!(alive(None), "-");
    }
}
