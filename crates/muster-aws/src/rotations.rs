//! On-call rotations, overrides and shifts (the rotation operations of SSM Contacts).
//!
//! Shift maths lives in `muster_core::rotation`; this module parses the wire shapes into
//! it, checks what needs the store (members exist and are PERSONAL contacts), and maps the
//! results back. Choices where AWS is silent are in docs/api.md and docs/rotations.md.

use crate::contacts::{ContactsApi, field, page_size, req, request_hash, store_error};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::tokens;
use crate::wire::EpochSeconds;
use crate::wire::ssm_contacts as w;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use muster_app::rotations::{NewRotation, RotationChange};
use muster_core::ArnOf;
use muster_core::rotation::{
    self, Cadence, CoverageWindow, DayOfWeek, HandOff, OverrideSpec, Recurrence, RotationSpec,
    Shift, ShiftKind, Weekday,
};
use muster_store::{After, Idempotency, RotationOverrideRecord, RotationRecord};
use std::collections::BTreeMap;
use uuid::Uuid;

fn weekday_from_wire(d: w::DayOfWeek) -> Weekday {
    match d {
        w::DayOfWeek::Mon => Weekday::Monday,
        w::DayOfWeek::Tue => Weekday::Tuesday,
        w::DayOfWeek::Wed => Weekday::Wednesday,
        w::DayOfWeek::Thu => Weekday::Thursday,
        w::DayOfWeek::Fri => Weekday::Friday,
        w::DayOfWeek::Sat => Weekday::Saturday,
        w::DayOfWeek::Sun => Weekday::Sunday,
    }
}

fn weekday_to_wire(d: Weekday) -> w::DayOfWeek {
    match d {
        Weekday::Monday => w::DayOfWeek::Mon,
        Weekday::Tuesday => w::DayOfWeek::Tue,
        Weekday::Wednesday => w::DayOfWeek::Wed,
        Weekday::Thursday => w::DayOfWeek::Thu,
        Weekday::Friday => w::DayOfWeek::Fri,
        Weekday::Saturday => w::DayOfWeek::Sat,
        Weekday::Sunday => w::DayOfWeek::Sun,
    }
}

fn hand_off(h: &w::HandOffTime) -> HandOff {
    // The model bounds both (0..23, 0..59), so the casts cannot truncate.
    HandOff {
        hour: h.hour_of_day as u8,
        minute: h.minute_of_hour as u8,
    }
}

fn hand_off_to_wire(h: HandOff) -> w::HandOffTime {
    w::HandOffTime {
        hour_of_day: h.hour as i32,
        minute_of_hour: h.minute as i32,
    }
}

/// Wire recurrence → domain recurrence, checked.
pub(crate) fn recurrence_from_wire(r: &w::RecurrenceSettings) -> Result<Recurrence, ApiError> {
    let rec = recurrence_shape_from_wire(r)?;
    rec.validate()
        .map_err(|(name, message)| field(name, message))?;
    Ok(rec)
}

/// Wire recurrence → domain recurrence, its shape only (the application checks its rules).
fn recurrence_shape_from_wire(r: &w::RecurrenceSettings) -> Result<Recurrence, ApiError> {
    let monthly = r.monthly_settings.as_deref().unwrap_or_default();
    let weekly = r.weekly_settings.as_deref().unwrap_or_default();
    let daily = r.daily_settings.as_deref().unwrap_or_default();
    let given = [!monthly.is_empty(), !weekly.is_empty(), !daily.is_empty()]
        .iter()
        .filter(|b| **b)
        .count();
    if given != 1 {
        return Err(field(
            "Recurrence",
            "give exactly one of DailySettings, WeeklySettings or MonthlySettings",
        ));
    }
    let cadence = if !daily.is_empty() {
        Cadence::Daily(daily.iter().map(hand_off).collect())
    } else if !weekly.is_empty() {
        let mut v = Vec::new();
        for (i, s) in weekly.iter().enumerate() {
            let day = req(
                s.day_of_week,
                &format!("Recurrence.WeeklySettings[{i}].DayOfWeek"),
            )?;
            let t = req(
                s.hand_off_time.as_ref(),
                &format!("Recurrence.WeeklySettings[{i}].HandOffTime"),
            )?;
            v.push((weekday_from_wire(day), hand_off(t)));
        }
        Cadence::Weekly(v)
    } else {
        let mut v = Vec::new();
        for (i, s) in monthly.iter().enumerate() {
            let day = req(
                s.day_of_month,
                &format!("Recurrence.MonthlySettings[{i}].DayOfMonth"),
            )?;
            let t = req(
                s.hand_off_time.as_ref(),
                &format!("Recurrence.MonthlySettings[{i}].HandOffTime"),
            )?;
            v.push((day as u8, hand_off(t)));
        }
        Cadence::Monthly(v)
    };
    let coverage = match &r.shift_coverages {
        None => None,
        Some(map) => {
            let mut out = BTreeMap::new();
            for (day, windows) in map {
                let mut ws = Vec::new();
                for (i, c) in windows.iter().enumerate() {
                    let path = format!("Recurrence.ShiftCoverages.{}[{i}]", day.as_str());
                    ws.push(CoverageWindow {
                        start: hand_off(req(c.start.as_ref(), &format!("{path}.Start"))?),
                        end: hand_off(req(c.end.as_ref(), &format!("{path}.End"))?),
                    });
                }
                out.insert(DayOfWeek(weekday_from_wire(*day)), ws);
            }
            Some(out)
        }
    };
    let rec = Recurrence {
        cadence,
        number_of_on_calls: req(r.number_of_on_calls, "Recurrence.NumberOfOnCalls")?.max(0) as u32,
        multiplier: req(r.recurrence_multiplier, "Recurrence.RecurrenceMultiplier")?.max(0) as u32,
        coverage,
    };
    Ok(rec)
}

