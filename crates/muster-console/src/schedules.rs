//! On-call schedules: rotations, overrides, the calendar of the next four weeks and calendar-feed links.

use crate::SectionRouter;
use crate::auth::CurrentUser;
use crate::pages::upcoming;
use axum::Extension;
use axum::response::Response;
use axum::routing::get;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new().route("/schedules", get(schedules))
}

/// `GET /schedules`.
async fn schedules(Extension(who): Extension<CurrentUser>) -> Response {
    upcoming(
        &who,
        "schedules",
        "On-call schedules",
        "aws ssm-contacts list-rotations",
    )
}
