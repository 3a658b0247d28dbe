//! Timeline events and related items of an incident, and the acknowledgement events the
//! engine adds.

use super::*;
use muster_core::incident::{EventReference, ItemValue, RelatedItem, event_type};
use muster_store::{After, Created, EngagementRecord, PageRecord};
use serde_json::json;

/// A timeline event as every adapter shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEvent {
    pub incident_arn: String,
    pub id: Uuid,
    pub event_time_ms: i64,
    pub updated_ms: i64,
    pub event_type: String,
    pub data: String,
    pub references: Vec<EventReference>,
}

/// CreateTimelineEvent's event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub event_time_ms: i64,
    pub event_type: String,
    pub data: String,
    pub references: Vec<EventReference>,
}

/// UpdateTimelineEvent's changes (`references`, when given, replace them all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventChange {
    pub event_time_ms: Option<i64>,
    pub event_type: Option<String>,
    pub data: Option<String>,
    pub references: Option<Vec<EventReference>>,
}

/// ListTimelineEvents' filters: each set one must hold; values inside one OR. Time bounds
/// are inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub after_ms: Option<i64>,
    pub before_ms: Option<i64>,
    pub event_types: Option<Vec<String>>,
    pub references: Option<Vec<String>>,
}

impl EventFilter {
    fn admits(&self, e: &TimelineEvent) -> bool {
        self.after_ms.is_none_or(|a| e.event_time_ms >= a)
            && self.before_ms.is_none_or(|b| e.event_time_ms <= b)
            && self
                .event_types
                .as_ref()
                .is_none_or(|types| types.contains(&e.event_type))
            && self.references.as_ref().is_none_or(|refs| {
                e.references
                    .iter()
                    .any(|r| refs.iter().any(|x| x == r.value()))
            })
    }
}

/// UpdateRelatedItems' one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemChange {
    Add(RelatedItem),
    Remove { item_type: String, value: ItemValue },
}

fn event_of(arn: &str, r: muster_store::TimelineEventRecord) -> Result<TimelineEvent, AppError> {
    Ok(TimelineEvent {
        incident_arn: arn.to_string(),
        id: r.id,
        event_time_ms: r.event_time_ms,
        updated_ms: r.updated_ms,
        references: decode("event references", &r.refs)?,
        event_type: r.event_type,
        data: r.data,
    })
}

fn parse_event_id(id: &str) -> Result<Uuid, AppError> {
    Uuid::try_parse(id).map_err(|_| AppError::not_found(TIMELINE_EVENT, id))
}

fn not_editable(event_type: &str) -> AppError {
    AppError::invalid(
        "eventId",
        format!(
            "is a '{event_type}' event, which Muster wrote: only '{}' and '{}' events can be changed or deleted",
            event_type::CUSTOM,
            event_type::NOTE
        ),
    )
}

impl crate::App {
    /// Adds an event to an incident's timeline; its id.
    pub async fn create_timeline_event(
        &self,
        caller: &Caller,
        incident_arn: &str,
        event: NewEvent,
        token: Option<ClientToken>,
    ) -> Result<Uuid, AppError> {
        let row = self.load_incident_row(caller, incident_arn).await?;
        let now = self.clock.now_ms();
        let id = Uuid::now_v7();
        let record = muster_store::TimelineEventRecord {
            incident_id: row.id,
            id,
            event_time_ms: event.event_time_ms,
            updated_ms: now,
            event_type: event.event_type,
            data: event.data,
            refs: encode("event references", &event.references)?,
        };
        let idem = token.map(|t| t.claim("CreateTimelineEvent", id.to_string()));
        match self
            .store
            .add_timeline_events(caller.account.as_str(), &[record], idem.as_ref(), now)
            .await
            .map_err(|e| token_conflict(e, TIMELINE_EVENT, incident_arn))?
        {
            Created::New => Ok(id),
            Created::Replay(previous) => {
                Uuid::try_parse(&previous).map_err(|e| AppError::corrupt("replayed event id", e))
            }
        }
    }

