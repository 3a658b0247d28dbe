//! Contacts and their plans.
//!
//! A PERSONAL contact's plan pages its own channels; an ESCALATION plan engages other
//! contacts; an ONCALL_SCHEDULE names rotations and has no stages. Stage `i` begins at the
//! sum of the durations of the stages before it (minutes from the start of the engagement).

use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The three kinds of contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContactType {
    Personal,
    Escalation,
    OncallSchedule,
}

impl ContactType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactType::Personal => "PERSONAL",
            ContactType::Escalation => "ESCALATION",
            ContactType::OncallSchedule => "ONCALL_SCHEDULE",
        }
    }
}

impl FromStr for ContactType {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "PERSONAL" => Ok(ContactType::Personal),
            "ESCALATION" => Ok(ContactType::Escalation),
            "ONCALL_SCHEDULE" => Ok(ContactType::OncallSchedule),
            _ => Err(ParseError::new(format!(
                "contact type {s:?} must be PERSONAL, ESCALATION or ONCALL_SCHEDULE"
            ))),
        }
    }
}

impl fmt::Display for ContactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Most rotations an on-call schedule may use (the user guide's limit).
pub const MAX_SCHEDULE_ROTATIONS: usize = 8;

/// A contact's plan as stored. References to channels, contacts and rotations are ARNs
/// (strings), so a plan may keep naming a resource after it was deleted: that stage is
/// then skipped, as AWS documents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    #[serde(default)]
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub rotation_ids: Vec<String>,
}

/// One stage: page `targets`, then wait `duration_minutes` (0..=30) before the next stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub duration_minutes: u32,
    pub targets: Vec<Target>,
}

/// What a stage engages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A channel of the contact itself (PERSONAL plans). `retry_interval_minutes` (0..=60)
    /// re-sends a failed send every N minutes; `None` and 0 mean no retry.
    Channel {
        channel_arn: String,
        retry_interval_minutes: Option<u32>,
    },
    /// Another contact, engaged through its own plan (ESCALATION plans). An acknowledgement
    /// by an essential contact stops the plan's later stages.
    Contact {
        contact_arn: String,
        is_essential: bool,
    },
}

impl Plan {
    /// Checks the plan's shape against the contact's type; references are checked by the
    /// caller, which can see the store. Errors name the offending member path.
    pub fn check_shape(&self, contact_type: ContactType) -> Result<(), (String, String)> {
        match contact_type {
            ContactType::OncallSchedule => {
                if !self.stages.is_empty() {
                    return Err((
                        "Plan.Stages".into(),
                        "ONCALL SCHEDULE contact cannot have stages in plan".into(),
                    ));
                }
                if self.rotation_ids.is_empty() {
                    return Err((
                        "Plan.RotationIds".into(),
                        "an ONCALL_SCHEDULE contact needs at least one rotation".into(),
                    ));
                }
                if self.rotation_ids.len() > MAX_SCHEDULE_ROTATIONS {
                    return Err((
                        "Plan.RotationIds".into(),
                        format!(
                            "an on-call schedule can use at most {MAX_SCHEDULE_ROTATIONS} rotations"
                        ),
                    ));
                }
                let mut seen = std::collections::HashSet::new();
                if let Some(dup) = self.rotation_ids.iter().find(|r| !seen.insert(*r)) {
                    return Err((
                        "Plan.RotationIds".into(),
                        format!("rotation {dup} is listed twice"),
                    ));
                }
            }
            ContactType::Personal | ContactType::Escalation => {
                if !self.rotation_ids.is_empty() {
                    return Err((
                        "Plan.RotationIds".into(),
                        format!(
                            "a {contact_type} contact cannot name rotations; only ONCALL_SCHEDULE contacts do"
                        ),
                    ));
                }
            }
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if stage.duration_minutes > 30 {
                return Err((
                    format!("Plan.Stages[{i}].DurationInMinutes"),
                    "must be between 0 and 30".into(),
                ));
            }
            if stage.targets.is_empty() && stage.duration_minutes == 0 {
                return Err((
                    format!("Plan.Stages[{i}].DurationInMinutes"),
                    "the duration can only be 0 if the stage has a target".into(),
                ));
            }
            for (j, target) in stage.targets.iter().enumerate() {
                let path = format!("Plan.Stages[{i}].Targets[{j}]");
                match (contact_type, target) {
                    (ContactType::Personal, Target::Contact { .. }) => {
                        return Err((
                            format!("{path}.ContactTargetInfo"),
                            "a PERSONAL contact's stages page its own contact channels: use ChannelTargetInfo".into(),
                        ));
                    }
                    (ContactType::Escalation, Target::Channel { .. }) => {
                        return Err((
                            format!("{path}.ChannelTargetInfo"),
                            "an ESCALATION plan's stages engage contacts: use ContactTargetInfo"
                                .into(),
                        ));
                    }
                    (
                        _,
                        Target::Channel {
                            retry_interval_minutes: Some(r),
                            ..
                        },
                    ) if *r > 60 => {
                        return Err((
                            format!("{path}.ChannelTargetInfo.RetryIntervalInMinutes"),
                            "must be between 0 and 60".into(),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(arn: &str) -> Target {
        Target::Channel {
            channel_arn: arn.into(),
            retry_interval_minutes: None,
        }
    }

    #[test]
    fn shapes() {
        let empty = Plan::default();
        assert!(empty.check_shape(ContactType::Personal).is_ok());
        assert!(empty.check_shape(ContactType::Escalation).is_ok());
        assert_eq!(
            empty
                .check_shape(ContactType::OncallSchedule)
                .unwrap_err()
                .0,
            "Plan.RotationIds"
        );

        let personal = Plan {
            stages: vec![Stage {
                duration_minutes: 5,
                targets: vec![ch("x")],
            }],
            rotation_ids: vec![],
        };
        assert!(personal.check_shape(ContactType::Personal).is_ok());
        assert_eq!(
            personal.check_shape(ContactType::Escalation).unwrap_err().0,
            "Plan.Stages[0].Targets[0].ChannelTargetInfo"
        );
        let err = personal
            .check_shape(ContactType::OncallSchedule)
            .unwrap_err();
        assert!(err.1.contains("cannot have stages"));

        let zero_no_target = Plan {
            stages: vec![Stage {
                duration_minutes: 0,
                targets: vec![],
            }],
            rotation_ids: vec![],
        };
        assert!(zero_no_target.check_shape(ContactType::Personal).is_err());
    }

    #[test]
    fn plan_json_round_trip() {
        let p = Plan {
            stages: vec![Stage {
                duration_minutes: 1,
                targets: vec![
                    ch("a"),
                    Target::Contact {
                        contact_arn: "b".into(),
                        is_essential: true,
                    },
                ],
            }],
            rotation_ids: vec!["r".into()],
        };
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&s).unwrap(), p);
    }
}
