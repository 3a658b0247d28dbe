//! On-call rotations: which contacts are on call when, in the rotation's IANA time zone.
//!
//! Everything here is a pure function of the rotation's configuration, its overrides and the
//! queried range. `docs/rotations.md` is the written policy (with worked examples) that the
//! code and its tests follow; the short version:
//!
//! * **Hand-offs** are the occurrences, in the rotation's time zone, of the configured wall-clock
//!   times that fall strictly after the rotation's `start`. Shift `k` runs from boundary `k·m` to
//!   boundary `(k+1)·m` (boundary 0 is `start`, boundary `j ≥ 1` is the `j`-th hand-off, `m` the
//!   `RecurrenceMultiplier`) and is staffed by `members[(k·N + i) mod M]`, `i < min(N, M)`.
//! * **DST**: a wall-clock time happens at the *first instant at which the local clock shows that
//!   time or a later one*. In a spring-forward gap that is the end of the gap (02:30 on the
//!   America/New_York spring day happens at 03:00 EDT); in an autumn fold it is the first
//!   occurrence (01:30 EDT, not 01:30 EST). This mapping never reorders two wall-clock times, so
//!   no shift or coverage window can ever end before it starts.
//! * **Months without the day**: a monthly hand-off on day 29–31 happens on the month's last day
//!   in shorter months (clamp).
//! * **Numbering follows the calendar**: every configured occurrence counts as one hand-off, even
//!   when two of them land on the same instant (two hand-offs inside one DST gap, or two monthly
//!   days clamped onto the same day). The zero-length turn between them is not reported, and the
//!   rotation's order stays aligned with the calendar instead of slipping by one member.
//! * **Coverage** (`ShiftCoverages`): only the parts of shifts inside the weekday's windows
//!   count; each (shift ∩ window) piece is its own REGULAR shift; touching windows merge.
//! * **Overrides** replace whoever is on call inside existing pieces (never adding coverage); the
//!   override created later wins where overrides overlap.
//!
//! Instants are [`Timestamp`]s (UTC); wall-clock values are minutes since local midnight.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use jiff::Timestamp;
use jiff::civil::{self, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use jiff::civil::Weekday;

/// The most shifts one call of [`shifts`] returns. A range that would produce more is cut off
/// after this many (the earliest ones are kept), so a huge range cannot exhaust memory.
pub const MAX_SHIFTS: usize = 100_000;

/// The IANA time zone `name` from the time-zone database compiled into Muster (not the
/// host's), so every instance computes the same shifts whatever the host has installed.
pub fn time_zone(name: &str) -> Option<jiff::tz::TimeZone> {
    static DB: std::sync::LazyLock<jiff::tz::TimeZoneDatabase> =
        std::sync::LazyLock::new(jiff::tz::TimeZoneDatabase::bundled);
    DB.get(name).ok()
}

/// Upper bound on shifts examined per call (shifts with no coverage produce no output but still
/// cost time); with it, any call finishes in bounded time whatever the range.
const MAX_SHIFTS_EXAMINED: usize = 2_000_000;

/// Upper bound on days the coverage walk examines per call.
const MAX_COVERAGE_DAYS: i64 = 4_000_000;

const MINUTES_PER_DAY: i64 = 1440;
const MINUTES_PER_WEEK: i64 = 7 * MINUTES_PER_DAY;

// ---------------------------------------------------------------------------------------------
// Configuration types (stored as JSON: keep the serde shape stable)
// ---------------------------------------------------------------------------------------------

/// A local wall-clock time of day in the rotation's time zone, minute precision
/// (`HandOffTime`: `HourOfDay` 0..=23, `MinuteOfHour` 0..=59).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HandOff {
    pub hour: u8,
    pub minute: u8,
}

impl HandOff {
    pub const fn new(hour: u8, minute: u8) -> Self {
        HandOff { hour, minute }
    }

    /// Minutes since local midnight (0..1440 when valid).
    pub const fn minutes(self) -> u16 {
        self.hour as u16 * 60 + self.minute as u16
    }

    pub const fn is_valid(self) -> bool {
        self.hour <= 23 && self.minute <= 59
    }

    /// Parses `HH:MM` (24-hour clock).
    pub fn parse(s: &str) -> Option<Self> {
        let (h, m) = s.split_once(':')?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return None;
        }
        let hand_off = HandOff::new(h.parse().ok()?, m.parse().ok()?);
        hand_off.is_valid().then_some(hand_off)
    }
}

impl fmt::Display for HandOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// A weekday as the AWS API spells it (`"MON"` … `"SUN"`), ordered Monday first.
/// jiff's [`Weekday`] has neither serde support nor an order, so maps are keyed by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DayOfWeek(pub Weekday);

