//! The facts the prerequisite checks judge, read from each server's settings and catalogs in a
//! few queries: replication settings and privileges, slots and WAL senders in use, the table's
//! key and replica identity on the source; subscription rights, workers, origins, pgvector and
//! the table on the target.

use ragshift_store::ident::Layout;
use ragshift_store::index::vector_indexes;
use ragshift_store::schema::{read_shape, TableShape};
use ragshift_store::StoreError;
use tokio_postgres::Client;

pub(crate) struct SourceTable {
    pub(crate) replident: String,
    pub(crate) has_pk: bool,
    pub(crate) pk_columns: Vec<String>,
    pub(crate) owned: bool,
    pub(crate) estimated_rows: i64,
    /// May create the cutover's write fence: TRIGGER on the table, CREATE on its schema.
    pub(crate) may_fence: bool,
}

pub(crate) struct SourceFacts {
    pub(crate) version_num: i32,
    pub(crate) wal_level: String,
    pub(crate) rds_logical: Option<String>,
    pub(crate) max_slots: i32,
    pub(crate) used_slots: i32,
    pub(crate) max_senders: i32,
    pub(crate) used_senders: i32,
    pub(crate) superuser: bool,
    pub(crate) replication: bool,
    pub(crate) rds_replication: bool,
    pub(crate) create_on_db: bool,
    pub(crate) user: String,
    pub(crate) vector_version: Option<String>,
    pub(crate) vector_binary: bool,
    pub(crate) table: Option<SourceTable>,
    pub(crate) shape: Option<TableShape>,
}

pub(crate) async fn source_facts(c: &Client, layout: &Layout) -> Result<SourceFacts, StoreError> {
    let r = c
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('wal_level'),
                    current_setting('rds.logical_replication', true),
                    current_setting('max_replication_slots')::int,
                    (SELECT count(*) FROM pg_replication_slots)::int,
                    current_setting('max_wal_senders')::int,
                    (SELECT count(*) FROM pg_stat_replication)::int,
                    r.rolsuper, r.rolreplication,
                    EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname IN ('rds_replication', 'rds_superuser')
                                AND pg_has_role(current_user, g.oid, 'member')),
                    has_database_privilege(current_database(), 'CREATE'),
                    current_user::text,
                    (SELECT extversion FROM pg_extension WHERE extname = 'vector'),
                    coalesce((SELECT typsend::oid <> 0 AND typreceive::oid <> 0 FROM pg_type
                               WHERE typname = 'vector' LIMIT 1), false)
               FROM pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| StoreError::query("reading the source's replication settings", e))?;
    let table = c
        .query_opt(
            "SELECT c.relreplident::text,
                    EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p'),
                    coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                                FROM pg_constraint p
                                CROSS JOIN unnest(p.conkey) WITH ORDINALITY AS k(attnum, ord)
                                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                               WHERE p.conrelid = c.oid AND p.contype = 'p'), '{}'),
                    pg_has_role(current_user, c.relowner, 'USAGE'),
                    c.reltuples::bigint,
                    has_table_privilege(c.oid, 'TRIGGER') AND has_schema_privilege(n.oid, 'CREATE')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&layout.schema, &layout.table],
        )
        .await
        .map_err(|e| StoreError::query("reading the source table", e))?
        .map(|t| SourceTable {
            replident: t.get(0),
            has_pk: t.get(1),
            pk_columns: t.get(2),
            owned: t.get(3),
            estimated_rows: t.get(4),
            may_fence: t.get(5),
        });
    Ok(SourceFacts {
        version_num: r.get(0),
        wal_level: r.get(1),
        rds_logical: r.get(2),
        max_slots: r.get(3),
        used_slots: r.get(4),
        max_senders: r.get(5),
        used_senders: r.get(6),
        superuser: r.get(7),
        replication: r.get(8),
        rds_replication: r.get(9),
        create_on_db: r.get(10),
        user: r.get(11),
        vector_version: r.get(12),
        vector_binary: r.get(13),
        table,
        shape: read_shape(c, layout).await?,
    })
}

pub(crate) struct TargetFacts {
    pub(crate) version_num: i32,
    pub(crate) superuser: bool,
    pub(crate) subscription_role: bool,
    pub(crate) user: String,
    pub(crate) max_workers: i32,
    pub(crate) used_workers: i32,
    pub(crate) max_slots: i32,
    pub(crate) used_origins: Option<i32>,
    pub(crate) vector_available: Option<String>,
    pub(crate) vector_installed: Option<String>,
    pub(crate) vector_binary: Option<bool>,
    pub(crate) schema_exists: bool,
    pub(crate) shape: Option<TableShape>,
    pub(crate) has_rows: bool,
    pub(crate) vector_indexes: Vec<String>,
}

pub(crate) async fn target_facts(c: &Client, layout: &Layout) -> Result<TargetFacts, StoreError> {
    let r = c
        .query_one(
            "SELECT current_setting('server_version_num')::int, r.rolsuper,
                    EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname IN ('pg_create_subscription', 'rds_superuser')
                                AND pg_has_role(current_user, g.oid, 'member')),
                    current_user::text,
                    current_setting('max_logical_replication_workers')::int,
                    (SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL)::int,
                    current_setting('max_replication_slots')::int,
                    (SELECT default_version FROM pg_available_extensions WHERE name = 'vector'),
                    (SELECT extversion FROM pg_extension WHERE extname = 'vector'),
                    (SELECT typsend::oid <> 0 AND typreceive::oid <> 0 FROM pg_type WHERE typname = 'vector' LIMIT 1),
                    EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)
               FROM pg_roles r WHERE r.rolname = current_user",
            &[&layout.schema],
        )
        .await
        .map_err(|e| StoreError::query("reading the target's replication settings", e))?;
    // Reading replication origins may be refused to non-superusers: then the check is skipped.
    let used_origins = c
        .query_one("SELECT count(*)::int FROM pg_replication_origin", &[])
        .await
        .ok()
        .map(|r| r.get(0));
    let shape = read_shape(c, layout).await?;
    let (has_rows, vector_indexes) = if shape.is_some() {
        let rows: bool = c
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", layout.qualified()),
                &[],
            )
            .await
            .map_err(|e| StoreError::query("looking for rows in the target table", e))?
            .get(0);
        let idx = vector_indexes(c, layout).await?;
        (rows, idx.into_iter().map(|i| i.name).collect())
    } else {
        (false, Vec::new())
    };
    Ok(TargetFacts {
        version_num: r.get(0),
        superuser: r.get(1),
        subscription_role: r.get(2),
        user: r.get(3),
        max_workers: r.get(4),
        used_workers: r.get(5),
        max_slots: r.get(6),
        used_origins,
        vector_available: r.get(7),
        vector_installed: r.get(8),
        vector_binary: r.get(9),
        schema_exists: r.get(10),
        shape,
        has_rows,
        vector_indexes,
    })
}
