//! Plan and apply: the desired set against the import map and what Muster holds.
//!
//! Per entity (kind, source id), in the order contacts need: people → rotations → overrides →
//! schedules → escalations.
//! - Not in the map: `create`, unless Muster already holds what an interrupted earlier run
//!   made (a contact or rotation tagged `muster:source` with this entity, an identical
//!   override): then it is adopted (`unchanged` or `update`).
//! - In the map: Muster's view equal to the wanted one → `unchanged`; Muster's view changed
//!   since the last import (its hash differs from the map's) or the resource was deleted →
//!   `skip` (`edited-in-muster`), unless `--force`; otherwise `update`.
//! - In the map but no longer at the source: `delete` with `--prune`, else `keep`.
//!
//! Every write is one transaction of the application layer, and the map row follows it; a
//! run interrupted between the two finds the resource by its tag (or content) and adopts it.

use crate::ImportError;
use crate::model::{ContactRef, Desired, Escalation, Person, Rotation, Schedule};
use crate::progress::Progress;
use crate::report::{EntityLine, Report};
use crate::sanitize::Aliases;
use crate::views::{self, Names, View, channel_id, contact_arn, hash_of, override_key};
use muster_app::contacts::{NewChannel, NewContact};
use muster_app::rotations::{NewRotation, RotationChange};
use muster_app::{App, AppError, Caller};
use muster_core::{ActivationStatus, ContactAlias, ContactType, Plan, Stage, Target};
use muster_store::{After, ImportMapRow, Tag};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// `target_hash` of a map row whose entity an apply is writing: set before the write, replaced
/// by the real hash after it. A plan that finds it knows the resource is the import's own,
/// half-written by an interrupted apply, and finishes it instead of calling it edited.
pub const PENDING: &str = "pending";

/// The tag every imported contact and rotation carries: `<system>:<source account>:<kind>:<id>`.
pub const SOURCE_TAG: &str = "muster:source";

/// What happens to devices the source had verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Verified at the source → ACTIVATED in Muster, no code sent.
    Keep,
    /// NOT_ACTIVATED, no code sent (the default: nobody gets a message during an import).
    Defer,
    /// NOT_ACTIVATED, and each new device is sent its code.
    Send,
}

/// The options of `plan` and `apply`.
#[derive(Debug, Clone)]
pub struct Options {
    pub activation: Activation,
    /// Overwrite what was edited in Muster since the last import; apply even when a schedule
    /// would differ without a reported loss.
    pub force: bool,
    /// Delete what an earlier import made and the source no longer has.
    pub prune: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            activation: Activation::Defer,
            force: false,
            prune: false,
        }
    }
}

/// What to do with one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    /// Edited (or deleted) in Muster since the last import: left alone (see `--force`).
    Skip,
    /// Made by an earlier import, gone at the source (see `--prune`).
    Keep,
    Delete,
}

#[derive(Debug, Clone)]
struct Step {
    kind: &'static str,
    id: String,
    action: Action,
    /// The Muster resource (contact alias, rotation ARN, `<rotation ARN>#<override id>`) when
    /// it exists.
    target: Option<String>,
    reason: Option<String>,
}

/// A computed plan: what `apply` would do.
pub struct Planned {
    pub report: Report,
    names: Names,
    steps: Vec<Step>,
    rows: HashMap<(String, String), ImportMapRow>,
}

fn tag_value(desired: &Desired, kind: &str, id: &str) -> String {
    format!("{}:{}:{kind}:{id}", desired.system, desired.account)
}

fn map_err(entity: &str) -> impl Fn(AppError) -> ImportError + '_ {
    move |e| ImportError::Apply {
        entity: entity.to_owned(),
        message: e.to_string(),
    }
}

/// Every contact alias of the account, with its `muster:source` tag if it has one.
async fn contacts_of(
    app: &App,
    caller: &Caller,
) -> Result<Vec<(String, Option<String>)>, AppError> {
    let mut out = Vec::new();
    let mut after = After::Start;
    loop {
        let page = app
            .store
            .list_contacts(caller.account.as_str(), None, None, &after, 500)
            .await?;
        for c in &page {
            let tags = app.tags_of(caller, &contact_arn(caller, &c.alias)).await?;
            let source = tags
                .into_iter()
                .find(|t| t.key == SOURCE_TAG)
                .map(|t| t.value);
            out.push((c.alias.clone(), source));
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = After::Alias(last.alias.clone()),
            _ => return Ok(out),
        }
    }
}

