//! The source table as its catalog describes it: columns (type, NOT NULL, collation, default,
//! identity or serial sequence, generated expression), indexes (`pg_get_indexdef`) and
//! constraints (`pg_get_constraintdef`), so the target gets the same table (new rows the
//! application adds after the move get ids, generated values and defaults as before), and the
//! same indexes and constraints once the data is in.

pub mod indexes;

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use crate::ident::{quote_ident, Layout};
use crate::StoreError;

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// Type as `format_type` prints it (`character(26)`, `vector(1024)`).
    pub type_sql: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// A collation other than the type's default, quoted (`"C"`).
    pub collation: Option<String>,
    /// `DEFAULT` expression (not for identity, serial or generated columns, described apart).
    pub default_sql: Option<String>,
    /// `GENERATED ALWAYS AS (expr) STORED`: the expression. Such a column is computed by the
    /// target, never copied.
    pub generated: Option<String>,
    /// Identity column: `ALWAYS` or `BY DEFAULT`.
    pub identity: Option<String>,
    /// The sequence that numbers the column (identity or serial), with its state.
    pub sequence: Option<SequenceDef>,
}

/// A sequence owned by a column (`serial`, `bigserial`, identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceDef {
    /// Its name (without schema).
    pub name: String,
    /// Its type (`bigint`, `integer`).
    pub type_sql: String,
    /// Whether the column is `serial` (a `nextval` default) rather than an identity.
    pub serial: bool,
}

impl ColumnDef {
    /// Whether `COPY` carries it (generated columns are computed by the target).
    pub fn copied(&self) -> bool {
        self.generated.is_none()
    }
}

/// One index of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The columns `COPY` carries, quoted: all but generated ones.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .filter(|c| c.copied())
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

    /// `CREATE TABLE` for `layout`'s table with these columns, their defaults, identities,
    /// serial sequences and generated expressions, and nothing else (indexes and constraints
    /// come after the data). A serial's sequence is created under the name the source's has
    /// when the table keeps its name, else `<table>_<column>_seq`, so a copy into another table
    /// of the same database never shares (or moves) the source's sequence.
    pub fn create_sql(&self, layout: &Layout, source: &Layout) -> String {
        let mut before = vec![format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote_ident(&layout.schema)
        )];
        let mut after = Vec::new();
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let mut s = format!("{} {}", quote_ident(&c.name), c.type_sql);
                if let Some(coll) = &c.collation {
                    s.push_str(&format!(" COLLATE {coll}"));
                }
                match (&c.generated, &c.identity, &c.sequence) {
                    (Some(expr), _, _) => {
                        s.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED"))
                    }
                    (None, Some(how), _) => s.push_str(&format!(" GENERATED {how} AS IDENTITY")),
                    (None, None, Some(seq)) if seq.serial => {
                        let name = target_sequence_name(seq, layout, source, &c.name);
                        let qualified =
                            format!("{}.{}", quote_ident(&layout.schema), quote_ident(&name));
                        before.push(format!("CREATE SEQUENCE {qualified} AS {}", seq.type_sql));
                        after.push(format!(
                            "ALTER SEQUENCE {qualified} OWNED BY {}.{}",
                            layout.qualified(),
                            quote_ident(&c.name)
                        ));
                        s.push_str(&format!(
                            " DEFAULT nextval({}::regclass)",
                            crate::ident::quote_literal(&qualified)
                        ));
                    }
                    _ => {
                        if let Some(d) = &c.default_sql {
                            s.push_str(&format!(" DEFAULT {d}"));
                        }
                    }
                }
                if c.not_null {
                    s.push_str(" NOT NULL");
                }
                s
            })
            .collect();
        before.push(format!(
            "CREATE TABLE {} ({})",
            layout.qualified(),
            cols.join(", ")
        ));
        before.extend(after);
        before.join("; ")
    }

    /// How `self` and `other` differ as tables rows move between: a column one has and the
    /// other lacks, types differently, or computes (generated) where the other stores it.
    /// Empty when the rows of one load into the other as they are.
    pub fn shape_differences(&self, other: &TableDef) -> Vec<String> {
        let describe = |c: &ColumnDef| {
            let generated = if c.generated.is_some() {
                " generated"
            } else {
                ""
            };
            format!("{} {}{generated}", c.name, c.type_sql)
        };
        let mut out: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !other.columns.iter().any(|o| describe(o) == describe(c)))
            .map(|c| format!("{} (only in the export)", describe(c)))
            .collect();
        out.extend(
            other
                .columns
                .iter()
                .filter(|o| !self.columns.iter().any(|c| describe(o) == describe(c)))
                .map(|o| format!("{} (only on the target)", describe(o))),
        );
        out
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

