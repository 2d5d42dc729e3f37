//! `ragshift copy`: a restored snapshot (or any live source) to a new cluster, as fast as the
//! hardware allows, resumable and verified — what pgcopydb does for a database, for the chunk
//! table, with the journal and per-bot proof ragshift adds.
//!
//! - [`snapshot`]: one exported, read-only snapshot shared by every worker.
//! - [`plan`]: partitions by bot, big bots split by id range.
//! - [`pipe`]: binary `COPY ... TO STDOUT` streamed into `COPY ... FROM STDIN`, one target
//!   transaction per partition, journal unit committed with the data.
//! - [`catalog`] and [`indexes`]: the source's table, indexes and constraints, rebuilt on the
//!   target after the data, in parallel.
//! - [`parents`]: the tables the chunk table refers to by foreign key, copied whole first.
//! - [`verify`]: per-bot counts and checksums on both sides.
//! - [`resume`]: the plan and progress of an interrupted run.
//! - [`run`]: all of it in order; [`progress`]: events and counters.
//! - [`settings`]: endpoints and options from the configuration; [`stopped`]: a run that
//!   stopped on an error, ended in the journal.
//!
//! ```no_run
//! # async fn demo(ep: ragshift_copy::Endpoints) -> Result<(), ragshift_copy::CopyError> {
//! use std::sync::Arc;
//! let opts = ragshift_copy::CopyOptions { jobs: 4, ..Default::default() };
//! let report = ragshift_copy::copy(&ep, &opts, Arc::new(|e| eprintln!("{e:?}"))).await?;
//! assert!(report.succeeded());
//! # Ok(()) }
//! ```

mod error;
pub mod parents;
pub mod pipe;
pub mod plan;
pub mod progress;
pub mod resume;
pub mod run;
pub mod settings;
pub mod snapshot;
pub mod stopped;
pub mod verify;

pub use error::CopyError;
pub use progress::{Event, EventSink};
/// The retry policy of [`CopyOptions::retry`].
pub use ragshift_retry::Policy as RetryPolicy;
/// The source's table as its catalog describes it (moved to `ragshift-store`, shared with export).
pub use ragshift_store::catalog;
/// Indexes and constraints rebuilt after the data (in `ragshift-store`, shared with import).
pub use ragshift_store::catalog::indexes;
pub use run::{copy, CopyOptions, CopyReport, Endpoints, PartitionFailure};
pub use stopped::{copy_recording_stop, CopyStopped, Stopped};
