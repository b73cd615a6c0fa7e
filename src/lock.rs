//! The instance lock: one `run` per machine. An exclusive `flock` on `lock_file`, which holds
//! the PID of its owner so that a second instance can say who is in the way. The kernel drops
//! the lock when the process dies, so a stale file never blocks a start.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another monitor_service is running (PID {pid}): it holds {path}")]
    HeldBy { path: PathBuf, pid: String },
    #[error("lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held for as long as the service runs.
#[derive(Debug)]
pub struct InstanceLock {
    _file: Flock<File>,
}

/// Takes the lock or says who holds it.
pub fn acquire(path: &Path) -> Result<InstanceLock, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(io)?;
    let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => locked,
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(LockError::HeldBy {
                path: path.to_owned(),
                pid: if pid.is_empty() {
                    "unknown".to_owned()
                } else {
                    pid.to_owned()
                },
            });
        }
        Err((_, errno)) => return Err(io(errno.into())),
    };
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(InstanceLock { _file: file })
}
