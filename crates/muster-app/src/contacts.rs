//! Contacts and their channels, as the application finds them for a caller.

use crate::{App, AppError, Caller};
use muster_core::ResourceRef;
use muster_store::{ChannelRecord, ContactRecord};

impl App {
    /// The contact a contact ARN names, if it is the caller's.
    pub async fn load_contact(&self, caller: &Caller, id: &str) -> Result<ContactRecord, AppError> {
        let ResourceRef::Contact { alias } = caller.own(id, "CONTACT")? else {
            return Err(AppError::not_found("CONTACT", id));
        };
        self.store
            .get_contact(caller.account.as_str(), alias.as_str())
            .await?
            .ok_or_else(|| AppError::not_found("CONTACT", id))
    }

    /// The channel a contact-channel ARN names, if it is the caller's and its contact is the
    /// one the ARN says.
    pub async fn load_channel(&self, caller: &Caller, id: &str) -> Result<ChannelRecord, AppError> {
        let ResourceRef::ContactChannel { alias, id: uuid } = caller.own(id, "CONTACT_CHANNEL")?
        else {
            return Err(AppError::not_found("CONTACT_CHANNEL", id));
        };
        match self
            .store
            .get_channel(caller.account.as_str(), uuid)
            .await?
        {
            Some(ch) if ch.contact_alias == alias.as_str() => Ok(ch),
            _ => Err(AppError::not_found("CONTACT_CHANNEL", id)),
        }
    }
}
