//! Reading `/proc/PID/stat`: whether a process is dead, when it started, and what it uses.

/// The fields of `/proc/PID/stat` the service reads: what tells one live process from a dead
/// or different one, and its CPU time and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    /// Clock ticks after boot.
    pub start_time: u64,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
}

impl Stat {
    /// A zombie has exited and only waits for its parent: it is dead.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// `None` when the process does not exist (any more).
pub fn read(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse(&text)
}

/// The command name (field 2) is in parentheses and may itself hold spaces and `)`, so the
/// fields are counted from the last `)`: state is field 3, utime 14, stime 15, starttime 22,
/// rss 24.
pub fn parse(text: &str) -> Option<Stat> {
    let (_, after_name) = text.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().take(22).collect();
    let number = |index: usize| fields.get(index)?.parse::<u64>().ok();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        cpu_ticks: number(11)?.saturating_add(number(12)?),
        start_time: number(19)?,
        rss_pages: number(21)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_start_time_are_read_after_the_last_parenthesis() {
        let line = "1234 (a) b) (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        assert_eq!(
            parse(line),
            Some(Stat {
                state: 'S',
                start_time: 987654,
                cpu_ticks: 3,
                rss_pages: 100,
            })
        );
        assert_eq!(
            parse("1 (zombie) Z 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0"),
            Some(Stat {
                state: 'Z',
                start_time: 42,
                cpu_ticks: 0,
                rss_pages: 0,
            })
        );
        assert_eq!(parse("garbage"), None);
        assert_eq!(parse("1 (short) S 1"), None);
    }

    #[test]
    fn this_process_is_alive() {
        let pid = i32::try_from(std::process::id()).unwrap_or(0);
        let stat = read(pid);
        assert!(stat.is_some_and(|stat| !stat.is_dead()), "{stat:?}");
    }
}
