//! The nouns the poller, the restarter, the sampler and the database share about a process in
//! alarm: the alarm itself, why it is being handled, and the restarter's notices to the
//! sampler. A leaf: it depends on nothing else of the crate, so that those modules can all
//! name these without depending on each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// A process in alarm, handed from the poll (or the auto alarm) to the restarter.
#[derive(Debug, Clone)]
pub struct Alarm {
    pub process_id: i32,
    pub process_name: String,
    pub source: TriggerSource,
    /// When the monitor first saw it, for `RESTART_EVENTS.detected_at`.
    pub seen_at: Instant,
}

/// Why a process is being handled: `RESTART_EVENTS.trigger_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerSource {
    Alarm,
    Manual,
    /// Found dead by the sampler (`auto_alarm`).
    Auto,
    /// Alive, but without a healthy heartbeat for `hang_after`.
    Hang,
    /// Above `max_memory` for `dead_after` samples in a row.
    Memory,
    /// Restarted after a process it depends on (`restart_with_dependencies`).
    Dependency,
}

impl TriggerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerSource::Alarm => "alarm",
            TriggerSource::Manual => "manual",
            TriggerSource::Auto => "auto",
            TriggerSource::Hang => "hang",
            TriggerSource::Memory => "memory",
            TriggerSource::Dependency => "dependency",
        }
    }
}

/// What the restarter tells the sampler, so that a restart's own kill is not taken for a
/// death, and the new process is watched at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartNotice {
    Began(i32),
    /// The restart of `process_id` ended; `started` is the process it started, when it
    /// started one directly.
    Ended {
        process_id: i32,
        /// The cycle started the process (and cleared its alarm).
        restarted: bool,
        /// The alarm is cleared: by this cycle, or by someone else before it.
        alarm_cleared: bool,
        started: Option<Started>,
    },
}

/// A process a restart started: its PID and its `starttime` (of `/proc/PID/stat`), which
/// together name it even after the PID is reused. So the sampler watches it without looking
/// for it in the whole process table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub pid: i32,
    pub start_time: u64,
}

/// The names of this host's processes the sampler saw dead at their last check: published on
/// a `watch` for the restarter, so that an alarm waits while a dependency is dead.
pub type DeadSet = std::sync::Arc<std::collections::BTreeSet<String>>;

/// The alarms this host's sampler is raising, by process id, with why and since when. The poll
/// may read such an alarm from the table before the sampler's own hand-over reaches the
/// restarter; the restarter then still handles it for the sampler's reason (`auto`, `hang`,
/// `memory`) rather than as an alarm raised by someone else.
#[derive(Debug, Clone, Default)]
pub struct RaisedHere(Arc<Mutex<HashMap<i32, (TriggerSource, Instant)>>>);

impl RaisedHere {
    /// The sampler is raising the alarm of `process_id` for `source`.
    pub fn note(&self, process_id: i32, source: TriggerSource, seen_at: Instant) {
        let mut raised = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        raised.insert(process_id, (source, seen_at));
    }

    /// The sampler did not raise it after all (it was raised already, or the write failed).
    pub fn forget(&self, process_id: i32) {
        let mut raised = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        raised.remove(&process_id);
    }

    /// Gives `alarm` the sampler's reason when the sampler raised it, whichever of the poll
    /// and the hand-over brings it first; the note is used up either way.
    pub fn apply(&self, alarm: &mut Alarm) {
        let mut raised = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((source, seen_at)) = raised.remove(&alarm.process_id) else {
            return;
        };
        if alarm.source == TriggerSource::Alarm {
            alarm.source = source;
            alarm.seen_at = seen_at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alarm_the_poll_brings_first_keeps_the_samplers_reason_once() {
        let raised = RaisedHere::default();
        let seen = Instant::now();
        raised.note(7, TriggerSource::Memory, seen);
        let polled = |id| Alarm {
            process_id: id,
            process_name: "p".to_owned(),
            source: TriggerSource::Alarm,
            seen_at: Instant::now(),
        };
        let mut first = polled(7);
        raised.apply(&mut first);
        assert_eq!((first.source, first.seen_at), (TriggerSource::Memory, seen));
        let mut again = polled(7);
        raised.apply(&mut again);
        assert_eq!(again.source, TriggerSource::Alarm, "used up");
        raised.note(8, TriggerSource::Hang, seen);
        raised.forget(8);
        let mut other = polled(8);
        raised.apply(&mut other);
        assert_eq!(other.source, TriggerSource::Alarm);
    }
}
