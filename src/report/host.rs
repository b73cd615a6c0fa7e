//! The one read of a host's processes for operators: [`read_host`] (and [`read_process`] for
//! one of them) returns each process with its alarm, note, breaker, restarts, liveness and
//! usage ([`super::view`]), and every surface (`status`, `stats`, `stats --json`, the shell, `GET /`,
//! `/process_stats`, `/health`, `/metrics`) formats that same [`HostView`].
//!
//! Where each figure comes from, the one rule every surface follows:
//! - A process this host handles (configured here or allowed by `allow_unconfigured`): alive
//!   and PID from a scan of the process table at the moment of the read, with the process's
//!   configured matcher (unknown for a name that is never acted on, and when `/proc` cannot
//!   be read); restarts and the last restart from the successful `RESTART_EVENTS` of this
//!   host. So right after a restart every surface shows the new PID and the new count,
//!   without waiting for the next sample.
//! - A process this host no longer handles but has statistics of: the sampler's last record
//!   (`PROCESS_STATS`), as it wrote it, since there is no matcher to scan with.
//! - CPU, memory, response times and their averages always come from `PROCESS_STATS`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{AssertSqlSafe, FromRow};

use super::health::latest_health;
use super::read::monitor_start;
use super::view::{BreakerView, HostView, ProcessView, Usage, breaker_policy};
use super::{ProcessRef, ReportError};
use crate::breaker::{BreakerPolicy, CircuitBreaker};
use crate::config::{Config, ProcessConfig};
use crate::db::Database;
use crate::db::breaker::breaker_from_row;
use crate::process::ProcessTable;

/// Reads the state of the host named by `config`.
pub async fn read_host(db: &Database, config: &Config) -> Result<HostView, ReportError> {
    let host = config.monitor.host.as_str();
    // One statement after the other: the page must not take more than one connection of the
    // pool, which the poller and the sampler share.
    let monitor_start = monitor_start(db, host).await?;
    let health = latest_health(db, host, config.health.threshold).await?;
    let processes = read_processes(db, config, None).await?;
    Ok(HostView {
        host: host.to_owned(),
        monitor_start,
        health,
        processes,
    })
}

/// One process of `PROCESE`, shown whether this host handles it or not.
pub async fn read_process(
    db: &Database,
    config: &Config,
    process: &ProcessRef,
) -> Result<ProcessView, ReportError> {
    let mut views = read_processes(db, config, Some(process.process_id)).await?;
    Ok(views.pop().unwrap_or_else(|| ProcessView {
        process: process.clone(),
        alive: None,
        pid: None,
        alarm: false,
        note: None,
        breaker: BreakerView::new(CircuitBreaker::default(), breaker_policy(config)),
        restarts: None,
        last_restart: None,
        usage: None,
        dependencies: Vec::new(),
        waiting_for: None,
    }))
}

/// A row of `PROCESE` with everything the view holds of it.
#[derive(Debug, Default, FromRow)]
struct ProcessRow {
    process_id: i32,
    process_name: String,
    alarm: i64,
    notes: Option<String>,
    breaker_state: Option<String>,
    breaker_failures: Option<i32>,
    breaker_opened_at: Option<DateTime<Utc>>,
    restarts: Option<i64>,
    last_restart: Option<NaiveDateTime>,
    sampled_alive: Option<bool>,
    sampled_pid: Option<i32>,
    sampled_last_restart: Option<NaiveDateTime>,
    sampled_restarts: Option<i32>,
    avg_response_ms: Option<f64>,
    max_response_ms: Option<f64>,
    last_response_ms: Option<f64>,
    avg_mem_pct: Option<f64>,
    max_mem_pct: Option<f64>,
    last_mem_pct: Option<f64>,
    avg_cpu_pct: Option<f64>,
    last_cpu_pct: Option<f64>,
    first_seen: Option<NaiveDateTime>,
    updated_at: Option<NaiveDateTime>,
}