pub(crate) fn recurrence_to_wire(r: &Recurrence) -> w::RecurrenceSettings {
    let mut out = w::RecurrenceSettings {
        number_of_on_calls: Some(r.number_of_on_calls as i32),
        recurrence_multiplier: Some(r.multiplier as i32),
        ..Default::default()
    };
    match &r.cadence {
        Cadence::Daily(v) => {
            out.daily_settings = Some(v.iter().copied().map(hand_off_to_wire).collect())
        }
        Cadence::Weekly(v) => {
            out.weekly_settings = Some(
                v.iter()
                    .map(|(d, h)| w::WeeklySetting {
                        day_of_week: Some(weekday_to_wire(*d)),
                        hand_off_time: Some(hand_off_to_wire(*h)),
                    })
                    .collect(),
            )
        }
        Cadence::Monthly(v) => {
            out.monthly_settings = Some(
                v.iter()
                    .map(|(d, h)| w::MonthlySetting {
                        day_of_month: Some(*d as i32),
                        hand_off_time: Some(hand_off_to_wire(*h)),
                    })
                    .collect(),
            )
        }
    }
    if let Some(cov) = &r.coverage {
        out.shift_coverages = Some(
            cov.iter()
                .map(|(d, ws)| {
                    (
                        weekday_to_wire(d.0),
                        ws.iter()
                            .map(|c| w::CoverageTime {
                                start: Some(hand_off_to_wire(c.start)),
                                end: Some(hand_off_to_wire(c.end)),
                            })
                            .collect(),
                    )
                })
                .collect(),
        );
    }
    out
}

fn time_zone(name: &str, member: &str) -> Result<TimeZone, ApiError> {
    rotation::time_zone(name).ok_or_else(|| {
        field(
            member,
            format!("{name:?} is not an IANA time zone name (for example America/Los_Angeles)"),
        )
    })
}

fn instant(t: Option<EpochSeconds>, member: &str) -> Result<Option<Timestamp>, ApiError> {
    t.map(|t| {
        t.to_timestamp()
            .ok_or_else(|| field(member, "is not a representable instant"))
    })
    .transpose()
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn shift_to_wire(s: &Shift) -> w::RotationShift {
    w::RotationShift {
        contact_ids: Some(s.members.clone()),
        start_time: Some(EpochSeconds::from(s.start)),
        end_time: Some(EpochSeconds::from(s.end)),
        r#type: Some(match s.kind {
            ShiftKind::Regular => w::ShiftType::Regular,
            ShiftKind::Overridden => w::ShiftType::Overridden,
        }),
        shift_details: match s.kind {
            ShiftKind::Regular => None,
            ShiftKind::Overridden => Some(w::ShiftDetails {
                overridden_contact_ids: Some(s.overridden_members.clone()),
            }),
        },
    }
}

/// One page of computed shifts, keyed by start instant (shifts of one rotation never share
/// a start).
fn page_of_shifts(
    all: Vec<Shift>,
    fingerprint: &str,
    token: Option<&str>,
    limit: u32,
) -> Result<(Vec<w::RotationShift>, Option<String>), ApiError> {
    let after = tokens::decode(fingerprint, token).map_err(|m| field("NextToken", m))?;
    let from_ms = match after {
        After::Start => i64::MIN,
        After::Created { ms, .. } => ms,
        After::Alias(_) => return Err(field("NextToken", "is not a NextToken this server issued")),
    };
    let mut rest: Vec<&Shift> = all
        .iter()
        .filter(|s| after == After::Start || ms(s.start) > from_ms)
        .collect();
    let next = if rest.len() > limit as usize {
        rest.truncate(limit as usize);
        rest.last().map(|s| {
            tokens::encode(
                fingerprint,
                &After::Created {
                    ms: ms(s.start),
                    id: Uuid::nil(),
                },
            )
        })
    } else {
        None
    };
    Ok((rest.into_iter().map(shift_to_wire).collect(), next))
}

