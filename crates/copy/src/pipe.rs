//! One partition, source to target: `COPY (SELECT ...) TO STDOUT (FORMAT binary)` on the source
//! streamed chunk by chunk into `COPY ... FROM STDIN (FORMAT binary)` on the target. Rows are
//! never decoded and never touch a disk on the way; the target transaction also records the
//! partition as done in the journal, so data and journal commit together or not at all.

use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_postgres::Client;

use ragshift_store::journal::{self, Status, UnitResult};
use ragshift_store::StoreError;

/// The statements for one partition.
#[derive(Debug, Clone)]
pub struct PartitionSql {
    /// `COPY (SELECT ...) TO STDOUT (FORMAT binary)` for the source.
    pub copy_out: String,
    /// `COPY ... FROM STDIN (FORMAT binary)` for the target.
    pub copy_in: String,
    /// `DELETE ...` of the partition's rows on the target, when it may hold some.
    pub delete: Option<String>,
}

/// Which side failed.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// Reading from the source failed.
    #[error("reading from the source: {0}")]
    Source(StoreError),
    /// Writing to the target failed.
    #[error("writing to the target: {0}")]
    Target(StoreError),
}

impl PipeError {
    /// Whether a retry on fresh connections could succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Source(e) | Self::Target(e) => e.is_transient(),
        }
    }
}

/// Rows and bytes moved.
#[derive(Debug, Clone, Copy, Default)]
pub struct Moved {
    /// Rows the target's COPY reported.
    pub rows: u64,
    /// Bytes of COPY data streamed.
    pub bytes: u64,
}

/// Copies one partition in one target transaction and marks its journal unit succeeded in it.
/// `source` must be inside the snapshot transaction; `streamed` is increased as bytes pass.
pub async fn copy_partition(
    source: &Client,
    target: &mut Client,
    sql: &PartitionSql,
    run_id: &str,
    unit_id: &str,
    planned_rows: i64,
    streamed: &AtomicU64,
) -> Result<Moved, PipeError> {
    journal::mark_running(&*target, run_id, unit_id, None)
        .await
        .map_err(PipeError::Target)?;
    let t = |what: &'static str| move |e| PipeError::Target(StoreError::query(what, e));
    let tx = target
        .transaction()
        .await
        .map_err(t("starting the partition's transaction"))?;
    if let Some(delete) = &sql.delete {
        tx.execute(delete.as_str(), &[])
            .await
            .map_err(t("deleting the partition's earlier rows"))?;
    }
    let sink = tx
        .copy_in::<_, Bytes>(sql.copy_in.as_str())
        .await
        .map_err(t("starting COPY FROM STDIN"))?;
    let stream = source
        .copy_out(sql.copy_out.as_str())
        .await
        .map_err(|e| PipeError::Source(StoreError::query("starting COPY TO STDOUT", e)))?;
    let mut sink = pin!(sink);
    let mut stream = pin!(stream);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| PipeError::Source(StoreError::query("streaming COPY TO STDOUT", e)))?;
        let n = chunk.len() as u64;
        sink.feed(chunk)
            .await
            .map_err(t("streaming COPY FROM STDIN"))?;
        bytes += n;
        streamed.fetch_add(n, Ordering::Relaxed);
    }
    let rows = sink
        .as_mut()
        .finish()
        .await
        .map_err(t("finishing COPY FROM STDIN"))?;
    if rows as i64 != planned_rows {
        tracing::warn!(
            partition = unit_id,
            rows,
            planned_rows,
            "the partition holds another number of rows than when it was planned (the source changed between the run and its resume?); verification will tell"
        );
    }
    let result = UnitResult {
        row_count: Some(rows as i64),
        checksum: None,
        error: None,
        detail: Some(json!({ "bytes": bytes, "planned_rows": planned_rows })),
    };
    journal::mark_finished(&tx, run_id, unit_id, Status::Succeeded, &result)
        .await
        .map_err(PipeError::Target)?;
    tx.commit().await.map_err(t("committing the partition"))?;
    Ok(Moved { rows, bytes })
}
