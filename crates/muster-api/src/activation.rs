//! Device activation (SendActivationCode, ActivateContactChannel,
//! DeactivateContactChannel, and the code sent when a channel is created) and consent
//! (opt-out / opt-in), shared by the API and the inbound hooks.

use crate::contacts::{ContactsApi, field, req, store_error};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::messaging::Messaging;
use crate::wire::ssm_contacts as w;
use muster_core::ActivationStatus;
use muster_notify::Message;
use muster_store::{ActivationCodeRecord, ChannelRecord, DeliveryRecord, SendScope, StoreError};
use uuid::Uuid;

impl ContactsApi {
    /// Issues a new code for `ch` and sends it. Refuses an opted-out device.
    pub(crate) async fn send_activation(
        &self,
        ch: &ChannelRecord,
        contact_name: &str,
    ) -> Result<(), ApiError> {
        let m: &Messaging = &self.messaging;
        if self
            .store
            .is_opted_out(&ch.address)
            .await
            .map_err(store_error)?
        {
            return Err(ApiError::other(format!(
                "{} opted out of messages from this service (replied STOP or unsubscribed); \
                 it must reply START before it can be sent an activation code",
                ch.address
            )));
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
                return Err(ApiError::ServiceQuotaExceeded {
                    message: format!(
                        "at most {} activation codes can be sent to a contact channel per {minutes} minutes; try again in {} seconds",
                        m.policy.max_sends,
                        seconds(retry_after_ms)
                    ),
                    resource_id: None,
                    resource_type: Some("CONTACT_CHANNEL".into()),
                    quota_code: "activation-codes-per-channel".into(),
                    service_code: "ssm-contacts".into(),
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
                return Err(ApiError::ServiceQuotaExceeded {
                    message: format!(
                        "at most {limit} activation codes can be sent to {whom} per {minutes} minutes; try again in {} seconds",
                        seconds(retry_after_ms)
                    ),
                    resource_id: None,
                    resource_type: Some("CONTACT_CHANNEL".into()),
                    quota_code: quota.into(),
                    service_code: "ssm-contacts".into(),
                });
            }
            Err(StoreError::AddressChanged) => {
                return Err(ApiError::Conflict {
                    message: "the contact channel's delivery address changed while its \
                              activation code was being sent; send a new code"
                        .into(),
                    resource_id: ch.id.to_string(),
                    resource_type: "CONTACT_CHANNEL".into(),
                    dependent_entities: vec![],
                });
            }
            Err(e) => return Err(store_error(e)),
        }
        let msg = m.render_activation(ch, contact_name, &code, Uuid::new_v4());
        self.deliver(&msg, Some(&ch.account), Some(ch.id)).await
    }

    /// Sends a message through the configured providers and records which provider took
    /// it (status callbacks name its id). A failure of every provider is logged with each
    /// reason and answered as a retryable server error.
    pub(crate) async fn deliver(
        &self,
        msg: &Message,
        account: Option<&str>,
        channel_id: Option<Uuid>,
    ) -> Result<(), ApiError> {
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
                Err(ApiError::Internal {
                    message: "The message could not be handed to any provider; it has been logged. Try again later.".into(),
                })
            }
        }
    }

    pub(crate) async fn op_send_activation_code(
        &self,
        ctx: &RequestContext,
        input: w::SendActivationCodeRequest,
    ) -> Result<w::SendActivationCodeResult, ApiError> {
        let ch = self
            .load_channel(ctx, &req(input.contact_channel_id, "ContactChannelId")?)
            .await?;
        let name = self.contact_name(ctx, &ch).await?;
        self.send_activation(&ch, &name).await?;
        Ok(w::SendActivationCodeResult::default())
    }

    pub(crate) async fn op_activate_contact_channel(
        &self,
        ctx: &RequestContext,
        input: w::ActivateContactChannelRequest,
    ) -> Result<w::ActivateContactChannelResult, ApiError> {
        let id = req(input.contact_channel_id, "ContactChannelId")?;
        let code = req(input.activation_code, "ActivationCode")?;
        let ch = self.load_channel(ctx, &id).await?;
        let policy = &self.messaging.policy;
        if self
            .store
            .is_opted_out(&ch.address)
            .await
            .map_err(store_error)?
        {
            return Err(field(
                "ContactChannelId",
                "the device opted out (replied STOP or unsubscribed); it must reply START and use the new code it is sent",
            ));
        }
        let Some(current) = self
            .store
            .get_activation_code(ctx.account.as_str(), ch.id)
            .await
            .map_err(store_error)?
        else {
            if ch.activation == ActivationStatus::Activated {
                return Ok(w::ActivateContactChannelResult::default());
            }
            return Err(field(
                "ActivationCode",
                "no activation code is pending for this channel; send a new one with SendActivationCode",
            ));
        };
        let now = self.clock.now_ms();
        if now >= current.expires_ms {
            return Err(field(
                "ActivationCode",
                "the activation code has expired; send a new one with SendActivationCode",
            ));
        }
        if current.failed_attempts >= policy.max_attempts {
            return Err(field(
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
                .record_failed_activation(ctx.account.as_str(), ch.id)
                .await
                .map_err(store_error)?
                .unwrap_or(policy.max_attempts);
            if tries >= policy.max_attempts {
                self.store
                    .delete_activation_code(ctx.account.as_str(), ch.id)
                    .await
                    .map_err(store_error)?;
                return Err(field(
                    "ActivationCode",
                    "wrong code, and that was the last try: send a new one with SendActivationCode",
                ));
            }
            return Err(field(
                "ActivationCode",
                format!("wrong code ({} tries left)", policy.max_attempts - tries),
            ));
        }
        if !self
            .store
            .consume_activation_code(
                ctx.account.as_str(),
                ch.id,
                &current.code_hash,
                now,
                policy.max_attempts,
            )
            .await
            .map_err(store_error)?
        {
            // A new code was issued, or another try used this one, in between.
            return Err(field(
                "ActivationCode",
                "that code is no longer current; use the latest code sent",
            ));
        }
        Ok(w::ActivateContactChannelResult::default())
    }

    pub(crate) async fn op_deactivate_contact_channel(
        &self,
        ctx: &RequestContext,
        input: w::DeactivateContactChannelRequest,
    ) -> Result<w::DeactivateContactChannelResult, ApiError> {
        let id = req(input.contact_channel_id, "ContactChannelId")?;
        let ch = self.load_channel(ctx, &id).await?;
        if !self
            .store
            .deactivate_channel(ctx.account.as_str(), ch.id, self.clock.now_ms())
            .await
            .map_err(store_error)?
        {
            return Err(ApiError::not_found("CONTACT_CHANNEL", &id));
        }
        Ok(w::DeactivateContactChannelResult::default())
    }

    /// The name messages use for a channel's contact.
    pub(crate) async fn contact_name(
        &self,
        ctx: &RequestContext,
        ch: &ChannelRecord,
    ) -> Result<String, ApiError> {
        Ok(self
            .store
            .get_contact(ctx.account.as_str(), &ch.contact_alias)
            .await
            .map_err(store_error)?
            .and_then(|c| c.display_name.filter(|n| !n.is_empty()))
            .unwrap_or_else(|| ch.contact_alias.clone()))
    }
}
