//! Reading GoAlert from its PostgreSQL database (a read-only role is enough), for teams whose
//! GoAlert API keys are hard to get. The tables are GoAlert's (`migrate/schema.sql`); the
//! database keeps no rendering of the schedules, so their shifts come from the reference
//! evaluator (`rendered_by: reference`).
//!
//! Rotations are anchored where GoAlert's engine says they are now (`rotation_state`: the
//! position on call and when that shift began), not at their creation: GoAlert advances a
//! rotation from its state, and participants added or removed since its start would
//! otherwise shift everyone's turns.

use super::{
    GaContactMethod, GaOverride, GaPolicy, GaRotation, GaRule, GaRule2, GaSchedule,
    GaScheduleTarget, GaStep, GaTarget, GaUser, Raw, reference,
};
use crate::progress::Progress;
use crate::{EQUIVALENCE_DAYS, ImportError, MapOptions};
use jiff::{SignedDuration, Timestamp};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};
use std::collections::HashMap;
use std::str::FromStr;

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn db_error(what: &str, e: sqlx::Error) -> ImportError {
    match &e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => {
            ImportError::Unreachable(format!("GoAlert's database: {e}"))
        }
        sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("28")) => {
            ImportError::Credentials(format!("GoAlert's database: {e}"))
        }
        sqlx::Error::Database(d)
            if d.code().as_deref() == Some("42P01") || d.code().as_deref() == Some("42703") =>
        {
            ImportError::Unexpected(format!(
                "{what}: not GoAlert's schema (or another version of it): {e}"
            ))
        }
        _ => ImportError::Source(format!("{what}: {e}")),
    }
}

