//! The deadline of a command and the kill of its whole process group: at the deadline, after
//! the command exits (whatever it left running), and when the caller drops the run.

use std::process::ExitStatus;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::time::timeout;

/// How long to wait for a SIGKILLed command to be reaped. Only a process stuck in the kernel
/// (uninterruptible sleep) takes longer; tokio then reaps it in the background.
const REAP_GRACE: Duration = Duration::from_secs(1);

/// Waits for the child to exit, then kills what is left of its process group. `None` when the
/// deadline passed (or waiting failed) and the child had to be killed.
pub(super) async fn wait_or_kill(
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
pub(super) struct GroupGuard(pub(super) Option<Pid>);

impl GroupGuard {
    pub(super) fn disarm(mut self) {
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
