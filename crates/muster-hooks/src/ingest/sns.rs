//! Amazon SNS HTTP(S) delivery, for CloudWatch alarms: the envelope, its signature, the
//! URLs Muster may fetch, and the alarm inside.

use super::{
    BadPayload, Draft, bad, json, nonblank, object, opt_str, paragraphs, parse_time, req_str,
};
use base64::Engine;
use muster_core::alert::{AlertAction, AlertEvent};
use serde_json::{Map, Value};

/// An SNS message, by its `Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// A subscription waiting to be confirmed by fetching `subscribe_url`.
    Confirmation {
        topic_arn: String,
        subscribe_url: String,
        token: String,
        message_id: String,
    },
    /// A published message (`message_id` is stable across SNS's retries).
    Notification {
        message_id: String,
        topic_arn: String,
        subject: Option<String>,
        message: String,
    },
    /// The subscription was deleted.
    Unsubscribe {
        topic_arn: String,
        message_id: String,
    },
}

/// The envelope of an SNS delivery (JSON whatever the Content-Type: SNS sends text/plain).
/// It is not verified here: see [`verify`].
pub fn parse(body: &[u8]) -> Result<Envelope, BadPayload> {
    let v = json(body)?;
    let m = object(&v, "body")?;
    let s = |key| req_str(m, key, "").map(str::to_string);
    match req_str(m, "Type", "")? {
        "SubscriptionConfirmation" => Ok(Envelope::Confirmation {
            topic_arn: s("TopicArn")?,
            subscribe_url: s("SubscribeURL")?,
            token: s("Token")?,
            message_id: s("MessageId")?,
        }),
        "Notification" => Ok(Envelope::Notification {
            message_id: s("MessageId")?,
            topic_arn: s("TopicArn")?,
            subject: nonblank(m, "Subject", "")?.map(str::to_string),
            message: opt_str(m, "Message", "")?
                .ok_or_else(|| bad("Message: required"))?
                .to_string(),
        }),
        "UnsubscribeConfirmation" => Ok(Envelope::Unsubscribe {
            topic_arn: s("TopicArn")?,
            message_id: s("MessageId")?,
        }),
        other => Err(bad(format!(
            "Type: expected Notification, SubscriptionConfirmation or UnsubscribeConfirmation, got {other:?}"
        ))),
    }
}

/// The CloudWatch alarm in a notification's `Message`: dedupe key `AlarmArn`,
/// `NewStateValue` ALARM → Trigger, OK → Resolve, INSUFFICIENT_DATA → no event; title
/// `AlarmName`; summary `AlarmDescription` and `NewStateReason`; the alarm as an
/// INVOLVED_RESOURCE item.
pub fn alarm_events(message: &str) -> Result<Vec<AlertEvent>, BadPayload> {
    let v: Value = serde_json::from_str(message).map_err(|e| {
        bad(format!(
            "Message: not a CloudWatch alarm (expected the alarm's JSON; {e})"
        ))
    })?;
    let m = object(&v, "Message")?;
    let arn = req_str(m, "AlarmArn", "Message")?;
    let action = match req_str(m, "NewStateValue", "Message")? {
        "ALARM" => AlertAction::Trigger,
        "OK" => AlertAction::Resolve,
        "INSUFFICIENT_DATA" => return Ok(vec![]),
        other => {
            return Err(bad(format!(
                "Message.NewStateValue: expected ALARM, OK or INSUFFICIENT_DATA, got {other:?}"
            )));
        }
    };
    let name = nonblank(m, "AlarmName", "Message")?;
    let mut d = Draft::new(action, arn);
    d.title = name.unwrap_or(arn).to_string();
    d.summary = paragraphs([
        nonblank(m, "AlarmDescription", "Message")?,
        nonblank(m, "NewStateReason", "Message")?,
    ]);
    d.links.arn(arn, name.unwrap_or("Alarm"));
    d.started_ms = nonblank(m, "StateChangeTime", "Message")?.and_then(parse_time);
    Ok(vec![d.finish("Message.AlarmArn")?])
}

