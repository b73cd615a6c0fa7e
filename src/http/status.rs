//! What the status page and the metrics show: each process of this host with its alarm, its
//! circuit breaker and its current statistics, the monitor's start and the latest health score.
//!
//! The figures come from the report statements (`crate::report`). The one statement of its
//! own here reads `PROCESE` with each process's alarm and breaker, which no report needs.

use std::collections::HashMap;

use sqlx::FromRow;

use crate::breaker::BreakerState;
use crate::config::Config;
use crate::db::Database;
use crate::report::{self, CurrentStats, HealthReport, ProcessRef, ReportError};

/// The state of this host, as read at one request.
#[derive(Debug, Clone, PartialEq)]
pub struct HostStatus {
    pub host: String,
    /// When the monitor of this host started; None if it never ran.
    pub monitor_start: Option<chrono::NaiveDateTime>,
    pub health: HealthReport,
    /// By name, then process id.
    pub processes: Vec<ProcessStatus>,
}

/// One process of this host.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStatus {
    pub process_id: i32,
    /// As `PROCESE` holds it: any text, to be escaped wherever it is shown.
    pub name: String,
    /// `STATUS_PROCESS.alarma <> 0`.
    pub alarm: bool,
    /// The stored breaker; closed when the process has none.
    pub breaker: BreakerState,
    /// None until the sampler of this host has written the process's statistics.
    pub current: Option<CurrentStats>,
}

impl ProcessStatus {
    /// Whether the breaker keeps restarts from happening now, or allows only a trial.
    pub fn breaker_open(&self) -> bool {
        matches!(self.breaker, BreakerState::Open | BreakerState::HalfOpen)
    }
}

/// A row of `PROCESE` with its alarm and breaker.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct RosterRow {
    pub process_id: i32,
    pub process_name: String,
    pub alarm: i64,
    pub breaker: Option<String>,
}

/// Reads the status of the host named by `config`.
pub async fn host_status(db: &Database, config: &Config) -> Result<HostStatus, ReportError> {
    let host = config.monitor.host.as_str();
    // One statement after the other: the page must not take more than one connection of the
    // pool, which the poller and the sampler share.
    let monitor_start = report::monitor_start(db, host).await?;
    let health = report::latest_health(db, host, config.health.threshold).await?;
    let stats = report::host_stats(db, host).await?;
    let roster = roster(db).await?;
    Ok(HostStatus {
        host: host.to_owned(),
        monitor_start,
        health,
        processes: merge(config, roster, stats),
    })
}

/// Every process of `PROCESE`, with whether it is in alarm and its breaker's state.
async fn roster(db: &Database) -> Result<Vec<RosterRow>, ReportError> {
    let query = sqlx::query_as::<_, RosterRow>(
        "SELECT p.process_id, p.process_name, \
         CAST(COALESCE(s.alarma, 0) <> 0 AS SIGNED) AS alarm, \
         CAST(b.state AS CHAR) AS breaker \
         FROM PROCESE p \
         LEFT JOIN STATUS_PROCESS s ON s.process_id = p.process_id \
         LEFT JOIN CIRCUIT_BREAKER b ON b.process_id = p.process_id \
         ORDER BY p.process_name, p.process_id",
    );
    Ok(db.run(query.fetch_all(db.pool())).await?)
}

/// The processes to show: those of `PROCESE` that this host handles by its configuration, and
/// any other that this host's sampler has statistics for, in the roster's order.
pub fn merge(
    config: &Config,
    roster: Vec<RosterRow>,
    stats: Vec<(ProcessRef, CurrentStats)>,
) -> Vec<ProcessStatus> {
    let mut stats: HashMap<i32, CurrentStats> = stats
        .into_iter()
        .map(|(process, current)| (process.process_id, current))
        .collect();
    roster
        .into_iter()
        .filter_map(|row| {
            let current = stats.remove(&row.process_id);
            if current.is_none() && config.process(&row.process_name).is_none() {
                return None;
            }
            Some(ProcessStatus {
                process_id: row.process_id,
                // A state this version does not know reads as closed, as the restarter reads it.
                breaker: row
                    .breaker
                    .as_deref()
                    .and_then(|state| state.parse().ok())
                    .unwrap_or(BreakerState::Closed),
                alarm: row.alarm != 0,
                name: row.process_name,
                current,
            })
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveDateTime};
    use std::path::Path;

    pub fn at(hour: u32, minute: u32, second: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 5, 1)
            .and_then(|day| day.and_hms_opt(hour, minute, second))
            .expect("a valid time")
    }

    pub fn current() -> CurrentStats {
        CurrentStats {
            alive: true,
            pid: Some(4242),
            last_restart: None,
            total_restarts: 2,
            avg_response_ms: Some(12.0),
            max_response_ms: Some(20.0),
            last_response_ms: Some(11.6),
            avg_mem_pct: Some(1.25),
            max_mem_pct: Some(1.5),
            last_mem_pct: Some(1.25),
            avg_cpu_pct: Some(3.0),
            last_cpu_pct: Some(2.44),
            first_seen: at(11, 0, 0),
            updated_at: at(12, 0, 5),
        }
    }

    fn config(text: &str) -> Config {
        let ini = format!("[database]\nuser = u\n\n[monitor]\nhost = web1\n{text}");
        Config::from_ini_text(Path::new("config.ini"), &ini, None).expect("a valid config")
    }

    fn row(id: i32, name: &str, alarm: i64, breaker: Option<&str>) -> RosterRow {
        RosterRow {
            process_id: id,
            process_name: name.to_owned(),
            alarm,
            breaker: breaker.map(str::to_owned),
        }
    }

    fn sampled(id: i32, name: &str) -> (ProcessRef, CurrentStats) {
        let process = ProcessRef {
            process_id: id,
            name: name.to_owned(),
        };
        (process, current())
    }

    #[test]
    fn every_process_of_the_host_is_shown_with_its_alarm_breaker_and_figures() {
        let roster = vec![
            row(1, "api", 0, Some("open")),
            row(2, "db", 3, None),
            row(3, "web", 0, Some("nonsense")),
        ];
        let shown = merge(&config(""), roster, vec![sampled(1, "api")]);
        let summary: Vec<_> = shown
            .iter()
            .map(|p| (p.name.as_str(), p.alarm, p.breaker, p.current.is_some()))
            .collect();
        assert_eq!(
            summary,
            [
                ("api", false, BreakerState::Open, true),
                ("db", true, BreakerState::Closed, false),
                ("web", false, BreakerState::Closed, false),
            ]
        );
        assert!(shown[0].breaker_open());
    }

    #[test]
    fn processes_of_other_hosts_are_left_out_unless_sampled_here() {
        let config =
            config("allow_unconfigured = false\n\n[process.api]\n\n[process.db]\nhosts = other\n");
        let roster = vec![
            row(1, "api", 0, None),
            row(2, "db", 0, None),
            row(3, "stray", 0, None),
            row(4, "kept", 0, Some("half_open")),
        ];
        let shown = merge(&config, roster, vec![sampled(4, "kept")]);
        let names: Vec<_> = shown.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["api", "kept"]);
        assert!(shown[1].breaker_open());
    }
}
