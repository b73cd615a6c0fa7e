//! `run`: the service itself. Takes the instance lock, starts the poller and the restarter,
//! and on shutdown stops the poll and lets running restarts finish within `shutdown_grace`.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::db::Database;
use crate::lock::{self, LockError};
use crate::poller::Poller;
use crate::restart::{RestartContext, Restarter};
use crate::stats::{Sampler, SamplerLinks};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Runs until `shutdown` is cancelled. The database may be down at start and come and go.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), ServiceError> {
    let _lock = lock::acquire(&config.monitor.lock_file)?;
    let db = Database::connect_lazy(&config.database);
    let owner_prefix = format!("daemon@{}/", config.monitor.host);
    let owner = format!(
        "{owner_prefix}{}/{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let grace = config.monitor.shutdown_grace;
    tracing::info!(
        host = %config.monitor.host,
        processes = config.processes.len(),
        "monitor_service {} started",
        env!("CARGO_PKG_VERSION")
    );
    let (_config_tx, config_rx) = watch::channel(Arc::new(config));
    let tracker = TaskTracker::new();
    let (alarm_tx, alarm_rx) = mpsc::channel(16);
    let (progress_tx, _progress_rx) = watch::channel(0u64);

    let context = RestartContext {
        db: db.clone(),
        owner: owner.clone(),
        shutdown: shutdown.clone(),
    };
    let (notice_tx, notice_rx) = mpsc::unbounded_channel();
    let (_refresh_tx, refresh_rx) = mpsc::channel(4);
    let restarter = Restarter::new(context, config_rx.clone(), tracker.clone(), Some(notice_tx));
    let restarter = tokio::spawn(restarter.run(alarm_rx));
    let sampler = Sampler::new(
        db.clone(),
        config_rx.clone(),
        SamplerLinks {
            alarms: alarm_tx.clone(),
            restarts: notice_rx,
            refresh: refresh_rx,
            shutdown: shutdown.clone(),
        },
    );
    let sampler = tokio::spawn(sampler.run());
    let poller = Poller {
        db: db.clone(),
        config: config_rx,
        alarms: alarm_tx,
        shutdown: shutdown.clone(),
        owner,
        owner_prefix,
        progress: progress_tx,
    };
    let poller = tokio::spawn(poller.run());

    shutdown.cancelled().await;
    tracing::info!("stopping: no new restarts; waiting up to {grace:?} for running ones");
    let _ = poller.await;
    let _ = sampler.await;
    let _ = restarter.await;
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            "restarts still running after {grace:?}: leaving them; their alarms stay raised"
        );
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}
