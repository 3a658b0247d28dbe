//! Engagements: the ten engagement operations, and the two kinds of job that run them
//! (`engagement.step` begins stages on time, `page.send` sends a page), plus
//! acknowledgements from every path (AcceptPage, SMS code, voice keypress, web link) and the
//! auditor. The rules of the state machine live in `muster_core::engagement`; docs/engagements.md
//! says what a user sees.
//!
//! Durability: every state change is one store transaction that also writes the jobs it
//! needs (`Store::start_engagement`, `Store::change_engagement`, `Store::record_page_events`);
//! the engine is poked after the commit. A running engagement always has one step job, fenced
//! by the engagement's generation; the auditor re-creates it if it is ever missing.

use crate::contacts::{
    ContactsApi, contact_type_to_wire, field, page_size, req, request_hash, store_error,
};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::tokens;
use crate::wire::EpochSeconds;
use crate::wire::ssm_contacts as w;
use muster_app::engagements::{Accept, Paging};
use muster_core::ArnOf;
use muster_store::{After, EngagementRecord, Idempotency, PageRecord, PagesOf};
use std::collections::HashMap;
use uuid::Uuid;

impl ContactsApi {
    // -----------------------------------------------------------------------------------
    // Operations
    // -----------------------------------------------------------------------------------

    pub(crate) async fn op_start_engagement(
        &self,
        ctx: &RequestContext,
        input: w::StartEngagementRequest,
    ) -> Result<w::StartEngagementResult, ApiError> {
        let contact_id = req(input.contact_id.clone(), "ContactId")?;
        // Refused before any other work: a client that hammers costs little.
        if self.app.engagement_starts_backlogged() {
            metrics::counter!("muster_engagements_throttled_total").increment(1);
            return Err(ApiError::Throttling {
                message: "Too many engagements are being started: try again in a moment".into(),
                retry_after_seconds: Some(1),
            });
        }
        let sender = req(input.sender.clone(), "Sender")?;
        let subject = req(input.subject.clone(), "Subject")?;
        let content = req(input.content.clone(), "Content")?;
        let contact = self.load_contact(ctx, &contact_id).await?;
        // The request is hashed as it came, without its token, so stored tokens keep
        // matching whatever the application does with it.
        let idem = input.idempotency_token.as_ref().map(|token| Idempotency {
            operation: "StartEngagement".into(),
            token: token.clone(),
            request_hash: request_hash(&w::StartEngagementRequest {
                idempotency_token: None,
                ..input.clone()
            }),
            result: String::new(),
        });
        let paging = Paging {
            sender,
            subject,
            content,
            public_subject: input.public_subject,
            public_content: input.public_content,
            incident_id: input.incident_id,
        };
        let started = self
            .app
            .start_engagement(&ctx.caller(), &contact, paging, idem)
            .await?;
        Ok(w::StartEngagementResult {
            engagement_arn: Some(started.arn),
        })
    }

    pub(crate) async fn op_stop_engagement(
        &self,
        ctx: &RequestContext,
        input: w::StopEngagementRequest,
    ) -> Result<w::StopEngagementResult, ApiError> {
        let id = req(input.engagement_id, "EngagementId")?;
        self.app
            .stop_engagement(&ctx.caller(), &id, input.reason.as_deref())
            .await?;
        Ok(w::StopEngagementResult::default())
    }

    fn describe(&self, e: &EngagementRecord) -> w::DescribeEngagementResult {
        w::DescribeEngagementResult {
            contact_arn: Some(
                ArnOf::Contact(&e.contact_alias).in_account(self.app.region.as_str(), &e.account),
            ),
            engagement_arn: Some(self.app.engagement_arn(e)),
            sender: Some(e.sender.clone()),
            subject: Some(e.subject.clone()),
            content: Some(e.content.clone()),
            public_subject: e.public_subject.clone(),
            public_content: e.public_content.clone(),
            incident_id: e.incident_id.clone(),
            start_time: Some(EpochSeconds::from_millis(e.start_ms)),
            stop_time: e.stop_ms.map(EpochSeconds::from_millis),
        }
    }

    pub(crate) async fn op_describe_engagement(
        &self,
        ctx: &RequestContext,
        input: w::DescribeEngagementRequest,
    ) -> Result<w::DescribeEngagementResult, ApiError> {
        let e = self
            .app
            .load_engagement(&ctx.caller(), &req(input.engagement_id, "EngagementId")?)
            .await?;
        Ok(self.describe(&e))
    }

