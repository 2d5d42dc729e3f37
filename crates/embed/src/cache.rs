//! The content-hash cache: `(model, sha256(text)) → vector`, so a rerun or a resumed run never
//! pays twice for the same chunk, and an old store (restored snapshot or export) can pre-fill it
//! so unchanged chunks cost nothing.
//!
//! The durable cache lives in the target database, in the run journal's schema (`ragshift` by
//! default: [`PgEmbeddingCache`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{pin_mut, TryStreamExt};
use ragshift_store::ident::quote_ident;
use sha2::{Digest, Sha256};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use crate::error::{Error, Result};

/// SHA-256 of a text's UTF-8 bytes.
pub type ContentHash = [u8; 32];

/// Hashes a text for the cache.
pub fn content_hash(text: &str) -> ContentHash {
    Sha256::digest(text.as_bytes()).into()
}

/// Where vectors already paid for are kept.
#[async_trait]
pub trait EmbeddingCache: Send + Sync {
    /// The cached vectors of `dim` dimensions for those of `hashes` that are cached under
    /// `model`.
    async fn get(
        &self,
        model: &str,
        dim: usize,
        hashes: &[ContentHash],
    ) -> Result<HashMap<ContentHash, Vec<f32>>>;

    /// Stores vectors; entries already present are kept as they are.
    async fn put(&self, model: &str, entries: &[(ContentHash, Vec<f32>)]) -> Result<()>;
}

/// The cache table; `{table}` is replaced by `"schema".embedding_cache`.
const CREATE_SQL: &str = "\
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {table} (
    model text NOT NULL,
    sha256 bytea NOT NULL,
    dim integer NOT NULL,
    embedding real[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, sha256)
);";

const GET_SQL: &str = "SELECT sha256, embedding FROM {table} \
     WHERE model = $1 AND dim = $2 AND sha256 = ANY($3)";

/// One statement for any batch size: hashes as `bytea[]`, vectors flattened into one `real[]`
/// and sliced back per row.
const PUT_SQL: &str = "INSERT INTO {table} (model, sha256, dim, embedding) \
     SELECT $1::text, h.sha, $2::int, ($3::real[])[(h.i::int - 1) * $2::int + 1 : h.i::int * $2::int] \
     FROM unnest($4::bytea[]) WITH ORDINALITY AS h(sha, i) \
     ON CONFLICT (model, sha256) DO NOTHING";

const COUNT_SQL: &str = "SELECT count(*) FROM {table} WHERE model = $1";

/// Rows per insert statement.
const PUT_CHUNK: usize = 1000;

/// The cache in the target database: table `embedding_cache` in the run journal's schema
/// (`ragshift` unless `[run] journal_schema` names another), so everything ragshift keeps in
/// the target is in one schema.
#[derive(Clone)]
pub struct PgEmbeddingCache {
    client: Arc<Client>,
    /// `schema.embedding_cache` as written in messages.
    name: String,
    get_sql: String,
    put_sql: String,
    count_sql: String,
}

impl std::fmt::Debug for PgEmbeddingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgEmbeddingCache")
    }
}

impl PgEmbeddingCache {
    /// Uses `client`'s database, creating the cache table in `schema` (quoted: any name) if it
    /// is missing.
    pub async fn open(client: Arc<Client>, schema: &str) -> Result<Self> {
        let table = format!("{}.embedding_cache", quote_ident(schema));
        let sql = |s: &str| s.replace("{table}", &table);
        let name = format!("{schema}.embedding_cache");
        client
            .batch_execute(&sql(CREATE_SQL).replace("{schema}", &quote_ident(schema)))
            .await
            .map_err(|e| Error::cache(format!("creating {name}"), e))?;
        Ok(PgEmbeddingCache {
            client,
            get_sql: sql(GET_SQL),
            put_sql: sql(PUT_SQL),
            count_sql: sql(COUNT_SQL),
            name,
        })
    }

    /// Entries cached for `model`.
    pub async fn count(&self, model: &str) -> Result<u64> {
        let row = self
            .client
            .query_one(self.count_sql.as_str(), &[&model])
            .await
            .map_err(|e| Error::cache(format!("counting {}", self.name), e))?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}

#[async_trait]
impl EmbeddingCache for PgEmbeddingCache {
    /// Looks up cached vectors with one query (`sha256 = ANY($3)`).
    async fn get(
        &self,
        model: &str,
        dim: usize,
        hashes: &[ContentHash],
    ) -> Result<HashMap<ContentHash, Vec<f32>>> {
        if hashes.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<&[u8]> = hashes.iter().map(|h| h.as_slice()).collect();
        let rows = self
            .client
            .query(self.get_sql.as_str(), &[&model, &(dim as i32), &keys])
            .await
            .map_err(|e| Error::cache(format!("reading {}", self.name), e))?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let sha: &[u8] = row.get(0);
            let v: Vec<f32> = row.get(1);
            if let Ok(h) = <ContentHash>::try_from(sha) {
                out.insert(h, v);
            }
        }
        Ok(out)
    }

