//! What the sampler knows of the processes that are down, for `depends_on`: the names seen
//! dead at their last check (published on a `watch` the restarter reads, so that an alarm on
//! a process waits while a dependency is dead, and goes as soon as it is back), and the auto
//! alarms held back because a dependency is down too: only the root cause of an outage is
//! alarmed at first, its dependents once it is back and only if they are still down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::dependency::{self, DependencyState, Readiness};
use crate::process::{FoundProcess, stat};

use super::monitored::{Monitored, Seen};

pub use crate::alarm::DeadSet;

pub struct Downs {
    dead: BTreeSet<String>,
    /// The process each name was last seen alive as: a dependency killed in the same instant
    /// whose exit the sampler has not taken yet is found dead by a look at `/proc`.
    alive: HashMap<String, FoundProcess>,
    /// Auto alarms waiting for a dependency to come back: process id → name.
    held: BTreeMap<i32, String>,
    /// `dead` changed since it was last published.
    changed: bool,
    publish: watch::Sender<DeadSet>,
}

impl Downs {
    pub fn new(publish: watch::Sender<DeadSet>) -> Downs {
        Downs {
            dead: BTreeSet::new(),
            alive: HashMap::new(),
            held: BTreeMap::new(),
            changed: false,
            publish,
        }
    }

    /// Counts what one check of `process` found.
    pub fn record(&mut self, process: &Monitored, seen: Seen) {
        let name = process.name();
        match seen {
            Seen::Alive => {
                self.changed |= self.dead.remove(name);
                let found = process.watched.as_ref().map(|w| w.process);
                match found.or(process.unwatchable) {
                    Some(found) => self.alive.insert(name.to_owned(), found),
                    None => self.alive.remove(name),
                };
            }
            Seen::Dead => {
                self.alive.remove(name);
                self.changed |= self.dead.insert(name.to_owned());
            }
        }
    }

    /// Whether `name` is down: seen dead, or its process gone though its exit is not counted
    /// yet.
    fn is_down(&self, name: &str) -> bool {
        self.dead.contains(name)
            || self.alive.get(name).is_some_and(|found| {
                !stat::read(found.pid)
                    .is_some_and(|s| !s.is_dead() && s.start_time == found.start_time)
            })
    }

    /// The first dependency of `name` that is down. Direct ones are enough: a dependency
    /// that is up and its own dependencies down has its own alarm to wait for.
    pub fn down_dependency(&self, config: &Config, name: &str) -> Option<String> {
        let state = |d: &str| match self.is_down(d) {
            true => DependencyState::Down,
            false => DependencyState::Up,
        };
        match dependency::readiness(config, name, state) {
            Readiness::WaitFor(d) | Readiness::DependencyBreakerOpen(d) => Some(d),
            Readiness::Ready => None,
        }
    }

    /// The processes that depend on `name` and are down with it.
    pub fn taken_down(&self, config: &Config, name: &str) -> Vec<String> {
        dependency::all_dependents(config, name)
            .into_iter()
            .filter(|dependent| self.is_down(dependent))
            .collect()
    }

    pub fn hold(&mut self, process_id: i32, name: &str) {
        self.held.insert(process_id, name.to_owned());
    }

    /// The held alarms, taken out: the caller holds again those still waiting.
    pub fn take_held(&mut self) -> BTreeMap<i32, String> {
        std::mem::take(&mut self.held)
    }

    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Forgets the names no longer on the roster.
    pub fn keep_only(&mut self, names: &BTreeSet<&str>) {
        let before = self.dead.len();
        self.dead.retain(|name| names.contains(name.as_str()));
        self.changed |= self.dead.len() != before;
        self.alive.retain(|name, _| names.contains(name.as_str()));
        self.held.retain(|_, name| names.contains(name.as_str()));
    }

    /// Tells the restarter which processes are dead, when that changed.
    pub fn publish(&mut self) {
        if !std::mem::take(&mut self.changed) {
            return;
        }
        let dead = Arc::new(self.dead.clone());
        self.publish.send_replace(dead);
    }
}
