//! The model's limits on what a form sends, checked before the application is called, as the
//! AWS endpoint checks them before an operation runs: the same rules (`muster_core::limits`,
//! which muster-aws's parity test holds to the generated AWS validation), and the same words
//! (`must be at most 255 characters long`), which the forms turn into their own sentences.

use muster_app::engagements::Paging;
use muster_app::{AppError, FieldIssue};
use muster_core::limits::{
    AcceptCode, AcceptNote, ActivationCode, ChannelName, DayOfMonth, DisplayName,
    EngagementContent, EngagementSubject, IdempotencyToken, OnCallCount, OverrideMembers,
    RecurrenceMultiplier, RetryMinutes, RotationMembers, RotationName, Sender, StageMinutes,
    StopReasonText, TimeZoneId,
};
use muster_core::{ContactAlias, ParseError, Plan, Target};

/// A text limit of the model: its length in characters and its pattern.
pub(crate) struct TextLimit {
    pub min: usize,
    pub max: usize,
    pub pattern: &'static str,
}

macro_rules! limit_of {
    ($t:ty) => {
        TextLimit {
            min: <$t>::MIN_CHARS,
            max: <$t>::MAX_CHARS,
            pattern: <$t>::PATTERN,
        }
    };
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 character".to_owned()
    } else {
        format!("{n} characters")
    }
}

/// The first thing wrong with `value` under `limit`, as the AWS validation words it, when
/// `parsed` (the limit's own parse of it) refused it.
pub(crate) fn text_issue<T>(
    path: &str,
    value: &str,
    limit: TextLimit,
    parsed: Result<T, ParseError>,
) -> Option<FieldIssue> {
    parsed.err()?;
    let n = value.chars().count();
    let message = if n < limit.min {
        format!("must be at least {} long", plural(limit.min))
    } else if n > limit.max {
        format!("must be at most {} long", plural(limit.max))
    } else {
        format!("must match the pattern {}", limit.pattern)
    };
    Some(FieldIssue::new(path, message))
}

/// An integer outside its range, as the AWS validation words it (`max: None`: no upper
/// limit in the model).
fn range_issue(path: &str, min: i64, max: Option<i64>) -> FieldIssue {
    let message = match max {
        Some(max) => format!("must be between {min} and {max}"),
        None => format!("must be at least {min}"),
    };
    FieldIssue::new(path, message)
}

/// A list with too few or too many items, as the AWS validation words it.
fn items_issue(path: &str, n: usize, min: usize, max: usize) -> Option<FieldIssue> {
    let items = |k: usize| {
        if k == 1 {
            "1 item".to_owned()
        } else {
            format!("{k} items")
        }
    };
    if n < min {
        Some(FieldIssue::new(
            path,
            format!("must have at least {}", items(min)),
        ))
    } else if n > max {
        Some(FieldIssue::new(
            path,
            format!("must have at most {}", items(max)),
        ))
    } else {
        None
    }
}

fn done(issues: Vec<FieldIssue>) -> Result<(), AppError> {
    if issues.is_empty() {
        Ok(())
    } else {
        Err(AppError::Invalid(issues))
    }
}

/// The Engage form, as StartEngagement's members.
pub(crate) fn engage(paging: &Paging, token: Option<&str>) -> Result<(), AppError> {
    let mut issues = Vec::new();
    let s = &paging.sender;
    issues.extend(text_issue("Sender", s, limit_of!(Sender), Sender::parse(s)));
    let s = &paging.subject;
    issues.extend(text_issue(
        "Subject",
        s,
        limit_of!(EngagementSubject),
        EngagementSubject::parse(s),
    ));
    let s = &paging.content;
    issues.extend(text_issue(
        "Content",
        s,
        limit_of!(EngagementContent),
        EngagementContent::parse(s),
    ));
    if let Some(s) = &paging.public_subject {
        issues.extend(text_issue(
            "PublicSubject",
            s,
            limit_of!(EngagementSubject),
            EngagementSubject::parse(s),
        ));
    }
    if let Some(s) = &paging.public_content {
        issues.extend(text_issue(
            "PublicContent",
            s,
            limit_of!(EngagementContent),
            EngagementContent::parse(s),
        ));
    }
    if let Some(s) = token {
        issues.extend(text_issue(
            "IdempotencyToken",
            s,
            limit_of!(IdempotencyToken),
            IdempotencyToken::parse(s),
        ));
    }
    done(issues)
}

/// Acknowledge: AcceptPage's code and note.
pub(crate) fn accept(code: &str, note: &str) -> Result<(), AppError> {
    let mut issues = Vec::new();
    issues.extend(text_issue(
        "AcceptCode",
        code,
        limit_of!(AcceptCode),
        AcceptCode::parse(code),
    ));
    issues.extend(text_issue(
        "Note",
        note,
        limit_of!(AcceptNote),
        AcceptNote::parse(note),
    ));
    done(issues)
}

