//! `muster import`: brings a team's on-call set-up over from another paging system.
//!
//! One pipeline for every source (docs/import.md):
//! 1. a source reads its system (live, or a directory `capture` wrote) into its own raw,
//!    serialisable form, and maps that onto [`model::Desired`]: people, rotations, on-call
//!    schedules and escalations in *source-id space*, the losses of the mapping, and the
//!    source's own rendering of who is on call;
//! 2. [`plan`] compares the desired set with what earlier imports made (the `import_map`
//!    table) and what Muster holds now, entity by entity;
//! 3. [`apply`] carries the plan out through the application layer, recording each entity in
//!    the map as it goes, so that an interrupted apply, run again, ends in the same state;
//! 4. [`equivalence`] compares, minute by minute over four weeks, the source's rendering with
//!    Muster's own shift computation, before (from the plan) and after (from the database).
#![forbid(unsafe_code)]

pub mod model;
pub mod sanitize;
pub mod error;
pub mod progress;

pub use error::ImportError;
pub use model::Desired;

/// Choices that change how a source maps (the command's options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOptions {
    /// `--unsupported-channel email`: a notification step on a device the model cannot hold
    /// (push, Slack, …) pages the person's first e-mail channel instead; otherwise the step is
    /// dropped. Either way the loss `unsupported-channel` is reported.
    pub email_instead_of_unsupported: bool,
    /// How far ahead overrides and rendered schedules are read (days; at most 183, the
    /// model's six months).
    pub horizon_days: u32,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            email_instead_of_unsupported: false,
            horizon_days: 90,
        }
    }
}

/// The equivalence window: four weeks from the moment of the plan.
pub const EQUIVALENCE_DAYS: i64 = 28;