impl DayOfWeek {
    /// Monday to Sunday.
    pub const ALL: [DayOfWeek; 7] = [
        DayOfWeek(Weekday::Monday),
        DayOfWeek(Weekday::Tuesday),
        DayOfWeek(Weekday::Wednesday),
        DayOfWeek(Weekday::Thursday),
        DayOfWeek(Weekday::Friday),
        DayOfWeek(Weekday::Saturday),
        DayOfWeek(Weekday::Sunday),
    ];

    /// `"MON"` … `"SUN"`.
    pub const fn as_aws(self) -> &'static str {
        match self.0 {
            Weekday::Monday => "MON",
            Weekday::Tuesday => "TUE",
            Weekday::Wednesday => "WED",
            Weekday::Thursday => "THU",
            Weekday::Friday => "FRI",
            Weekday::Saturday => "SAT",
            Weekday::Sunday => "SUN",
        }
    }

    /// Parses `"MON"` … `"SUN"` (exactly, as the API sends them).
    pub fn from_aws(s: &str) -> Option<Self> {
        DayOfWeek::ALL.into_iter().find(|d| d.as_aws() == s)
    }

    /// 0 for Monday … 6 for Sunday.
    pub const fn index(self) -> u8 {
        monday_index(self.0)
    }
}

const fn monday_index(w: Weekday) -> u8 {
    match w {
        Weekday::Monday => 0,
        Weekday::Tuesday => 1,
        Weekday::Wednesday => 2,
        Weekday::Thursday => 3,
        Weekday::Friday => 4,
        Weekday::Saturday => 5,
        Weekday::Sunday => 6,
    }
}

impl From<Weekday> for DayOfWeek {
    fn from(w: Weekday) -> Self {
        DayOfWeek(w)
    }
}

impl PartialOrd for DayOfWeek {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DayOfWeek {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.index().cmp(&other.index())
    }
}

impl fmt::Display for DayOfWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_aws())
    }
}

impl Serialize for DayOfWeek {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_aws())
    }
}

impl<'de> Deserialize<'de> for DayOfWeek {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        DayOfWeek::from_aws(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid day of week {s:?}, expected MON..SUN"))
        })
    }
}

/// Serde for `Vec<(Weekday, HandOff)>` as `[["MON", {"hour":9,"minute":0}], …]`.
mod weekly_serde {
    use super::{DayOfWeek, HandOff, Weekday};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[(Weekday, HandOff)], s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(DayOfWeek, HandOff)> = v.iter().map(|&(w, h)| (DayOfWeek(w), h)).collect();
        pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(Weekday, HandOff)>, D::Error> {
        let pairs = Vec::<(DayOfWeek, HandOff)>::deserialize(d)?;
        Ok(pairs.into_iter().map(|(w, h)| (w.0, h)).collect())
    }
}

/// When hand-offs happen (`DailySettings` / `WeeklySettings` / `MonthlySettings`), as local
/// wall-clock times in the rotation's time zone.
///
/// JSON: `{"daily":[{"hour":9,"minute":0}]}`, `{"weekly":[["MON",{"hour":9,"minute":0}]]}`,
/// `{"monthly":[[31,{"hour":9,"minute":0}]]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Every day at each of these times.
    Daily(Vec<HandOff>),
    /// Every week on each of these (weekday, time) pairs.
    Weekly(#[serde(with = "weekly_serde")] Vec<(Weekday, HandOff)>),
    /// Every month on each of these (day of month 1..=31, time) pairs; days the month lacks are
    /// clamped to its last day.
    Monthly(Vec<(u8, HandOff)>),
}

/// One coverage window of a weekday (`CoverageTime`). `end > start`: the same day;
/// `end < start`: crosses midnight into the next day; `end == start`: until the same wall-clock
/// time the next day (24-hour coverage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CoverageWindow {
    pub start: HandOff,
    pub end: HandOff,
}

impl CoverageWindow {
    pub const fn new(start: HandOff, end: HandOff) -> Self {
        CoverageWindow { start, end }
    }

    /// Wall-clock length in minutes (1..=1440).
    pub const fn wall_minutes(self) -> u16 {
        let (s, e) = (self.start.minutes(), self.end.minutes());
        if e > s { e - s } else { 1440 - s + e }
    }
}

/// The rotation's recurrence (`RecurrenceSettings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    pub cadence: Cadence,
    /// `NumberOfOnCalls`: contacts on call at once, >= 1.
    pub number_of_on_calls: u32,
    /// `RecurrenceMultiplier`: hand-off periods per shift, 1..=100.
    pub multiplier: u32,
    /// `ShiftCoverages`: `None` = 24x7; `Some(map)` = only these windows on these weekdays
    /// (a weekday missing from the map has no coverage).
    pub coverage: Option<BTreeMap<DayOfWeek, Vec<CoverageWindow>>>,
}

