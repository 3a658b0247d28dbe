//! The console's Engagements and Settings sections: over plain HTTP on both backends (engage a
//! contact with an activated channel, the page and its receipts, the timeline partial,
//! Acknowledge with the right and a wrong accept code, Stop engagement; access keys created
//! with the secret shown once and working with the AWS SDK, then revoked; the outbox viewer
//! and the providers; POSTs without a CSRF token refused) and in headless Chromium (engage →
//! the detail page updating by itself → acknowledge; the settings page), with screenshots in
//! `target/console-screenshots/`.

mod common;

use aws_sdk_ssmcontacts::types::{
    ChannelType, ContactChannelAddress, ContactTargetInfo, ContactType, Plan, ReceiptType, Stage,
    Target,
};
use common::TestServer;
use common::browser::{
    self, Browser, PASSWORD, Signed, base, click_to_load, get, hidden, labelled, outbox_message,
    post_form, post_raw, screenshot, sign_in,
};
use fantoccini::Locator;
use muster_core::SystemClock;
use std::time::Duration;

const ADMIN: &str = "admin@example.com";
const RESPONDER: &str = "responder@example.com";

/// Creates an administrator (Settings' key management needs one).
async fn create_admin(s: &TestServer, email: &str) {
    let store = &s.running.as_ref().unwrap().store;
    muster_console::accounts::create_user(store, &SystemClock, email, PASSWORD, true)
        .await
        .expect("admin created");
}

/// A PERSONAL contact `alias` with one activated e-mail channel (`Work mail`, `addr`) paged
/// at once by a 10-minute stage. Returns the contact's ARN.
async fn person(s: &TestServer, alias: &str, name: &str, addr: &str) -> String {
    common::PagedPerson {
        display_name: Some(name),
        channel: "Work mail",
        ..common::PagedPerson::new(alias, addr)
    }
    .create(s)
    .await
    .contact
}

