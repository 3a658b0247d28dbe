//! Activation codes: tries are counted and the last wrong one uses the code up; the right
//! code activates; an expired code and an opted-out device are refused; a deactivated
//! channel is not paged.

use crate::harness::{Harness, MIN, T0, arn};
use muster_app::AppError;
use muster_app::replies::Outcome;
use muster_core::{ActivationStatus, ChannelType};
use muster_store::ChannelRecord;

/// Wrong tries a code takes (DESIGN.md: "5 wrong tries per code").
const TRIES: i32 = 5;
/// How long a code lasts (DESIGN.md: "24 h expiry").
const CODE_TTL: i64 = 24 * 60 * MIN;

/// A six-digit code that is not `code`.
fn other_code(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

/// The one issue of an invalid-input error: (member, message).
fn invalid(result: Result<(), AppError>) -> (String, String) {
    match result {
        Err(AppError::Invalid(issues)) => {
            assert_eq!(issues.len(), 1, "{issues:?}");
            (issues[0].path.clone(), issues[0].message.clone())
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
}

async fn pending_channel(h: &Harness, address: &str) -> ChannelRecord {
    let ana = h.contact("ana").await;
    h.channel(&ana, "phone", ChannelType::Sms, address).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_count_down_and_the_last_one_deletes_the_code() {
    let h = Harness::new().await;
    let ch = pending_channel(&h, "+15550111").await;
    h.app.send_activation(&ch, "Ana").await.unwrap();
    let sent = h.sent("activation");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (&sent[0]["address"], &sent[0]["channel_type"]),
        (&"+15550111".into(), &"SMS".into())
    );
    let code = h.last_activation_code("+15550111");
    let wrong = other_code(&code);

    for tried in 1..TRIES {
        let (member, message) = invalid(h.app.activate_channel(&h.caller, &ch, &wrong).await);
        assert_eq!(member, "ActivationCode");
        let left = TRIES - tried;
        assert!(
            message.starts_with(&format!("wrong code ({left} tr")) && message.ends_with(" left)"),
            "after {tried} wrong tries: {message}"
        );
        let stored = h
            .store()
            .get_activation_code(crate::harness::ACCOUNT, ch.id)
            .await
            .unwrap()
            .expect("the code is kept while tries are left");
        assert_eq!(stored.failed_attempts, tried);
    }
    // The last wrong try uses the code up: it is deleted, and the right code no longer works.
    let (member, message) = invalid(h.app.activate_channel(&h.caller, &ch, &wrong).await);
    assert_eq!(member, "ActivationCode");
    assert!(message.contains("last try"), "{message}");
    assert_eq!(
        h.store()
            .get_activation_code(crate::harness::ACCOUNT, ch.id)
            .await
            .unwrap(),
        None
    );
    let (member, message) = invalid(h.app.activate_channel(&h.caller, &ch, &code).await);
    assert_eq!(member, "ActivationCode");
    assert!(
        message.contains("no activation code is pending"),
        "{message}"
    );
    assert_eq!(
        h.reload_channel(&ch).await.activation,
        ActivationStatus::NotActivated
    );

    // A new code starts over, and works.
    h.app.send_activation(&ch, "Ana").await.unwrap();
    let fresh = h.last_activation_code("+15550111");
    h.app
        .activate_channel(&h.caller, &ch, &fresh)
        .await
        .unwrap();
    assert_eq!(
        h.reload_channel(&ch).await.activation,
        ActivationStatus::Activated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_code_activates_and_is_used_up() {
    let h = Harness::new().await;
    let ch = pending_channel(&h, "+15550112").await;
    h.app.send_activation(&ch, "Ana").await.unwrap();
    let code = h.last_activation_code("+15550112");

    // A wrong try first still leaves the right code working.
    h.advance(MIN);
    let (_, message) = invalid(
        h.app
            .activate_channel(&h.caller, &ch, &other_code(&code))
            .await,
    );
    assert!(message.starts_with(&format!("wrong code ({} tr", TRIES - 1)));
    h.advance(MIN);
    h.app
        .activate_channel(&h.caller, &ch, &format!(" {code} "))
        .await
        .unwrap();
    let activated = h.reload_channel(&ch).await;
    assert_eq!(
        (activated.activation, activated.updated_ms),
        (ActivationStatus::Activated, T0 + 2 * MIN)
    );
    assert_eq!(
        h.store()
            .get_activation_code(crate::harness::ACCOUNT, ch.id)
            .await
            .unwrap(),
        None,
        "a code is used once"
    );
    // The channel is activated and has no code pending: activating again changes nothing.
    h.app
        .activate_channel(&h.caller, &activated, &code)
        .await
        .unwrap();
    assert_eq!(
        h.reload_channel(&ch).await.activation,
        ActivationStatus::Activated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_refused() {
    let h = Harness::new().await;
    let ch = pending_channel(&h, "+15550113").await;
    h.app.send_activation(&ch, "Ana").await.unwrap();
    let code = h.last_activation_code("+15550113");
    h.at(CODE_TTL);
    let (member, message) = invalid(h.app.activate_channel(&h.caller, &ch, &code).await);
    assert_eq!(member, "ActivationCode");
    assert!(message.contains("expired"), "{message}");
    assert_eq!(
        h.reload_channel(&ch).await.activation,
        ActivationStatus::NotActivated
    );

    // One millisecond earlier it would have worked.
    h.app.send_activation(&ch, "Ana").await.unwrap();
    let code = h.last_activation_code("+15550113");
    h.at(2 * CODE_TTL - 1);
    h.app.activate_channel(&h.caller, &ch, &code).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opted_out_address_is_refused_a_code() {
    let h = Harness::new().await;
    let ch = pending_channel(&h, "+15550114").await;
    h.app.send_activation(&ch, "Ana").await.unwrap();
    let code = h.last_activation_code("+15550114");

    assert_eq!(
        h.app.handle_reply("+15550114", "STOP", "STOP", "sms").await,
        Outcome::OptedOut { first_time: true }
    );
    match h.app.send_activation(&ch, "Ana").await {
        Err(AppError::OptedOut { message }) => {
            assert!(message.contains("+15550114"), "{message}")
        }
        other => panic!("expected OptedOut, got {other:?}"),
    }
    assert_eq!(h.sent("activation").len(), 1, "no second code was sent");
    // The code sent before the STOP went with it.
    assert_eq!(
        h.store()
            .get_activation_code(crate::harness::ACCOUNT, ch.id)
            .await
            .unwrap(),
        None
    );
    let (member, _) = invalid(h.app.activate_channel(&h.caller, &ch, &code).await);
    assert_eq!(member, "ContactChannelId");
    assert_eq!(
        h.reload_channel(&ch).await.activation,
        ActivationStatus::NotActivated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_channel_is_not_paged() {
    let h = Harness::new().await;
    let ana = h.contact("ana").await;
    let ch = h
        .activated_channel(&ana, "phone", ChannelType::Sms, "+15550115")
        .await;
    let ana = h.set_plan(&ana, &[(5, &[&ch])]).await;
    let ch_arn = arn(&format!("contact-channel/ana/{}", ch.id));

    h.app
        .deactivate_channel(&h.caller, &ch, &ch_arn)
        .await
        .unwrap();
    assert_eq!(
        h.reload_channel(&ch).await.activation,
        ActivationStatus::NotActivated
    );

    let e = h.engage(&ana).await;
    assert_eq!(h.run_due().await, 1);
    assert!(h.paged().is_empty());
    let page = h.pages(&e).await.remove(0);
    let receipts = h.receipts(page.id).await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0].0, "ERROR");
    assert!(
        receipts[0]
            .1
            .as_deref()
            .is_some_and(|i| i.contains("not activated")),
        "{receipts:?}"
    );

    // A channel that does not exist is not found, by the id it was named with.
    let gone = ChannelRecord {
        id: uuid::Uuid::new_v4(),
        ..ch.clone()
    };
    let gone_arn = arn(&format!("contact-channel/ana/{}", gone.id));
    assert_eq!(
        h.app.deactivate_channel(&h.caller, &gone, &gone_arn).await,
        Err(AppError::NotFound {
            kind: "CONTACT_CHANNEL".into(),
            id: gone_arn.clone()
        })
    );
}
