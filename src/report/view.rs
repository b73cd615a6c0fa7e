//! The shape of the one read of a host's processes (`read_host`): a [`HostView`] of
//! [`ProcessView`]s, each with its [`BreakerView`] and [`Usage`]. What every surface formats.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::ProcessRef;
use super::health::HealthReport;
use crate::breaker::{BreakerPolicy, BreakerState, CircuitBreaker};
use crate::config::Config;
use crate::dependency::{self, DependencyState, Readiness};

/// The state of this host, as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    pub host: String,
    /// When the monitor of this host started; None if it never ran.
    pub monitor_start: Option<NaiveDateTime>,
    pub health: HealthReport,
    /// By name, then process id.
    pub processes: Vec<ProcessView>,
}

/// One process of this host. Unknown figures are None.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessView {
    /// The name as `PROCESE` holds it: any text, to be escaped wherever it is shown.
    pub process: ProcessRef,
    pub alive: Option<bool>,
    pub pid: Option<i32>,
    /// `STATUS_PROCESS.alarma <> 0`.
    pub alarm: bool,
    pub note: Option<String>,
    pub breaker: BreakerView,
    /// Successful restarts by this host; None when nothing is known of the process here.
    pub restarts: Option<i64>,
    /// The last of them; None also when there was none.
    pub last_restart: Option<NaiveDateTime>,
    /// None until the sampler of this host has written the process's statistics.
    pub usage: Option<Usage>,
    /// Its `depends_on` that this host handles.
    pub dependencies: Vec<String>,
    /// In alarm, the dependency it waits for (dead, in alarm, or with its breaker open).
    pub waiting_for: Option<String>,
}

/// A process's circuit breaker, parsed once from its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerView {
    /// Closed when the process has no row, or a state this version does not know.
    pub state: BreakerState,
    pub failures: u32,
    pub opened_at: Option<DateTime<Utc>>,
    /// When an open breaker lets a trial through: `opened_at + circuit_reset_time`.
    pub reopens_at: Option<DateTime<Utc>>,
}

/// The sampler's figures of one process on this host (`PROCESS_STATS`).
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub avg_response_ms: Option<f64>,
    pub max_response_ms: Option<f64>,
    pub last_response_ms: Option<f64>,
    pub avg_mem_pct: Option<f64>,
    pub max_mem_pct: Option<f64>,
    pub last_mem_pct: Option<f64>,
    pub avg_cpu_pct: Option<f64>,
    pub last_cpu_pct: Option<f64>,
    /// When monitoring of the process began on this host.
    pub first_seen: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl BreakerView {
    pub fn new(breaker: CircuitBreaker, policy: BreakerPolicy) -> BreakerView {
        let open = breaker.state == BreakerState::Open && breaker.opened_at.is_some();
        BreakerView {
            state: breaker.state,
            failures: breaker.consecutive_failures,
            opened_at: breaker.opened_at,
            reopens_at: open.then(|| breaker.reopens_at(policy)),
        }
    }

    /// Whether the breaker keeps restarts from happening now, or allows only a trial.
    pub fn is_open(&self) -> bool {
        matches!(self.state, BreakerState::Open | BreakerState::HalfOpen)
    }
}

/// The breaker policy of the configuration, for the reopen time.
pub fn breaker_policy(config: &Config) -> BreakerPolicy {
    BreakerPolicy {
        max_failures: config.monitor.max_restart_failures,
        reset_after: config.monitor.circuit_reset_time,
    }
}

