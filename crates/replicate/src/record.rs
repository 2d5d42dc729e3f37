//! What a replication created, kept in the target's run journal ([`Journal`]): the run
//! (kind `replicate`, its names in `selection`) and one unit per object, recorded as *queued*
//! before the object is created and *succeeded* once it exists. So after any crash `abort`
//! knows everything that may exist, and removes exactly that.

use ragshift_store::journal::{Journal, Status, UnitResult};
use ragshift_store::{Layout, StoreError};
use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use crate::names::Names;

/// Journal kind of replication runs.
pub const KIND: &str = "replicate";

/// A replication run as recorded in the journal's `runs.selection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The objects' names.
    #[serde(flatten)]
    pub names: Names,
    /// The source server (masked).
    pub source: String,
    /// The source database (the subscription connects to it).
    pub source_database: String,
    /// Schema of the replicated table (same name on both sides).
    pub schema: String,
    /// The replicated table.
    pub table: String,
    /// Whether the subscription transfers rows in binary.
    pub binary: bool,
}

impl Record {
    /// The replicated table as this run recorded it, with `base`'s column names: abort,
    /// status and cutover act on the table the run set up, whatever the configuration names
    /// now.
    pub fn layout(&self, base: &Layout) -> Layout {
        Layout {
            schema: self.schema.clone(),
            table: self.table.clone(),
            ..base.clone()
        }
    }
}

/// Kinds of objects a replication creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A schema on the target.
    Schema,
    /// The `vector` extension on the target.
    Extension,
    /// The table on the target.
    Table,
    /// A table the chunk table refers to, created on the target; named by its quoted,
    /// schema-qualified name.
    ReferencedTable,
    /// The publication on the source.
    Publication,
    /// The subscription on the target.
    Subscription,
    /// The replication slot on the source.
    Slot,
    /// The cutover's write fence on the source: a trigger on the table and its function, both
    /// named like this (see [`crate::fence`]).
    Fence,
}

impl ObjectKind {
    /// The journal's spelling (the unit kind).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schema => "schema",
            Self::Extension => "extension",
            Self::Table => "table",
            Self::ReferencedTable => "referenced table",
            Self::Publication => "publication",
            Self::Subscription => "subscription",
            Self::Slot => "slot",
            Self::Fence => "fence",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "schema" => Self::Schema,
            "extension" => Self::Extension,
            "table" => Self::Table,
            "referenced table" => Self::ReferencedTable,
            "publication" => Self::Publication,
            "subscription" => Self::Subscription,
            "slot" => Self::Slot,
            "fence" => Self::Fence,
            _ => return None,
        })
    }

    /// Which side the object lives on.
    pub fn side(self) -> &'static str {
        match self {
            Self::Publication | Self::Slot | Self::Fence => "source",
            _ => "target",
        }
    }
}

/// One object recorded for a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Object {
    /// What it is.
    pub kind: ObjectKind,
    /// Its name (`schema.table` for a table).
    pub name: String,
    /// Whether its creation completed (else it may or may not exist, or it was removed
    /// again: see `removed`).
    pub created: bool,
    /// Whether it was removed again while the run went on (a fence after a refused cutover).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

fn unit_id(kind: ObjectKind, name: &str) -> String {
    format!("{}:{name}", kind.as_str())
}

/// The newest replication run on the target with its record and status, without creating the
/// journal if it isn't there.
pub async fn latest(
    client: &impl GenericClient,
    journal: &Journal,
) -> Result<Option<(String, Record)>, StoreError> {
    if !journal.exists(client).await? {
        return Ok(None);
    }
    let row = client
        .query_opt(
            &*format!(
                "SELECT status, selection FROM {} WHERE kind = $1
                  ORDER BY started_at DESC, run_id DESC LIMIT 1",
                journal.runs_table()
            ),
            &[&KIND],
        )
        .await
        .map_err(|e| StoreError::query("reading the latest replication run", e))?;
    Ok(row.and_then(|r| {
        let status: String = r.get(0);
        let selection: Option<serde_json::Value> = r.get(1);
        let record = serde_json::from_value(selection?).ok()?;
        Some((status, record))
    }))
}

