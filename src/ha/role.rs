//! Which role a service takes at start and keeps across a reload, before the HA task has
//! read the lease.

use crate::config::{Config, Role};

/// The role a starting service takes: standby until the lease says otherwise with `[ha]`;
/// primary (everything runs here) without.
pub fn starting_role(config: &Config) -> Role {
    match config.ha {
        Some(_) => Role::Standby,
        None => Role::Primary,
    }
}

/// The role a reloaded configuration keeps: the running one while `[ha]` stays, the starting
/// one when `[ha]` comes or goes (the task steps down as it goes).
pub fn carried_role(old: &Config, new: &Config) -> Role {
    match (&old.ha, &new.ha) {
        (Some(_), Some(_)) => old.role,
        _ => starting_role(new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::HaStatus;

    fn config(ha: bool) -> Config {
        let text = if ha {
            "[monitor]\nhost = a\n\n[ha]\ngroup = pair\n"
        } else {
            "[monitor]\nhost = a\n"
        };
        Config::from_ini_text(std::path::Path::new("c.ini"), text, None).expect("valid")
    }

    #[test]
    fn a_service_in_a_group_starts_as_standby_and_a_reload_keeps_its_role() {
        let (alone, grouped) = (config(false), config(true));
        assert_eq!(starting_role(&alone), Role::Primary);
        assert_eq!(starting_role(&grouped), Role::Standby);
        let mut primary = grouped.clone();
        primary.role = Role::Primary;
        assert_eq!(carried_role(&primary, &grouped), Role::Primary);
        assert_eq!(carried_role(&alone, &grouped), Role::Standby);
        assert_eq!(carried_role(&primary, &alone), Role::Primary);
    }

    #[test]
    fn systemd_status_names_the_role() {
        let status = HaStatus {
            group: "pair".into(),
            role: Role::Standby,
            epoch: 7,
            holder: Some("b".into()),
        };
        let line = crate::notify::with_role("2 processes".into(), Some(&status));
        assert_eq!(line, "standby of pair (epoch 7), 2 processes");
        assert_eq!(crate::notify::with_role("x".into(), None), "x");
    }
}
