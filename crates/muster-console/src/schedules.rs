//! On-call schedules: ONCALL_SCHEDULE contacts and their rotations, rotation overrides, the
//! calendar of the next four weeks (who is on call, and the coverage gaps) and calendar-feed
//! links.
//!
//! Changes go through [`Console::api`] after the model's validation, like an AWS API call;
//! the calendar comes from `muster_core::rotation::shifts`, the function behind
//! `ListRotationShifts` and the calendar feeds, so the three always agree.
//!
//! Paths: `/schedules` (the list), `/schedules/new`, `/schedules/contacts/{alias}` (a
//! schedule: its rotations, its calendar, edit, delete), `/schedules/rotations/new`,
//! `/schedules/rotations/{id}` (a rotation: settings, calendar, overrides, feeds),
//! `/schedules/rotations/{id}/edit`, `…/delete`, `…/overrides`, `…/overrides/{oid}/delete`,
//! `…/feeds`.

// Helpers return the page to answer with as their error (`Result<_, Response>`).
#![allow(clippy::result_large_err)]

use crate::auth::CurrentUser;
use crate::pages::{Layout, error_page, see_other};
use crate::plans::{
    FormErrors, all, app_message, arn_tail, caller, contact_arn, contacts_of_type, internal,
    layout, name_of, not_found, one, render, rotation_arn, urlencode,
};
use crate::{Console, SectionRouter};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form};
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use muster_app::contacts::NewContact;
use muster_app::rotations::{NewRotation, RotationChange};
use muster_app::{AppError, Caller};
use muster_core::rotation::{
    self, Cadence, CoverageWindow, DayOfWeek, HandOff, OverrideSpec, Recurrence, RotationSpec,
    ShiftKind,
};
use muster_core::{ContactType, Plan};
use muster_store::{After, ContactRecord, FeedTarget, RotationOverrideRecord, RotationRecord};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new()
        .route("/schedules", get(list))
        .route("/schedules/new", get(new_schedule).post(create_schedule))
        .route(
            "/schedules/contacts/{alias}",
            get(show_schedule).post(update_schedule),
        )
        .route("/schedules/contacts/{alias}/delete", post(delete_schedule))
        .route(
            "/schedules/rotations/new",
            get(new_rotation).post(create_rotation),
        )
        .route("/schedules/rotations/{id}", get(show_rotation))
        .route(
            "/schedules/rotations/{id}/edit",
            get(edit_rotation).post(update_rotation),
        )
        .route("/schedules/rotations/{id}/delete", post(delete_rotation))
        .route("/schedules/rotations/{id}/overrides", post(create_override))
        .route(
            "/schedules/rotations/{id}/overrides/{oid}/delete",
            post(delete_override),
        )
        .route("/schedules/rotations/{id}/feeds", post(create_feed))
}

/// Days the calendar shows.
const CALENDAR_DAYS: i64 = 28;

const DAYS: [(&str, &str, Weekday); 7] = [
    ("MON", "Monday", Weekday::Monday),
    ("TUE", "Tuesday", Weekday::Tuesday),
    ("WED", "Wednesday", Weekday::Wednesday),
    ("THU", "Thursday", Weekday::Thursday),
    ("FRI", "Friday", Weekday::Friday),
    ("SAT", "Saturday", Weekday::Saturday),
    ("SUN", "Sunday", Weekday::Sunday),
];

fn day_code(d: Weekday) -> &'static str {
    DAYS.iter()
        .find(|(_, _, x)| *x == d)
        .map(|(c, _, _)| *c)
        .unwrap_or("MON")
}

fn day_name(code: &str) -> &'static str {
    DAYS.iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, n, _)| *n)
        .unwrap_or("Monday")
}

// ---- reading rotations (muster_app::rotations, members by alias) -------------------------

