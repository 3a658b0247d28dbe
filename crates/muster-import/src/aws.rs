//! The `aws` source: any ssm-contacts endpoint (AWS Incident Manager, or another Muster),
//! read through the AWS SDK with the usual credential chain, profile and region.
//!
//! The mapping is one to one (IMPORTERS.md §2): PERSONAL contacts → people, their channels and
//! plans as they are; ONCALL_SCHEDULE → schedules; ESCALATION → escalations; rotations and
//! their overrides as they are. Aliases are kept, so contact ARNs keep their resource part.
//! The source renders its own shifts (`ListRotationShifts`), which the equivalence report
//! compares with Muster's.

use crate::model::{
    Channel, ChannelTarget, ContactRef, Desired, Escalation, EscalationStage, EscalationTarget,
    Interval, Loss, Override, Person, PersonalStage, Rendering, Rotation, Schedule, Severity,
};
use crate::progress::Progress;
use crate::{EQUIVALENCE_DAYS, ImportError, MapOptions};
use aws_sdk_ssmcontacts::Client;
use aws_sdk_ssmcontacts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssmcontacts::primitives::DateTime;
use jiff::{SignedDuration, Timestamp};
use muster_core::ChannelType;
use muster_core::rotation::{Cadence, CoverageWindow, DayOfWeek, HandOff, Recurrence};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub const SYSTEM: &str = "aws";
/// The file `capture` writes and `--from` reads.
pub const CAPTURE_FILE: &str = "aws-ssm-contacts.json";

