//! Preview and plan lint: "if this were engaged at T", every page the engine would send
//! (nobody acknowledging) and what in the plans would fail. The engagement is the engine's
//! own: the same snapshot [`App::start_engagement`] stores, run by
//! [`muster_core::preview::simulate`]; what the store knows (is a channel activated, opted
//! out, deleted) decides which pages would really go out.

use crate::{App, AppError, Caller};
use muster_core::preview::{self, ChannelState, Warning};
use muster_core::{ActivationStatus, ChannelType, ResourceRef};
use std::collections::HashMap;

/// One page the engagement would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewPage {
    /// When its stage begins (epoch ms).
    pub at_ms: i64,
    pub contact_arn: String,
    pub contact_alias: String,
    pub channel_arn: String,
    /// `None` when the channel does not exist (any more).
    pub channel_name: Option<String>,
    pub channel_type: Option<ChannelType>,
    /// Most of it hidden ([`preview::mask_address`]).
    pub address_masked: Option<String>,
    /// Whether it would be sent, or why not.
    pub state: ChannelState,
    /// The stage of the paged contact's own plan.
    pub stage_index: u32,
    pub retry_interval_minutes: u32,
    /// Contact ARNs from the engaged contact down to the paged one.
    pub path: Vec<String>,
}

/// What engaging a contact (or a response plan's contacts) at `at_ms` would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub arn: String,
    pub at_ms: i64,
    /// In time order.
    pub pages: Vec<PreviewPage>,
    pub warnings: Vec<Warning>,
    /// When the last engagement's paging ends; `None` when nobody would be engaged.
    pub end_ms: Option<i64>,
}

impl App {
    /// The preview of engaging `arn` (a contact of any type, or a response plan: each of its
    /// engagement contacts) at `at_ms`.
    pub async fn preview(&self, ctx: &Caller, arn: &str, at_ms: i64) -> Result<Preview, AppError> {
        let roots = match ctx.own(arn, "CONTACT")? {
            ResourceRef::Contact { .. } => vec![arn.to_owned()],
            ResourceRef::ResponsePlan { .. } => {
                self.load_response_plan(ctx, arn).await?.1.engagements
            }
            _ => {
                return Err(AppError::invalid(
                    "Arn",
                    format!(
                        "{arn} is neither a contact (personal, escalation plan or on-call schedule) nor a response plan"
                    ),
                ));
            }
        };
        let mut out = Preview {
            arn: arn.to_owned(),
            at_ms,
            pages: Vec::new(),
            warnings: Vec::new(),
            end_ms: None,
        };
        if roots.is_empty() {
            out.warnings.push(Warning {
                code: "nobody-paged",
                message: format!("{arn} engages no contact: an incident of it pages nobody"),
                contact: None,
            });
        }
        let mut channels: HashMap<String, (ChannelState, Option<muster_store::ChannelRecord>)> =
            HashMap::new();
        for root in &roots {
            let contact = match ctx.own(root, "CONTACT") {
                Ok(ResourceRef::Contact { alias }) => {
                    self.store
                        .get_contact(ctx.account.as_str(), alias.as_str())
                        .await?
                }
                _ => None,
            };
            let Some(contact) = contact else {
                if root == arn {
                    return Err(AppError::not_found("CONTACT", arn));
                }
                out.warnings.push(Warning {
                    code: "contact-missing",
                    message: format!("{arn} engages {root}, which was deleted: it is skipped"),
                    contact: Some(root.clone()),
                });
                continue;
            };
            let snapshot = self.snapshot(ctx, &contact).await?;
            let sim = preview::simulate(&snapshot, at_ms);
            for p in &sim.pages {
                if !channels.contains_key(&p.channel_arn) {
                    let found = self.channel_state(ctx, &p.channel_arn).await?;
                    channels.insert(p.channel_arn.clone(), found);
                }
            }
            let states: HashMap<String, ChannelState> =
                channels.iter().map(|(k, (s, _))| (k.clone(), *s)).collect();
            for w in preview::lint(&snapshot, &sim, &states) {
                if !out.warnings.contains(&w) {
                    out.warnings.push(w);
                }
            }
            out.end_ms = out.end_ms.max(sim.end_ms);
            for p in sim.pages {
                let (state, record) = &channels[&p.channel_arn];
                out.pages.push(PreviewPage {
                    at_ms: p.at_ms,
                    contact_alias: snapshot
                        .contacts
                        .get(&p.contact_arn)
                        .map(|c| c.alias.clone())
                        .unwrap_or_default(),
                    contact_arn: p.contact_arn,
                    channel_arn: p.channel_arn,
                    channel_name: record.as_ref().map(|c| c.name.clone()),
                    channel_type: record.as_ref().map(|c| c.channel_type),
                    address_masked: record.as_ref().map(|c| preview::mask_address(&c.address)),
                    state: *state,
                    stage_index: p.stage_index,
                    retry_interval_minutes: p.retry_interval_minutes,
                    path: p.path.into_iter().map(|n| n.contact_arn).collect(),
                });
            }
        }
        // Stable: pages of one instant keep the engine's order.
        out.pages.sort_by_key(|p| p.at_ms);
        Ok(out)
    }

