//! Alerts in: integrations (a secret key, a sender's format, a response plan) and what an
//! alert does to incidents. docs/ingest.md says what a user sees.
//!
//! Per (integration, dedupe key): a trigger starts an incident from the integration's plan,
//! or adds an `SSM Incident Trigger` event to the one that is open (nobody is paged again,
//! unless the plan's `muster:repage-on-new-alert` is `true` and the trigger brings an alert
//! the incident has not had); a resolve resolves the open one (unless the plan's
//! `muster:auto-resolve` is `false`), which stops its paging; an acknowledge acknowledges it.
//! Incidents of an integration dedupe on the alert group's trigger ARN ([`alert_group_arn`])
//! unless the plan's template sets a dedupe string, which wins (as for StartIncident). A
//! resolved incident never absorbs a new trigger.
//!
//! An alert is answered only once what it did is committed, and its record commits in the
//! same transaction: with the incident it starts, or with the trigger event the open
//! incident takes (the alerts' group commit, [`AbsorbQueue`]). A resolve's or an
//! acknowledgement's record is written once it is done.

use crate::incidents::{AlertRecords, IncidentChange, StartIncident, Trigger, dedupe_hash};
use crate::{App, AppError, Caller, Principal};
use muster_core::alert::{
    AlertAction, AlertEvent, Format, MAX_RAW_CHARS, alert_group_arn, cut, without_nul,
};
use muster_core::incident::{IncidentStatus, RelatedItem, ResponsePlan, plan_tags};
use muster_core::{AccountId, ResourceRef};
use muster_store::{AlertAbsorb, AlertRecord, IntegrationRecord, OpenIncident, StoreError};
use rand::Rng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How long an integration key is (PagerDuty's routing keys are 32 characters).
pub const KEY_CHARS: usize = 32;

/// An integration as every adapter shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub id: Uuid,
    pub account: AccountId,
    pub name: String,
    pub format: Format,
    pub plan_name: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
    pub last_alert_ms: Option<i64>,
    pub last_outcome: Option<String>,
}

/// An integration's response plan as alerts use it.
#[derive(Debug)]
pub(crate) struct AlertPlan {
    pub arn: String,
    pub plan: ResponsePlan,
    /// `muster:auto-resolve` (default on).
    pub auto_resolve: bool,
    /// `muster:repage-on-new-alert` (default off).
    pub repage: bool,
    /// `muster:dedupe=alert`: one incident per alert rather than per alert group.
    pub per_alert: bool,
}

/// What one alert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new incident was opened.
    Opened {
        incident: String,
    },
    /// The open incident took it (a timeline event; nobody paged again).
    Absorbed {
        incident: String,
    },
    /// The open incident took it, and as it brought an alert the incident had not had, the
    /// plan's contacts were engaged again (`muster:repage-on-new-alert=true`).
    Repaged {
        incident: String,
        engagements: usize,
    },
    Resolved {
        incident: String,
    },
    /// The open incident was acknowledged (its open pages).
    Acknowledged {
        incident: String,
        pages: usize,
    },
    /// A resolve or acknowledge with no open incident for its key: nothing to do.
    NothingOpen,
    /// A resolve the plan does not act on (`muster:auto-resolve=false`).
    Kept {
        incident: String,
    },
}

impl Outcome {
    /// The incident it concerns.
    pub fn incident(&self) -> Option<&str> {
        match self {
            Outcome::Opened { incident }
            | Outcome::Absorbed { incident }
            | Outcome::Repaged { incident, .. }
            | Outcome::Resolved { incident }
            | Outcome::Acknowledged { incident, .. }
            | Outcome::Kept { incident } => Some(incident),
            Outcome::NothingOpen => None,
        }
    }

    /// In words, for the console and the alert's record.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Opened { .. } => "opened an incident".into(),
            Outcome::Absorbed { .. } => "added to the open incident".into(),
            Outcome::Repaged { engagements, .. } => format!(
                "added to the open incident, which it paged again (a new alert; {engagements} engagement(s))"
            ),
            Outcome::Resolved { .. } => "resolved the incident".into(),
            Outcome::Acknowledged { pages, .. } => {
                format!("acknowledged the incident ({pages} page(s))")
            }
            Outcome::NothingOpen => "no open incident for it".into(),
            Outcome::Kept { .. } => "left open (muster:auto-resolve=false)".into(),
        }
    }
}

