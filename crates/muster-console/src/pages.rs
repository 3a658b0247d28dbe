//! The pages. Each is an askama template (`templates/`) extending `base.html`; askama
//! HTML-escapes every value it prints, so user text (names, aliases, searches) shows as text.

use crate::auth::{self, CurrentUser, same_secret};
use crate::{Console, assets};
use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};
use muster_store::LoginAttempt;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// One entry of the left navigation.
pub(crate) struct NavItem {
    pub key: &'static str,
    pub label: &'static str,
    pub href: &'static str,
}

/// The left navigation, with the AWS console's labels.
pub(crate) const NAV: &[NavItem] = &[
    NavItem {
        key: "home",
        label: "Home",
        href: "/home",
    },
    NavItem {
        key: "incidents",
        label: "Incidents",
        href: "/incidents",
    },
    NavItem {
        key: "response-plans",
        label: "Response plans",
        href: "/response-plans",
    },
    NavItem {
        key: "integrations",
        label: "Integrations",
        href: "/integrations",
    },
    NavItem {
        key: "contacts",
        label: "Contacts",
        href: "/contacts",
    },
    NavItem {
        key: "escalation-plans",
        label: "Escalation plans",
        href: "/escalation-plans",
    },
    NavItem {
        key: "schedules",
        label: "On-call schedules",
        href: "/schedules",
    },
    NavItem {
        key: "engagements",
        label: "Engagements",
        href: "/engagements",
    },
    NavItem {
        key: "settings",
        label: "Settings",
        href: "/settings",
    },
];

/// The signed-in frame: who is signed in, the CSRF token of their forms, the current page.
pub(crate) struct Nav {
    pub email: String,
    pub csrf_token: String,
    pub active: &'static str,
    pub items: &'static [NavItem],
}

/// What `base.html` needs.
pub(crate) struct Layout {
    pub title: String,
    pub css: &'static str,
    pub htmx: &'static str,
    pub js: &'static str,
    /// `None` on pages shown before sign-in (no navigation, no htmx CSRF header).
    pub nav: Option<Nav>,
}

impl Layout {
    pub(crate) fn public(title: &str) -> Layout {
        Layout {
            title: title.to_owned(),
            css: assets::css_path(),
            htmx: assets::htmx_path(),
            js: assets::js_path(),
            nav: None,
        }
    }

    pub(crate) fn signed_in(title: &str, active: &'static str, who: &CurrentUser) -> Layout {
        Layout {
            nav: Some(Nav {
                email: who.user.email.clone(),
                csrf_token: who.csrf_token().to_owned(),
                active,
                items: NAV,
            }),
            ..Layout::public(title)
        }
    }
}

pub(crate) fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: a template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

/// A 303 See Other to `to` (a local path).
pub(crate) fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/contacts")),
    );
    r
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    layout: Layout,
    heading: String,
    message: String,
}

/// A page that only says something (errors, refusals), with a way back to the console.
pub(crate) fn error_page(status: StatusCode, heading: &str, message: &str) -> Response {
    render(
        status,
        &MessagePage {
            layout: Layout::public(heading),
            heading: heading.to_owned(),
            message: message.to_owned(),
        },
    )
}

pub(crate) fn internal_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console: request failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The console could not do this. Try again; if it keeps failing, the server's log says \
         why.",
    )
}

// ---- sign-in ----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    error: Option<String>,
    csrf_token: String,
    next: String,
    no_users: bool,
}

#[derive(Deserialize, Default)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    next: String,
}

/// Where to go after sign-in: a local path only (never another site), else the contacts.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.starts_with("/login")
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/contacts".to_owned(),
    }
}

/// Renders the sign-in form with a login CSRF token, setting its cookie if it is new.
async fn login_form(
    console: &Console,
    status: StatusCode,
    token: Option<&str>,
    email: &str,
    next: &str,
    error: Option<String>,
) -> Response {
    let (token, fresh) = match token {
        Some(t) => (t.to_owned(), false),
        None => (auth::random_token(), true),
    };
    let no_users = matches!(console.store.count_users().await, Ok(0));
    let mut r = render(
        status,
        &LoginPage {
            layout: Layout::public("Sign in"),
            email: email.to_owned(),
            error,
            csrf_token: token.clone(),
            next: next.to_owned(),
            no_users,
        },
    );
    if fresh {
        r.headers_mut().append(
            header::SET_COOKIE,
            auth::set_cookie(console.login_cookie(), Some(&token), console.secure_cookies),
        );
    }
    r
}

/// `GET /login`.
pub(crate) async fn login_page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = local_path(q.next.as_deref());
    // Already signed in: nothing to do here.
    if let Ok(Some(_)) = auth::current_session(&console, &headers).await {
        return see_other(&next);
    }
    let token = auth::cookie_token(&headers, console.login_cookie());
    login_form(&console, StatusCode::OK, token, "", &next, None).await
}

/// Counts a sign-in attempt by outcome: `succeeded`, `failed` or `limited`.
fn signins(outcome: &'static str) {
    metrics::counter!("muster_console_signins_total", "outcome" => outcome).increment(1);
}

/// The one message for a wrong e-mail, a wrong password and a disabled user, so the form
/// does not tell whether an e-mail has an account.
const WRONG: &str = "The e-mail address or password is incorrect.";

