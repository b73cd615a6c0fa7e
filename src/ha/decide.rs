//! What a standby does with what it read: a pure function of the lease, the members' scores,
//! the primary's latest scores and the settings, with its case table below.
//!
//! The rules: an unhealthy member (latest score below the threshold, or stale) never takes
//! the role, unless an operator forces it. A free role goes to the best healthy member (the
//! highest priority, then the lowest host name), or to anyone healthy once it has been free
//! for two leases' time; the one that released it takes it back only when nobody else can. A
//! held role moves when its lease has expired, when the holder's score is stale by more than
//! `lease_ttl` (counted as expired), when its last `takeover_after` rows since it took the
//! role are all below the threshold, or when an operator asked for it here.

use std::time::Duration;

use crate::db::ha::{LeaseRow, MemberRow, Reason, Request};

/// The settings a decision needs.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub threshold: f64,
    pub lease_ttl: Duration,
    /// How often scores are written: a score older than this plus `lease_ttl` is stale.
    pub stats_interval: Duration,
    pub takeover_after: u32,
}

impl Rules {
    fn stale(&self, age: Duration) -> bool {
        age > self.lease_ttl + self.stats_interval
    }

    /// A latest score at or above the threshold, and fresh.
    fn healthy(&self, score: Option<(f64, Duration)>) -> bool {
        score.is_some_and(|(total, age)| total >= self.threshold && !self.stale(age))
    }
}

/// What one standby saw in one look.
#[derive(Debug, Clone)]
pub struct Seen<'a> {
    pub host: &'a str,
    /// How long this member has been registered: a free role waits a lease's time at start,
    /// so that members started together have all registered before priority decides.
    pub member_for: Duration,
    pub lease: &'a LeaseRow,
    pub members: &'a [MemberRow],
    /// The holder's latest rows (newest first, at most `takeover_after`), with their ages.
    pub holder_scores: &'a [(f64, Duration)],
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Stay standby and look again.
    Wait,
    /// The lease names this host (its monitor restarted): renew it and act as primary again.
    Resume,
    /// An operator's takeover here that this host may not do (its score is low): clear it.
    Refuse,
    /// Take the role from `from` (fenced first, unless `fence` is false).
    Take {
        reason: Reason,
        from: Option<String>,
        fence: bool,
        only_if_expired: bool,
    },
}

pub fn decide(seen: &Seen<'_>, rules: &Rules) -> Decision {
    let lease = seen.lease;
    if lease.holder.as_deref() == Some(seen.host) {
        return Decision::Resume;
    }
    let mine = seen.members.iter().find(|m| m.host == seen.host);
    let healthy = rules.healthy(mine.and_then(|m| m.score));
    let asked_here = lease.request_host.as_deref() == Some(seen.host);
    let old = lease.holder.clone().or_else(|| lease.released_by.clone());
    match lease.request {
        Some(Request::Force) if asked_here => return take(Reason::Manual, old, true, false),
        Some(Request::Takeover) if asked_here && healthy => {
            return take(Reason::Manual, old, true, false);
        }
        Some(Request::Takeover) if asked_here => return Decision::Refuse,
        _ => {}
    }
    if !healthy {
        return Decision::Wait;
    }
    match &lease.holder {
        None => free_role(seen, rules),
        Some(holder) => held_role(seen, rules, holder),
    }
}

fn take(reason: Reason, from: Option<String>, fence: bool, only_if_expired: bool) -> Decision {
    Decision::Take {
        reason,
        from,
        fence,
        only_if_expired,
    }
}

fn free_role(seen: &Seen<'_>, rules: &Rules) -> Decision {
    let lease = seen.lease;
    let released_by = lease.released_by.as_deref();
    // Released: no fence, the holder gave it up itself. Never taken: nobody to fence.
    let reason = match released_by {
        Some(_) => Reason::Released,
        None => Reason::Expired,
    };
    let from = released_by.map(str::to_owned);
    // The best member has had a lease's time past its own start-up wait to take it.
    let waited = lease.since_renewed > rules.lease_ttl.saturating_mul(2);
    let contenders: Vec<&MemberRow> = seen
        .members
        .iter()
        .filter(|m| !rules.stale(m.since_seen) && rules.healthy(m.score))
        .filter(|m| Some(m.host.as_str()) != released_by)
        .collect();
    if released_by == Some(seen.host) {
        return match contenders.is_empty() && waited {
            true => take(reason, None, false, false),
            false => Decision::Wait,
        };
    }
    if released_by.is_none() && seen.member_for < rules.lease_ttl {
        return Decision::Wait;
    }
    let best = contenders
        .iter()
        .max_by(|a, b| a.priority.cmp(&b.priority).then(b.host.cmp(&a.host)));
    match best {
        Some(best) if best.host == seen.host => take(reason, from, false, false),
        _ if waited => take(reason, from, false, false),
        _ => Decision::Wait,
    }
}

