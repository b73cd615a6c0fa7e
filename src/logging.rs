//! Logging: tracing to `log_file`, rotated by size (logroller) behind a non-blocking writer
//! that never drops a line, and to stderr when `stderr = true`.

use std::io::IsTerminal;
use std::path::Path;

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
}

/// Installs the global subscriber for the service.
pub fn init(config: &LoggingConfig) -> Result<LogGuard, LoggingError> {
    let filter = || EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let mut layers = Vec::new();
    let mut worker = None;
    if let Some(path) = &config.log_file {
        let roller = roller(path, config)?;
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(roller);
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
    Ok(LogGuard { _worker: worker })
}

/// Logging for the one-shot commands: warnings and errors to stderr.
pub fn init_for_command() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::new("warn"))
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
