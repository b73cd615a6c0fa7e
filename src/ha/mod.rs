//! The HA task (`[ha]`): this host's part in a group that shares one primary role through
//! `HA_LEASE`, the way Patroni keeps a leader key and Pacemaker fences before acting.
//!
//! As primary it renews the lease every `renew_interval` with a conditional update on (holder,
//! epoch). It tracks the lease's end with the monotonic clock from when each renewal was sent,
//! and steps down (role published first, then `demote_command`, then its `active_on = primary`
//! processes stopped) as soon as a renewal does not take, or has not come back one
//! `renew_interval` before that end: so it has stopped acting before the lease can expire in
//! the database. As standby it looks every `renew_interval` (or right when the lease is due
//! to expire), lets [`decide`] judge, fences the old holder, takes the role with one
//! conditional update that increments the epoch, runs `promote_command` and hands its
//! `active_on = primary` processes to the restarter. The role is published in the
//! configuration snapshot ([`Config::role`]), so every task's "is this process mine" follows.

pub mod decide;
mod duties;
mod role;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use crate::alarm::Alarm;
use crate::alert::{Alerts, Event};
use crate::config::EventKind;
use crate::config::{Config, HaConfig, Role};
use crate::db::ha::{self as lease, Takeover};
use crate::db::{Database, DbError};
use crate::deadline;
use decide::{Decision, Rules, Seen};
pub use role::{carried_role, starting_role};

/// What the HA task tells the status page, `/metrics` and systemd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaStatus {
    pub group: String,
    pub role: Role,
    /// The epoch of the lease as last seen (this host's own while primary).
    pub epoch: u64,
    pub holder: Option<String>,
}

/// This host's standing, kept by the task alone.
#[derive(Debug, Clone, Copy)]
enum Standing {
    Standby,
    /// Primary at `epoch`, acting as such until `act_until` (monotonic) unless renewed.
    Primary {
        epoch: u64,
        act_until: Instant,
    },
}

pub struct HaTask {
    pub db: Database,
    /// Read each round, and written to publish the role in the snapshot.
    pub config: watch::Sender<Arc<Config>>,
    pub status: watch::Sender<Option<HaStatus>>,
    /// The restarter's intake: a new primary's `active_on = primary` processes go there.
    pub alarms: mpsc::Sender<Vec<Alarm>>,
    pub schema_ready: watch::Receiver<bool>,
    pub shutdown: CancellationToken,
    /// `promoted` and `demoted` events (`[alert]`).
    pub alerts: Alerts,
}

impl HaTask {
    /// Starts the task; its status is on the returned `watch` (`None` until it has one).
    pub fn spawn(
        db: &Database,
        config: &watch::Sender<Arc<Config>>,
        alarms: &mpsc::Sender<Vec<Alarm>>,
        schema_ready: &watch::Receiver<bool>,
        shutdown: &CancellationToken,
        alerts: &Alerts,
    ) -> (JoinHandle<()>, watch::Receiver<Option<HaStatus>>) {
        let (status, status_rx) = watch::channel(None);
        let task = HaTask {
            db: db.clone(),
            config: config.clone(),
            status,
            alarms: alarms.clone(),
            schema_ready: schema_ready.clone(),
            shutdown: shutdown.clone(),
            alerts: alerts.clone(),
        };
        (tokio::spawn(task.run()), status_rx)
    }

