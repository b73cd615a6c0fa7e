//! The roster: the processes this host watches, kept in line with `PROCESE` and the config,
//! and their discovery in the process table. A process found is watched through its pidfd and
//! kept-open `statm` while the limit of open files leaves room, by sampling otherwise; its
//! exit comes back on the roster's channel. It also publishes the heartbeat's targets.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio_util::task::AbortOnDropHandle;

use crate::command::SCRUBBED_ENVIRONMENT;
use crate::config::Config;
use crate::db::stats::{self as store, Metric as StoredMetric};
use crate::db::{Database, DbError};
use crate::poller::Polled;
use crate::process::launch::Launches;
use crate::process::watch::{self as watching, Watched};
use crate::process::{FoundProcess, Listing, ProcessTable, files};

use super::heartbeat::Target;
use super::monitored::{Monitored, Seen};
use super::window;
use super::{Clock, log_failure};

/// A watched process exited: its process id in `PROCESE`, and which process it was.
pub type Exit = (i32, FoundProcess);

/// What a look for one process in the process table found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Found and watched from now on.
    Watching,
    /// Found alive but not watchable (out of descriptors, say): counted alive, without
    /// figures, and looked for again at the next sample.
    AliveUnwatched,
    /// Not running (or not on the roster).
    NotFound,
}

impl Lookup {
    /// What the look counts as for the process's checks.
    pub fn seen(self) -> Seen {
        match self {
            Lookup::Watching | Lookup::AliveUnwatched => Seen::Alive,
            Lookup::NotFound => Seen::Dead,
        }
    }
}

/// Whether the processes not watched were looked for in the process table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// They were (or there were none): those not found are dead.
    Complete,
    /// The table could not be read (out of descriptors): whether they live is unknown.
    Unreadable,
}

pub struct Roster {
    processes: HashMap<i32, Monitored>,
    /// Exit notices from the pidfd tasks: (process_id, the process that exited).
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits_rx: mpsc::UnboundedReceiver<Exit>,
    /// What the heartbeat task checks.
    targets: watch::Sender<Arc<Vec<Target>>>,
    /// How many processes may hold descriptors (statm and pidfd) under the limit of open
    /// files; the others are watched by sampling.
    descriptor_room: usize,
    /// Sampling instead of descriptors was logged (once a run).
    sampling_logged: bool,
    /// How each process was started, recorded when it is found, for the `process` strategy
    /// without `start_command`.
    launches: Launches,
    /// The configuration and the poll's mark of `PROCESE` the roster was last read with.
    synced: Option<(Arc<Config>, (i64, i64))>,
    /// The PIDs listed at the last sample, before its reads: what a process found alive
    /// after it keeps for the re-checks after its exit.
    listing: Option<Arc<Listing>>,
}

impl Roster {
    pub fn new(launches: Launches) -> Roster {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        Roster {
            processes: HashMap::new(),
            exits_tx,
            exits_rx,
            targets: watch::channel(Arc::new(Vec::new())).0,
            descriptor_room: usize::MAX,
            sampling_logged: false,
            launches,
            synced: None,
            listing: None,
        }
    }

    pub fn len(&self) -> usize {
        self.processes.len()
    }

    pub fn ids(&self) -> Vec<i32> {
        self.processes.keys().copied().collect()
    }

    pub fn get(&self, process_id: i32) -> Option<&Monitored> {
        self.processes.get(&process_id)
    }

    pub fn get_mut(&mut self, process_id: i32) -> Option<&mut Monitored> {
        self.processes.get_mut(&process_id)
    }

    pub fn processes(&self) -> impl Iterator<Item = &Monitored> {
        self.processes.values()
    }

    pub fn processes_mut(&mut self) -> impl Iterator<Item = &mut Monitored> {
        self.processes.values_mut()
    }

    /// The next exit a pidfd task reported.
    pub async fn next_exit(&mut self) -> Option<Exit> {
        self.exits_rx.recv().await
    }

    pub fn targets(&self) -> &watch::Sender<Arc<Vec<Target>>> {
        &self.targets
    }

    /// Brings the roster in line with `PROCESE` and the config, reading `PROCESE` only when
    /// the poll saw it change, the config changed, or there is no fresh poll to go by;
    /// otherwise the alarms come from the poll.
    pub async fn update(
        &mut self,
        db: &Database,
        config: &Arc<Config>,
        polled: Option<&Polled>,
        clock: Clock,
    ) -> Result<(), DbError> {
        if let Some(polled) = polled
            && self.take_alarms(config, polled)
        {
            return Ok(());
        }
        self.sync(db, config, clock).await?;
        self.synced = polled.map(|polled| (Arc::clone(config), polled.marks.procese));
        Ok(())
    }

