//! Replies from devices (SMS, e-mail, a voice call's keypress): a page's accept code
//! acknowledges it; STOP words opt the device out (confirmed once), START words opt it back
//! in and send new activation codes, HELP says who is sending. Automatic answers are capped
//! per address so two machines cannot keep replying to each other.

use crate::App;
use muster_notify::MessageKind;
use muster_notify::inbound::keywords::{Reply, classify_text, looks_automated};

/// What an inbound reply did, for the caller's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    OptedOut {
        first_time: bool,
    },
    OptedIn {
        was_opted_out: bool,
        codes_sent: usize,
    },
    Help,
    /// The reply carried the accept code of an open page: acknowledged.
    Acknowledged,
    CodeNotRecognised,
    Ignored,
    /// The reply could not be stored (the database failed): not acted on, to be retried.
    Failed,
}

impl App {
    /// Acts on a reply from a device (`source` is "sms", "voice" or "email"); `text` is
    /// what is classified, `raw` the message as received, kept with a consent change.
    pub async fn handle_reply(
        &self,
        address: &str,
        text: &str,
        raw: &str,
        source: &str,
    ) -> Outcome {
        let reply = classify_text(text);
        let result = match reply {
            Reply::OptOut => self
                .store
                .opt_out(address, source, Some(raw), self.clock.now_ms())
                .await
                .map(|first_time| Outcome::OptedOut { first_time }),
            Reply::OptIn => match self
                .store
                .opt_in(address, source, Some(raw), self.clock.now_ms())
                .await
            {
                Ok(was_opted_out) => Ok(Outcome::OptedIn {
                    was_opted_out,
                    codes_sent: if was_opted_out {
                        self.reactivation_codes(address).await
                    } else {
                        0
                    },
                }),
                Err(e) => Err(e),
            },
            Reply::Help => Ok(Outcome::Help),
            // Replies from devices are always checked against the page's code (ENFORCE).
            Reply::Code(code) => match self.acknowledge_by_code(address, &code, source).await {
                Ok(Some(_)) => Ok(Outcome::Acknowledged),
                Ok(None) => Ok(Outcome::CodeNotRecognised),
                Err(e) => Err(e),
            },
            _ if looks_automated(text) => Ok(Outcome::Ignored),
            _ => Ok(Outcome::Help),
        };
        match result {
            Ok(o) => {
                let label = match o {
                    Outcome::OptedOut { .. } => "opt_out",
                    Outcome::OptedIn { .. } => "opt_in",
                    Outcome::Help => "help",
                    Outcome::Acknowledged => "acknowledged",
                    Outcome::CodeNotRecognised => "code_not_recognised",
                    Outcome::Ignored => "ignored",
                    Outcome::Failed => "failed",
                };
                metrics::counter!("muster_replies_received_total", "source" => source.to_string(), "outcome" => label)
                    .increment(1);
                tracing::info!(source, outcome = ?o, "inbound reply handled");
                o
            }
            Err(e) => {
                tracing::error!(source, error = %e, "inbound reply could not be stored");
                Outcome::Failed
            }
        }
    }

    /// After START: a new activation code to every channel with this address.
    async fn reactivation_codes(&self, address: &str) -> usize {
        let channels = match self.store.channels_by_address(address).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot list channels for re-activation");
                return 0;
            }
        };
        let mut sent = 0;
        for ch in channels {
            let name = self
                .store
                .get_contact(&ch.account, &ch.contact_alias)
                .await
                .ok()
                .flatten()
                .and_then(|c| c.display_name.filter(|n| !n.is_empty()))
                .unwrap_or_else(|| ch.contact_alias.clone());
            match self.send_activation(&ch, &name).await {
                Ok(()) => sent += 1,
                Err(e) => {
                    tracing::warn!(channel = %ch.id, error = %e, "re-activation code not sent")
                }
            }
        }
        sent
    }

    /// The text answering a reply, if one should be sent (at most a few per address per
    /// hour, and never to automated messages).
    pub fn answer_text(&self, address: &str, outcome: &Outcome) -> Option<String> {
        let m = &self.messaging;
        let text = match outcome {
            Outcome::OptedOut { first_time: true } => m.text(MessageKind::OptOutConfirmation),
            Outcome::OptedOut { first_time: false } => return None,
            Outcome::OptedIn { .. } => m.text(MessageKind::OptInConfirmation),
            Outcome::Help => m.text(MessageKind::Help),
            Outcome::Acknowledged => format!("{}: page acknowledged. Thank you.", m.service_name),
            Outcome::CodeNotRecognised => format!(
                "{}: that code does not match an open page. Reply HELP for help.",
                m.service_name
            ),
            Outcome::Ignored | Outcome::Failed => return None,
        };
        m.limiter.allow(address, self.clock.now()).then_some(text)
    }
}
