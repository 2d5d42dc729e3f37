//! SQL identifiers from configuration (schema, table, columns) are always quoted, never pasted.

use ragshift_config::DatabaseConfig;

/// Quotes an identifier the way PostgreSQL's `quote_ident` does, always adding quotes so that
/// case and special characters survive.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal (for the few statements that can't take parameters, such as
/// `CREATE PUBLICATION` options).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Where the chunks live: schema, table and the five columns of the platform's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Schema of the table.
    pub schema: String,
    /// The table.
    pub table: String,
    /// Chunk id column (a ULID).
    pub id: String,
    /// Bot id column.
    pub bot: String,
    /// Chunk text column.
    pub content: String,
    /// Chunk source column.
    pub source: String,
    /// Vector column.
    pub embedding: String,
    /// Tables moved along with the chunk table although it doesn't refer to them (`--extra-table`,
    /// `[source] extra_tables`): a store's own bookkeeping, such as a docstore. `table` or
    /// `schema.table`; a plain name is in `schema`.
    pub extra_tables: Vec<String>,
}

impl Default for Layout {
    fn default() -> Self {
        Self::from_config(&DatabaseConfig::default())
    }
}

impl Layout {
    /// The layout a `[target]`/`[source]` section describes.
    pub fn from_config(c: &DatabaseConfig) -> Self {
        Self {
            schema: c.schema.clone(),
            table: c.layout.table_name(&c.table),
            id: c.id_column.clone(),
            bot: c.bot_column.clone(),
            content: c.content_column.clone(),
            source: c.source_column.clone(),
            embedding: c.embedding_column.clone(),
            extra_tables: c.extra_tables.clone(),
        }
    }

    /// The bot (collection) column in SQL. A table without one (LlamaIndex's, langchain v2's)
    /// has `bot` empty: every row then belongs to one key, `''`, which copy splits by id
    /// ranges and verify compares as one.
    pub fn bot_sql(&self) -> String {
        if self.bot.is_empty() {
            "''::text".to_owned()
        } else {
            quote_ident(&self.bot)
        }
    }

    /// The same layout for another table name.
    pub fn with_table(&self, table: &str) -> Self {
        Self {
            table: table.to_owned(),
            ..self.clone()
        }
    }

    /// `"schema"."table"`, ready to paste into SQL.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// `schema.table` for messages.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// The five columns in the platform's order, quoted and comma-separated.
    pub fn column_list(&self) -> String {
        self.columns()
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The five column names in the platform's order.
    pub fn columns(&self) -> [&str; 5] {
        [
            &self.id,
            &self.bot,
            &self.content,
            &self.source,
            &self.embedding,
        ]
    }

    /// A name for an index of this table, within PostgreSQL's 63-byte limit.
    pub fn index_name(&self, suffix: &str) -> String {
        let mut name = format!("idx_{}_{}", self.table, suffix);
        while name.len() > 63 {
            name.pop();
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_not_pasted() {
        assert_eq!(quote_ident("items"), "\"items\"");
        assert_eq!(quote_ident("we\"ird; DROP"), "\"we\"\"ird; DROP\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        let l = Layout {
            table: "My Items".into(),
            ..Layout::default()
        };
        assert_eq!(l.qualified(), "\"public\".\"My Items\"");
        assert_eq!(
            l.column_list(),
            "\"id\", \"botid\", \"content\", \"source\", \"embedding\""
        );
    }
}