    pub async fn get_timeline_event(
        &self,
        caller: &Caller,
        incident_arn: &str,
        id: &str,
    ) -> Result<TimelineEvent, AppError> {
        let row = self.load_incident_row(caller, incident_arn).await?;
        let uuid = parse_event_id(id)?;
        let r = self
            .store
            .get_timeline_event(row.id, uuid)
            .await?
            .ok_or_else(|| AppError::not_found(TIMELINE_EVENT, id))?;
        event_of(&row.arn(), r)
    }

    /// Changes a custom event or note; Muster's own events cannot be changed.
    pub async fn update_timeline_event(
        &self,
        caller: &Caller,
        incident_arn: &str,
        id: &str,
        change: EventChange,
    ) -> Result<(), AppError> {
        let row = self.load_incident_row(caller, incident_arn).await?;
        let uuid = parse_event_id(id)?;
        let mut r = self
            .store
            .get_timeline_event(row.id, uuid)
            .await?
            .ok_or_else(|| AppError::not_found(TIMELINE_EVENT, id))?;
        if !event_type::is_editable(&r.event_type) {
            return Err(not_editable(&r.event_type));
        }
        if let Some(t) = change.event_type {
            if !event_type::is_editable(&t) {
                return Err(AppError::invalid(
                    "eventType",
                    format!(
                        "must be '{}' or '{}': other types are Muster's own",
                        event_type::CUSTOM,
                        event_type::NOTE
                    ),
                ));
            }
            r.event_type = t;
        }
        if let Some(t) = change.event_time_ms {
            r.event_time_ms = t;
        }
        if let Some(d) = change.data {
            r.data = d;
        }
        if let Some(refs) = change.references {
            r.refs = encode("event references", &refs)?;
        }
        r.updated_ms = self.clock.now_ms();
        if !self.store.update_timeline_event(&r).await? {
            return Err(AppError::not_found(TIMELINE_EVENT, id));
        }
        Ok(())
    }

