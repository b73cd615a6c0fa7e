//! What a test reads of the processes it started: their state in `/proc`, whether they are
//! gone, and the PIDs their shells wrote to files.

use std::path::Path;
use std::time::Duration;

use super::wait_for;

/// The state letter of `/proc/PID/stat` (`R`, `S`, `T`, `Z`…), or `None` when the process does
/// not exist.
pub fn state_of(pid: i32) -> Option<char> {
    monitor_service::process::stat::read(pid).map(|stat| stat.state)
}

/// Gone: not existing, or a zombie (dead, waiting for a parent that is not us).
pub fn is_gone(pid: i32) -> bool {
    monitor_service::process::stat::read(pid).is_none_or(|stat| stat.is_dead())
}

/// Reads the PID that a shell wrote to `file`, waiting up to `deadline` for it to appear.
pub async fn read_pid(file: &Path, deadline: Duration) -> i32 {
    let what = format!("{} holds a PID", file.display());
    wait_for(deadline, &what, || {
        let pid = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        async move { pid }
    })
    .await
}
