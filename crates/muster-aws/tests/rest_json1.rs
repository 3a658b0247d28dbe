//! The restJson1 protocol layer of SSM Incidents: route matching, input assembly from label,
//! query and body, error rendering, and one signed request through the router.
//!
//! Expected values are the model's facts written out here (methods, URIs, status codes,
//! error members), not read from the generated table.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::body::Body;
use muster_aws::context::RequestContext;
use muster_aws::error::ApiError;
use muster_aws::http::Authenticator;
use muster_aws::rest_json1::{
    RestJsonState, RouteError, match_route, parse_query, percent_decode, router,
};
use muster_aws::wire::RestOutput;
use muster_aws::wire::ssm_incidents::{
    self as w, ChatChannel, CreateResponsePlanInput, CreateResponsePlanOutput, EmptyChatChannel,
    GetResponsePlanInput, GetResponsePlanOutput, Operation, TagResourceRequest,
    TagResourceResponse, UntagResourceRequest, UntagResourceResponse, UpdateIncidentRecordInput,
    UpdateIncidentRecordOutput,
};
use muster_core::{AccountId, Region, SystemClock};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tower_service::Service;

const PLAN_ARN: &str = "arn:aws:ssm-incidents::000000000000:response-plan/x";
/// `PLAN_ARN` as the AWS SDK writes it in a label.
const PLAN_ARN_ENCODED: &str = "arn%3Aaws%3Assm-incidents%3A%3A000000000000%3Aresponse-plan%2Fx";
const RECORD_ARN: &str = "arn:aws:ssm-incidents::000000000000:incident-record/x/1";
const SNS_A: &str = "arn:aws:sns:us-east-1:000000000000:a";

/// Every operation of the model: (name, method, URI, success status), from its `@http`.
const MODEL_ROUTES: &[(&str, &str, &str, u16)] = &[
    (
        "BatchGetIncidentFindings",
        "POST",
        "/batchGetIncidentFindings",
        200,
    ),
    ("CreateReplicationSet", "POST", "/createReplicationSet", 201),
    ("CreateResponsePlan", "POST", "/createResponsePlan", 201),
    ("CreateTimelineEvent", "POST", "/createTimelineEvent", 201),
    ("DeleteIncidentRecord", "POST", "/deleteIncidentRecord", 204),
    ("DeleteReplicationSet", "POST", "/deleteReplicationSet", 204),
    ("DeleteResourcePolicy", "POST", "/deleteResourcePolicy", 200),
    ("DeleteResponsePlan", "POST", "/deleteResponsePlan", 204),
    ("DeleteTimelineEvent", "POST", "/deleteTimelineEvent", 204),
    ("GetIncidentRecord", "GET", "/getIncidentRecord", 200),
    ("GetReplicationSet", "GET", "/getReplicationSet", 200),
    ("GetResourcePolicies", "POST", "/getResourcePolicies", 200),
    ("GetResponsePlan", "GET", "/getResponsePlan", 200),
    ("GetTimelineEvent", "GET", "/getTimelineEvent", 200),
    ("ListIncidentFindings", "POST", "/listIncidentFindings", 200),
    ("ListIncidentRecords", "POST", "/listIncidentRecords", 200),
    ("ListRelatedItems", "POST", "/listRelatedItems", 200),
    ("ListReplicationSets", "POST", "/listReplicationSets", 200),
    ("ListResponsePlans", "POST", "/listResponsePlans", 200),
    ("ListTagsForResource", "GET", "/tags/{resourceArn}", 200),
    ("ListTimelineEvents", "POST", "/listTimelineEvents", 200),
    ("PutResourcePolicy", "POST", "/putResourcePolicy", 200),
    ("StartIncident", "POST", "/startIncident", 200),
    ("TagResource", "POST", "/tags/{resourceArn}", 204),
    ("UntagResource", "DELETE", "/tags/{resourceArn}", 204),
    (
        "UpdateDeletionProtection",
        "POST",
        "/updateDeletionProtection",
        204,
    ),
    ("UpdateIncidentRecord", "POST", "/updateIncidentRecord", 204),
    ("UpdateRelatedItems", "POST", "/updateRelatedItems", 204),
    ("UpdateReplicationSet", "POST", "/updateReplicationSet", 204),
    ("UpdateResponsePlan", "POST", "/updateResponsePlan", 204),
    ("UpdateTimelineEvent", "POST", "/updateTimelineEvent", 204),
];

