//! The text the service writes into `STATUS_PROCESS.notes`: at most 100 characters (the
//! column is `VARCHAR(100)`), cut on a character boundary, one line, the important part first.
//! And what a column's character set can hold: `PROCESE` and `STATUS_PROCESS` belong to other
//! systems and may be `latin1` (MySQL 5.7's default) or 3-byte `utf8`, where strict
//! `sql_mode` refuses a whole statement for one character it cannot store.

use std::fmt::Write;

use chrono::{DateTime, Utc};

/// `STATUS_PROCESS.notes` is `VARCHAR(100)`: characters, not bytes.
pub const NOTE_CHARS: usize = 100;

/// Cuts `text` to at most [`NOTE_CHARS`] characters, control characters made spaces, so that
/// it fits the column under strict `sql_mode` and reads as one line.
pub fn fit(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(NOTE_CHARS)
        .collect()
}

/// The characters a column's character set can store. Text bound for it has the others
/// replaced by `?`, as the server's own conversion (`CONVERT(... USING latin1)`) would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repertoire {
    /// `utf8mb4`, `utf16`, `utf32`: every character.
    Unicode,
    /// `utf8` / `utf8mb3`, `ucs2`: the Basic Multilingual Plane (no emoji).
    Bmp,
    /// MySQL's `latin1`, which is Windows-1252.
    Latin1,
    /// `ascii`, and any character set this version does not know: the safe common ground.
    Ascii,
}

/// The characters Windows-1252 puts in 0x80..0x9F, which MySQL's `latin1` stores too.
const CP1252_EXTRAS: &str = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ";

impl Repertoire {
    /// The repertoire of a character set as `information_schema` names it.
    pub fn of_charset(name: &str) -> Repertoire {
        match name.to_ascii_lowercase().as_str() {
            "utf8mb4" | "utf16" | "utf16le" | "utf32" => Repertoire::Unicode,
            "utf8" | "utf8mb3" | "ucs2" => Repertoire::Bmp,
            "latin1" => Repertoire::Latin1,
            _ => Repertoire::Ascii,
        }
    }

    pub fn holds(self, c: char) -> bool {
        match self {
            Repertoire::Unicode => true,
            Repertoire::Bmp => u32::from(c) <= 0xFFFF,
            Repertoire::Latin1 => {
                u32::from(c) <= 0x7F
                    || (0xA0..=0xFF).contains(&u32::from(c))
                    || CP1252_EXTRAS.contains(c)
            }
            Repertoire::Ascii => c.is_ascii(),
        }
    }

    /// `text` with every character the column cannot store replaced by `?`; the length in
    /// characters is unchanged, so a text cut to fit still fits.
    pub fn hold(self, text: &str) -> String {
        text.chars()
            .map(|c| if self.holds(c) { c } else { '?' })
            .collect()
    }
}

/// How the database clock's time reads in notes.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A successful restart: how, which attempt, who, when.
pub fn restarted(
    strategy: &str,
    attempt: u32,
    max_attempts: u32,
    host: &str,
    at: DateTime<Utc>,
) -> String {
    fit(&format!(
        "restarted via {strategy} (attempt {attempt}/{max_attempts}) at {} UTC by monitor_service@{host}",
        timestamp(at)
    ))
}

/// A failed cycle: why first, as the reason is what an operator needs.
pub fn failed(reason: &str, attempts: u32, host: &str, at: DateTime<Utc>) -> String {
    let mut text = format!("restart failed: {reason}");
    let _ = write!(
        text,
        " ({attempts} attempts) at {} UTC by monitor_service@{host}",
        timestamp(at)
    );
    fit(&text)
}

/// A manual `start`, `stop` or `restart` that worked: what, how, when, where.
pub fn operator_done(action: &str, strategy: &str, host: &str, at: DateTime<Utc>) -> String {
    fit(&format!(
        "{action} by operator via {strategy} at {} UTC on {host}",
        timestamp(at)
    ))
}

/// A manual action that failed: why first.
pub fn operator_failed(action: &str, reason: &str, host: &str, at: DateTime<Utc>) -> String {
    fit(&format!(
        "{action} by operator failed: {reason} at {} UTC on {host}",
        timestamp(at)
    ))
}

/// An alarm waiting for the restart of the same process name through another id, `holder`.
pub fn waiting_behind(holder: i32) -> String {
    fit(&format!(
        "waits for process {holder}'s restart of the same name"
    ))
}

/// An alarm left alone because the breaker is open.
pub fn breaker_open(until: DateTime<Utc>, failures: u32) -> String {
    fit(&format!(
        "circuit breaker open after {failures} failed restarts: no restart until {} UTC",
        timestamp(until)
    ))
}

/// An alarm on a name that commands must never see.
pub fn invalid_name() -> String {
    fit(
        "not restarted: the process name is not a valid name (A-Z a-z 0-9 @ . _ : -), never executed",
    )
}

/// An alarm raised by the monitor itself on a process it found dead.
pub fn found_dead(checks: u32, host: &str) -> String {
    fit(&format!(
        "found dead {checks} checks in a row by monitor_service@{host}: alarm raised"
    ))
}

/// Seconds as an operator wrote them: `3`, `2.5`.
fn seconds(duration: std::time::Duration) -> String {
    if duration.subsec_millis() == 0 {
        duration.as_secs().to_string()
    } else {
        format!("{:.1}", duration.as_secs_f64())
    }
}

