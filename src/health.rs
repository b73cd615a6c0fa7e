//! The health score of a host, from four sub-statuses of its required processes: restarts (1
//! less the restarts per second over `[health] window`), response time and memory (1 up to
//! their `good` bound, 0 from their `bad` bound, linear in between; response in heartbeat
//! intervals), and availability (the share of them alive), so that a required process kept
//! dead drags the score down. Pure arithmetic: the sampler gathers the inputs and stores the
//! result.
//!
//! Each sub-status lies in [0, 1]; the total is their mean weighted by `[health]`. A sub-status
//! with nothing to measure (no heartbeat, no required process) is left out of the mean rather
//! than counted as perfect or failed.

use std::time::Duration;

use crate::config::HealthConfig;

/// What the score is computed from, all about the host's required processes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthInputs {
    /// Restarts of required processes that began within `[health] window`.
    pub restarts_in_window: u32,
    /// Mean of the latest heartbeat response times; `None` without heartbeats.
    pub average_response: Option<Duration>,
    pub heartbeat_interval: Option<Duration>,
    /// Mean memory use of the live required processes, percent of RAM.
    pub average_memory_pct: Option<f64>,
    pub required_alive: usize,
    pub required_total: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthScore {
    pub total: f64,
    pub restart: Option<f64>,
    pub response: Option<f64>,
    pub memory: Option<f64>,
    pub availability: Option<f64>,
    pub restarts_in_window: u32,
}

/// 1 at or below `good`, 0 at or above `bad`, linear in between.
fn falling(value: f64, good: f64, bad: f64) -> f64 {
    if value <= good {
        1.0
    } else if value >= bad {
        0.0
    } else {
        (bad - value) / (bad - good)
    }
}

pub fn score(inputs: &HealthInputs, config: &HealthConfig) -> HealthScore {
    let window = config.window.as_secs_f64().max(f64::EPSILON);
    let rate = f64::from(inputs.restarts_in_window) / window;
    let restart = Some((1.0 - rate).max(0.0));
    let response = match (inputs.average_response, inputs.heartbeat_interval) {
        (Some(response), Some(interval)) => {
            let interval = interval.as_secs_f64();
            Some(falling(
                response.as_secs_f64(),
                interval * config.response_good,
                interval * config.response_bad,
            ))
        }
        _ => None,
    };
    let memory = inputs
        .average_memory_pct
        .map(|pct| falling(pct, config.memory_good_pct, config.memory_bad_pct));
    let availability = (inputs.required_total > 0)
        .then(|| inputs.required_alive as f64 / inputs.required_total as f64);
    let weighted = [
        (restart, config.restart_weight),
        (response, config.response_weight),
        (memory, config.memory_weight),
        (availability, config.availability_weight),
    ];
    let (sum, weights) = weighted
        .iter()
        .filter_map(|(status, weight)| status.map(|s| (s * weight, *weight)))
        .fold((0.0, 0.0), |(sum, weights), (s, w)| (sum + s, weights + w));
    let total = if weights > 0.0 {
        (sum / weights).clamp(0.0, 1.0)
    } else {
        1.0
    };
    HealthScore {
        total,
        restart,
        response,
        memory,
        availability,
        restarts_in_window: inputs.restarts_in_window,
    }
}

/// Whether the score has just crossed the threshold: the low-health command runs once per
/// fall, not once per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    Fell,
    Recovered,
    Unchanged,
}

/// Remembers which side of the threshold the last score was on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThresholdWatch {
    low: bool,
}

