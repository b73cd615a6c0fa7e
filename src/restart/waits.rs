//! `depends_on` in the restarter: an alarm on a process whose dependency is down (in hand,
//! in alarm, waiting, or dead as the sampler last saw it) is deferred, not claimed, so its
//! breaker is not charged; it is let go as soon as the dependency is back: when that
//! dependency's cycle ends, or when the sampler's dead set no longer names it. An alarm whose
//! dependency has its breaker open is not tried. The decision itself is
//! `dependency::readiness`; this keeps what it needs to know.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::alarm::{Alarm, DeadSet};
use crate::config::Config;
use crate::dependency::{self, DependencyState, Readiness};
use crate::note;

use super::handle::Handled;

/// What becomes of an alarm, as far as its dependencies go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its dependencies are up: handle it.
    Go,
    /// Not now; the note to write when it changed.
    Hold(Option<String>),
}

pub struct Waits {
    dead: watch::Receiver<DeadSet>,
    /// False once the sampler is gone (`stats_interval = 0`): its last set stays the word.
    dead_open: bool,
    /// Alarms deferred, in the order they came, with the dependency each waits for.
    deferred: Vec<(Alarm, String)>,
    /// Names in alarm beside those in hand: the batch being dispatched.
    alarmed_now: HashSet<String>,
    /// Names whose last handling found their breaker open, and until when.
    breaker_open: HashMap<String, DateTime<Utc>>,
    /// Names whose cycle just succeeded: up, whatever the dead set says, until the sampler has
    /// seen them alive (or its set says nothing of them).
    just_restarted: HashSet<String>,
}

impl Waits {
    pub fn new(dead: watch::Receiver<DeadSet>) -> Waits {
        Waits {
            dead,
            dead_open: true,
            deferred: Vec::new(),
            alarmed_now: HashSet::new(),
            breaker_open: HashMap::new(),
            just_restarted: HashSet::new(),
        }
    }

    /// The sampler's dead set, to read later.
    pub fn dead_set(&self) -> watch::Receiver<DeadSet> {
        self.dead.clone()
    }

    /// Waits until the sampler's dead set changes; never returns once the sampler is gone.
    pub async fn dead_changed(&mut self) {
        if self.dead_open && self.dead.changed().await.is_ok() {
            let dead = self.dead.borrow_and_update().clone();
            self.just_restarted.retain(|name| dead.contains(name));
            return;
        }
        self.dead_open = false;
        std::future::pending::<()>().await;
    }

    /// The names of a batch about to be dispatched, which count as down while it is.
    pub fn set_alarmed_now(&mut self, names: HashSet<String>) {
        self.alarmed_now = names;
    }

    /// Whether `alarm` may be handled now, given what `busy` (in hand or waiting behind a
    /// cycle of the same name) and this state say of its dependencies.
    pub fn decide(
        &mut self,
        config: &Config,
        alarm: &Alarm,
        busy: impl Fn(&str) -> bool,
    ) -> Verdict {
        let readiness =
            dependency::readiness(config, &alarm.process_name, |d| self.state_of(d, &busy));
        let id = alarm.process_id;
        let before = self.deferred.iter().position(|(a, _)| a.process_id == id);
        match readiness {
            Readiness::Ready => {
                if let Some(index) = before {
                    self.deferred.remove(index);
                }
                Verdict::Go
            }
            Readiness::WaitFor(dependency) => match before {
                Some(index) if self.deferred[index].1 == dependency => Verdict::Hold(None),
                _ => {
                    tracing::info!(process = %alarm.process_name, "waits for {dependency}, which it depends on and is down");
                    let text = note::waiting_for(&dependency);
                    if let Some(index) = before {
                        self.deferred.remove(index);
                    }
                    self.deferred.push((alarm.clone(), dependency));
                    Verdict::Hold(Some(text))
                }
            },
            Readiness::DependencyBreakerOpen(dependency) => {
                if let Some(index) = before {
                    self.deferred.remove(index);
                }
                Verdict::Hold(Some(note::dependency_breaker_open(&dependency)))
            }
        }
    }

    fn state_of(&self, name: &str, busy: &impl Fn(&str) -> bool) -> DependencyState {
        if self
            .breaker_open
            .get(name)
            .is_some_and(|until| *until > Utc::now())
        {
            return DependencyState::BreakerOpen;
        }
        let deferred = self.deferred.iter().any(|(a, _)| a.process_name == name);
        if busy(name) || deferred || self.alarmed_now.contains(name) {
            return DependencyState::Down;
        }
        if !self.just_restarted.contains(name) && self.dead.borrow().contains(name) {
            return DependencyState::Down;
        }
        DependencyState::Up
    }

    /// The alarms deferred now, to be decided again.
    pub fn deferred(&self) -> Vec<Alarm> {
        self.deferred
            .iter()
            .map(|(alarm, _)| alarm.clone())
            .collect()
    }

    /// Whether an alarm on process `id` is deferred.
    pub fn is_deferred(&self, id: i32) -> bool {
        self.deferred.iter().any(|(a, _)| a.process_id == id)
    }

    /// A cycle on `name` ended as `handled`.
    pub fn finished(&mut self, name: &str, handled: &Handled) {
        match handled {
            Handled::BreakerOpen { until } => {
                self.breaker_open.insert(name.to_owned(), *until);
            }
            Handled::Restarted => {
                self.breaker_open.remove(name);
                self.just_restarted.insert(name.to_owned());
            }
            _ => {
                self.breaker_open.remove(name);
            }
        }
    }
}
