//! `replicate abort`: removes everything the running replication created — subscription, slots,
//! publication, and the table, schema and extension only if this run created them — and nothing
//! else. What can't be removed (the source unreachable, a schema no longer empty) is listed with
//! the statement to run by hand.

use ragshift_store::ident::quote_ident;
use ragshift_store::journal::Status;
use ragshift_store::lock::TargetLock;
use ragshift_store::{connect, Layout};
use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{OnSide, Which};
use crate::record::{self, Object, ObjectKind, Record};
use crate::subscription::{self, Dropped};
use crate::{publication, slot, ReplicateError, Sides};

/// What `abort` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AbortReport {
    /// The run aborted (`None`: nothing was running).
    pub run_id: Option<String>,
    /// Objects removed, e.g. `subscription ragshift_sub_x on the target`.
    pub removed: Vec<String>,
    /// Objects left, each with the reason and the statement to run.
    pub left: Vec<String>,
}

/// Removes the running replication's objects from both sides.
pub async fn abort(sides: &Sides) -> Result<AbortReport, ReplicateError> {
    let target = connect(&sides.target, "ragshift replicate abort")
        .await
        .on(sides, Which::Target)?;
    let _lock = TargetLock::acquire(&sides.target, &sides.layout, "replicate abort")
        .await
        .on(sides, Which::Target)?;
    let Some(record) = record::active(&target).await.on(sides, Which::Target)? else {
        return Ok(AbortReport::default());
    };
    // The source may be gone (that may be why we abort): remove what we can on the target.
    let source = match connect(&sides.source, "ragshift replicate abort").await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("cannot reach the source ({e}); its objects will be listed as left");
            None
        }
    };
    let objects = record::objects(&target, &record.names.run_id)
        .await
        .on(sides, Which::Target)?;
    let report = remove(source.as_ref(), &target, &record, &objects, &sides.layout).await;
    record::finish(
        &target,
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

/// Removes `objects` (a run's journal units) in dependency order; never fails, reports instead.
pub(crate) async fn remove(
    source: Option<&Client>,
    target: &Client,
    record: &Record,
    objects: &[Object],
    layout: &Layout,
) -> AbortReport {
    let mut report = AbortReport::default();
    let has = |kind: ObjectKind| objects.iter().find(|o| o.kind == kind);
    let names = &record.names;

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
    let target_drops = [
        (
            ObjectKind::Table,
            format!("DROP TABLE IF EXISTS {}", layout.qualified()),
            format!("table {} on the target", layout.display_name()),
        ),
        (
            ObjectKind::Extension,
            "DROP EXTENSION IF EXISTS vector".to_owned(),
            "extension vector on the target".to_owned(),
        ),
        (
            ObjectKind::Schema,
            format!("DROP SCHEMA IF EXISTS {}", quote_ident(&layout.schema)),
            format!("schema {} on the target", layout.schema),
        ),
    ];
    for (kind, sql, what) in target_drops {
        if has(kind).is_none() {
            continue;
        }
        match target.batch_execute(&sql).await {
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
