//! Muster's AWS adapter: the AWS JSON 1.1 protocol of SSM Contacts and the restJson1
//! protocol of SSM Incidents, and nothing else.
//!
//! - [`wire`]: the generated request and response types and the dispatch on
//!   `X-Amz-Target` (SSM Contacts) or on method and path (SSM Incidents), from the AWS
//!   Smithy models, by `muster-codegen`;
//! - [`sigv4`] and [`http`]: SigV4 verification and the AWS JSON 1.1 HTTP entry point;
//!   [`rest_json1`]: the restJson1 HTTP entry point;
//! - [`error`]: [`ApiError`](error::ApiError), the AWS error envelope, and its rendering of
//!   the application's `AppError`;
//! - [`contacts`], [`engagements`], [`rotations`], [`activation`]: one translation per
//!   operation, wire input in, a call of `muster-app`, wire output back.
//!
//! AWS wire types never leave this crate; the rules of what an operation does are in
//! `muster-app` (docs/architecture.md).
#![forbid(unsafe_code)]

pub mod activation;
pub mod contacts;
pub mod context;
pub mod engagements;
pub mod error;
pub mod http;
pub mod rest_json1;
pub mod rotations;
pub mod sigv4;
pub mod ssm_incidents;
pub mod tokens;
pub mod wire;

// In the application layer; re-exported for the console until it calls the application.
pub use muster_app::{codes, keys as secrets, messaging};
