//! muster-core's limits ([`muster_core::limits`], and [`ContactAlias`]) against the generated
//! validation: for every newtype and every model member it says it mirrors (`MEMBERS`,
//! `Shape$Member`), `parse` accepts exactly the values the member's validation accepts. The
//! console checks forms with the newtypes; this is what keeps them and the API together.
//!
//! Each member is set on a value of its own shape whose other members are valid, so the
//! member's errors are the only ones. The shape and member names are checked too: the value
//! built must be of the named shape and carry the value under the member's wire name, and
//! every error must name that member, so a newtype listed against the wrong member (or a test
//! that sets the wrong one) fails.

use super::ssm_contacts as w;
use super::{FieldError, Validate};
use muster_core::limits::{
    AcceptCode, AcceptNote, ActivationCode, ChannelName, DayOfMonth, DisplayName,
    EngagementContent, EngagementSubject, HourOfDay, IdempotencyToken, IncidentId, MinuteOfHour,
    OnCallCount, OverrideMembers, PlanRotations, RecurrenceMultiplier, RetryMinutes,
    RotationMembers, RotationName, Sender, StageMinutes, StopReasonText, TimeZoneId,
};
use muster_core::{ChannelAddress, ChannelType, ContactAlias, ParseError};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde::Serialize;
use serde_json::{Value, json};

const CONTACT: &str = "arn:aws:ssm-contacts:us-east-1:000000000000:contact/alice";
const CHANNEL: &str = "arn:aws:ssm-contacts:us-east-1:000000000000:contact-channel/alice/00000000-0000-4000-8000-000000000001";
const ROTATION: &str =
    "arn:aws:ssm-contacts:us-east-1:000000000000:rotation/00000000-0000-4000-8000-000000000002";
const ENGAGEMENT: &str = "arn:aws:ssm-contacts:us-east-1:000000000000:engagement/alice/00000000-0000-4000-8000-000000000003";
const PAGE: &str =
    "arn:aws:ssm-contacts:us-east-1:000000000000:page/alice/00000000-0000-4000-8000-000000000004";

// ---- valid values of each shape ------------------------------------------------------------

fn create_contact() -> w::CreateContactRequest {
    w::CreateContactRequest {
        alias: Some("alice".into()),
        r#type: Some(w::ContactType::Personal),
        plan: Some(w::Plan {
            stages: Some(vec![]),
            rotation_ids: None,
        }),
        ..Default::default()
    }
}

fn update_contact() -> w::UpdateContactRequest {
    w::UpdateContactRequest {
        contact_id: Some(CONTACT.into()),
        ..Default::default()
    }
}

fn create_channel() -> w::CreateContactChannelRequest {
    w::CreateContactChannelRequest {
        contact_id: Some(CONTACT.into()),
        name: Some("work".into()),
        r#type: Some(w::ChannelType::Email),
        delivery_address: Some(w::ContactChannelAddress {
            simple_address: Some("alice@example.com".into()),
        }),
        ..Default::default()
    }
}

fn update_channel() -> w::UpdateContactChannelRequest {
    w::UpdateContactChannelRequest {
        contact_channel_id: Some(CHANNEL.into()),
        ..Default::default()
    }
}

fn recurrence() -> w::RecurrenceSettings {
    w::RecurrenceSettings {
        daily_settings: Some(vec![hand_off(9, 0)]),
        number_of_on_calls: Some(1),
        recurrence_multiplier: Some(1),
        ..Default::default()
    }
}

fn hand_off(hour_of_day: i32, minute_of_hour: i32) -> w::HandOffTime {
    w::HandOffTime {
        hour_of_day,
        minute_of_hour,
    }
}

fn create_rotation() -> w::CreateRotationRequest {
    w::CreateRotationRequest {
        name: Some("primary".into()),
        contact_ids: Some(vec![CONTACT.into()]),
        time_zone_id: Some("Europe/Berlin".into()),
        recurrence: Some(recurrence()),
        ..Default::default()
    }
}

fn update_rotation() -> w::UpdateRotationRequest {
    w::UpdateRotationRequest {
        rotation_id: Some(ROTATION.into()),
        recurrence: Some(recurrence()),
        ..Default::default()
    }
}

