//! Where a layout keeps each bot's chunks, and how a chunk becomes a row there: the one notion
//! that everything rebuild does per bot (replacing its rows, counting and checksumming them,
//! creating the tables) goes through, for every layout.
//!
//! - Bedrock Chat (and `custom`): the bot is a column of its own (`botid`).
//! - LangChain v1 (`PGVector`): each bot is a collection of `langchain_pg_collection` whose
//!   `name` is the bot id; its rows point at it by `collection_id`.
//! - LangChain v2 (`PGVectorStore`) and LlamaIndex: the libraries have no collection column,
//!   so the bot is the key `bot_id` of the row's JSON metadata (where the libraries' own
//!   metadata filters find it).
//!
//! The catalog view (copy, export, verify) doesn't use this: it moves and proves bytes and
//! needs no meaning.

use std::error::Error;
use std::fmt;

use bytes::BytesMut;
use pgvector::Vector;
use ragshift_config::{DatabaseConfig, LayoutPreset};
use ragshift_model::StoredRow;
use serde_json::json;
use tokio_postgres::types::{accepts, to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::GenericClient;

use crate::checksum::{self, BotChecksum};
use crate::ident::{quote_ident, quote_literal, Layout};
use crate::schema::{self, ColumnShape, InitOutcome, TableShape};
use crate::{StoreError, StoreErrorKind};

/// The key of the JSON metadata that names a row's bot in the layouts without a bot column.
pub const BOT_ID_KEY: &str = "bot_id";

/// LangChain v1's collection table, beside its chunk table.
pub const LANGCHAIN_COLLECTIONS: &str = "langchain_pg_collection";

/// LlamaIndex's column holding the node id (its `id` is a bigserial the library fills).
const LLAMA_NODE_ID: &str = "node_id";

/// How a layout stores one chunk, and so where a bot's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowShape {
    /// `(id, bot, content, source, embedding)`, the bot in its own column (Bedrock Chat,
    /// `custom`).
    BotColumn,
    /// langchain-postgres `PGVector`: `(id, collection_id, embedding, document, cmetadata)`,
    /// one collection per bot, named by the bot id.
    LangchainV1,
    /// langchain-postgres `PGVectorStore`: `(langchain_id uuid, content, embedding,
    /// langchain_metadata json)`, the bot in `langchain_metadata->>'bot_id'`.
    LangchainV2,
    /// llama-index-vector-stores-postgres: `(text, metadata_, node_id, embedding)` (the id is a
    /// bigserial), the bot in `metadata_->>'bot_id'`.
    LlamaIndex,
}

impl RowShape {
    /// The shape of a `[target] layout`.
    pub fn of(preset: LayoutPreset) -> Self {
        match preset {
            LayoutPreset::BedrockChat | LayoutPreset::Custom => Self::BotColumn,
            LayoutPreset::Langchain => Self::LangchainV1,
            LayoutPreset::LangchainV2 => Self::LangchainV2,
            LayoutPreset::Llamaindex => Self::LlamaIndex,
        }
    }
}

/// A chunk table together with how it keeps bots: what rebuild writes into and reads per bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotRows {
    /// The chunk table and its column names.
    pub layout: Layout,
    /// How a chunk becomes a row.
    pub shape: RowShape,
}

/// 16 bytes sent as a PostgreSQL `uuid` (a chunk's ULID, a collection's uuid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UuidBytes(pub [u8; 16]);

impl ToSql for UuidBytes {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(IsNull::No)
    }
    accepts!(UUID);
    to_sql_checked!();
}

/// One value of a row as COPY sends it.
pub type RowValue = Box<dyn ToSql + Sync + Send>;

impl BotRows {
    /// The table and shape `[target]` describes.
    pub fn from_config(c: &DatabaseConfig) -> Self {
        Self {
            layout: Layout::from_config(c),
            shape: RowShape::of(c.layout),
        }
    }

    /// Bedrock Chat's shape (bot column) over `layout`.
    pub fn bot_column(layout: Layout) -> Self {
        Self {
            layout,
            shape: RowShape::BotColumn,
        }
    }

