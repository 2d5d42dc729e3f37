//! The vector index, built once the data is in (pgvector builds better and faster indexes
//! that way than by inserting into an index on an empty table).

use std::time::Duration;

use tokio_postgres::GenericClient;

use crate::ident::{quote_ident, Layout};
use crate::index_build::{build_index, IndexBuild, IndexBuildOptions};
use crate::{ConnectSpec, StoreError};

/// Which index to build and with what parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorIndex {
    /// HNSW with optional `m` and `ef_construction`.
    Hnsw {
        /// Connections per layer.
        m: Option<u32>,
        /// Candidate list size while building.
        ef_construction: Option<u32>,
    },
    /// IVFFlat; `lists` chosen from the row count when `None`.
    Ivfflat {
        /// Number of lists.
        lists: Option<u32>,
    },
}

impl VectorIndex {
    /// The index `[target] index` (with its `hnsw_m`, `hnsw_ef_construction`, `index_lists`)
    /// names: one reading of the configuration for every command that builds one.
    pub fn from_config(t: &ragshift_config::DatabaseConfig) -> Self {
        match t.index {
            ragshift_config::VectorIndexKind::Hnsw => Self::Hnsw {
                m: t.hnsw_m,
                ef_construction: t.hnsw_ef_construction,
            },
            ragshift_config::VectorIndexKind::Ivfflat => Self::Ivfflat {
                lists: t.index_lists,
            },
        }
    }
}

/// pgvector's advice: rows / 1000 lists up to 1M rows, sqrt(rows) above; at least 1.
pub fn ivfflat_lists_for(rows: u64) -> u32 {
    let lists = if rows <= 1_000_000 {
        rows / 1000
    } else {
        (rows as f64).sqrt() as u64
    };
    lists.clamp(1, 32_768) as u32
}

/// An index on the vector column that already exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingIndex {
    /// Index name.
    pub name: String,
    /// Access method (`hnsw`, `ivfflat`).
    pub method: String,
    /// Full definition.
    pub definition: String,
}

/// Vector indexes (hnsw or ivfflat) on the table's vector column.
pub async fn vector_indexes(
    client: &impl GenericClient,
    layout: &Layout,
) -> Result<Vec<ExistingIndex>, StoreError> {
    let rows = client
        .query(
            "SELECT ic.relname::text, am.amname::text, pg_get_indexdef(i.indexrelid)
               FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_am am ON am.oid = ic.relam
               JOIN pg_class t ON t.oid = i.indrelid
               JOIN pg_namespace n ON n.oid = t.relnamespace
               JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey)
              WHERE n.nspname = $1 AND t.relname = $2 AND a.attname = $3
                AND am.amname IN ('hnsw', 'ivfflat')",
            &[&layout.schema, &layout.table, &layout.embedding],
        )
        .await
        .map_err(|e| StoreError::query("reading vector indexes", e))?;
    Ok(rows
        .iter()
        .map(|r| ExistingIndex {
            name: r.get(0),
            method: r.get(1),
            definition: r.get(2),
        })
        .collect())
}

/// What [`ensure_vector_index`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexOutcome {
    /// An index was built.
    Built {
        /// Its definition.
        definition: String,
        /// Build time.
        elapsed: Duration,
    },
    /// A vector index was already there.
    Present(ExistingIndex),
}

/// Builds the vector index unless one exists, with an exact `maintenance_work_mem` and no
/// progress reports (import's build); see [`ensure_vector_index_with`].
pub async fn ensure_vector_index(
    client: &mut tokio_postgres::Client,
    layout: &Layout,
    index: VectorIndex,
    maintenance_work_mem: &str,
) -> Result<IndexOutcome, StoreError> {
    let options = IndexBuildOptions::fixed_memory(maintenance_work_mem)
        .map_err(|e| StoreError::new(crate::StoreErrorKind::Config, e))?;
    ensure_vector_index_with(client, None, layout, index, &options).await
}

/// Builds the vector index unless one exists, through the one build engine
/// ([`crate::index_build`]): memory from the estimate within the limits, parallel workers,
/// progress read over a second connection to `watch`.
pub async fn ensure_vector_index_with(
    client: &mut tokio_postgres::Client,
    watch: Option<&ConnectSpec>,
    layout: &Layout,
    index: VectorIndex,
    options: &IndexBuildOptions,
) -> Result<IndexOutcome, StoreError> {
    if let Some(existing) = vector_indexes(client, layout).await?.into_iter().next() {
        return Ok(IndexOutcome::Present(existing));
    }
    // pgvector indexes vectors of one dimension: an untyped column (LangChain's default) can
    // only be indexed by an expression casting to one, which is the application's choice.
    let shape = crate::schema::read_shape(&*client, layout).await?;
    if let Some(column) = shape
        .as_ref()
        .and_then(|s| s.columns.iter().find(|c| c.name == layout.embedding))
    {
        if column.type_name == "vector" {
            return Err(StoreError::new(
                crate::StoreErrorKind::Config,
                format!(
                    "{}.{} is a `vector` without dimensions, which pgvector can't index as it is: index it by expression for the dimension your application queries, e.g. CREATE INDEX ON {} USING hnsw (({}::vector(1536)) vector_cosine_ops)",
                    layout.display_name(),
                    layout.embedding,
                    layout.qualified(),
                    quote_ident(&layout.embedding)
                ),
            ));
        }
    }
    let rows: i64 = client
        .query_one(&format!("SELECT count(*) FROM {}", layout.qualified()), &[])
        .await
        .map_err(|e| StoreError::query("counting rows", e))?
        .get(0);
    let rows = rows.max(0) as u64;
    let (method, with) = match index {
        VectorIndex::Hnsw { m, ef_construction } => {
            let mut opts = Vec::new();
            if let Some(m) = m {
                opts.push(format!("m = {m}"));
            }
            if let Some(ef) = ef_construction {
                opts.push(format!("ef_construction = {ef}"));
            }
            ("hnsw", opts)
        }
        VectorIndex::Ivfflat { lists } => {
            let lists = lists.unwrap_or_else(|| ivfflat_lists_for(rows));
            ("ivfflat", vec![format!("lists = {lists}")])
        }
    };
    let with = if with.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", with.join(", "))
    };
    let name = layout.index_name(&layout.embedding);
    let sql = format!(
        "CREATE INDEX {} ON {table} USING {method} ({col} vector_l2_ops){with}",
        quote_ident(&name),
        table = layout.qualified(),
        col = quote_ident(&layout.embedding),
    );
    let built = build_index(
        client,
        watch,
        &IndexBuild {
            schema: &layout.schema,
            table: &layout.table,
            name: &name,
            sql: &sql,
            rows: Some(rows),
            parallel_workers: None,
        },
        options,
    )
    .await?;
    let definition = vector_indexes(client, layout)
        .await?
        .into_iter()
        .next()
        .map(|i| i.definition)
        .unwrap_or(sql);
    Ok(IndexOutcome::Built {
        definition,
        elapsed: built.elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivfflat_lists_follow_pgvector_advice() {
        assert_eq!(ivfflat_lists_for(0), 1);
        assert_eq!(ivfflat_lists_for(100_000), 100);
        assert_eq!(ivfflat_lists_for(4_000_000), 2000);
    }
}
