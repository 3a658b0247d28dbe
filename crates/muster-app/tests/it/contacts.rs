//! A contact with its channels in one transaction (the console's Create contact), and the
//! checks that keep a refused one from leaving anything behind.

use crate::harness::{Harness, arn};
use muster_app::contacts::{NewChannel, NewContact};
use muster_app::{App, AppError};
use muster_core::{ChannelType, ContactAlias, ContactType, Plan, Stage, Target};
use muster_store::After;
use uuid::Uuid;

fn channel(name: &str, t: ChannelType, address: &str) -> (Uuid, NewChannel) {
    (
        Uuid::now_v7(),
        NewChannel {
            name: name.into(),
            channel_type: t,
            address: address.into(),
        },
    )
}

fn contact(alias: &str, plan: Plan) -> NewContact {
    NewContact {
        alias: ContactAlias::parse(alias).unwrap(),
        display_name: Some("Akua Mansa".into()),
        contact_type: ContactType::Personal,
        plan,
        tags: Vec::new(),
    }
}

/// A plan engaging `arns` one stage each, five minutes apart.
fn plan(arns: &[String]) -> Plan {
    Plan {
        stages: arns
            .iter()
            .map(|a| Stage {
                duration_minutes: 5,
                targets: vec![Target::Channel {
                    channel_arn: a.clone(),
                    retry_interval_minutes: Some(1),
                }],
            })
            .collect(),
        rotation_ids: vec![],
    }
}

#[tokio::test]
async fn a_contact_and_its_channels_are_written_together() {
    let h = Harness::new().await;
    let channels = vec![
        channel("Work", ChannelType::Email, "akua@example.com"),
        channel("Mobile", ChannelType::Sms, "+12065550100"),
    ];
    let arns: Vec<String> = channels
        .iter()
        .map(|(id, _)| App::channel_arn(&h.caller, "akuam", *id))
        .collect();
    assert_eq!(
        arns[0],
        arn(&format!("contact-channel/akuam/{}", channels[0].0))
    );
    let made = h
        .app
        .create_contact_with_channels(&h.caller, contact("akuam", plan(&arns)), channels.clone())
        .await
        .unwrap();
    assert_eq!(made.arn, arn("contact/akuam"));
    assert!(made.new);
    let c = h
        .store()
        .get_contact(h.caller.account.as_str(), "akuam")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.plan, plan(&arns));
    let listed = h
        .store()
        .list_channels(h.caller.account.as_str(), c.id, &After::Start, 10)
        .await
        .unwrap();
    let got: Vec<(Uuid, &str, &str, bool)> = listed
        .iter()
        .map(|ch| {
            (
                ch.id,
                ch.name.as_str(),
                ch.address.as_str(),
                ch.activation == muster_core::ActivationStatus::Activated,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (channels[0].0, "Work", "akua@example.com", false),
            (channels[1].0, "Mobile", "+12065550100", false),
        ]
    );
    // No code was sent: the caller sends them once the contact exists.
    assert!(h.outbox().is_empty(), "{:?}", h.outbox());
}

#[tokio::test]
async fn a_refused_contact_leaves_nothing_behind() {
    let h = Harness::new().await;
    let account = h.caller.account.as_str().to_owned();
    // A bad address of the second channel: its position is named, nothing is written.
    let channels = vec![
        channel("Work", ChannelType::Email, "akua@example.com"),
        channel("Mobile", ChannelType::Sms, "12345"),
    ];
    let e = h
        .app
        .create_contact_with_channels(&h.caller, contact("akuam", Plan::default()), channels)
        .await
        .unwrap_err();
    let AppError::Invalid(issues) = e else {
        panic!("{e:?}")
    };
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].path, "Channels[1].DeliveryAddress.SimpleAddress");
    assert!(
        h.store()
            .get_contact(&account, "akuam")
            .await
            .unwrap()
            .is_none()
    );

    // A plan naming a channel that is not one of the new ones.
    let other = arn(&format!("contact-channel/akuam/{}", Uuid::now_v7()));
    let channels = vec![channel("Work", ChannelType::Email, "akua@example.com")];
    let e = h
        .app
        .create_contact_with_channels(
            &h.caller,
            contact("akuam", plan(std::slice::from_ref(&other))),
            channels,
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        AppError::Invalid(vec![muster_app::FieldIssue::new(
            "Plan.Stages[0].Targets[0].ChannelTargetInfo.ContactChannelId",
            format!("{other} is not a contact channel of contact 'akuam'"),
        )])
    );
    assert!(
        h.store()
            .get_contact(&account, "akuam")
            .await
            .unwrap()
            .is_none()
    );

    // Two channels with one name: the store refuses the whole contact.
    let channels = vec![
        channel("Work", ChannelType::Email, "akua@example.com"),
        channel("Work", ChannelType::Sms, "+12065550100"),
    ];
    let e = h
        .app
        .create_contact_with_channels(&h.caller, contact("akuam", Plan::default()), channels)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AppError::Conflict { kind, .. } if kind == "CONTACT_CHANNEL"),
        "{e:?}"
    );
    assert!(
        h.store()
            .get_contact(&account, "akuam")
            .await
            .unwrap()
            .is_none()
    );

    // The alias taken: a conflict about the contact, the existing one untouched.
    h.contact("akuam").await;
    let before = h
        .store()
        .get_contact(&account, "akuam")
        .await
        .unwrap()
        .unwrap();
    let channels = vec![channel("Work", ChannelType::Email, "akua@example.com")];
    let e = h
        .app
        .create_contact_with_channels(&h.caller, contact("akuam", Plan::default()), channels)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        AppError::conflict(
            "CONTACT",
            arn("contact/akuam"),
            "A contact with alias 'akuam' already exists"
        )
    );
    let after = h
        .store()
        .get_contact(&account, "akuam")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, before);
    let listed = h
        .store()
        .list_channels(&account, after.id, &After::Start, 10)
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
}
