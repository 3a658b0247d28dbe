//! Muster's wire protocols: the AWS JSON 1.1 protocol of SSM Contacts (generated types,
//! dispatch on `X-Amz-Target`, SigV4 verification, error envelopes).
#![forbid(unsafe_code)]

pub mod activation;
pub mod codes;
pub mod contacts;
pub mod context;
pub mod engagements;
pub mod error;
pub mod feeds;
pub mod hooks;
pub mod http;
pub mod messaging;
pub mod replay;
pub mod rotations;
pub mod secrets;
pub mod sigv4;
pub mod tokens;
pub mod wire;
