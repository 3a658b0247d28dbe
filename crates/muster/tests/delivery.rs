//! Activation codes, delivery through providers, replies and opt-out, against a real server:
//! the outbox file, a local HTTP fake of the Twilio API (checking basic auth and the form
//! fields the real API requires), and signed Twilio webhooks.

mod common;

use common::code;

use aws_sdk_ssmcontacts::types::{
    ActivationStatus, ChannelType, ContactChannelAddress, ContactType, Plan,
};
use common::twilio::{FROM, FakeTwilio, PUBLIC, TOKEN, post_params};
use common::{Backend, TestServer};
use muster_core::{Clock, ManualClock, SystemClock};
use std::sync::Arc;

async fn start(backend: Backend, clock: ManualClock, twilio: &FakeTwilio) -> Option<TestServer> {
    common::twilio::start(backend, Arc::new(clock), twilio).await
}

async fn contact(s: &TestServer, alias: &str) -> String {
    s.client
        .create_contact()
        .alias(alias)
        .display_name("Akua Mansa")
        .r#type(ContactType::Personal)
        .plan(Plan::builder().set_stages(Some(vec![])).build())
        .send()
        .await
        .unwrap()
        .contact_arn
}

async fn channel(
    s: &TestServer,
    c: &str,
    name: &str,
    t: ChannelType,
    addr: &str,
    defer: bool,
) -> String {
    s.client
        .create_contact_channel()
        .contact_id(c)
        .name(name)
        .r#type(t)
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address(addr)
                .build(),
        )
        .defer_activation(defer)
        .send()
        .await
        .unwrap()
        .contact_channel_arn
}

async fn status(s: &TestServer, ch: &str) -> ActivationStatus {
    s.client
        .get_contact_channel()
        .contact_channel_id(ch)
        .send()
        .await
        .unwrap()
        .activation_status
        .unwrap()
}

async fn activate(s: &TestServer, ch: &str, c: &str) -> Result<(), String> {
    s.client
        .activate_contact_channel()
        .contact_channel_id(ch)
        .activation_code(c)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{}: {:?}",
                code(&e),
                e.as_service_error().map(|x| x.to_string())
            )
        })
}

async fn email_activation_through_the_outbox(backend: Backend) {
    let twilio = FakeTwilio::start().await;
    let clock = ManualClock::new(muster_core::SystemClock.now_ms());
    let Some(s) = start(backend, clock.clone(), &twilio).await else {
        return muster_store::testing::postgres_skip_note("email_activation_through_the_outbox");
    };
    let c = contact(&s, "akua").await;
    let ch = channel(
        &s,
        &c,
        "work",
        ChannelType::Email,
        "akua@example.com",
        false,
    )
    .await;
    let lines = s.outbox();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let msg = &lines[0];
    assert_eq!(msg["kind"], "activation");
    assert_eq!(msg["channel_type"], "EMAIL");
    assert_eq!(msg["address"], "akua@example.com");
    let the_code = msg["activation_code"].as_str().unwrap().to_string();
    assert_eq!(the_code.len(), 6);
    assert!(msg["body"].as_str().unwrap().contains(&the_code));
    // The link's token is the one docs/providers.md defines, computed here from the
    // server's master key without Muster's code.
    assert_eq!(
        msg["unsubscribe_url"].as_str().unwrap(),
        format!(
            "{PUBLIC}/u/{}",
            common::links::unsubscribe_token(&common::links::master_key(&s), "akua@example.com")
        )
    );
    assert_eq!(status(&s, &ch).await, ActivationStatus::NotActivated);

    // Wrong codes are refused and counted; the right one activates.
    let wrong = if the_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    let e = activate(&s, &ch, wrong).await.unwrap_err();
    assert!(
        e.starts_with("ValidationException") && e.contains("4 tries left"),
        "{e}"
    );
    activate(&s, &ch, &the_code).await.unwrap();
    assert_eq!(status(&s, &ch).await, ActivationStatus::Activated);
    // Single use.
    assert!(
        activate(&s, &ch, &the_code).await.is_ok(),
        "re-activating an active channel is a no-op"
    );

    // Deactivate, then a new code; the old one no longer works.
    s.client
        .deactivate_contact_channel()
        .contact_channel_id(&ch)
        .send()
        .await
        .unwrap();
    assert_eq!(status(&s, &ch).await, ActivationStatus::NotActivated);
    s.client
        .send_activation_code()
        .contact_channel_id(&ch)
        .send()
        .await
        .unwrap();
    let new_code = s.outbox().last().unwrap()["activation_code"]
        .as_str()
        .unwrap()
        .to_string();
    if new_code != the_code {
        assert!(activate(&s, &ch, &the_code).await.is_err());
    }
    // Five wrong tries use the code up.
    for _ in 0..5 {
        let bad = if new_code == "999999" {
            "999998"
        } else {
            "999999"
        };
        let _ = activate(&s, &ch, bad).await;
    }
    let e = activate(&s, &ch, &new_code).await.unwrap_err();
    assert!(e.starts_with("ValidationException"), "{e}");
    assert_eq!(status(&s, &ch).await, ActivationStatus::NotActivated);

    // Expiry after 24 hours.
    s.client
        .send_activation_code()
        .contact_channel_id(&ch)
        .send()
        .await
        .unwrap();
    let code3 = s.outbox().last().unwrap()["activation_code"]
        .as_str()
        .unwrap()
        .to_string();
    clock.advance_ms(24 * 3600 * 1000 + 1);
    let e = activate(&s, &ch, &code3).await.unwrap_err();
    assert!(e.contains("expired"), "{e}");

    // The resend limit: 5 per hour per channel (a fresh channel, activation deferred).
    let ch2 = channel(
        &s,
        &c,
        "home",
        ChannelType::Email,
        "akua.home@example.com",
        true,
    )
    .await;
    let before = s.outbox().len();
    for _ in 0..5 {
        s.client
            .send_activation_code()
            .contact_channel_id(&ch2)
            .send()
            .await
            .unwrap();
    }
    let err = s
        .client
        .send_activation_code()
        .contact_channel_id(&ch2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ServiceQuotaExceededException");
    assert_eq!(
        s.outbox().len(),
        before + 5,
        "the refused send sent nothing"
    );
    clock.advance_ms(3600 * 1000 + 1);
    s.client
        .send_activation_code()
        .contact_channel_id(&ch2)
        .send()
        .await
        .unwrap();

    // One-click unsubscribe from the e-mail link: GET shows a page, POST opts out.
    let link = s.outbox().last().unwrap()["unsubscribe_url"]
        .as_str()
        .unwrap()
        .replace(PUBLIC, &format!("http://{}", s.addr));
    let page = common::get(&link).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_never_framed(&page);
    assert!(page.text().await.unwrap().contains("<form method=post"));
    let resp = common::http()
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_never_framed(&resp);
    let err = s
        .client
        .send_activation_code()
        .contact_channel_id(&ch2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "ValidationException",
        "an unsubscribed address gets no codes"
    );
    let forged = format!("http://{}/u/not-a-token", s.addr);
    let refused = common::get(&forged).await.unwrap();
    assert_eq!(refused.status(), 404);
    assert_never_framed(&refused);
}

/// The `/u/` and `/a/` pages hold a button that acts: no other site may frame them
/// (clickjacking), as the console's pages.
fn assert_never_framed(r: &reqwest::Response) {
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "DENY", "{h:?}");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.split(';').any(|d| d.trim() == "frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h["referrer-policy"], "no-referrer", "{h:?}");
    assert_eq!(h["cache-control"], "no-store", "{h:?}");
}

async fn send_code(s: &TestServer, ch: &str) -> Result<(), String> {
    s.client
        .send_activation_code()
        .contact_channel_id(ch)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{}: {:?}",
                code(&e),
                e.as_service_error().map(|x| x.to_string())
            )
        })
}