/// Stop engagement: its reason.
pub(crate) fn stop(reason: Option<&str>) -> Result<(), AppError> {
    let Some(r) = reason else { return Ok(()) };
    done(
        text_issue(
            "Reason",
            r,
            limit_of!(StopReasonText),
            StopReasonText::parse(r),
        )
        .into_iter()
        .collect(),
    )
}

/// A contact's full name, as CreateContact's and UpdateContact's `DisplayName`.
pub(crate) fn display_name(name: &str) -> Option<FieldIssue> {
    text_issue(
        "DisplayName",
        name,
        limit_of!(DisplayName),
        DisplayName::parse(name),
    )
}

/// A new contact's alias and full name, as CreateContact's `Alias` and `DisplayName`.
pub(crate) fn contact(alias: &str, display_name: Option<&str>) -> Result<ContactAlias, AppError> {
    let parsed = ContactAlias::parse(alias);
    let mut issues: Vec<FieldIssue> =
        text_issue("Alias", alias, limit_of!(ContactAlias), parsed.clone())
            .into_iter()
            .collect();
    issues.extend(display_name.and_then(self::display_name));
    match parsed {
        Ok(a) if issues.is_empty() => Ok(a),
        _ => Err(AppError::Invalid(issues)),
    }
}

/// A channel's name and delivery address (`Name`, `DeliveryAddress.SimpleAddress`). The
/// address's own rules for its type are `ChannelAddress`'s, checked after these.
pub(crate) fn channel(name: &str, address: &str) -> Vec<FieldIssue> {
    let mut issues: Vec<FieldIssue> = text_issue(
        "Name",
        name,
        limit_of!(ChannelName),
        ChannelName::parse(name),
    )
    .into_iter()
    .collect();
    if address.is_empty() {
        issues.push(FieldIssue::new(
            "DeliveryAddress.SimpleAddress",
            "must be at least 1 character long",
        ));
    }
    issues
}

/// An activation code as typed (`ActivationCode`).
pub(crate) fn activation_code(code: &str) -> Option<FieldIssue> {
    text_issue(
        "ActivationCode",
        code,
        limit_of!(ActivationCode),
        ActivationCode::parse(code),
    )
}

/// A stage's minutes (`DurationInMinutes`): the value, or the API's words for it.
pub(crate) fn stage_minutes(n: i64) -> Result<u32, String> {
    StageMinutes::new(n).map(StageMinutes::get).map_err(|_| {
        range_issue(
            "",
            i64::from(StageMinutes::MIN),
            Some(i64::from(StageMinutes::MAX)),
        )
        .message
    })
}

/// A channel target's retry interval (`RetryIntervalInMinutes`).
pub(crate) fn retry_minutes(n: i64) -> Result<u32, FieldIssue> {
    RetryMinutes::new(n).map(RetryMinutes::get).map_err(|_| {
        range_issue(
            "RetryIntervalInMinutes",
            i64::from(RetryMinutes::MIN),
            Some(i64::from(RetryMinutes::MAX)),
        )
    })
}

/// A plan the console built: the model's limits of its members (the application checks the
/// rest: its shape, what it names).
pub(crate) fn plan(plan: &Plan) -> Result<(), AppError> {
    let mut issues = Vec::new();
    for (i, stage) in plan.stages.iter().enumerate() {
        if let Err(message) = stage_minutes(i64::from(stage.duration_minutes)) {
            issues.push(FieldIssue::new(
                format!("Plan.Stages[{i}].DurationInMinutes"),
                message,
            ));
        }
        for (j, t) in stage.targets.iter().enumerate() {
            if let Target::Channel {
                retry_interval_minutes: Some(r),
                ..
            } = t
                && let Err(issue) = retry_minutes(i64::from(*r))
            {
                issues.push(FieldIssue::new(
                    format!(
                        "Plan.Stages[{i}].Targets[{j}].ChannelTargetInfo.RetryIntervalInMinutes"
                    ),
                    issue.message,
                ));
            }
        }
    }
    // The model's limit of a plan's rotations (the application allows fewer).
    issues.extend(items_issue(
        "Plan.RotationIds",
        plan.rotation_ids.len(),
        0,
        25,
    ));
    done(issues)
}

/// A rotation's name (`Name`).
pub(crate) fn rotation_name(name: &str) -> Option<FieldIssue> {
    text_issue(
        "Name",
        name,
        limit_of!(RotationName),
        RotationName::parse(name),
    )
}

/// A rotation's time zone name (`TimeZoneId`).
pub(crate) fn time_zone_id(zone: &str) -> Option<FieldIssue> {
    text_issue(
        "TimeZoneId",
        zone,
        limit_of!(TimeZoneId),
        TimeZoneId::parse(zone),
    )
}

