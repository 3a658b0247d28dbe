//! Muster's application layer: what Muster does, whichever way a request came in.
//!
//! Every adapter (the AWS API in `muster-aws`, the provider hooks and links in
//! `muster-hooks`, the console in `muster-console`, the CLI in `muster`) calls this crate
//! with domain values and a [`Caller`], and gets domain values or an [`AppError`] back; each
//! renders that error in its own protocol. Nothing here knows a wire format.
//!
//! [`App`] is the service object: one per process, shared by every adapter and by the job
//! runner. Each noun's use cases are a module with an `impl App` block of their own:
//!
//! | module | what |
//! |---|---|
//! | [`engagements`] | start, stop, acknowledge (every path), the stage and send jobs, the write queue, the auditor |
//! | [`activation`] | activation codes: send, check, the send limits |
//! | [`replies`] | SMS and e-mail replies: codes, STOP/START/HELP, consent |
//! | [`rotations`] | a stored rotation as the shift maths' spec, its overrides |
//! | [`feeds`] | calendar feed tokens and the iCalendar of a feed |
//! | [`keys`] | the master key, sealed access-key secrets |
//! | [`codes`] | keyed codes and tokens: activation, accept codes, links, unsubscribe |
//! | [`messaging`] | the providers, templates and identity messages go out with |
#![forbid(unsafe_code)]

pub mod activation;
mod cache;
pub mod caller;
pub mod codes;
pub mod contacts;
pub mod engagements;
pub mod error;
pub mod feeds;
pub mod import;
pub mod incidents;
pub mod ingest;
pub mod keys;
pub mod messaging;
pub mod preview;
pub mod replies;
pub mod rotations;

pub use caller::{Caller, Principal};
pub use error::{AppError, Dependent, FieldIssue};

use muster_core::{Clock, Region};
use muster_jobs::JobLink;
use muster_store::Store;
use std::sync::Arc;

/// Limits an operator may tune.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Page size when a List call gives no MaxResults (or 0).
    pub default_page_size: u32,
    /// Tags per resource (AWS: 50).
    pub max_tags: usize,
    /// Alerts waiting to be written beyond which a new one is refused at once as an overload
    /// (its sender retries: 503, or 429 on the PagerDuty/Opsgenie endpoints), instead of
    /// waiting behind them.
    pub alerts_waiting: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_page_size: 100,
            max_tags: 50,
            alerts_waiting: 1024,
        }
    }
}

/// The application: the store, the clock, messaging, and this process's job runner.
pub struct App {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
    pub messaging: Arc<messaging::Messaging>,
    /// The region written into ARNs built outside a request (the engine's pages).
    pub region: Region,
    /// The local job runner (set once it runs): poked after a commit that wrote jobs, and
    /// handed the jobs due at once directly.
    pub jobs: JobLink,
    /// Group commit of the engagement writes (starts, steps, page outcomes).
    pub(crate) writes: engagements::WriteQueue,
    /// Group commit of the alerts that open incidents absorb.
    pub(crate) absorbs: ingest::AbsorbQueue,
    /// Alerts' response plans (with their settings) by account and name: what every alert
    /// reads.
    pub(crate) alert_plans: cache::Cached<(String, String), std::sync::Arc<ingest::AlertPlan>>,
}

impl App {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        messaging: Arc<messaging::Messaging>,
        region: Region,
    ) -> App {
        App {
            store,
            clock,
            limits: Limits::default(),
            messaging,
            region,
            jobs: JobLink::default(),
            writes: Default::default(),
            absorbs: Default::default(),
            alert_plans: Default::default(),
        }
    }

    /// A caller acting for the system itself (jobs, the auditor, the CLI) in `account`.
    pub fn system(&self, account: muster_core::AccountId) -> Caller {
        Caller {
            account,
            region: self.region.clone(),
            principal: Principal::System,
        }
    }
}