const PROCESS_SELECT: &str = "SELECT p.process_id, p.process_name, \
     CAST(COALESCE(s.alarma, 0) <> 0 AS SIGNED) AS alarm, s.notes, \
     CAST(b.state AS CHAR) AS breaker_state, b.consecutive_failures AS breaker_failures, \
     b.opened_at AS breaker_opened_at, r.restarts, r.last_restart, \
     st.alive AS sampled_alive, st.pid AS sampled_pid, \
     st.last_restart AS sampled_last_restart, st.total_restarts AS sampled_restarts, \
     st.avg_response_ms, st.max_response_ms, st.last_response_ms, st.avg_mem_pct, \
     st.max_mem_pct, st.last_mem_pct, st.avg_cpu_pct, st.last_cpu_pct, st.first_seen, \
     st.updated_at \
     FROM PROCESE p \
     LEFT JOIN STATUS_PROCESS s ON s.process_id = p.process_id \
     LEFT JOIN CIRCUIT_BREAKER b ON b.process_id = p.process_id \
     LEFT JOIN PROCESS_STATS st ON st.process_id = p.process_id AND st.host = ? \
     LEFT JOIN (SELECT process_id, COUNT(*) AS restarts, MAX(finished_at) AS last_restart \
                FROM RESTART_EVENTS WHERE host = ? AND success = 1 GROUP BY process_id) r \
       ON r.process_id = p.process_id";

/// The processes to show, of all `PROCESE` or of one id: those this host handles, and any
/// other this host's sampler has statistics for.
async fn read_processes(
    db: &Database,
    config: &Config,
    process_id: Option<i32>,
) -> Result<Vec<ProcessView>, ReportError> {
    let host = config.monitor.host.as_str();
    // An i32 printed is only digits and a sign, so this text stays safe.
    let only = process_id.map_or_else(String::new, |id| format!(" WHERE p.process_id = {id}"));
    let sql = AssertSqlSafe(format!(
        "{PROCESS_SELECT}{only} ORDER BY p.process_name, p.process_id"
    ));
    let query = sqlx::query_as::<_, ProcessRow>(sql).bind(host).bind(host);
    let rows = db.run(query.fetch_all(db.pool())).await?;
    let live = scan(handled(config, &rows)).await;
    let mut views = views(rows, &live, breaker_policy(config));
    super::view::add_dependencies(config, &mut views);
    Ok(views)
}

/// The rows of processes this host is responsible for, with the settings to scan for them:
/// None for a name that is never acted on (not a valid process name), which is shown, its
/// alarm with it, but cannot be looked for.
fn handled(config: &Config, rows: &[ProcessRow]) -> Vec<(i32, Option<ProcessConfig>)> {
    rows.iter()
        .filter(|row| config.process(&row.process_name).is_some())
        .map(|row| (row.process_id, config.process_for(&row.process_name)))
        .collect()
}

/// The views of the rows that are this host's business, in the rows' order.
fn views(
    rows: Vec<ProcessRow>,
    live: &HashMap<i32, Scanned>,
    policy: BreakerPolicy,
) -> Vec<ProcessView> {
    rows.into_iter()
        .filter_map(|row| view(row, live, policy))
        .collect()
}

/// What the scan found of a process this host handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scanned {
    /// Running, with the PID of its oldest match.
    Running(i32),
    NotRunning,
    /// The process table could not be read, or the name is not one to look for.
    Unknown,
}

/// Scans the process table once for the handled processes, off the runtime's thread: reading
/// `/proc` blocks, and the daemon's status page must not hold up its other tasks.
async fn scan(handled: Vec<(i32, Option<ProcessConfig>)>) -> HashMap<i32, Scanned> {
    let ids: Vec<i32> = handled.iter().map(|(id, _)| *id).collect();
    let scan = tokio::task::spawn_blocking(move || {
        let table = ProcessTable::new().ok()?;
        let found = handled
            .iter()
            .map(|(id, process)| {
                let Some(process) = process else {
                    return (*id, Scanned::Unknown);
                };
                let found = table.find(&process.name, &process.matcher);
                let scanned = found
                    .first()
                    .map_or(Scanned::NotRunning, |p| Scanned::Running(p.pid));
                (*id, scanned)
            })
            .collect::<HashMap<_, _>>();
        Some(found)
    });
    match scan.await.ok().flatten() {
        Some(found) => found,
        None => ids.into_iter().map(|id| (id, Scanned::Unknown)).collect(),
    }
}

