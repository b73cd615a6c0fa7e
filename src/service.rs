//! `run`: the service itself. Takes the instance lock, starts the poller, the restarter and
//! the sampler, tells systemd it is ready, reloads the configuration on request, and on
//! shutdown stops the poll and lets running restarts finish within `shutdown_grace`.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alarm::RaisedHere;
use crate::alert;
use crate::config::{Config, PASSWORD_ENV};
use crate::db::Database;
use crate::db::claims::ClaimOwner;
use crate::ha::{self, HaTask};
use crate::http::{self, HttpState};
use crate::lock::{self, LockError};
use crate::logging::LogFile;
use crate::notify::{self, PollStatus};
use crate::poller::Poller;
use crate::process::launch::Launches;
use crate::restart::{RestartContext, Restarter};
use crate::stats::{Sampler, SamplerLinks};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Lock(#[from] LockError),
    /// `[monitor] http_listen` cannot be bound: in use, or not an address of this machine.
    #[error("cannot listen on {addr} ([monitor] http_listen): {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// How the outside world steers a running service.
pub struct Controls {
    pub shutdown: CancellationToken,
    /// Each message asks for `config.ini` to be read again (SIGHUP).
    pub reload: mpsc::Receiver<()>,
    /// The log file to reopen on reload, when logging to one.
    pub log_file: Option<LogFile>,
}

/// Runs until `shutdown` is cancelled. The database may be down at start and come and go.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), ServiceError> {
    let (_keep, reload) = mpsc::channel(1);
    run_with(
        config,
        Controls {
            shutdown,
            reload,
            log_file: None,
        },
    )
    .await
}

/// Runs until `controls.shutdown` is cancelled, reloading the configuration on each message of
/// `controls.reload`.
pub async fn run_with(mut config: Config, mut controls: Controls) -> Result<(), ServiceError> {
    let shutdown = controls.shutdown.clone();
    config.role = ha::starting_role(&config);
    let _lock = lock::acquire(&config.monitor.lock_file)?;
    let listener = bind_status_page(&config).await?;
    let db = Database::connect_lazy(&config.database);
    log_start(&config);
    let (alerts, _alert_tasks) = alert::start(&config, &db, &shutdown);
    let (tasks, config_tx) = start_tasks(config, &db, listener, alerts, &shutdown);
    notify::ready();

    serve_reloads(&mut controls, &config_tx).await;
    notify::stopping();
    let grace = config_tx.borrow().monitor.shutdown_grace;
    tasks.stop(grace).await;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Starts every task of the service on `config`; returns them, and the configuration's
/// `watch` that reloads publish on.
fn start_tasks(
    config: Config,
    db: &Database,
    listener: Option<TcpListener>,
    alerts: alert::Alerts,
    shutdown: &CancellationToken,
) -> (Tasks, watch::Sender<Arc<Config>>) {
    let owner = ClaimOwner::daemon(&config.monitor.host);
    let (config_tx, config_rx) = watch::channel(Arc::new(config));
    let tracker = TaskTracker::new();
    let (alarm_tx, alarm_rx) = mpsc::channel(16);
    let (progress_tx, progress_rx) = watch::channel(PollStatus::default());
    let ((schema_tx, schema_rx), (polled_tx, polled_rx)) =
        (watch::channel(false), watch::channel(None));
    // The sampler records how it found each process started; the restarter starts it so.
    let launches = Launches::default();
    let raised_here = RaisedHere::default();
    let context = RestartContext {
        db: db.clone(),
        owner: owner.clone(),
        shutdown: shutdown.clone(),
        launches: launches.clone(),
        raised_here: raised_here.clone(),
        alerts: alerts.clone(),
    };
    let (notice_tx, notice_rx) = mpsc::unbounded_channel();
    let (refresh_tx, refresh_rx) = mpsc::channel(4);
    // The sampler tells the restarter which processes are dead (`depends_on`).
    let (dead_tx, dead_rx) = watch::channel(Default::default());
    let restarter =
        Restarter::new(context, config_rx.clone(), tracker.clone(), notice_tx).with_dead(dead_rx);
    let restarter = tokio::spawn(restarter.run(alarm_rx));
    let (ha_task, ha_rx) = HaTask::spawn(db, &config_tx, &alarm_tx, &schema_rx, shutdown, &alerts);
    let sampler = Sampler::new(
        db.clone(),
        config_rx.clone(),
        SamplerLinks {
            alarms: alarm_tx.clone(),
            restarts: notice_rx,
            refresh: refresh_rx,
            schema_ready: schema_rx,
            polled: polled_rx,
            dead: dead_tx,
            launches,
            raised_here,
            shutdown: shutdown.clone(),
            alerts: alerts.clone(),
        },
    );
    let sampler = tokio::spawn(sampler.run());
    let state = HttpState {
        db: db.clone(),
        config: config_rx.clone(),
        refresh: refresh_tx,
        ha: ha_rx.clone(),
        alerts,
    };
    let status_page = listener.map(|listener| http::spawn(listener, state, shutdown.clone()));
    let poller = Poller {
        db: db.clone(),
        config: config_rx,
        alarms: alarm_tx,
        shutdown: shutdown.clone(),
        owner,
        progress: progress_tx,
        schema_ready: schema_tx,
        polled: polled_tx,
        watchdog: notify::watchdog_interval(),
    };
    let notify = notify::run(progress_rx, ha_rx, db.clone(), shutdown.clone());
    let tasks = Tasks {
        poller: tokio::spawn(poller.run()),
        sampler,
        status_page,
        restarter,
        notifier: tokio::spawn(notify),
        ha: ha_task,
        tracker,
    };
    (tasks, config_tx)
}

/// The first line of every run: which version watches how many processes, as which host.
fn log_start(config: &Config) {
    tracing::info!(
        host = %config.monitor.host,
        processes = config.processes.len(),
        "monitor_service {} started",
        env!("CARGO_PKG_VERSION")
    );
}

/// Binds `[monitor] http_listen` before anything starts, so that an address in use stops the
/// start clearly.
async fn bind_status_page(config: &Config) -> Result<Option<TcpListener>, ServiceError> {
    let Some(addr) = config.monitor.http_listen else {
        return Ok(None);
    };
    let listener = http::bind(addr)
        .await
        .map_err(|source| ServiceError::Listen { addr, source })?;
    Ok(Some(listener))
}

/// Reloads the configuration on each request until shutdown.
async fn serve_reloads(controls: &mut Controls, config: &watch::Sender<Arc<Config>>) {
    loop {
        tokio::select! {
            () = controls.shutdown.cancelled() => return,
            Some(()) = controls.reload.recv() => reload(config, controls.log_file.as_ref()),
        }
    }
}

/// The service's long-running tasks, and the restarts they spawned (`tracker`).
struct Tasks {
    poller: JoinHandle<()>,
    sampler: JoinHandle<()>,
    status_page: Option<JoinHandle<()>>,
    restarter: JoinHandle<()>,
    notifier: JoinHandle<()>,
    /// Steps down (demote_command, its processes stopped, the lease given up) if primary.
    ha: JoinHandle<()>,
    tracker: TaskTracker,
}

impl Tasks {
    /// Waits for the tasks to see the shutdown, then up to `grace` for running restarts: past
    /// it they are left (their claims expire and their alarms stay raised for the next run).
    async fn stop(self, grace: Duration) {
        tracing::info!("stopping: no new restarts; waiting up to {grace:?} for running ones");
        let _ = self.poller.await;
        let _ = self.sampler.await;
        if let Some(status_page) = self.status_page {
            let _ = status_page.await;
        }
        let _ = self.restarter.await;
        let _ = self.notifier.await;
        let _ = self.ha.await;
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "restarts still running after {grace:?}: leaving them; their alarms stay raised"
            );
        }
    }
}

