//! The command line's clap tree: every command and its arguments. The shell's lines are
//! parsed with this tree too, and it completes from it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{CONFIG_ENV, DEFAULT_CONFIG_PATH};

#[derive(Debug, Parser)]
#[command(
    name = "monitor_service",
    version,
    about = "Keeps critical processes alive, with a MySQL/MariaDB database as its control plane"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(short, long, global = true, env = CONFIG_ENV, default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service in the foreground until SIGTERM or SIGINT (the default).
    Run,
    /// Validate the configuration and print the effective settings, password redacted.
    CheckConfig {
        /// Also connect to the database and check the schema.
        #[arg(long)]
        db: bool,
    },
    /// Create the database if needed, apply pending migrations and exit.
    Migrate,
    /// Statistics of this host's processes: uptime, restarts, MTTR, CPU, memory, response.
    Stats {
        /// Show one process in detail, with its latest restart events.
        name: Option<String>,
        /// Print the statistics document (monitorTimeOfStart, procStats) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// This host's latest health score, its sub-scores and the verdict against the threshold.
    Health {
        /// Print it as a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// One row per process of this host: alive, pid, alarm, breaker, restarts, cpu, memory.
    Status {
        /// Print the rows as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read and write STATUS_PROCESS.alarma.
    #[command(subcommand)]
    Alarm(AlarmCommand),
    /// Start a process now through its strategy, recorded as a manual restart.
    Start { name: String },
    /// Stop a process now through its strategy (its alarm is left as it is).
    Stop { name: String },
    /// Restart a process now through its strategy; allowed while its breaker is open.
    Restart { name: String },
    /// The circuit breakers.
    #[command(subcommand)]
    Breaker(BreakerCommand),
    /// Primary and standby ([ha]): the group's state, a takeover here, a release.
    #[command(subcommand)]
    Ha(HaCommand),
    /// An interactive prompt (monitor>) offering these commands.
    Shell,
    /// Print a completion script for a shell.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// Every process with its alarm and note.
    List,
    /// Raise the alarm of NAME, or of every process with --all.
    Set(AlarmTarget),
    /// Clear the alarm of NAME, or of every process with --all.
    Clear(AlarmTarget),
}

#[derive(Debug, clap::Args)]
pub struct AlarmTarget {
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum BreakerCommand {
    /// Every breaker with its state.
    List,
    /// Close the breaker of NAME and forget its failures.
    Reset { name: String },
}

#[derive(Debug, Subcommand)]
pub enum HaCommand {
    /// The group, its primary, the epoch, the lease left, and each member's latest score.
    Status {
        /// Print it as a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Make this host the primary (the old one is fenced first).
    Takeover {
        /// Even if this host's health score is below the threshold.
        #[arg(long)]
        force: bool,
    },
    /// The primary steps down; the best standby takes over.
    Release,
}
