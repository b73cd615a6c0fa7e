//! The sampler: every `stats_interval` it checks every process of this host (alive, PID, CPU,
//! memory), writes `PROCESS_SAMPLES` and `PROCESS_STATS` in batches, keeps outages, scores the
//! host's health, and prunes what is older than `stats_retention`. It watches each live process
//! through a pidfd, so a death is seen within milliseconds; with `auto_alarm` the `dead_after`
//! re-checks follow at once and the alarm goes straight to the restarter.
//!
//! This file runs the loop; the parts own their state: `roster` the watched processes and
//! their discovery, `usage` the reading of CPU and memory, `deaths` outages, re-checks and
//! auto alarms, `notices` the restarter's notices, `inputs` the heartbeat's figures and the
//! health score's inputs, `limits` the hangs and memory limits alarmed like deaths, `writer`
//! the database writes. `monitored` is one process's state;
//! the heartbeat task (`heartbeat`) feeds it response times.

mod deaths;
pub mod downs;
pub mod heartbeat;
mod inputs;
mod limits;
pub mod monitored;
mod notices;
mod outages;
mod rechecks;
mod roster;
mod usage;
pub mod window;
mod writer;
mod written;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::alarm::{Alarm, RaisedHere, RestartNotice};
use crate::config::Config;
use crate::db::stats::{self as store, Sample};
use crate::db::{Database, DbError};
use crate::poller::Polled;
use crate::process::launch::Launches;

use deaths::Deaths;
use inputs::{Beats, PartialHealthInputs};
use roster::{Roster, Scan};
use usage::Meter;
use writer::{Batch, Writer};

/// The channels the sampler works with.
pub struct SamplerLinks {
    pub alarms: mpsc::Sender<Vec<Alarm>>,
    pub restarts: mpsc::UnboundedReceiver<RestartNotice>,
    /// Requests for a fresh heartbeat and sample now (the status page's Refresh); the
    /// sampler answers on the enclosed sender once both are written.
    pub refresh: mpsc::Receiver<oneshot::Sender<()>>,
    /// True once the poller has migrated the schema: the sampler writes nothing before.
    pub schema_ready: watch::Receiver<bool>,
    /// The latest poll's marks: the sampler rereads `PROCESE` and the restarts only when
    /// they show a change.
    pub polled: watch::Receiver<Option<Arc<Polled>>>,
    /// The names seen dead, for the restarter's `depends_on` waits.
    pub dead: watch::Sender<downs::DeadSet>,
    /// Where the processes found are recorded as they were started (respawn as found).
    pub launches: Launches,
    /// Where the auto alarms being raised are noted for the restarter.
    pub raised_here: RaisedHere,
    pub shutdown: CancellationToken,
    /// Where auto alarms and health crossings are told (`[alert]`).
    pub alerts: crate::alert::Alerts,
}

/// What the sampler's loop waits on besides its ticks and the roster's exits.
struct Inbox {
    restarts: mpsc::UnboundedReceiver<RestartNotice>,
    refresh: mpsc::Receiver<oneshot::Sender<()>>,
    schema_ready: watch::Receiver<bool>,
    polled: watch::Receiver<Option<Arc<Polled>>>,
    shutdown: CancellationToken,
}

/// Seconds since the sampler started: the time the windows count in.
#[derive(Debug, Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

pub struct Sampler {
    db: Database,
    config: watch::Receiver<Arc<Config>>,
    inbox: Inbox,
    clock: Clock,
    /// This monitor's start in `MONITOR_INSTANCE`, once the database has answered.
    monitor_start: Option<DateTime<Utc>>,
    roster: Roster,
    meter: Meter,
    deaths: Deaths,
    rechecks: rechecks::Rechecks,
    beats: Beats,
    writer: Writer,
}

impl Sampler {
    pub fn new(db: Database, config: watch::Receiver<Arc<Config>>, links: SamplerLinks) -> Sampler {
        let SamplerLinks {
            alarms,
            restarts,
            refresh,
            schema_ready,
            polled,
            dead,
            launches,
            raised_here,
            shutdown,
            alerts,
        } = links;
        Sampler {
            db: db.clone(),
            config,
            inbox: Inbox {
                restarts,
                refresh,
                schema_ready,
                polled,
                shutdown,
            },
            clock: Clock(Instant::now()),
            monitor_start: None,
            roster: Roster::new(launches),
            meter: Meter::of_this_system(),
            deaths: Deaths::new(db.clone(), (alarms, raised_here), dead, alerts.clone()),
            rechecks: Default::default(),
            beats: Beats::default(),
            writer: Writer::new(db, alerts),
        }
    }