/// Whether `url` is one Muster may fetch for SNS (a `SigningCertURL` or a `SubscribeURL`):
/// `https://sns.<region>.amazonaws.com[.cn]` exactly (lower case, no percent-encoding), no
/// user info, no port but 443, and no backslash, space or control character anywhere.
pub fn is_aws_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    if rest
        .chars()
        .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = match authority.split_once(':') {
        None => authority,
        Some((host, "443")) => host,
        Some(_) => return false,
    };
    // Letters, digits, dots and hyphens only: no userinfo (@), no IP-literal brackets, no
    // percent-encoded dots.
    if !host
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return false;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let region = match labels.as_slice() {
        ["sns", region, "amazonaws", "com"] => region,
        ["sns", region, "amazonaws", "com", "cn"] => region,
        _ => return false,
    };
    // us-east-1, us-gov-west-1, cn-north-1, ap-southeast-5 …: hyphenated words ending in a
    // number.
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// The keys SNS signs, in order, for each message type.
fn signed_keys(message_type: &str) -> Result<&'static [&'static str], BadPayload> {
    match message_type {
        "Notification" => Ok(&[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]),
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => Ok(&[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]),
        other => Err(bad(format!(
            "Type: expected Notification, SubscriptionConfirmation or UnsubscribeConfirmation, got {other:?}"
        ))),
    }
}

fn string_to_sign_of(m: &Map<String, Value>) -> Result<String, BadPayload> {
    let keys = signed_keys(req_str(m, "Type", "")?)?;
    let mut out = String::new();
    for key in keys {
        match opt_str(m, key, "")? {
            Some(value) => {
                out.push_str(key);
                out.push('\n');
                out.push_str(value);
                out.push('\n');
            }
            // Subject only when present.
            None if *key == "Subject" => {}
            None => return Err(bad(format!("{key}: required"))),
        }
    }
    Ok(out)
}

/// The canonical string SNS signs: for the message's type, each signed key present, in the
/// documented order, as `Key\nValue\n` (Notification: Message, MessageId, Subject when
/// present, Timestamp, TopicArn, Type; the confirmations: Message, MessageId, SubscribeURL,
/// Timestamp, Token, TopicArn, Type).
pub fn string_to_sign(body: &[u8]) -> Result<String, BadPayload> {
    let v = json(body)?;
    string_to_sign_of(object(&v, "body")?)
}

/// The message's `SigningCertURL`: where its signing certificate is. Fetch it only if
/// [`is_aws_url`] accepts it.
pub fn signing_cert_url(body: &[u8]) -> Result<String, BadPayload> {
    let v = json(body)?;
    Ok(req_str(object(&v, "body")?, "SigningCertURL", "")?.to_string())
}

