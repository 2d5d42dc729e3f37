//! The pgvector store every migration strategy reads or writes.
//!
//! - [`connect`]: a connection from a URL or a Secrets Manager secret, TLS with the usual
//!   `sslmode` values, errors that name the server (password masked) and the fix.
//! - [`schema`]: `init-target`: the `vector` extension and the chunk table, never altering a table
//!   that exists.
//! - [`catalog`]: a table as its catalog describes it (columns, sequences, indexes,
//!   constraints) and the statements that rebuild it elsewhere, for copy and export/import.
//! - [`checksum`]: row counts and checksums of every column, per bot or id range, computed
//!   inside PostgreSQL.
//! - [`compare`]: the one comparison of two stores built on them (verify, copy, import,
//!   replicate's cutover): groups matching, missing, extra or different, explained by row ids
//!   and columns; tables without groups compared whole.
//! - [`writer`]: replaces all rows of one bot in one transaction with binary COPY.
//! - [`bot_rows`]: where each layout (Bedrock Chat, LangChain v1/v2, LlamaIndex) keeps a bot's
//!   rows and how a chunk becomes a row there.
//! - [`index`]: the vector index, built after the data is in.
//! - [`index_build`]: the one index-build engine: memory from the estimate, parallel workers,
//!   progress from `pg_stat_progress_create_index`.
//! - [`search`]: the platform's retrieval query.
//! - [`journal`] and [`lock`]: the crash-safe run journal and the one-run-per-target lock.
//! - [`budget`]: one provider budget per run, leased in slices by every worker of the run.
//! - [`identity`]: which database a connection really reached (refusing copies into themselves).
//! - [`ddl`]: DDL and TRUNCATE under a `lock_timeout`, naming what they wait on.
//! - [`session`]: ending a session whose COMMIT's answer was lost, before reading the journal.

pub mod bot_rows;
pub mod budget;
pub mod catalog;
pub mod checksum;
pub mod compare;
pub mod connect;
pub mod ddl;
mod error;
pub mod ident;
pub mod identity;
pub mod index;
pub mod index_build;
pub mod journal;
pub mod lock;
pub mod schema;
pub mod search;
pub mod session;
mod tls;
pub mod writer;

pub use bot_rows::{BotRows, RowShape};
pub use connect::{connect, ConnectSpec, DbSecretParts};
pub use error::{StoreError, StoreErrorKind};
pub use ident::{quote_ident, Layout};