/// Reads `config.ini` again. A config that does not validate (an empty file does not), or that
/// lost its `[database]` section, leaves the running one in place; one that does takes effect
/// for everything read per cycle (processes, intervals, breakers, health) and wakes the poller
/// at once; what is fixed at start (database, lock file, HTTP address, logging) waits for a
/// restart, and says so.
fn reload(config: &watch::Sender<Arc<Config>>, log_file: Option<&LogFile>) {
    notify::reloading();
    if let Some(log_file) = log_file {
        if let Err(error) = log_file.reopen() {
            tracing::error!("reopening the log: {error}");
        }
    }
    let current = config.borrow().clone();
    let password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
    match Config::load(&current.path, password) {
        Ok(fresh) if lost_database(&current, &fresh) => tracing::error!(
            "reload refused, the running configuration stays: {}: the [database] section is \
             gone (a file half written?); put it back, or restart the service to run without it",
            fresh.path.display()
        ),
        Ok(fresh) => {
            for what in fixed_at_start(&current, &fresh) {
                tracing::warn!("{what} changed: takes effect when the service restarts");
            }
            tracing::info!(
                processes = fresh.processes.len(),
                "configuration reloaded from {}",
                fresh.path.display()
            );
            config.send_modify(|current| {
                let mut fresh = fresh;
                fresh.role = ha::carried_role(current, &fresh);
                *current = Arc::new(fresh);
            });
        }
        Err(error) => {
            for line in error.to_string().lines() {
                tracing::error!("reload refused, the running configuration stays: {line}");
            }
        }
    }
    notify::ready();
}

/// Whether the new file dropped the `[database]` section the running one has: then every
/// database setting would silently fall back to its default, which is never what a reload of
/// a working service means (an editor's half-written save, a truncated file).
fn lost_database(old: &Config, new: &Config) -> bool {
    old.sections.contains("database") && !new.sections.contains("database")
}

/// The settings a reload cannot change.
fn fixed_at_start(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut fixed = Vec::new();
    let database = |c: &Config| {
        let d = &c.database;
        (
            d.host.clone(),
            d.port,
            d.socket.clone(),
            d.user.clone(),
            d.password.clone(),
            d.database.clone(),
            d.max_connections,
        )
    };
    if database(old) != database(new) {
        fixed.push("[database]");
    }
    if old.alert != new.alert {
        fixed.push("[alert]");
    }
    if old.monitor.lock_file != new.monitor.lock_file {
        fixed.push("lock_file");
    }
    if old.monitor.http_listen != new.monitor.http_listen {
        fixed.push("http_listen");
    }
    if old.monitor.host != new.monitor.host {
        fixed.push("host");
    }
    if old.monitor.stats_interval != new.monitor.stats_interval
        || old.monitor.heartbeat_interval != new.monitor.heartbeat_interval
    {
        fixed.push("stats_interval and heartbeat_interval");
    }
    if old.logging.log_file != new.logging.log_file || old.logging.level != new.logging.level {
        fixed.push("[logging]");
    }
    fixed
}