    /// Whether a page to this channel would be sent now, as the send job decides it: an
    /// opted-out device first, then activation.
    async fn channel_state(
        &self,
        ctx: &Caller,
        channel_arn: &str,
    ) -> Result<(ChannelState, Option<muster_store::ChannelRecord>), AppError> {
        let Ok(ResourceRef::ContactChannel { alias, id }) = ctx.own(channel_arn, "CONTACT_CHANNEL")
        else {
            return Ok((ChannelState::Missing, None));
        };
        let Some(ch) = self
            .store
            .get_channel(ctx.account.as_str(), id)
            .await?
            .filter(|c| c.contact_alias == alias.as_str())
        else {
            return Ok((ChannelState::Missing, None));
        };
        let state = if self.store.is_opted_out(&ch.address).await? {
            ChannelState::OptedOut
        } else if ch.activation != ActivationStatus::Activated {
            ChannelState::NotActivated
        } else {
            ChannelState::Usable
        };
        Ok((state, Some(ch)))
    }
}

/// One rotation of an on-call schedule at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationNow {
    pub rotation_arn: String,
    /// Empty when the rotation was deleted.
    pub name: String,
    /// Aliases of who is on call (overrides included); empty in a coverage gap.
    pub on_call: Vec<String>,
    /// When their shift ends; `None` when it does not end in the next 14 days.
    pub until_ms: Option<i64>,
    /// When nobody is on call: when someone next is (within 14 days).
    pub next_ms: Option<i64>,
}

impl App {
    /// Who each rotation of the on-call schedule `schedule` puts on call at `at_ms`, and
    /// until when: what an engagement of the schedule then would engage.
    pub async fn on_call_now(
        &self,
        ctx: &Caller,
        schedule: &muster_store::ContactRecord,
        at_ms: i64,
    ) -> Result<Vec<RotationNow>, AppError> {
        let snapshot = self.snapshot(ctx, schedule).await?;
        let horizon = at_ms.saturating_add(preview::GAP_HORIZON_MS);
        let alias = |arn: &str| {
            snapshot.contacts.get(arn).map_or_else(
                || arn.rsplit('/').next().unwrap_or(arn).to_owned(),
                |c| c.alias.clone(),
            )
        };
        let mut out = Vec::new();
        for arn in &schedule.plan.rotation_ids {
            let name = match ctx.own(arn, "ROTATION") {
                Ok(ResourceRef::Rotation { id }) => self
                    .store
                    .get_rotation(ctx.account.as_str(), id)
                    .await?
                    .map(|r| r.name)
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let mut now = RotationNow {
                rotation_arn: arn.clone(),
                name,
                on_call: Vec::new(),
                until_ms: None,
                next_ms: None,
            };
            let spec = snapshot.rotations.get(arn).and_then(|r| r.spec());
            let range = (
                jiff::Timestamp::from_millisecond(at_ms),
                jiff::Timestamp::from_millisecond(horizon),
            );
            if let (Some((spec, overrides)), (Ok(from), Ok(to))) = (spec, range) {
                let shifts = muster_core::rotation::shifts(&spec, &overrides, from, to);
                match shifts.iter().find(|s| s.start <= from && from < s.end) {
                    Some(s) => {
                        now.on_call = s.members.iter().map(|m| alias(m)).collect();
                        now.until_ms = (s.end < to).then(|| s.end.as_millisecond());
                    }
                    None => {
                        now.next_ms = shifts
                            .iter()
                            .find(|s| s.start > from)
                            .map(|s| s.start.as_millisecond());
                    }
                }
            }
            out.push(now);
        }
        Ok(out)
    }
}
