//! The store's conformance suite: every scenario is written once, as
//! `async fn name(store: Store)`, and runs on SQLite (a temporary file) and on PostgreSQL
//! (a fresh database on the server named by `MUSTER_TEST_POSTGRES_URL`; skipped with a note
//! when unset, an error in CI).

use muster_core::{ActivationStatus, ChannelType, ContactType, Plan, Stage, Target};
use muster_store::testing::{fresh_postgres_url, postgres_skip_note};
use muster_store::{
    AccessKeyRecord, ActivationCodeRecord, After, AlertAbsorb, AlertRecord, ChannelRecord,
    CodeSendLimits, ConsentEvent, ConsentKind, ContactRecord, Created, EngagementChange,
    EngagementRecord, FeedRecord, FeedTarget, Idempotency, ImportMapRow, IncidentFilter,
    IncidentRow, IncidentStart, IntegrationRecord, JobRecord, NewEngagement, NewIncident,
    PageAgain, PageEvents, PageRecord, PageTime, PagesOf, ReceiptRecord, RelatedItemRecord,
    ReplicationSetRecord, ResourcePolicyRecord, ResponsePlanRecord, RotationOverrideRecord,
    RotationRecord, SendScope, Store, StoreError, Tag, TimelineEventRecord, WriteBatch,
    replication_set_resource, step_key,
};
use muster_store::{LoginAttempt, LoginLimits, SessionRecord, UserRecord};
use std::collections::HashSet;
use uuid::Uuid;

const ACCT: &str = "111122223333";
const OTHER: &str = "444455556666";

/// Runs each scenario on both backends: `mod <name> { fn sqlite, fn postgres }`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (store, _dir) = super::sqlite_store().await;
                super::$name(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match super::postgres_store().await {
                    Some(store) => super::$name(store).await,
                    None => muster_store::testing::postgres_skip_note(stringify!($name)),
                }
            }
        }
    )*};
}

conformance!(
    engagement_start_and_reads,
    engagement_listing,
    engagement_changes_are_fenced,
    write_batches_group_writes,
    grouped_and_single_writes_interleave,
    page_events_and_lookups,
    basics,
    deliveries_and_status_callbacks,
    access_keys,
    contact_crud,
    contact_idempotency,
    concurrent_contact_creates,
    channel_crud,
    channel_idempotency,
    concurrent_channel_creates,
    contact_with_channels_in_one_transaction,
    concurrent_contacts_with_channels,
    cascade_on_delete,
    contact_pagination_with_inserts,
    channel_pagination_with_inserts,
    alias_prefix_and_type_filters,
    tags,
    wrong_cursor_kind,
    rotation_crud,
    rotation_idempotency,
    rotation_pagination_with_inserts,
    rotation_name_prefix,
    contact_in_use,
    concurrent_member_and_delete,
    delete_rotation_cascades,
    override_crud,
    override_windows_and_pages,
    feeds,
    feed_cascades,
    activation_codes,
    activation_resend_limit,
    concurrent_activation,
    deactivate_channel,
    activation_cascades,
    activation_limits_across_channels,
    address_change_voids_the_code,
    inbound_message_ids,
    opt_out_and_in,
    consent_event_order,
    concurrent_opt_outs,
    channels_by_address,
    jobs_enqueue_and_dedup,
    jobs_claim_order_and_limits,
    jobs_claim_mixes_free_jobs_and_expired_leases_in_due_order,
    jobs_leases_and_owners,
    jobs_next_due,
    jobs_concurrent_claims,
    jobs_wakeups,
    users,
    sessions,
    login_limits,
    concurrent_login_attempts,
    response_plans,
    response_plan_idempotency,
    incident_start,
    incident_start_only_if_duplicate,
    concurrent_incident_dedupe,
    incident_updates_are_fenced,
    incident_listing,
    incident_filters,
    incident_delete_cascades,
    timeline_events,
    related_items,
    replication_sets,
    resource_policies,
    alerts_absorbed_by_open_incidents,
    concurrent_alert_absorbs,
    integration_keys_and_large_alert_batches,
    import_map_rows,
);

async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("muster.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

async fn postgres_store() -> Option<Store> {
    let url = fresh_postgres_url().await?;
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    Some(store)
}

// ---- builders -------------------------------------------------------------------------

fn contact(account: &str, alias: &str, contact_type: ContactType, ms: i64) -> ContactRecord {
    ContactRecord {
        id: Uuid::new_v4(),
        account: account.into(),
        alias: alias.into(),
        display_name: Some(format!("Display {alias}")),
        contact_type,
        plan: Plan::default(),
        policy: None,
        created_ms: ms,
        updated_ms: ms,
    }
}

fn personal(alias: &str) -> ContactRecord {
    contact(ACCT, alias, ContactType::Personal, 1_700_000_000_000)
}

fn channel(c: &ContactRecord, name: &str, ms: i64) -> ChannelRecord {
    ChannelRecord {
        id: Uuid::new_v4(),
        account: c.account.clone(),
        contact_id: c.id,
        contact_alias: c.alias.clone(),
        name: name.into(),
        channel_type: ChannelType::Sms,
        address: "+12065550100".into(),
        activation: ActivationStatus::NotActivated,
        created_ms: ms,
        updated_ms: ms,
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.into(),
        value: value.into(),
    }
}

fn idem(operation: &str, token: &str, hash: &str, result: &str) -> Idempotency {
    Idempotency {
        operation: operation.into(),
        token: token.into(),
        request_hash: hash.into(),
        result: result.into(),
    }
}

fn key(id: &str, account: &str, ms: i64) -> AccessKeyRecord {
    AccessKeyRecord {
        access_key_id: id.into(),
        account: account.into(),
        secret_sealed: vec![0, 1, 2, 255, 0, 42],
        created_ms: ms,
        revoked_ms: None,
    }
}

fn aliases(contacts: &[ContactRecord]) -> Vec<&str> {
    contacts.iter().map(|c| c.alias.as_str()).collect()
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, msg: &str) {
    match r {
        Err(StoreError::Conflict(m)) => assert_eq!(m, msg),
        other => panic!("expected Conflict({msg:?}), got {other:?}"),
    }
}

// ---- scenarios ------------------------------------------------------------------------

async fn basics(store: Store) {
    store.ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&store.backend()));
    // Migrations run at every start: a second run is a no-op.
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.count_access_keys().await.unwrap(), 0);
    assert!(
        store
            .list_contacts(ACCT, None, None, &After::Start, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
    assert!(matches!(store.ping().await, Err(StoreError::Database(_))));
}

async fn access_keys(store: Store) {
    let a = key("AKIAB", ACCT, 2_000);
    let b = key("AKIAA", ACCT, 2_000); // same instant: ordered by id
    let c = key("AKIAC", OTHER, 1_000);
    for k in [&a, &b, &c] {
        store.insert_access_key(k).await.unwrap();
    }
    assert_conflict(
        store.insert_access_key(&key("AKIAB", OTHER, 5)).await,
        "an access key with id 'AKIAB' already exists",
    );
    assert_eq!(store.count_access_keys().await.unwrap(), 3);
    assert_eq!(
        store.get_access_key("AKIAB").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.get_access_key("AKIAZ").await.unwrap(), None);

    let ids =
        |ks: Vec<AccessKeyRecord>| ks.into_iter().map(|k| k.access_key_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_access_keys(None).await.unwrap()),
        ["AKIAC", "AKIAA", "AKIAB"]
    );
    assert_eq!(
        ids(store.list_access_keys(Some(ACCT)).await.unwrap()),
        ["AKIAA", "AKIAB"]
    );
    assert!(
        store
            .list_access_keys(Some("999999999999"))
            .await
            .unwrap()
            .is_empty()
    );

    assert!(store.revoke_access_key("AKIAB", 3_000).await.unwrap());
    assert!(
        !store.revoke_access_key("AKIAB", 4_000).await.unwrap(),
        "already revoked"
    );
    assert!(
        !store.revoke_access_key("AKIAZ", 4_000).await.unwrap(),
        "unknown"
    );
    let revoked = store.get_access_key("AKIAB").await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_ms,
        Some(3_000),
        "the first revocation instant is kept"
    );
    assert_eq!(revoked.secret_sealed, a.secret_sealed);
    assert_eq!(
        store
            .get_access_key("AKIAA")
            .await
            .unwrap()
            .unwrap()
            .revoked_ms,
        None
    );
    assert_eq!(
        store.count_access_keys().await.unwrap(),
        3,
        "revoked keys still count"
    );
}

async fn contact_crud(store: Store) {
    let mut c = personal("akua");
    c.plan = Plan {
        stages: vec![Stage {
            duration_minutes: 5,
            targets: vec![Target::Channel {
                channel_arn: "arn:aws:ssm-contacts:us-east-1:111122223333:contact-channel/akua/x"
                    .into(),
                retry_interval_minutes: Some(2),
            }],
        }],
        rotation_ids: vec![],
    };
    let tags = [tag("team", "core"), tag("env", "prod")];
    assert_eq!(
        store.create_contact(&c, &tags, None).await.unwrap(),
        Created::New
    );
    assert_eq!(
        store.get_contact(ACCT, "akua").await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        store.get_contact_by_id(ACCT, c.id).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(store.get_contact(OTHER, "akua").await.unwrap(), None);
    assert_eq!(store.get_contact_by_id(OTHER, c.id).await.unwrap(), None);
    assert_eq!(
        store.get_contact_by_id(ACCT, Uuid::new_v4()).await.unwrap(),
        None
    );
    assert_eq!(
        store.list_tags(ACCT, "contact/akua").await.unwrap(),
        [tag("env", "prod"), tag("team", "core")]
    );

    // (account, alias) is unique; the failed create writes nothing, not even its tags.
    let dup = personal("akua");
    assert_conflict(
        store.create_contact(&dup, &[tag("x", "y")], None).await,
        "a contact with alias 'akua' already exists",
    );
    assert_eq!(
        store.list_tags(ACCT, "contact/akua").await.unwrap().len(),
        2
    );
    assert_eq!(store.get_contact_by_id(ACCT, dup.id).await.unwrap(), None);
    // The same alias in another account is another contact.
    let other = contact(OTHER, "akua", ContactType::Escalation, 5);
    assert_eq!(
        store.create_contact(&other, &[], None).await.unwrap(),
        Created::New
    );
    assert_eq!(
        store.get_contact(OTHER, "akua").await.unwrap(),
        Some(other.clone())
    );

    // update writes display_name, plan, updated_ms only.
    let mut changed = c.clone();
    changed.display_name = None;
    changed.plan = Plan::default();
    changed.updated_ms = c.updated_ms + 1_000;
    changed.policy = Some("ignored".into());
    changed.created_ms = 1;
    assert!(store.update_contact(&changed).await.unwrap());
    let got = store.get_contact(ACCT, "akua").await.unwrap().unwrap();
    assert_eq!(got.display_name, None);
    assert_eq!(got.plan, Plan::default());
    assert_eq!(got.updated_ms, c.updated_ms + 1_000);
    assert_eq!((got.policy, got.created_ms), (None, c.created_ms));
    assert!(!store.update_contact(&personal("nobody")).await.unwrap());

    // policy
    let policy = r#"{"Version":"2012-10-17","Statement":[]}"#;
    assert!(
        store
            .set_contact_policy(ACCT, "akua", policy, 9_000)
            .await
            .unwrap()
    );
    let got = store.get_contact(ACCT, "akua").await.unwrap().unwrap();
    assert_eq!(got.policy.as_deref(), Some(policy));
    assert_eq!(got.updated_ms, 9_000);
    assert!(
        !store
            .set_contact_policy(ACCT, "nobody", policy, 9_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_contact_policy("999999999999", "akua", policy, 9_000)
            .await
            .unwrap()
    );

    // delete
    assert!(store.delete_contact(ACCT, "akua").await.unwrap());
    assert!(!store.delete_contact(ACCT, "akua").await.unwrap());
    assert_eq!(store.get_contact(ACCT, "akua").await.unwrap(), None);
    assert!(
        store
            .list_tags(ACCT, "contact/akua")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.get_contact(OTHER, "akua").await.unwrap(),
        Some(other),
        "other account untouched"
    );
    // The alias is free again.
    assert_eq!(
        store
            .create_contact(&personal("akua"), &[], None)
            .await
            .unwrap(),
        Created::New
    );
}

async fn contact_idempotency(store: Store) {
    let c = personal("akua");
    let first = idem("CreateContact", "tok-1", "hash-a", "arn:contact/akua");
    assert_eq!(
        store
            .create_contact(&c, &[tag("k", "v")], Some(&first))
            .await
            .unwrap(),
        Created::New
    );

    // Same token, same request: the stored result, and nothing is written (even though this
    // record differs, the stored result is what a retry gets).
    let retry = idem("CreateContact", "tok-1", "hash-a", "something else");
    let again = personal("other-alias");
    assert_eq!(
        store
            .create_contact(&again, &[tag("k2", "v")], Some(&retry))
            .await
            .unwrap(),
        Created::Replay("arn:contact/akua".into())
    );
    assert_eq!(store.get_contact(ACCT, "other-alias").await.unwrap(), None);
    assert!(
        store
            .list_tags(ACCT, "contact/other-alias")
            .await
            .unwrap()
            .is_empty()
    );

    // Same token, different request.
    let different = idem("CreateContact", "tok-1", "hash-b", "x");
    assert!(matches!(
        store
            .create_contact(&personal("third"), &[], Some(&different))
            .await,
        Err(StoreError::IdempotencyMismatch)
    ));
    assert_eq!(store.get_contact(ACCT, "third").await.unwrap(), None);

    // Tokens are per account and per operation.
    let mut in_other = contact(OTHER, "akua", ContactType::Personal, 1);
    in_other.id = Uuid::new_v4();
    assert_eq!(
        store
            .create_contact(&in_other, &[], Some(&first))
            .await
            .unwrap(),
        Created::New
    );
    let other_op = idem("CreateSomethingElse", "tok-1", "hash-z", "r");
    assert_eq!(
        store
            .create_contact(&personal("fourth"), &[], Some(&other_op))
            .await
            .unwrap(),
        Created::New
    );

    // A new token on a taken alias is a conflict, and the failed request does not use up
    // its token: once the alias is free, the same request succeeds.
    let fresh = idem("CreateContact", "tok-2", "hash-c", "arn:contact/fourth");
    assert_conflict(
        store
            .create_contact(&personal("fourth"), &[], Some(&fresh))
            .await,
        "a contact with alias 'fourth' already exists",
    );
    assert!(store.delete_contact(ACCT, "fourth").await.unwrap());
    assert_eq!(
        store
            .create_contact(&personal("fourth"), &[], Some(&fresh))
            .await
            .unwrap(),
        Created::New
    );
    assert_eq!(
        store
            .create_contact(&personal("fourth"), &[], Some(&fresh))
            .await
            .unwrap(),
        Created::Replay("arn:contact/fourth".into())
    );
}

async fn concurrent_contact_creates(store: Store) {
    // Several tasks retry one request with one token at the same time: exactly one
    // creates, the others get the replay.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let token = idem("CreateContact", "same-token", "h", "arn:contact/racer");
            store
                .create_contact(&personal("racer"), &[tag("t", "1")], Some(&token))
                .await
        }));
    }
    let mut new = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Created::New => new += 1,
            Created::Replay(r) => assert_eq!(r, "arn:contact/racer"),
        }
    }
    assert_eq!(new, 1);
    let listed = store
        .list_contacts(ACCT, None, None, &After::Start, 100)
        .await
        .unwrap();
    assert_eq!(aliases(&listed), ["racer"]);

    // Without a token, concurrent creates of one alias: one wins, the rest conflict.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_contact(&personal("same-alias"), &[], None)
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Created::New) => ok += 1,
            Err(StoreError::Conflict(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1);
}

