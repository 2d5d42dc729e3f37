//! ragshift's settings, resolved from four layers into one [`Config`]:
//! built-in defaults < the TOML file < `RAGSHIFT_<SECTION>_<KEY>` environment variables < flags.
//!
//! Every section refuses unknown keys, and errors name the key and where its value came from
//! (file path or environment variable), so a typo never silently falls back to a default.

pub mod conninfo;
mod load;
mod mask;
mod sections;

pub use load::{ConfigError, Layers, Loaded, Origin, Setting, DEFAULT_FILE, ENV_PREFIX, SECTIONS};
pub use mask::{mask_url, Sensitive};
pub use sections::{
    check_schema_name, parse_duration, AwsConfig, Config, DatabaseConfig, DocumentsConfig,
    DocumentsKind, EmbeddingConfig, EmbeddingProvider, ExecutorConfig, ExecutorKind, IndexConfig,
    IngestConfig, LayoutPreset, RegistryConfig, RegistryKind, RetryConfig, RunConfig, SslMode,
    VectorIndexKind, DEFAULT_JOURNAL_SCHEMA,
};
