//! JSON for scripts: the rows of `status --json` (the statistics document and the health
//! report serialize themselves, in `crate::report`).

use serde::Serialize;

use super::failure::Failure;
use crate::report::ProcessView;
use crate::report::timestamp;

/// One row of `status --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusRow<'a> {
    name: &'a str,
    alive: bool,
    pid: Option<i32>,
    alarm: bool,
    breaker: &'static str,
    last_restart: Option<String>,
    restarts: i64,
    cpu_pct: Option<f64>,
    mem_pct: Option<f64>,
    response_ms: Option<f64>,
    depends_on: &'a [String],
    waiting_for: Option<&'a str>,
}

/// `status --json`: the rows of the table, as a JSON array.
pub fn status_json(processes: &[ProcessView]) -> Result<String, Failure> {
    let rows: Vec<StatusRow<'_>> = processes
        .iter()
        .map(|view| {
            let usage = view.usage.as_ref();
            StatusRow {
                name: &view.process.name,
                // Unknown (the process table could not be read) reads as not alive, as before.
                alive: view.alive.unwrap_or(false),
                pid: view.pid,
                alarm: view.alarm,
                breaker: view.breaker.state.as_str(),
                last_restart: view.last_restart.map(timestamp),
                restarts: view.restarts.unwrap_or(0),
                cpu_pct: usage.and_then(|u| u.last_cpu_pct),
                mem_pct: usage.and_then(|u| u.last_mem_pct),
                response_ms: usage.and_then(|u| u.last_response_ms),
                depends_on: &view.dependencies,
                waiting_for: view.waiting_for.as_deref(),
            }
        })
        .collect();
    serde_json::to_string_pretty(&rows).map_err(|e| Failure::Internal(format!("writing JSON: {e}")))
}