/// Reads everything from the database at `url` (`postgres://…`), rendering the schedules
/// with the reference evaluator from `now` to the horizon.
pub async fn fetch(
    url: &str,
    now: Timestamp,
    options: &MapOptions,
    progress: &dyn Progress,
) -> Result<Raw, ImportError> {
    let mut opts = PgConnectOptions::from_str(url)
        .map_err(|e| ImportError::Input(format!("GOALERT_DB_URL: {e}")))?;
    // The password may also come from PGPASSWORD, as for psql.
    let has_password = reqwest::Url::parse(url).is_ok_and(|u| u.password().is_some());
    if let (false, Ok(pw)) = (has_password, std::env::var("PGPASSWORD")) {
        opts = opts.password(&pw);
    }
    let host = opts.get_host().to_owned();
    let database = opts.get_database().unwrap_or("goalert").to_owned();
    let mut db = opts
        .connect()
        .await
        .map_err(|e| db_error("connecting", e))?;
    // A read-only snapshot: everything from one consistent moment.
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut db)
        .await
        .map_err(|e| db_error("BEGIN", e))?;
    let rows = |sql: &'static str| sqlx::query(sql);
    let q = async |sql: &'static str, what: &str, db: &mut sqlx::PgConnection| {
        rows(sql).fetch_all(db).await.map_err(|e| db_error(what, e))
    };

    let mut users: Vec<GaUser> = Vec::new();
    for r in q(
        "SELECT id::text AS id, name, email FROM users ORDER BY name, id",
        "users",
        &mut db,
    )
    .await?
    {
        users.push(GaUser {
            id: r.try_get("id").map_err(|e| db_error("users", e))?,
            name: r.try_get("name").map_err(|e| db_error("users", e))?,
            email: r.try_get("email").map_err(|e| db_error("users", e))?,
            contact_methods: vec![],
            notification_rules: vec![],
        });
    }
    let by_user: HashMap<String, usize> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id.clone(), i))
        .collect();
    for r in q(
        "SELECT id::text AS id, user_id::text AS user_id, name, type::text AS type, value, dest::text AS dest, disabled, pending \
         FROM user_contact_methods ORDER BY user_id, name, id",
        "user_contact_methods",
        &mut db,
    )
    .await?
    {
        let user: String = r.try_get("user_id").map_err(|e| db_error("user_contact_methods", e))?;
        let mut kind: String = r.try_get("type").map_err(|e| db_error("user_contact_methods", e))?;
        let mut value: String = r.try_get("value").map_err(|e| db_error("user_contact_methods", e))?;
        if kind == "DEST" {
            // Newer rows keep the destination as {"Type": "builtin-twilio-sms", "Args": {...}}.
            let dest: serde_json::Value = serde_json::from_str(&r.try_get::<String, _>("dest").unwrap_or_default()).unwrap_or_default();
            let args = &dest["Args"];
            (kind, value) = match dest["Type"].as_str().unwrap_or_default() {
                "builtin-twilio-sms" => ("SMS".into(), args["phone_number"].as_str().unwrap_or_default().into()),
                "builtin-twilio-voice" => ("VOICE".into(), args["phone_number"].as_str().unwrap_or_default().into()),
                "builtin-smtp-email" => ("EMAIL".into(), args["email_address"].as_str().unwrap_or_default().into()),
                other => (other.to_owned(), value),
            };
        }
        if let Some(i) = by_user.get(&user) {
            users[*i].contact_methods.push(GaContactMethod {
                id: r.try_get("id").map_err(|e| db_error("user_contact_methods", e))?,
                name: r.try_get("name").map_err(|e| db_error("user_contact_methods", e))?,
                kind: Some(kind),
                value,
                disabled: r.try_get("disabled").map_err(|e| db_error("user_contact_methods", e))?,
                pending: r.try_get("pending").map_err(|e| db_error("user_contact_methods", e))?,
            });
        }
    }
    for r in q(
        "SELECT user_id::text AS user_id, contact_method_id::text AS cm, delay_minutes FROM user_notification_rules ORDER BY user_id, delay_minutes, id",
        "user_notification_rules",
        &mut db,
    )
    .await?
    {
        let user: String = r.try_get("user_id").map_err(|e| db_error("user_notification_rules", e))?;
        let delay: i32 = r.try_get("delay_minutes").map_err(|e| db_error("user_notification_rules", e))?;
        if let Some(i) = by_user.get(&user) {
            users[*i].notification_rules.push(GaRule {
                delay_minutes: u32::try_from(delay).unwrap_or(0),
                contact_method_id: r.try_get("cm").map_err(|e| db_error("user_notification_rules", e))?,
            });
        }
    }
    progress.step("users", users.len(), Some(users.len()));

    // Rotations, anchored at their current state.
    let mut rotations: Vec<GaRotation> = Vec::new();
    for r in q(
        "SELECT r.id::text AS id, r.name, r.type::text AS type, r.shift_length, r.time_zone, \
                (extract(epoch FROM r.start_time) * 1000)::bigint AS start_ms, \
                s.position AS position, (extract(epoch FROM s.shift_start) * 1000)::bigint AS shift_ms \
         FROM rotations r LEFT JOIN rotation_state s ON s.rotation_id = r.id ORDER BY r.name, r.id",
        "rotations",
        &mut db,
    )
    .await?
    {
        let position: Option<i32> = r.try_get("position").map_err(|e| db_error("rotations", e))?;
        let shift_ms: Option<i64> = r.try_get("shift_ms").map_err(|e| db_error("rotations", e))?;
        let start_ms: i64 = r.try_get("start_ms").map_err(|e| db_error("rotations", e))?;
        let id: String = r.try_get("id").map_err(|e| db_error("rotations", e))?;
        let mut rotation = GaRotation {
            id: id.clone(),
            name: r.try_get("name").map_err(|e| db_error("rotations", e))?,
            start: ts(shift_ms.unwrap_or(start_ms)),
            time_zone: r.try_get("time_zone").map_err(|e| db_error("rotations", e))?,
            kind: r.try_get("type").map_err(|e| db_error("rotations", e))?,
            shift_length: r.try_get("shift_length").map_err(|e| db_error("rotations", e))?,
            user_ids: vec![],
        };
        // Participants in position order, the one on call now first.
        let participants = sqlx::query("SELECT user_id::text AS user_id FROM rotation_participants WHERE rotation_id = $1::uuid ORDER BY position")
            .bind(&id)
            .fetch_all(&mut db)
            .await
            .map_err(|e| db_error("rotation_participants", e))?;
        let mut ids: Vec<String> = participants.iter().filter_map(|p| p.try_get("user_id").ok()).collect();
        if let Some(p) = position.and_then(|p| usize::try_from(p).ok()).filter(|p| *p < ids.len()) {
            ids.rotate_left(p);
        }
        rotation.user_ids = ids;
        rotations.push(rotation);
    }
    progress.step("rotations", rotations.len(), Some(rotations.len()));

    let mut schedules: Vec<GaSchedule> = Vec::new();
    for r in q(
        "SELECT id::text AS id, name, time_zone FROM schedules ORDER BY name, id",
        "schedules",
        &mut db,
    )
    .await?
    {
        schedules.push(GaSchedule {
            id: r.try_get("id").map_err(|e| db_error("schedules", e))?,
            name: r.try_get("name").map_err(|e| db_error("schedules", e))?,
            time_zone: r
                .try_get("time_zone")
                .map_err(|e| db_error("schedules", e))?,
            targets: vec![],
            shifts: vec![],
        });
    }
    for r in q(
        "SELECT schedule_id::text AS schedule_id, to_char(start_time, 'HH24:MI') AS start_at, to_char(end_time, 'HH24:MI') AS end_at, \
                sunday, monday, tuesday, wednesday, thursday, friday, saturday, \
                tgt_user_id::text AS tgt_user, tgt_rotation_id::text AS tgt_rotation \
         FROM schedule_rules ORDER BY schedule_id, created_at, id",
        "schedule_rules",
        &mut db,
    )
    .await?
    {
        let schedule: String = r.try_get("schedule_id").map_err(|e| db_error("schedule_rules", e))?;
        let user: Option<String> = r.try_get("tgt_user").map_err(|e| db_error("schedule_rules", e))?;
        let rotation: Option<String> = r.try_get("tgt_rotation").map_err(|e| db_error("schedule_rules", e))?;
        let target = match (user, rotation) {
            (Some(u), _) => GaTarget { id: u, kind: "user".into() },
            (None, Some(r)) => GaTarget { id: r, kind: "rotation".into() },
            (None, None) => continue,
        };
        let mut days = Vec::with_capacity(7);
        for d in ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"] {
            days.push(r.try_get::<bool, _>(d).map_err(|e| db_error("schedule_rules", e))?);
        }
        let rule = GaRule2 {
            start: r.try_get("start_at").map_err(|e| db_error("schedule_rules", e))?,
            end: r.try_get("end_at").map_err(|e| db_error("schedule_rules", e))?,
            weekday_filter: days,
        };
        if let Some(s) = schedules.iter_mut().find(|s| s.id == schedule) {
            match s.targets.iter_mut().find(|t| t.target == target) {
                Some(t) => t.rules.push(rule),
                None => s.targets.push(GaScheduleTarget { target, rules: vec![rule] }),
            }
        }
    }
    let mut overrides: Vec<GaOverride> = Vec::new();
    for r in q(
        "SELECT id::text AS id, coalesce(add_user_id::text, '') AS add_user, coalesce(remove_user_id::text, '') AS remove_user, \
                (extract(epoch FROM start_time) * 1000)::bigint AS start_ms, (extract(epoch FROM end_time) * 1000)::bigint AS end_ms, \
                tgt_schedule_id::text AS schedule_id \
         FROM user_overrides ORDER BY start_time, id",
        "user_overrides",
        &mut db,
    )
    .await?
    {
        overrides.push(GaOverride {
            id: r.try_get("id").map_err(|e| db_error("user_overrides", e))?,
            start: ts(r.try_get("start_ms").map_err(|e| db_error("user_overrides", e))?),
            end: ts(r.try_get("end_ms").map_err(|e| db_error("user_overrides", e))?),
            add_user_id: r.try_get("add_user").map_err(|e| db_error("user_overrides", e))?,
            remove_user_id: r.try_get("remove_user").map_err(|e| db_error("user_overrides", e))?,
            target: GaTarget {
                id: r.try_get("schedule_id").map_err(|e| db_error("user_overrides", e))?,
                kind: "schedule".into(),
            },
        });
    }
    let mut policies: Vec<GaPolicy> = Vec::new();
    for r in q(
        "SELECT id::text AS id, name, repeat FROM escalation_policies ORDER BY name, id",
        "escalation_policies",
        &mut db,
    )
    .await?
    {
        policies.push(GaPolicy {
            id: r
                .try_get("id")
                .map_err(|e| db_error("escalation_policies", e))?,
            name: r
                .try_get("name")
                .map_err(|e| db_error("escalation_policies", e))?,
            repeat: u32::try_from(
                r.try_get::<i32, _>("repeat")
                    .map_err(|e| db_error("escalation_policies", e))?,
            )
            .unwrap_or(0),
            steps: vec![],
        });
    }
    let mut steps: HashMap<String, (String, usize)> = HashMap::new();
    for r in q(
        "SELECT id::text AS id, escalation_policy_id::text AS policy, delay FROM escalation_policy_steps ORDER BY escalation_policy_id, step_number, id",
        "escalation_policy_steps",
        &mut db,
    )
    .await?
    {
        let policy: String = r.try_get("policy").map_err(|e| db_error("escalation_policy_steps", e))?;
        let id: String = r.try_get("id").map_err(|e| db_error("escalation_policy_steps", e))?;
        let delay: i32 = r.try_get("delay").map_err(|e| db_error("escalation_policy_steps", e))?;
        if let Some(p) = policies.iter_mut().find(|p| p.id == policy) {
            steps.insert(id, (policy, p.steps.len()));
            p.steps.push(GaStep { delay_minutes: u32::try_from(delay).unwrap_or(0), targets: vec![] });
        }
    }
    for r in q(
        "SELECT escalation_policy_step_id::text AS step, user_id::text AS u, schedule_id::text AS s, rotation_id::text AS r, channel_id::text AS c \
         FROM escalation_policy_actions ORDER BY escalation_policy_step_id, id",
        "escalation_policy_actions",
        &mut db,
    )
    .await?
    {
        let step: String = r.try_get("step").map_err(|e| db_error("escalation_policy_actions", e))?;
        let target = [("u", "user"), ("s", "schedule"), ("r", "rotation"), ("c", "notificationChannel")]
            .iter()
            .find_map(|(col, kind)| r.try_get::<Option<String>, _>(*col).ok().flatten().map(|id| GaTarget { id, kind: (*kind).into() }));
        if let (Some((policy, i)), Some(target)) = (steps.get(&step), target)
            && let Some(p) = policies.iter_mut().find(|p| &p.id == policy)
        {
            p.steps[*i].targets.push(target);
        }
    }
    let _ = sqlx::query("COMMIT").execute(&mut db).await;
    let _ = db.close().await;

    let now = now.round(jiff::Unit::Minute).unwrap_or(now);
    let to = now
        + SignedDuration::from_hours(
            24 * i64::from(options.horizon_days.min(183)).max(EQUIVALENCE_DAYS),
        );
    for s in schedules.iter_mut() {
        s.shifts = reference::render(s, &rotations, &overrides, now, to)
            .into_iter()
            .map(|i| super::GaShift {
                user_id: i.people[0].clone(),
                start: i.start,
                end: i.end,
            })
            .collect();
    }
    Ok(Raw {
        account: format!("{host}/{database}"),
        users,
        rotations,
        schedules,
        escalation_policies: policies,
        overrides,
        rendered_from: now,
        rendered_to: to,
        rendered_by: "reference".into(),
    })
}
