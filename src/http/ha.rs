//! The role of this host (`[ha]`) on the status page, in `/health` and in `/metrics`: added
//! to what the other modules of `http/` render, so that they need not know about HA.

use std::fmt::Write;

use crate::ha::HaStatus;
use crate::printable::printable;

use super::page::escape;

/// `/health`'s JSON with `role`, `haGroup`, `epoch` and `holder` added (the role is
/// `"none"` without `[ha]`).
pub fn health_json(
    report: Result<String, serde_json::Error>,
    ha: Option<&HaStatus>,
) -> Result<String, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(&report?)?;
    if let Some(object) = value.as_object_mut() {
        let role = ha.map_or("none", |ha| ha.role.as_str());
        object.insert("role".into(), role.into());
        if let Some(ha) = ha {
            object.insert("haGroup".into(), ha.group.clone().into());
            object.insert("epoch".into(), ha.epoch.into());
            object.insert("holder".into(), ha.holder.clone().into());
        }
    }
    serde_json::to_string_pretty(&value)
}

/// The page with a line saying the role, after its summary.
pub fn page_with_role(page: String, ha: Option<&HaStatus>) -> String {
    let Some(ha) = ha else { return page };
    let holder = ha.holder.as_deref().map_or("nobody".to_owned(), escape);
    let line = format!(
        "<p class=\"summary\"><span>HA role: <b id=\"ha-role\">{}</b></span>\
         <span>group {}, epoch {}, primary: {holder}</span></p>\n",
        ha.role,
        escape(&ha.group),
        ha.epoch
    );
    match page.find("<form") {
        Some(at) => {
            let mut page = page;
            page.insert_str(at, &line);
            page
        }
        None => page,
    }
}

/// The metrics with `monitor_service_ha_primary` and `monitor_service_ha_epoch` before `#
/// EOF`.
pub fn metrics_with_role(text: String, ha: Option<&HaStatus>) -> String {
    let Some(ha) = ha else { return text };
    let group = printable(&ha.group)
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    let mut lines = String::new();
    let primary = u8::from(ha.role == crate::config::Role::Primary);
    let _ = writeln!(lines, "# TYPE monitor_service_ha_primary gauge");
    let _ = writeln!(
        lines,
        "# HELP monitor_service_ha_primary Whether this host is its HA group's primary."
    );
    let _ = writeln!(
        lines,
        "monitor_service_ha_primary{{group=\"{group}\"}} {primary}"
    );
    let _ = writeln!(lines, "# TYPE monitor_service_ha_epoch gauge");
    let _ = writeln!(
        lines,
        "# HELP monitor_service_ha_epoch The epoch of the group's lease as last seen."
    );
    let _ = writeln!(
        lines,
        "monitor_service_ha_epoch{{group=\"{group}\"}} {}",
        ha.epoch
    );
    match text.rfind("# EOF") {
        Some(at) => {
            let mut text = text;
            text.insert_str(at, &lines);
            text
        }
        None => text + &lines,
    }
}
