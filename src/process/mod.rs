//! The process table: finding the processes that a configured name stands for, and stopping
//! them.
//!
//! [`ProcessTable`] is one read of `/proc`: the command line and executable of every process,
//! indexed by name, or of only those started since a [`Listing`] of the PIDs (what a look for
//! a replacement of a process that just exited needs); [`matches`] is the pure rule that says
//! whether one process is the configured one; [`stop`] ends processes with SIGTERM to their
//! process group, then SIGKILL.

pub mod files;
pub mod launch;
mod matching;
pub mod stat;
mod stop;
pub mod watch;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use crate::config::ProcessMatch;

pub use matching::matches;
pub use stop::{StopOutcome, stop};

/// The process table could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the process table in /proc: {0}")]
pub struct ProcessError(#[from] io::Error);

/// A running process found in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FoundProcess {
    pub pid: i32,
    /// The `starttime` of `/proc/PID/stat`, in clock ticks since boot: with the PID it names
    /// one process, even after the PID is reused.
    pub start_time: u64,
}

/// One process of the table: what the matching rule looks at.
struct Entry {
    pid: i32,
    cmdline: Vec<String>,
    exe: Option<PathBuf>,
}

/// A snapshot of the system's processes: for each, its command line (read anew on every scan,
/// since a process that execs keeps its PID but changes it) and its executable.
///
/// This reads `/proc` directly, the `cmdline` file and the `exe` link of each process, rather
/// than through `sysinfo`, which also reads `status` and `stat` of every process: a scan is on
/// the path from a death to its restart (each `dead_after` re-check and the process
/// strategy's stop step), and `sysinfo` was three (1,100 processes) to ten (90) times slower.
pub struct ProcessTable {
    entries: Vec<Entry>,
    /// Entry indexes by the base names of argv\[0\] and of the executable, for
    /// [`ProcessMatch::Name`].
    by_name: HashMap<String, Vec<usize>>,
    own_pid: i32,
    /// The PIDs the scan saw, before it read any of them.
    listing: Arc<Listing>,
}

/// The PIDs in `/proc` at one moment, sorted: a few kilobytes, one directory read, where a
/// whole [`ProcessTable`] reads two files of every process. Processes started after it are
/// those whose PID it lacks (PIDs are not reused that soon).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing(Vec<i32>);

impl Listing {
    pub fn now() -> Result<Listing, ProcessError> {
        Ok(Listing::of(files::with_room(pids)?))
    }

    fn of(mut pids: Vec<i32>) -> Listing {
        pids.sort_unstable();
        pids.shrink_to_fit();
        Listing(pids)
    }

    pub fn contains(&self, pid: i32) -> bool {
        self.0.binary_search(&pid).is_ok()
    }
}

/// The PIDs in `/proc`, in its order.
fn pids() -> io::Result<Vec<i32>> {
    let mut pids = Vec::new();
    for dir_entry in std::fs::read_dir("/proc")? {
        let pid = dir_entry?
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok());
        pids.extend(pid);
    }
    Ok(pids)
}

impl ProcessTable {
    /// Reads the process table.
    pub fn new() -> Result<Self, ProcessError> {
        Self::read(|_| true)
    }

    /// Reads only the processes started since any of `before`, and those of `also` (PIDs
    /// known to have been candidates already): the table a look for a process that appeared
    /// needs, at the cost of the processes new since, not of all of them.
    pub fn since(before: &[Arc<Listing>], also: &[i32]) -> Result<Self, ProcessError> {
        Self::read(|pid| before.iter().any(|l| !l.contains(pid)) || also.contains(&pid))
    }

    /// The PIDs this table's scan saw, listed before it read them: a process it found alive
    /// was alive after that listing.
    pub fn listing(&self) -> Arc<Listing> {
        self.listing.clone()
    }

    fn read(wanted: impl Fn(i32) -> bool) -> Result<Self, ProcessError> {
        let mut table = ProcessTable {
            entries: Vec::new(),
            by_name: HashMap::new(),
            own_pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
            listing: Arc::default(),
        };
        files::with_room(|| table.scan(&wanted))?;
        Ok(table)
    }

    /// One pass over `/proc`, reading the processes `wanted` says. A process that cannot be
    /// read because it is gone (or is another user's, hidden) is left out; any other failure
    /// (out of descriptors, say) fails the scan, rather than make a live process look dead.
    fn scan(&mut self, wanted: &impl Fn(i32) -> bool) -> io::Result<()> {
        self.entries.clear();
        self.by_name.clear();
        let mut buffer = vec![0; 4096];
        let listed = pids()?;
        for &pid in &listed {
            if !wanted(pid) {
                continue;
            }
            // A process that ended meanwhile, a kernel thread and a zombie have no command
            // line: none of them is a candidate.
            let cmdline = read_cmdline(pid, &mut buffer)?;
            if pid == self.own_pid || cmdline.is_empty() {
                continue;
            }
            let exe = executable(pid);
            let index = self.entries.len();
            let argv0 = base_name(Path::new(&cmdline[0]));
            let exe_name = exe
                .as_deref()
                .and_then(base_name)
                .filter(|&n| Some(n) != argv0);
            for name in [argv0, exe_name].into_iter().flatten() {
                self.by_name.entry(name.to_owned()).or_default().push(index);
            }
            self.entries.push(Entry { pid, cmdline, exe });
        }
        self.listing = Arc::new(Listing::of(listed));
        Ok(())
    }