/// The code of the latest activation message to `address` in the outbox.
fn code_sent_to(s: &TestServer, address: &str) -> String {
    s.outbox()
        .iter()
        .rev()
        .find(|m| m["kind"] == "activation" && m["address"] == address)
        .and_then(|m| m["activation_code"].as_str())
        .unwrap_or_else(|| panic!("no activation code sent to {address}"))
        .to_string()
}

/// Another valid-looking code than `code`.
fn other_than(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

/// The rules of docs/providers.md at their edges, on the injected clock: a code is valid 24
/// hours (accepted 1 ms before, refused at 24 h); each of 5 wrong tries says how many are
/// left, 4 leave the code usable and the fifth uses it up even when the right code follows;
/// at most 5 sends to a channel per hour (the 5th accepted, the 6th refused until exactly
/// one hour after the oldest send in the window).
async fn activation_rules_at_their_boundaries(backend: Backend) {
    const MIN: i64 = 60 * 1000;
    const HOUR: i64 = 60 * MIN;
    let twilio = FakeTwilio::start().await;
    let clock = ManualClock::new(muster_core::SystemClock.now_ms());
    let Some(s) = start(backend, clock.clone(), &twilio).await else {
        return muster_store::testing::postgres_skip_note("activation_rules_at_their_boundaries");
    };
    let c = contact(&s, "yaw").await;

    // Lifetime: two channels get their codes at t0; one is used 1 ms before 24 h, the
    // other at 24 h.
    let t0 = clock.now_ms();
    let (early_addr, late_addr) = ("yaw.early@example.com", "yaw.late@example.com");
    let early = channel(&s, &c, "early", ChannelType::Email, early_addr, false).await;
    let late = channel(&s, &c, "late", ChannelType::Email, late_addr, false).await;
    clock.set_ms(t0 + 24 * HOUR - 1);
    activate(&s, &early, &code_sent_to(&s, early_addr))
        .await
        .unwrap();
    assert_eq!(status(&s, &early).await, ActivationStatus::Activated);
    clock.set_ms(t0 + 24 * HOUR);
    let e = activate(&s, &late, &code_sent_to(&s, late_addr))
        .await
        .unwrap_err();
    assert!(
        e.starts_with("ValidationException") && e.contains("expired"),
        "{e}"
    );
    assert_eq!(status(&s, &late).await, ActivationStatus::NotActivated);

    // Tries: each wrong one says how many are left; after four the right code still works.
    let four_addr = "yaw.four@example.com";
    let four = channel(&s, &c, "four", ChannelType::Email, four_addr, false).await;
    let right = code_sent_to(&s, four_addr);
    for left in [4, 3, 2, 1] {
        let e = activate(&s, &four, &other_than(&right)).await.unwrap_err();
        assert!(
            e.starts_with("ValidationException")
                && e.contains(&format!("wrong code ({left} tries left)")),
            "{e}"
        );
    }
    activate(&s, &four, &right).await.unwrap();
    assert_eq!(status(&s, &four).await, ActivationStatus::Activated);

    // The fifth wrong try uses the code up: the right code after it is refused.
    let five_addr = "yaw.five@example.com";
    let five = channel(&s, &c, "five", ChannelType::Email, five_addr, false).await;
    let right = code_sent_to(&s, five_addr);
    for left in [4, 3, 2, 1] {
        let e = activate(&s, &five, &other_than(&right)).await.unwrap_err();
        assert!(e.contains(&format!("({left} tries left)")), "{e}");
    }
    let e = activate(&s, &five, &other_than(&right)).await.unwrap_err();
    assert!(
        e.starts_with("ValidationException") && e.contains("that was the last try"),
        "{e}"
    );
    let e = activate(&s, &five, &right).await.unwrap_err();
    assert!(
        e.starts_with("ValidationException") && e.contains("send a new one"),
        "{e}"
    );
    assert_eq!(status(&s, &five).await, ActivationStatus::NotActivated);

    // Sends: one at t1, four more at t1 + 10 min (the fifth in the hour is accepted), the
    // sixth refused until t1 + 1 h exactly, when the one sent at t1 leaves the window.
    let resend_addr = "yaw.resend@example.com";
    let resend = channel(&s, &c, "resend", ChannelType::Email, resend_addr, true).await;
    let sent = |s: &TestServer| {
        s.outbox()
            .iter()
            .filter(|m| m["kind"] == "activation" && m["address"] == resend_addr)
            .count()
    };
    assert_eq!(sent(&s), 0, "activation deferred");
    let t1 = clock.now_ms();
    send_code(&s, &resend).await.unwrap();
    clock.set_ms(t1 + 10 * MIN);
    for n in 2..=5 {
        send_code(&s, &resend)
            .await
            .unwrap_or_else(|e| panic!("send {n} in the hour: {e}"));
    }
    assert_eq!(sent(&s), 5);
    let e = send_code(&s, &resend).await.unwrap_err();
    assert!(
        e.starts_with("ServiceQuotaExceededException") && e.contains("try again in 3000 seconds"),
        "{e}"
    );
    clock.set_ms(t1 + HOUR - 1);
    let e = send_code(&s, &resend).await.unwrap_err();
    assert!(
        e.starts_with("ServiceQuotaExceededException") && e.contains("try again in 1 seconds"),
        "{e}"
    );
    assert_eq!(sent(&s), 5, "refused sends send nothing");
    clock.set_ms(t1 + HOUR);
    send_code(&s, &resend).await.unwrap();
    assert_eq!(sent(&s), 6);
    // The four sent at t1 + 10 min and this one fill the window again.
    let e = send_code(&s, &resend).await.unwrap_err();
    assert!(
        e.starts_with("ServiceQuotaExceededException") && e.contains("try again in 600 seconds"),
        "{e}"
    );
    // The latest code is the one that works.
    activate(&s, &resend, &code_sent_to(&s, resend_addr))
        .await
        .unwrap();
    assert_eq!(status(&s, &resend).await, ActivationStatus::Activated);
}

async fn sms_opt_out_and_in_over_twilio(backend: Backend) {
    let twilio = FakeTwilio::start().await;
    let clock = ManualClock::new(muster_core::SystemClock.now_ms());
    let Some(s) = start(backend, clock, &twilio).await else {
        return muster_store::testing::postgres_skip_note("sms_opt_out_and_in_over_twilio");
    };
    let c = contact(&s, "kwame").await;
    let sms = channel(&s, &c, "cell", ChannelType::Sms, "+12065550123", false).await;
    let voice = channel(
        &s,
        &c,
        "cell voice",
        ChannelType::Voice,
        "+12065550123",
        false,
    )
    .await;
    let rx = twilio.received();
    assert_eq!(rx.len(), 2, "both codes went to the Twilio API");
    assert_eq!(rx[0].resource, "Messages.json");
    assert_eq!(rx[0].get("To"), "+12065550123");
    assert_eq!(rx[0].get("From"), "+15005550006");
    assert_eq!(
        rx[0].get("StatusCallback"),
        format!("{PUBLIC}/hooks/twilio/status")
    );
    assert_eq!(rx[1].resource, "Calls.json");
    let sms_code = rx[0].activation_code();
    activate(&s, &sms, &sms_code).await.unwrap();
    assert_eq!(status(&s, &sms).await, ActivationStatus::Activated);

    // Status callbacks are verified and recorded against the delivery they name.
    let sid = rx[0].sid.as_str();
    let cb = [
        ("MessageSid", sid),
        ("MessageStatus", "delivered"),
        ("To", "+12065550123"),
    ];
    let (st, _) = common::twilio::post(&s, "/hooks/twilio/status", &cb, Some("wrong-token")).await;
    assert_eq!(st, 403);
    let (st, _) = common::twilio::post(&s, "/hooks/twilio/status", &cb, Some(TOKEN)).await;
    assert_eq!(st, 204);
    let store = s.running.as_ref().unwrap().store.clone();
    let events = store.delivery_events(sid).await.unwrap();
    assert_eq!(events.len(), 1, "the forged callback was not recorded");
    assert_eq!(events[0].status, "DELIVERED");
    let delivery = store
        .get_delivery(
            events[0]
                .message_id
                .expect("matched to the code's delivery"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.kind, "activation");
    assert_eq!(delivery.provider, "twilio");
    assert_eq!(delivery.status, "DELIVERED");

    // A forged or unsigned reply changes nothing.
    let (st, _) = common::twilio::post(
        &s,
        "/hooks/twilio/sms",
        &[("From", "+12065550123"), ("Body", "STOP")],
        Some("wrong-token"),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = common::twilio::post(
        &s,
        "/hooks/twilio/sms",
        &[("From", "+12065550123"), ("Body", "STOP")],
        None,
    )
    .await;
    assert_eq!(st, 403);
    assert_eq!(status(&s, &sms).await, ActivationStatus::Activated);

    // STOP (any case, whole message): both channels with the number stop; confirmed once.
    let (st, twiml) = common::twilio::post(
        &s,
        "/hooks/twilio/sms",
        &[("From", "+12065550123"), ("Body", " stop ")],
        Some(TOKEN),
    )
    .await;
    assert_eq!(st, 200);
    assert!(twiml.contains("<Message>"), "{twiml}");
    assert_eq!(status(&s, &sms).await, ActivationStatus::NotActivated);
    assert_eq!(status(&s, &voice).await, ActivationStatus::NotActivated);
    let (_, twiml) = common::twilio::post(
        &s,
        "/hooks/twilio/sms",
        &[("From", "+12065550123"), ("Body", "UNSUBSCRIBE")],
        Some(TOKEN),
    )
    .await;
    assert!(
        !twiml.contains("<Message>"),
        "confirmation only once: {twiml}"
    );
    // Nothing reaches the device now.
    let sent = twilio.received().len();
    let err = s
        .client
        .send_activation_code()
        .contact_channel_id(&sms)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(activate(&s, &sms, &sms_code).await.is_err());
    assert_eq!(twilio.received().len(), sent);

    // A message that merely contains "stop" is not a keyword.
    let (_, twiml) = common::twilio::post(
        &s,
        "/hooks/twilio/sms",
        &[("From", "+12065550999"), ("Body", "please stop the alarm")],
        Some(TOKEN),
    )
    .await;
    assert!(
        twiml.contains("STOP to opt out"),
        "answered with the help text: {twiml}"
    );
    let events = s
        .running
        .as_ref()
        .unwrap()
        .store
        .consent_events("+12065550999", 10)
        .await
        .unwrap();
    assert!(events.is_empty(), "not an opt-out");

    // START opts back in and sends new codes to both channels.
    let (_, twiml) = common::twilio::post(
        &s,
        "/hooks/twilio/sms",
        &[("From", "+12065550123"), ("Body", "Start")],
        Some(TOKEN),
    )
    .await;
    assert!(twiml.contains("<Message>"), "{twiml}");
    assert_eq!(
        twilio.received().len(),
        sent + 2,
        "new codes to SMS and VOICE"
    );
    assert_eq!(
        status(&s, &sms).await,
        ActivationStatus::NotActivated,
        "must be activated again"
    );
    let new_code = twilio.received()[sent..]
        .iter()
        .find(|r| r.is_sms())
        .expect("a new code by SMS")
        .activation_code();
    activate(&s, &sms, &new_code).await.unwrap();
    assert_eq!(status(&s, &sms).await, ActivationStatus::Activated);

    // HELP says who is sending.
    let (_, twiml) = common::twilio::post(
        &s,
        "/hooks/twilio/sms",
        &[("From", "+12065550123"), ("Body", "help")],
        Some(TOKEN),
    )
    .await;
    assert!(twiml.contains("Muster"), "{twiml}");

    // The vCard lists the number Muster sends from.
    let card = common::get(format!("http://{}/muster.vcf", s.addr))
        .await
        .unwrap();
    assert_eq!(card.status(), 200);
    assert!(
        card.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/vcard")
    );
    let text = card.text().await.unwrap();
    assert!(text.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{text}");
    assert!(text.contains("+15005550006"), "{text}");
}

async fn email_replies(backend: Backend) {
    let twilio = FakeTwilio::start().await;
    let Some(s) = start(
        backend,
        ManualClock::new(muster_core::SystemClock.now_ms()),
        &twilio,
    )
    .await
    else {
        return muster_store::testing::postgres_skip_note("email_replies");
    };
    let c = contact(&s, "efua").await;
    let ch = channel(
        &s,
        &c,
        "mail",
        ChannelType::Email,
        "efua@example.com",
        false,
    )
    .await;
    let the_code = s.outbox()[0]["activation_code"]
        .as_str()
        .unwrap()
        .to_string();
    activate(&s, &ch, &the_code).await.unwrap();
    let raw = "From: Efua <efua@example.com>\r\nTo: pager@example.test\r\nSubject: Re: Muster\r\n\
               Content-Type: text/plain; charset=utf-8\r\n\r\nUnsubscribe\r\n\r\n> earlier text\r\n";
    let post = |secret: &'static str| {
        common::http()
            .post(format!("http://{}/hooks/email", s.addr))
            .header("x-muster-secret", secret)
            .body(raw)
            .send()
    };
    assert_eq!(post("wrong").await.unwrap().status(), 403);
    assert_eq!(status(&s, &ch).await, ActivationStatus::Activated);
    let resp = post("mail-hook-secret").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(status(&s, &ch).await, ActivationStatus::NotActivated);
    assert_eq!(s.outbox().last().unwrap()["kind"], "opt_out_confirmation");

    // The consent history, as an operator sees it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_muster"))
        .args([
            "consent",
            "efua@example.com",
            "--database-url",
            &s.database_url,
            "--data-dir",
        ])
        .arg(s.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("efua@example.com: opted out"), "{text}");
    assert!(
        text.contains("OPT_OUT\temail\t\"From: Efua <efua@example.com>"),
        "{text}"
    );
    assert!(text.contains("Unsubscribe"), "{text}");
}

/// The Twilio fake refuses what the real API refuses, in Twilio's error shape: a body that is
/// not a form, numbers that are not E.164, wrong Basic credentials. (Muster's sends in the
/// other tests pass these checks.)
#[tokio::test]
async fn twilio_fake_refuses_what_twilio_refuses() {
    use common::twilio::{FROM, SID};
    let twilio = FakeTwilio::start().await;
    let url = format!("{}/2010-04-01/Accounts/{SID}/Messages.json", twilio.base);
    let form = |to: &str, from: &str| {
        format!(
            "To={}&From={}&Body=hello",
            common::twilio::enc(to),
            common::twilio::enc(from)
        )
    };
    let post = async |content_type: &str, body: String, user: &str, pass: &str| {
        let r = common::http()
            .post(&url)
            .basic_auth(user, Some(pass))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        let json: serde_json::Value = r.json().await.unwrap();
        (status, json, challenge)
    };
    const FORM: &str = "application/x-www-form-urlencoded";

    // Well-formed: accepted (a charset parameter is fine).
    let (st, json, _) = post(
        "application/x-www-form-urlencoded; charset=utf-8",
        form("+12065550123", FROM),
        SID,
        TOKEN,
    )
    .await;
    assert_eq!(st, 201, "{json}");
    assert!(json["sid"].as_str().unwrap().starts_with("SM"));

    // The same parameters as JSON: Twilio sees no parameters.
    let (st, json, _) = post(
        "application/json",
        serde_json::json!({"To": "+12065550123", "From": FROM, "Body": "hello"}).to_string(),
        SID,
        TOKEN,
    )
    .await;
    assert_eq!((st, json["code"].as_u64()), (400, Some(21604)), "{json}");
    assert_eq!(json["status"], 400);
    assert_eq!(
        json["more_info"],
        "https://www.twilio.com/docs/errors/21604"
    );

    // Numbers that are not E.164.
    for to in [
        "2065550123",
        "+1 206 555 0123",
        "+02065550123",
        "+1206555012345678",
        "+",
    ] {
        let (st, json, _) = post(FORM, form(to, FROM), SID, TOKEN).await;
        assert_eq!(
            (st, json["code"].as_u64()),
            (400, Some(21211)),
            "{to}: {json}"
        );
        assert_eq!(
            json["message"],
            format!("The 'To' number {to} is not a valid phone number.")
        );
    }
    let (st, json, _) = post(FORM, form("+12065550123", "15005550006"), SID, TOKEN).await;
    assert_eq!((st, json["code"].as_u64()), (400, Some(21212)), "{json}");

    // Basic authentication with the account SID and the auth token, nothing else.
    for (user, pass) in [
        (SID, "wrong-token"),
        ("AC00000000000000000000000000000002", TOKEN),
    ] {
        let (st, json, challenge) = post(FORM, form("+12065550123", FROM), user, pass).await;
        assert_eq!((st, json["code"].as_u64()), (401, Some(20003)), "{json}");
        assert_eq!(challenge.as_deref(), Some("Basic realm=\"Twilio API\""));
    }
    let r = common::http()
        .post(&url)
        .header("content-type", FORM)
        .body(form("+12065550123", FROM))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no credentials");
    assert_eq!(
        twilio.received().len(),
        1,
        "only the well-formed request was taken"
    );
}

/// With the gateway's authserv-id configured, an e-mail reply is acted on only when that
/// gateway's Authentication-Results vouch for its From: here "Unsubscribe" (which opts the
/// address out, so the channel needs activating again) from a sender nothing vouches for
/// changes nothing and is answered nothing; the same reply with an aligned pass acts.
async fn email_replies_need_an_authenticated_sender(backend: Backend) {
    let twilio = FakeTwilio::start().await;
    let clock = ManualClock::new(muster_core::SystemClock.now_ms());
    let providers = twilio.providers();
    let Some(s) = common::start_with(backend, Arc::new(clock), move |s| {
        s.providers = providers;
        s.public_url = Some(PUBLIC.into());
        s.email_webhook_secret = Some("mail-hook-secret".into());
        s.email_authserv_id = Some("mx.muster.test".into());
    })
    .await
    else {
        return muster_store::testing::postgres_skip_note(
            "email_replies_need_an_authenticated_sender",
        );
    };
    let c = contact(&s, "efua").await;
    let ch = channel(
        &s,
        &c,
        "mail",
        ChannelType::Email,
        "efua@example.com",
        false,
    )
    .await;
    let the_code = s.outbox()[0]["activation_code"]
        .as_str()
        .unwrap()
        .to_string();
    activate(&s, &ch, &the_code).await.unwrap();
    let post = async |auth_results: &[&str]| {
        let mut raw = String::new();
        for h in auth_results {
            raw.push_str(&format!("Authentication-Results: {h}\r\n"));
        }
        raw.push_str(
            "From: Efua <efua@example.com>\r\nTo: pager@example.test\r\nSubject: Re: Muster\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nUnsubscribe\r\n",
        );
        let resp = common::http()
            .post(format!("http://{}/hooks/email", s.addr))
            .header("x-muster-secret", "mail-hook-secret")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json::<serde_json::Value>().await.unwrap()
    };
    let sent_before = s.outbox().len();
    for (headers, why) in [
        (
            vec![],
            "no Authentication-Results header from mx.muster.test",
        ),
        (
            vec!["evil.example; dmarc=pass header.from=example.com"],
            "no Authentication-Results header from mx.muster.test",
        ),
        (
            vec!["mx.muster.test; dmarc=fail (p=reject) header.from=example.com"],
            "dmarc=fail",
        ),
        (
            vec![
                "mx.muster.test; dkim=pass header.d=evil.example; spf=softfail smtp.mailfrom=example.com",
            ],
            "nothing vouches for example.com",
        ),
    ] {
        let answer = post(&headers).await;
        assert_eq!(answer["action"], "ignored", "{headers:?}: {answer}");
        let reason = answer["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("sender not authenticated") && reason.contains(why),
            "{headers:?}: {reason}"
        );
        assert_eq!(
            status(&s, &ch).await,
            ActivationStatus::Activated,
            "{headers:?}"
        );
    }
    assert_eq!(s.outbox().len(), sent_before, "nothing answered");

    // The gateway's header, first, with an aligned SPF pass: acted on.
    let answer = post(&[
        "mx.muster.test; dkim=none; spf=pass smtp.mailfrom=bounce@example.com",
        "evil.example; dmarc=fail",
    ])
    .await;
    assert_eq!(
        answer["action"], "OptedOut { first_time: true }",
        "{answer}"
    );
    assert_eq!(status(&s, &ch).await, ActivationStatus::NotActivated);
    assert_eq!(s.outbox().last().unwrap()["kind"], "opt_out_confirmation");
}

/// The latest message the fake Twilio accepted for `to`, as an SMS.
fn last_sms(twilio: &FakeTwilio, to: &str) -> common::twilio::Request {
    twilio.last_to(to, false).expect("an SMS to the number")
}

/// UpdateContactChannel with a new address voids the code sent to the old one and sends the
/// new address a code of its own; an update that keeps the address keeps the code.
async fn address_change_voids_the_old_code(backend: Backend) {
    let twilio = FakeTwilio::start().await;
    let clock = ManualClock::new(muster_core::SystemClock.now_ms());
    let Some(s) = start(backend, clock.clone(), &twilio).await else {
        return muster_store::testing::postgres_skip_note("address_change_voids_the_old_code");
    };
    let (old_num, new_num) = ("+12065550140", "+12065550141");
    let c = contact(&s, "abena").await;
    let ch = channel(&s, &c, "cell", ChannelType::Sms, old_num, false).await;
    let old_code = last_sms(&twilio, old_num).activation_code();
    let update = |name: &'static str, addr: &'static str| {
        s.client
            .update_contact_channel()
            .contact_channel_id(&ch)
            .name(name)
            .delivery_address(
                ContactChannelAddress::builder()
                    .simple_address(addr)
                    .build(),
            )
            .send()
    };
    // The same address (and a new name): no new code, the old one stays good.
    let before = twilio.received().len();
    update("cell phone", old_num).await.unwrap();
    assert_eq!(
        twilio.received().len(),
        before,
        "no code for an unchanged address"
    );

    // A new number: a code is sent to it at once, and the old number's code is refused.
    clock.advance_ms(1_000);
    update("cell phone", new_num).await.unwrap();
    assert_eq!(twilio.received().len(), before + 1);
    let new_code = last_sms(&twilio, new_num).activation_code();
    assert_eq!(status(&s, &ch).await, ActivationStatus::NotActivated);
    if old_code != new_code {
        let e = activate(&s, &ch, &old_code).await.unwrap_err();
        assert!(
            e.starts_with("ValidationException") && e.contains("wrong code"),
            "{e}"
        );
        assert_eq!(status(&s, &ch).await, ActivationStatus::NotActivated);
    }
    activate(&s, &ch, &new_code).await.unwrap();
    assert_eq!(status(&s, &ch).await, ActivationStatus::Activated);

    // Moving an activated channel: NOT_ACTIVATED again, and a code to the new number.
    update("cell phone", old_num).await.unwrap();
    assert_eq!(status(&s, &ch).await, ActivationStatus::NotActivated);
    let back_code = last_sms(&twilio, old_num).activation_code();
    assert_ne!(
        twilio.received().last().unwrap().sid,
        twilio.received()[0].sid,
        "a new message, not the first code"
    );
    // The channel still has its unchanged-address code while renamed only.
    update("cell", old_num).await.unwrap();
    activate(&s, &ch, &back_code).await.unwrap();
    assert_eq!(status(&s, &ch).await, ActivationStatus::Activated);

    // When the new address cannot be sent a code (the channel's hourly limit is reached), the
    // old address's code is void all the same.
    let (spare_old, spare_new) = ("+12065550142", "+12065550143");
    let spare = channel(&s, &c, "spare", ChannelType::Sms, spare_old, false).await;
    for _ in 0..4 {
        s.client
            .send_activation_code()
            .contact_channel_id(&spare)
            .send()
            .await
            .unwrap();
    }
    let spare_code = last_sms(&twilio, spare_old).activation_code();
    let sent = twilio.received().len();
    s.client
        .update_contact_channel()
        .contact_channel_id(&spare)
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address(spare_new)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        twilio.received().len(),
        sent,
        "over the limit: no code sent"
    );
    let e = activate(&s, &spare, &spare_code).await.unwrap_err();
    assert!(e.starts_with("ValidationException"), "{e}");
    assert_eq!(status(&s, &spare).await, ActivationStatus::NotActivated);
}

/// Codes to one number are limited across channels and accounts (an SMS-pumping guard).
async fn activation_floods_to_one_number(backend: Backend) {
    let twilio = FakeTwilio::start().await;
    let t0 = muster_core::SystemClock.now_ms();
    let clock = ManualClock::new(t0);
    let Some(s) = start(backend, clock.clone(), &twilio).await else {
        return muster_store::testing::postgres_skip_note("activation_floods_to_one_number");
    };
    let num = "+12065550150";
    let a = contact(&s, "esi").await;
    let b = contact(&s, "kojo").await;
    let mut chans = Vec::new();
    for i in 0..5 {
        let c = if i % 2 == 0 { &a } else { &b };
        let name = format!("cell {i}");
        chans.push(channel(&s, c, &name, ChannelType::Sms, num, true).await);
    }
    // Five codes to the number from five channels (each far under its own limit)...
    for ch in &chans {
        s.client
            .send_activation_code()
            .contact_channel_id(ch)
            .send()
            .await
            .unwrap();
    }
    let to_num = |t: &FakeTwilio| t.received().iter().filter(|r| r.get("To") == num).count();
    assert_eq!(to_num(&twilio), 5);
    // ...and no sixth, from a new channel of this account or from another account.
    let sixth = channel(&s, &a, "cell 5", ChannelType::Sms, num, false).await;
    assert_eq!(to_num(&twilio), 5, "the new channel's code was not sent");
    let err = s
        .client
        .send_activation_code()
        .contact_channel_id(&sixth)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ServiceQuotaExceededException");
    let msg = err
        .as_service_error()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        msg.contains("at most 5 activation codes can be sent to one delivery address")
            && msg.contains("try again in 3600 seconds"),
        "{msg}"
    );
    let store = s.running.as_ref().unwrap().store.clone();
    let master =
        muster::server::load_master_key(&common::settings_for(&s.data_dir(), &s.database_url))
            .unwrap();
    let other = muster_core::AccountId::parse("111122223333").unwrap();
    let (id, secret) = muster::server::create_access_key(&store, &master, &other, &SystemClock)
        .await
        .unwrap();
    let their_client = common::client(s.addr, &id, &secret);
    let their_contact = their_client
        .create_contact()
        .alias("ama")
        .r#type(ContactType::Personal)
        .plan(Plan::builder().set_stages(Some(vec![])).build())
        .send()
        .await
        .unwrap()
        .contact_arn;
    let their_channel = their_client
        .create_contact_channel()
        .contact_id(&their_contact)
        .name("cell")
        .r#type(ChannelType::Sms)
        .delivery_address(ContactChannelAddress::builder().simple_address(num).build())
        .defer_activation(true)
        .send()
        .await
        .unwrap()
        .contact_channel_arn;
    let err = their_client
        .send_activation_code()
        .contact_channel_id(&their_channel)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "ServiceQuotaExceededException",
        "across accounts"
    );
    assert_eq!(to_num(&twilio), 5);
    // Another number is not affected.
    let elsewhere = channel(&s, &a, "other", ChannelType::Sms, "+12065550151", true).await;
    s.client
        .send_activation_code()
        .contact_channel_id(&elsewhere)
        .send()
        .await
        .unwrap();

    // Both sides of the hour: refused a millisecond before, sent at the hour.
    clock.set_ms(t0 + 3_600_000 - 1);
    let err = s
        .client
        .send_activation_code()
        .contact_channel_id(&sixth)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ServiceQuotaExceededException");
    clock.set_ms(t0 + 3_600_000);
    s.client
        .send_activation_code()
        .contact_channel_id(&sixth)
        .send()
        .await
        .unwrap();
    assert_eq!(to_num(&twilio), 6);
}