    pub async fn run(self) {
        let mut schema_ready = self.schema_ready.clone();
        tokio::select! {
            ready = schema_ready.wait_for(|ready| *ready) => if ready.is_err() { return },
            () = self.shutdown.cancelled() => return,
        }
        let mut standing = Standing::Standby;
        let mut joined: Option<Instant> = None;
        // The settings the role was taken with: a reload that drops [ha] still steps down
        // in the group it was primary of.
        let mut last: Option<HaConfig> = None;
        loop {
            let config = self.config.borrow().clone();
            if let Some(ha) = &config.ha {
                last = Some(ha.clone());
            }
            let (next, now) = match (config.ha.as_ref(), standing, last.as_ref()) {
                (Some(ha), Standing::Standby, _) => self.look(&config, ha, &mut joined).await,
                (Some(ha), Standing::Primary { epoch, act_until }, _) => {
                    self.renew(&config, ha, epoch, act_until).await
                }
                (None, Standing::Primary { epoch, .. }, Some(ha)) => {
                    self.step_down(&config, ha, epoch, "[ha] was removed", true)
                        .await;
                    (Instant::now(), Standing::Standby)
                }
                (None, _, _) => (
                    deadline::from_now(Duration::from_secs(1)),
                    Standing::Standby,
                ),
            };
            standing = now;
            tokio::select! {
                () = sleep_until(next) => {}
                () = self.shutdown.cancelled() => break,
            }
        }
        if let (Standing::Primary { epoch, .. }, Some(ha)) = (standing, last) {
            let config = self.config.borrow().clone();
            self.step_down(&config, &ha, epoch, "the service is stopping", true)
                .await;
        }
    }

