//! Reading Opsgenie over HTTP from the local server, and the captured directories.

use std::sync::Mutex;
use std::time::Instant;

use muster_import::opsgenie::{self, Client};
use muster_import::progress::{Progress, Silent};
use muster_import::{ImportError, MapOptions};

use crate::server::{self, KEY, Mode};
use crate::{NOW, at, on_call};

const U1: &str = "11111111-0000-4000-8000-000000000001";
const U2: &str = "11111111-0000-4000-8000-000000000002";
const S1: &str = "33333333-0000-4000-8000-000000000001";

#[derive(Default)]
struct Record(Mutex<Vec<(String, usize, Option<usize>)>>);

impl Progress for Record {
    fn step(&self, what: &str, done: usize, total: Option<usize>) {
        self.0.lock().unwrap().push((what.to_owned(), done, total));
    }
}

async fn read(mode: Mode, fillers: usize) -> (server::Fake, Result<opsgenie::Raw, ImportError>) {
    let fake = server::start(mode, fillers).await;
    let client = Client::new(&fake.url, KEY.to_owned()).unwrap();
    let raw = opsgenie::fetch(&client, at(NOW), &MapOptions::default(), &Silent).await;
    (fake, raw)
}

/// Catches: stopping after the first page of users (offset never advanced), not asking for a
/// rule's steps when the rule comes without them, overrides read without their rotations,
/// the timeline not read or not used for the rendering, a missing `GenieKey` header.
#[tokio::test]
async fn a_live_read_pages_users_and_renders_from_the_timeline() {
    let fake = server::start(Mode::Normal, 146).await;
    let client = Client::new(&fake.url, KEY.to_owned()).unwrap();
    let progress = Record::default();
    let raw = opsgenie::fetch(&client, at(NOW), &MapOptions::default(), &progress)
        .await
        .unwrap();
    assert_eq!(raw.users.len(), 150);
    let hits = fake.hits();
    assert!(
        hits.iter()
            .any(|h| h.contains("/v2/users?limit=100&offset=0"))
    );
    assert!(
        hits.iter()
            .any(|h| h.contains("/v2/users?limit=100&offset=100"))
    );
    assert!(!hits.iter().any(|h| h.contains("offset=200")), "{hits:?}");
    assert!(
        progress
            .0
            .lock()
            .unwrap()
            .contains(&("users".to_owned(), 150, Some(150)))
    );
    let ann = raw.users.iter().find(|u| u.id == U1).unwrap();
    assert_eq!(ann.contacts.len(), 4);
    let rule = ann
        .notification_rules
        .iter()
        .find(|r| r.id == "r-ann-1")
        .unwrap();
    assert_eq!(rule.steps.len(), 4, "steps come from …/steps");
    assert!(
        hits.iter()
            .any(|h| h.ends_with("/notification-rules/r-ann-1/steps"))
    );
    let s1 = raw.schedules.iter().find(|s| s.id == S1).unwrap();
    // `past` ended and `far` starts after the 90-day horizon: not read.
    let aliases: Vec<&str> = s1.overrides.iter().map(|o| o.alias.as_str()).collect();
    assert_eq!(
        aliases,
        [
            "swap-1",
            "vacation-cover",
            "short",
            "not-member",
            "nobody-lunch"
        ]
    );
    assert_eq!(
        s1.overrides[0].rotations.len(),
        1,
        "rotations come from the single override"
    );
    assert_eq!(raw.timelines.len(), 3);
    assert_eq!(raw.account, fake.url.trim_start_matches("http://"));

    let d = opsgenie::map(&raw, &MapOptions::default(), at(NOW));
    assert_eq!(d.people.len(), 151, "150 users and one nobody");
    let r = d.renderings.iter().find(|r| r.schedule == S1).unwrap();
    assert_eq!(r.rendered_by, "source");
    // The fixture's periods, clipped to [now, now + 28 d): Bob until 12-14 08:00Z (three
    // periods merged), then the `none` turn (the nobody person) until 12-21 08:00Z.
    assert_eq!(r.intervals.len(), 2, "{:?}", r.intervals);
    assert_eq!(
        (r.intervals[0].start, r.intervals[0].end),
        (at(NOW), at("2026-12-14T08:00:00Z"))
    );
    assert_eq!(r.intervals[0].people, [U2]);
    assert_eq!(r.intervals[1].people, ["none-1"]);
    assert_eq!(
        on_call(&r.intervals, "2026-12-21T09:00:00Z"),
        Vec::<String>::new()
    );
    // S2's timeline forwards a turn: reported, and the rendering shows the forwardee.
    let s2 = "33333333-0000-4000-8000-000000000002";
    assert!(
        d.losses
            .iter()
            .any(|l| l.code == "forwarding-not-imported" && l.entity == format!("schedule:{s2}"))
    );
    let r2 = d.renderings.iter().find(|r| r.schedule == s2).unwrap();
    assert_eq!(
        on_call(&r2.intervals, "2026-12-07T22:00:00Z"),
        ["11111111-0000-4000-8000-000000000003"]
    );
}

/// Catches: giving up (or failing) on the first 429 instead of waiting as the header says.
#[tokio::test]
async fn a_429_is_waited_out_then_the_read_goes_on() {
    let started = Instant::now();
    let (fake, raw) = read(Mode::RateLimitOnce, 0).await;
    let raw = raw.unwrap();
    assert_eq!(raw.users.len(), 4);
    let user_lists = fake
        .hits()
        .iter()
        .filter(|h| h.starts_with("/v2/users?"))
        .count();
    assert_eq!(user_lists, 2);
    assert!(
        started.elapsed().as_millis() >= 900,
        "X-RateLimit-Period-In-Sec: 1 honoured"
    );
}

