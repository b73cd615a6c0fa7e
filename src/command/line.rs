//! How a configured command line is started: directly when it is one simple command, as
//! `sh -c 'exec …'` when it is one command that needs the shell for an expansion or a
//! redirection, and as `sh -c …` otherwise.
//!
//! Debian's `sh` (dash) stays alive as the parent of the command it runs for `sh -c TEXT` even
//! when TEXT is one simple command, and bash (RedHat's `sh`) does so for compound text: for a
//! start command that is a shell sitting idle beside every process the service started, and
//! the process found by its name would not be the one started. Exec-ing the command leaves no
//! shell behind, on both shells, and means the same thing wherever the text is one command.
//!
//! The decision is conservative: any character that might be shell syntax, anywhere but inside
//! single quotes, makes the text need the shell; any control operator (`;`, `&`, `|`,
//! parentheses, backquotes, a line break), a keyword, a builtin with no program of its own, or
//! a leading variable assignment keeps it exactly as it was run before.

/// The shell text of a configured command: every `%s` becomes `"$1"`, so the process name is
/// passed as an argument and never parsed by the shell.
pub(super) fn shell_text(text: &str) -> String {
    text.replace("%s", "\"$1\"")
}

/// How to start a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Launch {
    /// One simple command, run without a shell: its words, `%s` replaced by the process name.
    Direct {
        program: String,
        arguments: Vec<String>,
    },
    /// One command that needs the shell's expansions or redirections: this text for
    /// `sh -c TEXT sh NAME`, beginning with `exec`.
    ShellExec(String),
    /// Anything else: this text for `sh -c TEXT sh NAME`.
    Shell(String),
}

/// Words that only the shell understands, or builtins with no program of their own, which a
/// direct exec (or `exec WORD`) would not find or would run differently.
const SHELL_ONLY: &[&str] = &[
    "!", "{", "}", "[[", "]]", "case", "do", "done", "elif", "else", "esac", "fi", "for",
    "function", "if", "in", "select", "then", "time", "until", "while", ".", ":", "alias", "bg",
    "break", "builtin", "cd", "command", "continue", "eval", "exec", "exit", "export", "fg",
    "getopts", "hash", "jobs", "local", "read", "readonly", "return", "set", "shift", "source",
    "times", "trap", "type", "ulimit", "umask", "unalias", "unset", "wait",
];

/// What a scan of the text outside single quotes found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Syntax {
    /// A control operator or a line break: more than one command, or a subshell.
    compound: bool,
    /// An expansion, a redirection, a glob, a comment or an escape inside double quotes.
    expansion: bool,
    /// `%s` inside quotes, where replacing it by `"$1"` means something else than a word.
    quoted_placeholder: bool,
}

fn scan(text: &str) -> Syntax {
    let mut syntax = Syntax::default();
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            syntax.compound = true;
        }
        if single {
            single = c != '\'';
            if c == '%' && chars.peek() == Some(&'s') {
                syntax.quoted_placeholder = true;
            }
            continue;
        }
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                // Inside double quotes the shell keeps the backslash before most characters,
                // which a split into words would not: leave that to the shell.
                syntax.expansion |= double;
                escaped = true;
            }
            '\'' if !double => single = true,
            '"' => double = !double,
            '%' if double && chars.peek() == Some(&'s') => syntax.quoted_placeholder = true,
            ';' | '&' | '|' | '(' | ')' | '`' => syntax.compound = true,
            '$' | '<' | '>' | '*' | '?' | '[' | ']' | '~' | '{' | '}' | '#' | '!' => {
                syntax.expansion = true;
            }
            _ => {}
        }
    }
    if single || double || escaped {
        // Unbalanced: the shell reports the error as it did before.
        syntax.compound = true;
    }
    syntax
}