impl ThresholdWatch {
    pub fn observe(&mut self, total: f64, threshold: f64) -> Crossing {
        let low = total < threshold;
        let crossing = match (self.low, low) {
            (false, true) => Crossing::Fell,
            (true, false) => Crossing::Recovered,
            _ => Crossing::Unchanged,
        };
        self.low = low;
        crossing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HealthConfig {
        HealthConfig {
            window: Duration::from_secs(30),
            restart_weight: 1.0,
            response_weight: 1.0,
            memory_weight: 1.0,
            availability_weight: 1.0,
            response_good: 1.0,
            response_bad: 5.0,
            memory_good_pct: 2.0,
            memory_bad_pct: 10.0,
            threshold: 0.5,
            on_low_health_command: None,
        }
    }

    fn healthy() -> HealthInputs {
        HealthInputs {
            restarts_in_window: 0,
            average_response: Some(Duration::from_millis(5)),
            heartbeat_interval: Some(Duration::from_secs(10)),
            average_memory_pct: Some(1.0),
            required_alive: 4,
            required_total: 4,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn sub_statuses_and_their_weighted_mean_follow_the_rule() {
        let ms = Duration::from_millis;
        #[rustfmt::skip]
        let cases: &[(&str, HealthInputs, [Option<f64>; 4], f64)] = &[
            ("all well", healthy(), [Some(1.0), Some(1.0), Some(1.0), Some(1.0)], 1.0),
            ("15 restarts in 30 s: 0.5/s", HealthInputs { restarts_in_window: 15, ..healthy() },
                [Some(0.5), Some(1.0), Some(1.0), Some(1.0)], 0.875),
            ("45 restarts in 30 s floors at 0", HealthInputs { restarts_in_window: 45, ..healthy() },
                [Some(0.0), Some(1.0), Some(1.0), Some(1.0)], 0.75),
            ("response 3x the heartbeat: halfway", HealthInputs { average_response: Some(ms(30_000)), ..healthy() },
                [Some(1.0), Some(0.5), Some(1.0), Some(1.0)], 0.875),
            ("response 5x the heartbeat: 0", HealthInputs { average_response: Some(ms(50_000)), ..healthy() },
                [Some(1.0), Some(0.0), Some(1.0), Some(1.0)], 0.75),
            ("response exactly the heartbeat: 1", HealthInputs { average_response: Some(ms(10_000)), ..healthy() },
                [Some(1.0), Some(1.0), Some(1.0), Some(1.0)], 1.0),
            ("memory 6 %: halfway", HealthInputs { average_memory_pct: Some(6.0), ..healthy() },
                [Some(1.0), Some(1.0), Some(0.5), Some(1.0)], 0.875),
            ("memory 12 %: 0", HealthInputs { average_memory_pct: Some(12.0), ..healthy() },
                [Some(1.0), Some(1.0), Some(0.0), Some(1.0)], 0.75),
            ("one of four required dead", HealthInputs { required_alive: 3, ..healthy() },
                [Some(1.0), Some(1.0), Some(1.0), Some(0.75)], 0.9375),
            ("no heartbeat: response left out", HealthInputs { average_response: None, heartbeat_interval: None, ..healthy() },
                [Some(1.0), None, Some(1.0), Some(1.0)], 1.0),
            ("nothing required: restarts only", HealthInputs { required_total: 0, required_alive: 0,
                average_memory_pct: None, average_response: None, restarts_in_window: 6, ..healthy() },
                [Some(0.8), None, None, None], 0.8),
        ];
        for (what, inputs, statuses, total) in cases {
            let score = score(inputs, &config());
            let got = [
                score.restart,
                score.response,
                score.memory,
                score.availability,
            ];
            for (g, e) in got.iter().zip(statuses) {
                assert!(
                    match (g, e) {
                        (Some(g), Some(e)) => close(*g, *e),
                        (None, None) => true,
                        _ => false,
                    },
                    "{what}: {got:?} != {statuses:?}"
                );
            }
            assert!(
                close(score.total, *total),
                "{what}: total {} != {total}",
                score.total
            );
        }
    }

    #[test]
    fn weights_shape_the_total() {
        let config = HealthConfig {
            availability_weight: 3.0,
            ..config()
        };
        let inputs = HealthInputs {
            required_alive: 0,
            ..healthy()
        };
        // (1 + 1 + 1 + 0 × 3) / 6
        assert!(close(score(&inputs, &config).total, 0.5));
        let only_restarts = HealthConfig {
            response_weight: 0.0,
            memory_weight: 0.0,
            availability_weight: 0.0,
            ..config
        };
        assert!(close(score(&inputs, &only_restarts).total, 1.0));
    }

    #[test]
    fn the_threshold_is_crossed_once_per_fall() {
        let mut watch = ThresholdWatch::default();
        let seen: Vec<Crossing> = [0.9, 0.4, 0.3, 0.45, 0.6, 0.2, 0.5]
            .iter()
            .map(|total| watch.observe(*total, 0.5))
            .collect();
        use Crossing::*;
        assert_eq!(
            seen,
            [
                Unchanged, Fell, Unchanged, Unchanged, Recovered, Fell, Recovered
            ]
        );
    }
}
