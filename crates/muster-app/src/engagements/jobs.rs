//! The two kinds of engagement job: `engagement.step` begins stages on time, `page.send`
//! sends a page.

use super::*;

impl App {
    // -----------------------------------------------------------------------------------
    // Jobs
    // -----------------------------------------------------------------------------------

    /// What one step job does: begins the stages due now, with their pages and send jobs,
    /// and the next step (or the end), as a change fenced by the generation. `None`: the job
    /// is stale (the change that moved the generation replaced it).
    fn prepare_step(
        &self,
        job: &JobRecord,
        payload: &StepPayload,
        engagements: &HashMap<Uuid, EngagementRecord>,
    ) -> anyhow::Result<Option<(EngagementChange, i64)>> {
        let Some(e) = engagements.get(&payload.e) else {
            return Ok(None);
        };
        if !engagement_running(e) || e.generation != payload.g {
            return Ok(None);
        }
        let now = self.clock.now_ms();
        let snapshot: Snapshot = serde_json::from_str(&e.snapshot)?;
        let mut state: State = serde_json::from_str(&e.state)?;
        let orders = state.advance(&snapshot, now);
        let (pages, jobs) = self.new_pages(&e.account, e.id, &snapshot, &orders, now);
        let (stop, next_step) = match state.next_wake(&snapshot, now) {
            Some(due) => (None, Some(step_job(e.id, e.generation + 1, due, now))),
            // The plan ran out at its end, which is before now if the engine was late.
            None => {
                let end = state.end_ms(&snapshot).unwrap_or(now).min(now);
                (Some((end, StopReason::Completed.to_string())), None)
            }
        };
        let change = EngagementChange {
            id: e.id,
            expected_generation: e.generation,
            state: serde_json::to_string(&state)?,
            stop,
            pages,
            jobs,
            next_step,
            ..Default::default()
        };
        Ok(Some((change, now.saturating_sub(job.due_ms).max(0))))
    }

    /// Runs a batch of step jobs, writing every change in one transaction.
    async fn run_steps(&self, jobs: &[JobRecord]) -> Vec<anyhow::Result<Outcome>> {
        let mut out: Vec<anyhow::Result<Outcome>> = Vec::with_capacity(jobs.len());
        let mut changes = Vec::new();
        let mut slots = Vec::new(); // (index in out, lateness)
        let payloads: Vec<anyhow::Result<StepPayload>> = jobs
            .iter()
            .map(|job| Ok(serde_json::from_str(&job.payload)?))
            .collect();
        // One read for the whole batch.
        let ids: Vec<Uuid> = payloads.iter().flatten().map(|p| p.e).collect();
        let engagements: HashMap<Uuid, EngagementRecord> =
            match self.store.get_engagements_by_ids(&ids).await {
                Ok(found) => found.into_iter().map(|e| (e.id, e)).collect(),
                Err(e) => {
                    let msg = e.to_string();
                    return jobs
                        .iter()
                        .map(|_| Err(anyhow::anyhow!("engagements not read: {msg}")))
                        .collect();
                }
            };
        for (job, payload) in jobs.iter().zip(payloads) {
            let prepared = payload.and_then(|p| self.prepare_step(job, &p, &engagements));
            match prepared {
                Ok(Some((change, late_ms))) => {
                    slots.push((out.len(), late_ms));
                    changes.push(change);
                    out.push(Ok(Outcome::Completed));
                }
                Ok(None) => out.push(Ok(Outcome::Done)),
                Err(e) => out.push(Err(e)),
            }
        }
        if changes.is_empty() {
            return out;
        }
        // The new pages' sends (due now) go straight to this engine.
        let now = self.clock.now_ms();
        let reservation = self.jobs.lease_due(
            changes
                .iter_mut()
                .flat_map(|c| c.jobs.iter_mut().chain(c.next_step.as_mut())),
            now,
        );
        let changes = Arc::new(changes);
        match self
            .writes
            .write(self, |reply| Pending::Changes(changes.clone(), reply))
            .await
        {
            Ok(applied) => {
                let mut written = Vec::new();
                for ((i, late_ms), (change, ok)) in slots.iter().zip(changes.iter().zip(applied)) {
                    if !ok {
                        // Someone else changed it first and wrote the next step.
                        out[*i] = Ok(Outcome::Done);
                        continue;
                    }
                    // Applied: the change deleted this job (it replaced the step job).
                    written.extend(change.jobs.iter().chain(&change.next_step));
                    metrics::histogram!("muster_stage_lateness_seconds")
                        .record(*late_ms as f64 / 1000.0);
                    if change.stop.is_some() {
                        metrics::counter!("muster_engagements_completed_total").increment(1);
                    }
                    tracing::debug!(engagement = %change.id, pages = change.pages.len(), ended = change.stop.is_some(), "engagement step");
                }
                self.jobs.written(reservation, written);
            }
            Err(e) => {
                let msg = e.to_string();
                for (i, _) in slots {
                    out[i] = Err(anyhow::anyhow!("engagement steps not written: {msg}"));
                }
            }
        }
        out
    }

