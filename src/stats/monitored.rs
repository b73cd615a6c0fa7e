//! What the sampler knows of one process: whether and how it is watched, its dead streak, and
//! its metrics over the retention window. The decisions (is this a new outage? has the streak
//! reached `dead_after`?) are plain functions of this state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::task::AbortOnDropHandle;

use crate::config::ProcessConfig;
use crate::db::stats::CurrentStats;
use crate::process::watch::Watched;
use crate::process::{FoundProcess, Listing};

use super::window::Window;

/// One metric: its window, and the last value seen.
#[derive(Debug, Clone)]
pub struct Metric {
    pub window: Window,
    pub last: Option<f64>,
}

impl Metric {
    fn new(retention: Duration) -> Metric {
        Metric {
            window: Window::new(retention),
            last: None,
        }
    }

    pub fn record(&mut self, at: f64, value: f64) {
        self.window.add(at, value);
        self.last = Some(value);
    }
}

/// What one check of a process found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Alive,
    Dead,
}

/// What follows a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The process went down (or is first seen down): open an outage.
    pub outage_began: bool,
    /// The process came back (or is first seen up): close the open outage.
    pub outage_ended: bool,
    /// The dead streak has just reached `dead_after`: raise the alarm if allowed.
    pub dead_enough: bool,
}

/// What a heartbeat says of a live process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveliness {
    Responding,
    /// No healthy heartbeat for `hang_after`.
    Hung,
}

#[derive(Debug)]
pub struct Monitored {
    pub process_id: i32,
    pub config: ProcessConfig,
    pub alarm_raised: bool,
    /// When `alarm_raised` was last learnt: from a read of the database begun then, or from the
    /// sampler's own raising or the restarter's notice. A read begun before is older news.
    alarm_known_at: Option<Instant>,
    /// The restarter is handling it: deaths are its business, not the auto alarm's.
    pub in_hand: bool,
    pub watched: Option<Watched>,
    /// Found alive at the last look but not watchable (out of file descriptors, say).
    pub unwatchable: Option<FoundProcess>,
    /// The other instances the look that found it saw (workers of the same name, say): a
    /// re-check after its exit looks at these besides the processes started since.
    pub others: Vec<FoundProcess>,
    /// PIDs listed at a moment after which it was seen alive: its exit came later, so a
    /// process that replaced it is one this listing lacks.
    pub listing: Option<Arc<Listing>>,
    /// Wakes the sampler when the watched process exits.
    pub exit_task: Option<AbortOnDropHandle<()>>,
    /// `None` until the first check: the state in the database is unknown.
    pub last_seen: Option<Seen>,
    pub dead_streak: u32,
    pub rss_bytes: Option<u64>,
    pub cpu: Metric,
    pub memory: Metric,
    pub response: Metric,
    pub last_check_ok: Option<bool>,
    /// Sampler time of the last healthy heartbeat, or of the first heartbeat since the
    /// process was seen alive or restarted, so that a fresh process is not hung at once.
    /// `None` while it is not known alive.
    pub healthy_since: Option<f64>,
    /// Samples in a row above `max_memory`.
    pub memory_streak: u32,
}

