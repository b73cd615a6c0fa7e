//! The values of `config.ini`: each parser takes the text of one key and says what is wrong with
//! it in words an operator can act on (the caller adds the file, section and key).

use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use regex::Regex;

use super::{MemoryLimit, RestartStrategy, is_valid_process_name};

/// The longest duration any setting takes: a year. Anything longer is a typo (`1e19`), and
/// keeping every duration this short keeps every deadline the service computes from one far
/// from the end of the clock.
pub(super) const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);

/// The shortest poll, sample and heartbeat period: each wakes the service to do real work (a
/// query, a scan of `/proc`, a command per process), ten times a second at most.
pub(super) const SHORTEST_PERIOD: Duration = Duration::from_millis(100);

/// What a duration may be, besides at most [`LONGEST`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Span {
    Any,
    Positive,
    /// A period the service wakes up on: shorter than this would keep the machine busy for
    /// nothing (`check_interval = 0.0000001` polls hundreds of times a second).
    AtLeast(Duration),
}

pub(super) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("\"{text}\" is not a boolean (true or false)")),
    }
}

pub(super) fn parse_whole<T>(text: &str, min: T, max: Option<T>) -> Result<T, String>
where
    T: FromStr + PartialOrd + Display + Copy,
{
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("\"{text}\" is not a whole number"));
    }
    let bounds = match max {
        Some(max) => format!("between {min} and {max}"),
        None => format!("at least {min}"),
    };
    match text.parse::<T>() {
        Ok(n) if n >= min && max.is_none_or(|max| n <= max) => Ok(n),
        Err(_) if max.is_none() && !text.starts_with('-') => Err(format!("{text} is too large")),
        _ => Err(format!("must be {bounds}, not {text}")),
    }
}

pub(super) fn parse_real(text: &str, min: f64, max: Option<f64>) -> Result<f64, String> {
    let n = parse_finite(text).ok_or_else(|| format!("\"{text}\" is not a number"))?;
    match max {
        Some(max) if !(min..=max).contains(&n) => {
            Err(format!("must be between {min} and {max}, not {text}"))
        }
        _ if n < min => Err(format!("must be at least {min}, not {text}")),
        _ => Ok(n),
    }
}

pub(super) fn parse_seconds(text: &str, span: Span) -> Result<Duration, String> {
    let n = parse_finite(text).ok_or_else(|| format!("\"{text}\" is not a number of seconds"))?;
    if n < 0.0 {
        return Err(format!("must be 0 or more seconds, not {text}"));
    }
    if let Span::AtLeast(floor) = span {
        if n < floor.as_secs_f64() {
            let floor = floor.as_secs_f64();
            return Err(format!("must be at least {floor} seconds, not {text}"));
        }
    }
    if n > LONGEST.as_secs_f64() {
        let longest = LONGEST.as_secs();
        return Err(format!(
            "must be at most {longest} seconds (a year), not {text}"
        ));
    }
    let duration =
        Duration::try_from_secs_f64(n).map_err(|_| format!("{text} seconds is too long"))?;
    // A value below a nanosecond would round to nothing, which is 0 by another name.
    if span == Span::Positive && duration.is_zero() {
        return Err("must be more than 0 seconds".to_owned());
    }
    Ok(duration)
}

/// A period where 0 turns the feature off and anything else is at least `floor`.
pub(super) fn parse_period_or_off(text: &str, floor: Duration) -> Result<Option<Duration>, String> {
    match parse_seconds(text, Span::Any)? {
        period if period.is_zero() => Ok(None),
        period if period < floor => Err(format!(
            "must be 0 (off) or at least {} seconds, not {text}",
            floor.as_secs_f64()
        )),
        period => Ok(Some(period)),
    }
}

/// `max_memory`: `512M`, `2G`, `1048576` (bytes; K, M, G and T are powers of 1024, as in
/// systemd's `MemoryMax=`), `10%` of the machine's memory, or empty or 0 for no limit.
pub(super) fn parse_memory(text: &str) -> Result<Option<MemoryLimit>, String> {
    let text = text.trim();
    if text.is_empty() || text == "0" {
        return Ok(None);
    }
    if let Some(percent) = text.strip_suffix('%') {
        return match parse_finite(percent.trim()) {
            Some(p) if p > 0.0 && p <= 100.0 => Ok(Some(MemoryLimit::Percent(p))),
            _ => Err(format!(
                "\"{text}\" is not a share of memory above 0% and at most 100%"
            )),
        };
    }
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let factor: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => {
            return Err(format!(
                "\"{text}\" is not a size (like 512M or 2G) nor a share of memory (like 10%)"
            ));
        }
    };
    match parse_finite(number.trim()) {
        Some(n) if n > 0.0 && n * (factor as f64) < u64::MAX as f64 => {
            Ok(Some(MemoryLimit::Bytes((n * factor as f64) as u64)))
        }
        _ => Err(format!(
            "\"{text}\" is not a size (like 512M or 2G) nor a share of memory (like 10%)"
        )),
    }
}

