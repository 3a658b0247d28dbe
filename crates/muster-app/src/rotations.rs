//! Rotations as the application reads them: a stored rotation as the shift maths' spec
//! ([`App::spec_of`]) and its overrides ([`App::overrides_of`]). The shift computation
//! itself is `muster_core::rotation`.

use crate::{App, AppError, Caller};
use jiff::Timestamp;
use muster_core::rotation::{self, OverrideSpec, Recurrence, RotationSpec};
use muster_core::{Arn, ArnOf, ContactType, ResourceRef};
use muster_store::{Created, Idempotency, RotationOverrideRecord, RotationRecord, StoreError, Tag};
use uuid::Uuid;

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

/// A stored rotation as the spec its shifts are computed from, each member (stored as an
/// alias) written by `member`: a contact ARN for the API and the feeds, the alias itself for
/// the console's calendars.
pub fn rotation_spec(
    r: &RotationRecord,
    member: impl Fn(&str) -> String,
) -> Result<RotationSpec, AppError> {
    let recurrence: Recurrence = serde_json::from_str(&r.recurrence_json).map_err(|e| {
        tracing::error!(rotation = %r.id, error = %e, "stored recurrence does not decode");
        AppError::internal()
    })?;
    let tz = rotation::time_zone(&r.time_zone).ok_or_else(|| {
        tracing::error!(rotation = %r.id, zone = %r.time_zone, "stored time zone unknown");
        AppError::internal()
    })?;
    Ok(RotationSpec {
        start: ts(r.start_ms),
        time_zone: tz,
        members: r.members.iter().map(|a| member(a)).collect(),
        recurrence,
    })
}

/// A stored override as the shift maths takes it, members written by `member` (as in
/// [`rotation_spec`]).
pub fn override_spec(o: &RotationOverrideRecord, member: impl Fn(&str) -> String) -> OverrideSpec {
    OverrideSpec {
        id: o.id.to_string(),
        members: o.members.iter().map(|a| member(a)).collect(),
        start: ts(o.start_ms),
        end: ts(o.end_ms),
        created: ts(o.created_ms),
    }
}

impl App {
    /// A stored rotation as the spec its shifts are computed from (members as contact ARNs
    /// of `caller`'s account).
    pub fn spec_of(&self, caller: &Caller, r: &RotationRecord) -> Result<RotationSpec, AppError> {
        rotation_spec(r, |a| caller.arn(ArnOf::Contact(a)))
    }

    /// Every override of a rotation, as the shift maths takes them.
    pub async fn overrides_of(
        &self,
        caller: &Caller,
        rotation: Uuid,
    ) -> Result<Vec<OverrideSpec>, AppError> {
        let all = self
            .store
            .all_overrides(caller.account.as_str(), rotation)
            .await?;
        Ok(all
            .iter()
            .map(|o| override_spec(o, |a| caller.arn(ArnOf::Contact(a))))
            .collect())
    }
}

/// How far ahead an override may start (the user guide: six months).
pub const OVERRIDE_MAX_LEAD_DAYS: i64 = 183;
/// Shortest override (the user guide: 30 minutes).
pub const OVERRIDE_MIN_MS: i64 = 30 * 60 * 1000;

/// A new rotation, as CreateRotation or the console gives it.
#[derive(Debug, Clone)]
pub struct NewRotation {
    pub name: String,
    /// Contact ARNs of personal contacts, in rotation order.
    pub members: Vec<String>,
    /// An IANA time zone name.
    pub time_zone: String,
    pub recurrence: Recurrence,
    /// When the rotation starts (epoch ms); now when not given.
    pub start_ms: Option<i64>,
    pub tags: Vec<Tag>,
}

/// What an update of a rotation changes (each member when given; the recurrence always,
/// as UpdateRotation requires it).
#[derive(Debug, Clone)]
pub struct RotationChange {
    pub members: Option<Vec<String>>,
    pub time_zone: Option<String>,
    pub start_ms: Option<i64>,
    pub recurrence: Recurrence,
}

fn check_time_zone(name: &str, path: &str) -> Result<(), AppError> {
    rotation::time_zone(name).map(|_| ()).ok_or_else(|| {
        AppError::invalid(
            path,
            format!("{name:?} is not an IANA time zone name (for example America/Los_Angeles)"),
        )
    })
}

