//! Acknowledgements, from every path (AcceptPage, an SMS code, a keypress, a link), and
//! providers' delivery reports.

use super::*;

impl App {
    // -----------------------------------------------------------------------------------
    // Acknowledgement (every path ends here)
    // -----------------------------------------------------------------------------------

    /// Records that the page was read (acknowledged): a READ receipt and ReadTime, and stops
    /// the paging of its contact in the engagement (and, for an essential contact, the later
    /// stages of the escalation plan). A page that was read was delivered: as AWS does, a
    /// DELIVERED receipt (and DeliveryTime) at the same instant comes with it, unless one was
    /// recorded before. Acknowledging twice records nothing more.
    pub async fn acknowledge(
        &self,
        page: Uuid,
        source: AckSource,
    ) -> Result<AckOutcome, StoreError> {
        for _ in 0..10 {
            let Some(p) = self.store.get_page_by_id(page).await? else {
                return Err(StoreError::NotFound(format!("page {page}")));
            };
            if p.read_ms.is_some() {
                return Ok(AckOutcome::AlreadyAcknowledged { page });
            }
            let Some(e) = self.store.get_engagement_by_id(p.engagement_id).await? else {
                return Err(StoreError::NotFound(format!(
                    "engagement {}",
                    p.engagement_id
                )));
            };
            let now = self.clock.now_ms();
            let mut events = PageEvents::default();
            if p.delivery_ms.is_none() {
                // Written first, so that at the same instant it lists before READ (receipts
                // list by time, then by their time-ordered ids).
                events.receipts.push(receipt(
                    &p,
                    ReceiptKind::Delivered,
                    source.info.clone(),
                    now,
                ));
                events.times.push(PageTime::Delivered(p.id, now));
            }
            events
                .receipts
                .push(receipt(&p, ReceiptKind::Read, source.info.clone(), now));
            events.times.push(PageTime::Read(p.id, now));
            if !engagement_running(&e) {
                self.store.record_page_events(&events).await?;
            } else {
                let snapshot: Snapshot = serde_json::from_str(&e.snapshot)
                    .map_err(|err| StoreError::Corrupt(format!("engagement snapshot: {err}")))?;
                let mut state: State = serde_json::from_str(&e.state)
                    .map_err(|err| StoreError::Corrupt(format!("engagement state: {err}")))?;
                state.acknowledge(usize::try_from(p.unit).unwrap_or(usize::MAX), now);
                let (stop, next_step) = match state.next_wake(&snapshot, now) {
                    Some(due) => (None, Some(step_job(e.id, e.generation + 1, due, now))),
                    None => (Some((now, StopReason::Acknowledged.to_string())), None),
                };
                let change = EngagementChange {
                    id: e.id,
                    expected_generation: e.generation,
                    state: serde_json::to_string(&state)
                        .map_err(|err| StoreError::Corrupt(format!("engagement state: {err}")))?,
                    stop,
                    next_step,
                    events,
                    ..Default::default()
                };
                if !self.store.change_engagement(&change).await? {
                    continue; // the engagement moved on meanwhile: look again
                }
                self.wake_engine();
            }
            metrics::counter!("muster_pages_acknowledged_total").increment(1);
            tracing::info!(page = %page, engagement = %p.engagement_id, via = %source.via, "page acknowledged");
            if e.incident_id.is_some() {
                self.note_incident_ack(&e, &p, now).await;
            }
            return Ok(AckOutcome::Acknowledged { page });
        }
        Err(StoreError::Conflict(
            "the engagement kept changing; try again".into(),
        ))
    }

    /// An SMS reply from `address` carrying a code: acknowledges the open page sent to that
    /// number in the last day whose accept code it is. `None` if no open page has that code.
    pub async fn acknowledge_by_code(
        &self,
        address: &str,
        code: &str,
        source: &str,
    ) -> Result<Option<AckOutcome>, StoreError> {
        let since = self.clock.now_ms() - REPLY_WINDOW_MS;
        let pages = self.store.open_pages_for_address(address, since).await?;
        let key: &CodeKey = &self.messaging.code_key;
        // Every candidate is compared (constant time each), not only until the first match.
        let mut found = None;
        for p in &pages {
            if key.accept_matches(p.id, code) && found.is_none() {
                found = Some(p.id);
            }
        }
        match found {
            Some(page) => self
                .acknowledge(page, AckSource::with_code(self, page, source))
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    /// The page a voice call carried (by the message id in the call's keypress URL).
    pub async fn page_of_message(&self, message_id: Uuid) -> Result<Option<Uuid>, StoreError> {
        self.store.page_of_message(message_id).await
    }

    /// The acknowledgement link of a page, if a public URL is configured.
    pub(crate) fn ack_url(&self, page: Uuid, now: i64) -> Option<String> {
        self.messaging.public_url.as_ref().map(|base| {
            format!(
                "{base}/a/{}",
                self.messaging
                    .code_key
                    .ack_token(page, now + ACK_LINK_TTL_MS)
            )
        })
    }

    /// A provider's status callback about a page's message: a DELIVERED or ERROR receipt.
    pub async fn page_status(
        &self,
        message_id: Uuid,
        status: &str,
        error_code: Option<&str>,
    ) -> Result<(), StoreError> {
        let Some(page) = self.store.page_of_message(message_id).await? else {
            return Ok(());
        };
        let Some(p) = self.store.get_page_by_id(page).await? else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let ev = match status {
            "DELIVERED" | "READ" => PageEvents {
                receipts: vec![receipt(
                    &p,
                    ReceiptKind::Delivered,
                    format!("provider status {status}"),
                    now,
                )],
                times: vec![PageTime::Delivered(p.id, now)],
                ..Default::default()
            },
            "FAILED" => PageEvents {
                receipts: vec![receipt(
                    &p,
                    ReceiptKind::Error,
                    match error_code {
                        Some(c) => format!("the provider could not deliver it (error {c})"),
                        None => "the provider could not deliver it".to_string(),
                    },
                    now,
                )],
                ..Default::default()
            },
            _ => return Ok(()),
        };
        self.store.record_page_events(&ev).await
    }
}
