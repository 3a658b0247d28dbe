//! A message to one device, as every provider receives it.

use muster_core::ChannelType;
use serde::Serialize;
use uuid::Uuid;

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A device activation code.
    Activation,
    /// A page of an engagement.
    Page,
    /// Confirms an opt-out (sent once).
    OptOutConfirmation,
    /// Confirms an opt-in (the new activation code follows separately).
    OptInConfirmation,
    /// Answers HELP.
    Help,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Activation => "activation",
            MessageKind::Page => "page",
            MessageKind::OptOutConfirmation => "opt_out_confirmation",
            MessageKind::OptInConfirmation => "opt_in_confirmation",
            MessageKind::Help => "help",
        }
    }
}

/// One message to one address. Rendered already (subject and body are final text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Stable across retries of the same message: providers get it as an idempotency key.
    pub id: Uuid,
    pub kind: MessageKind,
    pub channel_type: ChannelType,
    /// An e-mail address (EMAIL) or an E.164 number (SMS, VOICE).
    pub address: String,
    pub subject: String,
    /// Plain text. For VOICE, the words read aloud.
    pub body: String,
    /// HTML alternative for e-mail.
    pub html: Option<String>,
    pub activation_code: Option<String>,
    pub page_arn: Option<String>,
    pub accept_code: Option<String>,
    /// One-click unsubscribe (RFC 8058) for e-mail.
    pub unsubscribe_url: Option<String>,
    /// Acknowledge link for pages.
    pub ack_url: Option<String>,
    /// The account the message is sent for (the channel's or page's account); `None` for
    /// messages to an address rather than a channel (answers to replies). The outbox records
    /// it, so the console shows an account its own messages only.
    pub account: Option<String>,
}

/// Which provider took a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The provider's configured name.
    pub provider: String,
    /// The id to look the message up by at the provider: Twilio's SID; the SMTP server's
    /// queue id (`queued as …`), or else the `Message-ID` Muster gave the e-mail; the `id`
    /// of a webhook's JSON answer, if it gave one; the outbox line's `message_id`.
    pub provider_message_id: Option<String>,
}
