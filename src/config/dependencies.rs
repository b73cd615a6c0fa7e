//! What `depends_on` may name: only configured processes, and never a way back to the process
//! itself.

use std::collections::{BTreeMap, BTreeSet};

use super::fields::Fields;
use super::problem::Problem;
use super::{PROCESS_PREFIX, ProcessConfig};

/// Names in `depends_on` must have a section. Inherited names were checked in
/// `[process.default]`, so only a section's own `depends_on` is checked here.
pub(super) fn check_dependencies_exist(
    fields: &mut Fields<'_>,
    process: &ProcessConfig,
    known: &BTreeSet<&str>,
) {
    if !fields.has("depends_on") {
        return;
    }
    for dependency in &process.depends_on {
        if !known.contains(dependency.as_str()) {
            let why =
                format!("\"{dependency}\" is not a configured process (no [process.{dependency}])");
            fields.fail("depends_on", why);
        }
    }
}

/// Reports each process whose `depends_on` leads back to itself, with the way round.
pub(super) fn check_dependency_cycles(
    processes: &BTreeMap<String, ProcessConfig>,
    problems: &mut Vec<Problem>,
) {
    for name in processes.keys() {
        if let Some(cycle) = dependency_cycle(processes, name) {
            problems.push(Problem::key(
                &format!("{PROCESS_PREFIX}{name}"),
                "depends_on",
                format!("depends on itself: {name} -> {}", cycle.join(" -> ")),
            ));
        }
    }
}

/// The dependencies leading from `start` back to `start`, if any.
fn dependency_cycle<'a>(
    processes: &'a BTreeMap<String, ProcessConfig>,
    start: &str,
) -> Option<Vec<&'a str>> {
    let mut path = Vec::new();
    let mut seen = BTreeSet::new();
    walk_dependencies(processes, start, start, &mut path, &mut seen).then_some(path)
}

fn walk_dependencies<'a>(
    processes: &'a BTreeMap<String, ProcessConfig>,
    start: &str,
    current: &str,
    path: &mut Vec<&'a str>,
    seen: &mut BTreeSet<&'a str>,
) -> bool {
    let Some(process) = processes.get(current) else {
        return false;
    };
    for next in &process.depends_on {
        path.push(next);
        if next == start
            || (seen.insert(next) && walk_dependencies(processes, start, next, path, seen))
        {
            return true;
        }
        path.pop();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::process_section::builtin_process;

    fn depending(pairs: &[(&str, &[&str])]) -> BTreeMap<String, ProcessConfig> {
        pairs
            .iter()
            .map(|(name, deps)| {
                let mut process = builtin_process().named(name);
                process.depends_on = deps.iter().map(|d| (*d).to_owned()).collect();
                ((*name).to_owned(), process)
            })
            .collect()
    }

    #[test]
    fn dependency_cycles_are_found_with_their_way_round() {
        let processes = depending(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
        assert_eq!(dependency_cycle(&processes, "a"), Some(vec!["b", "c", "a"]));
        assert_eq!(dependency_cycle(&processes, "d"), None);
        let itself = depending(&[("a", &["a"])]);
        assert_eq!(dependency_cycle(&itself, "a"), Some(vec!["a"]));
        let chain = depending(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
        assert_eq!(dependency_cycle(&chain, "a"), None);
    }
}
