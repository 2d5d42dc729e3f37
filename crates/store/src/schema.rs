//! `init-target`: make sure the `vector` extension and the chunk table exist, in the platform's
//! layout, without ever dropping or altering a table that is already there.

use std::fmt;

use tokio_postgres::error::SqlState;
use tokio_postgres::GenericClient;

use crate::ident::{quote_ident, Layout};
use crate::{StoreError, StoreErrorKind};

/// One column as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnShape {
    /// Column name.
    pub name: String,
    /// Type as `format_type` prints it (`character(26)`, `vector(1024)`).
    pub type_name: String,
}

/// The columns of a chunk table, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableShape {
    /// Columns in the table's order.
    pub columns: Vec<ColumnShape>,
}

impl fmt::Display for TableShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.type_name))
            .collect();
        write!(f, "({})", cols.join(", "))
    }
}

impl TableShape {
    /// The platform's layout with vectors of `dimension`.
    pub fn expected(layout: &Layout, dimension: usize) -> Self {
        let col = |name: &str, t: &str| ColumnShape {
            name: name.to_owned(),
            type_name: t.to_owned(),
        };
        Self {
            columns: vec![
                col(&layout.id, "character(26)"),
                col(&layout.bot, "character(26)"),
                col(&layout.content, "text"),
                col(&layout.source, "text"),
                col(&layout.embedding, &format!("vector({dimension})")),
            ],
        }
    }

    /// The vector dimension of `column`, when it is a `vector(n)`.
    pub fn dimension_of(&self, column: &str) -> Option<usize> {
        let c = self.columns.iter().find(|c| c.name == column)?;
        c.type_name
            .strip_prefix("vector(")?
            .strip_suffix(')')?
            .parse()
            .ok()
    }
}

/// What `init_target` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    /// The table was created.
    Created,
    /// A table of the right shape was already there; nothing changed.
    AlreadyPresent,
}

/// Installed pgvector version, or `None` when the extension isn't created in this database.
pub async fn vector_version(client: &impl GenericClient) -> Result<Option<String>, StoreError> {
    let row = client
        .query_opt(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
            &[],
        )
        .await
        .map_err(|e| StoreError::query("reading installed extensions", e))?;
    Ok(row.map(|r| r.get(0)))
}

/// Creates the `vector` extension if this database lacks it; returns its version.
pub async fn ensure_vector_extension(client: &impl GenericClient) -> Result<String, StoreError> {
    if let Some(v) = vector_version(client).await? {
        return Ok(v);
    }
    if let Err(e) = client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
        .await
    {
        let db: String = client
            .query_one("SELECT current_database()", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or_default();
        return Err(match e.code() {
            Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => StoreError::new(
                StoreErrorKind::Permission,
                format!(
                    "not allowed to create the vector extension in database \"{db}\": ask an administrator to run `CREATE EXTENSION vector;` there, or connect as a user who may (on RDS/Aurora: a member of rds_superuser)"
                ),
            ),
            Some(c) if *c == SqlState::UNDEFINED_FILE || *c == SqlState::FEATURE_NOT_SUPPORTED => {
                StoreError::new(
                    StoreErrorKind::MissingExtension,
                    format!(
                        "pgvector is not installed on the server of database \"{db}\": install it (locally: scripts/setup-postgres.sh; RDS/Aurora include it)"
                    ),
                )
            }
            _ => StoreError::query("creating the vector extension", e),
        });
    }
    vector_version(client).await?.ok_or_else(|| {
        StoreError::new(
            StoreErrorKind::MissingExtension,
            "the vector extension is still missing after CREATE EXTENSION",
        )
    })
}

/// The table's columns, or `None` if there is no such table.
pub async fn read_shape(
    client: &impl GenericClient,
    layout: &Layout,
) -> Result<Option<TableShape>, StoreError> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
                AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&layout.schema, &layout.table],
        )
        .await
        .map_err(|e| {
            StoreError::query(format!("reading the shape of {}", layout.display_name()), e)
        })?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(TableShape {
        columns: rows
            .iter()
            .map(|r| ColumnShape {
                name: r.get(0),
                type_name: r.get(1),
            })
            .collect(),
    }))
}