    /// Takes the alarm flags from `polled` if the roster is as that poll saw `PROCESE` (and
    /// under this config); says whether it was. Flags learnt after the poll was sent stand.
    pub fn take_alarms(&mut self, config: &Arc<Config>, polled: &Polled) -> bool {
        let current = self.synced.as_ref().is_some_and(|(synced_config, mark)| {
            Arc::ptr_eq(synced_config, config) && *mark == polled.marks.procese
        });
        if current {
            for process in self.processes.values_mut() {
                let raised = polled.marks.alarmed.binary_search(&process.process_id);
                process.alarm_read(raised.is_ok(), polled.sent_at);
            }
        }
        current
    }

    /// Reads `PROCESE` and brings the set of monitored processes in line with it and the
    /// config.
    async fn sync(&mut self, db: &Database, config: &Config, clock: Clock) -> Result<(), DbError> {
        let read_at = Instant::now();
        let names = config.process_names();
        let roster = store::roster(db, names.as_deref()).await?;
        let retention = config.monitor.stats_retention;
        let mut seen = Vec::with_capacity(roster.len());
        let mut fresh = false;
        for row in roster {
            let Some(process) = config.process_for(&row.process_name) else {
                continue;
            };
            seen.push(row.process_id);
            let entry = self.processes.entry(row.process_id).or_insert_with(|| {
                fresh = true;
                Monitored::new(row.process_id, process.clone(), retention)
            });
            if entry.config.name != process.name {
                *entry = Monitored::new(row.process_id, process.clone(), retention);
                fresh = true;
            }
            entry.config = process;
            entry.alarm_read(row.alarm_raised, read_at);
        }
        self.processes.retain(|id, _| seen.contains(id));
        let names: HashSet<&str> = self.processes.values().map(|p| p.name()).collect();
        self.launches.retain(|name| names.contains(name));
        self.descriptor_room = files::make_room_for(self.processes.len());
        if fresh {
            self.seed_windows(db, config, clock).await;
        }
        self.publish_targets();
        Ok(())
    }

    /// Fills the windows of new processes from the samples already stored, so that averages
    /// cover the retention window across a restart of the monitor.
    async fn seed_windows(&mut self, db: &Database, config: &Config, clock: Clock) {
        let retention = config.monitor.stats_retention;
        let span = retention / window::BUCKETS as u32;
        let stored = match store::stored_aggregates(db, &config.monitor.host, retention, span).await
        {
            Ok(stored) => stored,
            Err(error) => return log_failure("reading stored samples", &error),
        };
        let now = clock.now();
        for aggregate in stored {
            let Some(process) = self.processes.get_mut(&aggregate.process_id) else {
                continue;
            };
            // Seed only windows that have seen nothing yet in this run.
            let metric = match aggregate.metric {
                StoredMetric::Cpu => &mut process.cpu,
                StoredMetric::Memory => &mut process.memory,
                StoredMetric::Response => &mut process.response,
            };
            if metric.last.is_some() {
                continue;
            }
            let index = metric.window.bucket_of(now).saturating_sub(aggregate.age);
            metric
                .window
                .add_aggregate(index, aggregate.sum, aggregate.count, aggregate.max);
        }
    }

    fn publish_targets(&self) {
        let targets: Vec<Target> = self
            .processes
            .values()
            .filter_map(|p| {
                Some(Target {
                    process_id: p.process_id,
                    name: p.config.name.clone(),
                    command: p.config.health_check_command.clone()?,
                    timeout: p.config.health_check_timeout,
                })
            })
            .collect();
        if **self.targets.borrow() != targets {
            self.targets.send_replace(Arc::new(targets));
        }
    }

    /// One scan of the process table finds every process not watched now.
    pub fn find_missing(&mut self) -> Scan {
        let missing: Vec<i32> = self
            .processes
            .values()
            .filter(|p| p.watched.is_none())
            .map(|p| p.process_id)
            .collect();
        if missing.is_empty() {
            return Scan::Complete;
        }
        let table = match ProcessTable::new() {
            Ok(table) => table,
            Err(error) => {
                tracing::warn!("{error}");
                return Scan::Unreadable;
            }
        };
        for id in missing {
            self.find_in(&table, id);
        }
        Scan::Complete
    }

