//! The engagement state machine: which stages have begun, who was engaged through which
//! path, who acknowledged. Pure: the engine stores a [`Snapshot`] and a [`State`] as JSON
//! and calls [`State::advance`] with the time; what to page comes back as [`PageOrder`]s.
//!
//! Rules (DESIGN.md and docs/engagements.md):
//! - A *unit* is one contact engaged through its own plan from an instant: a PERSONAL
//!   contact pages its channels; an ESCALATION contact engages other contacts. Stage `k` of
//!   a unit begins at its start plus the durations of the stages before it.
//! - An ONCALL_SCHEDULE contact is resolved, at the instant it is engaged, to the people its
//!   rotations put on call then (overrides included); each is engaged through their own plan.
//!   Somebody on call in two rotations is engaged once.
//! - The plans and rotations are the ones snapshotted when the engagement started. A target
//!   missing from the snapshot (deleted before the engagement) is skipped.
//! - An acknowledgement stops the paging of that contact in the engagement (every unit of
//!   that contact, and later stages never engage them again). An acknowledgement by an
//!   essential contact also stops the later stages of the escalation plan that engaged them
//!   (and of the plan above, while the chain is essential).
//! - The engagement is finished when every unit has begun all its stages and the last one's
//!   duration has run out, or has been stopped by an acknowledgement.

use crate::contact::{ContactType, Plan, Target};
use crate::rotation::{self, OverrideSpec, Recurrence, RotationSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Deepest nesting of escalation plans followed (a plan naming itself stops here).
pub const MAX_DEPTH: usize = 4;

/// What an engagement runs on, fixed when it starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The engaged contact's ARN.
    pub root: String,
    /// Every contact the plans can reach, by ARN.
    pub contacts: BTreeMap<String, SnapContact>,
    /// Every rotation the schedules name, by ARN.
    pub rotations: BTreeMap<String, SnapRotation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapContact {
    pub alias: String,
    pub contact_type: ContactType,
    pub plan: Plan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapRotation {
    pub start_ms: i64,
    pub time_zone: String,
    /// Member contact ARNs in shift order.
    pub members: Vec<String>,
    pub recurrence: Recurrence,
    pub overrides: Vec<SnapOverride>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapOverride {
    pub id: String,
    /// Contact ARNs on call instead.
    pub members: Vec<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub created_ms: i64,
}

impl SnapRotation {
    /// The rotation and its overrides as the shift maths wants them; `None` if the zone is
    /// unknown or an instant is out of range.
    pub fn spec(&self) -> Option<(RotationSpec, Vec<OverrideSpec>)> {
        let spec = RotationSpec {
            start: ts(self.start_ms)?,
            time_zone: rotation::time_zone(&self.time_zone)?,
            members: self.members.clone(),
            recurrence: self.recurrence.clone(),
        };
        let overrides = self
            .overrides
            .iter()
            .filter_map(|o| {
                Some(OverrideSpec {
                    id: o.id.clone(),
                    members: o.members.clone(),
                    start: ts(o.start_ms)?,
                    end: ts(o.end_ms)?,
                    created: ts(o.created_ms)?,
                })
            })
            .collect();
        Some((spec, overrides))
    }

    /// Who is on call at `at_ms` (contact ARNs); empty if the zone is unknown.
    pub fn on_call_at(&self, at_ms: i64) -> Vec<String> {
        let (Some((spec, overrides)), Some(at)) = (self.spec(), ts(at_ms)) else {
            return Vec::new();
        };
        rotation::on_call_at(&spec, &overrides, at)
    }
}

fn ts(ms: i64) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond(ms).ok()
}

/// One step of the path from the engaged contact to a paged one (`ResolutionContact`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathNode {
    pub contact_arn: String,
    pub contact_type: ContactType,
    /// The stage of the escalation plan above that engaged this contact; `None` for the
    /// engaged contact itself.
    pub stage_index: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    Personal,
    Escalation,
}

/// A contact engaged through its own plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub contact_arn: String,
    pub kind: UnitKind,
    /// When stage 0 began (epoch ms).
    pub start_ms: i64,
    /// The first stage not begun yet.
    pub next_stage: usize,
    /// The escalation unit that engaged it.
    pub parent: Option<usize>,
    /// Whether its acknowledgement stops the parent's later stages.
    pub essential: bool,
    /// From the engaged contact down to this one.
    pub path: Vec<PathNode>,
    /// When this contact acknowledged (PERSONAL units).
    pub acked_ms: Option<i64>,
    /// No later stage begins (acknowledged, or an essential acknowledgement below).
    pub halted: bool,
    /// When it halted.
    #[serde(default)]
    pub halted_ms: Option<i64>,
}

