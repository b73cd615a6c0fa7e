//! `ha status [--json]`, `ha takeover [--force]` and `ha release`. The commands do not act on
//! the role themselves: they read `HA_LEASE` and the members, or leave a request in it that the
//! daemons carry out (the standby asked for takes over, fenced; the primary steps down and the
//! best standby takes over), and wait, under a deadline, for the lease to show it done.

use std::time::{Duration, Instant};

use super::args::HaCommand;
use super::failure::Failure;
use super::text::{Align, table};
use crate::config::{Config, HaConfig};
use crate::db::Database;
use crate::db::ha::{self as lease, LeaseRow, Request};
use crate::printable::printable;

/// How often a waiting command reads the lease.
const LOOK_EVERY: Duration = Duration::from_millis(100);

pub async fn execute(
    db: &Database,
    config: &Config,
    command: HaCommand,
) -> Result<String, Failure> {
    let Some(ha) = &config.ha else {
        let why = format!(
            "{} has no [ha] section with a group: this host is in no HA group",
            config.path.display()
        );
        return Err(Failure::Usage(why));
    };
    match command {
        HaCommand::Status { json } => status(db, ha, json).await,
        HaCommand::Takeover { force } => takeover(db, config, ha, force).await,
        HaCommand::Release => release(db, ha).await,
    }
}

/// How long `takeover` and `release` wait: a standby's look, a fence, a promote, twice over.
fn patience(ha: &HaConfig) -> Duration {
    (ha.renew_interval + ha.command_deadline()).saturating_mul(2) + ha.lease_ttl
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64())
}

async fn status(db: &Database, ha: &HaConfig, json: bool) -> Result<String, Failure> {
    let lease_row = lease::read_lease(db, &ha.group).await?;
    let members = lease::members(db, &ha.group).await?;
    let last = lease::events(db, &ha.group, 1).await?;
    if json {
        let members: Vec<serde_json::Value> = members
            .iter()
            .map(|m| {
                serde_json::json!({
                    "host": m.host,
                    "priority": m.priority,
                    "role": m.role,
                    "seenSecondsAgo": m.since_seen.as_secs_f64(),
                    "score": m.score.map(|(total, _)| total),
                    "scoreAgeSeconds": m.score.map(|(_, age)| age.as_secs_f64()),
                })
            })
            .collect();
        let document = serde_json::json!({
            "group": ha.group,
            "holder": lease_row.as_ref().and_then(|l| l.holder.clone()),
            "epoch": lease_row.as_ref().map_or(0, |l| l.epoch),
            "leaseLeftSeconds": lease_row.as_ref().map(|l| l.left.as_secs_f64()),
            "members": members,
        });
        return serde_json::to_string_pretty(&document)
            .map_err(|error| Failure::Internal(error.to_string()));
    }
    let mut text = format!("group    {}\n", printable(&ha.group));
    text.push_str(&match &lease_row {
        Some(LeaseRow {
            holder: Some(holder),
            epoch,
            left,
            ..
        }) => format!(
            "primary  {} (epoch {epoch}, lease left {} s)\n",
            printable(holder),
            seconds(*left)
        ),
        Some(l) => format!("primary  none (epoch {}, the role is free)\n", l.epoch),
        None => "primary  none (no member has started yet)\n".to_owned(),
    });
    if let Some(event) = last.first() {
        text.push_str(&format!(
            "last     epoch {}: {} -> {}, {} ({}) at {}\n",
            event.epoch,
            printable(event.from_host.as_deref().unwrap_or("-")),
            printable(event.to_host.as_deref().unwrap_or("-")),
            event.reason,
            event.outcome,
            event.at.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    let columns = [
        ("host", Align::Left),
        ("priority", Align::Right),
        ("role", Align::Left),
        ("seen s ago", Align::Right),
        ("score", Align::Right),
        ("score age s", Align::Right),
    ];
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            vec![
                m.host.clone(),
                m.priority.to_string(),
                m.role.clone(),
                seconds(m.since_seen),
                m.score
                    .map_or("-".into(), |(total, _)| format!("{total:.3}")),
                m.score.map_or("-".into(), |(_, age)| seconds(age)),
            ]
        })
        .collect();
    text.push('\n');
    text.push_str(&table(&columns, &rows));
    Ok(text)
}

/// Asks this host's daemon to take the role (fenced), and waits until the lease names it.
async fn takeover(
    db: &Database,
    config: &Config,
    ha: &HaConfig,
    force: bool,
) -> Result<String, Failure> {
    let host = config.monitor.host.as_str();
    let before = lease::lease(db, &ha.group).await?;
    if before.holder.as_deref() == Some(host) {
        return Ok(format!(
            "{} is primary already (epoch {})",
            printable(host),
            before.epoch
        ));
    }
    let request = if force {
        Request::Force
    } else {
        Request::Takeover
    };
    lease::ask(db, &ha.group, Some(request), Some(host)).await?;
    let started = Instant::now();
    while started.elapsed() < patience(ha) {
        tokio::time::sleep(LOOK_EVERY).await;
        let now = lease::lease(db, &ha.group).await?;
        if now.holder.as_deref() == Some(host) {
            return Ok(format!(
                "{} is primary now (epoch {})",
                printable(host),
                now.epoch
            ));
        }
        if now.request.is_none() {
            return Err(Failure::Busy(format!(
                "{} refused: its health score is below the threshold (--force takes over \
                 anyway)",
                printable(host)
            )));
        }
    }
    lease::ask(db, &ha.group, None, None).await?;
    Err(Failure::Busy(format!(
        "{} did not take over within {} s (is its daemon running? see its log for the \
         fence_command): the request is withdrawn",
        printable(host),
        seconds(patience(ha))
    )))
}

/// Asks the primary to step down, and waits until it has, and for who takes over.
async fn release(db: &Database, ha: &HaConfig) -> Result<String, Failure> {
    let before = lease::lease(db, &ha.group).await?;
    let Some(old) = before.holder.clone() else {
        return Ok(format!(
            "{} has no primary: nothing to release",
            printable(&ha.group)
        ));
    };
    lease::ask(db, &ha.group, Some(Request::Release), None).await?;
    let started = Instant::now();
    let mut freed = false;
    while started.elapsed() < patience(ha) {
        tokio::time::sleep(LOOK_EVERY).await;
        let now = lease::lease(db, &ha.group).await?;
        match &now.holder {
            Some(holder) if *holder != old => {
                return Ok(format!(
                    "{} stepped down; {} is primary now (epoch {})",
                    printable(&old),
                    printable(holder),
                    now.epoch
                ));
            }
            Some(_) => {}
            None => freed = true,
        }
    }
    if freed {
        return Ok(format!(
            "{} stepped down; no standby has taken the role yet",
            printable(&old)
        ));
    }
    lease::ask(db, &ha.group, None, None).await?;
    Err(Failure::Busy(format!(
        "{} did not step down within {} s (is its daemon running?): the request is withdrawn",
        printable(&old),
        seconds(patience(ha))
    )))
}