/// Rust also reads `inf` and `NaN` as numbers; no setting here means either.
pub(super) fn parse_finite(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

pub(super) fn parse_strategy(text: &str) -> Result<RestartStrategy, String> {
    match text.to_ascii_lowercase().as_str() {
        "service" => Ok(RestartStrategy::Service),
        "process" => Ok(RestartStrategy::Process),
        "auto" => Ok(RestartStrategy::Auto),
        _ => Err(format!(
            "\"{text}\" is not a restart strategy (service, process or auto)"
        )),
    }
}

/// `service_name`: handed to `systemctl` as one argument, so no spaces and no leading `-`.
pub(super) fn parse_unit(text: &str) -> Result<Option<String>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.starts_with('-') || text.contains(char::is_whitespace) {
        return Err(format!(
            "\"{text}\" is not a unit name (no spaces, not starting with -)"
        ));
    }
    Ok(Some(text.to_owned()))
}

pub(super) fn parse_listen(text: &str) -> Result<Option<SocketAddr>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let address = text
        .parse()
        .map_err(|_| format!("\"{text}\" is not an address and port like 127.0.0.1:9187"))?;
    Ok(Some(address))
}

/// A log level, or a tracing filter such as `info,monitor_service=debug`.
pub(super) fn parse_level(text: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    if text.is_empty() {
        return Err("must not be empty (the default is info)".to_owned());
    }
    // tracing reads a bare unknown word as a target name: `warning` would log nothing at all.
    for directive in text.split(',').map(str::trim) {
        let bare = !directive.is_empty() && !directive.contains(['=', '[']);
        let level = LEVELS.iter().any(|l| directive.eq_ignore_ascii_case(l))
            || matches!(directive, "0" | "1" | "2" | "3" | "4" | "5");
        if bare && !level {
            return Err(format!(
                "\"{directive}\" is not a level (off, error, warn, info, debug or trace)"
            ));
        }
    }
    match tracing_subscriber::EnvFilter::try_new(text) {
        Ok(_) => Ok(text.to_owned()),
        Err(error) => Err(format!("\"{text}\" is not a log filter: {error}")),
    }
}

/// A comma or space separated list.
pub(super) fn split_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn parse_names(text: &str) -> Result<Vec<String>, String> {
    let names = split_list(text);
    match names.iter().find(|name| !is_valid_process_name(name)) {
        Some(bad) => Err(format!("\"{bad}\" is not a valid process name")),
        None => Ok(names),
    }
}

/// `hosts`: empty means every host.
pub(super) fn parse_hosts(text: &str) -> Result<Option<Vec<String>>, String> {
    let hosts = split_list(text);
    Ok((!hosts.is_empty()).then_some(hosts))
}

/// The N of `match.N`, an argument number.
pub(super) fn parse_argument_index(key: &str) -> Result<usize, String> {
    let digits = key.strip_prefix("match.").unwrap_or(key);
    let index = if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    };
    index.ok_or_else(|| "N in match.N must be an argument number: 0, 1, 2...".to_owned())
}

