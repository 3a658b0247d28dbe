//! Muster's web console: server-rendered pages (askama templates, which escape every value;
//! htmx for partial updates, served from the binary), sign-in with Argon2id passwords,
//! sessions and CSRF protection. See `docs/console.md`.
//!
//! The console shares the main listener with the AWS API: `GET /` redirects to the console
//! ([`root`]) while `POST /` stays the AWS JSON API; the console's pages live at their own
//! paths (`/login`, `/contacts`, `/incidents`, ...), which the AWS protocols never use.
#![forbid(unsafe_code)]

pub mod accounts;
mod assets;
pub mod auth;
mod checks;
mod contacts;
mod engagements;
mod error;
mod home;
mod incidents;
mod integrations;
mod pages;
mod plans;
mod preview;
mod response_plans;
mod schedules;
mod settings;

pub use auth::CurrentUser;
pub use error::ConsoleError;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use muster_core::Clock;
use muster_store::{LoginLimits, Store};

/// The router type of the signed-in sections.
pub(crate) type SectionRouter = Router<Arc<Console>>;
use std::sync::Arc;

/// Session lifetimes and sign-in limits. Instants and durations are milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleLimits {
    /// A session ends after this long without a request (default 12 hours).
    pub session_idle_ms: i64,
    /// A session ends this long after sign-in, however much it is used (default 7 days).
    pub session_max_ms: i64,
    /// A session's last use is written at most this often (default 1 minute), so that
    /// browsing is not a database write per page.
    pub touch_every_ms: i64,
    /// Failed sign-ins allowed per e-mail and per client address in a window (default 5 per
    /// e-mail and 20 per address in 15 minutes).
    pub login: LoginLimits,
}

impl Default for ConsoleLimits {
    fn default() -> Self {
        const MINUTE: i64 = 60_000;
        ConsoleLimits {
            session_idle_ms: 12 * 60 * MINUTE,
            session_max_ms: 7 * 24 * 60 * MINUTE,
            touch_every_ms: MINUTE,
            login: LoginLimits {
                window_ms: 15 * MINUTE,
                max_per_email: 5,
                max_per_address: 20,
            },
        }
    }
}

/// What the console's handlers share.
pub struct Console {
    pub store: Store,
    /// The application (the same object the AWS API and the hooks use): pages change data
    /// through it, so the console and the API apply the same rules.
    pub app: Arc<muster_app::App>,
    /// Real time (sessions and limits are about people's time, not the engine's drills).
    pub clock: Arc<dyn Clock>,
    /// The account whose contacts the console shows (the default account).
    pub account: String,
    /// Cookies get `Secure` (and the `__Host-` prefix): set when the public URL is https.
    pub secure_cookies: bool,
    /// The address people and senders reach Muster at (the `public_url` setting, without a
    /// trailing `/`), for absolute links such as an integration's URL; `None`: the request's
    /// `Host`, over http.
    pub public_url: Option<String>,
    pub limits: ConsoleLimits,
    /// Proxies whose `X-Forwarded-For` names the client for the sign-in limits.
    pub trusted_proxies: auth::TrustedProxies,
    /// The key that seals access-key secrets, so Settings can create access keys. Without it
    /// (see [`Console::with_master_key`]) keys are listed and revoked, not created.
    pub master_key: Option<muster_app::keys::MasterKey>,
}

impl Console {
    /// A console over `store` for `account`; cookies are Secure when `public_url` is https.
    pub fn new(
        app: Arc<muster_app::App>,
        clock: Arc<dyn Clock>,
        account: impl Into<String>,
        public_url: Option<&str>,
    ) -> Console {
        Console {
            store: app.store.clone(),
            app,
            clock,
            account: account.into(),
            secure_cookies: public_url
                .is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("https://")),
            public_url: public_url
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty()),
            limits: ConsoleLimits::default(),
            trusted_proxies: auth::TrustedProxies::default(),
            master_key: None,
        }
    }

    /// Believes `X-Forwarded-For` from these proxies (the sign-in limits' client address).
    pub fn with_trusted_proxies(mut self, proxies: auth::TrustedProxies) -> Console {
        self.trusted_proxies = proxies;
        self
    }

    /// Lets Settings create access keys, sealed with `key` (the server's master key).
    pub fn with_master_key(mut self, key: muster_app::keys::MasterKey) -> Console {
        self.master_key = Some(key);
        self
    }

    /// The application's caller for a signed-in user: the console's account, the server's
    /// region, the user.
    pub(crate) fn caller(
        &self,
        who: &auth::CurrentUser,
    ) -> Result<muster_app::Caller, muster_app::AppError> {
        let account = muster_core::AccountId::parse(&self.account).map_err(|e| {
            tracing::error!(error = %e, "console: the configured account id is invalid");
            muster_app::AppError::internal()
        })?;
        Ok(muster_app::Caller {
            account,
            region: self.app.region.clone(),
            principal: muster_app::Principal::ConsoleUser(who.user.email.clone()),
        })
    }

    /// The session cookie's name.
    pub fn session_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-muster_session"
        } else {
            "muster_session"
        }
    }

    /// The sign-in form's CSRF cookie's name.
    pub fn login_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-muster_login"
        } else {
            "muster_login"
        }
    }
}

/// `GET /`: the console's front door. Goes to the home page, which sends a visitor who is
/// not signed in to the sign-in page first. (`POST /` is the AWS JSON API.)
pub async fn root() -> Redirect {
    Redirect::to("/home")
}

/// The console's routes, to merge into the main router. Every response gets the security
/// headers (CSP allowing only this origin's scripts and styles, no framing, no sniffing).
pub fn router(console: Arc<Console>) -> Router {
    // Each section owns its routes (contacts.rs; plans.rs: escalation plans;
    // schedules.rs: on-call schedules; engagements.rs; settings.rs; incidents.rs and
    // response_plans.rs: the ssm-incidents side, under /incidents and /response-plans only,
    // since the restJson1 API owns its modelled paths such as /startIncident;
    // integrations.rs: alert senders' keys, under /integrations).
    let signed_in = Router::new()
        .merge(incidents::routes())
        .merge(response_plans::routes())
        .merge(integrations::routes())
        .merge(contacts::routes())
        .merge(plans::routes())
        .merge(schedules::routes())
        .merge(engagements::routes())
        .merge(settings::routes())
        .merge(preview::routes())
        .merge(home::routes())
        .route("/logout", post(pages::logout))
        .route_layer(axum::middleware::from_fn_with_state(
            console.clone(),
            auth::require_session,
        ));
    Router::new()
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/static/{file}", get(assets::serve))
        .merge(signed_in)
        .with_state(console)
        .layer(axum::middleware::map_response(security_headers))
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Pages show private data: never cached. Static files set their own (long) caching.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}
