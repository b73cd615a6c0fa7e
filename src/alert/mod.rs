//! Alerts: events worth telling a person (a failed restart, an open breaker, the database
//! gone…) sent to `[alert] command` and `[alert] webhook`.
//!
//! The loops that see an event hand it to [`Alerts::send`], which never waits: each sink (the
//! command, the webhook) has its own bounded [`queue::Queue`] that drops its oldest event when
//! full (counted in `/metrics`), and a task that drains it, folds repeats within
//! `min_interval` ([`coalesce`]) and delivers them in order. So a receiver that hangs or fails
//! costs the loops nothing, and a command that is slow does not hold up the webhook.
//!
//! The parts: the event and its JSON (`event`), the queue, the coalescing, the command
//! (`hook`) and the webhook (`webhook`). `[alert]` is read at start; a reload that changes it
//! takes effect at the next start.

pub mod coalesce;
pub mod event;
mod hook;
pub mod queue;
mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::config::{Config, EventKind};
use crate::db::{Availability, AvailabilityChange, Database};

use coalesce::{Coalescer, Outgoing};
pub use event::Event;
use queue::Queue;
use webhook::Webhook;

/// Events waiting per sink: a day of a flapping process, coalesced, fits many times over.
const QUEUE_CAPACITY: usize = 64;

/// What `/metrics` shows of the alerts.
#[derive(Debug, Default)]
pub struct AlertCounters {
    /// Events a full queue dropped.
    pub dropped: AtomicU64,
    /// Events a sink took (the command exited 0, the webhook answered 2xx).
    pub delivered: AtomicU64,
    /// Events a sink failed to take, retries included.
    pub failed: AtomicU64,
}

/// The loops' end of the alerts: cheap to clone; does nothing when `[alert]` is off.
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    queues: Arc<[Arc<Queue<Event>>]>,
    events: Arc<[EventKind]>,
    counters: Arc<AlertCounters>,
}

impl Alerts {
    /// Alerts that go nowhere (`[alert]` off, or a caller that has none to send).
    pub fn off() -> Alerts {
        Alerts::default()
    }

    /// Queues `event` for every sink, if its kind is wanted. Never waits.
    pub fn send(&self, event: Event) {
        if self.queues.is_empty() || !self.events.contains(&event.kind) {
            return;
        }
        for queue in self.queues.iter() {
            if let Some(dropped) = queue.push(event.clone()) {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "[alert] queue full: the oldest event ({}) dropped",
                    dropped.kind
                );
            }
        }
    }

    pub fn counters(&self) -> &AlertCounters {
        &self.counters
    }

    pub fn is_on(&self) -> bool {
        !self.queues.is_empty()
    }
}

/// Where one queue's events go.
enum Sink {
    Command(String),
    Webhook(Webhook),
}

/// The tasks that deliver; dropping it stops them.
pub struct AlertTasks {
    _tasks: Vec<AbortOnDropHandle<()>>,
}

/// Starts a task per configured sink, and one that turns the database's changes of state into
/// `database_down` and `database_up`, if `[alert]` is on.
pub fn start(config: &Config, db: &Database, shutdown: &CancellationToken) -> (Alerts, AlertTasks) {
    let (host, database) = (config.monitor.host.as_str(), db.availability_changes());
    let config = &config.alert;
    let mut sinks = Vec::new();
    if let Some(command) = &config.command {
        sinks.push(Sink::Command(command.clone()));
    }
    if let Some(url) = &config.webhook {
        let webhook = Webhook::new(
            url.expose().to_owned(),
            config.webhook_timeout,
            config.webhook_retries,
        );
        sinks.push(Sink::Webhook(webhook));
    }
    let counters = Arc::new(AlertCounters::default());
    let mut queues = Vec::new();
    let mut tasks = Vec::new();
    for sink in sinks {
        let queue = Arc::new(Queue::new(QUEUE_CAPACITY));
        queues.push(Arc::clone(&queue));
        let delivery = Delivery {
            queue,
            sink,
            coalescer: Coalescer::new(config.min_interval),
            host: host.to_owned(),
            command_timeout: config.command_timeout,
            counters: Arc::clone(&counters),
        };
        let task = tokio::spawn(delivery.run(shutdown.clone()));
        tasks.push(AbortOnDropHandle::new(task));
    }
    let alerts = Alerts {
        queues: queues.into(),
        events: config.events.clone().into(),
        counters,
    };
    if alerts.is_on() {
        let watcher = tokio::spawn(follow_database(database, alerts.clone()));
        tasks.push(AbortOnDropHandle::new(watcher));
    }
    (alerts, AlertTasks { _tasks: tasks })
}

/// One sink's queue, drained in order.
struct Delivery {
    queue: Arc<Queue<Event>>,
    sink: Sink,
    coalescer: Coalescer,
    host: String,
    command_timeout: std::time::Duration,
    counters: Arc<AlertCounters>,
}

impl Delivery {
    async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let next_due = self
                .coalescer
                .next_due()
                .map(tokio::time::Instant::from_std);
            let wait_due = async {
                match next_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let popped = tokio::select! {
                () = shutdown.cancelled() => return,
                event = self.queue.pop() => Some(event),
                () = wait_due => None,
            };
            let now = std::time::Instant::now();
            let mut outgoing = self.coalescer.due(now);
            if let Some(event) = popped {
                outgoing.extend(self.coalescer.offer(event, now));
            }
            for out in outgoing {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.deliver(out) => {}
                }
            }
        }
    }

    async fn deliver(&mut self, out: Outgoing) {
        let json = out.event.to_json(&self.host, out.count, out.first_at);
        let taken = match &mut self.sink {
            Sink::Command(text) => {
                hook::run(text, out.event.kind, json, self.command_timeout).await
            }
            Sink::Webhook(webhook) => webhook.deliver(&json).await,
        };
        let counter = if taken {
            &self.counters.delivered
        } else {
            &self.counters.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// `database_down` when the database stops answering, `database_up` when it is back (not at
/// the first connection).
async fn follow_database(mut changes: watch::Receiver<AvailabilityChange>, alerts: Alerts) {
    let mut was_down = false;
    while changes.changed().await.is_ok() {
        let change = changes.borrow_and_update().clone();
        match change.now {
            Availability::Down if !was_down => {
                was_down = true;
                let why = change.error.as_deref().unwrap_or("no answer");
                let message = format!("database unavailable: {why}");
                alerts.send(Event::new(EventKind::DatabaseDown, None, message).with("error", why));
            }
            Availability::Up if was_down => {
                was_down = false;
                alerts.send(Event::new(
                    EventKind::DatabaseUp,
                    None,
                    "database available again",
                ));
            }
            _ => {}
        }
    }
}
