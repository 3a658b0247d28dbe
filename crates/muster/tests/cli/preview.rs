//! `muster preview` against the real engine: an escalation plan (a person, an on-call
//! schedule, a person with a channel that is not activated) is previewed at the instant a
//! real engagement of it started, and the engagement's pages, their channels, times and
//! receipts are compared with the preview's.

use super::{common, muster, serve_with, terminate};
use aws_sdk_ssmcontacts::Client;
use aws_sdk_ssmcontacts::primitives::DateTimeFormat;
use aws_sdk_ssmcontacts::types::{
    ChannelTargetInfo, ChannelType, ContactChannelAddress, ContactTargetInfo, ContactType, Plan,
    Stage, Target,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// One service minute is three real seconds.
const SCALE: f64 = 20.0;

fn outbox(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn code_of(dir: &Path, address: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = outbox(dir)
            .into_iter()
            .rfind(|m| m["kind"] == "activation" && m["address"] == address)
        {
            return m["activation_code"].as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no activation code for {address}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn channel_target(channel: &str) -> Target {
    Target::builder()
        .channel_target_info(
            ChannelTargetInfo::builder()
                .contact_channel_id(channel)
                .build()
                .unwrap(),
        )
        .build()
}

fn contact_target(contact: &str, essential: bool) -> Target {
    Target::builder()
        .contact_target_info(
            ContactTargetInfo::builder()
                .contact_id(contact)
                .is_essential(essential)
                .build()
                .unwrap(),
        )
        .build()
}

fn stage(minutes: i32, targets: Vec<Target>) -> Stage {
    Stage::builder()
        .duration_in_minutes(minutes)
        .set_targets(Some(targets))
        .build()
        .unwrap()
}

fn preview(dir: &Path, args: &[&str]) -> std::process::Output {
    muster()
        .arg("--data-dir")
        .arg(dir)
        .arg("preview")
        .args(args)
        .output()
        .unwrap()
}

fn preview_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = preview(dir, &[args, &["--json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ms_of(rfc3339: &str) -> i64 {
    rfc3339
        .parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .as_millisecond()
}

/// The escalation plan `esc`: stage 1 (1 min) ana and the schedule `sched` (cy on call),
/// stage 2 (1 min) bo, essential. ana pages her e-mail in two 1-minute stages; bo pages his
/// e-mail and an SMS number never activated. Returns (esc, sched, bo's SMS channel).
async fn plans(client: &Client, dir: &Path) -> (String, String, String) {
    let ana = common::PagedPerson {
        stage_minutes: &[1, 1],
        ..common::PagedPerson::new("ana", "ana@example.com")
    }
    .create_with(client, async |a| code_of(dir, a).await)
    .await;
    let bo = common::PagedPerson {
        stage_minutes: &[2],
        ..common::PagedPerson::new("bo", "bo@example.com")
    }
    .create_with(client, async |a| code_of(dir, a).await)
    .await;
    let cy = common::PagedPerson::new("cy", "cy@example.com")
        .create_with(client, async |a| code_of(dir, a).await)
        .await;
    let bo_sms = client
        .create_contact_channel()
        .contact_id(&bo.contact)
        .name("phone")
        .r#type(ChannelType::Sms)
        .delivery_address(
            ContactChannelAddress::builder()
                .simple_address("+15005550006")
                .build(),
        )
        .defer_activation(true)
        .send()
        .await
        .unwrap()
        .contact_channel_arn;
    client
        .update_contact()
        .contact_id(&bo.contact)
        .plan(
            Plan::builder()
                .stages(stage(
                    2,
                    vec![channel_target(&bo.channel), channel_target(&bo_sms)],
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let rotation = common::daily_rotation(client, "primary", &[&cy.contact], "UTC", None).await;
    let sched = client
        .create_contact()
        .alias("sched")
        .r#type(ContactType::OncallSchedule)
        .plan(Plan::builder().rotation_ids(&rotation).build())
        .send()
        .await
        .unwrap()
        .contact_arn;
    let esc = client
        .create_contact()
        .alias("esc")
        .r#type(ContactType::Escalation)
        .plan(
            Plan::builder()
                .stages(stage(
                    1,
                    vec![
                        contact_target(&ana.contact, false),
                        contact_target(&sched, false),
                    ],
                ))
                .stages(stage(1, vec![contact_target(&bo.contact, true)]))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .contact_arn;
    (esc, sched, bo_sms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_shows_the_pages_a_real_engagement_sends() {
    let dir = tempfile::tempdir().unwrap();
    let scale = SCALE.to_string();
    let (mut child, addr, _logs, _) = serve_with(dir.path(), &["--time-scale", &scale]);
    let (key_id, secret) = common::read_credentials(&dir.path().join("credentials"));
    let client = common::client(addr.parse().unwrap(), &key_id, &secret);
    let (esc, sched, bo_sms) = plans(&client, dir.path()).await;

    let engagement = client
        .start_engagement()
        .contact_id(&esc)
        .sender("preview test")
        .subject("disk full")
        .content("disk full")
        .send()
        .await
        .unwrap()
        .engagement_arn;
    let started = client
        .describe_engagement()
        .engagement_id(&engagement)
        .send()
        .await
        .unwrap()
        .start_time
        .unwrap();
    let started_text = started.fmt(DateTimeFormat::DateTime).unwrap();
    let start_ms = ms_of(&started_text);
    // Read while the engagement runs: the preview is of the plans, not of the engagement.
    let p = preview_json(dir.path(), &[&esc, "--at", &started_text]);
    assert_eq!(ms_of(p["at"].as_str().unwrap()), start_ms);

    // Wait for the engagement to end (3 service minutes): every page it will send exists.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let e = client
            .describe_engagement()
            .engagement_id(&engagement)
            .send()
            .await
            .unwrap();
        if e.stop_time.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the engagement never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The real pages: (contact, channel, when, sent) from their receipts.
    let pages = client
        .list_pages_by_engagement()
        .engagement_id(&engagement)
        .send()
        .await
        .unwrap()
        .pages;
    let mut real = Vec::new();
    for page in &pages {
        let receipts = client
            .list_page_receipts()
            .page_id(&page.page_arn)
            .send()
            .await
            .unwrap()
            .receipts
            .unwrap_or_default();
        let first = receipts
            .iter()
            .min_by_key(|r| r.receipt_time.secs())
            .unwrap_or_else(|| panic!("{} has no receipt", page.page_arn));
        let channel = first.contact_channel_arn.clone().unwrap();
        let sent = page.sent_time.is_some();
        let at = page.sent_time.unwrap_or(first.receipt_time);
        let at_ms = ms_of(&at.fmt(DateTimeFormat::DateTime).unwrap());
        real.push((page.contact_arn.clone(), channel, at_ms, sent));
    }
    let previewed: Vec<(String, String, i64, bool)> = p["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["contact"].as_str().unwrap().to_owned(),
                x["channel"].as_str().unwrap().to_owned(),
                ms_of(x["at"].as_str().unwrap()),
                x["sends"].as_bool().unwrap(),
            )
        })
        .collect();
    let key = |v: &[(String, String, i64, bool)]| -> BTreeSet<(String, String, bool)> {
        v.iter()
            .map(|(c, ch, _, s)| (c.clone(), ch.clone(), *s))
            .collect()
    };
    assert_eq!(
        real.len(),
        previewed.len(),
        "real {real:#?}\npreview {previewed:#?}"
    );
    assert_eq!(key(&real), key(&previewed));
    // 0, 0 (ana and cy), 1, 1, 1 minutes (ana's second stage, bo's two channels).
    let offsets: Vec<i64> = previewed
        .iter()
        .map(|x| (x.2 - start_ms) / 60_000)
        .collect();
    assert_eq!(offsets, [0, 0, 1, 1, 1]);
    assert!(
        previewed.windows(2).all(|w| w[0].2 <= w[1].2),
        "in time order"
    );
    // Each real page went out at its previewed time: not before, and within half a
    // service minute (the engine's lateness at this scale), so a page of the wrong stage
    // would not match.
    for (contact, channel, at, _) in &real {
        let matched = previewed.iter().any(|(c, ch, pat, _)| {
            c == contact && ch == channel && *at >= *pat - 1_000 && *at < *pat + 30_000
        });
        assert!(
            matched,
            "{contact} {channel} at {at} (+{} ms) matches no previewed page: {previewed:#?}",
            at - start_ms
        );
    }
    let types: BTreeSet<&str> = p["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, BTreeSet::from(["EMAIL", "SMS"]));
    let sms = p["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["channel"] == bo_sms.as_str())
        .unwrap();
    assert_eq!(sms["state"], "NOT_ACTIVATED");
    assert_eq!(sms["address"], "+15•••••••06", "the address is masked");
    // cy was reached through the schedule.
    let cy = p["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["contact_alias"] == "cy")
        .unwrap();
    let path: Vec<&str> = cy["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(path[..2], [esc.as_str(), sched.as_str()]);
    let codes: Vec<&str> = p["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["channel-not-activated"], "{:#}", p["warnings"]);
    assert!(
        p["warnings"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&bo_sms)
    );

    // Once the SMS channel is gone from bo's plan and ana's channel is deactivated, the
    // preview of ana alone pages nobody, and the escalation's first stage still reaches cy.
    let ana_channel = p["pages"][0]["channel"].as_str().unwrap().to_owned();
    let ana_arn = p["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["contact_alias"] == "ana")
        .unwrap()["contact"]
        .as_str()
        .unwrap()
        .to_owned();
    client
        .deactivate_contact_channel()
        .contact_channel_id(&ana_channel)
        .send()
        .await
        .unwrap();
    let p = preview_json(dir.path(), &[&ana_arn]);
    let codes: Vec<&str> = p["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["channel-not-activated", "nobody-paged"], "{p:#}");
    assert_eq!(p["pages"].as_array().unwrap().len(), 2);

    // The text form, and errors a user can act on.
    let out = preview(dir.path(), &[&esc, "--at", &started_text]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("5 page(s)"), "{text}");
    assert!(text.contains("NOT SENT"), "{text}");
    assert!(text.contains("Warnings:"), "{text}");
    let out = preview(dir.path(), &[&esc, "--at", "yesterday"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an RFC 3339 time"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gone = esc.replace("contact/esc", "contact/nobody-here");
    let out = preview(dir.path(), &[&gone]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nobody-here"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(terminate(&mut child).success());
}
