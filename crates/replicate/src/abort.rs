//! `replicate abort`: removes everything the running replication created — its write fence,
//! subscription, slots, publication, and the table, schema and extension only if this run
//! recorded creating them — by the names its journal holds, never by the current
//! configuration, and nothing else. What can't be removed (the source unreachable, a schema no longer empty) is listed with
//! the statement to run by hand.

use ragshift_store::ident::{quote_ident, quote_literal};
use ragshift_store::journal::{Journal, Status};
use ragshift_store::lock::TargetLock;
use ragshift_store::{connect, Layout};
use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{OnSide, Which};
use crate::record::{self, Mark, Object, ObjectKind, Record};
use crate::subscription::{self, Dropped};
use crate::{fence, publication, slot, ReplicateError, Sides};

/// What `abort` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AbortReport {
    /// The run aborted (`None`: nothing was running).
    pub run_id: Option<String>,
    /// The run had already been cut over: only its write fence on the old source was lifted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub after_cutover: bool,
    /// Objects removed, e.g. `subscription ragshift_sub_x on the target`.
    pub removed: Vec<String>,
    /// Objects left, each with the reason and the statement to run.
    pub left: Vec<String>,
}

/// Removes the running replication's objects from both sides: exactly those its journal
/// records, by their recorded names, whatever the configuration names now. With no
/// replication running but the last one cut over, lifts the write fence that cutover left on
/// the old source.
pub async fn abort(sides: &Sides) -> Result<AbortReport, ReplicateError> {
    let target = connect(&sides.target, "ragshift replicate abort")
        .await
        .on(sides, Which::Target)?;
    let Some(found) = record::active(&target, &sides.journal)
        .await
        .on(sides, Which::Target)?
    else {
        return lift_fence_after_cutover(sides, &target).await;
    };
    // The lock is the one of the table the run recorded (start and cutover take the same).
    let _lock = TargetLock::acquire(
        &sides.target,
        &found.layout(&sides.layout),
        "replicate abort",
    )
    .await
    .on(sides, Which::Target)?;
    let Some(record) = record::active(&target, &sides.journal)
        .await
        .on(sides, Which::Target)?
    else {
        return Ok(AbortReport::default());
    };
    // The source may be gone (that may be why we abort): remove what we can on the target.
    let source = connect_source(sides).await;
    let objects = record::objects(&target, &sides.journal, &record.names.run_id)
        .await
        .on(sides, Which::Target)?;
    let report = remove(source.as_ref(), &target, &sides.journal, &record, &objects).await;
    record::finish(
        &target,
        &sides.journal,
        &record.names.run_id,
        Status::Failed,
        &serde_json::json!({ "outcome": "aborted", "removed": report.removed, "left": report.left }),
    )
    .await
    .on(sides, Which::Target)?;
    Ok(AbortReport {
        run_id: Some(record.names.run_id.clone()),
        ..report
    })
}

async fn connect_source(sides: &Sides) -> Option<Client> {
    match connect(&sides.source, "ragshift replicate abort").await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("cannot reach the source ({e}); its objects will be listed as left");
            None
        }
    }
}

/// After a cutover, the fence it left on the old source is all that remains to remove.
async fn lift_fence_after_cutover(
    sides: &Sides,
    target: &Client,
) -> Result<AbortReport, ReplicateError> {
    let Some((status, record)) = record::latest(target, &sides.journal)
        .await
        .on(sides, Which::Target)?
    else {
        return Ok(AbortReport::default());
    };
    if status != Status::Succeeded.as_str() {
        return Ok(AbortReport::default());
    }
    let fences: Vec<Object> = record::objects(target, &sides.journal, &record.names.run_id)
        .await
        .on(sides, Which::Target)?
        .into_iter()
        .filter(|o| o.kind == ObjectKind::Fence && !o.removed)
        .collect();
    if fences.is_empty() {
        return Ok(AbortReport::default());
    }
    let source = connect_source(sides).await;
    let report = remove(source.as_ref(), target, &sides.journal, &record, &fences).await;
    Ok(AbortReport {
        run_id: Some(record.names.run_id.clone()),
        after_cutover: true,
        ..report
    })
}

