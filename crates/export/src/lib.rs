//! Portable snapshots of a store, taken BEFORE a destructive deploy so that neither a snapshot
//! restore nor re-embedding is needed afterwards, on a local directory or under
//! `s3://bucket/prefix`. An export keeps every table of the store exactly:
//!
//! - **Tables**: the chunk table and the tables it refers to by foreign key (LangChain's
//!   collections), each with its whole catalog definition in the manifest — every column with
//!   its exact type, NOT NULL, default, collation, identity or serial column and its sequence's
//!   value, generated expression; primary, unique, check and foreign-key constraints; indexes.
//! - **Values**: typed Parquet columns ([`columns`]): integers, floats, booleans, texts, uuid
//!   (Parquet UUID), json/jsonb (Parquet JSON), timestamps, dates, bytea, `vector(n)` and
//!   `halfvec(n)` as fixed-size lists of float32 (untyped ones as lists), `sparsevec` as a
//!   struct of dimension, indices and values, arrays as lists, anything else as its text form;
//!   the PostgreSQL type of every column in the field metadata. pyarrow and DuckDB read the
//!   files as they are. Generated columns are left out (the imported table computes them).
//! - **Files**: one per partition key value (bot, collection); a table without one is cut into
//!   files of about `--max-file-bytes` at primary key boundaries. Each file's row count, size,
//!   SHA-256 and store checksum (every column, the scheme `verify` uses) are in the manifest.
//!
//! - [`export()`]: from one read-only snapshot of the source.
//! - [`import()`]: every file's SHA-256 checked before anything is written; the tables
//!   recreated as they were, or loaded into tables of the same shape (another shape is refused,
//!   both shown); each partition key value or key range in one transaction checked against the
//!   manifest's checksum; sequences set, indexes and constraints built after the data, foreign
//!   keys last. Version 1 exports (Bedrock Chat's five columns) still import into the target's
//!   layout.
//! - [`manifest`], [`parquet_file`], [`columns`], [`location`]: the pieces.

pub mod columns;
mod export;
mod hash;
mod import;
pub mod location;
pub mod manifest;
pub mod parquet_file;
mod rename;
mod tables;

pub use export::{export, ExportReport, DEFAULT_FILE_BYTES};
pub use import::{import, read_manifest, BotProblem, ImportOptions, ImportReport, Rename};
pub use location::Location;
pub use manifest::{FileEntry, Manifest, TableEntry};

use ragshift_store::compare::{ServerError, Side};
use ragshift_store::StoreError;

/// Errors that stop an export or import.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the source or writing the target failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A local file.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        error: std::io::Error,
    },
    /// A Parquet file.
    #[error("{path}: {error}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        error: parquet_file::FileError,
    },
    /// S3.
    #[error(transparent)]
    Transfer(#[from] location::TransferError),
    /// Files whose checksum or size differ from the manifest: nothing was written.
    #[error("corrupted export, nothing was written: {}; export again or restore these files", .0.join("; "))]
    Corrupted(Vec<String>),
    /// The export or import can't go ahead as asked.
    #[error("{0}")]
    Refused(String),
    /// The work had started (files written, rows read) when this stopped it.
    #[error("{error}; {state}")]
    Stopped {
        /// What is left behind, and what to do.
        state: String,
        /// What stopped it.
        #[source]
        error: Box<ExportError>,
    },
}

impl ExportError {
    /// Wraps the source `server`'s errors (for `map_err`).
    pub(crate) fn source(server: &str) -> impl Fn(StoreError) -> Self + Copy + '_ {
        let on = ServerError::on(Side::Source, server);
        move |error| Self::Server(on(error))
    }

    /// Wraps the target `server`'s errors (for `map_err`).
    pub(crate) fn target(server: &str) -> impl Fn(StoreError) -> Self + Copy + '_ {
        let on = ServerError::on(Side::Target, server);
        move |error| Self::Server(on(error))
    }

    /// Whether the work had started when this happened (every other error comes before
    /// anything was written).
    pub fn work_started(&self) -> bool {
        matches!(self, Self::Stopped { .. })
    }
}
