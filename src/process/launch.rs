//! How a running process was started, read from `/proc` while it lives, so that the `process`
//! strategy can start it again the same way when it has no `start_command` ("respawn as
//! found"): its executable and argv, working directory, user, groups and environment.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use super::{FoundProcess, executable, stat};
use crate::config::ProcessConfig;

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
    /// `NAME=value` entries, NUL-terminated, less the names the caller leaves out (secrets):
    /// one block, shared by every launch with the same environment ([`Launches`]), since
    /// processes started by one script or unit mostly have the same.
    pub environment: Arc<[u8]>,
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
        let mut environment = Vec::new();
        for entry in split_nul(&proc_file("environ")?) {
            if split_entry(&entry, secrets).is_some() {
                environment.extend_from_slice(entry.as_bytes());
                environment.push(0);
            }
        }
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
            environment: environment.into(),
        })
    }

    /// The environment as `(name, value)` pairs.
    pub fn environment(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.environment
            .split(|&byte| byte == 0)
            .filter_map(|entry| split_entry(OsStr::from_bytes(entry), &[]))
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
fn split_entry<'a>(entry: &'a OsStr, secrets: &[&str]) -> Option<(&'a OsStr, &'a OsStr)> {
    let bytes = entry.as_bytes();
    let equals = bytes.iter().position(|&byte| byte == b'=')?;
    let (name, value) = (&bytes[..equals], &bytes[equals + 1..]);
    if secrets.iter().any(|secret| secret.as_bytes() == name) {
        return None;
    }
    Some((OsStr::from_bytes(name), OsStr::from_bytes(value)))
}

/// The last launch seen of each process, by its configured name: written by the sampler when
/// it starts watching a process and by a restart before it stops one, read by the `process`
/// strategy. Equal environments are kept once. Cheap to clone; every clone is the same store.
#[derive(Debug, Clone, Default)]
pub struct Launches(Arc<Mutex<Store>>);

#[derive(Debug, Default)]
struct Store {
    by_name: HashMap<String, Arc<Launch>>,
    environments: HashSet<Arc<[u8]>>,
}

impl Launches {
    pub fn record(&self, name: &str, mut launch: Launch) {
        let mut store = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if store
            .by_name
            .get(name)
            .is_some_and(|known| **known == launch)
        {
            return;
        }
        match store.environments.get(&launch.environment) {
            Some(shared) => launch.environment = Arc::clone(shared),
            None => {
                let environment = Arc::clone(&launch.environment);
                store.environments.insert(environment);
            }
        }
        store.by_name.insert(name.to_owned(), Arc::new(launch));
        store.forget_unused();
    }

    /// Reads and records how `found` was started, as `process`, when that has no
    /// `start_command` (the only case that uses the record); a process that is gone or
    /// unreadable meanwhile leaves the record as it was.
    pub fn record_found(&self, process: &ProcessConfig, found: FoundProcess, secrets: &[&str]) {
        if process.start_command.is_some() {
            return;
        }
        let name = process.name.as_str();
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
        let store = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        store.by_name.get(name).cloned()
    }

    /// Keeps the launches of the names `keep` accepts (the processes still watched).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut store = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        store.by_name.retain(|name, _| keep(name));
        store.forget_unused();
    }
}

impl Store {
    /// Drops the environments no launch holds any more (held by the set alone).
    fn forget_unused(&mut self) {
        self.environments
            .retain(|environment| Arc::strong_count(environment) > 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_entries_split_at_the_first_equals_and_drop_secrets() {
        let entry = OsStr::new;
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
    fn equal_environments_are_kept_once() {
        let launch = |arg: &str, environment: &[u8]| Launch {
            program: PathBuf::from("/bin/sleep"),
            argv: vec![OsString::from("sleep"), OsString::from(arg)],
            cwd: PathBuf::from("/"),
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            environment: environment.into(),
        };
        let launches = Launches::default();
        launches.record("a", launch("1", b"A=1\0"));
        launches.record("b", launch("2", b"A=1\0"));
        let (a, b) = (launches.get("a").expect("a"), launches.get("b").expect("b"));
        assert!(Arc::ptr_eq(&a.environment, &b.environment));
        let pairs: Vec<_> = b.environment().collect();
        assert_eq!(pairs, [(OsStr::new("A"), OsStr::new("1"))]);
        drop((a, b));
        launches.retain(|name| name == "a");
        launches.record("a", launch("1", b"B=2\0"));
        let store = launches.0.lock().expect("the store");
        assert_eq!(
            store.environments.len(),
            1,
            "the old environment is forgotten"
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
        assert!(launch.environment().all(|(name, _)| name != "PATH"));
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