fn create_override() -> w::CreateRotationOverrideRequest {
    w::CreateRotationOverrideRequest {
        rotation_id: Some(ROTATION.into()),
        new_contact_ids: Some(vec![CONTACT.into()]),
        start_time: Some(super::EpochSeconds(1_700_000_000.0)),
        end_time: Some(super::EpochSeconds(1_700_003_600.0)),
        ..Default::default()
    }
}

fn start_engagement() -> w::StartEngagementRequest {
    w::StartEngagementRequest {
        contact_id: Some(CONTACT.into()),
        sender: Some("ann@example.com".into()),
        subject: Some("s".into()),
        content: Some("c".into()),
        ..Default::default()
    }
}

fn stop_engagement() -> w::StopEngagementRequest {
    w::StopEngagementRequest {
        engagement_id: Some(ENGAGEMENT.into()),
        reason: None,
    }
}

fn accept_page() -> w::AcceptPageRequest {
    w::AcceptPageRequest {
        page_id: Some(PAGE.into()),
        accept_type: Some(w::AcceptType::Read),
        accept_code: Some("123456".into()),
        ..Default::default()
    }
}

fn activate_channel() -> w::ActivateContactChannelRequest {
    w::ActivateContactChannelRequest {
        contact_channel_id: Some(CHANNEL.into()),
        activation_code: Some("123456".into()),
    }
}

// ---- one member set to a value -------------------------------------------------------------

/// The validation errors of `shape`, which the caller built with member `id` (`Shape$Member`)
/// set to `value`, after checking that it is that shape and carries `value` under that
/// member's wire name.
fn errors_of<T: Validate + Serialize>(id: &str, value: Value, shape: T) -> Vec<FieldError> {
    let (shape_name, member) = id.split_once('$').expect("a member id is Shape$Member");
    let type_name = std::any::type_name::<T>();
    assert!(
        type_name.ends_with(&format!("::{shape_name}")),
        "{id}: the value built is a {type_name}"
    );
    let json = serde_json::to_value(&shape).expect("wire values serialise");
    assert_eq!(
        json.get(member),
        Some(&value),
        "{id}: the value built does not carry the value under {member}: {json}"
    );
    shape.validation_errors()
}

