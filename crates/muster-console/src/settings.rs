//! Settings: access keys, the sender vCard, the outbox, and provider status.

use crate::SectionRouter;
use crate::auth::CurrentUser;
use crate::pages::upcoming;
use axum::Extension;
use axum::response::Response;
use axum::routing::get;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new().route("/settings", get(settings))
}

/// `GET /settings`.
async fn settings(Extension(who): Extension<CurrentUser>) -> Response {
    upcoming(&who, "settings", "Settings", "muster keys list")
}