/// Every rotation ARN of the account with its `muster:source` tag, for those that have one.
async fn tagged_rotations(app: &App, caller: &Caller) -> Result<HashMap<String, String>, AppError> {
    let mut out = HashMap::new();
    let mut after = After::Start;
    loop {
        let page = app
            .store
            .list_rotations(caller.account.as_str(), None, &after, 500)
            .await?;
        for r in &page {
            let arn = caller.arn(muster_core::ArnOf::Rotation(r.id));
            if let Some(t) = app
                .tags_of(caller, &arn)
                .await?
                .into_iter()
                .find(|t| t.key == SOURCE_TAG)
            {
                out.insert(t.value, arn);
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => {
                after = After::Created {
                    ms: last.created_ms,
                    id: last.id,
                }
            }
            _ => return Ok(out),
        }
    }
}

/// Plans the import of `desired` into the caller's account: reads only.
pub async fn plan(
    app: &App,
    caller: &Caller,
    desired: &Desired,
    options: &Options,
) -> Result<Planned, ImportError> {
    let read = |e: AppError| ImportError::Apply {
        entity: "the Muster database".into(),
        message: e.to_string(),
    };
    let rows: HashMap<(String, String), ImportMapRow> = app
        .import_map(caller, &desired.system, &desired.account)
        .await
        .map_err(read)?
        .into_iter()
        .map(|r| ((r.source_kind.clone(), r.source_id.clone()), r))
        .collect();
    let contacts = contacts_of(app, caller).await.map_err(read)?;
    let by_tag: HashMap<String, String> = contacts
        .iter()
        .filter_map(|(alias, tag)| tag.clone().map(|t| (t, alias.clone())))
        .collect();
    let rotations_by_tag = tagged_rotations(app, caller).await.map_err(read)?;

    // Names: what the map says, what an interrupted run left (tags), else a new alias.
    let mut names = Names::default();
    let mut aliases = Aliases::default();
    for (alias, _) in &contacts {
        aliases.reserve(alias);
    }
    // An alias an earlier import gave stays that entity's, even if its contact was deleted
    // in Muster since: another source entity never inherits it (nor its map row).
    for row in rows.values() {
        if let Some(alias) = views::alias_of_arn(&row.target_arn) {
            aliases.reserve(&alias);
        }
    }
    let mut name_contact = |kind: &str, id: &str, wanted: &str, names: &mut Names| {
        let alias = rows
            .get(&(kind.to_owned(), id.to_owned()))
            .and_then(|r| views::alias_of_arn(&r.target_arn))
            .or_else(|| by_tag.get(&tag_value(desired, kind, id)).cloned())
            .unwrap_or_else(|| aliases.unique(wanted));
        let table = match kind {
            "person" => &mut names.people,
            "schedule" => &mut names.schedules,
            _ => &mut names.escalations,
        };
        table.insert(id.to_owned(), alias);
    };
    for p in &desired.people {
        name_contact("person", &p.id, &p.alias, &mut names);
    }
    for s in &desired.schedules {
        name_contact("schedule", &s.id, &s.alias, &mut names);
    }
    for e in &desired.escalations {
        name_contact("escalation", &e.id, &e.alias, &mut names);
    }
    for r in &desired.rotations {
        let tagged = rotations_by_tag.get(&tag_value(desired, "rotation", &r.id));
        let arn = match rows.get(&("rotation".to_owned(), r.id.clone())) {
            // The mapped rotation is gone but one carrying this entity's tag exists: an
            // interrupted re-create made it.
            Some(row)
                if row.target_hash == PENDING
                    && !rotations_by_tag.values().any(|a| a == &row.target_arn) =>
            {
                tagged.cloned().or_else(|| Some(row.target_arn.clone()))
            }
            Some(row) => Some(row.target_arn.clone()),
            None => tagged.cloned(),
        };
        if let Some(arn) = arn {
            names.rotations.insert(r.id.clone(), arn);
        }
    }
    // Rotations an earlier import made that the source dropped still name back.
    for ((kind, id), row) in &rows {
        if kind == "rotation" {
            names
                .rotations
                .entry(id.clone())
                .or_insert_with(|| row.target_arn.clone());
        }
    }

    let wanted = views::wanted(desired, &names);
    let mut steps = Vec::new();
    for ((kind, id), want) in &wanted {
        let kind: &'static str = match kind.as_str() {
            "person" => "person",
            "rotation" => "rotation",
            "override" => "override",
            "schedule" => "schedule",
            _ => "escalation",
        };
        let row = rows.get(&(kind.to_owned(), id.clone()));
        let target: Option<String> = match kind {
            "person" => names.people.get(id).cloned(),
            "schedule" => names.schedules.get(id).cloned(),
            "escalation" => names.escalations.get(id).cloned(),
            "rotation" => names.rotations.get(id).cloned(),
            _ => match row {
                Some(r) if r.target_hash == PENDING => {
                    match views::override_view(app, caller, &r.target_arn)
                        .await
                        .map_err(read)?
                    {
                        Some(_) => Some(r.target_arn.clone()),
                        None => adoptable_override(app, caller, &names, id, want)
                            .await
                            .map_err(read)?,
                    }
                }
                Some(r) => Some(r.target_arn.clone()),
                None => adoptable_override(app, caller, &names, id, want)
                    .await
                    .map_err(read)?,
            },
        };
        let have = match (&target, kind) {
            (None, _) => None,
            (Some(t), "rotation") => views::rotation_view(app, caller, t).await.map_err(read)?,
            (Some(t), "override") => views::override_view(app, caller, t).await.map_err(read)?,
            (Some(alias), _) => views::contact_view(app, caller, alias, &names)
                .await
                .map_err(read)?,
        };
        let (action, reason) = match (row, &have) {
            // An apply was interrupted while writing this entity: finish it.
            (Some(r), None) if r.target_hash == PENDING => (Action::Create, Some("resumed".to_owned())),
            (Some(r), Some(h)) if r.target_hash == PENDING && h == want => (Action::Unchanged, Some("resumed".to_owned())),
            (Some(r), Some(_)) if r.target_hash == PENDING => (Action::Update, Some("resumed".to_owned())),
            (None, None) => (Action::Create, None),
            // Made by an interrupted run (or identical already): adopt it.
            (None, Some(h)) if h == want => (Action::Unchanged, Some("adopted".to_owned())),
            (None, Some(_)) => (Action::Update, Some("adopted".to_owned())),
            (Some(_), None) if options.force => (Action::Create, Some("deleted in Muster; recreated (--force)".into())),
            (Some(_), None) => (Action::Skip, Some("edited-in-muster: deleted in Muster since the last import (--force recreates it)".into())),
            (Some(_), Some(h)) if h == want => (Action::Unchanged, None),
            (Some(r), Some(h)) if hash_of(h) != r.target_hash && !options.force => (
                Action::Skip,
                Some("edited-in-muster: changed in Muster since the last import (--force overwrites it)".into()),
            ),
            (Some(_), Some(_)) => (Action::Update, None),
        };
        // A contact alias held by something this import did not make: the planner gave
        // a fresh alias already, so `Create` stands.
        steps.push(Step {
            kind,
            id: id.clone(),
            action,
            target: if have.is_some() { target } else { None },
            reason,
        });
    }
    for ((kind, id), row) in &rows {
        if wanted.contains_key(&(kind.clone(), id.clone())) {
            continue;
        }
        let kind: &'static str = match kind.as_str() {
            "person" => "person",
            "rotation" => "rotation",
            "override" => "override",
            "schedule" => "schedule",
            _ => "escalation",
        };
        let have = match kind {
            "rotation" => views::rotation_view(app, caller, &row.target_arn).await,
            "override" => views::override_view(app, caller, &row.target_arn).await,
            _ => match views::alias_of_arn(&row.target_arn) {
                Some(alias) => views::contact_view(app, caller, &alias, &names).await,
                None => Ok(None),
            },
        }
        .map_err(read)?;
        let edited = have
            .as_ref()
            .is_some_and(|h| hash_of(h) != row.target_hash && row.target_hash != PENDING);
        let (action, reason) = match (&have, options.prune) {
            (None, _) => (Action::Keep, "gone at the source and in Muster"),
            (Some(_), true) if edited && !options.force => (
                Action::Skip,
                "edited-in-muster: gone at the source but changed in Muster since the last import; not deleted (--force deletes it)",
            ),
            (Some(_), true) => (Action::Delete, "gone at the source"),
            (Some(_), false) => (Action::Keep, "gone at the source (--prune deletes it)"),
        };
        steps.push(Step {
            kind,
            id: id.clone(),
            action,
            target: Some(row.target_arn.clone()),
            reason: Some(reason.into()),
        });
    }
    let order = |k: &str| match k {
        "person" => 0,
        "rotation" => 1,
        "override" => 2,
        "schedule" => 3,
        _ => 4,
    };
    // Within a kind, the source's order: overrides that overlap must be created in it (the
    // later-created wins in Muster, as the plan's equivalence assumed).
    let mut position: HashMap<(&str, String), usize> = HashMap::new();
    for (i, p) in desired.people.iter().enumerate() {
        position.insert(("person", p.id.clone()), i);
    }
    let mut o = 0;
    for (i, r) in desired.rotations.iter().enumerate() {
        position.insert(("rotation", r.id.clone()), i);
        for ov in &r.overrides {
            position.insert(("override", override_key(&r.id, &ov.id)), o);
            o += 1;
        }
    }
    for (i, s) in desired.schedules.iter().enumerate() {
        position.insert(("schedule", s.id.clone()), i);
    }
    for (i, e) in desired.escalations.iter().enumerate() {
        position.insert(("escalation", e.id.clone()), i);
    }
    let pos = |s: &Step| {
        position
            .get(&(s.kind, s.id.clone()))
            .copied()
            .unwrap_or(usize::MAX)
    };
    steps.sort_by(|a, b| (order(a.kind), pos(a), &a.id).cmp(&(order(b.kind), pos(b), &b.id)));
    let mut report = Report::new(desired, "plan");
    for s in &steps {
        // Entities gone at the source are named by what they are in Muster.
        let name = match display_of(desired, &names, s.kind, &s.id) {
            n if n == s.id => s
                .target
                .as_deref()
                .and_then(views::alias_of_arn)
                .unwrap_or(n),
            n => n,
        };
        report.entities.push(EntityLine {
            kind: s.kind.to_owned(),
            id: s.id.clone(),
            name,
            action: s.action,
            target: s.target.clone(),
            reason: s.reason.clone(),
        });
    }
    // A wanted alias already held by a contact this import did not make.
    let wanted_alias = |kind: &str, id: &str| -> Option<&str> {
        match kind {
            "person" => desired
                .people
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.alias.as_str()),
            "schedule" => desired
                .schedules
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.alias.as_str()),
            "escalation" => desired
                .escalations
                .iter()
                .find(|e| e.id == id)
                .map(|e| e.alias.as_str()),
            _ => None,
        }
    };
    for s in steps.iter().filter(|s| s.action == Action::Create) {
        let given = match s.kind {
            "person" => names.people.get(&s.id),
            "schedule" => names.schedules.get(&s.id),
            "escalation" => names.escalations.get(&s.id),
            _ => None,
        };
        if let (Some(given), Some(wanted)) = (given, wanted_alias(s.kind, &s.id))
            && given != wanted
        {
            report.losses.push(crate::model::Loss::new(
                "alias-taken",
                crate::model::Severity::Info,
                format!("{}:{}", s.kind, s.id),
                format!("alias '{wanted}' is taken by a contact this import did not make: '{given}' instead"),
            ));
        }
    }
    report.count();
    Ok(Planned {
        report,
        names,
        steps,
        rows,
    })
}

