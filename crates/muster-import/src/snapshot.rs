//! The snapshot fallback (IMPORTERS.md P8): a schedule that cannot be expressed as Muster
//! rotations exactly is imported as the source renders it, up to a horizon.

use crate::equivalence;
use crate::model::{
    Desired, Interval, Loss, Override, Person, Rendering, Rotation, Schedule, Severity,
};
use crate::sanitize;
use jiff::{SignedDuration, Timestamp};
use muster_core::rotation::{Cadence, HandOff, Recurrence};
use std::collections::HashMap;

/// The rotations a schedule is imported as: `exact` when Muster's shifts of them equal the
/// source's `rendering` on every minute (`true`), else a snapshot of the rendering up to
/// `horizon` (`false`); `None` when neither is possible (a loss says why).
#[allow(clippy::too_many_arguments)]
pub fn exact_or_snapshot(
    system: &str,
    schedule_name: &str,
    time_zone: &str,
    exact: Option<Vec<Rotation>>,
    rendering: &Rendering,
    known: &HashMap<&str, &Person>,
    horizon: Timestamp,
    losses: &mut Vec<Loss>,
) -> Option<(Vec<Rotation>, bool)> {
    if let Some(rotations) = exact {
        let candidate = Desired {
            system: system.into(),
            account: String::new(),
            people: vec![],
            schedules: vec![Schedule {
                id: rendering.schedule.clone(),
                alias: String::new(),
                display_name: String::new(),
                rotations: rotations.iter().map(|r| r.id.clone()).collect(),
            }],
            rotations,
            escalations: vec![],
            losses: vec![],
            renderings: vec![],
        };
        let muster = equivalence::from_desired(
            &candidate,
            &rendering.schedule,
            rendering.from,
            rendering.to,
        );
        if equivalence::compare(rendering, &muster, "plan", &candidate).exact() {
            return Some((candidate.rotations, true));
        }
    }
    let r = snapshot_of(
        system,
        &rendering.schedule,
        schedule_name,
        time_zone,
        &rendering.intervals,
        known,
        rendering.from,
        horizon,
        losses,
    )?;
    Some((vec![r], false))
}

/// P8: one rotation of everyone in the rendering, whose overrides are the rendering itself
/// from `from` to `horizon` (empty ones where nobody is on call).
#[allow(clippy::too_many_arguments)]
pub fn snapshot_of(
    system: &str,
    schedule_id: &str,
    schedule_name: &str,
    time_zone: &str,
    rendered: &[Interval],
    known: &HashMap<&str, &Person>,
    from: Timestamp,
    horizon: Timestamp,
    losses: &mut Vec<Loss>,
) -> Option<Rotation> {
    let entity = format!("schedule:{schedule_id}");
    let mut members: Vec<String> = Vec::new();
    for i in rendered {
        for p in &i.people {
            if !members.contains(p) {
                members.push(p.clone());
            }
        }
    }
    if let Some(unknown) = members.iter().find(|m| !known.contains_key(m.as_str())) {
        losses.push(Loss::new(
            "snapshot-unknown-user",
            Severity::Error,
            &entity,
            format!("user {unknown} is on call but not among the users read"),
        ));
        return None;
    }
    if members.is_empty() {
        return None;
    }
    if members.len() > 30 {
        losses.push(Loss::new(
            "snapshot-too-many-people",
            Severity::Error,
            &entity,
            format!(
                "{} people are on call in turn; a rotation holds at most 30",
                members.len()
            ),
        ));
        return None;
    }
    // Constant stretches over [from, horizon), nobody included.
    let mut cuts: Vec<Timestamp> = vec![from, horizon];
    for i in rendered {
        for t in [i.start, i.end] {
            if t > from && t < horizon {
                cuts.push(t);
            }
        }
    }
    cuts.sort();
    cuts.dedup();
    let mut stretches: Vec<(Timestamp, Timestamp, Vec<String>)> = Vec::new();
    for w in cuts.windows(2) {
        let mut who: Vec<String> = rendered
            .iter()
            .filter(|i| i.start <= w[0] && i.end > w[0])
            .flat_map(|i| i.people.iter().cloned())
            .collect();
        who.sort();
        who.dedup();
        match stretches.last_mut() {
            Some(last) if last.2 == who => last.1 = w[1],
            _ => stretches.push((w[0], w[1], who)),
        }
    }
    // Each stretch an override, named by its start (the same stretch keeps its id from one
    // run to the next). Overrides last at least 30 minutes: a short first stretch starts
    // earlier (before the window: nobody sees it); a short later one is given to the stretch
    // before it, which runs on (reported).
    let mut overrides: Vec<Override> = Vec::new();
    for (start, end, who) in stretches {
        if end.duration_since(start) < SignedDuration::from_mins(30) {
            if let Some(last) = overrides.last_mut().filter(|l| l.end == start) {
                losses.push(Loss::new(
                    "snapshot-short-stretch",
                    Severity::Warn,
                    &entity,
                    format!("{start} to {end} ({who:?}) is shorter than an override may be (30 minutes): {:?} stay on call instead", last.members),
                ));
                last.end = end;
                continue;
            }
            let start = end - SignedDuration::from_mins(30);
            overrides.push(Override {
                id: format!("s{}", start.as_second()),
                members: who,
                start,
                end,
            });
            continue;
        }
        overrides.push(Override {
            id: format!("s{}", start.as_second()),
            members: who,
            start,
            end,
        });
    }
    losses.push(Loss::new(
        "lossy-snapshot",
        Severity::Warn,
        &entity,
        format!(
            "the schedule cannot be expressed as Muster rotations exactly (see docs/import.md, {system}): it is imported as {system} renders it, until {horizon} (after that its people take turns a day each); re-run the import before then, or rebuild its rotations in Muster"
        ),
    ));
    Some(Rotation {
        id: format!("{schedule_id}:snapshot"),
        name: sanitize::rotation_name(&format!("{schedule_name} snapshot"), "snapshot"),
        time_zone: time_zone.to_owned(),
        // A fixed start: a later run with a new rendering changes overrides, not the rotation.
        start: Timestamp::UNIX_EPOCH,
        members,
        recurrence: Recurrence {
            cadence: Cadence::Daily(vec![HandOff::new(0, 0)]),
            number_of_on_calls: 1,
            multiplier: 1,
            coverage: None,
        },
        overrides,
    })
}