// --- routes -----------------------------------------------------------------------------------

#[test]
fn every_modelled_path_and_method_matches_its_operation() {
    assert_eq!(Operation::ALL.len(), MODEL_ROUTES.len());
    for (name, method, uri, code) in MODEL_ROUTES {
        let path = uri.replace("{resourceArn}", PLAN_ARN_ENCODED);
        let m = match_route(method, &path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
        assert_eq!(m.route.operation.name(), *name, "{method} {path}");
        assert_eq!(m.route.code, *code, "{name}");
        assert_eq!(m.route.operation.http(), m.route, "{name}");
        if uri.contains('{') {
            assert_eq!(
                m.labels,
                vec![("resourceArn", PLAN_ARN.to_owned())],
                "{name}"
            );
        } else {
            assert!(m.labels.is_empty(), "{name}");
        }
    }
}

#[test]
fn a_known_path_with_another_method_lists_the_allowed_ones() {
    assert_eq!(
        match_route("GET", "/startIncident"),
        Err(RouteError::MethodNotAllowed {
            allowed: vec!["POST"]
        })
    );
    assert_eq!(
        match_route("PUT", "/tags/abc"),
        Err(RouteError::MethodNotAllowed {
            allowed: vec!["GET", "POST", "DELETE"]
        })
    );
    let e = RouteError::MethodNotAllowed {
        allowed: vec!["POST"],
    }
    .to_api_error("GET", "/startIncident");
    assert_eq!(e.type_name(), "ValidationException");
    assert_eq!(e.status().as_u16(), 400);
    assert!(e.message().contains("GET /startIncident"), "{e}");
    assert!(e.message().contains("POST"), "{e}");
}

#[test]
fn unknown_paths_match_nothing() {
    for path in [
        "/",
        "/nope",
        "/startincident",
        "/startIncident/",
        "/tags",
        "/tags/",
        "/tags/a/b",
        "/tags/a%2Fb/c",
    ] {
        assert_eq!(
            match_route("POST", path),
            Err(RouteError::NoSuchPath),
            "{path}"
        );
    }
}

#[test]
fn labels_are_percent_decoded_exactly_once() {
    let m = match_route("GET", "/tags/a%252Fb+c%20d").unwrap();
    assert_eq!(m.labels, vec![("resourceArn", "a%2Fb+c d".to_owned())]);
    assert!(matches!(
        match_route("GET", "/tags/a%zz"),
        Err(RouteError::BadLabel {
            label: "resourceArn",
            ..
        })
    ));
    assert!(matches!(
        match_route("GET", "/tags/%FF"),
        Err(RouteError::BadLabel { .. })
    ));
    assert_eq!(percent_decode("%e2%82%AC", false).unwrap(), "€");
    assert!(percent_decode("%4", false).is_err());
}

#[test]
fn queries_keep_repeated_names_in_order() {
    let q = parse_query(Some("tagKeys=a&tagKeys=b%20c&&x&tagKeys=%2B+d&k%3D=v%3D")).unwrap();
    let expected: Vec<(String, String)> = [
        ("tagKeys", "a"),
        ("tagKeys", "b c"),
        ("x", ""),
        ("tagKeys", "+ d"),
        ("k=", "v="),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(q, expected);
    assert!(parse_query(None).unwrap().is_empty());
    let e = parse_query(Some("a=%G1")).unwrap_err();
    assert_eq!(e.type_name(), "ValidationException");
}

// --- input assembly ---------------------------------------------------------------------------

/// Records every input it receives (as JSON, with the operation name).
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(&'static str, Value)>>,
}

impl Recorder {
    fn record<T: serde::Serialize>(&self, op: &'static str, input: &T) {
        let value = serde_json::to_value(input).unwrap();
        self.seen.lock().unwrap().push((op, value));
    }

    fn last(&self) -> (&'static str, Value) {
        self.seen.lock().unwrap().last().cloned().expect("a call")
    }
}

impl w::SsmIncidents for Recorder {
    async fn get_response_plan(
        &self,
        _ctx: &RequestContext,
        input: GetResponsePlanInput,
    ) -> Result<GetResponsePlanOutput, ApiError> {
        self.record("GetResponsePlan", &input);
        Ok(GetResponsePlanOutput {
            arn: input.arn,
            ..Default::default()
        })
    }

    async fn tag_resource(
        &self,
        _ctx: &RequestContext,
        input: TagResourceRequest,
    ) -> Result<TagResourceResponse, ApiError> {
        self.record("TagResource", &input);
        Ok(TagResourceResponse::default())
    }

    async fn untag_resource(
        &self,
        _ctx: &RequestContext,
        input: UntagResourceRequest,
    ) -> Result<UntagResourceResponse, ApiError> {
        self.record("UntagResource", &input);
        Ok(UntagResourceResponse::default())
    }

    async fn update_incident_record(
        &self,
        _ctx: &RequestContext,
        input: UpdateIncidentRecordInput,
    ) -> Result<UpdateIncidentRecordOutput, ApiError> {
        // The union arrives as the Rust enum.
        let channel = input.chat_channel.clone();
        self.record("UpdateIncidentRecord", &input);
        self.record("UpdateIncidentRecord.chatChannel", &format!("{channel:?}"));
        Ok(UpdateIncidentRecordOutput::default())
    }

    async fn create_response_plan(
        &self,
        _ctx: &RequestContext,
        input: CreateResponsePlanInput,
    ) -> Result<CreateResponsePlanOutput, ApiError> {
        self.record("CreateResponsePlan", &input);
        Ok(CreateResponsePlanOutput {
            arn: Some(PLAN_ARN.to_owned()),
        })
    }
}

fn ctx() -> RequestContext {
    RequestContext {
        account: AccountId::parse("000000000000").unwrap(),
        region: Region::parse("us-east-1").unwrap(),
        request_id: "req".into(),
        access_key_id: "AKID".into(),
    }
}

/// Routes and dispatches like the HTTP handler does, minus authentication.
async fn call(
    h: &Recorder,
    method: &str,
    path_and_query: &str,
    body: Value,
) -> Result<RestOutput, ApiError> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let m = match_route(method, path).expect("route");
    let query = parse_query(query)?;
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    w::dispatch(h, &ctx(), m.route.operation, &m.labels, &query, &body).await
}

fn fields(e: &ApiError) -> Vec<(String, String)> {
    match e {
        ApiError::Validation { fields, .. } => fields
            .iter()
            .map(|f| (f.name.clone(), f.message.clone()))
            .collect(),
        other => panic!("not a validation error: {other:?}"),
    }
}

fn plan(extra: Value) -> Value {
    let mut v = json!({
        "name": "plan",
        "incidentTemplate": {"title": "t", "impact": 3},
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

#[tokio::test]
async fn a_query_member_comes_from_the_query() {
    let h = Recorder::default();
    let out = call(
        &h,
        "GET",
        &format!("/getResponsePlan?arn={PLAN_ARN_ENCODED}"),
        Value::Null,
    )
    .await
    .unwrap();
    assert_eq!(h.last(), ("GetResponsePlan", json!({"arn": PLAN_ARN})));
    assert_eq!(out.status, 200);
    assert_eq!(out.body.unwrap()["arn"], PLAN_ARN);

    // The member in the body is not where the model binds it: ignored, so still missing.
    let e = call(&h, "GET", "/getResponsePlan", json!({"arn": PLAN_ARN}))
        .await
        .unwrap_err();
    assert_eq!(
        fields(&e),
        vec![("arn".to_owned(), "is required".to_owned())]
    );
    // And a query value is checked like a body value.
    let e = call(&h, "GET", "/getResponsePlan?arn=nope", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(fields(&e)[0].0, "arn");
}

#[tokio::test]
async fn body_members_label_and_a_bound_member_in_the_body() {
    let h = Recorder::default();
    let other = "arn:aws:ssm-incidents::000000000000:response-plan/other";
    let out = call(
        &h,
        "POST",
        &format!("/tags/{PLAN_ARN_ENCODED}"),
        json!({"tags": {"team": "ops"}, "resourceArn": other}),
    )
    .await
    .unwrap();
    assert_eq!(
        h.last(),
        (
            "TagResource",
            json!({"resourceArn": PLAN_ARN, "tags": {"team": "ops"}})
        )
    );
    assert_eq!(
        out,
        RestOutput {
            status: 204,
            body: None
        }
    );
}

#[tokio::test]
async fn a_query_list_collects_every_repetition() {
    let h = Recorder::default();
    let out = call(
        &h,
        "DELETE",
        &format!("/tags/{PLAN_ARN_ENCODED}?tagKeys=team&tagKeys=cost%20centre"),
        json!({"tagKeys": ["from-body"]}),
    )
    .await
    .unwrap();
    assert_eq!(
        h.last(),
        (
            "UntagResource",
            json!({"resourceArn": PLAN_ARN, "tagKeys": ["team", "cost centre"]})
        )
    );
    assert_eq!(out.status, 204);
    // The tag keys' pattern forbids the `aws:` prefix (a leading negative lookahead).
    let e = call(
        &h,
        "DELETE",
        &format!("/tags/{PLAN_ARN_ENCODED}?tagKeys=ok&tagKeys=aws%3Ax"),
        Value::Null,
    )
    .await
    .unwrap_err();
    assert_eq!(
        fields(&e),
        vec![(
            "tagKeys[1]".to_owned(),
            "must match the pattern ^(?!aws:)[A-Za-z0-9 _=@:.+-/]+$".to_owned()
        )]
    );
}

#[tokio::test]
async fn unions_decode_to_their_variant() {
    let h = Recorder::default();
    call(
        &h,
        "POST",
        "/updateIncidentRecord",
        json!({"arn": RECORD_ARN, "chatChannel": {"chatbotSns": [SNS_A]}}),
    )
    .await
    .unwrap();
    assert_eq!(
        h.last().1,
        json!(format!(
            "{:?}",
            Some(ChatChannel::ChatbotSns(vec![SNS_A.to_owned()]))
        ))
    );
    call(
        &h,
        "POST",
        "/updateIncidentRecord",
        json!({"arn": RECORD_ARN, "chatChannel": {"empty": {}}}),
    )
    .await
    .unwrap();
    assert_eq!(
        h.last().1,
        json!(format!(
            "{:?}",
            Some(ChatChannel::Empty(EmptyChatChannel {}))
        ))
    );
    // Serialised back the same way.
    assert_eq!(
        serde_json::to_value(ChatChannel::ChatbotSns(vec![SNS_A.into()])).unwrap(),
        json!({"chatbotSns": [SNS_A]})
    );
    assert_eq!(
        serde_json::to_value(ChatChannel::Empty(EmptyChatChannel {})).unwrap(),
        json!({"empty": {}})
    );
}

#[tokio::test]
async fn an_unknown_union_member_is_named() {
    let h = Recorder::default();
    let e = call(
        &h,
        "POST",
        "/updateIncidentRecord",
        json!({"arn": RECORD_ARN, "chatChannel": {"slack": "x"}}),
    )
    .await
    .unwrap_err();
    let f = fields(&e);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, "chatChannel");
    assert!(f[0].1.contains("slack"), "{f:?}");
    assert!(h.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unique_items_and_union_contents_are_validated() {
    let h = Recorder::default();
    let contact = "arn:aws:ssm-contacts:us-east-1:000000000000:contact/oncall";
    let e = call(
        &h,
        "POST",
        "/createResponsePlan",
        plan(json!({
            "engagements": [contact, contact],
            "chatChannel": {"chatbotSns": [SNS_A, SNS_A]},
        })),
    )
    .await
    .unwrap_err();
    let names: Vec<String> = fields(&e).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["chatChannel.chatbotSns", "engagements"]);
    assert!(fields(&e)[1].1.contains("duplicate"), "{e:?}");

    let ok = call(
        &h,
        "POST",
        "/createResponsePlan",
        plan(json!({"engagements": [contact]})),
    )
    .await
    .unwrap();
    assert_eq!(ok.status, 201);
    assert_eq!(ok.body, Some(json!({"arn": PLAN_ARN})));

    // A member's own @length (IncidentTemplate.title is an IncidentTitle, max 200).
    let e = call(
        &h,
        "POST",
        "/createResponsePlan",
        plan(json!({"incidentTemplate": {"title": "x".repeat(201), "impact": 9}})),
    )
    .await
    .unwrap_err();
    let body = rest_body(&e);
    assert_eq!(
        body,
        json!({"message": "2 validation errors detected: incidentTemplate.title: must be at most 200 characters long; incidentTemplate.impact: must be between 1 and 5"})
    );
}

#[tokio::test]
async fn unimplemented_operations_answer_a_modelled_error() {
    let h = Recorder::default();
    let e = call(
        &h,
        "POST",
        "/startIncident",
        json!({"responsePlanArn": PLAN_ARN}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.type_name(), "ValidationException");
    assert!(e.message().contains("StartIncident"), "{e}");
}

// --- errors -----------------------------------------------------------------------------------

fn rest_body(e: &ApiError) -> Value {
    e.rest_body()
}

async fn response_parts(resp: axum::response::Response) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

#[tokio::test]
async fn errors_have_the_model_status_header_and_members() {
    // (error, model status, shape name, body)
    let cases = vec![
        (
            ApiError::not_found("RESPONSE_PLAN", PLAN_ARN),
            404,
            "ResourceNotFoundException",
            json!({"message": format!("Response plan {PLAN_ARN} does not exist"), "resourceIdentifier": PLAN_ARN, "resourceType": "RESPONSE_PLAN"}),
        ),
        (
            ApiError::conflict("INCIDENT_RECORD", RECORD_ARN, "already resolved"),
            409,
            "ConflictException",
            json!({"message": "already resolved", "resourceIdentifier": RECORD_ARN, "resourceType": "INCIDENT_RECORD"}),
        ),
        (
            ApiError::ServiceQuotaExceeded {
                message: "too many plans".into(),
                resource_id: None,
                resource_type: Some("RESPONSE_PLAN".into()),
                quota_code: "plans".into(),
                service_code: "ssm-contacts".into(),
            },
            402,
            "ServiceQuotaExceededException",
            json!({"message": "too many plans", "resourceType": "RESPONSE_PLAN", "serviceCode": "ssm-incidents", "quotaCode": "plans"}),
        ),
        (
            ApiError::Throttling {
                message: "slow down".into(),
                retry_after_seconds: None,
            },
            429,
            "ThrottlingException",
            json!({"message": "slow down", "serviceCode": "ssm-incidents", "quotaCode": ""}),
        ),
        (
            ApiError::field("arn", "is required"),
            400,
            "ValidationException",
            json!({"message": "1 validation error detected: arn: is required"}),
        ),
        (
            ApiError::not_implemented("StartIncident"),
            400,
            "ValidationException",
            json!({"message": "StartIncident is not implemented by this Muster server yet"}),
        ),
        (
            ApiError::access_denied("no"),
            403,
            "AccessDeniedException",
            json!({"message": "no"}),
        ),
        (
            ApiError::internal(),
            500,
            "InternalServerException",
            json!({"message": "An internal error occurred; it has been logged"}),
        ),
        (
            ApiError::Auth {
                type_name: "MissingAuthenticationTokenException",
                status: 403,
                message: "Missing Authentication Token".into(),
            },
            403,
            "MissingAuthenticationTokenException",
            json!({"message": "Missing Authentication Token"}),
        ),
    ];
    for (e, status, shape, body) in cases {
        let (s, h, b) = response_parts(e.into_rest_response("req-9")).await;
        assert_eq!(s, status, "{shape}");
        assert_eq!(h["x-amzn-errortype"], shape);
        assert_eq!(h["x-amzn-requestid"], "req-9");
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(
            serde_json::from_slice::<Value>(&b).unwrap(),
            body,
            "{shape}"
        );
    }
    // Modelled statuses of the error shapes agree with the generated table too.
    for (name, status) in [
        ("AccessDeniedException", 403),
        ("ConflictException", 409),
        ("InternalServerException", 500),
        ("ResourceNotFoundException", 404),
        ("ServiceQuotaExceededException", 402),
        ("ThrottlingException", 429),
        ("ValidationException", 400),
    ] {
        assert!(w::ERROR_HTTP_STATUS.contains(&(name, status)), "{name}");
    }
    let (_, h, _) = response_parts(
        ApiError::Throttling {
            message: "x".into(),
            retry_after_seconds: Some(7),
        }
        .into_rest_response("r"),
    )
    .await;
    assert_eq!(h["retry-after"], "7");
}

// --- end to end -------------------------------------------------------------------------------

const AKID: &str = "AKIDRESTJSON1TEST";
const SECRET: &str = "restjson1testsecret/abcdefghijklmnopqrstuv";

/// A request signed by the AWS SDK's signer for `service`.
fn signed(
    service: &str,
    method: &str,
    path_and_query: &str,
    body: &'static [u8],
) -> axum::http::Request<Body> {
    let uri = format!("http://127.0.0.1:8080{path_and_query}");
    let headers = [("content-type", "application/json")];
    let identity = Credentials::new(AKID, SECRET, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        method,
        uri.clone(),
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(&uri)
        .header("content-type", "application/json")
        .header("host", "127.0.0.1:8080")
        .body(Body::from(body))
        .unwrap();
    instructions.apply_to_request_http1x(&mut request);
    request
}

#[tokio::test]
async fn signed_requests_reach_the_handler_only_when_signed_for_ssm_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let store = muster_store::Store::connect(dir.path().join("t.db").to_str().unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let master = muster_aws::secrets::MasterKey::generate();
    store
        .insert_access_key(&muster_store::model::AccessKeyRecord {
            access_key_id: AKID.into(),
            account: "000000000000".into(),
            secret_sealed: master.seal(AKID, SECRET),
            created_ms: 0,
            revoked_ms: None,
        })
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let state = Arc::new(RestJsonState {
        auth: Authenticator {
            store,
            master_key: master,
            clock: Arc::new(SystemClock),
            region: Region::parse("us-east-1").unwrap(),
            max_skew: Duration::from_secs(900),
        },
        handler: recorder.clone(),
    });
    let mut app = router(state);

    // Signed for ssm-incidents: reaches the handler with label, query list and body.
    let path = format!("/tags/{PLAN_ARN_ENCODED}?tagKeys=team&tagKeys=a%2Bb");
    let path: &'static str = Box::leak(path.into_boxed_str());
    let resp = app
        .call(signed("ssm-incidents", "DELETE", path, b""))
        .await
        .unwrap();
    let (status, headers, body) = response_parts(resp).await;
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    assert!(body.is_empty());
    assert!(headers.contains_key("x-amzn-requestid"));
    assert!(!headers.contains_key("content-type"));
    assert_eq!(
        recorder.last(),
        (
            "UntagResource",
            json!({"resourceArn": PLAN_ARN, "tagKeys": ["team", "a+b"]})
        )
    );

    // A success with a body: the model's status and JSON.
    let body: &'static [u8] = br#"{"name":"plan","incidentTemplate":{"title":"t","impact":1}}"#;
    let resp = app
        .call(signed("ssm-incidents", "POST", "/createResponsePlan", body))
        .await
        .unwrap();
    let (status, headers, body) = response_parts(resp).await;
    assert_eq!(status, 201);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"arn": PLAN_ARN})
    );

    // Signed for ssm-contacts: refused before the handler.
    let before = recorder.seen.lock().unwrap().len();
    let resp = app
        .call(signed("ssm-contacts", "DELETE", path, b""))
        .await
        .unwrap();
    let (status, headers, body) = response_parts(resp).await;
    assert_eq!(status, 403);
    assert_eq!(headers["x-amzn-errortype"], "InvalidSignatureException");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("ssm-incidents"),
        "{body}"
    );
    assert_eq!(recorder.seen.lock().unwrap().len(), before);

    // A wrong method on a known path: authenticated, then an AWS-shaped error.
    let resp = app
        .call(signed("ssm-incidents", "PUT", "/startIncident", b"{}"))
        .await
        .unwrap();
    let (status, headers, body) = response_parts(resp).await;
    assert_eq!(status, 400);
    assert_eq!(headers["x-amzn-errortype"], "ValidationException");
    assert!(String::from_utf8_lossy(&body).contains("PUT /startIncident"));

    // Unsigned: authentication comes first, even for a wrong method.
    let unsigned = axum::http::Request::builder()
        .method("PUT")
        .uri("/startIncident")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = response_parts(app.call(unsigned).await.unwrap()).await;
    assert_eq!(status, 403);
    assert_eq!(
        headers["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    assert_eq!(recorder.seen.lock().unwrap().len(), before);
}