/// Codes sent by one account are limited across its channels (50 an hour).
async fn activation_sends_per_account(backend: Backend) {
    let twilio = FakeTwilio::start().await;
    let t0 = muster_core::SystemClock.now_ms();
    let clock = ManualClock::new(t0);
    let Some(s) = start(backend, clock.clone(), &twilio).await else {
        return muster_store::testing::postgres_skip_note("activation_sends_per_account");
    };
    let c = contact(&s, "yaa").await;
    let mut chans = Vec::new();
    for i in 0..52 {
        let addr = format!("yaa.{i}@example.com");
        chans.push(
            channel(
                &s,
                &c,
                &format!("mail {i}"),
                ChannelType::Email,
                &addr,
                true,
            )
            .await,
        );
    }
    let send = |ch: &String| {
        s.client
            .send_activation_code()
            .contact_channel_id(ch)
            .send()
    };
    for ch in &chans[..50] {
        send(ch).await.unwrap();
    }
    assert_eq!(s.outbox().len(), 50);
    let err = send(&chans[50]).await.unwrap_err();
    assert_eq!(code(&err), "ServiceQuotaExceededException");
    let msg = err
        .as_service_error()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        msg.contains(
            "at most 50 activation codes can be sent to the contact channels of one account"
        ),
        "{msg}"
    );
    assert_eq!(s.outbox().len(), 50, "the refused code was not sent");
    // Another account is not affected.
    let master =
        muster::server::load_master_key(&common::settings_for(&s.data_dir(), &s.database_url))
            .unwrap();
    let store = s.running.as_ref().unwrap().store.clone();
    let other = muster_core::AccountId::parse("111122223333").unwrap();
    let (id, secret) = muster::server::create_access_key(&store, &master, &other, &SystemClock)
        .await
        .unwrap();
    let theirs = common::client(s.addr, &id, &secret);
    let their_contact = theirs
        .create_contact()
        .alias("yaw")
        .r#type(ContactType::Personal)
        .plan(Plan::builder().set_stages(Some(vec![])).build())
        .send()
        .await
        .unwrap()
        .contact_arn;
    theirs
        .create_contact_channel()
        .contact_id(&their_contact)
        .name("mail")
        .r#type(ChannelType::Email)
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address("yaw@example.com")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(s.outbox().len(), 51);
    // Both sides of the hour.
    clock.set_ms(t0 + 3_600_000 - 1);
    assert_eq!(
        code(&send(&chans[51]).await.unwrap_err()),
        "ServiceQuotaExceededException"
    );
    clock.set_ms(t0 + 3_600_000);
    send(&chans[51]).await.unwrap();
    assert_eq!(s.outbox().len(), 52);
}