    /// LangChain v1's collection table, in the chunk table's schema.
    pub fn collections(&self) -> Layout {
        self.layout.with_table(LANGCHAIN_COLLECTIONS)
    }

    /// How bots map onto the table, for the plan and messages.
    pub fn describe(&self) -> String {
        match self.shape {
            RowShape::BotColumn => format!("bot in column {}", self.layout.bot),
            RowShape::LangchainV1 => format!(
                "langchain layout: one collection of {} per bot, named by the bot id",
                self.collections().display_name()
            ),
            RowShape::LangchainV2 => format!(
                "langchain-v2 layout: the bot in {}->>'{BOT_ID_KEY}'",
                self.layout.source
            ),
            RowShape::LlamaIndex => format!(
                "llamaindex layout: the bot in {}->>'{BOT_ID_KEY}'",
                self.layout.source
            ),
        }
    }

    /// SQL condition selecting the rows of the bot given as parameter `$param` (text).
    pub fn bot_filter(&self, param: usize) -> String {
        match self.shape {
            RowShape::BotColumn => format!("{} = ${param}", quote_ident(&self.layout.bot)),
            RowShape::LangchainV1 => format!(
                "{} IN (SELECT c.\"uuid\" FROM {} c WHERE c.\"name\" = ${param}::text)",
                quote_ident(&self.layout.bot),
                self.collections().qualified()
            ),
            RowShape::LangchainV2 | RowShape::LlamaIndex => format!(
                "({}->>{}) = ${param}::text",
                quote_ident(&self.layout.source),
                quote_literal(BOT_ID_KEY)
            ),
        }
    }

    /// The columns a chunk is written into, in order.
    pub fn write_columns(&self) -> Vec<String> {
        let l = &self.layout;
        match self.shape {
            RowShape::BotColumn => l.columns().iter().map(|c| (*c).to_owned()).collect(),
            RowShape::LangchainV1 => vec![
                l.id.clone(),
                l.bot.clone(),
                l.embedding.clone(),
                l.content.clone(),
                l.source.clone(),
            ],
            RowShape::LangchainV2 => vec![
                l.id.clone(),
                l.content.clone(),
                l.embedding.clone(),
                l.source.clone(),
            ],
            RowShape::LlamaIndex => vec![
                l.content.clone(),
                l.source.clone(),
                LLAMA_NODE_ID.to_owned(),
                l.embedding.clone(),
            ],
        }
    }

