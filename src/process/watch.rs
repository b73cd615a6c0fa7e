//! Watching one found process between samples. Its `/proc/PID/stat` is kept open and re-read
//! with `pread`: a third of the cost of opening it each time, and an open stat file can never
//! read another process after the PID is reused (the read fails instead). A pidfd
//! (`pidfd_open`, Linux 5.3+) becomes readable the moment the process exits, so a death is
//! seen at once rather than at the next sample.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::FoundProcess;
use super::stat::{self, Stat};

/// What a process uses, as read by one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Percent of one core since the previous read; `None` on the first.
    pub cpu_pct: Option<f64>,
    pub rss_bytes: u64,
}

/// The system figures that turn ticks and pages into percent and bytes.
#[derive(Debug, Clone, Copy)]
pub struct Units {
    pub ticks_per_second: f64,
    pub page_bytes: u64,
}

impl Units {
    pub fn of_this_system() -> Units {
        use nix::unistd::{SysconfVar, sysconf};
        let value = |var, fallback| sysconf(var).ok().flatten().map_or(fallback, |v| v as u64);
        Units {
            ticks_per_second: value(SysconfVar::CLK_TCK, 100) as f64,
            page_bytes: value(SysconfVar::PAGE_SIZE, 4096),
        }
    }
}

/// A live process being watched.
#[derive(Debug)]
pub struct Watched {
    pub process: FoundProcess,
    stat: File,
    /// The CPU ticks at the previous read, and when.
    previous: Option<(Instant, u64)>,
}

impl Watched {
    /// Starts watching `process`, unless it is gone (or its PID now names another process).
    pub fn open(process: FoundProcess) -> io::Result<Watched> {
        let stat = File::open(format!("/proc/{}/stat", process.pid))?;
        let mut watched = Watched {
            process,
            stat,
            previous: None,
        };
        match watched.read_stat() {
            Some(now) if now.start_time == process.start_time && !now.is_dead() => {
                watched.previous = Some((Instant::now(), now.cpu_ticks));
                Ok(watched)
            }
            _ => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    /// Reads the process's usage; `None` when it has exited (a zombie counts as exited).
    pub fn read(&mut self, units: Units) -> Option<Usage> {
        let now = self.read_stat().filter(|s| !s.is_dead())?;
        let at = Instant::now();
        let cpu_pct = self.previous.and_then(|(then, ticks)| {
            let seconds = at.duration_since(then).as_secs_f64();
            let used = now.cpu_ticks.saturating_sub(ticks) as f64 / units.ticks_per_second;
            (seconds > 0.0).then(|| used * 100.0 / seconds)
        });
        self.previous = Some((at, now.cpu_ticks));
        Some(Usage {
            cpu_pct,
            rss_bytes: now.rss_pages.saturating_mul(units.page_bytes),
        })
    }

    fn read_stat(&self) -> Option<Stat> {
        let mut buffer = [0u8; 1024];
        let length = self.stat.read_at(&mut buffer, 0).ok()?;
        stat::parse(std::str::from_utf8(buffer.get(..length)?).ok()?)
    }
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
