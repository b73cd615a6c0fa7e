//! How a command ends: the failures the command line can report, each with its sysexits code.

use std::process::ExitCode;

use crate::config::ConfigError;
use crate::db::DbError;
use crate::lock::LockError;
use crate::logging::LoggingError;
use crate::report::ReportError;
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
    /// The process is being handled by someone else right now (75: try again later).
    #[error("{0}")]
    Busy(String),
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
            Failure::Locked(LockError::HeldBy { .. }) | Failure::Busy(_) => 75,
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

/// A database out of reach is "unavailable"; anything else is a bug or a broken schema.
impl From<DbError> for Failure {
    fn from(error: DbError) -> Failure {
        if error.is_unavailable() {
            Failure::Unavailable(error.to_string())
        } else {
            Failure::Internal(error.to_string())
        }
    }
}

/// A name `PROCESE` does not hold is the operator's mistake, a usage error.
impl From<ReportError> for Failure {
    fn from(error: ReportError) -> Failure {
        match error {
            ReportError::UnknownProcess(_) => Failure::Usage(error.to_string()),
            ReportError::Database(error) => Failure::from(error),
        }
    }
}