/// Checks an existing table against the expected layout: every expected column must be there
/// with the expected type (extra columns are tolerated). A vector dimension that differs is
/// reported as its own kind, since the fix differs.
pub fn check_shape(
    layout: &Layout,
    actual: &TableShape,
    expected: &TableShape,
) -> Result<(), StoreError> {
    // Ids, bot ids and texts are written as text: any text type holds them (a table the user
    // or a library created with `varchar` or `text` columns is as good as `character(26)`).
    let fits = |want: &ColumnShape, have: &ColumnShape| {
        have.name == want.name
            && (have.type_name == want.type_name
                || (want.name != layout.embedding
                    && is_text_type(&want.type_name)
                    && is_text_type(&have.type_name))
                // JSON metadata is written as a JSON value, which either type takes.
                || (is_json_type(&want.type_name) && is_json_type(&have.type_name)))
    };
    let mismatched: Vec<&ColumnShape> = expected
        .columns
        .iter()
        .filter(|want| !actual.columns.iter().any(|have| fits(want, have)))
        .collect();
    if mismatched.is_empty() {
        return Ok(());
    }
    let only_dimension = mismatched.len() == 1
        && mismatched[0].name == layout.embedding
        && actual.dimension_of(&layout.embedding).is_some();
    if only_dimension {
        let have = actual.dimension_of(&layout.embedding).unwrap_or_default();
        let want = expected.dimension_of(&layout.embedding).unwrap_or_default();
        return Err(StoreError::new(
            StoreErrorKind::DimensionMismatch,
            format!(
                "table {} stores vector({have}) but the embedder makes {want}-dimensional vectors; use a model with {have} dimensions, or another table ([target] table)",
                layout.display_name()
            ),
        ));
    }
    Err(StoreError::new(
        StoreErrorKind::ShapeMismatch,
        format!(
            "table {} exists with another shape and is left untouched:\n  found:    {actual}\n  expected: {expected}\nuse another table ([target] table) or set the column names ([target] id_column, bot_column, ...)",
            layout.display_name()
        ),
    ))
}

/// Refuses a vector dimension pgvector can't store.
pub fn check_dimension_range(dimension: usize) -> Result<(), StoreError> {
    if dimension == 0 || dimension > 16_000 {
        return Err(StoreError::new(
            StoreErrorKind::Config,
            format!("vector dimension {dimension} is out of range (1..=16000)"),
        ));
    }
    Ok(())
}

/// Creates the extension and the chunk table (with a btree index on the bot column) if missing;
/// a table that exists is checked, never changed.
pub async fn init_target(
    client: &mut tokio_postgres::Client,
    layout: &Layout,
    dimension: usize,
) -> Result<InitOutcome, StoreError> {
    check_dimension_range(dimension)?;
    if layout.bot.is_empty() {
        return Err(StoreError::new(
            StoreErrorKind::Config,
            format!(
                "{} needs a bot column to write bots into ([target] bot_column is empty)",
                layout.display_name()
            ),
        ));
    }
    ensure_vector_extension(client).await?;
    let expected = TableShape::expected(layout, dimension);
    if let Some(actual) = read_shape(client, layout).await? {
        check_shape(layout, &actual, &expected)?;
        return Ok(InitOutcome::AlreadyPresent);
    }
    let tx = client
        .transaction()
        .await
        .map_err(|e| StoreError::query("starting a transaction", e))?;
    let create = format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {table} (
            {id} character(26) PRIMARY KEY,
            {bot} character(26),
            {content} text,
            {source} text,
            {embedding} vector({dimension}));
         CREATE INDEX IF NOT EXISTS {bot_idx} ON {table} ({bot});",
        schema = quote_ident(&layout.schema),
        table = layout.qualified(),
        id = quote_ident(&layout.id),
        bot = quote_ident(&layout.bot),
        content = quote_ident(&layout.content),
        source = quote_ident(&layout.source),
        embedding = quote_ident(&layout.embedding),
        bot_idx = quote_ident(&layout.index_name(&layout.bot)),
    );
    tx.batch_execute(&create)
        .await
        .map_err(|e| StoreError::query(format!("creating {}", layout.display_name()), e))?;
    // Another process may have created it between our check and CREATE ... IF NOT EXISTS.
    let actual = read_shape(&tx, layout).await?.ok_or_else(|| {
        StoreError::new(StoreErrorKind::Query, "the table vanished after creation")
    })?;
    check_shape(layout, &actual, &expected)?;
    tx.commit()
        .await
        .map_err(|e| StoreError::query("committing the new table", e))?;
    Ok(InitOutcome::Created)
}

/// The vector dimension of an existing table, for the guard that runs before any work.
pub async fn table_dimension(
    client: &impl GenericClient,
    layout: &Layout,
) -> Result<Option<usize>, StoreError> {
    Ok(read_shape(client, layout)
        .await?
        .and_then(|s| s.dimension_of(&layout.embedding)))
}

/// A table by `(schema, name)`.
type TableName = (String, String);

