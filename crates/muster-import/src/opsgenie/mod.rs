//! The Opsgenie source: reads an account through REST v2 (or a directory Opsgenie's
//! configuration-backup tool wrote) and maps it onto [`crate::Desired`].
//!
//! * [`fetch`] reads users (paged), their contacts and notification rules, teams, schedules with
//!   rotations, their overrides and timelines, and escalations; [`write_dir`] / [`read_dir`]
//!   keep that as a directory (or read the backup tool's `OpsGenieBackups/`).
//! * [`map`] is pure: the desired set, every loss, and per schedule a rendering of who is on
//!   call over the equivalence window — Opsgenie's own timeline when read live
//!   (`rendered_by: source`), else [`reference`]'s evaluation of Opsgenie's semantics.
//!
//! # Mapping
//!
//! * user → PERSONAL contact: alias from the e-mail local part (suffix on clash), display name
//!   sanitised; `email`/`sms`/`voice` contacts → EMAIL/SMS/VOICE channels (`<cc>-<number>` →
//!   `+<cc><number>`), activated when Opsgenie has them enabled; the first enabled
//!   `create-alert` rule (by `order`) that matches all alerts at any time → the personal plan
//!   (P1: cumulative `sendAfter` → stage durations, waits over 30 minutes as extra stages
//!   without channels, last stage 0).
//! * schedule → ONCALL_SCHEDULE contact `sched-<name>`; each rotation → a rotation (id = the
//!   rotation's id) in the schedule's zone, starting at `startDate`: `daily`/`weekly` × `length`
//!   → a daily / weekly hand-off at `startDate`'s local time with multiplier `length`;
//!   `hourly` × h → 24/h daily hand-offs (h divides 24) or a daily hand-off with multiplier
//!   h/24; time restrictions → coverage windows per weekday, cut at midnight (a window ending
//!   at midnight is written `End 00:00`, i.e. wrapping); `none` participants (and those not
//!   importable) → channel-less "nobody" persons `none-1`, `none-2`, … keeping the turn order.
//! * overrides → P7: an override naming rotations overrides those; one naming none overrides
//!   every rotation of the schedule: `[user]` where the user is a member, `[]` elsewhere.
//! * a rotation's [`crate::model::Rotation::overrides`] are listed in the order they must be
//!   created: where overrides overlap, the one created later wins (Opsgenie's later override;
//!   the `endDate` override last, so that nothing puts anyone on call after the end).
//! * escalation → ESCALATION contact `esc-<name>`: rules by delay (cumulative from the alert's
//!   creation) → stages with the deltas as durations (P2), repeats unrolled.
//!
//! # Losses
//!
//! An override's losses name it as `override:<rotation id>/<override id>` (the first imported
//! rotation it applies to), so that the equivalence check ties them to the schedule; teams are
//! `team:<id>`.
//!
//! | code | severity | entity | meaning |
//! |---|---|---|---|
//! | `renamed` | info | person, schedule, rotation, escalation | a name or alias was changed to fit the model |
//! | `user-blocked` | warn | person | blocked in Opsgenie, imported as an ordinary contact |
//! | `unsupported-channel` | warn | person | a `mobile` (push) contact or rule step; dropped, or paged by e-mail with `--unsupported-channel email` |
//! | `invalid-phone-number` | error | person | an sms/voice contact that is not `<cc>-<number>`; not imported |
//! | `notification-rule-not-imported` | warn | person | a further create-alert rule (filters, time restriction); not imported |
//! | `notification-action-not-imported` | info | person | rules for acknowledged/closed/… alerts, schedule start/end reminders |
//! | `no-notification-rule` | warn | person | no plain create-alert rule: the contact gets an empty plan |
//! | `notification-repeat` | warn | person | the rule repeats its steps; the plan runs once |
//! | `notification-step-unmatched` | warn | person | a step names a contact the user does not have; dropped |
//! | `nobody-contact` | info | person | a channel-less contact stands for `none` turns |
//! | `unknown-time-zone` | error | schedule | schedule not imported |
//! | `schedule-disabled` | warn | schedule | disabled in Opsgenie, imported as active |
//! | `schedule-incomplete` | warn | schedule | some (not ended) rotations of the schedule are not imported |
//! | `schedule-empty` | error | schedule | no rotation could be imported; schedule not imported |
//! | `schedule-too-many-rotations` | error | rotation | rotations beyond the 25th; not imported |
//! | `rotation-ended` | info | rotation | `endDate` in the past; not imported |
//! | `rotation-end-date` | warn | rotation | `endDate` ahead: an empty override from then to the horizon |
//! | `rotation-participant-not-imported` | warn | rotation | a team, escalation or unknown user participant: its turns page nobody |
//! | `rotation-empty` | error | rotation | no participants; not imported |
//! | `rotation-duplicate-member` | error | rotation | a user takes several turns; not imported |
//! | `rotation-too-many-members` | error | rotation | more than 30 participants; not imported |
//! | `rotation-length-unsupported` | error | rotation | a turn length Muster cannot express; not imported |
//! | `hourly-rotation-dst` | warn | rotation | hourly turns in a zone that changes its clocks within the horizon |
//! | `dst-skipped-time` | warn | rotation | a hand-off or coverage edge falls in the hour a spring clock change skips |
//! | `coverage-window-short` | warn | rotation | a restriction piece under 30 minutes (after cutting at midnight); dropped |
//! | `restriction-invalid` | error | rotation | a time restriction that does not parse; not imported |
//! | `override-beyond-horizon` | info | override | starts after the horizon; import again later |
//! | `override-too-short` | warn | override | under 30 minutes; not imported |
//! | `override-not-imported` | error | override | by a team/escalation or an unknown user; not imported |
//! | `override-not-member` | error | override | the user is not a member of the rotation(s); not imported there |
//! | `override-schedule-wide` | warn | override | schedule-wide override whose user's rotations cover less than the others, or lose the user to a later override |
//! | `escalation-recipient-not-imported` | error | escalation | a rule's user/schedule is not imported, or an unsupported recipient |
//! | `escalation-notify-type` | error | escalation | `next`/`previous`/… on-call of a schedule; rule not imported |
//! | `escalation-team-recipient` | error | escalation | a team recipient; rule not imported |
//! | `escalation-empty` | error | escalation | no rule could be imported; escalation not imported |
//! | `escalation-repeat-unrolled` | info | escalation | the repeat is written out as stages |
//! | `escalation-if-not-closed` | warn | escalation | `if-not-closed` rules: earlier contacts made non-essential |
//! | `team-not-imported` | info | team | teams have no counterpart |
//! | `forwarding-not-imported` | warn | schedule | the live timeline shows turns forwarded to other users |
//! | `rendering-failed` | warn | schedule | the reference rendering could not be computed |

mod client;
mod dir;
mod map;
mod raw;
pub mod reference;

pub use client::{Client, EU, US, fetch};
pub use dir::{FILE, read_dir, write_dir};
pub use map::{coverage, e164, map, nobody_id, timed_stages};
pub use raw::*;

/// The source's name in `muster import SOURCE` and in the import map.
pub const SYSTEM: &str = "opsgenie";
