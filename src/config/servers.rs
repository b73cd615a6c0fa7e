//! `[database] host` as a list of servers: `db1, db2:3307, [::1]:3308`, in the order they are
//! tried. An entry without a port takes `[database] port`. Pure parsing: which server the
//! pool uses is `db/servers.rs`'s business.

use std::fmt;

/// One database server of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbServer {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for DbServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The servers named by `text`, a comma-separated list of `HOST`, `HOST:PORT`, `[IPv6]` or
/// `[IPv6]:PORT` (a bare IPv6 address, having colons of its own, takes `default_port`).
pub fn parse_servers(text: &str, default_port: u16) -> Result<Vec<DbServer>, String> {
    let mut servers = Vec::new();
    for (n, entry) in text.split(',').map(str::trim).enumerate() {
        let server = parse_entry(entry, default_port)
            .map_err(|why| format!("entry {} of the list ({entry:?}): {why}", n + 1))?;
        if servers.contains(&server) {
            return Err(format!("{server} is listed twice"));
        }
        servers.push(server);
    }
    Ok(servers)
}

fn parse_entry(entry: &str, default_port: u16) -> Result<DbServer, String> {
    if entry.is_empty() {
        return Err("empty: separate the servers with one comma".into());
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address opened with [ needs its ]")?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err("after ] only :PORT may follow".into()),
            },
        }
    } else {
        match entry.split_once(':') {
            // Two colons or more: a bare IPv6 address, without a port.
            Some((_, rest)) if rest.contains(':') => (entry, None),
            Some((host, port)) => (host, Some(port)),
            None => (entry, None),
        }
    };
    if host.is_empty() {
        return Err("the host name is missing".into());
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a host name has no spaces: separate the servers with commas".into());
    }
    let port = match port {
        None => default_port,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("the port must be 1 to 65535, not {port:?}")),
        },
    };
    Ok(DbServer {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, port: u16) -> DbServer {
        DbServer {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn a_list_names_its_servers_in_order_with_the_default_port_where_none_is_given() {
        let cases: &[(&str, &[DbServer])] = &[
            ("localhost", &[server("localhost", 3306)]),
            (
                "db1, db2:3307,db3",
                &[
                    server("db1", 3306),
                    server("db2", 3307),
                    server("db3", 3306),
                ],
            ),
            (
                "[::1]:3308, ::1, [fe80::1]",
                &[
                    server("::1", 3308),
                    server("::1", 3306),
                    server("fe80::1", 3306),
                ],
            ),
            ("127.0.0.1:4306", &[server("127.0.0.1", 4306)]),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_servers(text, 3306).as_deref(),
                Ok(*expected),
                "{text}"
            );
        }
    }

    #[test]
    fn a_wrong_entry_is_named_with_its_place_in_the_list() {
        let cases = [
            ("db1,,db2", "entry 2"),
            ("db1, ", "entry 2"),
            ("db1:0", "the port must be 1 to 65535"),
            ("db1:70000", "the port must be 1 to 65535"),
            ("db1:x", "the port must be 1 to 65535"),
            (":3306", "the host name is missing"),
            ("db1 db2", "separate the servers with commas"),
            ("[::1", "needs its ]"),
            ("[::1]x", "only :PORT"),
            ("db1, db1:3306", "listed twice"),
        ];
        for (text, expected) in cases {
            let why = parse_servers(text, 3306).expect_err(text);
            assert!(why.contains(expected), "{text}: {why}");
        }
    }

    #[test]
    fn a_server_prints_as_host_and_port_with_ipv6_in_brackets() {
        assert_eq!(server("db1", 3307).to_string(), "db1:3307");
        assert_eq!(server("::1", 3306).to_string(), "[::1]:3306");
    }
}
