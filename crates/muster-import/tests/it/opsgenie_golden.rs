//! The golden plan: `map()` of the backup fixture, compared with a committed JSON file.
//! Regenerate deliberately with `MUSTER_UPDATE_GOLDEN=1 cargo test -p muster-import --test it
//! golden` and review the diff.

use muster_import::MapOptions;
use muster_import::opsgenie;

use crate::server::fixtures;
use crate::{NOW, at};

/// Catches: any change in what the fixture account maps to (people, channels, plans,
/// rotations, overrides, schedules, escalations, losses, the reference rendering) that was
/// not made on purpose.
#[test]
fn the_backup_fixture_maps_to_the_golden_plan() {
    let raw = opsgenie::read_dir(&fixtures().join("backup")).unwrap();
    let desired = opsgenie::map(&raw, &MapOptions::default(), at(NOW));
    let mut json = serde_json::to_string_pretty(&desired).unwrap();
    json.push('\n');
    let path = fixtures().join("golden-plan.json");
    if std::env::var_os("MUSTER_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &json).unwrap();
    }
    let golden = std::fs::read_to_string(&path)
        .expect("golden-plan.json (MUSTER_UPDATE_GOLDEN=1 writes it)");
    if golden != json {
        let first = golden
            .lines()
            .zip(json.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(golden.lines().count().min(json.lines().count()));
        panic!(
            "map() no longer gives golden-plan.json; first difference at line {}:\n  golden: {:?}\n  now:    {:?}",
            first + 1,
            golden.lines().nth(first),
            json.lines().nth(first)
        );
    }
}
