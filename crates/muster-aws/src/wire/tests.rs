//! Tests of the wire layer: generated validation, dispatch, timestamps.

use super::ssm_contacts::*;
use super::{EpochSeconds, FieldError, Validate};
use crate::context::RequestContext;
use crate::error::{ApiError, ValidationReason};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

const ARN: &str = "arn:aws:ssm-contacts:us-east-1:000000000000:contact/alice";

/// Runs a future that never waits on I/O (the handlers here answer at once).
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

fn ctx() -> RequestContext {
    RequestContext {
        account: muster_core::AccountId::parse("000000000000").expect("account id"),
        region: muster_core::Region::parse("us-east-1").expect("region"),
        request_id: "test".into(),
        access_key_id: "AKIDEXAMPLE".into(),
    }
}

/// Implements nothing: every operation answers the default "not implemented".
struct Nothing;
impl SsmContacts for Nothing {}

/// Implements CreateContact (echoing what it got) and GetContact (returning a fixed contact).
struct Echo;
impl SsmContacts for Echo {
    async fn create_contact(
        &self,
        _ctx: &RequestContext,
        input: CreateContactRequest,
    ) -> Result<CreateContactResult, ApiError> {
        Ok(CreateContactResult {
            contact_arn: Some(format!(
                "arn:aws:ssm-contacts:us-east-1:000000000000:contact/{}",
                input.alias.unwrap_or_default()
            )),
        })
    }

    async fn get_contact(
        &self,
        _ctx: &RequestContext,
        _input: GetContactRequest,
    ) -> Result<GetContactResult, ApiError> {
        Ok(GetContactResult {
            contact_arn: Some(ARN.into()),
            alias: Some("alice".into()),
            display_name: None,
            r#type: Some(ContactType::Personal),
            plan: Some(Plan {
                stages: Some(vec![]),
                rotation_ids: None,
            }),
        })
    }
}

fn run(handler: &impl SsmContacts, op: Operation, body: &[u8]) -> Result<Value, ApiError> {
    block_on(dispatch(handler, &ctx(), op, body))
}

fn field_names(e: &ApiError) -> Vec<String> {
    match e {
        ApiError::Validation { fields, .. } => fields.iter().map(|f| f.name.clone()).collect(),
        other => panic!("expected a ValidationException, got {other:?}"),
    }
}

fn valid_create() -> Value {
    json!({
        "Alias": "alice",
        "DisplayName": "Alice Liddell",
        "Type": "PERSONAL",
        "Plan": {"Stages": [{
            "DurationInMinutes": 5,
            "Targets": [{"ChannelTargetInfo": {
                "ContactChannelId": "arn:aws:ssm-contacts:us-east-1:000000000000:contact-channel/alice/1234",
                "RetryIntervalInMinutes": 1
            }}]
        }]}
    })
}

fn create_request(v: Value) -> CreateContactRequest {
    serde_json::from_value(v).expect("deserialises")
}

// --- generated validation -------------------------------------------------------------------

#[test]
fn a_valid_request_has_no_errors() {
    assert_eq!(create_request(valid_create()).validation_errors(), vec![]);
}

#[test]
fn bad_alias_and_too_long_display_name() {
    let mut v = valid_create();
    v["Alias"] = json!("Alice!");
    v["DisplayName"] = json!("é".repeat(256));
    assert_eq!(
        create_request(v).validation_errors(),
        vec![
            FieldError::new("Alias", "must match the pattern ^[a-z0-9_\\-]*$"),
            FieldError::new("DisplayName", "must be at most 255 characters long"),
        ]
    );
    // Length counts characters, not bytes: 255 two-byte characters are fine.
    let mut v = valid_create();
    v["DisplayName"] = json!("é".repeat(255));
    assert_eq!(create_request(v).validation_errors(), vec![]);
}

#[test]
fn empty_alias_is_too_short() {
    let mut v = valid_create();
    v["Alias"] = json!("");
    assert_eq!(
        create_request(v).validation_errors(),
        vec![FieldError::new(
            "Alias",
            "must be at least 1 character long"
        )]
    );
}

#[test]
fn missing_required_members() {
    let req = create_request(json!({"Alias": "bob"}));
    assert_eq!(
        req.validation_errors(),
        vec![FieldError::required("Type"), FieldError::required("Plan")]
    );
}

