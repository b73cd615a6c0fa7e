//! The limit of open files. Each watched process holds two descriptors (its statm file and its
//! pidfd), so watching more than a few hundred processes needs more than the soft limit of
//! 1,024 that systemd gives a service by default. The soft limit is raised, up to the hard
//! limit, only as far as the processes watched need: a small installation keeps the usual
//! limit, and so do the commands it starts. Detached start commands get the original soft
//! limit back ([`restore_for_child`]), since a long-lived program using `select()` must not
//! see more than 1,024 descriptors.
//!
//! Where even the hard limit is too small, watching must not take the descriptors that
//! restarts, commands and the database need: [`make_room_for`] says how many processes may
//! hold descriptors, leaving [`reserve`] free, and the sampler samples the rest.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors kept free beside two per watched process: database connections, the log, the
/// status page's connections, the pipes of running commands.
const RESERVE: u64 = 256;

/// Descriptors never given to watching under a soft limit of `soft`: [`RESERVE`], or half the
/// limit where that is smaller. Half of a small limit is still room for the service's own
/// dozen or so, a few restarts at once (pipes, a pidfd each, the process table's scan) and
/// the heartbeats' commands.
pub fn reserve(soft: u64) -> u64 {
    RESERVE.min(soft / 2)
}

/// The soft limit before the first raise; 0 while it was never raised.
static ORIGINAL_SOFT: AtomicU64 = AtomicU64::new(0);
/// The limit could not be raised further, and that was logged.
static AT_HARD_LIMIT: AtomicBool = AtomicBool::new(false);

/// Raises the soft limit, if need be and as far as the hard limit allows, so that `watched`
/// processes fit; returns how many processes may hold descriptors under the limit now, the
/// [`reserve`] left aside.
pub fn make_room_for(watched: usize) -> usize {
    let needed = (watched as u64).saturating_mul(2).saturating_add(RESERVE);
    let Ok((mut soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return watched;
    };
    if soft < needed && raise_to(needed) {
        soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(soft, |(soft, _)| soft);
    }
    usize::try_from(soft.saturating_sub(reserve(soft)) / 2).unwrap_or(usize::MAX)
}

/// Calls `open`, and once more after raising the soft limit when it failed for want of a
/// descriptor.
pub fn with_room<T>(mut open: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    match open() {
        Err(error) if error.raw_os_error() == Some(nix::libc::EMFILE) => {
            let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft);
            if raise_to(soft.saturating_mul(2)) {
                open()
            } else {
                Err(error)
            }
        }
        other => other,
    }
}

/// Raises the soft limit to at least `wanted` (and at least doubles it), up to the hard limit;
/// whether it grew.
fn raise_to(wanted: u64) -> bool {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return false;
    };
    let raised = wanted.max(soft.saturating_mul(2)).min(hard);
    if raised <= soft || setrlimit(Resource::RLIMIT_NOFILE, raised, hard).is_err() {
        if !AT_HARD_LIMIT.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the limit of open files is {soft} (hard limit {hard}), fewer than needed to \
                 watch every process: raise LimitNOFILE in the unit"
            );
        }
        return false;
    }
    let _ = ORIGINAL_SOFT.compare_exchange(0, soft, Ordering::Relaxed, Ordering::Relaxed);
    tracing::info!("raised the soft limit of open files from {soft} to {raised}");
    true
}

/// In a child between fork and exec: puts back the soft limit the service started with, if
/// it was raised. Only system calls: async-signal-safe.
pub fn restore_for_child() {
    let original = ORIGINAL_SOFT.load(Ordering::Relaxed);
    if original == 0 {
        return;
    }
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, original, hard);
    }
}
