//! Rotations as the application reads them: a stored rotation as the shift maths' spec
//! ([`App::spec_of`]) and its overrides ([`App::overrides_of`]). The shift computation
//! itself is `muster_core::rotation`.

use crate::{App, AppError, Caller};
use jiff::Timestamp;
use muster_core::ArnOf;
use muster_core::rotation::{self, OverrideSpec, Recurrence, RotationSpec};
use muster_store::RotationRecord;
use uuid::Uuid;

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

impl App {
    /// A stored rotation as the spec its shifts are computed from (members as contact ARNs
    /// of `caller`'s account).
    pub fn spec_of(&self, caller: &Caller, r: &RotationRecord) -> Result<RotationSpec, AppError> {
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
            members: r
                .members
                .iter()
                .map(|a| caller.arn(ArnOf::Contact(a)))
                .collect(),
            recurrence,
        })
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
            .into_iter()
            .map(|o| OverrideSpec {
                id: o.id.to_string(),
                members: o
                    .members
                    .iter()
                    .map(|a| caller.arn(ArnOf::Contact(a)))
                    .collect(),
                start: ts(o.start_ms),
                end: ts(o.end_ms),
                created: ts(o.created_ms),
            })
            .collect())
    }
}