/// The rotation's shift specification, members by alias.
fn spec_of(r: &RotationRecord) -> Option<RotationSpec> {
    muster_app::rotations::rotation_spec(r, str::to_owned).ok()
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

/// All overrides of a rotation, members by alias.
async fn overrides_of(
    console: &Console,
    rotation: Uuid,
) -> Result<Vec<RotationOverrideRecord>, muster_store::StoreError> {
    console
        .store
        .all_overrides(&console.account, rotation)
        .await
}

fn override_specs(os: &[RotationOverrideRecord]) -> Vec<OverrideSpec> {
    os.iter()
        .map(|o| muster_app::rotations::override_spec(o, str::to_owned))
        .collect()
}

async fn all_rotations(console: &Console) -> Result<Vec<RotationRecord>, muster_store::StoreError> {
    let mut out: Vec<RotationRecord> = Vec::new();
    let mut after = After::Start;
    loop {
        let page = console
            .store
            .list_rotations(&console.account, None, &after, 500)
            .await?;
        let done = page.len() < 500;
        if let Some(last) = page.last() {
            after = After::Created {
                ms: last.created_ms,
                id: last.id,
            };
        }
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

async fn load_rotation(console: &Console, id: &str) -> Result<RotationRecord, Response> {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Err(not_found("This rotation"));
    };
    match console.store.get_rotation(&console.account, uuid).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(not_found("This rotation")),
        Err(e) => Err(internal(e)),
    }
}

/// Display names of the account's contacts, by alias.
async fn names(console: &Console) -> Result<BTreeMap<String, String>, Response> {
    Ok(contacts_of_type(console, None)
        .await
        .map_err(internal)?
        .iter()
        .map(|c| (c.alias.clone(), name_of(c)))
        .collect())
}

fn who(names: &BTreeMap<String, String>, aliases: &[String]) -> String {
    if aliases.is_empty() {
        return "nobody".into();
    }
    aliases
        .iter()
        .map(|a| names.get(a).cloned().unwrap_or_else(|| a.clone()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn hhmm(h: u8, m: u8) -> String {
    format!("{h:02}:{m:02}")
}

/// One line describing a recurrence: "Daily at 09:00, shifts of 1 day, 1 on call".
fn describe(r: &Recurrence) -> (String, String, String) {
    let unit = |n: u32, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let (cadence, shift) = match &r.cadence {
        Cadence::Daily(v) => (
            format!(
                "Daily at {}",
                v.iter()
                    .map(|h| hhmm(h.hour, h.minute))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            if v.len() == 1 {
                unit(r.multiplier, "day", "days")
            } else {
                unit(r.multiplier, "hand-off period", "hand-off periods")
            },
        ),
        Cadence::Weekly(v) => (
            format!(
                "Weekly on {}",
                v.iter()
                    .map(|(d, h)| format!(
                        "{} at {}",
                        day_name(day_code(*d)),
                        hhmm(h.hour, h.minute)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            if v.len() == 1 {
                unit(r.multiplier, "week", "weeks")
            } else {
                unit(r.multiplier, "hand-off period", "hand-off periods")
            },
        ),
        Cadence::Monthly(v) => (
            format!(
                "Monthly on {}",
                v.iter()
                    .map(|(d, h)| format!("day {d} at {}", hhmm(h.hour, h.minute)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            if v.len() == 1 {
                unit(r.multiplier, "month", "months")
            } else {
                unit(r.multiplier, "hand-off period", "hand-off periods")
            },
        ),
    };
    let coverage = match &r.coverage {
        None => "24-hour coverage, every day".to_owned(),
        Some(map) if map.is_empty() => "No coverage".to_owned(),
        Some(map) => map
            .iter()
            .map(|(d, ws)| {
                format!(
                    "{} {}",
                    &day_name(day_code(d.0))[..3],
                    ws.iter()
                        .map(|c| if c.start == c.end {
                            "24 hours".to_owned()
                        } else {
                            format!(
                                "{}–{}",
                                hhmm(c.start.hour, c.start.minute),
                                hhmm(c.end.hour, c.end.minute)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    };
    (cadence, shift, coverage)
}

// ---- the calendar -----------------------------------------------------------------------

/// One line of a calendar day: a shift (or override) piece clipped to the day, or a gap.
pub(crate) struct CalEntry {
    pub from: String,
    pub to: String,
    pub who: String,
    /// The rotation's name (on a schedule's calendar, which merges several).
    pub rotation: Option<String>,
    /// "shift", "override" or "gap".
    pub kind: &'static str,
    pub replaces: Option<String>,
}

/// A shift piece: (start, end, rotation name, kind, members, replaced members).
type Piece = (
    Timestamp,
    Timestamp,
    String,
    ShiftKind,
    Vec<String>,
    Vec<String>,
);

pub(crate) struct CalDay {
    pub date: String,
    pub label: String,
    pub weekday: &'static str,
    pub entries: Vec<CalEntry>,
    pub has_gap: bool,
    pub today: bool,
}

/// The calendar from today (local midnight in `tz`) for [`CALENDAR_DAYS`] days: per day, who
/// is on call when (from `rotation::shifts`) and the gaps where nobody is.
fn calendar(
    now: Timestamp,
    tz: &TimeZone,
    rotations: &[(String, RotationSpec, Vec<OverrideSpec>)],
    names: &BTreeMap<String, String>,
    show_rotation: bool,
) -> Vec<CalDay> {
    let today = now.to_zoned_datetime(tz.clone()).date();
    let start_of = |d: Date| {
        d.to_zoned_datetime(tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX)
    };
    let mut days: Vec<Date> = vec![today];
    for _ in 1..=CALENDAR_DAYS {
        let next = days.last().and_then(|d| d.tomorrow().ok()).unwrap_or(today);
        days.push(next);
    }
    let from = start_of(today);
    let to = start_of(days[CALENDAR_DAYS as usize]);
    // (start, end, rotation name, kind, members, replaced)
    let mut pieces: Vec<Piece> = Vec::new();
    for (name, spec, overrides) in rotations {
        for s in rotation::shifts(spec, overrides, from, to) {
            pieces.push((
                s.start,
                s.end,
                name.clone(),
                s.kind,
                s.members,
                s.overridden_members,
            ));
        }
    }
    pieces.sort_by_key(|p| p.0);
    let local = |t: Timestamp| {
        let z = t.to_zoned_datetime(tz.clone());
        format!("{:02}:{:02}", z.time().hour(), z.time().minute())
    };
    let mut out = Vec::new();
    for d in 0..CALENDAR_DAYS as usize {
        let (ds, de) = (start_of(days[d]), start_of(days[d + 1]));
        let mut entries: Vec<(Timestamp, CalEntry)> = Vec::new();
        let mut cursor = ds;
        let mut has_gap = false;
        let mut gap = |a: Timestamp, b: Timestamp, entries: &mut Vec<(Timestamp, CalEntry)>| {
            // Gaps shorter than a minute are rounding, not gaps.
            if b.duration_since(a) >= SignedDuration::from_mins(1) {
                has_gap = true;
                entries.push((
                    a,
                    CalEntry {
                        from: local(a),
                        to: if b >= de { "24:00".into() } else { local(b) },
                        who: "No one on call".into(),
                        rotation: None,
                        kind: "gap",
                        replaces: None,
                    },
                ));
            }
        };
        for (s, e, rname, kind, members, replaced) in &pieces {
            if *e <= ds || *s >= de {
                continue;
            }
            let a = (*s).max(ds);
            let b = (*e).min(de);
            if a > cursor {
                gap(cursor, a, &mut entries);
            }
            cursor = cursor.max(b);
            entries.push((
                a,
                CalEntry {
                    from: local(a),
                    to: if b >= de { "24:00".into() } else { local(b) },
                    who: who(names, members),
                    rotation: show_rotation.then(|| rname.clone()),
                    kind: match kind {
                        ShiftKind::Regular => "shift",
                        ShiftKind::Overridden => "override",
                    },
                    replaces: (*kind == ShiftKind::Overridden).then(|| who(names, replaced)),
                },
            ));
        }
        if cursor < de {
            gap(cursor, de, &mut entries);
        }
        entries.sort_by_key(|(t, _)| *t);
        let date = days[d];
        out.push(CalDay {
            date: date.to_string(),
            label: date.strftime("%a %-d %b").to_string(),
            weekday: day_name(day_code(date.weekday())),
            entries: entries.into_iter().map(|(_, e)| e).collect(),
            has_gap,
            today: d == 0,
        });
    }
    out
}

// ---- the list ---------------------------------------------------------------------------

struct ScheduleRow {
    alias: String,
    name: String,
    rotations: Vec<String>,
}

struct RotationRow {
    id: String,
    name: String,
    cadence: String,
    time_zone: String,
    members: String,
}

#[derive(Template)]
#[template(path = "schedules_list.html")]
struct ListPage {
    layout: Layout,
    schedules: Vec<ScheduleRow>,
    rotations: Vec<RotationRow>,
    notice: Option<String>,
}

async fn list_page(console: &Console, user: &CurrentUser, notice: Option<String>) -> Response {
    let contacts = match contacts_of_type(console, None).await {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let names: BTreeMap<String, String> = contacts
        .iter()
        .map(|c| (c.alias.clone(), name_of(c)))
        .collect();
    let rotations = match all_rotations(console).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let rotation_names: BTreeMap<String, String> = rotations
        .iter()
        .map(|r| (r.id.to_string(), r.name.clone()))
        .collect();
    let schedules = contacts
        .iter()
        .filter(|c| c.contact_type == ContactType::OncallSchedule)
        .map(|c| ScheduleRow {
            alias: c.alias.clone(),
            name: c.display_name.clone().unwrap_or_default(),
            rotations: c
                .plan
                .rotation_ids
                .iter()
                .map(|arn| {
                    let id = arn_tail(arn);
                    rotation_names
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| id.to_owned())
                })
                .collect(),
        })
        .collect();
    let rotations = rotations
        .iter()
        .map(|r| RotationRow {
            id: r.id.to_string(),
            name: r.name.clone(),
            cadence: spec_of(r)
                .map(|s| {
                    let (c, shift, _) = describe(&s.recurrence);
                    format!("{c}; shifts of {shift}")
                })
                .unwrap_or_default(),
            time_zone: r.time_zone.clone(),
            members: who(&names, &r.members),
        })
        .collect();
    render(
        StatusCode::OK,
        &ListPage {
            layout: layout("On-call schedules", "schedules", user),
            schedules,
            rotations,
            notice,
        },
    )
}

/// `GET /schedules[?notice…]`.
async fn list(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let notice = if let Some(a) = q.get("deleted_schedule") {
        Some(format!("The on-call schedule {a} was deleted."))
    } else {
        q.get("deleted_rotation")
            .map(|n| format!("The rotation {n} was deleted."))
    };
    list_page(&console, &user, notice).await
}

// ---- on-call schedules (ONCALL_SCHEDULE contacts) ---------------------------------------

struct RotationChoice {
    id: String,
    name: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "schedules_schedule.html")]
struct SchedulePage {
    layout: Layout,
    csrf_token: String,
    /// None while creating.
    editing: Option<String>,
    alias: String,
    display_name: String,
    rotations: Vec<RotationChoice>,
    errors: FormErrors,
    /// The schedule's calendar (when editing), in `zone`.
    days: Vec<CalDay>,
    zone: String,
    notice: Option<String>,
}

fn schedule_key(name: &str) -> Option<String> {
    match name {
        "Alias" | "ContactId" => Some("alias".into()),
        "DisplayName" => Some("display_name".into()),
        n if n.starts_with("Plan") => Some("rotations".into()),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn schedule_page(
    console: &Console,
    user: &CurrentUser,
    status: StatusCode,
    editing: Option<String>,
    alias: String,
    display_name: String,
    chosen: &[String],
    errors: FormErrors,
    notice: Option<String>,
) -> Response {
    let rotations = match all_rotations(console).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let names = match names(console).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let mut days = Vec::new();
    let mut zone = String::new();
    if editing.is_some() {
        let mut specs = Vec::new();
        for r in rotations
            .iter()
            .filter(|r| chosen.contains(&r.id.to_string()))
        {
            let Some(spec) = spec_of(r) else { continue };
            let os = match overrides_of(console, r.id).await {
                Ok(o) => o,
                Err(e) => return internal(e),
            };
            if zone.is_empty() {
                zone = r.time_zone.clone();
            }
            specs.push((r.name.clone(), spec, override_specs(&os)));
        }
        if let Some(tz) = specs.first().map(|(_, s, _)| s.time_zone.clone()) {
            days = calendar(console.clock.now(), &tz, &specs, &names, true);
        }
    }
    let title = match &editing {
        Some(a) => format!("On-call schedule {a}"),
        None => "Create on-call schedule".to_owned(),
    };
    render(
        status,
        &SchedulePage {
            layout: layout(&title, "schedules", user),
            csrf_token: user.csrf_token().to_owned(),
            editing,
            alias,
            display_name,
            rotations: rotations
                .iter()
                .map(|r| RotationChoice {
                    id: r.id.to_string(),
                    name: r.name.clone(),
                    checked: chosen.contains(&r.id.to_string()),
                })
                .collect(),
            errors,
            days,
            zone,
            notice,
        },
    )
}

/// `GET /schedules/new[?rotation=<id>]`.
async fn new_schedule(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    // `?rotation=<id>` (the link on a rotation's page) ticks that rotation.
    let chosen: Vec<String> = q.get("rotation").cloned().into_iter().collect();
    schedule_page(
        &console,
        &user,
        StatusCode::OK,
        None,
        String::new(),
        String::new(),
        &chosen,
        FormErrors::default(),
        None,
    )
    .await
}

fn schedule_plan(caller: &Caller, chosen: &[String]) -> Plan {
    Plan {
        stages: Vec::new(),
        rotation_ids: chosen
            .iter()
            .filter_map(|id| Uuid::parse_str(id).ok())
            .map(|id| rotation_arn(caller, id))
            .collect(),
    }
}

/// `POST /schedules/new`.
async fn create_schedule(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let alias = one(&fields, "alias").trim().to_owned();
    let display_name = one(&fields, "display_name").trim().to_owned();
    let chosen: Vec<String> = all(&fields, "rotation")
        .into_iter()
        .map(str::to_owned)
        .collect();
    let caller = match caller(&console, &user) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut errors = FormErrors::default();
    if alias.is_empty() {
        errors.add("alias", "Enter a unique alias.");
    }
    if chosen.is_empty() {
        errors.add("rotations", "Choose at least one rotation.");
    }
    if errors.is_empty() {
        let display = (!display_name.is_empty()).then(|| display_name.clone());
        let plan = schedule_plan(&caller, &chosen);
        let result = match crate::checks::contact(&alias, display.as_deref())
            .and_then(|a| crate::checks::plan(&plan).map(|()| a))
        {
            Err(e) => Err(e),
            Ok(alias) => {
                let new = NewContact {
                    alias,
                    display_name: display,
                    contact_type: ContactType::OncallSchedule,
                    plan,
                    tags: Vec::new(),
                };
                console
                    .app
                    .create_contact(&caller, new, None)
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => return see_other(&format!("/schedules/contacts/{}", urlencode(&alias))),
            Err(AppError::Conflict { .. }) => errors.add(
                "alias",
                format!("A contact with the alias {alias} exists already; choose another alias."),
            ),
            Err(e) => errors = FormErrors::from_app(&e, schedule_key),
        }
    }
    schedule_page(
        &console,
        &user,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        alias,
        display_name,
        &chosen,
        errors,
        None,
    )
    .await
}

async fn load_schedule(console: &Console, alias: &str) -> Result<ContactRecord, Response> {
    match console.store.get_contact(&console.account, alias).await {
        Ok(Some(c)) if c.contact_type == ContactType::OncallSchedule => Ok(c),
        Ok(_) => Err(not_found(&format!("The on-call schedule {alias}"))),
        Err(e) => Err(internal(e)),
    }
}

/// `GET /schedules/contacts/{alias}`: the schedule, its calendar and its form.
async fn show_schedule(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Path(alias): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let c = match load_schedule(&console, &alias).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let chosen: Vec<String> = c
        .plan
        .rotation_ids
        .iter()
        .map(|a| arn_tail(a).to_owned())
        .collect();
    let notice = q
        .contains_key("saved")
        .then(|| format!("The on-call schedule {alias} was saved."));
    schedule_page(
        &console,
        &user,
        StatusCode::OK,
        Some(c.alias.clone()),
        c.alias.clone(),
        c.display_name.clone().unwrap_or_default(),
        &chosen,
        FormErrors::default(),
        notice,
    )
    .await
}

/// `POST /schedules/contacts/{alias}`: saves the name and rotations.
async fn update_schedule(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Path(alias): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = load_schedule(&console, &alias).await {
        return r;
    }
    let display_name = one(&fields, "display_name").trim().to_owned();
    let chosen: Vec<String> = all(&fields, "rotation")
        .into_iter()
        .map(str::to_owned)
        .collect();
    let caller = match caller(&console, &user) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut errors = FormErrors::default();
    if chosen.is_empty() {
        errors.add("rotations", "Choose at least one rotation.");
    } else {
        let plan = schedule_plan(&caller, &chosen);
        let mut issues: Vec<_> = crate::checks::display_name(&display_name)
            .into_iter()
            .collect();
        if let Err(AppError::Invalid(more)) = crate::checks::plan(&plan) {
            issues.extend(more);
        }
        let result = if issues.is_empty() {
            console
                .app
                .update_contact(
                    &caller,
                    &contact_arn(&caller, &alias),
                    Some(display_name.clone()),
                    Some(plan),
                )
                .await
        } else {
            Err(AppError::Invalid(issues))
        };
        match result {
            Ok(()) => {
                return see_other(&format!(
                    "/schedules/contacts/{}?saved=1",
                    urlencode(&alias)
                ));
            }
            Err(e) => errors = FormErrors::from_app(&e, schedule_key),
        }
    }
    schedule_page(
        &console,
        &user,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(alias.clone()),
        alias,
        display_name,
        &chosen,
        errors,
        None,
    )
    .await
}

/// `POST /schedules/contacts/{alias}/delete`.
async fn delete_schedule(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Path(alias): Path<String>,
) -> Response {
    if let Err(r) = load_schedule(&console, &alias).await {
        return r;
    }
    let caller = match caller(&console, &user) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match console
        .app
        .delete_contact(&caller, &contact_arn(&caller, &alias))
        .await
    {
        Ok(()) => see_other(&format!(
            "/schedules?deleted_schedule={}",
            urlencode(&alias)
        )),
        Err(e) => error_page(
            StatusCode::CONFLICT,
            "The on-call schedule was not deleted",
            &app_message(&e),
        ),
    }
}

// ---- rotations: the form ----------------------------------------------------------------

struct MemberRow {
    alias: String,
    name: String,
    position: String,
}

struct DayChoice {
    code: &'static str,
    name: &'static str,
    checked: bool,
}

/// The rotation form's values, as typed.
struct RotationForm {
    name: String,
    start_date: String,
    time_zone: String,
    recurrence: String,
    weekly_day: String,
    monthly_day: String,
    handoff: String,
    multiplier: String,
    coverage: String,
    days: Vec<String>,
    cov_start: String,
    cov_end: String,
    on_call: String,
    /// Member positions by alias ("" = not a member).
    positions: BTreeMap<String, String>,
    /// The rotation has settings the form cannot show (several hand-offs, or coverage
    /// windows that differ by day), which saving the form replaces.
    simplified: bool,
}

#[derive(Template)]
#[template(path = "schedules_rotation_form.html")]
struct RotationFormPage {
    layout: Layout,
    csrf_token: String,
    action: String,
    editing: Option<String>,
    f: RotationForm,
    members: Vec<MemberRow>,
    day_choices: Vec<DayChoice>,
    weekdays: Vec<(&'static str, &'static str)>,
    zones: Vec<String>,
    errors: FormErrors,
}

impl RotationForm {
    fn parse(fields: &[(String, String)]) -> RotationForm {
        let positions = fields
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("pos_")?.to_owned(), v.trim().to_owned())))
            .collect();
        RotationForm {
            name: one(fields, "name").trim().to_owned(),
            start_date: one(fields, "start_date").trim().to_owned(),
            time_zone: one(fields, "time_zone").trim().to_owned(),
            recurrence: one(fields, "recurrence"),
            weekly_day: one(fields, "weekly_day"),
            monthly_day: one(fields, "monthly_day").trim().to_owned(),
            handoff: one(fields, "handoff").trim().to_owned(),
            multiplier: one(fields, "multiplier").trim().to_owned(),
            coverage: one(fields, "coverage"),
            days: all(fields, "days").into_iter().map(str::to_owned).collect(),
            cov_start: one(fields, "cov_start").trim().to_owned(),
            cov_end: one(fields, "cov_end").trim().to_owned(),
            on_call: one(fields, "on_call").trim().to_owned(),
            positions,
            simplified: false,
        }
    }

    fn blank(now: Timestamp) -> RotationForm {
        RotationForm {
            name: String::new(),
            start_date: now.to_zoned_datetime(TimeZone::UTC).date().to_string(),
            time_zone: "UTC".into(),
            recurrence: "daily".into(),
            weekly_day: "MON".into(),
            monthly_day: "1".into(),
            handoff: "09:00".into(),
            multiplier: "1".into(),
            coverage: "all".into(),
            days: vec![],
            cov_start: "09:00".into(),
            cov_end: "17:00".into(),
            on_call: "1".into(),
            positions: BTreeMap::new(),
            simplified: false,
        }
    }

    /// The form of an existing rotation (its first hand-off and first coverage window).
    fn of(r: &RotationRecord) -> RotationForm {
        let mut f = RotationForm::blank(ts(r.start_ms));
        f.name = r.name.clone();
        f.time_zone = r.time_zone.clone();
        if let Some(spec) = spec_of(r) {
            let start = spec.start.to_zoned_datetime(spec.time_zone.clone());
            f.start_date = start.date().to_string();
            let rec = &spec.recurrence;
            f.multiplier = rec.multiplier.to_string();
            f.on_call = rec.number_of_on_calls.to_string();
            match &rec.cadence {
                Cadence::Daily(v) => {
                    f.recurrence = "daily".into();
                    if let Some(h) = v.first() {
                        f.handoff = hhmm(h.hour, h.minute);
                    }
                }
                Cadence::Weekly(v) => {
                    f.recurrence = "weekly".into();
                    if let Some((d, h)) = v.first() {
                        f.weekly_day = day_code(*d).into();
                        f.handoff = hhmm(h.hour, h.minute);
                    }
                }
                Cadence::Monthly(v) => {
                    f.recurrence = "monthly".into();
                    if let Some((d, h)) = v.first() {
                        f.monthly_day = d.to_string();
                        f.handoff = hhmm(h.hour, h.minute);
                    }
                }
            }
            f.simplified = match &rec.cadence {
                Cadence::Daily(v) => v.len() > 1,
                Cadence::Weekly(v) => v.len() > 1,
                Cadence::Monthly(v) => v.len() > 1,
            };
            if let Some(map) = &rec.coverage {
                let first = map.values().next();
                f.simplified |= map.values().any(|ws| ws.len() != 1 || Some(ws) != first);
                f.coverage = "hours".into();
                f.days = map.keys().map(|d| day_code(d.0).to_owned()).collect();
                if let Some(w) = map.values().flat_map(|v| v.first()).next() {
                    f.cov_start = hhmm(w.start.hour, w.start.minute);
                    f.cov_end = hhmm(w.end.hour, w.end.minute);
                }
            }
        }
        for (i, m) in r.members.iter().enumerate() {
            f.positions.insert(m.clone(), (i + 1).to_string());
        }
        f
    }
}

/// "09:30" → (9, 30).
fn parse_hhmm(s: &str) -> Option<(i32, i32)> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.get(..2).unwrap_or(m).parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some((h, m))
}

fn rotation_key(name: &str) -> Option<String> {
    let key = match name {
        "Name" => "name",
        "TimeZoneId" => "time_zone",
        "StartTime" => "start_date",
        "Recurrence.NumberOfOnCalls" => "on_call",
        "Recurrence.RecurrenceMultiplier" => "multiplier",
        n if n.starts_with("Recurrence.ShiftCoverages") => "coverage",
        n if n.starts_with("Recurrence.MonthlySettings") && n.ends_with("DayOfMonth") => {
            "monthly_day"
        }
        n if n.starts_with("Recurrence.DailySettings")
            || n.starts_with("Recurrence.WeeklySettings")
            || n.starts_with("Recurrence.MonthlySettings") =>
        {
            "handoff"
        }
        n if n.starts_with("Recurrence") => "recurrence",
        n if n.starts_with("ContactIds") || n == "RotationId" => "members",
        _ => return None,
    };
    Some(key.to_owned())
}

/// What the form asks the application for: (contact ARNs, start, recurrence), or field
/// errors: for what cannot even be put into a request (dates and times that do not parse),
/// and the model's limits (worded as the API words them, through [`rotation_key`]).
fn rotation_request(
    caller: &Caller,
    f: &RotationForm,
    errors: &mut FormErrors,
) -> (Vec<String>, Option<Timestamp>, Option<Recurrence>) {
    if f.name.is_empty() {
        errors.add("name", "Enter a name for the rotation.");
    } else if let Some(issue) = crate::checks::rotation_name(&f.name) {
        add_issue(errors, &issue);
    }
    let tz = rotation::time_zone(&f.time_zone);
    if tz.is_none() {
        errors.add(
            "time_zone",
            "Enter an IANA time zone name, for example Europe/Berlin or America/New_York.",
        );
    } else if let Some(issue) = crate::checks::time_zone_id(&f.time_zone) {
        add_issue(errors, &issue);
    }
    let handoff = parse_hhmm(&f.handoff);
    if handoff.is_none() {
        errors.add(
            "handoff",
            "Enter the hand-off time as HH:MM, for example 09:00.",
        );
    }
    let date = f.start_date.parse::<Date>().ok();
    if date.is_none() {
        errors.add("start_date", "Enter the start date as YYYY-MM-DD.");
    }
    let start = match (date, handoff, &tz) {
        (Some(d), Some((h, m)), Some(tz)) => local_instant(d.at(h as i8, m as i8, 0, 0), tz),
        _ => None,
    };
    let number = |s: &str, key: &str, what: &str, errors: &mut FormErrors| -> Option<i32> {
        match s.parse::<i32>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.add(key, format!("Enter {what} as a whole number."));
                None
            }
        }
    };
    let mut ok = true;
    let mut checked = |issue: Result<u32, muster_app::FieldIssue>, errors: &mut FormErrors| {
        issue
            .map_err(|i| {
                add_issue(errors, &i);
                ok = false;
            })
            .ok()
    };
    let multiplier = number(&f.multiplier, "multiplier", "the shift length", errors)
        .and_then(|n| checked(crate::checks::multiplier(n), errors));
    let on_call = number(&f.on_call, "on_call", "the number on call", errors)
        .and_then(|n| checked(crate::checks::on_calls(n), errors));
    let (h, m) = handoff.unwrap_or((0, 0));
    let at = HandOff::new(h as u8, m as u8);
    let cadence = match f.recurrence.as_str() {
        "weekly" => {
            let Some(day) = DAYS
                .iter()
                .find(|(c, _, _)| *c == f.weekly_day)
                .map(|(_, _, d)| *d)
            else {
                errors.add("weekly_day", "Choose the day of the weekly hand-off.");
                return (vec![], start, None);
            };
            Some(Cadence::Weekly(vec![(day, at)]))
        }
        "monthly" => number(
            &f.monthly_day,
            "monthly_day",
            "the day of the month",
            errors,
        )
        .and_then(|d| checked(crate::checks::day_of_month(d), errors))
        .map(|d| Cadence::Monthly(vec![(d as u8, at)])),
        "daily" => Some(Cadence::Daily(vec![at])),
        _ => {
            errors.add("recurrence", "Choose Daily, Weekly or Monthly.");
            None
        }
    };
    let mut coverage = None;
    if f.coverage == "hours" {
        let days: Vec<Weekday> = f
            .days
            .iter()
            .filter_map(|d| DAYS.iter().find(|(c, _, _)| c == d).map(|(_, _, w)| *w))
            .collect();
        if days.is_empty() {
            errors.add(
                "days",
                "Choose at least one active day, or 24-hour coverage.",
            );
        }
        let (s, e) = (parse_hhmm(&f.cov_start), parse_hhmm(&f.cov_end));
        if s.is_none() || e.is_none() {
            errors.add(
                "coverage",
                "Enter the active hours as HH:MM, for example 09:00 and 17:00.",
            );
        }
        let ((sh, sm), (eh, em)) = (s.unwrap_or((0, 0)), e.unwrap_or((0, 0)));
        let window = CoverageWindow::new(
            HandOff::new(sh as u8, sm as u8),
            HandOff::new(eh as u8, em as u8),
        );
        coverage = Some(
            days.into_iter()
                .map(|d| (DayOfWeek(d), vec![window]))
                .collect(),
        );
    }
    let mut members: Vec<(i64, String)> = Vec::new();
    for (alias, pos) in &f.positions {
        if pos.is_empty() {
            continue;
        }
        match pos.parse::<i64>() {
            Ok(p) if p >= 1 => members.push((p, alias.clone())),
            _ => errors.add(
                &format!("pos_{alias}"),
                "Enter a position from 1 up, or leave it empty.",
            ),
        }
    }
    members.sort();
    if members.is_empty() && !errors.has("members") {
        errors.add(
            "members",
            "Give at least one contact a position: the members take turns in that order.",
        );
    }
    let arns: Vec<String> = members
        .iter()
        .map(|(_, a)| contact_arn(caller, a))
        .collect();
    if let Some(issue) = crate::checks::rotation_members(arns.len()) {
        add_issue(errors, &issue);
    }
    let recurrence = match (cadence, on_call, multiplier, ok) {
        (Some(cadence), Some(number_of_on_calls), Some(multiplier), true) => Some(Recurrence {
            cadence,
            number_of_on_calls,
            multiplier,
            coverage,
        }),
        _ => None,
    };
    (arns, start, recurrence)
}

/// A model limit's issue, on the form field its member belongs to.
fn add_issue(errors: &mut FormErrors, issue: &muster_app::FieldIssue) {
    let e = AppError::Invalid(vec![issue.clone()]);
    let more = FormErrors::from_app(&e, rotation_key);
    for (k, m) in more.fields {
        errors.add(&k, m);
    }
    errors.general.extend(more.general);
}

async fn rotation_form_page(
    console: &Console,
    user: &CurrentUser,
    status: StatusCode,
    editing: Option<String>,
    f: RotationForm,
    errors: FormErrors,
) -> Response {
    let personal = match contacts_of_type(console, Some(ContactType::Personal)).await {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let mut members: Vec<MemberRow> = personal
        .iter()
        .map(|c| MemberRow {
            alias: c.alias.clone(),
            name: name_of(c),
            position: f.positions.get(&c.alias).cloned().unwrap_or_default(),
        })
        .collect();
    // Members first, in their order; then everyone else by alias.
    members.sort_by_key(|m| {
        (
            m.position.parse::<i64>().unwrap_or(i64::MAX),
            m.alias.clone(),
        )
    });
    let day_choices = DAYS
        .iter()
        .map(|(code, name, _)| DayChoice {
            code,
            name,
            checked: f.days.iter().any(|d| d == code),
        })
        .collect();
    let zones = {
        let db = jiff::tz::TimeZoneDatabase::bundled();
        let mut z: Vec<String> = db.available().map(|n| n.as_str().to_owned()).collect();
        z.sort();
        z
    };
    let (title, action) = match &editing {
        Some(id) => (
            format!("Edit rotation {}", f.name),
            format!("/schedules/rotations/{id}/edit"),
        ),
        None => (
            "Create rotation".to_owned(),
            "/schedules/rotations/new".to_owned(),
        ),
    };
    render(
        status,
        &RotationFormPage {
            layout: layout(&title, "schedules", user),
            csrf_token: user.csrf_token().to_owned(),
            action,
            editing,
            f,
            members,
            day_choices,
            weekdays: DAYS.iter().map(|(c, n, _)| (*c, *n)).collect(),
            zones,
            errors,
        },
    )
}

/// `GET /schedules/rotations/new`.
async fn new_rotation(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
) -> Response {
    let f = RotationForm::blank(console.clock.now());
    rotation_form_page(
        &console,
        &user,
        StatusCode::OK,
        None,
        f,
        FormErrors::default(),
    )
    .await
}

/// `POST /schedules/rotations/new`.
async fn create_rotation(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let f = RotationForm::parse(&fields);
    let caller = match caller(&console, &user) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut errors = FormErrors::default();
    let (members, start, recurrence) = rotation_request(&caller, &f, &mut errors);
    if let (true, Some(recurrence)) = (errors.is_empty(), recurrence) {
        let new = NewRotation {
            name: f.name.clone(),
            members,
            time_zone: f.time_zone.clone(),
            recurrence,
            start_ms: start.map(|t| t.as_millisecond()),
            tags: Vec::new(),
        };
        match console.app.create_rotation(&caller, new, None).await {
            Ok(made) => {
                let id = arn_tail(&made.arn);
                return see_other(&format!("/schedules/rotations/{id}"));
            }
            Err(e) => errors = FormErrors::from_app(&e, rotation_key),
        }
    }
    rotation_form_page(
        &console,
        &user,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        f,
        errors,
    )
    .await
}

/// `GET /schedules/rotations/{id}/edit`.
async fn edit_rotation(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Response {
    let r = match load_rotation(&console, &id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let f = RotationForm::of(&r);
    rotation_form_page(
        &console,
        &user,
        StatusCode::OK,
        Some(r.id.to_string()),
        f,
        FormErrors::default(),
    )
    .await
}

/// `POST /schedules/rotations/{id}/edit`.
async fn update_rotation(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let r = match load_rotation(&console, &id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let mut f = RotationForm::parse(&fields);
    // UpdateRotation cannot rename; the form keeps the name it has.
    f.name = r.name.clone();
    let caller = match caller(&console, &user) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let mut errors = FormErrors::default();
    let (members, start, recurrence) = rotation_request(&caller, &f, &mut errors);
    if let (true, Some(recurrence)) = (errors.is_empty(), recurrence) {
        let change = RotationChange {
            members: Some(members),
            time_zone: Some(f.time_zone.clone()),
            start_ms: start.map(|t| t.as_millisecond()),
            recurrence,
        };
        match console
            .app
            .update_rotation(&caller, &rotation_arn(&caller, r.id), change)
            .await
        {
            Ok(()) => return see_other(&format!("/schedules/rotations/{}?saved=1", r.id)),
            Err(e) => errors = FormErrors::from_app(&e, rotation_key),
        }
    }
    rotation_form_page(
        &console,
        &user,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(r.id.to_string()),
        f,
        errors,
    )
    .await
}

/// `POST /schedules/rotations/{id}/delete`.
async fn delete_rotation(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Response {
    let r = match load_rotation(&console, &id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let caller = match caller(&console, &user) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    match console
        .app
        .delete_rotation(&caller, &rotation_arn(&caller, r.id))
        .await
    {
        Ok(()) => see_other(&format!(
            "/schedules?deleted_rotation={}",
            urlencode(&r.name)
        )),
        Err(e) => error_page(
            StatusCode::CONFLICT,
            "The rotation was not deleted",
            &app_message(&e),
        ),
    }
}

// ---- a rotation: settings, calendar, overrides, feeds -----------------------------------

struct OverrideRow {
    id: String,
    from: String,
    to: String,
    who: String,
}

struct MemberChoice {
    alias: String,
    name: String,
    checked: bool,
}

/// The override form's values, as typed.
#[derive(Default)]
struct OverrideForm {
    start: String,
    end: String,
    members: Vec<String>,
}

#[derive(Template)]
#[template(path = "schedules_rotation.html")]
struct RotationPage {
    layout: Layout,
    csrf_token: String,
    id: String,
    name: String,
    start: String,
    time_zone: String,
    cadence: String,
    shift: String,
    coverage: String,
    on_call: String,
    members: Vec<MemberChoice>,
    overrides: Vec<OverrideRow>,
    o: OverrideForm,
    o_errors: FormErrors,
    days: Vec<CalDay>,
    /// A feed just created: (what it shows, its URL). The token is shown only now.
    new_feed: Option<(String, String)>,
    notice: Option<String>,
    /// The on-call schedules that use this rotation: (alias, name).
    used_by: Vec<(String, String)>,
}

#[allow(clippy::too_many_arguments)]
async fn rotation_page(
    console: &Console,
    user: &CurrentUser,
    status: StatusCode,
    r: &RotationRecord,
    o: OverrideForm,
    o_errors: FormErrors,
    new_feed: Option<(String, String)>,
    notice: Option<String>,
) -> Response {
    let contacts = match contacts_of_type(console, Some(ContactType::OncallSchedule)).await {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let id = r.id.to_string();
    let used_by = contacts
        .iter()
        .filter(|c| c.plan.rotation_ids.iter().any(|a| arn_tail(a) == id))
        .map(|c| (c.alias.clone(), name_of(c)))
        .collect();
    let names = match names(console).await {
        Ok(n) => n,
        Err(resp) => return resp,
    };
    let Some(spec) = spec_of(r) else {
        return internal(format!("rotation {} does not decode", r.id));
    };
    let overrides = match overrides_of(console, r.id).await {
        Ok(o) => o,
        Err(e) => return internal(e),
    };
    let tz = spec.time_zone.clone();
    let now = console.clock.now();
    let local = |ms: i64| {
        ts(ms)
            .to_zoned_datetime(tz.clone())
            .strftime("%a %-d %b %Y %H:%M")
            .to_string()
    };
    let override_rows = overrides
        .iter()
        .filter(|x| ts(x.end_ms) > now)
        .map(|x| OverrideRow {
            id: x.id.to_string(),
            from: local(x.start_ms),
            to: local(x.end_ms),
            who: who(&names, &x.members),
        })
        .collect();
    let (cadence, shift, coverage) = describe(&spec.recurrence);
    let days = calendar(
        now,
        &tz,
        &[(r.name.clone(), spec.clone(), override_specs(&overrides))],
        &names,
        false,
    );
    let members = r
        .members
        .iter()
        .map(|a| MemberChoice {
            alias: a.clone(),
            name: names.get(a).cloned().unwrap_or_else(|| a.clone()),
            checked: o.members.contains(a),
        })
        .collect();
    render(
        status,
        &RotationPage {
            layout: layout(&format!("Rotation {}", r.name), "schedules", user),
            csrf_token: user.csrf_token().to_owned(),
            id: r.id.to_string(),
            name: r.name.clone(),
            start: local(r.start_ms),
            time_zone: r.time_zone.clone(),
            cadence,
            shift,
            coverage,
            on_call: spec.recurrence.number_of_on_calls.to_string(),
            members,
            overrides: override_rows,
            o,
            o_errors,
            days,
            new_feed,
            notice,
            used_by,
        },
    )
}

/// `GET /schedules/rotations/{id}`.
async fn show_rotation(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let r = match load_rotation(&console, &id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let notice = if q.contains_key("saved") {
        Some("The rotation was saved.".to_owned())
    } else if q.contains_key("override_created") {
        Some("The override was created.".to_owned())
    } else if q.contains_key("override_deleted") {
        Some("The override was deleted.".to_owned())
    } else {
        None
    };
    rotation_page(
        &console,
        &user,
        StatusCode::OK,
        &r,
        OverrideForm::default(),
        FormErrors::default(),
        None,
        notice,
    )
    .await
}

/// "2026-11-27T10:00" in `tz` → an instant.
fn parse_local(s: &str, tz: &TimeZone) -> Option<Timestamp> {
    let s = s.trim();
    let s = if s.len() == 16 {
        format!("{s}:00")
    } else {
        s.to_owned()
    };
    local_instant(s.parse().ok()?, tz)
}

/// The instant of local time `dt` in `tz` by the rule of docs/rotations.md §2 (the first
/// instant at which the local clock shows `dt` or later): in a spring-forward gap, the end of
/// the gap; in a fall-back fold, the first occurrence.
fn local_instant(dt: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    let amb = tz.to_ambiguous_timestamp(dt);
    match amb.offset() {
        jiff::tz::AmbiguousOffset::Gap { before, .. } => {
            // `dt` read with the offset before the gap lies at or after the transition.
            let late = before.to_timestamp(dt).ok()?;
            let probe = late.checked_add(SignedDuration::from_secs(1)).ok()?;
            Some(tz.preceding(probe).next().map_or(late, |t| t.timestamp()))
        }
        _ => amb.earlier().ok(),
    }
}

fn override_key(name: &str) -> Option<String> {
    match name {
        "StartTime" => Some("start".into()),
        "EndTime" => Some("end".into()),
        n if n.starts_with("NewContactIds") => Some("members".into()),
        _ => None,
    }
}

/// `POST /schedules/rotations/{id}/overrides`.
async fn create_override(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let r = match load_rotation(&console, &id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Some(tz) = rotation::time_zone(&r.time_zone) else {
        return internal(format!("rotation {} has an unknown zone", r.id));
    };
    let o = OverrideForm {
        start: one(&fields, "start"),
        end: one(&fields, "end"),
        members: all(&fields, "member")
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    let caller = match caller(&console, &user) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let mut errors = FormErrors::default();
    let start = parse_local(&o.start, &tz);
    if start.is_none() {
        errors.add("start", "Enter when the override starts (date and time).");
    }
    let end = parse_local(&o.end, &tz);
    if end.is_none() {
        errors.add("end", "Enter when the override ends (date and time).");
    }
    if o.members.is_empty() {
        errors.add("members", "Choose who is on call during the override.");
    }
    if errors.is_empty() {
        let members: Vec<String> = o.members.iter().map(|a| contact_arn(&caller, a)).collect();
        let result = match (start, end, crate::checks::override_members(members.len())) {
            (_, _, Some(issue)) => Err(AppError::Invalid(vec![issue])),
            (Some(start), Some(end), None) => console
                .app
                .create_override(
                    &caller,
                    &rotation_arn(&caller, r.id),
                    &members,
                    start.as_millisecond(),
                    end.as_millisecond(),
                )
                .await
                .map(|_| ()),
            _ => Err(AppError::internal()),
        };
        match result {
            Ok(()) => {
                return see_other(&format!("/schedules/rotations/{}?override_created=1", r.id));
            }
            Err(e) => errors = FormErrors::from_app(&e, override_key),
        }
    }
    rotation_page(
        &console,
        &user,
        StatusCode::UNPROCESSABLE_ENTITY,
        &r,
        o,
        errors,
        None,
        None,
    )
    .await
}

/// `POST /schedules/rotations/{id}/overrides/{oid}/delete`.
async fn delete_override(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Path((id, oid)): Path<(String, String)>,
) -> Response {
    let r = match load_rotation(&console, &id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let caller = match caller(&console, &user) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    match console
        .app
        .delete_override(&caller, &rotation_arn(&caller, r.id), &oid)
        .await
    {
        Ok(()) => see_other(&format!("/schedules/rotations/{}?override_deleted=1", r.id)),
        Err(e) => error_page(
            StatusCode::NOT_FOUND,
            "The override was not deleted",
            &app_message(&e),
        ),
    }
}

/// `POST /schedules/rotations/{id}/feeds`: a new calendar feed of the rotation
/// (`target=rotation`) or of one member (`target=contact:{alias}`), shown once.
async fn create_feed(
    State(console): State<Arc<Console>>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let r = match load_rotation(&console, &id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let target = one(&fields, "target");
    let names = match names(&console).await {
        Ok(n) => n,
        Err(resp) => return resp,
    };
    let (what, feed_target) = if target == "rotation" {
        (
            format!("the rotation {}", r.name),
            FeedTarget::Rotation(r.id),
        )
    } else if let Some(alias) = target.strip_prefix("contact:")
        && r.members.iter().any(|m| m == alias)
    {
        (
            format!(
                "{} (every rotation they are in)",
                names
                    .get(alias)
                    .cloned()
                    .unwrap_or_else(|| alias.to_owned())
            ),
            FeedTarget::Contact(alias.to_owned()),
        )
    } else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "No such calendar",
            "Choose the rotation or one of its members.",
        );
    };
    let caller = match caller(&console, &user) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let token = match console.app.create_feed(&caller.account, feed_target).await {
        Ok((_, token)) => token,
        Err(e) => return internal(app_message(&e)),
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = if console.secure_cookies {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{host}/feeds/{token}.ics");
    rotation_page(
        &console,
        &user,
        StatusCode::OK,
        &r,
        OverrideForm::default(),
        FormErrors::default(),
        Some((what, url)),
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_core::rotation::{CoverageWindow, DayOfWeek, HandOff};

    #[test]
    fn times_parse() {
        assert_eq!(parse_hhmm("09:30"), Some((9, 30)));
        assert_eq!(parse_hhmm("23:59:00"), Some((23, 59)));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("9"), None);
        let t = parse_local("2026-03-02T09:00", &TimeZone::UTC).unwrap();
        assert_eq!(t.to_string(), "2026-03-02T09:00:00Z");
        // Local times follow docs/rotations.md §2: a time in the spring gap happens when the
        // clock jumps; a time in the autumn fold at its first occurrence.
        let ny = rotation::time_zone("America/New_York").unwrap();
        let at = |s: &str| parse_local(s, &ny).unwrap().to_string();
        assert_eq!(at("2026-03-08T02:30"), "2026-03-08T07:00:00Z");
        assert_eq!(at("2026-03-08T02:00"), "2026-03-08T07:00:00Z");
        assert_eq!(at("2026-03-08T03:00"), "2026-03-08T07:00:00Z");
        assert_eq!(at("2026-11-01T01:30"), "2026-11-01T05:30:00Z");
        assert_eq!(at("2026-07-01T09:00"), "2026-07-01T13:00:00Z");
    }

    #[test]
    fn the_calendar_shows_shifts_and_gaps() {
        // Daily 09:00 from Mon 2 Mar 2026 09:00 UTC, a/b, Mon–Fri 09:00–17:00.
        let mut cov = BTreeMap::new();
        for d in [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ] {
            cov.insert(
                DayOfWeek(d),
                vec![CoverageWindow::new(HandOff::new(9, 0), HandOff::new(17, 0))],
            );
        }
        let spec = RotationSpec {
            start: "2026-03-02T09:00:00Z".parse().unwrap(),
            time_zone: TimeZone::UTC,
            members: vec!["a".into(), "b".into()],
            recurrence: Recurrence {
                cadence: Cadence::Daily(vec![HandOff::new(9, 0)]),
                number_of_on_calls: 1,
                multiplier: 1,
                coverage: Some(cov),
            },
        };
        let names: BTreeMap<String, String> =
            [("a".to_owned(), "Ann".to_owned())].into_iter().collect();
        let now: Timestamp = "2026-03-02T12:00:00Z".parse().unwrap();
        let days = calendar(
            now,
            &TimeZone::UTC,
            &[("r".into(), spec, vec![])],
            &names,
            false,
        );
        assert_eq!(days.len(), 28);
        assert_eq!(days[0].date, "2026-03-02");
        let first: Vec<(&str, &str, &str)> = days[0]
            .entries
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str(), e.who.as_str()))
            .collect();
        assert_eq!(
            first,
            vec![
                ("00:00", "09:00", "No one on call"),
                ("09:00", "17:00", "Ann"),
                ("17:00", "24:00", "No one on call")
            ]
        );
        assert!(days[0].has_gap);
        assert_eq!(days[1].entries[1].who, "b");
        // Saturday: no coverage at all.
        assert_eq!(days[5].entries.len(), 1);
        assert_eq!(days[5].entries[0].kind, "gap");
    }
}
