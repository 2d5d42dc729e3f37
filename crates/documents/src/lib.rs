//! Where the chat platform's uploaded files live, and how ragshift reads them: an S3 bucket
//! (`s3://bucket/{user_id}/{bot_id}/documents/{filename}`) or a local folder with the same
//! layout. [`DocumentStore::list`] gives sizes without downloading (for `plan`);
//! [`DocumentStore::get`] gives a file's bytes and the `source` its chunks record (for the
//! ingestion worker).
//!
//! Errors separate a store that can't be used at all ([`DocumentError::is_fatal`]: no bucket,
//! no permission) from one bot's missing or unreadable file, which is reported for that bot.
//!
//! ```no_run
//! # async fn example() -> Result<(), ragshift_documents::DocumentError> {
//! use ragshift_documents::{DirDocuments, DocumentStore};
//! use ragshift_model::BotKey;
//! let store = DirDocuments::new("./bucket-copy");
//! store.check().await?;
//! let key = BotKey::new("user-1", "01HZX5Q8J6N2W4V7T9R3K1M0PB");
//! let docs = store.bot_documents(&key, &["manual.pdf".to_owned()]).await?;
//! println!("{} bytes, missing: {:?}", docs.bytes(), docs.missing);
//! # Ok(()) }
//! ```

mod dir;
mod error;
mod open;
mod s3;
mod store;

pub use dir::DirDocuments;
pub use error::DocumentError;
pub use open::from_config;
pub use s3::S3Documents;
pub use store::{bot_prefix, BotDocuments, Document, DocumentInfo, DocumentStore};
