//! `GET /metrics`: the host's status as OpenMetrics text, names prefixed `monitor_service_`,
//! one series per process under the label `process`.
//!
//! A fresh registry is built from the database at each scrape: the figures live in the
//! database, written by the sampler and the restarter, so there is nothing to keep in step.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;

use crate::alert::{AlertCounters, Alerts};
use crate::report::{HostView, ProcessView};

/// The content type of OpenMetrics text, which Prometheus asks for and understands.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcessLabels {
    process: String,
}

type Flag = Family<ProcessLabels, Gauge>;
type Figure = Family<ProcessLabels, Gauge<f64, AtomicU64>>;

/// The per-process families, filled from the view and then registered.
#[derive(Default)]
struct Families {
    alive: Flag,
    in_alarm: Flag,
    breaker_open: Flag,
    cpu: Figure,
    memory: Figure,
    response: Figure,
    restarts: Family<ProcessLabels, Counter>,
}

/// The metrics of `status` as OpenMetrics text, ending with `# EOF`.
#[cfg(test)]
pub fn render(status: &HostView) -> Result<String, std::fmt::Error> {
    render_with(status, &Alerts::off())
}

/// As [`render`], with the counters of `alerts` when `[alert]` is on.
pub fn render_with(status: &HostView, alerts: &Alerts) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("monitor_service");
    if alerts.is_on() {
        register_alerts(&mut registry, alerts.counters());
    }
    let up = Gauge::<i64>::default();
    up.set(1);
    registry.register("up", "The monitor is running and its database answers", up);
    if let Some(total) = status.health.total {
        let score = Gauge::<f64, AtomicU64>::default();
        score.set(total);
        registry.register(
            "health_score",
            "The host's latest health score, 0 (bad) to 1 (good)",
            score,
        );
    }
    let families = Families::default();
    // Two PROCESE rows may share a name; one series per name, the first row's. The label is
    // the name as the terminal commands print it: no raw control characters in the text.
    let mut seen = HashSet::new();
    for process in &status.processes {
        let label = crate::printable::printable(&process.process.name).into_owned();
        if seen.insert(label.clone()) {
            families.add(ProcessLabels { process: label }, process);
        }
    }
    families.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// `alerts_dropped_total` (a full queue dropped the oldest), `alerts_delivered_total`,
/// `alerts_failed_total` (given up after the retries).
fn register_alerts(registry: &mut Registry, counters: &AlertCounters) {
    use std::sync::atomic::Ordering::Relaxed;
    for (name, help, value) in [
        (
            "alerts_dropped",
            "Alerts dropped because a sink's queue was full (oldest first)",
            &counters.dropped,
        ),
        (
            "alerts_delivered",
            "Alerts a sink took: the command exited 0, the webhook answered 2xx",
            &counters.delivered,
        ),
        (
            "alerts_failed",
            "Alerts a sink did not take, after the webhook's retries",
            &counters.failed,
        ),
    ] {
        let counter = Counter::<u64>::default();
        counter.inc_by(value.load(Relaxed));
        registry.register(name, help, counter);
    }
}

impl Families {
    fn add(&self, labels: ProcessLabels, process: &ProcessView) {
        self.in_alarm
            .get_or_create(&labels)
            .set(i64::from(process.alarm));
        self.breaker_open
            .get_or_create(&labels)
            .set(i64::from(process.breaker.is_open()));
        if let Some(alive) = process.alive {
            self.alive.get_or_create(&labels).set(i64::from(alive));
        }
        if let Some(restarts) = process.restarts {
            self.restarts
                .get_or_create(&labels)
                .inc_by(u64::try_from(restarts).unwrap_or(0));
        }
        let Some(usage) = &process.usage else {
            return;
        };
        for (family, value) in [
            (&self.cpu, usage.last_cpu_pct),
            (&self.memory, usage.last_mem_pct),
            (&self.response, usage.last_response_ms),
        ] {
            if let Some(value) = value.filter(|v| v.is_finite()) {
                family.get_or_create(&labels).set(value);
            }
        }
    }

    fn register(self, registry: &mut Registry) {
        registry.register(
            "process_alive",
            "Whether the process is running (the process table at the scrape)",
            self.alive,
        );
        registry.register(
            "process_in_alarm",
            "Whether STATUS_PROCESS.alarma is raised",
            self.in_alarm,
        );
        registry.register(
            "process_breaker_open",
            "Whether the circuit breaker is open or half open",
            self.breaker_open,
        );
        registry.register(
            "process_cpu_percent",
            "CPU use at the last sample, 100 = one core",
            self.cpu,
        );
        registry.register(
            "process_memory_percent",
            "Resident memory at the last sample, percent of the machine's",
            self.memory,
        );
        registry.register(
            "process_response_ms",
            "Duration of the last health check in milliseconds",
            self.response,
        );
        registry.register(
            "process_restarts",
            "Successful restarts of the process by this host",
            self.restarts,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerState;
    use crate::report::HealthReport;
    use crate::report::view::tests::view as process;

    fn status() -> HostView {
        let mut health = HealthReport::new("web1", None, 0.5);
        health.total = Some(0.875);
        HostView {
            host: "web1".to_owned(),
            monitor_start: None,
            health,
            processes: vec![
                process(1, "api", false, BreakerState::Closed, true),
                process(2, "api", true, BreakerState::Open, true),
                process(3, "we\"b", true, BreakerState::HalfOpen, false),
            ],
        }
    }

    #[test]
    fn every_figure_has_its_series_with_the_process_label() {
        let text = render(&status()).expect("encodes");
        for line in [
            "monitor_service_up 1",
            "monitor_service_health_score 0.875",
            "monitor_service_process_alive{process=\"api\"} 1",
            "monitor_service_process_in_alarm{process=\"api\"} 0",
            "monitor_service_process_breaker_open{process=\"api\"} 0",
            "monitor_service_process_cpu_percent{process=\"api\"} 2.44",
            "monitor_service_process_memory_percent{process=\"api\"} 1.25",
            "monitor_service_process_response_ms{process=\"api\"} 11.6",
            "monitor_service_process_restarts_total{process=\"api\"} 2",
            "monitor_service_process_in_alarm{process=\"we\\\"b\"} 1",
            "monitor_service_process_breaker_open{process=\"we\\\"b\"} 1",
            "# TYPE monitor_service_process_restarts counter",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_process_not_sampled_has_no_figures_and_a_shared_name_one_series() {
        let text = render(&status()).expect("encodes");
        assert!(!text.contains("process_alive{process=\"we"), "{text}");
        let alarms = text
            .lines()
            .filter(|l| l.starts_with("monitor_service_process_in_alarm{process=\"api\"}"))
            .count();
        assert_eq!(alarms, 1, "{text}");
    }

    #[test]
    fn no_health_score_yet_means_no_health_series() {
        let mut status = status();
        status.health.total = None;
        let text = render(&status).expect("encodes");
        assert!(!text.contains("monitor_service_health_score "), "{text}");
    }
}