/// A channel to page now: one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOrder {
    /// Index of the unit in [`State::units`].
    pub unit: usize,
    pub contact_arn: String,
    pub channel_arn: String,
    /// The stage of the contact's own plan.
    pub stage_index: u32,
    /// 0: no retry.
    pub retry_interval_minutes: u32,
    /// When the stage began (may be before now if the engine was late).
    pub due_ms: i64,
}

/// Where an engagement is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub units: Vec<Unit>,
}

const MINUTE_MS: i64 = 60_000;

impl State {
    /// An engagement of `snapshot.root` starting at `start_ms`, before any stage began.
    pub fn start(snapshot: &Snapshot, start_ms: i64) -> State {
        let mut state = State::default();
        state.engage(
            snapshot,
            &snapshot.root,
            start_ms,
            None,
            false,
            Vec::new(),
            None,
        );
        state
    }

    fn plan<'a>(&self, snapshot: &'a Snapshot, unit: usize) -> Option<&'a Plan> {
        snapshot
            .contacts
            .get(&self.units[unit].contact_arn)
            .map(|c| &c.plan)
    }

    /// When stage `k` of the unit begins.
    fn stage_start(&self, snapshot: &Snapshot, unit: usize, k: usize) -> i64 {
        let u = &self.units[unit];
        let before: i64 = self
            .plan(snapshot, unit)
            .map(|p| {
                p.stages
                    .iter()
                    .take(k)
                    .map(|s| i64::from(s.duration_minutes))
                    .sum()
            })
            .unwrap_or(0);
        u.start_ms + before * MINUTE_MS
    }

    fn stage_count(&self, snapshot: &Snapshot, unit: usize) -> usize {
        self.plan(snapshot, unit).map_or(0, |p| p.stages.len())
    }

    /// Engages `arn` from `at_ms`: pushes its unit(s). `stage` is the parent's stage.
    #[allow(clippy::too_many_arguments)]
    fn engage(
        &mut self,
        snapshot: &Snapshot,
        arn: &str,
        at_ms: i64,
        parent: Option<usize>,
        essential: bool,
        mut path: Vec<PathNode>,
        stage: Option<u32>,
    ) {
        let Some(contact) = snapshot.contacts.get(arn) else {
            return;
        };
        if path.len() >= MAX_DEPTH || path.iter().any(|n| n.contact_arn == arn) {
            return;
        }
        path.push(PathNode {
            contact_arn: arn.to_string(),
            contact_type: contact.contact_type,
            stage_index: stage,
        });
        match contact.contact_type {
            ContactType::Personal => {
                if self.acknowledged(arn) {
                    return;
                }
                self.units.push(Unit {
                    contact_arn: arn.to_string(),
                    kind: UnitKind::Personal,
                    start_ms: at_ms,
                    next_stage: 0,
                    parent,
                    essential,
                    path,
                    acked_ms: None,
                    halted: false,
                    halted_ms: None,
                });
            }
            ContactType::Escalation => self.units.push(Unit {
                contact_arn: arn.to_string(),
                kind: UnitKind::Escalation,
                start_ms: at_ms,
                next_stage: 0,
                parent,
                essential,
                path,
                acked_ms: None,
                halted: false,
                halted_ms: None,
            }),
            ContactType::OncallSchedule => {
                let mut seen: Vec<String> = Vec::new();
                for rotation in &contact.plan.rotation_ids {
                    let Some(r) = snapshot.rotations.get(rotation) else {
                        continue;
                    };
                    for member in r.on_call_at(at_ms) {
                        if !seen.contains(&member) {
                            seen.push(member);
                        }
                    }
                }
                for member in seen {
                    self.engage(
                        snapshot,
                        &member,
                        at_ms,
                        parent,
                        essential,
                        path.clone(),
                        stage,
                    );
                }
            }
        }
    }

    /// Whether this contact acknowledged in this engagement.
    pub fn acknowledged(&self, contact_arn: &str) -> bool {
        self.units
            .iter()
            .any(|u| u.contact_arn == contact_arn && u.acked_ms.is_some())
    }

    /// Begins every stage due at `now_ms` (in order, engaging escalation targets, which may
    /// begin their own first stages at once) and returns the channels to page.
    pub fn advance(&mut self, snapshot: &Snapshot, now_ms: i64) -> Vec<PageOrder> {
        let mut orders = Vec::new();
        let mut i = 0;
        while i < self.units.len() {
            loop {
                let u = &self.units[i];
                if u.halted || u.next_stage >= self.stage_count(snapshot, i) {
                    break;
                }
                let k = u.next_stage;
                let at = self.stage_start(snapshot, i, k);
                if at > now_ms {
                    break;
                }
                self.units[i].next_stage += 1;
                let Some(plan) = self.plan(snapshot, i) else {
                    break;
                };
                let stage = &plan.stages[k];
                let stage_index = u32::try_from(k).unwrap_or(u32::MAX);
                match self.units[i].kind {
                    UnitKind::Personal => {
                        for t in &stage.targets {
                            if let Target::Channel {
                                channel_arn,
                                retry_interval_minutes,
                            } = t
                            {
                                orders.push(PageOrder {
                                    unit: i,
                                    contact_arn: self.units[i].contact_arn.clone(),
                                    channel_arn: channel_arn.clone(),
                                    stage_index,
                                    retry_interval_minutes: retry_interval_minutes.unwrap_or(0),
                                    due_ms: at,
                                });
                            }
                        }
                    }
                    UnitKind::Escalation => {
                        let path = self.units[i].path.clone();
                        for t in &stage.targets {
                            if let Target::Contact {
                                contact_arn,
                                is_essential,
                            } = t
                            {
                                self.engage(
                                    snapshot,
                                    contact_arn,
                                    at,
                                    Some(i),
                                    *is_essential,
                                    path.clone(),
                                    Some(stage_index),
                                );
                            }
                        }
                    }
                }
            }
            i += 1;
        }
        orders
    }

    /// When a unit next begins a stage, or its last stage runs out: the next instant
    /// [`State::advance`] or [`State::finished`] can change its answer. `None` once finished.
    pub fn next_wake(&self, snapshot: &Snapshot, now_ms: i64) -> Option<i64> {
        (0..self.units.len())
            .filter(|&i| !self.units[i].halted)
            .filter_map(|i| {
                let n = self.stage_count(snapshot, i);
                let u = &self.units[i];
                if u.next_stage < n {
                    Some(self.stage_start(snapshot, i, u.next_stage))
                } else {
                    let end = self.stage_start(snapshot, i, n);
                    (end > now_ms).then_some(end)
                }
            })
            .min()
    }

    /// When the engagement's paging ends (or ended): the latest instant at which a unit's last
    /// stage runs out, or at which it was halted. `None` when nobody was engaged.
    pub fn end_ms(&self, snapshot: &Snapshot) -> Option<i64> {
        (0..self.units.len())
            .map(|i| {
                let u = &self.units[i];
                match (u.halted, u.halted_ms) {
                    (true, Some(ms)) => ms,
                    _ => self.stage_start(snapshot, i, self.stage_count(snapshot, i)),
                }
            })
            .max()
    }

    /// Whether nothing is left to do at `now_ms`.
    pub fn finished(&self, snapshot: &Snapshot, now_ms: i64) -> bool {
        self.next_wake(snapshot, now_ms).is_none()
    }

    /// Records that the contact of unit `unit` acknowledged at `at_ms`: every unit of that
    /// contact halts; an essential one halts its escalation plan too (and upwards while the
    /// chain is essential). `false` if the unit does not exist or is not PERSONAL.
    pub fn acknowledge(&mut self, unit: usize, at_ms: i64) -> bool {
        let Some(u) = self.units.get(unit) else {
            return false;
        };
        if u.kind != UnitKind::Personal {
            return false;
        }
        let arn = u.contact_arn.clone();
        let mut halt_parents = Vec::new();
        for (i, u) in self.units.iter_mut().enumerate() {
            if u.contact_arn == arn && u.kind == UnitKind::Personal {
                if u.acked_ms.is_none() {
                    u.acked_ms = Some(at_ms);
                }
                if !u.halted {
                    u.halted = true;
                    u.halted_ms = Some(at_ms);
                }
                if u.essential {
                    halt_parents.push(i);
                }
            }
        }
        for mut i in halt_parents {
            while self.units[i].essential {
                let Some(p) = self.units[i].parent else { break };
                if !self.units[p].halted {
                    self.units[p].halted = true;
                    self.units[p].halted_ms = Some(at_ms);
                }
                i = p;
            }
        }
        true
    }

    /// Whether the unit's paging has stopped (acknowledged or halted).
    pub fn halted(&self, unit: usize) -> bool {
        self.units.get(unit).is_none_or(|u| u.halted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::Stage;

    const M: i64 = MINUTE_MS;

    fn personal(alias: &str, stages: &[(u32, &[&str])]) -> (String, SnapContact) {
        let stages = stages
            .iter()
            .map(|(d, chans)| Stage {
                duration_minutes: *d,
                targets: chans
                    .iter()
                    .map(|c| Target::Channel {
                        channel_arn: c.to_string(),
                        retry_interval_minutes: None,
                    })
                    .collect(),
            })
            .collect();
        (
            format!("contact/{alias}"),
            SnapContact {
                alias: alias.into(),
                contact_type: ContactType::Personal,
                plan: Plan {
                    stages,
                    rotation_ids: vec![],
                },
            },
        )
    }

    fn escalation(alias: &str, stages: &[(u32, &[(&str, bool)])]) -> (String, SnapContact) {
        let stages = stages
            .iter()
            .map(|(d, cs)| Stage {
                duration_minutes: *d,
                targets: cs
                    .iter()
                    .map(|(c, e)| Target::Contact {
                        contact_arn: format!("contact/{c}"),
                        is_essential: *e,
                    })
                    .collect(),
            })
            .collect();
        (
            format!("contact/{alias}"),
            SnapContact {
                alias: alias.into(),
                contact_type: ContactType::Escalation,
                plan: Plan {
                    stages,
                    rotation_ids: vec![],
                },
            },
        )
    }

    fn snap(root: &str, contacts: Vec<(String, SnapContact)>) -> Snapshot {
        Snapshot {
            root: format!("contact/{root}"),
            contacts: contacts.into_iter().collect(),
            rotations: BTreeMap::new(),
        }
    }

    fn channels(orders: &[PageOrder]) -> Vec<(&str, i64)> {
        orders
            .iter()
            .map(|o| (o.channel_arn.as_str(), o.due_ms))
            .collect()
    }

    #[test]
    fn personal_stages_begin_at_their_offsets() {
        let s = snap(
            "ana",
            vec![personal("ana", &[(5, &["email", "sms"]), (10, &["voice"])])],
        );
        let t0 = 1_000_000;
        let mut st = State::start(&s, t0);
        assert_eq!(channels(&st.advance(&s, t0)), [("email", t0), ("sms", t0)]);
        assert_eq!(st.next_wake(&s, t0), Some(t0 + 5 * M));
        assert!(st.advance(&s, t0 + 5 * M - 1).is_empty());
        assert_eq!(
            channels(&st.advance(&s, t0 + 5 * M)),
            [("voice", t0 + 5 * M)]
        );
        // The last stage's duration runs out at 15 minutes.
        assert_eq!(st.next_wake(&s, t0 + 5 * M), Some(t0 + 15 * M));
        assert!(!st.finished(&s, t0 + 15 * M - 1));
        assert!(st.finished(&s, t0 + 15 * M));
        assert_eq!(st.end_ms(&s), Some(t0 + 15 * M));
    }

    #[test]
    fn a_late_engine_begins_every_due_stage_with_its_own_time() {
        let s = snap(
            "ana",
            vec![personal("ana", &[(1, &["a"]), (1, &["b"]), (0, &["c"])])],
        );
        let mut st = State::start(&s, 0);
        assert_eq!(
            channels(&st.advance(&s, 10 * M)),
            [("a", 0), ("b", M), ("c", 2 * M)]
        );
        assert!(st.finished(&s, 10 * M));
    }

    #[test]
    fn acknowledgement_stops_the_contact() {
        let s = snap(
            "ana",
            vec![personal("ana", &[(5, &["email"]), (5, &["sms"])])],
        );
        let mut st = State::start(&s, 0);
        assert_eq!(st.advance(&s, 0).len(), 1);
        assert!(st.acknowledge(0, M));
        assert!(st.advance(&s, 5 * M).is_empty());
        assert!(st.finished(&s, M));
        assert_eq!(st.end_ms(&s), Some(M));
        assert!(st.acknowledged("contact/ana"));
    }

    #[test]
    fn essential_acknowledgement_stops_later_stages_non_essential_does_not() {
        let s = snap(
            "esc",
            vec![
                escalation(
                    "esc",
                    &[(5, &[("ana", false), ("bo", true)]), (5, &[("cy", false)])],
                ),
                personal("ana", &[(0, &["ana-email"])]),
                personal("bo", &[(0, &["bo-email"])]),
                personal("cy", &[(0, &["cy-email"])]),
            ],
        );
        // Non-essential: stage 2 still runs.
        let mut st = State::start(&s, 0);
        assert_eq!(
            channels(&st.advance(&s, 0)),
            [("ana-email", 0), ("bo-email", 0)]
        );
        let ana = st
            .units
            .iter()
            .position(|u| u.contact_arn == "contact/ana")
            .unwrap();
        st.acknowledge(ana, M);
        assert_eq!(channels(&st.advance(&s, 5 * M)), [("cy-email", 5 * M)]);
        // Essential: stage 2 never begins, the engagement finishes.
        let mut st = State::start(&s, 0);
        st.advance(&s, 0);
        let bo = st
            .units
            .iter()
            .position(|u| u.contact_arn == "contact/bo")
            .unwrap();
        st.acknowledge(bo, M);
        assert!(st.advance(&s, 5 * M).is_empty());
        assert!(st.finished(&s, 5 * M));
        // The escalation plan halted at the acknowledgement; ana's own plan had run out at 0.
        assert_eq!(st.end_ms(&s), Some(M));
        // The path shows escalation > contact with the stage.
        assert_eq!(st.units[bo].path.len(), 2);
        assert_eq!(st.units[bo].path[1].stage_index, Some(0));
    }

    #[test]
    fn a_contact_who_acknowledged_is_not_engaged_again() {
        let s = snap(
            "esc",
            vec![
                escalation("esc", &[(5, &[("ana", false)]), (5, &[("ana", false)])]),
                personal("ana", &[(0, &["ana-email"])]),
            ],
        );
        let mut st = State::start(&s, 0);
        assert_eq!(st.advance(&s, 0).len(), 1);
        st.acknowledge(1, M);
        assert!(st.advance(&s, 5 * M).is_empty());
    }

    #[test]
    fn missing_targets_and_cycles_are_skipped() {
        let s = snap(
            "esc",
            vec![escalation("esc", &[(1, &[("gone", true), ("esc", true)])])],
        );
        let mut st = State::start(&s, 0);
        assert!(st.advance(&s, 0).is_empty());
        assert_eq!(st.units.len(), 1);
        assert!(!st.finished(&s, 0));
        assert!(st.finished(&s, M));
    }

    #[test]
    fn schedules_engage_whoever_is_on_call_then() {
        let (ana_arn, ana) = personal("ana", &[(0, &["ana-email"])]);
        let (bo_arn, bo) = personal("bo", &[(0, &["bo-email"])]);
        let recurrence = Recurrence {
            cadence: crate::rotation::Cadence::Daily(vec![
                crate::rotation::HandOff::parse("09:00").unwrap(),
            ]),
            number_of_on_calls: 1,
            multiplier: 1,
            coverage: None,
        };
        let start = 1_700_000_000_000 - (1_700_000_000_000 % (24 * 60 * M)) + 9 * 60 * M;
        let rot = SnapRotation {
            start_ms: start,
            time_zone: "UTC".into(),
            members: vec![ana_arn.clone(), bo_arn.clone()],
            recurrence,
            overrides: vec![],
        };
        let mut contacts: BTreeMap<String, SnapContact> = BTreeMap::new();
        contacts.insert(ana_arn, ana);
        contacts.insert(bo_arn, bo);
        contacts.insert(
            "contact/sched".into(),
            SnapContact {
                alias: "sched".into(),
                contact_type: ContactType::OncallSchedule,
                plan: Plan {
                    stages: vec![],
                    rotation_ids: vec!["rotation/r1".into()],
                },
            },
        );
        let s = Snapshot {
            root: "contact/sched".into(),
            contacts,
            rotations: [("rotation/r1".to_string(), rot)].into_iter().collect(),
        };
        let day = 24 * 60 * M;
        // One second before the hand-off: ana; at the hand-off: bo.
        let mut st = State::start(&s, start + day - 1000);
        assert_eq!(
            channels(&st.advance(&s, start + day - 1000))[0].0,
            "ana-email"
        );
        let mut st = State::start(&s, start + day);
        let got = st.advance(&s, start + day);
        assert_eq!(got[0].channel_arn, "bo-email");
        assert_eq!(
            st.units[0].path[0].contact_type,
            ContactType::OncallSchedule
        );
        assert_eq!(st.units[0].path[1].contact_type, ContactType::Personal);
        // Before the rotation starts nobody is on call: nothing to do.
        let st = State::start(&s, start - day);
        assert!(st.units.is_empty());
        assert!(st.finished(&s, start - day));
    }
}
