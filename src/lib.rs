//! monitor_service keeps critical processes alive, with a MySQL/MariaDB database as its control
//! plane: it polls `STATUS_PROCESS` for alarms, restarts each process by its strategy behind a
//! circuit breaker, verifies the restart with a health check and clears the alarm with a note.
//!
//! `ARCHITECTURE.md` at the top of the repository describes the tasks and who owns what.

pub mod alarm;
pub mod alert;
pub mod breaker;
pub mod cli;
pub mod command;
pub mod config;
pub mod db;
pub mod deadline;
pub mod dependency;
pub mod ha;
pub mod health;
pub mod http;
pub mod lock;
pub mod logging;
pub mod note;
pub mod notify;
pub mod poller;
pub mod printable;
pub mod process;
pub mod report;
pub mod restart;
pub mod service;
pub mod stats;
