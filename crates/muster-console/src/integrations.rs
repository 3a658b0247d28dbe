//! Integrations: the alert senders' keys (docs/ingest.md). The list (name, format, response
//! plan, active or revoked, the last alert and what it did), New integration, and Revoke.
//!
//! Creating one answers with a page that shows the key once (Muster keeps only its hash),
//! the URL to give the sender and a ready-to-paste configuration for it. Every change goes
//! through the application ([`Console::app`]), as `muster integrations` does.

// Helpers return the page to answer with as their error (`Result<_, Response>`).
#![allow(clippy::result_large_err)]

use crate::auth::CurrentUser;
use crate::engagements::{When, layout, render, when};
use crate::pages::{Layout, error_page, see_other};
use crate::plans::{FormErrors, caller, internal, urlencode};
use crate::response_plans::all_plans;
use crate::{Console, SectionRouter};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form};
use muster_app::AppError;
use muster_core::alert::Format;
use serde::Deserialize;
use std::sync::Arc;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new()
        .route("/integrations", get(list).post(create))
        .route("/integrations/{id}/revoke", post(revoke))
}

/// What the format select shows.
fn format_label(f: Format) -> &'static str {
    match f {
        Format::Alertmanager => "Prometheus Alertmanager",
        Format::Grafana => "Grafana",
        Format::PagerDuty => "PagerDuty Events API v2",
        Format::Opsgenie => "Opsgenie",
        Format::Sns => "CloudWatch alarms through SNS",
        Format::EventBridge => "CloudWatch alarms through EventBridge",
        Format::Generic => "Generic webhook (anything else)",
    }
}

/// The address senders reach Muster at: the configured public URL, else the request's
/// `Host` (when it is a plain host name or address) over http.
fn base_url(console: &Console, headers: &HeaderMap) -> String {
    base_of(console.public_url.as_deref(), headers)
}

