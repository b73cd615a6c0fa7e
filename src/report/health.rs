//! The health report: the latest `HEALTH_SCORE` row of a host, judged against the configured
//! threshold: below it, the host is unhealthy.

use serde::Serialize;

use chrono::NaiveDateTime;
use sqlx::FromRow;

use super::{ReportError, timestamp};
use crate::db::Database;

/// What `health --json` prints and `GET /health` will serve. Before the first score every
/// figure is null, and so is `low`: nothing is known yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    pub host: String,
    pub computed_at: Option<String>,
    /// The total score, 0 to 1.
    pub total: Option<f64>,
    /// The sub-statuses, 0 to 1; null when there was nothing to measure.
    pub restart: Option<f64>,
    pub response: Option<f64>,
    pub memory: Option<f64>,
    pub availability: Option<f64>,
    pub restarts_in_window: Option<i64>,
    pub threshold: f64,
    /// Whether the total is below the threshold.
    pub low: Option<bool>,
}

/// Whether the score clears the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Low,
    /// No score yet.
    Unknown,
}

impl HealthReport {
    pub fn new(host: &str, row: Option<&HealthRow>, threshold: f64) -> HealthReport {
        HealthReport {
            host: host.to_owned(),
            computed_at: row.map(|row| timestamp(row.computed_at)),
            total: row.map(|row| three_decimals(row.total)),
            restart: row.and_then(|row| row.restart_status).map(three_decimals),
            response: row.and_then(|row| row.response_status).map(three_decimals),
            memory: row.and_then(|row| row.memory_status).map(three_decimals),
            availability: row
                .and_then(|row| row.availability_status)
                .map(three_decimals),
            restarts_in_window: row.map(|row| i64::from(row.restarts_in_window)),
            threshold,
            // Judged on the unrounded total, as the health scorer judges it.
            low: row.map(|row| row.total < threshold),
        }
    }

    pub fn verdict(&self) -> Verdict {
        match self.low {
            Some(true) => Verdict::Low,
            Some(false) => Verdict::Ok,
            None => Verdict::Unknown,
        }
    }

    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// The health report of `host` with its latest score, if any.
pub async fn latest_health(
    db: &Database,
    host: &str,
    threshold: f64,
) -> Result<HealthReport, ReportError> {
    let row = latest_health_row(db, host).await?;
    Ok(HealthReport::new(host, row.as_ref(), threshold))
}

/// The latest row of `HEALTH_SCORE` for a host.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct HealthRow {
    pub computed_at: NaiveDateTime,
    pub total: f64,
    pub restart_status: Option<f64>,
    pub response_status: Option<f64>,
    pub memory_status: Option<f64>,
    pub availability_status: Option<f64>,
    pub restarts_in_window: i32,
}

/// The latest health score of `host`; None before the first one.
pub async fn latest_health_row(
    db: &Database,
    host: &str,
) -> Result<Option<HealthRow>, ReportError> {
    let query = sqlx::query_as::<_, HealthRow>(
        "SELECT computed_at, total, restart_status, response_status, memory_status, \
         availability_status, restarts_in_window FROM HEALTH_SCORE WHERE host = ? \
         ORDER BY computed_at DESC, id DESC LIMIT 1",
    )
    .bind(host);
    Ok(db.run(query.fetch_optional(db.pool())).await?)
}

/// Scores are fractions: three decimals say all there is to say about them.
fn three_decimals(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn row(total: f64) -> HealthRow {
        HealthRow {
            computed_at: NaiveDate::from_ymd_opt(2024, 5, 1)
                .and_then(|day| day.and_hms_opt(12, 0, 0))
                .expect("a valid time"),
            total,
            restart_status: Some(1.0),
            response_status: Some(0.666_666),
            memory_status: None,
            availability_status: Some(0.5),
            restarts_in_window: 2,
        }
    }

    #[test]
    fn a_total_below_the_threshold_is_low() {
        let report = HealthReport::new("web1", Some(&row(0.4999)), 0.5);
        assert_eq!(report.verdict(), Verdict::Low);
        assert_eq!(report.total, Some(0.5));
        assert_eq!(report.response, Some(0.667));
        assert_eq!(report.memory, None);
    }

    #[test]
    fn a_total_at_the_threshold_is_ok() {
        let report = HealthReport::new("web1", Some(&row(0.5)), 0.5);
        assert_eq!(report.verdict(), Verdict::Ok);
    }

    #[test]
    fn no_score_yet_gives_null_figures_and_keeps_host_and_threshold() {
        let report = HealthReport::new("web1", None, 0.5);
        let json = serde_json::to_string(&report).expect("serializes");
        assert_eq!(
            json,
            "{\"host\":\"web1\",\"computedAt\":null,\"total\":null,\"restart\":null,\
             \"response\":null,\"memory\":null,\"availability\":null,\
             \"restartsInWindow\":null,\"threshold\":0.5,\"low\":null}"
        );
        assert_eq!(report.verdict(), Verdict::Unknown);
    }
}