/// A replayed SMS (the same signed request, the same MessageSid) is answered 200 with no
/// effect: no consent change, no reply, no code; another MessageSid acts.
async fn replayed_sms_replies_act_once(backend: Backend) {
    let twilio = FakeTwilio::start().await;
    let t0 = muster_core::SystemClock.now_ms();
    let clock = ManualClock::new(t0);
    let Some(s) = start(backend, clock.clone(), &twilio).await else {
        return muster_store::testing::postgres_skip_note("replayed_sms_replies_act_once");
    };
    let num = "+12065550160";
    let c = contact(&s, "kwesi").await;
    let ch = channel(&s, &c, "cell", ChannelType::Sms, num, false).await;
    activate(&s, &ch, &last_sms(&twilio, num).activation_code())
        .await
        .unwrap();
    let store = s.running.as_ref().unwrap().store.clone();
    let events = || {
        let store = store.clone();
        async move { store.consent_events(num, 20).await.unwrap().len() }
    };
    let form = |sid: &str, body: &str| -> Vec<(String, String)> {
        [
            ("MessageSid", sid),
            ("From", num),
            ("To", FROM),
            ("Body", body),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let hook = "/hooks/twilio/sms";
    let stop = form("SM00000000000000000000000000000a01", "STOP");
    let start_again = form("SM00000000000000000000000000000a02", "START");

    let (st, twiml) = post_params(&s, hook, &stop, Some(TOKEN)).await;
    assert_eq!(st, 200);
    assert!(twiml.contains("<Message>"), "{twiml}");
    assert!(store.is_opted_out(num).await.unwrap());
    let (st, twiml) = post_params(&s, hook, &start_again, Some(TOKEN)).await;
    assert_eq!(st, 200);
    assert!(twiml.contains("<Message>"), "{twiml}");
    assert!(!store.is_opted_out(num).await.unwrap());
    assert_eq!(events().await, 2);
    let sent = twilio.received().len();

    // The captured STOP, replayed: answered, and nothing happens.
    let (st, twiml) = post_params(&s, hook, &stop, Some(TOKEN)).await;
    assert_eq!(st, 200);
    assert!(!twiml.contains("<Message>"), "no second reply: {twiml}");
    assert!(!store.is_opted_out(num).await.unwrap());
    assert_eq!(events().await, 2, "no second consent event");
    // The START replayed: no new code.
    let (st, twiml) = post_params(&s, hook, &start_again, Some(TOKEN)).await;
    assert_eq!(st, 200);
    assert!(!twiml.contains("<Message>"), "{twiml}");
    assert_eq!(twilio.received().len(), sent, "no second code");
    activate(&s, &ch, &last_sms(&twilio, num).activation_code())
        .await
        .unwrap();
    assert_eq!(status(&s, &ch).await, ActivationStatus::Activated);

    // The same words with another MessageSid are another message: they act.
    let stop2 = form("SM00000000000000000000000000000a03", "STOP");
    let (st, twiml) = post_params(&s, hook, &stop2, Some(TOKEN)).await;
    assert_eq!(st, 200);
    assert!(twiml.contains("<Message>"), "{twiml}");
    assert!(store.is_opted_out(num).await.unwrap());
    assert_eq!(status(&s, &ch).await, ActivationStatus::NotActivated);
    assert_eq!(events().await, 3);

    // A request without a MessageSid is not Twilio's: refused, nothing recorded.
    let (st, _) = post_params(&s, hook, &stop[1..], Some(TOKEN)).await;
    assert_eq!(st, 400);
    assert_eq!(events().await, 3);
    // A forged signature is still refused first (and does not use up the id).
    let stop4 = form("SM00000000000000000000000000000a04", "STOP");
    let (st, _) = post_params(&s, hook, &stop4, Some("wrong-token")).await;
    assert_eq!(st, 403);
    let (st, _) = post_params(&s, hook, &stop4, Some(TOKEN)).await;
    assert_eq!(st, 200);
    assert_eq!(events().await, 4);

    // What bounds a replay of a request with no time of its own: the id is remembered for
    // the retention, and not longer.
    let retention = muster_hooks::replay::INBOUND_RETENTION_MS;
    clock.set_ms(t0 + retention - 1);
    post_params(&s, hook, &stop2, Some(TOKEN)).await;
    assert_eq!(
        events().await,
        4,
        "remembered until the end of the retention"
    );
    clock.set_ms(t0 + retention + 60_000);
    post_params(&s, hook, &stop2, Some(TOKEN)).await;
    assert_eq!(
        events().await,
        5,
        "forgotten after it (the documented replay window)"
    );
}

/// A replayed e-mail (the same Message-ID) changes nothing and is not answered; another
/// Message-ID acts; a message dated outside the window is ignored.
async fn replayed_email_replies_act_once(backend: Backend) {
    let twilio = FakeTwilio::start().await;
    let t0 = muster_core::SystemClock.now_ms();
    let clock = ManualClock::new(t0);
    let Some(s) = start(backend, clock.clone(), &twilio).await else {
        return muster_store::testing::postgres_skip_note("replayed_email_replies_act_once");
    };
    let addr = "adjoa@example.com";
    let c = contact(&s, "adjoa").await;
    channel(&s, &c, "mail", ChannelType::Email, addr, false).await;
    let store = s.running.as_ref().unwrap().store.clone();
    let date = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .unwrap()
            .strftime("%a, %d %b %Y %H:%M:%S +0000")
            .to_string()
    };
    let mail = |id: &str, date: &str, body: &str| {
        format!(
            "From: Adjoa <{addr}>\r\nTo: pager@example.test\r\nSubject: Re: Muster\r\n\
             Message-ID: <{id}>\r\nDate: {date}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        )
    };
    let post = |raw: String| async move {
        let r = common::http()
            .post(format!("http://{}/hooks/email", s.addr))
            .header("x-muster-secret", "mail-hook-secret")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<serde_json::Value>().await.unwrap()
    };
    let events = || {
        let store = store.clone();
        async move { store.consent_events(addr, 20).await.unwrap().len() }
    };
    let stop = mail("r1@mail.example", &date(t0), "STOP");
    let answers = |s: &TestServer| {
        s.outbox()
            .iter()
            .filter(|l| l["address"] == addr && l["kind"] != "activation")
            .count()
    };
    let v = post(stop.clone()).await;
    assert_eq!(v["action"], "OptedOut { first_time: true }", "{v}");
    assert_eq!(events().await, 1);
    assert_eq!(answers(&s), 1);
    let v = post(stop.clone()).await;
    assert_eq!(v["action"], "ignored", "{v}");
    assert_eq!(events().await, 1, "no second consent event");
    assert_eq!(answers(&s), 1, "no second answer");
    let v = post(mail("r2@mail.example", &date(t0), "START")).await;
    assert_eq!(
        v["action"], "OptedIn { was_opted_out: true, codes_sent: 1 }",
        "{v}"
    );
    assert_eq!(events().await, 2);

    // Dated more than 7 days ago, or more than a day ahead: ignored (a second after a
    // bound); within the bounds (to the second): acted on.
    let week = 7 * 24 * 3_600_000;
    let day = 24 * 3_600_000;
    let v = post(mail("r3@mail.example", &date(t0 - week - 1_000), "STOP")).await;
    assert_eq!(v["action"], "ignored", "{v}");
    let v = post(mail("r4@mail.example", &date(t0 + day + 1_000), "STOP")).await;
    assert_eq!(v["action"], "ignored", "{v}");
    assert_eq!(events().await, 2);
    let v = post(mail("r5@mail.example", &date(t0 - week + 1_000), "STOP")).await;
    assert_eq!(v["action"], "OptedOut { first_time: true }", "{v}");
    let v = post(mail("r6@mail.example", &date(t0 + day), "START")).await;
    assert_eq!(
        v["action"], "OptedIn { was_opted_out: true, codes_sent: 1 }",
        "{v}"
    );
    assert_eq!(events().await, 4);
}

macro_rules! both {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name(super::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(super::Backend::Postgres).await }
        }
    )*};
}