/// The errors of text member `id` set to `s` (the rest of its shape valid).
fn text_errors(id: &str, s: &str) -> Vec<FieldError> {
    let v = Some(s.to_owned());
    let j = json!(s);
    match id {
        "CreateContactRequest$Alias" => errors_of(
            id,
            j,
            w::CreateContactRequest {
                alias: v,
                ..create_contact()
            },
        ),
        "CreateContactRequest$DisplayName" => errors_of(
            id,
            j,
            w::CreateContactRequest {
                display_name: v,
                ..create_contact()
            },
        ),
        "CreateContactRequest$IdempotencyToken" => errors_of(
            id,
            j,
            w::CreateContactRequest {
                idempotency_token: v,
                ..create_contact()
            },
        ),
        "UpdateContactRequest$DisplayName" => errors_of(
            id,
            j,
            w::UpdateContactRequest {
                display_name: v,
                ..update_contact()
            },
        ),
        "CreateContactChannelRequest$Name" => errors_of(
            id,
            j,
            w::CreateContactChannelRequest {
                name: v,
                ..create_channel()
            },
        ),
        "CreateContactChannelRequest$IdempotencyToken" => errors_of(
            id,
            j,
            w::CreateContactChannelRequest {
                idempotency_token: v,
                ..create_channel()
            },
        ),
        "UpdateContactChannelRequest$Name" => errors_of(
            id,
            j,
            w::UpdateContactChannelRequest {
                name: v,
                ..update_channel()
            },
        ),
        "CreateRotationRequest$Name" => errors_of(
            id,
            j,
            w::CreateRotationRequest {
                name: v,
                ..create_rotation()
            },
        ),
        "CreateRotationRequest$TimeZoneId" => errors_of(
            id,
            j,
            w::CreateRotationRequest {
                time_zone_id: v,
                ..create_rotation()
            },
        ),
        "CreateRotationRequest$IdempotencyToken" => errors_of(
            id,
            j,
            w::CreateRotationRequest {
                idempotency_token: v,
                ..create_rotation()
            },
        ),
        "UpdateRotationRequest$TimeZoneId" => errors_of(
            id,
            j,
            w::UpdateRotationRequest {
                time_zone_id: v,
                ..update_rotation()
            },
        ),
        "CreateRotationOverrideRequest$IdempotencyToken" => errors_of(
            id,
            j,
            w::CreateRotationOverrideRequest {
                idempotency_token: v,
                ..create_override()
            },
        ),
        "StartEngagementRequest$Sender" => errors_of(
            id,
            j,
            w::StartEngagementRequest {
                sender: v,
                ..start_engagement()
            },
        ),
        "StartEngagementRequest$Subject" => errors_of(
            id,
            j,
            w::StartEngagementRequest {
                subject: v,
                ..start_engagement()
            },
        ),
        "StartEngagementRequest$Content" => errors_of(
            id,
            j,
            w::StartEngagementRequest {
                content: v,
                ..start_engagement()
            },
        ),
        "StartEngagementRequest$PublicSubject" => errors_of(
            id,
            j,
            w::StartEngagementRequest {
                public_subject: v,
                ..start_engagement()
            },
        ),
        "StartEngagementRequest$PublicContent" => errors_of(
            id,
            j,
            w::StartEngagementRequest {
                public_content: v,
                ..start_engagement()
            },
        ),
        "StartEngagementRequest$IncidentId" => errors_of(
            id,
            j,
            w::StartEngagementRequest {
                incident_id: v,
                ..start_engagement()
            },
        ),
        "StartEngagementRequest$IdempotencyToken" => errors_of(
            id,
            j,
            w::StartEngagementRequest {
                idempotency_token: v,
                ..start_engagement()
            },
        ),
        "StopEngagementRequest$Reason" => errors_of(
            id,
            j,
            w::StopEngagementRequest {
                reason: v,
                ..stop_engagement()
            },
        ),
        "AcceptPageRequest$Note" => errors_of(
            id,
            j,
            w::AcceptPageRequest {
                note: v,
                ..accept_page()
            },
        ),
        "AcceptPageRequest$AcceptCode" => errors_of(
            id,
            j,
            w::AcceptPageRequest {
                accept_code: v,
                ..accept_page()
            },
        ),
        "ActivateContactChannelRequest$ActivationCode" => errors_of(
            id,
            j,
            w::ActivateContactChannelRequest {
                activation_code: v,
                ..activate_channel()
            },
        ),
        other => panic!("no shape to set text member {other} on: add one here"),
    }
}

/// The errors of integer member `id` set to `n` (the rest of its shape valid).
fn int_errors(id: &str, n: i32) -> Vec<FieldError> {
    let j = json!(n);
    match id {
        "Stage$DurationInMinutes" => errors_of(
            id,
            j,
            w::Stage {
                duration_in_minutes: Some(n),
                targets: Some(vec![]),
            },
        ),
        "ChannelTargetInfo$RetryIntervalInMinutes" => errors_of(
            id,
            j,
            w::ChannelTargetInfo {
                contact_channel_id: Some(CHANNEL.into()),
                retry_interval_in_minutes: Some(n),
            },
        ),
        "RecurrenceSettings$NumberOfOnCalls" => errors_of(
            id,
            j,
            w::RecurrenceSettings {
                number_of_on_calls: Some(n),
                ..recurrence()
            },
        ),
        "RecurrenceSettings$RecurrenceMultiplier" => errors_of(
            id,
            j,
            w::RecurrenceSettings {
                recurrence_multiplier: Some(n),
                ..recurrence()
            },
        ),
        "MonthlySetting$DayOfMonth" => errors_of(
            id,
            j,
            w::MonthlySetting {
                day_of_month: Some(n),
                hand_off_time: Some(hand_off(9, 0)),
            },
        ),
        "HandOffTime$HourOfDay" => errors_of(id, j, hand_off(n, 0)),
        "HandOffTime$MinuteOfHour" => errors_of(id, j, hand_off(9, n)),
        other => panic!("no shape to set integer member {other} on: add one here"),
    }
}

