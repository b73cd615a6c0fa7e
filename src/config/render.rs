//! The effective settings, printed by `check-config`.
use super::Config;
pub fn render_effective(_config: &Config) -> String { todo!() }
