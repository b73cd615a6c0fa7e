//! The commands that read: `status`, `stats [NAME]`, `health`, `alarm list`, `breaker list`.
//! Each reads through `crate::report` (for `status` and `stats`, the one view of the host's
//! processes) and formats with [`super::text`] or [`super::json`].
//!
//! No logging is set up for them: the one line `main` prints for a failure says it all, where
//! the pool's warnings would repeat it.

use std::io::Write;

use super::failure::Failure;
use super::{details, json, text};
use crate::config::Config;
use crate::db::Database;
use crate::report::lists::{alarms, breakers, resolve};
use crate::report::read::{recent_events, reports};
use crate::report::{ReportError, latest_health, read_host, read_process, statistics_document};

/// How many restart events the detail page of a process lists.
const RECENT_EVENTS: u32 = 5;

/// `status [--json]`: one row per process of this host.
pub async fn status(db: &Database, config: &Config, json: bool) -> Result<String, Failure> {
    let view = read_host(db, config).await?;
    if json {
        json::status_json(&view.processes)
    } else {
        Ok(text::status_text(&view.processes))
    }
}

/// `alarm list`: every process of `PROCESE` with its alarm and note.
pub async fn alarm_list(db: &Database) -> Result<String, Failure> {
    Ok(text::alarm_list(&alarms(db).await?))
}

/// `breaker list`: every circuit breaker, with when an open one allows a trial.
pub async fn breaker_list(db: &Database, config: &Config) -> Result<String, Failure> {
    Ok(text::breaker_list(&breakers(db, config).await?))
}

/// `stats [NAME] [--json]` for the host of the configuration.
pub async fn stats(config: &Config, name: Option<&str>, json: bool) -> Result<(), Failure> {
    let db = Database::connect_first_answering(&config.database).await;
    let output = stats_output(&db, config, name, json).await;
    db.close().await;
    print(&output?)
}

async fn stats_output(
    db: &Database,
    config: &Config,
    name: Option<&str>,
    json: bool,
) -> Result<String, Failure> {
    if json {
        let document = statistics_document(db, config, name)
            .await
            .map_err(failure)?;
        return document.to_json().map(with_newline).map_err(internal);
    }
    let host = config.monitor.host.as_str();
    let view = read_host(db, config).await.map_err(failure)?;
    match name {
        None => {
            let reports = reports(db, host, None, view.processes)
                .await
                .map_err(failure)?;
            Ok(text::stats_table(host, view.monitor_start, &reports))
        }
        Some(name) => {
            let process = resolve(db, host, name).await.map_err(failure)?;
            let id = process.process_id;
            let events = recent_events(db, host, id, RECENT_EVENTS)
                .await
                .map_err(failure)?;
            let one = read_process(db, config, &process).await.map_err(failure)?;
            let mut report = reports(db, host, Some(id), vec![one])
                .await
                .map_err(failure)?;
            let report = report
                .pop()
                .ok_or_else(|| Failure::Internal(format!("no report of {name}")))?;
            Ok(details::process_details(
                host,
                view.monitor_start,
                &report,
                &events,
            ))
        }
    }
}

/// `health [--json]` for the host of the configuration.
pub async fn health(config: &Config, json: bool) -> Result<(), Failure> {
    let db = Database::connect_first_answering(&config.database).await;
    let report = latest_health(&db, &config.monitor.host, config.health.threshold).await;
    db.close().await;
    let report = report.map_err(failure)?;
    let output = if json {
        report.to_json().map(with_newline).map_err(internal)?
    } else {
        text::health_text(&report)
    };
    print(&output)
}

/// The mapping of the statistics commands: as usual, with the database out of reach said to
/// be about the statistics.
fn failure(error: ReportError) -> Failure {
    match error {
        ReportError::Database(error) if error.is_unavailable() => {
            Failure::Unavailable(format!("cannot read the statistics: {error}"))
        }
        other => Failure::from(other),
    }
}

fn internal(error: serde_json::Error) -> Failure {
    Failure::Internal(format!("writing JSON: {error}"))
}

fn with_newline(mut text: String) -> String {
    text.push('\n');
    text
}

/// Writes the report to stdout. A reader that went away (`stats | head`) is not an error.
fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Internal(format!("writing to stdout: {error}")))
        }
        _ => Ok(()),
    }
}
