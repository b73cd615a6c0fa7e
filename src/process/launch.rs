//! How a running process was started, read from `/proc` while it lives, so that the `process`
//! strategy can start it again the same way when it has no `start_command` ("respawn as
//! found"): its executable and argv, working directory, user, groups and environment.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use super::{FoundProcess, executable, stat};

/// One process's start, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// What to execute: the process's executable (`/proc/PID/exe`), which also serves a
    /// script (the interpreter, with the script among the arguments) and an argv\[0\] that
    /// names no file.
    pub program: PathBuf,
    /// The whole argv, argv\[0\] included, byte for byte.
    pub argv: Vec<OsString>,
    pub cwd: PathBuf,
    /// The real user and group, and the supplementary groups.
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// `NAME=value` entries, less the names the caller leaves out (secrets).
    pub environment: Vec<(OsString, OsString)>,
}

impl Launch {
    /// Reads how `process` was started, leaving out the environment variables named in
    /// `secrets`. Fails when it is gone, or was replaced by another process under its PID
    /// while it was read.
    pub fn read(process: FoundProcess, secrets: &[&str]) -> io::Result<Launch> {
        let pid = process.pid;
        let proc_file = |name: &str| std::fs::read(format!("/proc/{pid}/{name}"));
        let argv = split_nul(&proc_file("cmdline")?);
        let gone = || io::Error::new(io::ErrorKind::NotFound, format!("process {pid} is gone"));
        let program = executable(pid).ok_or_else(gone)?;
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))?;
        let status = String::from_utf8_lossy(&proc_file("status")?).into_owned();
        let ids = |key: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .map(|rest| {
                    rest.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let (Some(&uid), Some(&gid)) = (ids("Uid:").first(), ids("Gid:").first()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{pid}/status has no Uid or Gid"),
            ));
        };
        let environment = split_nul(&proc_file("environ")?)
            .into_iter()
            .filter_map(|entry| split_entry(entry, secrets))
            .collect();
        // Read while the same process lives: a PID taken over meanwhile is not this one.
        let same = stat::read(pid).is_some_and(|now| now.start_time == process.start_time);
        if argv.is_empty() || !same {
            return Err(gone());
        }
        Ok(Launch {
            program,
            argv,
            cwd,
            uid,
            gid,
            groups: ids("Groups:"),
            environment,
        })
    }
}

/// The NUL-separated strings of a `/proc` file.
fn split_nul(bytes: &[u8]) -> Vec<OsString> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&byte| byte == 0)
        .map(|part| OsString::from_vec(part.to_vec()))
        .collect()
}

/// `NAME=value` as a pair, or `None` for an entry without `=` or one of `secrets`.
fn split_entry(entry: OsString, secrets: &[&str]) -> Option<(OsString, OsString)> {
    let mut bytes = entry.into_vec();
    let equals = bytes.iter().position(|&byte| byte == b'=')?;
    let value = bytes.split_off(equals + 1);
    bytes.pop();
    if secrets.iter().any(|secret| secret.as_bytes() == bytes) {
        return None;
    }
    Some((OsString::from_vec(bytes), OsString::from_vec(value)))
}

/// The last launch seen of each process, by its configured name: written by the sampler when
/// it starts watching a process and by a restart before it stops one, read by the `process`
/// strategy. Cheap to clone; every clone is the same store.
#[derive(Debug, Clone, Default)]
pub struct Launches(Arc<Mutex<HashMap<String, Arc<Launch>>>>);

impl Launches {
    pub fn record(&self, name: &str, launch: Launch) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.get(name).is_none_or(|known| **known != launch) {
            map.insert(name.to_owned(), Arc::new(launch));
        }
    }

    /// Reads and records how `found` was started, as the process `name`; a process that is
    /// gone or unreadable meanwhile leaves the record as it was.
    pub fn record_found(&self, name: &str, found: FoundProcess, secrets: &[&str]) {
        match Launch::read(found, secrets) {
            Ok(launch) => self.record(name, launch),
            Err(error) => {
                tracing::debug!(
                    process = name,
                    pid = found.pid,
                    "cannot read how it was started: {error}"
                );
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Launch>> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(name).cloned()
    }

    /// Keeps the launches of the names `keep` accepts (the processes still watched).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|name, _| keep(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_entries_split_at_the_first_equals_and_drop_secrets() {
        let entry = |text: &str| OsString::from(text);
        assert_eq!(
            split_entry(entry("A=b=c"), &[]),
            Some((entry("A"), entry("b=c")))
        );
        assert_eq!(
            split_entry(entry("EMPTY="), &[]),
            Some((entry("EMPTY"), entry("")))
        );
        assert_eq!(split_entry(entry("NOEQUALS"), &[]), None);
        assert_eq!(split_entry(entry("SECRET=x"), &["SECRET"]), None);
        assert_eq!(
            split_entry(entry("SECRET_NOT=x"), &["SECRET"]),
            Some((entry("SECRET_NOT"), entry("x")))
        );
    }

    #[test]
    fn this_process_reads_as_it_was_started() {
        let pid = i32::try_from(std::process::id()).expect("a PID fits an i32");
        let start_time = stat::read(pid).expect("our own stat").start_time;
        let launch = Launch::read(FoundProcess { pid, start_time }, &["PATH"])
            .expect("our own launch is readable");
        let argv: Vec<OsString> = std::env::args_os().collect();
        assert_eq!(launch.argv, argv);
        assert_eq!(
            launch.cwd,
            std::env::current_dir().expect("a working directory")
        );
        assert_eq!(launch.uid, nix::unistd::getuid().as_raw());
        assert_eq!(
            launch.program,
            std::env::current_exe().expect("our executable")
        );
        assert!(launch.environment.iter().all(|(name, _)| name != "PATH"));
        let stale = FoundProcess {
            pid,
            start_time: start_time + 1,
        };
        assert!(
            Launch::read(stale, &[]).is_err(),
            "another process under our PID"
        );
    }
}
