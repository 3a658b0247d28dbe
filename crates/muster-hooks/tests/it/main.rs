//! muster-hooks' integration tests, one binary (each links once): the webhook endpoints over
//! real HTTP, and SNS signatures against a fake AWS host over TLS.

mod common;
mod sns;
mod webhooks;
