//! The SSM Contacts operations on contacts, channels, tags and contact policies.
//!
//! Each operation turns the (already model-validated) wire input into domain values, asks
//! the store, and maps the outcome back. Semantics follow AWS-SPEC.md and DESIGN.md;
//! choices where AWS is silent are written in docs/api.md.

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::tokens;
use crate::wire::FieldError;
use crate::wire::ssm_contacts as w;
use muster_app::App;
use muster_app::contacts::{NewChannel, NewContact};
use muster_core::{
    ActivationStatus, ArnOf, ChannelType, ContactAlias, ContactType, Plan, Stage, Target,
};
use muster_store::{After, ChannelRecord, ContactRecord, Idempotency, StoreError, Tag};
use std::sync::Arc;

pub use muster_app::Limits;

/// The SSM Contacts service: the AWS operations over the application. Each operation reads
/// its wire input, calls [`App`], and writes the wire output; what an operation does is the
/// application's.
pub struct ContactsApi {
    pub app: Arc<App>,
}

impl ContactsApi {
    pub fn new(app: Arc<App>) -> ContactsApi {
        ContactsApi { app }
    }
}

/// Maps a store failure to the protocol. Unexpected database errors are logged here with
/// their detail and reach the client only as a generic InternalServerException.
pub(crate) fn store_error(e: StoreError) -> ApiError {
    ApiError::from(muster_app::AppError::from(e))
}

pub(crate) fn field(name: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError {
        name: name.into(),
        message: message.into(),
    }])
}

/// The value of a member the model marks required (dispatch has already checked it).
pub(crate) fn req<T>(v: Option<T>, name: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| field(name, "is required"))
}

/// A stable hash of a request, without its idempotency token, to tell a retry from a new
/// request that reuses the token.
pub(crate) fn request_hash<T: serde::Serialize>(input: &T) -> String {
    muster_app::error::request_hash(input)
}

pub(crate) fn page_size(limits: &Limits, max_results: Option<i32>) -> u32 {
    match max_results {
        Some(n) if n > 0 => n as u32,
        _ => limits.default_page_size,
    }
}

impl ContactsApi {
    /// UpdateContactChannel. A new delivery address makes the channel NOT_ACTIVATED and
    /// voids its pending code; with `send_code` the new address is sent a code of its own at
    /// once (as AWS does), else the caller sends it (the console, which reports a code it
    /// could not send).
    pub async fn op_update_contact_channel(
        &self,
        ctx: &RequestContext,
        input: w::UpdateContactChannelRequest,
        send_code: bool,
    ) -> Result<w::UpdateContactChannelResult, ApiError> {
        let id = req(input.contact_channel_id, "ContactChannelId")?;
        let address = input.delivery_address.and_then(|a| a.simple_address);
        self.app
            .update_channel(&ctx.caller(), &id, input.name, address, send_code)
            .await?;
        Ok(w::UpdateContactChannelResult::default())
    }

    pub(crate) fn contact_arn(ctx: &RequestContext, alias: &str) -> String {
        ArnOf::Contact(alias).in_account(ctx.region.as_str(), ctx.account.as_str())
    }

    fn channel_arn(ctx: &RequestContext, ch: &ChannelRecord) -> String {
        ArnOf::ContactChannel(&ch.contact_alias, ch.id)
            .in_account(ctx.region.as_str(), ctx.account.as_str())
    }

