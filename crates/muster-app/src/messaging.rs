//! Everything the API needs to message people: the providers, the templates, the key for
//! codes and links, and the limits on activation codes and automatic answers.

use crate::codes::CodeKey;
use muster_core::ChannelType;
use muster_notify::config::ProviderConfig;
use muster_notify::inbound::keywords::ReplyLimiter;
use muster_notify::providers::{Notifier, SenderIdentity};
use muster_notify::templates::{Templates, Vars};
use muster_notify::{Message, MessageKind};
use muster_store::ChannelRecord;
use uuid::Uuid;

/// Limits on activation codes (DESIGN.md: 24 h expiry, 5 wrong tries per code).
#[derive(Debug, Clone)]
pub struct ActivationPolicy {
    pub code_ttl_ms: i64,
    pub max_attempts: i32,
    /// Codes sent to one channel per window, then ServiceQuotaExceededException.
    pub max_sends: u32,
    /// Codes sent to one destination address per window, across channels and accounts (so
    /// many channels with one number cannot pump SMS to it), then
    /// ServiceQuotaExceededException.
    pub max_sends_per_address: u32,
    /// Codes sent by one account per window, across its channels.
    pub max_sends_per_account: u32,
    pub send_window_ms: i64,
}

impl Default for ActivationPolicy {
    fn default() -> Self {
        ActivationPolicy {
            code_ttl_ms: 24 * 3600 * 1000,
            max_attempts: 5,
            max_sends: 5,
            max_sends_per_address: 5,
            max_sends_per_account: 50,
            send_window_ms: 3600 * 1000,
        }
    }
}

impl ActivationPolicy {
    /// The store's form of the send limits.
    pub fn send_limits(&self) -> muster_store::CodeSendLimits {
        muster_store::CodeSendLimits {
            per_channel: self.max_sends,
            per_address: self.max_sends_per_address,
            per_account: self.max_sends_per_account,
            window_ms: self.send_window_ms,
        }
    }
}

pub struct Messaging {
    pub notifier: Notifier,
    pub templates: Templates,
    pub code_key: CodeKey,
    /// The base URL people and providers reach Muster at (links, Twilio signatures).
    pub public_url: Option<String>,
    pub service_name: String,
    /// Caps automatic answers per address, so two machines cannot loop.
    pub limiter: ReplyLimiter,
    /// Auth tokens of the configured Twilio accounts, to verify their webhooks.
    pub twilio_auth_tokens: Vec<String>,
    /// Shared secret of `POST /hooks/email`; the hook is off without it.
    pub email_secret: Option<String>,
    /// The mail gateway's authserv-id: when set, the e-mail hook acts on a reply only if the
    /// gateway's `Authentication-Results` vouch for its `From` (DMARC, or aligned DKIM/SPF).
    pub email_authserv_id: Option<String>,
    pub policy: ActivationPolicy,
}

impl Messaging {
    pub fn new(
        notifier: Notifier,
        providers: &[ProviderConfig],
        templates: Templates,
        code_key: CodeKey,
        public_url: Option<String>,
        email_secret: Option<String>,
    ) -> Self {
        let twilio_auth_tokens = providers
            .iter()
            .filter_map(|p| match p {
                ProviderConfig::Twilio(t) => Some(t.auth_token.expose().to_string()),
                _ => None,
            })
            .collect();
        Messaging {
            notifier,
            service_name: templates.service().to_string(),
            templates,
            code_key,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_string()),
            limiter: ReplyLimiter::default(),
            twilio_auth_tokens,
            email_secret: email_secret.filter(|s| !s.is_empty()),
            email_authserv_id: None,
            policy: ActivationPolicy::default(),
        }
    }

    /// Sets the mail gateway's authserv-id (see [`Messaging::email_authserv_id`]).
    pub fn with_email_authserv_id(mut self, authserv_id: Option<String>) -> Self {
        self.email_authserv_id = authserv_id.filter(|s| !s.trim().is_empty());
        self
    }

    /// The one-click unsubscribe link for an address (needs a public URL).
    pub fn unsubscribe_url(&self, address: &str) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|base| format!("{base}/u/{}", self.code_key.unsubscribe_token(address)))
    }

    fn expires_words(&self) -> String {
        let hours = self.policy.code_ttl_ms / 3_600_000;
        if hours >= 1 {
            format!("{hours} hour{}", if hours == 1 { "" } else { "s" })
        } else {
            format!("{} minutes", self.policy.code_ttl_ms / 60_000)
        }
    }

    /// The activation message for a channel.
    pub fn render_activation(
        &self,
        ch: &ChannelRecord,
        contact_name: &str,
        code: &str,
        id: Uuid,
    ) -> Message {
        let unsubscribe_url = (ch.channel_type == ChannelType::Email)
            .then(|| self.unsubscribe_url(&ch.address))
            .flatten();
        let vars = Vars {
            code: Some(code.to_string()),
            expires: Some(self.expires_words()),
            contact: Some(contact_name.to_string()),
            channel: Some(ch.name.clone()),
            unsubscribe_url: unsubscribe_url.clone(),
            ..Default::default()
        };
        let (subject, body, html) =
            self.templates
                .render(MessageKind::Activation, ch.channel_type, &vars);
        Message {
            id,
            kind: MessageKind::Activation,
            channel_type: ch.channel_type,
            address: ch.address.clone(),
            subject,
            body,
            html,
            activation_code: Some(code.to_string()),
            page_arn: None,
            accept_code: None,
            unsubscribe_url,
            ack_url: None,
            account: Some(ch.account.clone()),
        }
    }

    /// The short text answering a reply (SMS body of the kind's template).
    pub fn text(&self, kind: MessageKind) -> String {
        self.templates
            .render(kind, ChannelType::Sms, &Vars::default())
            .1
    }

    /// (e-mail addresses, phone numbers) Muster sends from, for the vCard.
    pub fn sender_addresses(&self) -> (Vec<String>, Vec<String>) {
        let mut emails = Vec::new();
        let mut phones = Vec::new();
        for s in self.notifier.sender_identities() {
            match s {
                SenderIdentity::Email(e) => emails.push(e),
                SenderIdentity::Phone(p) => phones.push(p),
            }
        }
        (emails, phones)
    }
}
