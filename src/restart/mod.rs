//! The restarter: receives alarms, and handles each in a task of its own, at most
//! `max_parallel_restarts` at once and never two at once for the same process. It owns the
//! set of processes in hand, keyed by process name: two `PROCESE` rows may name the same
//! process, and two cycles on it at once would stop each other's start. An alarm on a name
//! already in hand waits here (with a note) and is handled as soon as that cycle ends. An
//! alarm whose dependency is down waits too (`waits`), and a successful restart brings the
//! dependents with `restart_with_dependencies` after it. The breakers and claims it works
//! through live in the database.

mod alerts;
pub mod cycle;
pub mod error;
pub mod handle;
pub mod manual;
pub mod plan;
pub mod waits;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::task::TaskTracker;

use crate::alarm::{Alarm, DeadSet, RestartNotice, TriggerSource};
use crate::config::{Config, is_valid_process_name};
use crate::db::alarms;
use crate::note;

pub use handle::{Handled, RestartContext};
use waits::{Verdict, Waits};

/// A handling task's end: the name it held, what became of the alarm, and the dependents to
/// restart after it (`restart_with_dependencies`).
struct Done {
    name: String,
    handled: Handled,
    followers: Vec<Alarm>,
}

/// The restarter task's state.
pub struct Restarter {
    context: RestartContext,
    config: watch::Receiver<Arc<Config>>,
    permits: Arc<Semaphore>,
    /// How many permits `permits` was given: followed when a reload changes
    /// `max_parallel_restarts`.
    parallel: usize,
    /// Process names with a task under way, and the process id it works for; only this task
    /// reads or writes it.
    in_hand: HashMap<String, i32>,
    /// Alarms on a name in hand through another process id, in the order they came: each
    /// is dispatched when the cycle in hand ends.
    waiting: HashMap<String, Vec<Alarm>>,
    tracker: TaskTracker,
    /// Tells the sampler which processes are being restarted.
    notices: mpsc::UnboundedSender<RestartNotice>,
    /// Alarms waiting for a dependency, and what they are decided on.
    waits: Waits,
}

impl Restarter {
    pub fn new(
        context: RestartContext,
        config: watch::Receiver<Arc<Config>>,
        tracker: TaskTracker,
        notices: mpsc::UnboundedSender<RestartNotice>,
    ) -> Restarter {
        let parallel = config.borrow().monitor.max_parallel_restarts;
        Restarter {
            context,
            config,
            permits: Arc::new(Semaphore::new(parallel)),
            parallel,
            in_hand: HashMap::new(),
            waiting: HashMap::new(),
            tracker,
            notices,
            waits: Waits::new(watch::channel(DeadSet::default()).1),
        }
    }

    /// Follows the sampler's set of dead processes, so that an alarm waits while a
    /// dependency is dead and goes as soon as it is back.
    pub fn with_dead(mut self, dead: watch::Receiver<DeadSet>) -> Restarter {
        self.waits = Waits::new(dead);
        self
    }

    /// Takes alarms until the sender goes away or shutdown; handling tasks go on in the
    /// tracker, which the caller waits for under the shutdown grace.
    pub async fn run(mut self, mut alarms: mpsc::Receiver<Vec<Alarm>>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        loop {
            tokio::select! {
                batch = alarms.recv() => match batch {
                    Some(batch) => {
                        // A dependency in the same batch is handled first.
                        let names: HashSet<String> =
                            batch.iter().map(|a| a.process_name.clone()).collect();
                        self.waits.set_alarmed_now(names);
                        for alarm in batch {
                            self.dispatch(alarm, &done_tx);
                        }
                        self.waits.set_alarmed_now(HashSet::new());
                    }
                    None => break,
                },
                Some(done) = done_rx.recv() => {
                    self.in_hand.remove(&done.name);
                    self.waits.finished(&done.name, &done.handled);
                    self.dispatch_waiting(&done.name, &done_tx);
                    self.release_deferred(&done_tx);
                    for follower in done.followers {
                        self.dispatch(follower, &done_tx);
                    }
                }
                () = self.waits.dead_changed() => self.release_deferred(&done_tx),
                () = self.context.shutdown.cancelled() => break,
            }
        }
    }

    /// Decides again every alarm deferred for a dependency: those whose dependencies are
    /// back go now.
    fn release_deferred(&mut self, done: &mpsc::UnboundedSender<Done>) {
        for alarm in self.waits.deferred() {
            self.dispatch(alarm, done);
        }
    }

    /// Whether `alarm` waits for a dependency; the note is written when it changed.
    fn defers(&mut self, config: &Config, alarm: &Alarm) -> bool {
        let (in_hand, waiting) = (&self.in_hand, &self.waiting);
        let busy = |name: &str| in_hand.contains_key(name) || waiting.contains_key(name);
        match self.waits.decide(config, alarm, busy) {
            Verdict::Go => false,
            Verdict::Hold(note) => {
                if let Some(text) = note {
                    let db = self.context.db.clone();
                    let process_id = alarm.process_id;
                    self.tracker.spawn(async move {
                        if let Err(error) =
                            alarms::write_note_if_changed(&db, process_id, &text).await
                        {
                            tracing::debug!("noting a wait for a dependency: {error}");
                        }
                    });
                }
                true
            }
        }
    }

