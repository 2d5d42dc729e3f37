//! The `rebuild` strategy (the platform's re-embedding migration done properly), and the one
//! place where a configuration becomes components for every command, so a library user builds
//! them the way the binary does.
//!
//! - [`worker`]: one bot: fetch its sources, load and split them, embed the chunks, replace the
//!   bot's rows in one transaction together with its journal row, and set `SyncStatus` the way
//!   the platform's worker does.
//! - [`executor`]: where workers run: in this process ([`executor::LocalExecutor`]) or as one
//!   ECS task per bot ([`executor::EcsExecutor`]).
//! - [`rebuild`]: the run: lock the target, journal every bot, run at most N jobs at once, skip
//!   what a resumed run already finished, build the vector index at the end, report.
//! - [`spool`]: a bot's embedded rows kept on disk until its outcome is known, so a worker's
//!   memory doesn't grow with the bot.
//! - [`budget`]: the run's embedding budget in the journal, shared by all its workers.
//! - [`components`]: the registry, document store, target table, ingestor options, embedder,
//!   cache, budget and per-bot worker a configuration describes, built the same way for every
//!   command.
//! - [`checks`]: a table exists and `--bot` ids match rows, checked before a command starts.
//! - [`plan`]: the bots a selection holds and what embedding them will cost, before any work.
//! - [`settings`]: the effective configuration: layers, then what a layout or a stack fills.
//! - [`launch`]: a whole rebuild from a configuration (what `ragshift rebuild` runs).
//! - [`task`]: one bot as a process of its own (what an ECS task runs, `ragshift embed-bot`).
//! - [`events`]: what a run tells its observers (progress bars, log lines, `--json` events).
//! - [`status`]: the state of a run from the journal, including bots stuck in RUNNING.
//! - [`sides`]: both databases of `copy`, `verify` and `replicate` from a configuration:
//!   connections, replication's sides, a whole verification.
//! - [`target`]: the target's chunk table for one-shot commands: created (`init-target`),
//!   searched (`search`).
//! - [`transfer`]: `export` and `import` from a configuration: location, S3 client, database.

pub mod budget;
pub mod checks;
pub mod components;
pub mod events;
pub mod executor;
pub mod launch;
pub mod plan;
pub mod rebuild;
pub mod settings;
pub mod sides;
pub mod spool;
pub mod status;
pub mod target;
pub mod task;
pub mod transfer;
pub mod worker;

pub use budget::JournalBudget;
pub use events::{BotFinished, Event, Observer, SourceResult};
pub use rebuild::{Rebuild, RebuildOptions, RunReport};
pub use worker::{BotJob, Worker, WorkerOptions};

/// The reason text the platform's worker writes when a bot's vectors are stored.
pub const REASON_INSERTED: &str = "Successfully inserted to vector store.";
/// The reason text the platform's worker writes when a bot has nothing to embed.
pub const REASON_NO_CONTENT: &str = "No contents to embed.";