impl ContactsApi {
    pub(crate) fn rotation_arn(ctx: &RequestContext, id: Uuid) -> String {
        ArnOf::Rotation(id).in_account(ctx.region.as_str(), ctx.account.as_str())
    }

    pub(crate) async fn load_rotation(
        &self,
        ctx: &RequestContext,
        arn: &str,
    ) -> Result<RotationRecord, ApiError> {
        Ok(self.app.load_rotation(&ctx.caller(), arn).await?)
    }

    fn rotation_to_wire(
        &self,
        ctx: &RequestContext,
        r: &RotationRecord,
    ) -> Result<w::Rotation, ApiError> {
        let spec = self.app.spec_of(&ctx.caller(), r)?;
        Ok(w::Rotation {
            rotation_arn: Some(Self::rotation_arn(ctx, r.id)),
            name: Some(r.name.clone()),
            contact_ids: Some(spec.members),
            start_time: Some(EpochSeconds::from_millis(r.start_ms)),
            time_zone_id: Some(r.time_zone.clone()),
            recurrence: Some(recurrence_to_wire(&spec.recurrence)),
        })
    }

    pub(crate) async fn op_create_rotation(
        &self,
        ctx: &RequestContext,
        input: w::CreateRotationRequest,
    ) -> Result<w::CreateRotationResult, ApiError> {
        let name = req(input.name.clone(), "Name")?;
        let time_zone = req(input.time_zone_id.clone(), "TimeZoneId")?;
        let recurrence = recurrence_shape_from_wire(req(input.recurrence.as_ref(), "Recurrence")?)?;
        let start_ms = instant(input.start_time, "StartTime")?.map(ms);
        let tags = crate::contacts::tags_from_wire(input.tags.as_deref().unwrap_or_default())?;
        let idem = input.idempotency_token.as_ref().map(|token| Idempotency {
            operation: "CreateRotation".into(),
            token: token.clone(),
            request_hash: request_hash(&w::CreateRotationRequest {
                idempotency_token: None,
                ..input.clone()
            }),
            result: String::new(),
        });
        let new = NewRotation {
            name,
            members: input.contact_ids.unwrap_or_default(),
            time_zone,
            recurrence,
            start_ms,
            tags,
        };
        let made = self.app.create_rotation(&ctx.caller(), new, idem).await?;
        Ok(w::CreateRotationResult {
            rotation_arn: Some(made.arn),
        })
    }

    pub(crate) async fn op_get_rotation(
        &self,
        ctx: &RequestContext,
        input: w::GetRotationRequest,
    ) -> Result<w::GetRotationResult, ApiError> {
        let r = self
            .load_rotation(ctx, &req(input.rotation_id, "RotationId")?)
            .await?;
        let w::Rotation {
            rotation_arn,
            name,
            contact_ids,
            start_time,
            time_zone_id,
            recurrence,
        } = self.rotation_to_wire(ctx, &r)?;
        Ok(w::GetRotationResult {
            rotation_arn,
            name,
            contact_ids,
            start_time,
            time_zone_id,
            recurrence,
        })
    }

    pub(crate) async fn op_update_rotation(
        &self,
        ctx: &RequestContext,
        input: w::UpdateRotationRequest,
    ) -> Result<w::UpdateRotationResult, ApiError> {
        let arn = req(input.rotation_id.clone(), "RotationId")?;
        let start_ms = instant(input.start_time, "StartTime")?.map(ms);
        let recurrence = recurrence_shape_from_wire(req(input.recurrence.as_ref(), "Recurrence")?)?;
        let change = RotationChange {
            members: input.contact_ids,
            time_zone: input.time_zone_id,
            start_ms,
            recurrence,
        };
        self.app
            .update_rotation(&ctx.caller(), &arn, change)
            .await?;
        Ok(w::UpdateRotationResult::default())
    }

    pub(crate) async fn op_delete_rotation(
        &self,
        ctx: &RequestContext,
        input: w::DeleteRotationRequest,
    ) -> Result<w::DeleteRotationResult, ApiError> {
        let arn = req(input.rotation_id, "RotationId")?;
        self.app.delete_rotation(&ctx.caller(), &arn).await?;
        Ok(w::DeleteRotationResult::default())
    }

