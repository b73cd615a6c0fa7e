//! `shell`: the interactive prompt `monitor>` (rustyline) offering the command line's
//! commands, with history in the user's home and tab completion of commands and process
//! names. When stdin is not a terminal it reads commands line by line, so it can be scripted.

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::Parser;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};

use crate::cli::{Cli, execute_command};
use crate::config::Config;
use crate::db::Database;
use crate::exit::Failure;

const PROMPT: &str = "monitor> ";

/// The words the first position completes to.
const COMMANDS: &[&str] = &[
    "status",
    "stats",
    "health",
    "alarm",
    "start",
    "stop",
    "restart",
    "breaker",
    "check-config",
    "migrate",
    "completions",
    "help",
    "exit",
    "quit",
];

/// Subcommands and flags offered after a command.
fn follow_ups(command: &str) -> &'static [&'static str] {
    match command {
        "alarm" => &["list", "set", "clear"],
        "breaker" => &["list", "reset"],
        "status" | "health" => &["--json"],
        "stats" => &["--json"],
        "completions" => &["bash", "zsh", "fish"],
        _ => &[],
    }
}

#[derive(Helper, Hinter, Highlighter, Validator)]
struct Completion {
    names: Vec<String>,
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let start = before.rfind(' ').map_or(0, |i| i + 1);
        let word = &before[start..];
        let words: Vec<&str> = before[..start].split_whitespace().collect();
        let choices: Vec<&str> = match words.as_slice() {
            [] => COMMANDS.to_vec(),
            [command] => {
                let mut choices = follow_ups(command).to_vec();
                if matches!(*command, "start" | "stop" | "restart" | "stats") {
                    choices.extend(self.names.iter().map(String::as_str));
                }
                choices
            }
            ["alarm", "set" | "clear"] => {
                let mut choices = vec!["--all"];
                choices.extend(self.names.iter().map(String::as_str));
                choices
            }
            ["breaker", "reset"] => self.names.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        let pairs = choices
            .into_iter()
            .filter(|choice| choice.starts_with(word))
            .map(|choice| Pair {
                display: choice.to_owned(),
                replacement: format!("{choice} "),
            })
            .collect();
        Ok((start, pairs))
    }
}

/// Runs the shell until `exit`, `quit`, Ctrl-D or the end of input.
pub fn run(config: &Config) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if !one_line(config, &line) {
                break;
            }
        }
        return Ok(());
    }
    let mut editor: Editor<Completion, DefaultHistory> =
        Editor::new().map_err(|e| Failure::Internal(format!("starting the shell: {e}")))?;
    editor.set_helper(Some(Completion {
        names: process_names(config),
    }));
    let history = history_file();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if !one_line(config, &line) {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

/// Carries out one line; false when the shell should end.
fn one_line(config: &Config, line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [] => true,
        ["exit" | "quit"] => false,
        ["help"] => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let _ = command.print_help();
            true
        }
        _ => {
            let arguments = std::iter::once("monitor_service").chain(words.iter().copied());
            match Cli::try_parse_from(arguments) {
                Ok(Cli {
                    command: Some(command),
                    ..
                }) => {
                    if let Err(failure) = execute_command(config, command) {
                        eprintln!("monitor_service: {failure}");
                    }
                }
                Ok(Cli { command: None, .. }) => {}
                Err(error) => {
                    let _ = error.print();
                }
            }
            true
        }
    }
}

fn process_names(config: &Config) -> Vec<String> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    runtime.block_on(async {
        let db = Database::connect_lazy(&config.database);
        let names = crate::control::processes(&db).await.unwrap_or_default();
        db.close().await;
        // A name that needs escaping to be printed (control characters, written by another
        // system) is not offered: completing it would echo it raw to the terminal.
        names
            .into_iter()
            .map(|p| p.name)
            .filter(|name| matches!(crate::report::text::printable(name), Cow::Borrowed(_)))
            .collect()
    })
}

fn history_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".monitor_service_history"))
}
