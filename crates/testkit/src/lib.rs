//! Real, throwaway servers for ragshift's tests — used only as a dev-dependency.
//!
//! Tests never assume a server is running: they ask this crate for one.
//!
//! - [`shared_pg`] / [`shared_moto`]: the PostgreSQL + pgvector server and the moto (AWS)
//!   server shared by the whole run. `scripts/test` starts one of each and passes their
//!   addresses in [`env::TEST_PG_URL`] and [`env::TEST_MOTO_URL`]; under a plain `cargo test`
//!   each test process starts its own on first use. Every test creates its own database
//!   ([`PgServer::fresh_database`]) and names its AWS resources with [`unique_name`].
//! - [`PgCluster`]: a private cluster for tests that need special settings — logical
//!   replication, TLS — or that stop the server. Stopped and deleted on drop.
//! - [`MotoServer`]: a private moto server.
//! - [`model_dir`]: the local all-MiniLM-L6-v2 model.
//! - [`rag_stores`]: pgvector stores written, searched and extended by the real LangChain and
//!   LlamaIndex libraries, and an all-column digest to compare a table across a move.
//! - [`FaultProxy`]: real network faults (cuts, stalls, refused connections) between ragshift
//!   and PostgreSQL; [`sigkill_at_random`]: a crash at a seeded random moment.
//! - [`SourceWriter`]: an application writing to the source throughout a migration;
//!   [`row_diff`]: the independent all-column comparison a fault trial ends with.
//! - [`gate`]: a unit of a ragshift run held inside its transaction until the test lets it go.
//! - [`dynamo`], [`s3`], [`ecs`]: the platform's table, document buckets and embedding task in
//!   moto.
//! - [`sql`]: one-line reads (a scalar, a column) for assertions; [`env`]: the ragshift binary
//!   run isolated from the caller's environment, and its output read back.
//! - [`run_measured`]: a command's output and peak resident set, for tests of memory bounds.
//! - [`words`]: the English and Vietnamese words generated test and benchmark documents use.
//!
//! Servers cannot outlive the test process: each has a reaper process that stops it and
//! deletes its files when the test process exits, even when it is killed.
//!
//! What the servers need is installed by `scripts/setup.sh` (`setup-postgres.sh`,
//! `setup-python.sh`, `setup-model.sh`); the errors say which one to run.
//!
//! ```no_run
//! # async fn demo() {
//! let pg = ragshift_testkit::shared_pg();
//! let url = pg.fresh_database("store");
//! let client = pg.connect(&url).await;
//! client.batch_execute("CREATE EXTENSION vector").await.expect("pgvector");
//! let s3 = ragshift_testkit::shared_moto();
//! let bucket = ragshift_testkit::unique_name("sources");
//! # drop((s3, bucket));
//! # }
//! ```

mod block;
pub mod dynamo;
pub mod ecs;
pub mod env;
mod fault_proxy;
mod fixtures;
pub mod gate;
mod kill;
mod model;
mod moto;
mod names;
mod pass_on;
mod peak_rss;
mod pg_cluster;
mod pg_server;
mod process;
pub mod rag_stores;
mod rng;
mod rows;
pub mod s3;
mod shared;
pub mod sql;
mod tls;
mod unix_user;
pub mod words;
mod writer;

pub use fault_proxy::{CutWhen, FaultProxy};
pub use fixtures::{awkward_items, awkward_items_indexed, bot_rows, three_bots, AwkwardItems};
pub use kill::sigkill_at_random;
pub use model::model_dir;
pub use moto::{sdk_config, MotoEndpoint, MotoServer};
pub use names::unique_name;
pub use pass_on::pass_on;
pub use peak_rss::{run_measured, Measured};
pub use pg_cluster::{pg_program, PgCluster, PgOptions};
pub use pg_server::{percent_encoded, PgServer};
pub use rng::SeededRng;
pub use rows::{all_columns, row_diff, RowDiff};
pub use shared::{shared_moto, shared_pg};
pub use tls::TlsFiles;
pub use writer::{writes_missing_on, SourceWriter, Write, WriteLog, WriteOp};

/// The `replicate cutover` a fault trial runs (the CLI's trials and the chaos runner's): a
/// time-out long enough to ride out a fault, and two retrieval queries a bot to verify.
pub const FAULT_TRIAL_CUTOVER: &[&str] = &[
    "replicate",
    "cutover",
    "--timeout",
    "120s",
    "--queries",
    "2",
];
