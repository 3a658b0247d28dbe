//! The console's Preview: the page of an escalation plan at a chosen instant (every page in
//! time order, the masked devices, the one that would not be sent, the lint's warning), the
//! Preview buttons of contacts, escalation plans, schedules and response plans, errors for a
//! bad time and an unknown contact, and the page in headless Chromium at desktop and phone
//! width, with screenshots in `target/console-screenshots/`.

use crate::common;

use aws_sdk_ssmcontacts::types::{
    ChannelTargetInfo, ChannelType, ContactChannelAddress, ContactTargetInfo, ContactType, Plan,
    Stage, Target,
};
use common::TestServer;
use common::browser::{self, Browser, PASSWORD, base, click_to_load, create_user, get, labelled};
use fantoccini::Locator;

const USER: &str = "oncall@example.com";

fn stage(minutes: i32, targets: Vec<Target>) -> Stage {
    Stage::builder()
        .duration_in_minutes(minutes)
        .set_targets(Some(targets))
        .build()
        .unwrap()
}

fn to_contact(arn: &str, essential: bool) -> Target {
    Target::builder()
        .contact_target_info(
            ContactTargetInfo::builder()
                .contact_id(arn)
                .is_essential(essential)
                .build()
                .unwrap(),
        )
        .build()
}

fn to_channel(arn: &str) -> Target {
    Target::builder()
        .channel_target_info(
            ChannelTargetInfo::builder()
                .contact_channel_id(arn)
                .build()
                .unwrap(),
        )
        .build()
}

