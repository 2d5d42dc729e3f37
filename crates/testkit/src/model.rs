//! Where the tests find the local embedding model (installed by `scripts/setup-model.sh`).

use std::path::PathBuf;

use crate::env;

/// Directory of sentence-transformers/all-MiniLM-L6-v2 (`model.safetensors`, `tokenizer.json`,
/// `config.json`, `1_Pooling/` …): `$RAGSHIFT_MODEL_DIR`, or
/// `$RAGSHIFT_HOME/models/all-MiniLM-L6-v2`.
///
/// # Panics
/// When the directory has no `model.safetensors`, with a message saying how to install it.
pub fn model_dir() -> PathBuf {
    let dir = env::var(env::MODEL_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| env::ragshift_home().join("models").join("all-MiniLM-L6-v2"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "the local embedding model is missing: no model.safetensors in {}; \
         run scripts/setup-model.sh (or set {} to a model directory)",
        dir.display(),
        env::MODEL_DIR,
    );
    dir
}