fn display_of(desired: &Desired, names: &Names, kind: &str, id: &str) -> String {
    match kind {
        "person" => names.people.get(id).cloned(),
        "schedule" => names.schedules.get(id).cloned(),
        "escalation" => names.escalations.get(id).cloned(),
        "rotation" => desired
            .rotations
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.name.clone()),
        "override" => desired
            .rotations
            .iter()
            .flat_map(|r| r.overrides.iter().map(move |o| (r, o)))
            .find(|(r, o)| override_key(&r.id, &o.id) == id)
            .map(|(r, o)| format!("{} {} to {}", r.name, o.start, o.end)),
        _ => None,
    }
    .unwrap_or_else(|| id.to_owned())
}

/// An override of the rotation already holding exactly what is wanted (an interrupted run
/// made it): its map target.
async fn adoptable_override(
    app: &App,
    caller: &Caller,
    names: &Names,
    key: &str,
    want: &View,
) -> Result<Option<String>, AppError> {
    let Some((rotation, _)) = key.rsplit_once('/') else {
        return Ok(None);
    };
    let Some(arn) = names.rotations.get(rotation) else {
        return Ok(None);
    };
    let Ok(r) = app.load_rotation(caller, arn).await else {
        return Ok(None);
    };
    let View::Override {
        members,
        start_ms,
        end_ms,
    } = want
    else {
        return Ok(None);
    };
    Ok(app
        .store
        .all_overrides(caller.account.as_str(), r.id)
        .await?
        .into_iter()
        .find(|o| &o.members == members && o.start_ms == *start_ms && o.end_ms == *end_ms)
        .map(|o| format!("{arn}#{}", o.id)))
}