/// Where and as whom to read.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// Everything read, in the API's shapes (recurrences as Muster's rotation settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Raw {
    /// `<region>:<account id>`.
    pub account: String,
    pub contacts: Vec<RawContact>,
    pub rotations: Vec<RawRotation>,
    /// When the source rendered its shifts: `[RenderedFrom, RenderedTo)`.
    pub rendered_from: Timestamp,
    pub rendered_to: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawContact {
    pub contact_arn: String,
    pub alias: String,
    pub display_name: Option<String>,
    /// PERSONAL, ESCALATION, ONCALL_SCHEDULE
    pub r#type: String,
    pub stages: Vec<RawStage>,
    pub rotation_ids: Vec<String>,
    pub channels: Vec<RawChannel>,
    pub tag_count: usize,
    pub has_policy: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawStage {
    pub duration_in_minutes: u32,
    /// (ContactChannelId, RetryIntervalInMinutes)
    pub channel_targets: Vec<(String, Option<u32>)>,
    /// (ContactId, IsEssential)
    pub contact_targets: Vec<(String, bool)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawChannel {
    pub contact_channel_arn: String,
    pub name: String,
    pub r#type: String,
    pub simple_address: String,
    pub activation_status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawRotation {
    pub rotation_arn: String,
    pub name: String,
    pub contact_ids: Vec<String>,
    pub start_time: Timestamp,
    pub time_zone_id: String,
    pub recurrence: Recurrence,
    pub overrides: Vec<RawOverride>,
    /// The source's own shifts over the rendering window.
    pub shifts: Vec<RawShift>,
    pub tag_count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawOverride {
    pub rotation_override_id: String,
    pub new_contact_ids: Vec<String>,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawShift {
    pub contact_ids: Vec<String>,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
}

/// An SDK client for the endpoint, through the standard AWS configuration chain
/// (environment, shared config and credentials files, SSO, …).
pub async fn client(endpoint: &Endpoint) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(p) = &endpoint.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &endpoint.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(u) = &endpoint.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    Client::new(&loader.load().await)
}

fn sdk_error<E: ProvideErrorMetadata + std::fmt::Debug>(what: &str, e: SdkError<E>) -> ImportError {
    match &e {
        SdkError::DispatchFailure(d) => ImportError::Unreachable(format!("{what}: {d:?}")),
        SdkError::TimeoutError(_) => ImportError::Unreachable(format!("{what}: timed out")),
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("error");
            let message = s.err().message().unwrap_or("");
            match code {
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "AccessDeniedException"
                | "ExpiredTokenException"
                | "InvalidClientTokenId"
                | "SignatureDoesNotMatch" => {
                    ImportError::Credentials(format!("{what}: {code}: {message}"))
                }
                _ => ImportError::Source(format!("{what}: {code}: {message}")),
            }
        }
        SdkError::ConstructionFailure(_) => ImportError::Credentials(format!(
            "{what}: the request could not be made (no credentials or region?): {e:?}"
        )),
        _ => ImportError::Unexpected(format!("{what}: {e:?}")),
    }
}

fn ts(d: Option<&DateTime>, entity: &str, field: &str) -> Result<Timestamp, ImportError> {
    let d = d.ok_or_else(|| ImportError::unexpected(entity, field, "missing"))?;
    Timestamp::new(d.secs(), d.subsec_nanos() as i32)
        .map_err(|e| ImportError::unexpected(entity, field, e))
}

fn dt(t: Timestamp) -> DateTime {
    DateTime::from_millis(t.as_millisecond())
}

fn hand_off(
    h: Option<&aws_sdk_ssmcontacts::types::HandOffTime>,
    entity: &str,
    field: &str,
) -> Result<HandOff, ImportError> {
    let h = h.ok_or_else(|| ImportError::unexpected(entity, field, "missing"))?;
    let (hour, minute) = (u8::try_from(h.hour_of_day), u8::try_from(h.minute_of_hour));
    match (hour, minute) {
        (Ok(hour), Ok(minute)) if HandOff::new(hour, minute).is_valid() => {
            Ok(HandOff::new(hour, minute))
        }
        _ => Err(ImportError::unexpected(
            entity,
            field,
            format!(
                "{}:{} is not a time of day",
                h.hour_of_day, h.minute_of_hour
            ),
        )),
    }
}

fn recurrence(
    r: &aws_sdk_ssmcontacts::types::RecurrenceSettings,
    entity: &str,
) -> Result<Recurrence, ImportError> {
    let cadence = if !r.daily_settings().is_empty() {
        Cadence::Daily(
            r.daily_settings()
                .iter()
                .map(|h| hand_off(Some(h), entity, "Recurrence.DailySettings"))
                .collect::<Result<_, _>>()?,
        )
    } else if !r.weekly_settings().is_empty() {
        let mut v = Vec::new();
        for w in r.weekly_settings() {
            let day = DayOfWeek::from_aws(w.day_of_week.as_str()).ok_or_else(|| {
                ImportError::unexpected(
                    entity,
                    "Recurrence.WeeklySettings.DayOfWeek",
                    w.day_of_week.as_str(),
                )
            })?;
            v.push((
                day.0,
                hand_off(
                    w.hand_off_time.as_ref(),
                    entity,
                    "Recurrence.WeeklySettings.HandOffTime",
                )?,
            ));
        }
        Cadence::Weekly(v)
    } else if !r.monthly_settings().is_empty() {
        let mut v = Vec::new();
        for m in r.monthly_settings() {
            let day = u8::try_from(m.day_of_month).map_err(|_| {
                ImportError::unexpected(
                    entity,
                    "Recurrence.MonthlySettings.DayOfMonth",
                    m.day_of_month,
                )
            })?;
            v.push((
                day,
                hand_off(
                    m.hand_off_time.as_ref(),
                    entity,
                    "Recurrence.MonthlySettings.HandOffTime",
                )?,
            ));
        }
        Cadence::Monthly(v)
    } else {
        return Err(ImportError::unexpected(
            entity,
            "Recurrence",
            "no daily, weekly or monthly settings",
        ));
    };
    let coverage = match &r.shift_coverages {
        None => None,
        Some(map) => {
            let mut out = BTreeMap::new();
            for (day, windows) in map {
                let d = DayOfWeek::from_aws(day.as_str()).ok_or_else(|| {
                    ImportError::unexpected(entity, "Recurrence.ShiftCoverages", day.as_str())
                })?;
                let ws = windows
                    .iter()
                    .map(|w| {
                        Ok(CoverageWindow::new(
                            hand_off(w.start.as_ref(), entity, "Recurrence.ShiftCoverages.Start")?,
                            hand_off(w.end.as_ref(), entity, "Recurrence.ShiftCoverages.End")?,
                        ))
                    })
                    .collect::<Result<Vec<_>, ImportError>>()?;
                out.insert(d, ws);
            }
            Some(out)
        }
    };
    Ok(Recurrence {
        cadence,
        number_of_on_calls: u32::try_from(r.number_of_on_calls).unwrap_or(1),
        multiplier: u32::try_from(r.recurrence_multiplier).unwrap_or(1),
        coverage,
    })
}

fn account_of(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    (parts.len() == 6).then(|| format!("{}:{}", parts[3], parts[4]))
}

/// Reads the whole set-up: contacts with plans and channels, rotations with their overrides
/// (from a day ago to `options.horizon_days` ahead) and their shifts over the equivalence
/// window from `now`.
pub async fn fetch(
    client: &Client,
    now: Timestamp,
    options: &MapOptions,
    progress: &dyn Progress,
) -> Result<Raw, ImportError> {
    let mut summaries = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_contacts()
            .set_next_token(token)
            .max_results(100)
            .send()
            .await
            .map_err(|e| sdk_error("ListContacts", e))?;
        summaries.extend(page.contacts().iter().cloned());
        token = page.next_token().map(str::to_owned);
        progress.step("contacts listed", summaries.len(), None);
        if token.is_none() {
            break;
        }
    }
    progress.finish();
    let mut contacts = Vec::new();
    for (i, c) in summaries.iter().enumerate() {
        let arn = c.contact_arn();
        let entity = format!("contact '{}'", c.alias());
        let got = client
            .get_contact()
            .contact_id(arn)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("GetContact {arn}"), e))?;
        let mut stages = Vec::new();
        if let Some(plan) = got.plan() {
            for s in plan.stages() {
                let mut st = RawStage {
                    duration_in_minutes: u32::try_from(s.duration_in_minutes).map_err(|_| {
                        ImportError::unexpected(
                            &entity,
                            "Plan.Stages.DurationInMinutes",
                            s.duration_in_minutes,
                        )
                    })?,
                    channel_targets: vec![],
                    contact_targets: vec![],
                };
                for t in s.targets() {
                    if let Some(ch) = &t.channel_target_info {
                        st.channel_targets.push((
                            ch.contact_channel_id.clone(),
                            ch.retry_interval_in_minutes
                                .and_then(|r| u32::try_from(r).ok()),
                        ));
                    }
                    if let Some(ct) = &t.contact_target_info {
                        let id = ct.contact_id.clone().ok_or_else(|| {
                            ImportError::unexpected(
                                &entity,
                                "Plan.Stages.Targets.ContactTargetInfo.ContactId",
                                "missing",
                            )
                        })?;
                        st.contact_targets.push((id, ct.is_essential));
                    }
                }
                stages.push(st);
            }
        }
        let rotation_ids = got
            .plan()
            .map(|p| p.rotation_ids().to_vec())
            .unwrap_or_default();
        let mut channels = Vec::new();
        if c.r#type().as_str() == "PERSONAL" {
            let mut token = None;
            loop {
                let page = client
                    .list_contact_channels()
                    .contact_id(arn)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&format!("ListContactChannels {arn}"), e))?;
                for ch in page.contact_channels() {
                    channels.push(RawChannel {
                        contact_channel_arn: ch.contact_channel_arn().to_owned(),
                        name: ch.name().to_owned(),
                        r#type: ch
                            .r#type()
                            .map(|t| t.as_str().to_owned())
                            .unwrap_or_default(),
                        simple_address: ch
                            .delivery_address()
                            .and_then(|a| a.simple_address())
                            .unwrap_or_default()
                            .to_owned(),
                        activation_status: ch.activation_status().as_str().to_owned(),
                    });
                }
                token = page.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        let tags = client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("ListTagsForResource {arn}"), e))?;
        let policy = client.get_contact_policy().contact_arn(arn).send().await;
        let has_policy = matches!(&policy, Ok(p) if p.policy().is_some_and(|p| !p.is_empty()));
        contacts.push(RawContact {
            contact_arn: arn.to_owned(),
            alias: c.alias().to_owned(),
            display_name: got.display_name().map(str::to_owned),
            r#type: c.r#type().as_str().to_owned(),
            stages,
            rotation_ids,
            channels,
            tag_count: tags.tags().len(),
            has_policy,
        });
        progress.step("contacts", i + 1, Some(summaries.len()));
    }
    progress.finish();

    let (from, to) = (now, now + SignedDuration::from_hours(24 * EQUIVALENCE_DAYS));
    let horizon = now + SignedDuration::from_hours(24 * i64::from(options.horizon_days.min(183)));
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_rotations()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("ListRotations", e))?;
        listed.extend(page.rotations().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let mut rotations = Vec::new();
    for (i, r) in listed.iter().enumerate() {
        let arn = r.rotation_arn();
        let entity = format!("rotation '{}'", r.name());
        let rec = r
            .recurrence()
            .ok_or_else(|| ImportError::unexpected(&entity, "Recurrence", "missing"))?;
        let mut overrides = Vec::new();
        let mut token = None;
        loop {
            let page = client
                .list_rotation_overrides()
                .rotation_id(arn)
                .start_time(dt(now - SignedDuration::from_hours(24)))
                .end_time(dt(horizon))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(&format!("ListRotationOverrides {arn}"), e))?;
            for o in page.rotation_overrides() {
                overrides.push(RawOverride {
                    rotation_override_id: o.rotation_override_id().to_owned(),
                    new_contact_ids: o.new_contact_ids().to_vec(),
                    start_time: ts(Some(o.start_time()), &entity, "RotationOverrides.StartTime")?,
                    end_time: ts(Some(o.end_time()), &entity, "RotationOverrides.EndTime")?,
                });
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let mut shifts = Vec::new();
        let mut token = None;
        loop {
            let page = client
                .list_rotation_shifts()
                .rotation_id(arn)
                .start_time(dt(from))
                .end_time(dt(to))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(&format!("ListRotationShifts {arn}"), e))?;
            for s in page.rotation_shifts() {
                shifts.push(RawShift {
                    contact_ids: s.contact_ids().to_vec(),
                    start_time: ts(Some(s.start_time()), &entity, "RotationShifts.StartTime")?,
                    end_time: ts(Some(s.end_time()), &entity, "RotationShifts.EndTime")?,
                });
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let tags = client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("ListTagsForResource {arn}"), e))?;
        rotations.push(RawRotation {
            rotation_arn: arn.to_owned(),
            name: r.name().to_owned(),
            contact_ids: r.contact_ids().to_vec(),
            start_time: ts(r.start_time(), &entity, "StartTime")?,
            time_zone_id: r
                .time_zone_id()
                .ok_or_else(|| ImportError::unexpected(&entity, "TimeZoneId", "missing"))?
                .to_owned(),
            recurrence: recurrence(rec, &entity)?,
            overrides,
            shifts,
            tag_count: tags.tags().len(),
        });
        progress.step("rotations", i + 1, Some(listed.len()));
    }
    progress.finish();
    let account = contacts
        .iter()
        .map(|c| c.contact_arn.as_str())
        .chain(rotations.iter().map(|r| r.rotation_arn.as_str()))
        .find_map(account_of)
        .unwrap_or_else(|| "unknown".to_owned());
    Ok(Raw {
        account,
        contacts,
        rotations,
        rendered_from: from,
        rendered_to: to,
    })
}

