//! Logging: tracing to `log_file`, rotated by size (logroller) behind a non-blocking writer
//! that never drops a line, and to stderr when `stderr = true`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use logroller::{LogRollerBuilder, Rotation, RotationSize};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LoggingConfig;

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("log_file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("logging: {0}")]
    Init(String),
}

/// Keeps the file writer's worker alive; dropping it flushes what is queued.
#[must_use]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
    file: Option<LogFile>,
}

impl LogGuard {
    /// A handle that reopens the log file (SIGHUP, after logrotate moved it away).
    pub fn reopener(&self) -> Option<LogFile> {
        self.file.clone()
    }
}

/// The log file behind the non-blocking writer, which can be reopened in place: the worker
/// thread writes through the mutex, and a reopen swaps what is behind it.
#[derive(Clone)]
pub struct LogFile {
    roller: Arc<Mutex<logroller::LogRoller>>,
    path: PathBuf,
    config: LoggingConfig,
}

impl LogFile {
    /// Opens the file again by name; on failure the old one stays in use.
    pub fn reopen(&self) -> Result<(), LoggingError> {
        let fresh = roller(&self.path, &self.config)?;
        let mut roller = self.roller.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = roller.flush();
        *roller = fresh;
        Ok(())
    }
}

impl Write for LogFile {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        self.roller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buffer)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.roller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

/// Installs the global subscriber for the service.
pub fn init(config: &LoggingConfig) -> Result<LogGuard, LoggingError> {
    let filter = || EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let mut layers = Vec::new();
    let mut worker = None;
    let mut file = None;
    if let Some(path) = &config.log_file {
        let log = LogFile {
            roller: Arc::new(Mutex::new(roller(path, config)?)),
            path: path.clone(),
            config: config.clone(),
        };
        file = Some(log.clone());
        // The default queue holds 128,000 lines and costs 4 MB of memory from the start; a
        // few thousand ride out any burst, and with `lossy(false)` a full queue waits rather
        // than drops.
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(4096)
            .lossy(false)
            .finish(log);
        worker = Some(guard);
        layers.push(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(filter())
                .boxed(),
        );
    }
    if config.stderr {
        layers.push(
            tracing_subscriber::fmt::layer()
                // Colours for a person at a terminal, plain text for the journal.
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .with_filter(filter())
                .boxed(),
        );
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|error| LoggingError::Init(error.to_string()))?;
    Ok(LogGuard {
        _worker: worker,
        file,
    })
}

/// Logging for the one-shot commands: warnings and errors to stderr, coloured only for a
/// person at a terminal. The database's change-of-state warning ("unavailable; retrying with
/// backoff") is the daemon's, which does retry; a command does not, and reports the failure
/// itself as its one error line, so that warning is left out here.
pub fn init_for_command() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::new("warn,monitor_service::db=error"))
        .try_init();
}

fn roller(path: &Path, config: &LoggingConfig) -> Result<logroller::LogRoller, LoggingError> {
    let fail = |reason: String| LoggingError::File {
        path: path.display().to_string(),
        reason,
    };
    let directory = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| fail("names no file".to_owned()))?;
    std::fs::create_dir_all(directory).map_err(|error| fail(error.to_string()))?;
    LogRollerBuilder::new(directory, Path::new(file_name))
        .rotation(Rotation::SizeBased(RotationSize::Bytes(
            config.max_log_bytes,
        )))
        .max_keep_files(u64::from(config.log_files_to_keep))
        .build()
        .map_err(|error| fail(error.to_string()))
}
