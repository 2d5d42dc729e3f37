//! The chunk table on `[target]` as the one-shot commands use it: created as its layout's
//! library creates it (`init-target`) and searched the way the platform searches (`search`).

use ragshift_config::Config;
use ragshift_store::schema::{self, InitOutcome};
use ragshift_store::search::SearchHit;
use serde::Serialize;

use crate::components::{connect_spec, Side};

/// What `init-target` found or did (its JSON: fields in alphabetical order, as it always listed them).
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// Whether the table was created now.
    pub created: bool,
    /// The vectors' dimension.
    pub dimension: usize,
    /// The chunk table's name.
    pub table: String,
    /// The target server's masked label.
    pub target: String,
    /// The installed pgvector version (empty when it can't be told).
    pub vector_version: String,
    /// Created or already there.
    #[serde(skip)]
    pub outcome: InitOutcome,
    /// The table's expected shape, for people.
    #[serde(skip)]
    pub shape: String,
}

/// Creates the vector extension and `[target]`'s tables (LangChain's collections too) for
/// vectors of `dimension` when missing; a table that exists is checked, never altered.
pub async fn init(config: &Config, dimension: usize) -> anyhow::Result<InitReport> {
    let spec = connect_spec(Side::Target, &config.target, &config.aws).await?;
    let layout = ragshift_store::Layout::from_config(&config.target);
    let rows = ragshift_store::BotRows::from_config(&config.target);
    let mut client = ragshift_store::connect(&spec, "ragshift init-target").await?;
    let outcome = rows.init(&mut client, dimension).await?;
    let version = schema::vector_version(&client).await?.unwrap_or_default();
    Ok(InitReport {
        created: outcome == InitOutcome::Created,
        dimension,
        table: layout.display_name(),
        target: spec.label().to_owned(),
        vector_version: version,
        outcome,
        shape: rows.expected_shape(dimension).to_string(),
    })
}

/// The `limit` chunks of `bot` nearest to `query` in `[target]`'s table, as the platform's
/// retrieval finds them; a query of another dimension than the stored vectors is refused,
/// naming both.
pub async fn search(
    config: &Config,
    bot: &str,
    query: &[f32],
    limit: i64,
) -> anyhow::Result<Vec<SearchHit>> {
    let spec = connect_spec(Side::Target, &config.target, &config.aws).await?;
    let layout = ragshift_store::Layout::from_config(&config.target);
    let mut client = ragshift_store::connect(&spec, "ragshift search").await?;
    if let Some(dim) = schema::table_dimension(&client, &layout).await? {
        if dim != query.len() {
            anyhow::bail!(
                "the query vector has {} dimensions but {} stores vector({dim})",
                query.len(),
                layout.display_name()
            );
        }
    }
    Ok(ragshift_store::search::search(&mut client, &layout, bot, query, limit).await?)
}
