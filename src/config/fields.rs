//! The keys of one section, read one at a time with their defaults: a wrong value is reported
//! with its section and key and leaves the default, and a key nobody read is unknown.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use super::problem::Problem;
use super::values::{
    SHORTEST_PERIOD, Span, parse_bool, parse_period_or_off, parse_real, parse_seconds, parse_whole,
};

/// The keys of one section, read one at a time; whatever is left unread at `finish` is unknown.
pub(super) struct Fields<'a> {
    section: &'a str,
    entries: &'a [(String, String)],
    used: Vec<bool>,
    problems: &'a mut Vec<Problem>,
}

impl<'a> Fields<'a> {
    pub(super) fn new(
        section: &'a str,
        entries: &'a [(String, String)],
        problems: &'a mut Vec<Problem>,
    ) -> Fields<'a> {
        let used = vec![false; entries.len()];
        Fields {
            section,
            entries,
            used,
            problems,
        }
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    pub(super) fn take(&mut self, key: &str) -> Option<&'a str> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        self.used[index] = true;
        Some(self.entries[index].1.as_str())
    }

    /// Every `prefixN = value`, in file order.
    pub(super) fn take_prefixed(&mut self, prefix: &str) -> Vec<(&'a str, &'a str)> {
        let mut taken = Vec::new();
        for (index, (key, value)) in self.entries.iter().enumerate() {
            if key.starts_with(prefix) {
                self.used[index] = true;
                taken.push((key.as_str(), value.as_str()));
            }
        }
        taken
    }

    /// Whether any key of the section was read.
    pub(super) fn any_taken(&self) -> bool {
        self.used.iter().any(|&used| used)
    }

    pub(super) fn fail(&mut self, key: &str, why: String) {
        self.problems.push(Problem::key(self.section, key, why));
    }

    pub(super) fn fail_section(&mut self, why: String) {
        self.problems.push(Problem::section(self.section, why));
    }

    /// A key that names a single process has no place in `[process.default]`.
    pub(super) fn forbid(&mut self, key: &str) {
        if self.take(key).is_some() {
            self.forbid_taken(key);
        }
    }

    pub(super) fn forbid_taken(&mut self, key: &str) {
        let why = "only makes sense in a [process.NAME] section, for one process";
        self.fail(key, why.to_owned());
    }

    /// The parsed value of `key`, or `default` when it is missing or wrong (wrong is reported).
    pub(super) fn value<T>(
        &mut self,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        let Some(text) = self.take(key) else {
            return default;
        };
        parse(text).unwrap_or_else(|why| {
            // Other INI dialects allow trailing comments; here they are part of the value.
            let hint = if text.contains(" ;") || text.contains(" #") {
                " (a ; or # after the = belongs to the value: comments go on their own line)"
            } else {
                ""
            };
            self.fail(key, format!("{why}{hint}"));
            default
        })
    }

    /// A setting that cannot be left empty.
    pub(super) fn text(&mut self, key: &str, default: &str) -> String {
        self.value(key, default.to_owned(), |text| match text {
            "" => Err(format!("must not be empty (the default is {default})")),
            text => Ok(text.to_owned()),
        })
    }

    /// A setting where an empty value means none.
    pub(super) fn optional(&mut self, key: &str, default: &Option<String>) -> Option<String> {
        self.value(key, default.clone(), |text| {
            Ok((!text.is_empty()).then(|| text.to_owned()))
        })
    }

    pub(super) fn boolean(&mut self, key: &str, default: bool) -> bool {
        self.value(key, default, parse_bool)
    }

    pub(super) fn whole<T>(&mut self, key: &str, default: T, min: T, max: Option<T>) -> T
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        self.value(key, default, |text| parse_whole(text, min, max))
    }

    pub(super) fn real(&mut self, key: &str, default: f64, min: f64, max: Option<f64>) -> f64 {
        self.value(key, default, |text| parse_real(text, min, max))
    }

    pub(super) fn seconds(&mut self, key: &str, default: Duration, span: Span) -> Duration {
        self.value(key, default, |text| parse_seconds(text, span))
    }

    /// A period where 0 turns the feature off.
    pub(super) fn seconds_or_off(
        &mut self,
        key: &str,
        default: Option<Duration>,
    ) -> Option<Duration> {
        self.value(key, default, |text| {
            parse_period_or_off(text, SHORTEST_PERIOD)
        })
    }

    pub(super) fn finish(self) {
        for ((key, _), used) in self.entries.iter().zip(&self.used) {
            if !used {
                let problem = Problem::key(self.section, key, "unknown key".into());
                self.problems.push(problem);
            }
        }
    }
}
