//! The console for the people who run Muster: calendar feeds revoked from Settings (the
//! address stops working at once), and the sign-in limits behind a reverse proxy
//! (`trusted_proxies`: each client counted by its `X-Forwarded-For` address; without the
//! setting the header is ignored).

use crate::common;

use common::browser::{self, PASSWORD, attempt_from, base, create_user, get, post_form};

const USER: &str = "ops@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_feeds_are_revoked_from_settings() {
    let mut s = common::start(common::Backend::Sqlite).await.unwrap();
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    let me = browser::sign_in(&base, USER, PASSWORD).await;
    let cookie = Some(me.cookie.as_str());
    let ana = common::PagedPerson::new("ana", "ana@example.com")
        .create(&s)
        .await;
    let rotation = common::daily_rotation(&s.client, "primary", &[&ana.contact], "UTC", None).await;
    let id = rotation.rsplit('/').next().unwrap().to_owned();
    let (_, empty, _) = get(&base, "/settings", cookie).await;
    assert!(empty.contains("No calendar feeds."), "{empty}");

    // A feed made on the rotation's page works…
    let (status, page, _) = post_form(
        &base,
        &format!("/schedules/rotations/{id}/feeds"),
        &me,
        &[("target", "rotation")],
    )
    .await;
    assert!(status == 200 || status == 303, "{status} {page}");
    let url_at = page
        .find("/feeds/")
        .expect("the feed's address is shown once");
    let path = &page[url_at..url_at + page[url_at..].find('"').unwrap()];
    assert!(path.ends_with(".ics"), "{path}");
    let feed_url = format!("{base}{path}");
    let feed = || async {
        common::browser::http()
            .get(&feed_url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(feed().await, 200);

    // …is listed on Settings (never its address) with a Revoke button…
    let (_, settings, _) = get(&base, "/settings", cookie).await;
    let token = &path["/feeds/".len()..path.len() - ".ics".len()];
    assert!(!settings.contains(token), "the address is not shown again");
    assert!(settings.contains("rotation primary"), "{settings}");
    let action_at = settings
        .find("action=\"/settings/feeds/")
        .expect("a Revoke form");
    let action = &settings[action_at + "action=\"".len()..];
    let action = &action[..action.find('"').unwrap()];

    // …and once revoked, the address answers nothing.
    let (status, _, location) = post_form(&base, action, &me, &[]).await;
    assert_eq!(status, 303);
    assert_eq!(location, "/settings?done=feed-revoked#feeds");
    assert_ne!(feed().await, 200);
    let (_, settings, _) = get(&base, "/settings?done=feed-revoked", cookie).await;
    assert!(settings.contains("Calendar feed revoked."), "{settings}");
    assert!(settings.contains(">Revoked</span>"), "{settings}");
    assert!(
        !settings.contains("action=\"/settings/feeds/"),
        "no second Revoke"
    );
    // Again, or a feed that does not exist: said, nothing else changes.
    let (status, body, _) = post_form(&base, action, &me, &[]).await;
    assert_eq!(status, 404);
    assert!(body.contains("already revoked"), "{body}");
    let (status, _, _) = post_form(&base, "/settings/feeds/not-an-id/revoke", &me, &[]).await;
    assert_eq!(status, 404);
    // Without the form's CSRF token: refused.
    let r = common::browser::http()
        .post(format!("{base}{action}"))
        .header("cookie", &me.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    s.stop().await;
}

/// 20 failed sign-ins from one address in the window refuse the next from it.
async fn exhaust(base: &str, forwarded_for: &str) {
    for i in 0..20 {
        let a = attempt_from(
            base,
            &format!("stranger{i}@example.com"),
            "guess guess guess",
            Some(forwarded_for),
        )
        .await;
        assert_eq!(a.status, 401, "attempt {i} as {forwarded_for}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_limits_count_clients_behind_a_trusted_proxy() {
    // The test's requests come from 127.0.0.1: the proxy.
    let mut s = common::start_with(
        common::Backend::Sqlite,
        muster::server::system_clock(),
        |s| {
            s.trusted_proxies = vec!["127.0.0.1".to_owned()];
        },
    )
    .await
    .unwrap();
    let base = base(&s);
    create_user(&s, USER, PASSWORD).await;
    exhaust(&base, "198.51.100.7, 203.0.113.1").await;
    let refused = attempt_from(&base, USER, PASSWORD, Some("203.0.113.1")).await;
    assert_eq!(refused.status, 429, "the exhausted client");
    // Another client behind the same proxy signs in.
    let other = attempt_from(&base, USER, PASSWORD, Some("203.0.113.2")).await;
    assert_eq!(other.status, 303, "another client: {}", other.body);
    s.stop().await;

    // Without the setting the header is a client's own claim: every attempt counts for
    // 127.0.0.1, whatever it says.
    let mut s = common::start(common::Backend::Sqlite).await.unwrap();
    let base = browser::base(&s);
    create_user(&s, USER, PASSWORD).await;
    exhaust(&base, "203.0.113.1").await;
    let refused = attempt_from(&base, USER, PASSWORD, Some("203.0.113.2")).await;
    assert_eq!(refused.status, 429, "X-Forwarded-For ignored");
    s.stop().await;
}
