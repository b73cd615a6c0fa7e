//! How a command ended, read from its exit status and stderr, in words short enough for a note.

use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::Program;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    Success,
    Failed(CommandFailure),
}

/// Why a command failed. `stderr` fields hold a short excerpt (the first non-empty line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandFailure {
    Exit {
        code: i32,
        stderr: String,
    },
    /// Killed by a signal it did not get from us, e.g. `SIGSEGV`.
    Signal {
        signal: String,
        stderr: String,
    },
    /// Still running at the deadline: it was killed with its whole process group.
    Timeout(Duration),
    /// The program does not exist (or the shell exited with 127).
    NotFound(String),
    /// The command could not be started at all.
    Spawn(String),
}

impl fmt::Display for CommandOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandOutcome::Success => f.write_str("success"),
            CommandOutcome::Failed(failure) => failure.fmt(f),
        }
    }
}

impl fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandFailure::Exit { code, stderr } if stderr.is_empty() => write!(f, "exit {code}"),
            CommandFailure::Exit { code, stderr } => write!(f, "exit {code}: {stderr}"),
            CommandFailure::Signal { signal, stderr } if stderr.is_empty() => {
                write!(f, "killed by {signal}")
            }
            CommandFailure::Signal { signal, stderr } => write!(f, "killed by {signal}: {stderr}"),
            CommandFailure::Timeout(after) => write!(f, "timed out after {}", human(*after)),
            CommandFailure::NotFound(program) => write!(f, "command not found: {program}"),
            CommandFailure::Spawn(why) => write!(f, "cannot start: {why}"),
        }
    }
}

/// `5s`, `2.5s` or `250ms`: short enough for a note.
fn human(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else if duration.as_secs() > 0 {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// Why `program` could not be started: not found (by the name an operator wrote), or another
/// error of the system.
pub fn spawn_failure(program: &Program<'_>, error: &io::Error) -> CommandFailure {
    if error.kind() == io::ErrorKind::NotFound {
        CommandFailure::NotFound(program.program_name().to_owned())
    } else {
        CommandFailure::Spawn(error.to_string())
    }
}

/// How a command that exited with `status` fared; `stderr` is the excerpt to report (empty when
/// there is none). For callers that wait on a child themselves, such as a detached start
/// command that exits early.
pub fn outcome(program: &Program<'_>, status: ExitStatus, stderr: String) -> CommandOutcome {
    if status.success() {
        return CommandOutcome::Success;
    }
    let failure = match (status.code(), status.signal()) {
        (Some(127), _) if matches!(program, Program::Shell { .. }) => {
            let name = missing_command(&stderr).unwrap_or_else(|| program.program_name());
            CommandFailure::NotFound(name.to_owned())
        }
        (Some(code), _) => CommandFailure::Exit { code, stderr },
        (None, Some(number)) => CommandFailure::Signal {
            signal: signal_name(number),
            stderr,
        },
        (None, None) => CommandFailure::Spawn(format!("unexpected status {status}")),
    };
    CommandOutcome::Failed(failure)
}

/// The command the shell could not find, from `sh: 1: foo: not found` (dash) or
/// `sh: line 1: foo: command not found` (bash).
fn missing_command(stderr: &str) -> Option<&str> {
    let rest = stderr
        .strip_suffix(": command not found")
        .or_else(|| stderr.strip_suffix(": not found"))?;
    rest.rsplit(": ").next().filter(|name| !name.is_empty())
}

fn signal_name(number: i32) -> String {
    Signal::try_from(number).map_or_else(|_| format!("signal {number}"), |s| s.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_command_is_read_from_dash_and_bash_messages() {
        assert_eq!(missing_command("sh: 1: foo: not found"), Some("foo"));
        assert_eq!(
            missing_command("sh: line 1: foo: command not found"),
            Some("foo")
        );
        assert_eq!(missing_command("something else"), None);
    }

    #[test]
    fn failures_read_well_in_a_note() {
        let cases = [
            (
                CommandFailure::Exit {
                    code: 3,
                    stderr: "boom".into(),
                },
                "exit 3: boom",
            ),
            (
                CommandFailure::Exit {
                    code: 1,
                    stderr: String::new(),
                },
                "exit 1",
            ),
            (
                CommandFailure::Signal {
                    signal: "SIGSEGV".into(),
                    stderr: String::new(),
                },
                "killed by SIGSEGV",
            ),
            (
                CommandFailure::Timeout(Duration::from_secs(5)),
                "timed out after 5s",
            ),
            (
                CommandFailure::Timeout(Duration::from_millis(2500)),
                "timed out after 2.5s",
            ),
            (
                CommandFailure::Timeout(Duration::from_millis(250)),
                "timed out after 250ms",
            ),
            (
                CommandFailure::NotFound("foo".into()),
                "command not found: foo",
            ),
        ];
        for (failure, text) in cases {
            assert_eq!(failure.to_string(), text);
        }
    }
}
