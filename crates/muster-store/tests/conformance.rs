//! The store's conformance suite: every scenario is written once, as
//! `async fn name(store: Store)`, and runs on SQLite (a temporary file) and on PostgreSQL
//! (a fresh database on the server named by `MUSTER_TEST_POSTGRES_URL`; skipped with a note
//! when unset, an error in CI).

use muster_core::{ActivationStatus, ChannelType, ContactType, Plan, Stage, Target};
use muster_store::testing::{fresh_postgres_url, postgres_skip_note};
use muster_store::{
    AccessKeyRecord, After, ChannelRecord, ContactRecord, Created, Idempotency, Store, StoreError,
    Tag,
};
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
    basics,
    access_keys,
    contact_crud,
    contact_idempotency,
    concurrent_contact_creates,
    channel_crud,
    channel_idempotency,
    concurrent_channel_creates,
    cascade_on_delete,
    contact_pagination_with_inserts,
    channel_pagination_with_inserts,
    alias_prefix_and_type_filters,
    tags,
    wrong_cursor_kind,
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