    /// Looks for one process in `table` and watches it when found.
    pub fn find_in(&mut self, table: &ProcessTable, process_id: i32) -> Lookup {
        let Some(process) = self.processes.get(&process_id) else {
            return Lookup::NotFound;
        };
        let found = table.find(&process.config.name, &process.config.matcher);
        self.watch_first(process_id, &found, table.listing())
    }

    /// Lists the PIDs now, for the processes seen alive after this (a sample's reads).
    pub fn list_now(&mut self) -> Option<Arc<Listing>> {
        match Listing::now() {
            Ok(listing) => self.listing = Some(Arc::new(listing)),
            Err(error) => tracing::warn!("{error}"),
        }
        self.listing.clone()
    }

    /// Watches `started`, the process a restart of `process_id` started, if it is alive and
    /// stands for the process (from its own `/proc/PID`: no scan); `NotFound` otherwise.
    pub fn watch_started(&mut self, process_id: i32, started: FoundProcess) -> Lookup {
        if !self.processes.contains_key(&process_id) {
            return Lookup::NotFound;
        }
        // Listed before the process is seen alive below, as the re-checks need.
        let listing = match self.listing.clone() {
            Some(listing) => listing,
            None => self.list_now().unwrap_or_default(),
        };
        let process = self.processes.get(&process_id);
        if !process
            .is_some_and(|p| crate::process::stands_for(started, p.name(), &p.config.matcher))
        {
            return Lookup::NotFound;
        }
        self.watch_first(process_id, &[started], listing)
    }

    /// Watches the first of `found` (sorted by PID) that is still alive; the rest are its
    /// other instances. `listing` was taken before `found` was seen alive.
    fn watch_first(
        &mut self,
        process_id: i32,
        found: &[FoundProcess],
        listing: Arc<Listing>,
    ) -> Lookup {
        let held = self
            .processes
            .values()
            .filter(|p| p.holds_descriptors())
            .count();
        let keep = held < self.descriptor_room;
        if !keep {
            self.log_sampling_once(held);
        }
        let Some(process) = self.processes.get_mut(&process_id) else {
            return Lookup::NotFound;
        };
        process.others.clear();
        for (index, &candidate) in found.iter().enumerate() {
            let opened = if keep {
                files::with_room(|| Watched::open(candidate))
            } else {
                Watched::sampled(candidate)
            };
            match opened {
                Ok(watched) => {
                    let launches = &self.launches;
                    launches.record_found(&process.config, candidate, SCRUBBED_ENVIRONMENT);
                    process.watched = Some(watched);
                    process.unwatchable = None;
                    process.others = found[index + 1..].to_vec();
                    process.listing = Some(listing);
                    process.exit_task = keep
                        .then(|| watch_exit(process_id, candidate, self.exits_tx.clone()))
                        .flatten();
                    return Lookup::Watching;
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    if process.unwatchable.is_none() {
                        tracing::warn!(process = %process.name(), pid = candidate.pid, "cannot watch the process: {error}");
                    }
                    process.unwatchable = Some(candidate);
                    return Lookup::AliveUnwatched;
                }
            }
        }
        process.unwatchable = None;
        Lookup::NotFound
    }

    /// Says once a run that the limit of open files leaves some processes to sampling.
    fn log_sampling_once(&mut self, held: usize) {
        if std::mem::replace(&mut self.sampling_logged, true) {
            return;
        }
        let sampled = self.processes.len().saturating_sub(held);
        tracing::warn!(
            "the limit of open files leaves room to watch {held} processes through descriptors \
             (two each, the rest kept for restarts, commands and the database): up to {sampled} \
             others are sampled every stats_interval, their death seen at the next sample; \
             raise LimitNOFILE in the unit"
        );
    }
}

/// Starts a task that reports when `process` exits; `None` where pidfds are not available,
/// and sampling alone then finds the death.
fn watch_exit(
    process_id: i32,
    process: FoundProcess,
    exits: mpsc::UnboundedSender<Exit>,
) -> Option<AbortOnDropHandle<()>> {
    let notice = files::with_room(|| watching::exit_notice(process)).ok()?;
    Some(AbortOnDropHandle::new(tokio::spawn(async move {
        notice.exited().await;
        let _ = exits.send((process_id, process));
    })))
}
