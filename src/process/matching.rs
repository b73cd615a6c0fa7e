//! The rule that says whether a process is the configured one.

use std::path::Path;

use crate::config::ProcessMatch;

use super::base_name;

/// Whether a process with this command line and executable stands for the configured process
/// `name`. A process without a command line (a kernel thread, or a zombie read for the first
/// time) never matches.
///
/// - `Name`: the base name of argv\[0\] or of the executable equals `name` (like `pgrep -x`,
///   but on the whole name, not the kernel's 15-character `comm`).
/// - `CommandLine`: the regex is found in the arguments joined with single spaces.
/// - `Arguments`: every argument named by index exists and its regex is found in it.
pub fn matches(name: &str, matcher: &ProcessMatch, cmdline: &[String], exe: Option<&Path>) -> bool {
    let Some(argv0) = cmdline.first() else {
        return false;
    };
    match matcher {
        ProcessMatch::Name => {
            base_name(Path::new(argv0)) == Some(name) || exe.and_then(base_name) == Some(name)
        }
        ProcessMatch::CommandLine(regex) => regex.is_match(&cmdline.join(" ")),
        ProcessMatch::Arguments(arguments) => arguments.iter().all(|(index, regex)| {
            cmdline
                .get(*index)
                .is_some_and(|argument| regex.is_match(argument))
        }),
    }
}
