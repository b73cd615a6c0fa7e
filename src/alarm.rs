//! The nouns the poller, the restarter, the sampler and the database share about a process in
//! alarm: the alarm itself, why it is being handled, and the restarter's notices to the
//! sampler. A leaf: it depends on nothing else of the crate, so that those modules can all
//! name these without depending on each other.

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
    Ended(i32),
}

/// The names of this host's processes the sampler saw dead at their last check: published on
/// a `watch` for the restarter, so that an alarm waits while a dependency is dead.
pub type DeadSet = std::sync::Arc<std::collections::BTreeSet<String>>;
