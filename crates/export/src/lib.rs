//! Portable snapshots of the store, taken BEFORE a destructive deploy so that neither a
//! snapshot restore nor re-embedding is needed afterwards: one Parquet file per bot (Arrow
//! schema `id, botid, content, source` as UTF-8 and `embedding` as a fixed-size list of
//! float32, readable by pyarrow and DuckDB as they are) plus a manifest with the schema, the
//! dimension, the model when known, and per file its row count, SHA-256 and the store's per-bot
//! checksum. On a local directory or under `s3://bucket/prefix`.
//!
//! - [`export()`]: from one read-only snapshot of the source.
//! - [`import()`]: every file's SHA-256 checked before anything is written, each bot written in
//!   one transaction, the result compared with the manifest's checksums.
//! - [`manifest`], [`parquet_file`], [`location`]: the pieces.

mod export;
mod hash;
mod import;
pub mod location;
pub mod manifest;
pub mod parquet_file;

pub use export::{export, ExportReport};
pub use import::{import, read_manifest, BotProblem, ImportOptions, ImportReport};
pub use location::Location;
pub use manifest::{FileEntry, Manifest};

use ragshift_store::StoreError;

/// Errors that stop an export or import.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the source failed.
    #[error("source {server}: {error}")]
    Source {
        /// The server, password masked.
        server: String,
        /// What failed.
        #[source]
        error: StoreError,
    },
    /// Writing the target failed.
    #[error("target {server}: {error}")]
    Target {
        /// The server, password masked.
        server: String,
        /// What failed.
        #[source]
        error: StoreError,
    },
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
    /// Whether the work had started when this happened (every other error comes before
    /// anything was written).
    pub fn work_started(&self) -> bool {
        matches!(self, Self::Stopped { .. })
    }
}
