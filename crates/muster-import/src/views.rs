//! Each imported entity as a comparable *view*: what the import controls of a Muster resource,
//! with references written as aliases and source ids rather than ARNs. The desired set gives
//! the view an import wants; the database gives the view Muster has. Equal views mean
//! nothing to do; the hash of the view an import left is kept in the import map, so a later
//! run can tell that someone edited the resource in Muster since.

use crate::model::{ContactRef, Desired};
use muster_app::{App, AppError, Caller};
use muster_core::rotation::Recurrence;
use muster_core::{Arn, ArnOf, ContactType, ResourceRef, Target};
use muster_store::After;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Personal-plan stages as a view compares them: (minutes, [(channel name, retry minutes)]).
pub type PersonalStages = Vec<(u32, Vec<(String, Option<u32>)>)>;

/// What an import controls of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum View {
    Person {
        display_name: String,
        /// name → (type, address)
        channels: BTreeMap<String, (String, String)>,
        stages: PersonalStages,
    },
    Rotation {
        time_zone: String,
        start_ms: i64,
        /// aliases
        members: Vec<String>,
        recurrence: Recurrence,
    },
    Override {
        members: Vec<String>,
        start_ms: i64,
        end_ms: i64,
    },
    Schedule {
        display_name: String,
        /// `rotation:<source id>` for rotations an import made, else the ARN.
        rotations: Vec<String>,
    },
    Escalation {
        display_name: String,
        /// (minutes, [(alias, essential)])
        stages: Vec<(u32, Vec<(String, bool)>)>,
    },
}

