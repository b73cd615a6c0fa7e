//! What `depends_on` means, as pure decisions over the configuration and what is known of each
//! process now: whether an alarm may be handled or waits for a dependency, and which of the
//! processes found dead together is the root cause.
//!
//! Only dependencies handled on this host count: a dependency configured for other hosts is
//! another monitor's to keep alive, and this host cannot see it. The configuration refuses
//! cycles, so every walk here ends; each also keeps a set of visited names, so that it would
//! end on a cycle too.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::Config;

/// What is known of a dependency now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyState {
    /// Alive, and not in alarm.
    Up,
    /// Dead, or in alarm: it is handled first.
    Down,
    /// Its breaker is open: no restart of it is tried until the breaker allows one.
    BreakerOpen,
}

/// Whether an alarm on a process may be handled now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// A dependency is down; the alarm stays raised and is handled once it is back.
    WaitFor(String),
    /// A dependency cannot be restarted until its breaker allows it: not tried either.
    DependencyBreakerOpen(String),
}

/// The dependencies of `name` that this host handles, in the order configured.
pub fn local_dependencies<'a>(config: &'a Config, name: &str) -> Vec<&'a str> {
    config
        .processes
        .get(name)
        .map(|process| {
            process
                .depends_on
                .iter()
                .map(String::as_str)
                .filter(|dependency| config.process(dependency).is_some())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the alarm on `name` may be handled, given the state of each of its dependencies.
/// An open breaker is reported before a dependency that is merely down: it is the one an
/// operator must act on.
pub fn readiness(
    config: &Config,
    name: &str,
    state_of: impl Fn(&str) -> DependencyState,
) -> Readiness {
    let dependencies = local_dependencies(config, name);
    let states: Vec<(&str, DependencyState)> = dependencies
        .iter()
        .map(|dependency| (*dependency, state_of(dependency)))
        .collect();
    if let Some((dependency, _)) = states
        .iter()
        .find(|(_, state)| *state == DependencyState::BreakerOpen)
    {
        return Readiness::DependencyBreakerOpen((*dependency).to_owned());
    }
    match states
        .iter()
        .find(|(_, state)| *state == DependencyState::Down)
    {
        Some((dependency, _)) => Readiness::WaitFor((*dependency).to_owned()),
        None => Readiness::Ready,
    }
}

/// The processes of `down` that depend on nothing else in `down`, directly or through other
/// processes: the root causes, each with the processes of `down` it took down (those that
/// depend on it, directly or not), by name.
pub fn root_causes(config: &Config, down: &BTreeSet<String>) -> BTreeMap<String, Vec<String>> {
    let mut roots: BTreeMap<String, Vec<String>> = down
        .iter()
        .filter(|name| !depends_on_any(config, name, down))
        .map(|name| (name.clone(), Vec::new()))
        .collect();
    let dependents: Vec<&String> = down
        .iter()
        .filter(|name| !roots.contains_key(*name))
        .collect();
    for name in dependents {
        for root in reachable(config, name)
            .iter()
            .filter(|dependency| down.contains(*dependency))
        {
            if let Some(taken) = roots.get_mut(root) {
                taken.push(name.clone());
            }
        }
    }
    roots
}

/// Whether `name` depends, directly or not, on a process of `down`.
fn depends_on_any(config: &Config, name: &str, down: &BTreeSet<String>) -> bool {
    reachable(config, name)
        .iter()
        .any(|dependency| down.contains(dependency))
}

/// Every process `name` depends on through this host's dependencies, itself left out.
fn reachable(config: &Config, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut next: Vec<&str> = local_dependencies(config, name);
    while let Some(dependency) = next.pop() {
        if dependency != name && seen.insert(dependency.to_owned()) {
            next.extend(local_dependencies(config, dependency));
        }
    }
    seen
}

/// The processes of this host that depend directly on `name`, by name: what
/// `restart_with_dependencies` restarts after it.
pub fn dependents<'a>(config: &'a Config, name: &str) -> Vec<&'a str> {
    config
        .processes
        .values()
        .filter(|process| config.process(&process.name).is_some())
        .filter(|process| process.depends_on.iter().any(|d| d == name))
        .map(|process| process.name.as_str())
        .collect()
}

