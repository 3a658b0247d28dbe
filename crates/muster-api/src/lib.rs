//! Muster's wire protocols: the AWS JSON 1.1 protocol of SSM Contacts (generated types,
//! dispatch on `X-Amz-Target`, SigV4 verification, error envelopes).
#![forbid(unsafe_code)]

pub mod activation;
pub mod contacts;
pub mod context;
pub mod engagements;
pub mod error;
pub mod http;
pub mod rotations;
pub mod sigv4;
pub mod tokens;
pub mod wire;

// Moved to the application layer; re-exported while adapters move over.
pub use muster_app::{codes, keys as secrets, messaging};