/// The tables that make a store besides its chunk table, as `(schema, table)`, each after the
/// tables it refers to: those the chunk table refers to by foreign key (LangChain's
/// collections), the tables they refer to in turn, and `layout.extra_tables` with theirs. A
/// missing extra table, or one that refers to the chunk table (it would have to load after the
/// chunks, which ragshift doesn't do), is refused.
pub async fn referenced_tables(
    client: &impl GenericClient,
    layout: &Layout,
) -> Result<Vec<(String, String)>, StoreError> {
    let chunk = (layout.schema.clone(), layout.table.clone());
    let mut seeds = vec![chunk.clone()];
    for name in &layout.extra_tables {
        let (schema, table) = match name.split_once('.') {
            Some((s, t)) => (s.to_owned(), t.to_owned()),
            None => (layout.schema.clone(), name.clone()),
        };
        let extra = layout.with_table(&table);
        let extra = Layout { schema, ..extra };
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&extra.qualified()])
            .await
            .map_err(|e| StoreError::query(format!("looking for {}", extra.display_name()), e))?
            .get(0);
        if !exists {
            return Err(StoreError::new(
                StoreErrorKind::Config,
                format!(
                    "extra table {} (--extra-table, [source] extra_tables) is not on the source",
                    extra.display_name()
                ),
            ));
        }
        seeds.push((extra.schema, extra.table));
    }
    // Every table reachable by foreign key, with the tables each refers to.
    let mut parents: Vec<(TableName, Vec<TableName>)> = Vec::new();
    let mut queue = seeds.clone();
    while let Some(t) = queue.pop() {
        if parents.iter().any(|(k, _)| *k == t) {
            continue;
        }
        let refs = direct_references(client, &t).await?;
        queue.extend(refs.iter().cloned());
        parents.push((t, refs));
    }
    for (t, refs) in &parents {
        if *t != chunk && refs.contains(&chunk) {
            return Err(StoreError::new(
                StoreErrorKind::Config,
                format!(
                    "{}.{} refers to the chunk table {} by foreign key: ragshift moves the tables a store's chunks depend on, not tables that depend on the chunks; leave it out of the extra tables",
                    t.0,
                    t.1,
                    layout.display_name()
                ),
            ));
        }
    }
    // Each table after the ones it refers to (depth first; a cycle is broken where it closes).
    fn visit(
        t: &(String, String),
        parents: &[(TableName, Vec<TableName>)],
        seen: &mut Vec<(String, String)>,
        out: &mut Vec<(String, String)>,
    ) {
        if seen.contains(t) {
            return;
        }
        seen.push(t.clone());
        if let Some((_, refs)) = parents.iter().find(|(k, _)| k == t) {
            for r in refs {
                visit(r, parents, seen, out);
            }
        }
        out.push(t.clone());
    }
    let (mut seen, mut out) = (Vec::new(), Vec::new());
    for t in &seeds {
        visit(t, &parents, &mut seen, &mut out);
    }
    out.retain(|t| *t != chunk);
    Ok(out)
}

/// The tables `table` refers to by foreign key, itself excluded, by name.
async fn direct_references(
    client: &impl GenericClient,
    (schema, table): &(String, String),
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = client
        .query(
            "SELECT DISTINCT rn.nspname::text, rc.relname::text
               FROM pg_constraint con
               JOIN pg_class rc ON rc.oid = con.confrelid
               JOIN pg_namespace rn ON rn.oid = rc.relnamespace
               JOIN pg_class c ON c.oid = con.conrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2 AND con.contype = 'f'
                AND con.confrelid <> con.conrelid
              ORDER BY 1, 2",
            &[schema, table],
        )
        .await
        .map_err(|e| {
            StoreError::query(format!("finding the tables {schema}.{table} refers to"), e)
        })?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// `source`'s referenced table `(schema, table)` as it is named on the side of `target`: in
/// `target`'s schema when it shares `source`'s table's schema, else in the same schema.
pub fn counterpart(
    source: &Layout,
    target: &Layout,
    referenced: &(String, String),
) -> (Layout, Layout) {
    let (schema, table) = referenced;
    let mut s = source.with_table(table);
    s.schema = schema.clone();
    let mut t = target.with_table(table);
    t.schema = if *schema == source.schema {
        target.schema.clone()
    } else {
        schema.clone()
    };
    (s, t)
}

/// Whether an extension version (`0.8.0`) is at least `want` (major, minor): pgvector's
/// features came in minor versions (`halfvec` and `sparsevec` in 0.7).
pub fn version_at_least(version: &str, want: (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= want
}

/// Whether a type, as `format_type` prints it, holds text: ids, bot ids and chunk texts are
/// written and exported as text, which any of these hold.
pub fn is_text_type(type_sql: &str) -> bool {
    type_sql == "text"
        || type_sql.starts_with("character varying")
        || type_sql.starts_with("character(")
        || type_sql == "character"
}

/// Whether a type holds JSON (`json` or `jsonb`): metadata is written as a JSON value, which
/// either takes.
pub fn is_json_type(type_sql: &str) -> bool {
    type_sql == "json" || type_sql == "jsonb"
}
