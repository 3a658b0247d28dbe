//! Response plans (ssm-incidents): the list, create, edit and delete. A plan is what every
//! incident started from it gets: its title, impact, summary and dedupe string, and the
//! contacts, escalation plans and on-call schedules it engages.
//!
//! Every change goes through the application ([`Console::app`], as the AWS API's
//! CreateResponsePlan and UpdateResponsePlan do), after the model's limits on what the
//! application does not check itself (display name, summary, dedupe string), so the console
//! and the API refuse the same plans; errors are shown beside their fields. The form works
//! without JavaScript: the engagements are checkboxes, one per contact.

// Helpers return the page to answer with as their error (`Result<_, Response>`).
#![allow(clippy::result_large_err)]

use crate::auth::CurrentUser;
use crate::engagements::{layout, render};
use crate::pages::{error_page, see_other};
use crate::plans::{
    FormErrors, app_message, caller, contacts_of_type, internal, name_of, urlencode,
};
use crate::{Console, SectionRouter};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form};
use muster_app::{AppError, Caller, FieldIssue};
use muster_core::incident::{IMPACT_MAX, IMPACT_MIN, ResponsePlan, impact_name};
use muster_core::{ArnOf, ContactType};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new()
        .route("/response-plans", get(list))
        .route("/response-plans/new", get(new_form).post(create))
        .route("/response-plans/{name}/edit", get(edit_form).post(update))
        .route("/response-plans/{name}/delete", post(delete))
}

/// The model's limits (ssm-incidents) that the application leaves to the adapters.
const MAX_DISPLAY_NAME: usize = 200;
const MAX_SUMMARY: usize = 8000;
const MAX_DEDUPE: usize = 1000;
/// Most engagements of a plan (`EngagementSet`).
const MAX_ENGAGEMENTS: usize = 5;
/// Most plans the console lists.
const LIST_LIMIT: u32 = 1000;

// ---- shared with incidents.rs -----------------------------------------------------------

/// "2 (High)".
pub(crate) fn impact_label(impact: i64) -> String {
    format!("{impact} ({})", impact_name(impact))
}

/// The impacts as a select offers them: (value, label).
pub(crate) fn impact_options() -> Vec<(String, String)> {
    (IMPACT_MIN..=IMPACT_MAX)
        .map(|i| (i.to_string(), impact_label(i64::from(i))))
        .collect()
}

/// Every plan of the account, by name.
pub(crate) async fn all_plans(
    console: &Console,
    caller: &Caller,
) -> Result<Vec<muster_app::incidents::PlanSummary>, AppError> {
    console
        .app
        .list_response_plans(caller, None, LIST_LIMIT)
        .await
}

/// The alias in a contact ARN (`…:contact/<alias>`), or the ARN.
pub(crate) fn contact_alias_of(arn: &str) -> &str {
    arn.rsplit_once(":contact/").map(|(_, a)| a).unwrap_or(arn)
}

fn kind_label(t: ContactType) -> &'static str {
    match t {
        ContactType::Personal => "Contact",
        ContactType::Escalation => "Escalation plan",
        ContactType::OncallSchedule => "On-call schedule",
    }
}

// ---- the list ---------------------------------------------------------------------------

struct PlanRow {
    name: String,
    display_name: String,
    title: String,
    impact: String,
    engages: String,
    dedupe: bool,
}

#[derive(Template)]
#[template(path = "response_plans_list.html")]
struct ListPage {
    layout: Layout,
    plans: Vec<PlanRow>,
    notice: Option<String>,
}

use crate::pages::Layout;