    pub(crate) async fn op_list_engagements(
        &self,
        ctx: &RequestContext,
        input: w::ListEngagementsRequest,
    ) -> Result<w::ListEngagementsResult, ApiError> {
        let range = match &input.time_range_value {
            None => None,
            Some(r) => {
                // A bound outside the instants Muster represents (years -9999 to 9999, as
                // every other timestamp of the API) is refused, not read as "no bound".
                let bound = |t: Option<EpochSeconds>, member: &str| {
                    t.map(|t| {
                        t.to_timestamp()
                            .and_then(|_| t.to_millis())
                            .ok_or_else(|| field(member, "is not a representable instant"))
                    })
                    .transpose()
                };
                let from = bound(r.start_time, "TimeRangeValue.StartTime")?.unwrap_or(i64::MIN);
                let to = bound(r.end_time, "TimeRangeValue.EndTime")?.unwrap_or(i64::MAX);
                if from > to {
                    return Err(field(
                        "TimeRangeValue.EndTime",
                        "must not be before TimeRangeValue.StartTime",
                    ));
                }
                Some((from, to))
            }
        };
        // Newest first ("desc"): a token issued when the listing was oldest first names
        // another listing, and is refused rather than read backwards.
        let fingerprint = format!(
            "engagements-desc|{}|{:?}",
            input.incident_id.as_deref().unwrap_or(""),
            range
        );
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| field("NextToken", m))?;
        let limit = page_size(&self.app.limits, input.max_results);
        let rows = self
            .app
            .store
            .list_engagements(
                ctx.account.as_str(),
                input.incident_id.as_deref(),
                range,
                &after,
                limit + 1,
            )
            .await
            .map_err(store_error)?;
        let (rows, next) = tokens::page(rows, limit, &fingerprint, |e| After::Created {
            ms: e.start_ms,
            id: e.id,
        });
        Ok(w::ListEngagementsResult {
            next_token: next,
            engagements: Some(
                rows.iter()
                    .map(|e| w::Engagement {
                        engagement_arn: Some(self.app.engagement_arn(e)),
                        contact_arn: Some(
                            ArnOf::Contact(&e.contact_alias)
                                .in_account(self.app.region.as_str(), &e.account),
                        ),
                        sender: Some(e.sender.clone()),
                        incident_id: e.incident_id.clone(),
                        start_time: Some(EpochSeconds::from_millis(e.start_ms)),
                        stop_time: e.stop_ms.map(EpochSeconds::from_millis),
                    })
                    .collect(),
            ),
        })
    }

    async fn wire_pages(&self, rows: &[PageRecord]) -> Result<Vec<w::Page>, ApiError> {
        let mut cache: HashMap<Uuid, EngagementRecord> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for p in rows {
            if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(p.engagement_id) {
                slot.insert(self.app.engagement_of(p).await?);
            }
            let e = &cache[&p.engagement_id];
            out.push(w::Page {
                page_arn: Some(self.app.page_arn(p)),
                engagement_arn: Some(self.app.engagement_arn(e)),
                contact_arn: Some(
                    ArnOf::Contact(&p.contact_alias)
                        .in_account(self.app.region.as_str(), &p.account),
                ),
                sender: Some(e.sender.clone()),
                incident_id: e.incident_id.clone(),
                sent_time: p.sent_ms.map(EpochSeconds::from_millis),
                delivery_time: p.delivery_ms.map(EpochSeconds::from_millis),
                read_time: p.read_ms.map(EpochSeconds::from_millis),
            });
        }
        Ok(out)
    }

    /// One page of a listing of pages (by engagement or by contact): the wire pages and the
    /// next token. `fingerprint` ties the token to the listing.
    async fn list_pages(
        &self,
        ctx: &RequestContext,
        of: PagesOf<'_>,
        fingerprint: &str,
        next_token: Option<&str>,
        max_results: Option<i32>,
    ) -> Result<(Vec<w::Page>, Option<String>), ApiError> {
        let after = tokens::decode(fingerprint, next_token).map_err(|m| field("NextToken", m))?;
        let limit = page_size(&self.app.limits, max_results);
        let rows = self
            .app
            .store
            .list_pages(ctx.account.as_str(), of, &after, limit + 1)
            .await
            .map_err(store_error)?;
        let (rows, next) = tokens::page(rows, limit, fingerprint, |p| After::Created {
            ms: p.created_ms,
            id: p.id,
        });
        Ok((self.wire_pages(&rows).await?, next))
    }

    pub(crate) async fn op_list_pages_by_engagement(
        &self,
        ctx: &RequestContext,
        input: w::ListPagesByEngagementRequest,
    ) -> Result<w::ListPagesByEngagementResult, ApiError> {
        let e = self
            .app
            .load_engagement(&ctx.caller(), &req(input.engagement_id, "EngagementId")?)
            .await?;
        let (pages, next_token) = self
            .list_pages(
                ctx,
                PagesOf::Engagement(e.id),
                &format!("pages-e|{}", e.id),
                input.next_token.as_deref(),
                input.max_results,
            )
            .await?;
        Ok(w::ListPagesByEngagementResult {
            next_token,
            pages: Some(pages),
        })
    }

    pub(crate) async fn op_list_pages_by_contact(
        &self,
        ctx: &RequestContext,
        input: w::ListPagesByContactRequest,
    ) -> Result<w::ListPagesByContactResult, ApiError> {
        let c = self
            .load_contact(ctx, &req(input.contact_id, "ContactId")?)
            .await?;
        let (pages, next_token) = self
            .list_pages(
                ctx,
                PagesOf::Contact(&c.alias),
                &format!("pages-c|{}", c.alias),
                input.next_token.as_deref(),
                input.max_results,
            )
            .await?;
        Ok(w::ListPagesByContactResult {
            next_token,
            pages: Some(pages),
        })
    }

    pub(crate) async fn op_describe_page(
        &self,
        ctx: &RequestContext,
        input: w::DescribePageRequest,
    ) -> Result<w::DescribePageResult, ApiError> {
        let p = self
            .app
            .load_page(&ctx.caller(), &req(input.page_id, "PageId")?)
            .await?;
        let e = self.app.engagement_of(&p).await?;
        Ok(w::DescribePageResult {
            page_arn: Some(self.app.page_arn(&p)),
            engagement_arn: Some(self.app.engagement_arn(&e)),
            contact_arn: Some(
                ArnOf::Contact(&p.contact_alias).in_account(self.app.region.as_str(), &p.account),
            ),
            sender: Some(e.sender.clone()),
            subject: Some(e.subject.clone()),
            content: Some(e.content.clone()),
            public_subject: e.public_subject.clone(),
            public_content: e.public_content.clone(),
            incident_id: e.incident_id.clone(),
            sent_time: p.sent_ms.map(EpochSeconds::from_millis),
            read_time: p.read_ms.map(EpochSeconds::from_millis),
            delivery_time: p.delivery_ms.map(EpochSeconds::from_millis),
        })
    }

    pub(crate) async fn op_list_page_receipts(
        &self,
        ctx: &RequestContext,
        input: w::ListPageReceiptsRequest,
    ) -> Result<w::ListPageReceiptsResult, ApiError> {
        let p = self
            .app
            .load_page(&ctx.caller(), &req(input.page_id, "PageId")?)
            .await?;
        let channel_arn = self.app.page_channel_arn(&p);
        let fingerprint = format!("receipts|{}", p.id);
        let after = tokens::decode(&fingerprint, input.next_token.as_deref())
            .map_err(|m| field("NextToken", m))?;
        let limit = page_size(&self.app.limits, input.max_results);
        let rows = self
            .app
            .store
            .list_receipts(p.id, &after, limit + 1)
            .await
            .map_err(store_error)?;
        let (rows, next) = tokens::page(rows, limit, &fingerprint, |r| After::Created {
            ms: r.time_ms,
            id: r.id,
        });
        Ok(w::ListPageReceiptsResult {
            next_token: next,
            receipts: Some(
                rows.into_iter()
                    .map(|r| w::Receipt {
                        contact_channel_arn: Some(channel_arn.clone()),
                        receipt_type: w::ReceiptType::from_value(&r.receipt_type),
                        receipt_info: r.info,
                        receipt_time: Some(EpochSeconds::from_millis(r.time_ms)),
                    })
                    .collect(),
            ),
        })
    }

    pub(crate) async fn op_list_page_resolutions(
        &self,
        ctx: &RequestContext,
        input: w::ListPageResolutionsRequest,
    ) -> Result<w::ListPageResolutionsResult, ApiError> {
        let p = self
            .app
            .load_page(&ctx.caller(), &req(input.page_id, "PageId")?)
            .await?;
        let path = self.app.page_path(&p).await?;
        Ok(w::ListPageResolutionsResult {
            // The path is short (at most a few nodes): one page.
            next_token: None,
            page_resolutions: Some(
                path.into_iter()
                    .map(|n| w::ResolutionContact {
                        contact_arn: Some(n.contact_arn),
                        r#type: Some(contact_type_to_wire(n.contact_type)),
                        stage_index: n.stage_index.and_then(|s| i32::try_from(s).ok()),
                    })
                    .collect(),
            ),
        })
    }

    pub(crate) async fn op_accept_page(
        &self,
        ctx: &RequestContext,
        input: w::AcceptPageRequest,
    ) -> Result<w::AcceptPageResult, ApiError> {
        let page = req(input.page_id, "PageId")?;
        let accept = match req(input.accept_type, "AcceptType")? {
            w::AcceptType::Read => Accept::Read,
            w::AcceptType::Delivered => Accept::Delivered,
        };
        let code = req(input.accept_code, "AcceptCode")?;
        self.app
            .accept_page(
                &ctx.caller(),
                &page,
                accept,
                &code,
                input.accept_code_validation == Some(w::AcceptCodeValidation::Enforce),
                input.contact_channel_id.as_deref(),
                input.note.as_deref(),
            )
            .await?;
        Ok(w::AcceptPageResult::default())
    }
}
