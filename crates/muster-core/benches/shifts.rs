//! `cargo bench -p muster-core --bench shifts`: how long `rotation::shifts` takes for one year of
//! a 30-person daily rotation with Mon-Fri 09:00-17:00 coverage (the ListRotationShifts budget
//! is 5 ms), started at the query start and 10 years earlier, against a same-run baseline: the
//! bare cost of converting the year's 365 local midnights to instants with jiff.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};
use muster_core::rotation::{
    Cadence, CoverageWindow, DayOfWeek, HandOff, OverrideSpec, Recurrence, RotationSpec, Weekday,
    on_call_at, shifts,
};

const RUNS: usize = 2_000;

struct Stats {
    median: Duration,
    p99: Duration,
}

fn measure(mut f: impl FnMut()) -> Stats {
    for _ in 0..50 {
        f();
    }
    let mut samples: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    Stats {
        median: samples[RUNS / 2],
        p99: samples[RUNS * 99 / 100],
    }
}

fn report(name: &str, s: &Stats, baseline: Option<&Stats>) {
    let ratio = baseline
        .map(|b| {
            format!(
                "  ({:.1}x baseline)",
                s.median.as_secs_f64() / b.median.as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "{name:<64} median {:>9.1} µs   p99 {:>9.1} µs{ratio}",
        s.median.as_secs_f64() * 1e6,
        s.p99.as_secs_f64() * 1e6
    );
}

fn rotation(
    tz: &TimeZone,
    start: Timestamp,
    cadence: Cadence,
    multiplier: u32,
    business_hours: bool,
) -> RotationSpec {
    let coverage = business_hours.then(|| {
        [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ]
        .into_iter()
        .map(|d| {
            (
                DayOfWeek(d),
                vec![CoverageWindow::new(HandOff::new(9, 0), HandOff::new(17, 0))],
            )
        })
        .collect()
    });
    RotationSpec {
        start,
        time_zone: tz.clone(),
        members: (0..30)
            .map(|i| format!("arn:aws:ssm-contacts:us-east-1:000000000000:contact/person-{i}"))
            .collect(),
        recurrence: Recurrence {
            cadence,
            number_of_on_calls: 1,
            multiplier,
            coverage,
        },
    }
}

fn main() {
    let tz = TimeZoneDatabase::bundled().get("America/New_York").unwrap();
    let day0 = Date::new(2026, 1, 5).unwrap();
    let from = tz
        .to_timestamp(DateTime::from_parts(day0, Time::midnight()))
        .unwrap();
    let to = from + SignedDuration::from_hours(365 * 24);
    let ten_years_ago = from - SignedDuration::from_hours(3_652 * 24);
    let daily = Cadence::Daily(vec![HandOff::new(9, 0)]);

    println!(
        "muster-core rotation::shifts, America/New_York, query [{from}, {to}), {RUNS} runs each"
    );

    let baseline = measure(|| {
        let mut d = day0;
        let mut out = Vec::with_capacity(365);
        for _ in 0..365 {
            out.push(
                tz.to_timestamp(DateTime::from_parts(d, Time::midnight()))
                    .unwrap(),
            );
            d = d.tomorrow().unwrap();
        }
        black_box(out);
    });
    report(
        "baseline: 365 local midnights -> instants (jiff)",
        &baseline,
        None,
    );

    let started_now = rotation(&tz, from, daily.clone(), 1, true);
    let n = shifts(&started_now, &[], from, to).len();
    let s = measure(|| {
        black_box(shifts(black_box(&started_now), &[], from, to));
    });
    report(
        &format!("daily, 30 people, Mon-Fri 09-17, started at `from` ({n} shifts)"),
        &s,
        Some(&baseline),
    );

    let started_long_ago = rotation(&tz, ten_years_ago, daily.clone(), 1, true);
    let n = shifts(&started_long_ago, &[], from, to).len();
    let s = measure(|| {
        black_box(shifts(black_box(&started_long_ago), &[], from, to));
    });
    report(
        &format!("daily, 30 people, Mon-Fri 09-17, started 10 years earlier ({n} shifts)"),
        &s,
        Some(&baseline),
    );

    // Context: other shapes of the same year.
    let overrides: Vec<OverrideSpec> = (0..50)
        .map(|i| OverrideSpec {
            id: format!("o{i}"),
            members: vec!["arn:aws:ssm-contacts:us-east-1:000000000000:contact/person-0".into()],
            start: from + SignedDuration::from_hours(i * 170),
            end: from + SignedDuration::from_hours(i * 170 + 30),
            created: from,
        })
        .collect();
    let n = shifts(&started_long_ago, &overrides, from, to).len();
    let s = measure(|| {
        black_box(shifts(black_box(&started_long_ago), &overrides, from, to));
    });
    report(
        &format!("  same, with 50 overrides ({n} shifts)"),
        &s,
        Some(&baseline),
    );

    let always = rotation(&tz, ten_years_ago, daily, 1, false);
    let n = shifts(&always, &[], from, to).len();
    let s = measure(|| {
        black_box(shifts(black_box(&always), &[], from, to));
    });
    report(
        &format!("  daily 24x7, started 10 years earlier ({n} shifts)"),
        &s,
        Some(&baseline),
    );

    let monthly = rotation(
        &tz,
        ten_years_ago,
        Cadence::Monthly(vec![(31, HandOff::new(9, 0))]),
        100,
        true,
    );
    let n = shifts(&monthly, &[], from, to).len();
    let s = measure(|| {
        black_box(shifts(black_box(&monthly), &[], from, to));
    });
    report(
        &format!("  monthly x100 (8-year shifts), Mon-Fri 09-17, 10 years earlier ({n})"),
        &s,
        Some(&baseline),
    );

    let at = from + SignedDuration::from_hours(24 * 100 + 14);
    let s = measure(|| {
        black_box(on_call_at(black_box(&started_long_ago), &[], at));
    });
    report(
        "  on_call_at, daily Mon-Fri 09-17, started 10 years earlier",
        &s,
        Some(&baseline),
    );
}