/// A regex, with the reason of a refusal kept on one line.
pub(super) fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|error| {
        let text = error.to_string();
        let reason = text
            .lines()
            .find_map(|line| line.strip_prefix("error: "))
            .map_or_else(
                || text.split_whitespace().collect::<Vec<_>>().join(" "),
                str::to_owned,
            );
        format!("invalid regex: {reason}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_take_the_usual_spellings_in_any_case() {
        for yes in ["true", "YES", "On", "1"] {
            assert_eq!(parse_bool(yes), Ok(true));
        }
        for no in ["false", "No", "OFF", "0"] {
            assert_eq!(parse_bool(no), Ok(false));
        }
        assert_eq!(
            parse_bool("maybe"),
            Err("\"maybe\" is not a boolean (true or false)".into())
        );
    }

    #[test]
    fn whole_numbers_are_checked_against_their_bounds() {
        assert_eq!(parse_whole::<u32>("4", 1, Some(100)), Ok(4));
        assert_eq!(
            parse_whole::<u32>("0", 1, Some(100)),
            Err("must be between 1 and 100, not 0".into())
        );
        assert_eq!(
            parse_whole::<u32>("-1", 0, None),
            Err("must be at least 0, not -1".into())
        );
        assert_eq!(
            parse_whole::<u32>("99999999999", 1, None),
            Err("99999999999 is too large".into())
        );
        assert_eq!(
            parse_whole::<u32>("4.5", 1, None),
            Err("\"4.5\" is not a whole number".into())
        );
        assert_eq!(
            parse_whole::<u16>("70000", 1, Some(u16::MAX)),
            Err("must be between 1 and 65535, not 70000".into())
        );
    }

    #[test]
    fn seconds_may_be_fractional_but_never_negative_or_infinite() {
        assert_eq!(
            parse_seconds("0.5", Span::Positive),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(parse_seconds("0", Span::Any), Ok(Duration::ZERO));
        assert_eq!(
            parse_seconds("0", Span::Positive),
            Err("must be more than 0 seconds".into())
        );
        assert_eq!(
            parse_seconds("-1", Span::Any),
            Err("must be 0 or more seconds, not -1".into())
        );
        for garbage in ["inf", "NaN", "5s", ""] {
            assert_eq!(
                parse_seconds(garbage, Span::Any),
                Err(format!("\"{garbage}\" is not a number of seconds"))
            );
        }
        assert_eq!(
            parse_seconds("1e300", Span::Any),
            Err("must be at most 31536000 seconds (a year), not 1e300".into())
        );
        assert_eq!(
            parse_seconds("1e-10", Span::Positive),
            Err("must be more than 0 seconds".into())
        );
    }

    #[test]
    fn durations_stop_at_a_year_and_periods_at_their_floor() {
        assert_eq!(parse_seconds("31536000", Span::Any), Ok(LONGEST));
        assert_eq!(
            parse_seconds("1e19", Span::Positive),
            Err("must be at most 31536000 seconds (a year), not 1e19".into())
        );
        let floor = Span::AtLeast(Duration::from_millis(100));
        assert_eq!(parse_seconds("0.1", floor), Ok(Duration::from_millis(100)));
        assert_eq!(
            parse_seconds("0.0000001", floor),
            Err("must be at least 0.1 seconds, not 0.0000001".into())
        );
        let floor = Duration::from_millis(100);
        assert_eq!(parse_period_or_off("0", floor), Ok(None));
        assert_eq!(
            parse_period_or_off("2", floor),
            Ok(Some(Duration::from_secs(2)))
        );
        assert_eq!(
            parse_period_or_off("0.01", floor),
            Err("must be 0 (off) or at least 0.1 seconds, not 0.01".into())
        );
        assert_eq!(
            parse_period_or_off("4e7", floor),
            Err("must be at most 31536000 seconds (a year), not 4e7".into())
        );
    }

    #[test]
    fn real_numbers_respect_their_range() {
        assert_eq!(parse_real("0.75", 0.0, Some(1.0)), Ok(0.75));
        assert_eq!(
            parse_real("1.5", 0.0, Some(1.0)),
            Err("must be between 0 and 1, not 1.5".into())
        );
        assert_eq!(
            parse_real("-2", 0.0, None),
            Err("must be at least 0, not -2".into())
        );
        assert_eq!(
            parse_real("x", 0.0, None),
            Err("\"x\" is not a number".into())
        );
    }

    #[test]
    fn log_levels_are_levels_or_filters_but_not_unknown_words() {
        for good in [
            "info",
            "DEBUG",
            "warn,monitor_service=trace",
            "monitor_service=debug",
        ] {
            assert_eq!(parse_level(good), Ok(good.to_owned()));
        }
        assert_eq!(
            parse_level("warning"),
            Err("\"warning\" is not a level (off, error, warn, info, debug or trace)".into())
        );
        assert!(parse_level("=x").is_err());
        assert!(parse_level("").is_err());
    }

    #[test]
    fn lists_split_on_commas_and_spaces() {
        assert_eq!(split_list(" a, b  c,,d "), ["a", "b", "c", "d"]);
        assert_eq!(parse_hosts(" , "), Ok(None));
        assert_eq!(
            parse_names("db, $(id)"),
            Err("\"$(id)\" is not a valid process name".into())
        );
    }

    #[test]
    fn argument_numbers_are_plain_digits() {
        assert_eq!(parse_argument_index("match.0"), Ok(0));
        assert_eq!(parse_argument_index("match.12"), Ok(12));
        for bad in ["match.", "match.x", "match.+1", "match.-1"] {
            assert!(parse_argument_index(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regex_errors_fit_on_one_line() {
        let why = compile(r"\d+(").expect_err("unclosed group");
        assert_eq!(why, "invalid regex: unclosed group");
    }
}