#[test]
fn nested_paths() {
    let mut v = valid_create();
    v["Plan"]["Stages"] = json!([
        {"DurationInMinutes": 31, "Targets": []},
        {"DurationInMinutes": 0, "Targets": [
            {"ContactTargetInfo": {"ContactId": "not-an-arn", "IsEssential": true}},
            {"ContactTargetInfo": {"ContactId": ARN}},
            {"ChannelTargetInfo": {"ContactChannelId": ARN, "RetryIntervalInMinutes": 61}}
        ]}
    ]);
    let errors = create_request(v).validation_errors();
    assert_eq!(
        errors,
        vec![
            FieldError::new(
                "Plan.Stages[0].DurationInMinutes",
                "must be between 0 and 30"
            ),
            FieldError::new(
                "Plan.Stages[1].Targets[0].ContactTargetInfo.ContactId",
                "must match the pattern ^arn:(aws|aws-cn|aws-us-gov):ssm-contacts:[-\\w+=\\/,.@]*:[0-9]+:([\\w+=\\/,.@:-]+)*$"
            ),
            FieldError::required("Plan.Stages[1].Targets[1].ContactTargetInfo.IsEssential"),
            FieldError::new(
                "Plan.Stages[1].Targets[2].ChannelTargetInfo.RetryIntervalInMinutes",
                "must be between 0 and 60"
            ),
        ]
    );
}

#[test]
fn list_items_and_list_lengths() {
    let rotation = |ids: Value| -> CreateRotationRequest {
        serde_json::from_value(json!({
            "Name": "primary",
            "ContactIds": ids,
            "TimeZoneId": "Europe/Paris",
            "Recurrence": {"NumberOfOnCalls": 1, "RecurrenceMultiplier": 1, "DailySettings": [{"HourOfDay": 9}]}
        }))
        .expect("deserialises")
    };
    assert_eq!(rotation(json!([ARN, ARN])).validation_errors(), vec![]);
    let errors = rotation(json!([ARN, ARN, "arn:aws:s3:::bucket"])).validation_errors();
    assert_eq!(
        field_names(&ApiError::validation(errors)),
        ["ContactIds[2]"]
    );
    assert_eq!(
        rotation(json!([])).validation_errors(),
        vec![FieldError::new("ContactIds", "must have at least 1 item")]
    );
    let many: Vec<&str> = vec![ARN; 31];
    assert_eq!(
        rotation(json!(many)).validation_errors(),
        vec![FieldError::new("ContactIds", "must have at most 30 items")]
    );
}

#[test]
fn map_paths_and_defaults() {
    let req: CreateRotationRequest = serde_json::from_value(json!({
        "Name": "primary",
        "ContactIds": [ARN],
        "TimeZoneId": "UTC",
        "Recurrence": {
            "NumberOfOnCalls": 0,
            "RecurrenceMultiplier": 1,
            "ShiftCoverages": {"MON": [{"Start": {"HourOfDay": 24}, "End": {"MinuteOfHour": 30}}]}
        }
    }))
    .expect("deserialises");
    // HourOfDay/MinuteOfHour have model defaults: absent means 0, never "missing".
    let end = &req
        .recurrence
        .as_ref()
        .unwrap()
        .shift_coverages
        .as_ref()
        .unwrap()[&DayOfWeek::Mon][0]
        .end;
    assert_eq!(
        end.as_ref().map(|e| (e.hour_of_day, e.minute_of_hour)),
        Some((0, 30))
    );
    assert_eq!(
        req.validation_errors(),
        vec![
            FieldError::new("Recurrence.NumberOfOnCalls", "must be at least 1"),
            FieldError::new(
                "Recurrence.ShiftCoverages.MON[0].Start.HourOfDay",
                "must be between 0 and 23"
            ),
        ]
    );
}

#[test]
fn patterns_are_searches_not_full_matches() {
    // `Member` is `\S`: any string with one non-space character, not exactly one character.
    let req: ListPreviewRotationShiftsRequest = serde_json::from_value(json!({
        "EndTime": 1700000000,
        "Members": ["  alice  ", "   "],
        "TimeZoneId": "UTC",
        "Recurrence": {"NumberOfOnCalls": 1, "RecurrenceMultiplier": 1}
    }))
    .expect("deserialises");
    assert_eq!(
        req.validation_errors(),
        vec![FieldError::new("Members[1]", "must match the pattern \\S")]
    );
}

