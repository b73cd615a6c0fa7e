//! The commands that write the control plane, whether or not the daemon runs: `alarm
//! set|clear`, `breaker reset`, and `start|stop|restart`. Names are resolved by the one
//! resolver of `crate::report::lists`; the SQL is `crate::db`'s. Each returns the text to print.

use std::collections::{BTreeSet, VecDeque};

use super::failure::Failure;
use crate::alarm::TriggerSource;
use crate::config::Config;
use crate::db::Database;
use crate::db::alarms::{AlarmChange, change_alarm, change_all_alarms};
use crate::dependency;
use crate::report::lists::resolve;
use crate::restart::manual::{Action, ManualError, act};

/// `alarm set|clear NAME` (`name` Some) or `--all`.
pub async fn alarm(
    db: &Database,
    config: &Config,
    name: Option<&str>,
    change: AlarmChange,
) -> Result<String, Failure> {
    let verb = match change {
        AlarmChange::Raise => "raised",
        AlarmChange::Clear => "cleared",
    };
    let Some(name) = name else {
        let changed = change_all_alarms(db, change).await?;
        return Ok(format!("alarm {verb} on {changed} processes"));
    };
    let process = resolve(db, &config.monitor.host, name).await?;
    let changed = change_alarm(db, process.process_id, change).await?;
    if change == AlarmChange::Clear && changed == 0 {
        return Ok(format!(
            "{name} has no STATUS_PROCESS row: no alarm to clear"
        ));
    }
    Ok(format!("alarm {verb} on {name}"))
}

/// `breaker reset NAME`.
pub async fn breaker_reset(db: &Database, config: &Config, name: &str) -> Result<String, Failure> {
    let process = resolve(db, &config.monitor.host, name).await?;
    crate::db::breaker::reset(db, process.process_id).await?;
    Ok(format!(
        "circuit breaker of {name} reset: closed, 0 failures"
    ))
}

/// `start|stop|restart NAME`: a process of `PROCESE` that this host handles. After a start or
/// restart, its dependents with `restart_with_dependencies` are restarted, as the daemon
/// does (`trigger_source = 'dependency'`); a follower that fails fails the command, after
/// every line is said.
pub async fn manual(
    db: &Database,
    config: &Config,
    name: &str,
    action: Action,
) -> Result<String, Failure> {
    let done = act_on(db, config, name, action, TriggerSource::Manual).await?;
    let mut lines = vec![done];
    let mut failed = false;
    if action != Action::Stop {
        let mut queue: VecDeque<(String, String)> = dependency::followers(config, name)
            .into_iter()
            .map(|follower| (follower.to_owned(), name.to_owned()))
            .collect();
        let mut seen = BTreeSet::from([name.to_owned()]);
        while let Some((follower, after)) = queue.pop_front() {
            if !seen.insert(follower.clone()) {
                continue;
            }
            let source = TriggerSource::Dependency;
            match act_on(db, config, &follower, Action::Restart, source).await {
                Ok(done) => {
                    lines.push(format!("{done}, after {after}"));
                    let next = dependency::followers(config, &follower);
                    queue.extend(
                        next.into_iter()
                            .map(|next| (next.to_owned(), follower.clone())),
                    );
                }
                Err(failure) => {
                    lines.push(format!("{failure}, after {after}"));
                    failed = true;
                }
            }
        }
    }
    let text = lines.join("\n");
    if failed {
        return Err(Failure::Internal(text));
    }
    Ok(text)
}

/// `action` on the process called `name`, as `source`.
async fn act_on(
    db: &Database,
    config: &Config,
    name: &str,
    action: Action,
    source: TriggerSource,
) -> Result<String, Failure> {
    let process = resolve(db, &config.monitor.host, name).await?;
    let settings = config.process_for(name).ok_or_else(|| {
        Failure::Usage(format!(
            "\"{name}\" is in PROCESE but not configured on this host ({}): nothing to run",
            config.monitor.host
        ))
    })?;
    act(db, config, (&settings, process.process_id), action, source)
        .await
        .map_err(|error| match error {
            ManualError::Database(error) => Failure::from(error),
            busy @ ManualError::Busy(..) => Failure::Busy(busy.to_string()),
            other => Failure::Internal(other.to_string()),
        })
}