    /// [`write_columns`](Self::write_columns) quoted and comma-separated.
    pub fn write_column_list(&self) -> String {
        self.write_columns()
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The columns (and types) the chunk table must have to take the rows: those the library
    /// creates, with vectors of `dimension`.
    pub fn expected_shape(&self, dimension: usize) -> TableShape {
        let l = &self.layout;
        let col = |name: &str, t: &str| ColumnShape {
            name: name.to_owned(),
            type_name: t.to_owned(),
        };
        let vector = format!("vector({dimension})");
        let columns = match self.shape {
            RowShape::BotColumn => return TableShape::expected(l, dimension),
            RowShape::LangchainV1 => vec![
                col(&l.id, "character varying"),
                col(&l.bot, "uuid"),
                col(&l.embedding, &vector),
                col(&l.content, "character varying"),
                col(&l.source, "jsonb"),
            ],
            RowShape::LangchainV2 => vec![
                col(&l.id, "uuid"),
                col(&l.content, "text"),
                col(&l.embedding, &vector),
                col(&l.source, "json"),
            ],
            RowShape::LlamaIndex => vec![
                col("id", "bigint"),
                col(&l.content, "character varying"),
                col(&l.source, "json"),
                col(LLAMA_NODE_ID, "character varying"),
                col(&l.embedding, &vector),
            ],
        };
        TableShape { columns }
    }

    /// LangChain v1's collection table as the library creates it.
    fn collections_shape() -> TableShape {
        let col = |name: &str, t: &str| ColumnShape {
            name: name.to_owned(),
            type_name: t.to_owned(),
        };
        TableShape {
            columns: vec![
                col("uuid", "uuid"),
                col("name", "character varying"),
                col("cmetadata", "json"),
            ],
        }
    }

    /// The statements that create the tables as the library does (its column types,
    /// constraints, defaults and indexes), each `IF NOT EXISTS`.
    fn create_sql(&self, dimension: usize) -> String {
        let l = &self.layout;
        let schema = format!("CREATE SCHEMA IF NOT EXISTS {};", quote_ident(&l.schema));
        match self.shape {
            RowShape::BotColumn => String::new(),
            // langchain-postgres 0.0.19 `PGVector(embedding_length=n)`: SQLAlchemy's
            // `CollectionStore` and `EmbeddingStore` (constraint names are PostgreSQL's own,
            // as SQLAlchemy leaves them unnamed).
            RowShape::LangchainV1 => format!(
                "{schema}
                 CREATE TABLE IF NOT EXISTS {coll} (
                    \"uuid\" uuid NOT NULL PRIMARY KEY,
                    \"name\" character varying NOT NULL UNIQUE,
                    \"cmetadata\" json);
                 CREATE TABLE IF NOT EXISTS {table} (
                    {id} character varying NOT NULL PRIMARY KEY,
                    {bot} uuid REFERENCES {coll} (\"uuid\") ON DELETE CASCADE,
                    {emb} vector({dimension}),
                    {content} character varying,
                    {meta} jsonb);
                 CREATE INDEX IF NOT EXISTS \"ix_cmetadata_gin\" ON {table}
                    USING gin ({meta} jsonb_path_ops);",
                coll = self.collections().qualified(),
                table = l.qualified(),
                id = quote_ident(&l.id),
                bot = quote_ident(&l.bot),
                emb = quote_ident(&l.embedding),
                content = quote_ident(&l.content),
                meta = quote_ident(&l.source),
            ),
            // langchain-postgres `PGEngine.init_vectorstore_table(table, vector_size=n)`.
            RowShape::LangchainV2 => format!(
                "{schema}
                 CREATE TABLE IF NOT EXISTS {table} (
                    {id} uuid PRIMARY KEY,
                    {content} text NOT NULL,
                    {emb} vector({dimension}) NOT NULL,
                    {meta} json);",
                table = l.qualified(),
                id = quote_ident(&l.id),
                content = quote_ident(&l.content),
                emb = quote_ident(&l.embedding),
                meta = quote_ident(&l.source),
            ),
            // llama-index-vector-stores-postgres 0.9.0 `PGVectorStore(table_name=x,
            // embed_dim=n)`: `data_x` and its `x_idx_1` on the ref_doc_id.
            RowShape::LlamaIndex => {
                let name = l.table.strip_prefix("data_").unwrap_or(&l.table);
                format!(
                    "{schema}
                     CREATE TABLE IF NOT EXISTS {table} (
                        \"id\" bigserial PRIMARY KEY,
                        {content} character varying NOT NULL,
                        {meta} json,
                        {node} character varying,
                        {emb} vector({dimension}));
                     CREATE INDEX IF NOT EXISTS {idx} ON {table} USING btree (({meta} ->> 'ref_doc_id'));",
                    table = l.qualified(),
                    content = quote_ident(&l.content),
                    meta = quote_ident(&l.source),
                    node = quote_ident(LLAMA_NODE_ID),
                    emb = quote_ident(&l.embedding),
                    idx = quote_ident(&format!("{name}_idx_1")),
                )
            }
        }
    }

    /// The tables of the layout with the shape each must have, parents first.
    fn tables(&self, dimension: usize) -> Vec<(Layout, TableShape)> {
        let mut out = Vec::new();
        if self.shape == RowShape::LangchainV1 {
            out.push((self.collections(), Self::collections_shape()));
        }
        out.push((self.layout.clone(), self.expected_shape(dimension)));
        out
    }

    /// Checks an existing table of the layout. LangChain v1's default untyped `vector` column
    /// takes vectors of any dimension.
    fn check(
        &self,
        table: &Layout,
        actual: &TableShape,
        expected: &TableShape,
    ) -> Result<(), StoreError> {
        let mut expected = expected.clone();
        if self.shape == RowShape::LangchainV1 && table.table == self.layout.table {
            let untyped = actual
                .columns
                .iter()
                .any(|c| c.name == self.layout.embedding && c.type_name == "vector");
            if untyped {
                for c in &mut expected.columns {
                    if c.name == self.layout.embedding {
                        c.type_name = "vector".to_owned();
                    }
                }
            }
        }
        schema::check_shape(table, actual, &expected)
    }

    /// Creates the `vector` extension and the layout's tables as the library does where they
    /// are missing; a table that exists is checked (another shape, another dimension: an
    /// error, and nothing is created), never changed.
    pub async fn init(
        &self,
        client: &mut tokio_postgres::Client,
        dimension: usize,
    ) -> Result<InitOutcome, StoreError> {
        if self.shape == RowShape::BotColumn {
            return schema::init_target(client, &self.layout, dimension).await;
        }
        schema::check_dimension_range(dimension)?;
        schema::ensure_vector_extension(client).await?;
        let tables = self.tables(dimension);
        let mut missing = false;
        for (table, expected) in &tables {
            match schema::read_shape(client, table).await? {
                Some(actual) => self.check(table, &actual, expected)?,
                None => missing = true,
            }
        }
        if !missing {
            return Ok(InitOutcome::AlreadyPresent);
        }
        let tx = client
            .transaction()
            .await
            .map_err(|e| StoreError::query("starting a transaction", e))?;
        tx.batch_execute(&self.create_sql(dimension))
            .await
            .map_err(|e| {
                StoreError::query(format!("creating {}", self.layout.display_name()), e)
            })?;
        // Another process may have created one between our check and CREATE ... IF NOT EXISTS.
        for (table, expected) in &tables {
            let actual = schema::read_shape(&tx, table).await?.ok_or_else(|| {
                StoreError::new(StoreErrorKind::Query, "the table vanished after creation")
            })?;
            self.check(table, &actual, expected)?;
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::query("committing the new tables", e))?;
        Ok(InitOutcome::Created)
    }

    /// Count and checksum (every column, [`checksum::SCHEME`]) of one bot's rows; `None` when
    /// it has none.
    pub async fn checksum(
        &self,
        client: &impl GenericClient,
        bot_id: &str,
    ) -> Result<Option<BotChecksum>, StoreError> {
        if self.shape == RowShape::BotColumn {
            let sums = checksum::bot_checksums(
                client,
                &self.layout,
                Some(std::slice::from_ref(&bot_id.to_owned())),
            )
            .await?;
            return Ok(sums.into_iter().next());
        }
        let (rows, checksum) = checksum::filtered_checksum(
            client,
            &self.layout,
            &self.bot_filter(1),
            &[&bot_id],
            format!("checksumming bot {bot_id}"),
        )
        .await?;
        Ok((rows > 0).then(|| BotChecksum {
            bot_id: bot_id.to_owned(),
            rows,
            checksum,
        }))
    }

    /// Characters of content stored for one bot.
    pub async fn bot_chars(
        &self,
        client: &impl GenericClient,
        bot_id: &str,
    ) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT coalesce(sum(char_length({})), 0)::bigint FROM {} WHERE {}",
            quote_ident(&self.layout.content),
            self.layout.qualified(),
            self.bot_filter(1)
        );
        Ok(client
            .query_one(&sql, &[&bot_id])
            .await
            .map_err(|e| StoreError::query(format!("counting the characters of bot {bot_id}"), e))?
            .get(0))
    }

    /// LangChain v1: the uuid of the bot's collection, created (as the library's
    /// `get_or_create` does, without collection metadata) when missing. Run it in the bot's
    /// transaction, so a bot that fails leaves no collection behind.
    pub async fn collection_of(
        &self,
        client: &impl GenericClient,
        bot_id: &str,
    ) -> Result<UuidBytes, StoreError> {
        let coll = self.collections().qualified();
        let what = || format!("finding the collection of bot {bot_id} in {coll}");
        let found = client
            .query_opt(
                &format!("SELECT uuid_send(\"uuid\") FROM {coll} WHERE \"name\" = $1::text"),
                &[&bot_id],
            )
            .await
            .map_err(|e| StoreError::query(what(), e))?;
        let row = match found {
            Some(r) => r,
            None => client
                .query_one(
                    &format!(
                        "INSERT INTO {coll} (\"uuid\", \"name\") VALUES (gen_random_uuid(), $1::text)
                         RETURNING uuid_send(\"uuid\")"
                    ),
                    &[&bot_id],
                )
                .await
                .map_err(|e| StoreError::query(what(), e))?,
        };
        let bytes: Vec<u8> = row.get(0);
        let bytes: [u8; 16] = bytes.try_into().map_err(|_| {
            StoreError::new(StoreErrorKind::Query, format!("{}: not a uuid", what()))
        })?;
        Ok(UuidBytes(bytes))
    }

    /// The values of one chunk in [`write_columns`](Self::write_columns) order. `collection`
    /// is the bot's collection for LangChain v1.
    pub fn row_values(
        &self,
        row: StoredRow,
        collection: Option<UuidBytes>,
    ) -> Result<Vec<RowValue>, StoreError> {
        let invalid = |why: String| StoreError::new(StoreErrorKind::InvalidData, why);
        let not_ulid = |why: String| {
            invalid(format!(
                "row id {:?} of bot {} is not a 26-character ULID{why}",
                row.id, row.bot_id
            ))
        };
        if row.id.chars().count() != 26 {
            return Err(not_ulid(String::new()));
        }
        let vector = Vector::from(row.embedding);
        let meta = json!({ "source": row.source, BOT_ID_KEY: row.bot_id });
        Ok(match self.shape {
            RowShape::BotColumn => vec![
                Box::new(row.id),
                Box::new(row.bot_id),
                Box::new(row.content),
                Box::new(row.source),
                Box::new(vector),
            ],
            RowShape::LangchainV1 => {
                let collection = collection.ok_or_else(|| {
                    invalid(format!(
                        "bot {} has no collection to write into",
                        row.bot_id
                    ))
                })?;
                vec![
                    Box::new(row.id),
                    Box::new(collection),
                    Box::new(vector),
                    Box::new(row.content),
                    Box::new(meta),
                ]
            }
            RowShape::LangchainV2 => vec![
                // The ULID's 128 bits, as a uuid.
                Box::new(UuidBytes(
                    ulid::Ulid::from_string(&row.id)
                        .map_err(|e| not_ulid(format!(" ({e})")))?
                        .to_bytes(),
                )),
                Box::new(row.content),
                Box::new(vector),
                Box::new(meta),
            ],
            RowShape::LlamaIndex => {
                let metadata = llama_metadata(&row.id, &row.bot_id, &row.source);
                vec![
                    Box::new(row.content),
                    Box::new(metadata),
                    Box::new(row.id),
                    Box::new(vector),
                ]
            }
        })
    }
}

impl fmt::Display for BotRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.layout.display_name(), self.describe())
    }
}