fn held_role(seen: &Seen<'_>, rules: &Rules, holder: &str) -> Decision {
    let lease = seen.lease;
    let from = Some(holder.to_owned());
    if lease.expired {
        return take(Reason::Expired, from, true, true);
    }
    let newest = seen.holder_scores.first().map(|(_, age)| *age);
    let held_for = lease.since_taken.unwrap_or(Duration::MAX);
    let stale = match newest {
        Some(age) => rules.stale(age),
        None => rules.stale(held_for),
    };
    if stale {
        return take(Reason::Expired, from, true, false);
    }
    // Only rows written since it took the role: its low rows as a standby are not its
    // record as primary.
    let since_taken: Vec<f64> = seen
        .holder_scores
        .iter()
        .filter(|(_, age)| *age < held_for)
        .map(|(total, _)| *total)
        .collect();
    let enough = since_taken.len() >= rules.takeover_after as usize;
    if enough && since_taken.iter().all(|&total| total < rules.threshold) {
        return take(Reason::LowHealth, from, true, false);
    }
    Decision::Wait
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        threshold: 0.5,
        lease_ttl: Duration::from_secs(3),
        stats_interval: Duration::from_secs(1),
        takeover_after: 3,
    };

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn lease(holder: Option<&str>) -> LeaseRow {
        LeaseRow {
            holder: holder.map(str::to_owned),
            epoch: 4,
            left: secs(2.0),
            expired: false,
            since_renewed: secs(1.0),
            since_taken: Some(secs(60.0)),
            released_by: None,
            request: None,
            request_host: None,
        }
    }

    fn member(host: &str, priority: i32, score: Option<f64>) -> MemberRow {
        MemberRow {
            host: host.to_owned(),
            priority,
            role: "standby".to_owned(),
            since_seen: secs(0.5),
            score: score.map(|s| (s, secs(0.5))),
        }
    }

    fn decide_for(host: &str, lease: &LeaseRow, members: &[MemberRow], scores: &[f64]) -> Decision {
        let holder_scores: Vec<(f64, Duration)> = scores
            .iter()
            .enumerate()
            .map(|(i, &s)| (s, secs(0.5 + i as f64)))
            .collect();
        let seen = Seen {
            host,
            member_for: secs(10.0),
            lease,
            members,
            holder_scores: &holder_scores,
        };
        decide(&seen, &RULES)
    }

    fn taken(reason: Reason, from: Option<&str>, fence: bool, expired: bool) -> Decision {
        take(reason, from.map(str::to_owned), fence, expired)
    }

    #[test]
    fn a_standby_takes_over_after_takeover_after_low_rows_and_not_before() {
        let held = lease(Some("a"));
        let members = [member("a", 0, Some(0.1)), member("b", 0, Some(1.0))];
        let cases: [(&[f64], Decision); 5] = [
            (
                &[0.1, 0.1, 0.1],
                taken(Reason::LowHealth, Some("a"), true, false),
            ),
            (&[0.1, 0.1], Decision::Wait),
            (&[0.1, 0.9, 0.1], Decision::Wait),
            (&[0.9, 0.1, 0.1], Decision::Wait),
            (&[1.0, 1.0, 1.0], Decision::Wait),
        ];
        for (scores, expected) in cases {
            assert_eq!(
                decide_for("b", &held, &members, scores),
                expected,
                "{scores:?}"
            );
        }
    }

    #[test]
    fn an_unhealthy_standby_never_takes_over_even_an_expired_lease() {
        let mut held = lease(Some("a"));
        held.expired = true;
        let members = [member("a", 0, Some(0.1)), member("b", 0, Some(0.2))];
        assert_eq!(
            decide_for("b", &held, &members, &[0.1, 0.1, 0.1]),
            Decision::Wait
        );
        let stale = [member("a", 0, None), member("b", 0, None)];
        assert_eq!(decide_for("b", &held, &stale, &[]), Decision::Wait);
    }

    #[test]
    fn an_expired_lease_or_a_stale_score_moves_the_role() {
        let members = [member("a", 0, Some(1.0)), member("b", 0, Some(1.0))];
        let mut expired = lease(Some("a"));
        expired.expired = true;
        let by_lease = taken(Reason::Expired, Some("a"), true, true);
        assert_eq!(decide_for("b", &expired, &members, &[1.0]), by_lease);
        let held = lease(Some("a"));
        let holder_scores = [(1.0, secs(4.5))];
        let seen = Seen {
            host: "b",
            member_for: secs(10.0),
            lease: &held,
            members: &members,
            holder_scores: &holder_scores,
        };
        let by_score = taken(Reason::Expired, Some("a"), true, false);
        assert_eq!(decide(&seen, &RULES), by_score);
    }

    #[test]
    fn rows_from_before_the_holder_took_the_role_do_not_count() {
        let mut held = lease(Some("a"));
        held.since_taken = Some(secs(1.0));
        let members = [member("a", 0, Some(0.1)), member("b", 0, Some(1.0))];
        assert_eq!(
            decide_for("b", &held, &members, &[0.1, 0.1, 0.1]),
            Decision::Wait
        );
    }

    #[test]
    fn a_free_role_goes_to_the_best_healthy_member() {
        let free = lease(None);
        let members = [
            member("a", 10, Some(1.0)),
            member("b", 0, Some(1.0)),
            member("c", 20, Some(0.1)),
        ];
        let first = taken(Reason::Expired, None, false, false);
        assert_eq!(decide_for("a", &free, &members, &[]), first);
        assert_eq!(decide_for("b", &free, &members, &[]), Decision::Wait);
        let mut waited = lease(None);
        waited.since_renewed = secs(6.5);
        assert_eq!(decide_for("b", &waited, &members, &[]), first);
        let tie = [member("b", 0, Some(1.0)), member("a", 0, Some(1.0))];
        assert_eq!(decide_for("a", &free, &tie, &[]), first);
        assert_eq!(decide_for("b", &free, &tie, &[]), Decision::Wait);
    }

    #[test]
    fn a_released_role_goes_to_another_member_without_a_fence() {
        let mut released = lease(None);
        released.released_by = Some("a".to_owned());
        let members = [member("a", 10, Some(1.0)), member("b", 0, Some(1.0))];
        let to_b = taken(Reason::Released, Some("a"), false, false);
        assert_eq!(decide_for("b", &released, &members, &[]), to_b);
        assert_eq!(decide_for("a", &released, &members, &[]), Decision::Wait);
        let alone = [member("a", 10, Some(1.0))];
        released.since_renewed = secs(6.5);
        let back = taken(Reason::Released, None, false, false);
        assert_eq!(decide_for("a", &released, &alone, &[]), back);
    }

    #[test]
    fn an_operators_takeover_is_fenced_and_forced_past_a_low_score() {
        let mut asked = lease(Some("a"));
        asked.request = Some(Request::Takeover);
        asked.request_host = Some("b".to_owned());
        let healthy = [member("a", 0, Some(1.0)), member("b", 0, Some(1.0))];
        let manual = taken(Reason::Manual, Some("a"), true, false);
        assert_eq!(decide_for("b", &asked, &healthy, &[1.0]), manual);
        assert_eq!(decide_for("c", &asked, &healthy, &[1.0]), Decision::Wait);
        let low = [member("a", 0, Some(1.0)), member("b", 0, Some(0.1))];
        assert_eq!(decide_for("b", &asked, &low, &[1.0]), Decision::Refuse);
        asked.request = Some(Request::Force);
        assert_eq!(decide_for("b", &asked, &low, &[1.0]), manual);
    }

    #[test]
    fn a_host_named_by_the_lease_resumes() {
        let held = lease(Some("b"));
        assert_eq!(decide_for("b", &held, &[], &[]), Decision::Resume);
    }
}
