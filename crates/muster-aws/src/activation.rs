//! The activation operations: SendActivationCode, ActivateContactChannel,
//! DeactivateContactChannel (the rules are in `muster_app::activation`).

use crate::contacts::{ContactsApi, req};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::wire::ssm_contacts as w;

impl ContactsApi {
    pub(crate) async fn op_send_activation_code(
        &self,
        ctx: &RequestContext,
        input: w::SendActivationCodeRequest,
    ) -> Result<w::SendActivationCodeResult, ApiError> {
        let id = req(input.contact_channel_id, "ContactChannelId")?;
        self.app.send_activation_code(&ctx.caller(), &id).await?;
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
        self.app.activate_channel(&ctx.caller(), &ch, &code).await?;
        Ok(w::ActivateContactChannelResult::default())
    }

    pub(crate) async fn op_deactivate_contact_channel(
        &self,
        ctx: &RequestContext,
        input: w::DeactivateContactChannelRequest,
    ) -> Result<w::DeactivateContactChannelResult, ApiError> {
        let id = req(input.contact_channel_id, "ContactChannelId")?;
        let ch = self.load_channel(ctx, &id).await?;
        self.app.deactivate_channel(&ctx.caller(), &ch, &id).await?;
        Ok(w::DeactivateContactChannelResult::default())
    }
}
