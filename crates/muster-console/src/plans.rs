//! Escalation plans: contacts of type ESCALATION, their stages, and the contacts or schedules
//! each stage engages.
//!
//! Every change goes through the application ([`Console::app`], as the AWS API's operations
//! do), after the model's limits (`crate::checks`), so the console applies the API's checks;
//! field errors are shown next to the fields they are about.
//!
//! The form works without JavaScript: each stage is a fieldset listing every contact and
//! on-call schedule with an "Engage" checkbox and an "Acknowledgment stops plan progression"
//! checkbox; *Add stage* and *Remove stage* are submit buttons that post the form and get it
//! back with one stage more or less.

// Helpers return the page to answer with as their error (`Result<_, Response>`).
#![allow(clippy::result_large_err)]

use crate::auth::CurrentUser;
use crate::pages::{Layout, error_page, see_other};
use crate::{Console, SectionRouter};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form};
use muster_app::contacts::NewContact;
use muster_app::{AppError, Caller};
use muster_core::{ArnOf, ContactType, Plan, Stage, Target};
use muster_store::{After, ContactRecord};
use std::collections::BTreeMap;
use std::sync::Arc;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new()
        .route("/escalation-plans", get(list))
        .route("/escalation-plans/new", get(new_form).post(create))
        .route(
            "/escalation-plans/{alias}/edit",
            get(edit_form).post(update),
        )
        .route("/escalation-plans/{alias}/delete", post(delete))
}

// ---- helpers shared with schedules.rs ---------------------------------------------------

/// The signed-in page frame (title, active navigation entry, CSRF token).
pub(crate) fn layout(title: &str, active: &'static str, who: &CurrentUser) -> Layout {
    Layout::signed_in(title, active, who)
}

/// Renders a template with a status.
pub(crate) fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: a template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console: request failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The console could not do this. Try again; if it keeps failing, the server's log says \
         why.",
    )
}

pub(crate) fn not_found(what: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        &format!("{what} does not exist (it may have been deleted)."),
    )
}

/// The application caller for the signed-in console user (the page to answer with when the
/// console's account is misconfigured).
pub(crate) fn caller(console: &Console, who: &CurrentUser) -> Result<Caller, Response> {
    console.caller(who).map_err(internal)
}

pub(crate) fn contact_arn(caller: &Caller, alias: &str) -> String {
    caller.arn(ArnOf::Contact(alias))
}

pub(crate) fn rotation_arn(caller: &Caller, id: uuid::Uuid) -> String {
    caller.arn(ArnOf::Rotation(id))
}

/// Errors of a form: messages next to fields (by form key) and messages for the whole form.
#[derive(Default, Debug)]
pub(crate) struct FormErrors {
    pub general: Vec<String>,
    pub fields: BTreeMap<String, String>,
}

impl FormErrors {
    pub fn is_empty(&self) -> bool {
        self.general.is_empty() && self.fields.is_empty()
    }

    /// Adds `message` to field `key` (several messages of one field are joined).
    pub fn add(&mut self, key: &str, message: impl Into<String>) {
        let message = message.into();
        self.fields
            .entry(key.to_owned())
            .and_modify(|m| {
                m.push_str("; ");
                m.push_str(&message);
            })
            .or_insert(message);
    }

    /// The message of field `key`, if any.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    pub fn has(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// Sorts an application error into field messages (through `key_of`, which maps a
    /// member's path to a form key, or `None` for the whole form) and general ones.
    pub fn from_app(e: &AppError, key_of: impl Fn(&str) -> Option<String>) -> FormErrors {
        let mut out = FormErrors::default();
        match e {
            AppError::Invalid(issues) if !issues.is_empty() => {
                for f in issues {
                    let text = sentence(&f.message);
                    match key_of(&f.path) {
                        Some(k) => out.add(&k, text),
                        None => out.general.push(format!("{}: {text}", f.path)),
                    }
                }
            }
            other => out.general.push(app_message(other)),
        }
        out
    }
}

/// "is required" → "Is required."
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    let mut out: String = match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// The message of an application error that is not about one field.
pub(crate) fn app_message(e: &AppError) -> String {
    e.to_string()
}

