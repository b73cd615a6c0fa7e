//! `[alert]`: where events go (a command, a webhook), which kinds, and how often one of a kind
//! may repeat for the same process. The kinds of event are named here, the config's vocabulary,
//! so that `alert/` (which sends them) and the parser share one list.

use std::fmt;
use std::time::Duration;

use super::Secret;
use super::fields::Fields;
use super::values::{Span, split_list};

/// The environment variable that overrides `[alert] webhook` (its URL may hold a secret).
pub const WEBHOOK_ENV: &str = "MONITOR_ALERT_WEBHOOK";

/// What can be alerted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    RestartSucceeded,
    RestartFailed,
    BreakerOpened,
    BreakerClosed,
    AutoAlarm,
    CrashLoop,
    LowHealth,
    HealthRecovered,
    DatabaseDown,
    DatabaseUp,
    /// This monitor became the active one (HA).
    Promoted,
    /// This monitor stepped down (HA).
    Demoted,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::RestartSucceeded,
        EventKind::RestartFailed,
        EventKind::BreakerOpened,
        EventKind::BreakerClosed,
        EventKind::AutoAlarm,
        EventKind::CrashLoop,
        EventKind::LowHealth,
        EventKind::HealthRecovered,
        EventKind::DatabaseDown,
        EventKind::DatabaseUp,
        EventKind::Promoted,
        EventKind::Demoted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RestartSucceeded => "restart_succeeded",
            EventKind::RestartFailed => "restart_failed",
            EventKind::BreakerOpened => "breaker_opened",
            EventKind::BreakerClosed => "breaker_closed",
            EventKind::AutoAlarm => "auto_alarm",
            EventKind::CrashLoop => "crash_loop",
            EventKind::LowHealth => "low_health",
            EventKind::HealthRecovered => "health_recovered",
            EventKind::DatabaseDown => "database_down",
            EventKind::DatabaseUp => "database_up",
            EventKind::Promoted => "promoted",
            EventKind::Demoted => "demoted",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The validated `[alert]` section. Off unless `command` or `webhook` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// Run once per event: the JSON on stdin, the kind as `$1`.
    pub command: Option<String>,
    /// The deadline of `command`; its process group is killed at it.
    pub command_timeout: Duration,
    /// An `http://` or `https://` URL that gets each event in a POST. A secret: never shown.
    pub webhook: Option<Secret>,
    /// The deadline of one POST, connection included.
    pub webhook_timeout: Duration,
    /// How many times a failed POST is tried again, with backoff.
    pub webhook_retries: u32,
    /// The kinds to send, in `EventKind` order.
    pub events: Vec<EventKind>,
    /// Events of one kind for one process within this are sent as one, with a `count`.
    pub min_interval: Duration,
}

impl AlertConfig {
    pub fn is_on(&self) -> bool {
        self.command.is_some() || self.webhook.is_some()
    }

    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.contains(&kind)
    }
}

/// Reads `[alert]`. `webhook_override` (the caller reads `MONITOR_ALERT_WEBHOOK`) replaces the
/// file's `webhook` unless it is empty.
pub(super) fn read_alert(fields: &mut Fields<'_>, webhook_override: Option<String>) -> AlertConfig {
    let in_file = fields.optional("webhook", &None);
    let webhook = webhook_override.filter(|url| !url.is_empty()).or(in_file);
    if let Some(url) = &webhook {
        if let Err(why) = check_webhook(url) {
            fields.fail("webhook", why);
        }
    }
    AlertConfig {
        command: fields.optional("command", &None),
        command_timeout: fields.seconds("command_timeout", Duration::from_secs(30), Span::Positive),
        webhook: webhook.map(Secret::new),
        webhook_timeout: fields.seconds("webhook_timeout", Duration::from_secs(5), Span::Positive),
        webhook_retries: fields.whole("webhook_retries", 5, 0, Some(100)),
        events: fields.value("events", EventKind::ALL.to_vec(), parse_events),
        min_interval: fields.seconds("min_interval", Duration::from_secs(60), Span::Any),
    }
}

/// `all`, or a list of kinds separated by commas or spaces.
fn parse_events(text: &str) -> Result<Vec<EventKind>, String> {
    let words = split_list(text);
    if words.is_empty() {
        return Err("must name at least one kind of event, or all".into());
    }
    if words.iter().any(|word| word == "all") {
        return Ok(EventKind::ALL.to_vec());
    }
    let mut kinds = Vec::new();
    for word in &words {
        let kind = EventKind::parse(word).ok_or_else(|| {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            format!(
                "\"{word}\" is not a kind of event ({} or all)",
                known.join(", ")
            )
        })?;
        kinds.push(kind);
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// An `http://` or `https://` URL with a host. The message never repeats the URL: it may hold
/// a secret (a chat webhook's token is its path).
fn check_webhook(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| "is not a URL (http://HOST[:PORT]/PATH or https://…)".to_owned())?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("must start with http:// or https://".into()),
    }
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if authority.contains('@') {
        return Err("must not hold user:password@: put a token in the path or query".into());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(())
}

/// `[alert]`'s keys as `check-config` prints them, the webhook masked like the password.
pub(super) fn effective(alert: &AlertConfig) -> Vec<(&'static str, String)> {
    let events = if alert.events == EventKind::ALL {
        "all".to_owned()
    } else {
        let names: Vec<&str> = alert.events.iter().map(|kind| kind.as_str()).collect();
        names.join(", ")
    };
    vec![
        ("command", alert.command.clone().unwrap_or_default()),
        (
            "command_timeout",
            alert.command_timeout.as_secs_f64().to_string(),
        ),
        // A secret's Display is its mask.
        (
            "webhook",
            alert
                .webhook
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        (
            "webhook_timeout",
            alert.webhook_timeout.as_secs_f64().to_string(),
        ),
        ("webhook_retries", alert.webhook_retries.to_string()),
        ("events", events),
        ("min_interval", alert.min_interval.as_secs_f64().to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_all_or_a_list_of_known_kinds() {
        assert_eq!(parse_events("all"), Ok(EventKind::ALL.to_vec()));
        assert_eq!(
            parse_events("restart_failed, breaker_opened restart_failed"),
            Ok(vec![EventKind::RestartFailed, EventKind::BreakerOpened])
        );
        assert!(parse_events("restart_failed, paging").is_err());
        assert!(parse_events("").is_err());
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn webhooks_are_http_or_https_with_a_host() {
        assert!(check_webhook("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_webhook("https://chat.example.com/hooks/T0/B0/secret").is_ok());
        for bad in [
            "ftp://x/y",
            "chat.example.com/hook",
            "http://user:pw@host/",
            "http:///path",
            "not a url",
        ] {
            let why = check_webhook(bad).expect_err(bad);
            assert!(!why.contains(bad), "the message repeats the URL: {why}");
        }
    }
}
