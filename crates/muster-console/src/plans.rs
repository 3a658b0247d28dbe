//! Escalation plans: contacts of type ESCALATION, their stages, and the contacts or schedules each stage engages.

use crate::SectionRouter;
use crate::auth::CurrentUser;
use crate::pages::upcoming;
use axum::Extension;
use axum::response::Response;
use axum::routing::get;

/// This section's routes.
pub(crate) fn routes() -> SectionRouter {
    SectionRouter::new().route("/escalation-plans", get(escalation_plans))
}

/// `GET /escalation-plans`.
async fn escalation_plans(Extension(who): Extension<CurrentUser>) -> Response {
    upcoming(
        &who,
        "escalation-plans",
        "Escalation plans",
        "aws ssm-contacts list-contacts --type ESCALATION",
    )
}
