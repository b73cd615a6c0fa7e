//! `shell`: the interactive prompt `monitor>` (rustyline) offering the command line's
//! commands, with history in the user's home and tab completion of commands and process
//! names. When stdin is not a terminal it reads commands line by line, so it can be scripted.

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::CommandFactory;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};

use super::args::Cli;
use super::dispatch::{Line, execute_words, runtime};
use super::failure::Failure;
use crate::config::Config;
use crate::db::Database;

const PROMPT: &str = "monitor> ";

/// The shell's own words beside the command line's commands.
const SHELL_WORDS: &[&str] = &["help", "exit", "quit"];

/// What the shell completes: the command line's commands, their subcommands, flags and
/// values, read from the clap tree so that a new command is offered without a list to keep in
/// step, and the process names of `PROCESE`.
#[derive(Helper, Hinter, Highlighter, Validator)]
struct Completion {
    cli: clap::Command,
    names: Vec<String>,
}

impl Completion {
    /// The words that may follow the words `path`, by the clap tree.
    fn after(&self, path: &[&str]) -> Vec<String> {
        let mut command = &self.cli;
        for word in path {
            match command.find_subcommand(word) {
                Some(sub) => command = sub,
                None => return Vec::new(),
            }
        }
        let subcommands = command
            .get_subcommands()
            .map(|sub| sub.get_name().to_owned())
            .filter(|name| !path.is_empty() || !matches!(name.as_str(), "run" | "shell"));
        let flags = command
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .filter(|long| *long != "config")
            .map(|long| format!("--{long}"));
        let values = command.get_arguments().flat_map(|arg| {
            arg.get_possible_values()
                .into_iter()
                .map(|value| value.get_name().to_owned())
        });
        let mut words: Vec<String> = subcommands.chain(flags).chain(values).collect();
        if path.is_empty() {
            words.extend(SHELL_WORDS.iter().map(|word| (*word).to_owned()));
        }
        let takes_a_name = command.get_positionals().any(|arg| arg.get_id() == "name");
        if takes_a_name && !path.is_empty() {
            words.extend(self.names.iter().cloned());
        }
        words
    }
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
        let pairs = self
            .after(&words)
            .into_iter()
            .filter(|choice| choice.starts_with(word))
            .map(|choice| Pair {
                replacement: format!("{choice} "),
                display: choice,
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
            if one_line(config, &line) == Line::End {
                break;
            }
        }
        return Ok(());
    }
    let mut editor: Editor<Completion, DefaultHistory> =
        Editor::new().map_err(|e| Failure::Internal(format!("starting the shell: {e}")))?;
    editor.set_helper(Some(Completion {
        cli: Cli::command(),
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
                if one_line(config, &line) == Line::End {
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

/// Carries out one line.
fn one_line(config: &Config, line: &str) -> Line {
    let words: Vec<&str> = line.split_whitespace().collect();
    execute_words(config, &words)
}

fn process_names(config: &Config) -> Vec<String> {
    let Ok(runtime) = runtime() else {
        return Vec::new();
    };
    runtime.block_on(async {
        let db = Database::connect_first_answering(&config.database).await;
        let names = crate::report::lists::processes(&db)
            .await
            .unwrap_or_default();
        db.close().await;
        // A name that needs escaping to be printed (control characters, written by another
        // system) is not offered: completing it would echo it raw to the terminal.
        names
            .into_iter()
            .map(|p| p.name)
            .filter(|name| matches!(crate::printable::printable(name), Cow::Borrowed(_)))
            .collect()
    })
}

fn history_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".monitor_service_history"))
}