/// The errors of list member `id` set to `n` contact ARNs (the rest of its shape valid).
fn list_errors(id: &str, n: usize) -> Vec<FieldError> {
    let list = vec![CONTACT.to_owned(); n];
    let j = json!(list);
    match id {
        "CreateRotationRequest$ContactIds" => errors_of(
            id,
            j,
            w::CreateRotationRequest {
                contact_ids: Some(list),
                ..create_rotation()
            },
        ),
        "UpdateRotationRequest$ContactIds" => errors_of(
            id,
            j,
            w::UpdateRotationRequest {
                contact_ids: Some(list),
                ..update_rotation()
            },
        ),
        "CreateRotationOverrideRequest$NewContactIds" => errors_of(
            id,
            j,
            w::CreateRotationOverrideRequest {
                new_contact_ids: Some(list),
                ..create_override()
            },
        ),
        "Plan$RotationIds" => errors_of(
            id,
            j,
            w::Plan {
                stages: Some(vec![]),
                rotation_ids: Some(list),
            },
        ),
        other => panic!("no shape to set list member {other} on: add one here"),
    }
}

/// The newtype's verdict is the member's: accepted exactly when the validation found nothing,
/// and whatever it found is about that member.
fn same_verdict(
    id: &str,
    shown: &dyn std::fmt::Debug,
    parsed: Result<(), ParseError>,
    errors: &[FieldError],
) -> Result<(), TestCaseError> {
    let member = id.split_once('$').map_or(id, |(_, m)| m);
    for e in errors {
        prop_assert_eq!(
            e.name.as_str(),
            member,
            "{}: an error about another member for {:?}: {:?}",
            id,
            shown,
            e
        );
    }
    prop_assert_eq!(
        parsed.is_ok(),
        errors.is_empty(),
        "{}: for {:?} the newtype says {:?}, the model says {:?}",
        id,
        shown,
        parsed,
        errors
    );
    Ok(())
}

/// Every text newtype: its `parse`, its members, its length limits, its pattern.
type TextLimit = (
    fn(&str) -> Result<(), ParseError>,
    &'static [&'static str],
    usize,
    usize,
    &'static str,
);

macro_rules! text_limit {
    ($ty:ty) => {
        (
            (|s: &str| <$ty>::parse(s).map(drop)) as fn(&str) -> Result<(), ParseError>,
            <$ty>::MEMBERS,
            <$ty>::MIN_CHARS,
            <$ty>::MAX_CHARS,
            <$ty>::PATTERN,
        )
    };
}

fn text_limits() -> Vec<TextLimit> {
    vec![
        text_limit!(ContactAlias),
        text_limit!(DisplayName),
        text_limit!(ChannelName),
        text_limit!(RotationName),
        text_limit!(TimeZoneId),
        text_limit!(Sender),
        text_limit!(IncidentId),
        text_limit!(EngagementSubject),
        text_limit!(EngagementContent),
        text_limit!(StopReasonText),
        text_limit!(AcceptNote),
        text_limit!(ActivationCode),
        text_limit!(AcceptCode),
        text_limit!(IdempotencyToken),
    ]
}

/// Every integer newtype: `new`, `parse`, its members, its range.
type IntLimit = (
    fn(i64) -> Result<(), ParseError>,
    fn(&str) -> Result<(), ParseError>,
    &'static [&'static str],
    i64,
    i64,
);

macro_rules! int_limit {
    ($ty:ty) => {
        (
            (|n: i64| <$ty>::new(n).map(drop)) as fn(i64) -> Result<(), ParseError>,
            (|s: &str| <$ty>::parse(s).map(drop)) as fn(&str) -> Result<(), ParseError>,
            <$ty>::MEMBERS,
            i64::from(<$ty>::MIN),
            i64::from(<$ty>::MAX),
        )
    };
}

fn int_limits() -> Vec<IntLimit> {
    vec![
        int_limit!(StageMinutes),
        int_limit!(RetryMinutes),
        int_limit!(OnCallCount),
        int_limit!(RecurrenceMultiplier),
        int_limit!(DayOfMonth),
        int_limit!(HourOfDay),
        int_limit!(MinuteOfHour),
    ]
}

fn check_int(limit: &IntLimit, n: i32) -> Result<(), TestCaseError> {
    let (new, parse, members, _, _) = limit;
    for id in *members {
        let errors = int_errors(id, n);
        same_verdict(id, &n, new(i64::from(n)), &errors)?;
        same_verdict(id, &n, parse(&n.to_string()), &errors)?;
    }
    Ok(())
}

