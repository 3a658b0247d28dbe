//! Muster's inbound HTTP endpoints other than the AWS API, each a thin adapter over
//! `muster-app`: Twilio SMS replies, voice keypresses and status callbacks, raw e-mail
//! replies ([`hooks`], with replay protection in [`replay`]), the acknowledgement and
//! unsubscribe links and the sender vCard ([`hooks`]), and calendar feeds ([`feeds`]).
//! Alert ingestion from monitoring systems lands here too.
#![forbid(unsafe_code)]

pub mod feeds;
pub mod hooks;
pub mod ingest;
pub mod replay;
