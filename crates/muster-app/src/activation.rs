//! Activation: a device proves it belongs to its contact with a code sent to it. Codes
//! are keyed hashes (never stored in clear), compared in constant time, limited per
//! channel, per address and per account, and refused to an opted-out device.

use crate::messaging::Messaging;
use crate::{App, AppError, Caller};
use muster_core::ActivationStatus;
use muster_notify::Message;
use muster_store::{ActivationCodeRecord, ChannelRecord, DeliveryRecord, SendScope, StoreError};
use uuid::Uuid;

impl App {
    /// Issues a new code for `ch` and sends it. Refuses an opted-out device.
    pub async fn send_activation(
        &self,
        ch: &ChannelRecord,
        contact_name: &str,
    ) -> Result<(), AppError> {
        let m: &Messaging = &self.messaging;
        if self.store.is_opted_out(&ch.address).await? {
            return Err(AppError::OptedOut {
                message: format!(
                    "{} opted out of messages from this service (replied STOP or unsubscribed); \
                 it must reply START before it can be sent an activation code",
                    ch.address
                ),
            });
        }
        let code = crate::codes::new_activation_code();
        let now = self.clock.now_ms();
        let rec = ActivationCodeRecord {
            channel_id: ch.id,
            code_hash: m.code_key.activation_hash(ch.id, &code),
            expires_ms: now + m.policy.code_ttl_ms,
            failed_attempts: 0,
            created_ms: now,
        };
        let minutes = m.policy.send_window_ms / 60_000;
        let seconds = |retry_after_ms: i64| (retry_after_ms.max(0) + 999) / 1000;
        match self
            .store
            .issue_activation_code_to(
                &ch.account,
                &rec,
                Some(&ch.address),
                now,
                &m.policy.send_limits(),
            )
            .await
        {
            Ok(()) => {}
            Err(StoreError::TooManySends { retry_after_ms }) => {
                return Err(AppError::Quota {
                    message: format!(
                        "at most {} activation codes can be sent to a contact channel per {minutes} minutes; try again in {} seconds",
                        m.policy.max_sends,
                        seconds(retry_after_ms)
                    ),
                    id: None,
                    kind: Some("CONTACT_CHANNEL".into()),
                    quota: "activation-codes-per-channel".into(),
                });
            }
            Err(StoreError::TooManySendsTo {
                scope,
                retry_after_ms,
            }) => {
                let (limit, whom, quota) = match scope {
                    SendScope::Address => (
                        m.policy.max_sends_per_address,
                        "one delivery address (across all contact channels and accounts)",
                        "activation-codes-per-address",
                    ),
                    SendScope::Account => (
                        m.policy.max_sends_per_account,
                        "the contact channels of one account",
                        "activation-codes-per-account",
                    ),
                };
                return Err(AppError::Quota {
                    message: format!(
                        "at most {limit} activation codes can be sent to {whom} per {minutes} minutes; try again in {} seconds",
                        seconds(retry_after_ms)
                    ),
                    id: None,
                    kind: Some("CONTACT_CHANNEL".into()),
                    quota: quota.into(),
                });
            }
            Err(StoreError::AddressChanged) => {
                return Err(AppError::Conflict {
                    message: "the contact channel's delivery address changed while its \
                              activation code was being sent; send a new code"
                        .into(),
                    id: ch.id.to_string(),
                    kind: "CONTACT_CHANNEL".into(),
                    dependents: vec![],
                });
            }
            Err(e) => return Err(e.into()),
        }
        let msg = m.render_activation(ch, contact_name, &code, Uuid::new_v4());
        self.deliver(&msg, Some(&ch.account), Some(ch.id)).await
    }