/// The running replication, if any.
pub async fn active(
    client: &impl GenericClient,
    journal: &Journal,
) -> Result<Option<Record>, StoreError> {
    Ok(latest(client, journal)
        .await?
        .filter(|(status, _)| status == Status::Running.as_str())
        .map(|(_, r)| r))
}

/// Records the start of a run.
pub async fn begin(
    client: &impl GenericClient,
    journal: &Journal,
    record: &Record,
) -> Result<(), StoreError> {
    journal.ensure_schema(client).await?;
    let selection = serde_json::to_value(record).unwrap_or_default();
    journal
        .start_run(
            client,
            &record.names.run_id,
            KIND,
            &record.source,
            &selection,
        )
        .await
}

/// What happened to an object, as [`mark`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// It is about to be created; one removed earlier (a fence lifted after a refused
    /// cutover) counts as planned again, so that a crash now leaves it for `abort`.
    Planned,
    /// It now exists.
    Created,
    /// It was removed again while the run goes on (a fence lifted after a refused cutover,
    /// or after a cutover by `abort`).
    Removed,
}

/// Records what happened to the object `(kind, name)` of run `run_id`.
pub async fn mark(
    client: &impl GenericClient,
    journal: &Journal,
    run_id: &str,
    (kind, name): (ObjectKind, &str),
    mark: Mark,
) -> Result<(), StoreError> {
    let unit = unit_id(kind, name);
    let mut detail =
        serde_json::json!({ "kind": kind.as_str(), "name": name, "side": kind.side() });
    let status = match mark {
        Mark::Planned => return plan(client, journal, run_id, kind, &unit).await,
        Mark::Created => Status::Succeeded,
        Mark::Removed => {
            detail["removed"] = true.into();
            Status::Skipped
        }
    };
    let result = UnitResult {
        detail: Some(detail),
        ..UnitResult::default()
    };
    journal
        .mark_finished(client, run_id, &unit, status, &result)
        .await
}

/// Queues `unit`, or queues it again when it was removed.
async fn plan(
    client: &impl GenericClient,
    journal: &Journal,
    run_id: &str,
    kind: ObjectKind,
    unit: &str,
) -> Result<(), StoreError> {
    journal
        .queue_units(client, run_id, kind.as_str(), &[(unit.to_owned(), None)])
        .await?;
    client
        .execute(
            &*format!(
                "UPDATE {} SET status = $3, finished_at = NULL
                  WHERE run_id = $1 AND unit_id = $2 AND status = $4",
                journal.units_table()
            ),
            &[
                &run_id,
                &unit,
                &Status::Queued.as_str(),
                &Status::Skipped.as_str(),
            ],
        )
        .await
        .map_err(|e| StoreError::query(format!("recording {unit} as planned again"), e))?;
    Ok(())
}

/// Every object recorded for a run (created or only planned).
pub async fn objects(
    client: &impl GenericClient,
    journal: &Journal,
    run_id: &str,
) -> Result<Vec<Object>, StoreError> {
    Ok(journal
        .units(client, run_id)
        .await?
        .into_iter()
        .filter_map(|u| {
            let kind = ObjectKind::parse(&u.unit_kind)?;
            let name = u.unit_id.split_once(':')?.1.to_owned();
            let removed = u.status == Status::Skipped;
            Some(Object {
                kind,
                name,
                created: u.status == Status::Succeeded,
                removed,
            })
        })
        .collect())
}

/// Records the end of a run: `succeeded` after a cutover, `failed` after an abort or a failed
/// start (the report says which).
pub async fn finish(
    client: &impl GenericClient,
    journal: &Journal,
    run_id: &str,
    status: Status,
    report: &serde_json::Value,
) -> Result<(), StoreError> {
    journal
        .finish_run(client, run_id, status, report, None)
        .await
}
