//! The table on the target, prepared for the initial sync: the same columns, primary key,
//! replica identity and ordinary (btree) indexes as the source, and NO vector index: rows copied
//! into an HNSW index go several times slower, so cutover builds it once the data is in.

use ragshift_store::ident::{quote_ident, Layout};
use ragshift_store::schema::{init_target, TableShape};
use ragshift_store::StoreError;
use tokio_postgres::Client;

/// Creates the table on the target. The platform's layout with its primary key on the id goes
/// through `init-target`'s own path; anything else is rebuilt from the source's catalog.
pub async fn create(
    source: &Client,
    target: &mut Client,
    layout: &Layout,
    shape: &TableShape,
    dimension: Option<usize>,
    platform_key: bool,
) -> Result<(), StoreError> {
    if let Some(dimension) = dimension {
        if platform_key && *shape == TableShape::expected(layout, dimension) {
            init_target(target, layout, dimension).await?;
            return Ok(());
        }
    }
    create_like(source, target, layout).await
}

/// Creates `layout`'s table on the target as the source's catalog defines it: every column with
/// its type, default, identity or serial sequence and generated expression (the subscriber
/// computes generated columns; the publisher doesn't send them), then its primary key and
/// unique constraints, its other non-vector indexes and its replica identity. Foreign keys
/// wait for cutover (the data they check arrives table by table).
pub async fn create_like(
    source: &Client,
    target: &mut Client,
    layout: &Layout,
) -> Result<(), StoreError> {
    let Some(def) = ragshift_store::catalog::read_table(source, layout).await? else {
        return Err(StoreError::new(
            ragshift_store::StoreErrorKind::ShapeMismatch,
            format!("there is no table {} on the source", layout.display_name()),
        ));
    };
    let mut sql = vec![def.create_sql(layout, layout)];
    // Primary key and unique constraints, then other non-vector indexes, then the replica
    // identity, all as the source defines them.
    let constraints = source
        .query(
            "SELECT con.conname::text, pg_get_constraintdef(con.oid)
               FROM pg_constraint con
               JOIN pg_class c ON c.oid = con.conrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2 AND con.contype IN ('p', 'u')
              ORDER BY con.contype, con.conname",
            &[&layout.schema, &layout.table],
        )
        .await
        .map_err(|e| StoreError::query("reading the source table's keys", e))?;
    for r in &constraints {
        let (name, def): (String, String) = (r.get(0), r.get(1));
        sql.push(format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {def}",
            layout.qualified(),
            quote_ident(&name)
        ));
    }
    let indexes = source
        .query(
            "SELECT pg_get_indexdef(i.indexrelid), ic.relname::text, i.indisreplident
               FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_am am ON am.oid = ic.relam
               JOIN pg_class c ON c.oid = i.indrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2
                AND am.amname NOT IN ('hnsw', 'ivfflat')
                AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
              ORDER BY ic.relname",
            &[&layout.schema, &layout.table],
        )
        .await
        .map_err(|e| StoreError::query("reading the source table's indexes", e))?;
    let mut identity_index = None;
    for r in &indexes {
        sql.push(r.get(0));
        if r.get::<_, bool>(2) {
            identity_index = Some(r.get::<_, String>(1));
        }
    }
    let replident: String = source
        .query_one(
            "SELECT c.relreplident::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2",
            &[&layout.schema, &layout.table],
        )
        .await
        .map_err(|e| StoreError::query("reading the source table's replica identity", e))?
        .get(0);
    match (replident.as_str(), identity_index) {
        ("i", Some(name)) => sql.push(format!(
            "ALTER TABLE {} REPLICA IDENTITY USING INDEX {}",
            layout.qualified(),
            quote_ident(&name)
        )),
        ("f", _) => sql.push(format!(
            "ALTER TABLE {} REPLICA IDENTITY FULL",
            layout.qualified()
        )),
        _ => {}
    }
    let tx = target
        .transaction()
        .await
        .map_err(|e| StoreError::query("starting a transaction", e))?;
    tx.batch_execute(&sql.join(";\n"))
        .await
        .map_err(|e| StoreError::query(format!("creating {}", layout.display_name()), e))?;
    tx.commit()
        .await
        .map_err(|e| StoreError::query("committing the new table", e))
}
