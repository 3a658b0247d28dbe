//! The `muster` binary's library half: configuration and server wiring, shared by the
//! command line and the integration tests.
#![forbid(unsafe_code)]

pub mod backup;
pub mod config;
pub mod connections;
pub mod server;