    /// Runs until shutdown. Does nothing when `stats_interval = 0`.
    pub async fn run(mut self) {
        let config = self.config.borrow().clone();
        let Some(interval) = config.monitor.stats_interval else {
            return;
        };
        // On a fresh database the tables appear only once the poller has applied the
        // migrations; sampling before would fail on every missing table.
        let mut schema_ready = self.inbox.schema_ready.clone();
        tokio::select! {
            ready = schema_ready.wait_for(|ready| *ready) => if ready.is_err() { return },
            () = self.inbox.shutdown.cancelled() => return,
        }
        let (beats_tx, mut beats) = mpsc::channel(4);
        let _heartbeat = config.monitor.heartbeat_interval.map(|every| {
            AbortOnDropHandle::new(tokio::spawn(heartbeat::run(
                self.roster.targets().subscribe(),
                every,
                beats_tx,
                self.inbox.shutdown.clone(),
            )))
        });
        // The database writes of each sample run beside this loop, so that a death seen
        // meanwhile is handled at once rather than after them. At shutdown the writer is
        // stopped where it is: a sample's rows are statistics, not worth holding the exit up
        // for while the database is slow.
        let _writer = self.writer.start();
        let _outages = self.deaths.outages.start();
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.sample(None).await,
                Some(exit) = self.roster.next_exit() => {
                    let config = self.config.borrow().clone();
                    deaths::exited(&mut self.roster, &mut self.deaths, &mut self.rechecks, &config, exit);
                }
                () = self.rechecks.next_due(), if !self.rechecks.is_empty() => {
                    let config = self.config.borrow().clone();
                    deaths::recheck(&mut self.roster, &mut self.deaths, &mut self.rechecks, &config).await;
                }
                Some(notice) = self.inbox.restarts.recv() => {
                    let config = self.config.borrow().clone();
                    let mut notices = vec![notice];
                    while let Ok(more) = self.inbox.restarts.try_recv() {
                        notices.push(more);
                    }
                    notices::restart_notices(&mut self.roster, &mut self.deaths, &mut self.rechecks, &config, notices).await;
                }
                Some(round) = beats.recv() => self.heartbeats(round),
                // Each poll's alarms, between samples too: an alarm cleared by hand is known
                // cleared at once, not a stats_interval later.
                Ok(()) = self.inbox.polled.changed() => {
                    let polled = self.inbox.polled.borrow_and_update().clone();
                    let config = self.config.borrow().clone();
                    if let Some(polled) = polled {
                        self.roster.take_alarms(&config, &polled);
                    }
                }
                Some(done) = self.inbox.refresh.recv() => {
                    let targets = self.roster.targets().borrow().clone();
                    let round = heartbeat::check_all(&targets).await;
                    self.heartbeats(round);
                    self.sample(Some(done)).await;
                }
                () = self.inbox.shutdown.cancelled() => return,
            }
            self.after_changes().await;
        }
    }

    /// After anything the loop took: the restarter learns who is dead, then the auto alarms
    /// held for a dependency go if it is back.
    async fn after_changes(&mut self) {
        self.deaths.downs.publish();
        let config = self.config.borrow().clone();
        self.deaths.release_held(&config, &mut self.roster);
        self.deaths.downs.publish();
    }

    /// One sample of every process; the writer then stores it with the statistics and the
    /// health score, and answers `done` once that is written.
    async fn sample(&mut self, done: Option<oneshot::Sender<()>>) {
        let config = self.config.borrow().clone();
        if let Err(error) = self.prepare(&config).await {
            log_failure("starting statistics", &error);
            return;
        }
        let polled = self.inbox.polled.borrow().clone();
        let polled = polled.filter(|polled| polled.is_fresh(config.monitor.check_interval));
        let synced = self
            .roster
            .update(&self.db, &config, polled.as_deref(), self.clock);
        if let Err(error) = synced.await {
            log_failure("reading PROCESE", &error);
            return;
        }
        let names = self.roster.processes().map(|p| p.name()).collect();
        self.deaths.downs.keep_only(&names);
        let scan = self.roster.find_missing();
        let mut samples = self.read_usage(&config, scan).await;
        samples.append(&mut self.beats.take());
        let now = self.clock.now();
        let current = self
            .roster
            .processes_mut()
            .map(|p| p.current(now))
            .collect();
        let health = PartialHealthInputs::of(&self.roster, &config);
        let batch = Batch {
            config,
            samples,
            current,
            monitor_start: self.monitor_start,
            health,
            restart_mark: polled.map(|polled| polled.marks.last_restart),
            done,
        };
        self.writer.send(batch).await;
    }

    /// A round of heartbeats: its figures for the next sample, and the hangs it shows.
    fn heartbeats(&mut self, round: Vec<heartbeat::Beat>) {
        let config = self.config.borrow().clone();
        let now = self.clock.now();
        limits::after_heartbeats(&mut self.roster, &self.deaths, &config, &round, now);
        self.beats.record(&mut self.roster, round, now);
    }

    /// Once the database answers: this monitor's start.
    async fn prepare(&mut self, config: &Config) -> Result<(), DbError> {
        if self.monitor_start.is_some() {
            return Ok(());
        }
        let started =
            store::record_start(&self.db, &config.monitor.host, std::process::id()).await?;
        self.monitor_start = Some(started);
        Ok(())
    }

    /// Reads every watched process and counts a check for every process; those not watched
    /// only when the process table was scanned.
    async fn read_usage(&mut self, config: &Config, scan: Scan) -> Vec<Sample> {
        let now = self.clock.now();
        let mut samples = Vec::with_capacity(self.roster.len());
        // Taken before the reads: a process read alive keeps it for the re-checks after its
        // exit, which then read only what started since.
        let listing = self.roster.list_now();
        for id in self.roster.ids() {
            let Some(process) = self.roster.get_mut(id) else {
                continue;
            };
            let Some(reading) = self.meter.read(process, scan, now) else {
                continue;
            };
            if reading.check == Some(monitored::Seen::Alive) && process.watched.is_some() {
                process.listing.clone_from(&listing);
            }
            samples.push(reading.sample);
            if let Some(seen) = reading.check {
                self.deaths.after_check(config, process, seen);
            }
            if let Some(limit) = reading.memory_limit {
                limits::after_memory_reading(&self.deaths, config, process, limit);
            }
        }
        samples
    }
}

/// Database trouble is logged once per change by `Database::run`; anything else here.
fn log_failure(what: &str, error: &DbError) {
    if !error.is_unavailable() {
        tracing::error!("{what}: {error}");
    }
}
