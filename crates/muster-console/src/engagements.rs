//! Engagements: engage a contact, the list, and each engagement with its pages and receipts.

use crate::SectionRouter;
use crate::auth::CurrentUser;
use crate::pages::upcoming;
use axum::Extension;
use axum::response::Response;
use axum::routing::get;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new().route("/engagements", get(engagements))
}

/// `GET /engagements`.
async fn engagements(Extension(who): Extension<CurrentUser>) -> Response {
    upcoming(
        &who,
        "engagements",
        "Engagements",
        "aws ssm-contacts list-engagements",
    )
}
