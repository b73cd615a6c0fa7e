//! Processes for the benchmarks: sleeps under unique names, the service on a thread of its
//! own as the daemon runs it, and the arithmetic of the figures.

// Not every benchmark uses every helper.
#![allow(dead_code)]

use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use monitor_service::config::Config;
use tokio_util::sync::CancellationToken;

use super::Error;

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `(median, p90, max)` of `values`.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    (
        percentile(&sorted, 50.0),
        percentile(&sorted, 90.0),
        sorted.last().copied().unwrap_or(f64::NAN),
    )
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 1,000 open stat files and pidfds (and the service's own) need more than a default soft
/// limit of 1,024 descriptors.
pub fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

pub fn sleep_binary() -> Result<PathBuf, Error> {
    ["/usr/bin/sleep", "/bin/sleep"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| "sleep is not installed".into())
}

/// Sleeps under unique short names (symlinks to sleep), killed and reaped when dropped.
pub struct Sleepers {
    pub children: Vec<Child>,
    pub names: Vec<String>,
}

impl Sleepers {
    /// `count` sleeps called `{prefix}{i}` with `i` from 1, started from `dir`.
    pub fn start(dir: &Path, prefix: &str, count: usize) -> Result<Sleepers, Error> {
        let sleep = sleep_binary()?;
        let mut sleepers = Sleepers {
            children: Vec::with_capacity(count),
            names: Vec::with_capacity(count),
        };
        for i in 1..=count {
            let name = format!("{prefix}{i}");
            let path = dir.join(&name);
            symlink(&sleep, &path)?;
            let child = Command::new(&path)
                .arg("1000")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()?;
            sleepers.children.push(child);
            sleepers.names.push(name);
        }
        // Wait until every one has exec'd: its comm is then its name.
        let deadline = Instant::now() + Duration::from_secs(30);
        for (child, name) in sleepers.children.iter().zip(&sleepers.names) {
            while comm_state(child.id() as i32).is_none_or(|(comm, _)| &comm != name) {
                if Instant::now() > deadline {
                    return Err(format!("{name} did not start").into());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(sleepers)
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}

/// `(comm, state)` of a PID from /proc/PID/stat.
pub fn comm_state(pid: i32) -> Option<(String, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let state = text.get(close + 1..)?.trim_start().chars().next()?;
    Some((comm, state))
}

pub fn proc_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Live (not zombie) processes whose comm is `name`, among `pids`.
pub fn live_named(name: &str, pids: impl IntoIterator<Item = i32>) -> Vec<i32> {
    pids.into_iter()
        .filter(|&pid| {
            comm_state(pid).is_some_and(|(comm, state)| comm == name && !matches!(state, 'Z' | 'X'))
        })
        .collect()
}

/// A short prefix no other run uses at the same time: `pgrep -x` sees 15 characters.
pub fn prefix(tag: &str) -> String {
    format!("{tag}{:x}_", std::process::id() % 0xfff)
}

pub struct Service {
    shutdown: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

impl Service {
    pub fn start(config: Config) -> Result<Service, Error> {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("service".into())
            .spawn(move || {
                if let Err(error) = runtime.block_on(monitor_service::service::run(config, token)) {
                    eprintln!("service: {error}");
                }
            })?;
        Ok(Service { shutdown, thread })
    }

    pub fn stop(self) {
        self.shutdown.cancel();
        let _ = self.thread.join();
    }
}

/// This process's CPU time (user + system, every thread), in ms.
pub fn cpu_ms() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
        return f64::NAN;
    };
    let of =
        |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 * 1000.0 + tv.tv_usec() as f64 / 1000.0;
    of(usage.user_time()) + of(usage.system_time())
}
