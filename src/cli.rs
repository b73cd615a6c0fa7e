//! The command line: clap definitions, and each command carried out.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{self, CONFIG_ENV, Config, DEFAULT_CONFIG_PATH, PASSWORD_ENV};
use crate::control;
use crate::db::{Database, DbError, migrate, migration_lock};
use crate::exit::Failure;
use crate::restart::manual::{Action, ManualError};
use crate::{logging, service};

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

impl AlarmTarget {
    fn target(&self) -> control::Target {
        match &self.name {
            Some(name) => control::Target::One(name.clone()),
            None => control::Target::All,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum BreakerCommand {
    /// Every breaker with its state.
    List,
    /// Close the breaker of NAME and forget its failures.
    Reset { name: String },
}

/// Carries out the command line.
pub fn execute(cli: Cli) -> Result<(), Failure> {
    let config = load_config(&cli.config)?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(config),
        Command::Shell => crate::shell::run(&config),
        command => execute_command(&config, command),
    }
}

/// Carries out one command other than `run` and `shell` (the shell's lines come here too).
pub fn execute_command(config: &Config, command: Command) -> Result<(), Failure> {
    let config = config.clone();
    match command {
        Command::Run | Command::Shell => Err(Failure::Usage(
            "run and shell are not available inside the shell".to_owned(),
        )),
        Command::CheckConfig { db } => check_config(&config, db),
        Command::Migrate => migrate(&config),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(
                shell,
                &mut command,
                "monitor_service",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Stats { name, json } => {
            let stats = crate::report::command::stats(&config, name.as_deref(), json);
            runtime()?.block_on(stats)
        }
        Command::Health { json } => {
            runtime()?.block_on(crate::report::command::health(&config, json))
        }
        command => runtime()?.block_on(control_command(&config, command)),
    }
}

/// The commands that act on the control plane, with the database connected once.
async fn control_command(config: &Config, command: Command) -> Result<(), Failure> {
    let db = Database::connect_lazy(&config.database);
    let result = control_output(&db, config, command).await;
    db.close().await;
    println!("{}", result?);
    Ok(())
}

async fn control_output(
    db: &Database,
    config: &Config,
    command: Command,
) -> Result<String, Failure> {
    let output = match command {
        Command::Status { json } => control::status(db, config).await.and_then(|rows| {
            if json {
                control::status_json(&rows)
            } else {
                Ok(control::status_text(&rows))
            }
        }),
        Command::Alarm(AlarmCommand::List) => control::alarm_list(db).await,
        Command::Alarm(AlarmCommand::Set(target)) => {
            control::set_alarm(db, &target.target(), true).await
        }
        Command::Alarm(AlarmCommand::Clear(target)) => {
            control::set_alarm(db, &target.target(), false).await
        }
        Command::Breaker(BreakerCommand::List) => control::breaker_list(db, config).await,
        Command::Breaker(BreakerCommand::Reset { name }) => control::breaker_reset(db, &name).await,
        Command::Start { name } => return manual(db, config, &name, Action::Start).await,
        Command::Stop { name } => return manual(db, config, &name, Action::Stop).await,
        Command::Restart { name } => return manual(db, config, &name, Action::Restart).await,
        _ => return Err(Failure::Internal("not a control command".to_owned())),
    }
    .map_err(control_failure)?;
    Ok(output.trim_end().to_owned())
}

async fn manual(
    db: &Database,
    config: &Config,
    name: &str,
    action: Action,
) -> Result<String, Failure> {
    let process = control::resolve(db, name).await.map_err(control_failure)?;
    let settings = config::is_valid_process_name(name)
        .then(|| config.process(name))
        .flatten()
        .ok_or_else(|| {
            control_failure(control::ControlError::NotHere(
                name.to_owned(),
                config.monitor.host.clone(),
            ))
        })?;
    crate::restart::manual::act(db, config, &settings, process.process_id, action)
        .await
        .map_err(|error| match error {
            ManualError::Database(error) => unavailable(error),
            other => Failure::Internal(other.to_string()),
        })
}

fn control_failure(error: control::ControlError) -> Failure {
    match error {
        control::ControlError::Unknown(_) | control::ControlError::NotHere(..) => {
            Failure::Usage(error.to_string())
        }
        control::ControlError::Database(error) => unavailable(error),
        control::ControlError::Json(why) => Failure::Internal(why),
    }
}

fn load_config(path: &std::path::Path) -> Result<Config, Failure> {
    let password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
    Config::load(path, password).map_err(Failure::Config)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    // One thread is plenty: the work is waiting on children and the database.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::Internal(format!("starting the runtime: {error}")))
}

fn run(config: Config) -> Result<(), Failure> {
    let guard = logging::init(&config.logging).map_err(Failure::Logging)?;
    runtime()?.block_on(async {
        let shutdown = CancellationToken::new();
        let (reload_tx, reload) = tokio::sync::mpsc::channel(1);
        spawn_signal_handler(shutdown.clone(), reload_tx)?;
        let controls = service::Controls {
            shutdown,
            reload,
            log_file: guard.reopener(),
        };
        service::run_with(config, controls)
            .await
            .map_err(Failure::from)
    })
}

/// SIGTERM and SIGINT cancel the service's token; SIGHUP asks for a reload.
fn spawn_signal_handler(
    shutdown: CancellationToken,
    reload: tokio::sync::mpsc::Sender<()>,
) -> Result<(), Failure> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind| {
        signal(kind)
            .map_err(|error| Failure::Internal(format!("installing signal handlers: {error}")))
    };
    let mut term = install(SignalKind::terminate())?;
    let mut int = install(SignalKind::interrupt())?;
    let mut hup = install(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM received");
                    break;
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT received");
                    break;
                }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP received: reloading");
                    // A reload already queued covers this one too.
                    let _ = reload.try_send(());
                }
            }
        }
        shutdown.cancel();
    });
    Ok(())
}

