//! Watching one found process between samples, at the least cost per sample: its CPU time from
//! the kernel's CPU clock of the process (`clock_gettime`, no text to make or parse; the whole
//! thread group, in nanoseconds) and its memory from a kept-open `/proc/PID/statm`, re-read
//! with `pread`. An open statm file can never read another process after the PID is reused
//! (the read fails instead), and it reads all zeros once the process has let go of its memory
//! on the way out, zombie included. Together about a quarter of one read of
//! `/proc/PID/stat`, which sums every thread and formats 52 fields. A pidfd (`pidfd_open`,
//! Linux 5.3+) becomes readable the moment the process exits, so a death is seen at once
//! rather than at the next sample.
//!
//! Where the limit of open files leaves no room for that, a process is watched by sampling
//! ([`Watched::sampled`]): its statm is opened for each read, and its death is seen at the next
//! sample.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use nix::time::ClockId;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::FoundProcess;
use super::stat;

/// What a process uses, as read by one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Percent of one core since the previous read; `None` on the first, and where the CPU
    /// clock cannot be read.
    pub cpu_pct: Option<f64>,
    pub rss_bytes: u64,
}

/// The system figure that turns pages into bytes.
#[derive(Debug, Clone, Copy)]
pub struct Units {
    pub page_bytes: u64,
}

impl Units {
    pub fn of_this_system() -> Units {
        use nix::unistd::{SysconfVar, sysconf};
        let page_bytes = sysconf(SysconfVar::PAGE_SIZE).ok().flatten();
        Units {
            page_bytes: page_bytes.map_or(4096, |bytes| bytes as u64),
        }
    }
}

/// A live process being watched.
#[derive(Debug)]
pub struct Watched {
    pub process: FoundProcess,
    /// The kept-open statm; `None` when the process is watched by sampling.
    statm: Option<File>,
    /// The resident pages at the last read, for a read that finds no descriptor free.
    last_pages: u64,
    /// The process's CPU clock; `None` where the kernel refuses it.
    clock: Option<ClockId>,
    /// The CPU time at the previous read, and when.
    previous: Option<(Instant, Duration)>,
}

impl Watched {
    /// Starts watching `process`, unless it is gone (or its PID now names another process):
    /// then the error is `NotFound`. Any other error (out of file descriptors, say) leaves a
    /// live process that cannot be watched.
    pub fn open(process: FoundProcess) -> io::Result<Watched> {
        let statm = open_statm(process)?;
        Watched::start(process, Some(statm))
    }

    /// Starts watching `process` without keeping a descriptor: each read opens its statm
    /// anew. Errors as [`Watched::open`].
    pub fn sampled(process: FoundProcess) -> io::Result<Watched> {
        drop(open_statm(process)?);
        Watched::start(process, None)
    }

    /// Whether this watch keeps a descriptor open (the statm; a pidfd goes with it).
    pub fn holds_descriptors(&self) -> bool {
        self.statm.is_some()
    }

    fn start(process: FoundProcess, statm: Option<File>) -> io::Result<Watched> {
        let pid = nix::unistd::Pid::from_raw(process.pid);
        let mut watched = Watched {
            process,
            statm,
            last_pages: 0,
            clock: nix::time::clock_getcpuclockid(pid).ok(),
            previous: None,
        };
        let cpu_time = watched.cpu_time();
        watched
            .resident_pages()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        watched.previous = cpu_time.map(|time| (Instant::now(), time));
        Ok(watched)
    }

    /// Reads the process's usage; `None` when it has exited (a zombie counts as exited).
    pub fn read(&mut self, units: Units) -> Option<Usage> {
        // The clock is read by PID, so it comes first: the statm read after it proves the
        // process was still alive, hence still this PID's, when the clock was read.
        let cpu_time = self.cpu_time();
        let resident_pages = self.resident_pages()?;
        let at = Instant::now();
        let cpu_pct = match (self.previous, cpu_time) {
            (Some((then, before)), Some(now)) => {
                let seconds = at.duration_since(then).as_secs_f64();
                let used = now.saturating_sub(before).as_secs_f64();
                (seconds > 0.0).then(|| used * 100.0 / seconds)
            }
            _ => None,
        };
        self.previous = cpu_time.map(|time| (at, time));
        Some(Usage {
            cpu_pct,
            rss_bytes: resident_pages.saturating_mul(units.page_bytes),
        })
    }

