//! Running commands: pre-restart commands, health checks and start commands.
//!
//! This module owns every child process the service starts. A command runs in its own process
//! group so that it can be killed with everything it started; it is always reaped, and a
//! grandchild that keeps its stderr open never makes the service wait past the deadline. Start
//! commands are the exception: they are detached into their own session so that they outlive
//! the service.
//!
//! The parts: the process name as `$1` (`argument`), what a child may inherit (`environment`),
//! the deadline and the process-group kill (`group`), stderr capture (`stderr`), how a command
//! ended (`outcome`), and detached start commands (`detached`).

mod argument;
mod detached;
mod environment;
mod group;
mod line;
mod outcome;
mod stderr;

use std::process::Stdio;
use std::time::Duration;

use nix::unistd::Pid;
use tokio::process::Command;
use tokio::time::{Instant, sleep};

use argument::shell_command;
use environment::scrub_environment;
use group::{GroupGuard, wait_or_kill};
use stderr::{collect, excerpt, start_reading};

pub use detached::{spawn_detached, spawn_launch};
pub use environment::SCRUBBED_ENVIRONMENT;
pub use outcome::{CommandFailure, CommandOutcome, outcome, spawn_failure};

/// Pauses between health check attempts: they start short, so that a quick restart is confirmed
/// quickly, and grow so that a slow one is not hammered.
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const LONGEST_PAUSE: Duration = Duration::from_millis(500);

/// A command to run.
#[derive(Debug, Clone, Copy)]
pub enum Program<'a> {
    /// A configured command line, run by `/bin/sh -c` with the process name as `$1`.
    Shell { text: &'a str, name: &'a str },
    /// A program run directly (found on `PATH`), with its arguments.
    Exec {
        program: &'a str,
        args: &'a [&'a str],
    },
}

impl Program<'_> {
    fn command(&self) -> Command {
        match *self {
            Program::Shell { text, name } => shell_command(text, name),
            Program::Exec { program, args } => {
                let mut command = Command::new(program);
                command.args(args);
                command
            }
        }
    }

    /// The name to report when the program cannot be found.
    fn program_name(&self) -> &str {
        match *self {
            Program::Shell { text, .. } => text.split_whitespace().next().unwrap_or(text),
            Program::Exec { program, .. } => program,
        }
    }
}

/// Runs `program` and waits at most `deadline` for it to exit. At the deadline its whole
/// process group is killed. Whatever the command left running in its group is killed too once
/// it exits, and the command is always reaped.
pub async fn run(program: Program<'_>, deadline: Duration) -> CommandOutcome {
    run_fed(program, None, deadline).await
}

/// As [`run`], with `input` written to the command's stdin (then closed): the alert hook gets
/// its event this way. A command that does not read it is not waited for beyond `deadline`.
pub async fn run_with_input(
    program: Program<'_>,
    input: Vec<u8>,
    deadline: Duration,
) -> CommandOutcome {
    run_fed(program, Some(input), deadline).await
}

async fn run_fed(
    program: Program<'_>,
    input: Option<Vec<u8>>,
    deadline: Duration,
) -> CommandOutcome {
    let mut command = program.command();
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    command
        .process_group(0)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    scrub_environment(&mut command);

    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return CommandOutcome::Failed(spawn_failure(&program, &error)),
    };
    let group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .map(Pid::from_raw);
    let stderr = child.stderr.take().map(start_reading);
    if let (Some(input), Some(mut pipe)) = (input, child.stdin.take()) {
        // The pipe's buffer holds an event; a child that exits or is killed unread ends the
        // write with EPIPE, so this never outlives the command for long.
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = pipe.write_all(&input).await;
        });
    }

    let cancelled = GroupGuard(group);
    let status = wait_or_kill(&mut child, group, deadline).await;
    cancelled.disarm();
    let excerpt = excerpt(&collect(stderr).await);
    match status {
        Some(status) => outcome(&program, status, excerpt),
        None => CommandOutcome::Failed(CommandFailure::Timeout(deadline)),
    }
}

/// The outcome of [`run_until_success`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub outcome: CommandOutcome,
    /// How many times the command ran.
    pub attempts: u32,
}

/// Runs `program` until it exits 0 or `overall_deadline` has passed, each run bounded by the
/// time left; this is the health check that "is retried for the configurable timeout period".
/// A command that cannot be found or started is not retried: no retry can fix configuration.
/// When it never succeeds, the last failure is returned (a run cut by the deadline reports
/// `Timeout(overall_deadline)`).
pub async fn run_until_success(program: Program<'_>, overall_deadline: Duration) -> HealthCheck {
    let end = crate::deadline::from_now(overall_deadline);
    let mut pause = FIRST_PAUSE;
    let mut attempts = 0;
    let mut last = CommandFailure::Timeout(overall_deadline);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return HealthCheck {
                outcome: CommandOutcome::Failed(last),
                attempts,
            };
        }
        attempts += 1;
        last = match run(program, left).await {
            CommandOutcome::Success => {
                return HealthCheck {
                    outcome: CommandOutcome::Success,
                    attempts,
                };
            }
            CommandOutcome::Failed(CommandFailure::Timeout(_)) => {
                CommandFailure::Timeout(overall_deadline)
            }
            CommandOutcome::Failed(
                failure @ (CommandFailure::NotFound(_) | CommandFailure::Spawn(_)),
            ) => {
                return HealthCheck {
                    outcome: CommandOutcome::Failed(failure),
                    attempts,
                };
            }
            CommandOutcome::Failed(failure) => failure,
        };
        sleep(pause.min(end.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}