    /// Runs a batch of send jobs: checks each page's channel and engagement, sends the
    /// sendable ones concurrently, and writes every outcome (receipts, delivery records, which
    /// are the SENT receipts, retries, and the jobs' completion) in one transaction. Returns
    /// each job's outcome, in order: `Completed` (deleted in that transaction), or `RetryAt`
    /// when every send of the job failed for a local, passing reason
    /// ([`is_local`](muster_notify::providers::NotifyError::is_local)): no receipt, the same
    /// round again shortly ([`local_retry_delay_ms`]), until [`LOCAL_RETRY_FOR_MS`] has passed.
    /// A job with other outcomes too is completed, and its sends that failed so go on in
    /// jobs of their own.
    async fn run_sends(&self, jobs: &[JobRecord]) -> anyhow::Result<Vec<Outcome>> {
        enum Plan {
            Receipt(ReceiptKind, String),
            Send(Box<Message>),
        }
        let now = self.clock.now_ms();
        let mut engagements: HashMap<Uuid, (EngagementRecord, State)> = HashMap::new();
        let mut ends: HashMap<Uuid, i64> = HashMap::new();
        let mut planned: Vec<(PageRecord, i64, Plan, usize)> = Vec::with_capacity(jobs.len());
        let mut events = PageEvents::default();
        let mut outcomes = vec![Outcome::Completed; jobs.len()];
        let mut payloads = Vec::with_capacity(jobs.len());
        for (j, job) in jobs.iter().enumerate() {
            match serde_json::from_str::<SendPayload>(&job.payload) {
                Ok(payload) => payloads.push((j, payload)),
                Err(_) => {
                    tracing::error!(job = %job.id, "send job with an unreadable payload dropped")
                }
            }
        }
        // One read for the whole batch: pages, their channels now, opt-outs.
        let ids: Vec<Uuid> = payloads.iter().flat_map(|(_, p)| p.pages()).collect();
        let mut contexts: HashMap<Uuid, SendContext> = self
            .store
            .send_contexts(&ids)
            .await?
            .into_iter()
            .map(|c| (c.page.id, c))
            .collect();
        // And one for their engagements.
        let mut wanted: Vec<Uuid> = contexts.values().map(|c| c.page.engagement_id).collect();
        wanted.sort_unstable();
        wanted.dedup();
        for e in self.store.get_engagements_by_ids(&wanted).await? {
            let state: State = serde_json::from_str(&e.state)?;
            engagements.insert(e.id, (e, state));
        }
        for (j, payload) in payloads {
            for page in payload.pages() {
                let Some(ctx) = contexts.remove(&page) else {
                    continue; // the page is gone (its engagement was deleted)
                };
                let p = ctx.page.clone();
                let Some((e, state)) = engagements.get(&p.engagement_id) else {
                    continue;
                };
                let retry = payload.r > 0;
                let what = if retry { "retry not sent" } else { "not sent" };
                let over = retry && now >= plan_end(&mut ends, e, state);
                let plan = if !still_sends(e) || (retry && (!engagement_running(e) || over)) {
                    // Retries end with the engagement (DESIGN.md); a first send due before the
                    // plan ran out still goes.
                    Plan::Receipt(
                        ReceiptKind::Stop,
                        format!(
                            "{what}: the engagement {}",
                            e.stop_reason.as_deref().unwrap_or("ended")
                        ),
                    )
                } else if state.halted(usize::try_from(p.unit).unwrap_or(usize::MAX)) {
                    Plan::Receipt(
                        ReceiptKind::Stop,
                        format!("{what}: the contact acknowledged"),
                    )
                } else {
                    match check_channel(&ctx) {
                        Err((kind, why)) => Plan::Receipt(kind, why),
                        Ok(ch) => Plan::Send(Box::new(self.render_page(e, &p, ch, payload.r, now))),
                    }
                };
                planned.push((p, payload.r, plan, j));
            }
        }
        // Send concurrently; each provider call has its own timeout.
        let mut sends = tokio::task::JoinSet::new();
        for (i, (_, _, plan, _)) in planned.iter().enumerate() {
            if let Plan::Send(msg) = plan {
                let messaging = self.messaging.clone();
                let msg = msg.clone();
                sends.spawn(async move { (i, messaging.notifier.send(&msg).await) });
            }
        }
        let mut results = HashMap::new();
        while let Some(done) = sends.join_next().await {
            match done {
                Ok((i, r)) => {
                    results.insert(i, r);
                }
                Err(e) => tracing::error!(error = %e, "a page send task failed"),
            }
        }
        let done_ms = self.clock.now_ms();
        // Per job: whether any of its pages has an outcome to write, and its pages deferred
        // for a local reason (page, round).
        let mut wrote = vec![false; jobs.len()];
        let mut deferred: Vec<Vec<(Uuid, i64)>> = vec![Vec::new(); jobs.len()];
        for (i, (p, round, plan, j)) in planned.iter().enumerate() {
            match plan {
                Plan::Receipt(kind, why) => {
                    wrote[*j] = true;
                    events.receipts.push(receipt(p, *kind, why.clone(), now));
                    metrics::counter!("muster_pages_not_sent_total", "receipt" => kind.as_str())
                        .increment(1);
                    tracing::info!(page = %p.id, receipt = kind.as_str(), why, "page not sent");
                }
                Plan::Send(msg) => {
                    let result = results.remove(&i);
                    let job = &jobs[*j];
                    if let Some(Err(e)) = &result
                        && e.is_local()
                        && done_ms.saturating_sub(job.created_ms) < LOCAL_RETRY_FOR_MS
                    {
                        // This machine ran out of descriptors, disk or memory: not the
                        // page's failure. The same round again shortly (below); the plan's
                        // stages go on meanwhile (they are jobs of their own).
                        deferred[*j].push((p.id, *round));
                        metrics::counter!("muster_pages_deferred_total").increment(1);
                        tracing::warn!(
                            page = %p.id,
                            error = %e,
                            attempt = job.attempts,
                            retry_in_ms = local_retry_delay_ms(job.attempts),
                            "page send failed for a local, passing reason; trying again"
                        );
                        continue;
                    }
                    wrote[*j] = true;
                    events.times.push(PageTime::SendRound(p.id));
                    match result {
                        Some(Ok(d)) => {
                            // The delivery record is the SENT receipt too (the store lists
                            // it as one): as AWS, its info is the provider's message id
                            // (Twilio's SID, …), Muster's own message id when it gave none.
                            events.times.push(PageTime::Sent(p.id, done_ms));
                            events.deliveries.push(DeliveryRecord {
                                message_id: msg.id,
                                account: Some(p.account.clone()),
                                channel_id: p.channel_id,
                                kind: "page".into(),
                                provider: d.provider.clone(),
                                provider_message_id: d.provider_message_id,
                                status: "SENT".into(),
                                sent_ms: done_ms,
                                updated_ms: done_ms,
                                page_id: Some(p.id),
                            });
                            metrics::counter!("muster_pages_sent_total", "provider" => d.provider)
                                .increment(1);
                            metrics::histogram!("muster_page_send_lateness_seconds").record(
                                done_ms.saturating_sub(p.created_ms).max(0) as f64 / 1000.0,
                            );
                        }
                        failed => {
                            let why = match failed {
                                Some(Err(e)) => e.to_string(),
                                _ => "the send task failed".to_string(),
                            };
                            metrics::counter!("muster_pages_failed_total").increment(1);
                            tracing::warn!(page = %p.id, error = %why, "page send failed");
                            let mut info = format!("not sent: {why}");
                            let due = done_ms + p.retry_minutes * 60_000;
                            let retry = p.retry_minutes > 0 && *round < MAX_RETRIES;
                            let in_time = engagements
                                .get(&p.engagement_id)
                                .is_some_and(|(e, state)| due < plan_end(&mut ends, e, state));
                            if retry && in_time {
                                info.push_str(&format!(
                                    "; retrying in {} minutes",
                                    p.retry_minutes
                                ));
                                events.jobs.push(send_job(p.id, round + 1, due, done_ms));
                            } else if retry {
                                info.push_str(
                                    "; not retried: the engagement ends before the next try",
                                );
                            }
                            events
                                .receipts
                                .push(receipt(p, ReceiptKind::Error, info, done_ms));
                        }
                    }
                }
            }
        }
        // Deferred sends go again shortly: the whole job when none of its pages had an
        // outcome (so its attempts count on); otherwise each deferred page in a job of its
        // own, as old as this one (the time allowed for local retries runs on), and this
        // job is done.
        for (j, pages) in deferred.iter().enumerate().filter(|(_, d)| !d.is_empty()) {
            let job = &jobs[j];
            let due = done_ms.saturating_add(local_retry_delay_ms(job.attempts));
            if !wrote[j] {
                outcomes[j] = Outcome::RetryAt(due);
                continue;
            }
            for &(page, round) in pages {
                let mut retry = send_job(page, round, due, job.created_ms);
                retry.attempts = job.attempts;
                events.jobs.push(retry);
            }
        }
        // Every job whose outcome is not a retry is deleted with the events it wrote.
        for (job, outcome) in jobs.iter().zip(&outcomes) {
            if let (Some(owner), Outcome::Completed) = (&job.lease_owner, outcome) {
                events.done_jobs.push((job.id, owner.clone()));
            }
        }
        if !events.is_empty() {
            self.writes
                .write(self, |reply| Pending::Events(Box::new(events), reply))
                .await?;
        }
        Ok(outcomes)
    }