/// A node's metadata as LlamaIndex's `node_to_metadata_dict(node, remove_text=True)` writes it
/// for a `TextNode` whose source document is the chunk's source: the user metadata (`source`,
/// `bot_id`), the node without its text in `_node_content` (from which the library's query
/// path rebuilds the node), and the document ids its `delete(ref_doc_id)` uses.
fn llama_metadata(node_id: &str, bot_id: &str, source: &str) -> serde_json::Value {
    let user = json!({ "source": source, BOT_ID_KEY: bot_id });
    let node = json!({
        "id_": node_id,
        "embedding": null,
        "metadata": user,
        "excluded_embed_metadata_keys": [],
        "excluded_llm_metadata_keys": [],
        "relationships": {
            "1": { "node_id": source, "node_type": "4", "metadata": {}, "hash": null,
                   "class_name": "RelatedNodeInfo" }
        },
        "metadata_template": "{key}: {value}",
        "metadata_separator": "\n",
        "text": "",
        "mimetype": "text/plain",
        "start_char_idx": null,
        "end_char_idx": null,
        "text_template": "{metadata_str}\n\n{content}",
        "class_name": "TextNode",
    });
    json!({
        "source": source,
        BOT_ID_KEY: bot_id,
        "_node_content": node.to_string(),
        "_node_type": "TextNode",
        "document_id": source,
        "doc_id": source,
        "ref_doc_id": source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(preset: LayoutPreset, table: &str) -> BotRows {
        let mut c = DatabaseConfig {
            layout: preset,
            table: table.to_owned(),
            ..DatabaseConfig::default()
        };
        for (k, v) in preset.keys() {
            let v = (*v).to_owned();
            match *k {
                "table" => c.table = v,
                "id_column" => c.id_column = v,
                "bot_column" => c.bot_column = v,
                "content_column" => c.content_column = v,
                "source_column" => c.source_column = v,
                _ => c.embedding_column = v,
            }
        }
        BotRows::from_config(&c)
    }

    #[test]
    fn each_layout_finds_a_bot_where_its_library_keeps_it() {
        assert_eq!(
            rows(LayoutPreset::BedrockChat, "items").bot_filter(1),
            "\"botid\" = $1"
        );
        let v1 = rows(LayoutPreset::Langchain, "x");
        assert_eq!(v1.layout.table, "langchain_pg_embedding");
        assert_eq!(
            v1.bot_filter(2),
            "\"collection_id\" IN (SELECT c.\"uuid\" FROM \"public\".\"langchain_pg_collection\" c WHERE c.\"name\" = $2::text)"
        );
        assert_eq!(
            rows(LayoutPreset::LangchainV2, "docs").bot_filter(1),
            "(\"langchain_metadata\"->>'bot_id') = $1::text"
        );
        let li = rows(LayoutPreset::Llamaindex, "docs");
        assert_eq!(li.layout.table, "data_docs");
        assert_eq!(li.bot_filter(1), "(\"metadata_\"->>'bot_id') = $1::text");
        assert_eq!(
            li.write_column_list(),
            "\"text\", \"metadata_\", \"node_id\", \"embedding\""
        );
    }

    #[test]
    fn a_chunk_becomes_one_value_per_written_column() {
        let row = || StoredRow {
            id: "01JE0000000000000000000001".into(),
            bot_id: "B".into(),
            content: "c".into(),
            source: "s".into(),
            embedding: vec![0.0; 3],
        };
        for preset in [
            LayoutPreset::BedrockChat,
            LayoutPreset::Langchain,
            LayoutPreset::LangchainV2,
            LayoutPreset::Llamaindex,
        ] {
            let r = rows(preset, "docs");
            let values = r.row_values(row(), Some(UuidBytes([7; 16]))).unwrap();
            assert_eq!(values.len(), r.write_columns().len(), "{preset:?}");
        }
        let bad = StoredRow {
            id: "0123456789-abcdefghijklmn".into(),
            ..row()
        };
        let err = rows(LayoutPreset::LangchainV2, "docs")
            .row_values(bad, None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a 26-character ULID"), "{err}");
    }

    #[test]
    fn llama_metadata_carries_the_node_and_its_document() {
        let m = llama_metadata("01J", "B", "s3://b/f.pdf");
        assert_eq!(m["ref_doc_id"], "s3://b/f.pdf");
        assert_eq!(m[BOT_ID_KEY], "B");
        let node: serde_json::Value =
            serde_json::from_str(m["_node_content"].as_str().unwrap()).unwrap();
        assert_eq!(node["id_"], "01J");
        assert_eq!(node["relationships"]["1"]["node_id"], "s3://b/f.pdf");
    }
}