fn check_text(limit: &TextLimit, s: &str) -> Result<(), TestCaseError> {
    let (parse, members, _, _, pattern) = limit;
    for id in *members {
        let errors = text_errors(id, s);
        same_verdict(id, &s, parse(s), &errors)?;
        // The pattern the newtype quotes (the console words its refusals with it) is the one
        // the API quotes.
        let quoted = format!("must match the pattern {pattern}");
        for e in errors
            .iter()
            .filter(|e| e.message.starts_with("must match"))
        {
            prop_assert_eq!(
                &e.message,
                &quoted,
                "{}: the pattern quoted for {:?}",
                id,
                s
            );
        }
    }
    Ok(())
}

// ---- deterministic edges -------------------------------------------------------------------

/// A property's failure, in a plain test.
fn must(r: Result<(), TestCaseError>) {
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// No member is claimed by two newtypes, and every one has a shape here (an unknown id
/// panics in `*_errors`).
#[test]
fn each_member_has_one_newtype() {
    let mut all: Vec<&str> = Vec::new();
    for (_, members, _, _, _) in text_limits() {
        for id in members {
            text_errors(id, "0");
            all.push(id);
        }
    }
    for (_, _, members, _, _) in int_limits() {
        for id in members {
            int_errors(id, 0);
            all.push(id);
        }
    }
    for id in RotationMembers::<String>::MEMBERS
        .iter()
        .chain(OverrideMembers::<String>::MEMBERS)
        .chain(PlanRotations::<String>::MEMBERS)
    {
        list_errors(id, 1);
        all.push(id);
    }
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "a member listed twice: {all:?}");
}

/// The valid shapes really are valid.
#[test]
fn the_other_members_are_valid() {
    assert_eq!(create_contact().validation_errors(), []);
    assert_eq!(update_contact().validation_errors(), []);
    assert_eq!(create_channel().validation_errors(), []);
    assert_eq!(update_channel().validation_errors(), []);
    assert_eq!(create_rotation().validation_errors(), []);
    assert_eq!(update_rotation().validation_errors(), []);
    assert_eq!(create_override().validation_errors(), []);
    assert_eq!(start_engagement().validation_errors(), []);
    assert_eq!(stop_engagement().validation_errors(), []);
    assert_eq!(accept_page().validation_errors(), []);
    assert_eq!(activate_channel().validation_errors(), []);
}

/// Lengths min-1 ..= max+1 at the edges, of a character every member allows (`0`) and of a
/// two-byte letter (lengths are characters, not bytes).
#[test]
fn text_lengths_at_the_edges() {
    for limit in text_limits() {
        let (_, _, min, max, _) = limit;
        let lengths = [min.saturating_sub(1), min, min + 1, max - 1, max, max + 1];
        for n in lengths {
            for c in ["0", "é"] {
                must(check_text(&limit, &c.repeat(n)));
            }
        }
    }
}

/// Each character alone (repeated to the shortest length allowed, so only the character can be
/// refused): every one up to U+3000 (which holds all ASCII, all of Unicode's white space and
/// the scripts' first blocks), every 257th above, and the special ones the properties use.
#[test]
fn every_character_on_its_own() {
    let chars = ('\0'..='\u{3000}')
        .chain(('\u{3001}'..=char::MAX).step_by(257))
        .chain(SPECIAL.iter().copied());
    let limits = text_limits();
    for c in chars {
        for limit in &limits {
            let (_, _, min, _, _) = limit;
            must(check_text(limit, &c.to_string().repeat((*min).max(1))));
        }
    }
}

/// Every integer from min-100 to max+100 (capped to the wire's i32), and the extremes.
#[test]
fn integers_around_the_range() {
    for limit in int_limits() {
        let (_, _, _, min, max) = limit;
        let near = (min - 100..=min + 100).chain(max.saturating_sub(100)..=max.saturating_add(100));
        for n in near.chain([i64::from(i32::MIN), i64::from(i32::MAX)]) {
            if let Ok(n) = i32::try_from(n) {
                must(check_int(&limit, n));
            }
        }
    }
}