/// Catches: retrying a permanent 429 for ever (the test would hang) or without a clear error.
#[tokio::test]
async fn a_lasting_429_ends_in_a_clear_error() {
    let (fake, raw) = read(Mode::RateLimitAlways, 0).await;
    let err = raw.unwrap_err();
    assert!(matches!(err, ImportError::Source(_)), "{err}");
    assert!(err.to_string().contains("rate limit"), "{err}");
    assert_eq!(fake.hits().len(), 6);
}

/// Catches: a refused key reported as a generic source error (the user must fix the key).
#[tokio::test]
async fn a_refused_key_is_a_credentials_error() {
    let fake = server::start(Mode::Normal, 0).await;
    let client = Client::new(&fake.url, "wrong".to_owned()).unwrap();
    let err = opsgenie::fetch(&client, at(NOW), &MapOptions::default(), &Silent)
        .await
        .unwrap_err();
    assert!(matches!(err, ImportError::Credentials(_)), "{err}");
    assert!(err.to_string().contains("401"), "{err}");
}

/// Catches: a connection failure reported as anything but `Unreachable`.
#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = Client::new(&format!("http://127.0.0.1:{port}"), KEY.to_owned()).unwrap();
    let err = opsgenie::fetch(&client, at(NOW), &MapOptions::default(), &Silent)
        .await
        .unwrap_err();
    assert!(matches!(err, ImportError::Unreachable(_)), "{err}");
}

/// Catches: an unknown rotation type silently skipped or mapped, or an error that does not
/// say which entity and field.
#[tokio::test]
async fn a_malformed_payload_names_the_entity_and_field() {
    let (_fake, raw) = read(Mode::Malformed, 0).await;
    let err = raw.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ImportError::Unexpected(_)), "{text}");
    assert!(text.contains("schedules"), "{text}");
    assert!(text.contains("[0].rotations[0].type"), "{text}");
    assert!(text.contains("yearly"), "{text}");
}

/// Catches: a wrong host for a site, or garbage accepted as a URL.
#[test]
fn sites_name_their_hosts() {
    assert_eq!(Client::site("us").unwrap(), "https://api.opsgenie.com");
    assert_eq!(Client::site("eu").unwrap(), "https://api.eu.opsgenie.com");
    assert_eq!(
        Client::site("https://api.sandbox.opsgenie.com/").unwrap(),
        "https://api.sandbox.opsgenie.com"
    );
    assert!(matches!(Client::site("mars"), Err(ImportError::Input(_))));
    assert!(matches!(
        Client::new("ftp://x", "k".into()),
        Err(ImportError::Input(_))
    ));
    assert!(matches!(
        Client::new("https://x", " ".into()),
        Err(ImportError::Credentials(_))
    ));
}

/// Catches: a capture that does not read back as written (a field lost in serialisation).
#[tokio::test]
async fn a_capture_reads_back_as_written() {
    let (_fake, raw) = read(Mode::Normal, 3).await;
    let raw = raw.unwrap();
    let dir = tempfile::tempdir().unwrap();
    opsgenie::write_dir(&raw, dir.path()).unwrap();
    let back = opsgenie::read_dir(dir.path()).unwrap();
    assert_eq!(back, raw);
}

/// The backup tool's directory and the live API describe the same fixture account: both
/// readers must give the same desired set (renderings aside: the live one has Opsgenie's).
/// Catches: the backup reader missing `userContacts`/`contactMethod`, the SDK's date format,
/// `scheduleOverrideList`, or the `{"user": …}` / `{"schedule": …}` wrappers.
#[tokio::test]
async fn the_backup_directory_maps_like_the_live_api() {
    let (_fake, live) = read(Mode::Normal, 0).await;
    let live = live.unwrap();
    let backup = opsgenie::read_dir(&server::fixtures().join("backup")).unwrap();
    assert_eq!(backup.account, "backup");
    assert!(backup.timelines.is_empty());
    let opts = MapOptions::default();
    let a = opsgenie::map(&live, &opts, at(NOW));
    let b = opsgenie::map(&backup, &opts, at(NOW));
    assert_eq!(a.people, b.people);
    assert_eq!(a.rotations, b.rotations);
    assert_eq!(a.schedules, b.schedules);
    assert_eq!(a.escalations, b.escalations);
    // The live read leaves out overrides beyond the horizon, so their loss is the backup's
    // only; forwarding shows in the live timeline only.
    let losses = |d: &muster_import::Desired| -> Vec<_> {
        d.losses
            .iter()
            .filter(|l| l.code != "override-beyond-horizon" && l.code != "forwarding-not-imported")
            .cloned()
            .collect()
    };
    assert_eq!(losses(&a), losses(&b));
    assert!(b.losses.iter().any(|l| l.code == "override-beyond-horizon"));
    assert!(b.renderings.iter().all(|r| r.rendered_by == "reference"));
    // The OpsGenieBackups directory itself reads the same.
    let inner = opsgenie::read_dir(&server::fixtures().join("backup/OpsGenieBackups")).unwrap();
    assert_eq!(inner, backup);
    assert!(matches!(
        opsgenie::read_dir(&server::fixtures().join("nothing-here")),
        Err(ImportError::Input(_))
    ));
}

/// Catches: an error reading one user's details (read a few users at a time) lost or not
/// naming the user and field.
#[tokio::test]
async fn a_bad_contact_names_the_user_and_field() {
    let (_fake, raw) = read(Mode::BadContact, 20).await;
    let err = raw.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ImportError::Unexpected(_)), "{text}");
    assert!(text.contains(&format!("user '{U2}' contacts")), "{text}");
    assert!(text.contains("[0].to"), "{text}");
}