/// sha256 hex of a value's JSON.
pub fn hash_of<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// The channel id an import gives a source device: the same on every run (so an interrupted
/// import finds the channels it made), different per Muster account and source.
pub fn channel_id(
    muster_account: &str,
    system: &str,
    source_account: &str,
    person: &str,
    channel: &str,
) -> Uuid {
    let digest = Sha256::digest(
        format!("muster-import\n{muster_account}\n{system}\n{source_account}\n{person}\n{channel}")
            .as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A version-8 (custom) UUID: RFC 9562 version and variant bits.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// The alias a contact ARN names (its resource part), if it is one.
pub fn alias_of_arn(arn: &str) -> Option<String> {
    match Arn::parse(arn).ok()?.resource {
        ResourceRef::Contact { alias } => Some(alias.to_string()),
        _ => None,
    }
}

/// Names the desired set's entities in Muster: aliases for contacts, ARNs for rotations
/// already made.
#[derive(Debug, Default, Clone)]
pub struct Names {
    /// person / schedule / escalation source id → alias
    pub people: HashMap<String, String>,
    pub schedules: HashMap<String, String>,
    pub escalations: HashMap<String, String>,
    /// rotation source id → ARN (rotations made by an earlier import)
    pub rotations: HashMap<String, String>,
}

impl Names {
    pub fn alias_of(&self, r: &ContactRef) -> Option<&String> {
        match r {
            ContactRef::Person(id) => self.people.get(id),
            ContactRef::Schedule(id) => self.schedules.get(id),
            ContactRef::Escalation(id) => self.escalations.get(id),
        }
    }

    /// `rotation:<source id>` for a rotation ARN an import made, else the ARN itself.
    pub fn rotation_ref(&self, arn: &str) -> String {
        self.rotations
            .iter()
            .find(|(_, a)| a.as_str() == arn)
            .map(|(id, _)| format!("rotation:{id}"))
            .unwrap_or_else(|| arn.to_owned())
    }
}

/// The views the desired set wants, keyed by (kind, source id).
pub fn wanted(desired: &Desired, names: &Names) -> BTreeMap<(String, String), View> {
    let mut out = BTreeMap::new();
    for p in &desired.people {
        let by_id: HashMap<&str, &str> = p
            .channels
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect();
        out.insert(
            ("person".into(), p.id.clone()),
            View::Person {
                display_name: p.display_name.clone(),
                channels: p
                    .channels
                    .iter()
                    .map(|c| {
                        (
                            c.name.clone(),
                            (c.channel_type.as_str().to_owned(), c.address.clone()),
                        )
                    })
                    .collect(),
                stages: p
                    .stages
                    .iter()
                    .map(|s| {
                        (
                            s.duration_minutes,
                            s.channels
                                .iter()
                                .map(|t| {
                                    (
                                        by_id
                                            .get(t.channel.as_str())
                                            .copied()
                                            .unwrap_or(&t.channel)
                                            .to_owned(),
                                        t.retry_interval_minutes,
                                    )
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            },
        );
    }
    let alias_of_person = |id: &String| {
        names
            .people
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("?{id}"))
    };
    for r in &desired.rotations {
        out.insert(
            ("rotation".into(), r.id.clone()),
            View::Rotation {
                time_zone: r.time_zone.clone(),
                start_ms: r.start.as_millisecond(),
                members: r.members.iter().map(alias_of_person).collect(),
                recurrence: r.recurrence.clone(),
            },
        );
        for o in &r.overrides {
            out.insert(
                ("override".into(), override_key(&r.id, &o.id)),
                View::Override {
                    members: o.members.iter().map(alias_of_person).collect(),
                    start_ms: o.start.as_millisecond(),
                    end_ms: o.end.as_millisecond(),
                },
            );
        }
    }
    for s in &desired.schedules {
        out.insert(
            ("schedule".into(), s.id.clone()),
            View::Schedule {
                display_name: s.display_name.clone(),
                rotations: s
                    .rotations
                    .iter()
                    .map(|id| format!("rotation:{id}"))
                    .collect(),
            },
        );
    }
    for e in &desired.escalations {
        out.insert(
            ("escalation".into(), e.id.clone()),
            View::Escalation {
                display_name: e.display_name.clone(),
                stages: e
                    .stages
                    .iter()
                    .map(|s| {
                        (
                            s.duration_minutes,
                            s.targets
                                .iter()
                                .map(|t| {
                                    let alias = names
                                        .alias_of(&t.contact)
                                        .cloned()
                                        .unwrap_or_else(|| format!("?{:?}", t.contact));
                                    (alias, t.is_essential)
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            },
        );
    }
    out
}

/// The map key of an override: its rotation's source id and its own.
pub fn override_key(rotation: &str, id: &str) -> String {
    format!("{rotation}/{id}")
}

/// The view Muster has of a contact (`None`: it does not exist).
pub async fn contact_view(
    app: &App,
    caller: &Caller,
    alias: &str,
    names: &Names,
) -> Result<Option<View>, AppError> {
    let Some(c) = app
        .store
        .get_contact(caller.account.as_str(), alias)
        .await?
    else {
        return Ok(None);
    };
    let display_name = c.display_name.clone().unwrap_or_default();
    Ok(Some(match c.contact_type {
        ContactType::Personal => {
            let channels = app
                .store
                .list_channels(caller.account.as_str(), c.id, &After::Start, 1000)
                .await?;
            let name_of: HashMap<String, String> = channels
                .iter()
                .map(|ch| (App::channel_arn(caller, alias, ch.id), ch.name.clone()))
                .collect();
            View::Person {
                display_name,
                channels: channels
                    .iter()
                    .map(|ch| {
                        (
                            ch.name.clone(),
                            (ch.channel_type.as_str().to_owned(), ch.address.clone()),
                        )
                    })
                    .collect(),
                stages: c
                    .plan
                    .stages
                    .iter()
                    .map(|s| {
                        (
                            s.duration_minutes,
                            s.targets
                                .iter()
                                .filter_map(|t| match t {
                                    Target::Channel {
                                        channel_arn,
                                        retry_interval_minutes,
                                    } => Some((
                                        name_of
                                            .get(channel_arn)
                                            .cloned()
                                            .unwrap_or_else(|| channel_arn.clone()),
                                        *retry_interval_minutes,
                                    )),
                                    Target::Contact { .. } => None,
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            }
        }
        ContactType::OncallSchedule => View::Schedule {
            display_name,
            rotations: c
                .plan
                .rotation_ids
                .iter()
                .map(|a| names.rotation_ref(a))
                .collect(),
        },
        ContactType::Escalation => View::Escalation {
            display_name,
            stages: c
                .plan
                .stages
                .iter()
                .map(|s| {
                    (
                        s.duration_minutes,
                        s.targets
                            .iter()
                            .filter_map(|t| match t {
                                Target::Contact {
                                    contact_arn,
                                    is_essential,
                                } => Some((
                                    alias_of_arn(contact_arn)
                                        .unwrap_or_else(|| contact_arn.clone()),
                                    *is_essential,
                                )),
                                Target::Channel { .. } => None,
                            })
                            .collect(),
                    )
                })
                .collect(),
        },
    }))
}

/// The view Muster has of a rotation (`None`: it does not exist).
pub async fn rotation_view(
    app: &App,
    caller: &Caller,
    arn: &str,
) -> Result<Option<View>, AppError> {
    let r = match app.load_rotation(caller, arn).await {
        Ok(r) => r,
        Err(AppError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let recurrence: Recurrence =
        serde_json::from_str(&r.recurrence_json).map_err(|e| AppError::corrupt("recurrence", e))?;
    Ok(Some(View::Rotation {
        time_zone: r.time_zone,
        start_ms: r.start_ms,
        members: r.members,
        recurrence,
    }))
}

/// The view Muster has of an override, by its map target (`<rotation ARN>#<id>`).
pub async fn override_view(
    app: &App,
    caller: &Caller,
    target: &str,
) -> Result<Option<View>, AppError> {
    let Some((rotation, id)) = target.split_once('#') else {
        return Ok(None);
    };
    match app.load_override(caller, rotation, id).await {
        Ok((_, o)) => Ok(Some(View::Override {
            members: o.members,
            start_ms: o.start_ms,
            end_ms: o.end_ms,
        })),
        Err(AppError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The ARN of contact `alias` for the caller.
pub fn contact_arn(caller: &Caller, alias: &str) -> String {
    caller.arn(ArnOf::Contact(alias))
}