/// `esc`: stage 1 (5 min) ana, stage 2 (5 min) bo (e-mail, and an SMS number never
/// activated).
async fn escalation(s: &TestServer) {
    let ana = common::PagedPerson::new("ana", "ana@example.com")
        .create(s)
        .await;
    let bo = common::PagedPerson::new("bo", "bo@example.com")
        .create(s)
        .await;
    let sms = s
        .client
        .create_contact_channel()
        .contact_id(&bo.contact)
        .name("phone")
        .r#type(ChannelType::Sms)
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address("+447700900123")
                .build(),
        )
        .defer_activation(true)
        .send()
        .await
        .unwrap()
        .contact_channel_arn;
    s.client
        .update_contact()
        .contact_id(&bo.contact)
        .plan(
            Plan::builder()
                .stages(stage(10, vec![to_channel(&bo.channel), to_channel(&sms)]))
                .build(),
        )
        .send()
        .await
        .unwrap();
    s.client
        .create_contact()
        .alias("esc")
        .r#type(ContactType::Escalation)
        .plan(
            Plan::builder()
                .stages(stage(5, vec![to_contact(&ana.contact, false)]))
                .stages(stage(5, vec![to_contact(&bo.contact, true)]))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// `sched`: a daily rotation `primary` of ana and bo, handing off at 09:00 UTC from Monday
/// 2026-12-21.
async fn on_call_schedule(s: &TestServer) {
    let arn = |a: &str| format!("arn:aws:ssm-contacts:us-east-1:000000000000:contact/{a}");
    let start = "2026-12-21T09:00:00Z".parse::<jiff::Timestamp>().unwrap();
    let rotation = common::daily_rotation(
        &s.client,
        "primary",
        &[&arn("ana"), &arn("bo")],
        "UTC",
        Some(start.as_second()),
    )
    .await;
    s.client
        .create_contact()
        .alias("sched")
        .r#type(ContactType::OncallSchedule)
        .plan(Plan::builder().rotation_ids(rotation).build())
        .send()
        .await
        .unwrap();
}

/// The rows of the pages table: (time, person, device cell, sent cell), tags stripped.
fn rows(html: &str) -> Vec<Vec<String>> {
    let Some(start) = html.find("<table class=\"preview-pages\">") else {
        return Vec::new();
    };
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    let body = &table[table.find("<tbody>").unwrap()..];
    body.split("<tr")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let cell = &cell[cell.find('>').unwrap() + 1..];
                    let cell = &cell[..cell.find("</td>").unwrap()];
                    let mut text = String::new();
                    let mut in_tag = false;
                    for ch in cell.chars() {
                        match ch {
                            '<' => {
                                in_tag = true;
                                text.push(' ');
                            }
                            '>' => in_tag = false,
                            c if !in_tag => text.push(c),
                            _ => {}
                        }
                    }
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_pages_and_buttons() {
    // Thursday 2026-12-24 10:00 UTC.
    let now = "2026-12-24T10:00:00Z".parse::<jiff::Timestamp>().unwrap();
    let clock = std::sync::Arc::new(muster_core::ManualClock::new(now.as_millisecond()));
    let mut s = common::start_with(common::Backend::Sqlite, clock, |_| {})
        .await
        .unwrap();
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    escalation(&s).await;
    let me = browser::sign_in(&base, USER, PASSWORD).await;
    let cookie = Some(me.cookie.as_str());

    let (status, html, _) = get(&base, "/preview/contact/esc?at=2026-12-24T03:00", cookie).await;
    assert_eq!(status, 200, "{html}");
    let got = rows(&html);
    // Columns: when, person, device, stage, through, sent.
    let summary: Vec<(&str, &str, &str, &str)> = got
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str(), r[5].as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "2026-12-24 03:00:00 UTC at once",
                "ana",
                "mail (EMAIL) a•••@example.com",
                "yes"
            ),
            (
                "2026-12-24 03:05:00 UTC +5 min",
                "bo",
                "mail (EMAIL) b•••@example.com",
                "yes"
            ),
            (
                "2026-12-24 03:05:00 UTC +5 min",
                "bo",
                "phone (SMS) +44••••••••23",
                "no : not activated"
            ),
        ],
        "{html}"
    );
    assert_eq!(got[2][4], "esc → bo");
    assert!(
        html.contains("paging ends at <time datetime=\"2026-12-24T03:15:00Z\">"),
        "{html}"
    );
    assert!(
        html.contains("<code>channel-not-activated</code>"),
        "{html}"
    );
    assert!(!html.contains("+447700900123"), "the address is masked");

    // Without a time: now. A time that is not one: said beside the field, now shown.
    let (status, html, _) = get(&base, "/preview/contact/esc", cookie).await;
    assert_eq!(status, 200);
    assert_eq!(rows(&html).len(), 3);
    assert_eq!(
        rows(&html)[0][0],
        "2026-12-24 10:00:00 UTC at once",
        "the server's clock"
    );
    let (status, html, _) = get(&base, "/preview/contact/esc?at=tomorrow", cookie).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"preview-at-error\""), "{html}");
    assert!(html.contains("is not a time"), "{html}");
    let (status, _, _) = get(&base, "/preview/contact/nobody", cookie).await;
    assert_eq!(status, 404);
    // Signed out: to the sign-in page.
    let (status, _, _) = get(&base, "/preview/contact/esc", None).await;
    assert_ne!(status, 200);

    // A person: two pages less, no warning.
    let (_, html, _) = get(&base, "/preview/contact/ana", cookie).await;
    assert_eq!(rows(&html).len(), 1);
    assert!(html.contains("id=\"preview-no-warnings\""), "{html}");

    // A response plan engaging nobody says so.
    let (status, body, _) = browser::post_form(
        &base,
        "/response-plans/new",
        &me,
        &[
            ("name", "checkout"),
            ("title", "Checkout down"),
            ("impact", "3"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let (_, html, _) = get(&base, "/preview/response-plan/checkout", cookie).await;
    assert!(html.contains("<code>nobody-paged</code>"), "{html}");

    // Home: bo is on call in `sched` until the next hand-off, the open incident, the
    // engagement paging now, and the warnings of everything that can be engaged.
    on_call_schedule(&s).await;
    let incidents = common::incidents_client(s.addr, &s.key_id, &s.secret);
    incidents
        .start_incident()
        .response_plan_arn("arn:aws:ssm-incidents::000000000000:response-plan/checkout")
        .send()
        .await
        .unwrap();
    s.client
        .start_engagement()
        .contact_id("arn:aws:ssm-contacts:us-east-1:000000000000:contact/esc")
        .sender("ops")
        .subject("Disk full on db-1")
        .content("Disk full")
        .send()
        .await
        .unwrap();
    let (status, html, _) = get(&base, "/home", cookie).await;
    assert_eq!(status, 200, "{html}");
    let oncall = &html[html
        .find("<table class=\"home-oncall\">")
        .expect("on-call table")..];
    let oncall = &oncall[..oncall.find("</table>").unwrap()];
    // 21 Dec ana, 22 bo, 23 ana, 24 bo (from 09:00 to 09:00 the next day).
    assert!(oncall.contains(">sched</a>"), "{oncall}");
    assert!(oncall.contains("<td>primary</td>"), "{oncall}");
    assert!(oncall.contains("<td>bo</td>"), "{oncall}");
    assert!(
        oncall.contains("datetime=\"2026-12-25T09:00:00Z\""),
        "{oncall}"
    );
    assert!(html.contains("Checkout down"), "{html}");
    assert!(html.contains("Disk full on db-1"), "{html}");
    // esc (bo's SMS), sched (bo's SMS again) and the response plan that engages nobody.
    assert!(html.contains("Plan warnings (3)"), "{html}");
    assert!(
        html.contains("href=\"/preview/response-plan/checkout\""),
        "{html}"
    );
    assert!(html.contains("<code>nobody-paged</code>"), "{html}");

    // The buttons.
    for (page, link) in [
        ("/schedules", "/preview/contact/sched"),
        ("/contacts/details/esc", "/preview/contact/esc"),
        ("/contacts/details/ana", "/preview/contact/ana"),
        ("/escalation-plans", "/preview/contact/esc"),
        ("/response-plans", "/preview/response-plan/checkout"),
    ] {
        let (status, html, _) = get(&base, page, cookie).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            html.contains(&format!("href=\"{link}\"")),
            "{page} has no {link}: {html}"
        );
    }

    // In Chromium: from the escalation plans to the preview, at desktop and phone width.
    if let Some(b) = Browser::start().await {
        let c = b.c();
        c.goto(&format!("{base}/escalation-plans")).await.unwrap();
        browser::browser_sign_in(&b, USER, PASSWORD).await;
        click_to_load(&b, Locator::XPath(&labelled("Preview esc"))).await;
        assert_eq!(browser::path_of(&b).await, "/preview/contact/esc");
        assert!(
            browser::text_of(&b, "#preview-warnings")
                .await
                .contains("channel-not-activated")
        );
        let shown = c
            .find_all(Locator::Css("table.preview-pages tbody tr"))
            .await
            .unwrap()
            .len();
        assert_eq!(shown, 3);
        browser::screenshot(&b, "preview-desktop").await;
        c.set_window_size(390, 844).await.unwrap();
        browser::no_sideways_scrolling(&b, "the preview on a phone").await;
        browser::screenshot(&b, "preview-phone").await;
        c.set_window_size(1280, 800).await.unwrap();

        // Times in the viewer's zone, UTC on hover: a zone chosen on Settings (a bad one
        // refused beside the field).
        c.goto(&format!("{base}/settings")).await.unwrap();
        browser::fill(&b, "tz-choice", "Mars/Olympus").await;
        c.find(Locator::XPath(&labelled("Save time zone")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert!(
            browser::text_of(&b, "#tz-error")
                .await
                .contains("is not a time zone")
        );
        browser::fill(&b, "tz-choice", "Asia/Tokyo").await;
        click_to_load(&b, Locator::XPath(&labelled("Save time zone"))).await;
        browser::eventually("the zone is kept", || async {
            browser::text_of(&b, "#tz-current").await == "Asia/Tokyo"
        })
        .await;
        c.goto(&format!("{base}/preview/contact/esc?at=2026-12-24T03:00"))
            .await
            .unwrap();
        let first = c
            .find(Locator::Css("table.preview-pages tbody tr td time"))
            .await
            .unwrap();
        // 03:00 UTC is noon in Tokyo (UTC+9, no daylight saving).
        let shown = first.text().await.unwrap();
        assert!(shown.starts_with("2026-12-24 12:00:00 "), "{shown}");
        assert_eq!(
            first.attr("title").await.unwrap().as_deref(),
            Some("2026-12-24 03:00:00 UTC")
        );

        // Home, in Tokyo time, at desktop and phone width.
        c.goto(&format!("{base}/home")).await.unwrap();
        let until = c
            .find(Locator::Css("table.home-oncall time"))
            .await
            .unwrap();
        // bo's shift ends at 09:00 UTC on the 25th: 18:00 in Tokyo.
        let shown = until.text().await.unwrap();
        assert!(shown.starts_with("2026-12-25 18:00:00 "), "{shown}");
        browser::screenshot(&b, "home-desktop").await;
        c.set_window_size(390, 844).await.unwrap();
        browser::no_sideways_scrolling(&b, "home on a phone").await;
        browser::screenshot(&b, "home-phone").await;
        b.close().await;
    }
    s.stop().await;
}