fn base_of(public_url: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(u) = public_url {
        return u.to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The URL to give a sender of `format`: the key in the path, except for the PagerDuty
/// events URL (the key is the routing key) and the Opsgenie API URL (the key is the API key;
/// the sender appends `/v2/alerts`).
fn sender_url(base: &str, format: Format, key: &str) -> String {
    match format {
        Format::Opsgenie => format!("{base}/hooks/opsgenie"),
        f => format!("{base}/hooks/{}", f.endpoint().replace("<key>", key)),
    }
}

/// A ready-to-paste configuration for the sender (plain text; the template escapes it).
fn snippet(format: Format, base: &str, key: &str) -> String {
    let url = sender_url(base, format, key);
    match format {
        Format::Alertmanager => format!(
            "# alertmanager.yml: route the alerts to this receiver (route: receiver: muster)\n\
             receivers:\n\
             - name: muster\n  \
               webhook_configs:\n  \
               - url: {url}\n    \
                 send_resolved: true\n"
        ),
        Format::Grafana => format!(
            "Alerting > Contact points > Add contact point\n\
             Integration: Webhook\n\
             URL: {url}\n\
             HTTP method: POST\n"
        ),
        Format::PagerDuty => format!(
            "Events API v2 URL: {url}\n\
             Routing (integration) key: {key}\n\
             \n\
             # A test event:\n\
             curl -sS -X POST '{url}' -H 'content-type: application/json' \\\n    \
             -d '{{\"routing_key\": \"{key}\", \"event_action\": \"trigger\", \"dedup_key\": \"test\", \
             \"payload\": {{\"summary\": \"Test alert\", \"source\": \"curl\", \"severity\": \"warning\"}}}}'\n"
        ),
        Format::Opsgenie => format!(
            "Opsgenie API URL: {url}\n\
             API key: {key}\n\
             (sent as the header Authorization: GenieKey {key})\n\
             \n\
             # A test alert:\n\
             curl -sS -X POST '{url}/v2/alerts' -H 'content-type: application/json' \\\n    \
             -H 'Authorization: GenieKey {key}' \\\n    \
             -d '{{\"message\": \"Test alert\", \"alias\": \"test\", \"priority\": \"P3\"}}'\n"
        ),
        Format::Sns => format!(
            "# Subscribe this HTTPS endpoint to the alarm's SNS topic. Muster checks each\n\
             # message's SNS signature and confirms the subscription itself (over HTTPS to\n\
             # sns.<region>.amazonaws.com).\n\
             aws sns subscribe --topic-arn TOPIC_ARN --protocol https \\\n    \
             --notification-endpoint '{url}'\n"
        ),
        Format::EventBridge => format!(
            "# An API destination (HTTP method POST) posting CloudWatch Alarm State Change\n\
             # events to this endpoint; the connection's authorization is not used.\n\
             API destination endpoint: {url}\n\
             \n\
             aws events create-api-destination --name muster --http-method POST \\\n    \
             --connection-arn CONNECTION_ARN \\\n    \
             --invocation-endpoint '{url}'\n"
        ),
        Format::Generic => format!(
            "curl -sS -X POST '{url}' \\\n    \
             -H 'content-type: application/json' -H 'accept: application/json' \\\n    \
             -d '{{\"title\": \"Backup failed\", \"details\": \"nightly job\", \"dedup\": \"backup\"}}'\n"
        ),
    }
}

/// What to do with the snippet, in a sentence.
fn snippet_intro(format: Format) -> &'static str {
    match format {
        Format::Alertmanager => {
            "Add this receiver to alertmanager.yml (resolved alerts resolve the incident):"
        }
        Format::Grafana => "Create a Webhook contact point with this URL:",
        Format::PagerDuty => {
            "Point the tool's PagerDuty integration at this events URL, with the key as its \
             routing key:"
        }
        Format::Opsgenie => {
            "Point the tool's Opsgenie API URL here, with the key as its API key (it appends \
             /v2/alerts):"
        }
        Format::Sns => {
            "Subscribe the URL to the alarm's topic over HTTPS (SNS needs an https URL Muster \
             answers at). Muster checks SNS's signatures and confirms the subscription itself:"
        }
        Format::EventBridge => "Create an EventBridge API destination posting to this URL:",
        Format::Generic => "Post JSON, a form or query parameters to this URL, for example:",
    }
}

// ---- the list and the form ----------------------------------------------------------------

struct Row {
    id: String,
    name: String,
    format: &'static str,
    plan: String,
    plan_href: String,
    created: When,
    revoked: Option<When>,
    last_alert: Option<When>,
    last_outcome: String,
}

struct Choice {
    value: String,
    label: String,
}

#[derive(Deserialize, Default, Clone)]
struct NewForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    plan: String,
}

#[derive(Template)]
#[template(path = "integrations_list.html")]
struct ListPage {
    layout: Layout,
    csrf: String,
    rows: Vec<Row>,
    formats: Vec<Choice>,
    plans: Vec<Choice>,
    form: NewForm,
    errors: FormErrors,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    revoked: Option<String>,
}