    /// Deletes a custom event or note. An event that does not exist is no error (the model
    /// gives DeleteTimelineEvent no not-found error); Muster's own events cannot be deleted.
    pub async fn delete_timeline_event(
        &self,
        caller: &Caller,
        incident_arn: &str,
        id: &str,
    ) -> Result<(), AppError> {
        let row = match self.load_incident_row(caller, incident_arn).await {
            Ok(row) => row,
            Err(AppError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Ok(uuid) = Uuid::try_parse(id) else {
            return Ok(());
        };
        let Some(r) = self.store.get_timeline_event(row.id, uuid).await? else {
            return Ok(());
        };
        if !event_type::is_editable(&r.event_type) {
            return Err(not_editable(&r.event_type));
        }
        self.store.delete_timeline_event(row.id, uuid).await?;
        Ok(())
    }

    /// The incident's events matching `filter`, by event time (then id) ascending or
    /// descending, those after `after` (`After::Created` of the last one listed, in that
    /// order); at most `limit`.
    pub async fn list_timeline_events(
        &self,
        caller: &Caller,
        incident_arn: &str,
        filter: &EventFilter,
        descending: bool,
        after: &After,
        limit: usize,
    ) -> Result<Vec<TimelineEvent>, AppError> {
        let row = self.load_incident_row(caller, incident_arn).await?;
        let arn = row.arn();
        let mut events = self
            .store
            .list_timeline_events(row.id)
            .await?
            .into_iter()
            .map(|r| event_of(&arn, r))
            .collect::<Result<Vec<_>, _>>()?;
        if descending {
            events.reverse();
        }
        let key = |e: &TimelineEvent| (e.event_time_ms, e.id);
        let past = |e: &TimelineEvent| match after {
            After::Created { ms, id } => {
                if descending {
                    key(e) < (*ms, *id)
                } else {
                    key(e) > (*ms, *id)
                }
            }
            _ => true,
        };
        Ok(events
            .into_iter()
            .filter(|e| past(e) && filter.admits(e))
            .take(limit)
            .collect())
    }

    /// Adds or removes a related item, and records it in the timeline.
    pub async fn update_related_items(
        &self,
        caller: &Caller,
        incident_arn: &str,
        change: ItemChange,
        token: Option<ClientToken>,
    ) -> Result<(), AppError> {
        let row = self.load_incident_row(caller, incident_arn).await?;
        let now = self.clock.now_ms();
        let (add, remove, new_value) = match &change {
            ItemChange::Add(item) => {
                let item = RelatedItem {
                    generated_id: None,
                    ..item.clone()
                };
                let record = muster_store::RelatedItemRecord {
                    incident_id: row.id,
                    identity: RelatedItem::identity(&item.item_type, &item.value),
                    item: encode("related item", &item)?,
                    created_ms: now,
                };
                (Some(record), None, format!("added {}", item.item_type))
            }
            ItemChange::Remove { item_type, value } => (
                None,
                Some(RelatedItem::identity(item_type, value)),
                format!("removed {item_type}"),
            ),
        };
        let event = auto_event(
            row.id,
            now,
            event_type::UPDATE,
            json!({
                "modifiedBy": caller.principal_arn(),
                "modifiedAttributes": [{"attributeName": "relatedItems", "newValue": new_value}],
                "incidentTitle": row.title,
            }),
            &[EventReference::Resource(row.arn())],
        );
        let idem = token.map(|t| t.claim("UpdateRelatedItems", String::new()));
        match self
            .store
            .update_related_items(
                row.id,
                add.as_ref(),
                remove.as_deref(),
                &[event],
                idem.as_ref().map(|i| (caller.account.as_str(), i, now)),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(_)) => Err(AppError::conflict(
                INCIDENT_RECORD,
                incident_arn,
                "The incident already has this related item",
            )),
            Err(StoreError::NotFound(_)) => Err(AppError::invalid(
                "relatedItemsUpdate.itemToRemove",
                "the incident has no related item with this type and value",
            )),
            Err(e) => Err(token_conflict(e, INCIDENT_RECORD, incident_arn)),
        }
    }

    /// The incident's related items, in the order they were added.
    pub async fn list_related_items(
        &self,
        caller: &Caller,
        incident_arn: &str,
    ) -> Result<Vec<RelatedItem>, AppError> {
        let row = self.load_incident_row(caller, incident_arn).await?;
        self.store
            .list_related_items(row.id)
            .await?
            .iter()
            .map(|r| decode("related item", &r.item))
            .collect()
    }

    /// After a page of an incident's engagement was acknowledged: the timeline's
    /// `SSM Contacts Page Acknowledgement for Incident` event. A failure is logged; the
    /// acknowledgement itself stands.
    pub(crate) async fn note_incident_ack(&self, e: &EngagementRecord, p: &PageRecord, at: i64) {
        let Some(incident_arn) = e.incident_id.as_deref() else {
            return;
        };
        let Ok(muster_core::Arn {
            resource: ResourceRef::IncidentRecord { id, .. },
            account,
            ..
        }) = muster_core::Arn::parse(incident_arn)
        else {
            return; // an engagement started with an IncidentId that is not Muster's
        };
        if account.as_str() != e.account {
            return;
        }
        let contact_arn =
            ArnOf::Contact(&e.contact_alias).in_account(self.region.as_str(), &e.account);
        let engagement_arn = self.engagement_arn(e);
        let event = auto_event(
            id,
            at,
            event_type::ACK,
            json!({
                "contactArn": contact_arn,
                "engagementArn": engagement_arn,
                "pageArn": self.page_arn(p),
            }),
            &[EventReference::Resource(engagement_arn.clone())],
        );
        match self
            .store
            .add_timeline_events(&e.account, &[event], None, at)
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => {} // the incident may be deleted
            Err(err) => {
                tracing::error!(incident = %incident_arn, error = %err, "could not add the acknowledgement to the incident's timeline");
            }
        }
    }
}