/// The sha256 (hex) a key is stored as.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn integration_of(r: IntegrationRecord) -> Result<Integration, AppError> {
    Ok(Integration {
        id: r.id,
        account: AccountId::parse(&r.account)
            .map_err(|e| AppError::corrupt("integration account", e))?,
        format: Format::parse(&r.format)
            .ok_or_else(|| AppError::corrupt("integration format", &r.format))?,
        name: r.name,
        plan_name: r.plan_name,
        created_ms: r.created_ms,
        revoked_ms: r.revoked_ms,
        last_alert_ms: r.last_alert_ms,
        last_outcome: r.last_outcome,
    })
}

/// Integration names: 1–100 letters, digits, `-`, `_`, `.`, spaces.
fn check_name(name: &str) -> Result<(), AppError> {
    let ok = !name.trim().is_empty()
        && name.chars().count() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            "name",
            "must be 1 to 100 letters, digits, spaces, '-', '_' or '.'",
        ))
    }
}

impl App {
    /// Creates an integration feeding the response plan `plan_arn`; it and its key (shown
    /// once: only its hash is kept).
    pub async fn create_integration(
        &self,
        caller: &Caller,
        name: &str,
        format: Format,
        plan_arn: &str,
    ) -> Result<(Integration, String), AppError> {
        check_name(name)?;
        let (plan_name, _, _) = self.load_response_plan(caller, plan_arn).await?;
        let key: String = {
            const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
            let mut rng = rand::rng();
            (0..KEY_CHARS)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect()
        };
        let record = IntegrationRecord {
            id: Uuid::new_v4(),
            account: caller.account.to_string(),
            name: name.to_string(),
            format: format.as_str().to_string(),
            plan_name,
            key_hash: key_hash(&key),
            created_ms: self.clock.now_ms(),
            revoked_ms: None,
            last_alert_ms: None,
            last_outcome: None,
        };
        match self.store.create_integration(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(AppError::conflict(
                    "INTEGRATION",
                    name,
                    format!("An integration named {name} already exists"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(integration = %record.id, name, format = %format, by = %caller.who(), "integration created");
        Ok((integration_of(record)?, key))
    }

    pub async fn list_integrations(&self, caller: &Caller) -> Result<Vec<Integration>, AppError> {
        self.store
            .list_integrations(caller.account.as_str())
            .await?
            .into_iter()
            .map(integration_of)
            .collect()
    }

    /// Revokes an integration: its key is refused from now on.
    pub async fn revoke_integration(&self, caller: &Caller, id: &str) -> Result<(), AppError> {
        let uuid = Uuid::try_parse(id).map_err(|_| AppError::not_found("INTEGRATION", id))?;
        if !self
            .store
            .revoke_integration(caller.account.as_str(), uuid, self.clock.now_ms())
            .await?
        {
            return Err(AppError::not_found("INTEGRATION", id));
        }
        tracing::info!(integration = %uuid, by = %caller.who(), "integration revoked");
        Ok(())
    }

    /// The integration a key opens, revoked or not (`None`: no such key), without its latest
    /// alert (`last_alert_ms`, `last_outcome`: `None`). Read every time
    /// (on SQLite without a thread hand-off): a revocation, by the CLI too, applies at once.
    pub async fn integration_by_key(&self, key: &str) -> Result<Option<Integration>, AppError> {
        match self.store.integration_by_key_hash(&key_hash(key)).await? {
            Some(r) => Ok(Some(integration_of(r)?)),
            None => Ok(None),
        }
    }

    /// The integration's response plan and settings, cached briefly (`cache.rs`).
    async fn alert_plan(
        &self,
        caller: &Caller,
        plan_name: &str,
    ) -> Result<std::sync::Arc<AlertPlan>, AppError> {
        let key = (caller.account.to_string(), plan_name.to_string());
        if let Some(p) = self.alert_plans.get(&key) {
            return Ok(p);
        }
        let generation = self.alert_plans.generation();
        let arn = self.response_plan_arn(caller, plan_name);
        let (_, plan, _) = self.load_response_plan(caller, &arn).await?;
        let tags = self.plan_tags(caller.account.as_str(), plan_name).await?;
        let p = std::sync::Arc::new(AlertPlan {
            arn,
            plan,
            auto_resolve: plan_tags::flag(&tags, plan_tags::AUTO_RESOLVE, true),
            repage: plan_tags::flag(&tags, plan_tags::REPAGE_ON_NEW_ALERT, false),
            per_alert: tags
                .get(plan_tags::DEDUPE)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("alert")),
        });
        self.alert_plans.put(key, p.clone(), generation);
        Ok(p)
    }

    /// Whether the integration's plan asks for one incident per alert rather than per alert
    /// group (`muster:dedupe=alert`), as cached with the plan for its alerts.
    pub async fn dedupes_per_alert(&self, integration: &Integration) -> Result<bool, AppError> {
        let caller = integration_caller(self, integration);
        Ok(self
            .alert_plan(&caller, &integration.plan_name)
            .await?
            .per_alert)
    }

    /// The latest alerts that fed an incident, newest first.
    pub async fn alerts_of_incident(
        &self,
        caller: &Caller,
        incident_arn: &str,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, AppError> {
        let row = self.load_incident_row(caller, incident_arn).await?;
        Ok(self.store.alerts_of_incident(row.id, limit).await?)
    }

    /// Acts on the alerts of one request to an integration, in order, and records them; one
    /// outcome per event. `raw` is the sender's payload (kept whole in the alert records, its
    /// first 10,000 characters in each trigger event's `rawData`).
    ///
    /// A trigger whose incident is open (the common case in an alert storm) goes through the
    /// alerts' group commit ([`AbsorbQueue`]); one that starts an incident is written with it,
    /// in StartIncident's transaction. Either way its record commits with what it did.
    pub async fn ingest(
        &self,
        integration: &Integration,
        events: &[AlertEvent],
        raw: &str,
    ) -> Result<Vec<Outcome>, AppError> {
        let caller = integration_caller(self, integration);
        let alert_plan = self.alert_plan(&caller, &integration.plan_name).await?;
        let (plan_arn, plan, auto_resolve) =
            (&alert_plan.arn, &alert_plan.plan, alert_plan.auto_resolve);
        let source = format!("muster.{}", integration.format);
        let raw = &without_nul(raw);
        let raw_data = cut(raw, MAX_RAW_CHARS);
        let mut outcomes = Vec::with_capacity(events.len());
        // Records of the alerts that are not triggers, written at the end.
        let mut records = Vec::new();
        for e in events {
            let now = self.clock.now_ms();
            let trigger_arn = alert_group_arn(
                caller.account.as_str(),
                &integration.id.to_string(),
                &e.dedupe_key,
            );
            // The dedupe string an incident of this alert has (the template's wins).
            let dedupe = plan
                .template
                .dedupe_string
                .clone()
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| trigger_arn.clone());
            let record = |outcome: &Outcome| AlertRecord {
                id: Uuid::now_v7(),
                integration_id: integration.id,
                account: caller.account.to_string(),
                received_ms: now,
                action: e.action.as_str().to_string(),
                dedupe_key: cut(&e.dedupe_key, 1000),
                incident_id: outcome.incident().and_then(incident_id_of),
                outcome: outcome.describe(),
                payload: raw.to_string(),
            };
            let outcome = match e.action {
                AlertAction::Trigger => {
                    let req = StartIncident {
                        response_plan_arn: plan_arn.clone(),
                        title: Some(e.title.clone()).filter(|t| !t.trim().is_empty()),
                        impact: e.impact,
                        related_items: e
                            .links
                            .iter()
                            .map(|l| RelatedItem {
                                item_type: l.item_type.clone(),
                                value: l.value.clone(),
                                title: l.title.clone(),
                                generated_id: None,
                            })
                            .collect(),
                        trigger: Some(Trigger {
                            source: source.clone(),
                            timestamp_ms: e.started_ms.unwrap_or(now),
                            trigger_arn: Some(trigger_arn.clone()),
                            raw_data: Some(raw_data.clone()),
                        }),
                        token: None,
                        summary: e.summary.clone(),
                    };
                    // Records carry the incident's id, which the store sets.
                    let absorbed = || {
                        record(&Outcome::Absorbed {
                            incident: String::new(),
                        })
                    };
                    let members = member_hashes(e);
                    // With repaging on, the incident remembers a new alert only together with
                    // the paging it causes (page_incident_again).
                    let absorb = self.absorb_of(
                        &caller,
                        &req,
                        dedupe_hash(&dedupe),
                        absorbed(),
                        if alert_plan.repage {
                            Vec::new()
                        } else {
                            members.clone()
                        },
                    )?;
                    match self.absorbs.absorb(self, absorb).await? {
                        Some(open) if alert_plan.repage => {
                            let incident = open.arn();
                            match self
                                .page_incident_again(
                                    &caller,
                                    &incident,
                                    &plan.engagements,
                                    &members,
                                )
                                .await?
                            {
                                0 => Outcome::Absorbed { incident },
                                engagements => Outcome::Repaged {
                                    incident,
                                    engagements,
                                },
                            }
                        }
                        Some(open) => Outcome::Absorbed {
                            incident: open.arn(),
                        },
                        None => {
                            let alert = AlertRecords {
                                opened: record(&Outcome::Opened {
                                    incident: String::new(),
                                }),
                                absorbed: absorbed(),
                                members,
                            };
                            let started =
                                self.start_incident_for_alert(&caller, req, alert).await?;
                            if started.created {
                                Outcome::Opened {
                                    incident: started.arn,
                                }
                            } else {
                                Outcome::Absorbed {
                                    incident: started.arn,
                                }
                            }
                        }
                    }
                }
                AlertAction::Resolve | AlertAction::Acknowledge => {
                    let outcome = match self
                        .store
                        .open_incident_with_dedupe(caller.account.as_str(), &dedupe_hash(&dedupe))
                        .await?
                    {
                        None => Outcome::NothingOpen,
                        Some(open) => {
                            let incident = open.arn();
                            if e.action == AlertAction::Acknowledge {
                                let pages = self.acknowledge_incident(&caller, &incident).await?;
                                Outcome::Acknowledged { incident, pages }
                            } else if !auto_resolve {
                                Outcome::Kept { incident }
                            } else {
                                self.update_incident(
                                    &caller,
                                    &incident,
                                    IncidentChange {
                                        status: Some(IncidentStatus::Resolved),
                                        ..Default::default()
                                    },
                                )
                                .await?;
                                Outcome::Resolved { incident }
                            }
                        }
                    };
                    records.push(record(&outcome));
                    outcome
                }
            };
            outcomes.push(outcome);
        }
        self.store.record_alerts(&records).await?;
        metrics::counter!("muster_alerts_received_total", "format" => integration.format.as_str())
            .increment(events.len() as u64);
        Ok(outcomes)
    }
}

/// The alerts' group commit: triggers for open incidents wait in one queue, and a writer task
/// writes all that are waiting in one transaction ([`muster_store::Store::absorb_alerts`]):
/// one durable commit for many alerts, which is what an alert storm needs. Started on first
/// use, with one writer on SQLite (it has one writer connection) and four on PostgreSQL. It
/// holds at most `Limits::alerts_waiting` alerts: beyond, an alert is refused at once.
#[derive(Default)]
pub(crate) struct AbsorbQueue(std::sync::OnceLock<tokio::sync::mpsc::Sender<Absorbing>>);

type Absorbing = (
    AlertAbsorb,
    tokio::sync::oneshot::Sender<Result<Option<OpenIncident>, StoreError>>,
);

/// Most alerts per transaction.
const ABSORB_BATCH: usize = 256;

impl AbsorbQueue {
    /// Adds the trigger to its open incident (`None`: none is open, nothing was written). With
    /// `Limits::alerts_waiting` alerts already waiting, refused at once as an overload.
    async fn absorb(
        &self,
        app: &App,
        absorb: AlertAbsorb,
    ) -> Result<Option<OpenIncident>, AppError> {
        let sender = self.0.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(app.limits.alerts_waiting.max(1));
            let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
            let writers = if app.store.backend() == "sqlite" {
                1
            } else {
                4
            };
            for _ in 0..writers {
                tokio::spawn(write_absorbs(app.store.clone(), rx.clone()));
            }
            tx
        });
        let (reply, answer) = tokio::sync::oneshot::channel();
        match sender.try_send((absorb, reply)) {
            Ok(()) => {}
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("muster_alerts_shed_total").increment(1);
                tracing::warn!(
                    waiting = app.limits.alerts_waiting,
                    "alert refused: too many alerts are waiting to be written (overload)"
                );
                return Err(AppError::Internal {
                    message: "Muster is overloaded: too many alerts are waiting to be written. \
                              Nothing was recorded; send it again."
                        .into(),
                });
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                return Err(StoreError::Unavailable("the alert write queue is gone".into()).into());
            }
        }
        Ok(answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the alert write queue dropped a write".into(),
            ))
        })?)
    }
}