#[test]
fn arn_pattern_is_ascii_like_ecma_script() {
    // ECMA-262 `\w` is [A-Za-z0-9_]; the regex crate's is Unicode. The generator rewrites it.
    let req = DeleteContactRequest {
        contact_id: Some("arn:aws:ssm-contacts:us-east-1:000000000000:contact/élise".into()),
    };
    assert_eq!(
        field_names(&ApiError::validation(req.validation_errors())),
        ["ContactId"]
    );
}

#[test]
fn enums_serialise_as_their_wire_values() {
    assert_eq!(ContactType::OncallSchedule.as_str(), "ONCALL_SCHEDULE");
    assert_eq!(ActivationStatus::NotActivated.to_string(), "NOT_ACTIVATED");
    assert_eq!(
        ContactType::VALUES,
        &["PERSONAL", "ESCALATION", "ONCALL_SCHEDULE"]
    );
    assert_eq!(DayOfWeek::from_value("SUN"), Some(DayOfWeek::Sun));
    assert_eq!(DayOfWeek::from_value("sun"), None);
    assert_eq!(json!(ChannelType::Sms), json!("SMS"));
    let shift = ShiftCoverages::from([
        (DayOfWeek::Tue, vec![]),
        (DayOfWeek::Mon, vec![CoverageTime::default()]),
    ]);
    assert_eq!(
        serde_json::to_value(&shift).unwrap(),
        json!({"MON": [{}], "TUE": []}),
        "enum keys are object keys, in day order"
    );
}

type ShiftCoverages = std::collections::BTreeMap<DayOfWeek, Vec<CoverageTime>>;

#[test]
fn operations_round_trip_their_names() {
    assert_eq!(Operation::ALL.len(), 39);
    for op in Operation::ALL {
        assert_eq!(Operation::from_name(op.name()), Some(*op));
    }
    assert_eq!(
        Operation::from_name("CreateContact"),
        Some(Operation::CreateContact)
    );
    assert_eq!(Operation::from_name("createContact"), None);
    assert_eq!(TARGET_PREFIX, "SSMContacts.");
}

// --- dispatch -------------------------------------------------------------------------------

#[test]
fn dispatch_calls_the_handler_and_serialises_the_result() {
    let body = serde_json::to_vec(&valid_create()).unwrap();
    assert_eq!(
        run(&Echo, Operation::CreateContact, &body).unwrap(),
        json!({"ContactArn": "arn:aws:ssm-contacts:us-east-1:000000000000:contact/alice"})
    );
    let got = run(
        &Echo,
        Operation::GetContact,
        format!(r#"{{"ContactId": "{ARN}"}}"#).as_bytes(),
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"ContactArn": ARN, "Alias": "alice", "Type": "PERSONAL", "Plan": {"Stages": []}})
    );
}

/// The dispatch future must be `Send` for any handler, or axum cannot serve it.
#[test]
fn dispatch_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    fn generic<H: SsmContacts>(h: &H) {
        let ctx = ctx();
        let fut = dispatch(h, &ctx, Operation::CreateContact, b"{}");
        assert_send(&fut);
    }
    generic(&Nothing);
    generic(&Echo);
}

#[test]
fn unimplemented_operations_are_400() {
    let err = run(
        &Nothing,
        Operation::CreateContact,
        &serde_json::to_vec(&valid_create()).unwrap(),
    )
    .unwrap_err();
    assert_eq!(err, ApiError::not_implemented("CreateContact"));
    assert_eq!(err.status().as_u16(), 400);
}

#[test]
fn unknown_enum_value_is_a_field_error() {
    let mut v = valid_create();
    v["Type"] = json!("FOO");
    let err = run(
        &Echo,
        Operation::CreateContact,
        &serde_json::to_vec(&v).unwrap(),
    )
    .unwrap_err();
    let ApiError::Validation { reason, fields, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*reason, ValidationReason::FieldValidationFailed);
    assert_eq!(fields.len(), 1);
    assert_eq!(fields[0].name, "Type");
    assert!(
        fields[0]
            .message
            .contains("unknown variant `FOO`, expected one of `PERSONAL`"),
        "{}",
        fields[0].message
    );
}