/// Fills in each process's dependencies and, for one in alarm, the dependency it waits for,
/// by the daemon's rule (`dependency::readiness`) over what the views show: a dependency not
/// alive or in alarm is down. Processes of one name share their state.
pub fn add_dependencies(config: &Config, views: &mut [ProcessView]) {
    let mut states: HashMap<String, DependencyState> = HashMap::new();
    for view in views.iter() {
        let state = if view.breaker.state == BreakerState::Open {
            DependencyState::BreakerOpen
        } else if view.alarm || view.alive == Some(false) {
            DependencyState::Down
        } else {
            DependencyState::Up
        };
        let known = states.entry(view.process.name.clone()).or_insert(state);
        if state != DependencyState::Up {
            *known = state;
        }
    }
    let state_of = |name: &str| states.get(name).copied().unwrap_or(DependencyState::Up);
    for view in views.iter_mut() {
        let name = view.process.name.as_str();
        view.dependencies = dependency::local_dependencies(config, name)
            .into_iter()
            .map(str::to_owned)
            .collect();
        view.waiting_for = match view.alarm {
            false => None,
            true => match dependency::readiness(config, name, state_of) {
                Readiness::Ready => None,
                Readiness::WaitFor(d) | Readiness::DependencyBreakerOpen(d) => Some(d),
            },
        };
    }
}

/// Views for the unit tests of the renderers.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::NaiveDate;

    pub fn at(hour: u32, minute: u32, second: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 5, 1)
            .and_then(|day| day.and_hms_opt(hour, minute, second))
            .expect("a valid time")
    }

    pub fn usage() -> Usage {
        Usage {
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

    /// A process in alarm or not, with its breaker; a sampled one is alive as PID 4242 with
    /// 2 restarts, an unsampled one is unknown.
    pub fn view(
        id: i32,
        name: &str,
        alarm: bool,
        state: BreakerState,
        sampled: bool,
    ) -> ProcessView {
        ProcessView {
            process: ProcessRef {
                process_id: id,
                name: name.to_owned(),
            },
            alive: sampled.then_some(true),
            pid: sampled.then_some(4242),
            alarm,
            note: None,
            breaker: BreakerView {
                state,
                failures: 0,
                opened_at: None,
                reopens_at: None,
            },
            restarts: sampled.then_some(2),
            last_restart: None,
            usage: sampled.then(usage),
            dependencies: Vec::new(),
            waiting_for: None,
        }
    }

    #[test]
    fn an_open_breaker_reopens_after_the_reset_time_and_a_closed_one_never() {
        let opened = at(12, 0, 0).and_utc();
        let policy = BreakerPolicy {
            max_failures: 3,
            reset_after: std::time::Duration::from_secs(90),
        };
        let open = CircuitBreaker {
            state: BreakerState::Open,
            consecutive_failures: 3,
            opened_at: Some(opened),
        };
        let view = BreakerView::new(open, policy);
        assert_eq!(view.reopens_at, Some(at(12, 1, 30).and_utc()));
        assert!(view.is_open());
        let half_open = CircuitBreaker {
            state: BreakerState::HalfOpen,
            ..open
        };
        assert_eq!(BreakerView::new(half_open, policy).reopens_at, None);
        assert!(BreakerView::new(half_open, policy).is_open());
        let closed = BreakerView::new(CircuitBreaker::default(), policy);
        assert_eq!((closed.reopens_at, closed.is_open()), (None, false));
    }

    #[test]
    fn a_process_in_alarm_waits_for_a_dependency_that_is_dead_or_in_alarm() {
        let text = "[database]\nuser = u\n\n[monitor]\nhost = web1\n\n\
                    [process.a]\ndepends_on = b, c\n\n[process.b]\n\n[process.c]\n";
        let config = Config::from_ini_text(std::path::Path::new("config.ini"), text, None)
            .expect("a valid config");
        let mut views = vec![
            view(1, "a", true, BreakerState::Closed, true),
            view(2, "b", false, BreakerState::Closed, true),
            view(3, "c", false, BreakerState::Closed, true),
        ];
        views[2].alive = Some(false);
        add_dependencies(&config, &mut views);
        assert_eq!(views[0].dependencies, ["b", "c"]);
        assert_eq!(views[0].waiting_for.as_deref(), Some("c"));
        assert_eq!(
            (views[1].dependencies.len(), &views[1].waiting_for),
            (0, &None)
        );
        // Not in alarm: nothing to wait for.
        views[0].alarm = false;
        add_dependencies(&config, &mut views);
        assert_eq!(views[0].waiting_for, None);
    }
}
