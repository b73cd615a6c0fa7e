//! Start commands: run detached from the service, in a session of their own, so that they
//! outlive it.

use std::io;
use std::process::Stdio;

use nix::unistd::{Gid, Uid};
use tokio::process::{Child, Command};

use crate::process::launch::Launch;

use super::argument::shell_command;
use super::environment::scrub_environment;

/// Starts `/bin/sh -c TEXT sh NAME` detached from the service: in a new session, with
/// `/dev/null` for stdin, stdout and stderr, a scrubbed environment and no file descriptor
/// but those three. It outlives the service;
/// dropping the returned `Child` does not kill it.
pub fn spawn_detached(text: &str, name: &str) -> io::Result<Child> {
    let mut command = shell_command(text, name);
    scrub_environment(&mut command);
    spawn(command)
}

/// Starts a process again as it was found running ([`Launch`]): its executable with its argv,
/// working directory and environment (scrubbed all the same), as its user and groups,
/// detached like [`spawn_detached`].
pub fn spawn_launch(launch: &Launch) -> io::Result<Child> {
    let mut command = Command::new(&launch.program);
    let (argv0, arguments) = launch
        .argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the recorded argv is empty"))?;
    command
        .arg0(argv0)
        .args(arguments)
        .current_dir(&launch.cwd)
        .env_clear()
        .envs(launch.environment());
    scrub_environment(&mut command);
    become_user(&mut command, launch);
    spawn(command)
}

fn spawn(mut command: Command) -> io::Result<Child> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(false);
    detach(&mut command);
    command.spawn()
}

/// Takes the launch's user, group and supplementary groups in the child, when they are not the
/// service's own (only root may change them). All three in one `pre_exec`, groups first: the
/// standard library's `uid()` would drop root before a later hook could set the groups.
#[allow(unsafe_code)]
fn become_user(command: &mut Command, launch: &Launch) {
    let (uid, gid) = (Uid::from_raw(launch.uid), Gid::from_raw(launch.gid));
    if uid == Uid::current() && gid == Gid::current() {
        return;
    }
    let groups: Vec<Gid> = launch.groups.iter().copied().map(Gid::from_raw).collect();
    // SAFETY: the closure runs in the forked child before exec and only makes the system calls
    // setgroups, setgid and setuid, all async-signal-safe; the groups were allocated before
    // the fork, and nothing is allocated or locked in the child.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setgroups(&groups)?;
            nix::unistd::setgid(gid)?;
            nix::unistd::setuid(uid)?;
            Ok(())
        });
    }
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
