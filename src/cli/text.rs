//! Text for people: the `status` and `stats` tables, the alarm and breaker lists and the
//! health report (the detail page of one process is in `details`). Pure functions of
//! the figures. Numbers are right-aligned so that magnitudes line up, an unknown figure is
//! `-`, and times are the database's UTC, to the second. Every cell goes through
//! [`printable`], the one escaping of database text.

use chrono::NaiveDateTime;

use crate::printable::printable;
use crate::report::health::{HealthReport, Verdict};
use crate::report::lists::AlarmEntry;
use crate::report::timestamp;
use crate::report::{BreakerView, ProcessRef, ProcessReport, ProcessView};

/// Which side of its column a cell keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
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
    let view = &report.view;
    let usage = view.usage.as_ref();
    vec![
        view.process.name.clone(),
        alive(view.alive),
        or_dash(view.pid),
        or_dash(view.restarts),
        or_dash(view.last_restart.map(timestamp)),
        fixed(report.uptime.hour, 1),
        fixed(report.uptime.day, 1),
        fixed(report.uptime.week, 1),
        fixed(report.recovery.mttr_s, 1),
        fixed(report.recovery.success_pct, 1),
        fixed(usage.and_then(|u| u.avg_cpu_pct), 1),
        fixed(report.max_cpu_pct, 1),
        fixed(usage.and_then(|u| u.avg_mem_pct), 1),
        fixed(usage.and_then(|u| u.max_mem_pct), 1),
        fixed(usage.and_then(|u| u.avg_response_ms), 0),
        fixed(usage.and_then(|u| u.last_response_ms), 0),
    ]
}

const STATUS_COLUMNS: [(&str, Align); 12] = [
    ("NAME", Align::Left),
    ("ALIVE", Align::Left),
    ("PID", Align::Right),
    ("ALARM", Align::Left),
    ("BREAKER", Align::Left),
    ("LAST RESTART (UTC)", Align::Left),
    ("RESTARTS", Align::Right),
    ("CPU %", Align::Right),
    ("MEM %", Align::Right),
    ("RESP ms", Align::Right),
    ("DEPENDS ON", Align::Left),
    ("WAITING FOR", Align::Left),
];

/// The `status` table: one row per process of the host.
pub fn status_text(processes: &[ProcessView]) -> String {
    let lines: Vec<Vec<String>> = processes
        .iter()
        .map(|view| {
            let usage = view.usage.as_ref();
            vec![
                view.process.name.clone(),
                alive(view.alive),
                or_dash(view.pid),
                if view.alarm { "ALARM" } else { "-" }.to_owned(),
                view.breaker.state.as_str().to_owned(),
                or_dash(view.last_restart.map(timestamp)),
                view.restarts.unwrap_or(0).to_string(),
                fixed(usage.and_then(|u| u.last_cpu_pct), 1),
                fixed(usage.and_then(|u| u.last_mem_pct), 1),
                fixed(usage.and_then(|u| u.last_response_ms), 0),
                match view.dependencies.is_empty() {
                    true => "-".to_owned(),
                    false => view.dependencies.join(","),
                },
                or_dash(view.waiting_for.as_deref()),
            ]
        })
        .collect();
    table(&STATUS_COLUMNS, &lines)
}

/// `alarm list`: every process of `PROCESE` with its alarm and note.
pub fn alarm_list(entries: &[AlarmEntry]) -> String {
    let lines: Vec<Vec<String>> = entries
        .iter()
        .map(|entry| {
            vec![
                entry.process.process_id.to_string(),
                entry.process.name.clone(),
                if entry.alarm { "ALARM" } else { "-" }.to_owned(),
                entry.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let columns = [
        ("ID", Align::Right),
        ("NAME", Align::Left),
        ("ALARM", Align::Left),
        ("NOTES", Align::Left),
    ];
    table(&columns, &lines)
}

/// `breaker list`: every breaker, with when an open one lets a trial through.
pub fn breaker_list(breakers: &[(ProcessRef, BreakerView)]) -> String {
    let lines: Vec<Vec<String>> = breakers
        .iter()
        .map(|(process, breaker)| {
            vec![
                process.name.clone(),
                breaker.state.as_str().to_owned(),
                breaker.failures.to_string(),
                or_dash(breaker.opened_at.map(crate::note::timestamp)),
                or_dash(breaker.reopens_at.map(crate::note::timestamp)),
            ]
        })
        .collect();
    let columns = [
        ("NAME", Align::Left),
        ("STATE", Align::Left),
        ("FAILURES", Align::Right),
        ("OPENED (UTC)", Align::Left),
        ("TRIAL FROM (UTC)", Align::Left),
    ];
    table(&columns, &lines)
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

pub(super) fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// `value` with `decimals` decimals, rounded half away from zero as the JSON document rounds
/// (formatting alone rounds exact halves to even: 3.25 would read 3.2 here and 3.3 there).
pub(super) fn fixed(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(
        || "-".to_owned(),
        |value| {
            let scale = 10f64.powi(i32::try_from(decimals).unwrap_or(i32::MAX));
            let rounded = (value * scale).round() / scale;
            format!("{rounded:.decimals$}")
        },
    )
}

pub(super) fn alive(value: Option<bool>) -> String {
    match value {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
    .to_owned()
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
        let columns = [("NAME", Align::Left), ("N", Align::Right)];
        let rows = vec![vec!["\u{1b}[2J".to_owned(), "1".to_owned()]];
        assert_eq!(table(&columns, &rows), "NAME     N\n\\x1b[2J  1\n");
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