/// The name a serial column's sequence gets on the target (see [`TableDef::create_sql`]).
fn target_sequence_name(
    seq: &SequenceDef,
    target: &Layout,
    source: &Layout,
    column: &str,
) -> String {
    if target.table == source.table {
        return seq.name.clone();
    }
    let mut name = format!("{}_{column}_seq", target.table);
    if name.len() > 63 {
        let mut end = 63;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
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
                         THEN quote_ident(co.collname::text) END,
                    CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                    CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END,
                    CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END,
                    s.relname, s.type_sql
               FROM pg_attribute a
               JOIN pg_type t ON t.oid = a.atttypid
               LEFT JOIN pg_collation co ON co.oid = a.attcollation
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
               LEFT JOIN LATERAL (
                    SELECT sc.relname::text AS relname, format_type(sq.seqtypid, NULL) AS type_sql
                      FROM pg_depend dep
                      JOIN pg_class sc ON sc.oid = dep.objid AND sc.relkind = 'S'
                      JOIN pg_sequence sq ON sq.seqrelid = sc.oid
                     WHERE dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum
                       AND dep.classid = 'pg_class'::regclass
                       AND dep.refclassid = 'pg_class'::regclass
                       AND dep.deptype IN ('a', 'i')
                     LIMIT 1) s ON true
              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(|e| StoreError::query(ctx("columns"), e))?
        .iter()
        .map(|r| {
            let identity: Option<String> = r.get(6);
            let default_sql: Option<String> = r.get(4);
            let sequence = r.get::<_, Option<String>>(7).map(|name| SequenceDef {
                name,
                type_sql: r.get(8),
                serial: identity.is_none(),
            });
            ColumnDef {
                name: r.get(0),
                type_sql: r.get(1),
                not_null: r.get(2),
                collation: r.get(3),
                // A serial's `nextval` default names the source's sequence: rebuilt instead.
                default_sql: default_sql.filter(|_| sequence.is_none()),
                generated: r.get(5),
                identity,
                sequence,
            }
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

/// Where the sequence of one identity or serial column stands (`last_value`, `is_called`):
/// read from the source, recorded in an export's manifest, set on the target after the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceState {
    /// The column the sequence numbers.
    pub column: String,
    /// `last_value` of the sequence.
    pub last_value: i64,
    /// `is_called`: whether `last_value` was handed out already.
    pub is_called: bool,
}

/// The state of the sequence of each identity or serial column of `def` in `layout`'s table.
pub async fn sequence_states(
    client: &impl GenericClient,
    def: &TableDef,
    layout: &Layout,
) -> Result<Vec<SequenceState>, StoreError> {
    let mut states = Vec::new();
    for c in def.columns.iter().filter(|c| c.sequence.is_some()) {
        let ctx = |what: &str| format!("{what} of column {} ({})", c.name, layout.display_name());
        let seq: Option<String> = client
            .query_one(
                "SELECT pg_get_serial_sequence($1, $2)",
                &[&layout.qualified(), &c.name],
            )
            .await
            .map_err(|e| StoreError::query(ctx("finding the sequence"), e))?
            .get(0);
        let Some(seq) = seq else { continue };
        // Names from pg_get_serial_sequence come quoted as needed.
        let state = client
            .query_one(&format!("SELECT last_value, is_called FROM {seq}"), &[])
            .await
            .map_err(|e| StoreError::query(ctx("reading the sequence"), e))?;
        states.push(SequenceState {
            column: c.name.clone(),
            last_value: state.get(0),
            is_called: state.get(1),
        });
    }
    Ok(states)
}

/// Sets the target's sequence of each column in `states` to where the source's stood (or past
/// the largest value the target holds, if that is further), so the application's next insert
/// gets a fresh id rather than a duplicate key. Returns `name = value` per sequence.
pub async fn set_sequences(
    target: &impl GenericClient,
    layout: &Layout,
    states: &[SequenceState],
) -> Result<Vec<String>, StoreError> {
    let mut set = Vec::new();
    for s in states {
        let ctx = |what: &str| format!("{what} of column {} ({})", s.column, layout.display_name());
        let tgt_seq: Option<String> = target
            .query_one(
                "SELECT pg_get_serial_sequence($1, $2)",
                &[&layout.qualified(), &s.column],
            )
            .await
            .map_err(|e| StoreError::query(ctx("finding the target's sequence"), e))?
            .get(0);
        let Some(tgt_seq) = tgt_seq else { continue };
        let largest: Option<i64> = target
            .query_one(
                &format!(
                    "SELECT max({})::bigint FROM {}",
                    quote_ident(&s.column),
                    layout.qualified()
                ),
                &[],
            )
            .await
            .map_err(|e| StoreError::query(ctx("reading the largest value"), e))?
            .get(0);
        let (last, called) = (s.last_value, s.is_called);
        let (value, is_called) = match largest {
            Some(m) if m > last || (m == last && !called) => (m, true),
            _ => (last, called),
        };
        target
            .execute(
                "SELECT setval($1::text::regclass, $2, $3)",
                &[&tgt_seq, &value, &is_called],
            )
            .await
            .map_err(|e| StoreError::query(ctx("setting the target's sequence"), e))?;
        set.push(format!(
            "{tgt_seq} = {value}{}",
            if is_called { "" } else { " (not yet used)" }
        ));
    }
    Ok(set)
}

/// Sets the target's sequence of each identity or serial column to where the source's stands
/// (see [`set_sequences`]). Returns `name = value` per sequence.
pub async fn sync_sequences(
    source: &impl GenericClient,
    target: &impl GenericClient,
    def: &TableDef,
    source_layout: &Layout,
    target_layout: &Layout,
) -> Result<Vec<String>, StoreError> {
    let states = sequence_states(source, def, source_layout).await?;
    set_sequences(target, target_layout, &states).await
}

/// The columns of `def` whose type the target can't hold, as `column type (why)`. pgvector's
/// types count as present when the extension is installed, or can be created, in a version that
/// has them (`halfvec` and `sparsevec` since 0.7.0). Checked before anything is created, so a
/// missing type is one clear error rather than a failure halfway.
pub async fn types_missing_on(
    target: &impl GenericClient,
    def: &TableDef,
) -> Result<Vec<String>, StoreError> {
    let ext = target
        .query_opt(
            "SELECT coalesce(e.extversion, a.default_version)
               FROM pg_available_extensions a LEFT JOIN pg_extension e ON e.extname = a.name
              WHERE a.name = 'vector'",
            &[],
        )
        .await
        .map_err(|e| StoreError::query("reading the target's pgvector", e))?
        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default());
    let mut missing = Vec::new();
    for c in &def.columns {
        let base = c.type_sql.split('(').next().unwrap_or_default().trim();
        let pgvector_since = match base {
            "vector" => Some((0, 0)),
            "halfvec" | "sparsevec" => Some((0, 7)),
            _ => None,
        };
        if let Some(since) = pgvector_since {
            match &ext {
                None => missing.push(format!(
                    "{} {} (pgvector is not installed on the target's server)",
                    c.name, c.type_sql
                )),
                Some(v) if crate::schema::version_at_least(v, since) => {}
                Some(v) => missing.push(format!(
                    "{} {} (the target's pgvector is {v}; {base} needs {}.{} or later)",
                    c.name, c.type_sql, since.0, since.1
                )),
            }
            continue;
        }
        let known: bool = target
            .query_one("SELECT to_regtype($1) IS NOT NULL", &[&c.type_sql])
            .await
            .map_err(|e| StoreError::query("looking up a column type on the target", e))?
            .get(0);
        if !known {
            missing.push(format!(
                "{} {} (no such type on the target: create its extension or type first)",
                c.name, c.type_sql
            ));
        }
    }
    Ok(missing)
}
