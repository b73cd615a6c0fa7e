//! The alarm poll: every `check_interval`, one query for the processes in alarm, handed to
//! the restarter as a batch. While the database is out of reach it retries with backoff and
//! picks up where it left off: an alarm stays in the table until it is handled, so a poll that
//! fails loses nothing. The same statement tells the sampler whether `PROCESE` or this
//! host's restarts changed (`Polled`), so that an idle host costs that one statement per
//! `check_interval` and its sampler's writes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::alarm::{Alarm, TriggerSource};
use crate::config::Config;
use crate::db::claims::{self, ClaimOwner};
use crate::db::{self, Database, alarms};
use crate::deadline;
use crate::notify::PollStatus;

/// Longest wait between tries while the database is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The marks of the latest poll, with when its statement was sent: what the database held
/// then, or later.
#[derive(Debug)]
pub struct Polled {
    pub sent_at: std::time::Instant,
    pub marks: alarms::Marks,
}

impl Polled {
    /// Sent within two `check_interval`s: the poller is keeping up, and a change it has not
    /// seen is at most that old. Anything older, and the sampler reads for itself.
    pub fn is_fresh(&self, check_interval: Duration) -> bool {
        self.sent_at.elapsed() <= check_interval.saturating_mul(2)
    }
}

pub struct Poller {
    pub db: Database,
    pub config: watch::Receiver<Arc<Config>>,
    pub alarms: mpsc::Sender<Vec<Alarm>>,
    pub shutdown: CancellationToken,
    /// This monitor's claim owner: the claims of earlier runs on this host are expired.
    pub owner: ClaimOwner,
    /// Told after every completed iteration (the watchdog's sign of progress).
    pub progress: watch::Sender<PollStatus>,
    /// Set once the schema is migrated (`prepare` done): the sampler waits for it.
    pub schema_ready: watch::Sender<bool>,
    /// What each poll saw for the sampler.
    pub polled: watch::Sender<Option<Arc<Polled>>>,
    /// systemd's watchdog interval: the loop wakes at least twice per interval, polling or
    /// not, so that a long `check_interval` does not look like a wedged loop.
    pub watchdog: Option<Duration>,
}

impl Poller {
    pub async fn run(mut self) {
        let mut failures = 0u32;
        let mut ready = false;
        let mut next_poll = Instant::now();
        loop {
            // Marked as seen, so that `changed` below wakes for a newer configuration only.
            let config = self.config.borrow_and_update().clone();
            if Instant::now() >= next_poll {
                // The first poll applies the migrations, which may wait out another
                // migrator's lock for minutes: a shutdown meanwhile does not wait for them (a
                // migration cut short is applied again at the next start).
                let polled = tokio::select! {
                    polled = self.poll_once(&config, &mut ready) => polled,
                    () = self.shutdown.cancelled() => return,
                };
                let wait = match polled {
                    Ok(()) => {
                        failures = 0;
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
                next_poll = deadline::from_now(wait);
            }
            self.progress.send_modify(|status| {
                status.iterations += 1;
                status.processes = config.processes.len();
            });
            let wake = match self.watchdog {
                Some(watchdog) => next_poll.min(deadline::from_now(watchdog / 2)),
                None => next_poll,
            };
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                // A reload takes effect at once: a shorter check_interval, or a process just
                // configured, does not wait out the rest of the old interval.
                Ok(()) = self.config.changed() => next_poll = Instant::now(),
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    async fn poll_once(&self, config: &Config, ready: &mut bool) -> Result<(), db::DbError> {
        if !*ready {
            self.prepare(config).await?;
            *ready = true;
            self.schema_ready.send_replace(true);
        }
        let sent_at = std::time::Instant::now();
        let names = config.process_names();
        let poll = alarms::poll(&self.db, &config.monitor.host, names.as_deref()).await?;
        self.progress.send_modify(|status| {
            status.alarms = poll.alarms.len();
            status.open_breakers = poll.open_breakers;
        });
        self.polled.send_replace(Some(Arc::new(Polled {
            sent_at,
            marks: poll.marks,
        })));
        if poll.alarms.is_empty() {
            return Ok(());
        }
        let seen_at = std::time::Instant::now();
        let batch = poll
            .alarms
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

    /// Applies the migrations, reporting progress meanwhile: a migration (an index on a big
    /// table) may take longer than systemd's watchdog interval, and is work, not a wedge.
    async fn migrate_with_keepalive(&self) -> Result<(), db::DbError> {
        let Some(watchdog) = self.watchdog else {
            return self.db.migrate().await;
        };
        let migration = self.db.migrate();
        tokio::pin!(migration);
        let mut keepalive = tokio::time::interval(watchdog / 2);
        loop {
            tokio::select! {
                result = &mut migration => return result,
                _ = keepalive.tick() => self.progress.send_modify(|status| status.iterations += 1),
            }
        }
    }

    /// Once the database answers: the schema, then the claims an earlier run left behind.
    async fn prepare(&self, config: &Config) -> Result<(), db::DbError> {
        if config.database.auto_migrate {
            self.db.create_database_if_missing(&config.database).await?;
            self.migrate_with_keepalive().await?;
        }
        let expired = claims::expire_left_by_earlier_runs(&self.db, &self.owner).await?;
        if expired > 0 {
            tracing::warn!(
                "{expired} alarm claims left by an earlier run on this host: retrying them now"
            );
        }
        Ok(())
    }
}