    pub(crate) async fn op_list_rotations(
        &self,
        ctx: &RequestContext,
        input: w::ListRotationsRequest,
    ) -> Result<w::ListRotationsResult, ApiError> {
        let prefix = input.rotation_name_prefix.clone().filter(|p| !p.is_empty());
        let fingerprint = format!("rotations|{}", prefix.as_deref().unwrap_or(""));
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| field("NextToken", m))?;
        let limit = page_size(&self.app.limits, input.max_results);
        let rows = self
            .app
            .store
            .list_rotations(ctx.account.as_str(), prefix.as_deref(), &after, limit + 1)
            .await
            .map_err(store_error)?;
        let (rows, next_token) = tokens::page(rows, limit, &fingerprint, |r| After::Created {
            ms: r.created_ms,
            id: r.id,
        });
        let rotations = rows
            .iter()
            .map(|r| self.rotation_to_wire(ctx, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(w::ListRotationsResult {
            next_token,
            rotations: Some(rotations),
        })
    }

    pub(crate) async fn op_create_rotation_override(
        &self,
        ctx: &RequestContext,
        input: w::CreateRotationOverrideRequest,
    ) -> Result<w::CreateRotationOverrideResult, ApiError> {
        let arn = req(input.rotation_id, "RotationId")?;
        // The rotation is looked up first: an unknown one is not found, whatever the times.
        self.load_rotation(ctx, &arn).await?;
        let start = req(instant(input.start_time, "StartTime")?, "StartTime")?;
        let end = req(instant(input.end_time, "EndTime")?, "EndTime")?;
        let id = self
            .app
            .create_override(
                &ctx.caller(),
                &arn,
                input.new_contact_ids.as_deref().unwrap_or_default(),
                ms(start),
                ms(end),
            )
            .await?;
        Ok(w::CreateRotationOverrideResult {
            rotation_override_id: Some(id.to_string()),
        })
    }

    async fn load_override(
        &self,
        ctx: &RequestContext,
        rotation_arn: &str,
        override_id: &str,
    ) -> Result<(RotationRecord, RotationOverrideRecord), ApiError> {
        Ok(self
            .app
            .load_override(&ctx.caller(), rotation_arn, override_id)
            .await?)
    }

    fn override_to_wire(ctx: &RequestContext, o: &RotationOverrideRecord) -> w::RotationOverride {
        w::RotationOverride {
            rotation_override_id: Some(o.id.to_string()),
            new_contact_ids: Some(
                o.members
                    .iter()
                    .map(|a| Self::contact_arn(ctx, a))
                    .collect(),
            ),
            start_time: Some(EpochSeconds::from_millis(o.start_ms)),
            end_time: Some(EpochSeconds::from_millis(o.end_ms)),
            create_time: Some(EpochSeconds::from_millis(o.created_ms)),
        }
    }

    pub(crate) async fn op_get_rotation_override(
        &self,
        ctx: &RequestContext,
        input: w::GetRotationOverrideRequest,
    ) -> Result<w::GetRotationOverrideResult, ApiError> {
        let (r, o) = self
            .load_override(
                ctx,
                &req(input.rotation_id, "RotationId")?,
                &req(input.rotation_override_id, "RotationOverrideId")?,
            )
            .await?;
        let wo = Self::override_to_wire(ctx, &o);
        Ok(w::GetRotationOverrideResult {
            rotation_override_id: wo.rotation_override_id,
            rotation_arn: Some(Self::rotation_arn(ctx, r.id)),
            new_contact_ids: wo.new_contact_ids,
            start_time: wo.start_time,
            end_time: wo.end_time,
            create_time: wo.create_time,
        })
    }

    pub(crate) async fn op_delete_rotation_override(
        &self,
        ctx: &RequestContext,
        input: w::DeleteRotationOverrideRequest,
    ) -> Result<w::DeleteRotationOverrideResult, ApiError> {
        let override_id = req(input.rotation_override_id, "RotationOverrideId")?;
        let rotation = req(input.rotation_id, "RotationId")?;
        self.app
            .delete_override(&ctx.caller(), &rotation, &override_id)
            .await?;
        Ok(w::DeleteRotationOverrideResult::default())
    }

    pub(crate) async fn op_list_rotation_overrides(
        &self,
        ctx: &RequestContext,
        input: w::ListRotationOverridesRequest,
    ) -> Result<w::ListRotationOverridesResult, ApiError> {
        let arn = req(input.rotation_id, "RotationId")?;
        let r = self.load_rotation(ctx, &arn).await?;
        let from = req(instant(input.start_time, "StartTime")?, "StartTime")?;
        let to = req(instant(input.end_time, "EndTime")?, "EndTime")?;
        let fingerprint = format!("overrides|{}|{}|{}", r.id, ms(from), ms(to));
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| field("NextToken", m))?;
        let limit = page_size(&self.app.limits, input.max_results);
        let rows = self
            .app
            .store
            .list_overrides(
                ctx.account.as_str(),
                r.id,
                ms(from),
                ms(to),
                &after,
                limit + 1,
            )
            .await
            .map_err(store_error)?;
        let (rows, next_token) = tokens::page(rows, limit, &fingerprint, |o| After::Created {
            ms: o.start_ms,
            id: o.id,
        });
        Ok(w::ListRotationOverridesResult {
            rotation_overrides: Some(
                rows.iter()
                    .map(|o| Self::override_to_wire(ctx, o))
                    .collect(),
            ),
            next_token,
        })
    }