/// The account's contacts of one type (all of them, in alias order).
pub(crate) async fn contacts_of_type(
    console: &Console,
    t: Option<ContactType>,
) -> Result<Vec<ContactRecord>, muster_store::StoreError> {
    let mut out: Vec<ContactRecord> = Vec::new();
    let mut after = After::Start;
    loop {
        let page = console
            .store
            .list_contacts(&console.account, None, t, &after, 500)
            .await?;
        let done = page.len() < 500;
        if let Some(last) = page.last() {
            after = After::Alias(last.alias.clone());
        }
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// A contact's display name, or its alias when it has none.
pub(crate) fn name_of(c: &ContactRecord) -> String {
    c.display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| c.alias.clone())
}

/// The last path segment of an ARN (a contact's alias, a rotation's id).
pub(crate) fn arn_tail(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// All values of form field `key`.
pub(crate) fn all<'a>(fields: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The first value of form field `key` (empty if absent).
pub(crate) fn one(fields: &[(String, String)], key: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

// ---- the list ---------------------------------------------------------------------------

struct PlanRow {
    alias: String,
    name: String,
    summary: Vec<String>,
}

#[derive(Template)]
#[template(path = "plans_list.html")]
struct ListPage {
    layout: Layout,
    plans: Vec<PlanRow>,
    notice: Option<String>,
}

/// A stage as one line: "Stage 1, 5 minutes: Ann (stops the plan), Support rota".
fn stage_summary(i: usize, s: &muster_core::Stage, names: &BTreeMap<String, String>) -> String {
    let targets: Vec<String> = s
        .targets
        .iter()
        .map(|t| match t {
            Target::Contact {
                contact_arn,
                is_essential,
            } => {
                let alias = arn_tail(contact_arn);
                let name = names
                    .get(alias)
                    .cloned()
                    .unwrap_or_else(|| alias.to_owned());
                if *is_essential {
                    format!("{name} (acknowledgment stops the plan)")
                } else {
                    name
                }
            }
            Target::Channel { channel_arn, .. } => format!("channel {}", arn_tail(channel_arn)),
        })
        .collect();
    let who = if targets.is_empty() {
        "nobody".to_owned()
    } else {
        targets.join(", ")
    };
    format!(
        "Stage {}, {} minute{}: {who}",
        i + 1,
        s.duration_minutes,
        if s.duration_minutes == 1 { "" } else { "s" }
    )
}

async fn list_page(console: &Console, who: &CurrentUser, notice: Option<String>) -> Response {
    let all = match contacts_of_type(console, None).await {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let names: BTreeMap<String, String> =
        all.iter().map(|c| (c.alias.clone(), name_of(c))).collect();
    let plans = all
        .iter()
        .filter(|c| c.contact_type == ContactType::Escalation)
        .map(|c| PlanRow {
            alias: c.alias.clone(),
            name: c.display_name.clone().unwrap_or_default(),
            summary: c
                .plan
                .stages
                .iter()
                .enumerate()
                .map(|(i, s)| stage_summary(i, s, &names))
                .collect(),
        })
        .collect();
    render(
        StatusCode::OK,
        &ListPage {
            layout: layout("Escalation plans", "escalation-plans", who),
            plans,
            notice,
        },
    )
}

/// `GET /escalation-plans[?created=alias|updated=alias|deleted=alias]`.
async fn list(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let notice = if let Some(a) = q.get("created") {
        Some(format!("The escalation plan {a} was created."))
    } else if let Some(a) = q.get("deleted") {
        Some(format!("The escalation plan {a} was deleted."))
    } else {
        q.get("updated")
            .map(|a| format!("The escalation plan {a} was saved."))
    };
    list_page(&console, &who, notice).await
}

// ---- the form ---------------------------------------------------------------------------

/// One contact or schedule a stage may engage.
struct TargetRow {
    alias: String,
    label: String,
    kind: &'static str,
    engaged: bool,
    essential: bool,
}

struct StageForm {
    minutes: String,
    targets: Vec<TargetRow>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "plans_form.html")]
struct FormPage {
    layout: Layout,
    csrf_token: String,
    /// `None` when creating; the alias when editing.
    editing: Option<String>,
    action: String,
    alias: String,
    display_name: String,
    stages: Vec<StageForm>,
    errors: FormErrors,
    /// Whether there are contacts or schedules to engage at all.
    no_candidates: bool,
}

/// What a stage can engage: personal contacts and on-call schedules, (alias, label, kind).
async fn candidates(console: &Console) -> Result<Vec<(String, String, &'static str)>, Response> {
    let all = contacts_of_type(console, None).await.map_err(internal)?;
    Ok(all
        .iter()
        .filter_map(|c| match c.contact_type {
            ContactType::Personal => Some((c.alias.clone(), name_of(c), "Contact")),
            ContactType::OncallSchedule => Some((c.alias.clone(), name_of(c), "On-call schedule")),
            ContactType::Escalation => None,
        })
        .collect())
}

/// Form rows of a stage: every candidate, checked as `engaged`/`essential` say.
fn stage_rows(
    cands: &[(String, String, &'static str)],
    engaged: &[String],
    essential: &[String],
) -> Vec<TargetRow> {
    let mut rows: Vec<TargetRow> = cands
        .iter()
        .map(|(alias, label, kind)| TargetRow {
            alias: alias.clone(),
            label: label.clone(),
            kind,
            engaged: engaged.contains(alias),
            essential: essential.contains(alias),
        })
        .collect();
    // A target that is no longer a candidate (deleted since) still shows, so saving does not
    // silently drop it; the API then says what is wrong with it.
    for a in engaged {
        if !cands.iter().any(|(c, _, _)| c == a) {
            rows.push(TargetRow {
                alias: a.clone(),
                label: a.clone(),
                kind: "Unknown",
                engaged: true,
                essential: essential.contains(a),
            });
        }
    }
    rows
}

/// The form's stages as posted.
struct Posted {
    alias: String,
    display_name: String,
    /// (minutes as typed, engaged aliases, essential aliases)
    stages: Vec<(String, Vec<String>, Vec<String>)>,
    action: String,
}

const MAX_STAGES: usize = 30;

fn parse_posted(fields: &[(String, String)]) -> Posted {
    let count: usize = one(fields, "stage_count")
        .trim()
        .parse()
        .unwrap_or(0)
        .min(MAX_STAGES);
    let stages = (0..count)
        .map(|i| {
            let engaged: Vec<String> = all(fields, &format!("s{i}_engage"))
                .into_iter()
                .map(str::to_owned)
                .collect();
            let essential: Vec<String> = all(fields, &format!("s{i}_essential"))
                .into_iter()
                .map(str::to_owned)
                .collect();
            (one(fields, &format!("s{i}_minutes")), engaged, essential)
        })
        .collect();
    Posted {
        alias: one(fields, "alias").trim().to_owned(),
        display_name: one(fields, "display_name").trim().to_owned(),
        stages,
        action: one(fields, "action"),
    }
}

/// Maps the API's member paths to the form's keys.
fn plan_key(name: &str) -> Option<String> {
    if name == "Alias" || name == "ContactId" {
        return Some("alias".into());
    }
    if name == "DisplayName" {
        return Some("display_name".into());
    }
    if let Some(rest) = name.strip_prefix("Plan.Stages[") {
        let i: usize = rest.split(']').next()?.parse().ok()?;
        return Some(format!("stage{i}"));
    }
    if name.starts_with("Plan") {
        return Some("stages".into());
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn form_page(
    who: &CurrentUser,
    cands: &[(String, String, &'static str)],
    editing: Option<String>,
    alias: String,
    display_name: String,
    stages: Vec<(String, Vec<String>, Vec<String>)>,
    errors: FormErrors,
) -> FormPage {
    let stages = stages
        .into_iter()
        .enumerate()
        .map(|(i, (minutes, engaged, essential))| StageForm {
            minutes,
            targets: stage_rows(cands, &engaged, &essential),
            error: errors.field(&format!("stage{i}")).map(str::to_owned),
        })
        .collect();
    let action = match &editing {
        Some(a) => format!("/escalation-plans/{a}/edit"),
        None => "/escalation-plans/new".to_owned(),
    };
    let title = match &editing {
        Some(a) => format!("Edit escalation plan {a}"),
        None => "Create escalation plan".to_owned(),
    };
    FormPage {
        layout: layout(&title, "escalation-plans", who),
        csrf_token: who.csrf_token().to_owned(),
        editing,
        action,
        alias,
        display_name,
        stages,
        errors,
        no_candidates: cands.is_empty(),
    }
}

/// `GET /escalation-plans/new`: an empty plan with one stage.
async fn new_form(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
) -> Response {
    let cands = match candidates(&console).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let page = form_page(
        &who,
        &cands,
        None,
        String::new(),
        String::new(),
        vec![("5".into(), vec![], vec![])],
        FormErrors::default(),
    );
    render(StatusCode::OK, &page)
}

/// Turns the posted stages into a plan, or field errors: numbers that are not numbers, and
/// the model's limits (minutes 0 to 30), worded as the API words them; what the plan names is
/// the application's to check.
fn plan_of_stages(caller: &Caller, posted: &Posted, errors: &mut FormErrors) -> Plan {
    let mut stages = Vec::new();
    for (i, (minutes, engaged, essential)) in posted.stages.iter().enumerate() {
        let m = minutes.trim();
        let duration = if m.is_empty() {
            errors.add(
                &format!("stage{i}"),
                "Enter the minutes to wait before the next stage (0 to 30).",
            );
            0
        } else {
            match m.parse::<i32>() {
                Ok(n) => match crate::checks::stage_minutes(i64::from(n)) {
                    Ok(n) => n,
                    Err(message) => {
                        errors.add(&format!("stage{i}"), sentence(&message));
                        0
                    }
                },
                Err(_) => {
                    errors.add(
                        &format!("stage{i}"),
                        "Minutes must be a whole number from 0 to 30.",
                    );
                    0
                }
            }
        };
        for e in essential {
            if !engaged.contains(e) {
                errors.add(
                    &format!("stage{i}"),
                    format!(
                        "{e} is marked \"Acknowledgment stops plan progression\" but is not engaged \
                         in this stage; tick Engage too."
                    ),
                );
            }
        }
        stages.push(Stage {
            duration_minutes: duration,
            targets: engaged
                .iter()
                .map(|a| Target::Contact {
                    contact_arn: contact_arn(caller, a),
                    is_essential: essential.contains(a),
                })
                .collect(),
        });
    }
    Plan {
        stages,
        rotation_ids: Vec::new(),
    }
}

/// Handles the buttons that only change the form (Add stage, Remove stage N): returns the
/// form to show again, or `None` for Save.
fn form_action(posted: &mut Posted) -> bool {
    if posted.action == "add_stage" {
        if posted.stages.len() < MAX_STAGES {
            posted.stages.push(("5".into(), vec![], vec![]));
        }
        return true;
    }
    if let Some(i) = posted.action.strip_prefix("remove_stage_")
        && let Ok(i) = i.parse::<usize>()
    {
        if i < posted.stages.len() {
            posted.stages.remove(i);
        }
        return true;
    }
    false
}

/// `POST /escalation-plans/new`.
async fn create(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let cands = match candidates(&console).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut posted = parse_posted(&fields);
    if form_action(&mut posted) {
        let page = form_page(
            &who,
            &cands,
            None,
            posted.alias,
            posted.display_name,
            posted.stages,
            FormErrors::default(),
        );
        return render(StatusCode::OK, &page);
    }
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut errors = FormErrors::default();
    if posted.alias.is_empty() {
        errors.add("alias", "Enter a unique alias.");
    }
    let plan = plan_of_stages(&caller, &posted, &mut errors);
    if errors.is_empty() {
        let display_name = (!posted.display_name.is_empty()).then(|| posted.display_name.clone());
        let checked = crate::checks::contact(&posted.alias, display_name.as_deref());
        let result = match checked {
            Err(e) => Err(e),
            Ok(alias) => {
                let new = NewContact {
                    alias,
                    display_name,
                    contact_type: ContactType::Escalation,
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
            Ok(()) => {
                return see_other(&format!(
                    "/escalation-plans?created={}",
                    urlencode(&posted.alias)
                ));
            }
            Err(AppError::Conflict { .. }) => errors.add(
                "alias",
                format!(
                    "A contact with the alias {} exists already; choose another alias.",
                    posted.alias
                ),
            ),
            Err(e) => errors = FormErrors::from_app(&e, plan_key),
        }
    }
    let page = form_page(
        &who,
        &cands,
        None,
        posted.alias,
        posted.display_name,
        posted.stages,
        errors,
    );
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

pub(crate) fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// Loads an escalation plan by alias (None if there is no such escalation plan).
async fn load_plan(console: &Console, alias: &str) -> Result<Option<ContactRecord>, Response> {
    match console.store.get_contact(&console.account, alias).await {
        Ok(Some(c)) if c.contact_type == ContactType::Escalation => Ok(Some(c)),
        Ok(_) => Ok(None),
        Err(e) => Err(internal(e)),
    }
}

/// `GET /escalation-plans/{alias}/edit`.
async fn edit_form(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(alias): Path<String>,
) -> Response {
    let c = match load_plan(&console, &alias).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(&format!("The escalation plan {alias}")),
        Err(r) => return r,
    };
    let cands = match candidates(&console).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let stages = c
        .plan
        .stages
        .iter()
        .map(|s| {
            let mut engaged = Vec::new();
            let mut essential = Vec::new();
            for t in &s.targets {
                if let Target::Contact {
                    contact_arn,
                    is_essential,
                } = t
                {
                    let a = arn_tail(contact_arn).to_owned();
                    if *is_essential {
                        essential.push(a.clone());
                    }
                    engaged.push(a);
                }
            }
            (s.duration_minutes.to_string(), engaged, essential)
        })
        .collect();
    let page = form_page(
        &who,
        &cands,
        Some(c.alias.clone()),
        c.alias.clone(),
        c.display_name.clone().unwrap_or_default(),
        stages,
        FormErrors::default(),
    );
    render(StatusCode::OK, &page)
}

/// `POST /escalation-plans/{alias}/edit`.
async fn update(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(alias): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    match load_plan(&console, &alias).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(&format!("The escalation plan {alias}")),
        Err(r) => return r,
    }
    let cands = match candidates(&console).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut posted = parse_posted(&fields);
    posted.alias = alias.clone();
    if form_action(&mut posted) {
        let page = form_page(
            &who,
            &cands,
            Some(alias.clone()),
            alias,
            posted.display_name,
            posted.stages,
            FormErrors::default(),
        );
        return render(StatusCode::OK, &page);
    }
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut errors = FormErrors::default();
    let plan = plan_of_stages(&caller, &posted, &mut errors);
    if errors.is_empty() {
        let result = match crate::checks::display_name(&posted.display_name) {
            Some(issue) => Err(AppError::Invalid(vec![issue])),
            None => {
                console
                    .app
                    .update_contact(
                        &caller,
                        &contact_arn(&caller, &alias),
                        Some(posted.display_name.clone()),
                        Some(plan),
                    )
                    .await
            }
        };
        match result {
            Ok(()) => {
                return see_other(&format!("/escalation-plans?updated={}", urlencode(&alias)));
            }
            Err(e) => errors = FormErrors::from_app(&e, plan_key),
        }
    }
    let page = form_page(
        &who,
        &cands,
        Some(alias.clone()),
        alias,
        posted.display_name,
        posted.stages,
        errors,
    );
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// `POST /escalation-plans/{alias}/delete`.
async fn delete(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(alias): Path<String>,
) -> Response {
    match load_plan(&console, &alias).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(&format!("The escalation plan {alias}")),
        Err(r) => return r,
    }
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match console
        .app
        .delete_contact(&caller, &contact_arn(&caller, &alias))
        .await
    {
        Ok(()) => see_other(&format!("/escalation-plans?deleted={}", urlencode(&alias))),
        Err(e) => error_page(
            StatusCode::CONFLICT,
            "The escalation plan was not deleted",
            &app_message(&e),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_map_to_form_fields() {
        assert_eq!(plan_key("Alias").as_deref(), Some("alias"));
        assert_eq!(plan_key("DisplayName").as_deref(), Some("display_name"));
        assert_eq!(
            plan_key("Plan.Stages[2].DurationInMinutes").as_deref(),
            Some("stage2")
        );
        assert_eq!(
            plan_key("Plan.Stages[0].Targets[1].ContactTargetInfo.ContactId").as_deref(),
            Some("stage0")
        );
        assert_eq!(plan_key("Tags"), None);
    }

    #[test]
    fn buttons_add_and_remove_stages() {
        let mut p = Posted {
            alias: "a".into(),
            display_name: String::new(),
            stages: vec![("1".into(), vec![], vec![]), ("2".into(), vec![], vec![])],
            action: "remove_stage_0".into(),
        };
        assert!(form_action(&mut p));
        assert_eq!(p.stages.len(), 1);
        assert_eq!(p.stages[0].0, "2");
        p.action = "add_stage".into();
        assert!(form_action(&mut p));
        assert_eq!(p.stages.len(), 2);
        p.action = "save".into();
        assert!(!form_action(&mut p));
    }
}
