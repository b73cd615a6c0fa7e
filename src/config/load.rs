//! Where a configuration comes from: the file, read once and refused when it holds a password
//! that group or others could read, or INI text given directly.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::Config;
use super::problem::{ConfigError, Problem};
use super::raw;
use super::validate::build;

/// Reads and validates the file at `path`, refusing it when it holds a password that group or
/// others could read (monit refuses its rc file for the same reason).
pub(super) fn from_file(
    path: &Path,
    password_override: Option<String>,
) -> Result<Config, ConfigError> {
    let refuse = |problems| ConfigError::new(path, problems);
    let (text, mode) = read(path).map_err(|why| refuse(vec![Problem::file(why)]))?;
    let raw = raw::parse(&text).map_err(refuse)?;
    let mut problems = Vec::new();
    let holds_password = raw
        .get("database", "password")
        .is_some_and(|password| !password.is_empty());
    if holds_password && mode & 0o077 != 0 {
        problems.push(Problem::file(format!(
            "holds a password but group or others may access it (mode {:04o}): run chmod 600 {}",
            mode & 0o7777,
            path.display()
        )));
    }
    build(path, &raw, password_override, problems)
}

/// Validates INI text as if read from `path`, without looking at the file itself.
pub(super) fn from_text(
    path: &Path,
    text: &str,
    password_override: Option<String>,
) -> Result<Config, ConfigError> {
    let raw = raw::parse(text).map_err(|problems| ConfigError::new(path, problems))?;
    build(path, &raw, password_override, Vec::new())
}

/// The text and permission bits of the file, both from one open so they describe the same file.
fn read(path: &Path) -> Result<(String, u32), String> {
    let cannot = |error: std::io::Error| format!("cannot read: {error}");
    let mut file = File::open(path).map_err(cannot)?;
    let mode = file.metadata().map_err(cannot)?.permissions().mode();
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(cannot)?;
    Ok((text, mode))
}