    /// The live processes that stand for the configured process `name`, by PID. The service
    /// itself, zombies and kernel threads are never returned.
    pub fn find(&self, name: &str, matcher: &ProcessMatch) -> Vec<FoundProcess> {
        let candidates: Box<dyn Iterator<Item = &Entry> + '_> = match matcher {
            ProcessMatch::Name => Box::new(
                self.by_name
                    .get(name)
                    .into_iter()
                    .flatten()
                    .filter_map(|&index| self.entries.get(index)),
            ),
            _ => Box::new(self.entries.iter()),
        };
        let mut found: Vec<FoundProcess> = candidates
            .filter(|entry| matches(name, matcher, &entry.cmdline, entry.exe.as_deref()))
            .filter_map(|entry| live(entry.pid))
            .collect();
        found.sort_unstable();
        found
    }
}

/// The arguments of `/proc/PID/cmdline` (NUL-separated, read into `buffer`), lossily as text;
/// empty when the process has none, is gone or may not be read.
fn read_cmdline(pid: i32, buffer: &mut Vec<u8>) -> io::Result<Vec<String>> {
    let gone = |error: &io::Error| {
        matches!(
            error.raw_os_error(),
            Some(nix::libc::ENOENT | nix::libc::ESRCH | nix::libc::EACCES)
        )
    };
    let mut file = match File::open(format!("/proc/{pid}/cmdline")) {
        Ok(file) => file,
        Err(error) if gone(&error) => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut length = 0;
    loop {
        if length == buffer.len() {
            buffer.resize(buffer.len() * 2, 0);
        }
        match file.read(&mut buffer[length..]) {
            Ok(0) => break,
            Ok(read) => length += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if gone(&error) => return Ok(Vec::new()),
            Err(error) => return Err(error),
        }
    }
    let text = buffer[..length]
        .strip_suffix(&[0])
        .unwrap_or(&buffer[..length]);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    Ok(text
        .split(|&byte| byte == 0)
        .map(|argument| String::from_utf8_lossy(argument).into_owned())
        .collect())
}

/// The executable of a process, without the ` (deleted)` the kernel adds once the file was
/// replaced (a running daemon after a package upgrade is still that daemon). `None` when it
/// cannot be read: another user's process when not root.
fn executable(pid: i32) -> Option<PathBuf> {
    let link = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    match link
        .to_str()
        .and_then(|text| text.strip_suffix(" (deleted)"))
    {
        Some(kept) => Some(PathBuf::from(kept)),
        None => Some(link),
    }
}

/// Whether `process` is alive and stands for the configured process `name`, from its own
/// `/proc/PID` alone: for a process whose PID is known (the one a restart started), where a
/// scan would read every other process too.
pub fn stands_for(process: FoundProcess, name: &str, matcher: &ProcessMatch) -> bool {
    let mut buffer = vec![0; 4096];
    let Ok(cmdline) = read_cmdline(process.pid, &mut buffer) else {
        return false;
    };
    let own_pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    process.pid != own_pid
        && matches(name, matcher, &cmdline, executable(process.pid).as_deref())
        && live(process.pid) == Some(process)
}

/// The process as it is now, if it is still alive: the table may be a little old, so its
/// state and start time are read again from `/proc`.
fn live(pid: i32) -> Option<FoundProcess> {
    let stat = stat::read(pid)?;
    (!stat.is_dead()).then_some(FoundProcess {
        pid,
        start_time: stat.start_time,
    })
}

/// The base name of a path, as text.
fn base_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|name| name.to_str())
}

/// The last table [`fresh_table`] read, with when its scan began; weak, so that it is freed
/// once its last user is done with it.
static LAST_SCAN: tokio::sync::Mutex<Option<(std::time::Instant, Weak<ProcessTable>)>> =
    tokio::sync::Mutex::const_new(None);

/// A process table read after this call began, shared with everyone who asked while the scan
/// before it ran: when 100 restarts each need a look at `/proc` at once, one scan (off the
/// runtime's thread) serves all that queued behind the previous one, instead of 100 scans in
/// a row on the thread that runs everything else. At 1,000 processes a scan takes tens of
/// milliseconds.
pub async fn fresh_table() -> Result<Arc<ProcessTable>, ProcessError> {
    let asked = std::time::Instant::now();
    let mut last = LAST_SCAN.lock().await;
    if let Some((began, table)) = last.as_ref()
        && *began >= asked
        && let Some(table) = table.upgrade()
    {
        return Ok(table);
    }
    let began = std::time::Instant::now();
    let table = tokio::task::spawn_blocking(ProcessTable::new)
        .await
        .map_err(|error| ProcessError(io::Error::other(error.to_string())))??;
    let table = Arc::new(table);
    *last = Some((began, Arc::downgrade(&table)));
    Ok(table)
}