/// The view of one row by the rule of the module, or None when the process is none of this
/// host's business.
fn view(
    row: ProcessRow,
    live: &HashMap<i32, Scanned>,
    policy: BreakerPolicy,
) -> Option<ProcessView> {
    let usage = usage(&row);
    let (alive, pid, restarts, last_restart) = match live.get(&row.process_id) {
        Some(&scanned) => {
            let (alive, pid) = match scanned {
                Scanned::Running(pid) => (Some(true), Some(pid)),
                Scanned::NotRunning => (Some(false), None),
                Scanned::Unknown => (None, None),
            };
            (
                alive,
                pid,
                Some(row.restarts.unwrap_or(0)),
                row.last_restart,
            )
        }
        None if usage.is_some() => (
            row.sampled_alive,
            row.sampled_pid,
            row.sampled_restarts.map(i64::from),
            row.sampled_last_restart,
        ),
        None => return None,
    };
    let breaker = breaker_from_row(
        row.breaker_state.as_deref(),
        row.breaker_failures,
        row.breaker_opened_at,
    );
    Some(ProcessView {
        process: ProcessRef {
            process_id: row.process_id,
            name: row.process_name,
        },
        alive,
        pid,
        alarm: row.alarm != 0,
        note: row.notes,
        breaker: BreakerView::new(breaker, policy),
        restarts,
        last_restart,
        usage,
        dependencies: Vec::new(),
        waiting_for: None,
    })
}

fn usage(row: &ProcessRow) -> Option<Usage> {
    Some(Usage {
        avg_response_ms: row.avg_response_ms,
        max_response_ms: row.max_response_ms,
        last_response_ms: row.last_response_ms,
        avg_mem_pct: row.avg_mem_pct,
        max_mem_pct: row.max_mem_pct,
        last_mem_pct: row.last_mem_pct,
        avg_cpu_pct: row.avg_cpu_pct,
        last_cpu_pct: row.last_cpu_pct,
        first_seen: row.first_seen?,
        updated_at: row.updated_at?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerState;
    use crate::report::view::tests::at;

    fn config(text: &str) -> Config {
        let ini = format!("[database]\nuser = u\n\n[monitor]\nhost = web1\n{text}");
        Config::from_ini_text(std::path::Path::new("config.ini"), &ini, None)
            .expect("a valid config")
    }

    fn row(id: i32, name: &str, alarm: i64, breaker: Option<&str>, sampled: bool) -> ProcessRow {
        ProcessRow {
            process_id: id,
            process_name: name.to_owned(),
            alarm,
            breaker_state: breaker.map(str::to_owned),
            sampled_alive: sampled.then_some(true),
            first_seen: sampled.then(|| at(11, 0, 0)),
            updated_at: sampled.then(|| at(12, 0, 5)),
            ..ProcessRow::default()
        }
    }

    /// The views of `rows` with every handled process found not running.
    fn shown(config: &Config, rows: Vec<ProcessRow>) -> Vec<ProcessView> {
        let live = handled(config, &rows)
            .into_iter()
            .map(|(id, _)| (id, Scanned::NotRunning))
            .collect();
        views(rows, &live, breaker_policy(config))
    }

    #[test]
    fn every_process_of_the_host_is_shown_with_its_alarm_breaker_and_figures() {
        let rows = vec![
            row(1, "api", 0, Some("open"), true),
            row(2, "db", 3, None, false),
            row(3, "web", 0, Some("nonsense"), false),
        ];
        let shown = shown(&config(""), rows);
        let summary: Vec<_> = shown
            .iter()
            .map(|p| {
                (
                    p.process.name.as_str(),
                    p.alarm,
                    p.breaker.state,
                    p.usage.is_some(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("api", false, BreakerState::Open, true),
                ("db", true, BreakerState::Closed, false),
                ("web", false, BreakerState::Closed, false),
            ]
        );
        assert!(shown[0].breaker.is_open());
        assert_eq!(shown[1].alive, Some(false), "handled here: from the scan");
        assert_eq!(
            shown[1].restarts,
            Some(0),
            "handled here: from RESTART_EVENTS"
        );
    }

    #[test]
    fn processes_of_other_hosts_are_left_out_unless_sampled_here() {
        let config =
            config("allow_unconfigured = false\n\n[process.api]\n\n[process.db]\nhosts = other\n");
        let rows = vec![
            row(1, "api", 0, None, false),
            row(2, "db", 0, None, false),
            row(3, "stray", 0, None, false),
            row(4, "kept", 0, Some("half_open"), true),
        ];
        let shown = shown(&config, rows);
        let names: Vec<_> = shown.iter().map(|p| p.process.name.as_str()).collect();
        assert_eq!(names, ["api", "kept"]);
        assert!(shown[1].breaker.is_open());
        assert_eq!(
            shown[1].alive,
            Some(true),
            "not handled: the sampler's record"
        );
    }
}
