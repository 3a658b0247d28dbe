//! muster-import's integration tests: one binary (sources' readers against local HTTP
//! servers, mappings, golden outputs, the engine against a real SQLite database).

mod engine;
mod goalert;
mod oncall;
mod opsgenie_engine;
mod opsgenie_golden;
mod opsgenie_http;
mod opsgenie_map;
mod opsgenie_prop;
mod pagerduty;
mod server;

use jiff::Timestamp;
use muster_import::model::Interval;

/// The moment every fixture test plans at: Monday 2026-12-07 12:00 UTC.
pub const NOW: &str = "2026-12-07T12:00:00Z";

pub fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Who the intervals have on call at `t` (sorted).
pub fn on_call(intervals: &[Interval], t: &str) -> Vec<String> {
    let t = at(t);
    let mut v: Vec<String> = intervals
        .iter()
        .filter(|i| i.start <= t && t < i.end)
        .flat_map(|i| i.people.iter().cloned())
        .collect();
    v.sort();
    v.dedup();
    v
}