fn err(path: impl Into<String>, msg: impl Into<String>) -> Result<(), (String, String)> {
    Err((path.into(), msg.into()))
}

fn check_hand_off(path: &str, h: HandOff) -> Result<(), (String, String)> {
    if h.hour > 23 {
        return err(format!("{path}.HourOfDay"), "must be between 0 and 23");
    }
    if h.minute > 59 {
        return err(format!("{path}.MinuteOfHour"), "must be between 0 and 59");
    }
    Ok(())
}

impl Recurrence {
    /// Checks what the model cannot: at least one hand-off, valid hand-off times and days, no
    /// duplicate hand-offs, coverage windows at least 30 minutes long and not overlapping within
    /// a day, `number_of_on_calls >= 1`, `multiplier` in 1..=100.
    ///
    /// `Err((path, message))` names the AWS member, e.g.
    /// `("Recurrence.ShiftCoverages.MON[1]", "coverage windows must be at least 30 minutes long")`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match &self.cadence {
            Cadence::Daily(times) => {
                if times.is_empty() {
                    return err(
                        "Recurrence.DailySettings",
                        "at least one hand-off time is required",
                    );
                }
                let mut seen = BTreeSet::new();
                for (i, &h) in times.iter().enumerate() {
                    let path = format!("Recurrence.DailySettings[{i}]");
                    check_hand_off(&path, h)?;
                    if !seen.insert(h) {
                        return err(path, format!("duplicate hand-off time {h}"));
                    }
                }
            }
            Cadence::Weekly(settings) => {
                if settings.is_empty() {
                    return err(
                        "Recurrence.WeeklySettings",
                        "at least one hand-off is required",
                    );
                }
                let mut seen = BTreeSet::new();
                for (i, &(w, h)) in settings.iter().enumerate() {
                    let path = format!("Recurrence.WeeklySettings[{i}]");
                    check_hand_off(&format!("{path}.HandOffTime"), h)?;
                    if !seen.insert((DayOfWeek(w), h)) {
                        return err(path, format!("duplicate hand-off {} {h}", DayOfWeek(w)));
                    }
                }
            }
            Cadence::Monthly(settings) => {
                if settings.is_empty() {
                    return err(
                        "Recurrence.MonthlySettings",
                        "at least one hand-off is required",
                    );
                }
                let mut seen = BTreeSet::new();
                for (i, &(day, h)) in settings.iter().enumerate() {
                    let path = format!("Recurrence.MonthlySettings[{i}]");
                    if !(1..=31).contains(&day) {
                        return err(format!("{path}.DayOfMonth"), "must be between 1 and 31");
                    }
                    check_hand_off(&format!("{path}.HandOffTime"), h)?;
                    if !seen.insert((day, h)) {
                        return err(path, format!("duplicate hand-off on day {day} at {h}"));
                    }
                }
            }
        }
        if self.number_of_on_calls < 1 {
            return err("Recurrence.NumberOfOnCalls", "must be at least 1");
        }
        if !(1..=100).contains(&self.multiplier) {
            return err(
                "Recurrence.RecurrenceMultiplier",
                "must be between 1 and 100",
            );
        }
        if let Some(coverage) = &self.coverage {
            for (day, windows) in coverage {
                let mut spans: Vec<(u16, u16, usize)> = Vec::with_capacity(windows.len());
                for (i, w) in windows.iter().enumerate() {
                    let path = format!("Recurrence.ShiftCoverages.{day}[{i}]");
                    check_hand_off(&format!("{path}.Start"), w.start)?;
                    check_hand_off(&format!("{path}.End"), w.end)?;
                    if w.wall_minutes() < 30 {
                        return err(path, "coverage windows must be at least 30 minutes long");
                    }
                    spans.push((w.start.minutes(), w.start.minutes() + w.wall_minutes(), i));
                }
                spans.sort_unstable();
                for pair in spans.windows(2) {
                    let (a, b) = (pair[0], pair[1]);
                    if b.0 < a.1 {
                        let (first, second) = (windows[a.2], windows[b.2]);
                        return err(
                            format!("Recurrence.ShiftCoverages.{day}[{}]", a.2.max(b.2)),
                            format!(
                                "coverage windows overlap: {}-{} and {}-{}",
                                first.start, first.end, second.start, second.end
                            ),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// A rotation as the shift computation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationSpec {
    /// When the rotation begins: the start of shift 0.
    pub start: Timestamp,
    /// The IANA zone all wall-clock settings are in.
    pub time_zone: TimeZone,
    /// Contact ids (or ARNs) in rotation order.
    pub members: Vec<String>,
    pub recurrence: Recurrence,
}

/// A rotation override: `members` are on call instead of the regular members during
/// `[start, end)`, wherever the rotation has coverage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideSpec {
    pub id: String,
    pub members: Vec<String>,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Where overrides overlap, the one created later wins (ties: the greater `id`).
    pub created: Timestamp,
}

/// `ShiftType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShiftKind {
    Regular,
    Overridden,
}

impl ShiftKind {
    /// `"REGULAR"` / `"OVERRIDDEN"`.
    pub const fn as_aws(self) -> &'static str {
        match self {
            ShiftKind::Regular => "REGULAR",
            ShiftKind::Overridden => "OVERRIDDEN",
        }
    }
}

/// One contiguous stretch of time with the same people on call. `end` is exclusive;
/// `end == Timestamp::MAX` means "never ends" (a rotation whose next hand-off lies beyond the
/// representable range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    pub members: Vec<String>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub kind: ShiftKind,
    /// For OVERRIDDEN shifts, the regular members it replaces (`ShiftDetails.OverriddenContactIds`);
    /// empty for REGULAR.
    pub overridden_members: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Public functions
// ---------------------------------------------------------------------------------------------

/// Shifts that overlap `[from, to)`, sorted by start, not clipped to the range (so splitting a
/// range in two gives the same shifts, a shift across the split appearing in both halves).
/// At most [`MAX_SHIFTS`] are returned. Empty when `from >= to`, when the rotation has no
/// members, or when nobody is on call in the range.
pub fn shifts(
    rotation: &RotationSpec,
    overrides: &[OverrideSpec],
    from: Timestamp,
    to: Timestamp,
) -> Vec<Shift> {
    compute(rotation, overrides, from, to, MAX_SHIFTS)
}

/// Who is on call at `at`: the members of the shift containing it (start inclusive, end
/// exclusive), after overrides. Empty before the rotation starts and in coverage gaps.
pub fn on_call_at(
    rotation: &RotationSpec,
    overrides: &[OverrideSpec],
    at: Timestamp,
) -> Vec<String> {
    let Ok(next) = at.checked_add(jiff::SignedDuration::from_nanos(1)) else {
        return Vec::new();
    };
    compute(rotation, overrides, at, next, 4)
        .into_iter()
        .find(|s| s.start <= at && at < s.end)
        .map(|s| s.members)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian, day 0 = 1970-01-01)
// ---------------------------------------------------------------------------------------------

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn day_number(date: civil::Date) -> i64 {
    days_from_civil(
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    )
}

/// Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
fn weekday_of_day(day: i64) -> usize {
    (day + 3).rem_euclid(7) as usize
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// The local date-time `minute` minutes after the local midnight that starts `day`
/// (`minute` may exceed a day). `None` outside jiff's supported range.
fn local_at(day: i64, minute: i64) -> Option<DateTime> {
    let day = day.checked_add(minute.div_euclid(MINUTES_PER_DAY))?;
    let minute = minute.rem_euclid(MINUTES_PER_DAY);
    let (y, m, d) = civil_from_days(day);
    let y = i16::try_from(y).ok()?;
    DateTime::new(
        y,
        m as i8,
        d as i8,
        (minute / 60) as i8,
        (minute % 60) as i8,
        0,
        0,
    )
    .ok()
}

/// The instant at which a wall-clock time happens: the first instant at which the zone's local
/// clock shows `dt` or a later time. Exact when `dt` exists once; the first occurrence when it
/// exists twice (fold); the end of the gap (the transition) when it does not exist. Monotone:
/// `a <= b` implies `resolve(a) <= resolve(b)`. `None` outside jiff's range.
fn resolve(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        AmbiguousOffset::Fold { before, after } => {
            let a = before.to_timestamp(dt).ok()?;
            let b = after.to_timestamp(dt).ok()?;
            Some(a.min(b))
        }
        AmbiguousOffset::Gap { before, after } => {
            let a = before.to_timestamp(dt).ok()?;
            let b = after.to_timestamp(dt).ok()?;
            let (lo, hi) = (a.min(b), a.max(b));
            // The clock jumps over `dt` at the transition, which lies in (lo, hi].
            match tz.following(lo).next() {
                Some(t) if t.timestamp() > lo && t.timestamp() <= hi => Some(t.timestamp()),
                // Unreachable with consistent tz data; fall back to RFC 5545's reading.
                _ => Some(hi),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-off candidates
// ---------------------------------------------------------------------------------------------

/// Hand-off occurrences are numbered globally: occurrence `g = p·n + i` is the `i`-th (in local
/// time order) of the `n` configured occurrences of period `p` (a local day, a Monday-based
/// local week, or a month). Every period has exactly `n` of them, so any occurrence's number is
/// plain arithmetic and a rotation that started long ago costs nothing extra.
enum Schedule {
    /// Minutes since local midnight, sorted.
    Daily(Vec<i64>),
    /// Minutes since Monday 00:00, sorted.
    Weekly(Vec<i64>),
    /// (day of month, minute of day), clamped per month and sorted then.
    Monthly(Vec<(i64, i64)>),
}

/// A month (period number) and its hand-offs as sorted local (day, minute) pairs.
type MonthSlots = (i64, Vec<(i64, i64)>);

struct Candidates<'a> {
    tz: &'a TimeZone,
    schedule: Schedule,
    n: i64,
    /// Monthly: (period, sorted local (day, minute) pairs) of the last month computed.
    month_cache: RefCell<Option<MonthSlots>>,
}

impl<'a> Candidates<'a> {
    fn new(tz: &'a TimeZone, cadence: &Cadence) -> Option<Self> {
        let schedule = match cadence {
            Cadence::Daily(times) => {
                let mut v: Vec<i64> = times
                    .iter()
                    .filter(|h| h.is_valid())
                    .map(|h| i64::from(h.minutes()))
                    .collect();
                v.sort_unstable();
                Schedule::Daily(v)
            }
            Cadence::Weekly(settings) => {
                let mut v: Vec<i64> = settings
                    .iter()
                    .filter(|(_, h)| h.is_valid())
                    .map(|&(w, h)| {
                        i64::from(monday_index(w)) * MINUTES_PER_DAY + i64::from(h.minutes())
                    })
                    .collect();
                v.sort_unstable();
                Schedule::Weekly(v)
            }
            Cadence::Monthly(settings) => {
                let mut v: Vec<(i64, i64)> = settings
                    .iter()
                    .filter(|(d, h)| (1..=31).contains(d) && h.is_valid())
                    .map(|&(d, h)| (i64::from(d), i64::from(h.minutes())))
                    .collect();
                v.sort_unstable();
                Schedule::Monthly(v)
            }
        };
        let n = match &schedule {
            Schedule::Daily(v) | Schedule::Weekly(v) => v.len(),
            Schedule::Monthly(v) => v.len(),
        } as i64;
        (n > 0).then_some(Candidates {
            tz,
            schedule,
            n,
            month_cache: RefCell::new(None),
        })
    }

    /// The period containing a local date.
    fn period_of(&self, date: civil::Date) -> i64 {
        match self.schedule {
            Schedule::Daily(_) => day_number(date),
            Schedule::Weekly(_) => (day_number(date) + 3).div_euclid(7),
            Schedule::Monthly(_) => i64::from(date.year()) * 12 + i64::from(date.month()) - 1,
        }
    }

    /// Local wall-clock date-time of occurrence `g`.
    fn local(&self, g: i64) -> Option<DateTime> {
        let p = g.div_euclid(self.n);
        let i = g.rem_euclid(self.n) as usize;
        match &self.schedule {
            Schedule::Daily(v) => local_at(p, v[i]),
            Schedule::Weekly(v) => local_at(p.checked_mul(7)? - 3, v[i]),
            Schedule::Monthly(v) => {
                let (y, m) = (p.div_euclid(12), p.rem_euclid(12) + 1);
                let mut cache = self.month_cache.borrow_mut();
                if cache.as_ref().is_none_or(|(cp, _)| *cp != p) {
                    let last = days_in_month(y, m);
                    let mut days: Vec<(i64, i64)> =
                        v.iter().map(|&(d, t)| (d.min(last), t)).collect();
                    days.sort_unstable();
                    *cache = Some((p, days));
                }
                let (d, t) = cache.as_ref()?.1[i];
                local_at(days_from_civil(y, m, 1) + d - 1, t)
            }
        }
    }

    fn instant(&self, g: i64) -> Option<Timestamp> {
        resolve(self.tz, self.local(g)?)
    }

    /// Number of the last occurrence at or before instant `t` (may be before any hand-off).
    fn last_at_or_before(&self, t: Timestamp) -> i64 {
        let period = self.period_of(self.tz.to_datetime(t).date());
        // Every occurrence of earlier periods has local time < local(t), hence happens <= t.
        let mut g = period.saturating_mul(self.n).saturating_sub(1);
        // Occurrences after local(t) can still happen <= t inside a fold; a handful at most.
        for _ in 0..(4 * self.n + 64) {
            match self.instant(g + 1) {
                Some(x) if x <= t => g += 1,
                _ => break,
            }
        }
        g
    }
}

// ---------------------------------------------------------------------------------------------
// Coverage
// ---------------------------------------------------------------------------------------------

/// Coverage windows per Monday-based weekday as (start minute, end minute relative to the
/// start day's midnight), end in (start, start + 1440].
type WeekWindows = [Vec<(i64, i64)>; 7];

enum Coverage {
    Always,
    Never,
    Windows(WeekWindows),
}

fn compile_coverage(coverage: &Option<BTreeMap<DayOfWeek, Vec<CoverageWindow>>>) -> Coverage {
    let Some(map) = coverage else {
        return Coverage::Always;
    };
    let mut week: WeekWindows = Default::default();
    let mut any = false;
    for (day, windows) in map {
        for w in windows {
            if !w.start.is_valid() || !w.end.is_valid() {
                continue;
            }
            let s = i64::from(w.start.minutes());
            week[day.index() as usize].push((s, s + i64::from(w.wall_minutes())));
            any = true;
        }
    }
    if !any {
        return Coverage::Never;
    }
    for v in &mut week {
        v.sort_unstable();
    }
    // Windows that tile the whole week in wall-clock time cover every instant (resolution is
    // monotone, so touching wall-clock intervals stay touching): that is 24x7, and treating it
    // as such keeps shifts from being split at midnight and the walk short.
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for (d, v) in week.iter().enumerate() {
        for &(s, e) in v {
            let (s, e) = (
                d as i64 * MINUTES_PER_DAY + s,
                d as i64 * MINUTES_PER_DAY + e,
            );
            if e > MINUTES_PER_WEEK {
                spans.push((s, MINUTES_PER_WEEK));
                spans.push((0, e - MINUTES_PER_WEEK));
            } else {
                spans.push((s, e));
            }
        }
    }
    spans.sort_unstable();
    let mut reached = 0;
    for (s, e) in spans {
        if s > reached {
            return Coverage::Windows(week);
        }
        reached = reached.max(e);
    }
    if reached >= MINUTES_PER_WEEK {
        Coverage::Always
    } else {
        Coverage::Windows(week)
    }
}

/// Yields the coverage of consecutive local days as merged, sorted, disjoint instant intervals.
/// Intervals that begin before the local midnight following the first day walked may be
/// incomplete at their start (windows of earlier days are not looked at); callers start the walk
/// at least one day before the first instant they care about.
struct CoverageWalk<'a> {
    tz: &'a TimeZone,
    week: &'a WeekWindows,
    next_day: i64,
    days_walked: i64,
    pending: Option<(Timestamp, Timestamp)>,
    ready: VecDeque<(Timestamp, Timestamp)>,
    exhausted: bool,
}

impl<'a> CoverageWalk<'a> {
    fn new(tz: &'a TimeZone, week: &'a WeekWindows, first_day: i64) -> Self {
        CoverageWalk {
            tz,
            week,
            next_day: first_day,
            days_walked: 0,
            pending: None,
            ready: VecDeque::new(),
            exhausted: false,
        }
    }

    fn next_interval(&mut self) -> Option<(Timestamp, Timestamp)> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(r);
            }
            if self.exhausted || self.days_walked >= MAX_COVERAGE_DAYS {
                self.exhausted = true;
                return self.pending.take();
            }
            let day = self.next_day;
            self.next_day += 1;
            self.days_walked += 1;
            for &(s, e) in &self.week[weekday_of_day(day)] {
                let Some(a) = local_at(day, s).and_then(|dt| resolve(self.tz, dt)) else {
                    self.exhausted = true;
                    break;
                };
                let b = local_at(day, e)
                    .and_then(|dt| resolve(self.tz, dt))
                    .unwrap_or(Timestamp::MAX);
                if b <= a {
                    // Entirely inside a DST gap: that wall-clock time never happens.
                    continue;
                }
                match &mut self.pending {
                    Some((_, pe)) if a <= *pe => *pe = (*pe).max(b),
                    slot => {
                        // Starts are non-decreasing (days in order, windows sorted, resolution
                        // monotone), so the pending interval is final.
                        if let Some(done) = slot.replace((a, b)) {
                            self.ready.push_back(done);
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Overrides
// ---------------------------------------------------------------------------------------------

/// Disjoint, sorted segments of time each won by one override (index into the slice).
fn override_timeline(
    overrides: &[OverrideSpec],
    after: Timestamp,
) -> Vec<(Timestamp, Timestamp, usize)> {
    let mut events: Vec<(Timestamp, bool, usize)> = Vec::new();
    for (i, o) in overrides.iter().enumerate() {
        if o.end > o.start && o.end > after {
            events.push((o.start, true, i));
            events.push((o.end, false, i));
        }
    }
    events.sort_unstable_by_key(|&(t, _, _)| t);
    let key = |i: usize| (overrides[i].created, overrides[i].id.as_str(), i);
    let mut active: BTreeSet<(Timestamp, &str, usize)> = BTreeSet::new();
    let mut out: Vec<(Timestamp, Timestamp, usize)> = Vec::new();
    let mut idx = 0;
    while idx < events.len() {
        let t = events[idx].0;
        while idx < events.len() && events[idx].0 == t {
            let (_, is_start, i) = events[idx];
            if is_start {
                active.insert(key(i));
            } else {
                active.remove(&key(i));
            }
            idx += 1;
        }
        if let (Some(&(_, _, winner)), Some(&(next, _, _))) = (active.last(), events.get(idx)) {
            match out.last_mut() {
                Some((_, end, w)) if *end == t && *w == winner => *end = next,
                _ => out.push((t, next, winner)),
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The computation
// ---------------------------------------------------------------------------------------------

struct Output<'a> {
    overrides: &'a [OverrideSpec],
    timeline: Vec<(Timestamp, Timestamp, usize)>,
    cursor: usize,
    from: Timestamp,
    to: Timestamp,
    cap: usize,
    shifts: Vec<Shift>,
}

impl Output<'_> {
    fn full(&self) -> bool {
        self.shifts.len() >= self.cap
    }

    fn emit(
        &mut self,
        members: &[String],
        start: Timestamp,
        end: Timestamp,
        kind: ShiftKind,
        replaced: &[String],
    ) {
        if start < self.to && end > self.from && !self.full() {
            self.shifts.push(Shift {
                members: members.to_vec(),
                start,
                end,
                kind,
                overridden_members: replaced.to_vec(),
            });
        }
    }

    /// A regular piece (pieces arrive in order): cut by the override timeline.
    fn piece(&mut self, members: &[String], start: Timestamp, end: Timestamp) {
        while self.cursor < self.timeline.len() && self.timeline[self.cursor].1 <= start {
            self.cursor += 1;
        }
        let mut at = start;
        let mut j = self.cursor;
        while at < end && j < self.timeline.len() && self.timeline[j].0 < end {
            let (os, oe, who) = self.timeline[j];
            if os > at {
                self.emit(members, at, os, ShiftKind::Regular, &[]);
                at = os;
            }
            let cut = oe.min(end);
            if cut > at {
                let overrides = self.overrides;
                self.emit(
                    &overrides[who].members,
                    at,
                    cut,
                    ShiftKind::Overridden,
                    members,
                );
                at = cut;
            }
            j += 1;
        }
        if at < end {
            self.emit(members, at, end, ShiftKind::Regular, &[]);
        }
    }
}

fn staff(members: &[String], on_calls: usize, k: i64) -> Vec<String> {
    let m = members.len() as u128;
    (0..on_calls.min(members.len()))
        .map(|i| members[((k as u128 * on_calls as u128 + i as u128) % m) as usize].clone())
        .collect()
}

fn compute(
    rotation: &RotationSpec,
    overrides: &[OverrideSpec],
    from: Timestamp,
    to: Timestamp,
    cap: usize,
) -> Vec<Shift> {
    let rec = &rotation.recurrence;
    let on_calls = rec.number_of_on_calls as usize;
    if from >= to || rotation.members.is_empty() || on_calls == 0 || to <= rotation.start {
        return Vec::new();
    }
    let coverage = compile_coverage(&rec.coverage);
    if matches!(coverage, Coverage::Never) {
        return Vec::new();
    }
    let tz = &rotation.time_zone;
    let start = rotation.start;
    let m = i64::from(rec.multiplier.max(1));
    let candidates = Candidates::new(tz, &rec.cadence);

    // c0: number of the first occurrence strictly after `start` (boundary 1). None: no hand-off
    // ever happens (no valid setting, or beyond jiff's range): shift 0 never ends.
    let c0 = candidates.as_ref().and_then(|c| {
        let g = c.last_at_or_before(start) + 1;
        c.instant(g).map(|_| g)
    });
    let boundary = |j: i64| -> Option<Timestamp> {
        if j == 0 {
            return Some(start);
        }
        let (c, c0) = (candidates.as_ref()?, c0?);
        c.instant(c0.checked_add(j - 1)?)
    };

    // The shift containing `from` (or shift 0 if `from` is before the start).
    let mut k = match (&candidates, c0) {
        (Some(c), Some(c0)) if from > start => {
            let j = (c.last_at_or_before(from) - c0 + 1).max(0);
            j / m
        }
        _ => 0,
    };

    let mut out = Output {
        overrides,
        timeline: Vec::new(),
        cursor: 0,
        from,
        to,
        cap,
        shifts: Vec::new(),
    };
    let Some(mut shift_start) = k.checked_mul(m).and_then(&boundary) else {
        return Vec::new();
    };
    out.timeline = override_timeline(overrides, shift_start);

    let mut walk = match &coverage {
        Coverage::Windows(week) => {
            let first_day = day_number(tz.to_datetime(shift_start).date()) - 2;
            Some(CoverageWalk::new(tz, week, first_day))
        }
        _ => None,
    };
    let mut current: Option<(Timestamp, Timestamp)> = None;
    let mut coverage_done = false;

    for _ in 0..MAX_SHIFTS_EXAMINED {
        if shift_start >= to || out.full() || coverage_done {
            break;
        }
        let shift_end = k
            .checked_add(1)
            .and_then(|k1| k1.checked_mul(m))
            .and_then(&boundary)
            .unwrap_or(Timestamp::MAX);
        if shift_end > shift_start {
            // Staffed lazily: most shifts of a business-hours rotation have no piece at all.
            let mut members: Option<Vec<String>> = None;
            match walk.as_mut() {
                None => out.piece(
                    &staff(&rotation.members, on_calls, k),
                    shift_start,
                    shift_end,
                ),
                Some(walk) => loop {
                    let (cs, ce) = match current {
                        Some(c) => c,
                        None => match walk.next_interval() {
                            Some(c) => {
                                current = Some(c);
                                c
                            }
                            None => {
                                coverage_done = true;
                                break;
                            }
                        },
                    };
                    if ce <= shift_start {
                        current = None;
                        continue;
                    }
                    if cs >= shift_end || cs >= to || out.full() {
                        break;
                    }
                    let members =
                        members.get_or_insert_with(|| staff(&rotation.members, on_calls, k));
                    out.piece(members, cs.max(shift_start), ce.min(shift_end));
                    if ce <= shift_end {
                        current = None;
                    } else {
                        break;
                    }
                },
            }
        }
        if shift_end == Timestamp::MAX {
            break;
        }
        k += 1;
        shift_start = shift_end;
    }
    out.shifts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_day_numbers_round_trip() {
        for z in [
            -800_000, -719_468, -1, 0, 1, 59, 365, 10_957, 20_000, 2_932_896,
        ] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(weekday_of_day(days_from_civil(2026, 3, 9)), 0); // a Monday
    }

    #[test]
    fn hand_off_parse_and_display() {
        assert_eq!(HandOff::parse("09:05"), Some(HandOff::new(9, 5)));
        assert_eq!(HandOff::parse("9:05"), Some(HandOff::new(9, 5)));
        assert_eq!(HandOff::parse("24:00"), None);
        assert_eq!(HandOff::parse("12:60"), None);
        assert_eq!(HandOff::new(7, 30).to_string(), "07:30");
    }

    #[test]
    fn recurrence_json_shape_is_stable() {
        let mut cov = BTreeMap::new();
        cov.insert(
            DayOfWeek(Weekday::Monday),
            vec![CoverageWindow::new(HandOff::new(9, 0), HandOff::new(17, 0))],
        );
        let r = Recurrence {
            cadence: Cadence::Weekly(vec![(Weekday::Friday, HandOff::new(16, 30))]),
            number_of_on_calls: 1,
            multiplier: 2,
            coverage: Some(cov),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"cadence":{"weekly":[["FRI",{"hour":16,"minute":30}]]},"number_of_on_calls":1,"multiplier":2,"coverage":{"MON":[{"start":{"hour":9,"minute":0},"end":{"hour":17,"minute":0}}]}}"#
        );
        assert_eq!(serde_json::from_str::<Recurrence>(&json).unwrap(), r);
        let daily: Cadence = serde_json::from_str(r#"{"daily":[{"hour":9,"minute":0}]}"#).unwrap();
        assert_eq!(daily, Cadence::Daily(vec![HandOff::new(9, 0)]));
        let monthly: Cadence =
            serde_json::from_str(r#"{"monthly":[[31,{"hour":9,"minute":0}]]}"#).unwrap();
        assert_eq!(monthly, Cadence::Monthly(vec![(31, HandOff::new(9, 0))]));
        assert!(serde_json::from_str::<DayOfWeek>(r#""MONDAY""#).is_err());
    }

    #[test]
    fn tiled_coverage_is_always() {
        let mut cov = BTreeMap::new();
        for d in DayOfWeek::ALL {
            cov.insert(
                d,
                vec![
                    CoverageWindow::new(HandOff::new(0, 0), HandOff::new(12, 0)),
                    CoverageWindow::new(HandOff::new(12, 0), HandOff::new(0, 0)),
                ],
            );
        }
        assert!(matches!(
            compile_coverage(&Some(cov.clone())),
            Coverage::Always
        ));
        cov.insert(
            DayOfWeek(Weekday::Sunday),
            vec![CoverageWindow::new(
                HandOff::new(0, 0),
                HandOff::new(23, 59),
            )],
        );
        assert!(matches!(compile_coverage(&Some(cov)), Coverage::Windows(_)));
        assert!(matches!(
            compile_coverage(&Some(BTreeMap::new())),
            Coverage::Never
        ));
    }
}