    fn dispatch(&mut self, mut alarm: Alarm, done: &mpsc::UnboundedSender<Done>) {
        self.context.raised_here.apply(&mut alarm);
        if !is_valid_process_name(&alarm.process_name) {
            self.refuse_name(alarm);
            return;
        }
        if let Some(&holder) = self.in_hand.get(&alarm.process_name) {
            if holder != alarm.process_id {
                self.wait_behind(alarm, holder);
            }
            return;
        }
        let config = self.config.borrow().clone();
        self.follow_parallelism(config.monitor.max_parallel_restarts);
        let Some(process) = config.process(&alarm.process_name) else {
            tracing::debug!(process = %alarm.process_name, "alarm for a process this host does not handle");
            return;
        };
        if self.defers(&config, &alarm) {
            return;
        }
        self.in_hand
            .insert(alarm.process_name.clone(), alarm.process_id);
        let notices = self.notices.clone();
        let _ = notices.send(RestartNotice::Began(alarm.process_id));
        let context = self.context.clone();
        let permits = self.permits.clone();
        let done = done.clone();
        let dead = self.waits.dead_set();
        self.tracker.spawn(async move {
            // Waiting for a permit here, not in the dispatch loop, keeps one slow restart
            // from holding up the alarms behind it.
            let (handled, started) = match permits.acquire_owned().await {
                Ok(_permit) => {
                    let before = found_dead(&alarm, &dead.borrow());
                    handle::handle(&context, &config, &process, (&alarm, before)).await
                }
                Err(_) => (Handled::Deferred, None),
            };
            let _ = notices.send(RestartNotice::Ended {
                process_id: alarm.process_id,
                restarted: handled == Handled::Restarted,
                alarm_cleared: matches!(handled, Handled::Restarted | Handled::AlreadyCleared),
                started,
            });
            let followers = match handled {
                Handled::Restarted => followers(&context, &config, &alarm.process_name).await,
                _ => Vec::new(),
            };
            let name = alarm.process_name;
            let _ = done.send(Done {
                name,
                handled,
                followers,
            });
        });
    }

    /// Keeps `alarm` until the cycle on the same name (for process id `holder`) ends, and
    /// says so in its note, written only when it changes so that each poll costs no write.
    fn wait_behind(&mut self, alarm: Alarm, holder: i32) {
        let queue = self.waiting.entry(alarm.process_name.clone()).or_default();
        if queue.iter().any(|w| w.process_id == alarm.process_id) {
            return;
        }
        // The sampler sees the same process die under this id too: a restart's kill, not a
        // death to auto-alarm.
        let _ = self.notices.send(RestartNotice::Began(alarm.process_id));
        tracing::info!(process = %alarm.process_name, process_id = alarm.process_id, "waits for the restart of process {holder}, of the same name");
        let db = self.context.db.clone();
        let (process_id, text) = (alarm.process_id, note::waiting_behind(holder));
        queue.push(alarm);
        self.tracker.spawn(async move {
            if let Err(error) = alarms::write_note_if_changed(&db, process_id, &text).await {
                tracing::debug!("noting a wait behind a restart of the same name: {error}");
            }
        });
    }

    /// The cycle on `name` ended: the first alarm waiting on it goes now, the others wait
    /// behind it in turn.
    fn dispatch_waiting(&mut self, name: &str, done: &mpsc::UnboundedSender<Done>) {
        let Some(queue) = self.waiting.get_mut(name) else {
            return;
        };
        let next = (!queue.is_empty()).then(|| queue.remove(0));
        let rest: Vec<Alarm> = std::mem::take(queue);
        self.waiting.remove(name);
        let Some(next) = next else {
            return;
        };
        let process_id = next.process_id;
        self.dispatch(next, done);
        if !self.in_hand.contains_key(name) {
            // Not taken after all (no longer configured here): it was told it began.
            let ended = RestartNotice::Ended {
                process_id,
                restarted: false,
                alarm_cleared: false,
                started: None,
            };
            let _ = self.notices.send(ended);
        }
        for alarm in rest {
            self.dispatch(alarm, done);
        }
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

/// How recent the sampler's death verdict must be for a restart to skip the stop step's scan
/// of the whole process table. A process someone else starts in this window, between the
/// sampler's last look and the restart's start, would run beside the one the restart starts;
/// beyond it, the scan finds and stops it first. 1,000 processes killed at once are all back
/// within it (about 8 s here); with a bound of 1 s they took 36 s, as many full scans.
const FOUND_DEAD_WITHIN: Duration = Duration::from_secs(10);

/// Whether the sampler's death verdict is the alarm's reason and still stands: it raised the
/// alarm for a death within [`FOUND_DEAD_WITHIN`] and has not seen the process alive since.
fn found_dead(alarm: &Alarm, dead: &DeadSet) -> cycle::Before {
    if alarm.source == TriggerSource::Auto
        && alarm.seen_at.elapsed() < FOUND_DEAD_WITHIN
        && dead.contains(&alarm.process_name)
    {
        cycle::Before::FoundDead
    } else {
        cycle::Before::Unknown
    }
}

/// The processes to restart after `name` was: its direct dependents with
/// `restart_with_dependencies`, each through its lowest process id. Theirs in turn follow
/// when they are restarted.
async fn followers(context: &RestartContext, config: &Config, name: &str) -> Vec<Alarm> {
    let mut alarms = Vec::new();
    for dependent in crate::dependency::followers(config, name) {
        match alarms::process_id_of(&context.db, dependent).await {
            Ok(Some(process_id)) => alarms.push(Alarm {
                process_id,
                process_name: dependent.to_owned(),
                source: TriggerSource::Dependency,
                seen_at: std::time::Instant::now(),
            }),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(process = %dependent, "not restarted after {name}: {error}")
            }
        }
    }
    alarms
}
