//! The alert command: run once per event through `command/` (its own process group, killed
//! at `command_timeout`; the environment scrubbed of the database password and the webhook),
//! with the event's JSON on stdin and its kind as `$1`.

use std::time::Duration;

use crate::command::{self, CommandOutcome, Program};
use crate::config::EventKind;

/// Runs `text` for one event; whether it exited 0. A failure is logged, never retried: a
/// command that fails once would most likely fail again, and it may have half done its work.
pub async fn run(text: &str, kind: EventKind, json: String, timeout: Duration) -> bool {
    let program = Program::Shell {
        text,
        name: kind.as_str(),
    };
    match command::run_with_input(program, json.into_bytes(), timeout).await {
        CommandOutcome::Success => true,
        outcome => {
            tracing::warn!("[alert] command for {kind}: {outcome}");
            false
        }
    }
}
