//! Embedding providers for ragshift.

mod embedder;
mod error;
pub mod local;

pub use embedder::{cosine, l2_norm, Embedder, Embeddings, InputKind, Secret};
pub use error::{Error, ErrorKind, Result};