both!(
    email_activation_through_the_outbox,
    activation_rules_at_their_boundaries,
    sms_opt_out_and_in_over_twilio,
    email_replies,
    email_replies_need_an_authenticated_sender,
    address_change_voids_the_old_code,
    activation_floods_to_one_number,
    activation_sends_per_account,
    replayed_sms_replies_act_once,
    replayed_email_replies_act_once
);

/// A reply whose effect cannot be stored (the database refuses the write; a trigger injects
/// the failure) is answered 503 and its MessageSid is forgotten, so that a retry of the same
/// message acts instead of being taken for a replay.
#[tokio::test]
async fn a_reply_that_cannot_be_stored_is_refused_and_its_retry_acts() {
    let twilio = FakeTwilio::start().await;
    let clock = ManualClock::new(muster_core::SystemClock.now_ms());
    let s = start(Backend::Sqlite, clock, &twilio).await.unwrap();
    let num = "+12065550161";
    let c = contact(&s, "ama").await;
    channel(&s, &c, "cell", ChannelType::Sms, num, false).await;
    let store = s.running.as_ref().unwrap().store.clone();
    let db = sqlx::SqlitePool::connect(&s.database_url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER injected_failure BEFORE INSERT ON consent_events \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .execute(&db)
    .await
    .unwrap();
    let stop: Vec<(String, String)> = [
        ("MessageSid", "SM00000000000000000000000000000b01"),
        ("From", num),
        ("To", FROM),
        ("Body", "STOP"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (st, answer) = post_params(&s, "/hooks/twilio/sms", &stop, Some(TOKEN)).await;
    assert_eq!(st, 503, "{answer}");
    assert!(!store.is_opted_out(num).await.unwrap());

    sqlx::query("DROP TRIGGER injected_failure")
        .execute(&db)
        .await
        .unwrap();
    let (st, twiml) = post_params(&s, "/hooks/twilio/sms", &stop, Some(TOKEN)).await;
    assert_eq!(st, 200);
    assert!(
        twiml.contains("<Message>"),
        "the retry is acted on: {twiml}"
    );
    assert!(store.is_opted_out(num).await.unwrap());
    db.close().await;
}

/// Alerts in from monitoring (a real Alertmanager, and each other sender's format), in this
/// binary so the crate links one test binary fewer.
#[path = "delivery/alerts.rs"]
mod alerts;