    fn render_page(
        &self,
        e: &EngagementRecord,
        p: &PageRecord,
        ch: &ChannelRecord,
        round: i64,
        now: i64,
    ) -> Message {
        let m = &self.messaging;
        let accept_code = m.code_key.accept_code(p.id);
        let ack_url = self.ack_url(p.id, now);
        let unsubscribe_url = (ch.channel_type == ChannelType::Email)
            .then(|| m.unsubscribe_url(&ch.address))
            .flatten();
        let vars = Vars {
            contact: Some(p.contact_alias.clone()),
            channel: Some(ch.name.clone()),
            subject: Some(e.subject.clone()),
            content: Some(e.content.clone()),
            public_subject: e.public_subject.clone(),
            public_content: e.public_content.clone(),
            accept_code: Some(accept_code.clone()),
            ack_url: ack_url.clone(),
            unsubscribe_url: unsubscribe_url.clone(),
            ..Default::default()
        };
        let (subject, body, html) = m
            .templates
            .render(MessageKind::Page, ch.channel_type, &vars);
        Message {
            id: message_id(p.id, round),
            kind: MessageKind::Page,
            channel_type: ch.channel_type,
            address: ch.address.clone(),
            subject,
            body,
            html,
            activation_code: None,
            page_arn: Some(self.page_arn(p)),
            accept_code: Some(accept_code),
            unsubscribe_url,
            ack_url,
            account: Some(e.account.clone()),
        }
    }
}

