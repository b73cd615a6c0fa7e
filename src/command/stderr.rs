//! A command's stderr: read in a task into a bounded buffer while the command runs, and cut to
//! one short printable line for a note.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How much of a command's stderr is kept; the rest is read and thrown away so that a chatty
/// command never blocks on a full pipe.
const STDERR_LIMIT: usize = 4096;

/// The longest stderr excerpt kept in a failure: it ends up in a 100-character note.
const EXCERPT_CHARS: usize = 80;

/// How long the stderr reader may still run once the command has exited: long enough to read
/// what the command wrote, short enough that a grandchild holding the pipe cannot hold us up.
const STDERR_GRACE: Duration = Duration::from_millis(50);

/// What a command wrote to stderr, shared with the task that reads it so that what was read
/// survives when the task is aborted.
pub(super) type StderrBuffer = Arc<Mutex<Vec<u8>>>;

/// Reads the child's stderr in a task, keeping up to [`STDERR_LIMIT`] bytes and draining the rest.
pub(super) fn start_reading(
    pipe: impl AsyncRead + Unpin + Send + 'static,
) -> (StderrBuffer, JoinHandle<()>) {
    let buffer = StderrBuffer::default();
    let reader = tokio::spawn(read_bounded(pipe, Arc::clone(&buffer)));
    (buffer, reader)
}

async fn read_bounded(mut pipe: impl AsyncRead + Unpin, kept: StderrBuffer) {
    let mut chunk = [0_u8; 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
                let room = STDERR_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..read.min(room)]);
            }
        }
    }
}

/// What the stderr reader got, waiting only [`STDERR_GRACE`] for the end of the pipe: a
/// grandchild may hold it open forever.
pub(super) async fn collect(stderr: Option<(StderrBuffer, JoinHandle<()>)>) -> Vec<u8> {
    let Some((buffer, mut reader)) = stderr else {
        return Vec::new();
    };
    if timeout(STDERR_GRACE, &mut reader).await.is_err() {
        reader.abort();
    }
    std::mem::take(&mut *buffer.lock().unwrap_or_else(PoisonError::into_inner))
}

/// The first non-empty line of `stderr`, with control characters replaced, at most
/// [`EXCERPT_CHARS`] characters long.
pub(super) fn excerpt(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("");
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if clean.chars().count() <= EXCERPT_CHARS {
        return clean;
    }
    let mut cut: String = clean.chars().take(EXCERPT_CHARS - 3).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_the_first_non_empty_line_short_and_printable() {
        assert_eq!(excerpt(b"\n  \nfirst line\nsecond"), "first line");
        assert_eq!(excerpt(b"tab\there\x1b[31m"), "tab?here?[31m");
        assert_eq!(excerpt(b""), "");
        let long = excerpt("é".repeat(200).as_bytes());
        assert_eq!(long.chars().count(), EXCERPT_CHARS);
        assert!(long.ends_with("..."));
    }
}