/// Writes `raw` into `dir` (created if needed).
pub fn write_dir(raw: &Raw, dir: &Path) -> Result<(), ImportError> {
    crate::capture::write(raw, dir, CAPTURE_FILE)
}

/// Reads what [`write_dir`] wrote.
pub fn read_dir(dir: &Path) -> Result<Raw, ImportError> {
    crate::capture::read(dir, CAPTURE_FILE)
}

/// The desired set: one to one. `now` is unused (the source rendered its own window).
pub fn map(raw: &Raw, _options: &MapOptions, _now: Timestamp) -> Desired {
    let mut losses = Vec::new();
    let type_of: HashMap<&str, &str> = raw
        .contacts
        .iter()
        .map(|c| (c.contact_arn.as_str(), c.r#type.as_str()))
        .collect();
    let mut people = Vec::new();
    let mut schedules = Vec::new();
    let mut escalations = Vec::new();
    for c in &raw.contacts {
        let entity_kind = match c.r#type.as_str() {
            "PERSONAL" => "person",
            "ONCALL_SCHEDULE" => "schedule",
            _ => "escalation",
        };
        let entity = format!("{entity_kind}:{}", c.contact_arn);
        if c.tag_count > 0 {
            losses.push(Loss::new(
                "tags-not-imported",
                Severity::Info,
                &entity,
                format!(
                    "{} tag(s) of contact '{}' are not carried over",
                    c.tag_count, c.alias
                ),
            ));
        }
        if c.has_policy {
            losses.push(Loss::new("contact-policy-not-imported", Severity::Info, &entity, format!("the resource policy of contact '{}' (cross-account sharing) is not carried over", c.alias)));
        }
        let display_name = c.display_name.clone().unwrap_or_default();
        match c.r#type.as_str() {
            "PERSONAL" => {
                let mut channels = Vec::new();
                for ch in &c.channels {
                    let Ok(channel_type) = ch.r#type.parse::<ChannelType>() else {
                        losses.push(Loss::new(
                            "unsupported-channel",
                            Severity::Warn,
                            &entity,
                            format!(
                                "channel '{}' of type {} is not imported",
                                ch.name, ch.r#type
                            ),
                        ));
                        continue;
                    };
                    channels.push(Channel {
                        id: ch.contact_channel_arn.clone(),
                        name: ch.name.clone(),
                        channel_type,
                        address: ch.simple_address.clone(),
                        activated: ch.activation_status == "ACTIVATED",
                    });
                }
                let stages = c
                    .stages
                    .iter()
                    .map(|s| PersonalStage {
                        duration_minutes: s.duration_in_minutes,
                        channels: s
                            .channel_targets
                            .iter()
                            .filter(|(id, _)| channels.iter().any(|ch| &ch.id == id))
                            .map(|(id, retry)| ChannelTarget {
                                channel: id.clone(),
                                retry_interval_minutes: *retry,
                            })
                            .collect(),
                    })
                    .collect();
                people.push(Person {
                    id: c.contact_arn.clone(),
                    alias: c.alias.clone(),
                    display_name,
                    channels,
                    stages,
                });
            }
            "ONCALL_SCHEDULE" => schedules.push(Schedule {
                id: c.contact_arn.clone(),
                alias: c.alias.clone(),
                display_name,
                rotations: c.rotation_ids.clone(),
            }),
            _ => {
                let stages = c
                    .stages
                    .iter()
                    .map(|s| EscalationStage {
                        duration_minutes: s.duration_in_minutes,
                        targets: s
                            .contact_targets
                            .iter()
                            .filter_map(|(id, essential)| {
                                let contact = match type_of.get(id.as_str()).copied() {
                                    Some("PERSONAL") => ContactRef::Person(id.clone()),
                                    Some("ONCALL_SCHEDULE") => ContactRef::Schedule(id.clone()),
                                    Some(_) => ContactRef::Escalation(id.clone()),
                                    None => {
                                        losses.push(Loss::new("target-missing", Severity::Error, &entity, format!("stage target {id} is not a contact of the source; dropped")));
                                        return None;
                                    }
                                };
                                Some(EscalationTarget {
                                    contact,
                                    is_essential: *essential,
                                })
                            })
                            .collect(),
                    })
                    .collect();
                escalations.push(Escalation {
                    id: c.contact_arn.clone(),
                    alias: c.alias.clone(),
                    display_name,
                    stages,
                });
            }
        }
    }
    let rotations = raw
        .rotations
        .iter()
        .map(|r| {
            if r.tag_count > 0 {
                losses.push(Loss::new(
                    "tags-not-imported",
                    Severity::Info,
                    format!("rotation:{}", r.rotation_arn),
                    format!(
                        "{} tag(s) of rotation '{}' are not carried over",
                        r.tag_count, r.name
                    ),
                ));
            }
            Rotation {
                id: r.rotation_arn.clone(),
                name: r.name.clone(),
                time_zone: r.time_zone_id.clone(),
                start: r.start_time,
                members: r.contact_ids.clone(),
                recurrence: r.recurrence.clone(),
                overrides: r
                    .overrides
                    .iter()
                    .filter(|o| o.end_time > raw.rendered_from)
                    .map(|o| Override {
                        id: o.rotation_override_id.clone(),
                        members: o.new_contact_ids.clone(),
                        start: o.start_time,
                        end: o.end_time,
                    })
                    .collect(),
            }
        })
        .collect::<Vec<_>>();
    let renderings = schedules
        .iter()
        .map(|s| Rendering {
            schedule: s.id.clone(),
            rendered_by: "source".into(),
            from: raw.rendered_from,
            to: raw.rendered_to,
            intervals: raw
                .rotations
                .iter()
                .filter(|r| s.rotations.contains(&r.rotation_arn))
                .flat_map(|r| r.shifts.iter())
                .map(|sh| Interval {
                    start: sh.start_time,
                    end: sh.end_time,
                    people: sh.contact_ids.clone(),
                })
                .collect(),
        })
        .collect();
    Desired {
        system: SYSTEM.into(),
        account: raw.account.clone(),
        people,
        rotations,
        schedules,
        escalations,
        losses,
        renderings,
    }
}
