//! The AWS JSON 1.1 envelope and SigV4 authentication, seen from the wire: raw HTTP
//! requests signed by the SDK's own signer (aws-sigv4), then tampered with.

mod common;

use common::{Backend, TestServer};
use std::time::{Duration, SystemTime};

const CREATE: &str = "SSMContacts.CreateContact";
const LIST: &str = "SSMContacts.ListContacts";

fn create_body(alias: &str) -> Vec<u8> {
    format!(r#"{{"Alias":"{alias}","Type":"PERSONAL","Plan":{{"Stages":[]}}}}"#).into_bytes()
}

async fn contact_count(s: &TestServer) -> usize {
    let r = s.raw(Some(LIST), b"{}").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["Contacts"].as_array().map(|a| a.len()).unwrap_or(0)
}

fn assert_request_id(r: &common::RawResponse) {
    let id = r
        .headers
        .get("x-amzn-requestid")
        .expect("x-amzn-RequestId on every response")
        .to_str()
        .unwrap();
    assert_eq!(id.len(), 36, "{id}");
}

async fn envelope(s: TestServer) {
    let ok = s.raw(Some(CREATE), &create_body("wire")).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_request_id(&ok);
    assert_eq!(
        ok.headers["content-type"].to_str().unwrap(),
        "application/x-amz-json-1.1"
    );
    assert_eq!(
        ok.body["ContactArn"],
        "arn:aws:ssm-contacts:us-east-1:000000000000:contact/wire"
    );

    // Empty body is `{}`.
    let r = s.raw(Some(LIST), b"").await;
    assert_eq!(r.status, 200, "{}", r.text);

    let r = s.raw(Some("SSMContacts.NoSuchThing"), b"{}").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "ValidationException");
    assert_eq!(r.body["Reason"], "UNKNOWN_OPERATION");
    assert_request_id(&r);

    let r = s.raw(None, b"{}").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["Reason"], "UNKNOWN_OPERATION");

    for bad in [&b"{not json"[..], b"[1,2]", b"\"str\"", b"{\"Alias\":"] {
        let r = s.raw(Some(CREATE), bad).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.error_type(), "ValidationException");
        assert_eq!(r.body["Reason"], "CANNOT_PARSE", "{}", r.text);
        assert!(r.body["Message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    // Missing required members and wrong types name each field.
    let r = s
        .raw(Some(CREATE), br#"{"Alias":"x","DisplayName":7}"#)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["Reason"], "FIELD_VALIDATION_FAILED");
    let r = s.raw(Some(CREATE), br#"{"Alias":"x"}"#).await;
    assert_eq!(r.body["Reason"], "FIELD_VALIDATION_FAILED", "{}", r.text);
    let names: Vec<&str> = r.body["Fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["Name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Type") && names.contains(&"Plan"),
        "{names:?}"
    );
    let r = s
        .raw(
            Some(CREATE),
            br#"{"Alias":"x","Type":"ROBOT","Plan":{"Stages":[]}}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["Fields"][0]["Name"], "Type", "{}", r.text);

    // Every operation of the model is served: StartEngagement of a contact that does not
    // exist is a modelled ResourceNotFoundException naming it.
    let r = s
        .raw(
            Some("SSMContacts.StartEngagement"),
            br#"{"ContactId":"arn:aws:ssm-contacts:us-east-1:000000000000:contact/nobody","Sender":"s","Subject":"s","Content":"c"}"#,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_type(), "ResourceNotFoundException", "{}", r.text);
    assert!(
        r.body["Message"]
            .as_str()
            .unwrap()
            .contains("contact/nobody")
    );

    // Requests are counted by operation and status on /metrics (Prometheus text).
    let m = common::get(format!("http://{}/metrics", s.addr))
        .await
        .unwrap();
    assert_eq!(m.status(), 200);
    let text = m.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("muster_api_requests_total")
                && l.contains("operation=\"CreateContact\"")
                && l.contains("status=\"200\"")),
        "{text}"
    );
    assert!(text.contains("muster_api_request_seconds"), "{text}");

    // Other paths and methods answer in the AWS shape too.
    let resp = common::get(format!("http://{}/nothing-here", s.addr))
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!(v["__type"].is_string());
}

async fn authentication(s: TestServer) {
    let before = contact_count(&s).await;
    let url = format!("http://{}/", s.addr);

    // No credentials at all.
    let r = common::send(
        &url,
        &[
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            ("x-amz-target".into(), CREATE.into()),
        ],
        create_body("unsigned"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error_type(), "MissingAuthenticationTokenException");
    assert_request_id(&r);

    // Unknown key.
    let r = s
        .raw_signed(
            Some(CREATE),
            &create_body("unknown-key"),
            "AKIAUNKNOWNUNKNOWN00",
            &s.secret,
            SystemTime::now(),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_type(), "UnrecognizedClientException");

    // Wrong secret.
    let r = s
        .raw_signed(
            Some(CREATE),
            &create_body("bad-secret"),
            &s.key_id,
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            SystemTime::now(),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_type(), "InvalidSignatureException");

    // A body changed after signing.
    let tamper_body = |b: &mut Vec<u8>, _h: &mut Vec<(String, String)>| {
        *b = create_body("tampered");
    };
    let r = s
        .raw_signed(
            Some(CREATE),
            &create_body("original"),
            &s.key_id,
            &s.secret,
            SystemTime::now(),
            Some(&tamper_body),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error_type(), "InvalidSignatureException");

    // The operation changed after signing.
    let tamper_target = |_b: &mut Vec<u8>, h: &mut Vec<(String, String)>| {
        for (k, v) in h.iter_mut() {
            if k == "x-amz-target" {
                *v = "SSMContacts.DeleteContact".into();
            }
        }
    };
    let r = s
        .raw_signed(
            Some(CREATE),
            &create_body("retarget"),
            &s.key_id,
            &s.secret,
            SystemTime::now(),
            Some(&tamper_target),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_type(), "InvalidSignatureException");

    // Clock skew beyond 15 minutes, either way; within it is fine.
    for (offset, ok) in [(-16i64 * 60, false), (16 * 60, false), (-14 * 60, true)] {
        let t = if offset < 0 {
            SystemTime::now() - Duration::from_secs(-offset as u64)
        } else {
            SystemTime::now() + Duration::from_secs(offset as u64)
        };
        let alias = format!("skew{}", offset.unsigned_abs());
        let r = s
            .raw_signed(
                Some(CREATE),
                &create_body(&alias),
                &s.key_id,
                &s.secret,
                t,
                None,
            )
            .await;
        if ok {
            assert_eq!(r.status, 200, "{}", r.text);
        } else {
            assert_eq!(r.status, 403, "{}", r.text);
            assert_eq!(r.error_type(), "InvalidSignatureException");
            assert!(
                r.body["Message"].as_str().unwrap().contains("Signature"),
                "{}",
                r.text
            );
        }
    }

    // Nothing was written by any refused request (only the in-window one).
    assert_eq!(contact_count(&s).await, before + 1);
}

async fn revoked_keys_and_other_accounts(s: TestServer) {
    // A second key for another account sees none of the first account's contacts, and
    // its ARNs carry its own account.
    let master =
        muster::server::load_master_key(&common::settings_for(&s.data_dir(), &s.database_url))
            .unwrap();
    let other = muster_core::AccountId::parse("111122223333").unwrap();
    let store = s.running.as_ref().unwrap().store.clone();
    let (id, secret) =
        muster::server::create_access_key(&store, &master, &other, &muster_core::SystemClock)
            .await
            .unwrap();
    let mine = s.raw(Some(CREATE), &create_body("mine")).await;
    assert_eq!(mine.status, 200);
    let theirs = s
        .raw_signed(
            Some(CREATE),
            &create_body("mine"),
            &id,
            &secret,
            SystemTime::now(),
            None,
        )
        .await;
    assert_eq!(
        theirs.status, 200,
        "the same alias in another account is no conflict"
    );
    assert_eq!(
        theirs.body["ContactArn"],
        "arn:aws:ssm-contacts:us-east-1:111122223333:contact/mine"
    );
    let get_other = r#"{"ContactId":"arn:aws:ssm-contacts:us-east-1:111122223333:contact/mine"}"#;
    let r = s
        .raw(Some("SSMContacts.GetContact"), get_other.as_bytes())
        .await;
    assert_eq!(r.status, 404, "another account's contact is not visible");
    assert_eq!(r.error_type(), "ResourceNotFoundException");

    assert!(store.revoke_access_key(&id, 0).await.unwrap());
    let r = s
        .raw_signed(Some(LIST), b"{}", &id, &secret, SystemTime::now(), None)
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_type(), "UnrecognizedClientException");
}

on_both!(envelope, authentication, revoked_keys_and_other_accounts);

/// Throws arbitrary targets and bodies, properly signed, at a live server: never a 5xx,
/// always an AWS-shaped answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_requests_never_fail_the_server() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let s = common::start(Backend::Sqlite).await.unwrap();
    let ops = [
        "CreateContact",
        "GetContact",
        "UpdateContact",
        "DeleteContact",
        "ListContacts",
        "CreateContactChannel",
        "GetContactChannel",
        "UpdateContactChannel",
        "DeleteContactChannel",
        "ListContactChannels",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
        "PutContactPolicy",
        "GetContactPolicy",
        "StartEngagement",
        "CreateRotation",
        "Bogus",
    ];
    let json_value = {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            "[a-zA-Z0-9:/_+= -]{0,40}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from(
                "arn:aws:ssm-contacts:us-east-1:000000000000:contact/x"
            )),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("Alias".to_string()),
                        Just("Type".to_string()),
                        Just("Plan".to_string()),
                        Just("Stages".to_string()),
                        Just("ContactId".to_string()),
                        Just("Targets".to_string()),
                        Just("DurationInMinutes".to_string()),
                        Just("NextToken".to_string()),
                        Just("MaxResults".to_string()),
                        Just("Tags".to_string()),
                        Just("DeliveryAddress".to_string()),
                        "[A-Za-z]{1,8}",
                    ],
                    inner,
                    0..5,
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    };
    let body = prop_oneof![
        json_value.prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    let mut runner = TestRunner::default();
    for i in 0..300 {
        let op = ops[i % ops.len()];
        let b = body.new_tree(&mut runner).unwrap().current();
        let r = s.raw(Some(&format!("SSMContacts.{op}")), &b).await;
        assert!(
            (200..500).contains(&r.status),
            "{op} {:?} -> {} {}",
            String::from_utf8_lossy(&b),
            r.status,
            r.text
        );
        if r.status != 200 {
            assert!(r.error_type().ends_with("Exception"), "{}", r.text);
            assert!(r.body["Message"].is_string(), "{}", r.text);
        }
    }
}
