//! The plan report: per entity what happens, every loss, and the equivalence per schedule.
//! `--report FILE` writes it as JSON; the terminal gets [`Report::text`].

use crate::engine::Action;
use crate::equivalence::ScheduleEquivalence;
use crate::model::{Desired, Loss, Severity};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One entity of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityLine {
    /// `person`, `rotation`, `override`, `schedule`, `escalation`.
    pub kind: String,
    /// The source's id.
    pub id: String,
    /// Its name in Muster (alias, rotation name).
    pub name: String,
    pub action: Action,
    /// The Muster resource it is (alias, ARN), when it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An entity `apply` could not write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub entity: String,
    pub message: String,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub system: String,
    pub account: String,
    /// `plan` or `apply`.
    pub mode: String,
    pub entities: Vec<EntityLine>,
    /// How many entities per action.
    pub counts: BTreeMap<Action, usize>,
    pub losses: Vec<Loss>,
    pub equivalence: Vec<ScheduleEquivalence>,
    /// Entities `apply` could not write (the others were written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    /// Why `apply` refused to write, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl Report {
    pub fn new(desired: &Desired, mode: &str) -> Self {
        Report {
            system: desired.system.clone(),
            account: desired.account.clone(),
            mode: mode.to_owned(),
            entities: Vec::new(),
            counts: BTreeMap::new(),
            losses: desired.losses.clone(),
            equivalence: Vec::new(),
            failures: Vec::new(),
            refused: None,
        }
    }

    /// Fills `counts` from `entities`.
    pub fn count(&mut self) {
        self.counts.clear();
        for e in &self.entities {
            *self.counts.entry(e.action).or_default() += 1;
        }
    }

    /// Schedules that differ from the source without a `warn`/`error` loss saying so.
    pub fn unreported_differences(&self) -> Vec<&ScheduleEquivalence> {
        self.equivalence
            .iter()
            .filter(|e| !e.exact() && !e.loss_reported)
            .collect()
    }

    /// The report for a terminal.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} import from {} ({}):",
            self.mode, self.system, self.account
        );
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(a, n)| {
                format!(
                    "{n} {}",
                    serde_json::to_value(a)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "  entities: {}",
            if counts.is_empty() {
                "none".into()
            } else {
                counts.join(", ")
            }
        );
        for e in self
            .entities
            .iter()
            .filter(|e| e.action != Action::Unchanged)
        {
            let action = serde_json::to_value(e.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = write!(out, "  {action:<9} {:<10} {}", e.kind, e.name);
            if let Some(r) = &e.reason {
                let _ = write!(out, "  ({r})");
            }
            out.push('\n');
        }
        if !self.losses.is_empty() {
            let _ = writeln!(out, "losses:");
            for l in &self.losses {
                let sev = match l.severity {
                    Severity::Info => "info",
                    Severity::Warn => "warn",
                    Severity::Error => "error",
                };
                let _ = writeln!(out, "  {sev:<5} {:<32} {}: {}", l.code, l.entity, l.message);
            }
        }
        if !self.equivalence.is_empty() {
            let _ = writeln!(
                out,
                "who is on call, source vs Muster ({}):",
                self.equivalence[0].muster_side
            );
            for e in &self.equivalence {
                let _ = writeln!(
                    out,
                    "  {:<40} {:>6.2}% of {} minutes match ({} rendering){}",
                    e.schedule,
                    e.percent,
                    e.total_minutes,
                    e.rendered_by,
                    if e.exact() {
                        ""
                    } else if e.loss_reported {
                        "  [loss reported]"
                    } else {
                        "  [NOT REPORTED]"
                    }
                );
                for d in &e.differences {
                    let _ = writeln!(
                        out,
                        "      {} – {}: source {:?}, Muster {:?}",
                        d.start, d.end, d.source, d.muster
                    );
                }
            }
        }
        if !self.failures.is_empty() {
            let _ = writeln!(
                out,
                "failed ({}; everything else was written, run apply again once fixed):",
                self.failures.len()
            );
            for f in &self.failures {
                let _ = writeln!(out, "  {}: {}", f.entity, f.message);
            }
        }
        if let Some(r) = &self.refused {
            let _ = writeln!(out, "refused: {r}");
        }
        out
    }
}