async fn channel_crud(store: Store) {
    let c = personal("akua");
    let d = personal("bo");
    store.create_contact(&c, &[], None).await.unwrap();
    store.create_contact(&d, &[], None).await.unwrap();

    let ch = channel(&c, "phone", 10);
    assert_eq!(store.create_channel(&ch, None).await.unwrap(), Created::New);
    assert_eq!(
        store.get_channel(ACCT, ch.id).await.unwrap(),
        Some(ch.clone())
    );
    assert_eq!(store.get_channel(OTHER, ch.id).await.unwrap(), None);
    assert_eq!(store.get_channel(ACCT, Uuid::new_v4()).await.unwrap(), None);

    // Names are unique within a contact only.
    assert_conflict(
        store.create_channel(&channel(&c, "phone", 11), None).await,
        "contact already has a channel named 'phone'",
    );
    let other = channel(&d, "phone", 12);
    assert_eq!(
        store.create_channel(&other, None).await.unwrap(),
        Created::New
    );

    // The contact must exist in the channel's account.
    let ghost = personal("ghost");
    assert!(matches!(
        store.create_channel(&channel(&ghost, "x", 1), None).await,
        Err(StoreError::NotFound(_))
    ));
    let mut wrong_account = channel(&c, "x", 1);
    wrong_account.account = OTHER.into();
    assert!(matches!(
        store.create_channel(&wrong_account, None).await,
        Err(StoreError::NotFound(_))
    ));

    // update: name, address, activation, updated_ms
    let mut email = channel(&c, "mail", 20);
    email.channel_type = ChannelType::Email;
    email.address = "akua@example.com".into();
    store.create_channel(&email, None).await.unwrap();
    let mut changed = email.clone();
    changed.name = "work mail".into();
    changed.address = "akua@work.example.com".into();
    changed.activation = ActivationStatus::Activated;
    changed.updated_ms = 99;
    assert!(store.update_channel(&changed).await.unwrap());
    assert_eq!(
        store.get_channel(ACCT, email.id).await.unwrap(),
        Some(changed.clone())
    );
    let mut clash = changed.clone();
    clash.name = "phone".into();
    assert_conflict(
        store.update_channel(&clash).await,
        "contact already has a channel named 'phone'",
    );
    assert_eq!(
        store.get_channel(ACCT, email.id).await.unwrap(),
        Some(changed.clone())
    );
    assert!(!store.update_channel(&channel(&c, "nope", 1)).await.unwrap());
    let mut foreign = changed.clone();
    foreign.account = OTHER.into();
    assert!(!store.update_channel(&foreign).await.unwrap());

    // delete
    assert!(!store.delete_channel(OTHER, ch.id).await.unwrap());
    assert!(store.delete_channel(ACCT, ch.id).await.unwrap());
    assert!(!store.delete_channel(ACCT, ch.id).await.unwrap());
    assert_eq!(store.get_channel(ACCT, ch.id).await.unwrap(), None);
    let left = store
        .list_channels(ACCT, c.id, &After::Start, 10)
        .await
        .unwrap();
    assert_eq!(left, [changed]);
    // The name is free again.
    assert_eq!(
        store
            .create_channel(&channel(&c, "phone", 30), None)
            .await
            .unwrap(),
        Created::New
    );
    assert_eq!(
        store
            .list_channels(ACCT, d.id, &After::Start, 10)
            .await
            .unwrap(),
        [other]
    );
    assert!(
        store
            .list_channels(OTHER, d.id, &After::Start, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn channel_idempotency(store: Store) {
    let c = personal("akua");
    store.create_contact(&c, &[], None).await.unwrap();
    let tok = idem("CreateContactChannel", "t", "h1", "arn:channel/1");
    let ch = channel(&c, "phone", 1);
    assert_eq!(
        store.create_channel(&ch, Some(&tok)).await.unwrap(),
        Created::New
    );
    let retry = channel(&c, "phone", 2); // would conflict, but it is a retry
    assert_eq!(
        store.create_channel(&retry, Some(&tok)).await.unwrap(),
        Created::Replay("arn:channel/1".into())
    );
    assert_eq!(store.get_channel(ACCT, retry.id).await.unwrap(), None);
    let mismatch = idem("CreateContactChannel", "t", "h2", "arn:channel/2");
    assert!(matches!(
        store
            .create_channel(&channel(&c, "other", 3), Some(&mismatch))
            .await,
        Err(StoreError::IdempotencyMismatch)
    ));
    assert_eq!(
        store
            .list_channels(ACCT, c.id, &After::Start, 10)
            .await
            .unwrap(),
        [ch]
    );
    // The replay check comes first, even when the contact is gone since.
    assert!(store.delete_contact(ACCT, "akua").await.unwrap());
    assert_eq!(
        store.create_channel(&retry, Some(&tok)).await.unwrap(),
        Created::Replay("arn:channel/1".into())
    );
    // A failed create (no contact) does not use up a new token.
    let fresh = idem("CreateContactChannel", "t2", "h3", "arn:channel/3");
    assert!(matches!(
        store.create_channel(&retry, Some(&fresh)).await,
        Err(StoreError::NotFound(_))
    ));
    let c2 = personal("akua");
    store.create_contact(&c2, &[], None).await.unwrap();
    assert_eq!(
        store
            .create_channel(&channel(&c2, "p", 4), Some(&fresh))
            .await
            .unwrap(),
        Created::New
    );
}

async fn concurrent_channel_creates(store: Store) {
    let c = personal("akua");
    store.create_contact(&c, &[], None).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let ch = channel(&c, "phone", i);
        tasks.push(tokio::spawn(async move {
            let tok = idem("CreateContactChannel", "tok", "h", "arn:channel/phone");
            store.create_channel(&ch, Some(&tok)).await
        }));
    }
    let mut new = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() == Created::New {
            new += 1;
        }
    }
    assert_eq!(new, 1);
    assert_eq!(
        store
            .list_channels(ACCT, c.id, &After::Start, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// All the channels of the contact, as `list_channels` gives them.
async fn channels_of(store: &Store, c: &ContactRecord) -> Vec<ChannelRecord> {
    store
        .list_channels(&c.account, c.id, &After::Start, 100)
        .await
        .unwrap()
}

/// `(created_ms, id)` order, the order of `list_channels` and `channels_by_address`.
fn by_created(chs: &[&ChannelRecord]) -> Vec<ChannelRecord> {
    let mut out: Vec<ChannelRecord> = chs.iter().map(|ch| (*ch).clone()).collect();
    out.sort_by_key(|ch| (ch.created_ms, ch.id.hyphenated().to_string()));
    out
}

/// Nothing of a refused `create_contact_with_channels` is stored: no contact by its id, none
/// of its channels.
async fn assert_nothing_written(store: &Store, c: &ContactRecord, chs: &[&ChannelRecord]) {
    assert_eq!(
        store.get_contact_by_id(&c.account, c.id).await.unwrap(),
        None
    );
    assert!(channels_of(store, c).await.is_empty());
    for ch in chs {
        assert_eq!(
            store.get_channel(&ch.account, ch.id).await.unwrap(),
            None,
            "channel {}",
            ch.name
        );
    }
}

async fn contact_with_channels_in_one_transaction(store: Store) {
    const PHONE: &str = "+12065550100";
    // Another contact already has a channel with the address: addresses are not unique.
    let bo = personal("bo");
    store.create_contact(&bo, &[], None).await.unwrap();
    let bo_sms = channel(&bo, "sms", T0);
    store.create_channel(&bo_sms, None).await.unwrap();

    // The contact, with a plan naming two of its channels, and three channels: two created
    // in the same millisecond (listed by id), one earlier (listed first).
    let mut c = personal("akua");
    let mut sms = channel(&c, "sms", T0 + 5);
    let mut mail = channel(&c, "mail", T0 + 2);
    mail.channel_type = ChannelType::Email;
    mail.address = "akua@example.com".into();
    let mut voice = channel(&c, "voice", T0 + 5);
    voice.channel_type = ChannelType::Voice;
    sms.address = PHONE.into();
    voice.address = PHONE.into();
    let arn = |ch: &ChannelRecord| {
        format!(
            "arn:aws:ssm-contacts:us-east-1:{ACCT}:contact-channel/akua/{}",
            ch.id.hyphenated()
        )
    };
    c.plan = Plan {
        stages: vec![
            Stage {
                duration_minutes: 5,
                targets: vec![Target::Channel {
                    channel_arn: arn(&sms),
                    retry_interval_minutes: Some(1),
                }],
            },
            Stage {
                duration_minutes: 10,
                targets: vec![Target::Channel {
                    channel_arn: arn(&mail),
                    retry_interval_minutes: None,
                }],
            },
        ],
        rotation_ids: vec![],
    };
    let plan = c.plan.clone();
    let batch = [sms.clone(), mail.clone(), voice.clone()];
    assert_eq!(
        store
            .create_contact_with_channels(&c, &batch, &[tag("muster:source", "opsgenie:u1")])
            .await
            .unwrap(),
        Created::New
    );
    // Its tags are written with it.
    assert_eq!(
        store.list_tags(ACCT, "contact/akua").await.unwrap(),
        [tag("muster:source", "opsgenie:u1")]
    );
    let got = store.get_contact(ACCT, "akua").await.unwrap().unwrap();
    assert_eq!(got, c);
    assert_eq!(got.plan, plan);
    assert_eq!(
        store.get_contact_by_id(ACCT, c.id).await.unwrap(),
        Some(c.clone())
    );
    for ch in &batch {
        assert_eq!(
            store.get_channel(ACCT, ch.id).await.unwrap(),
            Some(ch.clone())
        );
    }
    let listed = by_created(&[&sms, &mail, &voice]);
    assert_eq!(listed[0], mail);
    assert_eq!(channels_of(&store, &c).await, listed);
    // Paging goes through them as through channels created one by one.
    let first = store
        .list_channels(ACCT, c.id, &After::Start, 2)
        .await
        .unwrap();
    assert_eq!(first, listed[..2]);
    let cursor = After::Created {
        ms: first[1].created_ms,
        id: first[1].id,
    };
    assert_eq!(
        store.list_channels(ACCT, c.id, &cursor, 2).await.unwrap(),
        listed[2..]
    );
    assert_eq!(
        store.channels_by_address(PHONE).await.unwrap(),
        by_created(&[&bo_sms, &sms, &voice])
    );
    // They are channels like any other: names stay unique with `create_channel`, and
    // `create_channel` adds to them.
    assert_conflict(
        store
            .create_channel(&channel(&c, "voice", T0 + 9), None)
            .await,
        "contact already has a channel named 'voice'",
    );
    let pager = channel(&c, "pager", T0 + 9);
    assert_eq!(
        store.create_channel(&pager, None).await.unwrap(),
        Created::New
    );
    let listed = by_created(&[&sms, &mail, &voice, &pager]);
    assert_eq!(channels_of(&store, &c).await, listed);

    // A taken alias: create_contact's conflict, the stored contact untouched, no channel.
    let mut dup = personal("akua");
    dup.display_name = Some("Someone else".into());
    let dup_ch = channel(&dup, "phone", T0 + 20);
    assert_conflict(
        store
            .create_contact_with_channels(&dup, std::slice::from_ref(&dup_ch), &[])
            .await,
        "a contact with alias 'akua' already exists",
    );
    assert_nothing_written(&store, &dup, &[&dup_ch]).await;
    assert_eq!(
        store.get_contact(ACCT, "akua").await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(channels_of(&store, &c).await, listed);

    // Two channels of the batch with one name: create_channel's conflict, and neither the
    // contact nor the channels before the clash are left behind.
    let cy = personal("cy");
    let cy_phone = channel(&cy, "phone", T0 + 30);
    let mut cy_mail = channel(&cy, "mail", T0 + 31);
    cy_mail.channel_type = ChannelType::Email;
    cy_mail.address = "cy@example.com".into();
    let cy_again = channel(&cy, "phone", T0 + 32);
    assert_conflict(
        store
            .create_contact_with_channels(
                &cy,
                &[cy_phone.clone(), cy_mail.clone(), cy_again.clone()],
                &[],
            )
            .await,
        "contact already has a channel named 'phone'",
    );
    assert_nothing_written(&store, &cy, &[&cy_phone, &cy_mail, &cy_again]).await;
    assert_eq!(store.get_contact(ACCT, "cy").await.unwrap(), None);

    // A channel whose id is taken (by bo's channel): the conflict create_channel gives for
    // it too, and nothing written.
    let mut taken = channel(&cy, "landline", T0 + 33);
    taken.id = bo_sms.id;
    let mut lone = channel(&bo, "landline", T0 + 33);
    lone.id = bo_sms.id;
    assert_conflict(
        store.create_channel(&lone, None).await,
        "contact already has a channel named 'landline'",
    );
    assert_conflict(
        store
            .create_contact_with_channels(&cy, &[cy_phone.clone(), taken], &[])
            .await,
        "contact already has a channel named 'landline'",
    );
    assert_nothing_written(&store, &cy, &[&cy_phone]).await;
    assert_eq!(
        store.get_channel(ACCT, bo_sms.id).await.unwrap(),
        Some(bo_sms.clone())
    );

    // Channels of another contact (or account) are refused before anything is written.
    let mut foreign = channel(&bo, "stray", T0 + 34);
    foreign.contact_alias = "cy".into();
    let mut elsewhere = channel(&cy, "stray", T0 + 34);
    elsewhere.account = OTHER.into();
    let mut renamed = channel(&cy, "stray", T0 + 34);
    renamed.contact_alias = "bo".into();
    for stray in [foreign, elsewhere, renamed] {
        let got = store
            .create_contact_with_channels(&cy, &[cy_phone.clone(), stray.clone()], &[])
            .await;
        assert!(matches!(got, Err(StoreError::Corrupt(_))), "{got:?}");
        assert_nothing_written(&store, &cy, &[&cy_phone, &stray]).await;
    }
    assert_eq!(channels_of(&store, &bo).await, [bo_sms]);

    // After all those refusals the alias is free, and the batch without the clash goes in.
    assert_eq!(
        store
            .create_contact_with_channels(&cy, &[cy_phone.clone(), cy_mail.clone()], &[])
            .await
            .unwrap(),
        Created::New
    );
    assert_eq!(
        store.get_contact(ACCT, "cy").await.unwrap(),
        Some(cy.clone())
    );
    assert_eq!(channels_of(&store, &cy).await, [cy_phone, cy_mail]);

    // No channels: just the contact.
    let dee = contact(ACCT, "dee", ContactType::Escalation, T0 + 40);
    assert_eq!(
        store
            .create_contact_with_channels(&dee, &[], &[])
            .await
            .unwrap(),
        Created::New
    );
    assert_eq!(
        store.get_contact(ACCT, "dee").await.unwrap(),
        Some(dee.clone())
    );
    assert!(channels_of(&store, &dee).await.is_empty());
    assert_eq!(
        aliases(
            &store
                .list_contacts(ACCT, None, None, &After::Start, 10)
                .await
                .unwrap()
        ),
        ["akua", "bo", "cy", "dee"]
    );
    // Deleting the contact takes its channels, as for channels created one by one.
    assert!(store.delete_contact(ACCT, "akua").await.unwrap());
    for ch in [&sms, &mail, &voice, &pager] {
        assert_eq!(store.get_channel(ACCT, ch.id).await.unwrap(), None);
    }
}

/// Concurrent creates of one alias with channels: one wins, with its channels only.
async fn concurrent_contacts_with_channels(store: Store) {
    let mut tasks = Vec::new();
    let mut batches = Vec::new();
    for i in 0..6 {
        let c = personal("akua");
        let chs = vec![channel(&c, "sms", T0 + i), channel(&c, "voice", T0 + i)];
        batches.push((c.clone(), chs.clone()));
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.create_contact_with_channels(&c, &chs, &[]).await
        }));
    }
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(created) => {
                assert_eq!(created, Created::New);
                winners.push(i);
            }
            Err(e) => assert!(
                matches!(&e, StoreError::Conflict(m) if m == "a contact with alias 'akua' already exists"),
                "{e:?}"
            ),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (c, chs) = &batches[winners[0]];
    assert_eq!(
        store.get_contact(ACCT, "akua").await.unwrap().as_ref(),
        Some(c)
    );
    assert_eq!(
        channels_of(&store, c).await,
        by_created(&chs.iter().collect::<Vec<_>>())
    );
    for (i, (loser, chs)) in batches.iter().enumerate() {
        if i != winners[0] {
            assert_nothing_written(&store, loser, &chs.iter().collect::<Vec<_>>()).await;
        }
    }
}

async fn cascade_on_delete(store: Store) {
    let c = personal("akua");
    let d = personal("bo");
    store
        .create_contact(&c, &[tag("a", "1")], None)
        .await
        .unwrap();
    store
        .create_contact(&d, &[tag("b", "2")], None)
        .await
        .unwrap();
    let chans: Vec<_> = (0..3).map(|i| channel(&c, &format!("c{i}"), i)).collect();
    for ch in &chans {
        store.create_channel(ch, None).await.unwrap();
    }
    let kept = channel(&d, "c0", 0);
    store.create_channel(&kept, None).await.unwrap();

    assert!(store.delete_contact(ACCT, "akua").await.unwrap());
    for ch in &chans {
        assert_eq!(store.get_channel(ACCT, ch.id).await.unwrap(), None);
    }
    assert!(
        store
            .list_channels(ACCT, c.id, &After::Start, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_tags(ACCT, "contact/akua")
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing else is touched.
    assert_eq!(store.get_channel(ACCT, kept.id).await.unwrap(), Some(kept));
    assert_eq!(
        store.list_tags(ACCT, "contact/bo").await.unwrap(),
        [tag("b", "2")]
    );
    // A recreated contact of the same alias starts with no channels.
    let again = personal("akua");
    store.create_contact(&again, &[], None).await.unwrap();
    assert!(
        store
            .list_channels(ACCT, again.id, &After::Start, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn contact_pagination_with_inserts(store: Store) {
    for (page_size, account) in [
        (1, "100000000001"),
        (2, "100000000002"),
        (3, "100000000003"),
    ] {
        let pre: Vec<String> = (0..12).map(|i| format!("c{:02}", i * 2)).collect();
        for a in &pre {
            store
                .create_contact(&contact(account, a, ContactType::Personal, 1), &[], None)
                .await
                .unwrap();
        }
        let mut seen: Vec<String> = Vec::new();
        let mut after = After::Start;
        for round in 0.. {
            let page = store
                .list_contacts(account, None, None, &after, page_size)
                .await
                .unwrap();
            assert!(page.len() <= page_size as usize);
            if page.is_empty() {
                break;
            }
            seen.extend(page.iter().map(|c| c.alias.clone()));
            let last = page.last().unwrap().alias.clone();
            after = After::Alias(last.clone());
            // Between pages (the first few): a row before the cursor, one right after it,
            // one at the end.
            let news = [
                format!("b{round:02}"),
                format!("{last}a"),
                format!("z{round:02}"),
            ];
            for new in news.iter().filter(|_| round < 8) {
                store
                    .create_contact(&contact(account, new, ContactType::Personal, 2), &[], None)
                    .await
                    .unwrap();
            }
            assert!(round < 100, "pagination does not end");
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            seen, sorted,
            "page size {page_size}: strictly increasing, no repeats"
        );
        let seen_set: HashSet<_> = seen.iter().collect();
        for a in &pre {
            assert!(seen_set.contains(a), "page size {page_size}: {a} skipped");
        }
        assert!(
            !seen.iter().any(|a| a.starts_with('b')),
            "rows before the cursor never show"
        );
    }
}

async fn channel_pagination_with_inserts(store: Store) {
    for page_size in [1u32, 2, 3] {
        let c = personal(&format!("owner{page_size}"));
        store.create_contact(&c, &[], None).await.unwrap();
        // Several channels share an instant: the id breaks ties.
        let mut pre = Vec::new();
        for i in 0..10 {
            let ch = channel(&c, &format!("pre{i}"), 1_000 + i / 3);
            store.create_channel(&ch, None).await.unwrap();
            pre.push(ch);
        }
        let key = |ch: &ChannelRecord| (ch.created_ms, ch.id.hyphenated().to_string());
        let mut seen: Vec<ChannelRecord> = Vec::new();
        let mut after = After::Start;
        for round in 0.. {
            let page = store
                .list_channels(ACCT, c.id, &after, page_size)
                .await
                .unwrap();
            assert!(page.len() <= page_size as usize);
            if page.is_empty() {
                break;
            }
            let last = page.last().unwrap().clone();
            seen.extend(page);
            after = After::Created {
                ms: last.created_ms,
                id: last.id,
            };
            // Between pages: rows at the cursor's instant (random ids land on either side),
            // and a later one.
            let news = [last.created_ms, last.created_ms, 5_000 + round];
            for (j, ms) in news.into_iter().enumerate().filter(|_| round < 8) {
                store
                    .create_channel(&channel(&c, &format!("new{round}-{j}"), ms), None)
                    .await
                    .unwrap();
            }
            assert!(round < 200, "pagination does not end");
        }
        let keys: Vec<_> = seen.iter().map(key).collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "page size {page_size}: strictly increasing"
        );
        let ids: HashSet<Uuid> = seen.iter().map(|ch| ch.id).collect();
        for ch in &pre {
            assert!(
                ids.contains(&ch.id),
                "page size {page_size}: {} skipped",
                ch.name
            );
        }
    }
    // The first page is ordered by (created_ms, id) too.
    let c = personal("order");
    store.create_contact(&c, &[], None).await.unwrap();
    let mut made: Vec<_> = (0..6)
        .map(|i| channel(&c, &format!("o{i}"), 7 - i / 2))
        .collect();
    for ch in &made {
        store.create_channel(ch, None).await.unwrap();
    }
    made.sort_by_key(|ch| (ch.created_ms, ch.id.hyphenated().to_string()));
    assert_eq!(
        store
            .list_channels(ACCT, c.id, &After::Start, 100)
            .await
            .unwrap(),
        made
    );
    assert_eq!(
        store
            .list_channels(ACCT, c.id, &After::Start, 0)
            .await
            .unwrap(),
        []
    );
}

async fn alias_prefix_and_type_filters(store: Store) {
    let all = [
        ("a", ContactType::Personal),
        ("a%c", ContactType::Personal),
        ("a-b", ContactType::Escalation),
        ("a_b", ContactType::Personal),
        ("ab", ContactType::Escalation),
        ("abc", ContactType::Personal),
        ("axb", ContactType::OncallSchedule),
        ("b_a", ContactType::Personal),
        ("ba", ContactType::Escalation),
    ];
    // Insert out of order.
    for (alias, ty) in all.iter().rev() {
        store
            .create_contact(&contact(ACCT, alias, *ty, 1), &[], None)
            .await
            .unwrap();
    }
    store
        .create_contact(&contact(OTHER, "a_b", ContactType::Personal, 1), &[], None)
        .await
        .unwrap();

    let list = |prefix: Option<&'static str>, ty: Option<ContactType>, after: After| {
        let store = store.clone();
        async move {
            let got = store
                .list_contacts(ACCT, prefix, ty, &after, 100)
                .await
                .unwrap();
            got.into_iter().map(|c| c.alias).collect::<Vec<_>>()
        }
    };
    // Code-point order on both backends, whatever the database's collation.
    assert_eq!(
        list(None, None, After::Start).await,
        ["a", "a%c", "a-b", "a_b", "ab", "abc", "axb", "b_a", "ba"]
    );
    assert_eq!(
        list(Some(""), None, After::Start).await.len(),
        9,
        "empty prefix = no filter"
    );
    // `_` and `%` are literal, not LIKE wildcards.
    assert_eq!(list(Some("a_"), None, After::Start).await, ["a_b"]);
    assert_eq!(list(Some("a%"), None, After::Start).await, ["a%c"]);
    assert_eq!(
        list(Some("%"), None, After::Start).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(Some("_"), None, After::Start).await,
        Vec::<String>::new()
    );
    assert_eq!(list(Some("ab"), None, After::Start).await, ["ab", "abc"]);
    assert_eq!(list(Some("abc"), None, After::Start).await, ["abc"]);
    assert_eq!(
        list(Some("abcd"), None, After::Start).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(Some("A"), None, After::Start).await,
        Vec::<String>::new(),
        "case-sensitive"
    );
    assert_eq!(list(Some("b"), None, After::Start).await, ["b_a", "ba"]);
    // Odd user input is just a prefix nothing matches.
    for odd in ["\0", "a\0", "é", "\u{10FFFF}", "'; DROP TABLE contacts; --"] {
        let got = store
            .list_contacts(ACCT, Some(odd), None, &After::Start, 100)
            .await
            .unwrap();
        assert!(got.is_empty(), "{odd:?}");
    }
    // Type filter, alone and with a prefix and a cursor.
    assert_eq!(
        list(None, Some(ContactType::Escalation), After::Start).await,
        ["a-b", "ab", "ba"]
    );
    assert_eq!(
        list(None, Some(ContactType::OncallSchedule), After::Start).await,
        ["axb"]
    );
    assert_eq!(
        list(Some("a"), Some(ContactType::Escalation), After::Start).await,
        ["a-b", "ab"]
    );
    assert_eq!(
        list(
            Some("a"),
            Some(ContactType::Personal),
            After::Alias("a%c".into())
        )
        .await,
        ["a_b", "abc"]
    );
    assert_eq!(
        list(Some("a"), None, After::Alias("ab".into())).await,
        ["abc", "axb"]
    );
    assert_eq!(
        list(None, None, After::Alias("zzz".into())).await,
        Vec::<String>::new()
    );
    // A cursor that is not an alias (paging from the middle).
    assert_eq!(list(None, None, After::Alias("a.".into())).await[0], "a_b");
    // limit
    let two = store
        .list_contacts(ACCT, Some("a"), None, &After::Start, 2)
        .await
        .unwrap();
    assert_eq!(aliases(&two), ["a", "a%c"]);
    assert!(
        store
            .list_contacts(ACCT, None, None, &After::Start, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn tags(store: Store) {
    let r = "contact/akua";
    store
        .tag_resource(ACCT, r, &[tag("b", "1"), tag("a", "2")], 3)
        .await
        .unwrap();
    assert_eq!(
        store.list_tags(ACCT, r).await.unwrap(),
        [tag("a", "2"), tag("b", "1")]
    );
    // Upsert: an existing key's value is replaced; it does not count twice.
    store
        .tag_resource(ACCT, r, &[tag("a", "3"), tag("C", "x")], 3)
        .await
        .unwrap();
    assert_eq!(
        store.list_tags(ACCT, r).await.unwrap(),
        [tag("C", "x"), tag("a", "3"), tag("b", "1")],
        "sorted by key, code-point order"
    );
    // At the limit, overwriting is fine; a new key is not, and the call changes nothing.
    store
        .tag_resource(ACCT, r, &[tag("b", "new")], 3)
        .await
        .unwrap();
    assert!(matches!(
        store
            .tag_resource(ACCT, r, &[tag("a", "changed"), tag("d", "4")], 3)
            .await,
        Err(StoreError::TooManyTags { max: 3 })
    ));
    let before = [tag("C", "x"), tag("a", "3"), tag("b", "new")];
    assert_eq!(store.list_tags(ACCT, r).await.unwrap(), before);
    // Resources and accounts are separate.
    store
        .tag_resource(ACCT, "rotation/x", &[tag("a", "r")], 3)
        .await
        .unwrap();
    store
        .tag_resource(OTHER, r, &[tag("a", "o")], 3)
        .await
        .unwrap();
    assert_eq!(store.list_tags(ACCT, r).await.unwrap(), before);
    assert_eq!(store.list_tags(OTHER, r).await.unwrap(), [tag("a", "o")]);
    // Untag: unknown keys are ignored.
    store
        .untag_resource(ACCT, r, &["a".into(), "zz".into(), "C".into()])
        .await
        .unwrap();
    assert_eq!(store.list_tags(ACCT, r).await.unwrap(), [tag("b", "new")]);
    store.untag_resource(ACCT, r, &[]).await.unwrap();
    store
        .untag_resource(ACCT, "nothing/here", &["a".into()])
        .await
        .unwrap();
    assert_eq!(
        store.list_tags(ACCT, "rotation/x").await.unwrap(),
        [tag("a", "r")]
    );
    assert!(
        store
            .list_tags(ACCT, "nothing/here")
            .await
            .unwrap()
            .is_empty()
    );
    // Empty values and tagging with nothing.
    store
        .tag_resource(ACCT, r, &[tag("empty", "")], 3)
        .await
        .unwrap();
    store.tag_resource(ACCT, r, &[], 3).await.unwrap();
    assert_eq!(
        store.list_tags(ACCT, r).await.unwrap(),
        [tag("b", "new"), tag("empty", "")]
    );

    // Concurrent taggers of one resource cannot exceed the limit together.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .tag_resource(ACCT, "contact/busy", &[tag(&format!("k{i}"), "v")], 4)
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::TooManyTags { max: 4 }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 4);
    assert_eq!(
        store.list_tags(ACCT, "contact/busy").await.unwrap().len(),
        4
    );
}

async fn wrong_cursor_kind(store: Store) {
    let c = personal("akua");
    store.create_contact(&c, &[], None).await.unwrap();
    let created = After::Created {
        ms: 1,
        id: Uuid::new_v4(),
    };
    assert!(matches!(
        store.list_contacts(ACCT, None, None, &created, 10).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store
            .list_channels(ACCT, c.id, &After::Alias("a".into()), 10)
            .await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store
            .list_rotations(ACCT, None, &After::Alias("a".into()), 10)
            .await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store
            .list_overrides(ACCT, Uuid::new_v4(), 0, 10, &After::Alias("a".into()), 10)
            .await,
        Err(StoreError::Corrupt(_))
    ));
}

// ---- rotations, overrides, feeds -------------------------------------------------------

fn rotation(account: &str, name: &str, members: &[&str], ms: i64) -> RotationRecord {
    RotationRecord {
        id: Uuid::new_v4(),
        account: account.into(),
        name: name.into(),
        start_ms: 1_700_000_000_000,
        time_zone: "Europe/Dublin".into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        recurrence_json: r#"{"NumberOfOnCalls":1,"RecurrenceMultiplier":1,"DailySettings":[{"HourOfDay":9,"MinuteOfHour":0}]}"#.into(),
        created_ms: ms,
        updated_ms: ms,
    }
}

fn rotation_arn(r: &RotationRecord) -> String {
    format!(
        "arn:aws:ssm-contacts:us-east-1:{}:rotation/{}",
        r.account, r.id
    )
}

fn override_of(
    r: &RotationRecord,
    members: &[&str],
    start_ms: i64,
    end_ms: i64,
) -> RotationOverrideRecord {
    RotationOverrideRecord {
        id: Uuid::new_v4(),
        account: r.account.clone(),
        rotation_id: r.id,
        members: members.iter().map(|m| m.to_string()).collect(),
        start_ms,
        end_ms,
        created_ms: 42,
    }
}

fn feed(account: &str, hash: &str, target: FeedTarget, ms: i64) -> FeedRecord {
    FeedRecord {
        id: Uuid::new_v4(),
        account: account.into(),
        token_hash: hash.into(),
        target,
        created_ms: ms,
        revoked_ms: None,
    }
}

fn schedule(alias: &str, rotation_arns: &[&str], ms: i64) -> ContactRecord {
    let mut c = contact(ACCT, alias, ContactType::OncallSchedule, ms);
    c.plan.rotation_ids = rotation_arns.iter().map(|a| a.to_string()).collect();
    c
}

async fn personals(store: &Store, account: &str, aliases: &[&str]) {
    for a in aliases {
        store
            .create_contact(&contact(account, a, ContactType::Personal, 1), &[], None)
            .await
            .unwrap();
    }
}

fn rotation_ids(rs: &[RotationRecord]) -> Vec<Uuid> {
    rs.iter().map(|r| r.id).collect()
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, msg: &str) {
    match r {
        Err(StoreError::NotFound(m)) => assert_eq!(m, msg),
        other => panic!("expected NotFound({msg:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_in_use<T: std::fmt::Debug>(r: Result<T, StoreError>, want: &[Uuid]) {
    match r {
        Err(StoreError::InUse { rotations }) => assert_eq!(rotations, want),
        other => panic!("expected InUse({want:?}), got {other:?}"),
    }
}

async fn rotation_crud(store: Store) {
    personals(&store, ACCT, &["akua", "bo", "cy", "dee"]).await;
    personals(&store, OTHER, &["zed"]).await;

    // Members keep their order (not alphabetical, not by creation).
    let r = rotation(ACCT, "Primary on-call", &["cy", "akua", "bo"], 1_000);
    let tags = [tag("team", "core")];
    assert_eq!(
        store.create_rotation(&r, &tags, None).await.unwrap(),
        Created::New
    );
    assert_eq!(
        store.get_rotation(ACCT, r.id).await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(store.get_rotation(OTHER, r.id).await.unwrap(), None);
    assert_eq!(
        store.get_rotation(ACCT, Uuid::new_v4()).await.unwrap(),
        None
    );
    let resource = format!("rotation/{}", r.id);
    assert_eq!(store.list_tags(ACCT, &resource).await.unwrap(), tags);

    // One member, and the same contact in two rotations.
    let single = rotation(ACCT, "Solo", &["akua"], 2_000);
    store.create_rotation(&single, &[], None).await.unwrap();
    assert_eq!(
        store.get_rotation(ACCT, single.id).await.unwrap(),
        Some(single.clone())
    );

    // An unknown alias (or one of another account) writes nothing, not even tags.
    for (bad, missing) in [
        (vec!["akua", "nobody", "bo"], "nobody"),
        (vec!["zed"], "zed"),
        (vec!["akua", "a\0"], "a\0"),
    ] {
        let ghost = rotation(ACCT, "Ghost", &bad, 3_000);
        assert_not_found(
            store.create_rotation(&ghost, &[tag("k", "v")], None).await,
            &format!("contact '{missing}'"),
        );
        assert_eq!(store.get_rotation(ACCT, ghost.id).await.unwrap(), None);
        assert!(
            store
                .list_tags(ACCT, &format!("rotation/{}", ghost.id))
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(
        rotation_ids(
            &store
                .list_rotations(ACCT, None, &After::Start, 10)
                .await
                .unwrap()
        ),
        [r.id, single.id]
    );

    // get_rotations: in the order given, skipping missing ones.
    let got = store
        .get_rotations(ACCT, &[single.id, Uuid::new_v4(), r.id])
        .await
        .unwrap();
    assert_eq!(got, [single.clone(), r.clone()]);
    assert!(
        store
            .get_rotations(OTHER, &[r.id])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.get_rotations(ACCT, &[]).await.unwrap().is_empty());

    // rotations_with_member, in (created_ms, id) order.
    assert_eq!(
        store.rotations_with_member(ACCT, "akua").await.unwrap(),
        [r.id, single.id]
    );
    assert_eq!(
        store.rotations_with_member(ACCT, "cy").await.unwrap(),
        [r.id]
    );
    assert!(
        store
            .rotations_with_member(ACCT, "dee")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .rotations_with_member(OTHER, "akua")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .rotations_with_member(ACCT, "nobody")
            .await
            .unwrap()
            .is_empty()
    );

    // update replaces name, start, zone, members, recurrence, updated_ms; not created_ms.
    let mut changed = r.clone();
    changed.name = "Renamed".into();
    changed.start_ms = 1_800_000_000_000;
    changed.time_zone = "America/New_York".into();
    changed.members = vec!["dee".into(), "cy".into()];
    changed.recurrence_json = r#"{"NumberOfOnCalls":2}"#.into();
    changed.updated_ms = 5_000;
    let mut sent = changed.clone();
    sent.created_ms = 1;
    assert!(store.update_rotation(&sent).await.unwrap());
    assert_eq!(
        store.get_rotation(ACCT, r.id).await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(
        store.rotations_with_member(ACCT, "akua").await.unwrap(),
        [single.id]
    );
    assert_eq!(
        store.rotations_with_member(ACCT, "dee").await.unwrap(),
        [r.id]
    );
    // An update with an unknown alias changes nothing.
    let mut bad = changed.clone();
    bad.name = "Bad".into();
    bad.members = vec!["akua".into(), "nobody".into()];
    assert_not_found(store.update_rotation(&bad).await, "contact 'nobody'");
    assert_eq!(
        store.get_rotation(ACCT, r.id).await.unwrap(),
        Some(changed.clone())
    );
    // Missing, or in another account.
    assert!(
        !store
            .update_rotation(&rotation(ACCT, "x", &["akua"], 1))
            .await
            .unwrap()
    );
    let mut foreign = changed.clone();
    foreign.account = OTHER.into();
    foreign.members = vec!["zed".into()];
    assert!(!store.update_rotation(&foreign).await.unwrap());
    assert_eq!(
        store.get_rotation(ACCT, r.id).await.unwrap(),
        Some(changed.clone())
    );

    // delete
    let arn = rotation_arn(&r);
    assert!(!store.delete_rotation(OTHER, r.id, &arn, 9).await.unwrap());
    assert!(store.delete_rotation(ACCT, r.id, &arn, 9).await.unwrap());
    assert!(!store.delete_rotation(ACCT, r.id, &arn, 9).await.unwrap());
    assert_eq!(store.get_rotation(ACCT, r.id).await.unwrap(), None);
    assert!(store.list_tags(ACCT, &resource).await.unwrap().is_empty());
    assert!(
        store
            .rotations_with_member(ACCT, "dee")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_rotations(ACCT, None, &After::Start, 10)
            .await
            .unwrap(),
        [single]
    );
}

async fn rotation_idempotency(store: Store) {
    personals(&store, ACCT, &["akua", "bo"]).await;
    let tok = idem("CreateRotation", "t1", "h1", "arn:rotation/1");
    let r = rotation(ACCT, "Primary", &["akua", "bo"], 1);
    assert_eq!(
        store
            .create_rotation(&r, &[tag("k", "v")], Some(&tok))
            .await
            .unwrap(),
        Created::New
    );
    // Retry: the stored result; nothing written.
    let retry = rotation(ACCT, "Primary", &["akua", "bo"], 2);
    assert_eq!(
        store
            .create_rotation(&retry, &[tag("k2", "v")], Some(&tok))
            .await
            .unwrap(),
        Created::Replay("arn:rotation/1".into())
    );
    assert_eq!(store.get_rotation(ACCT, retry.id).await.unwrap(), None);
    assert!(
        store
            .list_tags(ACCT, &format!("rotation/{}", retry.id))
            .await
            .unwrap()
            .is_empty()
    );
    // The replay check comes first, even if the request would now fail.
    let retry_bad = rotation(ACCT, "Primary", &["nobody"], 2);
    assert_eq!(
        store
            .create_rotation(&retry_bad, &[], Some(&tok))
            .await
            .unwrap(),
        Created::Replay("arn:rotation/1".into())
    );
    // Mismatch.
    let other = idem("CreateRotation", "t1", "h2", "arn:rotation/2");
    let mismatched = rotation(ACCT, "Other", &["akua"], 3);
    assert!(matches!(
        store.create_rotation(&mismatched, &[], Some(&other)).await,
        Err(StoreError::IdempotencyMismatch)
    ));
    assert_eq!(store.get_rotation(ACCT, mismatched.id).await.unwrap(), None);
    // A failed create (unknown member) does not use up its token.
    let fresh = idem("CreateRotation", "t2", "h3", "arn:rotation/3");
    let needs_cy = rotation(ACCT, "Needs cy", &["akua", "cy"], 4);
    assert_not_found(
        store.create_rotation(&needs_cy, &[], Some(&fresh)).await,
        "contact 'cy'",
    );
    personals(&store, ACCT, &["cy"]).await;
    assert_eq!(
        store
            .create_rotation(&needs_cy, &[], Some(&fresh))
            .await
            .unwrap(),
        Created::New
    );
    assert_eq!(
        store
            .create_rotation(&needs_cy, &[], Some(&fresh))
            .await
            .unwrap(),
        Created::Replay("arn:rotation/3".into())
    );
    assert_eq!(
        store
            .list_rotations(ACCT, None, &After::Start, 10)
            .await
            .unwrap(),
        [r, needs_cy]
    );
}

async fn rotation_pagination_with_inserts(store: Store) {
    for (page_size, account) in [
        (1u32, "100000000001"),
        (2, "100000000002"),
        (3, "100000000003"),
    ] {
        personals(&store, account, &["m1", "m2"]).await;
        // Several rotations share an instant: the id breaks ties. Members make each
        // rotation several joined rows: the limit still counts rotations.
        let mut pre = Vec::new();
        for i in 0..10 {
            let r = rotation(
                account,
                &format!("pre{i}"),
                &["m1", "m2", "m1"],
                1_000 + i / 3,
            );
            store.create_rotation(&r, &[], None).await.unwrap();
            pre.push(r);
        }
        let key = |r: &RotationRecord| (r.created_ms, r.id.hyphenated().to_string());
        let mut seen: Vec<RotationRecord> = Vec::new();
        let mut after = After::Start;
        for round in 0.. {
            let page = store
                .list_rotations(account, None, &after, page_size)
                .await
                .unwrap();
            assert!(page.len() <= page_size as usize);
            if page.is_empty() {
                break;
            }
            let last = page.last().unwrap().clone();
            seen.extend(page);
            after = After::Created {
                ms: last.created_ms,
                id: last.id,
            };
            // Between pages: rows at the cursor's instant (random ids land on either side),
            // one before it and one later.
            let news = [last.created_ms, last.created_ms, 0, 5_000 + round];
            for (j, ms) in news.into_iter().enumerate().filter(|_| round < 8) {
                let r = rotation(account, &format!("new{round}-{j}"), &["m2"], ms);
                store.create_rotation(&r, &[], None).await.unwrap();
            }
            assert!(round < 200, "pagination does not end");
        }
        let keys: Vec<_> = seen.iter().map(key).collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "page size {page_size}: strictly increasing"
        );
        for r in &pre {
            let got = seen.iter().find(|s| s.id == r.id);
            assert_eq!(got, Some(r), "page size {page_size}: {} skipped", r.name);
        }
        assert!(
            !seen.iter().any(|r| r.created_ms == 0),
            "rows before the cursor never show"
        );
    }
    assert!(
        store
            .list_rotations("100000000001", None, &After::Start, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn rotation_name_prefix(store: Store) {
    personals(&store, ACCT, &["m"]).await;
    personals(&store, OTHER, &["m"]).await;
    let names = [
        "Primary",
        "Primary on-call",
        "Primary.eu",
        "Primary_us",
        "Primary-apac",
        "primary lower",
        "Prim%ary",
        "Secondary",
        "P",
    ];
    // Created in this order (increasing created_ms): the listing is by creation, not name.
    let mut made = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let r = rotation(ACCT, name, &["m"], 100 - i64::try_from(i).unwrap());
        store.create_rotation(&r, &[], None).await.unwrap();
        made.push(r);
    }
    store
        .create_rotation(&rotation(OTHER, "Primary", &["m"], 1), &[], None)
        .await
        .unwrap();
    let list = |prefix: Option<&'static str>, after: After, limit: u32| {
        let store = store.clone();
        async move {
            let got = store
                .list_rotations(ACCT, prefix, &after, limit)
                .await
                .unwrap();
            got.into_iter().map(|r| r.name).collect::<Vec<_>>()
        }
    };
    let by_created = |pred: &dyn Fn(&str) -> bool| {
        let mut v: Vec<&RotationRecord> = made.iter().filter(|r| pred(&r.name)).collect();
        v.sort_by_key(|r| r.created_ms);
        v.into_iter().map(|r| r.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(list(None, After::Start, 100).await, by_created(&|_| true));
    assert_eq!(list(Some(""), After::Start, 100).await.len(), 9);
    assert_eq!(
        list(Some("Primary"), After::Start, 100).await,
        by_created(&|n| n.starts_with("Primary"))
    );
    assert_eq!(
        list(Some("Primary "), After::Start, 100).await,
        ["Primary on-call"]
    );
    assert_eq!(
        list(Some("Primary."), After::Start, 100).await,
        ["Primary.eu"]
    );
    assert_eq!(
        list(Some("Primary_"), After::Start, 100).await,
        ["Primary_us"]
    );
    assert_eq!(
        list(Some("Primary-"), After::Start, 100).await,
        ["Primary-apac"]
    );
    assert_eq!(list(Some("Prim%"), After::Start, 100).await, ["Prim%ary"]);
    assert_eq!(
        list(Some("primary"), After::Start, 100).await,
        ["primary lower"]
    );
    assert_eq!(
        list(Some("PRIMARY"), After::Start, 100).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(Some("%"), After::Start, 100).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(Some("_"), After::Start, 100).await,
        Vec::<String>::new()
    );
    for odd in [
        "\0",
        "P\0",
        "é",
        "\u{10FFFF}",
        "'; DROP TABLE rotations; --",
    ] {
        assert!(
            store
                .list_rotations(ACCT, Some(odd), &After::Start, 100)
                .await
                .unwrap()
                .is_empty(),
            "{odd:?}"
        );
    }
    // Prefix, cursor and limit together.
    let all_p = by_created(&|n| n.starts_with('P'));
    let first_two = list(Some("P"), After::Start, 2).await;
    assert_eq!(first_two, all_p[..2]);
    let second = made.iter().find(|r| r.name == first_two[1]).unwrap();
    let rest = list(
        Some("P"),
        After::Created {
            ms: second.created_ms,
            id: second.id,
        },
        100,
    )
    .await;
    assert_eq!(rest, all_p[2..]);
}

async fn contact_in_use(store: Store) {
    personals(&store, ACCT, &["akua", "bo", "cy"]).await;
    let akua = store.get_contact(ACCT, "akua").await.unwrap().unwrap();
    let phone = channel(&akua, "phone", 1);
    store.create_channel(&phone, None).await.unwrap();
    store
        .tag_resource(ACCT, "contact/akua", &[tag("t", "v")], 50)
        .await
        .unwrap();
    let r1 = rotation(ACCT, "one", &["bo", "akua"], 20);
    let r2 = rotation(ACCT, "two", &["akua"], 10);
    store.create_rotation(&r1, &[], None).await.unwrap();
    store.create_rotation(&r2, &[], None).await.unwrap();

    // A member cannot be deleted; nothing of it goes.
    assert_in_use(store.delete_contact(ACCT, "akua").await, &[r2.id, r1.id]);
    assert_eq!(
        store.get_contact(ACCT, "akua").await.unwrap(),
        Some(akua.clone())
    );
    assert_eq!(
        store.get_channel(ACCT, phone.id).await.unwrap(),
        Some(phone.clone())
    );
    assert_eq!(
        store.list_tags(ACCT, "contact/akua").await.unwrap(),
        [tag("t", "v")]
    );
    assert_eq!(
        store.get_rotation(ACCT, r1.id).await.unwrap(),
        Some(r1.clone())
    );

    // Out of r2 (another member instead), still in r1.
    let mut r2b = r2.clone();
    r2b.members = vec!["bo".into()];
    assert!(store.update_rotation(&r2b).await.unwrap());
    assert_in_use(store.delete_contact(ACCT, "akua").await, &[r1.id]);
    // Out of r1 too.
    let mut r1b = r1.clone();
    r1b.members = vec!["bo".into()];
    assert!(store.update_rotation(&r1b).await.unwrap());

    // Named in an override of r1 only: still in use.
    let o = override_of(&r1, &["cy", "akua"], 1_000, 2_000);
    store.create_override(&o).await.unwrap();
    assert_in_use(store.delete_contact(ACCT, "akua").await, &[r1.id]);
    assert_in_use(store.delete_contact(ACCT, "cy").await, &[r1.id]);
    // Overrides do not make a rotation "with member".
    assert!(
        store
            .rotations_with_member(ACCT, "akua")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.delete_override(ACCT, r1.id, o.id).await.unwrap());

    // Free: the delete goes through, with channels and tags.
    assert!(store.delete_contact(ACCT, "akua").await.unwrap());
    assert_eq!(store.get_contact(ACCT, "akua").await.unwrap(), None);
    assert_eq!(store.get_channel(ACCT, phone.id).await.unwrap(), None);
    assert!(
        store
            .list_tags(ACCT, "contact/akua")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.delete_contact(ACCT, "cy").await.unwrap());
    assert!(!store.delete_contact(ACCT, "akua").await.unwrap());
    assert!(!store.delete_contact(ACCT, "a\0").await.unwrap());

    // Deleting the rotation frees its members.
    assert_in_use(store.delete_contact(ACCT, "bo").await, &[r2.id, r1.id]);
    assert!(
        store
            .delete_rotation(ACCT, r1.id, &rotation_arn(&r1), 5)
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_rotation(ACCT, r2.id, &rotation_arn(&r2), 5)
            .await
            .unwrap()
    );
    assert!(store.delete_contact(ACCT, "bo").await.unwrap());
}

/// Deleting a contact while another request makes it a member: whichever wins, the other
/// fails cleanly and the data stays consistent (on PostgreSQL the RESTRICT reference and
/// the foreign key close the race).
async fn concurrent_member_and_delete(store: Store) {
    personals(&store, ACCT, &["base"]).await;
    for i in 0..12 {
        let alias = format!("c{i}");
        personals(&store, ACCT, &[alias.as_str()]).await;
        let r = rotation(ACCT, "r", &["base"], i);
        store.create_rotation(&r, &[], None).await.unwrap();
        let mut add = r.clone();
        add.members.push(alias.clone());
        let (s1, s2) = (store.clone(), store.clone());
        let a = alias.clone();
        let del = tokio::spawn(async move { s1.delete_contact(ACCT, &a).await });
        let upd = tokio::spawn(async move { s2.update_rotation(&add).await });
        let (del, upd) = (del.await.unwrap(), upd.await.unwrap());
        let now = store.get_rotation(ACCT, r.id).await.unwrap().unwrap();
        let exists = store.get_contact(ACCT, &alias).await.unwrap().is_some();
        match (del, upd) {
            (Ok(true), Err(StoreError::NotFound(m))) => {
                assert_eq!(m, format!("contact '{alias}'"));
                assert!(!exists);
                assert_eq!(now.members, ["base"]);
            }
            (Err(StoreError::InUse { rotations }), Ok(true)) => {
                assert_eq!(rotations, [r.id]);
                assert!(exists);
                assert_eq!(now.members, ["base".to_string(), alias.clone()]);
            }
            other => panic!("inconsistent outcome {other:?}"),
        }
    }
}

async fn delete_rotation_cascades(store: Store) {
    personals(&store, ACCT, &["akua", "bo"]).await;
    let r = rotation(ACCT, "doomed", &["akua"], 1);
    let keep = rotation(ACCT, "kept", &["bo"], 2);
    store
        .create_rotation(&r, &[tag("a", "1")], None)
        .await
        .unwrap();
    store
        .create_rotation(&keep, &[tag("b", "2")], None)
        .await
        .unwrap();
    let (arn, keep_arn) = (rotation_arn(&r), rotation_arn(&keep));
    let other_arn = "arn:aws:ssm-contacts:us-east-1:111122223333:rotation/elsewhere";

    // Two schedules name it (among others), one does not; a PERSONAL contact whose plan
    // names it anyway (not a schedule) is left alone.
    let s1 = schedule("sched-1", &[&keep_arn, &arn, other_arn], 10);
    let s2 = schedule("sched-2", &[&arn], 11);
    let s3 = schedule("sched-3", &[&keep_arn], 12);
    let mut odd = personal("odd");
    odd.plan.rotation_ids = vec![arn.clone()];
    for c in [&s1, &s2, &s3, &odd] {
        store.create_contact(c, &[], None).await.unwrap();
    }
    // The same ARN text in another account is not this account's.
    let mut foreign = contact(OTHER, "sched-x", ContactType::OncallSchedule, 1);
    foreign.plan.rotation_ids = vec![arn.clone()];
    store.create_contact(&foreign, &[], None).await.unwrap();

    let naming: Vec<String> = store
        .list_oncall_schedules_naming(ACCT, &arn)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.alias)
        .collect();
    assert_eq!(naming, ["sched-1", "sched-2"]);

    let o1 = override_of(&r, &["bo"], 100, 200);
    let o2 = override_of(&r, &[], 300, 400);
    let ko = override_of(&keep, &["akua"], 100, 200);
    for o in [&o1, &o2, &ko] {
        store.create_override(o).await.unwrap();
    }
    let rf = feed(ACCT, "hash-r", FeedTarget::Rotation(r.id), 1);
    let kf = feed(ACCT, "hash-k", FeedTarget::Rotation(keep.id), 2);
    let cf = feed(ACCT, "hash-c", FeedTarget::Contact("akua".into()), 3);
    for f in [&rf, &kf, &cf] {
        store.create_feed(f).await.unwrap();
    }

    assert!(
        store
            .delete_rotation(ACCT, r.id, &arn, 77_000)
            .await
            .unwrap()
    );

    let got = |alias: &'static str| {
        let store = store.clone();
        async move { store.get_contact(ACCT, alias).await.unwrap().unwrap() }
    };
    let g1 = got("sched-1").await;
    assert_eq!(g1.plan.rotation_ids, [keep_arn.as_str(), other_arn]);
    assert_eq!(g1.updated_ms, 77_000);
    let g2 = got("sched-2").await;
    assert!(g2.plan.rotation_ids.is_empty());
    assert_eq!(g2.updated_ms, 77_000);
    assert_eq!(
        got("sched-3").await,
        s3,
        "a schedule not naming it is untouched"
    );
    assert_eq!(
        got("odd").await,
        odd,
        "only ONCALL_SCHEDULE plans are edited"
    );
    assert_eq!(
        store.get_contact(OTHER, "sched-x").await.unwrap(),
        Some(foreign)
    );
    assert!(
        store
            .list_oncall_schedules_naming(ACCT, &arn)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_oncall_schedules_naming(ACCT, &keep_arn)
            .await
            .unwrap()
            .len(),
        2
    );

    // Its overrides, tags and feeds are gone; the other rotation's are not.
    assert_eq!(store.get_override(ACCT, r.id, o1.id).await.unwrap(), None);
    assert_eq!(store.get_override(ACCT, r.id, o2.id).await.unwrap(), None);
    assert!(
        store
            .list_overrides(ACCT, r.id, i64::MIN, i64::MAX, &After::Start, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let ko_id = ko.id;
    assert_eq!(
        store.get_override(ACCT, keep.id, ko.id).await.unwrap(),
        Some(ko)
    );
    assert!(
        store
            .list_tags(ACCT, &format!("rotation/{}", r.id))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_tags(ACCT, &format!("rotation/{}", keep.id))
            .await
            .unwrap(),
        [tag("b", "2")]
    );
    assert_eq!(store.get_feed_by_token_hash("hash-r").await.unwrap(), None);
    assert_eq!(store.list_feeds(ACCT).await.unwrap(), [kf, cf]);
    // Its members and override members are free; what `keep` uses is not.
    assert_in_use(store.delete_contact(ACCT, "bo").await, &[keep.id]);
    assert_in_use(store.delete_contact(ACCT, "akua").await, &[keep.id]);
    assert!(store.delete_override(ACCT, keep.id, ko_id).await.unwrap());
    assert!(store.delete_contact(ACCT, "akua").await.unwrap());
}

async fn override_crud(store: Store) {
    personals(&store, ACCT, &["akua", "bo", "cy"]).await;
    personals(&store, OTHER, &["zed"]).await;
    let r = rotation(ACCT, "r", &["akua", "bo"], 1);
    let r2 = rotation(ACCT, "r2", &["akua"], 2);
    store.create_rotation(&r, &[], None).await.unwrap();
    store.create_rotation(&r2, &[], None).await.unwrap();

    // Members in order (any contacts of the account, not only the rotation's); none is fine.
    let o = override_of(&r, &["cy", "akua"], 1_000, 2_000);
    store.create_override(&o).await.unwrap();
    assert_eq!(
        store.get_override(ACCT, r.id, o.id).await.unwrap(),
        Some(o.clone())
    );
    let empty = override_of(&r, &[], 3_000, 4_000);
    store.create_override(&empty).await.unwrap();
    assert_eq!(
        store.get_override(ACCT, r.id, empty.id).await.unwrap(),
        Some(empty.clone())
    );
    // Looked up under the wrong rotation or account: not there.
    assert_eq!(store.get_override(ACCT, r2.id, o.id).await.unwrap(), None);
    assert_eq!(store.get_override(OTHER, r.id, o.id).await.unwrap(), None);
    assert_eq!(
        store
            .get_override(ACCT, r.id, Uuid::new_v4())
            .await
            .unwrap(),
        None
    );

    // The rotation must exist in the override's account.
    let ghost = rotation(ACCT, "ghost", &["akua"], 3);
    let orphan = override_of(&ghost, &["akua"], 1, 2);
    assert_not_found(
        store.create_override(&orphan).await,
        &format!("rotation {}", ghost.id),
    );
    let mut foreign = override_of(&r, &["zed"], 1, 2);
    foreign.account = OTHER.into();
    assert_not_found(
        store.create_override(&foreign).await,
        &format!("rotation {}", r.id),
    );
    // An unknown member writes nothing.
    let bad = override_of(&r, &["akua", "zed"], 5, 6);
    assert_not_found(store.create_override(&bad).await, "contact 'zed'");
    assert_eq!(store.get_override(ACCT, r.id, bad.id).await.unwrap(), None);
    assert_eq!(
        store
            .list_overrides(ACCT, r.id, i64::MIN, i64::MAX, &After::Start, 10)
            .await
            .unwrap(),
        [o.clone(), empty.clone()]
    );
    // The same id twice is a conflict.
    let mut again = override_of(&r, &[], 7, 8);
    again.id = o.id;
    assert!(matches!(
        store.create_override(&again).await,
        Err(StoreError::Conflict(_))
    ));

    // delete
    assert!(!store.delete_override(ACCT, r2.id, o.id).await.unwrap());
    assert!(!store.delete_override(OTHER, r.id, o.id).await.unwrap());
    assert!(store.delete_override(ACCT, r.id, o.id).await.unwrap());
    assert!(!store.delete_override(ACCT, r.id, o.id).await.unwrap());
    assert_eq!(store.get_override(ACCT, r.id, o.id).await.unwrap(), None);
    assert_eq!(
        store
            .list_overrides(ACCT, r.id, i64::MIN, i64::MAX, &After::Start, 10)
            .await
            .unwrap(),
        [empty]
    );
    // Its members are free again.
    assert!(store.delete_contact(ACCT, "cy").await.unwrap());
}

async fn override_windows_and_pages(store: Store) {
    personals(&store, ACCT, &["akua", "bo"]).await;
    let r = rotation(ACCT, "r", &["akua"], 1);
    let other = rotation(ACCT, "other", &["akua"], 2);
    store.create_rotation(&r, &[], None).await.unwrap();
    store.create_rotation(&other, &[], None).await.unwrap();
    // [100, 200), [200, 300), [150, 250), [0, 1000), [300, 301); and one of another rotation.
    let spans = [(100, 200), (200, 300), (150, 250), (0, 1_000), (300, 301)];
    let mut made = Vec::new();
    for (s, e) in spans {
        let o = override_of(&r, &["bo", "akua"], s, e);
        store.create_override(&o).await.unwrap();
        made.push(o);
    }
    store
        .create_override(&override_of(&other, &["bo"], 0, 1_000))
        .await
        .unwrap();
    let window = |from: i64, to: i64| {
        let store = store.clone();
        async move {
            store
                .list_overrides(ACCT, r.id, from, to, &After::Start, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|o| (o.start_ms, o.end_ms))
                .collect::<Vec<_>>()
        }
    };
    // Ordered by start.
    assert_eq!(
        window(i64::MIN, i64::MAX).await,
        [(0, 1_000), (100, 200), (150, 250), (200, 300), (300, 301)]
    );
    // Touching intervals do not overlap: [200, 300) does not overlap [100, 200) nor [300, …).
    assert_eq!(window(200, 300).await, [(0, 1_000), (150, 250), (200, 300)]);
    assert_eq!(window(199, 200).await, [(0, 1_000), (100, 200), (150, 250)]);
    assert_eq!(window(300, 301).await, [(0, 1_000), (300, 301)]);
    assert_eq!(window(301, 400).await, [(0, 1_000)]);
    assert_eq!(window(1_000, 2_000).await, Vec::<(i64, i64)>::new());
    assert_eq!(window(-10, 0).await, Vec::<(i64, i64)>::new());
    assert_eq!(window(-10, 1).await, [(0, 1_000)]);
    // The rule is applied as stated, even to a zero-length window (the caller validates
    // windows): those whose interior holds the instant.
    assert_eq!(window(250, 250).await, [(0, 1_000), (200, 300)]);
    assert_eq!(window(200, 200).await, [(0, 1_000), (150, 250)]);
    assert!(
        store
            .list_overrides(OTHER, r.id, i64::MIN, i64::MAX, &After::Start, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_overrides(ACCT, Uuid::new_v4(), i64::MIN, i64::MAX, &After::Start, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // Pages of (start_ms, id), with inserts between pages; several share a start.
    for page_size in [1u32, 2] {
        let rot = rotation(ACCT, &format!("paged{page_size}"), &["akua"], 3);
        store.create_rotation(&rot, &[], None).await.unwrap();
        let mut pre = Vec::new();
        for i in 0..9 {
            let o = override_of(&rot, &["akua", "bo"], 1_000 + i / 3, 5_000);
            store.create_override(&o).await.unwrap();
            pre.push(o);
        }
        let mut seen: Vec<RotationOverrideRecord> = Vec::new();
        let mut after = After::Start;
        for round in 0.. {
            let page = store
                .list_overrides(ACCT, rot.id, 0, 10_000, &after, page_size)
                .await
                .unwrap();
            assert!(page.len() <= page_size as usize);
            if page.is_empty() {
                break;
            }
            let last = page.last().unwrap().clone();
            seen.extend(page);
            after = After::Created {
                ms: last.start_ms,
                id: last.id,
            };
            // Between pages: rows at the cursor's start (random ids land on either side),
            // one before it and one later.
            let news = [last.start_ms, last.start_ms, 10, 3_000 + round];
            for start in news.into_iter().filter(|_| round < 6) {
                store
                    .create_override(&override_of(&rot, &["bo"], start, 6_000))
                    .await
                    .unwrap();
            }
            assert!(round < 200, "pagination does not end");
        }
        let keys: Vec<_> = seen
            .iter()
            .map(|o| (o.start_ms, o.id.hyphenated().to_string()))
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "page size {page_size}: strictly increasing"
        );
        for o in &pre {
            assert_eq!(seen.iter().find(|s| s.id == o.id), Some(o), "skipped");
        }
        assert!(
            !seen.iter().any(|o| o.start_ms == 10),
            "rows before the cursor"
        );
    }
    assert!(
        store
            .list_overrides(ACCT, r.id, i64::MIN, i64::MAX, &After::Start, 0)
            .await
            .unwrap()
            .is_empty()
    );
    // All of them, in (start, id) order, across pages; none of another rotation.
    let all = store.all_overrides(ACCT, r.id).await.unwrap();
    let mut want = made.clone();
    want.sort_by_key(|o| (o.start_ms, o.id));
    assert_eq!(all, want);
    assert!(store.all_overrides(OTHER, r.id).await.unwrap().is_empty());
}

async fn feeds(store: Store) {
    personals(&store, ACCT, &["akua"]).await;
    personals(&store, OTHER, &["zed"]).await;
    let r = rotation(ACCT, "r", &["akua"], 1);
    store.create_rotation(&r, &[], None).await.unwrap();

    let f1 = feed(ACCT, "aa11", FeedTarget::Rotation(r.id), 20);
    let f2 = feed(ACCT, "bb22", FeedTarget::Contact("akua".into()), 10);
    let f3 = feed(ACCT, "cc33", FeedTarget::Rotation(r.id), 10);
    let f4 = feed(OTHER, "dd44", FeedTarget::Contact("zed".into()), 5);
    for f in [&f1, &f2, &f3, &f4] {
        store.create_feed(f).await.unwrap();
    }
    assert_eq!(
        store.get_feed_by_token_hash("aa11").await.unwrap(),
        Some(f1.clone())
    );
    assert_eq!(
        store.get_feed_by_token_hash("bb22").await.unwrap(),
        Some(f2.clone())
    );
    assert_eq!(store.get_feed_by_token_hash("AA11").await.unwrap(), None);
    assert_eq!(store.get_feed_by_token_hash("").await.unwrap(), None);
    assert_eq!(store.get_feed_by_token_hash("a\0").await.unwrap(), None);

    // Listed by (created_ms, id), per account.
    let mut want = vec![f2.clone(), f3.clone()];
    want.sort_by_key(|f| f.id.hyphenated().to_string());
    want.push(f1.clone());
    assert_eq!(store.list_feeds(ACCT).await.unwrap(), want);
    assert_eq!(store.list_feeds(OTHER).await.unwrap(), [f4]);
    assert!(store.list_feeds("999999999999").await.unwrap().is_empty());

    // Targets must exist in the feed's account; token hashes are unique.
    assert_not_found(
        store
            .create_feed(&feed(ACCT, "x1", FeedTarget::Contact("zed".into()), 1))
            .await,
        "contact 'zed'",
    );
    let ghost = Uuid::new_v4();
    assert_not_found(
        store
            .create_feed(&feed(ACCT, "x2", FeedTarget::Rotation(ghost), 1))
            .await,
        &format!("rotation {ghost}"),
    );
    assert_not_found(
        store
            .create_feed(&feed(OTHER, "x3", FeedTarget::Rotation(r.id), 1))
            .await,
        &format!("rotation {}", r.id),
    );
    assert!(matches!(
        store
            .create_feed(&feed(ACCT, "aa11", FeedTarget::Contact("akua".into()), 1))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.list_feeds(ACCT).await.unwrap().len(), 3);

    // Revoking: once; the feed is still returned, with revoked_ms set.
    assert!(!store.revoke_feed(OTHER, f1.id, 50).await.unwrap());
    assert!(!store.revoke_feed(ACCT, Uuid::new_v4(), 50).await.unwrap());
    assert!(store.revoke_feed(ACCT, f1.id, 50).await.unwrap());
    assert!(!store.revoke_feed(ACCT, f1.id, 60).await.unwrap());
    let revoked = store.get_feed_by_token_hash("aa11").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_ms, Some(50));
    assert_eq!(
        FeedRecord {
            revoked_ms: None,
            ..revoked
        },
        f1
    );
    assert_eq!(
        store
            .get_feed_by_token_hash("bb22")
            .await
            .unwrap()
            .unwrap()
            .revoked_ms,
        None
    );
    assert_eq!(store.list_feeds(ACCT).await.unwrap().len(), 3);
    // A feed created already revoked keeps that.
    let mut pre_revoked = feed(ACCT, "ee55", FeedTarget::Rotation(r.id), 30);
    pre_revoked.revoked_ms = Some(31);
    store.create_feed(&pre_revoked).await.unwrap();
    assert_eq!(
        store.get_feed_by_token_hash("ee55").await.unwrap(),
        Some(pre_revoked)
    );
}

async fn feed_cascades(store: Store) {
    personals(&store, ACCT, &["akua", "bo"]).await;
    let r = rotation(ACCT, "r", &["bo"], 1);
    store.create_rotation(&r, &[], None).await.unwrap();
    let fa = feed(ACCT, "h-akua", FeedTarget::Contact("akua".into()), 1);
    let fa2 = feed(ACCT, "h-akua-2", FeedTarget::Contact("akua".into()), 2);
    let fb = feed(ACCT, "h-bo", FeedTarget::Contact("bo".into()), 3);
    let fr = feed(ACCT, "h-r", FeedTarget::Rotation(r.id), 4);
    for f in [&fa, &fa2, &fb, &fr] {
        store.create_feed(f).await.unwrap();
    }
    store.revoke_feed(ACCT, fa2.id, 5).await.unwrap();

    // A contact's feeds (revoked or not) go with it.
    assert!(store.delete_contact(ACCT, "akua").await.unwrap());
    assert_eq!(store.get_feed_by_token_hash("h-akua").await.unwrap(), None);
    assert_eq!(
        store.get_feed_by_token_hash("h-akua-2").await.unwrap(),
        None
    );
    assert_eq!(
        store.list_feeds(ACCT).await.unwrap(),
        [fb.clone(), fr.clone()]
    );
    // A recreated contact of that alias does not inherit them.
    personals(&store, ACCT, &["akua"]).await;
    assert_eq!(store.get_feed_by_token_hash("h-akua").await.unwrap(), None);

    // A refused delete (member) keeps the feeds.
    assert_in_use(store.delete_contact(ACCT, "bo").await, &[r.id]);
    assert_eq!(
        store.list_feeds(ACCT).await.unwrap(),
        [fb.clone(), fr.clone()]
    );

    // A rotation's feeds go with it.
    assert!(
        store
            .delete_rotation(ACCT, r.id, &rotation_arn(&r), 9)
            .await
            .unwrap()
    );
    assert_eq!(store.get_feed_by_token_hash("h-r").await.unwrap(), None);
    assert_eq!(store.list_feeds(ACCT).await.unwrap(), [fb]);
    assert!(store.delete_contact(ACCT, "bo").await.unwrap());
    assert!(store.list_feeds(ACCT).await.unwrap().is_empty());
}

// ---- activation codes and consent -----------------------------------------------------

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_700_000_000_000;

fn code(channel_id: Uuid, hash: &str, created_ms: i64) -> ActivationCodeRecord {
    ActivationCodeRecord {
        channel_id,
        code_hash: hash.into(),
        expires_ms: created_ms + DAY,
        failed_attempts: 0,
        created_ms,
    }
}

/// A contact `alias` in `account` with one channel per `(name, type, address)`, created at
/// `T0 + i`.
async fn with_channels(
    store: &Store,
    account: &str,
    alias: &str,
    channels: &[(&str, ChannelType, &str)],
) -> Vec<ChannelRecord> {
    let c = contact(account, alias, ContactType::Personal, T0);
    store.create_contact(&c, &[], None).await.unwrap();
    let mut out = Vec::new();
    for (i, (name, channel_type, address)) in channels.iter().enumerate() {
        let mut ch = channel(&c, name, T0 + i as i64);
        ch.channel_type = *channel_type;
        ch.address = (*address).into();
        store.create_channel(&ch, None).await.unwrap();
        out.push(ch);
    }
    out
}

async fn activation_of(store: &Store, ch: &ChannelRecord) -> (ActivationStatus, i64) {
    let got = store
        .get_channel(&ch.account, ch.id)
        .await
        .unwrap()
        .unwrap();
    (got.activation, got.updated_ms)
}

/// Issues and consumes a code: the channel ends ACTIVATED at `ms`.
async fn activate(store: &Store, ch: &ChannelRecord, ms: i64) {
    let hash = format!("activate-{ms}");
    store
        .issue_activation_code(&ch.account, &code(ch.id, &hash, ms), ms, 100, HOUR)
        .await
        .unwrap();
    assert!(
        store
            .consume_activation_code(&ch.account, ch.id, &hash, ms, 5)
            .await
            .unwrap()
    );
}

#[track_caller]
fn assert_too_many_sends<T: std::fmt::Debug>(r: Result<T, StoreError>, retry_after_ms: i64) {
    match r {
        Err(StoreError::TooManySends {
            retry_after_ms: got,
        }) => assert_eq!(got, retry_after_ms),
        other => panic!("expected TooManySends({retry_after_ms}), got {other:?}"),
    }
}

async fn activation_codes(store: Store) {
    let chans = with_channels(
        &store,
        ACCT,
        "akua",
        &[
            ("phone", ChannelType::Sms, "+12065550100"),
            ("mail", ChannelType::Email, "akua@example.com"),
        ],
    )
    .await;
    let (ch, other) = (&chans[0], &chans[1]);
    let issue = |c: ActivationCodeRecord, now: i64| {
        let store = store.clone();
        async move { store.issue_activation_code(ACCT, &c, now, 100, HOUR).await }
    };

    // Nothing yet.
    assert_eq!(store.get_activation_code(ACCT, ch.id).await.unwrap(), None);
    assert_eq!(
        store.record_failed_activation(ACCT, ch.id).await.unwrap(),
        None
    );
    assert!(
        !store
            .consume_activation_code(ACCT, ch.id, "h1", T0, 5)
            .await
            .unwrap()
    );
    // The channel must exist in the account.
    let ghost = Uuid::new_v4();
    assert_not_found(
        issue(code(ghost, "h", T0), T0).await,
        &format!("contact channel {ghost}"),
    );
    assert_not_found(
        store
            .issue_activation_code(OTHER, &code(ch.id, "h", T0), T0, 100, HOUR)
            .await,
        &format!("contact channel {}", ch.id),
    );

    // Issue; failed_attempts starts at 0 whatever the record says.
    let mut c1 = code(ch.id, "h1", T0 + 10);
    c1.failed_attempts = 3;
    issue(c1.clone(), T0 + 10).await.unwrap();
    let stored = ActivationCodeRecord {
        failed_attempts: 0,
        ..c1.clone()
    };
    assert_eq!(
        store.get_activation_code(ACCT, ch.id).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(store.get_activation_code(OTHER, ch.id).await.unwrap(), None);
    assert_eq!(
        store.get_activation_code(ACCT, other.id).await.unwrap(),
        None
    );

    // Wrong tries count; another account's cannot.
    for want in 1..=2 {
        assert_eq!(
            store.record_failed_activation(ACCT, ch.id).await.unwrap(),
            Some(want)
        );
    }
    assert_eq!(
        store.record_failed_activation(OTHER, ch.id).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .get_activation_code(ACCT, ch.id)
            .await
            .unwrap()
            .unwrap()
            .failed_attempts,
        2
    );

    // A new code replaces the old one and resets the count.
    let c2 = code(ch.id, "h2", T0 + 20);
    issue(c2.clone(), T0 + 20).await.unwrap();
    assert_eq!(
        store.get_activation_code(ACCT, ch.id).await.unwrap(),
        Some(c2.clone())
    );
    let now = T0 + 30;
    // The old hash, a wrong hash, another account, an expired code: no.
    for (account, hash, at) in [
        (ACCT, "h1", now),
        (ACCT, "nope", now),
        (ACCT, "", now),
        (OTHER, "h2", now),
        (ACCT, "h2", c2.expires_ms),
        (ACCT, "h2", c2.expires_ms + 1),
    ] {
        assert!(
            !store
                .consume_activation_code(account, ch.id, hash, at, 5)
                .await
                .unwrap(),
            "{account} {hash} {at}"
        );
    }
    // Nothing changed.
    assert_eq!(
        store.get_activation_code(ACCT, ch.id).await.unwrap(),
        Some(c2.clone())
    );
    assert_eq!(
        activation_of(&store, ch).await,
        (ActivationStatus::NotActivated, ch.updated_ms)
    );

    // Too many wrong tries: refused at failed_attempts == max_attempts.
    for _ in 0..5 {
        store.record_failed_activation(ACCT, ch.id).await.unwrap();
    }
    assert!(
        !store
            .consume_activation_code(ACCT, ch.id, "h2", now, 5)
            .await
            .unwrap()
    );
    assert!(
        store
            .consume_activation_code(ACCT, ch.id, "h2", now, 6)
            .await
            .unwrap()
    );
    // Used: the channel is ACTIVATED, the code is gone and cannot be used again.
    assert_eq!(
        activation_of(&store, ch).await,
        (ActivationStatus::Activated, now)
    );
    assert_eq!(store.get_activation_code(ACCT, ch.id).await.unwrap(), None);
    assert!(
        !store
            .consume_activation_code(ACCT, ch.id, "h2", now + 1, 6)
            .await
            .unwrap()
    );
    assert_eq!(
        store.record_failed_activation(ACCT, ch.id).await.unwrap(),
        None
    );
    // The last valid instant is expires_ms - 1.
    let c3 = code(other.id, "h3", T0 + 40);
    issue(c3.clone(), T0 + 40).await.unwrap();
    assert!(
        store
            .consume_activation_code(ACCT, other.id, "h3", c3.expires_ms - 1, 5)
            .await
            .unwrap()
    );

    // delete_activation_code: the code goes; the channel is untouched.
    let c4 = code(ch.id, "h4", T0 + 50);
    issue(c4, T0 + 50).await.unwrap();
    store.delete_activation_code(OTHER, ch.id).await.unwrap();
    assert!(
        store
            .get_activation_code(ACCT, ch.id)
            .await
            .unwrap()
            .is_some()
    );
    store.delete_activation_code(ACCT, ch.id).await.unwrap();
    store.delete_activation_code(ACCT, ch.id).await.unwrap();
    assert_eq!(store.get_activation_code(ACCT, ch.id).await.unwrap(), None);
    assert!(
        !store
            .consume_activation_code(ACCT, ch.id, "h4", T0 + 51, 5)
            .await
            .unwrap()
    );
    assert_eq!(
        activation_of(&store, ch).await,
        (ActivationStatus::Activated, now)
    );
}

async fn activation_resend_limit(store: Store) {
    let chans = with_channels(
        &store,
        ACCT,
        "akua",
        &[
            ("phone", ChannelType::Sms, "+12065550100"),
            ("voice", ChannelType::Voice, "+12065550100"),
        ],
    )
    .await;
    let (ch, other) = (&chans[0], &chans[1]);
    let send = |id: Uuid, hash: &'static str, now: i64| {
        let store = store.clone();
        async move {
            store
                .issue_activation_code(ACCT, &code(id, hash, now), now, 3, HOUR)
                .await
        }
    };
    // Three sends within an hour; the fourth is refused until the first leaves the window.
    send(ch.id, "a", T0).await.unwrap();
    send(ch.id, "b", T0 + 1_000).await.unwrap();
    send(ch.id, "c", T0 + 2_000).await.unwrap();
    assert_too_many_sends(send(ch.id, "d", T0 + 3_000).await, HOUR - 3_000);
    // Refused: nothing changed (the third code is still current, its tries still count).
    store.record_failed_activation(ACCT, ch.id).await.unwrap();
    let current = store
        .get_activation_code(ACCT, ch.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (current.code_hash.as_str(), current.failed_attempts),
        ("c", 1)
    );
    assert_too_many_sends(send(ch.id, "d", T0 + HOUR - 1).await, 1);
    // Another channel has its own count.
    send(other.id, "x", T0 + 3_000).await.unwrap();
    // The first send leaves the window at T0 + HOUR.
    send(ch.id, "d", T0 + HOUR).await.unwrap();
    assert_eq!(
        store
            .get_activation_code(ACCT, ch.id)
            .await
            .unwrap()
            .unwrap(),
        code(ch.id, "d", T0 + HOUR)
    );
    // Counted now: T0 + 1s, T0 + 2s, T0 + 1h.
    assert_too_many_sends(send(ch.id, "e", T0 + HOUR).await, 1_000);
    assert_too_many_sends(send(ch.id, "e", T0 + HOUR + 999).await, 1);
    send(ch.id, "e", T0 + HOUR + 1_000).await.unwrap();
    // Deactivating (or using) a code does not reset the count.
    assert!(
        store
            .deactivate_channel(ACCT, ch.id, T0 + HOUR + 1_500)
            .await
            .unwrap()
    );
    assert_too_many_sends(send(ch.id, "f", T0 + HOUR + 1_500).await, 500);
    // Long after, the limit is back to three.
    let later = T0 + 10 * HOUR;
    for (i, hash) in ["g", "h", "i"].into_iter().enumerate() {
        send(ch.id, hash, later + i as i64).await.unwrap();
    }
    assert_too_many_sends(send(ch.id, "j", later + 3).await, HOUR - 3);
    // A limit of 0 refuses every send.
    assert_too_many_sends(
        store
            .issue_activation_code(ACCT, &code(other.id, "z", later), later, 0, HOUR)
            .await,
        HOUR,
    );
}

async fn concurrent_activation(store: Store) {
    let chans = with_channels(
        &store,
        ACCT,
        "akua",
        &[("phone", ChannelType::Sms, "+12065550100")],
    )
    .await;
    let ch = chans[0].clone();
    // Concurrent sends: exactly `max_sends` get through.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let c = code(ch.id, &format!("h{i}"), T0 + i);
        tasks.push(tokio::spawn(async move {
            store.issue_activation_code(ACCT, &c, T0 + i, 3, HOUR).await
        }));
    }
    let mut sent = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => sent += 1,
            Err(StoreError::TooManySends { retry_after_ms }) => {
                assert!(
                    // Sends are stamped T0+0..T0+7 and may be recorded in any order, so
                    // the oldest counted one leaves the window between 7 ms before and
                    // 7 ms after an hour from the refused call's own stamp.
                    (HOUR - 8..=HOUR + 8).contains(&retry_after_ms),
                    "{retry_after_ms}"
                )
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(sent, 3);

    // Concurrent uses of one code: exactly one activates. (Two hours on, whichever three
    // sends got through above have left the window.)
    let later = T0 + 2 * HOUR;
    let c = code(ch.id, "race", later);
    store
        .issue_activation_code(ACCT, &c, later, 3, HOUR)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .consume_activation_code(ACCT, ch.id, "race", later + i, 5)
                .await
        }));
    }
    let mut activated = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            activated += 1;
        }
    }
    assert_eq!(activated, 1);
    assert_eq!(store.get_activation_code(ACCT, ch.id).await.unwrap(), None);
}

async fn deactivate_channel(store: Store) {
    let chans = with_channels(
        &store,
        ACCT,
        "akua",
        &[
            ("phone", ChannelType::Sms, "+12065550100"),
            ("mail", ChannelType::Email, "akua@example.com"),
        ],
    )
    .await;
    let (ch, other) = (&chans[0], &chans[1]);
    activate(&store, ch, T0 + 10).await;
    activate(&store, other, T0 + 11).await;
    // A pending code goes too.
    store
        .issue_activation_code(ACCT, &code(ch.id, "pending", T0 + 20), T0 + 20, 10, HOUR)
        .await
        .unwrap();

    assert!(
        !store
            .deactivate_channel(OTHER, ch.id, T0 + 30)
            .await
            .unwrap()
    );
    assert!(
        !store
            .deactivate_channel(ACCT, Uuid::new_v4(), T0 + 30)
            .await
            .unwrap()
    );
    assert_eq!(
        activation_of(&store, ch).await,
        (ActivationStatus::Activated, T0 + 10)
    );
    assert!(
        store
            .get_activation_code(ACCT, ch.id)
            .await
            .unwrap()
            .is_some()
    );

    assert!(
        store
            .deactivate_channel(ACCT, ch.id, T0 + 30)
            .await
            .unwrap()
    );
    assert_eq!(
        activation_of(&store, ch).await,
        (ActivationStatus::NotActivated, T0 + 30)
    );
    assert_eq!(store.get_activation_code(ACCT, ch.id).await.unwrap(), None);
    assert!(
        !store
            .consume_activation_code(ACCT, ch.id, "pending", T0 + 31, 5)
            .await
            .unwrap()
    );
    // Again: still true (the channel exists), nothing else changes.
    assert!(
        store
            .deactivate_channel(ACCT, ch.id, T0 + 40)
            .await
            .unwrap()
    );
    assert_eq!(
        activation_of(&store, ch).await,
        (ActivationStatus::NotActivated, T0 + 40)
    );
    // The other channel is untouched; the channel itself can be activated again.
    assert_eq!(
        activation_of(&store, other).await,
        (ActivationStatus::Activated, T0 + 11)
    );
    activate(&store, ch, T0 + 50).await;
    assert_eq!(
        activation_of(&store, ch).await,
        (ActivationStatus::Activated, T0 + 50)
    );
}

async fn activation_cascades(store: Store) {
    let a = with_channels(
        &store,
        ACCT,
        "akua",
        &[
            ("phone", ChannelType::Sms, "+12065550100"),
            ("voice", ChannelType::Voice, "+12065550100"),
        ],
    )
    .await;
    let b = with_channels(
        &store,
        ACCT,
        "bo",
        &[("phone", ChannelType::Sms, "+12065550101")],
    )
    .await;
    for ch in a.iter().chain(&b) {
        for i in 0..3 {
            store
                .issue_activation_code(
                    ACCT,
                    &code(ch.id, &format!("h{i}"), T0 + i),
                    T0 + i,
                    3,
                    HOUR,
                )
                .await
                .unwrap();
        }
    }
    let c = store.get_contact(ACCT, "akua").await.unwrap().unwrap();

    // Deleting a channel deletes its code and its sends: a channel recreated with the same id
    // starts with neither.
    assert!(store.delete_channel(ACCT, a[0].id).await.unwrap());
    assert_eq!(
        store.get_activation_code(ACCT, a[0].id).await.unwrap(),
        None
    );
    store.create_channel(&a[0], None).await.unwrap();
    assert_eq!(
        store.get_activation_code(ACCT, a[0].id).await.unwrap(),
        None
    );
    for i in 0..3 {
        store
            .issue_activation_code(
                ACCT,
                &code(a[0].id, "again", T0 + 10 + i),
                T0 + 10 + i,
                3,
                HOUR,
            )
            .await
            .unwrap();
    }
    assert_too_many_sends(
        store
            .issue_activation_code(ACCT, &code(a[0].id, "x", T0 + 20), T0 + 20, 3, HOUR)
            .await,
        HOUR - 10,
    );

    // Deleting the contact deletes its channels' codes and sends.
    assert!(store.delete_contact(ACCT, "akua").await.unwrap());
    for ch in &a {
        assert_eq!(store.get_activation_code(ACCT, ch.id).await.unwrap(), None);
    }
    store.create_contact(&c, &[], None).await.unwrap();
    for ch in &a {
        store.create_channel(ch, None).await.unwrap();
        for i in 0..3 {
            store
                .issue_activation_code(ACCT, &code(ch.id, "new", T0 + 30 + i), T0 + 30 + i, 3, HOUR)
                .await
                .unwrap();
        }
    }
    // Nothing else is touched.
    assert_eq!(
        store.get_activation_code(ACCT, b[0].id).await.unwrap(),
        Some(code(b[0].id, "h2", T0 + 2))
    );
    assert_too_many_sends(
        store
            .issue_activation_code(ACCT, &code(b[0].id, "x", T0 + 30), T0 + 30, 3, HOUR)
            .await,
        HOUR - 30,
    );
}

fn events(evs: &[ConsentEvent]) -> Vec<(ConsentKind, &str, Option<&str>, i64)> {
    evs.iter()
        .map(|e| {
            (
                e.kind,
                e.source.as_str(),
                e.raw_message.as_deref(),
                e.created_ms,
            )
        })
        .collect()
}

async fn opt_out_and_in(store: Store) {
    const PHONE: &str = "+12065550100";
    let mine = with_channels(
        &store,
        ACCT,
        "akua",
        &[
            ("sms", ChannelType::Sms, PHONE),
            ("voice", ChannelType::Voice, PHONE),
            ("mail", ChannelType::Email, "akua@example.com"),
        ],
    )
    .await;
    let theirs = with_channels(
        &store,
        OTHER,
        "akua",
        &[
            ("sms", ChannelType::Sms, PHONE),
            ("near", ChannelType::Sms, "+120655501000"),
        ],
    )
    .await;
    // Activated: mine[0], mine[2], theirs[0], theirs[1]; a pending code on mine[1].
    for ch in [&mine[0], &mine[2], &theirs[0], &theirs[1]] {
        activate(&store, ch, T0 + 10).await;
    }
    store
        .issue_activation_code(
            ACCT,
            &code(mine[1].id, "pending", T0 + 11),
            T0 + 11,
            10,
            HOUR,
        )
        .await
        .unwrap();
    store
        .issue_activation_code(
            OTHER,
            &code(theirs[1].id, "kept", T0 + 11),
            T0 + 11,
            10,
            HOUR,
        )
        .await
        .unwrap();
    assert!(!store.is_opted_out(PHONE).await.unwrap());
    assert!(store.consent_events(PHONE, 10).await.unwrap().is_empty());

    // STOP: every channel with exactly this address, in both accounts, is deactivated.
    assert!(
        store
            .opt_out(PHONE, "sms", Some("STOP"), T0 + 100)
            .await
            .unwrap()
    );
    assert!(store.is_opted_out(PHONE).await.unwrap());
    for ch in [&mine[0], &theirs[0]] {
        assert_eq!(
            activation_of(&store, ch).await,
            (ActivationStatus::NotActivated, T0 + 100)
        );
    }
    // Already NOT_ACTIVATED: its updated_ms stays; its code is gone.
    assert_eq!(
        activation_of(&store, &mine[1]).await,
        (ActivationStatus::NotActivated, mine[1].updated_ms)
    );
    assert_eq!(
        store.get_activation_code(ACCT, mine[1].id).await.unwrap(),
        None
    );
    // Other addresses are untouched.
    for ch in [&mine[2], &theirs[1]] {
        assert_eq!(
            activation_of(&store, ch).await,
            (ActivationStatus::Activated, T0 + 10)
        );
    }
    assert_eq!(
        store
            .get_activation_code(OTHER, theirs[1].id)
            .await
            .unwrap()
            .map(|c| c.code_hash),
        Some("kept".into())
    );
    assert!(!store.is_opted_out("+120655501000").await.unwrap());
    assert!(!store.is_opted_out("akua@example.com").await.unwrap());

    // A code issued while opted out (the caller should not have sent it) cannot be used.
    store
        .issue_activation_code(
            ACCT,
            &code(mine[0].id, "late", T0 + 110),
            T0 + 110,
            10,
            HOUR,
        )
        .await
        .unwrap();
    assert!(
        !store
            .consume_activation_code(ACCT, mine[0].id, "late", T0 + 111, 5)
            .await
            .unwrap()
    );
    assert_eq!(
        activation_of(&store, &mine[0]).await,
        (ActivationStatus::NotActivated, T0 + 100)
    );

    // A second STOP: recorded, but not new; it deletes codes again.
    assert!(!store.opt_out(PHONE, "voice", None, T0 + 200).await.unwrap());
    assert_eq!(
        store.get_activation_code(ACCT, mine[0].id).await.unwrap(),
        None
    );
    assert_eq!(
        events(&store.consent_events(PHONE, 10).await.unwrap()),
        [
            (ConsentKind::OptOut, "voice", None, T0 + 200),
            (ConsentKind::OptOut, "sms", Some("STOP"), T0 + 100),
        ]
    );

    // START lifts the block; channels stay NOT_ACTIVATED until activated with a new code.
    assert!(
        store
            .opt_in(PHONE, "sms", Some("start"), T0 + 300)
            .await
            .unwrap()
    );
    assert!(!store.is_opted_out(PHONE).await.unwrap());
    assert!(
        !store
            .opt_in(PHONE, "console", None, T0 + 400)
            .await
            .unwrap()
    );
    for ch in [&mine[0], &mine[1], &theirs[0]] {
        assert_eq!(
            store
                .get_channel(&ch.account, ch.id)
                .await
                .unwrap()
                .unwrap()
                .activation,
            ActivationStatus::NotActivated
        );
    }
    activate(&store, &theirs[0], T0 + 500).await;
    assert_eq!(
        activation_of(&store, &theirs[0]).await,
        (ActivationStatus::Activated, T0 + 500)
    );
    assert_eq!(
        events(&store.consent_events(PHONE, 10).await.unwrap()),
        [
            (ConsentKind::OptIn, "console", None, T0 + 400),
            (ConsentKind::OptIn, "sms", Some("start"), T0 + 300),
            (ConsentKind::OptOut, "voice", None, T0 + 200),
            (ConsentKind::OptOut, "sms", Some("STOP"), T0 + 100),
        ]
    );
    // Opting in an address that never opted out: recorded, false.
    assert!(
        !store
            .opt_in("nobody@example.com", "api", None, T0)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .consent_events("nobody@example.com", 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // An address that no channel has can be opted out (before its channel exists).
    assert!(
        store
            .opt_out("new@example.com", "link", None, T0 + 600)
            .await
            .unwrap()
    );
    assert!(store.is_opted_out("new@example.com").await.unwrap());
    // Addresses compare exactly.
    assert!(!store.is_opted_out("New@example.com").await.unwrap());
    assert!(!store.is_opted_out("new@example.com ").await.unwrap());
    assert!(!store.is_opted_out("new@example.com\0").await.unwrap());
    assert!(
        store
            .consent_events("new@example.com\0", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn consent_event_order(store: Store) {
    const A: &str = "ops@example.com";
    const B: &str = "Ops@example.com";
    // Events at the same instant keep the order they were recorded in.
    store
        .opt_out(A, "email", Some("unsubscribe"), T0)
        .await
        .unwrap();
    store.opt_in(A, "console", None, T0).await.unwrap();
    store.opt_out(A, "link", None, T0).await.unwrap();
    store.opt_out(B, "api", Some("x"), T0 + 50).await.unwrap();
    // An earlier instant recorded later (another instance's clock) sorts by instant.
    store.opt_in(A, "api", None, T0 - 5).await.unwrap();
    store
        .opt_in(A, "sms", Some("START\0now"), T0 + 100)
        .await
        .unwrap();

    let all = store.consent_events(A, 100).await.unwrap();
    assert_eq!(
        events(&all),
        [
            (
                ConsentKind::OptIn,
                "sms",
                Some("START\u{FFFD}now"),
                T0 + 100
            ),
            (ConsentKind::OptOut, "link", None, T0),
            (ConsentKind::OptIn, "console", None, T0),
            (ConsentKind::OptOut, "email", Some("unsubscribe"), T0),
            (ConsentKind::OptIn, "api", None, T0 - 5),
        ]
    );
    assert!(all.iter().all(|e| e.address == A));
    assert_eq!(
        all.iter().map(|e| e.id).collect::<HashSet<_>>().len(),
        all.len()
    );
    assert_eq!(store.consent_events(A, 2).await.unwrap(), all[..2]);
    assert!(store.consent_events(A, 0).await.unwrap().is_empty());
    assert_eq!(
        events(&store.consent_events(B, 10).await.unwrap()),
        [(ConsentKind::OptOut, "api", Some("x"), T0 + 50)]
    );
    assert!(!store.is_opted_out(A).await.unwrap());
    assert!(store.is_opted_out(B).await.unwrap());
}

async fn concurrent_opt_outs(store: Store) {
    const PHONE: &str = "+12065550100";
    let chans = with_channels(
        &store,
        ACCT,
        "akua",
        &[
            ("sms", ChannelType::Sms, PHONE),
            ("voice", ChannelType::Voice, PHONE),
        ],
    )
    .await;
    for ch in &chans {
        activate(&store, ch, T0).await;
    }
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.opt_out(PHONE, "sms", Some("STOP"), T0 + 10 + i).await
        }));
    }
    let mut new = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            new += 1;
        }
    }
    assert_eq!(new, 1, "exactly one opt-out is the first");
    assert_eq!(store.consent_events(PHONE, 100).await.unwrap().len(), 6);
    for ch in &chans {
        assert_eq!(
            activation_of(&store, ch).await.0,
            ActivationStatus::NotActivated
        );
    }
}

async fn channels_by_address(store: Store) {
    const PHONE: &str = "+12065550100";
    let a = with_channels(
        &store,
        ACCT,
        "akua",
        &[
            ("sms", ChannelType::Sms, PHONE),
            ("mail", ChannelType::Email, "Akua@Example.com"),
            ("voice", ChannelType::Voice, PHONE),
        ],
    )
    .await;
    let b = with_channels(
        &store,
        OTHER,
        "bo",
        &[
            ("voice", ChannelType::Voice, PHONE),
            ("mail", ChannelType::Email, "akua@example.com"),
        ],
    )
    .await;
    // Created at the same instant as a[0] (T0): ordered by id between them.
    let mut same_ms = [a[0].clone(), b[0].clone()];
    same_ms.sort_by_key(|c| c.id.hyphenated().to_string());
    let want = [same_ms[0].clone(), same_ms[1].clone(), a[2].clone()];
    assert_eq!(store.channels_by_address(PHONE).await.unwrap(), want);
    assert_eq!(
        store.channels_by_address("Akua@Example.com").await.unwrap(),
        [a[1].clone()]
    );
    assert_eq!(
        store.channels_by_address("akua@example.com").await.unwrap(),
        [b[1].clone()]
    );
    for none in ["+1206555010", "", "+12065550100\0", " +12065550100"] {
        assert!(
            store.channels_by_address(none).await.unwrap().is_empty(),
            "{none:?}"
        );
    }
    // An address change moves the channel; the store does nothing else about it.
    let mut moved = a[2].clone();
    moved.address = "+12065550199".into();
    moved.updated_ms = T0 + 5;
    assert!(store.update_channel(&moved).await.unwrap());
    assert_eq!(
        store.channels_by_address(PHONE).await.unwrap(),
        [same_ms[0].clone(), same_ms[1].clone()]
    );
    assert_eq!(
        store.channels_by_address("+12065550199").await.unwrap(),
        [moved]
    );
    assert!(store.delete_contact(OTHER, "bo").await.unwrap());
    assert_eq!(
        store.channels_by_address(PHONE).await.unwrap(),
        [a[0].clone()]
    );
}

// ---- jobs -----------------------------------------------------------------------------

fn job(kind: &str, due_ms: i64) -> JobRecord {
    JobRecord::new(kind, format!(r#"{{"due":{due_ms}}}"#), due_ms, 7)
}

fn job_ids(jobs: &[JobRecord]) -> Vec<Uuid> {
    jobs.iter().map(|j| j.id).collect()
}

/// `ids` ordered as claims order jobs of equal due time: by id text.
fn by_id_text(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort_by_key(|id| id.to_string());
    ids
}

async fn jobs_enqueue_and_dedup(store: Store) {
    assert_eq!(store.count_jobs().await.unwrap(), 0);
    assert_eq!(store.enqueue_jobs(&[]).await.unwrap(), 0);

    let a = JobRecord::new("stage", r#"{"q":"ü \"x\" ' ;"}"#, 1_000, 10).with_dedup_key("k1");
    let b = JobRecord::new("stage", "{}", 2_000, 11).with_dedup_key("k1");
    let c = job("send", 3_000);
    let d = job("send", 3_000);
    assert_eq!(a.attempts, 0);
    assert_eq!((a.lease_owner.as_deref(), a.lease_until_ms), (None, None));
    // b's key is taken by a (earlier in the same batch): skipped.
    assert_eq!(
        store
            .enqueue_jobs(&[a.clone(), b.clone(), c.clone()])
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.get_job(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_job(b.id).await.unwrap(), None);
    assert_eq!(store.get_job(c.id).await.unwrap(), Some(c.clone()));
    // A stored key, in a later batch; jobs without a key never clash.
    let a2 = JobRecord::new("stage", "{}", 5, 12).with_dedup_key("k1");
    assert_eq!(
        store.enqueue_jobs(&[a2.clone(), d.clone()]).await.unwrap(),
        1
    );
    assert_eq!(store.get_job(a2.id).await.unwrap(), None);
    assert_eq!(store.count_jobs().await.unwrap(), 3);

    // A taken id fails the whole batch.
    let e = job("send", 4_000);
    assert_conflict(
        store.enqueue_jobs(&[e.clone(), c.clone()]).await,
        "a job with one of these 2 ids already exists",
    );
    assert_eq!(store.get_job(e.id).await.unwrap(), None);
    assert_conflict(
        store.enqueue_jobs(std::slice::from_ref(&c)).await,
        &format!("a job with id '{}' already exists", c.id),
    );
    assert_eq!(store.count_jobs().await.unwrap(), 3);

    // Fields are stored as given.
    let mut f = job("odd", 9).with_dedup_key("k2");
    f.attempts = 3;
    f.lease_owner = Some("w9".into());
    f.lease_until_ms = Some(99);
    assert_eq!(
        store.enqueue_jobs(std::slice::from_ref(&f)).await.unwrap(),
        1
    );
    assert_eq!(store.get_job(f.id).await.unwrap(), Some(f.clone()));

    // Once the job holding a key is completed, the key is free again.
    let claimed = store.claim_jobs("w1", 1_000, 100, 10).await.unwrap();
    assert_eq!(job_ids(&claimed), [f.id, a.id]);
    assert!(store.complete_job(a.id, "w1").await.unwrap());
    assert_eq!(
        store.enqueue_jobs(std::slice::from_ref(&a2)).await.unwrap(),
        1
    );
    assert_eq!(store.get_job(a2.id).await.unwrap(), Some(a2));
    assert_eq!(store.count_jobs().await.unwrap(), 4);
}

async fn jobs_claim_order_and_limits(store: Store) {
    let late = job("stage", 300);
    let early1 = job("stage", 100);
    let mid = job("send", 200);
    let early2 = job("send", 100);
    let future = job("stage", 5_000);
    let all = [
        late.clone(),
        early1.clone(),
        mid.clone(),
        early2.clone(),
        future.clone(),
    ];
    assert_eq!(store.enqueue_jobs(&all).await.unwrap(), 5);

    assert!(
        store
            .claim_jobs("w1", 1_000, 30_000, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let first = store.claim_jobs("w1", 1_000, 30_000, 3).await.unwrap();
    let mut want = by_id_text(vec![early1.id, early2.id]);
    want.push(mid.id);
    assert_eq!(job_ids(&first), want);
    for j in &first {
        let mut stored = all.iter().find(|a| a.id == j.id).unwrap().clone();
        stored.attempts = 1;
        stored.lease_owner = Some("w1".into());
        stored.lease_until_ms = Some(31_000);
        assert_eq!(j, &stored);
        assert_eq!(store.get_job(j.id).await.unwrap().as_ref(), Some(&stored));
    }
    // Leased and not-yet-due jobs are not claimed.
    let second = store.claim_jobs("w2", 1_000, 30_000, 10).await.unwrap();
    assert_eq!(job_ids(&second), [late.id]);
    assert!(
        store
            .claim_jobs("w2", 4_999, 30_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Due means due_ms <= now; claiming ahead, due_ms <= due_by, leased from now.
    assert!(
        store
            .claim_jobs_due_by("w2", 1_000, 4_999, 30_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let third = store
        .claim_jobs_due_by("w2", 1_000, 5_000, 30_000, 10)
        .await
        .unwrap();
    assert_eq!(job_ids(&third), [future.id]);
    assert_eq!(third[0].lease_until_ms, Some(31_000));
    assert_eq!(third[0].attempts, 1);
    assert!(
        store
            .claim_jobs("w3", 30_999, 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.count_jobs().await.unwrap(), 5);

    // When the first leases end, those jobs come back, earliest first, with a second attempt.
    let again = store.claim_jobs("w3", 31_000, 10, 2).await.unwrap();
    assert_eq!(job_ids(&again), want[..2]);
    assert!(again.iter().all(|j| j.attempts == 2));
    assert!(again.iter().all(|j| j.lease_owner.as_deref() == Some("w3")));
    // A lease that would overflow saturates.
    let last = store.claim_jobs("w4", 31_000, i64::MAX, 10).await.unwrap();
    assert_eq!(job_ids(&last), [mid.id, late.id, future.id]);
    assert_eq!(last[0].lease_until_ms, Some(i64::MAX));
}

/// The claimable jobs are read from two indexes (the unleased ones, and the leased ones by
/// when each lease ends): one claim takes from both, earliest due first, cut at its limit.
async fn jobs_claim_mixes_free_jobs_and_expired_leases_in_due_order(store: Store) {
    let expired_100 = job("send", 100);
    let expired_200 = job("send", 200);
    let free_150 = job("stage", 150);
    let free_250 = job("stage", 250);
    let held_50 = job("send", 50);
    store
        .enqueue_jobs(&[expired_100.clone(), expired_200.clone(), held_50.clone()])
        .await
        .unwrap();
    // Leased until 1,100 (held_50 until 5,000): expired at 2,000.
    let first = store.claim_jobs("w1", 1_000, 100, 2).await.unwrap();
    assert_eq!(job_ids(&first), [held_50.id, expired_100.id]);
    assert!(store.extend_lease(held_50.id, "w1", 5_000).await.unwrap());
    assert_eq!(
        job_ids(&store.claim_jobs("w1", 1_000, 100, 1).await.unwrap()),
        [expired_200.id]
    );
    store
        .enqueue_jobs(&[free_250.clone(), free_150.clone()])
        .await
        .unwrap();
    let mixed = store.claim_jobs("w2", 2_000, 100_000, 3).await.unwrap();
    assert_eq!(
        job_ids(&mixed),
        [expired_100.id, free_150.id, expired_200.id],
        "the three earliest claimable, from both kinds; not the job still held"
    );
    assert_eq!(
        mixed.iter().map(|j| j.attempts).collect::<Vec<_>>(),
        [2, 1, 2]
    );
    assert!(mixed.iter().all(|j| j.lease_owner.as_deref() == Some("w2")));
    assert_eq!(
        job_ids(&store.claim_jobs("w3", 2_000, 100_000, 10).await.unwrap()),
        [free_250.id]
    );
    assert!(
        store
            .claim_jobs("w3", 4_999, 100, 10)
            .await
            .unwrap()
            .is_empty(),
        "held_50's lease runs to 5,000"
    );
    assert_eq!(
        job_ids(&store.claim_jobs("w3", 5_000, 100, 10).await.unwrap()),
        [held_50.id]
    );
}

async fn jobs_leases_and_owners(store: Store) {
    let j = job("stage", 0);
    store.enqueue_jobs(std::slice::from_ref(&j)).await.unwrap();
    // Nothing can be done to an unleased job by anyone.
    assert!(!store.complete_job(j.id, "w1").await.unwrap());
    assert!(!store.retry_job(j.id, "w1", 5).await.unwrap());
    assert!(!store.extend_lease(j.id, "w1", 5).await.unwrap());
    assert_eq!(store.get_job(j.id).await.unwrap(), Some(j.clone()));

    let c = store.claim_jobs("w1", 1_000, 100, 10).await.unwrap();
    assert_eq!(c[0].lease_until_ms, Some(1_100));
    assert!(
        store
            .claim_jobs("w2", 1_099, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // w1 "crashed": at the lease's end w2 takes the job over.
    let c = store.claim_jobs("w2", 1_100, 100, 10).await.unwrap();
    assert_eq!(job_ids(&c), [j.id]);
    assert_eq!(
        (
            c[0].attempts,
            c[0].lease_owner.as_deref(),
            c[0].lease_until_ms
        ),
        (2, Some("w2"), Some(1_200))
    );
    // w1 comes back: it can no longer complete, retry or extend w2's claim.
    assert!(!store.complete_job(j.id, "w1").await.unwrap());
    assert!(!store.retry_job(j.id, "w1", 5).await.unwrap());
    assert!(!store.extend_lease(j.id, "w1", 50_000).await.unwrap());
    assert_eq!(store.get_job(j.id).await.unwrap().as_ref(), Some(&c[0]));

    // The owner extends its lease: nobody claims before the new end.
    assert!(store.extend_lease(j.id, "w2", 5_000).await.unwrap());
    assert_eq!(
        store.get_job(j.id).await.unwrap().unwrap().lease_until_ms,
        Some(5_000)
    );
    assert!(
        store
            .claim_jobs("w3", 4_999, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The owner retries: lease released, new due time, attempts kept.
    assert!(store.retry_job(j.id, "w2", 7_000).await.unwrap());
    let mut want = j.clone();
    want.due_ms = 7_000;
    want.attempts = 2;
    assert_eq!(store.get_job(j.id).await.unwrap(), Some(want));
    assert!(!store.complete_job(j.id, "w2").await.unwrap());
    assert!(
        store
            .claim_jobs("w3", 6_999, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let c = store.claim_jobs("w3", 7_000, 100, 10).await.unwrap();
    assert_eq!(c[0].attempts, 3);
    assert!(!store.complete_job(j.id, "w2").await.unwrap());
    assert!(store.complete_job(j.id, "w3").await.unwrap());
    assert_eq!(store.get_job(j.id).await.unwrap(), None);
    assert!(!store.complete_job(j.id, "w3").await.unwrap());
    assert!(!store.retry_job(j.id, "w3", 1).await.unwrap());
    assert!(!store.extend_lease(j.id, "w3", 1).await.unwrap());

    // An expired lease nobody took over still belongs to its owner.
    let k = job("send", 0);
    store.enqueue_jobs(std::slice::from_ref(&k)).await.unwrap();
    store.claim_jobs("w1", 0, 10, 1).await.unwrap();
    assert!(store.extend_lease(k.id, "w1", 20).await.unwrap());
    assert!(store.complete_job(k.id, "w1").await.unwrap());
    assert!(!store.complete_job(Uuid::new_v4(), "w1").await.unwrap());
    assert_eq!(store.count_jobs().await.unwrap(), 0);
}

async fn jobs_next_due(store: Store) {
    assert_eq!(store.next_due_ms().await.unwrap(), None);
    let a = job("stage", 500);
    let b = job("stage", 800);
    store.enqueue_jobs(&[b.clone(), a.clone()]).await.unwrap();
    assert_eq!(store.next_due_ms().await.unwrap(), Some(500));
    // a leased until 1600: b (unleased, due 800) is next.
    assert_eq!(
        job_ids(&store.claim_jobs("w", 600, 1_000, 1).await.unwrap()),
        [a.id]
    );
    assert_eq!(store.next_due_ms().await.unwrap(), Some(800));
    // Both leased: the first lease to end.
    assert_eq!(
        job_ids(&store.claim_jobs("w", 900, 1_000, 1).await.unwrap()),
        [b.id]
    );
    assert_eq!(store.next_due_ms().await.unwrap(), Some(1_600));
    assert!(store.retry_job(a.id, "w", 5_000).await.unwrap());
    assert_eq!(store.next_due_ms().await.unwrap(), Some(1_900));
    assert!(store.extend_lease(b.id, "w", 10_000).await.unwrap());
    assert_eq!(store.next_due_ms().await.unwrap(), Some(5_000));
    // A lease ending before the job's due time counts as the due time (max of the two).
    assert!(store.extend_lease(b.id, "w", 700).await.unwrap());
    assert_eq!(store.next_due_ms().await.unwrap(), Some(800));
    // An expired lease may be in the past: the runner claims at once.
    assert!(store.complete_job(b.id, "w").await.unwrap());
    assert_eq!(store.next_due_ms().await.unwrap(), Some(5_000));
    let past = job("send", -3);
    store
        .enqueue_jobs(std::slice::from_ref(&past))
        .await
        .unwrap();
    assert_eq!(store.next_due_ms().await.unwrap(), Some(-3));
    store.claim_jobs("w", 0, 2, 10).await.unwrap();
    assert_eq!(store.next_due_ms().await.unwrap(), Some(2));
    assert!(store.complete_job(past.id, "w").await.unwrap());
    store.claim_jobs("w", 5_000, 1, 10).await.unwrap();
    assert!(store.complete_job(a.id, "w").await.unwrap());
    assert_eq!(store.next_due_ms().await.unwrap(), None);
}

/// Several tasks claim at once until nothing is left: every job is claimed exactly once.
async fn jobs_concurrent_claims(store: Store) {
    const JOBS: i64 = 400;
    const TASKS: usize = 8;
    let all: Vec<JobRecord> = (0..JOBS).map(|i| job("send", i % 37)).collect();
    assert_eq!(
        store.enqueue_jobs(&all).await.unwrap(),
        usize::try_from(JOBS).unwrap()
    );
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.spawn(async move {
            let owner = format!("w{t}");
            let mut got = Vec::new();
            loop {
                let batch = store.claim_jobs(&owner, 1_000, 60_000, 7).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                assert!(batch.len() <= 7);
                got.extend(batch.into_iter().map(|j| (j.id, owner.clone())));
            }
            got
        });
    }
    let mut seen = HashSet::new();
    let mut claimed = Vec::new();
    while let Some(got) = tasks.join_next().await {
        for (id, owner) in got.unwrap() {
            assert!(seen.insert(id), "job {id} was claimed twice");
            claimed.push((id, owner));
        }
    }
    assert_eq!(seen.len(), all.len());
    assert!(all.iter().all(|j| seen.contains(&j.id)));
    // The stored lease is the claimer's.
    for (id, owner) in claimed.iter().step_by(17) {
        let stored = store.get_job(*id).await.unwrap().unwrap();
        assert_eq!(
            (stored.lease_owner.as_ref(), stored.attempts),
            (Some(owner), 1)
        );
    }
    assert!(
        store
            .claim_jobs("late", 1_000, 1, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn jobs_wakeups(store: Store) {
    let wakeups = store.listen_for_jobs().await.unwrap();
    let Some(mut wakeups) = wakeups else {
        assert_eq!(store.backend(), "sqlite");
        return;
    };
    assert_eq!(store.backend(), "postgres");
    let waiting = tokio::spawn(async move {
        let due = wakeups.wait().await.unwrap();
        (wakeups, due)
    });
    // The notification names the earliest due time of the enqueued jobs.
    store
        .enqueue_jobs(&[job("stage", 7), job("stage", 3)])
        .await
        .unwrap();
    let (mut wakeups, due) = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("an enqueue wakes the listener")
        .unwrap();
    assert_eq!(due, Some(3));
    // Jobs enqueued already leased (handed to their engine) wake no one: the next wake-up is
    // the next enqueue of an unleased job.
    let leased = JobRecord {
        lease_owner: Some("e1".into()),
        lease_until_ms: Some(30_000),
        attempts: 1,
        ..job("stage", 1)
    };
    store.enqueue_jobs(&[leased]).await.unwrap();
    store.enqueue_jobs(&[job("stage", 9)]).await.unwrap();
    let due = tokio::time::timeout(std::time::Duration::from_secs(10), wakeups.wait())
        .await
        .expect("an enqueue wakes the listener")
        .unwrap();
    assert_eq!(due, Some(9));
    // The group commit (starts, steps, send outcomes) notifies the same way: the earliest due
    // time of its unleased jobs, nothing for a batch whose jobs are all leased.
    let quiet = engagement(ACCT, "ana", T0, None);
    let send = JobRecord {
        lease_owner: Some("e1".into()),
        lease_until_ms: Some(30_000),
        attempts: 1,
        ..job("page.send", 2)
    };
    let started = |e: EngagementRecord, jobs: Vec<JobRecord>| NewEngagement {
        engagement: e,
        pages: vec![],
        jobs,
        idem: None,
    };
    store
        .start_engagements(&[started(quiet, vec![send])])
        .await
        .unwrap();
    let (a, b) = (
        engagement(ACCT, "ana", T0, None),
        engagement(ACCT, "bo", T0, None),
    );
    let (step_a, step_b) = (step(&a, 1, 60_000), step(&b, 1, 45_000));
    store
        .start_engagements(&[started(a, vec![step_a]), started(b, vec![step_b])])
        .await
        .unwrap();
    let due = tokio::time::timeout(std::time::Duration::from_secs(10), wakeups.wait())
        .await
        .expect("a group commit with unleased jobs wakes the listener")
        .unwrap();
    assert_eq!(due, Some(45_000), "not the leased send's 2: it woke no one");
    // Closing the store ends a wait (the listener's connection goes back to the pool, which
    // the close waits for).
    let waiting = tokio::spawn(async move { wakeups.wait().await });
    store.close().await;
    assert!(waiting.await.unwrap().is_err());
}

// ---- PostgreSQL races, made deterministic ----------------------------------------------
// A raw transaction holds a conflicting change uncommitted while a Store call runs into it;
// SQLite's single writer cannot interleave like this.

async fn pg_store_and_raw() -> Option<(Store, sqlx::PgConnection)> {
    use sqlx::Connection;
    let url = fresh_postgres_url().await?;
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let raw = sqlx::PgConnection::connect(&url).await.unwrap();
    Some((store, raw))
}

/// Lets a spawned call reach the point where it waits for the raw transaction's lock.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_races() {
    let Some((store, mut raw)) = pg_store_and_raw().await else {
        return postgres_skip_note("postgres_races");
    };
    personals(&store, ACCT, &["base", "x", "y"]).await;
    let x = store.get_contact(ACCT, "x").await.unwrap().unwrap();
    let r = rotation(ACCT, "r", &["base"], 1);
    store.create_rotation(&r, &[], None).await.unwrap();

    // 1. A member added after delete_contact's check: the RESTRICT reference refuses the
    //    delete, reported as InUse.
    sqlx::raw_sql("BEGIN").execute(&mut raw).await.unwrap();
    sqlx::query(
        "INSERT INTO rotation_members (rotation_id, position, contact_id) VALUES ($1, 1, $2)",
    )
    .bind(r.id.to_string())
    .bind(x.id.to_string())
    .execute(&mut raw)
    .await
    .unwrap();
    let s = store.clone();
    let del = tokio::spawn(async move { s.delete_contact(ACCT, "x").await });
    settle().await;
    assert!(
        !del.is_finished(),
        "the delete waits for the inserting transaction"
    );
    sqlx::raw_sql("COMMIT").execute(&mut raw).await.unwrap();
    assert_in_use(del.await.unwrap(), &[r.id]);
    assert!(store.get_contact(ACCT, "x").await.unwrap().is_some());
    assert_eq!(
        store
            .get_rotation(ACCT, r.id)
            .await
            .unwrap()
            .unwrap()
            .members,
        ["base", "x"]
    );

    // 2. A contact deleted after update_rotation resolved it: NotFound, nothing changed.
    let y = store.get_contact(ACCT, "y").await.unwrap().unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut raw).await.unwrap();
    sqlx::query("DELETE FROM contacts WHERE id = $1")
        .bind(y.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();
    let mut add = r.clone();
    add.members = vec!["base".into(), "y".into()];
    add.name = "renamed".into();
    let s = store.clone();
    let upd = tokio::spawn(async move { s.update_rotation(&add).await });
    settle().await;
    assert!(
        !upd.is_finished(),
        "the insert waits for the deleting transaction"
    );
    sqlx::raw_sql("COMMIT").execute(&mut raw).await.unwrap();
    assert_not_found(upd.await.unwrap(), "contact 'y'");
    let now = store.get_rotation(ACCT, r.id).await.unwrap().unwrap();
    assert_eq!((now.name.as_str(), now.members.len()), ("r", 2));

    // 3. A schedule's plan changed while delete_rotation edits it: re-read, not overwritten.
    let arn = rotation_arn(&r);
    let other_arn = "arn:aws:ssm-contacts:us-east-1:111122223333:rotation/other";
    let newer_arn = "arn:aws:ssm-contacts:us-east-1:111122223333:rotation/newer";
    let sched = schedule("sched", &[&arn, other_arn], 5);
    store.create_contact(&sched, &[], None).await.unwrap();
    let mut concurrent = sched.clone();
    concurrent.plan.rotation_ids = vec![newer_arn.into(), arn.clone(), other_arn.into()];
    concurrent.updated_ms = 6;
    let plan = serde_json::to_string(&concurrent.plan).unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut raw).await.unwrap();
    sqlx::query("UPDATE contacts SET plan = $1, updated_ms = 6 WHERE id = $2")
        .bind(&plan)
        .bind(sched.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();
    let s = store.clone();
    let del = tokio::spawn(async move { s.delete_rotation(ACCT, r.id, &arn, 99).await });
    settle().await;
    assert!(
        !del.is_finished(),
        "the plan edit waits for the concurrent update"
    );
    sqlx::raw_sql("COMMIT").execute(&mut raw).await.unwrap();
    assert!(del.await.unwrap().unwrap());
    let got = store.get_contact(ACCT, "sched").await.unwrap().unwrap();
    assert_eq!(got.plan.rotation_ids, [newer_arn, other_arn]);
    assert_eq!(got.updated_ms, 99);
    assert!(store.delete_contact(ACCT, "x").await.unwrap());
}

/// The activation writes racing a concurrent transaction on the same code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_activation_races() {
    let Some((store, mut raw)) = pg_store_and_raw().await else {
        return postgres_skip_note("postgres_activation_races");
    };
    const PHONE: &str = "+12065550100";
    let chans = with_channels(&store, ACCT, "akua", &[("sms", ChannelType::Sms, PHONE)]).await;
    let ch = chans[0].clone();
    let issue = |hash: &'static str, ms: i64| {
        let store = store.clone();
        async move {
            store
                .issue_activation_code(ACCT, &code(ch.id, hash, ms), ms, 100, HOUR)
                .await
                .unwrap()
        }
    };
    let consume = |hash: &'static str| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .consume_activation_code(ACCT, ch.id, hash, T0 + 10, 5)
                .await
        })
    };

    // 1. A concurrent wrong try reaches the limit while the right code is being used: the
    //    consume waits, re-checks the count, and refuses.
    issue("h1", T0).await;
    sqlx::raw_sql("BEGIN").execute(&mut raw).await.unwrap();
    sqlx::query("UPDATE activation_codes SET failed_attempts = 5 WHERE channel_id = $1")
        .bind(ch.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();
    let used = consume("h1");
    settle().await;
    assert!(!used.is_finished(), "the consume waits for the wrong try");
    sqlx::raw_sql("COMMIT").execute(&mut raw).await.unwrap();
    assert!(!used.await.unwrap().unwrap());
    assert_eq!(
        store
            .get_activation_code(ACCT, ch.id)
            .await
            .unwrap()
            .unwrap()
            .failed_attempts,
        5
    );

    // 2. A new code replaces the one being used: the old hash no longer matches.
    issue("h2", T0 + 1).await;
    sqlx::raw_sql("BEGIN").execute(&mut raw).await.unwrap();
    sqlx::query(
        "UPDATE activation_codes SET code_hash = 'h3', failed_attempts = 0 WHERE channel_id = $1",
    )
    .bind(ch.id.to_string())
    .execute(&mut raw)
    .await
    .unwrap();
    let used = consume("h2");
    settle().await;
    assert!(!used.is_finished(), "the consume waits for the new code");
    sqlx::raw_sql("COMMIT").execute(&mut raw).await.unwrap();
    assert!(!used.await.unwrap().unwrap());
    assert_eq!(
        activation_of(&store, &ch).await.0,
        ActivationStatus::NotActivated
    );

    // 3. Two uses of one code: the second waits for the first and finds the code gone.
    issue("h4", T0 + 2).await;
    sqlx::raw_sql("BEGIN").execute(&mut raw).await.unwrap();
    sqlx::query("DELETE FROM activation_codes WHERE channel_id = $1")
        .bind(ch.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();
    let used = consume("h4");
    settle().await;
    assert!(!used.is_finished(), "the second use waits for the first");
    sqlx::query("UPDATE channels SET activation = 'ACTIVATED', updated_ms = 7 WHERE id = $1")
        .bind(ch.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::raw_sql("COMMIT").execute(&mut raw).await.unwrap();
    assert!(!used.await.unwrap().unwrap());
    assert_eq!(
        activation_of(&store, &ch).await,
        (ActivationStatus::Activated, 7)
    );

    // 4. An opt-out while a code is being used (the same writes as 3., held open): the
    //    opt-out waits on the code, then deactivates the freshly activated channel.
    store.deactivate_channel(ACCT, ch.id, T0 + 3).await.unwrap();
    issue("h5", T0 + 3).await;
    sqlx::raw_sql("BEGIN").execute(&mut raw).await.unwrap();
    sqlx::query("DELETE FROM activation_codes WHERE channel_id = $1")
        .bind(ch.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();
    let s = store.clone();
    let stop = tokio::spawn(async move { s.opt_out(PHONE, "sms", Some("STOP"), T0 + 20).await });
    settle().await;
    assert!(!stop.is_finished(), "the opt-out waits for the code");
    sqlx::query("UPDATE channels SET activation = 'ACTIVATED', updated_ms = 8 WHERE id = $1")
        .bind(ch.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::raw_sql("COMMIT").execute(&mut raw).await.unwrap();
    assert!(stop.await.unwrap().unwrap());
    assert_eq!(
        activation_of(&store, &ch).await,
        (ActivationStatus::NotActivated, T0 + 20)
    );

    // Sends older than the window are pruned when a new one is recorded.
    let sends = "SELECT COUNT(*) FROM activation_sends WHERE channel_id = $1";
    let count: i64 = sqlx::query_scalar(sends)
        .bind(ch.id.to_string())
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(count, 4);
    issue("h6", T0 + 2 * HOUR).await;
    let count: i64 = sqlx::query_scalar(sends)
        .bind(ch.id.to_string())
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

/// A claim skips (does not wait for) jobs another transaction has locked, e.g. a concurrent
/// claimer's, and takes them once they are free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_claims_skip_locked_jobs() {
    let Some((store, mut raw)) = pg_store_and_raw().await else {
        return postgres_skip_note("postgres_claims_skip_locked_jobs");
    };
    let a = JobRecord::new("stage", "{}", 1, 0);
    let b = JobRecord::new("stage", "{}", 2, 0);
    store.enqueue_jobs(&[a.clone(), b.clone()]).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut raw).await.unwrap();
    sqlx::query("SELECT id FROM jobs WHERE id = $1 FOR UPDATE")
        .bind(a.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();
    let claim = store.claim_jobs("w1", 10, 1_000, 10);
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), claim)
        .await
        .expect("the claim does not wait for the locked row")
        .unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), [b.id]);
    // The locking transaction (a concurrent claimer) leases the job and commits: whether the
    // next claim runs before the commit (row locked: skipped) or after (leased), it is not
    // claimed again.
    sqlx::query(
        "UPDATE jobs SET lease_owner = 'other', lease_until_ms = 110, attempts = 1 WHERE id = $1",
    )
    .bind(a.id.to_string())
    .execute(&mut raw)
    .await
    .unwrap();
    let s = store.clone();
    let claim = tokio::spawn(async move { s.claim_jobs("w2", 10, 100, 10).await });
    sqlx::raw_sql("COMMIT").execute(&mut raw).await.unwrap();
    assert!(claim.await.unwrap().unwrap().is_empty());
    let stored = store.get_job(a.id).await.unwrap().unwrap();
    assert_eq!(stored.lease_owner.as_deref(), Some("other"));
    let got = store.claim_jobs("w2", 110, 100, 10).await.unwrap();
    assert_eq!(
        got.iter().map(|j| (j.id, j.attempts)).collect::<Vec<_>>(),
        [(a.id, 2)]
    );
}

// ---- reopening ------------------------------------------------------------------------

/// Connect, write, close, connect again (migrating again, as every start does), read.
async fn survives_reopening(url: &str) {
    let c = personal("akua");
    let ch = channel(&c, "phone", 5);
    let k = key("AKIAREOPEN", ACCT, 7);
    {
        let store = Store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        store
            .create_contact(&c, &[tag("t", "v")], None)
            .await
            .unwrap();
        store.create_channel(&ch, None).await.unwrap();
        store.insert_access_key(&k).await.unwrap();
        store.close().await;
    }
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        store.get_contact(ACCT, "akua").await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(store.get_channel(ACCT, ch.id).await.unwrap(), Some(ch));
    assert_eq!(store.get_access_key("AKIAREOPEN").await.unwrap(), Some(k));
    assert_eq!(
        store.list_tags(ACCT, "contact/akua").await.unwrap(),
        [tag("t", "v")]
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    // Both spellings of a SQLite database: a URL and a plain path (the file is created).
    let path = dir.path().join("reopen.db");
    survives_reopening(&format!("sqlite://{}", path.display())).await;
    assert!(path.exists());
    let plain = dir.path().join("plain.db");
    survives_reopening(plain.to_str().unwrap()).await;
    assert!(plain.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening_postgres() {
    match fresh_postgres_url().await {
        Some(url) => survives_reopening(&url).await,
        None => postgres_skip_note("data_survives_reopening"),
    }
}

// ---- access keys seen by two processes --------------------------------------------------

/// Two stores on one database, as two processes: a key revoked through one is refused by the
/// other at most [`KEY_CACHE_TTL`] later (at once on SQLite, which keeps no keys), and at once
/// by the store that revoked it; a key created through one is found by the other at once
/// (a key not found is not remembered).
async fn keys_seen_across_stores(url: &str, cached: bool) {
    let here = Store::connect(url).await.unwrap();
    here.migrate().await.unwrap();
    let there = Store::connect(url).await.unwrap();
    let (a, b) = (key("AKIAHERE", ACCT, 7), key("AKIATHERE", ACCT, 7));
    here.insert_access_key(&a).await.unwrap();
    assert_eq!(here.get_access_key("AKIATHERE").await.unwrap(), None);
    there.insert_access_key(&b).await.unwrap();
    assert_eq!(
        here.get_access_key("AKIATHERE").await.unwrap(),
        Some(b.clone())
    );

    // Revoked by the other: refused here within the TTL.
    assert_eq!(
        here.get_access_key("AKIAHERE").await.unwrap(),
        Some(a.clone())
    );
    assert!(there.revoke_access_key("AKIAHERE", 9).await.unwrap());
    let now = here.get_access_key("AKIAHERE").await.unwrap().unwrap();
    assert_eq!(now.revoked_ms, if cached { None } else { Some(9) });
    tokio::time::sleep(muster_store::KEY_CACHE_TTL + std::time::Duration::from_millis(50)).await;
    let later = here.get_access_key("AKIAHERE").await.unwrap().unwrap();
    assert_eq!(later.revoked_ms, Some(9));

    // Revoked here: refused here at once, though it was just read.
    assert_eq!(here.get_access_key("AKIATHERE").await.unwrap(), Some(b));
    assert!(here.revoke_access_key("AKIATHERE", 11).await.unwrap());
    let now = here.get_access_key("AKIATHERE").await.unwrap().unwrap();
    assert_eq!(now.revoked_ms, Some(11));
    here.close().await;
    there.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_seen_across_stores_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    keys_seen_across_stores(&format!("sqlite://{}", path.display()), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_seen_across_stores_postgres() {
    match fresh_postgres_url().await {
        Some(url) => keys_seen_across_stores(&url, true).await,
        None => postgres_skip_note("keys_seen_across_stores"),
    }
}

// ---- connecting -----------------------------------------------------------------------

#[tokio::test]
async fn connect_urls() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["mysql://localhost/db", "", "   "] {
        assert!(
            matches!(Store::connect(bad).await, Err(StoreError::InvalidUrl(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        Store::connect("sqlite://x.db?bogus=1").await,
        Err(StoreError::InvalidUrl(_))
    ));
    // A directory that does not exist is not created.
    let missing = dir.path().join("no/such/dir/m.db");
    assert!(matches!(
        Store::connect(&format!("sqlite://{}", missing.display())).await,
        Err(StoreError::Database(_))
    ));
    // In memory: one connection serves reads and writes.
    let mem = Store::connect("sqlite::memory:").await.unwrap();
    assert_eq!(mem.backend(), "sqlite");
    mem.migrate().await.unwrap();
    mem.create_contact(&personal("m"), &[], None).await.unwrap();
    assert!(mem.get_contact(ACCT, "m").await.unwrap().is_some());
}

async fn deliveries_and_status_callbacks(store: Store) {
    use muster_store::DeliveryRecord;
    let m1 = Uuid::new_v4();
    let ch = Uuid::new_v4();
    let d = DeliveryRecord {
        message_id: m1,
        account: Some("111122223333".into()),
        channel_id: Some(ch),
        kind: "activation".into(),
        provider: "twilio".into(),
        provider_message_id: Some("SM1".into()),
        status: "SENT".into(),
        sent_ms: 1_000,
        updated_ms: 1_000,
        page_id: Some(Uuid::new_v4()),
    };
    store.record_delivery(&d).await.unwrap();
    // Recording the same message again keeps the first record.
    store
        .record_delivery(&DeliveryRecord {
            provider: "other".into(),
            ..d.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.get_delivery(m1).await.unwrap().unwrap(), d);

    // A callback for a known provider id updates the status and is kept.
    let matched = store
        .record_delivery_event("SM1", "DELIVERED", None, 2_000)
        .await
        .unwrap();
    assert_eq!(matched, Some(m1));
    let got = store.get_delivery(m1).await.unwrap().unwrap();
    assert_eq!((got.status.as_str(), got.updated_ms), ("DELIVERED", 2_000));
    store
        .record_delivery_event("SM1", "FAILED", Some("30003"), 3_000)
        .await
        .unwrap();
    let events = store.delivery_events("SM1").await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].status, "DELIVERED");
    assert_eq!(events[1].error_code.as_deref(), Some("30003"));
    assert!(events.iter().all(|e| e.message_id == Some(m1)));

    // An unknown provider id is still recorded, unmatched.
    assert_eq!(
        store
            .record_delivery_event("SM-unknown", "DELIVERED", None, 4_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.delivery_events("SM-unknown").await.unwrap().len(), 1);
    assert!(store.get_delivery(Uuid::new_v4()).await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Engagements, pages, receipts
// ---------------------------------------------------------------------------------------------

fn engagement(
    account: &str,
    alias: &str,
    start_ms: i64,
    incident: Option<&str>,
) -> EngagementRecord {
    EngagementRecord {
        id: Uuid::now_v7(),
        account: account.into(),
        contact_alias: alias.into(),
        sender: "ops".into(),
        subject: "s".into(),
        content: "c".into(),
        public_subject: None,
        public_content: Some("pc".into()),
        incident_id: incident.map(str::to_owned),
        start_ms,
        stop_ms: None,
        stop_reason: None,
        generation: 1,
        snapshot: "{}".into(),
        state: "{\"units\":[]}".into(),
    }
}

fn page(e: &EngagementRecord, alias: &str, channel_id: Option<Uuid>, ms: i64) -> PageRecord {
    PageRecord {
        id: Uuid::now_v7(),
        account: e.account.clone(),
        engagement_id: e.id,
        unit: 0,
        contact_alias: alias.into(),
        channel_id,
        channel_arn: format!("arn:channel/{}", channel_id.unwrap_or_default()),
        stage_index: 0,
        retry_minutes: 0,
        path: "[]".into(),
        created_ms: ms,
        send_rounds: 0,
        sent_ms: None,
        delivery_ms: None,
        read_ms: None,
    }
}

fn receipt(p: &PageRecord, kind: &str, ms: i64) -> ReceiptRecord {
    ReceiptRecord {
        id: Uuid::now_v7(),
        page_id: p.id,
        receipt_type: kind.into(),
        info: Some(format!("{kind} info")),
        time_ms: ms,
    }
}

fn step(e: &EngagementRecord, generation: i64, due_ms: i64) -> JobRecord {
    JobRecord::new(
        "engagement.step",
        format!("{{\"g\":{generation}}}"),
        due_ms,
        due_ms,
    )
    .with_dedup_key(step_key(e.id))
}

/// Starting writes the engagement, its pages and jobs together; an idempotency token
/// replays; reads are per account.
async fn engagement_start_and_reads(store: Store) {
    let e = engagement(ACCT, "ana", T0, Some("inc-1"));
    let p1 = page(&e, "ana", Some(Uuid::new_v4()), T0);
    let p2 = page(&e, "ana", None, T0);
    let send = JobRecord::new("page.send", "{}", T0, T0);
    let token = idem("StartEngagement", "tok", "h1", "arn-1");
    let got = store
        .start_engagement(
            &e,
            &[p1.clone(), p2.clone()],
            &[send.clone(), step(&e, 1, T0 + 60_000)],
            Some(&token),
        )
        .await
        .unwrap();
    assert_eq!(got, Created::New);
    assert_eq!(
        store.get_engagement(ACCT, e.id).await.unwrap(),
        Some(e.clone())
    );
    assert_eq!(store.get_engagement(OTHER, e.id).await.unwrap(), None);
    assert_eq!(
        store.get_engagement_by_id(e.id).await.unwrap(),
        Some(e.clone())
    );
    // The engine's batch read: those that exist, whole (snapshot included).
    assert_eq!(
        store
            .get_engagements_by_ids(&[Uuid::new_v4(), e.id])
            .await
            .unwrap(),
        std::slice::from_ref(&e)
    );
    assert!(store.get_engagements_by_ids(&[]).await.unwrap().is_empty());
    assert_eq!(store.get_page(ACCT, p1.id).await.unwrap(), Some(p1.clone()));
    assert_eq!(store.get_page(OTHER, p1.id).await.unwrap(), None);
    assert_eq!(store.get_page_by_id(p2.id).await.unwrap(), Some(p2.clone()));
    assert_eq!(store.count_jobs().await.unwrap(), 2);
    assert_eq!(store.count_running_engagements().await.unwrap(), 1);

    // The same token and request: the stored result, nothing written.
    let again = engagement(ACCT, "ana", T0, None);
    assert_eq!(
        store
            .start_engagement(&again, &[], &[], Some(&token))
            .await
            .unwrap(),
        Created::Replay("arn-1".into())
    );
    assert_eq!(store.get_engagement(ACCT, again.id).await.unwrap(), None);
    // The same token, another request.
    let other = idem("StartEngagement", "tok", "h2", "arn-2");
    assert!(matches!(
        store.start_engagement(&again, &[], &[], Some(&other)).await,
        Err(StoreError::IdempotencyMismatch)
    ));
    // A taken id is a conflict and writes nothing.
    let dup = page(&e, "ana", None, T0);
    assert_conflict(
        store
            .start_engagement(&e, std::slice::from_ref(&dup), &[], None)
            .await,
        &format!("engagement {} exists", e.id),
    );
    assert_eq!(store.get_page_by_id(dup.id).await.unwrap(), None);

    // A batch: each start stands on its own (a new one, a replay, a mismatch).
    let fresh = engagement(ACCT, "bo", T0, None);
    let fresh_page = page(&fresh, "bo", None, T0);
    let batch = [
        NewEngagement {
            engagement: fresh.clone(),
            pages: vec![fresh_page.clone()],
            jobs: vec![step(&fresh, 1, T0 + 1)],
            idem: Some(idem("StartEngagement", "tok-2", "h", "arn-fresh")),
        },
        NewEngagement {
            engagement: engagement(ACCT, "ana", T0, None),
            pages: vec![],
            jobs: vec![],
            idem: Some(token.clone()),
        },
        NewEngagement {
            engagement: engagement(ACCT, "ana", T0, None),
            pages: vec![],
            jobs: vec![],
            idem: Some(other.clone()),
        },
    ];
    // Two new starts with one new token in a batch: the first claims it, the second is its
    // replay; a third with the token and another request is a mismatch.
    let twin = |hash: &str| NewEngagement {
        engagement: engagement(ACCT, "bo", T0, None),
        pages: vec![],
        jobs: vec![],
        idem: Some(idem(
            "StartEngagement",
            "tok-3",
            hash,
            &format!("arn-{hash}"),
        )),
    };
    let twins = [twin("h3"), twin("h3"), twin("h4")];
    let results = store.start_engagements(&twins).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap(), &Created::New);
    assert_eq!(
        results[1].as_ref().unwrap(),
        &Created::Replay("arn-h3".into())
    );
    assert!(matches!(results[2], Err(StoreError::IdempotencyMismatch)));
    assert!(
        store
            .get_engagement(ACCT, twins[1].engagement.id)
            .await
            .unwrap()
            .is_none()
    );
    let results = store.start_engagements(&batch).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap(), &Created::New);
    assert_eq!(
        results[1].as_ref().unwrap(),
        &Created::Replay("arn-1".into())
    );
    assert!(matches!(results[2], Err(StoreError::IdempotencyMismatch)));
    assert_eq!(
        store.get_page_by_id(fresh_page.id).await.unwrap(),
        Some(fresh_page)
    );
    assert_eq!(
        store
            .get_engagement(ACCT, batch[1].engagement.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.count_running_engagements().await.unwrap(), 3);
    // A batch with a taken id writes nothing at all.
    let lone = engagement(ACCT, "cy", T0, None);
    let bad = [
        NewEngagement {
            engagement: lone.clone(),
            pages: vec![],
            jobs: vec![],
            idem: None,
        },
        NewEngagement {
            engagement: e.clone(),
            pages: vec![],
            jobs: vec![],
            idem: None,
        },
    ];
    let failed = store.start_engagements(&bad).await;
    assert!(
        matches!(failed, Err(StoreError::Conflict(ref m)) if m.contains("exists")),
        "{failed:?}"
    );
    assert_eq!(store.get_engagement(ACCT, lone.id).await.unwrap(), None);
    // The failed batch was rolled back: the writer takes the next one as usual.
    let results = store.start_engagements(&bad[..1]).await.unwrap();
    assert!(matches!(results[..], [Ok(Created::New)]), "{results:?}");
    assert_eq!(
        store.get_engagement(ACCT, lone.id).await.unwrap(),
        Some(lone)
    );

    // Engagements with one snapshot share its stored copy (in one batch and across batches);
    // each reads back its own, whichever it shares with.
    let with_snapshot = |alias: &str, snapshot: &str| {
        let mut e = engagement(ACCT, alias, T0, None);
        e.snapshot = snapshot.into();
        NewEngagement {
            engagement: e,
            pages: vec![],
            jobs: vec![],
            idem: None,
        }
    };
    let first = [
        with_snapshot("ana", r#"{"plan":"a"}"#),
        with_snapshot("bo", r#"{"plan":"b"}"#),
        with_snapshot("ana", r#"{"plan":"a"}"#),
    ];
    let second = [
        with_snapshot("bo", r#"{"plan":"b"}"#),
        with_snapshot("cy", r#"{"plan":"c"}"#),
    ];
    for b in [&first[..], &second[..]] {
        let results = store.start_engagements(b).await.unwrap();
        assert!(
            results.iter().all(|r| matches!(r, Ok(Created::New))),
            "{results:?}"
        );
    }
    let mut want: Vec<EngagementRecord> = first
        .iter()
        .chain(&second)
        .map(|n| n.engagement.clone())
        .collect();
    let ids: Vec<Uuid> = want.iter().map(|e| e.id).collect();
    let mut got = store.get_engagements_by_ids(&ids).await.unwrap();
    got.sort_by_key(|e| e.id);
    want.sort_by_key(|e| e.id);
    assert_eq!(got, want);
}

/// Listing newest first (start time, then id, descending, as AWS lists them) with the
/// incident and time-range filters, resumable: pages of 3 over engagements of which three
/// share a start time (the id breaks the tie), and a cursor in the middle of that tie that
/// stays put when a newer engagement starts.
async fn engagement_listing(store: Store) {
    let mut all = Vec::new();
    for i in 0..7 {
        let incident = if i % 2 == 0 { Some("inc-even") } else { None };
        let e = engagement(ACCT, "ana", T0 + i * 1000, incident);
        store.start_engagement(&e, &[], &[], None).await.unwrap();
        all.push(e);
    }
    // Two more sharing the start time of all[3], the id breaks the tie.
    for _ in 0..2 {
        let e = engagement(ACCT, "bo", T0 + 3000, None);
        store.start_engagement(&e, &[], &[], None).await.unwrap();
        all.push(e);
    }
    // The expected order, computed here: start time descending, then id descending.
    all.sort_by_key(|e| std::cmp::Reverse((e.start_ms, e.id)));
    store
        .start_engagement(&engagement(OTHER, "ana", T0, None), &[], &[], None)
        .await
        .unwrap();
    let ids = |v: &[EngagementRecord]| v.iter().map(|e| e.id).collect::<Vec<_>>();
    let mut seen = Vec::new();
    let mut after = After::Start;
    loop {
        let page = store
            .list_engagements(ACCT, None, None, &after, 3)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        after = After::Created {
            ms: last.start_ms,
            id: last.id,
        };
        seen.extend(ids(&page));
    }
    assert_eq!(seen, ids(&all));
    let starts: Vec<i64> = all.iter().map(|e| e.start_ms).collect();
    assert_eq!(
        starts,
        [6000, 5000, 4000, 3000, 3000, 3000, 2000, 1000, 0].map(|d| T0 + d)
    );
    let even = store
        .list_engagements(ACCT, Some("inc-even"), None, &After::Start, 100)
        .await
        .unwrap();
    let even_starts: Vec<i64> = even.iter().map(|e| e.start_ms).collect();
    assert_eq!(even_starts, [6000, 4000, 2000, 0].map(|d| T0 + d));
    let ranged = store
        .list_engagements(ACCT, None, Some((T0 + 2000, T0 + 4000)), &After::Start, 100)
        .await
        .unwrap();
    assert_eq!(ids(&ranged), ids(&all[2..7]));
    // Resuming in the middle of the tie at T0 + 3000 lists the rest of it, then older ones.
    let after = After::Created {
        ms: all[3].start_ms,
        id: all[3].id,
    };
    let rest = store
        .list_engagements(ACCT, None, None, &after, 100)
        .await
        .unwrap();
    assert_eq!(ids(&rest), ids(&all[4..]));
    // An engagement started later than the cursor (newer) is not listed after it; one as old
    // as the rest is.
    let newer = engagement(ACCT, "cy", T0 + 10_000, None);
    store
        .start_engagement(&newer, &[], &[], None)
        .await
        .unwrap();
    let rest = store
        .list_engagements(ACCT, None, None, &after, 100)
        .await
        .unwrap();
    assert_eq!(ids(&rest), ids(&all[4..]));
    assert!(matches!(
        store
            .list_engagements(ACCT, None, None, &After::Alias("x".into()), 1)
            .await,
        Err(StoreError::Corrupt(_))
    ));
}

/// The auditor's scan, slice by slice (slices of 2, so the cursor is exercised).
async fn missing_steps(store: &Store) -> Vec<(Uuid, i64)> {
    let mut all = Vec::new();
    let mut after = After::Start;
    loop {
        let (missing, next) = store.scan_for_missing_steps(&after, 2).await.unwrap();
        all.extend(missing);
        match next {
            Some(n) => after = n,
            None => return all,
        }
    }
}

/// A change applies only at the expected generation of a running engagement, replaces the
/// step job, and writes its pages, jobs and events with it; batches apply each on its own.
async fn engagement_changes_are_fenced(store: Store) {
    let e = engagement(ACCT, "ana", T0, None);
    store
        .start_engagement(&e, &[], &[step(&e, 1, T0 + 60_000)], None)
        .await
        .unwrap();
    let p = page(&e, "ana", None, T0 + 60_000);
    let change = EngagementChange {
        id: e.id,
        expected_generation: 1,
        state: "{\"units\":[1]}".into(),
        stop: None,
        pages: vec![p.clone()],
        jobs: vec![JobRecord::new("page.send", "{}", T0 + 60_000, T0 + 60_000)],
        next_step: Some(step(&e, 2, T0 + 120_000)),
        events: PageEvents::default(),
    };
    assert!(store.change_engagement(&change).await.unwrap());
    let now = store.get_engagement(ACCT, e.id).await.unwrap().unwrap();
    assert_eq!((now.generation, now.state.as_str()), (2, "{\"units\":[1]}"));
    assert_eq!(store.get_page_by_id(p.id).await.unwrap(), Some(p.clone()));
    // The step job was replaced: one step job (generation 2) and the send job.
    assert_eq!(store.count_jobs().await.unwrap(), 2);
    assert_eq!(store.next_due_ms().await.unwrap(), Some(T0 + 60_000));
    // A stale change writes nothing.
    let stale = EngagementChange {
        pages: vec![page(&e, "ana", None, T0)],
        ..change.clone()
    };
    assert!(!store.change_engagement(&stale).await.unwrap());
    assert_eq!(store.get_page_by_id(stale.pages[0].id).await.unwrap(), None);
    assert!(missing_steps(&store).await.is_empty());

    // Batches: the first applies, the stale second does not, a third engagement applies.
    let e2 = engagement(ACCT, "bo", T0, None);
    store
        .start_engagement(&e2, &[], &[step(&e2, 1, T0)], None)
        .await
        .unwrap();
    let end = EngagementChange {
        id: e.id,
        expected_generation: 2,
        state: "{}".into(),
        stop: Some((T0 + 120_000, "completed".into())),
        ..Default::default()
    };
    let stale2 = EngagementChange {
        expected_generation: 1,
        ..end.clone()
    };
    let e2_change = EngagementChange {
        id: e2.id,
        expected_generation: 1,
        state: "{}".into(),
        next_step: Some(step(&e2, 2, T0 + 5)),
        ..Default::default()
    };
    assert_eq!(
        store
            .change_engagements(&[end, stale2, e2_change])
            .await
            .unwrap(),
        [true, false, true]
    );
    let ended = store.get_engagement(ACCT, e.id).await.unwrap().unwrap();
    assert_eq!(
        (ended.stop_ms, ended.stop_reason.as_deref()),
        (Some(T0 + 120_000), Some("completed"))
    );
    // Two changes of one engagement in a batch: the second sees the generation the first
    // wrote.
    let next = |g: i64| EngagementChange {
        id: e2.id,
        expected_generation: g,
        state: format!("{{\"g\":{g}}}"),
        next_step: Some(step(&e2, g + 1, T0 + 5)),
        ..Default::default()
    };
    assert_eq!(
        store.change_engagements(&[next(2), next(3)]).await.unwrap(),
        [true, true]
    );
    let e2_now = store.get_engagement(ACCT, e2.id).await.unwrap().unwrap();
    assert_eq!((e2_now.generation, e2_now.state.as_str()), (4, "{\"g\":3}"));
    // An ended engagement takes no more changes.
    let late = EngagementChange {
        id: e.id,
        expected_generation: 3,
        state: "{}".into(),
        ..Default::default()
    };
    assert!(!store.change_engagement(&late).await.unwrap());
    assert_eq!(store.count_running_engagements().await.unwrap(), 1);

    // The auditor's scan finds a running engagement whose step job is gone, among others
    // (several slices of 2) that have theirs.
    for i in 0..3 {
        let ok = engagement(ACCT, "dee", T0 + i, None);
        store
            .start_engagement(&ok, &[], &[step(&ok, 1, T0)], None)
            .await
            .unwrap();
    }
    let e3 = engagement(ACCT, "cy", T0, None);
    store.start_engagement(&e3, &[], &[], None).await.unwrap();
    assert_eq!(missing_steps(&store).await, [(e3.id, 1)]);
    store.enqueue_jobs(&[step(&e3, 1, T0)]).await.unwrap();
    assert!(missing_steps(&store).await.is_empty());
    assert_eq!(store.count_running_engagements().await.unwrap(), 5);
}

/// Page events: receipts in time order, first times win, send rounds count, delivery
/// records name the page, retry jobs are added and done jobs deleted only by their owner.
async fn page_events_and_lookups(store: Store) {
    let owner_ch = Uuid::new_v4();
    let c = personal("ana");
    store.create_contact(&c, &[], None).await.unwrap();
    let mut ch = channel(&c, "phone", T0);
    ch.id = owner_ch;
    store.create_channel(&ch, None).await.unwrap();
    let e = engagement(ACCT, "ana", T0, None);
    let p = page(&e, "ana", Some(ch.id), T0);
    let q = page(&e, "ana", Some(ch.id), T0);
    let send = JobRecord::new("page.send", "{}", T0, T0);
    let other_send = JobRecord::new("page.send", "{}", T0, T0);
    store
        .start_engagement(
            &e,
            &[p.clone(), q.clone()],
            &[send.clone(), other_send.clone()],
            None,
        )
        .await
        .unwrap();
    let claimed = store.claim_jobs("me", T0, 30_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // As the engine names a page's messages: the page id's first 48 bits, then a hash.
    let message_of = |page: &PageRecord, tail: u8| {
        let mut bytes = [tail; 16];
        bytes[..6].copy_from_slice(&page.id.as_bytes()[..6]);
        Uuid::from_bytes(bytes)
    };
    let message = message_of(&p, 0x11);
    let q_message = message_of(&q, 0x22);
    let delivery = |message_id: Uuid, kind: &str, page: Option<Uuid>, provider_id: Option<&str>| {
        muster_store::DeliveryRecord {
            message_id,
            account: Some(ACCT.into()),
            channel_id: Some(ch.id),
            kind: kind.into(),
            provider: "outbox".into(),
            provider_message_id: provider_id.map(Into::into),
            status: "SENT".into(),
            sent_ms: T0 + 5,
            updated_ms: T0 + 5,
            page_id: page,
        }
    };
    let ev = PageEvents {
        // The SENT receipt is the delivery record (below), not a row of its own.
        receipts: vec![receipt(&p, "DELIVERED", T0 + 6)],
        times: vec![
            PageTime::SendRound(p.id),
            PageTime::Sent(p.id, T0 + 5),
            PageTime::Delivered(p.id, T0 + 6),
        ],
        deliveries: vec![
            delivery(message, "page", Some(p.id), None),
            delivery(q_message, "page", Some(q.id), Some("SM-q")),
            // Another page's message in p's millisecond, and a code send: not p's.
            delivery(
                message_of(&p, 0x33),
                "page",
                Some(Uuid::now_v7()),
                Some("SM-x"),
            ),
            delivery(message_of(&p, 0x44), "code", None, None),
        ],
        jobs: vec![JobRecord::new("page.send", "{\"r\":1}", T0 + 120_000, T0)],
        done_jobs: vec![
            (send.id, "me".into()),
            (other_send.id, "not-the-owner".into()),
        ],
    };
    store.record_page_events(&ev).await.unwrap();
    let got = store.get_page_by_id(p.id).await.unwrap().unwrap();
    assert_eq!(
        (got.send_rounds, got.sent_ms, got.delivery_ms, got.read_ms),
        (1, Some(T0 + 5), Some(T0 + 6), None)
    );
    // First times win.
    store
        .record_page_events(&PageEvents {
            times: vec![
                PageTime::Sent(p.id, T0 + 99),
                PageTime::Read(p.id, T0 + 7),
                PageTime::Read(p.id, T0 + 8),
            ],
            receipts: vec![receipt(&p, "READ", T0 + 7)],
            ..Default::default()
        })
        .await
        .unwrap();
    let got = store.get_page_by_id(p.id).await.unwrap().unwrap();
    assert_eq!((got.sent_ms, got.read_ms), (Some(T0 + 5), Some(T0 + 7)));
    let kinds = |rs: &[ReceiptRecord]| {
        rs.iter()
            .map(|r| r.receipt_type.clone())
            .collect::<Vec<_>>()
    };
    let all = store.list_receipts(p.id, &After::Start, 10).await.unwrap();
    assert_eq!(kinds(&all), ["SENT", "DELIVERED", "READ"]);
    let first = store.list_receipts(p.id, &After::Start, 2).await.unwrap();
    let last = first.last().unwrap();
    let rest = store
        .list_receipts(
            p.id,
            &After::Created {
                ms: last.time_ms,
                id: last.id,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(kinds(&rest), ["READ"]);
    // The SENT receipt is the delivery record's: its id the message's, its info the
    // provider's message id, the message's when it gave none.
    assert_eq!(
        all[0],
        ReceiptRecord {
            id: message,
            page_id: p.id,
            receipt_type: "SENT".into(),
            info: Some(message.hyphenated().to_string()),
            time_ms: T0 + 5,
        }
    );
    let of_q = store.list_receipts(q.id, &After::Start, 10).await.unwrap();
    let of_q: Vec<_> = of_q
        .iter()
        .map(|r| (r.id, r.receipt_type.as_str(), r.info.as_deref()))
        .collect();
    assert_eq!(of_q, [(q_message, "SENT", Some("SM-q"))]);
    // A receipt reads back whole, and written again (a retried write) is not doubled.
    assert_eq!(all[1], ev.receipts[0]);
    store
        .record_page_events(&PageEvents {
            receipts: vec![ev.receipts[0].clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let again = store.list_receipts(p.id, &After::Start, 10).await.unwrap();
    assert_eq!(again, all);
    // Jobs: the owned one is done, the other still leased, the retry added.
    assert_eq!(store.get_job(send.id).await.unwrap(), None);
    assert!(store.get_job(other_send.id).await.unwrap().is_some());
    assert_eq!(store.count_jobs().await.unwrap(), 2);
    assert_eq!(store.page_of_message(message).await.unwrap(), Some(p.id));
    assert_eq!(store.page_of_message(Uuid::new_v4()).await.unwrap(), None);

    // Pages by engagement and by contact, in creation order.
    let by_e = store
        .list_pages(ACCT, PagesOf::Engagement(e.id), &After::Start, 10)
        .await
        .unwrap();
    assert_eq!(by_e.iter().map(|x| x.id).collect::<Vec<_>>(), [p.id, q.id]);
    assert!(
        store
            .list_pages(OTHER, PagesOf::Engagement(e.id), &After::Start, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let by_c = store
        .list_pages(
            ACCT,
            PagesOf::Contact("ana"),
            &After::Created { ms: T0, id: p.id },
            10,
        )
        .await
        .unwrap();
    assert_eq!(by_c.iter().map(|x| x.id).collect::<Vec<_>>(), [q.id]);

    // Open pages for an address: sent, not read, since the given time.
    assert!(
        store
            .open_pages_for_address(&ch.address, T0)
            .await
            .unwrap()
            .is_empty(),
        "p is read, q unsent"
    );
    store
        .record_page_events(&PageEvents {
            times: vec![PageTime::Sent(q.id, T0 + 10)],
            ..Default::default()
        })
        .await
        .unwrap();
    let open = store.open_pages_for_address(&ch.address, T0).await.unwrap();
    assert_eq!(open.iter().map(|x| x.id).collect::<Vec<_>>(), [q.id]);
    assert!(
        store
            .open_pages_for_address(&ch.address, T0 + 11)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .open_pages_for_address("+10000000000", T0)
            .await
            .unwrap()
            .is_empty()
    );
    // Pages are looked for by creation time, a day before the window at most: one created
    // then and first sent in the window is open; one created a millisecond earlier is not.
    let day = muster_store::OPEN_PAGE_CREATED_SLACK_MS;
    let e2 = engagement(ACCT, "ana", T0 - day - 1, None);
    let edge = page(&e2, "ana", Some(ch.id), T0 - day);
    let older = page(&e2, "ana", Some(ch.id), T0 - day - 1);
    store
        .start_engagement(&e2, &[edge.clone(), older.clone()], &[], None)
        .await
        .unwrap();
    store
        .record_page_events(&PageEvents {
            times: vec![
                PageTime::Sent(edge.id, T0 + 5),
                PageTime::Sent(older.id, T0 + 5),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    let open = store.open_pages_for_address(&ch.address, T0).await.unwrap();
    assert_eq!(
        open.iter().map(|x| x.id).collect::<Vec<_>>(),
        [q.id, edge.id],
        "newest send first; the page created more than a day before the window is not looked at"
    );

    // What sends read: each page with its channel as it is now and the opt-out.
    let ctx = |v: Vec<muster_store::SendContext>| {
        let mut v: Vec<_> = v
            .into_iter()
            .map(|c| (c.page.id, c.channel.map(|ch| ch.address), c.opted_out))
            .collect();
        v.sort();
        v
    };
    let mut both = vec![
        (p.id, Some(ch.address.clone()), false),
        (q.id, Some(ch.address.clone()), false),
    ];
    both.sort();
    let got = store
        .send_contexts(&[p.id, q.id, Uuid::new_v4()])
        .await
        .unwrap();
    assert_eq!(
        got.iter().find(|c| c.page.id == q.id).unwrap().page,
        store.get_page_by_id(q.id).await.unwrap().unwrap()
    );
    assert_eq!(
        got.iter()
            .find(|c| c.page.id == p.id)
            .unwrap()
            .channel
            .as_ref(),
        Some(&ch)
    );
    assert_eq!(ctx(got), both);
    store
        .opt_out(&ch.address, "sms", Some("STOP"), T0 + 20)
        .await
        .unwrap();
    let got = ctx(store.send_contexts(&[q.id]).await.unwrap());
    assert_eq!(got, [(q.id, Some(ch.address.clone()), true)]);
    assert!(store.delete_channel(ACCT, ch.id).await.unwrap());
    let got = ctx(store.send_contexts(&[q.id]).await.unwrap());
    assert_eq!(got, [(q.id, None, false)]);
    assert!(store.send_contexts(&[]).await.unwrap().is_empty());
    // More ids than one query takes.
    let many: Vec<Uuid> = (0..450).map(|_| Uuid::new_v4()).chain([p.id]).collect();
    assert_eq!(store.send_contexts(&many).await.unwrap().len(), 1);
}

// ---- console users, sessions and sign-in limits ---------------------------------------

fn user(email: &str, ms: i64) -> UserRecord {
    UserRecord {
        id: Uuid::new_v4(),
        email: email.into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt-of-{email}$hash"),
        is_admin: false,
        created_ms: ms,
        disabled_ms: None,
    }
}

fn session(u: &UserRecord, hash: &str, created_ms: i64, expires_ms: i64) -> SessionRecord {
    SessionRecord {
        token_hash: hash.into(),
        user_id: u.id,
        csrf_token: format!("csrf-{hash}"),
        created_ms,
        expires_ms,
        last_seen_ms: created_ms,
    }
}

const LIMITS: LoginLimits = LoginLimits {
    window_ms: 15 * 60_000,
    max_per_email: 5,
    max_per_address: 8,
};

async fn users(store: Store) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    assert!(store.list_users().await.unwrap().is_empty());
    let mut admin = user("zoe@example.com", 10);
    admin.is_admin = true;
    let akua = user("akua@example.com", 20);
    let under = user("a_b@example.com", 30);
    let dash = user("a-b@example.com", 40);
    for u in [&admin, &akua, &under, &dash] {
        store.create_user(u).await.unwrap();
    }
    assert_eq!(store.count_users().await.unwrap(), 4);
    assert_eq!(store.get_user(admin.id).await.unwrap(), Some(admin.clone()));
    assert_eq!(store.get_user(Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(
        store.get_user_by_email("akua@example.com").await.unwrap(),
        Some(akua.clone())
    );
    // Exact match: the caller normalises.
    assert_eq!(
        store.get_user_by_email("AKUA@example.com").await.unwrap(),
        None
    );
    assert_eq!(store.get_user_by_email("").await.unwrap(), None);
    assert_eq!(store.get_user_by_email("a\0").await.unwrap(), None);
    // By e-mail in code-point order ('-' < '_' < 'k'), whatever the database's collation.
    let emails: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(
        emails,
        [
            "a-b@example.com",
            "a_b@example.com",
            "akua@example.com",
            "zoe@example.com"
        ]
    );

    // E-mails and ids are unique.
    assert_conflict(
        store.create_user(&user("akua@example.com", 50)).await,
        "a user with e-mail 'akua@example.com' already exists",
    );
    let same_id = UserRecord {
        email: "other@example.com".into(),
        ..akua.clone()
    };
    assert!(matches!(
        store.create_user(&same_id).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.count_users().await.unwrap(), 4);

    // Disabling: once, the first instant kept; the user stays listed.
    assert!(store.disable_user(akua.id, 60).await.unwrap());
    assert!(!store.disable_user(akua.id, 70).await.unwrap());
    assert!(!store.disable_user(Uuid::new_v4(), 70).await.unwrap());
    let disabled = store.get_user(akua.id).await.unwrap().unwrap();
    assert_eq!(disabled.disabled_ms, Some(60));
    assert_eq!(
        UserRecord {
            disabled_ms: None,
            ..disabled
        },
        akua
    );
    assert_eq!(store.list_users().await.unwrap().len(), 4);
}

async fn sessions(store: Store) {
    let akua = user("akua@example.com", 1);
    let bo = user("bo@example.com", 1);
    store.create_user(&akua).await.unwrap();
    store.create_user(&bo).await.unwrap();
    let s1 = session(&akua, "aa11", 100, 1_000);
    let s2 = session(&akua, "bb22", 110, 2_000);
    let s3 = session(&bo, "cc33", 120, 3_000);
    for s in [&s1, &s2, &s3] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(
        store.get_session("aa11", 500).await.unwrap(),
        Some((s1.clone(), akua.clone()))
    );
    assert_eq!(
        store.get_session("cc33", 500).await.unwrap(),
        Some((s3.clone(), bo.clone()))
    );
    assert_eq!(store.get_session("AA11", 500).await.unwrap(), None);
    assert_eq!(store.get_session("", 500).await.unwrap(), None);
    assert_eq!(store.get_session("a\0", 500).await.unwrap(), None);

    // Token hashes are unique; a session needs its user.
    assert!(matches!(
        store.create_session(&session(&bo, "aa11", 1, 2)).await,
        Err(StoreError::Conflict(_))
    ));
    let ghost = user("ghost@example.com", 1);
    assert_not_found(
        store.create_session(&session(&ghost, "dd44", 1, 2)).await,
        &format!("user {}", ghost.id),
    );

    // Live while now < expires_ms.
    assert!(store.get_session("aa11", 999).await.unwrap().is_some());
    assert_eq!(store.get_session("aa11", 1_000).await.unwrap(), None);

    // Touching moves the expiry on and records the use, for live sessions only.
    assert!(store.touch_session("aa11", 900, 5_000).await.unwrap());
    let (touched, _) = store.get_session("aa11", 4_999).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_ms, 900);
    assert_eq!(touched.expires_ms, 5_000);
    assert_eq!(touched.created_ms, 100);
    assert_eq!(touched.csrf_token, s1.csrf_token);
    // An expired session cannot be revived; unknown ones are not created.
    assert!(!store.touch_session("bb22", 2_000, 9_000).await.unwrap());
    // (still stored, with its old expiry)
    assert_eq!(
        store.get_session("bb22", 1_999).await.unwrap(),
        Some((s2.clone(), akua.clone()))
    );
    assert!(!store.touch_session("zz99", 1, 9_000).await.unwrap());
    assert_eq!(store.get_session("zz99", 1).await.unwrap(), None);

    // Sign-out deletes one session.
    assert!(store.delete_session("cc33").await.unwrap());
    assert!(!store.delete_session("cc33").await.unwrap());
    assert_eq!(store.get_session("cc33", 500).await.unwrap(), None);
    assert!(store.get_session("aa11", 500).await.unwrap().is_some());

    // The sweep deletes what has expired by then, nothing else.
    assert_eq!(store.delete_expired_sessions(2_000).await.unwrap(), 1); // bb22
    assert_eq!(store.get_session("bb22", 1_500).await.unwrap(), None);
    assert!(store.get_session("aa11", 2_000).await.unwrap().is_some());
    assert_eq!(store.delete_expired_sessions(2_000).await.unwrap(), 0);

    // Disabling a user ends their sessions and refuses the ones that would follow.
    store
        .create_session(&session(&bo, "ee55", 3_000, 10_000))
        .await
        .unwrap();
    assert!(store.disable_user(bo.id, 3_500).await.unwrap());
    assert_eq!(store.get_session("ee55", 3_600).await.unwrap(), None);
    store
        .create_session(&session(&bo, "ff66", 3_700, 10_000))
        .await
        .unwrap();
    assert_eq!(store.get_session("ff66", 3_800).await.unwrap(), None);
    assert!(store.get_session("aa11", 3_800).await.unwrap().is_some());
}

#[track_caller]
fn assert_allowed(a: LoginAttempt) {
    assert!(matches!(a, LoginAttempt::Allowed { .. }), "{a:?}");
}

async fn login_limits(store: Store) {
    let t = T0;
    let min = 60_000;
    // Four failures of one e-mail from two addresses: allowed.
    for i in 0..4 {
        let addr = if i % 2 == 0 { "10.0.0.1" } else { "10.0.0.2" };
        assert_allowed(
            store
                .begin_login_attempt("akua@example.com", addr, t + i * min, LIMITS)
                .await
                .unwrap(),
        );
    }
    // The fifth is allowed (and counts), the sixth refused until the first leaves the window.
    assert_allowed(
        store
            .begin_login_attempt("akua@example.com", "10.0.0.3", t + 4 * min, LIMITS)
            .await
            .unwrap(),
    );
    assert_eq!(
        store
            .begin_login_attempt("akua@example.com", "10.0.0.4", t + 5 * min, LIMITS)
            .await
            .unwrap(),
        LoginAttempt::Refused {
            retry_after_ms: 10 * min
        }
    );
    // A refusal records nothing: the wait does not grow.
    assert_eq!(
        store
            .begin_login_attempt("akua@example.com", "10.0.0.4", t + 6 * min, LIMITS)
            .await
            .unwrap(),
        LoginAttempt::Refused {
            retry_after_ms: 9 * min
        }
    );
    // Exactly one window after the first attempt, it no longer counts.
    assert_allowed(
        store
            .begin_login_attempt("akua@example.com", "10.0.0.4", t + 15 * min, LIMITS)
            .await
            .unwrap(),
    );
    assert!(matches!(
        store
            .begin_login_attempt("akua@example.com", "10.0.0.4", t + 15 * min, LIMITS)
            .await
            .unwrap(),
        LoginAttempt::Refused { .. }
    ));
    // Other e-mails are not affected (10.0.0.4 has one attempt so far).
    assert_allowed(
        store
            .begin_login_attempt("bo@example.com", "10.0.0.4", t + 15 * min, LIMITS)
            .await
            .unwrap(),
    );

    // A success clears the e-mail's attempts, from every address.
    assert_eq!(
        store
            .clear_login_attempts("akua@example.com")
            .await
            .unwrap(),
        6
    );
    assert_eq!(
        store
            .clear_login_attempts("akua@example.com")
            .await
            .unwrap(),
        0
    );
    assert_allowed(
        store
            .begin_login_attempt("akua@example.com", "10.0.0.1", t + 16 * min, LIMITS)
            .await
            .unwrap(),
    );

    // Per address: eight attempts with different e-mails, then refused for any e-mail.
    for i in 0..8 {
        assert_allowed(
            store
                .begin_login_attempt(&format!("u{i}@example.com"), "10.9.9.9", t + i, LIMITS)
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        store
            .begin_login_attempt("new@example.com", "10.9.9.9", t + 100, LIMITS)
            .await
            .unwrap(),
        LoginAttempt::Refused {
            retry_after_ms: 15 * min - 100
        }
    );
    // Clearing one of those e-mails frees one slot of the address.
    store.clear_login_attempts("u3@example.com").await.unwrap();
    assert_allowed(
        store
            .begin_login_attempt("new@example.com", "10.9.9.9", t + 100, LIMITS)
            .await
            .unwrap(),
    );
    // NUL in either is refused on both backends (PostgreSQL cannot store it).
    assert!(matches!(
        store
            .begin_login_attempt("a\0", "10.0.0.1", t, LIMITS)
            .await
            .unwrap(),
        LoginAttempt::Refused { .. }
    ));
    assert_eq!(store.clear_login_attempts("a\0").await.unwrap(), 0);

    // Pruning deletes attempts at or before the instant.
    let pruned = store.prune_login_attempts(t + 7).await.unwrap();
    assert_eq!(pruned, 7); // u0..u7 at t+0..t+7, less the cleared u3
    assert_eq!(store.prune_login_attempts(t + 7).await.unwrap(), 0);
    assert_allowed(
        store
            .begin_login_attempt("new2@example.com", "10.9.9.9", t + 200, LIMITS)
            .await
            .unwrap(),
    );
}

async fn concurrent_login_attempts(store: Store) {
    // Twenty simultaneous attempts for one e-mail: exactly the limit gets through.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .begin_login_attempt("akua@example.com", &format!("10.0.0.{i}"), T0, LIMITS)
                .await
                .unwrap()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), LoginAttempt::Allowed { .. }) {
            allowed += 1;
        }
    }
    assert_eq!(allowed, LIMITS.max_per_email);
}

/// One transaction for several callers' writes: each start, each group of changes and the
/// events get their own results (a later group sees what an earlier one wrote); a failing
/// part writes nothing of the others.
/// The group commit and the job claim keep the SQLite writer connection between their
/// transactions; every other write must still get it at once, whether the connection is
/// idle or in use, and while they keep coming. A write left waiting would fail after the
/// pool's 30 s acquire timeout: each step here has 10 s.
async fn grouped_and_single_writes_interleave(store: Store) {
    use std::time::Duration;
    const LIMIT: Duration = Duration::from_secs(10);
    let start = |alias: &str| {
        let e = engagement(ACCT, alias, T0, None);
        NewEngagement {
            pages: vec![page(&e, alias, None, T0)],
            jobs: vec![JobRecord::new("page.send", "{}", T0, T0)],
            engagement: e,
            idem: None,
        }
    };
    // Idle: a group commit, then a single write.
    let first = start("ana");
    let batch = WriteBatch {
        starts: vec![&first],
        ..WriteBatch::default()
    };
    tokio::time::timeout(LIMIT, store.write_batch(&batch))
        .await
        .expect("group commit in time")
        .unwrap();
    tokio::time::timeout(
        LIMIT,
        store.insert_access_key(&key("AKIAINTERLEAVEFIRST0", ACCT, T0)),
    )
    .await
    .expect("a single write after a group commit, in time")
    .unwrap();
    // Busy: group commits and claims back to back while single writes come in.
    let grouped = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                let s = start(&format!("bo{i}"));
                let batch = WriteBatch {
                    starts: vec![&s],
                    ..WriteBatch::default()
                };
                store.write_batch(&batch).await.unwrap();
                store
                    .claim_jobs_due_by("w1", T0, T0, 30_000, 5)
                    .await
                    .unwrap();
            }
        })
    };
    for i in 0..20 {
        let id = format!("AKIAINTERLEAVE{i:06}");
        tokio::time::timeout(LIMIT, store.insert_access_key(&key(&id, ACCT, T0 + 1)))
            .await
            .expect("a single write among group commits, in time")
            .unwrap();
    }
    tokio::time::timeout(LIMIT, grouped)
        .await
        .expect("group commits in time")
        .unwrap();
    assert_eq!(store.count_running_engagements().await.unwrap(), 41);
    let keys = store.list_access_keys(Some(ACCT)).await.unwrap();
    assert_eq!(keys.len(), 21);
    // Every send job was claimed once, by w1.
    assert_eq!(
        store
            .claim_jobs_due_by("w2", T0, T0, 30_000, 100)
            .await
            .unwrap()
            .len(),
        0
    );
}

async fn write_batches_group_writes(store: Store) {
    let e = engagement(ACCT, "ana", T0, None);
    store
        .start_engagement(&e, &[], &[step(&e, 1, T0 + 60_000)], None)
        .await
        .unwrap();
    let p = page(&e, "ana", None, T0);
    store
        .change_engagement(&EngagementChange {
            id: e.id,
            expected_generation: 1,
            state: "{}".into(),
            pages: vec![p.clone()],
            next_step: Some(step(&e, 2, T0 + 60_000)),
            ..Default::default()
        })
        .await
        .unwrap();
    let fresh = engagement(ACCT, "bo", T0, None);
    let fresh_page = page(&fresh, "bo", None, T0);
    let start = NewEngagement {
        engagement: fresh.clone(),
        pages: vec![fresh_page.clone()],
        jobs: vec![step(&fresh, 1, T0 + 1)],
        idem: None,
    };
    let change = |g: i64| EngagementChange {
        id: e.id,
        expected_generation: g,
        state: format!("{{\"g\":{g}}}"),
        next_step: Some(step(&e, g + 1, T0 + 60_000)),
        ..Default::default()
    };
    let first = [change(2), change(7)];
    let second = [change(3)];
    let events = PageEvents {
        receipts: vec![receipt(&p, "SENT", T0 + 5)],
        times: vec![PageTime::Sent(p.id, T0 + 5)],
        ..Default::default()
    };
    let done = store
        .write_batch(&WriteBatch {
            starts: vec![&start],
            changes: vec![&first, &second],
            events: vec![&events],
        })
        .await
        .unwrap();
    assert_eq!(done.starts.len(), 1);
    assert_eq!(done.starts[0].as_ref().unwrap(), &Created::New);
    assert_eq!(done.changes, [vec![true, false], vec![true]]);
    assert_eq!(
        store.get_page_by_id(fresh_page.id).await.unwrap(),
        Some(fresh_page)
    );
    let now = store.get_engagement(ACCT, e.id).await.unwrap().unwrap();
    assert_eq!((now.generation, now.state.as_str()), (4, "{\"g\":3}"));
    let got = store.get_page_by_id(p.id).await.unwrap().unwrap();
    assert_eq!(got.sent_ms, Some(T0 + 5));
    let receipts = store.list_receipts(p.id, &After::Start, 10).await.unwrap();
    assert_eq!(receipts.len(), 1);

    // A start with a taken id fails the batch: the change and the events are not written.
    let retaken = NewEngagement {
        engagement: fresh.clone(),
        pages: vec![],
        jobs: vec![],
        idem: None,
    };
    let later = [change(4)];
    let more = PageEvents {
        receipts: vec![receipt(&p, "DELIVERED", T0 + 9)],
        ..Default::default()
    };
    assert!(
        store
            .write_batch(&WriteBatch {
                starts: vec![&retaken],
                changes: vec![&later],
                events: vec![&more],
            })
            .await
            .is_err()
    );
    let now = store.get_engagement(ACCT, e.id).await.unwrap().unwrap();
    assert_eq!(now.generation, 4, "the change was rolled back");
    assert_eq!(
        store
            .list_receipts(p.id, &After::Start, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

// ---- limits across channels, address changes, inbound ids ------------------------------

fn assert_too_many_sends_to<T: std::fmt::Debug>(
    r: Result<T, StoreError>,
    scope: SendScope,
    retry_after_ms: i64,
) {
    match r {
        Err(StoreError::TooManySendsTo {
            scope: got_scope,
            retry_after_ms: got,
        }) => assert_eq!((got_scope, got), (scope, retry_after_ms)),
        other => panic!("expected TooManySendsTo({scope:?}, {retry_after_ms}), got {other:?}"),
    }
}

async fn activation_limits_across_channels(store: Store) {
    const PHONE: &str = "+12065550100";
    let limits = CodeSendLimits {
        per_channel: 10,
        per_address: 3,
        per_account: 5,
        window_ms: HOUR,
    };
    let mine = with_channels(
        &store,
        ACCT,
        "akua",
        &[
            ("a", ChannelType::Sms, PHONE),
            ("b", ChannelType::Voice, PHONE),
            ("c", ChannelType::Sms, PHONE),
            ("m1", ChannelType::Email, "m1@example.com"),
            ("m2", ChannelType::Email, "m2@example.com"),
            ("m3", ChannelType::Email, "m3@example.com"),
            ("m4", ChannelType::Email, "m4@example.com"),
        ],
    )
    .await;
    let theirs = with_channels(
        &store,
        OTHER,
        "bo",
        &[
            ("p", ChannelType::Sms, PHONE),
            ("q", ChannelType::Email, "q@example.com"),
        ],
    )
    .await;
    let send = |ch: &ChannelRecord, hash: &'static str, now: i64| {
        let (store, ch, limits) = (store.clone(), ch.clone(), limits);
        async move {
            store
                .issue_activation_code_to(
                    &ch.account,
                    &code(ch.id, hash, now),
                    Some(&ch.address),
                    now,
                    &limits,
                )
                .await
        }
    };
    // Three codes to one number, from two channels of one account and one of another.
    send(&mine[0], "a", T0).await.unwrap();
    send(&mine[1], "b", T0 + 1).await.unwrap();
    send(&theirs[0], "p", T0 + 2).await.unwrap();
    // A fourth, from a channel that has sent nothing, is refused until the first leaves.
    assert_too_many_sends_to(
        send(&mine[2], "c", T0 + 3).await,
        SendScope::Address,
        HOUR - 3,
    );
    assert_too_many_sends_to(
        send(&theirs[0], "p2", T0 + 3).await,
        SendScope::Address,
        HOUR - 3,
    );
    assert_eq!(
        store.get_activation_code(ACCT, mine[2].id).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .get_activation_code(OTHER, theirs[0].id)
            .await
            .unwrap()
            .unwrap()
            .code_hash,
        "p",
        "a refused code changes nothing"
    );
    // Deleting a channel does not give its sends back.
    assert!(store.delete_channel(ACCT, mine[1].id).await.unwrap());
    assert_too_many_sends_to(
        send(&mine[2], "c", T0 + 4).await,
        SendScope::Address,
        HOUR - 4,
    );
    // The per-channel limit is still checked first (and answered as before).
    let tight = CodeSendLimits {
        per_channel: 1,
        ..limits
    };
    assert_too_many_sends(
        store
            .issue_activation_code_to(
                ACCT,
                &code(mine[0].id, "x", T0 + 5),
                Some(PHONE),
                T0 + 5,
                &tight,
            )
            .await,
        HOUR - 5,
    );

    // The account: two sends so far; three more to other addresses make five, the sixth is
    // refused, and another account is not affected.
    send(&mine[3], "m1", T0 + 10).await.unwrap();
    send(&mine[4], "m2", T0 + 11).await.unwrap();
    send(&mine[5], "m3", T0 + 12).await.unwrap();
    assert_too_many_sends_to(
        send(&mine[6], "m4", T0 + 13).await,
        SendScope::Account,
        HOUR - 13,
    );
    assert_eq!(
        store.get_activation_code(ACCT, mine[6].id).await.unwrap(),
        None
    );
    send(&theirs[1], "q", T0 + 13).await.unwrap();

    // Both sides of the window's end: at T0 + HOUR the first send (T0) no longer counts.
    assert_too_many_sends_to(
        send(&mine[2], "c", T0 + HOUR - 1).await,
        SendScope::Address,
        1,
    );
    send(&mine[2], "c", T0 + HOUR).await.unwrap();
    // The account's first send (T0) left too: five again (T0+1 ... T0+12 and T0+HOUR).
    assert_too_many_sends_to(send(&mine[6], "m4", T0 + HOUR).await, SendScope::Account, 1);
    send(&mine[6], "m4", T0 + HOUR + 1).await.unwrap();

    // A code is issued only for the address the caller will send it to.
    let moved = store
        .issue_activation_code_to(
            ACCT,
            &code(mine[3].id, "elsewhere", T0 + 2 * HOUR),
            Some("m1@elsewhere.example.com"),
            T0 + 2 * HOUR,
            &limits,
        )
        .await;
    assert!(
        matches!(moved, Err(StoreError::AddressChanged)),
        "{moved:?}"
    );
    assert_eq!(
        store
            .get_activation_code(ACCT, mine[3].id)
            .await
            .unwrap()
            .unwrap()
            .code_hash,
        "m1"
    );
    // Concurrent sends to one address from many channels: exactly the limit gets through.
    let many = with_channels(
        &store,
        ACCT,
        "kofi",
        &[
            ("1", ChannelType::Sms, "+12065550177"),
            ("2", ChannelType::Sms, "+12065550177"),
            ("3", ChannelType::Sms, "+12065550177"),
            ("4", ChannelType::Sms, "+12065550177"),
            ("5", ChannelType::Sms, "+12065550177"),
            ("6", ChannelType::Voice, "+12065550177"),
        ],
    )
    .await;
    let later = T0 + 5 * HOUR;
    let tasks: Vec<_> = many
        .iter()
        .enumerate()
        .map(|(i, ch)| tokio::spawn(send(ch, "race", later + i as i64)))
        .collect();
    let mut sent = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => sent += 1,
            Err(StoreError::TooManySendsTo {
                scope: SendScope::Address,
                ..
            }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(sent, 3);
}

async fn address_change_voids_the_code(store: Store) {
    let chans = with_channels(
        &store,
        ACCT,
        "akua",
        &[
            ("phone", ChannelType::Sms, "+12065550100"),
            ("voice", ChannelType::Voice, "+12065550100"),
        ],
    )
    .await;
    let (ch, other) = (&chans[0], &chans[1]);
    for c in [ch, other] {
        store
            .issue_activation_code(ACCT, &code(c.id, "old", T0 + 10), T0 + 10, 5, HOUR)
            .await
            .unwrap();
    }
    // A rename keeps the code.
    let mut renamed = ch.clone();
    renamed.name = "cell".into();
    renamed.updated_ms = T0 + 20;
    assert!(store.update_channel(&renamed).await.unwrap());
    assert!(
        store
            .get_activation_code(ACCT, ch.id)
            .await
            .unwrap()
            .is_some()
    );
    // A new address voids it, with the change; the other channel's code stays.
    let mut moved = renamed.clone();
    moved.address = "+12065550199".into();
    moved.updated_ms = T0 + 30;
    assert!(store.update_channel(&moved).await.unwrap());
    assert_eq!(
        store.get_channel(ACCT, ch.id).await.unwrap(),
        Some(moved.clone())
    );
    assert_eq!(store.get_activation_code(ACCT, ch.id).await.unwrap(), None);
    assert!(
        !store
            .consume_activation_code(ACCT, ch.id, "old", T0 + 31, 5)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_activation_code(ACCT, other.id)
            .await
            .unwrap()
            .is_some()
    );
    // A code for the old address is refused; one for the new address is issued.
    let limits = CodeSendLimits {
        per_channel: 5,
        per_address: 5,
        per_account: 50,
        window_ms: HOUR,
    };
    let stale = store
        .issue_activation_code_to(
            ACCT,
            &code(ch.id, "late", T0 + 40),
            Some("+12065550100"),
            T0 + 40,
            &limits,
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::AddressChanged)),
        "{stale:?}"
    );
    assert_eq!(store.get_activation_code(ACCT, ch.id).await.unwrap(), None);
    store
        .issue_activation_code_to(
            ACCT,
            &code(ch.id, "new", T0 + 41),
            Some("+12065550199"),
            T0 + 41,
            &limits,
        )
        .await
        .unwrap();
    assert!(
        store
            .consume_activation_code(ACCT, ch.id, "new", T0 + 42, 5)
            .await
            .unwrap()
    );
    // Another account cannot move the channel (nor void its code).
    store
        .issue_activation_code(ACCT, &code(other.id, "kept", T0 + 50), T0 + 50, 5, HOUR)
        .await
        .unwrap();
    let mut foreign = other.clone();
    foreign.account = OTHER.into();
    foreign.address = "+12065550111".into();
    assert!(!store.update_channel(&foreign).await.unwrap());
    assert_eq!(
        store
            .get_activation_code(ACCT, other.id)
            .await
            .unwrap()
            .unwrap()
            .code_hash,
        "kept"
    );
}

async fn inbound_message_ids(store: Store) {
    // First receipt acts; a replay does not; another id does.
    assert!(
        store
            .claim_inbound("twilio-sms:SM1", T0, DAY)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_inbound("twilio-sms:SM1", T0 + 1, DAY)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_inbound("twilio-sms:SM2", T0 + 2, DAY)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_inbound("twilio-status:SM1:DELIVERED", T0 + 2, DAY)
            .await
            .unwrap()
    );
    // Remembered for the retention after the first receipt (replays do not extend it), and
    // not longer.
    assert!(
        !store
            .claim_inbound("twilio-sms:SM1", T0 + DAY - 1, DAY)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_inbound("twilio-sms:SM1", T0 + DAY, DAY)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_inbound("twilio-sms:SM1", T0 + DAY + 1, DAY)
            .await
            .unwrap()
    );
    // Released (its handling failed): the retry acts.
    store.release_inbound("twilio-sms:SM2").await.unwrap();
    assert!(
        store
            .claim_inbound("twilio-sms:SM2", T0 + 3, DAY)
            .await
            .unwrap()
    );
    store.release_inbound("never-claimed").await.unwrap();
    // Any text, NUL included, is a key.
    assert!(
        store
            .claim_inbound("email:a\0b", T0 + 4, DAY)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_inbound("email:a\0b", T0 + 5, DAY)
            .await
            .unwrap()
    );
    // Concurrent claims of one key: exactly one acts.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_inbound("twilio-sms:SM3", T0 + 10 + i, DAY)
                    .await
            })
        })
        .collect();
    let mut acted = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            acted += 1;
        }
    }
    assert_eq!(acted, 1);
}

// ---- incidents: response plans, incident records, timeline, related items, replication
// ---- set, resource policies -------------------------------------------------------------

fn response_plan(account: &str, name: &str, ms: i64) -> ResponsePlanRecord {
    ResponsePlanRecord {
        account: account.into(),
        name: name.into(),
        plan: format!(r#"{{"displayName":"{name}"}}"#),
        created_ms: ms,
        updated_ms: ms,
    }
}

/// An OPEN incident of `plan` with the dedupe hash `hash`, version 1.
fn incident(account: &str, plan: &str, hash: &str, ms: i64) -> IncidentRow {
    IncidentRow {
        id: Uuid::new_v4(),
        account: account.into(),
        plan_name: plan.into(),
        title: format!("title {hash}"),
        impact: 3,
        status: "OPEN".into(),
        dedupe_string: format!("dedupe {hash}"),
        dedupe_hash: hash.into(),
        created_by: "arn:aws:iam::111122223333:user/ops".into(),
        created_ms: ms,
        updated_ms: ms,
        updated_by: "arn:aws:iam::111122223333:user/ops".into(),
        resolved_ms: None,
        version: 1,
        details: r#"{"summary":"s"}"#.into(),
    }
}

/// The ARN the design names for an incident (computed here, not by `IncidentRow::arn`).
fn incident_arn_of(i: &IncidentRow) -> String {
    format!(
        "arn:aws:ssm-incidents::{}:incident-record/{}/{}",
        i.account, i.plan_name, i.id
    )
}

fn timeline_event(incident_id: Uuid, time_ms: i64, event_type: &str) -> TimelineEventRecord {
    TimelineEventRecord {
        incident_id,
        id: Uuid::new_v4(),
        event_time_ms: time_ms,
        updated_ms: time_ms,
        event_type: event_type.into(),
        data: format!(r#"{{"at":{time_ms}}}"#),
        refs: "[]".into(),
    }
}

fn related_item(incident_id: Uuid, identity: &str, ms: i64) -> RelatedItemRecord {
    RelatedItemRecord {
        incident_id,
        identity: identity.into(),
        item: format!(r#"{{"identity":"{identity}","at":{ms}}}"#),
        created_ms: ms,
    }
}

/// Starting `i` alone: no tags, events, items, engagements or token.
fn bare_start(i: &IncidentRow) -> NewIncident {
    NewIncident {
        only_if_duplicate: false,
        incident: i.clone(),
        tags: vec![],
        events: vec![],
        items: vec![],
        engagements: vec![],
        idem: None,
        on_duplicate: vec![],
        duplicate_items: vec![],
        alert: None,
        alert_on_duplicate: None,
        alert_members: vec![],
    }
}

/// An engagement of `alias` for the incident, with one page and one step job.
fn incident_engagement(i: &IncidentRow, alias: &str) -> NewEngagement {
    let e = engagement(&i.account, alias, i.created_ms, Some(&incident_arn_of(i)));
    NewEngagement {
        pages: vec![page(&e, alias, Some(Uuid::new_v4()), i.created_ms)],
        jobs: vec![step(&e, 1, i.created_ms + 60_000)],
        engagement: e,
        idem: None,
    }
}

fn incident_ids(v: &[IncidentRow]) -> Vec<Uuid> {
    v.iter().map(|i| i.id).collect()
}

/// The events by event time, then id (as the store promises to list them).
fn by_event_time(mut v: Vec<TimelineEventRecord>) -> Vec<TimelineEventRecord> {
    v.sort_by_key(|e| (e.event_time_ms, e.id));
    v
}

async fn plan_names(store: &Store, account: &str, after: Option<&str>, limit: u32) -> Vec<String> {
    store
        .list_response_plans(account, after, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// Response plans: create with tags, read, list by name (code-point order) with `after`,
/// update, delete (with its tags, never its incidents), per account.
async fn response_plans(store: Store) {
    let beta = response_plan(ACCT, "beta", T0);
    assert_eq!(
        store
            .create_response_plan(&beta, &[tag("team", "a"), tag("tier", "1")], None)
            .await
            .unwrap(),
        Created::New
    );
    assert_eq!(
        store.get_response_plan(ACCT, "beta").await.unwrap(),
        Some(beta.clone())
    );
    assert_eq!(store.get_response_plan(OTHER, "beta").await.unwrap(), None);
    assert_eq!(store.get_response_plan(ACCT, "Beta").await.unwrap(), None);
    assert_eq!(
        store.list_tags(ACCT, "response-plan/beta").await.unwrap(),
        [tag("team", "a"), tag("tier", "1")]
    );
    for name in ["gamma", "Zulu", "alpha"] {
        store
            .create_response_plan(&response_plan(ACCT, name, T0 + 1), &[], None)
            .await
            .unwrap();
    }
    let other_beta = response_plan(OTHER, "beta", T0 + 2);
    // The same name in another account is another plan.
    store
        .create_response_plan(&other_beta, &[tag("team", "o")], None)
        .await
        .unwrap();
    store
        .create_response_plan(&response_plan(OTHER, "delta", T0 + 2), &[], None)
        .await
        .unwrap();

    // Code-point order: upper case before lower case.
    assert_eq!(
        plan_names(&store, ACCT, None, 10).await,
        ["Zulu", "alpha", "beta", "gamma"]
    );
    assert_eq!(plan_names(&store, ACCT, None, 2).await, ["Zulu", "alpha"]);
    assert_eq!(
        plan_names(&store, ACCT, Some("alpha"), 2).await,
        ["beta", "gamma"]
    );
    // `after` need not name a plan.
    assert_eq!(
        plan_names(&store, ACCT, Some("b"), 10).await,
        ["beta", "gamma"]
    );
    assert!(plan_names(&store, ACCT, Some("gamma"), 10).await.is_empty());
    assert_eq!(plan_names(&store, OTHER, None, 10).await, ["beta", "delta"]);

    // A taken name is a conflict and changes nothing.
    let mut clash = response_plan(ACCT, "beta", T0 + 5);
    clash.plan = r#"{"displayName":"clash"}"#.into();
    assert_conflict(
        store
            .create_response_plan(&clash, &[tag("team", "clash")], None)
            .await,
        "response plan beta exists",
    );
    assert_eq!(
        store.get_response_plan(ACCT, "beta").await.unwrap(),
        Some(beta.clone())
    );
    assert_eq!(
        store.list_tags(ACCT, "response-plan/beta").await.unwrap(),
        [tag("team", "a"), tag("tier", "1")]
    );

    // Update: the document and its time; the creation time stays.
    let changed = ResponsePlanRecord {
        plan: r#"{"displayName":"beta v2"}"#.into(),
        created_ms: T0 + 999,
        updated_ms: T0 + 10,
        ..beta.clone()
    };
    assert!(store.update_response_plan(&changed).await.unwrap());
    assert_eq!(
        store.get_response_plan(ACCT, "beta").await.unwrap(),
        Some(ResponsePlanRecord {
            created_ms: T0,
            ..changed.clone()
        })
    );
    assert_eq!(
        store.get_response_plan(OTHER, "beta").await.unwrap(),
        Some(other_beta.clone()),
        "another account's plan of that name is untouched"
    );
    assert!(
        !store
            .update_response_plan(&response_plan(ACCT, "missing", T0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_response_plan(&response_plan(OTHER, "alpha", T0))
            .await
            .unwrap()
    );

    // Delete: the plan and its tags; its incidents stay.
    let started = incident(ACCT, "beta", "h-beta", T0 + 20);
    assert_eq!(
        store.start_incident(&bare_start(&started)).await.unwrap(),
        IncidentStart::New
    );
    assert!(store.delete_response_plan(ACCT, "beta").await.unwrap());
    assert_eq!(store.get_response_plan(ACCT, "beta").await.unwrap(), None);
    assert!(
        store
            .list_tags(ACCT, "response-plan/beta")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.get_incident(ACCT, started.id).await.unwrap(),
        Some(started.clone())
    );
    assert_eq!(
        plan_names(&store, ACCT, None, 10).await,
        ["Zulu", "alpha", "gamma"]
    );
    // The other account's plan of that name and its tags stay.
    assert_eq!(
        store.get_response_plan(OTHER, "beta").await.unwrap(),
        Some(other_beta)
    );
    assert_eq!(
        store.list_tags(OTHER, "response-plan/beta").await.unwrap(),
        [tag("team", "o")]
    );
    assert!(!store.delete_response_plan(ACCT, "beta").await.unwrap());
    assert!(!store.delete_response_plan(OTHER, "alpha").await.unwrap());
    // Names with NUL (which PostgreSQL cannot hold) name no plan, on both backends alike.
    assert_eq!(
        store.get_response_plan(ACCT, "alpha\0").await.unwrap(),
        None
    );
    assert!(
        !store
            .update_response_plan(&response_plan(ACCT, "alpha\0", T0))
            .await
            .unwrap()
    );
    assert!(!store.delete_response_plan(ACCT, "alpha\0").await.unwrap());
    assert!(plan_names(&store, ACCT, Some("a\0"), 10).await.is_empty());
    assert!(
        store
            .get_response_plan(ACCT, "alpha")
            .await
            .unwrap()
            .is_some()
    );
    // The name is free again.
    assert_eq!(
        store
            .create_response_plan(&response_plan(ACCT, "beta", T0 + 30), &[], None)
            .await
            .unwrap(),
        Created::New
    );
    assert!(
        store
            .list_tags(ACCT, "response-plan/beta")
            .await
            .unwrap()
            .is_empty()
    );
}

/// CreateResponsePlan's idempotency token: a replay answers the first result and writes
/// nothing; another request with the token is a mismatch; a failed create does not keep the
/// token.
async fn response_plan_idempotency(store: Store) {
    let first = response_plan(ACCT, "first", T0);
    let token = idem("CreateResponsePlan", "tok", "h1", "arn-plan-first");
    assert_eq!(
        store
            .create_response_plan(&first, &[tag("k", "v")], Some(&token))
            .await
            .unwrap(),
        Created::New
    );
    // The same request again (even the same name: no conflict), and the same token with
    // another plan: the stored result, nothing written.
    assert_eq!(
        store
            .create_response_plan(&first, &[tag("k", "again")], Some(&token))
            .await
            .unwrap(),
        Created::Replay("arn-plan-first".into())
    );
    let second = response_plan(ACCT, "second", T0 + 1);
    assert_eq!(
        store
            .create_response_plan(&second, &[tag("k", "v2")], Some(&token))
            .await
            .unwrap(),
        Created::Replay("arn-plan-first".into())
    );
    assert_eq!(store.get_response_plan(ACCT, "second").await.unwrap(), None);
    assert!(
        store
            .list_tags(ACCT, "response-plan/second")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_tags(ACCT, "response-plan/first").await.unwrap(),
        [tag("k", "v")]
    );
    assert_eq!(plan_names(&store, ACCT, None, 10).await, ["first"]);
    // The token with another request.
    let other = idem("CreateResponsePlan", "tok", "h2", "arn-plan-second");
    assert!(matches!(
        store.create_response_plan(&second, &[], Some(&other)).await,
        Err(StoreError::IdempotencyMismatch)
    ));
    assert_eq!(store.get_response_plan(ACCT, "second").await.unwrap(), None);
    // Tokens are per account: the same token in another account is new.
    assert_eq!(
        store
            .create_response_plan(&response_plan(OTHER, "second", T0), &[], Some(&other))
            .await
            .unwrap(),
        Created::New
    );
    // A create that fails (taken name) does not keep its token: it is new next time.
    let fresh = idem("CreateResponsePlan", "tok-2", "h3", "arn-3");
    assert_conflict(
        store
            .create_response_plan(&response_plan(ACCT, "first", T0 + 2), &[], Some(&fresh))
            .await,
        "response plan first exists",
    );
    assert_eq!(
        store
            .create_response_plan(&second, &[], Some(&fresh))
            .await
            .unwrap(),
        Created::New
    );
    assert_eq!(
        plan_names(&store, ACCT, None, 10).await,
        ["first", "second"]
    );
}

/// StartIncident writes the record, its tags, events, items and engagements (pages, jobs)
/// together; its token replays; a start with the dedupe hash of an OPEN incident of the
/// account adds to that one and writes nothing else.
/// A start prepared as a repeat (no engagements) writes only if an OPEN incident absorbs
/// it: with none, nothing is written and its token stays unused.
async fn incident_start_only_if_duplicate(store: Store) {
    let first = incident(ACCT, "plan-a", "h", T0);
    let token = idem("StartIncident", "tok", "h1", &first.arn());
    let repeat = NewIncident {
        only_if_duplicate: true,
        idem: Some(token.clone()),
        on_duplicate: vec![timeline_event(first.id, T0, "SSM Incident Trigger")],
        ..bare_start(&first)
    };
    assert_eq!(
        store.start_incident(&repeat).await.unwrap(),
        IncidentStart::NotDuplicate
    );
    assert_eq!(store.get_incident(ACCT, first.id).await.unwrap(), None);
    // The token was not used: a full start with it creates the incident.
    let full = NewIncident {
        only_if_duplicate: false,
        ..repeat.clone()
    };
    assert_eq!(
        store.start_incident(&full).await.unwrap(),
        IncidentStart::New
    );
    assert_eq!(
        store
            .open_incident_with_dedupe(ACCT, &first.dedupe_hash)
            .await
            .unwrap(),
        Some(first.clone())
    );
    // Now open: a repeat is absorbed.
    let second = incident(ACCT, "plan-a", "h", T0 + 5);
    let again = NewIncident {
        only_if_duplicate: true,
        on_duplicate: vec![timeline_event(second.id, T0 + 5, "SSM Incident Trigger")],
        ..bare_start(&second)
    };
    assert_eq!(
        store.start_incident(&again).await.unwrap(),
        IncidentStart::Duplicate(Box::new(first.clone()))
    );
    assert_eq!(store.list_timeline_events(first.id).await.unwrap().len(), 1);
}

async fn incident_start(store: Store) {
    let first = incident(ACCT, "plan-a", "h", T0);
    let first_arn = incident_arn_of(&first);
    assert_eq!(first.arn(), first_arn);
    assert_eq!(
        first.tag_resource(),
        format!("incident-record/plan-a/{}", first.id)
    );
    let trigger = timeline_event(first.id, T0, "SSM Incident Trigger");
    let start_event = timeline_event(first.id, T0, "SSM Incident Start");
    let items = vec![
        related_item(first.id, "z-first", T0),
        related_item(first.id, "a-second", T0),
    ];
    let paged = incident_engagement(&first, "ana");
    let token = idem("StartIncident", "tok", "h1", &first_arn);
    let start = NewIncident {
        only_if_duplicate: false,
        incident: first.clone(),
        tags: vec![tag("team", "a")],
        events: vec![trigger.clone(), start_event.clone()],
        items: items.clone(),
        engagements: vec![paged.clone()],
        idem: Some(token.clone()),
        // Only for a duplicate: not written for a new incident.
        on_duplicate: vec![timeline_event(first.id, T0 + 1, "SSM Incident Trigger")],
        duplicate_items: vec![related_item(first.id, "dup-only", T0)],
        alert: None,
        alert_on_duplicate: None,
        alert_members: vec![],
    };
    assert_eq!(
        store.start_incident(&start).await.unwrap(),
        IncidentStart::New
    );
    assert_eq!(
        store.get_incident(ACCT, first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.get_incident(OTHER, first.id).await.unwrap(), None);
    assert_eq!(
        store.list_tags(ACCT, &first.tag_resource()).await.unwrap(),
        [tag("team", "a")]
    );
    assert_eq!(
        store.list_timeline_events(first.id).await.unwrap(),
        by_event_time(vec![trigger.clone(), start_event.clone()])
    );
    assert_eq!(store.list_related_items(first.id).await.unwrap(), items);
    assert_eq!(
        store
            .get_engagement(ACCT, paged.engagement.id)
            .await
            .unwrap(),
        Some(paged.engagement.clone())
    );
    let engaged = store
        .list_engagements(ACCT, Some(&first_arn), None, &After::Start, 10)
        .await
        .unwrap();
    assert_eq!(engaged, std::slice::from_ref(&paged.engagement));
    assert_eq!(
        store.get_page(ACCT, paged.pages[0].id).await.unwrap(),
        Some(paged.pages[0].clone())
    );
    assert_eq!(store.count_jobs().await.unwrap(), 1);
    assert_eq!(store.count_running_engagements().await.unwrap(), 1);

    // The same token and request: the first result, nothing written (not even as a
    // duplicate: its hash differs, and a replay is answered before the dedupe check).
    let again = incident(ACCT, "plan-a", "h-again", T0 + 5);
    let replay = NewIncident {
        engagements: vec![incident_engagement(&again, "bo")],
        events: vec![timeline_event(again.id, T0 + 5, "SSM Incident Trigger")],
        idem: Some(token.clone()),
        ..bare_start(&again)
    };
    assert_eq!(
        store.start_incident(&replay).await.unwrap(),
        IncidentStart::Replay(first_arn.clone())
    );
    assert_eq!(store.get_incident(ACCT, again.id).await.unwrap(), None);
    assert!(
        store
            .list_timeline_events(again.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .get_engagement(ACCT, replay.engagements[0].engagement.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.count_jobs().await.unwrap(), 1);
    // The token with another request.
    let mismatch = NewIncident {
        idem: Some(idem("StartIncident", "tok", "h2", "arn-x")),
        ..bare_start(&again)
    };
    assert!(matches!(
        store.start_incident(&mismatch).await,
        Err(StoreError::IdempotencyMismatch)
    ));
    assert_eq!(store.get_incident(ACCT, again.id).await.unwrap(), None);

    // A duplicate: the same account and hash while `first` is OPEN.
    let second = incident(ACCT, "plan-b", "h", T0 + 10);
    let dup_trigger = timeline_event(second.id, T0 + 10, "SSM Incident Trigger");
    let dup_engagement = incident_engagement(&second, "cy");
    let dup_token = idem("StartIncident", "tok-dup", "h3", &incident_arn_of(&second));
    let changed_item = RelatedItemRecord {
        item: r#"{"changed":true}"#.into(),
        ..related_item(second.id, "z-first", T0 + 10)
    };
    let new_item = related_item(second.id, "m-new", T0 + 10);
    let duplicate = NewIncident {
        only_if_duplicate: false,
        incident: second.clone(),
        tags: vec![tag("team", "b")],
        events: vec![timeline_event(second.id, T0 + 10, "SSM Incident Start")],
        items: vec![related_item(second.id, "items-of-a-new-one", T0 + 10)],
        engagements: vec![dup_engagement.clone()],
        idem: Some(dup_token.clone()),
        on_duplicate: vec![dup_trigger.clone()],
        duplicate_items: vec![changed_item, new_item.clone()],
        alert: None,
        alert_on_duplicate: None,
        alert_members: vec![],
    };
    assert_eq!(
        store.start_incident(&duplicate).await.unwrap(),
        IncidentStart::Duplicate(Box::new(first.clone()))
    );
    // Nothing of the second incident exists.
    assert_eq!(store.get_incident(ACCT, second.id).await.unwrap(), None);
    assert!(
        store
            .list_tags(ACCT, &second.tag_resource())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_timeline_events(second.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_related_items(second.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .get_engagement(ACCT, dup_engagement.engagement.id)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .list_engagements(
                ACCT,
                Some(&incident_arn_of(&second)),
                None,
                &After::Start,
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.count_jobs().await.unwrap(), 1);
    assert_eq!(store.count_running_engagements().await.unwrap(), 1);
    // The first one got the duplicate's events (with its own id) and only the item it did
    // not have (the one it had keeps its content and place).
    let moved_trigger = TimelineEventRecord {
        incident_id: first.id,
        ..dup_trigger.clone()
    };
    assert_eq!(
        store.list_timeline_events(first.id).await.unwrap(),
        by_event_time(vec![trigger.clone(), start_event.clone(), moved_trigger])
    );
    let mut want_items = items.clone();
    want_items.push(RelatedItemRecord {
        incident_id: first.id,
        ..new_item
    });
    assert_eq!(
        store.list_related_items(first.id).await.unwrap(),
        want_items
    );
    assert_eq!(
        store.get_incident(ACCT, first.id).await.unwrap(),
        Some(first.clone()),
        "the record itself is unchanged"
    );
    // A replay of the duplicate's token answers the incident it was deduplicated to.
    assert_eq!(
        store.start_incident(&duplicate).await.unwrap(),
        IncidentStart::Replay(first_arn.clone())
    );
    assert_eq!(store.list_timeline_events(first.id).await.unwrap().len(), 3);
    assert_eq!(store.list_related_items(first.id).await.unwrap().len(), 3);

    // The same hash in another account is not a duplicate.
    let elsewhere = incident(OTHER, "plan-a", "h", T0 + 20);
    assert_eq!(
        store.start_incident(&bare_start(&elsewhere)).await.unwrap(),
        IncidentStart::New
    );
    assert_eq!(
        store.get_incident(OTHER, elsewhere.id).await.unwrap(),
        Some(elsewhere)
    );
    // A RESOLVED incident with a hash is not a duplicate of a new start with it.
    let resolved = IncidentRow {
        status: "RESOLVED".into(),
        resolved_ms: Some(T0 + 31),
        ..incident(ACCT, "plan-a", "h-resolved", T0 + 30)
    };
    assert_eq!(
        store.start_incident(&bare_start(&resolved)).await.unwrap(),
        IncidentStart::New
    );
    let reopened = incident(ACCT, "plan-a", "h-resolved", T0 + 32);
    let start_reopened = NewIncident {
        on_duplicate: vec![timeline_event(reopened.id, T0 + 32, "SSM Incident Trigger")],
        ..bare_start(&reopened)
    };
    assert_eq!(
        store.start_incident(&start_reopened).await.unwrap(),
        IncidentStart::New
    );
    assert_eq!(
        store.get_incident(ACCT, reopened.id).await.unwrap(),
        Some(reopened)
    );
    assert!(
        store
            .list_timeline_events(resolved.id)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Concurrent starts with one dedupe hash create exactly one incident; the others are its
/// duplicates (each adding its trigger event to it, starting nothing). Three rounds of
/// twenty, each with its own hash, so that a missing serialisation shows on most runs.
async fn concurrent_incident_dedupe(store: Store) {
    let mut winners = Vec::new();
    for round in 0..3_i64 {
        let hash = format!("same-{round}");
        // All twenty are built first and released together, so that they overlap.
        let go = std::sync::Arc::new(tokio::sync::Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|n| {
                let (store, go, hash) = (store.clone(), go.clone(), hash.clone());
                let ms = T0 + round * 1000 + n;
                tokio::spawn(async move {
                    let i = incident(ACCT, "plan", &hash, ms);
                    let start = NewIncident {
                        events: vec![timeline_event(i.id, ms, "SSM Incident Start")],
                        on_duplicate: vec![timeline_event(i.id, ms, "SSM Incident Trigger")],
                        engagements: vec![incident_engagement(&i, "ana")],
                        ..bare_start(&i)
                    };
                    go.wait().await;
                    (i.id, store.start_incident(&start).await)
                })
            })
            .collect();
        let mut new = Vec::new();
        let mut duplicates_of = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                (id, Ok(IncidentStart::New)) => new.push(id),
                (_, Ok(IncidentStart::Duplicate(of))) => duplicates_of.push(of.id),
                (_, other) => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!(new.len(), 1, "exactly one start creates the incident");
        let winner = new[0];
        assert_eq!(duplicates_of, vec![winner; 19]);
        let events = store.list_timeline_events(winner).await.unwrap();
        let count = |kind: &str| events.iter().filter(|e| e.event_type == kind).count();
        assert_eq!(count("SSM Incident Trigger"), 19);
        assert_eq!(count("SSM Incident Start"), 1);
        assert!(events.iter().all(|e| e.incident_id == winner));
        winners.push(winner);
        let open = IncidentFilter {
            statuses: Some(vec!["OPEN".into()]),
            ..IncidentFilter::default()
        };
        let listed = store
            .list_incidents(ACCT, &open, &After::Start, 100)
            .await
            .unwrap();
        let mut listed = incident_ids(&listed);
        listed.sort();
        let mut want = winners.clone();
        want.sort();
        assert_eq!(listed, want, "one incident per round");
        let started = i64::try_from(winners.len()).unwrap();
        assert_eq!(store.count_running_engagements().await.unwrap(), started);
        assert_eq!(store.count_jobs().await.unwrap(), started);
    }
}

/// UpdateIncidentRecord is fenced by the version; resolving frees the dedupe hash, and
/// reopening while another OPEN incident holds it is a conflict.
async fn incident_updates_are_fenced(store: Store) {
    let a = incident(ACCT, "plan", "h", T0);
    store.start_incident(&bare_start(&a)).await.unwrap();

    // The mutable columns are written; the others (as passed here) are not.
    let edited = IncidentRow {
        title: "new title".into(),
        impact: 1,
        updated_ms: T0 + 10,
        updated_by: "arn:aws:iam::111122223333:user/editor".into(),
        details: r#"{"summary":"edited"}"#.into(),
        created_by: "someone else".into(),
        created_ms: T0 + 999,
        dedupe_string: "changed".into(),
        ..a.clone()
    };
    let note = timeline_event(a.id, T0 + 10, "SSM Incident Record Update");
    assert!(
        store
            .update_incident(&edited, std::slice::from_ref(&note))
            .await
            .unwrap()
    );
    let v2 = IncidentRow {
        created_by: a.created_by.clone(),
        created_ms: a.created_ms,
        dedupe_string: a.dedupe_string.clone(),
        version: 2,
        ..edited.clone()
    };
    assert_eq!(
        store.get_incident(ACCT, a.id).await.unwrap(),
        Some(v2.clone())
    );
    assert_eq!(
        store.list_timeline_events(a.id).await.unwrap(),
        std::slice::from_ref(&note)
    );

    // A stale version (1): nothing written, not even its events.
    let stale = IncidentRow {
        title: "stale".into(),
        updated_ms: T0 + 20,
        ..a.clone()
    };
    let lost = timeline_event(a.id, T0 + 20, "SSM Incident Record Update");
    assert!(!store.update_incident(&stale, &[lost]).await.unwrap());
    assert_eq!(
        store.get_incident(ACCT, a.id).await.unwrap(),
        Some(v2.clone())
    );
    assert_eq!(store.list_timeline_events(a.id).await.unwrap().len(), 1);
    // A missing incident, or another account's: false.
    assert!(
        !store
            .update_incident(&incident(ACCT, "plan", "h-missing", T0), &[])
            .await
            .unwrap()
    );
    let foreign = IncidentRow {
        account: OTHER.into(),
        ..v2.clone()
    };
    assert!(!store.update_incident(&foreign, &[]).await.unwrap());
    assert_eq!(
        store.get_incident(ACCT, a.id).await.unwrap(),
        Some(v2.clone())
    );

    // Resolving frees the hash: a new start with it is a new incident.
    let resolved = IncidentRow {
        status: "RESOLVED".into(),
        resolved_ms: Some(T0 + 30),
        updated_ms: T0 + 30,
        ..v2.clone()
    };
    assert!(store.update_incident(&resolved, &[]).await.unwrap());
    let v3 = IncidentRow {
        version: 3,
        ..resolved.clone()
    };
    assert_eq!(
        store.get_incident(ACCT, a.id).await.unwrap(),
        Some(v3.clone())
    );
    let b = incident(ACCT, "plan", "h", T0 + 40);
    assert_eq!(
        store.start_incident(&bare_start(&b)).await.unwrap(),
        IncidentStart::New
    );

    // Reopening `a` while `b` is OPEN with the hash: a conflict, nothing written.
    let reopen = IncidentRow {
        status: "OPEN".into(),
        resolved_ms: None,
        updated_ms: T0 + 50,
        ..v3.clone()
    };
    let reopen_event = timeline_event(a.id, T0 + 50, "SSM Incident Record Update");
    assert_conflict(
        store
            .update_incident(&reopen, std::slice::from_ref(&reopen_event))
            .await,
        "another open incident has this incident's dedupe string",
    );
    assert_eq!(
        store.get_incident(ACCT, a.id).await.unwrap(),
        Some(v3.clone())
    );
    assert_eq!(store.list_timeline_events(a.id).await.unwrap().len(), 1);

    // Once `b` is resolved, `a` reopens, and starts with the hash are its duplicates.
    let b_resolved = IncidentRow {
        status: "RESOLVED".into(),
        resolved_ms: Some(T0 + 60),
        ..b.clone()
    };
    assert!(store.update_incident(&b_resolved, &[]).await.unwrap());
    assert!(
        store
            .update_incident(&reopen, std::slice::from_ref(&reopen_event))
            .await
            .unwrap()
    );
    let v4 = IncidentRow {
        version: 4,
        ..reopen.clone()
    };
    assert_eq!(
        store.get_incident(ACCT, a.id).await.unwrap(),
        Some(v4.clone())
    );
    assert_eq!(store.list_timeline_events(a.id).await.unwrap().len(), 2);
    let c = incident(ACCT, "plan", "h", T0 + 70);
    assert_eq!(
        store.start_incident(&bare_start(&c)).await.unwrap(),
        IncidentStart::Duplicate(Box::new(v4))
    );
}

/// ListIncidentRecords: newest first (creation time, then id, descending), resumable with a
/// cursor inside a tie of creation times, per account.
async fn incident_listing(store: Store) {
    // Created at T0 + 0 s, 1 s, ... 6 s, and three at T0 + 3 s (the id breaks the tie).
    let mut all: Vec<IncidentRow> = (0..7)
        .map(|n| incident(ACCT, "plan", &format!("h{n}"), T0 + n * 1000))
        .chain((0..2).map(|n| incident(ACCT, "plan", &format!("tie{n}"), T0 + 3000)))
        .collect();
    // Started in ascending (time, id) order, the opposite of the listing's: an order that
    // fell back on insertion order would show.
    all.sort_by_key(|i| (i.created_ms, i.id));
    for i in &all {
        store.start_incident(&bare_start(i)).await.unwrap();
    }
    store
        .start_incident(&bare_start(&incident(OTHER, "plan", "h0", T0)))
        .await
        .unwrap();
    all.sort_by_key(|i| std::cmp::Reverse((i.created_ms, i.id)));
    let created: Vec<i64> = all.iter().map(|i| i.created_ms).collect();
    assert_eq!(
        created,
        [6000, 5000, 4000, 3000, 3000, 3000, 2000, 1000, 0].map(|d| T0 + d)
    );
    let everything = store
        .list_incidents(ACCT, &IncidentFilter::default(), &After::Start, 100)
        .await
        .unwrap();
    assert_eq!(everything, all);
    // Pages of 2 (so that a page ends inside the tie).
    let mut seen = Vec::new();
    let mut after = After::Start;
    loop {
        let page = store
            .list_incidents(ACCT, &IncidentFilter::default(), &after, 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = After::Created {
            ms: last.created_ms,
            id: last.id,
        };
        seen.extend(incident_ids(&page));
    }
    assert_eq!(seen, incident_ids(&all));
    // Resuming after the first of the tie lists the rest of it, then older ones; a newer
    // incident started meanwhile does not appear after the cursor.
    let cursor = After::Created {
        ms: all[3].created_ms,
        id: all[3].id,
    };
    let rest = store
        .list_incidents(ACCT, &IncidentFilter::default(), &cursor, 100)
        .await
        .unwrap();
    assert_eq!(incident_ids(&rest), incident_ids(&all[4..]));
    store
        .start_incident(&bare_start(&incident(ACCT, "plan", "newer", T0 + 10_000)))
        .await
        .unwrap();
    let rest = store
        .list_incidents(ACCT, &IncidentFilter::default(), &cursor, 100)
        .await
        .unwrap();
    assert_eq!(incident_ids(&rest), incident_ids(&all[4..]));
    assert!(matches!(
        store
            .list_incidents(
                ACCT,
                &IncidentFilter::default(),
                &After::Alias("x".into()),
                10
            )
            .await,
        Err(StoreError::Corrupt(_))
    ));
}

/// ListIncidentRecords' filters: each one alone (with the time bounds inclusive, tried one
/// millisecond either side), combined, and empty lists (which match nothing).
async fn incident_filters(store: Store) {
    let with =
        |hash: &str, status: &str, impact: i64, by: &str, created: i64, resolved| IncidentRow {
            status: status.into(),
            impact,
            created_by: by.into(),
            resolved_ms: resolved,
            ..incident(ACCT, "plan", hash, T0 + created)
        };
    let a = with("a", "OPEN", 1, "alice", 0, None);
    let b = with("b", "RESOLVED", 2, "bob", 1000, Some(T0 + 5000));
    let c = with("c", "RESOLVED", 3, "alice", 2000, Some(T0 + 6000));
    let d = with("d", "OPEN", 2, "carol", 3000, None);
    for i in [&a, &b, &c, &d] {
        store.start_incident(&bare_start(i)).await.unwrap();
    }
    // Another account's incident matches every filter below but is never listed.
    store
        .start_incident(&bare_start(&IncidentRow {
            status: "RESOLVED".into(),
            impact: 2,
            created_by: "alice".into(),
            resolved_ms: Some(T0 + 5000),
            ..incident(OTHER, "plan", "b", T0 + 1000)
        }))
        .await
        .unwrap();
    let list = |f: IncidentFilter| {
        let store = store.clone();
        async move {
            incident_ids(
                &store
                    .list_incidents(ACCT, &f, &After::Start, 100)
                    .await
                    .unwrap(),
            )
        }
    };
    let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let none = IncidentFilter::default;
    assert_eq!(list(none()).await, [d.id, c.id, b.id, a.id]);

    // Statuses.
    let by_status = |v: &[&str]| IncidentFilter {
        statuses: strings(v),
        ..none()
    };
    assert_eq!(list(by_status(&["OPEN"])).await, [d.id, a.id]);
    assert_eq!(list(by_status(&["RESOLVED"])).await, [c.id, b.id]);
    assert_eq!(
        list(by_status(&["OPEN", "RESOLVED"])).await,
        [d.id, c.id, b.id, a.id]
    );
    assert!(list(by_status(&[])).await.is_empty());
    assert!(list(by_status(&["open"])).await.is_empty());
    assert!(list(by_status(&["OPEN\0"])).await.is_empty());

    // Impacts.
    let by_impact = |v: &[i64]| IncidentFilter {
        impacts: Some(v.to_vec()),
        ..none()
    };
    assert_eq!(list(by_impact(&[2])).await, [d.id, b.id]);
    assert_eq!(list(by_impact(&[1, 3])).await, [c.id, a.id]);
    assert!(list(by_impact(&[4])).await.is_empty());
    assert!(list(by_impact(&[])).await.is_empty());

    // Created by.
    let by_creator = |v: &[&str]| IncidentFilter {
        created_by: strings(v),
        ..none()
    };
    assert_eq!(list(by_creator(&["alice"])).await, [c.id, a.id]);
    assert_eq!(
        list(by_creator(&["alice", "bob"])).await,
        [c.id, b.id, a.id]
    );
    assert!(list(by_creator(&["nobody"])).await.is_empty());
    assert!(list(by_creator(&["alice", "a\0"])).await.is_empty());
    assert!(list(by_creator(&[])).await.is_empty());

    // Creation time, inclusive bounds.
    let created_after = |ms: i64| IncidentFilter {
        created_after_ms: Some(T0 + ms),
        ..none()
    };
    assert_eq!(list(created_after(999)).await, [d.id, c.id, b.id]);
    assert_eq!(list(created_after(1000)).await, [d.id, c.id, b.id]);
    assert_eq!(list(created_after(1001)).await, [d.id, c.id]);
    let created_before = |ms: i64| IncidentFilter {
        created_before_ms: Some(T0 + ms),
        ..none()
    };
    assert_eq!(list(created_before(1999)).await, [b.id, a.id]);
    assert_eq!(list(created_before(2000)).await, [c.id, b.id, a.id]);
    assert_eq!(list(created_before(2001)).await, [c.id, b.id, a.id]);
    // Both bounds: a closed range.
    assert_eq!(
        list(IncidentFilter {
            created_after_ms: Some(T0 + 1000),
            created_before_ms: Some(T0 + 2000),
            ..none()
        })
        .await,
        [c.id, b.id]
    );

    // Resolution time, inclusive bounds; unresolved incidents never match.
    let resolved_after = |ms: i64| IncidentFilter {
        resolved_after_ms: Some(T0 + ms),
        ..none()
    };
    assert_eq!(list(resolved_after(5999)).await, [c.id]);
    assert_eq!(list(resolved_after(6000)).await, [c.id]);
    assert!(list(resolved_after(6001)).await.is_empty());
    assert_eq!(list(resolved_after(0)).await, [c.id, b.id]);
    let resolved_before = |ms: i64| IncidentFilter {
        resolved_before_ms: Some(T0 + ms),
        ..none()
    };
    assert!(list(resolved_before(4999)).await.is_empty());
    assert_eq!(list(resolved_before(5000)).await, [b.id]);
    assert_eq!(list(resolved_before(5001)).await, [b.id]);
    assert_eq!(list(resolved_before(10_000)).await, [c.id, b.id]);

    // Filters AND together.
    assert_eq!(
        list(IncidentFilter {
            statuses: strings(&["RESOLVED"]),
            created_by: strings(&["alice"]),
            ..none()
        })
        .await,
        [c.id]
    );
    assert!(
        list(IncidentFilter {
            statuses: strings(&["OPEN"]),
            impacts: Some(vec![3]),
            ..none()
        })
        .await
        .is_empty()
    );
    // An empty list empties the result even next to filters that match.
    assert!(
        list(IncidentFilter {
            statuses: strings(&["OPEN", "RESOLVED"]),
            impacts: Some(vec![]),
            ..none()
        })
        .await
        .is_empty()
    );
    // Paging through a filtered listing.
    let f = by_impact(&[2]);
    let first = store
        .list_incidents(ACCT, &f, &After::Start, 1)
        .await
        .unwrap();
    assert_eq!(incident_ids(&first), [d.id]);
    let next = After::Created {
        ms: first[0].created_ms,
        id: first[0].id,
    };
    let second = store.list_incidents(ACCT, &f, &next, 1).await.unwrap();
    assert_eq!(incident_ids(&second), [b.id]);
}

/// DeleteIncidentRecord removes the record with its timeline, items and tags (not its
/// engagements, nor other incidents' rows), and frees its dedupe hash.
async fn incident_delete_cascades(store: Store) {
    let doomed = incident(ACCT, "plan", "h", T0);
    let paged = incident_engagement(&doomed, "ana");
    let start = NewIncident {
        tags: vec![tag("k", "v")],
        events: vec![timeline_event(doomed.id, T0, "SSM Incident Start")],
        items: vec![related_item(doomed.id, "x", T0)],
        engagements: vec![paged.clone()],
        ..bare_start(&doomed)
    };
    store.start_incident(&start).await.unwrap();
    let kept = incident(ACCT, "plan", "h-kept", T0 + 1);
    let kept_start = NewIncident {
        tags: vec![tag("k", "kept")],
        events: vec![timeline_event(kept.id, T0 + 1, "SSM Incident Start")],
        items: vec![related_item(kept.id, "x", T0 + 1)],
        ..bare_start(&kept)
    };
    store.start_incident(&kept_start).await.unwrap();

    // Another account cannot delete it.
    assert!(!store.delete_incident(OTHER, doomed.id).await.unwrap());
    assert!(store.get_incident(ACCT, doomed.id).await.unwrap().is_some());

    assert!(store.delete_incident(ACCT, doomed.id).await.unwrap());
    assert_eq!(store.get_incident(ACCT, doomed.id).await.unwrap(), None);
    assert!(
        store
            .list_timeline_events(doomed.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_related_items(doomed.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_tags(ACCT, &doomed.tag_resource())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .get_engagement(ACCT, paged.engagement.id)
            .await
            .unwrap(),
        Some(paged.engagement.clone())
    );
    assert!(!store.delete_incident(ACCT, doomed.id).await.unwrap());
    assert!(!store.delete_incident(ACCT, Uuid::new_v4()).await.unwrap());

    // The other incident keeps everything.
    assert_eq!(
        store.get_incident(ACCT, kept.id).await.unwrap(),
        Some(kept.clone())
    );
    assert_eq!(
        store.list_timeline_events(kept.id).await.unwrap(),
        kept_start.events
    );
    assert_eq!(
        store.list_related_items(kept.id).await.unwrap(),
        kept_start.items
    );
    assert_eq!(
        store.list_tags(ACCT, &kept.tag_resource()).await.unwrap(),
        [tag("k", "kept")]
    );
    // The hash is free.
    let again = incident(ACCT, "plan", "h", T0 + 2);
    assert_eq!(
        store.start_incident(&bare_start(&again)).await.unwrap(),
        IncidentStart::New
    );
}

/// Timeline events: added in one transaction (a missing incident is NotFound), with an
/// idempotency token; listed by event time then id; read, updated, deleted.
async fn timeline_events(store: Store) {
    let i = incident(ACCT, "plan", "h", T0);
    store.start_incident(&bare_start(&i)).await.unwrap();
    let late = timeline_event(i.id, T0 + 300, "Custom Event");
    let early = timeline_event(i.id, T0 + 100, "Note");
    // Two at one time, the greater id added first: the id orders them, not the insertion.
    let (mut tie_a, mut tie_b) = (
        timeline_event(i.id, T0 + 200, "Custom Event"),
        timeline_event(i.id, T0 + 200, "Custom Event"),
    );
    if tie_a.id < tie_b.id {
        std::mem::swap(&mut tie_a, &mut tie_b);
    }
    assert_eq!(
        store
            .add_timeline_events(
                ACCT,
                &[late.clone(), early.clone(), tie_a.clone(), tie_b.clone()],
                None,
                T0
            )
            .await
            .unwrap(),
        Created::New
    );
    let mut want = by_event_time(vec![
        late.clone(),
        early.clone(),
        tie_a.clone(),
        tie_b.clone(),
    ]);
    assert_eq!(store.list_timeline_events(i.id).await.unwrap(), want);
    assert_eq!(want[0], early);
    assert_eq!(want[3], late);

    // A missing incident: NotFound, and the whole call writes nothing.
    let ghost = Uuid::new_v4();
    let good = timeline_event(i.id, T0 + 400, "Note");
    assert_not_found(
        store
            .add_timeline_events(
                ACCT,
                &[good.clone(), timeline_event(ghost, T0, "Note")],
                None,
                T0,
            )
            .await,
        &format!("incident {ghost}"),
    );
    assert_eq!(store.get_timeline_event(i.id, good.id).await.unwrap(), None);
    // A taken event id: a conflict.
    assert_conflict(
        store
            .add_timeline_events(ACCT, std::slice::from_ref(&early), None, T0)
            .await,
        &format!("timeline event {} exists", early.id),
    );

    // Idempotency: a replay answers the first result and writes nothing.
    let token = idem("CreateTimelineEvent", "tok", "h1", "event-1");
    let first = timeline_event(i.id, T0 + 500, "Note");
    assert_eq!(
        store
            .add_timeline_events(ACCT, std::slice::from_ref(&first), Some(&token), T0)
            .await
            .unwrap(),
        Created::New
    );
    let retry = timeline_event(i.id, T0 + 600, "Note");
    assert_eq!(
        store
            .add_timeline_events(ACCT, std::slice::from_ref(&retry), Some(&token), T0)
            .await
            .unwrap(),
        Created::Replay("event-1".into())
    );
    assert!(matches!(
        store
            .add_timeline_events(
                ACCT,
                std::slice::from_ref(&retry),
                Some(&idem("CreateTimelineEvent", "tok", "h2", "event-2")),
                T0
            )
            .await,
        Err(StoreError::IdempotencyMismatch)
    ));
    assert_eq!(
        store.get_timeline_event(i.id, retry.id).await.unwrap(),
        None
    );
    want.push(first.clone());
    assert_eq!(store.list_timeline_events(i.id).await.unwrap(), want);

    // Reads are per incident.
    assert_eq!(
        store.get_timeline_event(i.id, early.id).await.unwrap(),
        Some(early.clone())
    );
    assert_eq!(
        store
            .get_timeline_event(Uuid::new_v4(), early.id)
            .await
            .unwrap(),
        None
    );

    // Update: time, type, data, references; the list follows the new time.
    let moved = TimelineEventRecord {
        event_time_ms: T0 + 450,
        updated_ms: T0 + 1000,
        event_type: "Custom Event".into(),
        data: "moved".into(),
        refs: r#"[{"resource":"arn:x"}]"#.into(),
        ..early.clone()
    };
    assert!(store.update_timeline_event(&moved).await.unwrap());
    assert_eq!(
        store.get_timeline_event(i.id, early.id).await.unwrap(),
        Some(moved.clone())
    );
    let want = by_event_time(vec![
        moved.clone(),
        late.clone(),
        tie_a.clone(),
        tie_b.clone(),
        first.clone(),
    ]);
    assert_eq!(store.list_timeline_events(i.id).await.unwrap(), want);
    assert_eq!(want[3], moved);
    assert!(
        !store
            .update_timeline_event(&timeline_event(i.id, T0, "Note"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_timeline_event(&TimelineEventRecord {
                incident_id: Uuid::new_v4(),
                ..moved.clone()
            })
            .await
            .unwrap()
    );

    // Delete.
    assert!(
        !store
            .delete_timeline_event(Uuid::new_v4(), late.id)
            .await
            .unwrap()
    );
    assert!(store.delete_timeline_event(i.id, late.id).await.unwrap());
    assert!(!store.delete_timeline_event(i.id, late.id).await.unwrap());
    assert_eq!(store.get_timeline_event(i.id, late.id).await.unwrap(), None);
    let want: Vec<_> = want.into_iter().filter(|e| e.id != late.id).collect();
    assert_eq!(store.list_timeline_events(i.id).await.unwrap(), want);
}

/// UpdateRelatedItems: add (an identity already there is a conflict), remove (a missing one
/// is NotFound), each with its events in one transaction; listed in the order added.
async fn related_items(store: Store) {
    let i = incident(ACCT, "plan", "h", T0);
    let zed = related_item(i.id, "zed", T0 + 50);
    store
        .start_incident(&NewIncident {
            items: vec![zed.clone()],
            ..bare_start(&i)
        })
        .await
        .unwrap();
    // Added later but created "earlier" and sorting before: the order is the order added.
    let alpha = related_item(i.id, "alpha", T0 + 10);
    let added = timeline_event(i.id, T0 + 60, "SSM Incident Record Update");
    assert_eq!(
        store
            .update_related_items(i.id, Some(&alpha), None, std::slice::from_ref(&added), None)
            .await
            .unwrap(),
        Created::New
    );
    assert_eq!(
        store.list_related_items(i.id).await.unwrap(),
        [zed.clone(), alpha.clone()]
    );
    assert_eq!(
        store.list_timeline_events(i.id).await.unwrap(),
        std::slice::from_ref(&added)
    );

    // The same identity again: a conflict; nothing written (not its event either).
    let again = RelatedItemRecord {
        item: r#"{"other":"content"}"#.into(),
        ..zed.clone()
    };
    assert_conflict(
        store
            .update_related_items(
                i.id,
                Some(&again),
                None,
                &[timeline_event(i.id, T0 + 70, "SSM Incident Record Update")],
                None,
            )
            .await,
        "the incident already has this related item",
    );
    assert_eq!(
        store.list_related_items(i.id).await.unwrap(),
        [zed.clone(), alpha.clone()]
    );
    assert_eq!(store.list_timeline_events(i.id).await.unwrap().len(), 1);

    // Remove; removing it again is NotFound and writes nothing.
    assert_eq!(
        store
            .update_related_items(i.id, None, Some("zed"), &[], None)
            .await
            .unwrap(),
        Created::New
    );
    assert_eq!(
        store.list_related_items(i.id).await.unwrap(),
        std::slice::from_ref(&alpha)
    );
    assert_not_found(
        store
            .update_related_items(
                i.id,
                None,
                Some("zed"),
                &[timeline_event(i.id, T0 + 90, "SSM Incident Record Update")],
                None,
            )
            .await,
        "related item",
    );
    assert_eq!(store.list_timeline_events(i.id).await.unwrap().len(), 1);
    // Added back, it goes to the end.
    store
        .update_related_items(i.id, Some(&zed), None, &[], None)
        .await
        .unwrap();
    assert_eq!(
        store.list_related_items(i.id).await.unwrap(),
        [alpha.clone(), zed.clone()]
    );

    // Idempotency: a replay writes nothing; another request with the token is a mismatch.
    let token = idem("UpdateRelatedItems", "tok", "h1", "");
    let mid = related_item(i.id, "mid", T0 + 110);
    assert_eq!(
        store
            .update_related_items(i.id, Some(&mid), None, &[], Some((ACCT, &token, T0 + 110)))
            .await
            .unwrap(),
        Created::New
    );
    let other = related_item(i.id, "other", T0 + 120);
    assert_eq!(
        store
            .update_related_items(
                i.id,
                Some(&other),
                None,
                &[],
                Some((ACCT, &token, T0 + 120))
            )
            .await
            .unwrap(),
        Created::Replay(String::new())
    );
    assert!(matches!(
        store
            .update_related_items(
                i.id,
                Some(&other),
                None,
                &[],
                Some((ACCT, &idem("UpdateRelatedItems", "tok", "h2", ""), T0 + 120))
            )
            .await,
        Err(StoreError::IdempotencyMismatch)
    ));
    assert_eq!(
        store.list_related_items(i.id).await.unwrap(),
        [alpha.clone(), zed.clone(), mid.clone()]
    );

    // A missing incident.
    let ghost = Uuid::new_v4();
    assert_not_found(
        store
            .update_related_items(ghost, Some(&related_item(ghost, "x", T0)), None, &[], None)
            .await,
        &format!("incident {ghost}"),
    );
    assert!(store.list_related_items(ghost).await.unwrap().is_empty());
}

fn replication_set(account: &str, ms: i64) -> ReplicationSetRecord {
    ReplicationSetRecord {
        account: account.into(),
        id: Uuid::new_v4(),
        regions: r#"[{"region":"us-east-1"}]"#.into(),
        deletion_protected: true,
        created_by: "creator".into(),
        created_ms: ms,
        updated_by: "creator".into(),
        updated_ms: ms,
    }
}

/// The replication set: one per account (a second is a conflict), read, updated, deleted
/// with its tags.
async fn replication_sets(store: Store) {
    assert_eq!(store.get_replication_set(ACCT).await.unwrap(), None);
    let set = replication_set(ACCT, T0);
    let token = idem("CreateReplicationSet", "tok", "h1", "arn-set");
    assert_eq!(
        store
            .create_replication_set(&set, &[tag("k", "v")], Some(&token))
            .await
            .unwrap(),
        Created::New
    );
    assert_eq!(
        store.get_replication_set(ACCT).await.unwrap(),
        Some(set.clone())
    );
    assert_eq!(
        store
            .list_tags(ACCT, &format!("replication-set/{}", set.id))
            .await
            .unwrap(),
        [tag("k", "v")]
    );
    // A replay is not a conflict; a second set is.
    assert_eq!(
        store
            .create_replication_set(&replication_set(ACCT, T0 + 1), &[], Some(&token))
            .await
            .unwrap(),
        Created::Replay("arn-set".into())
    );
    assert!(matches!(
        store
            .create_replication_set(
                &replication_set(ACCT, T0 + 1),
                &[],
                Some(&idem("CreateReplicationSet", "tok", "h2", "arn-2"))
            )
            .await,
        Err(StoreError::IdempotencyMismatch)
    ));
    let second = replication_set(ACCT, T0 + 2);
    assert_conflict(
        store
            .create_replication_set(&second, &[tag("k", "second")], None)
            .await,
        "the account has a replication set",
    );
    assert!(
        store
            .list_tags(ACCT, &replication_set_resource(second.id))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.get_replication_set(ACCT).await.unwrap(),
        Some(set.clone())
    );
    // Another account has its own.
    let others = replication_set(OTHER, T0);
    assert_eq!(
        store
            .create_replication_set(&others, &[], None)
            .await
            .unwrap(),
        Created::New
    );

    // Update: regions, protection, who and when (not who created it, nor when).
    let changed = ReplicationSetRecord {
        regions: r#"[{"region":"us-east-1"},{"region":"eu-west-1"}]"#.into(),
        deletion_protected: false,
        updated_by: "editor".into(),
        updated_ms: T0 + 10,
        created_by: "not written".into(),
        created_ms: T0 + 999,
        ..set.clone()
    };
    assert!(store.update_replication_set(&changed).await.unwrap());
    let want = ReplicationSetRecord {
        created_by: set.created_by.clone(),
        created_ms: set.created_ms,
        ..changed.clone()
    };
    assert_eq!(
        store.get_replication_set(ACCT).await.unwrap(),
        Some(want.clone())
    );
    assert_eq!(
        store.get_replication_set(OTHER).await.unwrap(),
        Some(others.clone())
    );
    assert!(
        !store
            .update_replication_set(&ReplicationSetRecord {
                id: Uuid::new_v4(),
                ..changed.clone()
            })
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_replication_set(&replication_set("999999999999", T0))
            .await
            .unwrap()
    );
    assert_eq!(store.get_replication_set(ACCT).await.unwrap(), Some(want));

    // Delete: by id (another id deletes nothing), with its tags.
    assert!(
        !store
            .delete_replication_set(ACCT, Uuid::new_v4())
            .await
            .unwrap()
    );
    assert!(!store.delete_replication_set(ACCT, others.id).await.unwrap());
    assert!(store.get_replication_set(ACCT).await.unwrap().is_some());
    assert!(store.get_replication_set(OTHER).await.unwrap().is_some());
    assert!(store.delete_replication_set(ACCT, set.id).await.unwrap());
    assert_eq!(store.get_replication_set(ACCT).await.unwrap(), None);
    assert!(
        store
            .list_tags(ACCT, &replication_set_resource(set.id))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.delete_replication_set(ACCT, set.id).await.unwrap());
    assert_eq!(
        store.get_replication_set(OTHER).await.unwrap(),
        Some(others)
    );
    // The account may create one again.
    assert_eq!(
        store
            .create_replication_set(&second, &[], None)
            .await
            .unwrap(),
        Created::New
    );
}

fn policy(account: &str, id: &str, resource: &str, ms: i64) -> ResourcePolicyRecord {
    ResourcePolicyRecord {
        account: account.into(),
        id: id.into(),
        resource_arn: resource.into(),
        policy: format!(r#"{{"Statement":"{id}"}}"#),
        created_ms: ms,
    }
}

/// Resource policies: inserted, replaced by id on their resource, listed per resource in
/// creation order (then id), deleted.
async fn resource_policies(store: Store) {
    let plan_a = "arn:aws:ssm-incidents::111122223333:response-plan/a";
    let plan_b = "arn:aws:ssm-incidents::111122223333:response-plan/b";
    let p1 = policy(ACCT, "pol-1", plan_a, T0 + 2);
    let p2 = policy(ACCT, "pol-b", plan_a, T0 + 1);
    // Ids in code-point order ("P" < "p"), not a linguistic one ("pol-b" < "Pol-z").
    let p3 = policy(ACCT, "Pol-z", plan_a, T0 + 1);
    let p4 = policy(ACCT, "pol-4", plan_b, T0);
    let p5 = policy(OTHER, "pol-5", plan_a, T0);
    for p in [&p1, &p2, &p3, &p4, &p5] {
        assert!(store.put_resource_policy(p, false).await.unwrap());
    }
    assert_eq!(
        store.list_resource_policies(ACCT, plan_a).await.unwrap(),
        [p3.clone(), p2.clone(), p1.clone()]
    );
    assert_eq!(
        store.list_resource_policies(ACCT, plan_b).await.unwrap(),
        std::slice::from_ref(&p4)
    );
    assert_eq!(
        store.list_resource_policies(OTHER, plan_a).await.unwrap(),
        std::slice::from_ref(&p5)
    );
    assert!(
        store
            .list_resource_policies(ACCT, "arn:none")
            .await
            .unwrap()
            .is_empty()
    );
    // A taken id is a conflict.
    assert_conflict(
        store
            .put_resource_policy(&policy(ACCT, "pol-1", plan_b, T0 + 5), false)
            .await,
        "policy pol-1 exists",
    );

    // Replace: the document only (the creation time, hence the order, stays).
    let replaced = ResourcePolicyRecord {
        policy: r#"{"Statement":"replaced"}"#.into(),
        created_ms: T0 + 100,
        ..p2.clone()
    };
    assert!(store.put_resource_policy(&replaced, true).await.unwrap());
    let p2_now = ResourcePolicyRecord {
        created_ms: p2.created_ms,
        ..replaced.clone()
    };
    assert_eq!(
        store.list_resource_policies(ACCT, plan_a).await.unwrap(),
        [p3.clone(), p2_now.clone(), p1.clone()]
    );
    // An unknown id, an id of another resource, or of another account: false, nothing
    // written.
    assert!(
        !store
            .put_resource_policy(&policy(ACCT, "pol-x", plan_a, T0), true)
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_resource_policy(&policy(ACCT, "pol-4", plan_a, T0), true)
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_resource_policy(&policy(OTHER, "pol-1", plan_a, T0), true)
            .await
            .unwrap()
    );
    // NUL (which PostgreSQL cannot hold) names nothing, on both backends alike.
    assert!(
        !store
            .put_resource_policy(&policy(ACCT, "pol-1\0", plan_a, T0), true)
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_resource_policy(&policy(ACCT, "pol-1", "arn\0", T0), true)
            .await
            .unwrap()
    );
    assert!(
        store
            .list_resource_policies(ACCT, "arn\0")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .delete_resource_policy(ACCT, plan_a, "pol-1\0")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_resource_policy(ACCT, "arn\0", "pol-1")
            .await
            .unwrap()
    );
    assert_eq!(
        store.list_resource_policies(ACCT, plan_a).await.unwrap(),
        [p3.clone(), p2_now.clone(), p1.clone()]
    );
    assert_eq!(
        store.list_resource_policies(ACCT, plan_b).await.unwrap(),
        std::slice::from_ref(&p4)
    );

    // Delete: by account, resource and id.
    assert!(
        !store
            .delete_resource_policy(ACCT, plan_b, "pol-1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_resource_policy(OTHER, plan_a, "pol-1")
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_resource_policy(ACCT, plan_a, "pol-1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_resource_policy(ACCT, plan_a, "pol-1")
            .await
            .unwrap()
    );
    assert_eq!(
        store.list_resource_policies(ACCT, plan_a).await.unwrap(),
        [p3, p2_now]
    );
    assert_eq!(
        store.list_resource_policies(OTHER, plan_a).await.unwrap(),
        [p5]
    );
    // The id is free again.
    assert!(
        store
            .put_resource_policy(&policy(ACCT, "pol-1", plan_b, T0 + 3), false)
            .await
            .unwrap()
    );
}

// --- alerts -----------------------------------------------------------------------------

fn integration_record(name: &str) -> IntegrationRecord {
    IntegrationRecord {
        id: Uuid::new_v4(),
        account: ACCT.into(),
        name: name.into(),
        format: "generic".into(),
        plan_name: "plan-a".into(),
        key_hash: format!("hash of {name}"),
        created_ms: T0,
        revoked_ms: None,
        last_alert_ms: None,
        last_outcome: None,
    }
}

fn alert_record(integration: Uuid, key: &str, ms: i64, outcome: &str) -> AlertRecord {
    AlertRecord {
        id: Uuid::new_v4(),
        integration_id: integration,
        account: ACCT.into(),
        received_ms: ms,
        action: "trigger".into(),
        dedupe_key: key.into(),
        incident_id: None,
        outcome: outcome.into(),
        payload: format!(r#"{{"key":"{key}","at":{ms}}}"#),
    }
}

fn absorb(integration: Uuid, hash: &str, ms: i64, items: &[&str]) -> AlertAbsorb {
    AlertAbsorb {
        account: ACCT.into(),
        dedupe_hash: hash.into(),
        // The incident id is the store's to set.
        events: vec![timeline_event(Uuid::nil(), ms, "SSM Incident Trigger")],
        items: items
            .iter()
            .map(|i| related_item(Uuid::nil(), i, ms))
            .collect(),
        members: vec![],
        alert: alert_record(integration, hash, ms, "added"),
    }
}

/// An alert is recorded in the transaction of what it did: with the incident it starts (or
/// the open one that takes it), or added to an open incident by `absorb_alerts`, which writes
/// nothing for a trigger with no open incident (resolved ones included) and nothing at all
/// when one alert of the batch fails. An integration's last alert is its newest one.
async fn alerts_absorbed_by_open_incidents(store: Store) {
    let int = integration_record("alerts");
    store.create_integration(&int).await.unwrap();
    let a = incident(ACCT, "plan-a", "ha", T0);
    let opened = alert_record(int.id, "ha", T0, "opened");
    let start = NewIncident {
        alert: Some(opened.clone()),
        alert_on_duplicate: Some(alert_record(int.id, "ha", T0, "unused")),
        alert_members: vec!["fp-1".into(), "fp-2".into()],
        ..bare_start(&a)
    };
    assert_eq!(
        store.start_incident(&start).await.unwrap(),
        IncidentStart::New
    );
    // The same start again is a duplicate: its duplicate record goes to the open incident.
    let again = incident(ACCT, "plan-a", "ha", T0 + 1);
    let dup = alert_record(int.id, "ha", T0 + 1, "absorbed");
    let repeat = NewIncident {
        alert: Some(alert_record(int.id, "ha", T0 + 1, "unused")),
        alert_on_duplicate: Some(dup.clone()),
        ..bare_start(&again)
    };
    assert!(matches!(
        store.start_incident(&repeat).await.unwrap(),
        IncidentStart::Duplicate(_)
    ));
    let of_a = store.alerts_of_incident(a.id, 10).await.unwrap();
    assert_eq!(
        of_a.iter()
            .map(|r| (r.id, r.incident_id, r.outcome.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (dup.id, Some(a.id), "absorbed"),
            (opened.id, Some(a.id), "opened")
        ]
    );
    assert_eq!(store.get_incident(ACCT, again.id).await.unwrap(), None);

    // A resolved incident absorbs nothing.
    let mut c = incident(ACCT, "plan-a", "hc", T0);
    c.status = "RESOLVED".into();
    c.resolved_ms = Some(T0);
    store.start_incident(&bare_start(&c)).await.unwrap();

    let events_before = store.list_timeline_events(a.id).await.unwrap().len();
    let batch = vec![
        absorb(int.id, "ha", T0 + 10, &["x"]),
        absorb(int.id, "hb", T0 + 11, &["y"]),
        absorb(int.id, "hc", T0 + 12, &[]),
        absorb(int.id, "ha", T0 + 13, &["x", "z"]),
    ];
    let done = store.absorb_alerts(&batch).await.unwrap();
    let into: Vec<Option<(Uuid, String)>> = done
        .iter()
        .map(|o| o.as_ref().map(|o| (o.id, o.arn())))
        .collect();
    let a_ref = Some((a.id, incident_arn_of(&a)));
    assert_eq!(into, vec![a_ref.clone(), None, None, a_ref]);
    let events = store.list_timeline_events(a.id).await.unwrap();
    assert_eq!(events.len(), events_before + 2);
    for b in [&batch[0], &batch[3]] {
        let e = events
            .iter()
            .find(|e| e.id == b.events[0].id)
            .expect("absorbed event");
        assert_eq!(e.incident_id, a.id);
        assert_eq!(e.data, b.events[0].data);
    }
    let items: Vec<String> = store
        .list_related_items(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.identity)
        .collect();
    assert_eq!(items, vec!["x".to_string(), "z".to_string()]);
    let of_a = store.alerts_of_incident(a.id, 10).await.unwrap();
    assert_eq!(
        of_a.iter()
            .map(|r| (r.id, r.incident_id))
            .collect::<Vec<_>>(),
        vec![
            (batch[3].alert.id, Some(a.id)),
            (batch[0].alert.id, Some(a.id)),
            (dup.id, Some(a.id)),
            (opened.id, Some(a.id)),
        ]
    );
    // Nothing for the triggers no incident took.
    let all = store.alerts_of_integration(int.id, 10).await.unwrap();
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(store.alerts_of_incident(c.id, 10).await.unwrap().is_empty());
    assert_eq!(store.absorb_alerts(&[]).await.unwrap(), vec![]);

    // The newest alert is the integration's last one.
    let listed = store.list_integrations(ACCT).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_alert_ms, Some(T0 + 13));
    assert_eq!(listed[0].last_outcome.as_deref(), Some("added"));
    let fresh = integration_record("quiet");
    store.create_integration(&fresh).await.unwrap();
    let quiet = store
        .get_integration(ACCT, fresh.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((quiet.last_alert_ms, quiet.last_outcome), (None, None));

    // One failing alert (its record's id is taken) fails the whole batch: nothing written.
    let mut clash = absorb(int.id, "ha", T0 + 20, &["w"]);
    clash.alert.id = batch[0].alert.id;
    let fine = absorb(int.id, "ha", T0 + 21, &["v"]);
    assert!(store.absorb_alerts(&[fine.clone(), clash]).await.is_err());
    assert_eq!(
        store.list_timeline_events(a.id).await.unwrap().len(),
        events_before + 2
    );
    assert_eq!(store.list_related_items(a.id).await.unwrap().len(), 2);
    assert_eq!(
        store.alerts_of_integration(int.id, 10).await.unwrap().len(),
        4
    );
    // The store still writes afterwards.
    assert!(store.absorb_alerts(&[fine]).await.unwrap()[0].is_some());

    // The incident remembers the alerts it has had: those it started with, and each new one
    // once (also within one batch).
    let with = |members: &[&str], ms: i64| AlertAbsorb {
        members: members.iter().map(|m| m.to_string()).collect(),
        ..absorb(int.id, "ha", ms, &[])
    };
    let done = store
        .absorb_alerts(&[
            with(&["fp-1"], T0 + 30),
            with(&["fp-2", "fp-3"], T0 + 31),
            with(&["fp-3", "fp-4", "fp-5"], T0 + 32),
            with(&[], T0 + 33),
        ])
        .await
        .unwrap();
    let new: Vec<usize> = done
        .iter()
        .map(|o| o.as_ref().unwrap().new_alerts)
        .collect();
    assert_eq!(new, vec![0, 1, 2, 0]);
    // Another incident's alerts are its own.
    let d = incident(ACCT, "plan-a", "hd", T0);
    store.start_incident(&bare_start(&d)).await.unwrap();
    let done = store
        .absorb_alerts(&[AlertAbsorb {
            members: vec!["fp-1".into()],
            ..absorb(int.id, "hd", T0 + 40, &[])
        }])
        .await
        .unwrap();
    assert_eq!(done[0].as_ref().unwrap().new_alerts, 1);

    // Paging an incident again for a new alert: the alert remembered, engagements with their
    // events and items; nothing when it brings no new alert, or the incident is not open.
    assert_eq!(
        store
            .new_alerts_of(a.id, &["fp-1".into(), "fp-6".into()])
            .await
            .unwrap(),
        1
    );
    let again = incident_engagement(&a, "ana");
    let page = timeline_event(a.id, T0 + 50, "SSM Contacts Page for Incident");
    let item = related_item(a.id, "engagement-2", T0 + 50);
    let engage = async |members: &[&str], e: &NewEngagement| {
        let members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
        store
            .engage_for_incident(&PageAgain {
                account: ACCT,
                incident_id: a.id,
                members: &members,
                at_ms: T0 + 50,
                events: std::slice::from_ref(&page),
                items: std::slice::from_ref(&item),
                engagements: std::slice::from_ref(e),
            })
            .await
            .unwrap()
    };
    let known = incident_engagement(&a, "ana");
    assert_eq!(engage(&["fp-1", "fp-2"], &known).await, Some(0));
    assert_eq!(
        store
            .get_engagement(ACCT, known.engagement.id)
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .list_timeline_events(a.id)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == page.id)
    );
    assert_eq!(engage(&["fp-1", "fp-6"], &again).await, Some(1));
    assert_eq!(
        store.new_alerts_of(a.id, &["fp-6".into()]).await.unwrap(),
        0
    );
    let got = store
        .get_engagement(ACCT, again.engagement.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.incident_id.as_deref(),
        Some(incident_arn_of(&a).as_str())
    );
    assert!(
        store
            .list_timeline_events(a.id)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == page.id)
    );
    assert!(
        store
            .list_related_items(a.id)
            .await
            .unwrap()
            .iter()
            .any(|i| i.identity == "engagement-2")
    );
    let late = incident_engagement(&c, "ana");
    let resolved = store
        .engage_for_incident(&PageAgain {
            account: ACCT,
            incident_id: c.id,
            members: &["fp-new".into()],
            at_ms: T0 + 50,
            events: &[timeline_event(
                c.id,
                T0 + 50,
                "SSM Contacts Page for Incident",
            )],
            items: &[],
            engagements: std::slice::from_ref(&late),
        })
        .await
        .unwrap();
    assert_eq!(resolved, None);
    assert_eq!(
        store
            .get_engagement(ACCT, late.engagement.id)
            .await
            .unwrap(),
        None
    );
    assert!(store.list_timeline_events(c.id).await.unwrap().is_empty());
    assert_eq!(
        store.new_alerts_of(c.id, &["fp-new".into()]).await.unwrap(),
        1
    );
}

/// Batches of alerts for the same open incidents, written at once from several tasks (on
/// PostgreSQL, several transactions add to the same incidents, in different orders, and race
/// to add the same new related item): every alert lands once, with its incident, the item
/// once, and none deadlocks.
async fn concurrent_alert_absorbs(store: Store) {
    let int = integration_record("storm");
    store.create_integration(&int).await.unwrap();
    let hashes = ["s0", "s1", "s2"];
    let mut ids = Vec::new();
    for h in hashes {
        let i = incident(ACCT, "plan-a", h, T0);
        store.start_incident(&bare_start(&i)).await.unwrap();
        ids.push(i.id);
    }
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for round in 0..5 {
                    // Each task walks the keys from a different start.
                    let batch: Vec<AlertAbsorb> = (0..hashes.len())
                        .map(|k| {
                            let h = hashes[(k + t) % hashes.len()];
                            absorb(int.id, h, T0 + round, &["shared"])
                        })
                        .collect();
                    let done = store.absorb_alerts(&batch).await.unwrap();
                    assert!(done.iter().all(Option::is_some));
                }
            })
        })
        .collect();
    for t in tasks {
        tokio::time::timeout(std::time::Duration::from_secs(60), t)
            .await
            .expect("no deadlock")
            .unwrap();
    }
    for id in ids {
        assert_eq!(
            store.alerts_of_incident(id, 100).await.unwrap().len(),
            8 * 5
        );
        assert_eq!(store.list_timeline_events(id).await.unwrap().len(), 8 * 5);
        assert_eq!(store.list_related_items(id).await.unwrap().len(), 1);
    }
}

/// An integration is found by its key's hash, revoked or not, without its latest alert; and
/// a batch of alerts whose payloads are larger than one insert of PostgreSQL's batch (8 MiB)
/// lands whole, each alert with its own payload and incident, in the batch's order.
async fn integration_keys_and_large_alert_batches(store: Store) {
    let int = integration_record("big");
    store.create_integration(&int).await.unwrap();
    let found = store
        .integration_by_key_hash("hash of big")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, found.revoked_ms), (int.id, None));
    assert_eq!(
        store.integration_by_key_hash("hash of bi").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .integration_by_key_hash("hash of big\0")
            .await
            .unwrap(),
        None
    );

    let a = incident(ACCT, "plan-a", "big", T0);
    store.start_incident(&bare_start(&a)).await.unwrap();
    // 12 alerts of 1 MiB each, differing in their first characters.
    let batch: Vec<AlertAbsorb> = (0..12)
        .map(|n| {
            let mut b = absorb(int.id, "big", T0 + 100 + n, &[]);
            b.alert.payload = format!("{n:02}{}", "x".repeat(1024 * 1024 - 2));
            b
        })
        .collect();
    let done = store.absorb_alerts(&batch).await.unwrap();
    assert!(done.iter().all(|o| o.as_ref().map(|o| o.id) == Some(a.id)));
    let mut got = store.alerts_of_incident(a.id, 20).await.unwrap();
    got.reverse();
    assert_eq!(got.len(), 12);
    for (n, (g, b)) in got.iter().zip(&batch).enumerate() {
        assert_eq!((g.id, g.incident_id), (b.alert.id, Some(a.id)));
        assert_eq!(g.payload.len(), 1024 * 1024);
        assert!(g.payload.starts_with(&format!("{n:02}x")), "alert {n}");
    }

    // The latest alert is not read with the key (the alert path does not need it), but the
    // integration's own read has it; a revoked integration is still found by its key.
    let by_key = store
        .integration_by_key_hash("hash of big")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((by_key.last_alert_ms, by_key.last_outcome), (None, None));
    let by_id = store.get_integration(ACCT, int.id).await.unwrap().unwrap();
    assert_eq!(by_id.last_alert_ms, Some(T0 + 111));
    assert!(
        store
            .revoke_integration(ACCT, int.id, T0 + 200)
            .await
            .unwrap()
    );
    let revoked = store
        .integration_by_key_hash("hash of big")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((revoked.id, revoked.revoked_ms), (int.id, Some(T0 + 200)));
}

/// The import map: rows are listed per (account, source system, source account), in kind and
/// id order; a put with the same key replaces the row; a delete removes only its row.
async fn import_map_rows(store: Store) {
    let row = |kind: &str, id: &str, hash: &str| ImportMapRow {
        account: ACCT.into(),
        source_system: "opsgenie".into(),
        source_account: "api.opsgenie.com".into(),
        source_kind: kind.into(),
        source_id: id.into(),
        target_arn: format!("arn:aws:ssm-contacts:us-east-2:{ACCT}:contact/{id}"),
        source_hash: hash.into(),
        target_hash: format!("t-{hash}"),
        imported_ms: 1_700_000_000_000,
        tool_version: "0.1.0".into(),
    };
    store
        .put_import_map(&row("person", "u2", "a"))
        .await
        .unwrap();
    store
        .put_import_map(&row("person", "u1", "b"))
        .await
        .unwrap();
    store
        .put_import_map(&row("escalation", "e1", "c"))
        .await
        .unwrap();
    // Another source account and another Muster account: never listed with these.
    let mut elsewhere = row("person", "u1", "z");
    elsewhere.source_account = "api.eu.opsgenie.com".into();
    store.put_import_map(&elsewhere).await.unwrap();
    let mut other = row("person", "u1", "y");
    other.account = OTHER.into();
    store.put_import_map(&other).await.unwrap();

    let listed = store
        .import_map(ACCT, "opsgenie", "api.opsgenie.com")
        .await
        .unwrap();
    let keys: Vec<_> = listed
        .iter()
        .map(|r| {
            (
                r.source_kind.as_str(),
                r.source_id.as_str(),
                r.source_hash.as_str(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("escalation", "e1", "c"),
            ("person", "u1", "b"),
            ("person", "u2", "a")
        ]
    );
    assert_eq!(listed[1], row("person", "u1", "b"));

    // Same key: replaced, not duplicated.
    let mut changed = row("person", "u1", "b2");
    changed.target_arn = "arn:aws:ssm-contacts:us-east-2:111122223333:contact/u1-2".into();
    store.put_import_map(&changed).await.unwrap();
    let listed = store
        .import_map(ACCT, "opsgenie", "api.opsgenie.com")
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1], changed);

    assert!(
        store
            .delete_import_map(ACCT, "opsgenie", "api.opsgenie.com", "person", "u1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_import_map(ACCT, "opsgenie", "api.opsgenie.com", "person", "u1")
            .await
            .unwrap()
    );
    let listed = store
        .import_map(ACCT, "opsgenie", "api.opsgenie.com")
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    // The other source account and the other Muster account kept their rows.
    assert_eq!(
        store
            .import_map(ACCT, "opsgenie", "api.eu.opsgenie.com")
            .await
            .unwrap(),
        [elsewhere]
    );
    assert_eq!(
        store
            .import_map(OTHER, "opsgenie", "api.opsgenie.com")
            .await
            .unwrap(),
        [other]
    );
}
