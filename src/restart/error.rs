//! Why a restart (or a manual start or stop) failed, typed as far as the command, the process
//! table or the stop said it. Its text is what an operator reads in the note and in
//! `RESTART_EVENTS.error`, the reason first.

use std::fmt;
use std::io;

use crate::command::CommandFailure;
use crate::process::{ProcessError, StopOutcome};

use super::plan::Method;

#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error("pre-restart command: {0}")]
    PreRestart(CommandFailure),
    #[error("systemctl {verb} {unit}: {failure}")]
    Systemctl {
        verb: &'static str,
        unit: String,
        failure: CommandFailure,
    },
    #[error(transparent)]
    ProcessTable(#[from] ProcessError),
    /// Some of the process group outlived SIGKILL.
    #[error("stopping: {0}")]
    Stop(StopOutcome),
    /// The `process` strategy without `start_command`, for a process this monitor never saw
    /// running: there is no way known to start it.
    #[error("no start_command and never seen running")]
    NeverSeenRunning,
    /// The start command could not be spawned or waited for.
    #[error("start_command: {0}")]
    StartIo(io::Error),
    /// The start command exited with an error before the health check passed.
    #[error("start_command: {0}")]
    StartFailed(CommandFailure),
    #[error("health check: {0}")]
    HealthCheck(CommandFailure),
    /// Refused before trying: the process restarted `restarts` times within `window`
    /// (`max_restarts`, `restart_window`), so this restart would feed a crash loop.
    #[error("crash loop: {restarts} restarts in {} s", .window.as_secs_f64())]
    CrashLoop {
        restarts: u32,
        window: std::time::Duration,
    },
    /// Every method of the strategy failed, each for its reason, in the order tried.
    #[error("{}", Methods(.0))]
    Methods(Vec<MethodFailure>),
}

/// One method's failure within an attempt.
#[derive(Debug)]
pub struct MethodFailure {
    pub method: Method,
    pub error: RestartError,
}

impl fmt::Display for MethodFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.method.as_str(), self.error)
    }
}

/// The methods' failures, `; ` between them.
struct Methods<'a>(&'a [MethodFailure]);

impl fmt::Display for Methods<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, failure) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            failure.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn failed_methods_read_each_with_its_reason_in_the_order_tried() {
        let error = RestartError::Methods(vec![
            MethodFailure {
                method: Method::Service,
                error: RestartError::Systemctl {
                    verb: "restart",
                    unit: "db.service".into(),
                    failure: CommandFailure::Exit {
                        code: 5,
                        stderr: "Unit db.service not found.".into(),
                    },
                },
            },
            MethodFailure {
                method: Method::Process,
                error: RestartError::HealthCheck(CommandFailure::Timeout(Duration::from_secs(5))),
            },
        ]);
        assert_eq!(
            error.to_string(),
            "service: systemctl restart db.service: exit 5: Unit db.service not found.; \
             process: health check: timed out after 5s"
        );
        assert_eq!(
            RestartError::NeverSeenRunning.to_string(),
            "no start_command and never seen running"
        );
    }
}
