//! The writer: a task beside the sampler that stores each sample's rows (`PROCESS_SAMPLES`,
//! `PROCESS_STATS`), scores the host's health (the low-health command runs once per crossing)
//! and prunes what is older than `stats_retention`, so that a death seen meanwhile never waits
//! behind those writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::AbortOnDropHandle;

use crate::alert::{Alerts, Event};
use crate::command::{self, Program};
use crate::config::{Config, EventKind};
use crate::db::stats::{self as store, Sample};
use crate::db::{Database, DbError};
use crate::health::{self, Crossing, HealthInputs, ThresholdWatch};

use super::inputs::PartialHealthInputs;
use super::log_failure;
use super::written::{RestartWindow, Written};

/// How often samples and scores older than the retention window are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// The deadline of the low-health command.
const LOW_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);

/// One sample's rows, handed from the sampler to the writer.
pub struct Batch {
    pub config: Arc<Config>,
    pub samples: Vec<Sample>,
    pub current: Vec<store::CurrentStats>,
    pub monitor_start: Option<DateTime<Utc>>,
    pub health: PartialHealthInputs,
    /// The newest restart of this host the poll saw; `None` without a fresh poll.
    pub restart_mark: Option<i64>,
    /// Answered once the batch is written (the status page's Refresh): everything is
    /// written then, changed or not.
    pub done: Option<oneshot::Sender<()>>,
}

/// The sampler's end of the writer: batches go in here, and the task starts with the sampler.
pub struct Writer {
    batches: mpsc::Sender<Batch>,
    /// The task's state until it is started.
    idle: Option<WriterTask>,
}

impl Writer {
    pub fn new(db: Database, alerts: Alerts) -> Writer {
        // One batch waiting beside the one being written: a database slower than the samples
        // holds the sampler back rather than piling up rows in memory.
        let (batches, batches_rx) = mpsc::channel(1);
        Writer {
            batches,
            idle: Some(WriterTask {
                db,
                batches: batches_rx,
                health: ThresholdWatch::default(),
                pruned_at: None,
                alerts,
                restarts: RestartWindow::default(),
                written: Written::default(),
            }),
        }
    }

    /// Starts the task, once; it stops when the handle is dropped.
    pub fn start(&mut self) -> Option<AbortOnDropHandle<()>> {
        let task = self.idle.take()?;
        Some(AbortOnDropHandle::new(tokio::spawn(task.run())))
    }

    /// Hands over a batch, waiting while the one before it waits.
    pub async fn send(&self, batch: Batch) {
        // Fails only once the writer is gone, at shutdown.
        let _ = self.batches.send(batch).await;
    }
}

/// Writes the samples and the current statistics, scores the host and prunes, one batch at a
/// time.
struct WriterTask {
    db: Database,
    batches: mpsc::Receiver<Batch>,
    health: ThresholdWatch,
    pruned_at: Option<Instant>,
    /// `low_health` and `health_recovered` go here.
    alerts: Alerts,
    restarts: RestartWindow,
    written: Written,
}

impl WriterTask {
    async fn run(mut self) {
        while let Some(mut batch) = self.batches.recv().await {
            if let Err(error) = self.write(&mut batch).await {
                log_failure("writing statistics", &error);
            }
            if let Some(done) = batch.done.take() {
                let _ = done.send(());
            }
        }
    }

    async fn write(&mut self, batch: &mut Batch) -> Result<(), DbError> {
        let config = Arc::clone(&batch.config);
        let host = &config.monitor.host;
        let (mark, all) = (batch.restart_mark, batch.done.is_some());
        store::insert_samples(&self.db, host, &batch.samples).await?;
        if let Some(start) = batch.monitor_start {
            let current = std::mem::take(&mut batch.current);
            let (due, every_row) = self.written.stats_due(current, mark, all);
            store::upsert_stats(&self.db, host, start, &due).await?;
            self.written.stats_written(due, every_row, mark);
        }
        let health = &batch.health;
        let window = (&health.required_ids[..], config.health.window);
        let restarts = self.restarts.count(&self.db, host, window, mark).await?;
        let inputs = health.with_restarts(restarts);
        self.score(&config, &inputs, all).await?;
        let due = self.pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY);
        if due {
            self.pruned_at = Some(Instant::now());
            let removed = store::prune(&self.db, config.monitor.stats_retention).await?;
            if removed > 0 {
                tracing::debug!("pruned {removed} samples and scores past stats_retention");
            }
        }
        Ok(())
    }

    /// Scores the host, writes the score when it moved (or always: asked to, or under `[ha]`)
    /// and acts on a crossing of the threshold.
    async fn score(
        &mut self,
        config: &Config,
        inputs: &HealthInputs,
        all: bool,
    ) -> Result<(), DbError> {
        let score = health::score(inputs, &config.health);
        if self.written.health_due(&score, all || config.ha.is_some()) {
            store::insert_health(&self.db, &config.monitor.host, &score).await?;
            self.written.health_written(score);
        }
        let crossing = self.health.observe(score.total, config.health.threshold);
        health_alert(&self.alerts, crossing, score.total, config.health.threshold);
        match crossing {
            Crossing::Fell => {
                tracing::warn!(
                    "health score {:.2} fell below {}",
                    score.total,
                    config.health.threshold
                );
                if let Some(text) = config.health.on_low_health_command.clone() {
                    let total = format!("{:.2}", score.total);
                    tokio::spawn(async move {
                        let program = Program::Shell {
                            text: &text,
                            name: &total,
                        };
                        let outcome = command::run(program, LOW_HEALTH_TIMEOUT).await;
                        tracing::info!("on_low_health_command: {outcome}");
                    });
                }
            }
            Crossing::Recovered => {
                tracing::info!(
                    "health score {:.2} is back above {}",
                    score.total,
                    config.health.threshold
                )
            }
            Crossing::Unchanged => {}
        }
        Ok(())
    }
}

/// `low_health` when the score falls below the threshold, `health_recovered` when it is back.
fn health_alert(alerts: &Alerts, crossing: Crossing, total: f64, threshold: f64) {
    let (kind, message) = match crossing {
        Crossing::Fell => (
            EventKind::LowHealth,
            format!("health score {total:.2} fell below {threshold}"),
        ),
        Crossing::Recovered => (
            EventKind::HealthRecovered,
            format!("health score {total:.2} is back above {threshold}"),
        ),
        Crossing::Unchanged => return,
    };
    let event = Event::new(kind, None, message).with("score", (total * 100.0).round() / 100.0);
    alerts.send(event.with("threshold", threshold));
}