/// Checks the message's `Signature` (base64; `SignatureVersion` 1 = SHA1withRSA, 2 =
/// SHA256withRSA over [`string_to_sign`]) with the public key of `cert_pem`, the PEM
/// certificate fetched from its `SigningCertURL` (which the caller has checked with
/// [`is_aws_url`]). The certificate must be within its validity period.
pub fn verify(body: &[u8], cert_pem: &[u8]) -> Result<(), BadPayload> {
    use ring::signature::{
        RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
        UnparsedPublicKey, VerificationAlgorithm,
    };
    let v = json(body)?;
    let m = object(&v, "body")?;
    let text = string_to_sign_of(m)?;
    let alg: &'static dyn VerificationAlgorithm = match req_str(m, "SignatureVersion", "")? {
        "1" => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        "2" => &RSA_PKCS1_2048_8192_SHA256,
        other => {
            return Err(bad(format!(
                "SignatureVersion: expected 1 or 2, got {other:?}"
            )));
        }
    };
    let signature = base64::engine::general_purpose::STANDARD
        .decode(req_str(m, "Signature", "")?.trim())
        .map_err(|_| bad("Signature: not base64"))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem)
        .map_err(|_| bad("signing certificate: not a PEM certificate"))?;
    let cert = pem
        .parse_x509()
        .map_err(|_| bad("signing certificate: not an X.509 certificate"))?;
    if !cert.validity().is_valid() {
        return Err(bad("signing certificate: expired or not yet valid"));
    }
    let spki = cert.public_key();
    if spki.algorithm.algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
        return Err(bad("signing certificate: not an RSA key"));
    }
    UnparsedPublicKey::new(alg, &spki.subject_public_key.data[..])
        .verify(text.as_bytes(), &signature)
        .map_err(|_| bad("Signature: does not match the message and the signing certificate"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::testutil::{mangled, retyped};
    use muster_core::alert::AlertLink;
    use muster_core::incident::ItemValue;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use rsa::signature::{SignatureEncoding, Signer};
    use std::sync::OnceLock;

    /// AWS's sample notification and subscription confirmation ("HTTP/HTTPS notification
    /// JSON format", "…subscription confirmation JSON format"), and its unsubscribe one.
    const NOTIFICATION: &str = include_str!("../../tests/fixtures/alerts/sns-notification.json");
    const CONFIRMATION: &str =
        include_str!("../../tests/fixtures/alerts/sns-subscription-confirmation.json");
    const UNSUBSCRIBE: &str =
        include_str!("../../tests/fixtures/alerts/sns-unsubscribe-confirmation.json");
    /// A CloudWatch alarm delivered by SNS (the alarm keys of AWS's published samples).
    const ALARM: &str = include_str!("../../tests/fixtures/alerts/sns-alarm-notification.json");
    const ALARM_ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh";

    #[test]
    fn envelopes() {
        assert_eq!(
            parse(NOTIFICATION.as_bytes()).unwrap(),
            Envelope::Notification {
                message_id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324".into(),
                topic_arn: "arn:aws:sns:us-west-2:123456789012:MyTopic".into(),
                subject: Some("My First Message".into()),
                message: "Hello world!".into(),
            }
        );
        let Envelope::Confirmation {
            topic_arn,
            subscribe_url,
            token,
            message_id,
        } = parse(CONFIRMATION.as_bytes()).unwrap()
        else {
            panic!("not a confirmation")
        };
        assert_eq!(topic_arn, "arn:aws:sns:us-west-2:123456789012:MyTopic");
        assert!(subscribe_url.starts_with(
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn="
        ));
        assert!(token.starts_with("2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a98"));
        assert_eq!(message_id, "165545c9-2a5c-472c-8df2-7ff2be2b3b1b");
        assert!(is_aws_url(&subscribe_url));
        assert_eq!(
            parse(UNSUBSCRIBE.as_bytes()).unwrap(),
            Envelope::Unsubscribe {
                topic_arn: "arn:aws:sns:us-west-2:123456789012:MyTopic".into(),
                message_id: "47138184-6831-46b8-8f7c-afc488602d7d".into(),
            }
        );
    }

    #[test]
    fn envelope_errors_name_the_field() {
        assert_eq!(
            parse(br#"{"Type":"Notification","MessageId":"m","TopicArn":"t"}"#)
                .unwrap_err()
                .0,
            "Message: required"
        );
        assert_eq!(
            parse(br#"{"Type":"SubscriptionConfirmation","TopicArn":"t","Token":"x","MessageId":"m"}"#)
                .unwrap_err()
                .0,
            "SubscribeURL: required"
        );
        assert!(
            parse(br#"{"Type":"Gossip"}"#)
                .unwrap_err()
                .0
                .starts_with("Type: expected Notification")
        );
        assert_eq!(parse(b"{}").unwrap_err().0, "Type: required");
    }

    #[test]
    fn the_alarm_inside() {
        let Envelope::Notification {
            message, subject, ..
        } = parse(ALARM.as_bytes()).unwrap()
        else {
            panic!("not a notification")
        };
        assert_eq!(
            subject.as_deref(),
            Some("ALARM: \"ServerCpuTooHigh\" in US East (N. Virginia)")
        );
        let ev = alarm_events(&message).unwrap();
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.action, AlertAction::Trigger);
        assert_eq!(e.dedupe_key, ALARM_ARN);
        assert_eq!(e.title, "ServerCpuTooHigh");
        assert_eq!(
            e.summary.as_deref(),
            Some(
                "Goes into alarm when server CPU utilization is too high!\n\n\
                 Threshold Crossed: 1 out of the last 1 datapoints [99.50160229693434 (02/10/19 16:59:00)] \
                 was greater than the threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition)."
            )
        );
        assert_eq!(
            e.links,
            vec![AlertLink {
                item_type: "INVOLVED_RESOURCE".into(),
                value: ItemValue::Arn(ALARM_ARN.into()),
                title: Some("ServerCpuTooHigh".into()),
            }]
        );
        // 2019-10-02T17:04:40Z = 1570035880 s.
        assert_eq!(e.started_ms, Some(1_570_035_880_989));

        let mut m: Value = serde_json::from_str(&message).unwrap();
        m["NewStateValue"] = "OK".into();
        let ev = alarm_events(&m.to_string()).unwrap();
        assert_eq!(ev[0].action, AlertAction::Resolve);
        m["NewStateValue"] = "INSUFFICIENT_DATA".into();
        assert_eq!(alarm_events(&m.to_string()).unwrap(), vec![]);
        m["NewStateValue"] = "ON_FIRE".into();
        assert!(
            alarm_events(&m.to_string())
                .unwrap_err()
                .0
                .starts_with("Message.NewStateValue: expected ALARM")
        );
        m["NewStateValue"] = "ALARM".into();
        m["AlarmArn"] = "".into();
        assert!(
            alarm_events(&m.to_string())
                .unwrap_err()
                .0
                .starts_with("Message.AlarmArn: must not be empty")
        );
        assert!(
            alarm_events("Hello world!")
                .unwrap_err()
                .0
                .starts_with("Message: not a CloudWatch alarm")
        );
    }

    #[test]
    fn aws_urls() {
        for good in [
            "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:t&Token=ab",
            "https://sns.us-gov-west-1.amazonaws.com/x.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
            "https://sns.eu-central-1.amazonaws.com:443/x.pem",
            "https://sns.ap-southeast-5.amazonaws.com",
        ] {
            assert!(is_aws_url(good), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "HTTPS://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.cn.evil.com/",
            "https://sns.us-east-1.amazonaws.com@evil.com/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
            "https://evil.com#@sns.us-east-1.amazonaws.com/",
            "https://evil.com/?sns.us-east-1.amazonaws.com",
            "https://evil.com\\@sns.us-east-1.amazonaws.com/",
            "https://sns.us-east-1.amazonaws.com\\@evil.com/",
            "https://sns.us-east-1.amazonaws.com%2eevil.com/",
            "https://sns%2eus-east-1.amazonaws.com/",
            "https://sns.us-east-1.amazonaws%2ecom/",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://sns.us-east-1.amazonaws.com:80/x.pem",
            "https://sns.us-east-1.amazonaws.com:/x.pem",
            "https://sns.us-east-1.amazonaws.com:443:443/x.pem",
            "https://sns.us-east-1.amazonaws.com./x.pem",
            "https://SNS.US-EAST-1.AMAZONAWS.COM/x.pem",
            "https://sqs.us-east-1.amazonaws.com/x.pem",
            "https://sns.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.us-east-1.evil.amazonaws.com/x.pem",
            "https://evil.sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east.amazonaws.com/x.pem",
            "https://sns.-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-.amazonaws.com/x.pem",
            "https://52.94.133.131/x.pem",
            "https://[::1]/x.pem",
            "https://[2600:1f18::1]:443/x.pem",
            "https://0x7f000001/x.pem",
            "https:///sns.us-east-1.amazonaws.com/x.pem",
            "https:sns.us-east-1.amazonaws.com/x.pem",
            "//sns.us-east-1.amazonaws.com/x.pem",
            " https://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.pem\n",
            "https://sns.us-east-1.amazonaws.com/x pem",
            "https://sns.us-east-1.amazonaws.com\t/x.pem",
            "https://sns.us-east-1.amazonaws.com.cn.cn/x.pem",
            "https://sns.us-east-1.amazonaws.cn/x.pem",
            "https://ѕns.us-east-1.amazonaws.com/x.pem",
            "",
        ] {
            assert!(!is_aws_url(bad), "{bad:?}");
        }
    }

    /// The canonical string for AWS's sample notification, written out by hand.
    const NOTIFICATION_STRING: &str = "Message\nHello world!\n\
        MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
        Subject\nMy First Message\n\
        Timestamp\n2012-05-02T00:54:06.655Z\n\
        TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
        Type\nNotification\n";

    #[test]
    fn strings_to_sign() {
        assert_eq!(
            string_to_sign(NOTIFICATION.as_bytes()).unwrap(),
            NOTIFICATION_STRING
        );
        // Without a Subject, no Subject lines.
        let mut v: Value = serde_json::from_str(NOTIFICATION).unwrap();
        v.as_object_mut().unwrap().remove("Subject");
        assert_eq!(
            string_to_sign(&serde_json::to_vec(&v).unwrap()).unwrap(),
            NOTIFICATION_STRING.replace("Subject\nMy First Message\n", "")
        );
        let c: Value = serde_json::from_str(CONFIRMATION).unwrap();
        let want = format!(
            "Message\n{}\nMessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\nSubscribeURL\n{}\n\
             Timestamp\n2012-04-26T20:45:04.751Z\nToken\n{}\nTopicArn\n\
             arn:aws:sns:us-west-2:123456789012:MyTopic\nType\nSubscriptionConfirmation\n",
            c["Message"].as_str().unwrap(),
            c["SubscribeURL"].as_str().unwrap(),
            c["Token"].as_str().unwrap(),
        );
        assert_eq!(string_to_sign(CONFIRMATION.as_bytes()).unwrap(), want);
        assert!(
            string_to_sign(UNSUBSCRIBE.as_bytes())
                .unwrap()
                .ends_with("Type\nUnsubscribeConfirmation\n")
        );
        let mut v = c.clone();
        v.as_object_mut().unwrap().remove("Token");
        assert_eq!(
            string_to_sign(&serde_json::to_vec(&v).unwrap())
                .unwrap_err()
                .0,
            "Token: required"
        );
    }

    /// An RSA key made for this test run, and a self-signed certificate for its public key.
    fn signer() -> &'static (rsa::RsaPrivateKey, String) {
        static KEY: OnceLock<(rsa::RsaPrivateKey, String)> = OnceLock::new();
        KEY.get_or_init(|| {
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
            let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
            let pair = rcgen::KeyPair::from_pem(&pkcs8).unwrap();
            let params =
                rcgen::CertificateParams::new(vec!["sns.amazonaws.com".to_string()]).unwrap();
            let cert = params.self_signed(&pair).unwrap();
            (key, cert.pem())
        })
    }

    /// `body` with `Signature` set to base64(RSA-PKCS1v15(hash, text)) and `version`.
    fn signed(body: &str, text: &str, version: &str) -> Vec<u8> {
        let (key, _) = signer();
        let sig = match version {
            "1" => SigningKey::<sha1::Sha1>::new(key.clone())
                .sign(text.as_bytes())
                .to_vec(),
            _ => SigningKey::<sha2::Sha256>::new(key.clone())
                .sign(text.as_bytes())
                .to_vec(),
        };
        let mut v: Value = serde_json::from_str(body).unwrap();
        v["SignatureVersion"] = version.into();
        v["Signature"] = base64::engine::general_purpose::STANDARD.encode(sig).into();
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let cert = signer().1.as_bytes();
        for version in ["1", "2"] {
            let body = signed(NOTIFICATION, NOTIFICATION_STRING, version);
            assert_eq!(verify(&body, cert), Ok(()), "version {version}");

            // Any signed field changed: refused.
            for (field, value) in [
                ("Message", "Hello world?"),
                ("Subject", "My Second Message"),
                ("TopicArn", "arn:aws:sns:us-west-2:123456789012:Other"),
                ("MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf325"),
                ("Timestamp", "2012-05-02T00:54:06.656Z"),
            ] {
                let mut v: Value = serde_json::from_slice(&body).unwrap();
                v[field] = value.into();
                let err = verify(&serde_json::to_vec(&v).unwrap(), cert).unwrap_err();
                assert!(
                    err.0.starts_with("Signature: does not match"),
                    "{field}: {err}"
                );
            }
            // A Subject removed: refused.
            let mut v: Value = serde_json::from_slice(&body).unwrap();
            v.as_object_mut().unwrap().remove("Subject");
            assert!(verify(&serde_json::to_vec(&v).unwrap(), cert).is_err());
            // An unsigned field (SigningCertURL) may change without breaking the signature.
            let mut v: Value = serde_json::from_slice(&body).unwrap();
            v["UnsubscribeURL"] = "https://sns.us-west-2.amazonaws.com/?x".into();
            assert_eq!(verify(&serde_json::to_vec(&v).unwrap(), cert), Ok(()));
        }
        // The version says which hash: a SHA-256 signature labelled 1 fails.
        let mut v: Value =
            serde_json::from_slice(&signed(NOTIFICATION, NOTIFICATION_STRING, "2")).unwrap();
        v["SignatureVersion"] = "1".into();
        assert!(verify(&serde_json::to_vec(&v).unwrap(), cert).is_err());
    }

    #[test]
    fn a_signed_confirmation_verifies() {
        let cert = signer().1.as_bytes();
        let text = string_to_sign(CONFIRMATION.as_bytes()).unwrap();
        // The string itself is checked against a hand-written one in strings_to_sign.
        let body = signed(CONFIRMATION, &text, "1");
        assert_eq!(verify(&body, cert), Ok(()));
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        v["SubscribeURL"] =
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=y"
                .into();
        assert!(verify(&serde_json::to_vec(&v).unwrap(), cert).is_err());
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        v["Token"] = "0000".into();
        assert!(verify(&serde_json::to_vec(&v).unwrap(), cert).is_err());
    }

    #[test]
    fn signing_cert_urls() {
        let v: Value = serde_json::from_str(NOTIFICATION).unwrap();
        assert_eq!(
            signing_cert_url(NOTIFICATION.as_bytes()).unwrap(),
            "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
        );
        let mut v = v;
        v.as_object_mut().unwrap().remove("SigningCertURL");
        assert_eq!(
            signing_cert_url(&serde_json::to_vec(&v).unwrap())
                .unwrap_err()
                .0,
            "SigningCertURL: required"
        );
        v["SigningCertURL"] = 7.into();
        assert!(signing_cert_url(&serde_json::to_vec(&v).unwrap()).is_err());
        assert!(signing_cert_url(b"[]").is_err());
    }

    #[test]
    fn verify_errors() {
        let cert = signer().1.as_bytes();
        let body = signed(NOTIFICATION, NOTIFICATION_STRING, "2");
        // Another key's certificate.
        let other = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        let err = verify(&body, other.cert.pem().as_bytes()).unwrap_err();
        assert_eq!(err.0, "signing certificate: not an RSA key");
        let err = verify(
            &body,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap_err();
        assert!(err.0.starts_with("signing certificate: "), "{err}");
        assert!(verify(&body, b"").is_err());
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        v["SignatureVersion"] = "3".into();
        assert_eq!(
            verify(&serde_json::to_vec(&v).unwrap(), cert)
                .unwrap_err()
                .0,
            "SignatureVersion: expected 1 or 2, got \"3\""
        );
        v["SignatureVersion"] = "2".into();
        v["Signature"] = "not base64!".into();
        assert_eq!(
            verify(&serde_json::to_vec(&v).unwrap(), cert)
                .unwrap_err()
                .0,
            "Signature: not base64"
        );
        v["Signature"] = "AAAA".into();
        assert!(
            verify(&serde_json::to_vec(&v).unwrap(), cert)
                .unwrap_err()
                .0
                .starts_with("Signature: does not match")
        );
    }

    #[test]
    fn never_panics() {
        let cert = signer().1.as_bytes();
        let signed_body = signed(NOTIFICATION, NOTIFICATION_STRING, "1");
        for body in [
            NOTIFICATION.as_bytes(),
            CONFIRMATION.as_bytes(),
            ALARM.as_bytes(),
            &signed_body,
        ] {
            for m in mangled(body).into_iter().chain(retyped(body)) {
                let _ = parse(&m);
                let _ = string_to_sign(&m);
                let _ = verify(&m, cert);
                let _ = verify(body, &m);
                if let Ok(s) = std::str::from_utf8(&m) {
                    let _ = is_aws_url(s);
                }
            }
        }
        let Envelope::Notification { message, .. } = parse(ALARM.as_bytes()).unwrap() else {
            panic!()
        };
        for m in mangled(message.as_bytes())
            .into_iter()
            .chain(retyped(message.as_bytes()))
        {
            if let Ok(s) = std::str::from_utf8(&m)
                && let Ok(ev) = alarm_events(s)
            {
                for e in ev {
                    assert!(!e.dedupe_key.trim().is_empty());
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn urls_never_panic_and_only_aws_hosts_pass(s in "\\PC{0,80}") {
            if is_aws_url(&s) {
                proptest::prop_assert!(s.starts_with("https://sns."));
            }
        }
    }
}
