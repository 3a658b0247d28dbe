//! Muster's inbound HTTP endpoints other than the AWS API, each a thin adapter over
//! `muster-app`: Twilio SMS replies, voice keypresses and status callbacks, raw e-mail
//! replies ([`hooks`], with replay protection in [`replay`]), the acknowledgement and
//! unsubscribe links and the sender vCard ([`hooks`]), and calendar feeds ([`feeds`]).
//! Alerts from monitoring: each sender's HTTP contract ([`alerts`]) over its payload's parser
//! ([`ingest`]); SNS messages are verified with the certificates [`sns_certs`] fetches from AWS.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod feeds;
pub mod hooks;
pub mod ingest;
pub mod replay;
pub mod sns_certs;