/// The engine's handler of step jobs.
pub struct StepJobs(pub Arc<App>);

impl BatchHandler for StepJobs {
    async fn run_batch(&self, jobs: &[JobRecord]) -> Vec<anyhow::Result<Outcome>> {
        self.0.run_steps(jobs).await
    }
}

/// The engine's handler of send jobs (a batch is written in one transaction).
pub struct SendJobs(pub Arc<App>);

impl BatchHandler for SendJobs {
    async fn run_batch(&self, jobs: &[JobRecord]) -> Vec<anyhow::Result<Outcome>> {
        match self.0.run_sends(jobs).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::error!(error = %e, jobs = jobs.len(), "page sends not recorded; they run again");
                jobs.iter().map(|_| Err(anyhow::anyhow!("{e}"))).collect()
            }
        }
    }
}

/// Registers the engagement job handlers on an engine.
pub fn register(engine: muster_jobs::Engine, api: &Arc<App>) -> muster_jobs::Engine {
    engine
        .batch_handler(STEP_JOB, StepJobs(api.clone()))
        .batch_handler(SEND_JOB, SendJobs(api.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_retries_double_from_a_second_up_to_a_minute() {
        let delays: Vec<i64> = (1..=9).map(local_retry_delay_ms).collect();
        assert_eq!(
            delays,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000
            ]
        );
        assert_eq!(local_retry_delay_ms(0), 1_000);
        assert_eq!(local_retry_delay_ms(-3), 1_000);
        assert_eq!(local_retry_delay_ms(i32::MAX), 60_000);
    }

    #[test]
    fn a_step_sends_its_pages_in_one_job_and_older_jobs_still_read() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(first_sends_job(vec![], 5).is_none());
        let one = first_sends_job(vec![a], 5).unwrap();
        assert_eq!(
            one.dedup_key.as_deref(),
            Some(format!("send:{a}:0").as_str())
        );
        assert_eq!(one.payload, format!(r#"{{"p":"{a}","r":0}}"#));
        let both = first_sends_job(vec![a, b], 5).unwrap();
        assert_eq!(
            both.dedup_key.as_deref(),
            Some(format!("sends:{a}:0").as_str())
        );
        assert_eq!((both.due_ms, both.created_ms), (5, 5));
        let read: SendPayload = serde_json::from_str(&both.payload).unwrap();
        assert_eq!((read.pages().collect::<Vec<_>>(), read.r), (vec![a, b], 0));
        // A retry's job, as every send job was written before one job per step.
        let old: SendPayload = serde_json::from_str(&format!(r#"{{"p":"{b}","r":2}}"#)).unwrap();
        assert_eq!((old.pages().collect::<Vec<_>>(), old.r), (vec![b], 2));
    }

    #[test]
    fn message_ids_are_stable_per_round_and_sort_with_their_pages() {
        let early = Uuid::now_v7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let late = Uuid::now_v7();
        assert_eq!(message_id(early, 0), message_id(early, 0));
        assert_ne!(message_id(early, 0), message_id(early, 1));
        assert_eq!(message_id(early, 0).get_version_num(), 8);
        for round in 0..3 {
            assert!(message_id(early, round) < message_id(late, 0));
            assert_eq!(
                message_id(late, round).as_bytes()[..6],
                late.as_bytes()[..6]
            );
        }
    }
}