/// How to start `text`, the command line of a configuration, for the process `name` (a valid
/// process name: letters, digits and `@._:-`, so it is one word wherever it is put).
pub(super) fn launch(text: &str, name: &str) -> Launch {
    let shell = shell_text(text);
    let first = text.split_whitespace().next().unwrap_or("");
    let syntax = scan(text);
    if first.is_empty() || syntax.compound || SHELL_ONLY.contains(&first) || first.contains('=') {
        return Launch::Shell(shell);
    }
    if syntax.expansion || syntax.quoted_placeholder {
        return Launch::ShellExec(format!("exec {shell}"));
    }
    let words = shell_words::split(text).unwrap_or_default();
    let mut words = words.iter().map(|word| word.replace("%s", name));
    match words.next() {
        Some(program) => Launch::Direct {
            program,
            arguments: words.collect(),
        },
        None => Launch::Shell(shell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(words: &[&str]) -> Launch {
        Launch::Direct {
            program: words[0].to_owned(),
            arguments: words[1..].iter().map(|w| (*w).to_owned()).collect(),
        }
    }

    #[test]
    fn percent_s_becomes_a_quoted_positional_argument() {
        assert_eq!(shell_text("pgrep -x %s"), "pgrep -x \"$1\"");
        assert_eq!(shell_text("a %s b %s"), "a \"$1\" b \"$1\"");
        assert_eq!(shell_text("no placeholder"), "no placeholder");
    }

    #[test]
    fn one_simple_command_runs_without_a_shell() {
        let cases = [
            (
                "/opt/x/bin/worker --queue q",
                direct(&["/opt/x/bin/worker", "--queue", "q"]),
            ),
            ("pgrep -x %s", direct(&["pgrep", "-x", "web"])),
            (
                "/usr/bin/run --name=%s.%s",
                direct(&["/usr/bin/run", "--name=web.web"]),
            ),
            ("  sleep   30  ", direct(&["sleep", "30"])),
            (
                "cmd 'a b' \"c d\" e\\ f",
                direct(&["cmd", "a b", "c d", "e f"]),
            ),
            ("cmd 'it''s;$HOME'", direct(&["cmd", "its;$HOME"])),
            (
                "/usr/sbin/apachectl configtest",
                direct(&["/usr/sbin/apachectl", "configtest"]),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(launch(text, "web"), expected, "{text:?}");
        }
    }

    #[test]
    fn one_command_with_expansions_or_redirections_is_exec_ed_by_the_shell() {
        let cases = [
            ("$HOME/bin/worker", "exec $HOME/bin/worker"),
            (
                "worker > /var/log/w.log 2>/dev/null",
                "exec worker > /var/log/w.log 2>/dev/null",
            ),
            ("worker --pid=%s \"$X\"", "exec worker --pid=\"$1\" \"$X\""),
            ("worker '%s'", "exec worker '\"$1\"'"),
            ("ls *.log", "exec ls *.log"),
            ("worker ~/conf", "exec worker ~/conf"),
            ("worker # a comment", "exec worker # a comment"),
            ("worker \"a\\\"b\"", "exec worker \"a\\\"b\""),
        ];
        for (text, expected) in cases {
            assert_eq!(
                launch(text, "web"),
                Launch::ShellExec(expected.to_owned()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn compound_text_keywords_builtins_and_assignments_stay_as_they_were() {
        let cases = [
            "a; b",
            "a && b",
            "a || b",
            "a | b",
            "a &",
            "(a)",
            "echo `date`",
            "a $(b)",
            "a\nb",
            "cd /opt/x && ./run",
            "if true; then a; fi",
            "exec worker",
            "FOO=1 worker",
            "read x",
            "worker 'unbalanced",
            "worker \"unbalanced",
            "",
            "   ",
        ];
        for text in cases {
            assert_eq!(
                launch(text, "web"),
                Launch::Shell(shell_text(text)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn semicolons_inside_quotes_are_words_not_operators() {
        assert_eq!(launch("echo 'a;b|c'", "web"), direct(&["echo", "a;b|c"]));
        assert_eq!(
            launch("echo \"a;b\"", "web"),
            Launch::Shell("echo \"a;b\"".to_owned())
        );
    }
}
