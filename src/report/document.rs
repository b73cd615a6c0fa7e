//! The statistics document, as `stats --json` prints it and `GET /process_stats` serves it:
//! `monitorTimeOfStart` and, per process, `procStats` with the figures of the host's view
//! ([`super::host`]). Its key names are fixed: other systems read them (README.md lists them).

use chrono::NaiveDateTime;
use serde::Serialize;

use super::host::{read_host, read_process};
use super::lists::resolve;
use super::read::monitor_start;
use super::view::{HostView, ProcessView};
use super::{ReportError, timestamp};
use crate::config::Config;
use crate::db::Database;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatisticsDocument {
    /// When the monitor of the host started; null if it never ran.
    #[serde(rename = "monitorTimeOfStart")]
    pub monitor_time_of_start: Option<String>,
    #[serde(rename = "procStats")]
    pub proc_stats: Vec<ProcStats>,
}

/// One process in the document. Unknown figures are null; response times are whole
/// milliseconds and percentages have one decimal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcStats {
    #[serde(rename = "procName")]
    pub proc_name: String,
    pub alive: Option<bool>,
    /// The last successful restart, or the monitor's start when there was none.
    #[serde(rename = "lastRestart")]
    pub last_restart: Option<String>,
    #[serde(rename = "totalRestarts")]
    pub total_restarts: Option<i64>,
    #[serde(rename = "avgResponseTimeMS")]
    pub avg_response_time_ms: Option<i64>,
    #[serde(rename = "maxResponseTimeMS")]
    pub max_response_time_ms: Option<i64>,
    #[serde(rename = "lastResponseTimeMS")]
    pub last_response_time_ms: Option<i64>,
    #[serde(rename = "avgMemUsagePct")]
    pub avg_mem_usage_pct: Option<f64>,
    #[serde(rename = "maxMemUsagePct")]
    pub max_mem_usage_pct: Option<f64>,
    #[serde(rename = "lastMemUsagePct")]
    pub last_mem_usage_pct: Option<f64>,
    #[serde(rename = "avgCpuUsagePct")]
    pub avg_cpu_usage_pct: Option<f64>,
}

impl StatisticsDocument {
    /// The document of these processes of the host.
    pub fn new(
        monitor_start: Option<NaiveDateTime>,
        processes: &[ProcessView],
    ) -> StatisticsDocument {
        StatisticsDocument {
            monitor_time_of_start: monitor_start.map(timestamp),
            proc_stats: processes
                .iter()
                .map(|process| ProcStats::new(process, monitor_start))
                .collect(),
        }
    }

    /// The document of a host's view.
    pub fn of_host(view: &HostView) -> StatisticsDocument {
        StatisticsDocument::new(view.monitor_start, &view.processes)
    }

