//! The one rule for passing a process name to a configured command: it is `$1` of
//! `/bin/sh -c TEXT sh NAME`, and `%s` in the text stands for `"$1"`, so the name is an argument
//! and never parsed by the shell.

use tokio::process::Command;

/// The shell text of a configured command: every `%s` becomes `"$1"`, so the process name is
/// passed as an argument and never parsed by the shell.
fn shell_text(text: &str) -> String {
    text.replace("%s", "\"$1\"")
}

/// `/bin/sh -c TEXT sh NAME`, the command line of every configured command.
pub(super) fn shell_command(text: &str, name: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command.args(["-c", &shell_text(text), "sh", name]);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_s_becomes_a_quoted_positional_argument() {
        assert_eq!(shell_text("pgrep -x %s"), "pgrep -x \"$1\"");
        assert_eq!(shell_text("a %s b %s"), "a \"$1\" b \"$1\"");
        assert_eq!(shell_text("no placeholder"), "no placeholder");
    }
}