fn check_config(config: &Config, with_db: bool) -> Result<(), Failure> {
    print!("{}", config::render_effective(config));
    if !with_db {
        return Ok(());
    }
    logging::init_for_command();
    runtime()?.block_on(async {
        let db = Database::connect_lazy(&config.database);
        let checked = check_schema(&db, config.database.auto_migrate).await;
        db.close().await;
        println!("; database: reachable, {}", checked?);
        Ok(())
    })
}

/// The schema's state in a line for `check-config --db`, or the reason it cannot be used.
async fn check_schema(db: &Database, auto_migrate: bool) -> Result<String, Failure> {
    let state = migrate::schema_state(db).await.map_err(unavailable)?;
    let migrating = migration_lock::holder(db, true)
        .await
        .map_err(unavailable)?;
    if let Some(holder) = migrating.filter(|_| !state.pending.is_empty()) {
        return Ok(format!("migrations being applied by {}", holder.owner));
    }
    if let Some(&version) = state.failed.first() {
        return Err(Failure::Unavailable(format!(
            "database: migration {} failed part-way and is not applied: fix its cause \
             (`monitor_service migrate` shows the error), then `monitor_service migrate` \
             (or the service's start) applies it again",
            migrate::describe(version)
        )));
    }
    match state.pending.len() {
        0 => Ok("schema up to date".to_owned()),
        n if auto_migrate => Ok(format!("{n} migrations pending (run applies them)")),
        n => Err(Failure::Unavailable(format!(
            "database: {n} migrations pending and auto_migrate = false: run `monitor_service migrate`"
        ))),
    }
}

fn migrate(config: &Config) -> Result<(), Failure> {
    logging::init_for_command();
    runtime()?.block_on(async {
        let db = Database::connect_lazy(&config.database);
        db.create_database_if_missing(&config.database)
            .await
            .map_err(unavailable)?;
        let result = db.apply_migrations().await;
        db.close().await;
        let applied = result.map_err(unavailable)?;
        println!(
            "database {}: {applied} migrations applied, schema up to date",
            config.database.database
        );
        Ok(())
    })
}

fn unavailable(error: DbError) -> Failure {
    if error.is_unavailable() {
        Failure::Unavailable(error.to_string())
    } else {
        Failure::Internal(error.to_string())
    }
}
