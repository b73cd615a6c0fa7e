//! The operator's command line, in one folder:
//!
//! - [`args`]: the clap tree of commands and arguments.
//! - [`dispatch`]: loading the configuration, building the one runtime, and carrying out each
//!   command; the shell hands its lines to it as words. [`execute`] here sends `shell` to
//!   the shell and everything else there.
//! - `shell`: the interactive prompt, completing from the clap tree and `PROCESE`.
//! - `reads`, `writes`: the commands that read through `crate::report` and write through
//!   `crate::db`.
//! - [`text`], `details`, `json`: the renderers, pure functions of what was read.
//! - [`failure`]: how a command ends, with its sysexits code.

pub mod args;
mod details;
pub mod dispatch;
pub mod failure;
mod ha;
mod json;
mod reads;
mod shell;
pub mod text;
mod writes;

pub use args::Cli;
pub use failure::Failure;

use args::Command;

/// Carries out the command line.
pub fn execute(cli: Cli) -> Result<(), Failure> {
    let config = dispatch::load_config(&cli.config)?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => dispatch::run(config),
        Command::Shell => shell::run(&config),
        command => dispatch::execute_command(&config, command),
    }
}
