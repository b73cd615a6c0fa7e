//! Running commands: pre-restart commands, health checks and start commands.
//!
//! This module owns every child process the service starts. A command runs in its own process
//! group so that it can be killed with everything it started; it is always reaped, and a
//! grandchild that keeps its stderr open never makes the service wait past the deadline. Start
//! commands are the exception: they are detached into their own session so that they outlive
//! the service.

use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// Variables that must not reach a child: systemd's notification and socket-activation
/// variables would let a child speak for the service (or steal its sockets), and the database
/// password is a secret.
pub const SCRUBBED_ENVIRONMENT: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "MONITOR_DB_PASSWORD",
];

/// How much of a command's stderr is kept; the rest is read and thrown away so that a chatty
/// command never blocks on a full pipe.
const STDERR_LIMIT: usize = 4096;

/// The longest stderr excerpt kept in a failure: it ends up in a 100-character note.
const EXCERPT_CHARS: usize = 80;

/// How long the stderr reader may still run once the command has exited: long enough to read
/// what the command wrote, short enough that a grandchild holding the pipe cannot hold us up.
const STDERR_GRACE: Duration = Duration::from_millis(50);

/// How long to wait for a SIGKILLed command to be reaped. Only a process stuck in the kernel
/// (uninterruptible sleep) takes longer; tokio then reaps it in the background.
const REAP_GRACE: Duration = Duration::from_secs(1);

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

/// The shell text of a configured command: every `%s` becomes `"$1"`, so the process name is
/// passed as an argument and never parsed by the shell.
pub fn shell_text(text: &str) -> String {
    text.replace("%s", "\"$1\"")
}

/// Removes [`SCRUBBED_ENVIRONMENT`] from what `command` passes to its child.
pub fn scrub_environment(command: &mut Command) {
    for variable in SCRUBBED_ENVIRONMENT {
        command.env_remove(variable);
    }
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

fn shell_command(text: &str, name: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command.args(["-c", &shell_text(text), "sh", name]);
    command
}

/// Runs `program` and waits at most `deadline` for it to exit. At the deadline its whole
/// process group is killed. Whatever the command left running in its group is killed too once
/// it exits, and the command is always reaped.
pub async fn run(program: Program<'_>, deadline: Duration) -> CommandOutcome {
    let mut command = program.command();
    command
        .process_group(0)
        .stdin(Stdio::null())
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

    let cancelled = GroupGuard(group);
    let status = wait_or_kill(&mut child, group, deadline).await;
    cancelled.disarm();
    let excerpt = excerpt(&collect(stderr).await);
    match status {
        Some(status) => outcome(&program, status, excerpt),
        None => CommandOutcome::Failed(CommandFailure::Timeout(deadline)),
    }
}

/// Waits for the child to exit, then kills what is left of its process group. `None` when the
/// deadline passed (or waiting failed) and the child had to be killed.
async fn wait_or_kill(
    child: &mut Child,
    group: Option<Pid>,
    deadline: Duration,
) -> Option<ExitStatus> {
    let status = match timeout(deadline, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot wait for a command; killing it");
            None
        }
        Err(_elapsed) => None,
    };
    // After a normal exit the group id cannot have been reused while any member is alive, so
    // this reaches exactly the processes the command left behind.
    kill_group(group);
    if status.is_none() && timeout(REAP_GRACE, child.wait()).await.is_err() {
        tracing::warn!(pid = ?group, "a killed command is not reaped yet; tokio reaps it later");
    }
    status
}

/// Kills the command's process group if `run` is dropped before the command was dealt with
/// (the caller gave up, or the service is shutting down); `kill_on_drop` alone would leave the
/// command's own children running.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

fn kill_group(group: Option<Pid>) {
    let Some(group) = group else { return };
    match killpg(group, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(error) => tracing::warn!(%error, %group, "cannot kill a command's process group"),
    }
}

/// What a command wrote to stderr, shared with the task that reads it so that what was read
/// survives when the task is aborted.
type StderrBuffer = Arc<Mutex<Vec<u8>>>;

