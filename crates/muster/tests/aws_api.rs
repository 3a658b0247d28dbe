//! The SSM Contacts API driven through the official AWS SDK for Rust against a real server,
//! on SQLite and (where configured) PostgreSQL.

mod common;

use common::code;

use aws_sdk_ssmcontacts::types::{
    ChannelTargetInfo, ChannelType, ContactChannelAddress, ContactTargetInfo, ContactType, Plan,
    Stage, Tag, Target,
};
use common::TestServer;

fn empty_plan() -> Plan {
    Plan::builder().set_stages(Some(vec![])).build()
}

async fn create_personal(s: &TestServer, alias: &str) -> String {
    s.client
        .create_contact()
        .alias(alias)
        .display_name(format!("{alias} display"))
        .r#type(ContactType::Personal)
        .plan(empty_plan())
        .send()
        .await
        .expect("create contact")
        .contact_arn
}

async fn create_channel(
    s: &TestServer,
    contact: &str,
    name: &str,
    t: ChannelType,
    addr: &str,
) -> String {
    s.client
        .create_contact_channel()
        .contact_id(contact)
        .name(name)
        .r#type(t)
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address(addr)
                .build(),
        )
        .send()
        .await
        .expect("create channel")
        .contact_channel_arn
}

fn channel_stage(minutes: i32, channels: &[&str]) -> Stage {
    Stage::builder()
        .duration_in_minutes(minutes)
        .set_targets(Some(
            channels
                .iter()
                .map(|c| {
                    Target::builder()
                        .channel_target_info(
                            ChannelTargetInfo::builder()
                                .contact_channel_id(*c)
                                .retry_interval_in_minutes(1)
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect(),
        ))
        .build()
        .unwrap()
}

fn contact_stage(minutes: i32, contacts: &[(&str, bool)]) -> Stage {
    Stage::builder()
        .duration_in_minutes(minutes)
        .set_targets(Some(
            contacts
                .iter()
                .map(|(c, essential)| {
                    Target::builder()
                        .contact_target_info(
                            ContactTargetInfo::builder()
                                .contact_id(*c)
                                .is_essential(*essential)
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect(),
        ))
        .build()
        .unwrap()
}

/// The code and the named fields of a ValidationException.
fn validation_fields<E>(err: &aws_sdk_ssmcontacts::error::SdkError<E>) -> (String, Vec<String>)
where
    E: aws_sdk_ssmcontacts::error::ProvideErrorMetadata + std::fmt::Debug,
{
    let raw = err.raw_response().expect("a response");
    let body: serde_json::Value =
        serde_json::from_slice(raw.body().bytes().expect("buffered body")).unwrap();
    let fields = body["Fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["Name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    (
        err.as_service_error()
            .and_then(|e| e.code())
            .unwrap_or("")
            .to_string(),
        fields,
    )
}

async fn contact_lifecycle(s: TestServer) {
    let arn = create_personal(&s, "akua").await;
    assert_eq!(arn, s.arn("contact/akua"));

    let got = s
        .client
        .get_contact()
        .contact_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.alias, "akua");
    assert_eq!(got.display_name.as_deref(), Some("akua display"));
    assert_eq!(got.r#type, ContactType::Personal);
    assert!(got.plan.unwrap().stages.unwrap_or_default().is_empty());

    let email = create_channel(
        &s,
        &arn,
        "work email",
        ChannelType::Email,
        "akua@example.com",
    )
    .await;
    assert!(
        email.starts_with(&s.arn("contact-channel/akua/")),
        "{email}"
    );
    let sms = create_channel(&s, &arn, "cell", ChannelType::Sms, "+12065550100").await;

    s.client
        .update_contact()
        .contact_id(&arn)
        .display_name("Akua Mansa")
        .plan(
            Plan::builder()
                .stages(channel_stage(5, &[&email]))
                .stages(channel_stage(0, &[&sms]))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = s
        .client
        .get_contact()
        .contact_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.display_name.as_deref(), Some("Akua Mansa"));
    let stages = got.plan.unwrap().stages.unwrap();
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0].duration_in_minutes, 5);
    let t = stages[1].targets[0].channel_target_info.as_ref().unwrap();
    assert_eq!(t.contact_channel_id, sms);
    assert_eq!(t.retry_interval_in_minutes, Some(1));

    let listed = s.client.list_contacts().send().await.unwrap();
    let contacts = listed.contacts.unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].contact_arn, arn);
    assert_eq!(contacts[0].display_name.as_deref(), Some("Akua Mansa"));

    s.client
        .delete_contact()
        .contact_id(&arn)
        .send()
        .await
        .unwrap();
    let err = s
        .client
        .get_contact()
        .contact_id(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let err = s
        .client
        .get_contact_channel()
        .contact_channel_id(&email)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "ResourceNotFoundException",
        "channels go with their contact"
    );
    let err = s
        .client
        .delete_contact()
        .contact_id(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
}

async fn duplicate_alias_conflicts(s: TestServer) {
    create_personal(&s, "dup").await;
    let err = s
        .client
        .create_contact()
        .alias("dup")
        .r#type(ContactType::Escalation)
        .plan(empty_plan())
        .send()
        .await
        .unwrap_err();
    match err.into_service_error() {
        aws_sdk_ssmcontacts::operation::create_contact::CreateContactError::ConflictException(
            c,
        ) => {
            assert_eq!(c.resource_id, s.arn("contact/dup"));
            assert_eq!(c.resource_type, "CONTACT");
        }
        other => panic!("expected ConflictException, got {other:?}"),
    }
}

async fn field_validation(s: TestServer) {
    let err = s
        .client
        .create_contact()
        .alias("Not_Lower")
        .display_name("x".repeat(256))
        .r#type(ContactType::Personal)
        .plan(empty_plan())
        .send()
        .await
        .unwrap_err();
    let (code, fields) = validation_fields(&err);
    assert_eq!(code, "ValidationException");
    assert!(fields.contains(&"Alias".to_string()), "{fields:?}");
    assert!(fields.contains(&"DisplayName".to_string()), "{fields:?}");

    let contact = create_personal(&s, "val").await;
    for (t, addr) in [
        (ChannelType::Email, "not-an-email"),
        (ChannelType::Sms, "2065550100"),
        (ChannelType::Voice, "+1 206 555 0100"),
    ] {
        let err = s
            .client
            .create_contact_channel()
            .contact_id(&contact)
            .name("bad")
            .r#type(t)
            .delivery_address(
                ContactChannelAddress::builder()
                    .simple_address(addr)
                    .build(),
            )
            .send()
            .await
            .unwrap_err();
        let (code, fields) = validation_fields(&err);
        assert_eq!(code, "ValidationException", "{addr}");
        assert_eq!(
            fields,
            vec!["DeliveryAddress.SimpleAddress".to_string()],
            "{addr}"
        );
    }

    // A stage longer than the model allows, named by its path.
    let err = s
        .client
        .update_contact()
        .contact_id(&contact)
        .plan(Plan::builder().stages(channel_stage(31, &[])).build())
        .send()
        .await
        .unwrap_err();
    let (code, fields) = validation_fields(&err);
    assert_eq!(code, "ValidationException");
    assert_eq!(fields, vec!["Plan.Stages[0].DurationInMinutes".to_string()]);

    // Not an ARN at all.
    let err = s
        .client
        .get_contact()
        .contact_id("akua")
        .send()
        .await
        .unwrap_err();
    let (code, fields) = validation_fields(&err);
    assert_eq!(code, "ValidationException");
    assert_eq!(fields, vec!["ContactId".to_string()]);
}

async fn plans_are_checked(s: TestServer) {
    let a = create_personal(&s, "plan-a").await;
    let b = create_personal(&s, "plan-b").await;
    let a_mail = create_channel(&s, &a, "mail", ChannelType::Email, "a@example.com").await;
    let b_mail = create_channel(&s, &b, "mail", ChannelType::Email, "b@example.com").await;

    // PERSONAL stages name channels of the same contact only.
    let err = s
        .client
        .update_contact()
        .contact_id(&a)
        .plan(Plan::builder().stages(channel_stage(1, &[&b_mail])).build())
        .send()
        .await
        .unwrap_err();
    let (code, fields) = validation_fields(&err);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        fields,
        vec!["Plan.Stages[0].Targets[0].ChannelTargetInfo.ContactChannelId".to_string()]
    );
    // ...and not contacts.
    let err = s
        .client
        .update_contact()
        .contact_id(&a)
        .plan(
            Plan::builder()
                .stages(contact_stage(1, &[(&b, true)]))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(validation_fields(&err).0, "ValidationException");

    // ESCALATION stages name contacts that exist.
    let esc = s
        .client
        .create_contact()
        .alias("esc")
        .r#type(ContactType::Escalation)
        .plan(
            Plan::builder()
                .stages(contact_stage(5, &[(&a, true), (&b, false)]))
                .stages(contact_stage(0, &[(&b, true)]))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .contact_arn;
    let got = s
        .client
        .get_contact()
        .contact_id(&esc)
        .send()
        .await
        .unwrap();
    assert_eq!(got.r#type, ContactType::Escalation);
    let stages = got.plan.unwrap().stages.unwrap();
    let t = stages[0].targets[1].contact_target_info.as_ref().unwrap();
    assert_eq!(t.contact_id.as_deref(), Some(b.as_str()));
    assert!(!t.is_essential);

    let err = s
        .client
        .create_contact()
        .alias("esc2")
        .r#type(ContactType::Escalation)
        .plan(
            Plan::builder()
                .stages(contact_stage(5, &[(&s.arn("contact/nobody"), true)]))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    let (code, fields) = validation_fields(&err);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        fields,
        vec!["Plan.Stages[0].Targets[0].ContactTargetInfo.ContactId".to_string()]
    );
    let err = s
        .client
        .create_contact()
        .alias("esc3")
        .r#type(ContactType::Escalation)
        .plan(Plan::builder().stages(channel_stage(5, &[&a_mail])).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(validation_fields(&err).0, "ValidationException");

    // ONCALL_SCHEDULE: no stages, as AWS says it.
    let err = s
        .client
        .create_contact()
        .alias("sched")
        .r#type(ContactType::OncallSchedule)
        .plan(
            Plan::builder()
                .stages(contact_stage(5, &[(&a, true)]))
                .rotation_ids(s.arn("rotation/8e9b4f5a-6d1c-4b0e-9f3a-2c7d5e8f1a2b"))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{:?}", err.as_service_error().unwrap()).contains("cannot have stages"),
        "{err:?}"
    );
}

async fn channels_crud_and_pagination(s: TestServer) {
    let c = create_personal(&s, "chan").await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(
            create_channel(
                &s,
                &c,
                &format!("phone {i}"),
                ChannelType::Voice,
                &format!("+1206555010{i}"),
            )
            .await,
        );
    }
    let got = s
        .client
        .get_contact_channel()
        .contact_channel_id(&made[0])
        .send()
        .await
        .unwrap();
    assert_eq!(got.name, "phone 0");
    assert_eq!(got.r#type, ChannelType::Voice);
    assert_eq!(got.contact_arn, c);
    assert_eq!(
        got.delivery_address.unwrap().simple_address.as_deref(),
        Some("+12065550100")
    );
    assert_eq!(
        got.activation_status,
        Some(aws_sdk_ssmcontacts::types::ActivationStatus::NotActivated)
    );

    // Duplicate channel name within a contact.
    let err = s
        .client
        .create_contact_channel()
        .contact_id(&c)
        .name("phone 0")
        .r#type(ChannelType::Sms)
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address("+12065550199")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ConflictException");

    // Pages of 3, with a channel added between pages: no repeat, no skip of what existed.
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = s
            .client
            .list_contact_channels()
            .contact_id(&c)
            .max_results(3)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.contact_channels.len() <= 3);
        seen.extend(
            page.contact_channels
                .iter()
                .map(|ch| ch.contact_channel_arn.clone()),
        );
        if pages == 1 {
            create_channel(&s, &c, "late", ChannelType::Email, "late@example.com").await;
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no channel listed twice");
    for m in &made {
        assert!(seen.contains(m), "{m} skipped");
    }

    s.client
        .update_contact_channel()
        .contact_channel_id(&made[1])
        .name("desk phone")
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address("+442071838750")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = s
        .client
        .get_contact_channel()
        .contact_channel_id(&made[1])
        .send()
        .await
        .unwrap();
    assert_eq!(got.name, "desk phone");
    assert_eq!(
        got.delivery_address.unwrap().simple_address.as_deref(),
        Some("+442071838750")
    );
    let err = s
        .client
        .update_contact_channel()
        .contact_channel_id(&made[1])
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address("nope")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");

    s.client
        .delete_contact_channel()
        .contact_channel_id(&made[2])
        .send()
        .await
        .unwrap();
    let err = s
        .client
        .get_contact_channel()
        .contact_channel_id(&made[2])
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");

    // Channels belong to PERSONAL contacts only; unknown contacts are not found.
    let esc = s
        .client
        .create_contact()
        .alias("chan-esc")
        .r#type(ContactType::Escalation)
        .plan(empty_plan())
        .send()
        .await
        .unwrap()
        .contact_arn;
    let err = s
        .client
        .create_contact_channel()
        .contact_id(&esc)
        .name("x")
        .r#type(ChannelType::Email)
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address("x@example.com")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let err = s
        .client
        .list_contact_channels()
        .contact_id(s.arn("contact/ghost"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
}

async fn contact_listing(s: TestServer) {
    for i in 0..12 {
        create_personal(&s, &format!("team-{i:02}")).await;
    }
    create_personal(&s, "other").await;
    s.client
        .create_contact()
        .alias("team-esc")
        .r#type(ContactType::Escalation)
        .plan(empty_plan())
        .send()
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = s
            .client
            .list_contacts()
            .alias_prefix("team-")
            .r#type(ContactType::Personal)
            .max_results(5)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        let contacts = page.contacts.unwrap_or_default();
        assert!(contacts.len() <= 5);
        if seen.is_empty() {
            // Added mid-listing, after the cursor: must show up later, not twice.
            create_personal(&s, "team-99").await;
            // Added before the cursor: may not show up, must not disturb the rest.
            create_personal(&s, "team-00a").await;
        }
        seen.extend(contacts.into_iter().map(|c| c.alias));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    let mut expected: Vec<String> = (0..12).map(|i| format!("team-{i:02}")).collect();
    expected.push("team-99".into());
    assert_eq!(seen, expected);

    // A token is tied to the filters it was issued for.
    let page = s
        .client
        .list_contacts()
        .max_results(2)
        .send()
        .await
        .unwrap();
    let err = s
        .client
        .list_contacts()
        .alias_prefix("team")
        .set_next_token(page.next_token)
        .send()
        .await
        .unwrap_err();
    let (code, fields) = validation_fields(&err);
    assert_eq!(code, "ValidationException");
    assert_eq!(fields, vec!["NextToken".to_string()]);
}

async fn idempotency_tokens(s: TestServer) {
    let send = |alias: &'static str, name: &'static str| {
        s.client
            .create_contact()
            .alias(alias)
            .display_name(name)
            .r#type(ContactType::Personal)
            .plan(empty_plan())
            .idempotency_token("token-1")
            .send()
    };
    let first = send("idem", "Idem").await.unwrap().contact_arn;
    let again = send("idem", "Idem").await.unwrap().contact_arn;
    assert_eq!(first, again);
    let contacts = s
        .client
        .list_contacts()
        .send()
        .await
        .unwrap()
        .contacts
        .unwrap();
    assert_eq!(contacts.len(), 1);
    let err = send("idem", "Different").await.unwrap_err();
    let (code, fields) = validation_fields(&err);
    assert_eq!(code, "ValidationException");
    assert_eq!(fields, vec!["IdempotencyToken".to_string()]);

    let channel = |addr: &'static str| {
        s.client
            .create_contact_channel()
            .contact_id(first.clone())
            .name("mail")
            .r#type(ChannelType::Email)
            .delivery_address(
                ContactChannelAddress::builder()
                    .simple_address(addr)
                    .build(),
            )
            .idempotency_token("token-2")
            .send()
    };
    let c1 = channel("i@example.com").await.unwrap().contact_channel_arn;
    let c2 = channel("i@example.com").await.unwrap().contact_channel_arn;
    assert_eq!(c1, c2);
    assert_eq!(
        validation_fields(&channel("j@example.com").await.unwrap_err()).0,
        "ValidationException"
    );
    let list = s
        .client
        .list_contact_channels()
        .contact_id(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(list.contact_channels.len(), 1);
}

async fn tags(s: TestServer) {
    let c = create_personal(&s, "tagged").await;
    s.client
        .tag_resource()
        .resource_arn(&c)
        .tags(Tag::builder().key("team").value("payments").build())
        .tags(Tag::builder().key("tier").value("1").build())
        .send()
        .await
        .unwrap();
    s.client
        .tag_resource()
        .resource_arn(&c)
        .tags(Tag::builder().key("tier").value("2").build())
        .send()
        .await
        .unwrap();
    let got = s
        .client
        .list_tags_for_resource()
        .resource_arn(&c)
        .send()
        .await
        .unwrap();
    let pairs: Vec<(String, String)> = got
        .tags
        .unwrap()
        .into_iter()
        .map(|t| (t.key.unwrap(), t.value.unwrap()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("team".into(), "payments".into()),
            ("tier".into(), "2".into())
        ]
    );
    s.client
        .untag_resource()
        .resource_arn(&c)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let got = s
        .client
        .list_tags_for_resource()
        .resource_arn(&c)
        .send()
        .await
        .unwrap();
    assert_eq!(got.tags.unwrap().len(), 1);

    // 50 is the most; the 51st is a quota error and changes nothing.
    let mut req = s.client.tag_resource().resource_arn(&c);
    for i in 0..49 {
        req = req.tags(Tag::builder().key(format!("k{i}")).value("v").build());
    }
    req.send().await.unwrap();
    let err = s
        .client
        .tag_resource()
        .resource_arn(&c)
        .tags(Tag::builder().key("one-too-many").value("v").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ServiceQuotaExceededException");
    let got = s
        .client
        .list_tags_for_resource()
        .resource_arn(&c)
        .send()
        .await
        .unwrap();
    assert_eq!(got.tags.unwrap().len(), 50);

    // Tags at creation.
    let t = s
        .client
        .create_contact()
        .alias("born-tagged")
        .r#type(ContactType::Personal)
        .plan(empty_plan())
        .tags(Tag::builder().key("env").value("prod").build())
        .send()
        .await
        .unwrap()
        .contact_arn;
    let got = s
        .client
        .list_tags_for_resource()
        .resource_arn(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(got.tags.unwrap()[0].value.as_deref(), Some("prod"));

    let err = s
        .client
        .list_tags_for_resource()
        .resource_arn(s.arn("contact/missing"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
}

async fn contact_policy(s: TestServer) {
    let c = create_personal(&s, "shared").await;
    let got = s
        .client
        .get_contact_policy()
        .contact_arn(&c)
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy, None);
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["ssm-contacts:GetContact"],"Resource":["*"]}]}"#;
    s.client
        .put_contact_policy()
        .contact_arn(&c)
        .policy(policy)
        .send()
        .await
        .unwrap();
    let got = s
        .client
        .get_contact_policy()
        .contact_arn(&c)
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy.as_deref(), Some(policy));
    assert_eq!(got.contact_arn.as_deref(), Some(c.as_str()));
    let err = s
        .client
        .put_contact_policy()
        .contact_arn(&c)
        .policy("not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(validation_fields(&err).1, vec!["Policy".to_string()]);
    let err = s
        .client
        .put_contact_policy()
        .contact_arn(s.arn("contact/nobody"))
        .policy(policy)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
}

async fn data_survives_restart(s: TestServer) {
    let c = create_personal(&s, "durable").await;
    let ch = create_channel(&s, &c, "mail", ChannelType::Email, "d@example.com").await;
    let key = s.key_id.clone();
    let s = s.restart().await;
    assert_eq!(s.key_id, key, "the first key is kept, not replaced");
    let got = s.client.get_contact().contact_id(&c).send().await.unwrap();
    assert_eq!(got.alias, "durable");
    let got = s
        .client
        .get_contact_channel()
        .contact_channel_id(&ch)
        .send()
        .await
        .unwrap();
    assert_eq!(got.name, "mail");
}

on_both!(
    contact_lifecycle,
    duplicate_alias_conflicts,
    field_validation,
    plans_are_checked,
    channels_crud_and_pagination,
    contact_listing,
    idempotency_tokens,
    tags,
    contact_policy,
    data_survives_restart,
);

/// The ssm-incidents API, in this binary so that the crate's tests link once more, not twice.
#[path = "aws_api/incidents.rs"]
mod incidents_api;

mod ssm_incidents {
    use super::common;
    use super::incidents_api::*;
    use super::*;
    on_both!(
        replication_set,
        response_plans,
        incident_lifecycle,
        dedupe_under_concurrency,
        signing_and_errors,
        policies_regions_and_paging,
    );
}
