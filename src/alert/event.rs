//! One event, as the hook and the webhook get it: `kind`, `host`, `process` (when there is
//! one), `at` (UTC), `message` (the note), `count` (how many were coalesced into it) and the
//! details of its kind.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::config::EventKind;

/// Something worth telling a person.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub process: Option<String>,
    pub at: DateTime<Utc>,
    pub message: String,
    /// The kind's own fields (`attempts`, `error`, `score`…), in the order they were added.
    pub details: Map<String, Value>,
}

impl Event {
    /// An event of `kind` now, about `process` when there is one.
    pub fn new(kind: EventKind, process: Option<&str>, message: impl Into<String>) -> Event {
        Event {
            kind,
            process: process.map(str::to_owned),
            at: Utc::now(),
            message: message.into(),
            details: Map::new(),
        }
    }

    /// The event with one more detail.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Event {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The JSON document sent for this event from `host`, standing for `count` events of its
    /// kind and process, the first of which happened at `first_at`.
    pub fn to_json(&self, host: &str, count: u32, first_at: DateTime<Utc>) -> String {
        let mut object = Map::new();
        object.insert("kind".into(), self.kind.as_str().into());
        object.insert("host".into(), host.into());
        if let Some(process) = &self.process {
            object.insert("process".into(), process.as_str().into());
        }
        object.insert("at".into(), timestamp(self.at).into());
        object.insert("message".into(), self.message.as_str().into());
        object.insert("count".into(), count.into());
        if count > 1 {
            object.insert("first_at".into(), timestamp(first_at).into());
        }
        for (key, value) in &self.details {
            object.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(object).to_string()
    }
}

/// RFC 3339 in UTC with milliseconds: `2026-12-02T01:10:00.123Z`.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_has_the_common_fields_then_the_details() {
        let event = Event::new(EventKind::RestartFailed, Some("nginx"), "restart failed")
            .with("attempts", 3)
            .with("error", "exit 1")
            .with("kind", "cannot replace the kind");
        let json: Value =
            serde_json::from_str(&event.to_json("web1", 1, event.at)).expect("valid JSON");
        assert_eq!(json["kind"], "restart_failed");
        assert_eq!(json["host"], "web1");
        assert_eq!(json["process"], "nginx");
        assert_eq!(json["message"], "restart failed");
        assert_eq!(json["attempts"], 3);
        assert_eq!(json["error"], "exit 1");
        assert_eq!(json["count"], 1);
        assert!(json.get("first_at").is_none());
        assert!(json["at"].as_str().is_some_and(|at| at.ends_with('Z')));
    }

    #[test]
    fn an_event_without_a_process_has_no_process_field() {
        let event = Event::new(EventKind::DatabaseDown, None, "database unavailable");
        let json: Value = serde_json::from_str(&event.to_json("h", 3, event.at)).expect("JSON");
        assert!(json.get("process").is_none());
        assert_eq!(json["count"], 3);
        assert!(json["first_at"].is_string());
    }
}