/// `POST /login`: checks the form's token, the sign-in limits, then the password; on success
/// starts a session and goes to `next`.
pub(crate) async fn login_submit(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = local_path(Some(&form.next));
    let Some(cookie) = auth::cookie_token(&headers, console.login_cookie()) else {
        return error_page(
            StatusCode::FORBIDDEN,
            "Sign-in form expired",
            "This sign-in form could not be checked (cookies may be blocked, or it is too \
             old). Open the sign-in page again and retry.",
        );
    };
    if !same_secret(&form.csrf_token, cookie) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Sign-in form expired",
            "This sign-in form could not be checked (it is out of date). Open the sign-in page \
             again and retry.",
        );
    }
    let typed = form.email.trim().to_owned();
    let retry = |status: StatusCode, message: String| {
        let console = console.clone();
        let typed = typed.clone();
        let next = next.clone();
        async move { login_form(&console, status, Some(cookie), &typed, &next, Some(message)).await }
    };
    if typed.is_empty() || form.password.is_empty() {
        return retry(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your e-mail address and password.".into(),
        )
        .await;
    }
    // An e-mail that cannot be a user's is still counted (as typed, lower case, cut to the
    // longest e-mail), so the answers and the limits are the same for every e-mail.
    let email = crate::accounts::normalise_email(&typed).unwrap_or_else(|_| {
        typed
            .to_lowercase()
            .chars()
            .take(crate::accounts::MAX_EMAIL_BYTES)
            .collect()
    });
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let address = peer
        .map(|Extension(ConnectInfo(a))| {
            auth::client_key(console.trusted_proxies.client_ip(a.ip(), &forwarded))
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let now = console.clock.now_ms();
    match console
        .store
        .begin_login_attempt(&email, &address, now, console.limits.login)
        .await
    {
        Ok(LoginAttempt::Allowed { .. }) => {}
        Ok(LoginAttempt::Refused { retry_after_ms }) => {
            tracing::warn!(%address, "console: sign-in refused by the attempt limit");
            signins("limited");
            let minutes = (retry_after_ms + 59_999) / 60_000;
            let plural = if minutes == 1 { "" } else { "s" };
            return retry(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed sign-in attempts. Wait {minutes} minute{plural}, then try \
                     again."
                ),
            )
            .await;
        }
        Err(e) => return internal_error(e),
    }
    let user = match console.store.get_user_by_email(&email).await {
        Ok(u) => u,
        Err(e) => return internal_error(e),
    };
    // Argon2 on a blocking thread; an unknown e-mail is checked against a dummy hash so it
    // takes as long as a wrong password.
    let password = form.password;
    let phc = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| crate::accounts::dummy_hash().to_owned());
    let matches =
        tokio::task::spawn_blocking(move || crate::accounts::verify_password(&password, &phc))
            .await
            .unwrap_or(false);
    let user = match user {
        Some(u) if matches && u.disabled_ms.is_none() => u,
        _ => {
            tracing::info!(%address, "console: failed sign-in");
            signins("failed");
            return retry(StatusCode::UNAUTHORIZED, WRONG.into()).await;
        }
    };
    if let Err(e) = console.store.clear_login_attempts(&email).await {
        tracing::warn!(error = %e, "console: clearing sign-in attempts failed");
    }
    // Housekeeping at each sign-in: what has expired or left the window goes.
    let _ = console.store.delete_expired_sessions(now).await;
    let _ = console
        .store
        .prune_login_attempts(now - console.limits.login.window_ms)
        .await;
    let token = auth::random_token();
    let limits = &console.limits;
    let session = muster_store::SessionRecord {
        token_hash: auth::token_hash(&token),
        user_id: user.id,
        csrf_token: auth::random_token(),
        created_ms: now,
        expires_ms: now + limits.session_idle_ms.min(limits.session_max_ms),
        last_seen_ms: now,
    };
    if let Err(e) = console.store.create_session(&session).await {
        return internal_error(e);
    }
    tracing::info!(user = %user.email, "console: signed in");
    signins("succeeded");
    let mut r = see_other(&next);
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        auth::set_cookie(
            console.session_cookie(),
            Some(&token),
            console.secure_cookies,
        ),
    );
    // The sign-in form's token is spent.
    h.append(
        header::SET_COOKIE,
        auth::set_cookie(console.login_cookie(), None, console.secure_cookies),
    );
    r
}

/// `POST /logout`: ends the session (behind [`auth::require_session`], so it needs the CSRF
/// token like every other form).
pub(crate) async fn logout(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<CurrentUser>,
) -> Response {
    if let Err(e) = console.store.delete_session(&who.session.token_hash).await {
        return internal_error(e);
    }
    tracing::info!(user = %who.user.email, "console: signed out");
    let mut r = see_other("/login");
    r.headers_mut().append(
        header::SET_COOKIE,
        auth::set_cookie(console.session_cookie(), None, console.secure_cookies),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_path_only() {
        assert_eq!(local_path(Some("/contacts?q=a")), "/contacts?q=a");
        assert_eq!(local_path(Some("/schedules")), "/schedules");
        for bad in [
            None,
            Some(""),
            Some("https://evil.example/"),
            Some("//evil.example/"),
            Some("/\\evil.example"),
            Some("/login?next=/x"),
            Some("/contacts\r\nSet-Cookie: x=1"),
            Some("contacts"),
        ] {
            assert_eq!(local_path(bad), "/contacts", "{bad:?}");
        }
    }
}