#[test]
fn wrong_types_name_the_nested_member() {
    let mut v = valid_create();
    v["Plan"]["Stages"][0]["DurationInMinutes"] = json!("five");
    let err = run(
        &Echo,
        Operation::CreateContact,
        &serde_json::to_vec(&v).unwrap(),
    )
    .unwrap_err();
    assert_eq!(field_names(&err), ["Plan.Stages[0].DurationInMinutes"]);

    let mut v = valid_create();
    v["Plan"]["Stages"][0]["Targets"][0]["ChannelTargetInfo"]["RetryIntervalInMinutes"] =
        json!(1.5);
    let err = run(
        &Echo,
        Operation::CreateContact,
        &serde_json::to_vec(&v).unwrap(),
    )
    .unwrap_err();
    assert_eq!(
        field_names(&err),
        ["Plan.Stages[0].Targets[0].ChannelTargetInfo.RetryIntervalInMinutes"]
    );

    let err = run(
        &Echo,
        Operation::CreateRotationOverride,
        br#"{"RotationId": "x", "NewContactIds": [], "StartTime": "2024-01-01", "EndTime": 1}"#,
    )
    .unwrap_err();
    assert_eq!(field_names(&err), ["StartTime"]);
}

#[test]
fn constraint_errors_come_back_through_dispatch() {
    let err = run(
        &Echo,
        Operation::CreateContact,
        br#"{"Alias": "Bad Alias"}"#,
    )
    .unwrap_err();
    assert_eq!(field_names(&err), ["Alias", "Type", "Plan"]);
    assert!(
        err.message()
            .starts_with("3 validation errors detected: Value at 'Alias'")
    );
}

#[test]
fn empty_body_is_an_empty_object() {
    // ListContacts has no required member: an empty body reaches the handler.
    assert_eq!(
        run(&Nothing, Operation::ListContacts, b"").unwrap_err(),
        ApiError::not_implemented("ListContacts")
    );
    assert_eq!(
        run(&Nothing, Operation::ListContacts, b"  \n").unwrap_err(),
        ApiError::not_implemented("ListContacts")
    );
    // GetContact requires ContactId: an empty body is a field error, not a parse error.
    assert_eq!(
        field_names(&run(&Echo, Operation::GetContact, b"").unwrap_err()),
        ["ContactId"]
    );
}

