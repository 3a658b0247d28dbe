//! muster-import's integration tests: one binary (sources' readers against local HTTP
//! servers, mappings, golden outputs, the engine against a real SQLite database).

mod engine;
mod pagerduty;
