//! The detail page of `stats NAME`: every figure of one process on a line of its own, then
//! its latest restart events. A pure function of the report, like [`super::text`], whose
//! table and cell helpers it uses.

use chrono::NaiveDateTime;

use super::text::{Align, alive, fixed, or_dash, table};
use crate::printable::printable;
use crate::report::timestamp;
use crate::report::{ProcessReport, RestartEvent, RestartOutcome};

/// The detail page of `stats NAME`: every figure on a line of its own, then the latest
/// restart events.
pub fn process_details(
    host: &str,
    monitor_start: Option<NaiveDateTime>,
    report: &ProcessReport,
    events: &[RestartEvent],
) -> String {
    let view = &report.view;
    let mut lines: Vec<(&str, String)> = vec![
        (
            "process",
            format!("{} (id {})", view.process.name, view.process.process_id),
        ),
        ("host", host.to_owned()),
        ("monitor started", or_dash(monitor_start.map(timestamp))),
    ];
    if view.usage.is_none() {
        lines.push((
            "statistics",
            format!("none: not sampled on host {host} yet"),
        ));
    }
    lines.extend(state_lines(report));
    lines.extend(usage_lines(report));
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

/// A figure with its unit, or `-`.
fn unit(value: Option<f64>, decimals: usize, unit: &str) -> String {
    match value {
        Some(_) => format!("{} {unit}", fixed(value, decimals)),
        None => "-".to_owned(),
    }
}

/// Liveness, restarts and the availability figures.
fn state_lines(report: &ProcessReport) -> Vec<(&'static str, String)> {
    let view = &report.view;
    let usage = view.usage.as_ref();
    let recovery = &report.recovery;
    let failures = report.failures.as_ref();
    vec![
        (
            "monitored since",
            or_dash(usage.map(|u| timestamp(u.first_seen))),
        ),
        (
            "sampled at",
            or_dash(usage.map(|u| timestamp(u.updated_at))),
        ),
        ("alive", alive(view.alive)),
        ("pid", or_dash(view.pid)),
        ("restarts", or_dash(view.restarts)),
        (
            "last restart",
            match view.restarts {
                Some(_) => view
                    .last_restart
                    .map_or_else(|| "never".to_owned(), timestamp),
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
    ]
}

/// CPU, memory and response times.
fn usage_lines(report: &ProcessReport) -> Vec<(&'static str, String)> {
    let usage = report.view.usage.as_ref();
    vec![
        ("cpu avg", unit(usage.and_then(|u| u.avg_cpu_pct), 1, "%")),
        ("cpu max", unit(report.max_cpu_pct, 1, "%")),
        ("cpu last", unit(usage.and_then(|u| u.last_cpu_pct), 1, "%")),
        ("mem avg", unit(usage.and_then(|u| u.avg_mem_pct), 1, "%")),
        ("mem max", unit(usage.and_then(|u| u.max_mem_pct), 1, "%")),
        ("mem last", unit(usage.and_then(|u| u.last_mem_pct), 1, "%")),
        (
            "response avg",
            unit(usage.and_then(|u| u.avg_response_ms), 0, "ms"),
        ),
        (
            "response max",
            unit(usage.and_then(|u| u.max_response_ms), 0, "ms"),
        ),
        (
            "response last",
            unit(usage.and_then(|u| u.last_response_ms), 0, "ms"),
        ),
    ]
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
    fn durations_read_in_their_two_largest_units() {
        assert_eq!(human_duration(4.24), "4.2s");
        assert_eq!(human_duration(200.0), "3m 20s");
        assert_eq!(human_duration(5400.0), "1h 30m");
        assert_eq!(human_duration(93_780.0), "1d 2h");
        assert_eq!(human_duration(86_400.0), "1d");
        assert_eq!(long_duration(Some(5400.0)), "5400 s (1h 30m)");
        assert_eq!(long_duration(None), "-");
    }
}