/// Engages `alias` through the console's form; returns the engagement page's path.
async fn engage(base: &str, me: &Signed, alias: &str, subject: &str) -> String {
    let (status, html, _) = get(base, "/engagements/new", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    let token = hidden(&html, "idempotency_token").expect("the form has an idempotency token");
    let (status, body, to) = post_form(
        base,
        "/engagements",
        me,
        &[
            ("contact", alias),
            ("subject", subject),
            ("content", "The API answers 500s."),
            ("public_subject", ""),
            ("public_content", ""),
            ("idempotency_token", &token),
        ],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let path = to
        .strip_suffix("?done=started")
        .expect("to the new engagement");
    assert!(path.starts_with(&format!("/engagements/{alias}/")), "{to}");
    path.to_string()
}

/// The engagement's ARN from its console path.
fn engagement_arn(path: &str) -> String {
    format!(
        "arn:aws:ssm-contacts:us-east-1:000000000000:engagement/{}",
        path.trim_start_matches("/engagements/")
    )
}

/// Waits (up to 10 s) until the timeline partial, as htmx fetches it, contains `text`.
async fn timeline_with(base: &str, me: &Signed, path: &str, text: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, html, _) = get(base, &format!("{path}/timeline"), Some(&me.cookie)).await;
        assert_eq!(status, 200);
        if html.contains(text) {
            return html;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {text:?} in the timeline: {html}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- over HTTP, on both backends ------------------------------------------------------

on_both!(
    engage_acknowledge_and_the_timeline,
    an_escalation_plan,
    stop_an_engagement,
    access_keys,
    outbox_and_providers,
    posts_without_csrf_are_refused,
);

async fn engage_acknowledge_and_the_timeline(mut s: TestServer) {
    let base = base(&s);
    create_admin(&s, ADMIN).await;
    person(&s, "ann", "Ann Example", "ann@example.com").await;
    let me = sign_in(&base, ADMIN, PASSWORD).await;

    // Nothing yet; the Engage form offers the contact, with a label on every field.
    let (status, html, _) = get(&base, "/engagements", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains("No engagements yet"), "{html}");
    let (_, form, _) = get(&base, "/engagements/new?contact=ann", Some(&me.cookie)).await;
    assert!(
        form.contains("<option value=\"ann\" selected>Ann Example (ann, contact)</option>"),
        "{form}"
    );
    for id in [
        "contact",
        "subject",
        "content",
        "public_subject",
        "public_content",
    ] {
        assert!(form.contains(&format!("<label for=\"{id}\">")), "{id}");
    }

    // The API's checks, beside the fields: an empty subject and content.
    let (status, html, _) = post_form(
        &base,
        "/engagements",
        &me,
        &[("contact", "ann"), ("subject", ""), ("content", "")],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains("id=\"subject-error\">Subject must be at least 1 character long."),
        "{html}"
    );
    assert!(html.contains("id=\"content-error\">Content must be at least 1"));
    // A contact that does not exist.
    let (status, html, _) = post_form(
        &base,
        "/engagements",
        &me,
        &[("contact", "nobody"), ("subject", "s"), ("content", "c")],
    )
    .await;
    assert_eq!(status, 404, "{html}");
    assert!(html.contains("id=\"contact-error\""), "{html}");
    let none = s.client.list_engagements().send().await.unwrap();
    assert!(none.engagements.is_empty(), "nothing was started");

    // Engage: the user text is escaped everywhere it shows.
    let subject = "<script>alert(1)</script> API down";
    let path = engage(&base, &me, "ann", subject).await;
    let page = outbox_message(&s, "page", "ann@example.com").await;
    assert_eq!(page["subject"], format!("[Muster] {subject}"));
    let code = page["accept_code"].as_str().unwrap().to_string();

    // The same form posted twice starts one engagement (its idempotency token).
    let (_, html, _) = get(&base, "/engagements/new", Some(&me.cookie)).await;
    let token = hidden(&html, "idempotency_token").unwrap();
    let twice = [
        ("contact", "ann"),
        ("subject", "twice"),
        ("content", "c"),
        ("idempotency_token", token.as_str()),
    ];
    let first = post_form(&base, "/engagements", &me, &twice).await;
    let second = post_form(&base, "/engagements", &me, &twice).await;
    assert_eq!((first.0, second.0), (303, 303));
    assert_eq!(first.2, second.2, "one engagement for a form posted twice");
    let path2 = first.2.strip_suffix("?done=started").unwrap().to_string();
    assert_eq!(
        s.client
            .list_engagements()
            .send()
            .await
            .unwrap()
            .engagements
            .len(),
        2
    );

    // The detail page, and the timeline partial polled while it runs.
    let (status, html, _) = get(&base, &format!("{path}?done=started"), Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains("Engagement started."), "{html}");
    assert!(!html.contains("<script>alert(1)</script>"), "{html}");
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62; API down"));
    assert!(html.contains("<label for=\"accept_code\">Accept code</label>"));
    assert!(html.contains("<label for=\"reason\">Reason</label>"));
    let partial = timeline_with(&base, &me, &path, "Sent: page to ann by Work mail (e-mail)").await;
    assert!(partial.starts_with("<section id=\"timeline\""), "{partial}");
    let at = partial
        .find(&format!("hx-get=\"{path}/timeline?v="))
        .expect("polled while it runs");
    let rest = &partial[at..];
    let version = &rest[rest.find("?v=").unwrap() + 3..rest.find("\" hx-trigger").unwrap()];
    assert!(
        rest.contains("\" hx-trigger=\"every 3s\" hx-swap=\"outerHTML\""),
        "{partial}"
    );
    // Unchanged since that version: nothing to swap.
    let r = browser::http()
        .get(format!("{base}{path}/timeline?v={version}"))
        .header("cookie", &me.cookie)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, again, _) = get(
        &base,
        &format!("{path}/timeline?v=0000000000000000"),
        Some(&me.cookie),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again, partial, "another version gets the timeline");
    assert!(partial.contains(">Engaged</span>"), "{partial}");
    // The SENT receipt's info: the outbox's id for the message.
    let message_id = page["message_id"].as_str().unwrap();
    assert!(partial.contains(message_id), "{partial}");
    assert!(!partial.contains("<html"), "a fragment, not a page");
    assert!(
        !partial.contains("hx-swap-oob"),
        "the forms stay while it runs"
    );

    // The list, newest first, with statuses.
    let (_, list, _) = get(&base, "/engagements", Some(&me.cookie)).await;
    let newer = list.find(&path2).expect("the second engagement listed");
    let older = list.find(&path).expect("the first engagement listed");
    assert!(newer < older, "newest first: {list}");
    assert!(list.contains(">Engaged</span>"));
    assert!(list.contains("&#60;script&#62;alert(1)"));
    assert!(!list.contains("<script>alert(1)</script>"));

    // A wrong code is a form error and acknowledges nothing.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, html, _) = post_form(
        &base,
        &format!("{path}/acknowledge"),
        &me,
        &[("accept_code", wrong)],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains(
            "id=\"accept_code-error\">Accept code does not match the code sent with the page."
        ),
        "{html}"
    );
    assert!(
        html.contains(&format!("value=\"{wrong}\"")),
        "the code is kept"
    );
    let pages = s
        .client
        .list_pages_by_engagement()
        .engagement_id(engagement_arn(&path))
        .send()
        .await
        .unwrap()
        .pages;
    assert_eq!(pages.len(), 1);
    assert!(pages[0].read_time.is_none(), "nothing acknowledged");
    // Letters are not a code: the model's pattern, from the API.
    let (status, html, _) = post_form(
        &base,
        &format!("{path}/acknowledge"),
        &me,
        &[("accept_code", "abc")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        html.contains("id=\"accept_code-error\">Accept code "),
        "{html}"
    );

    // The right code (spaces forgiven) acknowledges the page: the engagement ends.
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let (status, html, to) = post_form(
        &base,
        &format!("{path}/acknowledge"),
        &me,
        &[("accept_code", &spaced)],
    )
    .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(to, format!("{path}?done=acknowledged"));
    let receipts = s
        .client
        .list_page_receipts()
        .page_id(pages[0].page_arn.clone())
        .send()
        .await
        .unwrap()
        .receipts
        .unwrap_or_default();
    let read = receipts
        .iter()
        .find(|r| r.receipt_type == ReceiptType::Read)
        .expect("a READ receipt");
    assert_eq!(
        read.receipt_info.as_deref(),
        Some("acknowledged in the console by admin@example.com")
    );
    let e = s
        .client
        .describe_engagement()
        .engagement_id(engagement_arn(&path))
        .send()
        .await
        .unwrap();
    assert!(e.stop_time.is_some(), "the engagement ended");

    let (_, html, _) = get(&base, &to, Some(&me.cookie)).await;
    assert!(html.contains("Page acknowledged."));
    assert!(html.contains(">Acknowledged</span>"), "{html}");
    assert!(
        !html.contains("hx-trigger=\"every 3s\""),
        "no polling once ended"
    );
    assert!(!html.contains("action=\"{path}/acknowledge\""));
    let partial = timeline_with(&base, &me, &path, "Engagement acknowledged").await;
    assert!(!partial.contains("hx-trigger"), "{partial}");
    assert!(
        partial.contains("<div id=\"engagement-actions\" hx-swap-oob=\"true\">"),
        "the ended engagement's forms go: {partial}"
    );
    assert!(partial.contains("Acknowledged: page to ann by Work mail (e-mail)"));

    // Acknowledging again: nothing waits any more.
    let (status, html, _) = post_form(
        &base,
        &format!("{path}/acknowledge"),
        &me,
        &[("accept_code", &code)],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        html.contains("No page of this engagement is waiting"),
        "{html}"
    );

    // Unknown engagements are 404.
    let (status, _, _) = get(
        &base,
        "/engagements/ann/00000000-0000-4000-8000-000000000000",
        Some(&me.cookie),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = get(
        &base,
        "/engagements/ann/not-a-uuid/timeline",
        Some(&me.cookie),
    )
    .await;
    assert_eq!(status, 404);
    // The path names the engaged contact: another alias finds nothing, changes nothing.
    let other = path2.replace("/engagements/ann/", "/engagements/bob/");
    let (status, _, _) = get(&base, &other, Some(&me.cookie)).await;
    assert_eq!(status, 404);
    let (status, _, _) = post_form(&base, &format!("{other}/stop"), &me, &[]).await;
    assert_eq!(status, 404);
    let (status, _, _) = post_form(
        &base,
        &format!("{other}/acknowledge"),
        &me,
        &[("accept_code", "123456")],
    )
    .await;
    assert_eq!(status, 404);
    let e = s
        .client
        .describe_engagement()
        .engagement_id(engagement_arn(&path2))
        .send()
        .await
        .unwrap();
    assert!(e.stop_time.is_none(), "still running");
    s.stop().await;
}

async fn an_escalation_plan(mut s: TestServer) {
    let base = base(&s);
    browser::create_user(&s, RESPONDER, PASSWORD).await;
    let ann = person(&s, "ann", "Ann Example", "ann@example.com").await;
    let stage = Stage::builder()
        .duration_in_minutes(5)
        .targets(
            Target::builder()
                .contact_target_info(
                    ContactTargetInfo::builder()
                        .contact_id(&ann)
                        .is_essential(true)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build()
        .unwrap();
    s.client
        .create_contact()
        .alias("db-oncall")
        .display_name("Database on call")
        .r#type(ContactType::Escalation)
        .plan(Plan::builder().stages(stage).build())
        .send()
        .await
        .unwrap();
    let me = sign_in(&base, RESPONDER, PASSWORD).await;
    let (_, form, _) = get(&base, "/engagements/new", Some(&me.cookie)).await;
    assert!(form.contains(">Database on call (db-oncall, escalation plan)</option>"));
    let path = engage(&base, &me, "db-oncall", "Replica lag").await;
    let code = outbox_message(&s, "page", "ann@example.com").await["accept_code"]
        .as_str()
        .unwrap()
        .to_string();
    let partial = timeline_with(&base, &me, &path, "Sent: page to ann by Work mail (e-mail)").await;
    assert!(
        partial.contains("Engagement of db-oncall started"),
        "{partial}"
    );
    assert!(
        partial.contains("<td>db-oncall → ann (stage 1)</td>"),
        "the page's path (ListPageResolutions): {partial}"
    );
    let (status, html, _) = post_form(
        &base,
        &format!("{path}/acknowledge"),
        &me,
        &[("accept_code", &code)],
    )
    .await;
    assert_eq!(status, 303, "{html}");
    let partial = timeline_with(&base, &me, &path, "Acknowledged: page to ann").await;
    assert!(partial.contains("by responder@example.com"), "{partial}");
    s.stop().await;
}

async fn stop_an_engagement(mut s: TestServer) {
    let base = base(&s);
    browser::create_user(&s, RESPONDER, PASSWORD).await;
    person(&s, "bob", "Bob Example", "bob@example.com").await;
    let me = sign_in(&base, RESPONDER, PASSWORD).await;
    let path = engage(&base, &me, "bob", "Disk full").await;
    outbox_message(&s, "page", "bob@example.com").await;

    let (status, html, to) = post_form(
        &base,
        &format!("{path}/stop"),
        &me,
        &[("reason", "  false alarm <b>  ")],
    )
    .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(to, format!("{path}?done=stopped"));
    let e = s
        .client
        .describe_engagement()
        .engagement_id(engagement_arn(&path))
        .send()
        .await
        .unwrap();
    assert!(e.stop_time.is_some());

    let (_, html, _) = get(&base, &to, Some(&me.cookie)).await;
    assert!(html.contains("Engagement stopped."));
    assert!(html.contains(">Stopped</span>"), "{html}");
    assert!(html.contains("Reason: false alarm &#60;b&#62;"), "{html}");
    assert!(html.contains("This engagement has ended"));
    let (_, list, _) = get(&base, "/engagements", Some(&me.cookie)).await;
    assert!(list.contains(">Stopped</span>"), "{list}");

    // Stopping again changes nothing (as the API).
    let (status, _, _) = post_form(&base, &format!("{path}/stop"), &me, &[("reason", "")]).await;
    assert_eq!(status, 303);
    // A reason longer than the API allows is its error, beside the field.
    let path2 = engage(&base, &me, "bob", "Again").await;
    let long = "x".repeat(300);
    let (status, html, _) =
        post_form(&base, &format!("{path2}/stop"), &me, &[("reason", &long)]).await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains("id=\"reason-error\">Reason must be at most 255 characters long."),
        "{html}"
    );
    let e = s
        .client
        .describe_engagement()
        .engagement_id(engagement_arn(&path2))
        .send()
        .await
        .unwrap();
    assert!(e.stop_time.is_none(), "still running");
    s.stop().await;
}

/// The secret in a page that shows a new key.
fn shown_secret(html: &str) -> Option<String> {
    let at = html.find("<code id=\"new-key-secret\">")?;
    let rest = &html[at + "<code id=\"new-key-secret\">".len()..];
    Some(
        rest[..rest.find("</code>")?]
            .replace("&#43;", "+")
            .replace("&#47;", "/")
            .replace("&#x2f;", "/"),
    )
}

fn shown_key_id(html: &str) -> Option<String> {
    let at = html.find("<code id=\"new-key-id\">")?;
    let rest = &html[at + "<code id=\"new-key-id\">".len()..];
    Some(rest[..rest.find("</code>")?].to_string())
}

async fn access_keys(mut s: TestServer) {
    let base = base(&s);
    create_admin(&s, ADMIN).await;
    browser::create_user(&s, RESPONDER, PASSWORD).await;
    let admin = sign_in(&base, ADMIN, PASSWORD).await;
    let (status, html, _) = get(&base, "/settings", Some(&admin.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains(&s.key_id), "the bootstrap key is listed");
    assert!(!html.contains(&s.secret), "never a secret");
    assert!(
        html.contains("Create access key"),
        "the console can create keys only when the server gives it the master key: \
         crates/muster/src/server.rs, fn app, must build the console with \
         `Console::new(…).with_master_key(aws.auth.master_key.clone())`"
    );

    // Created: the secret is on this answer only.
    let (status, html, _) = post_form(&base, "/settings/keys", &admin, &[]).await;
    assert_eq!(status, 200, "{html}");
    let id = shown_key_id(&html).expect("the new key's id");
    let secret = shown_secret(&html).expect("the new key's secret");
    assert_eq!(secret.len(), 40);
    assert!(html.contains("shown only this once"));
    let (_, again, _) = get(&base, "/settings", Some(&admin.cookie)).await;
    assert!(again.contains(&id), "listed");
    assert!(!again.contains("new-key-secret"), "not shown again");
    assert!(
        !again.contains(&html_escaped(&secret)) && !again.contains(&secret),
        "the secret is never shown again"
    );

    // It works with the AWS SDK.
    let client = common::client(s.addr, &id, &secret);
    client
        .list_contacts()
        .send()
        .await
        .expect("the new key signs requests");

    // A responder sees the keys but cannot create or revoke them.
    let user = sign_in(&base, RESPONDER, PASSWORD).await;
    let (_, html, _) = get(&base, "/settings", Some(&user.cookie)).await;
    assert!(html.contains(&id));
    assert!(!html.contains("Create access key"));
    assert!(html.contains("Only administrators can create or revoke access keys."));
    let (status, _, _) = post_form(&base, "/settings/keys", &user, &[]).await;
    assert_eq!(status, 403);
    let (status, _, _) = post_form(&base, &format!("/settings/keys/{id}/revoke"), &user, &[]).await;
    assert_eq!(status, 403);
    client.list_contacts().send().await.expect("still active");

    let (status, _, _) = get(
        &base,
        &format!("/settings/keys/{id}/revoke"),
        Some(&user.cookie),
    )
    .await;
    assert_eq!(status, 403);

    // Revoked by the admin, after a confirmation page: refused from then on.
    let (status, html, _) = get(
        &base,
        &format!("/settings/keys/{id}/revoke"),
        Some(&admin.cookie),
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("action=\"/settings/keys/{id}/revoke\"")));
    assert!(!html.contains("last active access key"), "two are active");
    let (status, _, to) =
        post_form(&base, &format!("/settings/keys/{id}/revoke"), &admin, &[]).await;
    assert_eq!((status, to.as_str()), (303, "/settings?done=revoked"));
    let err = client.list_contacts().send().await.unwrap_err();
    assert_eq!(common::code(&err), "UnrecognizedClientException");
    let (_, html, _) = get(&base, &to, Some(&admin.cookie)).await;
    assert!(html.contains("Access key revoked."));
    assert!(html.contains("Revoked</span>"));
    // Twice, or an unknown key: an error on the page.
    let (status, html, _) =
        post_form(&base, &format!("/settings/keys/{id}/revoke"), &admin, &[]).await;
    assert_eq!(status, 404);
    assert!(html.contains("already revoked"), "{html}");
    let (status, _, _) = post_form(
        &base,
        "/settings/keys/AKIANOSUCHKEY0000000/revoke",
        &admin,
        &[],
    )
    .await;
    assert_eq!(status, 404);
    // The server's own key still works; it is now the last active one.
    s.client.list_contacts().send().await.unwrap();
    let (_, html, _) = get(
        &base,
        &format!("/settings/keys/{}/revoke", s.key_id),
        Some(&admin.cookie),
    )
    .await;
    assert!(html.contains("last active access key"), "{html}");
    let (status, _, _) = get(
        &base,
        &format!("/settings/keys/{id}/revoke"),
        Some(&admin.cookie),
    )
    .await;
    assert_eq!(status, 404, "already revoked");
    s.stop().await;
}

fn html_escaped(s: &str) -> String {
    s.replace('+', "&#43;").replace('/', "&#47;")
}

async fn outbox_and_providers(mut s: TestServer) {
    let base = base(&s);
    create_admin(&s, ADMIN).await;
    browser::create_user(&s, RESPONDER, PASSWORD).await;
    let admin = sign_in(&base, ADMIN, PASSWORD).await;
    let me = sign_in(&base, RESPONDER, PASSWORD).await;
    let (_, html, _) = get(&base, "/settings", Some(&admin.cookie)).await;
    assert!(
        html.contains("id=\"outbox\""),
        "the outbox is in use: {html}"
    );
    assert!(html.contains("Nothing has been sent to the outbox for this account lately."));
    assert!(html.contains("<a href=\"/muster.vcf\" download>"));
    assert!(html.contains("outbox.jsonl"), "the providers' targets");

    // A page of the console's account (engaged by the responder), and the activation code of
    // a channel of another account, in the same outbox file.
    person(&s, "cy", "Cy Example", "cy@example.com").await;
    engage(&base, &me, "cy", "Queue <backlog>").await;
    let page = outbox_message(&s, "page", "cy@example.com").await;
    assert_eq!(page["account"], "000000000000");
    let code = page["accept_code"].as_str().unwrap().to_string();
    let store = s.running.as_ref().unwrap().store.clone();
    let master =
        muster::server::load_master_key(&common::settings_for(&s.data_dir(), &s.database_url))
            .unwrap();
    let other = muster_core::AccountId::parse("111122223333").unwrap();
    let (id, secret) = muster::server::create_access_key(&store, &master, &other, &SystemClock)
        .await
        .unwrap();
    let theirs = common::client(s.addr, &id, &secret);
    let contact = theirs
        .create_contact()
        .alias("dee")
        .r#type(ContactType::Personal)
        .plan(Plan::builder().set_stages(Some(vec![])).build())
        .send()
        .await
        .unwrap()
        .contact_arn;
    theirs
        .create_contact_channel()
        .contact_id(&contact)
        .name("Mail")
        .r#type(ChannelType::Email)
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address("dee@elsewhere.example")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let line = outbox_message(&s, "activation", "dee@elsewhere.example").await;
    assert_eq!(line["account"], "111122223333");
    let their_code = format!(
        "Activation code: <code>{}</code>",
        line["activation_code"].as_str().unwrap()
    );
    // A line written before lines named their account.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(s.data_dir().join("outbox.jsonl"))
            .unwrap();
        f.write_all(
            b"{\"time\":\"2026-01-02T03:04:05.000Z\",\"kind\":\"activation\",\"channel_type\":\"EMAIL\",\
              \"address\":\"legacy@example.com\",\"subject\":\"Legacy\",\"body\":\"old\",\
              \"activation_code\":\"135790\"}\n",
        )
        .unwrap();
    }

    // A responder sees no outbox, and cannot have it by URL.
    let (status, html, _) = get(&base, "/settings", Some(&me.cookie)).await;
    assert_eq!(status, 200);
    assert!(!html.contains("id=\"outbox\""), "{html}");
    assert!(!html.contains(&format!("Accept code: <code>{code}</code>")));
    assert!(!html.contains("cy@example.com") && !html.contains("dee@elsewhere.example"));
    assert!(html.contains("Messages written to the outbox are shown to administrators only."));
    for path in ["/settings?outbox=all", "/settings?outbox=own"] {
        let (status, html, _) = get(&base, path, Some(&me.cookie)).await;
        assert_eq!(status, 403, "{path}");
        assert!(!html.contains("cy@example.com") && !html.contains(&their_code));
    }

    // The administrator sees the console account's messages, newest first, and no other
    // account's.
    let (_, html, _) = get(&base, "/settings", Some(&admin.cookie)).await;
    let newest = html
        .find("Queue &#60;backlog&#62;")
        .expect("the page is shown");
    let activation = html
        .find("Activation code: <code>")
        .expect("the activation message");
    assert!(newest < activation, "newest first");
    assert!(html.contains(&format!("Accept code: <code>{code}</code>")));
    assert!(html.contains("to <span class=\"address\">cy@example.com</span>"));
    assert!(!html.contains("Queue <backlog>"));
    assert!(
        !html.contains("dee@elsewhere.example"),
        "another account's message"
    );
    assert!(!html.contains(&their_code));
    assert!(
        !html.contains("legacy@example.com"),
        "a line naming no account"
    );
    assert!(html.contains("href=\"/settings?outbox=all#outbox\""));

    // All accounts, on the administrator's choice: each line says whose it is.
    let (status, html, _) = get(&base, "/settings?outbox=all", Some(&admin.cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains(&their_code), "{html}");
    assert!(html.contains("to <span class=\"address\">dee@elsewhere.example</span>"));
    assert!(html.contains("account <span class=\"alias\">111122223333</span>"));
    assert!(html.contains("to <span class=\"address\">legacy@example.com</span>"));
    assert!(html.contains("no account · activation"));
    assert!(html.contains(&format!("Accept code: <code>{code}</code>")));
    let legacy = html.find("legacy@example.com").unwrap();
    let theirs_at = html.find("dee@elsewhere.example").unwrap();
    assert!(legacy < theirs_at, "newest first");

    // The vCard the link points at.
    let r = browser::http()
        .get(format!("{base}/muster.vcf"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("BEGIN:VCARD"));
    s.stop().await;
}

async fn posts_without_csrf_are_refused(mut s: TestServer) {
    let base = base(&s);
    create_admin(&s, ADMIN).await;
    person(&s, "dee", "Dee Example", "dee@example.com").await;
    let me = sign_in(&base, ADMIN, PASSWORD).await;
    let path = engage(&base, &me, "dee", "Latency").await;
    let keys_before = s
        .running
        .as_ref()
        .unwrap()
        .store
        .count_access_keys()
        .await
        .unwrap();

    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/engagements".into(),
            vec![("contact", "dee"), ("subject", "s"), ("content", "c")],
        ),
        (
            format!("{path}/acknowledge"),
            vec![("accept_code", "123456")],
        ),
        (format!("{path}/stop"), vec![("reason", "r")]),
        ("/settings/keys".into(), vec![]),
        (format!("/settings/keys/{}/revoke", s.key_id), vec![]),
    ];
    for (url, fields) in &posts {
        // With the session but without the token; then with a wrong token; then signed out.
        let (status, _, _) = post_raw(&base, url, Some(&me.cookie), fields).await;
        assert_eq!(status, 403, "{url} without a token");
        let mut wrong = fields.clone();
        wrong.push(("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        let (status, _, _) = post_raw(&base, url, Some(&me.cookie), &wrong).await;
        assert_eq!(status, 403, "{url} with a wrong token");
        let mut right = fields.clone();
        right.push(("csrf_token", me.csrf.as_str()));
        let (status, _, _) = post_raw(&base, url, None, &right).await;
        assert_eq!(status, 403, "{url} without a session");
    }
    // Nothing changed.
    assert_eq!(
        s.client
            .list_engagements()
            .send()
            .await
            .unwrap()
            .engagements
            .len(),
        1
    );
    let e = s
        .client
        .describe_engagement()
        .engagement_id(engagement_arn(&path))
        .send()
        .await
        .unwrap();
    assert!(e.stop_time.is_none());
    let store = &s.running.as_ref().unwrap().store;
    assert_eq!(store.count_access_keys().await.unwrap(), keys_before);
    let key = store.get_access_key(&s.key_id).await.unwrap().unwrap();
    assert!(key.revoked_ms.is_none());
    // The session still works.
    let (status, _, _) = get(&base, &path, Some(&me.cookie)).await;
    assert_eq!(status, 200);
    s.stop().await;
}

// ---- in Chromium ----------------------------------------------------------------------

/// Engage → the detail page updating by itself (htmx polling) → Acknowledge with the code,
/// a phone-sized detail page, and the settings page; screenshots of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut s = common::start(common::Backend::Sqlite).await.unwrap();
    let base = base(&s);
    create_admin(&s, ADMIN).await;
    person(&s, "eve", "Eve Example", "eve@example.com").await;
    let c = b.c();

    c.goto(&format!("{base}/engagements")).await.unwrap();
    browser::browser_sign_in(&b, ADMIN, PASSWORD).await;
    assert_eq!(
        browser::path_of(&b).await,
        "/engagements",
        "back where it was going"
    );
    assert!(
        browser::text_of(&b, "main")
            .await
            .contains("No engagements yet")
    );
    click_to_load(&b, Locator::XPath(&labelled("Engage"))).await;
    assert_eq!(browser::path_of(&b).await, "/engagements/new");
    screenshot(&b, "engagements-new").await;

    // A subject that would be markup, and the form submitted with the keyboard.
    browser::choose(&b, "contact", "Eve Example (eve, contact)").await;
    browser::fill(
        &b,
        "subject",
        "<img src=x onerror=alert(1)> Checkout failing",
    )
    .await;
    browser::fill(&b, "content", "Error rate above 5% for 10 minutes.").await;
    browser::fill(&b, "public_subject", "Checkout failing").await;
    click_to_load(&b, Locator::XPath("//button[normalize-space()='Engage']")).await;
    let path = browser::path_of(&b).await;
    assert!(path.starts_with("/engagements/eve/"), "{path}");
    assert!(
        browser::text_of(&b, "main")
            .await
            .contains("<img src=x onerror=alert(1)> Checkout failing"),
        "the subject shows as text"
    );
    let imgs = c.find_all(Locator::Css("main img")).await.unwrap();
    assert!(imgs.is_empty(), "no element from user text");

    // The page goes out: the timeline shows its receipt without a reload.
    let marker = c
        .execute("window.__same_document = 'yes'; return 1", vec![])
        .await
        .unwrap();
    assert_eq!(marker, serde_json::json!(1));
    let page = outbox_message(&s, "page", "eve@example.com").await;
    let code = page["accept_code"].as_str().unwrap().to_string();
    eventually_long("the Sent receipt in the timeline", || async {
        browser::text_of(&b, "#timeline")
            .await
            .contains("Sent: page to eve by Work mail (e-mail)")
    })
    .await;
    let same = c
        .execute("return window.__same_document || 'reloaded'", vec![])
        .await
        .unwrap();
    assert_eq!(same, "yes", "updated in place, not reloaded");
    assert_eq!(browser::text_of(&b, "#engagement-status").await, "Engaged");
    screenshot(&b, "engagement-running").await;

    // A wrong code: the error beside the field, focusable by keyboard.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // By keyboard: Tab from the code to the button, Enter.
    browser::fill(&b, "accept_code", wrong).await;
    browser::press(&b, &[browser::TAB]).await;
    assert_eq!(browser::focused(&b).await, "Acknowledge");
    to_next_page(&b, || browser::press(&b, &[browser::ENTER])).await;
    assert!(
        browser::text_of(&b, "#accept_code-error")
            .await
            .contains("does not match"),
    );
    screenshot(&b, "engagement-wrong-code").await;

    // The right code.
    // Enter in the field submits its form.
    let typed = format!("{code}{}", browser::ENTER);
    to_next_page(&b, || browser::fill(&b, "accept_code", &typed)).await;
    assert!(browser::path_of(&b).await.ends_with("?done=acknowledged"));
    assert_eq!(
        browser::text_of(&b, "#engagement-status").await,
        "Acknowledged"
    );
    assert!(
        browser::text_of(&b, "#timeline")
            .await
            .contains("Acknowledged: page to eve by Work mail (e-mail)")
    );
    assert!(
        c.find_all(Locator::Id("accept_code"))
            .await
            .unwrap()
            .is_empty(),
        "no Acknowledge form once it has ended"
    );
    screenshot(&b, "engagement-acknowledged").await;
    scroll_to(&b, "timeline").await;
    screenshot(&b, "engagement-timeline").await;

    // The list.
    c.goto(&format!("{base}/engagements")).await.unwrap();
    assert!(browser::text_of(&b, "table").await.contains("Acknowledged"));
    screenshot(&b, "engagements-list").await;

    // A running engagement ended elsewhere: the open page sees it and drops its forms.
    let path2 = {
        click_to_load(&b, Locator::XPath(&labelled("Engage"))).await;
        browser::choose(&b, "contact", "Eve Example (eve, contact)").await;
        browser::fill(&b, "subject", "Second").await;
        browser::fill(&b, "content", "c").await;
        click_to_load(&b, Locator::XPath("//button[normalize-space()='Engage']")).await;
        browser::path_of(&b).await
    };
    let arn = engagement_arn(path2.split('?').next().unwrap());
    s.client
        .stop_engagement()
        .engagement_id(&arn)
        .reason("handled by phone")
        .send()
        .await
        .unwrap();
    eventually_long("the stop to show", || async {
        browser::text_of(&b, "#engagement-status").await == "Stopped"
    })
    .await;
    assert!(
        browser::text_of(&b, "#timeline")
            .await
            .contains("Reason: handled by phone")
    );
    assert!(
        browser::text_of(&b, "#engagement-actions")
            .await
            .contains("This engagement has ended"),
    );

    // Phone-sized: no sideways scrolling.
    c.set_window_size(390, 844).await.unwrap();
    c.refresh().await.unwrap();
    browser::no_sideways_scrolling(&b, "the engagement page on a phone").await;
    screenshot(&b, "engagement-phone").await;
    c.set_window_size(1280, 900).await.unwrap();

    // Settings: create a key (the secret once), the outbox, the providers.
    c.goto(&format!("{base}/settings")).await.unwrap();
    assert!(
        browser::text_of(&b, "#access-keys")
            .await
            .contains("Create access key"),
        "the console can create keys only when the server gives it the master key: \
         crates/muster/src/server.rs, fn app, must build the console with \
         `Console::new(…).with_master_key(aws.auth.master_key.clone())`"
    );
    click_to_load(&b, Locator::XPath(&labelled("Create access key"))).await;
    let secret = browser::text_of(&b, "#new-key-secret").await;
    assert_eq!(secret.len(), 40);
    let id = browser::text_of(&b, "#new-key-id").await;
    common::client(s.addr, &id, &secret)
        .list_contacts()
        .send()
        .await
        .expect("the key from the page works");
    assert!(browser::text_of(&b, "#outbox").await.contains(&code));
    screenshot(&b, "settings-new-key").await;
    c.goto(&format!("{base}/settings")).await.unwrap();
    assert!(
        c.find_all(Locator::Id("new-key-secret"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!browser::text_of(&b, "main").await.contains(&secret));
    screenshot(&b, "settings").await;
    scroll_to(&b, "outbox").await;
    screenshot(&b, "settings-outbox").await;

    // Revoking asks first; on a phone too.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{base}/settings/keys/{id}/revoke"))
        .await
        .unwrap();
    browser::no_sideways_scrolling(&b, "the revoke page on a phone").await;
    screenshot(&b, "settings-revoke-phone").await;
    click_to_load(&b, Locator::XPath(&labelled("Revoke access key"))).await;
    assert_eq!(browser::path_of(&b).await, "/settings?done=revoked");
    browser::no_sideways_scrolling(&b, "settings on a phone").await;
    screenshot(&b, "settings-phone").await;

    b.close().await;
    s.stop().await;
}

/// Does `action` and waits until the page it leads to has loaded.
async fn to_next_page<F, Fut>(b: &Browser, action: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let old = b.c().find(Locator::Css("html")).await.unwrap();
    action().await;
    eventually_long("the next page", || async { old.tag_name().await.is_err() }).await;
    eventually_long("the page to load", || async {
        b.c()
            .execute("return document.readyState", vec![])
            .await
            .is_ok_and(|v| v == "complete")
    })
    .await;
}

/// Scrolls the element with id `id` to the top of the window.
async fn scroll_to(b: &Browser, id: &str) {
    b.c()
        .execute(
            "document.getElementById(arguments[0]).scrollIntoView()",
            vec![serde_json::json!(id)],
        )
        .await
        .unwrap();
}

/// Waits up to 20 s (the timeline polls every 3 s).
async fn eventually_long<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
