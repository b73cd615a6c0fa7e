//! The `stats [NAME] [--json]` and `health [--json]` commands: connect, read, print to stdout,
//! and turn what went wrong into the command line's failures (64 for an unknown process, 69
//! for a database out of reach).
//!
//! No logging is set up for them: the one line `main` prints for a failure says it all, where
//! the pool's warnings would repeat it.

use std::io::Write;

use super::document::statistics_document;
use super::health::latest_health;
use super::read::{host_reports, monitor_start, process_report, recent_events, resolve_process};
use super::{ReportError, text};
use crate::config::Config;
use crate::db::Database;
use crate::exit::Failure;

/// How many restart events the detail page of a process lists.
const RECENT_EVENTS: u32 = 5;

/// `stats [NAME] [--json]` for the host of the configuration.
pub async fn stats(config: &Config, name: Option<&str>, json: bool) -> Result<(), Failure> {
    let db = Database::connect_lazy(&config.database);
    let output = stats_output(&db, &config.monitor.host, name, json).await;
    db.close().await;
    print(&output?)
}

async fn stats_output(
    db: &Database,
    host: &str,
    name: Option<&str>,
    json: bool,
) -> Result<String, Failure> {
    if json {
        let document = statistics_document(db, host, name).await.map_err(failure)?;
        return document.to_json().map(with_newline).map_err(internal);
    }
    let start = monitor_start(db, host).await.map_err(failure)?;
    match name {
        None => {
            let reports = host_reports(db, host).await.map_err(failure)?;
            Ok(text::stats_table(host, start, &reports))
        }
        Some(name) => {
            let process = resolve_process(db, host, name).await.map_err(failure)?;
            let events = recent_events(db, host, process.process_id, RECENT_EVENTS)
                .await
                .map_err(failure)?;
            let report = process_report(db, host, process).await.map_err(failure)?;
            Ok(text::process_details(host, start, &report, &events))
        }
    }
}

/// `health [--json]` for the host of the configuration.
pub async fn health(config: &Config, json: bool) -> Result<(), Failure> {
    let db = Database::connect_lazy(&config.database);
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

/// The usual mapping of the command line: the operator's mistake is a usage error, a database
/// out of reach is "unavailable", anything else a bug or a broken schema.
fn failure(error: ReportError) -> Failure {
    match error {
        ReportError::UnknownProcess(_) => Failure::Usage(error.to_string()),
        ReportError::Database(error) if error.is_unavailable() => {
            Failure::Unavailable(format!("cannot read the statistics: {error}"))
        }
        ReportError::Database(error) => Failure::Internal(error.to_string()),
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
