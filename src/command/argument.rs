//! The one rule for passing a process name to a configured command: it is `$1` of
//! `/bin/sh -c TEXT sh NAME`, and `%s` in the text stands for `"$1"`, so the name is an argument
//! and never parsed by the shell. A text that is one simple command runs without the shell,
//! `%s` replaced by the name as a word of its own (a valid name is one word wherever it goes).

use tokio::process::Command;

use super::line::{Launch, launch};

/// The command that runs a configured command line for the process `name`: the program itself
/// when the text is one simple command, else `/bin/sh -c TEXT sh NAME` (TEXT beginning with
/// `exec` where that means the same), so that no shell stays behind as the parent of what it
/// started ([`super::line`]).
pub(super) fn shell_command(text: &str, name: &str) -> Command {
    let (program, arguments) = match launch(text, name) {
        Launch::Direct { program, arguments } => (program, arguments),
        Launch::ShellExec(text) | Launch::Shell(text) => (
            "/bin/sh".to_owned(),
            vec!["-c".to_owned(), text, "sh".to_owned(), name.to_owned()],
        ),
    };
    let mut command = Command::new(program);
    command.args(arguments);
    command
}