    /// The document as indented JSON, for people and scripts alike.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

impl ProcStats {
    pub fn new(process: &ProcessView, monitor_start: Option<NaiveDateTime>) -> ProcStats {
        let usage = process.usage.as_ref();
        ProcStats {
            proc_name: process.process.name.clone(),
            alive: process.alive,
            // A process never restarted reports the monitor's start as its last restart.
            last_restart: process
                .restarts
                .and(process.last_restart.or(monitor_start))
                .map(timestamp),
            total_restarts: process.restarts,
            avg_response_time_ms: whole_milliseconds(usage.and_then(|u| u.avg_response_ms)),
            max_response_time_ms: whole_milliseconds(usage.and_then(|u| u.max_response_ms)),
            last_response_time_ms: whole_milliseconds(usage.and_then(|u| u.last_response_ms)),
            avg_mem_usage_pct: one_decimal(usage.and_then(|u| u.avg_mem_pct)),
            max_mem_usage_pct: one_decimal(usage.and_then(|u| u.max_mem_pct)),
            last_mem_usage_pct: one_decimal(usage.and_then(|u| u.last_mem_pct)),
            avg_cpu_usage_pct: one_decimal(usage.and_then(|u| u.avg_cpu_pct)),
        }
    }
}

/// The statistics document of the host of `config`: every process of its view, or only the
/// one called `name` (an error if `PROCESE` has no such process; a process unknown here has
/// null figures).
pub async fn statistics_document(
    db: &Database,
    config: &Config,
    name: Option<&str>,
) -> Result<StatisticsDocument, ReportError> {
    match name {
        None => Ok(StatisticsDocument::of_host(&read_host(db, config).await?)),
        Some(name) => {
            let host = config.monitor.host.as_str();
            let process = resolve(db, host, name).await?;
            let start = monitor_start(db, host).await?;
            let view = read_process(db, config, &process).await?;
            Ok(StatisticsDocument::new(start, &[view]))
        }
    }
}

fn whole_milliseconds(value: Option<f64>) -> Option<i64> {
    // `as` saturates; a non-finite value would only come from a broken row: leave it unknown.
    value.filter(|v| v.is_finite()).map(|v| v.round() as i64)
}

fn one_decimal(value: Option<f64>) -> Option<f64> {
    value
        .filter(|v| v.is_finite())
        .map(|v| (v * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerState;
    use crate::report::view::Usage;
    use crate::report::view::tests::view;
    use chrono::NaiveDate;

    fn at(hour: u32, minute: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2021, 1, 20)
            .and_then(|day| day.and_hms_milli_opt(hour, minute, 0, 250))
            .expect("a valid time")
    }

    /// A process restarted 3 times, the last at `last_restart` (None: never).
    fn process(name: &str, last_restart: Option<NaiveDateTime>) -> ProcessView {
        let mut view = view(1, name, false, BreakerState::Closed, true);
        view.restarts = Some(3);
        view.last_restart = last_restart;
        view.usage = Some(Usage {
            avg_response_ms: Some(123.4),
            max_response_ms: Some(320.6),
            last_response_ms: None,
            avg_mem_pct: Some(2.34),
            max_mem_pct: Some(3.25),
            last_mem_pct: Some(2.2),
            avg_cpu_pct: Some(8.94),
            last_cpu_pct: Some(1.0),
            first_seen: at(11, 0),
            updated_at: at(12, 0),
        });
        view
    }

    #[test]
    fn the_document_has_its_fixed_keys_in_order() {
        let document =
            StatisticsDocument::new(Some(at(12, 0)), &[process("metrics", Some(at(12, 30)))]);
        let json = serde_json::to_string(&document).expect("serializes");
        assert_eq!(
            json,
            "{\"monitorTimeOfStart\":\"2021-01-20 12:00:00\",\"procStats\":[{\
             \"procName\":\"metrics\",\"alive\":true,\"lastRestart\":\"2021-01-20 12:30:00\",\
             \"totalRestarts\":3,\"avgResponseTimeMS\":123,\"maxResponseTimeMS\":321,\
             \"lastResponseTimeMS\":null,\"avgMemUsagePct\":2.3,\"maxMemUsagePct\":3.3,\
             \"lastMemUsagePct\":2.2,\"avgCpuUsagePct\":8.9}]}"
        );
    }

    #[test]
    fn a_process_never_restarted_shows_the_monitor_start_as_its_last_restart() {
        let stats = ProcStats::new(&process("httpd", None), Some(at(9, 5)));
        assert_eq!(stats.last_restart.as_deref(), Some("2021-01-20 09:05:00"));
    }

    #[test]
    fn a_process_not_sampled_has_every_figure_null() {
        let stats = ProcStats::new(
            &view(1, "httpd", false, BreakerState::Closed, false),
            Some(at(9, 5)),
        );
        let json = serde_json::to_value(&stats).expect("serializes");
        let object = json.as_object().expect("an object");
        assert_eq!(object.len(), 11);
        for (key, value) in object {
            if key != "procName" {
                assert!(value.is_null(), "{key} is {value}");
            }
        }
    }

    #[test]
    fn an_empty_host_gives_an_empty_list() {
        let json = serde_json::to_string(&StatisticsDocument::new(None, &[])).expect("json");
        assert_eq!(json, "{\"monitorTimeOfStart\":null,\"procStats\":[]}");
    }
}