async fn list_page(
    console: &Console,
    who: &CurrentUser,
    status: StatusCode,
    form: NewForm,
    errors: FormErrors,
    notice: Option<String>,
) -> Response {
    let caller = match caller(console, who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let integrations = match console.app.list_integrations(&caller).await {
        Ok(i) => i,
        Err(e) => return internal(e),
    };
    let plans = match all_plans(console, &caller).await {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    let rows = integrations
        .into_iter()
        .map(|i| Row {
            id: i.id.to_string(),
            format: format_label(i.format),
            plan_href: format!("/response-plans/{}/edit", urlencode(&i.plan_name)),
            plan: i.plan_name,
            created: when(i.created_ms),
            revoked: i.revoked_ms.map(when),
            last_alert: i.last_alert_ms.map(when),
            last_outcome: i.last_outcome.unwrap_or_default(),
            name: i.name,
        })
        .collect();
    let formats = Format::ALL
        .iter()
        .map(|f| Choice {
            value: f.as_str().to_owned(),
            label: format_label(*f).to_owned(),
        })
        .collect();
    let plans = plans
        .into_iter()
        .map(|p| Choice {
            label: match p.plan.display_name.as_deref().filter(|d| !d.is_empty()) {
                Some(d) => format!("{d} ({})", p.name),
                None => p.name.clone(),
            },
            value: p.name,
        })
        .collect();
    render(
        status,
        &ListPage {
            layout: layout("Integrations", "integrations", who),
            csrf: who.csrf_token().to_owned(),
            rows,
            formats,
            plans,
            form,
            errors,
            notice,
        },
    )
}

/// `GET /integrations[?revoked=name]`.
async fn list(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Query(q): Query<ListQuery>,
) -> Response {
    // A fixed text around the name (askama escapes it).
    let notice = q
        .revoked
        .map(|n| format!("The integration {n} was revoked: its key is refused from now on."));
    let form = NewForm {
        format: Format::Alertmanager.as_str().to_owned(),
        ..Default::default()
    };
    list_page(
        &console,
        &who,
        StatusCode::OK,
        form,
        FormErrors::default(),
        notice,
    )
    .await
}

/// The form's own checks: a name, a known format, a plan (the application checks the
/// name's characters and that the plan exists).
fn form_checks(form: &NewForm) -> Result<Format, FormErrors> {
    let mut errors = FormErrors::default();
    if form.name.trim().is_empty() {
        errors.add("name", "Enter a name for the integration.");
    }
    let format = Format::parse(form.format.trim());
    if format.is_none() {
        errors.add("format", "Choose the sender's format.");
    }
    if form.plan.trim().is_empty() {
        errors.add(
            "plan",
            "Choose the response plan its alerts start incidents from.",
        );
    }
    match format {
        Some(f) if errors.is_empty() => Ok(f),
        _ => Err(errors),
    }
}

#[derive(Template)]
#[template(path = "integrations_created.html")]
struct CreatedPage {
    layout: Layout,
    name: String,
    format: &'static str,
    plan: String,
    url: String,
    key: String,
    intro: &'static str,
    snippet: String,
}

/// `POST /integrations`: creates it and shows its key, once.
async fn create(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    headers: HeaderMap,
    Form(mut form): Form<NewForm>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    form.name = form.name.trim().to_owned();
    form.plan = form.plan.trim().to_owned();
    let format = match form_checks(&form) {
        Ok(f) => f,
        Err(errors) => {
            return list_page(
                &console,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
                None,
            )
            .await;
        }
    };
    let plan_arn = caller.arn(muster_core::ArnOf::ResponsePlan(&form.plan));
    match console
        .app
        .create_integration(&caller, &form.name, format, &plan_arn)
        .await
    {
        Ok((integration, key)) => {
            tracing::info!(user = %who.user.email, integration = %integration.id, "console: integration created");
            let base = base_url(&console, &headers);
            render(
                StatusCode::OK,
                &CreatedPage {
                    layout: layout(
                        &format!("Integration {} created", integration.name),
                        "integrations",
                        &who,
                    ),
                    name: integration.name,
                    format: format_label(format),
                    plan: integration.plan_name,
                    url: sender_url(&base, format, &key),
                    intro: snippet_intro(format),
                    snippet: snippet(format, &base, &key),
                    key,
                },
            )
        }
        Err(AppError::Internal { .. }) => internal("creating an integration failed"),
        Err(e) => {
            let mut errors = FormErrors::default();
            match &e {
                AppError::Conflict { .. } => errors.add(
                    "name",
                    format!(
                        "An integration named {} exists already; choose another name.",
                        form.name
                    ),
                ),
                AppError::NotFound { .. } => errors.add(
                    "plan",
                    "This response plan does not exist (any more); choose another.",
                ),
                other => {
                    errors = FormErrors::from_app(other, |path| {
                        (path == "name").then(|| "name".to_owned())
                    })
                }
            }
            list_page(
                &console,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
                None,
            )
            .await
        }
    }
}

/// `POST /integrations/{id}/revoke`: its key is refused from now on.
async fn revoke(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Response {
    let caller = match caller(&console, &who) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let name = match console.app.list_integrations(&caller).await {
        Ok(all) => all
            .into_iter()
            .find(|i| i.id.to_string() == id)
            .map(|i| i.name),
        Err(e) => return internal(e),
    };
    let gone = || {
        error_page(
            StatusCode::NOT_FOUND,
            "No such integration",
            "This integration does not exist or is revoked already. The integrations are \
             under Integrations.",
        )
    };
    let Some(name) = name else {
        return gone();
    };
    match console.app.revoke_integration(&caller, &id).await {
        Ok(()) => {
            tracing::info!(user = %who.user.email, integration = %id, "console: integration revoked");
            see_other(&format!("/integrations?revoked={}", urlencode(&name)))
        }
        Err(AppError::NotFound { .. }) => gone(),
        Err(e) => internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_urls() {
        let b = "https://muster.example";
        assert_eq!(
            sender_url(b, Format::Alertmanager, "k1"),
            "https://muster.example/hooks/alertmanager/k1"
        );
        assert_eq!(
            sender_url(b, Format::PagerDuty, "k1"),
            "https://muster.example/hooks/pagerduty/v2/enqueue"
        );
        assert_eq!(
            sender_url(b, Format::Opsgenie, "k1"),
            "https://muster.example/hooks/opsgenie"
        );
        assert_eq!(
            sender_url(b, Format::Sns, "k1"),
            "https://muster.example/hooks/sns/k1"
        );
        assert_eq!(
            sender_url(b, Format::Generic, "k1"),
            "https://muster.example/hooks/generic/k1"
        );
    }

    #[test]
    fn every_snippet_names_its_url_and_key() {
        for f in Format::ALL {
            let s = snippet(*f, "http://m:8080", "secretkey");
            assert!(
                s.contains(&sender_url("http://m:8080", *f, "secretkey")),
                "{f}"
            );
            assert!(s.contains("secretkey"), "{f}: {s}");
        }
        let am = snippet(Format::Alertmanager, "http://m", "k");
        assert!(
            am.contains(
                "  webhook_configs:\n  - url: http://m/hooks/alertmanager/k\n    send_resolved: true\n"
            ),
            "{am}"
        );
        let pd = snippet(Format::PagerDuty, "http://m", "k");
        assert!(pd.contains("\"routing_key\": \"k\""), "{pd}");
        let og = snippet(Format::Opsgenie, "http://m", "k");
        assert!(og.contains("Authorization: GenieKey k"), "{og}");
        assert!(og.contains("'http://m/hooks/opsgenie/v2/alerts'"), "{og}");
        let sns = snippet(Format::Sns, "http://m", "k");
        assert!(sns.contains("--protocol https"), "{sns}");
    }

    #[test]
    fn the_base_is_the_public_url_else_the_host() {
        let mut h = HeaderMap::new();
        assert_eq!(base_of(None, &h), "http://localhost");
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(base_of(None, &h), "http://127.0.0.1:8080");
        assert_eq!(
            base_of(Some("https://muster.example"), &h),
            "https://muster.example"
        );
        h.insert(header::HOST, "evil.example/<x>".parse().unwrap());
        assert_eq!(base_of(None, &h), "http://localhost");
    }

    #[test]
    fn form_checks_each_field() {
        let form = |name: &str, format: &str, plan: &str| NewForm {
            name: name.into(),
            format: format.into(),
            plan: plan.into(),
        };
        assert_eq!(
            form_checks(&form("prom", "alertmanager", "db")).ok(),
            Some(Format::Alertmanager)
        );
        let e = form_checks(&form(" ", "nope", "")).unwrap_err();
        assert!(e.has("name") && e.has("format") && e.has("plan"));
        let e = form_checks(&form("x", "Generic", "db")).unwrap_err();
        assert!(!e.has("name") && e.has("format") && !e.has("plan"));
    }
}