/// Carries out a plan. Stops at the first entity that fails (naming it): everything before
/// it is written and recorded, so running the import again continues from there.
pub async fn apply(
    app: &App,
    caller: &Caller,
    desired: &Desired,
    mut planned: Planned,
    options: &Options,
    progress: &dyn Progress,
    tool_version: &str,
) -> Result<Report, ImportError> {
    let total = planned
        .steps
        .iter()
        .filter(|s| !matches!(s.action, Action::Keep | Action::Skip))
        .count();
    let mut done = 0;
    let mut failures = Vec::new();
    let mut names = planned.names.clone();
    let people: HashMap<&str, &Person> =
        desired.people.iter().map(|p| (p.id.as_str(), p)).collect();
    let rotations: HashMap<&str, &Rotation> = desired
        .rotations
        .iter()
        .map(|r| (r.id.as_str(), r))
        .collect();
    let schedules: HashMap<&str, &Schedule> = desired
        .schedules
        .iter()
        .map(|s| (s.id.as_str(), s))
        .collect();
    let escalations: HashMap<&str, &Escalation> = desired
        .escalations
        .iter()
        .map(|e| (e.id.as_str(), e))
        .collect();

    // Deletions run last and in reverse dependency order; escalations are created in an
    // order where each one's escalation targets exist first.
    let (mut deletes, mut writes): (Vec<Step>, Vec<Step>) = planned
        .steps
        .iter()
        .cloned()
        .partition(|s| s.action == Action::Delete);
    order_escalations(&mut writes, &escalations);
    deletes.reverse();
    for step in writes.iter().chain(deletes.iter()) {
        let entity = format!(
            "{} {}",
            step.kind,
            display_of(desired, &names, step.kind, &step.id)
        );
        let result: Result<(), ImportError> = async {
            let fail = map_err(&entity);
            let source_hash = match step.kind {
                "person" => people.get(step.id.as_str()).map(hash_of),
                "rotation" => rotations.get(step.id.as_str()).map(hash_of),
                "schedule" => schedules.get(step.id.as_str()).map(hash_of),
                "escalation" => escalations.get(step.id.as_str()).map(hash_of),
                _ => desired
                    .rotations
                    .iter()
                    .flat_map(|r| r.overrides.iter().map(move |o| (r, o)))
                    .find(|(r, o)| override_key(&r.id, &o.id) == step.id)
                    .map(|(_, o)| hash_of(o)),
            };
            // Mark the row before writing: an interrupted write is then known as the import's own.
            if let Some(row) = planned.rows.get(&(step.kind.to_owned(), step.id.clone()))
                && matches!(
                    step.action,
                    Action::Create | Action::Update | Action::Delete
                )
            {
                let marked = ImportMapRow {
                    target_hash: PENDING.into(),
                    ..row.clone()
                };
                app.record_import(caller, marked).await.map_err(&fail)?;
                planned
                    .rows
                    .remove(&(step.kind.to_owned(), step.id.clone()));
            }
            let target: Option<String> = match step.action {
                Action::Keep | Action::Skip => return Ok(()),
                Action::Delete => {
                    delete(app, caller, step).await.map_err(&fail)?;
                    app.forget_import(
                        caller,
                        &desired.system,
                        &desired.account,
                        step.kind,
                        &step.id,
                    )
                    .await
                    .map_err(&fail)?;
                    done += 1;
                    progress.step("applied", done, Some(total));
                    return Ok(());
                }
                Action::Unchanged => step.target.clone(),
                Action::Create | Action::Update => Some(match step.kind {
                    "person" => {
                        let p = people[step.id.as_str()];
                        write_person(app, caller, desired, &names, p, step.action, options)
                            .await
                            .map_err(&fail)?
                    }
                    "rotation" => {
                        let r = rotations[step.id.as_str()];
                        let arn = write_rotation(app, caller, desired, &names, r, step)
                            .await
                            .map_err(&fail)?;
                        names.rotations.insert(r.id.clone(), arn.clone());
                        arn
                    }
                    "override" => write_override(app, caller, desired, &names, step)
                        .await
                        .map_err(&fail)?,
                    "schedule" => {
                        let s = schedules[step.id.as_str()];
                        let rotation_ids = s
                            .rotations
                            .iter()
                            .map(|id| {
                                names.rotations.get(id).cloned().ok_or_else(|| {
                                    AppError::invalid(
                                        "RotationIds",
                                        format!("rotation {id} was not imported"),
                                    )
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(&fail)?;
                        let plan = Plan {
                            stages: vec![],
                            rotation_ids,
                        };
                        write_contact(
                            app,
                            caller,
                            desired,
                            "schedule",
                            &s.id,
                            &names.schedules[&s.id],
                            &s.display_name,
                            ContactType::OncallSchedule,
                            plan,
                            step.action,
                        )
                        .await
                        .map_err(&fail)?
                    }
                    _ => {
                        let e = escalations[step.id.as_str()];
                        let mut stages = Vec::new();
                        for s in &e.stages {
                            let mut targets = Vec::new();
                            for t in &s.targets {
                                let alias = names.alias_of(&t.contact).ok_or_else(|| {
                                    ImportError::Apply {
                                        entity: entity.clone(),
                                        message: format!("{:?} is not in the import", t.contact),
                                    }
                                })?;
                                targets.push(Target::Contact {
                                    contact_arn: contact_arn(caller, alias),
                                    is_essential: t.is_essential,
                                });
                            }
                            stages.push(Stage {
                                duration_minutes: s.duration_minutes,
                                targets,
                            });
                        }
                        let plan = Plan {
                            stages,
                            rotation_ids: vec![],
                        };
                        write_contact(
                            app,
                            caller,
                            desired,
                            "escalation",
                            &e.id,
                            &names.escalations[&e.id],
                            &e.display_name,
                            ContactType::Escalation,
                            plan,
                            step.action,
                        )
                        .await
                        .map_err(&fail)?
                    }
                }),
            };
            let Some(target) = target else {
                return Ok(());
            };
            // What the import left, as Muster reads it back: the hash a later run compares.
            let have = match step.kind {
                "rotation" => views::rotation_view(app, caller, &target).await,
                "override" => views::override_view(app, caller, &target).await,
                _ => views::contact_view(app, caller, &target, &names).await,
            }
            .map_err(&fail)?;
            let target_arn = match step.kind {
                "person" | "schedule" | "escalation" => contact_arn(caller, &target),
                _ => target.clone(),
            };
            let row = ImportMapRow {
                account: caller.account.to_string(),
                source_system: desired.system.clone(),
                source_account: desired.account.clone(),
                source_kind: step.kind.to_owned(),
                source_id: step.id.clone(),
                target_arn,
                source_hash: source_hash.unwrap_or_default(),
                target_hash: have.as_ref().map(hash_of).unwrap_or_default(),
                imported_ms: app.clock.now_ms(),
                tool_version: tool_version.to_owned(),
            };
            if planned.rows.get(&(step.kind.to_owned(), step.id.clone())) != Some(&row) {
                app.record_import(caller, row).await.map_err(&fail)?;
            }
            if step.action != Action::Unchanged {
                done += 1;
                progress.step("applied", done, Some(total));
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            // One entity failing (an address the source accepted and Muster does not, a
            // contact still in use) does not stop the others; its dependents fail with their
            // own error. The report lists them; running the import again retries them.
            failures.push(crate::report::Failure {
                entity: entity.clone(),
                message: e.to_string(),
            });
        }
    }
    progress.finish();
    planned.report.failures = failures;
    planned.report.mode = "apply".into();
    Ok(planned.report)
}

/// Escalations whose targets are escalations come after them (a cycle keeps source order:
/// its first write fails naming the missing contact).
fn order_escalations(steps: &mut [Step], escalations: &HashMap<&str, &Escalation>) {
    let mut rank: HashMap<String, usize> = HashMap::new();
    fn depth(
        id: &str,
        e: &HashMap<&str, &Escalation>,
        seen: &mut HashSet<String>,
        rank: &mut HashMap<String, usize>,
    ) -> usize {
        if let Some(d) = rank.get(id) {
            return *d;
        }
        if !seen.insert(id.to_owned()) {
            return 0;
        }
        let d = e
            .get(id)
            .map(|esc| {
                esc.stages
                    .iter()
                    .flat_map(|s| &s.targets)
                    .filter_map(|t| match &t.contact {
                        ContactRef::Escalation(x) => Some(1 + depth(x, e, seen, rank)),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        rank.insert(id.to_owned(), d);
        d
    }
    for id in escalations.keys() {
        depth(id, escalations, &mut HashSet::new(), &mut rank);
    }
    steps.sort_by_key(|s| {
        let kind = match s.kind {
            "person" => 0,
            "rotation" => 1,
            "override" => 2,
            "schedule" => 3,
            _ => 4,
        };
        (
            kind,
            if s.kind == "escalation" {
                rank.get(&s.id).copied().unwrap_or(0)
            } else {
                0
            },
        )
    });
}

async fn delete(app: &App, caller: &Caller, step: &Step) -> Result<(), AppError> {
    let Some(target) = &step.target else {
        return Ok(());
    };
    let gone = |r: Result<(), AppError>| match r {
        Err(AppError::NotFound { .. }) => Ok(()),
        other => other,
    };
    match step.kind {
        "rotation" => gone(app.delete_rotation(caller, target).await),
        "override" => match target.split_once('#') {
            Some((rotation, id)) => gone(app.delete_override(caller, rotation, id).await),
            None => Ok(()),
        },
        _ => gone(app.delete_contact(caller, target).await),
    }
}

fn source_tag(desired: &Desired, kind: &str, id: &str) -> Vec<Tag> {
    vec![Tag {
        key: SOURCE_TAG.into(),
        value: tag_value(desired, kind, id),
    }]
}

fn alias_checked(alias: &str) -> Result<ContactAlias, AppError> {
    ContactAlias::parse(alias).map_err(|e| AppError::invalid("Alias", e.0))
}

/// Creates or updates a schedule or escalation contact; returns its alias.
#[allow(clippy::too_many_arguments)]
async fn write_contact(
    app: &App,
    caller: &Caller,
    desired: &Desired,
    kind: &str,
    id: &str,
    alias: &str,
    display_name: &str,
    contact_type: ContactType,
    plan: Plan,
    action: Action,
) -> Result<String, AppError> {
    let arn = contact_arn(caller, alias);
    if action == Action::Update && app.load_contact(caller, &arn).await.is_ok() {
        app.update_contact(caller, &arn, Some(display_name.to_owned()), Some(plan))
            .await?;
    } else {
        app.create_contact(
            caller,
            NewContact {
                alias: alias_checked(alias)?,
                display_name: Some(display_name.to_owned()),
                contact_type,
                plan,
                tags: source_tag(desired, kind, id),
            },
            None,
        )
        .await?;
    }
    Ok(alias.to_owned())
}

fn activation_of(options: &Options, verified: bool) -> ActivationStatus {
    if options.activation == Activation::Keep && verified {
        ActivationStatus::Activated
    } else {
        ActivationStatus::NotActivated
    }
}

/// Creates or updates a person (contact, channels, plan); returns the alias.
async fn write_person(
    app: &App,
    caller: &Caller,
    desired: &Desired,
    names: &Names,
    p: &Person,
    action: Action,
    options: &Options,
) -> Result<String, AppError> {
    let alias = names.people[&p.id].clone();
    let ids: HashMap<&str, uuid::Uuid> = p
        .channels
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                channel_id(
                    caller.account.as_str(),
                    &desired.system,
                    &desired.account,
                    &p.id,
                    &c.id,
                ),
            )
        })
        .collect();
    let plan = Plan {
        stages: p
            .stages
            .iter()
            .map(|s| Stage {
                duration_minutes: s.duration_minutes,
                targets: s
                    .channels
                    .iter()
                    .filter_map(|t| {
                        ids.get(t.channel.as_str()).map(|id| Target::Channel {
                            channel_arn: App::channel_arn(caller, &alias, *id),
                            retry_interval_minutes: t.retry_interval_minutes,
                        })
                    })
                    .collect(),
            })
            .collect(),
        rotation_ids: vec![],
    };
    let arn = contact_arn(caller, &alias);
    let exists = app.load_contact(caller, &arn).await.is_ok();
    let mut fresh = Vec::new();
    if action == Action::Create && !exists {
        let channels = p
            .channels
            .iter()
            .map(|c| {
                (
                    ids[c.id.as_str()],
                    NewChannel {
                        name: c.name.clone(),
                        channel_type: c.channel_type,
                        address: c.address.clone(),
                    },
                    activation_of(options, c.activated),
                )
            })
            .collect();
        app.create_contact_with_channels_as(
            caller,
            NewContact {
                alias: alias_checked(&alias)?,
                display_name: Some(p.display_name.clone()),
                contact_type: ContactType::Personal,
                plan,
                tags: source_tag(desired, "person", &p.id),
            },
            channels,
        )
        .await?;
        fresh.extend(
            p.channels
                .iter()
                .filter(|c| activation_of(options, c.activated) != ActivationStatus::Activated)
                .map(|c| ids[c.id.as_str()]),
        );
    } else {
        // Devices gone at the source first (so a new one may take a departed one's name),
        // then new and changed ones, then the plan that names them.
        let contact = app.load_contact(caller, &arn).await?;
        let existing = app
            .store
            .list_channels(caller.account.as_str(), contact.id, &After::Start, 1000)
            .await?;
        for e in &existing {
            if !ids.values().any(|id| *id == e.id) {
                app.delete_channel(caller, &App::channel_arn(caller, &alias, e.id))
                    .await?;
            }
        }
        for c in &p.channels {
            let id = ids[c.id.as_str()];
            let activation = activation_of(options, c.activated);
            match existing.iter().find(|e| e.id == id) {
                Some(e) if e.name == c.name && e.address == c.address => {}
                Some(e) => {
                    let activation = if e.address == c.address {
                        e.activation
                    } else {
                        activation
                    };
                    app.reimport_channel(
                        caller,
                        &App::channel_arn(caller, &alias, id),
                        c.name.clone(),
                        &c.address,
                        activation,
                    )
                    .await?;
                    if e.address != c.address && activation != ActivationStatus::Activated {
                        fresh.push(id);
                    }
                }
                None => {
                    let made = app
                        .import_channel(
                            caller,
                            &alias,
                            id,
                            NewChannel {
                                name: c.name.clone(),
                                channel_type: c.channel_type,
                                address: c.address.clone(),
                            },
                            activation,
                        )
                        .await?;
                    if made.new && activation != ActivationStatus::Activated {
                        fresh.push(id);
                    }
                }
            }
        }
        app.update_contact(caller, &arn, Some(p.display_name.clone()), Some(plan))
            .await?;
    }
    if options.activation == Activation::Send {
        for id in fresh {
            if let Err(e) = app
                .send_activation_code(caller, &App::channel_arn(caller, &alias, id))
                .await
            {
                tracing::warn!(contact = %alias, error = %e, "activation code not sent during the import");
            }
        }
    }
    Ok(alias)
}

/// Creates or updates a rotation; returns its ARN.
async fn write_rotation(
    app: &App,
    caller: &Caller,
    desired: &Desired,
    names: &Names,
    r: &Rotation,
    step: &Step,
) -> Result<String, AppError> {
    let members = r
        .members
        .iter()
        .map(|id| {
            names
                .people
                .get(id)
                .map(|a| contact_arn(caller, a))
                .ok_or_else(|| {
                    AppError::invalid("ContactIds", format!("person {id} is not in the import"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let (Action::Update, Some(arn)) = (step.action, &step.target) {
        app.update_rotation(
            caller,
            arn,
            RotationChange {
                members: Some(members),
                time_zone: Some(r.time_zone.clone()),
                start_ms: Some(r.start.as_millisecond()),
                recurrence: r.recurrence.clone(),
            },
        )
        .await?;
        return Ok(arn.clone());
    }
    let made = app
        .create_rotation(
            caller,
            NewRotation {
                name: r.name.clone(),
                members,
                time_zone: r.time_zone.clone(),
                recurrence: r.recurrence.clone(),
                start_ms: Some(r.start.as_millisecond()),
                tags: source_tag(desired, "rotation", &r.id),
            },
            None,
        )
        .await?;
    Ok(made.arn)
}

/// Creates an override (an update replaces it); returns `<rotation ARN>#<id>`.
async fn write_override(
    app: &App,
    caller: &Caller,
    desired: &Desired,
    names: &Names,
    step: &Step,
) -> Result<String, AppError> {
    let (r, o) = desired
        .rotations
        .iter()
        .flat_map(|r| r.overrides.iter().map(move |o| (r, o)))
        .find(|(r, o)| override_key(&r.id, &o.id) == step.id)
        .ok_or_else(|| AppError::not_found("ROTATION_OVERRIDE", &step.id))?;
    let rotation_arn = names.rotations.get(&r.id).cloned().ok_or_else(|| {
        AppError::invalid("RotationId", format!("rotation {} was not imported", r.id))
    })?;
    if let (Action::Update, Some(target)) = (step.action, &step.target)
        && let Some((rotation, id)) = target.split_once('#')
    {
        match app.delete_override(caller, rotation, id).await {
            Ok(()) | Err(AppError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let members = o
        .members
        .iter()
        .map(|id| {
            names
                .people
                .get(id)
                .map(|a| contact_arn(caller, a))
                .ok_or_else(|| {
                    AppError::invalid("NewContactIds", format!("person {id} is not in the import"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let id = app
        .create_override(
            caller,
            &rotation_arn,
            &members,
            o.start.as_millisecond(),
            o.end.as_millisecond(),
        )
        .await?;
    Ok(format!("{rotation_arn}#{id}"))
}

/// The wanted views by key, for tests and the report.
pub fn wanted_views(desired: &Desired, planned: &Planned) -> BTreeMap<(String, String), View> {
    views::wanted(desired, &planned.names)
}

impl Planned {
    /// The names the plan gives: person, schedule and escalation aliases, rotation ARNs.
    pub fn names(&self) -> &Names {
        &self.names
    }
}
