//! Replies from devices: STOP opts out (confirmed the first time), START opts back in and
//! sends every channel of the address a new code, a page's accept code acknowledges it.

use crate::harness::{Harness, T0};
use muster_app::replies::Outcome;
use muster_core::{ActivationStatus, ChannelType};

const PHONE: &str = "+15550133";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_opts_out_once_and_start_sends_new_codes() {
    let h = Harness::new().await;
    let ana = h.contact("ana").await;
    let sms = h
        .activated_channel(&ana, "phone", ChannelType::Sms, PHONE)
        .await;
    let voice = h
        .activated_channel(&ana, "call", ChannelType::Voice, PHONE)
        .await;
    let other = h
        .activated_channel(&ana, "other", ChannelType::Sms, "+15550134")
        .await;
    assert_eq!(h.sent("activation").len(), 3);

    // STOP: opted out, both channels of that number deactivated; confirmed once.
    let first = h.app.handle_reply(PHONE, "STOP", "STOP", "sms").await;
    assert_eq!(first, Outcome::OptedOut { first_time: true });
    assert!(h.app.answer_text(PHONE, &first).is_some());
    assert!(h.store().is_opted_out(PHONE).await.unwrap());
    for ch in [&sms, &voice] {
        assert_eq!(
            h.reload_channel(ch).await.activation,
            ActivationStatus::NotActivated,
            "{}",
            ch.name
        );
    }
    assert_eq!(
        h.reload_channel(&other).await.activation,
        ActivationStatus::Activated,
        "another number is not touched"
    );
    let again = h.app.handle_reply(PHONE, " stop. ", " stop. ", "sms").await;
    assert_eq!(again, Outcome::OptedOut { first_time: false });
    assert_eq!(
        h.app.answer_text(PHONE, &again),
        None,
        "confirmed only once"
    );
    let events = h.store().consent_events(PHONE, 10).await.unwrap();
    assert_eq!(events.len(), 2, "both replies are recorded: {events:?}");

    // START: opted back in, and a new code sent to each channel with that number; the
    // channels stay deactivated until a code is typed.
    h.clock.set_ms(T0 + 60_000);
    let back = h.app.handle_reply(PHONE, "Start", "Start", "sms").await;
    assert_eq!(
        back,
        Outcome::OptedIn {
            was_opted_out: true,
            codes_sent: 2
        }
    );
    assert!(!h.store().is_opted_out(PHONE).await.unwrap());
    let sent = h.sent("activation");
    assert_eq!(sent.len(), 5);
    let mut new_codes: Vec<(&str, &str)> = sent[3..]
        .iter()
        .map(|l| {
            assert_eq!(l["address"], PHONE);
            (
                l["channel_type"].as_str().unwrap(),
                l["activation_code"].as_str().unwrap(),
            )
        })
        .collect();
    new_codes.sort();
    assert_eq!(
        new_codes.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        ["SMS", "VOICE"]
    );
    assert_eq!(
        h.reload_channel(&sms).await.activation,
        ActivationStatus::NotActivated
    );
    h.app
        .activate_channel(&h.caller, &sms, new_codes[0].1)
        .await
        .unwrap();
    assert_eq!(
        h.reload_channel(&sms).await.activation,
        ActivationStatus::Activated
    );

    // START when not opted out sends nothing.
    let idle = h.app.handle_reply(PHONE, "START", "START", "sms").await;
    assert_eq!(
        idle,
        Outcome::OptedIn {
            was_opted_out: false,
            codes_sent: 0
        }
    );
    assert_eq!(h.sent("activation").len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_with_the_accept_code_acknowledges_the_page() {
    let h = Harness::new().await;
    let ana = h.contact("ana").await;
    let sms = h
        .activated_channel(&ana, "phone", ChannelType::Sms, PHONE)
        .await;
    let ana = h.set_plan(&ana, &[(5, &[&sms])]).await;
    let e = h.engage(&ana).await;
    h.run_due().await;
    let page = h.pages(&e).await.remove(0);
    let code = h.app.messaging.code_key.accept_code(page.id);
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);

    assert_eq!(
        h.app.handle_reply(PHONE, &wrong, &wrong, "sms").await,
        Outcome::CodeNotRecognised
    );
    assert_eq!(h.engagement(&e).await.stop_reason, None);
    // Spaced as people type it.
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    assert_eq!(
        h.app.handle_reply(PHONE, &spaced, &spaced, "sms").await,
        Outcome::Acknowledged
    );
    assert_eq!(
        h.engagement(&e).await.stop_reason.as_deref(),
        Some("acknowledged")
    );
    assert_eq!(
        h.app.handle_reply(PHONE, "HELP", "HELP", "sms").await,
        Outcome::Help
    );
}
