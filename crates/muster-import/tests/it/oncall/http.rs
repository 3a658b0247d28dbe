//! Reading the API: pagination, rate limits, credentials, unreachable hosts, malformed
//! payloads, the capture directory and the phones file.

use super::fixtures::{Mode, TOKEN, dir, now, serve};
use muster_import::progress::Silent;
use muster_import::{ImportError, MapOptions, oncall};
use std::sync::atomic::Ordering;

async fn fetch(base: &str, token: &str) -> Result<oncall::Raw, ImportError> {
    let client = oncall::Client::new(base, token.into())?;
    oncall::fetch(&client, now(), &MapOptions::default(), &Silent).await
}

/// Catches: not following `next` (3 users instead of 5, one final shift instead of two),
/// final shifts not clipped to the window, the token not sent (401), the account not the host.
#[tokio::test]
async fn fetch_follows_every_page_and_clips_the_rendering() {
    let server = serve(Mode::Normal).await;
    let raw = fetch(&format!("{}/", server.base), TOKEN).await.unwrap();
    assert_eq!(raw.account, "127.0.0.1");
    let ids: Vec<&str> = raw.users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["U1ALICE", "U2BOB", "U3CAROL", "U4DAVE", "U5ERIN"]);
    assert_eq!(raw.personal_notification_rules.len(), 14);
    assert_eq!(raw.schedules.len(), 4);
    assert_eq!(raw.on_call_shifts.len(), 11);
    assert_eq!(raw.escalation_chains.len(), 3);
    assert_eq!(raw.escalation_policies.len(), 12);
    assert_eq!(raw.teams.len(), 1);
    let r = raw.final_shifts.as_ref().unwrap();
    assert_eq!(r.from, now());
    // The horizon (90 days): the snapshot of an iCal schedule needs more than four weeks.
    assert_eq!(r.to, "2027-03-06T12:00:00Z".parse().unwrap());
    let seu = &r.schedules["SEU"];
    assert_eq!(seu.len(), 2);
    // Bob's week began before the window: it is cut at `now`.
    assert_eq!(seu[0].user_pk, "U2BOB");
    assert_eq!(seu[0].shift_start, now());
    assert_eq!(seu[0].shift_end, "2026-12-07T08:00:00Z".parse().unwrap());
    assert_eq!(seu[1].user_pk, "U4DAVE");
    assert!(r.schedules["SNIGHT"].is_empty());
    assert_eq!(r.schedules["SICAL"].len(), 3);
    assert_eq!(r.schedules["SICAL"][2].shift_end, r.to);
    // 7 lists, users in two pages, 4 schedules' final shifts, SEU's in two pages.
    assert_eq!(server.requests.load(Ordering::SeqCst), 7 + 1 + 4 + 1);
}

/// Catches: a 429 treated as an error, or `Retry-After` ignored (the retry would come at
/// once; the server asked for one second).
#[tokio::test]
async fn a_429_is_retried_after_the_time_asked() {
    let server = serve(Mode::RateLimitedOnce).await;
    let t0 = std::time::Instant::now();
    let raw = fetch(&server.base, TOKEN).await.unwrap();
    assert!(
        t0.elapsed() >= std::time::Duration::from_millis(950),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(server.limited.load(Ordering::SeqCst), 1);
    assert_eq!(raw.users.len(), 5);
}

/// Catches: retrying for ever, or an error that does not say it was rate limiting.
#[tokio::test]
async fn endless_429s_end_in_a_clear_error() {
    let server = serve(Mode::RateLimitedAlways).await;
    let err = fetch(&server.base, TOKEN).await.unwrap_err();
    assert!(matches!(err, ImportError::Source(_)), "{err:?}");
    assert!(err.to_string().contains("429"), "{err}");
    assert_eq!(server.limited.load(Ordering::SeqCst), 6);
}

/// Catches: a 401 reported as a source error or as data.
#[tokio::test]
async fn a_wrong_token_is_a_credentials_error() {
    let server = serve(Mode::Normal).await;
    let err = fetch(&server.base, "wrong").await.unwrap_err();
    assert!(matches!(err, ImportError::Credentials(_)), "{err:?}");
    assert!(err.to_string().contains("401"), "{err}");
}

/// Catches: a refused connection reported as anything but `Unreachable`.
#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = fetch(&format!("http://127.0.0.1:{port}"), TOKEN)
        .await
        .unwrap_err();
    assert!(matches!(err, ImportError::Unreachable(_)), "{err:?}");
}