/// Reads the child's stderr in a task, keeping up to [`STDERR_LIMIT`] bytes and draining the rest.
fn start_reading(pipe: impl AsyncRead + Unpin + Send + 'static) -> (StderrBuffer, JoinHandle<()>) {
    let buffer = StderrBuffer::default();
    let reader = tokio::spawn(read_bounded(pipe, Arc::clone(&buffer)));
    (buffer, reader)
}

async fn read_bounded(mut pipe: impl AsyncRead + Unpin, kept: StderrBuffer) {
    let mut chunk = [0_u8; 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
                let room = STDERR_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..read.min(room)]);
            }
        }
    }
}

/// What the stderr reader got, waiting only [`STDERR_GRACE`] for the end of the pipe: a
/// grandchild may hold it open forever.
async fn collect(stderr: Option<(StderrBuffer, JoinHandle<()>)>) -> Vec<u8> {
    let Some((buffer, mut reader)) = stderr else {
        return Vec::new();
    };
    if timeout(STDERR_GRACE, &mut reader).await.is_err() {
        reader.abort();
    }
    std::mem::take(&mut *buffer.lock().unwrap_or_else(PoisonError::into_inner))
}

/// The first non-empty line of `stderr`, with control characters replaced, at most
/// [`EXCERPT_CHARS`] characters long.
fn excerpt(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("");
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if clean.chars().count() <= EXCERPT_CHARS {
        return clean;
    }
    let mut cut: String = clean.chars().take(EXCERPT_CHARS - 3).collect();
    cut.push_str("...");
    cut
}

fn spawn_failure(program: &Program<'_>, error: &io::Error) -> CommandFailure {
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

/// Starts `/bin/sh -c TEXT sh NAME` detached from the service: in a new session, with
/// `/dev/null` for stdin, stdout and stderr, a scrubbed environment and no file descriptor
/// but those three. It outlives the service;
/// dropping the returned `Child` does not kill it.
pub fn spawn_detached(text: &str, name: &str) -> io::Result<Child> {
    let mut command = shell_command(text, name);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(false);
    scrub_environment(&mut command);
    detach(&mut command);
    command.spawn()
}

/// A new session makes the command the leader of its own session and process group, without a
/// controlling terminal, so that signals to the service's group never reach it. Descriptors
/// the service inherited without close-on-exec (from whatever started it) are closed at exec
/// too: the command must not hold them open for the rest of its life. It gets the soft limit
/// of open files the service started with.
#[allow(unsafe_code)]
fn detach(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes system calls
    // (setsid, getrlimit/setrlimit, close_range), all async-signal-safe; it allocates nothing
    // and takes no lock.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(io::Error::from)?;
            crate::process::files::restore_for_child();
            // Best effort: the flag needs Linux 5.11 (RHEL 9 has it). Marking close-on-exec
            // rather than closing keeps the standard library's exec-error pipe working. The
            // raw system call, not glibc's wrapper (glibc 2.34+), keeps the binary buildable
            // for RHEL 8's glibc 2.28; its kernel answers ENOSYS, which is ignored.
            let cloexec = nix::libc::CLOSE_RANGE_CLOEXEC as nix::libc::c_uint;
            nix::libc::syscall(
                nix::libc::SYS_close_range,
                3 as nix::libc::c_uint,
                nix::libc::c_uint::MAX,
                cloexec,
            );
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_s_becomes_a_quoted_positional_argument() {
        assert_eq!(shell_text("pgrep -x %s"), "pgrep -x \"$1\"");
        assert_eq!(shell_text("a %s b %s"), "a \"$1\" b \"$1\"");
        assert_eq!(shell_text("no placeholder"), "no placeholder");
    }

    #[test]
    fn excerpt_keeps_the_first_non_empty_line_short_and_printable() {
        assert_eq!(excerpt(b"\n  \nfirst line\nsecond"), "first line");
        assert_eq!(excerpt(b"tab\there\x1b[31m"), "tab?here?[31m");
        assert_eq!(excerpt(b""), "");
        let long = excerpt("é".repeat(200).as_bytes());
        assert_eq!(long.chars().count(), EXCERPT_CHARS);
        assert!(long.ends_with("..."));
    }

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
