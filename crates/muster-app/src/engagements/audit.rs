//! The auditor: repairs running engagements that lost their next step.

use super::*;

impl App {
    /// Re-creates the step job of every running engagement that has none (a bug or a manual
    /// database edit would otherwise leave it running forever). Returns how many it repaired.
    /// Scans the running engagements in slices on a reader, pausing between slices, so a
    /// large backlog costs the engine nothing.
    pub async fn audit_engagements(&self) -> Result<usize, StoreError> {
        const SLICE: u32 = 1000;
        let mut repaired = 0;
        let mut after = After::Start;
        loop {
            let started = std::time::Instant::now();
            let (missing, next) = self.store.scan_for_missing_steps(&after, SLICE).await?;
            // Between slices, at least as long as the slice took: the scan never takes more
            // than about half of a connection from the engine, however many engagements run.
            let pause = started.elapsed().max(std::time::Duration::from_millis(5));
            if !missing.is_empty() {
                let now = self.clock.now_ms();
                let jobs: Vec<JobRecord> = missing
                    .iter()
                    .map(|(id, generation)| step_job(*id, *generation, now, now))
                    .collect();
                // A step written meanwhile keeps its dedup key: nothing is inserted for it.
                let n = self.store.enqueue_jobs(&jobs).await?;
                for (id, _) in &missing {
                    tracing::warn!(engagement = %id, "auditor: running engagement had no next step; repaired");
                }
                metrics::counter!("muster_engagements_repaired_total").increment(n as u64);
                repaired += n;
            }
            match next {
                Some(n) => after = n,
                None => break,
            }
            tokio::time::sleep(pause).await;
        }
        if repaired > 0 {
            self.wake_engine();
        }
        Ok(repaired)
    }
}