#[test]
fn non_objects_cannot_be_parsed() {
    for body in [
        &b"[]"[..],
        b"[1, 2]",
        b"null",
        b"\"x\"",
        b"42",
        b"{",
        b"{\"Alias\": }",
        b"\xff\xfe",
        b"{} {}",
    ] {
        let err = run(&Echo, Operation::ListContacts, body).unwrap_err();
        let ApiError::Validation {
            reason,
            fields,
            message,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(
            *reason,
            ValidationReason::CannotParse,
            "{body:?}: {message}"
        );
        assert!(fields.is_empty());
    }
    let err = run(&Echo, Operation::ListContacts, b"[]").unwrap_err();
    assert_eq!(
        err.message(),
        "the request body must be a JSON object, not an array"
    );
}

#[test]
fn unknown_members_are_ignored() {
    let body = format!(r#"{{"ContactId": "{ARN}", "SomethingNew": [1, 2, 3]}}"#);
    assert!(run(&Echo, Operation::GetContact, body.as_bytes()).is_ok());
}

// --- timestamps -----------------------------------------------------------------------------

#[test]
fn epoch_seconds_round_trip() {
    let whole: EpochSeconds = serde_json::from_str("1700000000").unwrap();
    assert_eq!(whole, EpochSeconds(1_700_000_000.0));
    assert_eq!(serde_json::to_string(&whole).unwrap(), "1700000000");

    let frac: EpochSeconds = serde_json::from_str("1621362341.151").unwrap();
    assert_eq!(serde_json::to_string(&frac).unwrap(), "1621362341.151");
    assert_eq!(frac.to_millis(), Some(1_621_362_341_151));
    assert_eq!(EpochSeconds::from_millis(1_621_362_341_151), frac);

    let exp: EpochSeconds = serde_json::from_str("1.621362341151E9").unwrap();
    assert_eq!(exp, frac);
    assert_eq!(serde_json::to_string(&EpochSeconds(-1.5)).unwrap(), "-1.5");

    let ts = frac.to_timestamp().unwrap();
    assert_eq!(ts.to_string(), "2021-05-18T18:25:41.151Z");
    assert_eq!(EpochSeconds::from(ts), frac);
}

#[test]
fn epoch_seconds_rejects_non_numbers() {
    for bad in [r#""1700000000""#, "true", "null", "[]", "1e400"] {
        assert!(serde_json::from_str::<EpochSeconds>(bad).is_err(), "{bad}");
    }
    let err = serde_json::from_str::<EpochSeconds>(r#""2024-01-01""#)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a timestamp as a JSON number of seconds since the Unix epoch"),
        "{err}"
    );
    assert!(serde_json::to_string(&EpochSeconds(f64::NAN)).is_err());
    assert!(serde_json::to_string(&EpochSeconds(f64::INFINITY)).is_err());
    assert_eq!(EpochSeconds(f64::NAN).to_millis(), None);
    assert_eq!(EpochSeconds(1e300).to_millis(), None);
    assert_eq!(EpochSeconds(1e300).to_timestamp(), None);
}

proptest! {
    #[test]
    fn millis_round_trip(ms in -8_000_000_000_000i64..8_000_000_000_000i64) {
        prop_assert_eq!(EpochSeconds::from_millis(ms).to_millis(), Some(ms));
        let json = serde_json::to_string(&EpochSeconds::from_millis(ms)).unwrap();
        let back: EpochSeconds = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.to_millis(), Some(ms));
    }
}

// --- dispatch never panics and only answers 4xx to bad input ---------------------------------

/// Member names of the model, so random objects often hit real members.
const KEYS: &[&str] = &[
    "Alias",
    "DisplayName",
    "Type",
    "Plan",
    "Stages",
    "DurationInMinutes",
    "Targets",
    "ChannelTargetInfo",
    "ContactTargetInfo",
    "ContactChannelId",
    "RetryIntervalInMinutes",
    "ContactId",
    "IsEssential",
    "RotationIds",
    "Tags",
    "Key",
    "Value",
    "IdempotencyToken",
    "Name",
    "DeliveryAddress",
    "SimpleAddress",
    "ContactIds",
    "StartTime",
    "EndTime",
    "TimeZoneId",
    "Recurrence",
    "NumberOfOnCalls",
    "RecurrenceMultiplier",
    "ShiftCoverages",
    "MON",
    "Start",
    "End",
    "HourOfDay",
    "MinuteOfHour",
    "DailySettings",
    "WeeklySettings",
    "DayOfWeek",
    "HandOffTime",
    "MonthlySettings",
    "DayOfMonth",
    "MaxResults",
    "NextToken",
    "PageId",
    "AcceptType",
    "AcceptCode",
    "ResourceARN",
    "TagKeys",
    "Members",
    "Overrides",
    "NewMembers",
    "TimeRangeValue",
    "RotationId",
    "NewContactIds",
    "x",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        (0i64..40).prop_map(Value::from),
        "[a-zA-Z0-9:/_ \\-]{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "PERSONAL", "EMAIL", "MON", "READ", ARN, "alice", "UTC"
        ])
        .prop_map(Value::from),
        ".{0,300}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|members| {
                Value::Object(
                    members
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

fn assert_4xx(result: Result<Value, ApiError>) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(e.status().is_client_error(), "{e:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dispatch_survives_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        for op in Operation::ALL {
            assert_4xx(run(&Nothing, *op, &body))?;
        }
    }

    #[test]
    fn dispatch_survives_arbitrary_json(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        for op in Operation::ALL {
            assert_4xx(run(&Nothing, *op, &body))?;
            assert_4xx(run(&Echo, *op, &body))?;
        }
    }

    #[test]
    fn dispatch_survives_arbitrary_objects(
        members in prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..10)
    ) {
        let value = Value::Object(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        let body = serde_json::to_vec(&value).unwrap();
        for op in Operation::ALL {
            assert_4xx(run(&Nothing, *op, &body))?;
            assert_4xx(run(&Echo, *op, &body))?;
        }
    }
}