    /// The CPU time of the whole process (every thread, living and ended) so far.
    fn cpu_time(&self) -> Option<Duration> {
        self.clock
            .and_then(|clock| clock.now().ok())
            .map(Duration::from)
    }

    /// The resident pages (the second field of statm); `None` once the process is gone or
    /// has no memory left (size, the first field, is then 0).
    fn resident_pages(&mut self) -> Option<u64> {
        let pages = match &self.statm {
            Some(statm) => read_statm(statm)?,
            None => match open_statm(self.process) {
                Ok(statm) => read_statm(&statm)?,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
                // No descriptor free this moment: alive as long as the PID is (a sampled
                // process must not look dead for want of a descriptor), with the figure of
                // the last read; the next sample reads it again.
                Err(_) => {
                    let pid = nix::unistd::Pid::from_raw(self.process.pid);
                    nix::sys::signal::kill(pid, None).ok()?;
                    self.last_pages
                }
            },
        };
        self.last_pages = pages;
        Some(pages)
    }
}

/// Opens `/proc/PID/statm` of `process`; `NotFound` when it is gone or its PID now names
/// another process.
fn open_statm(process: FoundProcess) -> io::Result<File> {
    let gone = || io::Error::from(io::ErrorKind::NotFound);
    let statm = File::open(format!("/proc/{}/statm", process.pid)).map_err(|error| {
        if error.raw_os_error() == Some(nix::libc::ENOENT) {
            gone()
        } else {
            error
        }
    })?;
    // The PID named this process when the scan found it and names it still, so the statm
    // opened in between is this process's.
    match stat::read(process.pid) {
        Some(now) if now.start_time == process.start_time && !now.is_dead() => Ok(statm),
        _ => Err(gone()),
    }
}

/// The resident pages in an open statm; `None` once its process is gone or has no memory
/// left (size, the first field, is then 0).
fn read_statm(statm: &File) -> Option<u64> {
    let mut buffer = [0u8; 256];
    let length = statm.read_at(&mut buffer, 0).ok()?;
    let text = std::str::from_utf8(buffer.get(..length)?).ok()?;
    let mut fields = text.split_ascii_whitespace().map(|f| f.parse::<u64>().ok());
    let size = fields.next()??;
    let resident = fields.next()??;
    (size > 0).then_some(resident)
}

/// A pidfd for `process`, readable once it exits. Fails where the kernel has no pidfd (before
/// 5.3) or the process is already gone; the caller then relies on sampling.
pub fn exit_notice(process: FoundProcess) -> io::Result<ExitNotice> {
    let pid = rustix::process::Pid::from_raw(process.pid)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    // The PID may have been reused between the scan and pidfd_open: the pidfd must name the
    // process that was found.
    match stat::read(process.pid) {
        Some(now) if now.start_time == process.start_time && !now.is_dead() => {}
        _ => return Err(io::Error::from(io::ErrorKind::NotFound)),
    }
    // SAFETY: an `OwnedFd` is an open descriptor that stays open, and always the same one,
    // until it is dropped, which only the `AsyncFd` can do.
    #[allow(unsafe_code)]
    let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
    registered
        .map(ExitNotice)
        .map_err(|error| io::Error::other(error.to_string()))
}

/// Resolves when the watched process exits.
#[derive(Debug)]
pub struct ExitNotice(AsyncFd<OwnedFd>);

impl ExitNotice {
    pub async fn exited(&self) {
        // Readable means exited; an error (which a pidfd does not give) ends the wait too,
        // and the next sample then decides.
        let _ = self.0.readable().await;
    }
}
