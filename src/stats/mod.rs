//! The sampler: every `stats_interval` it checks every process of this host (alive, PID, CPU,
//! memory), writes `PROCESS_SAMPLES` and `PROCESS_STATS` in batches, keeps outages, scores the
//! host's health, and prunes what is older than `stats_retention`. It watches each live process
//! through a pidfd, so a death is seen within milliseconds; with `auto_alarm` the `dead_after`
//! re-checks follow at once and the alarm goes straight to the restarter.
//!
//! It owns the per-process state (`monitored`); the heartbeat task feeds it response times.

pub mod heartbeat;
pub mod monitored;
pub mod window;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::alarm::{Alarm, RestartNotice, TriggerSource};
use crate::command::{self, Program};
use crate::config::{Config, is_valid_process_name};
use crate::db::stats::{self as store, Metric as StoredMetric, Sample};
use crate::db::{Database, DbError};
use crate::health::{self, Crossing, HealthInputs, ThresholdWatch};
use crate::note;
use crate::process::watch::{self as watching, Units, Watched};
use crate::process::{FoundProcess, ProcessTable, files};

use heartbeat::{Beat, Target};
use monitored::{Monitored, OwnedTask, Seen};

/// How often samples and scores older than the retention window are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// The deadline of the low-health command.
const LOW_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);

/// A watched process exited: its process id in `PROCESE`, and which process it was.
type Exit = (i32, FoundProcess);

/// The channels the sampler works with.
pub struct SamplerLinks {
    pub alarms: mpsc::Sender<Vec<Alarm>>,
    pub restarts: mpsc::UnboundedReceiver<RestartNotice>,
    /// Requests for a fresh heartbeat and sample now (the status page's Refresh); the
    /// sampler answers on the enclosed sender once both are written.
    pub refresh: mpsc::Receiver<oneshot::Sender<()>>,
    /// True once the poller has migrated the schema: the sampler writes nothing before.
    pub schema_ready: watch::Receiver<bool>,
    pub shutdown: CancellationToken,
}

pub struct Sampler {
    db: Database,
    config: watch::Receiver<Arc<Config>>,
    links: SamplerLinks,
    units: Units,
    total_memory: u64,
    epoch: Instant,
    monitor_start: Option<DateTime<Utc>>,
    processes: HashMap<i32, Monitored>,
    /// Exit notices from the pidfd tasks: (process_id, the process that exited).
    exit_tx: mpsc::UnboundedSender<Exit>,
    exit_rx: mpsc::UnboundedReceiver<Exit>,
    targets: watch::Sender<Arc<Vec<Target>>>,
    pending_beats: Vec<Sample>,
    /// Hands each sample's rows to the writer task.
    batches: mpsc::Sender<Batch>,
    writer: Option<Writer>,
    /// How many processes may hold descriptors (statm and pidfd) under the limit of open
    /// files; the others are watched by sampling.
    descriptor_room: usize,
    /// Sampling instead of descriptors was logged (once a run).
    sampling_logged: bool,
}

