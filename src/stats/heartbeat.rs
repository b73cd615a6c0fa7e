//! The heartbeat: every `heartbeat_interval`, each process's `health_check_command` once,
//! under its deadline, a few at a time; the response time and the outcome go to the sampler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::command::{self, CommandOutcome, Program};

/// Health checks running at once: enough to finish a round of a hundred quick checks well
/// within a second, few enough not to swamp a small machine.
const CONCURRENT_CHECKS: usize = 8;

/// A process the heartbeat checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub process_id: i32,
    pub name: String,
    pub command: String,
    pub timeout: Duration,
}

/// One health check's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beat {
    pub process_id: i32,
    pub response_ms: f64,
    pub ok: bool,
}

/// Runs rounds until shutdown. `targets` is kept current by the sampler.
pub async fn run(
    targets: watch::Receiver<Arc<Vec<Target>>>,
    interval: Duration,
    beats: mpsc::Sender<Vec<Beat>>,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let round = targets.borrow().clone();
        if round.is_empty() {
            continue;
        }
        let results = tokio::select! {
            results = check_all(&round) => results,
            () = shutdown.cancelled() => return,
        };
        if beats.send(results).await.is_err() {
            return;
        }
    }
}

/// Checks every target, `CONCURRENT_CHECKS` at a time.
pub async fn check_all(targets: &Arc<Vec<Target>>) -> Vec<Beat> {
    let permits = Arc::new(Semaphore::new(CONCURRENT_CHECKS));
    let mut checks = JoinSet::new();
    for index in 0..targets.len() {
        let (permits, targets) = (permits.clone(), targets.clone());
        checks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            check(&targets[index]).await
        });
    }
    let mut beats = Vec::with_capacity(targets.len());
    while let Some(result) = checks.join_next().await {
        if let Ok(beat) = result {
            beats.push(beat);
        }
    }
    beats
}

async fn check(target: &Target) -> Beat {
    let began = Instant::now();
    let program = Program::Shell {
        text: &target.command,
        name: &target.name,
    };
    let outcome = command::run(program, target.timeout).await;
    Beat {
        process_id: target.process_id,
        response_ms: began.elapsed().as_secs_f64() * 1000.0,
        ok: outcome == CommandOutcome::Success,
    }
}
