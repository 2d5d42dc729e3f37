//! Turning `[target]`/`[source]` into connections: a URL, or a Secrets Manager secret in the
//! platform's format.

use anyhow::{bail, Context};
use ragshift_config::{AwsConfig, Config, DatabaseConfig, EmbeddingProvider};
use ragshift_store::{ConnectSpec, Layout};

/// Which side a database is on, for messages.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    /// The new cluster.
    Target,
    /// The old cluster or a restored snapshot.
    Source,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Self::Target => "target",
            Self::Source => "source",
        }
    }
}

/// Builds the connection spec for one side, reading the secret when one is configured.
pub async fn connect_spec(
    side: Side,
    db: &DatabaseConfig,
    aws: &AwsConfig,
) -> anyhow::Result<ConnectSpec> {
    let name = side.name();
    if let Some(url) = &db.url {
        return Ok(ConnectSpec::from_url(
            url.expose(),
            db.sslmode,
            db.sslrootcert.as_deref(),
        )?);
    }
    if let Some(arn) = &db.secret_arn {
        let sdk = ragshift_aws::sdk_config(aws).await;
        let parts = ragshift_aws::fetch_db_secret(&sdk, arn)
            .await
            .with_context(|| format!("reading the {name} database secret"))?;
        return Ok(ConnectSpec::from_parts(
            &parts,
            db.sslmode,
            db.sslrootcert.as_deref(),
        ));
    }
    bail!(
        "no {name} database configured: set [{name}] url or secret_arn (RAGSHIFT_{up}_URL, --{name}-url)",
        up = name.to_ascii_uppercase()
    )
}

/// The chunk table's layout on one side.
pub fn layout(db: &DatabaseConfig) -> Layout {
    Layout::from_config(db)
}

/// The vector dimension the configured embedder produces, when it can be known without
/// loading the model.
pub fn configured_dimension(config: &Config) -> Option<usize> {
    let e = &config.embedding;
    if let Some(d) = e.dimensions {
        return Some(d);
    }
    let model = e.model.as_deref().unwrap_or_default();
    match e.provider {
        EmbeddingProvider::Local => Some(384),
        EmbeddingProvider::Bedrock => match model {
            "" | "cohere.embed-multilingual-v3" | "cohere.embed-english-v3" => Some(1024),
            m if m.starts_with("amazon.titan-embed-text-v2") => Some(1024),
            _ => None,
        },
        EmbeddingProvider::Openai => match model {
            "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
            "text-embedding-3-large" => Some(3072),
            _ => None,
        },
    }
}
