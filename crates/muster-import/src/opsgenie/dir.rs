//! Captured directories: the one [`write_dir`] writes (`opsgenie.json`), and the one Opsgenie's
//! configuration-backup tool writes (`OpsGenieBackups/{users,schedules,escalations,teams,…}/
//! <name>-<id>.json`, `opsgenie/opsgenie-configuration-backup`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::client::typed;
use super::raw::{Escalation, NotificationRule, Override, Raw, Schedule, Team, User};
use crate::ImportError;

/// The file [`write_dir`] writes.
pub const FILE: &str = "opsgenie.json";

/// Writes `raw` as `DIR/opsgenie.json` (creating `DIR`).
pub fn write_dir(raw: &Raw, dir: &Path) -> Result<(), ImportError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ImportError::Input(format!("creating {}: {e}", dir.display())))?;
    let path = dir.join(FILE);
    let json = serde_json::to_vec_pretty(raw)
        .map_err(|e| ImportError::Input(format!("serialising the capture: {e}")))?;
    let tmp = dir.join(format!(".{FILE}.tmp"));
    crate::write_private(&tmp, &json)?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| ImportError::Input(format!("writing {}: {e}", path.display())))
}

/// Reads a directory [`write_dir`] wrote, or a backup-tool directory (the `OpsGenieBackups`
/// directory itself or the directory holding it).
pub fn read_dir(dir: &Path) -> Result<Raw, ImportError> {
    let file = dir.join(FILE);
    if file.is_file() {
        let bytes = std::fs::read(&file)
            .map_err(|e| ImportError::Input(format!("reading {}: {e}", file.display())))?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ImportError::Input(format!("{}: not JSON: {e}", file.display())))?;
        return typed(value, &file.display().to_string());
    }
    let root = if dir.join("OpsGenieBackups").is_dir() {
        dir.join("OpsGenieBackups")
    } else {
        dir.to_path_buf()
    };
    if !root.join("users").is_dir() && !root.join("schedules").is_dir() {
        return Err(ImportError::Input(format!(
            "{}: neither a captured directory ({FILE}) nor an Opsgenie backup (OpsGenieBackups/users, …/schedules)",
            dir.display()
        )));
    }
    read_backup(&root)
}

/// The `*.json` files of `root/sub`, sorted by name (none when the directory is missing).
fn files(root: &Path, sub: &str) -> Result<Vec<PathBuf>, ImportError> {
    let dir = root.join(sub);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir)
        .map_err(|e| ImportError::Input(format!("reading {}: {e}", dir.display())))?
    {
        let path = entry
            .map_err(|e| ImportError::Input(format!("reading {}: {e}", dir.display())))?
            .path();
        if path.extension().is_some_and(|x| x == "json") && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn load(path: &Path) -> Result<Value, ImportError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ImportError::Input(format!("reading {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ImportError::Input(format!("{}: not JSON: {e}", path.display())))
}

fn take(v: &mut Value, key: &str) -> Value {
    v.get_mut(key).map(Value::take).unwrap_or(Value::Null)
}

fn read_backup(root: &Path) -> Result<Raw, ImportError> {
    let mut raw = Raw {
        account: "backup".to_owned(),
        origin: "backup".to_owned(),
        ..Raw::default()
    };
    // users/<username>-<id>.json: {"user": {…, "userContacts": [{id, contactMethod, to,
    // enabled, disabledReason}]}, "notificationRuleList": [NotificationRule]}
    for path in files(root, "users")? {
        let name = path.display().to_string();
        let mut v = load(&path)?;
        let mut user_v = take(&mut v, "user");
        let contacts_v = take(&mut user_v, "userContacts");
        let mut user: User = typed(user_v, &format!("{name}: user"))?;
        if let Value::Array(list) = contacts_v {
            for (i, c) in list.into_iter().enumerate() {
                let field = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
                let (Some(method), Some(to)) = (
                    field("contactMethod").or_else(|| field("method")),
                    field("to"),
                ) else {
                    return Err(ImportError::unexpected(
                        &name,
                        &format!("user.userContacts[{i}]"),
                        "contactMethod and to are required",
                    ));
                };
                user.contacts.push(super::raw::Contact {
                    id: field("id").unwrap_or_else(|| format!("{method}-{i}")),
                    method,
                    to,
                    status: super::raw::ContactStatus {
                        enabled: c.get("enabled").and_then(Value::as_bool).unwrap_or(true),
                        disabled_reason: field("disabledReason"),
                    },
                    apply_order: None,
                });
            }
        }
        let rules = take(&mut v, "notificationRuleList");
        if !rules.is_null() {
            user.notification_rules =
                typed::<Vec<NotificationRule>>(rules, &format!("{name}: notificationRuleList"))?;
        }
        raw.users.push(user);
    }
    // schedules/<name>-<id>.json: {"schedule": Schedule, "scheduleOverrideList": [..]}
    for path in files(root, "schedules")? {
        let name = path.display().to_string();
        let mut v = load(&path)?;
        let mut schedule: Schedule = typed(take(&mut v, "schedule"), &format!("{name}: schedule"))?;
        let overrides = take(&mut v, "scheduleOverrideList");
        if !overrides.is_null() {
            schedule.overrides =
                typed::<Vec<Override>>(overrides, &format!("{name}: scheduleOverrideList"))?;
        }
        raw.schedules.push(schedule);
    }
    // escalations/<name>-<id>.json: Escalation
    for path in files(root, "escalations")? {
        let name = path.display().to_string();
        let e: Escalation = typed(load(&path)?, &name)?;
        raw.escalations.push(e);
    }
    // teams/<name>-<id>.json: {"team": Team, "teamRoutingRules": …, "teamRoles": …}
    for path in files(root, "teams")? {
        let name = path.display().to_string();
        let mut v = load(&path)?;
        let t: Team = typed(take(&mut v, "team"), &format!("{name}: team"))?;
        raw.teams.push(t);
    }
    Ok(raw)
}
