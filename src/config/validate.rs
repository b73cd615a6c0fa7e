//! Raw INI to typed `Config`.
use std::path::Path;
use super::Config;
#[derive(Debug, thiserror::Error)]
#[error("config")]
pub struct ConfigError;
pub(super) fn load(_path: &Path, _password: Option<String>) -> Result<Config, ConfigError> { todo!() }
pub(super) fn from_text(_path: &Path, _text: &str, _password: Option<String>) -> Result<Config, ConfigError> { todo!() }
