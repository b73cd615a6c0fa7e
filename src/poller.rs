//! The alarm poll: every `check_interval`, one query for the processes in alarm, handed to
//! the restarter as a batch. While the database is out of reach it retries with backoff and
//! picks up where it left off: an alarm stays in the table until it is handled, so a poll that
//! fails loses nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::claims::{self, TriggerSource};
use crate::db::{self, Database, alarms};
use crate::restart::Alarm;

/// Longest wait between tries while the database is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct Poller {
    pub db: Database,
    pub config: watch::Receiver<Arc<Config>>,
    pub alarms: mpsc::Sender<Vec<Alarm>>,
    pub shutdown: CancellationToken,
    /// This monitor's claim owner, and the prefix all runs on this host share.
    pub owner: String,
    pub owner_prefix: String,
    /// Told after every completed poll (the watchdog's sign of progress).
    pub progress: watch::Sender<u64>,
}

impl Poller {
    pub async fn run(self) {
        let mut failures = 0u32;
        let mut ready = false;
        loop {
            let config = self.config.borrow().clone();
            let wait = match self.poll_once(&config, &mut ready).await {
                Ok(()) => {
                    failures = 0;
                    self.progress.send_modify(|count| *count += 1);
                    config.monitor.check_interval
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    if error.is_unavailable() {
                        // The change of state was logged once, by `Database::run`.
                        tracing::debug!("poll failed: {error}");
                    } else {
                        tracing::error!("polling for alarms: {error}");
                    }
                    db::backoff(failures, MAX_BACKOFF.min(config.monitor.check_interval))
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    async fn poll_once(&self, config: &Config, ready: &mut bool) -> Result<(), db::DbError> {
        if !*ready {
            self.prepare(config).await?;
            *ready = true;
        }
        let rows = alarms::fetch_alarms(&self.db).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let seen_at = Instant::now();
        let batch = rows
            .into_iter()
            .map(|row| Alarm {
                process_id: row.process_id,
                process_name: row.process_name,
                source: TriggerSource::Alarm,
                seen_at,
            })
            .collect();
        // The restarter only goes away at shutdown.
        let _ = self.alarms.send(batch).await;
        Ok(())
    }

    /// Once the database answers: the schema, then the claims an earlier run left behind.
    async fn prepare(&self, config: &Config) -> Result<(), db::DbError> {
        if config.database.auto_migrate {
            self.db.create_database_if_missing(&config.database).await?;
            self.db.migrate().await?;
        }
        let expired =
            claims::expire_left_by_earlier_runs(&self.db, &self.owner_prefix, &self.owner).await?;
        if expired > 0 {
            tracing::warn!(
                "{expired} alarm claims left by an earlier run on this host: retrying them now"
            );
        }
        Ok(())
    }
}