fn check_recurrence(r: &Recurrence) -> Result<(), AppError> {
    r.validate()
        .map_err(|(name, message)| AppError::invalid(name, message))
}

impl App {
    /// The rotation id a rotation ARN of the caller names.
    pub fn rotation_id(caller: &Caller, arn: &str) -> Result<Uuid, AppError> {
        match caller.own(arn, "ROTATION")? {
            ResourceRef::Rotation { id } => Ok(id),
            _ => Err(AppError::not_found("ROTATION", arn)),
        }
    }

    pub async fn load_rotation(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<RotationRecord, AppError> {
        let id = Self::rotation_id(caller, arn)?;
        self.store
            .get_rotation(caller.account.as_str(), id)
            .await?
            .ok_or_else(|| AppError::not_found("ROTATION", arn))
    }

    /// Resolves contact ARNs to aliases of existing PERSONAL contacts, in order, refusing
    /// duplicates. `member` names the list in errors.
    pub async fn rotation_members(
        &self,
        caller: &Caller,
        arns: &[String],
        member: &str,
    ) -> Result<Vec<String>, AppError> {
        let mut aliases: Vec<String> = Vec::with_capacity(arns.len());
        for (i, arn) in arns.iter().enumerate() {
            let ResourceRef::Contact { alias } = caller.own(arn, "CONTACT")? else {
                return Err(AppError::invalid(
                    format!("{member}[{i}]"),
                    format!("{arn} is not a contact ARN"),
                ));
            };
            let c = self
                .store
                .get_contact(caller.account.as_str(), alias.as_str())
                .await?
                .ok_or_else(|| AppError::not_found("CONTACT", arn))?;
            if c.contact_type != ContactType::Personal {
                return Err(AppError::invalid(
                    format!("{member}[{i}]"),
                    format!(
                        "{arn} is {}; rotations take PERSONAL contacts only",
                        c.contact_type
                    ),
                ));
            }
            if aliases.contains(&c.alias) {
                return Err(AppError::invalid(
                    format!("{member}[{i}]"),
                    format!("{arn} is listed twice"),
                ));
            }
            aliases.push(c.alias);
        }
        Ok(aliases)
    }

    /// Creates a rotation of personal contacts.
    pub async fn create_rotation(
        &self,
        caller: &Caller,
        new: NewRotation,
        idempotency: Option<Idempotency>,
    ) -> Result<crate::contacts::Made, AppError> {
        let members = self
            .rotation_members(caller, &new.members, "ContactIds")
            .await?;
        check_time_zone(&new.time_zone, "TimeZoneId")?;
        check_recurrence(&new.recurrence)?;
        let now = self.clock.now_ms();
        // Time-ordered: rotations created in the same millisecond list in creation order.
        let id = Uuid::now_v7();
        let arn = caller.arn(ArnOf::Rotation(id));
        let idem = idempotency.map(|i| Idempotency {
            result: arn.clone(),
            ..i
        });
        let record = RotationRecord {
            id,
            account: caller.account.to_string(),
            name: new.name,
            start_ms: new.start_ms.unwrap_or(now),
            time_zone: new.time_zone,
            members,
            recurrence_json: serde_json::to_string(&new.recurrence)
                .map_err(|e| AppError::corrupt("recurrence", e))?,
            created_ms: now,
            updated_ms: now,
        };
        match self
            .store
            .create_rotation(&record, &new.tags, idem.as_ref())
            .await
        {
            Ok(Created::New) => Ok(crate::contacts::Made { arn, new: true }),
            Ok(Created::Replay(previous)) => Ok(crate::contacts::Made {
                arn: previous,
                new: false,
            }),
            Err(StoreError::NotFound(what)) => Err(AppError::not_found("CONTACT", what)),
            Err(e) => Err(e.into()),
        }
    }

    /// Changes a rotation.
    pub async fn update_rotation(
        &self,
        caller: &Caller,
        arn: &str,
        change: RotationChange,
    ) -> Result<(), AppError> {
        let mut r = self.load_rotation(caller, arn).await?;
        if let Some(ids) = &change.members {
            r.members = self.rotation_members(caller, ids, "ContactIds").await?;
        }
        if let Some(tz) = change.time_zone {
            check_time_zone(&tz, "TimeZoneId")?;
            r.time_zone = tz;
        }
        if let Some(start) = change.start_ms {
            r.start_ms = start;
        }
        check_recurrence(&change.recurrence)?;
        r.recurrence_json = serde_json::to_string(&change.recurrence)
            .map_err(|e| AppError::corrupt("recurrence", e))?;
        r.updated_ms = self.clock.now_ms();
        match self.store.update_rotation(&r).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AppError::not_found("ROTATION", arn)),
            Err(StoreError::NotFound(what)) => Err(AppError::not_found("CONTACT", what)),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a rotation (and removes it from the on-call schedules that name it).
    pub async fn delete_rotation(&self, caller: &Caller, arn: &str) -> Result<(), AppError> {
        let id = Self::rotation_id(caller, arn)?;
        let canonical = caller.arn(ArnOf::Rotation(id));
        if !self
            .store
            .delete_rotation(caller.account.as_str(), id, &canonical, self.clock.now_ms())
            .await?
        {
            return Err(AppError::not_found("ROTATION", arn));
        }
        Ok(())
    }

    /// Creates an override of the rotation `rotation_arn`: `members` (contact ARNs, members
    /// of the rotation) are on call from `start_ms` to `end_ms`. Returns its id.
    pub async fn create_override(
        &self,
        caller: &Caller,
        rotation_arn: &str,
        members: &[String],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Uuid, AppError> {
        let r = self.load_rotation(caller, rotation_arn).await?;
        if end_ms - start_ms < OVERRIDE_MIN_MS {
            return Err(AppError::invalid(
                "EndTime",
                "an override lasts at least 30 minutes (EndTime at least 30 minutes after StartTime)",
            ));
        }
        let now = self.clock.now_ms();
        if start_ms > now + OVERRIDE_MAX_LEAD_DAYS * 24 * 3600 * 1000 {
            return Err(AppError::invalid(
                "StartTime",
                "an override can start at most 6 months from now",
            ));
        }
        let mut aliases = Vec::new();
        for (i, c) in members.iter().enumerate() {
            let alias = match Arn::parse(c) {
                Ok(Arn {
                    resource: ResourceRef::Contact { alias },
                    ..
                }) if r.members.iter().any(|m| m == alias.as_str()) => alias.to_string(),
                _ => {
                    return Err(AppError::invalid(
                        format!("NewContactIds[{i}]"),
                        format!(
                            "{c} is not a member of the rotation; overrides only use rotation members"
                        ),
                    ));
                }
            };
            if aliases.contains(&alias) {
                return Err(AppError::invalid(
                    format!("NewContactIds[{i}]"),
                    format!("{c} is listed twice"),
                ));
            }
            aliases.push(alias);
        }
        // Time-ordered: of overrides created in the same millisecond, the later one wins.
        let id = Uuid::now_v7();
        let record = RotationOverrideRecord {
            id,
            account: caller.account.to_string(),
            rotation_id: r.id,
            members: aliases,
            start_ms,
            end_ms,
            created_ms: now,
        };
        self.store
            .create_override(&record)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => AppError::not_found("ROTATION", rotation_arn),
                e => e.into(),
            })?;
        Ok(id)
    }

    /// An override of a rotation, by the rotation's ARN and the override's id.
    pub async fn load_override(
        &self,
        caller: &Caller,
        rotation_arn: &str,
        override_id: &str,
    ) -> Result<(RotationRecord, RotationOverrideRecord), AppError> {
        let r = self.load_rotation(caller, rotation_arn).await?;
        let missing = || AppError::not_found("ROTATION_OVERRIDE", override_id);
        let id = Uuid::parse_str(override_id).map_err(|_| missing())?;
        let o = self
            .store
            .get_override(caller.account.as_str(), r.id, id)
            .await?
            .ok_or_else(missing)?;
        Ok((r, o))
    }

    /// Deletes an override.
    pub async fn delete_override(
        &self,
        caller: &Caller,
        rotation_arn: &str,
        override_id: &str,
    ) -> Result<(), AppError> {
        let (r, o) = self
            .load_override(caller, rotation_arn, override_id)
            .await?;
        if !self
            .store
            .delete_override(caller.account.as_str(), r.id, o.id)
            .await?
        {
            return Err(AppError::not_found("ROTATION_OVERRIDE", override_id));
        }
        Ok(())
    }
}
