//! SMS and voice calls over Twilio's REST API (or a Twilio-compatible one, via `base_url`).
//!
//! - SMS: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, form `To`, `From`, `Body`,
//!   `StatusCallback`.
//! - VOICE: `POST {base}/2010-04-01/Accounts/{sid}/Calls.json`, form `To`, `From`, `Twiml`,
//!   `StatusCallback`. The TwiML reads the message aloud; for a page, inside a
//!   `<Gather numDigits="1">` whose action is `{public_url}/hooks/twilio/voice?m={message id}`
//!   (1 acknowledges).
//!
//! HTTP basic auth with the account SID and auth token; `I-Twilio-Idempotency-Token` is the
//! message id. Status callbacks go to `{public_url}/hooks/twilio/status` when a public URL is
//! configured; the returned `sid` is the provider message id receipts are matched with.

use super::{Failure, FailureKind, http_client, http_failure};
use crate::config::{Secret, TwilioConfig};
use crate::inbound::twilio::xml_escape;
use crate::message::{Message, MessageKind};
use muster_core::ChannelType;
use std::time::Duration;

pub(crate) struct Twilio {
    client: reqwest::Client,
    base: String,
    account_sid: String,
    auth_token: Secret,
    from: String,
    public_url: Option<String>,
}

impl Twilio {
    pub(crate) fn new(
        c: &TwilioConfig,
        timeout: Duration,
        public_url: Option<&str>,
    ) -> Result<Twilio, String> {
        Ok(Twilio {
            client: http_client(timeout).map_err(|e| format!("provider {:?}: {e}", c.name))?,
            base: c.base_url().to_string(),
            account_sid: c.account_sid.clone(),
            auth_token: c.auth_token.clone(),
            from: c.from.clone(),
            public_url: public_url.map(str::to_string),
        })
    }

    pub(crate) fn from(&self) -> &str {
        &self.from
    }

    pub(crate) fn target(&self) -> String {
        format!("{} from {}", super::url_origin(&self.base), self.from)
    }

    pub(crate) async fn send(&self, msg: &Message) -> Result<Option<String>, Failure> {
        let status_callback = self
            .public_url
            .as_ref()
            .map(|u| format!("{u}/hooks/twilio/status"));
        let (resource, content_field, content) = match msg.channel_type {
            ChannelType::Sms => ("Messages", "Body", msg.body.clone()),
            ChannelType::Voice => ("Calls", "Twiml", twiml(msg, self.public_url.as_deref())),
            ChannelType::Email => {
                return Err(Failure::new(
                    FailureKind::Invalid,
                    "Twilio sends SMS and VOICE only",
                ));
            }
        };
        let url = format!(
            "{}/2010-04-01/Accounts/{}/{resource}.json",
            self.base, self.account_sid
        );
        let mut form: Vec<(&str, &str)> = vec![
            ("To", msg.address.as_str()),
            ("From", self.from.as_str()),
            (content_field, content.as_str()),
        ];
        if let Some(cb) = &status_callback {
            form.push(("StatusCallback", cb.as_str()));
        }
        let resp = self
            .client
            .post(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .header("I-Twilio-Idempotency-Token", msg.id.to_string())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(http_failure)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(http_failure)?;
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            // Twilio's error document: {"code": 21211, "message": "...", "more_info": ..., "status": 400}
            let mut text = json
                .as_ref()
                .and_then(|j| j.get("message"))
                .and_then(|m| m.as_str())
                .map(|m| truncate(m, 300))
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
            if let Some(code) = json
                .as_ref()
                .and_then(|j| j.get("code"))
                .and_then(|c| c.as_i64())
            {
                text = format!("Twilio error {code}: {text}");
            }
            return Err(Failure::new(FailureKind::Rejected, text).with_status(status.as_u16()));
        }
        let sid = json
            .as_ref()
            .and_then(|j| j.get("sid"))
            .and_then(|s| s.as_str())
            .map(str::to_string);
        if sid.is_none() {
            tracing::warn!(message_id = %msg.id, "Twilio accepted the message but returned no sid");
        }
        Ok(sid)
    }
}

/// The TwiML of a call: the message read aloud; for a page (when Twilio can reach us back) a
/// one-digit `<Gather>` posting the keypress to `/hooks/twilio/voice?m={message id}`.
pub(crate) fn twiml(msg: &Message, public_url: Option<&str>) -> String {
    let say = xml_escape(&msg.body);
    let mut x = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#);
    match (msg.kind, public_url) {
        (MessageKind::Page, Some(base)) => {
            let action = xml_escape(&format!("{base}/hooks/twilio/voice?m={}", msg.id));
            // The message is read twice before giving up; a key press interrupts it.
            x.push_str(&format!(
                r#"<Gather numDigits="1" action="{action}" method="POST" timeout="10"><Say loop="2">{say}</Say></Gather><Say>No key was pressed. Goodbye.</Say>"#
            ));
        }
        _ => x.push_str(&format!(r#"<Say loop="2">{say}</Say>"#)),
    }
    x.push_str("</Response>");
    x
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn msg(kind: MessageKind) -> Message {
        Message {
            id: Uuid::nil(),
            kind,
            channel_type: ChannelType::Voice,
            address: "+15550001111".into(),
            subject: "s".into(),
            body: "Disk <full> & \"hot\"".into(),
            html: None,
            activation_code: None,
            page_arn: None,
            accept_code: None,
            unsubscribe_url: None,
            ack_url: None,
            account: None,
        }
    }

    #[test]
    fn twiml_escapes_and_gathers_for_pages_only() {
        let t = twiml(&msg(MessageKind::Page), Some("https://m.example"));
        assert!(t.contains("Disk &lt;full&gt; &amp; &quot;hot&quot;"), "{t}");
        assert!(t.contains(
            r#"action="https://m.example/hooks/twilio/voice?m=00000000-0000-0000-0000-000000000000""#
        ));
        assert!(
            !twiml(&msg(MessageKind::Activation), Some("https://m.example")).contains("Gather")
        );
        assert!(!twiml(&msg(MessageKind::Page), None).contains("Gather"));
    }
}