    /// Sends a message through the configured providers and records which provider took
    /// it (status callbacks name its id). A failure of every provider is logged with each
    /// reason and answered as a retryable server error.
    pub async fn deliver(
        &self,
        msg: &Message,
        account: Option<&str>,
        channel_id: Option<Uuid>,
    ) -> Result<(), AppError> {
        match self.messaging.notifier.send(msg).await {
            Ok(d) => {
                metrics::counter!("muster_messages_sent_total", "kind" => msg.kind.as_str(), "provider" => d.provider.clone())
                    .increment(1);
                tracing::info!(
                    message_id = %msg.id,
                    kind = msg.kind.as_str(),
                    channel_type = %msg.channel_type,
                    provider = %d.provider,
                    "message handed to provider"
                );
                let now = self.clock.now_ms();
                let record = DeliveryRecord {
                    message_id: msg.id,
                    account: account.map(str::to_owned),
                    channel_id,
                    kind: msg.kind.as_str().to_owned(),
                    provider: d.provider,
                    provider_message_id: d.provider_message_id,
                    status: "SENT".into(),
                    sent_ms: now,
                    updated_ms: now,
                    page_id: None,
                };
                // The message is out: failing to record it must not report a failure.
                if let Err(e) = self.store.record_delivery(&record).await {
                    tracing::error!(message_id = %msg.id, error = %e, "delivery not recorded");
                }
                Ok(())
            }
            Err(e) => {
                metrics::counter!("muster_messages_failed_total", "kind" => msg.kind.as_str())
                    .increment(1);
                tracing::error!(message_id = %msg.id, kind = msg.kind.as_str(), error = %e, "no provider took the message");
                Err(AppError::Internal {
                    message: "The message could not be handed to any provider; it has been logged. Try again later.".into(),
                })
            }
        }
    }

    /// The name messages use for a channel's contact.
    pub async fn contact_name(
        &self,
        caller: &Caller,
        ch: &ChannelRecord,
    ) -> Result<String, AppError> {
        Ok(self
            .store
            .get_contact(caller.account.as_str(), &ch.contact_alias)
            .await?
            .and_then(|c| c.display_name.filter(|n| !n.is_empty()))
            .unwrap_or_else(|| ch.contact_alias.clone()))
    }

    /// Activates `ch` with `code` (compared in constant time). An opted-out device, a
    /// missing, expired or used-up code, and a wrong one are invalid input naming the
    /// member (`ContactChannelId`, `ActivationCode`); a wrong code counts as a try.
    /// Activating an activated channel with no code pending changes nothing.
    pub async fn activate_channel(
        &self,
        caller: &Caller,
        ch: &ChannelRecord,
        code: &str,
    ) -> Result<(), AppError> {
        let policy = &self.messaging.policy;
        if self.store.is_opted_out(&ch.address).await? {
            return Err(AppError::invalid(
                "ContactChannelId",
                "the device opted out (replied STOP or unsubscribed); it must reply START and use the new code it is sent",
            ));
        }
        let Some(current) = self
            .store
            .get_activation_code(caller.account.as_str(), ch.id)
            .await?
        else {
            if ch.activation == ActivationStatus::Activated {
                return Ok(());
            }
            return Err(AppError::invalid(
                "ActivationCode",
                "no activation code is pending for this channel; send a new one with SendActivationCode",
            ));
        };
        let now = self.clock.now_ms();
        if now >= current.expires_ms {
            return Err(AppError::invalid(
                "ActivationCode",
                "the activation code has expired; send a new one with SendActivationCode",
            ));
        }
        if current.failed_attempts >= policy.max_attempts {
            return Err(AppError::invalid(
                "ActivationCode",
                "too many wrong codes; send a new one with SendActivationCode",
            ));
        }
        if !self
            .messaging
            .code_key
            .activation_matches(ch.id, code.trim(), &current.code_hash)
        {
            let tries = self
                .store
                .record_failed_activation(caller.account.as_str(), ch.id)
                .await?
                .unwrap_or(policy.max_attempts);
            if tries >= policy.max_attempts {
                self.store
                    .delete_activation_code(caller.account.as_str(), ch.id)
                    .await?;
                return Err(AppError::invalid(
                    "ActivationCode",
                    "wrong code, and that was the last try: send a new one with SendActivationCode",
                ));
            }
            return Err(AppError::invalid(
                "ActivationCode",
                format!("wrong code ({} tries left)", policy.max_attempts - tries),
            ));
        }
        if !self
            .store
            .consume_activation_code(
                caller.account.as_str(),
                ch.id,
                &current.code_hash,
                now,
                policy.max_attempts,
            )
            .await?
        {
            // A new code was issued, or another try used this one, in between.
            return Err(AppError::invalid(
                "ActivationCode",
                "that code is no longer current; use the latest code sent",
            ));
        }
        Ok(())
    }

    /// Deactivates `ch` (named by `id`): pages are no longer sent to it.
    pub async fn deactivate_channel(
        &self,
        caller: &Caller,
        ch: &ChannelRecord,
        id: &str,
    ) -> Result<(), AppError> {
        if !self
            .store
            .deactivate_channel(caller.account.as_str(), ch.id, self.clock.now_ms())
            .await?
        {
            return Err(AppError::not_found("CONTACT_CHANNEL", id));
        }
        Ok(())
    }
}
