//! In-process tests of the application layer: a temporary SQLite store, a `ManualClock`,
//! messages sent to an outbox file, and the jobs run when the test says (or by a real job
//! engine woken after each change of the clock). No HTTP, and no waiting on real time.
#![forbid(unsafe_code)]

mod activation;
mod contacts;
mod engagements;
mod harness;
mod incidents;
mod ingest;
mod replies;