/// List lengths 0 to 40.
#[test]
fn member_counts() {
    let contacts = |n: usize| vec![CONTACT.to_owned(); n];
    for n in 0..=40 {
        for id in RotationMembers::<String>::MEMBERS {
            let errors = list_errors(id, n);
            let parsed = RotationMembers::parse(contacts(n)).map(drop);
            must(same_verdict(id, &n, parsed, &errors));
        }
        for id in OverrideMembers::<String>::MEMBERS {
            let errors = list_errors(id, n);
            let parsed = OverrideMembers::parse(contacts(n)).map(drop);
            must(same_verdict(id, &n, parsed, &errors));
        }
        for id in PlanRotations::<String>::MEMBERS {
            let errors = list_errors(id, n);
            let parsed = PlanRotations::parse(contacts(n)).map(drop);
            must(same_verdict(id, &n, parsed, &errors));
        }
    }
}

/// The longest addresses `ChannelAddress` accepts (an e-mail address of 254 characters, an
/// E.164 number of 15 digits) are `SimpleAddress`es too.
#[test]
fn longest_channel_addresses_fit_the_model() {
    let domain = format!("{}.{}.{}", "d".repeat(63), "d".repeat(63), "d".repeat(61));
    let email = format!("{}@{domain}", "l".repeat(64));
    assert_eq!(email.chars().count(), 254);
    for (t, s) in [
        (ChannelType::Email, email.as_str()),
        (ChannelType::Sms, "+123456789012345"),
        (ChannelType::Voice, "+123456789012345"),
    ] {
        assert!(ChannelAddress::parse(t, s).is_ok(), "{t:?} {s}");
        assert_eq!(address_errors(s), [], "{s}");
    }
}

fn address_errors(s: &str) -> Vec<FieldError> {
    w::CreateContactChannelRequest {
        delivery_address: Some(w::ContactChannelAddress {
            simple_address: Some(s.to_owned()),
        }),
        ..create_channel()
    }
    .validation_errors()
}

// ---- properties ----------------------------------------------------------------------------

/// Characters the rules tell apart: ASCII (letters, digits, every punctuation mark, space),
/// ASCII and C1 controls, Unicode white space and separators, format characters, letters,
/// numbers and marks of other scripts, symbols, and any character at all.
const SPECIAL: &[char] = &[
    '\t',
    '\n',
    '\r',
    '\u{b}',
    '\u{c}',
    '\0',
    '\u{1b}',
    '\u{7f}',
    '\u{85}',
    '\u{a0}',
    '\u{1680}',
    '\u{2000}',
    '\u{2007}',
    '\u{200a}',
    '\u{2028}',
    '\u{2029}',
    '\u{202f}',
    '\u{205f}',
    '\u{3000}',
    '\u{feff}',
    '\u{200b}',
    '\u{200d}',
    '\u{180e}',
    '\u{ad}',
    'é',
    'ß',
    'Ø',
    'ж',
    'Ω',
    '中',
    'ا',
    'ǅ',
    'ʰ',
    'ª',
    '٣',
    '०',
    '０',
    '９',
    'Ⅻ',
    '½',
    '²',
    '\u{301}',
    '\u{20dd}',
    '😀',
    '€',
    '©',
    '“',
    '\u{10ffff}',
    '\u{e000}',
    '\u{93e}',
    '\u{345}',
    'Ⓐ',
    'ⓩ',
    '\u{16ee}',
];

fn interesting_char() -> impl Strategy<Value = char> {
    let ascii: Vec<char> = (' '..='~').collect();
    prop_oneof![
        4 => select(ascii),
        3 => select(SPECIAL),
        1 => any::<char>(),
    ]
}

