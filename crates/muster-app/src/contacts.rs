//! Contacts and their channels, as the application finds them for a caller.

use crate::{App, AppError, Caller, Dependent, FieldIssue};
use muster_core::{
    ActivationStatus, ArnOf, ChannelAddress, ChannelType, ContactAlias, ContactType, Plan,
    ResourceRef, Target,
};
use muster_store::{ChannelRecord, ContactRecord, Created, Idempotency, StoreError, Tag};
use uuid::Uuid;

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

/// A new contact, as CreateContact or the console gives it (already past the model's
/// length and pattern checks).
#[derive(Debug, Clone)]
pub struct NewContact {
    pub alias: ContactAlias,
    pub display_name: Option<String>,
    pub contact_type: ContactType,
    pub plan: Plan,
    pub tags: Vec<Tag>,
}

/// A new contact channel of a personal contact.
#[derive(Debug, Clone)]
pub struct NewChannel {
    pub name: String,
    pub channel_type: ChannelType,
    /// The delivery address as given: parsed for its type by the application.
    pub address: String,
}

/// What a create did: the ARN, and whether this call created it (`false`: a retry with the
/// same idempotency token, answered with what the first call created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    pub arn: String,
    pub new: bool,
}

/// A delivery address parsed for its channel type; the path names the member.
pub fn parse_address(t: ChannelType, s: &str) -> Result<ChannelAddress, AppError> {
    ChannelAddress::parse(t, s).map_err(|e| AppError::invalid("DeliveryAddress.SimpleAddress", e.0))
}

fn check_shape(plan: &Plan, t: ContactType) -> Result<(), AppError> {
    plan.check_shape(t)
        .map_err(|(name, message)| AppError::invalid(name, message))
}

