//! Chunks of text on their way to the store, and the rows the store holds.

use serde::{Deserialize, Serialize};

/// A piece of one document, ready to embed. Every chunk keeps its document's `source`
/// (`s3://bucket/key`, the URL, or the file path), which the platform shows as a citation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Where the document came from.
    pub source: String,
    /// Position of the chunk within its document, from 0.
    pub index: usize,
    /// The chunk's text.
    pub text: String,
}

/// One row of the vector store, in the platform's layout (`items(id, botid, content, source,
/// embedding)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRow {
    /// A 26-character ULID.
    pub id: String,
    /// The bot the row belongs to.
    pub bot_id: String,
    /// The chunk text.
    pub content: String,
    /// The chunk's source.
    pub source: String,
    /// The chunk's embedding.
    pub embedding: Vec<f32>,
}