    pub(crate) async fn op_list_rotation_shifts(
        &self,
        ctx: &RequestContext,
        input: w::ListRotationShiftsRequest,
    ) -> Result<w::ListRotationShiftsResult, ApiError> {
        let arn = req(input.rotation_id, "RotationId")?;
        let r = self.load_rotation(ctx, &arn).await?;
        let spec = self.app.spec_of(&ctx.caller(), &r)?;
        let overrides = self.app.overrides_of(&ctx.caller(), r.id).await?;
        let from = instant(input.start_time, "StartTime")?.unwrap_or_else(|| self.app.clock.now());
        let to = req(instant(input.end_time, "EndTime")?, "EndTime")?;
        if to <= from {
            return Err(field("EndTime", "must be after StartTime"));
        }
        let all = rotation::shifts(&spec, &overrides, from, to);
        let fingerprint = format!("shifts|{}|{}|{}", r.id, ms(from), ms(to));
        let (shifts, next_token) = page_of_shifts(
            all,
            &fingerprint,
            input.next_token.as_deref(),
            page_size(&self.app.limits, input.max_results),
        )?;
        Ok(w::ListRotationShiftsResult {
            rotation_shifts: Some(shifts),
            next_token,
        })
    }

    pub(crate) async fn op_list_preview_rotation_shifts(
        &self,
        _ctx: &RequestContext,
        input: w::ListPreviewRotationShiftsRequest,
    ) -> Result<w::ListPreviewRotationShiftsResult, ApiError> {
        let now = self.app.clock.now();
        let rotation_start =
            instant(input.rotation_start_time, "RotationStartTime")?.unwrap_or(now);
        let from = instant(input.start_time, "StartTime")?.unwrap_or(rotation_start);
        let to = req(instant(input.end_time, "EndTime")?, "EndTime")?;
        if to <= from {
            return Err(field("EndTime", "must be after StartTime"));
        }
        let tz_name = req(input.time_zone_id.clone(), "TimeZoneId")?;
        let spec = RotationSpec {
            start: rotation_start,
            time_zone: time_zone(&tz_name, "TimeZoneId")?,
            members: req(input.members.clone(), "Members")?,
            recurrence: recurrence_from_wire(req(input.recurrence.as_ref(), "Recurrence")?)?,
        };
        let mut overrides = Vec::new();
        for (i, o) in input.overrides.iter().flatten().enumerate() {
            let path = format!("Overrides[{i}]");
            let start = req(
                instant(o.start_time, &format!("{path}.StartTime"))?,
                &format!("{path}.StartTime"),
            )?;
            let end = req(
                instant(o.end_time, &format!("{path}.EndTime"))?,
                &format!("{path}.EndTime"),
            )?;
            if end <= start {
                return Err(field(format!("{path}.EndTime"), "must be after StartTime"));
            }
            overrides.push(OverrideSpec {
                id: i.to_string(),
                members: o.new_members.clone().unwrap_or_default(),
                start,
                end,
                // Later entries win where previews overlap, as later-created overrides do.
                created: Timestamp::from_second(i as i64).unwrap_or(Timestamp::UNIX_EPOCH),
            });
        }
        let all = rotation::shifts(&spec, &overrides, from, to);
        let fingerprint = format!("preview|{}|{}|{}", ms(rotation_start), ms(from), ms(to));
        let (shifts, next_token) = page_of_shifts(
            all,
            &fingerprint,
            input.next_token.as_deref(),
            page_size(&self.app.limits, input.max_results),
        )?;
        Ok(w::ListPreviewRotationShiftsResult {
            rotation_shifts: Some(shifts),
            next_token,
        })
    }
}
