//! `[ha]`: primary and standby through the database. Off unless `group` is set; its checks
//! across keys (`renew_interval` at most a third of `lease_ttl`, scores to judge by), and the
//! role a host holds now, which decides whether an `active_on = primary` process is its own.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::fields::Fields;
use super::problem::Problem;
use super::values::{SHORTEST_PERIOD, Span};
use super::{DEFAULT_PROCESS_SECTION, MonitorConfig, PROCESS_PREFIX, ProcessConfig};

/// The `[ha]` settings of a host taking part in a group.
#[derive(Debug, Clone, PartialEq)]
pub struct HaConfig {
    /// The name of the group of hosts that share one primary role (`HA_LEASE.group_name`).
    pub group: String,
    /// The higher takes a free role first, when both are healthy.
    pub priority: i32,
    /// How long a renewal keeps the lease, database clock.
    pub lease_ttl: Duration,
    /// How often the primary renews and a standby looks; at most a third of `lease_ttl`.
    pub renew_interval: Duration,
    /// How many of the primary's latest health rows in a row must be low before a standby
    /// takes over.
    pub takeover_after: u32,
    /// STONITH: `$1` the old primary's host, `$2` the new epoch; exits 0 before a takeover
    /// commits.
    pub fence_command: Option<String>,
    /// `$1` the epoch.
    pub promote_command: Option<String>,
    pub demote_command: Option<String>,
}

impl HaConfig {
    /// How long a fence, promote or demote command may run: a lease's time.
    pub fn command_deadline(&self) -> Duration {
        self.lease_ttl
    }
}

/// Which hosts run a process (`active_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveOn {
    /// Every host the process is configured on.
    Any,
    /// Only the group's primary: a standby never starts it nor handles its alarms.
    Primary,
}

impl ActiveOn {
    pub fn as_str(self) -> &'static str {
        match self {
            ActiveOn::Any => "any",
            ActiveOn::Primary => "primary",
        }
    }
}

impl fmt::Display for ActiveOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(super) fn parse_active_on(text: &str) -> Result<ActiveOn, String> {
    match text {
        "any" => Ok(ActiveOn::Any),
        "primary" => Ok(ActiveOn::Primary),
        _ => Err(format!("\"{text}\" is not one of any, primary")),
    }
}

/// The role this host holds now. Not read from the file: a loaded configuration acts on
/// everything (`Primary`, what the command line wants); the service starts as `Standby` when
/// `[ha]` is set and the HA task changes it in the snapshot every task reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Standby,
}

impl Role {
    /// Whether a process that is `active_on` runs on a host in this role.
    pub fn runs(self, active_on: ActiveOn) -> bool {
        self == Role::Primary || active_on == ActiveOn::Any
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest a group's name may be, as `HA_LEASE.group_name` stores it.
const LONGEST_GROUP: usize = 100;

/// `[ha]`, or `None` when it has no `group` (then no other key may be set).
pub(super) fn read_ha(fields: &mut Fields<'_>) -> Option<HaConfig> {
    let group = fields.optional("group", &None);
    let ha = HaConfig {
        group: group.clone().unwrap_or_default(),
        priority: fields.whole("priority", 0, i32::MIN, Some(i32::MAX)),
        lease_ttl: fields.seconds(
            "lease_ttl",
            Duration::from_secs(15),
            Span::AtLeast(SHORTEST_PERIOD * 3),
        ),
        renew_interval: fields.seconds(
            "renew_interval",
            Duration::from_secs(5),
            Span::AtLeast(SHORTEST_PERIOD),
        ),
        takeover_after: fields.whole("takeover_after", 3, 1, Some(1000)),
        fence_command: fields.optional("fence_command", &None),
        promote_command: fields.optional("promote_command", &None),
        demote_command: fields.optional("demote_command", &None),
    };
    let Some(group) = group else {
        if fields.any_taken() {
            fields.fail_section("has settings but no group: set group to turn HA on".into());
        }
        return None;
    };
    if group.len() > LONGEST_GROUP || group.chars().any(char::is_control) {
        let why = format!("must be at most {LONGEST_GROUP} characters, without control characters");
        fields.fail("group", why);
    }
    if ha.renew_interval.saturating_mul(3) > ha.lease_ttl {
        let why = format!(
            "must be at most a third of lease_ttl ({} s): the primary needs time to retry a \
             renewal and step down before its lease can expire",
            ha.lease_ttl.as_secs_f64()
        );
        fields.fail("renew_interval", why);
    }
    Some(ha)
}

/// The checks between `[ha]` and the rest: the scores a standby judges by need the sampler,
/// and `active_on = primary` needs a group to have a primary in.
pub(super) fn check_ha(
    ha: Option<&HaConfig>,
    monitor: &MonitorConfig,
    default_process: &ProcessConfig,
    processes: &BTreeMap<String, ProcessConfig>,
    problems: &mut Vec<Problem>,
) {
    if ha.is_some() && monitor.stats_interval.is_none() {
        let why = "needs stats_interval above 0 in [monitor]: takeovers are decided on the \
                   health scores the sampler writes";
        problems.push(Problem::section("ha", why.to_owned()));
    }
    if ha.is_some() {
        return;
    }
    let named = processes
        .iter()
        .map(|(name, process)| (format!("{PROCESS_PREFIX}{name}"), process));
    let all = std::iter::once((DEFAULT_PROCESS_SECTION.to_owned(), default_process)).chain(named);
    for (section, process) in all {
        // A named section inheriting it from the default section is reported there, once.
        let inherited =
            section != DEFAULT_PROCESS_SECTION && default_process.active_on == ActiveOn::Primary;
        if process.active_on == ActiveOn::Primary && !inherited {
            let why = "= primary needs an [ha] section with a group: without one no host is \
                       primary";
            problems.push(Problem::key(&section, "active_on", why.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_runs_only_processes_active_on_any() {
        assert!(Role::Standby.runs(ActiveOn::Any));
        assert!(!Role::Standby.runs(ActiveOn::Primary));
        assert!(Role::Primary.runs(ActiveOn::Primary));
        assert!(Role::Primary.runs(ActiveOn::Any));
    }

    #[test]
    fn active_on_takes_its_two_words_only() {
        assert_eq!(parse_active_on("any"), Ok(ActiveOn::Any));
        assert_eq!(parse_active_on("primary"), Ok(ActiveOn::Primary));
        assert!(parse_active_on("Primary").is_err());
        assert!(parse_active_on("").is_err());
    }
}