impl Monitored {
    pub fn new(process_id: i32, config: ProcessConfig, retention: Duration) -> Monitored {
        Monitored {
            process_id,
            config,
            alarm_raised: false,
            alarm_known_at: None,
            in_hand: false,
            watched: None,
            unwatchable: None,
            others: Vec::new(),
            listing: None,
            exit_task: None,
            last_seen: None,
            dead_streak: 0,
            rss_bytes: None,
            cpu: Metric::new(retention),
            memory: Metric::new(retention),
            response: Metric::new(retention),
            last_check_ok: None,
            healthy_since: None,
            memory_streak: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn pid(&self) -> Option<i32> {
        let watched = self.watched.as_ref().map(|w| w.process);
        watched.or(self.unwatchable).map(|process| process.pid)
    }

    /// Whether its watch keeps descriptors open (not watched by sampling).
    pub fn holds_descriptors(&self) -> bool {
        self.watched
            .as_ref()
            .is_some_and(Watched::holds_descriptors)
    }

    pub fn watches(&self, process: FoundProcess) -> bool {
        self.watched.as_ref().is_some_and(|w| w.process == process)
    }

    /// Stops watching: the process exited.
    pub fn lose(&mut self) {
        self.watched = None;
        self.exit_task = None;
        self.rss_bytes = None;
        self.healthy_since = None;
        self.memory_streak = 0;
    }

    /// Counts one check and says what follows.
    pub fn check(&mut self, seen: Seen, dead_after: u32) -> Transition {
        let before = self.last_seen.replace(seen);
        let changed = before != Some(seen);
        match seen {
            Seen::Alive => {
                self.dead_streak = 0;
                Transition {
                    outage_began: false,
                    outage_ended: changed,
                    dead_enough: false,
                }
            }
            Seen::Dead => {
                self.dead_streak = self.dead_streak.saturating_add(1);
                Transition {
                    outage_began: changed,
                    outage_ended: false,
                    dead_enough: self.dead_streak == dead_after,
                }
            }
        }
    }

    /// The sampler raised the alarm, or learnt that a restart ended (which clears it).
    pub fn note_alarm(&mut self, raised: bool) {
        self.alarm_raised = raised;
        self.alarm_known_at = Some(Instant::now());
    }

    /// What a read of `STATUS_PROCESS` begun at `read_at` found, unless the sampler learnt
    /// better since: an alarm it has just raised is not undone by a poll sent before the
    /// write.
    pub fn alarm_read(&mut self, raised: bool, read_at: Instant) {
        if self.alarm_known_at.is_none_or(|known| known <= read_at) {
            self.alarm_raised = raised;
            self.alarm_known_at = Some(read_at);
        }
    }

    /// Whether a dead streak that reached `dead_after` raises the alarm: only for required
    /// processes, with `auto_alarm`, and not while the alarm is raised or a restart runs.
    pub fn may_auto_alarm(&self, auto_alarm: bool) -> bool {
        auto_alarm && self.config.required && !self.alarm_raised && !self.in_hand
    }

    /// Whether an alarm the sampler raises for a reason other than death may be raised now:
    /// not while it is raised already or a restart runs.
    pub fn may_alarm(&self) -> bool {
        !self.alarm_raised && !self.in_hand
    }

    /// Counts one heartbeat at `now` (sampler seconds) and says whether the process is hung:
    /// alive, with no healthy heartbeat for `hang_after` since the last healthy one (or since
    /// the first heartbeat after it was seen alive or restarted). A heartbeat that timed out
    /// arrives here as not `ok`.
    pub fn heartbeat(&mut self, ok: bool, now: f64) -> Liveliness {
        if self.last_seen != Some(Seen::Alive) {
            self.healthy_since = None;
            return Liveliness::Responding;
        }
        let since = *self.healthy_since.get_or_insert(now);
        if ok {
            self.healthy_since = Some(now);
            return Liveliness::Responding;
        }
        match self.config.hang_after {
            Some(limit) if now - since >= limit.as_secs_f64() => Liveliness::Hung,
            _ => Liveliness::Responding,
        }
    }

    /// Counts one memory reading against `limit` (bytes; `None` is no limit) and returns the
    /// samples in a row above it.
    pub fn memory_reading(&mut self, rss_bytes: u64, limit: Option<u64>) -> u32 {
        self.memory_streak = match limit {
            Some(limit) if rss_bytes > limit => self.memory_streak.saturating_add(1),
            _ => 0,
        };
        self.memory_streak
    }

    pub fn current(&mut self, now: f64) -> CurrentStats {
        CurrentStats {
            process_id: self.process_id,
            process_name: self.config.name.clone(),
            required: self.config.required,
            alive: self.last_seen == Some(Seen::Alive),
            pid: self.pid(),
            rss_bytes: self.rss_bytes,
            avg_response_ms: self.response.window.average(now),
            max_response_ms: self.response.window.max(now),
            last_response_ms: self.response.last,
            last_check_ok: self.last_check_ok,
            avg_mem_pct: self.memory.window.average(now),
            max_mem_pct: self.memory.window.max(now),
            last_mem_pct: self.memory.last,
            avg_cpu_pct: self.cpu.window.average(now),
            last_cpu_pct: self.cpu.last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::config::Config;

    /// A required process `p` as the configuration reads it, without a health check.
    fn monitored() -> Monitored {
        let text = "[database]\nuser = u\n\n[monitor]\nhost = h\n\n[process.p]\n\
                    health_check_command =\n";
        let config =
            Config::from_ini_text(Path::new("config.ini"), text, None).expect("a valid config");
        let process = config.process("p").expect("p is configured");
        Monitored::new(1, process, Duration::from_secs(60))
    }

    #[test]
    fn checks_open_and_close_outages_and_count_the_dead_streak() {
        use Seen::*;
        let mut process = monitored();
        // (seen, outage began, outage ended, dead enough) with dead_after = 3
        let cases = [
            (Alive, false, true, false), // first check: the database learns it is up
            (Alive, false, false, false),
            (Dead, true, false, false),
            (Dead, false, false, false),
            (Alive, false, true, false), // a flap: the streak starts again
            (Dead, true, false, false),
            (Dead, false, false, false),
            (Dead, false, false, true),  // third in a row
            (Dead, false, false, false), // raised once, not again
        ];
        for (i, (seen, began, ended, enough)) in cases.into_iter().enumerate() {
            let got = process.check(seen, 3);
            assert_eq!(
                (got.outage_began, got.outage_ended, got.dead_enough),
                (began, ended, enough),
                "check {i}: {seen:?}"
            );
        }
    }

    #[test]
    fn a_process_first_seen_dead_opens_an_outage_and_alarms_once() {
        let mut process = monitored();
        let first = process.check(Seen::Dead, 1);
        assert!(first.outage_began && first.dead_enough);
        let second = process.check(Seen::Dead, 1);
        assert!(!second.outage_began && !second.dead_enough);
    }

    #[test]
    fn a_process_is_hung_after_hang_after_without_a_healthy_heartbeat_counted_from_first_seen() {
        let mut process = monitored();
        process.config.hang_after = Some(Duration::from_secs(2));
        // Not known alive: never hung.
        assert_eq!(process.heartbeat(false, 0.0), Liveliness::Responding);
        process.check(Seen::Alive, 3);
        // (now, ok, expected): counting starts at the first heartbeat seen alive.
        let cases = [
            (10.0, false, Liveliness::Responding),
            (11.9, false, Liveliness::Responding),
            (12.0, false, Liveliness::Hung),
            (12.5, true, Liveliness::Responding),
            (14.0, false, Liveliness::Responding),
            (14.5, false, Liveliness::Hung),
        ];
        for (now, ok, expected) in cases {
            assert_eq!(process.heartbeat(ok, now), expected, "at {now}");
        }
        // A restart (or an exit) starts the count again.
        process.lose();
        assert_eq!(process.heartbeat(false, 20.0), Liveliness::Responding);
        assert_eq!(process.heartbeat(false, 21.0), Liveliness::Responding);
        process.config.hang_after = None;
        assert_eq!(process.heartbeat(false, 99.0), Liveliness::Responding);
    }

    #[test]
    fn readings_above_max_memory_are_counted_in_a_row() {
        let mut process = monitored();
        let limit = Some(100);
        assert_eq!(process.memory_reading(101, limit), 1);
        assert_eq!(process.memory_reading(200, limit), 2);
        assert_eq!(process.memory_reading(100, limit), 0);
        assert_eq!(process.memory_reading(101, limit), 1);
        assert_eq!(process.memory_reading(10_000, None), 0);
    }

    #[test]
    fn only_required_processes_out_of_alarm_and_out_of_hand_are_auto_alarmed() {
        let mut process = monitored();
        assert!(process.may_auto_alarm(true));
        assert!(!process.may_auto_alarm(false));
        process.alarm_raised = true;
        assert!(!process.may_auto_alarm(true));
        process.alarm_raised = false;
        process.in_hand = true;
        assert!(!process.may_auto_alarm(true));
        process.in_hand = false;
        process.config.required = false;
        assert!(!process.may_auto_alarm(true));
    }
}
