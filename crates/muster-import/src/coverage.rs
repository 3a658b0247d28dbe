//! Coverage windows from the minutes of a week a source covers (P5): the runs of covered
//! minutes cut into pieces of at most a day, each a window on the weekday it starts (crossing
//! midnight where it does); pieces shorter than the model's 30 minutes are dropped and
//! reported.

use crate::model::{Loss, Severity};
use muster_core::rotation::{CoverageWindow, DayOfWeek, HandOff};
use std::collections::BTreeMap;

/// Minutes in a week.
pub const WEEK: usize = 7 * 1440;

const DAYS: [jiff::civil::Weekday; 7] = [
    jiff::civil::Weekday::Monday,
    jiff::civil::Weekday::Tuesday,
    jiff::civil::Weekday::Wednesday,
    jiff::civil::Weekday::Thursday,
    jiff::civil::Weekday::Friday,
    jiff::civil::Weekday::Saturday,
    jiff::civil::Weekday::Sunday,
];

/// `covered[m]`: minute `m` of the week, from Monday 00:00 local time, is covered. `None`:
/// the whole week is (no `ShiftCoverages`).
pub fn windows(
    covered: &[bool],
    entity: &str,
    losses: &mut Vec<Loss>,
) -> Option<BTreeMap<DayOfWeek, Vec<CoverageWindow>>> {
    debug_assert_eq!(covered.len(), WEEK);
    if covered.iter().all(|c| *c) {
        return None;
    }
    // Runs of covered minutes, walking the week from an uncovered minute.
    let origin = covered.iter().position(|c| !*c).unwrap_or(0);
    let mut out: BTreeMap<DayOfWeek, Vec<CoverageWindow>> = BTreeMap::new();
    let mut m = 0;
    while m < WEEK {
        let at = (origin + m) % WEEK;
        if !covered[at] {
            m += 1;
            continue;
        }
        let mut len = 0;
        while m + len < WEEK && covered[(origin + m + len) % WEEK] {
            len += 1;
        }
        let mut done = 0;
        while done < len {
            let piece = (len - done).min(1440);
            let s = (at + done) % WEEK;
            let e = (s + piece) % WEEK;
            let start = HandOff::new(((s % 1440) / 60) as u8, (s % 60) as u8);
            let end = HandOff::new(((e % 1440) / 60) as u8, (e % 60) as u8);
            if piece < 30 {
                losses.push(Loss::new(
                    "restriction-too-short",
                    Severity::Warn,
                    entity,
                    format!(
                        "{piece} minutes of coverage from {start} on {:?} are dropped (windows are at least 30 minutes)",
                        DAYS[s / 1440]
                    ),
                ));
            } else {
                out.entry(DayOfWeek(DAYS[s / 1440]))
                    .or_default()
                    .push(CoverageWindow::new(start, end));
            }
            done += piece;
        }
        m += len;
    }
    Some(out)
}