/// A recurrence's shift length (`RecurrenceMultiplier`).
pub(crate) fn multiplier(n: i32) -> Result<u32, FieldIssue> {
    RecurrenceMultiplier::new(i64::from(n))
        .map(RecurrenceMultiplier::get)
        .map_err(|_| {
            range_issue(
                "Recurrence.RecurrenceMultiplier",
                i64::from(RecurrenceMultiplier::MIN),
                Some(i64::from(RecurrenceMultiplier::MAX)),
            )
        })
}

/// A recurrence's number of contacts on call at once (`NumberOfOnCalls`: no upper limit in
/// the model but the wire's integer).
pub(crate) fn on_calls(n: i32) -> Result<u32, FieldIssue> {
    OnCallCount::new(i64::from(n))
        .map(OnCallCount::get)
        .map_err(|_| {
            range_issue(
                "Recurrence.NumberOfOnCalls",
                i64::from(OnCallCount::MIN),
                None,
            )
        })
}

/// A monthly hand-off's day (`DayOfMonth`).
pub(crate) fn day_of_month(n: i32) -> Result<u32, FieldIssue> {
    DayOfMonth::new(i64::from(n))
        .map(|d| u32::from(d.get()))
        .map_err(|_| {
            range_issue(
                "Recurrence.MonthlySettings[0].DayOfMonth",
                i64::from(DayOfMonth::MIN),
                Some(i64::from(DayOfMonth::MAX)),
            )
        })
}

/// How many members a rotation names (`ContactIds`).
pub(crate) fn rotation_members(n: usize) -> Option<FieldIssue> {
    items_issue(
        "ContactIds",
        n,
        RotationMembers::<()>::MIN_ITEMS,
        RotationMembers::<()>::MAX_ITEMS,
    )
}

/// How many contacts an override names (`NewContactIds`).
pub(crate) fn override_members(n: usize) -> Option<FieldIssue> {
    items_issue("NewContactIds", n, 0, OverrideMembers::<()>::MAX_ITEMS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_are_worded_as_the_api_words_them() {
        let long = "x".repeat(256);
        let e = stop(Some(&long)).unwrap_err();
        assert_eq!(
            e,
            AppError::Invalid(vec![FieldIssue::new(
                "Reason",
                "must be at most 255 characters long"
            )])
        );
        assert!(stop(Some(&"x".repeat(255))).is_ok());
        assert!(stop(None).is_ok());
        let e = accept("12a456", "n").unwrap_err();
        assert_eq!(
            e,
            AppError::Invalid(vec![FieldIssue::new(
                "AcceptCode",
                "must match the pattern ^[0-9]*$"
            )])
        );
        let e = accept("12345", "").unwrap_err();
        assert_eq!(
            e,
            AppError::Invalid(vec![
                FieldIssue::new("AcceptCode", "must be at least 6 characters long"),
                FieldIssue::new("Note", "must be at least 1 character long"),
            ])
        );
        assert!(accept("123456", "ok").is_ok());
        assert_eq!(
            display_name("Ann <b>").map(|i| i.message),
            Some(format!("must match the pattern {}", DisplayName::PATTERN))
        );
        assert_eq!(display_name("Ann-Marie O. 2"), None);
    }

    #[test]
    fn numbers_and_lists_are_worded_as_the_api_words_them() {
        assert_eq!(stage_minutes(30), Ok(30));
        assert_eq!(stage_minutes(31).unwrap_err(), "must be between 0 and 30");
        assert_eq!(stage_minutes(-1).unwrap_err(), "must be between 0 and 30");
        assert_eq!(retry_minutes(60).unwrap(), 60);
        assert_eq!(
            retry_minutes(61).unwrap_err().message,
            "must be between 0 and 60"
        );
        assert_eq!(on_calls(1).unwrap(), 1);
        assert_eq!(on_calls(0).unwrap_err().message, "must be at least 1");
        assert_eq!(multiplier(100).unwrap(), 100);
        assert_eq!(
            multiplier(101).unwrap_err().message,
            "must be between 1 and 100"
        );
        assert_eq!(day_of_month(31).unwrap(), 31);
        assert_eq!(
            day_of_month(0).unwrap_err().message,
            "must be between 1 and 31"
        );
        assert_eq!(rotation_members(1), None);
        assert_eq!(rotation_members(30), None);
        assert_eq!(
            rotation_members(0).map(|i| i.message).as_deref(),
            Some("must have at least 1 item")
        );
        assert_eq!(
            rotation_members(31).map(|i| i.message).as_deref(),
            Some("must have at most 30 items")
        );
        assert_eq!(override_members(30), None);
        assert!(override_members(31).is_some());
        assert!(time_zone_id("Etc/GMT+5").is_some());
        assert_eq!(time_zone_id("Europe/Berlin"), None);
        let alias = contact("akuam", Some("Akua Mansa")).unwrap();
        assert_eq!(alias.as_str(), "akuam");
        let Err(AppError::Invalid(issues)) = contact("Not An Alias", Some("<b>")) else {
            panic!("refused")
        };
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["Alias", "DisplayName"]);
    }
}
