//! Outages written beside the sampler's loop: a death is counted at once and its outage row
//! follows, so that 1,000 processes killed together do not wait on 1,000 round trips, one
//! after another, before their alarms. The task writes whatever has queued in as few
//! statements as the order allows: a run of openings (or closings) of distinct processes is
//! one statement.

use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::db::Database;
use crate::db::stats as store;

use super::log_failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Began,
    Ended,
}

/// One outage opened or closed: on which host, for which process.
type Queued = (Change, String, i32);

pub struct Outages {
    queue: mpsc::UnboundedSender<Queued>,
    idle: Option<(Database, mpsc::UnboundedReceiver<Queued>)>,
}

impl Outages {
    pub fn new(db: Database) -> Outages {
        let (queue, rx) = mpsc::unbounded_channel();
        Outages {
            queue,
            idle: Some((db, rx)),
        }
    }

    /// Starts the task that writes them; stopped when the handle drops.
    pub fn start(&mut self) -> Option<AbortOnDropHandle<()>> {
        let (db, rx) = self.idle.take()?;
        Some(AbortOnDropHandle::new(tokio::spawn(write(db, rx))))
    }

    pub fn record(&self, change: Change, host: &str, process_id: i32) {
        // Fails only once the task is gone, at shutdown.
        let _ = self.queue.send((change, host.to_owned(), process_id));
    }
}

async fn write(db: Database, mut rx: mpsc::UnboundedReceiver<Queued>) {
    while let Some(first) = rx.recv().await {
        let mut queued = vec![first];
        while let Ok(more) = rx.try_recv() {
            queued.push(more);
        }
        for (change, host, ids) in runs(queued) {
            let result = match change {
                Change::Began => store::outages_began(&db, &host, &ids).await,
                Change::Ended => store::outages_ended(&db, &host, &ids).await,
            };
            if let Err(error) = result {
                log_failure("recording outages", &error);
            }
        }
    }
}

/// The queue cut into runs that one statement each can write in order: the same change on
/// the same host, each process once.
fn runs(queued: Vec<Queued>) -> Vec<(Change, String, Vec<i32>)> {
    let mut runs: Vec<(Change, String, Vec<i32>)> = Vec::new();
    for (change, host, id) in queued {
        match runs.last_mut() {
            Some((c, h, ids)) if *c == change && *h == host && !ids.contains(&id) => ids.push(id),
            _ => runs.push((change, host, vec![id])),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_twice_or_another_change_starts_a_new_run() {
        let h = || "h".to_owned();
        let queued = vec![
            (Change::Began, h(), 1),
            (Change::Began, h(), 2),
            (Change::Ended, h(), 1),
            (Change::Ended, h(), 3),
            (Change::Ended, h(), 1),
            (Change::Ended, "other".to_owned(), 4),
        ];
        let got: Vec<(Change, Vec<i32>)> = runs(queued)
            .into_iter()
            .map(|(c, _, ids)| (c, ids))
            .collect();
        assert_eq!(
            got,
            [
                (Change::Began, vec![1, 2]),
                (Change::Ended, vec![1, 3]),
                (Change::Ended, vec![1]),
                (Change::Ended, vec![4]),
            ]
        );
    }
}