/// Removes `objects` (a run's journal units) in dependency order; never fails, reports instead.
pub(crate) async fn remove(
    source: Option<&Client>,
    target: &Client,
    journal: &Journal,
    record: &Record,
    objects: &[Object],
) -> AbortReport {
    let mut report = AbortReport::default();
    let has = |kind: ObjectKind| objects.iter().find(|o| o.kind == kind);
    let names = &record.names;
    // The table this run recorded; only its schema and name are used here.
    let layout = &record.layout(&Layout::default());

    // First the fence, so the source takes writes again as early as possible.
    for fence in objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Fence && !o.removed)
    {
        let what = format!(
            "write fence {} on the source table {}",
            fence.name,
            layout.display_name()
        );
        match source {
            Some(s) => match fence::remove(s, layout, &fence.name).await {
                Ok(existed) => {
                    if let Err(e) = record::mark(
                        target,
                        journal,
                        &names.run_id,
                        (ObjectKind::Fence, &fence.name),
                        Mark::Removed,
                    )
                    .await
                    {
                        tracing::warn!("could not record that the fence was lifted: {e}");
                    }
                    if existed {
                        report
                            .removed
                            .push(format!("{what} (writes are accepted there again)"));
                    }
                }
                Err(e) => report.left.push(format!(
                    "{what} ({e}): run {} there",
                    fence::removal_sql(layout, &fence.name)
                )),
            },
            None => report.left.push(format!(
                "{what}, if it exists (source unreachable): run {} there",
                fence::removal_sql(layout, &fence.name)
            )),
        }
    }

    let mut sub_oid = None;
    let mut slot_left = false;
    if has(ObjectKind::Subscription).is_some() {
        sub_oid = subscription::oid(target, &names.subscription)
            .await
            .ok()
            .flatten();
        match subscription::drop(target, &names.subscription).await {
            Ok(Dropped::Absent) => {}
            Ok(Dropped::WithSlot) => report.removed.push(format!(
                "subscription {} on the target (with its slot {} on the source)",
                names.subscription, names.slot
            )),
            Ok(Dropped::SlotLeft) => {
                slot_left = true;
                report
                    .removed
                    .push(format!("subscription {} on the target", names.subscription));
            }
            Err(e) => report.left.push(format!(
                "subscription {} on the target ({e}): run DROP SUBSCRIPTION {};",
                names.subscription,
                quote_ident(&names.subscription)
            )),
        }
    }
    if has(ObjectKind::Slot).is_some() || slot_left {
        match source {
            Some(s) => match slot::drop_leftovers(s, &names.slot, sub_oid).await {
                Ok(dropped) => report.removed.extend(
                    dropped
                        .into_iter()
                        .map(|n| format!("replication slot {n} on the source")),
                ),
                Err(e) => report.left.push(format!(
                    "replication slot {} on the source ({e}): run SELECT pg_drop_replication_slot('{}');",
                    names.slot, names.slot
                )),
            },
            None => report.left.push(format!(
                "replication slot {} on the source, if it exists (source unreachable): run SELECT pg_drop_replication_slot('{}'); there — a forgotten slot keeps WAL forever",
                names.slot, names.slot
            )),
        }
    }
    if has(ObjectKind::Publication).is_some() {
        match source {
            Some(s) => match publication::drop(s, &names.publication).await {
                Ok(true) => report
                    .removed
                    .push(format!("publication {} on the source", names.publication)),
                Ok(false) => {}
                Err(e) => report.left.push(format!(
                    "publication {} on the source ({e}): run DROP PUBLICATION {};",
                    names.publication,
                    quote_ident(&names.publication)
                )),
            },
            None => report.left.push(format!(
                "publication {} on the source (source unreachable): run DROP PUBLICATION IF EXISTS {};",
                names.publication,
                quote_ident(&names.publication)
            )),
        }
    }
    // Target objects go only if this run recorded creating them, by their recorded names: a
    // table, schema or extension that was merely planned may be someone else's.
    let target_drops = [
        (
            ObjectKind::Table,
            format!(
                "SELECT to_regclass({}) IS NOT NULL",
                quote_literal(&layout.qualified())
            ),
            format!("DROP TABLE IF EXISTS {}", layout.qualified()),
            format!("table {} on the target", layout.display_name()),
        ),
        (
            ObjectKind::Extension,
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')".to_owned(),
            "DROP EXTENSION IF EXISTS vector".to_owned(),
            "extension vector on the target".to_owned(),
        ),
        (
            ObjectKind::Schema,
            format!(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = {})",
                quote_literal(&layout.schema)
            ),
            format!("DROP SCHEMA IF EXISTS {}", quote_ident(&layout.schema)),
            format!("schema {} on the target", layout.schema),
        ),
    ];
    // The tables the chunk table refers to go after it (its rows refer to theirs), by the
    // quoted names this run recorded.
    let referenced = objects
        .iter()
        .filter(|o| o.kind == ObjectKind::ReferencedTable)
        .map(|o| {
            (
                o,
                format!("SELECT to_regclass({}) IS NOT NULL", quote_literal(&o.name)),
                format!("DROP TABLE IF EXISTS {}", o.name),
                format!("table {} on the target", o.name),
            )
        });
    let [table, extension, schema] = target_drops;
    let mut drops = Vec::new();
    drops.extend(has(table.0).map(|o| (o, table.1, table.2, table.3)));
    drops.extend(referenced);
    drops.extend(has(extension.0).map(|o| (o, extension.1, extension.2, extension.3)));
    drops.extend(has(schema.0).map(|o| (o, schema.1, schema.2, schema.3)));
    for (object, exists_sql, drop_sql, what) in drops {
        let exists = match target.query_one(&exists_sql, &[]).await {
            Ok(row) => row.get::<_, bool>(0),
            Err(e) => {
                report
                    .left
                    .push(format!("{what}: could not look for it ({e})"));
                continue;
            }
        };
        if !exists {
            continue;
        }
        if !object.created {
            report.left.push(format!(
                "{what}: this run planned to create it but never recorded that it did, so it may not be ragshift's and was left; if it is, run {drop_sql};"
            ));
            continue;
        }
        match target.batch_execute(&drop_sql).await {
            Ok(()) => report.removed.push(what),
            Err(e) => report.left.push(format!(
                "{what}: {} (something else now uses it; it was left)",
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_owned())
            )),
        }
    }
    report
}