/// Bytes in MiB, one decimal.
fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// An alarm raised by the monitor on a process alive but not answering its health check.
pub fn hung(hang_after: std::time::Duration) -> String {
    fit(&format!(
        "hung: no healthy heartbeat for {} s",
        seconds(hang_after)
    ))
}

/// An alarm raised by the monitor on a process above its `max_memory`.
pub fn over_memory(rss_bytes: u64, limit_bytes: u64, samples: u32) -> String {
    fit(&format!(
        "memory: {} above max_memory {} for {samples} samples",
        mebibytes(rss_bytes),
        mebibytes(limit_bytes)
    ))
}

/// How a crash loop note begins: a breaker it opened keeps this note rather than the generic
/// one, so that the operator reads why it is open.
pub const CRASH_LOOP: &str = "crash loop:";

/// A restart refused because the process restarted `restarts` times within `window`;
/// `breaker_until` when that failure opened the breaker.
pub fn crash_loop(
    restarts: u32,
    window: std::time::Duration,
    breaker_until: Option<DateTime<Utc>>,
) -> String {
    let what = match breaker_until {
        Some(until) => format!("circuit breaker open until {} UTC", timestamp(until)),
        None => "restart refused".to_owned(),
    };
    fit(&format!(
        "{CRASH_LOOP} {restarts} restarts in {} s: {what}",
        seconds(window)
    ))
}

/// A root cause found dead: the processes that depend on it and died with it are named, since
/// they are alarmed only if still down once it is back.
pub fn found_dead_taking_down(checks: u32, host: &str, dependents: &[String]) -> String {
    if dependents.is_empty() {
        return found_dead(checks, host);
    }
    fit(&format!(
        "found dead {checks} checks in a row, took down {}: alarm raised by monitor_service@{host}",
        dependents.join(", ")
    ))
}

/// An alarm deferred while a dependency is dead or in alarm: it is handled once that is back.
pub fn waiting_for(dependency: &str) -> String {
    fit(&format!("waiting for {dependency}"))
}

/// An alarm not tried because a dependency cannot be restarted now.
pub fn dependency_breaker_open(dependency: &str) -> String {
    fit(&format!(
        "not restarted: dependency {dependency} has its circuit breaker open"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn notes_are_cut_at_one_hundred_characters_on_a_character_boundary() {
        let text = format!("{}é€𝄞 tail", "a".repeat(99));
        let note = fit(&text);
        assert_eq!(note.chars().count(), 100);
        assert!(note.ends_with('é'));
        let short = fit("ünïcødé");
        assert_eq!(short, "ünïcødé");
    }

    #[test]
    fn text_keeps_what_the_column_can_store_and_replaces_the_rest() {
        let text = "exit 1: ✗ 😀 café – “quoted” €";
        assert_eq!(Repertoire::Unicode.hold(text), text);
        assert_eq!(Repertoire::Bmp.hold(text), "exit 1: ✗ ? café – “quoted” €");
        assert_eq!(
            Repertoire::Latin1.hold(text),
            "exit 1: ? ? café – “quoted” €"
        );
        assert_eq!(
            Repertoire::Ascii.hold(text),
            "exit 1: ? ? caf? ? ?quoted? ?"
        );
        assert_eq!(Repertoire::Latin1.hold("ÿ Ā"), "ÿ ?");
    }

    #[test]
    fn character_sets_map_to_what_they_can_store() {
        assert_eq!(Repertoire::of_charset("utf8mb4"), Repertoire::Unicode);
        assert_eq!(Repertoire::of_charset("utf8mb3"), Repertoire::Bmp);
        assert_eq!(Repertoire::of_charset("utf8"), Repertoire::Bmp);
        assert_eq!(Repertoire::of_charset("LATIN1"), Repertoire::Latin1);
        assert_eq!(Repertoire::of_charset("cp1250"), Repertoire::Ascii);
    }

    #[test]
    fn notes_are_one_line() {
        assert_eq!(fit("exit 1:\nboom\r\t!"), "exit 1: boom  !");
    }

    #[test]
    fn success_note_says_how_which_attempt_who_and_when() {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 22, 3, 4, 5)
            .single()
            .expect("time");
        let note = restarted("process", 2, 3, "db1", at);
        assert_eq!(
            note,
            "restarted via process (attempt 2/3) at 2026-11-22 03:04:05 UTC by monitor_service@db1"
        );
        let long_host = "h".repeat(200);
        assert_eq!(
            restarted("service", 1, 1, &long_host, at).chars().count(),
            100
        );
    }

    #[test]
    fn hang_memory_and_crash_loop_notes_say_the_figures() {
        use std::time::Duration;
        assert_eq!(
            hung(Duration::from_secs(3)),
            "hung: no healthy heartbeat for 3 s"
        );
        assert_eq!(
            hung(Duration::from_millis(2500)),
            "hung: no healthy heartbeat for 2.5 s"
        );
        assert_eq!(
            over_memory(64 << 20, 32 << 20, 2),
            "memory: 64.0 MiB above max_memory 32.0 MiB for 2 samples"
        );
        assert_eq!(
            crash_loop(5, Duration::from_secs(60), None),
            "crash loop: 5 restarts in 60 s: restart refused"
        );
        let at = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("time");
        assert_eq!(
            crash_loop(5, Duration::from_secs(60), Some(at)),
            "crash loop: 5 restarts in 60 s: circuit breaker open until 2026-01-02 03:04:05 UTC"
        );
    }
}