/// Strings of lengths near `min` and `max` (or anywhere up to just past `max`): one character
/// repeated, often one every rule allows, with up to three others put in; or a few characters
/// of anything.
fn text_around(min: usize, max: usize) -> impl Strategy<Value = String> {
    let edges = vec![
        0,
        1,
        2,
        min.saturating_sub(1),
        min,
        min + 1,
        max - 1,
        max,
        max + 1,
        max + 2,
    ];
    let len = prop_oneof![2 => select(edges), 1 => 0..=max + 3];
    let base = prop_oneof![
        3 => select(vec!['0', '7', 'a', 'Z', '_', '-', '.', ' ']),
        1 => interesting_char(),
    ];
    let shaped = (
        len,
        base,
        proptest::collection::vec((any::<Index>(), interesting_char()), 0..=3),
    )
        .prop_map(|(n, base, others)| {
            let mut chars = vec![base; n];
            for (at, c) in others {
                if n > 0 {
                    chars[at.index(n)] = c;
                }
            }
            chars.into_iter().collect::<String>()
        });
    let loose = proptest::collection::vec(interesting_char(), 0..=12)
        .prop_map(|chars| chars.into_iter().collect::<String>());
    prop_oneof![3 => shaped, 1 => loose]
}

/// Integers at and near `min` and `max`, in between, and anywhere in the wire's i32.
fn int_around(min: i64, max: i64) -> impl Strategy<Value = i32> {
    let edges: Vec<i32> = [
        i64::from(i32::MIN),
        -1,
        0,
        1,
        min - 1,
        min,
        min + 1,
        max - 1,
        max,
        max + 1,
        i64::from(i32::MAX),
    ]
    .into_iter()
    .filter_map(|n| i32::try_from(n).ok())
    .collect();
    let lo = i32::try_from(min - 3).unwrap_or(i32::MIN);
    let hi = i32::try_from(max.saturating_add(3)).unwrap_or(i32::MAX);
    prop_oneof![2 => select(edges), 2 => lo..=hi, 1 => any::<i32>()]
}

fn e164() -> impl Strategy<Value = String> {
    "\\+[0-9]{5,17}"
}

fn email_like() -> impl Strategy<Value = String> {
    "[a-z0-9.+_'-]{1,66}@([a-z0-9-]{1,64}\\.){1,4}[a-z]{1,70}"
}

macro_rules! text_parity {
    ($($test:ident: $index:expr;)+) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            $(
                #[test]
                fn $test(s in {
                    let (_, _, min, max, _) = text_limits()[$index];
                    text_around(min, max)
                }) {
                    check_text(&text_limits()[$index], &s)?;
                }
            )+
        }
    };
}

// Indexes into `text_limits()`.
text_parity! {
    contact_alias_matches_alias: 0;
    display_name_matches_display_name: 1;
    channel_name_matches_name: 2;
    rotation_name_matches_name: 3;
    time_zone_id_matches_time_zone_id: 4;
    sender_matches_sender: 5;
    incident_id_matches_incident_id: 6;
    engagement_subject_matches_subjects: 7;
    engagement_content_matches_contents: 8;
    stop_reason_text_matches_reason: 9;
    accept_note_matches_note: 10;
    activation_code_matches_activation_code: 11;
    accept_code_matches_accept_code: 12;
    idempotency_token_matches_idempotency_tokens: 13;
}

macro_rules! int_parity {
    ($($test:ident: $index:expr;)+) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            $(
                #[test]
                fn $test(n in {
                    let (_, _, _, min, max) = int_limits()[$index];
                    int_around(min, max)
                }) {
                    check_int(&int_limits()[$index], n)?;
                }
            )+
        }
    };
}

// Indexes into `int_limits()`.
int_parity! {
    stage_minutes_match_duration_in_minutes: 0;
    retry_minutes_match_retry_interval: 1;
    on_call_count_matches_number_of_on_calls: 2;
    recurrence_multiplier_matches_recurrence_multiplier: 3;
    day_of_month_matches_day_of_month: 4;
    hour_of_day_matches_hour_of_day: 5;
    minute_of_hour_matches_minute_of_hour: 6;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `ChannelAddress` is stricter than the model's `SimpleAddress` (1 to 320 characters,
    /// nothing more): whatever it accepts, the model accepts.
    #[test]
    fn channel_addresses_are_simple_addresses(
        s in prop_oneof![e164(), email_like(), text_around(1, 320)],
        t in select(vec![ChannelType::Email, ChannelType::Sms, ChannelType::Voice]),
    ) {
        if ChannelAddress::parse(t, &s).is_ok() {
            let errors = address_errors(&s);
            prop_assert!(errors.is_empty(), "{:?} {:?}: {:?}", t, s, errors);
        }
    }
}