/// The dependents of `name` to restart after it: those of [`dependents`] with
/// `restart_with_dependencies`.
pub fn followers<'a>(config: &'a Config, name: &str) -> Vec<&'a str> {
    dependents(config, name)
        .into_iter()
        .filter(|dependent| {
            config
                .process(dependent)
                .is_some_and(|p| p.restart_with_dependencies)
        })
        .collect()
}

/// Every process of this host that depends on `name`, directly or through others: the ones
/// its outage may have taken down.
pub fn all_dependents(config: &Config, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut next = dependents(config, name);
    while let Some(dependent) = next.pop() {
        if dependent != name && seen.insert(dependent.to_owned()) {
            next.extend(dependents(config, dependent));
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(sections: &str) -> Config {
        let text = format!(
            "[database]\nuser = u\n\n[monitor]\nhost = web1\nallow_unconfigured = false\n\n{sections}"
        );
        Config::from_ini_text(Path::new("config.ini"), &text, None).expect("a valid config")
    }

    /// A → B → C, D independent, E on another host that A also needs.
    fn chain() -> Config {
        config(
            "[process.a]\ndepends_on = b, e\n\n[process.b]\ndepends_on = c\n\n[process.c]\n\n\
             [process.d]\n\n[process.e]\nhosts = other\n",
        )
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn only_dependencies_handled_on_this_host_count() {
        let config = chain();
        assert_eq!(local_dependencies(&config, "a"), ["b"]);
        assert_eq!(local_dependencies(&config, "c"), Vec::<&str>::new());
        assert_eq!(local_dependencies(&config, "unknown"), Vec::<&str>::new());
    }

    #[test]
    fn an_alarm_waits_for_a_dependency_that_is_down_and_names_an_open_breaker_first() {
        let config = config("[process.a]\ndepends_on = b, c\n\n[process.b]\n\n[process.c]\n");
        let cases = [
            ((DependencyState::Up, DependencyState::Up), Readiness::Ready),
            (
                (DependencyState::Down, DependencyState::Up),
                Readiness::WaitFor("b".to_owned()),
            ),
            (
                (DependencyState::Down, DependencyState::BreakerOpen),
                Readiness::DependencyBreakerOpen("c".to_owned()),
            ),
        ];
        for ((b, c), expected) in cases {
            let state = |name: &str| if name == "b" { b } else { c };
            assert_eq!(readiness(&config, "a", state), expected, "b {b:?}, c {c:?}");
        }
        assert_eq!(
            readiness(&config, "b", |_| DependencyState::Down),
            Readiness::Ready
        );
    }

    #[test]
    fn the_root_cause_is_the_dead_process_no_other_dead_one_is_under() {
        let config = chain();
        let all = root_causes(&config, &names(&["a", "b", "c", "d"]));
        assert_eq!(
            all,
            BTreeMap::from([
                ("c".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
                ("d".to_owned(), Vec::new()),
            ])
        );
        // With C alive, B is the root of A's outage.
        let upper = root_causes(&config, &names(&["a", "b"]));
        assert_eq!(
            upper,
            BTreeMap::from([("b".to_owned(), vec!["a".to_owned()])])
        );
        // A dead dependent over a live dependency is its own root.
        let alone = root_causes(&config, &names(&["a"]));
        assert_eq!(alone, BTreeMap::from([("a".to_owned(), Vec::new())]));
    }

    #[test]
    fn dependents_are_the_processes_that_name_it() {
        let config = chain();
        assert_eq!(dependents(&config, "c"), ["b"]);
        assert_eq!(dependents(&config, "b"), ["a"]);
        assert_eq!(dependents(&config, "a"), Vec::<&str>::new());
        assert_eq!(all_dependents(&config, "c"), names(&["a", "b"]));
        assert_eq!(all_dependents(&config, "d"), names(&[]));
    }
}
