//! The vocabulary every ragshift crate shares: a bot of the chat platform, the knowledge it
//! holds, how that knowledge is chunked, and the rows that end up in the vector store.
//!
//! Kept free of I/O and heavy dependencies so that every other crate can use it.

mod bot;
mod chunk;

pub use bot::{Bot, BotKey, BotKeyError, EmbeddingParams, Knowledge, SyncStatus};
pub use chunk::{Chunk, StoredRow};
