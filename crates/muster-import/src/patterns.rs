//! Mapping patterns several sources share (IMPORTERS.md §1).

use crate::model::{ChannelTarget, EscalationStage, EscalationTarget, PersonalStage};
use std::collections::BTreeMap;

/// P1: a personal plan from notification rules that fire `delay` minutes after the page
/// (device ids by delay). Rules with the same delay share a stage; each stage lasts until the
/// next delay; gaps over 30 minutes become waiting stages; the last stage is 0.
pub fn personal_stages(by_delay: BTreeMap<u32, Vec<String>>) -> Vec<PersonalStage> {
    let delays: Vec<(u32, Vec<String>)> = by_delay.into_iter().collect();
    let mut stages = Vec::new();
    for (i, (delay, targets)) in delays.iter().enumerate() {
        let next = delays.get(i + 1).map_or(*delay, |d| d.0);
        let mut gap = next - delay;
        stages.push(PersonalStage {
            duration_minutes: gap.min(30),
            channels: targets
                .iter()
                .map(|c| ChannelTarget {
                    channel: c.clone(),
                    retry_interval_minutes: None,
                })
                .collect(),
        });
        gap = gap.saturating_sub(30);
        while gap > 0 {
            stages.push(PersonalStage {
                duration_minutes: gap.min(30),
                channels: vec![],
            });
            gap = gap.saturating_sub(30);
        }
    }
    stages
}

/// P2: an escalation plan from steps of (targets, minutes to the next step), repeated
/// `loops` times in all. Waits over 30 minutes are split into waiting stages; the very last
/// stage is 0; a step with no target and no wait is left out.
pub fn escalation_stages(
    rounds: &[(Vec<EscalationTarget>, u32)],
    loops: usize,
) -> Vec<EscalationStage> {
    let mut stages = Vec::new();
    for l in 0..loops {
        for (i, (targets, delay)) in rounds.iter().enumerate() {
            let last = l + 1 == loops && i + 1 == rounds.len();
            let mut wait = if last { 0 } else { *delay };
            if targets.is_empty() && wait == 0 {
                continue;
            }
            stages.push(EscalationStage {
                duration_minutes: wait.min(30),
                targets: targets.clone(),
            });
            wait = wait.saturating_sub(30);
            while wait > 0 {
                stages.push(EscalationStage {
                    duration_minutes: wait.min(30),
                    targets: vec![],
                });
                wait = wait.saturating_sub(30);
            }
        }
    }
    stages
}