impl App {
    /// Creates a contact: its plan must have the shape of its type and name only what the
    /// caller has (a new contact's plan names no channel yet).
    pub async fn create_contact(
        &self,
        caller: &Caller,
        new: NewContact,
        idempotency: Option<Idempotency>,
    ) -> Result<Made, AppError> {
        check_shape(&new.plan, new.contact_type)?;
        self.check_plan_references(caller, new.alias.as_str(), None, &new.plan)
            .await?;
        let arn = caller.arn(ArnOf::Contact(new.alias.as_str()));
        let idem = idempotency.map(|i| Idempotency {
            result: arn.clone(),
            ..i
        });
        let now = self.clock.now_ms();
        let record = ContactRecord {
            id: Uuid::new_v4(),
            account: caller.account.to_string(),
            alias: new.alias.to_string(),
            display_name: new.display_name,
            contact_type: new.contact_type,
            plan: new.plan,
            policy: None,
            created_ms: now,
            updated_ms: now,
        };
        match self
            .store
            .create_contact(&record, &new.tags, idem.as_ref())
            .await
        {
            Ok(Created::New) => Ok(Made { arn, new: true }),
            Ok(Created::Replay(previous)) => Ok(Made {
                arn: previous,
                new: false,
            }),
            Err(StoreError::Conflict(_)) => Err(AppError::conflict(
                "CONTACT",
                arn,
                format!("A contact with alias '{}' already exists", new.alias),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a personal contact with its channels in one store transaction: all of them
    /// or nothing. `channels` carry the ids the caller chose (so the plan can name their
    /// ARNs, [`App::channel_arn`]); the plan may engage only these channels. Channels are not
    /// activated: the caller sends their codes once the contact exists. Errors name the
    /// channel's position: `Channels[1].DeliveryAddress.SimpleAddress`.
    pub async fn create_contact_with_channels(
        &self,
        caller: &Caller,
        new: NewContact,
        channels: Vec<(Uuid, NewChannel)>,
    ) -> Result<Made, AppError> {
        let channels = channels
            .into_iter()
            .map(|(id, ch)| (id, ch, ActivationStatus::NotActivated))
            .collect();
        self.create_contact_with_channels_as(caller, new, channels)
            .await
    }

    /// [`App::create_contact_with_channels`] with each channel's activation status chosen by
    /// the caller: `muster import --activation keep` carries over devices the source had
    /// verified (the operator's decision, on the operator's own server). Nothing else may
    /// create a channel activated.
    pub async fn create_contact_with_channels_as(
        &self,
        caller: &Caller,
        new: NewContact,
        channels: Vec<(Uuid, NewChannel, ActivationStatus)>,
    ) -> Result<Made, AppError> {
        if new.contact_type != ContactType::Personal {
            return Err(AppError::invalid(
                "Type",
                "only PERSONAL contacts have contact channels",
            ));
        }
        check_shape(&new.plan, new.contact_type)?;
        let alias = new.alias.as_str();
        let arn = caller.arn(ArnOf::Contact(alias));
        let now = self.clock.now_ms();
        let contact = ContactRecord {
            id: Uuid::new_v4(),
            account: caller.account.to_string(),
            alias: alias.to_string(),
            display_name: new.display_name,
            contact_type: new.contact_type,
            plan: new.plan,
            policy: None,
            created_ms: now,
            updated_ms: now,
        };
        let mut issues = Vec::new();
        let mut records = Vec::with_capacity(channels.len());
        for (i, (id, ch, activation)) in channels.iter().enumerate() {
            match ChannelAddress::parse(ch.channel_type, &ch.address) {
                Ok(address) => records.push(ChannelRecord {
                    id: *id,
                    account: contact.account.clone(),
                    contact_id: contact.id,
                    contact_alias: contact.alias.clone(),
                    name: ch.name.clone(),
                    channel_type: ch.channel_type,
                    address: address.to_string(),
                    activation: *activation,
                    created_ms: now,
                    updated_ms: now,
                }),
                Err(e) => issues.push(FieldIssue::new(
                    format!("Channels[{i}].DeliveryAddress.SimpleAddress"),
                    e.0,
                )),
            }
        }
        if !issues.is_empty() {
            return Err(AppError::Invalid(issues));
        }
        // The plan engages only the new channels (the references check of a new contact).
        let own: Vec<String> = records
            .iter()
            .map(|r| caller.arn(ArnOf::ContactChannel(alias, r.id)))
            .collect();
        for (i, stage) in contact.plan.stages.iter().enumerate() {
            for (j, target) in stage.targets.iter().enumerate() {
                if let Target::Channel { channel_arn, .. } = target
                    && !own.contains(channel_arn)
                {
                    issues.push(FieldIssue::new(
                        format!("Plan.Stages[{i}].Targets[{j}].ChannelTargetInfo.ContactChannelId"),
                        format!("{channel_arn} is not a contact channel of contact '{alias}'"),
                    ));
                }
            }
        }
        if !issues.is_empty() {
            return Err(AppError::Invalid(issues));
        }
        match self
            .store
            .create_contact_with_channels(&contact, &records, &new.tags)
            .await
        {
            Ok(_) => {
                tracing::info!(contact = %alias, channels = records.len(), by = %caller.who(), "contact created with its channels");
                Ok(Made { arn, new: true })
            }
            Err(StoreError::Conflict(what)) if what.starts_with("a contact with alias") => {
                Err(AppError::conflict(
                    "CONTACT",
                    arn,
                    format!("A contact with alias '{alias}' already exists"),
                ))
            }
            Err(StoreError::Conflict(_)) => Err(AppError::conflict(
                "CONTACT_CHANNEL",
                arn,
                format!("Contact '{alias}' has two contact channels with the same name"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The ARN of channel `id` of contact `alias`, for the caller.
    pub fn channel_arn(caller: &Caller, alias: &str, id: Uuid) -> String {
        caller.arn(ArnOf::ContactChannel(alias, id))
    }

    /// Changes a contact's display name and plan (each when given).
    pub async fn update_contact(
        &self,
        caller: &Caller,
        id: &str,
        display_name: Option<String>,
        plan: Option<Plan>,
    ) -> Result<(), AppError> {
        let mut c = self.load_contact(caller, id).await?;
        if let Some(plan) = plan {
            check_shape(&plan, c.contact_type)?;
            self.check_plan_references(caller, &c.alias.clone(), Some(&c), &plan)
                .await?;
            c.plan = plan;
        }
        if let Some(name) = display_name {
            c.display_name = Some(name);
        }
        c.updated_ms = self.clock.now_ms();
        if !self.store.update_contact(&c).await? {
            return Err(AppError::not_found("CONTACT", id));
        }
        Ok(())
    }

    /// Deletes a contact with its channels; refused while a rotation has it as a member.
    pub async fn delete_contact(&self, caller: &Caller, id: &str) -> Result<(), AppError> {
        let c = self.load_contact(caller, id).await?;
        match self
            .store
            .delete_contact(caller.account.as_str(), &c.alias)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(AppError::not_found("CONTACT", id)),
            Err(StoreError::InUse { rotations }) => Err(contact_in_use(
                caller,
                &caller.arn(ArnOf::Contact(&c.alias)),
                &rotations,
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds a channel to the personal contact `contact_id`. Unless `defer_activation`, its
    /// activation code is sent at once (a failed send is logged: the channel stands, and
    /// SendActivationCode sends another).
    pub async fn create_channel(
        &self,
        caller: &Caller,
        contact_id: &str,
        new: NewChannel,
        defer_activation: bool,
        idempotency: Option<Idempotency>,
    ) -> Result<Made, AppError> {
        let contact = self.load_contact(caller, contact_id).await?;
        if contact.contact_type != ContactType::Personal {
            return Err(AppError::invalid(
                "ContactId",
                format!(
                    "contact '{}' is {}; only PERSONAL contacts have contact channels",
                    contact.alias, contact.contact_type
                ),
            ));
        }
        let record = self.channel_record(caller, &contact, &new)?;
        let arn = caller.arn(ArnOf::ContactChannel(&record.contact_alias, record.id));
        let idem = idempotency.map(|i| Idempotency {
            result: arn.clone(),
            ..i
        });
        match self.store.create_channel(&record, idem.as_ref()).await {
            Ok(Created::New) => {
                if !defer_activation {
                    let name = display_name_of(&contact);
                    if let Err(e) = self.send_activation(&record, &name).await {
                        tracing::warn!(channel = %record.id, error = %e, "activation code not sent at creation");
                    }
                }
                Ok(Made { arn, new: true })
            }
            Ok(Created::Replay(previous)) => Ok(Made {
                arn: previous,
                new: false,
            }),
            Err(StoreError::Conflict(_)) => Err(AppError::conflict(
                "CONTACT_CHANNEL",
                caller.arn(ArnOf::Contact(&contact.alias)),
                format!(
                    "Contact '{}' already has a contact channel named '{}'",
                    contact.alias, new.name
                ),
            )),
            Err(StoreError::NotFound(_)) => Err(AppError::not_found(
                "CONTACT",
                caller.arn(ArnOf::Contact(&contact.alias)),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// A new channel's row: a time-ordered id (channels created in the same millisecond
    /// list in creation order), not activated.
    fn channel_record(
        &self,
        caller: &Caller,
        contact: &ContactRecord,
        new: &NewChannel,
    ) -> Result<ChannelRecord, AppError> {
        let address = parse_address(new.channel_type, &new.address)?;
        let now = self.clock.now_ms();
        Ok(ChannelRecord {
            id: Uuid::now_v7(),
            account: caller.account.to_string(),
            contact_id: contact.id,
            contact_alias: contact.alias.clone(),
            name: new.name.clone(),
            channel_type: new.channel_type,
            address: address.to_string(),
            activation: ActivationStatus::NotActivated,
            created_ms: now,
            updated_ms: now,
        })
    }

    /// Changes a channel's name and delivery address (each when given). A new address makes
    /// the channel NOT_ACTIVATED and voids its pending code; with `send_code` the new address
    /// is sent a code of its own at once (as AWS does), else the caller sends it (the
    /// console, which reports a code it could not send). Returns whether the address moved.
    pub async fn update_channel(
        &self,
        caller: &Caller,
        id: &str,
        name: Option<String>,
        address: Option<String>,
        send_code: bool,
    ) -> Result<bool, AppError> {
        let mut ch = self.load_channel(caller, id).await?;
        if let Some(name) = name {
            ch.name = name;
        }
        let mut moved = false;
        if let Some(addr) = address {
            let address = parse_address(ch.channel_type, &addr)?;
            if address.as_str() != ch.address {
                // A new device has not proven it belongs to the contact: the store deletes
                // the code sent to the old address with the change, and the new address gets
                // a code of its own, as a new channel does.
                ch.address = address.to_string();
                ch.activation = ActivationStatus::NotActivated;
                moved = true;
            }
        }
        ch.updated_ms = self.clock.now_ms();
        match self.store.update_channel(&ch).await {
            Ok(true) => {
                if moved && send_code {
                    // The change stands whatever happens to the code (a send limit, an
                    // opted-out address, a provider failure): it is logged, and
                    // SendActivationCode sends another.
                    let name = self
                        .contact_name(caller, &ch)
                        .await
                        .unwrap_or_else(|_| ch.contact_alias.clone());
                    if let Err(e) = self.send_activation(&ch, &name).await {
                        tracing::warn!(channel = %ch.id, error = %e, "activation code not sent after an address change");
                    }
                }
                Ok(moved)
            }
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

    /// Deletes a channel (its pages keep their history).
    pub async fn delete_channel(&self, caller: &Caller, id: &str) -> Result<(), AppError> {
        let ch = self.load_channel(caller, id).await?;
        if !self
            .store
            .delete_channel(caller.account.as_str(), ch.id)
            .await?
        {
            return Err(AppError::not_found("CONTACT_CHANNEL", id));
        }
        Ok(())
    }

    /// Sends `id`'s channel a new activation code.
    pub async fn send_activation_code(&self, caller: &Caller, id: &str) -> Result<(), AppError> {
        let ch = self.load_channel(caller, id).await?;
        let name = self.contact_name(caller, &ch).await?;
        self.send_activation(&ch, &name).await
    }

    /// Checks that everything a plan names exists and may be named by this contact.
    /// `owner` is the contact itself (None while it is being created).
    pub async fn check_plan_references(
        &self,
        caller: &Caller,
        owner_alias: &str,
        owner: Option<&ContactRecord>,
        plan: &Plan,
    ) -> Result<(), AppError> {
        let mut errors = Vec::new();
        for (i, stage) in plan.stages.iter().enumerate() {
            for (j, target) in stage.targets.iter().enumerate() {
                match target {
                    Target::Channel { channel_arn, .. } => {
                        let path = format!(
                            "Plan.Stages[{i}].Targets[{j}].ChannelTargetInfo.ContactChannelId"
                        );
                        let ok = match (owner, caller.own(channel_arn, "CONTACT_CHANNEL")) {
                            (Some(owner), Ok(ResourceRef::ContactChannel { alias, id }))
                                if alias.as_str() == owner.alias =>
                            {
                                matches!(
                                    self.store.get_channel(caller.account.as_str(), id).await?,
                                    Some(ch) if ch.contact_id == owner.id
                                )
                            }
                            _ => false,
                        };
                        if !ok {
                            errors.push(FieldIssue::new(
                                path,
                                format!(
                                    "{channel_arn} is not a contact channel of contact '{owner_alias}'"
                                ),
                            ));
                        }
                    }
                    Target::Contact { contact_arn, .. } => {
                        let path =
                            format!("Plan.Stages[{i}].Targets[{j}].ContactTargetInfo.ContactId");
                        let message = match caller.own(contact_arn, "CONTACT") {
                            Ok(ResourceRef::Contact { alias }) if alias.as_str() == owner_alias => {
                                Some("an escalation plan cannot engage itself".to_string())
                            }
                            Ok(ResourceRef::Contact { alias }) => {
                                match self
                                    .store
                                    .get_contact(caller.account.as_str(), alias.as_str())
                                    .await?
                                {
                                    None => Some(format!("contact {contact_arn} does not exist")),
                                    Some(c) if c.contact_type == ContactType::Escalation => Some(
                                        "an escalation plan engages personal contacts and on-call schedules, not other escalation plans".to_string(),
                                    ),
                                    Some(_) => None,
                                }
                            }
                            _ => Some(format!(
                                "{contact_arn} is not a contact of this account and region"
                            )),
                        };
                        if let Some(message) = message {
                            errors.push(FieldIssue::new(path, message));
                        }
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        for (k, rotation) in plan.rotation_ids.iter().enumerate() {
            match caller.own(rotation, "ROTATION") {
                Ok(ResourceRef::Rotation { id }) => {
                    if self
                        .store
                        .get_rotation(caller.account.as_str(), id)
                        .await?
                        .is_none()
                    {
                        return Err(AppError::not_found("ROTATION", rotation));
                    }
                }
                _ => {
                    return Err(AppError::invalid(
                        format!("Plan.RotationIds[{k}]"),
                        format!("{rotation} is not a rotation ARN of this account and region"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The name messages use for a contact: its display name, else its alias.
pub fn display_name_of(c: &ContactRecord) -> String {
    c.display_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| c.alias.clone())
}

/// A contact that rotations still name as a member cannot be deleted.
pub fn contact_in_use(caller: &Caller, contact_arn: &str, rotations: &[Uuid]) -> AppError {
    AppError::Conflict {
        message: format!(
            "Contact {contact_arn} is a member of {} rotation(s); remove it from them first",
            rotations.len()
        ),
        id: contact_arn.to_string(),
        kind: "CONTACT".into(),
        dependents: vec![Dependent {
            relation: "ROTATION_MEMBER".into(),
            ids: rotations
                .iter()
                .map(|id| caller.arn(ArnOf::Rotation(*id)))
                .collect(),
        }],
    }
}

impl App {
    /// The tag key space of a taggable resource of the caller that exists: contacts (and
    /// escalation plans and on-call schedules, which are contacts) and rotations.
    pub async fn tag_key(&self, caller: &Caller, arn: &str) -> Result<String, AppError> {
        match caller.own(arn, "RESOURCE")? {
            ResourceRef::Contact { alias } => {
                self.load_contact(caller, arn).await?;
                Ok(format!("contact/{alias}"))
            }
            ResourceRef::Rotation { id } => {
                self.load_rotation(caller, arn).await?;
                Ok(format!("rotation/{id}"))
            }
            other => Err(AppError::not_found(other.type_name(), arn)),
        }
    }

    /// Adds or replaces tags of a taggable resource (at most [`crate::Limits::max_tags`]).
    pub async fn tag_resource(
        &self,
        caller: &Caller,
        arn: &str,
        tags: &[Tag],
    ) -> Result<(), AppError> {
        let key = self.tag_key(caller, arn).await?;
        match self
            .store
            .tag_resource(caller.account.as_str(), &key, tags, self.limits.max_tags)
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::TooManyTags { max }) => Err(AppError::Quota {
                message: format!("A resource can have at most {max} tags"),
                id: Some(arn.to_owned()),
                kind: Some("CONTACT".into()),
                quota: "tags-per-resource".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes tags (by key) of a taggable resource.
    pub async fn untag_resource(
        &self,
        caller: &Caller,
        arn: &str,
        keys: &[String],
    ) -> Result<(), AppError> {
        let key = self.tag_key(caller, arn).await?;
        Ok(self
            .store
            .untag_resource(caller.account.as_str(), &key, keys)
            .await?)
    }

    /// The tags of a taggable resource.
    pub async fn tags_of(&self, caller: &Caller, arn: &str) -> Result<Vec<Tag>, AppError> {
        let key = self.tag_key(caller, arn).await?;
        Ok(self.store.list_tags(caller.account.as_str(), &key).await?)
    }

    /// Sets a contact's resource policy: a JSON policy document (an object).
    pub async fn put_contact_policy(
        &self,
        caller: &Caller,
        arn: &str,
        policy: &str,
    ) -> Result<(), AppError> {
        match serde_json::from_str::<serde_json::Value>(policy) {
            Ok(serde_json::Value::Object(_)) => {}
            _ => {
                return Err(AppError::invalid(
                    "Policy",
                    "must be a JSON policy document (an object with Version and Statement)",
                ));
            }
        }
        let c = self.load_contact(caller, arn).await?;
        if !self
            .store
            .set_contact_policy(
                caller.account.as_str(),
                &c.alias,
                policy,
                self.clock.now_ms(),
            )
            .await?
        {
            return Err(AppError::not_found("CONTACT", arn));
        }
        Ok(())
    }
}
