//! Start commands: run detached from the service, in a session of their own, so that they
//! outlive it.

use std::io;
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::argument::shell_command;
use super::environment::scrub_environment;

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
