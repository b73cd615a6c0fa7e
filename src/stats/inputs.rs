//! What a sample hands on besides its rows: the heartbeat's response times, recorded in the
//! windows and kept for the next batch, and what the health score needs from the roster.

use std::time::Duration;

use crate::config::Config;
use crate::db::stats::Sample;
use crate::health::HealthInputs;

use super::heartbeat::Beat;
use super::monitored::{Monitored, Seen};
use super::roster::Roster;

/// Response times recorded since the last sample, written with the next one.
#[derive(Default)]
pub struct Beats {
    pending: Vec<Sample>,
}

impl Beats {
    pub fn record(&mut self, roster: &mut Roster, round: Vec<Beat>, now: f64) {
        for beat in round {
            let Some(process) = roster.get_mut(beat.process_id) else {
                continue;
            };
            process.response.record(now, beat.response_ms);
            process.last_check_ok = Some(beat.ok);
            self.pending.push(Sample::Heartbeat {
                process_id: beat.process_id,
                response_ms: beat.response_ms,
                ok: beat.ok,
            });
        }
    }

    pub fn take(&mut self) -> Vec<Sample> {
        std::mem::take(&mut self.pending)
    }
}

/// All the health score needs from one sample but the restarts in the window, which only the
/// database knows: the writer counts them for `required_ids` and completes the inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialHealthInputs {
    pub required_ids: Vec<i32>,
    pub average_response: Option<Duration>,
    pub heartbeat_interval: Option<Duration>,
    pub average_memory_pct: Option<f64>,
    pub required_alive: usize,
    pub required_total: usize,
}

impl PartialHealthInputs {
    /// What the roster says of the required processes now.
    pub fn of(roster: &Roster, config: &Config) -> PartialHealthInputs {
        let required: Vec<&Monitored> = roster.processes().filter(|p| p.config.required).collect();
        let alive: Vec<&&Monitored> = required
            .iter()
            .filter(|p| p.last_seen == Some(Seen::Alive))
            .collect();
        PartialHealthInputs {
            required_ids: required.iter().map(|p| p.process_id).collect(),
            average_response: mean(required.iter().filter_map(|p| p.response.last))
                .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
            heartbeat_interval: config.monitor.heartbeat_interval,
            average_memory_pct: mean(alive.iter().filter_map(|p| p.memory.last)),
            required_alive: alive.len(),
            required_total: required.len(),
        }
    }

    pub fn with_restarts(&self, restarts_in_window: u32) -> HealthInputs {
        HealthInputs {
            restarts_in_window,
            average_response: self.average_response,
            heartbeat_interval: self.heartbeat_interval,
            average_memory_pct: self.average_memory_pct,
            required_alive: self.required_alive,
            required_total: self.required_total,
        }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (count > 0).then(|| sum / f64::from(count))
}
