//! The restarter: receives alarms, and handles each in a task of its own, at most
//! `max_parallel_restarts` at once and never two at once for the same process. It owns the
//! set of processes in hand; the breakers and claims it works through live in the database.

pub mod cycle;
pub mod handle;
pub mod manual;
pub mod plan;

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::task::TaskTracker;

use crate::config::{Config, is_valid_process_name};
use crate::db::alarms;
use crate::note;
use crate::stats::RestartNotice;

pub use handle::{Alarm, Handled, RestartContext};

/// The restarter task's state.
pub struct Restarter {
    context: RestartContext,
    config: watch::Receiver<Arc<Config>>,
    permits: Arc<Semaphore>,
    /// How many permits `permits` was given: followed when a reload changes
    /// `max_parallel_restarts`.
    parallel: usize,
    /// Processes with a task under way; only this task reads or writes it.
    in_hand: HashSet<i32>,
    tracker: TaskTracker,
    /// Tells the sampler which processes are being restarted.
    notices: Option<mpsc::UnboundedSender<RestartNotice>>,
}

impl Restarter {
    pub fn new(
        context: RestartContext,
        config: watch::Receiver<Arc<Config>>,
        tracker: TaskTracker,
        notices: Option<mpsc::UnboundedSender<RestartNotice>>,
    ) -> Restarter {
        let parallel = config.borrow().monitor.max_parallel_restarts;
        Restarter {
            context,
            config,
            permits: Arc::new(Semaphore::new(parallel)),
            parallel,
            in_hand: HashSet::new(),
            tracker,
            notices,
        }
    }

    /// Takes alarms until the sender goes away or shutdown; handling tasks go on in the
    /// tracker, which the caller waits for under the shutdown grace.
    pub async fn run(mut self, mut alarms: mpsc::Receiver<Vec<Alarm>>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<i32>();
        loop {
            tokio::select! {
                batch = alarms.recv() => match batch {
                    Some(batch) => {
                        for alarm in batch {
                            self.dispatch(alarm, &done_tx);
                        }
                    }
                    None => break,
                },
                Some(process_id) = done_rx.recv() => {
                    self.in_hand.remove(&process_id);
                }
                () = self.context.shutdown.cancelled() => break,
            }
        }
    }

    fn dispatch(&mut self, alarm: Alarm, done: &mpsc::UnboundedSender<i32>) {
        if self.in_hand.contains(&alarm.process_id) {
            return;
        }
        if !is_valid_process_name(&alarm.process_name) {
            self.refuse_name(alarm);
            return;
        }
        let config = self.config.borrow().clone();
        self.follow_parallelism(config.monitor.max_parallel_restarts);
        let Some(process) = config.process(&alarm.process_name) else {
            tracing::debug!(process = %alarm.process_name, "alarm for a process this host does not handle");
            return;
        };
        self.in_hand.insert(alarm.process_id);
        let notices = self.notices.clone();
        if let Some(notices) = &notices {
            let _ = notices.send(RestartNotice::Began(alarm.process_id));
        }
        let context = self.context.clone();
        let permits = self.permits.clone();
        let done = done.clone();
        self.tracker.spawn(async move {
            // Waiting for a permit here, not in the dispatch loop, keeps one slow restart
            // from holding up the alarms behind it.
            if let Ok(_permit) = permits.acquire_owned().await {
                handle::handle(&context, &config, &process, &alarm).await;
            }
            if let Some(notices) = notices {
                let _ = notices.send(RestartNotice::Ended(alarm.process_id));
            }
            let _ = done.send(alarm.process_id);
        });
    }

    /// Brings the number of permits to `wanted` after a reload. Permits in use cannot be taken
    /// back at once: the semaphore drops to the new size as running restarts end.
    fn follow_parallelism(&mut self, wanted: usize) {
        if wanted > self.parallel {
            self.permits.add_permits(wanted - self.parallel);
        } else if wanted < self.parallel {
            let permits = self.permits.clone();
            let surplus = self.parallel - wanted;
            self.tracker.spawn(async move {
                if let Ok(taken) = permits.acquire_many_owned(surplus as u32).await {
                    taken.forget();
                }
            });
        }
        self.parallel = wanted;
    }

    /// Notes (once) that an alarm names something no command may be given.
    fn refuse_name(&self, alarm: Alarm) {
        let db = self.context.db.clone();
        self.tracker.spawn(async move {
            match alarms::write_note_if_changed(&db, alarm.process_id, &note::invalid_name()).await
            {
                Ok(true) => tracing::warn!(
                    process_id = alarm.process_id,
                    "alarm on an invalid process name {:?}: not executed",
                    alarm.process_name
                ),
                Ok(false) => {}
                Err(error) => tracing::debug!("noting an invalid process name: {error}"),
            }
        });
    }
}
