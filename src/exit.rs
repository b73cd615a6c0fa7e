//! How a command ends: the failures the command line can report, each with its sysexits code.

use std::process::ExitCode;

use crate::config::ConfigError;
use crate::lock::LockError;
use crate::logging::LoggingError;
use crate::service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad command line (64).
    #[error("{0}")]
    Usage(String),
    /// The database could not be reached or used (69).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected system failure (70).
    #[error("{0}")]
    Internal(String),
    /// Another instance holds the lock (75: try again later).
    #[error("{0}")]
    Locked(LockError),
    /// Bad configuration (78).
    #[error("{0}")]
    Config(ConfigError),
    /// `http_listen` cannot be bound (78: the setting is what must change, and systemd should
    /// not loop on it).
    #[error("{0}")]
    Listen(String),
    /// The log file named by the configuration cannot be opened (78 too: the setting is what
    /// must change).
    #[error("{0}")]
    Logging(LoggingError),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Usage(_) => 64,
            Failure::Unavailable(_) => 69,
            Failure::Internal(_) => 70,
            Failure::Locked(LockError::HeldBy { .. }) => 75,
            Failure::Locked(LockError::Io { .. }) => 70,
            Failure::Config(_) | Failure::Logging(_) | Failure::Listen(_) => 78,
        })
    }
}

impl From<ServiceError> for Failure {
    fn from(error: ServiceError) -> Failure {
        match error {
            ServiceError::Lock(lock) => Failure::Locked(lock),
            listen @ ServiceError::Listen { .. } => Failure::Listen(listen.to_string()),
        }
    }
}
