//! The source table as its catalog describes it: columns (type, NOT NULL, collation), indexes
//! (`pg_get_indexdef`) and constraints (`pg_get_constraintdef`), so the target gets the same
//! table, and the same indexes and constraints once the data is in.

use tokio_postgres::GenericClient;

use ragshift_store::ident::{quote_ident, Layout};
use ragshift_store::StoreError;

/// One column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// Type as `format_type` prints it (`character(26)`, `vector(1024)`).
    pub type_sql: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// A collation other than the type's default, quoted (`"C"`).
    pub collation: Option<String>,
}

/// One index of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    /// Index name.
    pub name: String,
    /// `CREATE INDEX ...` as `pg_get_indexdef` prints it.
    pub definition: String,
    /// Access method (`btree`, `hnsw`, `ivfflat`).
    pub method: String,
    /// The constraint (primary key, unique) this index backs, if any.
    pub constraint: Option<String>,
}

impl IndexDef {
    /// Whether it is a pgvector index.
    pub fn is_vector(&self) -> bool {
        self.method == "hnsw" || self.method == "ivfflat"
    }

    /// The part after `USING`, which identifies what is indexed independently of names.
    pub fn body(&self) -> &str {
        self.definition
            .split_once(" USING ")
            .map(|(_, b)| b)
            .unwrap_or(&self.definition)
    }
}

/// One constraint of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintDef {
    /// Constraint name.
    pub name: String,
    /// `p` primary key, `u` unique, `c` check, `f` foreign key, `x` exclusion.
    pub kind: String,
    /// `PRIMARY KEY (id)` as `pg_get_constraintdef` prints it.
    pub definition: String,
    /// Its index, for primary keys, unique and exclusion constraints.
    pub index: Option<String>,
}

/// A table as its catalog describes it.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// The name as PostgreSQL prints it in definitions (`public.items`).
    pub printed_name: String,
    /// Columns in order.
    pub columns: Vec<ColumnDef>,
    /// Indexes by name.
    pub indexes: Vec<IndexDef>,
    /// Constraints by name.
    pub constraints: Vec<ConstraintDef>,
    /// Table size on disk including TOAST, for estimates.
    pub bytes: i64,
}

impl TableDef {
    /// The column list, quoted, for `COPY` and `SELECT`.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Columns as `name type` for messages.
    pub fn shape(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.type_sql))
            .collect();
        format!("({})", cols.join(", "))
    }

    /// `CREATE TABLE` for `layout`'s table with these columns and nothing else (indexes and
    /// constraints come after the data).
    pub fn create_sql(&self, layout: &Layout) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let mut s = format!("{} {}", quote_ident(&c.name), c.type_sql);
                if let Some(coll) = &c.collation {
                    s.push_str(&format!(" COLLATE {coll}"));
                }
                if c.not_null {
                    s.push_str(" NOT NULL");
                }
                s
            })
            .collect();
        format!(
            "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE {} ({})",
            quote_ident(&layout.schema),
            layout.qualified(),
            cols.join(", ")
        )
    }

    /// Columns of `self` (the source) that `other` (the target) lacks or types differently.
    pub fn incompatible_columns(&self, other: &TableDef) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| {
                !other
                    .columns
                    .iter()
                    .any(|o| o.name == c.name && o.type_sql == c.type_sql)
            })
            .map(|c| format!("{} {}", c.name, c.type_sql))
            .collect()
    }
}

/// Reads the table's definition, or `None` when there is no such table.
pub async fn read_table(
    client: &impl GenericClient,
    layout: &Layout,
) -> Result<Option<TableDef>, StoreError> {
    let ctx = |what: &str| format!("reading the {what} of {}", layout.display_name());
    let Some(row) = client
        .query_opt(
            "SELECT c.oid, format('%I.%I', n.nspname, c.relname),
                    (pg_table_size(c.oid))::bigint
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&layout.schema, &layout.table],
        )
        .await
        .map_err(|e| StoreError::query(ctx("catalog entry"), e))?
    else {
        return Ok(None);
    };
    let oid: u32 = row.get(0);
    let columns = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                         THEN quote_ident(co.collname::text) END
               FROM pg_attribute a
               JOIN pg_type t ON t.oid = a.atttypid
               LEFT JOIN pg_collation co ON co.oid = a.attcollation
              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(|e| StoreError::query(ctx("columns"), e))?
        .iter()
        .map(|r| ColumnDef {
            name: r.get(0),
            type_sql: r.get(1),
            not_null: r.get(2),
            collation: r.get(3),
        })
        .collect();
    let indexes = client
        .query(
            "SELECT ic.relname::text, pg_get_indexdef(i.indexrelid), am.amname::text,
                    (SELECT con.conname::text FROM pg_constraint con
                      WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                        AND con.contype IN ('p', 'u', 'x') LIMIT 1)
               FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_am am ON am.oid = ic.relam
              WHERE i.indrelid = $1
              ORDER BY ic.relname",
            &[&oid],
        )
        .await
        .map_err(|e| StoreError::query(ctx("indexes"), e))?
        .iter()
        .map(|r| IndexDef {
            name: r.get(0),
            definition: r.get(1),
            method: r.get(2),
            constraint: r.get(3),
        })
        .collect();
    let constraints = client
        .query(
            "SELECT con.conname::text, con.contype::text, pg_get_constraintdef(con.oid),
                    CASE WHEN con.conindid <> 0 THEN (SELECT relname::text FROM pg_class WHERE oid = con.conindid) END
               FROM pg_constraint con
              WHERE con.conrelid = $1 AND con.contype IN ('p', 'u', 'c', 'f', 'x')
              ORDER BY con.conname",
            &[&oid],
        )
        .await
        .map_err(|e| StoreError::query(ctx("constraints"), e))?
        .iter()
        .map(|r| ConstraintDef {
            name: r.get(0),
            kind: r.get(1),
            definition: r.get(2),
            index: r.get(3),
        })
        .collect();
    Ok(Some(TableDef {
        printed_name: row.get(1),
        columns,
        indexes,
        constraints,
        bytes: row.get(2),
    }))
}
