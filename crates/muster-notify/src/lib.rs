//! Muster's side of the wire to people: outbound providers (an outbox file, SMTP, Twilio's
//! REST API, signed webhooks) tried in order with failover, message templates, and the
//! inbound half: provider signatures, reply keywords, raw e-mail, and the sender vCard.
#![forbid(unsafe_code)]

pub mod config;
pub mod inbound;
pub mod message;
pub mod providers;
pub mod templates;
pub mod vcard;

pub use message::{Delivery, Message, MessageKind};