    /// One round as primary: renew, and act on an operator's release.
    async fn renew(
        &self,
        config: &Config,
        ha: &HaConfig,
        epoch: u64,
        act_until: Instant,
    ) -> (Instant, Standing) {
        let host = &config.monitor.host;
        let sent = Instant::now();
        if sent >= act_until {
            let why = "no renewal of the lease came back in time";
            self.step_down(config, ha, epoch, why, false).await;
            return (Instant::now(), Standing::Standby);
        }
        let renewal = lease::renew(&self.db, &ha.group, host, epoch, ha.lease_ttl);
        match timeout(act_until - sent, renewal).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                let why = "the lease is not this host's any more";
                self.step_down(config, ha, epoch, why, false).await;
                return (Instant::now(), Standing::Standby);
            }
            Ok(Err(error)) => {
                tracing::warn!("renewing the HA lease: {error}; retrying");
                let retry = deadline::from_now(ha.renew_interval / 4);
                return (retry.min(act_until), Standing::Primary { epoch, act_until });
            }
            Err(_) => return (act_until, Standing::Primary { epoch, act_until }),
        }
        let act_until = deadline::after(sent, ha.lease_ttl.saturating_sub(ha.renew_interval));
        let standing = Standing::Primary { epoch, act_until };
        let next = deadline::after(sent, ha.renew_interval);
        let budget = act_until.saturating_duration_since(Instant::now());
        let seen = timeout(budget, self.note_member(config, ha, Role::Primary)).await;
        let Ok(Ok(seen)) = seen else {
            return (next, standing);
        };
        self.publish_status(ha, Role::Primary, &seen);
        if seen.request == Some(lease::Request::Release) {
            self.step_down(config, ha, epoch, "ha release asked for it", true)
                .await;
            return (Instant::now(), Standing::Standby);
        }
        (next, standing)
    }

    /// Writes this member's row and reads the lease.
    async fn note_member(
        &self,
        config: &Config,
        ha: &HaConfig,
        role: Role,
    ) -> Result<lease::LeaseRow, DbError> {
        let host = &config.monitor.host;
        lease::register(&self.db, &ha.group, host, ha.priority, role.as_str()).await?;
        lease::lease(&self.db, &ha.group).await
    }

    /// One round as standby: read, decide, and maybe take the role.
    async fn look(
        &self,
        config: &Config,
        ha: &HaConfig,
        joined: &mut Option<Instant>,
    ) -> (Instant, Standing) {
        let next = deadline::from_now(ha.renew_interval);
        let seen = match self.read(config, ha, joined).await {
            Ok(seen) => seen,
            Err(error) => {
                tracing::debug!("HA: reading the group: {error}");
                return (next, Standing::Standby);
            }
        };
        let (lease_row, members, scores) = &seen;
        self.publish_status(ha, Role::Standby, lease_row);
        let rules = Rules {
            threshold: config.health.threshold,
            lease_ttl: ha.lease_ttl,
            stats_interval: config.monitor.stats_interval.unwrap_or(ha.lease_ttl),
            takeover_after: ha.takeover_after,
        };
        let member_for = joined.map_or(Duration::ZERO, |at| at.elapsed());
        let host = config.monitor.host.as_str();
        let view = Seen {
            host,
            member_for,
            lease: lease_row,
            members,
            holder_scores: scores,
        };
        match decide::decide(&view, &rules) {
            Decision::Wait => {
                // Look again right when a holder's lease is due to expire.
                let due = match &lease_row.holder {
                    Some(_) if !lease_row.expired => {
                        deadline::from_now(lease_row.left + Duration::from_millis(20))
                    }
                    _ => next,
                };
                (next.min(due), Standing::Standby)
            }
            Decision::Refuse => {
                tracing::warn!(
                    "ha takeover refused: this host's health score is below the threshold \
                     (ha takeover --force takes over anyway)"
                );
                if let Err(error) = lease::ask(&self.db, &ha.group, None, None).await {
                    tracing::debug!("HA: clearing the request: {error}");
                }
                (next, Standing::Standby)
            }
            Decision::Resume => self.resume(config, ha, lease_row.epoch).await,
            Decision::Take {
                reason,
                from,
                fence,
                only_if_expired,
            } => {
                let takeover = Takeover {
                    group: &ha.group,
                    host,
                    seen_epoch: lease_row.epoch,
                    from: from.as_deref(),
                    reason,
                    only_if_expired,
                    ttl: ha.lease_ttl,
                };
                self.take(config, ha, &takeover, fence).await
            }
        }
    }

    /// The lease, the members and the holder's latest scores.
    async fn read(
        &self,
        config: &Config,
        ha: &HaConfig,
        joined: &mut Option<Instant>,
    ) -> Result<(lease::LeaseRow, Vec<lease::MemberRow>, Vec<(f64, Duration)>), DbError> {
        let lease_row = self.note_member(config, ha, Role::Standby).await?;
        joined.get_or_insert_with(Instant::now);
        let members = lease::members(&self.db, &ha.group).await?;
        let scores = match &lease_row.holder {
            Some(holder) if *holder != config.monitor.host => {
                lease::latest_scores(&self.db, holder, ha.takeover_after).await?
            }
            _ => Vec::new(),
        };
        Ok((lease_row, members, scores))
    }

    /// Fence, then the one conditional update, then promote.
    async fn take(
        &self,
        config: &Config,
        ha: &HaConfig,
        takeover: &Takeover<'_>,
        fence: bool,
    ) -> (Instant, Standing) {
        let next = deadline::from_now(ha.renew_interval);
        let epoch = takeover.seen_epoch + 1;
        let old = takeover.from.filter(|old| *old != takeover.host);
        if let (true, Some(old)) = (fence, old) {
            tracing::info!(
                reason = takeover.reason.as_str(),
                "fencing {old} for epoch {epoch}"
            );
            if let Err(why) = duties::fence(ha, old, epoch).await {
                tracing::error!("fence_command failed, no takeover (retried): {why}");
                if let Err(error) = lease::fence_failed(&self.db, takeover, &why).await {
                    tracing::debug!("HA: recording the failed fence: {error}");
                }
                return (next, Standing::Standby);
            }
        }
        let sent = Instant::now();
        match lease::take(&self.db, takeover).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!("another member changed the lease first: staying standby");
                return (next, Standing::Standby);
            }
            Err(error) => {
                tracing::warn!("taking the HA lease: {error}");
                return (next, Standing::Standby);
            }
        }
        tracing::warn!(
            reason = takeover.reason.as_str(),
            from = takeover.from.unwrap_or("nobody"),
            "this host is primary of {} now, epoch {epoch}",
            ha.group
        );
        self.promote(config, ha, epoch, sent).await
    }

    /// The lease names this host already (its monitor restarted): renewed, then promoted.
    async fn resume(&self, config: &Config, ha: &HaConfig, epoch: u64) -> (Instant, Standing) {
        let sent = Instant::now();
        let host = &config.monitor.host;
        match lease::renew(&self.db, &ha.group, host, epoch, ha.lease_ttl).await {
            Ok(true) => {
                tracing::warn!("the HA lease names this host: primary again, epoch {epoch}");
                self.promote(config, ha, epoch, sent).await
            }
            _ => (deadline::from_now(ha.renew_interval), Standing::Standby),
        }
    }

    /// `promote_command`, within what is left of the lease; then the role published and the
    /// `active_on = primary` processes started. A failed promotion gives the role up.
    async fn promote(
        &self,
        config: &Config,
        ha: &HaConfig,
        epoch: u64,
        sent: Instant,
    ) -> (Instant, Standing) {
        let act_until = deadline::after(sent, ha.lease_ttl.saturating_sub(ha.renew_interval));
        let budget = act_until.saturating_duration_since(Instant::now());
        let promoted = match timeout(budget, duties::promote(ha, epoch)).await {
            Ok(promoted) => promoted,
            Err(_) => Err(format!("still running after {budget:?}")),
        };
        if let Err(why) = promoted {
            tracing::error!("promote_command failed: {why}; giving the role up");
            self.step_down(config, ha, epoch, "promote_command failed", true)
                .await;
            return (Instant::now(), Standing::Standby);
        }
        self.publish_role(Role::Primary);
        let text = format!("promoted to primary of {} (epoch {epoch})", ha.group);
        self.alerts.send(
            Event::new(EventKind::Promoted, None, text)
                .with("group", ha.group.as_str())
                .with("epoch", epoch),
        );
        self.status.send_replace(Some(HaStatus {
            group: ha.group.clone(),
            role: Role::Primary,
            epoch,
            holder: Some(config.monitor.host.clone()),
        }));
        let config = self.config.borrow().clone();
        duties::start_primary_processes(&self.db, &config, &self.alarms, epoch).await;
        let next = deadline::after(sent, ha.renew_interval);
        (next.min(act_until), Standing::Primary { epoch, act_until })
    }

    /// Stops acting as primary at once (the role published first), then `demote_command` and
    /// the `active_on = primary` processes stopped; with `free`, the lease given up after.
    async fn step_down(&self, config: &Config, ha: &HaConfig, epoch: u64, why: &str, free: bool) {
        tracing::warn!(
            "stepping down as primary of {} (epoch {epoch}): {why}",
            ha.group
        );
        self.publish_role(Role::Standby);
        let text = format!(
            "stepped down as primary of {} (epoch {epoch}): {why}",
            ha.group
        );
        self.alerts.send(
            Event::new(EventKind::Demoted, None, text)
                .with("group", ha.group.as_str())
                .with("epoch", epoch)
                .with("reason", why),
        );
        self.status.send_modify(|status| {
            if let Some(status) = status {
                status.role = Role::Standby;
            }
        });
        duties::demote(config, ha).await;
        if free && !ha.group.is_empty() {
            let host = &config.monitor.host;
            let freed = lease::free(&self.db, &ha.group, host, epoch);
            match timeout(ha.lease_ttl, freed).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!("giving the HA lease up: {error}"),
                Err(_) => tracing::warn!("giving the HA lease up: no answer"),
            }
        }
    }

    /// The role in the configuration snapshot every task reads.
    fn publish_role(&self, role: Role) {
        self.config.send_if_modified(|config| {
            if config.role == role {
                return false;
            }
            Arc::make_mut(config).role = role;
            true
        });
    }

    fn publish_status(&self, ha: &HaConfig, role: Role, seen: &lease::LeaseRow) {
        let status = HaStatus {
            group: ha.group.clone(),
            role,
            epoch: seen.epoch,
            holder: seen.holder.clone(),
        };
        self.status.send_if_modified(|now| {
            let changed = now.as_ref() != Some(&status);
            if changed {
                *now = Some(status);
            }
            changed
        });
    }
}