/// `GET /response-plans[?created=name|updated=name|deleted=name]`.
async fn list(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let plans = match all_plans(&console, &caller).await {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    let names: BTreeMap<String, String> = match contacts_of_type(&console, None).await {
        Ok(all) => all.iter().map(|c| (c.alias.clone(), name_of(c))).collect(),
        Err(e) => return internal(e),
    };
    let rows = plans
        .into_iter()
        .map(|p| PlanRow {
            engages: if p.plan.engagements.is_empty() {
                "nobody".to_owned()
            } else {
                p.plan
                    .engagements
                    .iter()
                    .map(|arn| {
                        let alias = contact_alias_of(arn);
                        names
                            .get(alias)
                            .cloned()
                            .unwrap_or_else(|| format!("{alias} (deleted)"))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            display_name: p.plan.display_name.clone().unwrap_or_default(),
            title: p.plan.template.title.clone(),
            impact: impact_label(i64::from(p.plan.template.impact)),
            dedupe: p
                .plan
                .template
                .dedupe_string
                .as_deref()
                .is_some_and(|d| !d.is_empty()),
            name: p.name,
        })
        .collect();
    // Fixed texts around the name (askama escapes it).
    let notice = if let Some(n) = q.get("created") {
        Some(format!("The response plan {n} was created."))
    } else if let Some(n) = q.get("deleted") {
        Some(format!("The response plan {n} was deleted."))
    } else {
        q.get("updated")
            .map(|n| format!("The response plan {n} was saved."))
    };
    render(
        StatusCode::OK,
        &ListPage {
            layout: layout("Response plans", "response-plans", &who),
            plans: rows,
            notice,
        },
    )
}

// ---- the form ---------------------------------------------------------------------------

/// One contact a plan may engage.
struct Candidate {
    alias: String,
    label: String,
    kind: &'static str,
    checked: bool,
}

/// The form's fields as typed.
#[derive(Deserialize, Default, Debug, Clone)]
struct PlanForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    impact: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    dedupe_string: String,
    #[serde(default)]
    engage: Vec<String>,
}

impl PlanForm {
    /// From the posted fields (`engage` repeats).
    fn from_fields(fields: &[(String, String)]) -> PlanForm {
        let one = |k: &str| crate::plans::one(fields, k);
        PlanForm {
            name: one("name").trim().to_owned(),
            display_name: one("display_name").trim().to_owned(),
            title: one("title").trim().to_owned(),
            impact: one("impact").trim().to_owned(),
            summary: one("summary").trim().to_owned(),
            dedupe_string: one("dedupe_string").trim().to_owned(),
            engage: crate::plans::all(fields, "engage")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    fn of_plan(name: &str, p: &ResponsePlan) -> PlanForm {
        PlanForm {
            name: name.to_owned(),
            display_name: p.display_name.clone().unwrap_or_default(),
            title: p.template.title.clone(),
            impact: p.template.impact.to_string(),
            summary: p.template.summary.clone().unwrap_or_default(),
            dedupe_string: p.template.dedupe_string.clone().unwrap_or_default(),
            engage: p
                .engagements
                .iter()
                .map(|a| contact_alias_of(a).to_owned())
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "response_plans_form.html")]
struct FormPage {
    layout: Layout,
    csrf_token: String,
    /// `None` when creating; the name when editing.
    editing: Option<String>,
    action: String,
    form: PlanForm,
    impacts: Vec<(String, String)>,
    candidates: Vec<Candidate>,
    errors: FormErrors,
}

/// The form page: every contact, escalation plan and on-call schedule as a checkbox, those
/// of the plan checked (a deleted one the plan still names shows too, so saving does not
/// drop it silently: the application then says what is wrong with it).
async fn form_page(
    console: &Console,
    who: &CurrentUser,
    status: StatusCode,
    editing: Option<String>,
    form: PlanForm,
    errors: FormErrors,
) -> Response {
    let all = match contacts_of_type(console, None).await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let mut candidates: Vec<Candidate> = all
        .iter()
        .map(|c| Candidate {
            checked: form.engage.contains(&c.alias),
            alias: c.alias.clone(),
            label: name_of(c),
            kind: kind_label(c.contact_type),
        })
        .collect();
    for a in &form.engage {
        if !all.iter().any(|c| &c.alias == a) {
            candidates.push(Candidate {
                alias: a.clone(),
                label: a.clone(),
                kind: "Deleted",
                checked: true,
            });
        }
    }
    let (title, action) = match &editing {
        Some(n) => (
            format!("Edit response plan {n}"),
            format!("/response-plans/{}/edit", urlencode(n)),
        ),
        None => (
            "Create response plan".to_owned(),
            "/response-plans/new".to_owned(),
        ),
    };
    render(
        status,
        &FormPage {
            layout: layout(&title, "response-plans", who),
            csrf_token: who.csrf_token().to_owned(),
            editing,
            action,
            form,
            impacts: impact_options(),
            candidates,
            errors,
        },
    )
}

/// Maps the application's member paths to the form's fields.
fn plan_key(path: &str) -> Option<String> {
    let key = match path {
        "name" => "name",
        "displayName" => "display_name",
        "incidentTemplate.title" => "title",
        "incidentTemplate.impact" => "impact",
        "incidentTemplate.summary" => "summary",
        "incidentTemplate.dedupeString" => "dedupe_string",
        p if p == "engagements" || p.starts_with("engagements[") => "engagements",
        _ => return None,
    };
    Some(key.to_owned())
}

/// What the form says about the fields the application does not check (the model's
/// lengths), and the impact as a number. The rest (name, title length, impact range, the
/// engagements) is the application's.
fn form_issues(form: &PlanForm) -> (Option<i32>, Vec<FieldIssue>) {
    let mut issues = Vec::new();
    let too_long = |path: &str, value: &str, max: usize, issues: &mut Vec<FieldIssue>| {
        if value.chars().count() > max {
            issues.push(FieldIssue::new(
                path,
                format!("must be at most {max} characters long"),
            ));
        }
    };
    too_long(
        "displayName",
        &form.display_name,
        MAX_DISPLAY_NAME,
        &mut issues,
    );
    too_long(
        "incidentTemplate.summary",
        &form.summary,
        MAX_SUMMARY,
        &mut issues,
    );
    too_long(
        "incidentTemplate.dedupeString",
        &form.dedupe_string,
        MAX_DEDUPE,
        &mut issues,
    );
    if form.title.is_empty() {
        issues.push(FieldIssue::new(
            "incidentTemplate.title",
            "enter the title incidents of this plan get",
        ));
    }
    if form.engage.len() > MAX_ENGAGEMENTS {
        issues.push(FieldIssue::new(
            "engagements",
            format!(
                "choose at most {MAX_ENGAGEMENTS} contacts, escalation plans or on-call schedules"
            ),
        ));
    }
    let impact = match form.impact.parse::<i32>() {
        Ok(i) => Some(i),
        Err(_) => {
            issues.push(FieldIssue::new(
                "incidentTemplate.impact",
                "choose an impact from 1 (Critical) to 5 (No impact)",
            ));
            None
        }
    };
    (impact, issues)
}

/// Writes the form into `plan` (what the form does not show stays as it was).
fn apply(caller: &Caller, form: &PlanForm, impact: i32, plan: &mut ResponsePlan) {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    plan.display_name = opt(&form.display_name);
    plan.template.title = form.title.clone();
    plan.template.impact = impact;
    plan.template.summary = opt(&form.summary);
    plan.template.dedupe_string = opt(&form.dedupe_string);
    plan.engagements = form
        .engage
        .iter()
        .map(|a| caller.arn(ArnOf::Contact(a)))
        .collect();
}

/// `GET /response-plans/new`.
async fn new_form(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
) -> Response {
    let form = PlanForm {
        impact: "3".into(),
        ..Default::default()
    };
    form_page(
        &console,
        &who,
        StatusCode::OK,
        None,
        form,
        FormErrors::default(),
    )
    .await
}

/// `POST /response-plans/new`.
async fn create(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let form = PlanForm::from_fields(&fields);
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (impact, issues) = form_issues(&form);
    let result = match impact {
        Some(impact) if issues.is_empty() => {
            let mut plan = ResponsePlan::default();
            apply(&caller, &form, impact, &mut plan);
            console
                .app
                .create_response_plan(&caller, &form.name, plan, BTreeMap::new(), None)
                .await
                .map(|_| ())
        }
        _ => Err(AppError::Invalid(issues)),
    };
    let errors = match result {
        Ok(()) => {
            tracing::info!(user = %who.user.email, plan = %form.name, "console: response plan created");
            return see_other(&format!(
                "/response-plans?created={}",
                urlencode(&form.name)
            ));
        }
        Err(AppError::Conflict { .. }) => {
            let mut e = FormErrors::default();
            e.add(
                "name",
                format!(
                    "A response plan named {} exists already; choose another name.",
                    form.name
                ),
            );
            e
        }
        Err(e) => FormErrors::from_app(&e, plan_key),
    };
    form_page(
        &console,
        &who,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        form,
        errors,
    )
    .await
}

fn no_plan(name: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "No such response plan",
        &format!(
            "The response plan {name} does not exist (it may have been deleted). The plans are \
             under Response plans."
        ),
    )
}

/// `GET /response-plans/{name}/edit`.
async fn edit_form(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(name): Path<String>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let arn = caller.arn(ArnOf::ResponsePlan(&name));
    let (name, plan) = match console.app.load_response_plan(&caller, &arn).await {
        Ok((name, plan, _)) => (name, plan),
        Err(AppError::NotFound { .. }) => return no_plan(&name),
        Err(e) => return internal(e),
    };
    let form = PlanForm::of_plan(&name, &plan);
    form_page(
        &console,
        &who,
        StatusCode::OK,
        Some(name),
        form,
        FormErrors::default(),
    )
    .await
}

/// `POST /response-plans/{name}/edit`.
async fn update(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(name): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut form = PlanForm::from_fields(&fields);
    form.name = name.clone();
    let arn = caller.arn(ArnOf::ResponsePlan(&name));
    let (impact, issues) = form_issues(&form);
    let result = match impact {
        Some(impact) if issues.is_empty() => {
            console
                .app
                .update_response_plan(&caller, &arn, |plan| apply(&caller, &form, impact, plan))
                .await
        }
        _ => Err(AppError::Invalid(issues)),
    };
    match result {
        Ok(()) => {
            tracing::info!(user = %who.user.email, plan = %name, "console: response plan updated");
            see_other(&format!("/response-plans?updated={}", urlencode(&name)))
        }
        Err(AppError::NotFound { .. }) => no_plan(&name),
        Err(e) => {
            let errors = FormErrors::from_app(&e, plan_key);
            form_page(
                &console,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(name),
                form,
                errors,
            )
            .await
        }
    }
}

/// `POST /response-plans/{name}/delete`: the plan goes; its incidents stay.
async fn delete(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(name): Path<String>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let arn = caller.arn(ArnOf::ResponsePlan(&name));
    match console.app.load_response_plan(&caller, &arn).await {
        Ok(_) => {}
        Err(AppError::NotFound { .. }) => return no_plan(&name),
        Err(e) => return internal(e),
    }
    match console.app.delete_response_plan(&caller, &arn).await {
        Ok(()) => {
            tracing::info!(user = %who.user.email, plan = %name, "console: response plan deleted");
            see_other(&format!("/response-plans?deleted={}", urlencode(&name)))
        }
        Err(e) => error_page(
            StatusCode::CONFLICT,
            "The response plan was not deleted",
            &app_message(&e),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> PlanForm {
        PlanForm {
            name: "db".into(),
            title: "Database down".into(),
            impact: "2".into(),
            ..Default::default()
        }
    }

    #[test]
    fn member_paths_map_to_fields() {
        assert_eq!(plan_key("name").as_deref(), Some("name"));
        assert_eq!(plan_key("incidentTemplate.title").as_deref(), Some("title"));
        assert_eq!(
            plan_key("incidentTemplate.impact").as_deref(),
            Some("impact")
        );
        assert_eq!(plan_key("engagements[3]").as_deref(), Some("engagements"));
        assert_eq!(plan_key("engagements").as_deref(), Some("engagements"));
        assert_eq!(plan_key("chatChannel"), None);
    }

    #[test]
    fn the_form_checks_what_the_application_does_not() {
        let (impact, issues) = form_issues(&form());
        assert_eq!(impact, Some(2));
        assert!(issues.is_empty(), "{issues:?}");

        let paths = |f: &PlanForm| -> Vec<String> {
            form_issues(f).1.into_iter().map(|i| i.path).collect()
        };
        let mut f = form();
        f.impact = "high".into();
        assert_eq!(form_issues(&f).0, None);
        assert_eq!(paths(&f), ["incidentTemplate.impact"]);
        // Out of range is a number: the application's rule says so.
        f.impact = "9".into();
        assert!(paths(&f).is_empty());
        let mut f = form();
        f.dedupe_string = "d".repeat(MAX_DEDUPE);
        assert!(paths(&f).is_empty());
        f.dedupe_string.push('d');
        assert_eq!(paths(&f), ["incidentTemplate.dedupeString"]);
        let mut f = form();
        f.summary = "s".repeat(MAX_SUMMARY + 1);
        f.display_name = "n".repeat(MAX_DISPLAY_NAME + 1);
        f.title.clear();
        f.engage = (0..6).map(|i| format!("c{i}")).collect();
        assert_eq!(
            paths(&f),
            [
                "displayName",
                "incidentTemplate.summary",
                "incidentTemplate.title",
                "engagements"
            ]
        );
    }

    #[test]
    fn impacts_are_named() {
        assert_eq!(impact_label(1), "1 (Critical)");
        assert_eq!(impact_options().len(), 5);
        assert_eq!(
            impact_options()[4],
            ("5".to_owned(), "5 (No impact)".to_owned())
        );
        assert_eq!(
            contact_alias_of("arn:aws:ssm-contacts:us-east-1:000000000000:contact/ann"),
            "ann"
        );
    }
}