/// A writer of the [`AbsorbQueue`]: takes every trigger waiting (up to a batch), writes them
/// in one transaction and answers each; if the batch fails, writes them one by one, so that
/// one bad alert cannot fail the others. Ends when the queue's sender is dropped.
async fn write_absorbs(
    store: muster_store::Store,
    rx: std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Absorbing>>>,
) {
    let mut batch: Vec<Absorbing> = Vec::with_capacity(ABSORB_BATCH);
    while rx.lock().await.recv_many(&mut batch, ABSORB_BATCH).await > 0 {
        let (absorbs, replies): (Vec<AlertAbsorb>, Vec<_>) = batch.drain(..).unzip();
        match store.absorb_alerts(&absorbs).await {
            Ok(done) => {
                for (reply, r) in replies.into_iter().zip(done) {
                    let _ = reply.send(Ok(r));
                }
            }
            // The database is down or gone: the same answer for every alert, at once (one by
            // one, each would wait for the database again).
            Err(e) if e.is_unavailable() => {
                let why = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(why.clone())));
                }
            }
            Err(e) if absorbs.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            // One alert (or, on a full disk, the batch's size) may be the culprit: one by one.
            Err(e) => {
                tracing::warn!(error = %e, alerts = absorbs.len(), "batched alert writes failed; writing them one by one");
                let mut down: Option<String> = None;
                for (a, reply) in absorbs.into_iter().zip(replies) {
                    let r = match &down {
                        // The database went away meanwhile: the rest are answered at once.
                        Some(why) => Err(StoreError::Unavailable(why.clone())),
                        None => store
                            .absorb_alerts(std::slice::from_ref(&a))
                            .await
                            .map(|mut v| v.pop().flatten()),
                    };
                    if let Err(e) = &r
                        && e.is_unavailable()
                    {
                        down = Some(e.to_string());
                    }
                    let _ = reply.send(r);
                }
            }
        }
    }
}

/// Who an integration's alerts act as.
fn integration_caller(app: &App, integration: &Integration) -> Caller {
    Caller {
        account: integration.account.clone(),
        region: app.region.clone(),
        principal: Principal::Integration(integration.name.clone()),
    }
}

/// The identities of the alerts an event carries as the store keeps them: the SHA-256 (hex)
/// of each, sorted, once.
fn member_hashes(e: &AlertEvent) -> Vec<String> {
    let mut members: Vec<String> = e
        .members()
        .iter()
        .map(|m| hex::encode(Sha256::digest(m.as_bytes())))
        .collect();
    members.sort_unstable();
    members.dedup();
    members
}

/// The id in an incident ARN.
fn incident_id_of(arn: &str) -> Option<Uuid> {
    match muster_core::Arn::parse(arn) {
        Ok(muster_core::Arn {
            resource: ResourceRef::IncidentRecord { id, .. },
            ..
        }) => Some(id),
        _ => None,
    }
}