/// Catches: a payload error that does not name the entity and the field.
#[tokio::test]
async fn a_malformed_shift_names_the_shift_and_the_field() {
    let server = serve(Mode::Malformed).await;
    let err = fetch(&server.base, TOKEN).await.unwrap_err();
    let ImportError::Unexpected(msg) = &err else {
        panic!("{err:?}");
    };
    assert!(msg.contains("on-call shift 'OHBAD'"), "{msg}");
    assert!(msg.contains("duration"), "{msg}");
}

/// Catches: an empty token accepted, a non-http URL accepted, the token sent in clear text
/// over the network.
#[test]
fn client_refuses_bad_settings() {
    assert!(matches!(
        oncall::Client::new("http://oncall.example.com", "t".into()),
        Err(ImportError::Input(_))
    ));
    assert!(matches!(
        oncall::Client::new("https://oncall.example.com", " ".into()),
        Err(ImportError::Credentials(_))
    ));
    assert!(matches!(
        oncall::Client::new("ftp://oncall.example.com", "t".into()),
        Err(ImportError::Input(_))
    ));
}

/// Catches: a capture that loses a field on the way to disk and back.
#[tokio::test]
async fn a_capture_reads_back_the_same() {
    let server = serve(Mode::Normal).await;
    let raw = fetch(&server.base, TOKEN).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    oncall::write_dir(&raw, tmp.path()).unwrap();
    assert_eq!(oncall::read_dir(tmp.path()).unwrap(), raw);
    assert!(matches!(
        oncall::read_dir(&tmp.path().join("missing")),
        Err(ImportError::Input(_))
    ));
}

/// Catches: e-mails matched case-sensitively, the channel column ignored, bad numbers or
/// duplicates accepted.
#[test]
fn the_phones_file() {
    let phones = oncall::read_phones(&dir().join("phones.csv")).unwrap();
    assert_eq!(phones.len(), 3);
    assert_eq!(phones["alice@example.com"], "+4915112345678");
    assert_eq!(phones["bob@example.com"], "+14155550100,sms");
    assert_eq!(phones["dave@example.com"], "+33612345678");
    let tmp = tempfile::tempdir().unwrap();
    for bad in [
        "a@example.com,0049151\n",
        "a@example.com,+49151123456,fax\n",
        "a@example.com,+49151123456\nA@example.com,+49151123457\n",
        "not-an-email,+49151123456\n",
    ] {
        let p = tmp.path().join("p.csv");
        std::fs::write(&p, bad).unwrap();
        assert!(
            matches!(oncall::read_phones(&p), Err(ImportError::Input(_))),
            "{bad:?}"
        );
    }
}

/// Read live, an iCal schedule is imported as OnCall renders it (P8), and the rendering the
/// proof uses is the source's, four weeks long. Catches: the snapshot cut at four weeks
/// instead of the horizon, a stretch lost, the iCal schedule still refused, the rendering not
/// clipped to the equivalence window.
#[tokio::test]
async fn a_live_ical_schedule_becomes_a_snapshot() {
    let server = serve(Mode::Normal).await;
    let raw = fetch(&server.base, TOKEN).await.unwrap();
    let d = oncall::map(
        &raw,
        &super::fixtures::phones(),
        &MapOptions::default(),
        now(),
    );
    let s = d.schedules.iter().find(|s| s.id == "SICAL").unwrap();
    assert_eq!(s.rotations, ["SICAL:snapshot"]);
    let r = d
        .rotations
        .iter()
        .find(|r| r.id == "SICAL:snapshot")
        .unwrap();
    assert_eq!(r.members, ["U1ALICE", "U2BOB"]);
    let o: Vec<(String, String, String)> = r
        .overrides
        .iter()
        .map(|o| (o.members.join(","), o.start.to_string(), o.end.to_string()))
        .collect();
    let s3 = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        o,
        [
            s3("U1ALICE", "2026-12-06T12:00:00Z", "2026-12-13T00:00:00Z"),
            s3("U2BOB", "2026-12-13T00:00:00Z", "2026-12-20T00:00:00Z"),
            s3("U1ALICE", "2026-12-20T00:00:00Z", "2027-03-06T12:00:00Z"),
        ]
    );
    assert!(
        d.losses
            .iter()
            .any(|l| l.code == "lossy-snapshot" && l.entity == "schedule:SICAL")
    );
    assert!(!d.losses.iter().any(|l| l.code == "ical-schedule"));
    let rendering = d.renderings.iter().find(|r| r.schedule == "SICAL").unwrap();
    assert_eq!(rendering.rendered_by, "source");
    assert_eq!(rendering.to, "2027-01-03T12:00:00Z".parse().unwrap());
    assert!(rendering.intervals.iter().all(|i| i.end <= rendering.to));
    let muster =
        muster_import::equivalence::from_desired(&d, "SICAL", rendering.from, rendering.to);
    assert!(muster_import::equivalence::compare(rendering, &muster, "plan", &d).exact());
}
