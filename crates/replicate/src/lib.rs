//! Near-zero-downtime migration with PostgreSQL's native logical replication: what AWS DMS does
//! for pgvector tables, minus DMS.
//!
//! - [`start`]: checks every prerequisite and says exactly what is missing
//!   ([`prerequisites`]); prepares the target table without its vector index
//!   ([`target_table`]); creates the publication on the source and the subscription on the
//!   target, binary where both sides support it; names everything `ragshift_*` ([`names`]) and
//!   records it in the target's run journal ([`record`]).
//! - [`status()`]: initial sync per table, WAL bytes behind, apply errors, rows on both sides.
//! - [`cutover`]: waits until caught up, fences writes on the source ([`fence`]), waits until
//!   the target has everything up to the fence, verifies ([`ragshift_verify`]), drops the
//!   subscription, its slot and the publication, then builds the vector index. Refuses if
//!   verification fails, lifting the fence and leaving replication running.
//! - [`abort`]: removes everything a run recorded creating on both sides, by its recorded
//!   names, and nothing else.
//! - [`setup`]: the sides from the configuration, the flags' addresses and durations, whether
//!   cutover fences the source, and whether an error came before any work.
//!
//! Logical replication applies rows to the table of the same name, so the source and target
//! tables share one [`Layout`].

mod abort;
mod cutover;
mod error;
mod facts;
pub mod fence;
pub mod names;
pub mod prerequisites;
pub mod publication;
pub mod record;
pub mod setup;
pub mod slot;
mod start;
pub mod status;
pub mod subscription;
pub mod target_table;

use ragshift_store::journal::Journal;
use ragshift_store::{connect, ConnectSpec, Layout};
use tokio_postgres::Client;

pub use abort::{abort, AbortReport};
pub use cutover::{cutover, CutoverOptions, CutoverReport, FenceSummary, IndexSummary, Step};
pub use error::{ReplicateError, ReplicateErrorKind};
pub use setup::{parse_address, parse_duration};
pub use start::{check, start, StartOptions, StartReport};
pub use status::ReplicationStatus;

use error::{OnSide, Which};

/// The two servers and the table replicated between them.
#[derive(Debug, Clone)]
pub struct Sides {
    /// The old cluster, publishing.
    pub source: ConnectSpec,
    /// The new cluster, subscribing; it holds the journal.
    pub target: ConnectSpec,
    /// The table (same name on both sides).
    pub layout: Layout,
    /// The source as the target SERVER reaches it, when that differs from `source` (ragshift
    /// runs through a tunnel, or beside the target in another network): the subscription
    /// connects with it.
    pub source_from_target: Option<ConnectSpec>,
    /// The run journal in the target, where each replication records what it created.
    pub journal: Journal,
}

impl Sides {
    /// The source's address for the subscription.
    pub fn route(&self) -> &ConnectSpec {
        self.source_from_target.as_ref().unwrap_or(&self.source)
    }

    async fn connect(&self, what: &str) -> Result<(Client, Client), ReplicateError> {
        let app = format!("ragshift replicate {what}");
        let (s, t) = tokio::join!(connect(&self.source, &app), connect(&self.target, &app));
        Ok((s.on(self, Which::Source)?, t.on(self, Which::Target)?))
    }

    fn side_error(&self, (side, e): (&str, ragshift_store::StoreError)) -> ReplicateError {
        let label = if side == "source" {
            self.source.label()
        } else {
            self.target.label()
        };
        ReplicateError::store(side, label, e)
    }
}

/// The running replication's record, or an error saying there is none (and how the last one
/// ended).
async fn active_record(sides: &Sides, target: &Client) -> Result<record::Record, ReplicateError> {
    if let Some(r) = record::active(target, &sides.journal)
        .await
        .on(sides, Which::Target)?
    {
        return Ok(r);
    }
    let last = record::latest(target, &sides.journal)
        .await
        .on(sides, Which::Target)?;
    let (hint, next) = match last {
        Some((status, r)) if status == "succeeded" => (
            format!(
                " (the last one, {}, ended: {status}: it was cut over)",
                r.names.run_id
            ),
            "if its vector index is missing, build it with `ragshift build-index`; to replicate again, `ragshift replicate start`",
        ),
        Some((status, r)) => (
            format!(" (the last one, {}, ended: {status})", r.names.run_id),
            "start one with `ragshift replicate start`",
        ),
        None => (String::new(), "start one with `ragshift replicate start`"),
    };
    Err(ReplicateError::new(
        ReplicateErrorKind::NotStarted,
        format!(
            "no replication is running into {}{hint}; {next}",
            sides.target.label()
        ),
    ))
}

/// The running replication's record and its table, under the target lock of that table (the
/// one `start` took), so that two commands never act on one replication at once.
async fn locked_record(
    sides: &Sides,
    target: &Client,
    what: &str,
) -> Result<(ragshift_store::lock::TargetLock, record::Record, Layout), ReplicateError> {
    let found = active_record(sides, target).await?;
    let layout = found.layout(&sides.layout);
    let lock = ragshift_store::lock::TargetLock::acquire(&sides.target, &layout, what)
        .await
        .on(sides, Which::Target)?;
    // Read again under the lock: another command may have ended it meanwhile.
    let record = active_record(sides, target).await?;
    let layout = record.layout(&sides.layout);
    Ok((lock, record, layout))
}

/// Where the running replication stands.
pub async fn status(sides: &Sides) -> Result<ReplicationStatus, ReplicateError> {
    let (source, target) = sides.connect("status").await?;
    let record = active_record(sides, &target).await?;
    status::read(&source, &target, &record, &record.layout(&sides.layout))
        .await
        .map_err(|e| sides.side_error(e))
}
