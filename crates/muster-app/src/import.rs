//! What `muster import` needs beyond the API's use cases: the import map, and channels
//! written with an id and an activation status the importer chose (so that an interrupted
//! import, run again, finds what it made).

use crate::contacts::{Made, NewChannel, parse_address};
use crate::{App, AppError, Caller};
use muster_core::{ActivationStatus, ArnOf, ContactType};
use muster_store::{ChannelRecord, Created, ImportMapRow, StoreError};
use uuid::Uuid;

impl App {
    /// The import map of one source account, for the caller's account.
    pub async fn import_map(
        &self,
        caller: &Caller,
        system: &str,
        source_account: &str,
    ) -> Result<Vec<ImportMapRow>, AppError> {
        Ok(self
            .store
            .import_map(caller.account.as_str(), system, source_account)
            .await?)
    }

    /// Records (or replaces) a row of the import map; its account is the caller's.
    pub async fn record_import(&self, caller: &Caller, row: ImportMapRow) -> Result<(), AppError> {
        let row = ImportMapRow {
            account: caller.account.to_string(),
            ..row
        };
        Ok(self.store.put_import_map(&row).await?)
    }

    /// Forgets a row of the import map.
    pub async fn forget_import(
        &self,
        caller: &Caller,
        system: &str,
        source_account: &str,
        kind: &str,
        id: &str,
    ) -> Result<(), AppError> {
        self.store
            .delete_import_map(caller.account.as_str(), system, source_account, kind, id)
            .await?;
        Ok(())
    }

    /// Adds channel `id` to the personal contact `alias`, with the activation status the
    /// importer chose, and sends no code (the importer decides whether to send one). A
    /// channel with this id already there is `Made { new: false }`.
    pub async fn import_channel(
        &self,
        caller: &Caller,
        alias: &str,
        id: Uuid,
        new: NewChannel,
        activation: ActivationStatus,
    ) -> Result<Made, AppError> {
        let arn = caller.arn(ArnOf::ContactChannel(alias, id));
        if self
            .store
            .get_channel(caller.account.as_str(), id)
            .await?
            .is_some()
        {
            return Ok(Made { arn, new: false });
        }
        let contact = self
            .load_contact(caller, &caller.arn(ArnOf::Contact(alias)))
            .await?;
        if contact.contact_type != ContactType::Personal {
            return Err(AppError::invalid(
                "ContactId",
                format!("contact '{alias}' is not PERSONAL: it has no contact channels"),
            ));
        }
        let address = parse_address(new.channel_type, &new.address)?;
        let now = self.clock.now_ms();
        let record = ChannelRecord {
            id,
            account: caller.account.to_string(),
            contact_id: contact.id,
            contact_alias: contact.alias.clone(),
            name: new.name.clone(),
            channel_type: new.channel_type,
            address: address.to_string(),
            activation,
            created_ms: now,
            updated_ms: now,
        };
        match self.store.create_channel(&record, None).await {
            Ok(Created::New | Created::Replay(_)) => Ok(Made { arn, new: true }),
            Err(StoreError::Conflict(_)) => Err(AppError::conflict(
                "CONTACT_CHANNEL",
                caller.arn(ArnOf::Contact(alias)),
                format!(
                    "Contact '{alias}' already has a contact channel named '{}'",
                    new.name
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Rewrites a channel's name, address and activation status as the importer chose (a
    /// moved address voids the pending code, as every address change does).
    pub async fn reimport_channel(
        &self,
        caller: &Caller,
        id: &str,
        name: String,
        address: &str,
        activation: ActivationStatus,
    ) -> Result<(), AppError> {
        let mut ch = self.load_channel(caller, id).await?;
        ch.name = name;
        ch.address = parse_address(ch.channel_type, address)?.to_string();
        ch.activation = activation;
        ch.updated_ms = self.clock.now_ms();
        match self.store.update_channel(&ch).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AppError::not_found("CONTACT_CHANNEL", id)),
            Err(StoreError::Conflict(_)) => Err(AppError::conflict(
                "CONTACT_CHANNEL",
                id,
                format!(
                    "Contact '{}' already has a contact channel named '{}'",
                    ch.contact_alias, ch.name
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }
}