impl Sampler {
    pub fn new(db: Database, config: watch::Receiver<Arc<Config>>, links: SamplerLinks) -> Sampler {
        let total_memory = nix::sys::sysinfo::sysinfo().map_or(0, |info| info.ram_total());
        let (exit_tx, exit_rx) = mpsc::unbounded_channel();
        // One batch waiting beside the one being written: a database slower than the samples
        // holds the sampler back rather than piling up rows in memory.
        let (batches, batches_rx) = mpsc::channel(1);
        Sampler {
            db: db.clone(),
            config,
            links,
            units: Units::of_this_system(),
            total_memory,
            epoch: Instant::now(),
            monitor_start: None,
            processes: HashMap::new(),
            exit_tx,
            exit_rx,
            targets: watch::channel(Arc::new(Vec::new())).0,
            pending_beats: Vec::new(),
            batches,
            writer: Some(Writer {
                db,
                batches: batches_rx,
                health: ThresholdWatch::default(),
                pruned_at: None,
            }),
            descriptor_room: usize::MAX,
            sampling_logged: false,
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
        let mut schema_ready = self.links.schema_ready.clone();
        tokio::select! {
            ready = schema_ready.wait_for(|ready| *ready) => if ready.is_err() { return },
            () = self.links.shutdown.cancelled() => return,
        }
        let (beats_tx, mut beats) = mpsc::channel(4);
        let _heartbeat = config.monitor.heartbeat_interval.map(|every| {
            OwnedTask(tokio::spawn(heartbeat::run(
                self.targets.subscribe(),
                every,
                beats_tx,
                self.links.shutdown.clone(),
            )))
        });
        // The database writes of each sample run beside this loop, so that a death seen
        // meanwhile is handled at once rather than after them. At shutdown the writer is
        // stopped where it is: a sample's rows are statistics, not worth holding the exit up
        // for while the database is slow.
        let _writer = self
            .writer
            .take()
            .map(|writer| OwnedTask(tokio::spawn(writer.run())));
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.sample(None).await,
                Some((process_id, process)) = self.exit_rx.recv() => self.exited(process_id, process).await,
                Some(notice) = self.links.restarts.recv() => self.restart_notice(notice).await,
                Some(round) = beats.recv() => self.record_beats(round),
                Some(done) = self.links.refresh.recv() => {
                    let targets = self.targets.borrow().clone();
                    let round = heartbeat::check_all(&targets).await;
                    self.record_beats(round);
                    self.sample(Some(done)).await;
                }
                () = self.links.shutdown.cancelled() => return,
            }
        }
    }

    fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// One sample of every process; the writer then stores it with the statistics and the
    /// health score, and answers `done` once that is written.
    async fn sample(&mut self, done: Option<oneshot::Sender<()>>) {
        let config = self.config.borrow().clone();
        if let Err(error) = self.prepare(&config).await {
            log_failure("starting statistics", &error);
            return;
        }
        if let Err(error) = self.sync_roster(&config).await {
            log_failure("reading PROCESE", &error);
            return;
        }
        let scanned = self.find_missing();
        let mut samples = self.read_usage(&config, scanned).await;
        samples.append(&mut self.pending_beats);
        let now = self.now();
        let current = self
            .processes
            .values_mut()
            .map(|p| p.current(now))
            .collect();
        let (required_ids, health) = self.health_inputs(&config);
        let batch = Batch {
            config,
            samples,
            current,
            monitor_start: self.monitor_start,
            required_ids,
            health,
            done,
        };
        // Fails only once the writer is gone, at shutdown.
        let _ = self.batches.send(batch).await;
    }

    /// Once the database answers: this monitor's start, and the windows from stored samples.
    async fn prepare(&mut self, config: &Config) -> Result<(), DbError> {
        if self.monitor_start.is_some() {
            return Ok(());
        }
        let started =
            store::record_start(&self.db, &config.monitor.host, std::process::id()).await?;
        self.monitor_start = Some(started);
        Ok(())
    }

    /// Brings the set of monitored processes in line with `PROCESE` and the config.
    async fn sync_roster(&mut self, config: &Config) -> Result<(), DbError> {
        let roster = store::roster(&self.db).await?;
        let retention = config.monitor.stats_retention;
        let mut seen = Vec::with_capacity(roster.len());
        let mut fresh = false;
        for row in roster {
            if !is_valid_process_name(&row.process_name) {
                continue;
            }
            let Some(process) = config.process(&row.process_name) else {
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
            entry.alarm_raised = row.alarm_raised;
        }
        self.processes.retain(|id, _| seen.contains(id));
        self.descriptor_room = files::make_room_for(self.processes.len());
        if fresh {
            self.seed_windows(config).await;
        }
        self.publish_targets();
        Ok(())
    }

    /// Fills the windows of new processes from the samples already stored, so that averages
    /// cover the retention window across a restart of the monitor.
    async fn seed_windows(&mut self, config: &Config) {
        let retention = config.monitor.stats_retention;
        let span = retention / window::BUCKETS as u32;
        let stored =
            match store::stored_aggregates(&self.db, &config.monitor.host, retention, span).await {
                Ok(stored) => stored,
                Err(error) => return log_failure("reading stored samples", &error),
            };
        let now = self.now();
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

    /// One scan of the process table finds every process not watched now. False when the
    /// table could not be read: whether those processes live is then unknown.
    fn find_missing(&mut self) -> bool {
        let missing: Vec<i32> = self
            .processes
            .values()
            .filter(|p| p.watched.is_none())
            .map(|p| p.process_id)
            .collect();
        if missing.is_empty() {
            return true;
        }
        let table = match ProcessTable::new() {
            Ok(table) => table,
            Err(error) => {
                tracing::warn!("{error}");
                return false;
            }
        };
        for id in missing {
            self.find_in(&table, id);
        }
        true
    }

    /// Looks for one process in `table` and watches it when found; whether it was found
    /// alive.
    fn find_in(&mut self, table: &ProcessTable, process_id: i32) -> bool {
        let Some(process) = self.processes.get_mut(&process_id) else {
            return false;
        };
        let found = table.find(&process.config.name, &process.config.matcher);
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
            return false;
        };
        for candidate in found {
            let opened = if keep {
                files::with_room(|| Watched::open(candidate))
            } else {
                Watched::sampled(candidate)
            };
            match opened {
                Ok(watched) => {
                    process.watched = Some(watched);
                    process.unwatchable = None;
                    process.exit_task = keep
                        .then(|| watch_exit(process_id, candidate, self.exit_tx.clone()))
                        .flatten();
                    return true;
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    // Alive all the same: counted alive, without figures, and looked for again
                    // at the next sample.
                    if process.unwatchable.is_none() {
                        tracing::warn!(process = %process.name(), pid = candidate.pid, "cannot watch the process: {error}");
                    }
                    process.unwatchable = Some(candidate);
                    return true;
                }
            }
        }
        process.unwatchable = None;
        false
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

    /// Reads every watched process and counts a check for every process; those not watched
    /// only when the process table was `scanned`.
    async fn read_usage(&mut self, config: &Config, scanned: bool) -> Vec<Sample> {
        let now = self.now();
        let mut samples = Vec::with_capacity(self.processes.len());
        let ids: Vec<i32> = self.processes.keys().copied().collect();
        for id in ids {
            let Some(process) = self.processes.get_mut(&id) else {
                continue;
            };
            if process.watched.is_none() && !scanned {
                continue;
            }
            let usage = process.watched.as_mut().and_then(|w| w.read(self.units));
            if usage.is_none() && process.exit_task.is_some() {
                // The pidfd has seen this exit too, and its notice runs the quick re-checks:
                // counting the death here as well would leave that notice ignored and the
                // re-checks at the pace of samples.
                samples.push(Sample::Usage {
                    process_id: id,
                    alive: false,
                    pid: None,
                    cpu_pct: None,
                    mem_pct: None,
                    rss_bytes: None,
                });
                continue;
            }
            let seen = match usage {
                None if process.unwatchable.is_some() => Seen::Alive,
                Some(usage) => {
                    process.rss_bytes = Some(usage.rss_bytes);
                    let mem_pct = percent(usage.rss_bytes, self.total_memory);
                    process.memory.record(now, mem_pct);
                    if let Some(cpu) = usage.cpu_pct {
                        process.cpu.record(now, cpu);
                    }
                    Seen::Alive
                }
                None => {
                    process.lose();
                    Seen::Dead
                }
            };
            samples.push(Sample::Usage {
                process_id: id,
                alive: seen == Seen::Alive,
                pid: process.pid(),
                cpu_pct: usage.and(process.cpu.last),
                mem_pct: usage.and(process.memory.last),
                rss_bytes: process.rss_bytes,
            });
            self.after_check(config, id, seen).await;
        }
        samples
    }

    /// Records what one check found: outages, and the auto alarm once the dead streak
    /// reaches `dead_after`.
    async fn after_check(&mut self, config: &Config, process_id: i32, seen: Seen) {
        let Some(process) = self.processes.get_mut(&process_id) else {
            return;
        };
        let transition = process.check(seen, config.monitor.dead_after);
        let host = &config.monitor.host;
        let result = if transition.outage_began {
            store::outage_began(&self.db, host, process_id).await
        } else if transition.outage_ended {
            store::outage_ended(&self.db, host, process_id).await
        } else {
            Ok(())
        };
        if let Err(error) = result {
            log_failure("recording an outage", &error);
        }
        if transition.dead_enough && process.may_auto_alarm(config.monitor.auto_alarm) {
            self.auto_alarm(config, process_id).await;
        }
    }

    async fn auto_alarm(&mut self, config: &Config, process_id: i32) {
        let Some(process) = self.processes.get_mut(&process_id) else {
            return;
        };
        let text = note::found_dead(config.monitor.dead_after, &config.monitor.host);
        match store::raise_alarm(&self.db, process_id, &text).await {
            Ok(true) => {
                tracing::warn!(process = %process.name(), "found dead {} checks in a row: alarm raised", config.monitor.dead_after);
                process.alarm_raised = true;
                let alarm = Alarm {
                    process_id,
                    process_name: process.config.name.clone(),
                    source: TriggerSource::Auto,
                    seen_at: Instant::now(),
                };
                // The restarter takes it now rather than at the next poll.
                let _ = self.links.alarms.send(vec![alarm]).await;
            }
            Ok(false) => process.alarm_raised = true,
            Err(error) => log_failure("raising an auto alarm", &error),
        }
    }

    /// A watched process exited: record it now and, with `auto_alarm`, run the `dead_after`
    /// re-checks at once, `dead_recheck_interval` apart.
    async fn exited(&mut self, process_id: i32, exited: FoundProcess) {
        let config = self.config.borrow().clone();
        let Some(process) = self.processes.get_mut(&process_id) else {
            return;
        };
        if !process.watches(exited) {
            return;
        }
        process.lose();
        let wants_alarm = process.may_auto_alarm(config.monitor.auto_alarm);
        let checks = if wants_alarm {
            config.monitor.dead_after
        } else {
            1
        };
        // The re-checks keep their spacing from the exit itself: the time the database takes
        // to record the outage is part of the first wait, not added to it.
        let exit_seen = tokio::time::Instant::now();
        for check in 0..checks {
            if check > 0 {
                let wait = config.monitor.dead_recheck_interval.saturating_mul(check);
                tokio::time::sleep_until(crate::deadline::after(exit_seen, wait)).await;
            }
            // The first check is the exit itself; later ones look for a replacement. Where the
            // process table cannot be read, the samples that follow count instead.
            let found = match check {
                0 => false,
                _ => match ProcessTable::new() {
                    Ok(table) => self.find_in(&table, process_id),
                    Err(error) => {
                        tracing::warn!("{error}");
                        break;
                    }
                },
            };
            let seen = if found { Seen::Alive } else { Seen::Dead };
            // A process the restarter is handling is dead on purpose: its outage is real,
            // and `may_auto_alarm` keeps its alarm out of it.
            self.after_check(&config, process_id, seen).await;
            if found {
                break;
            }
        }
    }

    async fn restart_notice(&mut self, notice: RestartNotice) {
        match notice {
            RestartNotice::Began(id) => {
                if let Some(process) = self.processes.get_mut(&id) {
                    process.in_hand = true;
                }
            }
            RestartNotice::Ended(id) => {
                let Some(process) = self.processes.get_mut(&id) else {
                    return;
                };
                process.in_hand = false;
                // The restart may have cleared the alarm and started a new process: watch it
                // now, so that its next death is seen at once.
                process.alarm_raised = false;
                if process.watched.is_none()
                    && ProcessTable::new().is_ok_and(|table| self.find_in(&table, id))
                {
                    let config = self.config.borrow().clone();
                    self.after_check(&config, id, Seen::Alive).await;
                }
            }
        }
    }

    fn record_beats(&mut self, round: Vec<Beat>) {
        let now = self.now();
        for beat in round {
            let Some(process) = self.processes.get_mut(&beat.process_id) else {
                continue;
            };
            process.response.record(now, beat.response_ms);
            process.last_check_ok = Some(beat.ok);
            self.pending_beats.push(Sample::Heartbeat {
                process_id: beat.process_id,
                response_ms: beat.response_ms,
                ok: beat.ok,
            });
        }
    }

    /// What the health score needs from this sample, and the required processes' ids (the
    /// writer counts their restarts).
    fn health_inputs(&self, config: &Config) -> (Vec<i32>, HealthInputs) {
        let required: Vec<&Monitored> = self
            .processes
            .values()
            .filter(|p| p.config.required)
            .collect();
        let alive: Vec<&&Monitored> = required
            .iter()
            .filter(|p| p.last_seen == Some(Seen::Alive))
            .collect();
        let inputs = HealthInputs {
            restarts_in_window: 0,
            average_response: mean(required.iter().filter_map(|p| p.response.last))
                .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
            heartbeat_interval: config.monitor.heartbeat_interval,
            average_memory_pct: mean(alive.iter().filter_map(|p| p.memory.last)),
            required_alive: alive.len(),
            required_total: required.len(),
        };
        (required.iter().map(|p| p.process_id).collect(), inputs)
    }
}

/// One sample's rows, handed from the sampler to the writer.
struct Batch {
    config: Arc<Config>,
    samples: Vec<Sample>,
    current: Vec<store::CurrentStats>,
    monitor_start: Option<DateTime<Utc>>,
    required_ids: Vec<i32>,
    /// All but the restarts, which the writer counts.
    health: HealthInputs,
    /// Answered once the batch is written (the status page's Refresh).
    done: Option<oneshot::Sender<()>>,
}

/// Writes the samples and the current statistics, scores the host and prunes, one batch at a
/// time, beside the sampler.
struct Writer {
    db: Database,
    batches: mpsc::Receiver<Batch>,
    health: ThresholdWatch,
    pruned_at: Option<Instant>,
}

impl Writer {
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
        store::insert_samples(&self.db, host, &batch.samples).await?;
        if let Some(start) = batch.monitor_start {
            store::upsert_stats(&self.db, host, start, &batch.current).await?;
        }
        batch.health.restarts_in_window =
            store::restarts_within(&self.db, host, &batch.required_ids, config.health.window)
                .await?;
        self.score(&config, &batch.health).await?;
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

    async fn score(&mut self, config: &Config, inputs: &HealthInputs) -> Result<(), DbError> {
        let score = health::score(inputs, &config.health);
        store::insert_health(&self.db, &config.monitor.host, &score).await?;
        match self.health.observe(score.total, config.health.threshold) {
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

/// Starts a task that reports when `process` exits; `None` where pidfds are not available,
/// and sampling alone then finds the death.
fn watch_exit(
    process_id: i32,
    process: FoundProcess,
    exits: mpsc::UnboundedSender<Exit>,
) -> Option<OwnedTask> {
    let notice = files::with_room(|| watching::exit_notice(process)).ok()?;
    Some(OwnedTask(tokio::spawn(async move {
        notice.exited().await;
        let _ = exits.send((process_id, process));
    })))
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (count > 0).then(|| sum / f64::from(count))
}

/// Database trouble is logged once per change by `Database::run`; anything else here.
fn log_failure(what: &str, error: &DbError) {
    if !error.is_unavailable() {
        tracing::error!("{what}: {error}");
    }
}
