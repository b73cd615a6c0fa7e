//! Carrying out a command: the configuration loaded, the one runtime built, and each command
//! sent to the code that does it. The shell hands its lines here as words
//! ([`execute_words`]), so it never needs the clap tree itself.

use clap::Parser;
use tokio_util::sync::CancellationToken;

use super::args::{AlarmCommand, AlarmTarget, BreakerCommand, Cli, Command};
use super::failure::Failure;
use super::{ha, reads, writes};
use crate::config::{self, Config, PASSWORD_ENV};
use crate::db::alarms::AlarmChange;
use crate::db::{Database, migrate, migration_lock};
use crate::restart::manual::Action;
use crate::{logging, service};

/// What a line of the shell asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// Carried out, or its error printed: read the next line.
    Next,
    /// `exit`, `quit`: end the shell.
    End,
}

/// Carries out one line of the shell, given as its words; errors are printed, as the shell
/// goes on after them.
pub fn execute_words(config: &Config, words: &[&str]) -> Line {
    match words {
        [] => Line::Next,
        ["exit" | "quit"] => Line::End,
        ["help"] => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            Line::Next
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
            Line::Next
        }
    }
}

/// Carries out one command other than `run` and `shell` (the shell's lines come here too).
pub(super) fn execute_command(config: &Config, command: Command) -> Result<(), Failure> {
    match command {
        Command::Run | Command::Shell => Err(Failure::Usage(
            "run and shell are not available inside the shell".to_owned(),
        )),
        Command::CheckConfig { db } => check_config(config, db),
        Command::Migrate => migrate(config),
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
            runtime()?.block_on(reads::stats(config, name.as_deref(), json))
        }
        Command::Health { json } => runtime()?.block_on(reads::health(config, json)),
        command => runtime()?.block_on(control_command(config, command)),
    }
}

/// The commands that act on the control plane, with the database connected once.
async fn control_command(config: &Config, command: Command) -> Result<(), Failure> {
    let db = Database::connect_first_answering(&config.database).await;
    let result = control_output(&db, config, command).await;
    db.close().await;
    println!("{}", result?.trim_end());
    Ok(())
}

async fn control_output(
    db: &Database,
    config: &Config,
    command: Command,
) -> Result<String, Failure> {
    match command {
        Command::Status { json } => reads::status(db, config, json).await,
        Command::Alarm(AlarmCommand::List) => reads::alarm_list(db).await,
        Command::Alarm(AlarmCommand::Set(target)) => {
            writes::alarm(db, config, target_name(&target), AlarmChange::Raise).await
        }
        Command::Alarm(AlarmCommand::Clear(target)) => {
            writes::alarm(db, config, target_name(&target), AlarmChange::Clear).await
        }
        Command::Breaker(BreakerCommand::List) => reads::breaker_list(db, config).await,
        Command::Breaker(BreakerCommand::Reset { name }) => {
            writes::breaker_reset(db, config, &name).await
        }
        Command::Start { name } => writes::manual(db, config, &name, Action::Start).await,
        Command::Stop { name } => writes::manual(db, config, &name, Action::Stop).await,
        Command::Restart { name } => writes::manual(db, config, &name, Action::Restart).await,
        Command::Ha(command) => ha::execute(db, config, command).await,
        _ => Err(Failure::Internal("not a control command".to_owned())),
    }
}

/// The process named, or None for `--all`.
fn target_name(target: &AlarmTarget) -> Option<&str> {
    target.name.as_deref()
}

pub(super) fn load_config(path: &std::path::Path) -> Result<Config, Failure> {
    let password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
    Config::load(path, password).map_err(Failure::Config)
}

/// The runtime of every command, the service's and the shell's included.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    // One thread is plenty: the work is waiting on children and the database.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::Internal(format!("starting the runtime: {error}")))
}

pub(super) fn run(config: Config) -> Result<(), Failure> {
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
        let db = Database::connect_first_answering(&config.database).await;
        let checked = check_schema(&db, config.database.auto_migrate).await;
        db.close().await;
        println!("; database: reachable, {}", checked?);
        Ok(())
    })
}

/// The schema's state in a line for `check-config --db`, or the reason it cannot be used.
async fn check_schema(db: &Database, auto_migrate: bool) -> Result<String, Failure> {
    let state = migrate::schema_state(db).await.map_err(Failure::from)?;
    let migrating = migration_lock::holder(db, true)
        .await
        .map_err(Failure::from)?;
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
        let db = Database::connect_first_answering(&config.database).await;
        db.create_database_if_missing(&config.database)
            .await
            .map_err(Failure::from)?;
        let result = db.apply_migrations().await;
        db.close().await;
        let applied = result.map_err(Failure::from)?;
        println!(
            "database {}: {applied} migrations applied, schema up to date",
            config.database.database
        );
        Ok(())
    })
}
