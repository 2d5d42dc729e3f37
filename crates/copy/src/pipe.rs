//! One partition, source to target: `COPY (SELECT ...) TO STDOUT (FORMAT binary)` on the source
//! streamed chunk by chunk into `COPY ... FROM STDIN (FORMAT binary)` on the target. Rows are
//! never decoded and never touch a disk on the way; the target transaction also records the
//! partition as done in the journal, so data and journal commit together or not at all, and a
//! retry after a COMMIT whose answer was lost reads the journal before writing anything.

use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_postgres::Client;

use ragshift_retry::Verdict;
use ragshift_store::journal::{Journal, Status, UnitResult};
use ragshift_store::lock::TargetLock;
use ragshift_store::StoreError;

/// The statements for one partition.
#[derive(Debug, Clone)]
pub struct PartitionSql {
    /// `COPY (SELECT ...) TO STDOUT (FORMAT binary)` for the source.
    pub copy_out: String,
    /// `COPY ... FROM STDIN (FORMAT binary)` for the target.
    pub copy_in: String,
    /// `DELETE ...` of the partition's rows on the target, run when an earlier attempt (of this
    /// run or an earlier one) may have left some.
    pub delete: String,
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
    /// The run's target lock is gone: nothing may be committed any more.
    #[error("{0}")]
    LockLost(StoreError),
}

impl PipeError {
    /// The underlying store error.
    pub fn store(&self) -> &StoreError {
        match self {
            Self::Source(e) | Self::Target(e) | Self::LockLost(e) => e,
        }
    }

    /// Whether a new attempt (on new connections) could succeed, by SQLSTATE and error kind.
    pub fn verdict(&self) -> Verdict {
        match self {
            Self::LockLost(_) => Verdict::Fail,
            Self::Source(e) | Self::Target(e) => store_verdict(e),
        }
    }
}

/// [`StoreError::retry_verdict`], as the copy's retry loops name it.
pub fn store_verdict(e: &StoreError) -> Verdict {
    e.retry_verdict()
}

/// Rows and bytes moved.
#[derive(Debug, Clone, Copy, Default)]
pub struct Moved {
    /// Rows the target's COPY reported.
    pub rows: u64,
    /// Bytes of COPY data streamed.
    pub bytes: u64,
}

/// How a partition attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum Copied {
    /// Copied and committed now.
    Now(Moved),
    /// The journal says an earlier attempt committed it (its answer was lost on the way).
    Already,
}

/// Streams `copy_out` (run on `source`) into `copy_in` (run in `tx`) chunk by chunk, never
/// decoding a row; `streamed` is increased as bytes pass. Returns what the target's COPY took.
pub async fn stream_copy(
    source: &Client,
    tx: &tokio_postgres::Transaction<'_>,
    copy_out: &str,
    copy_in: &str,
    streamed: &AtomicU64,
) -> Result<Moved, PipeError> {
    let t = |what: &'static str| move |e| PipeError::Target(StoreError::query(what, e));
    let sink = tx
        .copy_in::<_, Bytes>(copy_in)
        .await
        .map_err(t("starting COPY FROM STDIN"))?;
    let stream = source
        .copy_out(copy_out)
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
    Ok(Moved { rows, bytes })
}

/// Copies one partition in one target transaction and marks its journal unit succeeded in it.
/// `source` must be inside the snapshot transaction; `streamed` is increased as bytes pass.
///
/// Safe to call again after any failure, including one that left the outcome of a COMMIT
/// unknown, provided the earlier attempt's session has ended (see `ragshift_store::session::end_session`): the unit is
/// first claimed in the journal — which waits for any transaction still holding its row and
/// returns [`Copied::Already`] if the partition committed — and a claim that is not the
/// unit's first attempt deletes the partition's rows inside the new transaction before copying.
/// `lock` is checked just before COMMIT.
#[allow(clippy::too_many_arguments)]
pub async fn copy_partition(
    source: &Client,
    target: &mut Client,
    sql: &PartitionSql,
    journal: &Journal,
    run_id: &str,
    unit_id: &str,
    planned_rows: i64,
    streamed: &AtomicU64,
    lock: &TargetLock,
) -> Result<Copied, PipeError> {
    let t = |what: &'static str| move |e| PipeError::Target(StoreError::query(what, e));
    let claimed = target
        .query_opt(
            &*format!(
                "UPDATE {}
                    SET status = 'running', attempts = attempts + 1, started_at = now(),
                        finished_at = NULL, error = NULL
                  WHERE run_id = $1 AND unit_id = $2 AND status <> 'succeeded'
              RETURNING attempts",
                journal.units_table()
            ),
            &[&run_id, &unit_id],
        )
        .await
        .map_err(t("claiming the partition in the journal"))?;
    let Some(claimed) = claimed else {
        return Ok(Copied::Already);
    };
    let attempts: i32 = claimed.get(0);
    let tx = target
        .transaction()
        .await
        .map_err(t("starting the partition's transaction"))?;
    if attempts > 1 {
        tx.execute(sql.delete.as_str(), &[])
            .await
            .map_err(t("deleting the partition's rows of an earlier attempt"))?;
    }
    let Moved { rows, bytes } =
        stream_copy(source, &tx, &sql.copy_out, &sql.copy_in, streamed).await?;
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
    journal
        .mark_finished(&tx, run_id, unit_id, Status::Succeeded, &result)
        .await
        .map_err(PipeError::Target)?;
    lock.ensure_held().await.map_err(PipeError::LockLost)?;
    tx.commit().await.map_err(t("committing the partition"))?;
    Ok(Copied::Now(Moved { rows, bytes }))
}