    pub(crate) async fn load_contact(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<ContactRecord, ApiError> {
        Ok(self.app.load_contact(&ctx.caller(), id).await?)
    }

    pub(crate) async fn load_channel(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<ChannelRecord, ApiError> {
        Ok(self.app.load_channel(&ctx.caller(), id).await?)
    }
}

/// Wire plan → domain plan. Each target must name exactly one of a channel or a contact.
fn plan_from_wire(p: &w::Plan) -> Result<Plan, ApiError> {
    let mut stages = Vec::new();
    for (i, s) in p.stages.iter().flatten().enumerate() {
        let duration = s.duration_in_minutes.unwrap_or_default();
        if duration < 0 {
            return Err(field(
                format!("Plan.Stages[{i}].DurationInMinutes"),
                "must be between 0 and 30",
            ));
        }
        let mut targets = Vec::new();
        for (j, t) in s.targets.iter().flatten().enumerate() {
            let path = format!("Plan.Stages[{i}].Targets[{j}]");
            targets.push(match (&t.channel_target_info, &t.contact_target_info) {
                (Some(c), None) => Target::Channel {
                    channel_arn: req(
                        c.contact_channel_id.clone(),
                        &format!("{path}.ChannelTargetInfo.ContactChannelId"),
                    )?,
                    retry_interval_minutes: c.retry_interval_in_minutes.map(|r| r.max(0) as u32),
                },
                (None, Some(c)) => Target::Contact {
                    contact_arn: req(
                        c.contact_id.clone(),
                        &format!("{path}.ContactTargetInfo.ContactId"),
                    )?,
                    is_essential: c.is_essential.unwrap_or(false),
                },
                _ => {
                    return Err(field(
                        path,
                        "a target names exactly one of ChannelTargetInfo or ContactTargetInfo",
                    ));
                }
            });
        }
        stages.push(Stage {
            duration_minutes: duration as u32,
            targets,
        });
    }
    Ok(Plan {
        stages,
        rotation_ids: p.rotation_ids.clone().unwrap_or_default(),
    })
}

fn plan_to_wire(p: &Plan) -> w::Plan {
    w::Plan {
        stages: Some(
            p.stages
                .iter()
                .map(|s| w::Stage {
                    duration_in_minutes: Some(s.duration_minutes as i32),
                    targets: Some(
                        s.targets
                            .iter()
                            .map(|t| match t {
                                Target::Channel {
                                    channel_arn,
                                    retry_interval_minutes,
                                } => w::Target {
                                    channel_target_info: Some(w::ChannelTargetInfo {
                                        contact_channel_id: Some(channel_arn.clone()),
                                        retry_interval_in_minutes: retry_interval_minutes
                                            .map(|r| r as i32),
                                    }),
                                    contact_target_info: None,
                                },
                                Target::Contact {
                                    contact_arn,
                                    is_essential,
                                } => w::Target {
                                    channel_target_info: None,
                                    contact_target_info: Some(w::ContactTargetInfo {
                                        contact_id: Some(contact_arn.clone()),
                                        is_essential: Some(*is_essential),
                                    }),
                                },
                            })
                            .collect(),
                    ),
                })
                .collect(),
        ),
        rotation_ids: (!p.rotation_ids.is_empty()).then(|| p.rotation_ids.clone()),
    }
}

fn contact_type_from_wire(t: w::ContactType) -> ContactType {
    match t {
        w::ContactType::Personal => ContactType::Personal,
        w::ContactType::Escalation => ContactType::Escalation,
        w::ContactType::OncallSchedule => ContactType::OncallSchedule,
    }
}

pub(crate) fn contact_type_to_wire(t: ContactType) -> w::ContactType {
    match t {
        ContactType::Personal => w::ContactType::Personal,
        ContactType::Escalation => w::ContactType::Escalation,
        ContactType::OncallSchedule => w::ContactType::OncallSchedule,
    }
}

fn channel_type_from_wire(t: w::ChannelType) -> ChannelType {
    match t {
        w::ChannelType::Email => ChannelType::Email,
        w::ChannelType::Sms => ChannelType::Sms,
        w::ChannelType::Voice => ChannelType::Voice,
    }
}

fn channel_type_to_wire(t: ChannelType) -> w::ChannelType {
    match t {
        ChannelType::Email => w::ChannelType::Email,
        ChannelType::Sms => w::ChannelType::Sms,
        ChannelType::Voice => w::ChannelType::Voice,
    }
}

fn activation_to_wire(a: ActivationStatus) -> w::ActivationStatus {
    match a {
        ActivationStatus::Activated => w::ActivationStatus::Activated,
        ActivationStatus::NotActivated => w::ActivationStatus::NotActivated,
    }
}

pub(crate) fn tags_from_wire(tags: &[w::Tag]) -> Result<Vec<Tag>, ApiError> {
    let mut out: Vec<Tag> = Vec::with_capacity(tags.len());
    for (i, t) in tags.iter().enumerate() {
        let key = req(t.key.clone(), &format!("Tags[{i}].Key"))?;
        let value = req(t.value.clone(), &format!("Tags[{i}].Value"))?;
        // A key given twice keeps its last value, as a map would.
        out.retain(|o| o.key != key);
        out.push(Tag { key, value });
    }
    Ok(out)
}

impl w::SsmContacts for ContactsApi {
    async fn start_engagement(
        &self,
        ctx: &RequestContext,
        input: w::StartEngagementRequest,
    ) -> Result<w::StartEngagementResult, ApiError> {
        self.op_start_engagement(ctx, input).await
    }

    async fn stop_engagement(
        &self,
        ctx: &RequestContext,
        input: w::StopEngagementRequest,
    ) -> Result<w::StopEngagementResult, ApiError> {
        self.op_stop_engagement(ctx, input).await
    }

    async fn describe_engagement(
        &self,
        ctx: &RequestContext,
        input: w::DescribeEngagementRequest,
    ) -> Result<w::DescribeEngagementResult, ApiError> {
        self.op_describe_engagement(ctx, input).await
    }

    async fn list_engagements(
        &self,
        ctx: &RequestContext,
        input: w::ListEngagementsRequest,
    ) -> Result<w::ListEngagementsResult, ApiError> {
        self.op_list_engagements(ctx, input).await
    }

    async fn list_pages_by_contact(
        &self,
        ctx: &RequestContext,
        input: w::ListPagesByContactRequest,
    ) -> Result<w::ListPagesByContactResult, ApiError> {
        self.op_list_pages_by_contact(ctx, input).await
    }

    async fn list_pages_by_engagement(
        &self,
        ctx: &RequestContext,
        input: w::ListPagesByEngagementRequest,
    ) -> Result<w::ListPagesByEngagementResult, ApiError> {
        self.op_list_pages_by_engagement(ctx, input).await
    }

    async fn describe_page(
        &self,
        ctx: &RequestContext,
        input: w::DescribePageRequest,
    ) -> Result<w::DescribePageResult, ApiError> {
        self.op_describe_page(ctx, input).await
    }

    async fn list_page_receipts(
        &self,
        ctx: &RequestContext,
        input: w::ListPageReceiptsRequest,
    ) -> Result<w::ListPageReceiptsResult, ApiError> {
        self.op_list_page_receipts(ctx, input).await
    }

    async fn list_page_resolutions(
        &self,
        ctx: &RequestContext,
        input: w::ListPageResolutionsRequest,
    ) -> Result<w::ListPageResolutionsResult, ApiError> {
        self.op_list_page_resolutions(ctx, input).await
    }

    async fn accept_page(
        &self,
        ctx: &RequestContext,
        input: w::AcceptPageRequest,
    ) -> Result<w::AcceptPageResult, ApiError> {
        self.op_accept_page(ctx, input).await
    }

    async fn send_activation_code(
        &self,
        ctx: &RequestContext,
        input: w::SendActivationCodeRequest,
    ) -> Result<w::SendActivationCodeResult, ApiError> {
        self.op_send_activation_code(ctx, input).await
    }

    async fn activate_contact_channel(
        &self,
        ctx: &RequestContext,
        input: w::ActivateContactChannelRequest,
    ) -> Result<w::ActivateContactChannelResult, ApiError> {
        self.op_activate_contact_channel(ctx, input).await
    }

    async fn deactivate_contact_channel(
        &self,
        ctx: &RequestContext,
        input: w::DeactivateContactChannelRequest,
    ) -> Result<w::DeactivateContactChannelResult, ApiError> {
        self.op_deactivate_contact_channel(ctx, input).await
    }

    async fn create_rotation(
        &self,
        ctx: &RequestContext,
        input: w::CreateRotationRequest,
    ) -> Result<w::CreateRotationResult, ApiError> {
        self.op_create_rotation(ctx, input).await
    }

    async fn get_rotation(
        &self,
        ctx: &RequestContext,
        input: w::GetRotationRequest,
    ) -> Result<w::GetRotationResult, ApiError> {
        self.op_get_rotation(ctx, input).await
    }

    async fn update_rotation(
        &self,
        ctx: &RequestContext,
        input: w::UpdateRotationRequest,
    ) -> Result<w::UpdateRotationResult, ApiError> {
        self.op_update_rotation(ctx, input).await
    }

    async fn delete_rotation(
        &self,
        ctx: &RequestContext,
        input: w::DeleteRotationRequest,
    ) -> Result<w::DeleteRotationResult, ApiError> {
        self.op_delete_rotation(ctx, input).await
    }

    async fn list_rotations(
        &self,
        ctx: &RequestContext,
        input: w::ListRotationsRequest,
    ) -> Result<w::ListRotationsResult, ApiError> {
        self.op_list_rotations(ctx, input).await
    }

    async fn create_rotation_override(
        &self,
        ctx: &RequestContext,
        input: w::CreateRotationOverrideRequest,
    ) -> Result<w::CreateRotationOverrideResult, ApiError> {
        self.op_create_rotation_override(ctx, input).await
    }

    async fn get_rotation_override(
        &self,
        ctx: &RequestContext,
        input: w::GetRotationOverrideRequest,
    ) -> Result<w::GetRotationOverrideResult, ApiError> {
        self.op_get_rotation_override(ctx, input).await
    }

    async fn delete_rotation_override(
        &self,
        ctx: &RequestContext,
        input: w::DeleteRotationOverrideRequest,
    ) -> Result<w::DeleteRotationOverrideResult, ApiError> {
        self.op_delete_rotation_override(ctx, input).await
    }

    async fn list_rotation_overrides(
        &self,
        ctx: &RequestContext,
        input: w::ListRotationOverridesRequest,
    ) -> Result<w::ListRotationOverridesResult, ApiError> {
        self.op_list_rotation_overrides(ctx, input).await
    }

    async fn list_rotation_shifts(
        &self,
        ctx: &RequestContext,
        input: w::ListRotationShiftsRequest,
    ) -> Result<w::ListRotationShiftsResult, ApiError> {
        self.op_list_rotation_shifts(ctx, input).await
    }

    async fn list_preview_rotation_shifts(
        &self,
        ctx: &RequestContext,
        input: w::ListPreviewRotationShiftsRequest,
    ) -> Result<w::ListPreviewRotationShiftsResult, ApiError> {
        self.op_list_preview_rotation_shifts(ctx, input).await
    }

    async fn create_contact(
        &self,
        ctx: &RequestContext,
        input: w::CreateContactRequest,
    ) -> Result<w::CreateContactResult, ApiError> {
        let alias_s = req(input.alias.clone(), "Alias")?;
        let alias = ContactAlias::parse(&alias_s).map_err(|e| field("Alias", e.0))?;
        let contact_type = contact_type_from_wire(req(input.r#type, "Type")?);
        let plan = plan_from_wire(
            input
                .plan
                .as_ref()
                .ok_or_else(|| field("Plan", "is required"))?,
        )?;
        let tags = tags_from_wire(input.tags.as_deref().unwrap_or_default())?;
        let idem = input.idempotency_token.as_ref().map(|token| Idempotency {
            operation: "CreateContact".into(),
            token: token.clone(),
            request_hash: request_hash(&w::CreateContactRequest {
                idempotency_token: None,
                ..input.clone()
            }),
            result: String::new(),
        });
        let new = NewContact {
            alias,
            display_name: input.display_name,
            contact_type,
            plan,
            tags,
        };
        let made = self.app.create_contact(&ctx.caller(), new, idem).await?;
        Ok(w::CreateContactResult {
            contact_arn: Some(made.arn),
        })
    }

    async fn get_contact(
        &self,
        ctx: &RequestContext,
        input: w::GetContactRequest,
    ) -> Result<w::GetContactResult, ApiError> {
        let c = self
            .load_contact(ctx, &req(input.contact_id, "ContactId")?)
            .await?;
        Ok(w::GetContactResult {
            contact_arn: Some(Self::contact_arn(ctx, &c.alias)),
            alias: Some(c.alias.clone()),
            display_name: c.display_name.clone(),
            r#type: Some(contact_type_to_wire(c.contact_type)),
            plan: Some(plan_to_wire(&c.plan)),
        })
    }

    async fn update_contact(
        &self,
        ctx: &RequestContext,
        input: w::UpdateContactRequest,
    ) -> Result<w::UpdateContactResult, ApiError> {
        let id = req(input.contact_id, "ContactId")?;
        let plan = input.plan.as_ref().map(plan_from_wire).transpose()?;
        self.app
            .update_contact(&ctx.caller(), &id, input.display_name, plan)
            .await?;
        Ok(w::UpdateContactResult::default())
    }

    async fn delete_contact(
        &self,
        ctx: &RequestContext,
        input: w::DeleteContactRequest,
    ) -> Result<w::DeleteContactResult, ApiError> {
        let id = req(input.contact_id, "ContactId")?;
        self.app.delete_contact(&ctx.caller(), &id).await?;
        Ok(w::DeleteContactResult::default())
    }

    async fn list_contacts(
        &self,
        ctx: &RequestContext,
        input: w::ListContactsRequest,
    ) -> Result<w::ListContactsResult, ApiError> {
        let prefix = input.alias_prefix.clone().filter(|p| !p.is_empty());
        let ctype = input.r#type.map(contact_type_from_wire);
        let fingerprint = format!(
            "contacts|{}|{}",
            prefix.as_deref().unwrap_or(""),
            ctype.map(|t| t.as_str()).unwrap_or("")
        );
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| field("NextToken", m))?;
        let limit = page_size(&self.app.limits, input.max_results);
        let rows = self
            .app
            .store
            .list_contacts(
                ctx.account.as_str(),
                prefix.as_deref(),
                ctype,
                &after,
                limit + 1,
            )
            .await
            .map_err(store_error)?;
        let (rows, next_token) =
            tokens::page(rows, limit, &fingerprint, |c| After::Alias(c.alias.clone()));
        Ok(w::ListContactsResult {
            next_token,
            contacts: Some(
                rows.into_iter()
                    .map(|c| w::Contact {
                        contact_arn: Some(Self::contact_arn(ctx, &c.alias)),
                        alias: Some(c.alias),
                        display_name: c.display_name,
                        r#type: Some(contact_type_to_wire(c.contact_type)),
                    })
                    .collect(),
            ),
        })
    }

    async fn create_contact_channel(
        &self,
        ctx: &RequestContext,
        input: w::CreateContactChannelRequest,
    ) -> Result<w::CreateContactChannelResult, ApiError> {
        let contact_id = req(input.contact_id.clone(), "ContactId")?;
        let name = req(input.name.clone(), "Name")?;
        let channel_type = channel_type_from_wire(req(input.r#type, "Type")?);
        let address = req(
            input
                .delivery_address
                .as_ref()
                .and_then(|a| a.simple_address.clone()),
            "DeliveryAddress.SimpleAddress",
        )?;
        let idem = input.idempotency_token.as_ref().map(|token| Idempotency {
            operation: "CreateContactChannel".into(),
            token: token.clone(),
            request_hash: request_hash(&w::CreateContactChannelRequest {
                idempotency_token: None,
                ..input.clone()
            }),
            result: String::new(),
        });
        let new = NewChannel {
            name,
            channel_type,
            address,
        };
        let made = self
            .app
            .create_channel(
                &ctx.caller(),
                &contact_id,
                new,
                input.defer_activation == Some(true),
                idem,
            )
            .await?;
        Ok(w::CreateContactChannelResult {
            contact_channel_arn: Some(made.arn),
        })
    }

    async fn get_contact_channel(
        &self,
        ctx: &RequestContext,
        input: w::GetContactChannelRequest,
    ) -> Result<w::GetContactChannelResult, ApiError> {
        let ch = self
            .load_channel(ctx, &req(input.contact_channel_id, "ContactChannelId")?)
            .await?;
        Ok(w::GetContactChannelResult {
            contact_arn: Some(Self::contact_arn(ctx, &ch.contact_alias)),
            contact_channel_arn: Some(Self::channel_arn(ctx, &ch)),
            name: Some(ch.name.clone()),
            r#type: Some(channel_type_to_wire(ch.channel_type)),
            delivery_address: Some(w::ContactChannelAddress {
                simple_address: Some(ch.address.clone()),
            }),
            activation_status: Some(activation_to_wire(ch.activation)),
        })
    }

    async fn update_contact_channel(
        &self,
        ctx: &RequestContext,
        input: w::UpdateContactChannelRequest,
    ) -> Result<w::UpdateContactChannelResult, ApiError> {
        self.op_update_contact_channel(ctx, input, true).await
    }

    async fn delete_contact_channel(
        &self,
        ctx: &RequestContext,
        input: w::DeleteContactChannelRequest,
    ) -> Result<w::DeleteContactChannelResult, ApiError> {
        let id = req(input.contact_channel_id, "ContactChannelId")?;
        self.app.delete_channel(&ctx.caller(), &id).await?;
        Ok(w::DeleteContactChannelResult::default())
    }

    async fn list_contact_channels(
        &self,
        ctx: &RequestContext,
        input: w::ListContactChannelsRequest,
    ) -> Result<w::ListContactChannelsResult, ApiError> {
        let contact = self
            .load_contact(ctx, &req(input.contact_id, "ContactId")?)
            .await?;
        let fingerprint = format!("channels|{}", contact.alias);
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| field("NextToken", m))?;
        let limit = page_size(&self.app.limits, input.max_results);
        let rows = self
            .app
            .store
            .list_channels(ctx.account.as_str(), contact.id, &after, limit + 1)
            .await
            .map_err(store_error)?;
        let (rows, next_token) = tokens::page(rows, limit, &fingerprint, |c| After::Created {
            ms: c.created_ms,
            id: c.id,
        });
        Ok(w::ListContactChannelsResult {
            next_token,
            contact_channels: Some(
                rows.iter()
                    .map(|ch| w::ContactChannel {
                        contact_channel_arn: Some(Self::channel_arn(ctx, ch)),
                        contact_arn: Some(Self::contact_arn(ctx, &ch.contact_alias)),
                        name: Some(ch.name.clone()),
                        r#type: Some(channel_type_to_wire(ch.channel_type)),
                        delivery_address: Some(w::ContactChannelAddress {
                            simple_address: Some(ch.address.clone()),
                        }),
                        activation_status: Some(activation_to_wire(ch.activation)),
                    })
                    .collect(),
            ),
        })
    }

    async fn tag_resource(
        &self,
        ctx: &RequestContext,
        input: w::TagResourceRequest,
    ) -> Result<w::TagResourceResult, ApiError> {
        let arn = req(input.resource_arn, "ResourceARN")?;
        let tags = tags_from_wire(input.tags.as_deref().unwrap_or_default())?;
        self.app.tag_resource(&ctx.caller(), &arn, &tags).await?;
        Ok(w::TagResourceResult::default())
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: w::UntagResourceRequest,
    ) -> Result<w::UntagResourceResult, ApiError> {
        let arn = req(input.resource_arn, "ResourceARN")?;
        self.app
            .untag_resource(
                &ctx.caller(),
                &arn,
                input.tag_keys.as_deref().unwrap_or_default(),
            )
            .await?;
        Ok(w::UntagResourceResult::default())
    }

    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: w::ListTagsForResourceRequest,
    ) -> Result<w::ListTagsForResourceResult, ApiError> {
        let arn = req(input.resource_arn, "ResourceARN")?;
        let tags = self.app.tags_of(&ctx.caller(), &arn).await?;
        Ok(w::ListTagsForResourceResult {
            tags: Some(
                tags.into_iter()
                    .map(|t| w::Tag {
                        key: Some(t.key),
                        value: Some(t.value),
                    })
                    .collect(),
            ),
        })
    }

    async fn put_contact_policy(
        &self,
        ctx: &RequestContext,
        input: w::PutContactPolicyRequest,
    ) -> Result<w::PutContactPolicyResult, ApiError> {
        let arn = req(input.contact_arn, "ContactArn")?;
        let policy = req(input.policy, "Policy")?;
        self.app
            .put_contact_policy(&ctx.caller(), &arn, &policy)
            .await?;
        Ok(w::PutContactPolicyResult::default())
    }

    async fn get_contact_policy(
        &self,
        ctx: &RequestContext,
        input: w::GetContactPolicyRequest,
    ) -> Result<w::GetContactPolicyResult, ApiError> {
        let arn = req(input.contact_arn, "ContactArn")?;
        let c = self.load_contact(ctx, &arn).await?;
        Ok(w::GetContactPolicyResult {
            contact_arn: Some(Self::contact_arn(ctx, &c.alias)),
            policy: c.policy,
        })
    }
}
