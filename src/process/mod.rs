//! Finding, stopping and starting processes.