    /// Stores vectors (all of one dimension), keeping entries already there.
    async fn put(&self, model: &str, entries: &[(ContentHash, Vec<f32>)]) -> Result<()> {
        let Some(dim) = entries.first().map(|(_, v)| v.len()) else {
            return Ok(());
        };
        if entries.iter().any(|(_, v)| v.len() != dim) {
            return Err(Error::Cache {
                message: "vectors of different dimensions in one cache write".into(),
                source: None,
            });
        }
        for chunk in entries.chunks(PUT_CHUNK) {
            let keys: Vec<&[u8]> = chunk.iter().map(|(h, _)| h.as_slice()).collect();
            let flat: Vec<f32> = chunk.iter().flat_map(|(_, v)| v.iter().copied()).collect();
            let dim32 = dim as i32;
            let params: [&(dyn ToSql + Sync); 4] = [&model, &dim32, &flat, &keys];
            self.client
                .execute(self.put_sql.as_str(), &params)
                .await
                .map_err(|e| Error::cache(format!("writing {}", self.name), e))?;
        }
        Ok(())
    }
}

/// Where old vectors are read from when seeding the cache: a table of the old store.
#[derive(Debug, Clone)]
pub struct SeedSource {
    /// The table's schema.
    pub schema: String,
    /// The table (quoted, never pasted raw).
    pub table: String,
    /// The text column (the platform's `content`).
    pub content_column: String,
    /// The vector column (the platform's `embedding`, a pgvector `vector`).
    pub embedding_column: String,
}

impl Default for SeedSource {
    fn default() -> Self {
        SeedSource {
            schema: "public".into(),
            table: "items".into(),
            content_column: "content".into(),
            embedding_column: "embedding".into(),
        }
    }
}

/// Fills the cache from an old store's rows whose vectors are known to come from `model` (the
/// caller vouches for that: e.g. the platform always used `cohere.embed-multilingual-v3`), so
/// unchanged chunks cost nothing. Returns the number of rows read. Streams the table; works on
/// a pgvector `vector` column (cast to `real[]`) or a `real[]` one.
pub async fn seed_cache_from_table(
    source: &Client,
    from: &SeedSource,
    cache: &dyn EmbeddingCache,
    model: &str,
) -> Result<u64> {
    let sql = format!(
        "SELECT {c}, {e}::real[] FROM {s}.{t} WHERE {c} IS NOT NULL AND {e} IS NOT NULL",
        c = quote_ident(&from.content_column),
        e = quote_ident(&from.embedding_column),
        s = quote_ident(&from.schema),
        t = quote_ident(&from.table),
    );
    let no_params: [&(dyn ToSql + Sync); 0] = [];
    let stream = source
        .query_raw(sql.as_str(), no_params)
        .await
        .map_err(|e| {
            Error::cache(
                format!("reading {}.{} to seed the cache", from.schema, from.table),
                e,
            )
        })?;
    pin_mut!(stream);
    let mut seeder = Seeder::new(cache, model);
    while let Some(row) = stream
        .try_next()
        .await
        .map_err(|e| Error::cache(format!("reading {} to seed the cache", from.table), e))?
    {
        let content: String = row.get(0);
        seeder.add(&content, row.get(1)).await?;
    }
    seeder.finish().await
}

/// Fills the cache from `(text, vector)` pairs known to come from `model`: for seeding from an
/// export file rather than a live table. Returns the number of pairs.
pub async fn seed_cache_from_pairs(
    cache: &dyn EmbeddingCache,
    model: &str,
    pairs: impl IntoIterator<Item = (String, Vec<f32>)>,
) -> Result<u64> {
    let mut seeder = Seeder::new(cache, model);
    for (text, v) in pairs {
        seeder.add(&text, v).await?;
    }
    seeder.finish().await
}

/// Puts seeded pairs into the cache [`PUT_CHUNK`] at a time, whatever they are read from.
struct Seeder<'a> {
    cache: &'a dyn EmbeddingCache,
    model: &'a str,
    batch: Vec<(ContentHash, Vec<f32>)>,
    total: u64,
}

impl<'a> Seeder<'a> {
    fn new(cache: &'a dyn EmbeddingCache, model: &'a str) -> Self {
        Self {
            cache,
            model,
            batch: Vec::with_capacity(PUT_CHUNK),
            total: 0,
        }
    }

    /// Adds `text`'s vector, writing a full batch.
    async fn add(&mut self, text: &str, v: Vec<f32>) -> Result<()> {
        self.batch.push((content_hash(text), v));
        self.total += 1;
        if self.batch.len() == PUT_CHUNK {
            put_by_dim(self.cache, self.model, &self.batch).await?;
            self.batch.clear();
        }
        Ok(())
    }

    /// Writes the last batch; the number of pairs added.
    async fn finish(self) -> Result<u64> {
        put_by_dim(self.cache, self.model, &self.batch).await?;
        Ok(self.total)
    }
}

async fn put_by_dim(
    cache: &dyn EmbeddingCache,
    model: &str,
    batch: &[(ContentHash, Vec<f32>)],
) -> Result<()> {
    let mut by_dim: HashMap<usize, Vec<(ContentHash, Vec<f32>)>> = HashMap::new();
    for (h, v) in batch {
        by_dim.entry(v.len()).or_default().push((*h, v.clone()));
    }
    for entries in by_dim.values() {
        cache.put(model, entries).await?;
    }
    Ok(())
}
