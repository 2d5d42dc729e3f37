//! Everything logical replication needs, checked before anything is created, each with the
//! exact fix: on the source `wal_level = logical` (on RDS/Aurora `rds.logical_replication = 1`),
//! the replication privilege, free slots and WAL senders, a primary key or replica identity on
//! the table, the right to publish it; on the target the right to subscribe, free workers and
//! origins, pgvector at a compatible version, and a table that is missing or empty with the
//! same columns; and an address of the source that the target server itself can reach (tried
//! from the target server, leaving nothing behind).

use ragshift_store::ident::Layout;
use ragshift_store::schema::TableShape;
use ragshift_store::{ConnectSpec, StoreError};
use serde::Serialize;
use tokio_postgres::Client;

use crate::facts::{source_facts, target_facts};
use crate::subscription;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but worth knowing.
    Warn,
    /// Replication can't start until this is fixed.
    Fail,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `source` or `target`.
    pub side: &'static str,
    /// What was checked (`wal_level`, `replication privilege`, ...).
    pub name: &'static str,
    /// Verdict.
    pub level: Level,
    /// What was found, and the fix when it fails.
    pub detail: String,
}

/// How rows travel from the source to the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    /// `binary = true` on the subscription.
    pub binary: bool,
    /// Why.
    pub reason: String,
}

/// What the checks found and what `start` would create.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Every finding, in order.
    pub checks: Vec<Check>,
    /// Binary or text transfer.
    pub transfer: Transfer,
    /// The source table's columns.
    #[serde(skip)]
    pub source_shape: Option<TableShape>,
    /// The vector dimension of the source table.
    pub dimension: Option<usize>,
    /// Whether the source's primary key is the id column alone (the platform's layout).
    pub platform_key: bool,
    /// The target lacks the table's schema.
    pub create_schema: bool,
    /// The target lacks the `vector` extension.
    pub create_extension: bool,
    /// The target lacks the table.
    pub create_table: bool,
    /// The tables the chunk table refers to by foreign key (LangChain's collections):
    /// published with it, and created on the target where `create` says so.
    pub referenced: Vec<Referenced>,
}

/// A table the chunk table refers to by foreign key, replicated with it (same name on both
/// sides).
#[derive(Debug, Clone, Serialize)]
pub struct Referenced {
    /// Its schema and name.
    #[serde(skip)]
    pub layout: Layout,
    /// `schema.table`.
    pub table: String,
    /// Whether the target lacks it (start creates it).
    pub create: bool,
}

impl Plan {
    /// Whether nothing fails.
    pub fn ready(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The failing checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.level == Level::Fail)
    }
}

fn check(side: &'static str, name: &'static str, level: Level, detail: String) -> Check {
    Check {
        side,
        name,
        level,
        detail,
    }
}

fn ok_or_fail(ok: bool) -> Level {
    if ok {
        Level::Ok
    } else {
        Level::Fail
    }
}

/// `host` of a masked label `postgres://user:****@host:port/db`.
fn host_of(label: &str) -> String {
    let after_at = label.rsplit_once('@').map_or(label, |(_, h)| h);
    let host_port = after_at.split('/').next().unwrap_or_default();
    host_port
        .rsplit_once(':')
        .map_or(host_port, |(h, _)| h)
        .to_owned()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.starts_with("127.") || host == "::1" || host.starts_with('/')
}

fn version_tuple(v: &str) -> (u32, u32, u32) {
    let mut p = v.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
    (
        p.next().unwrap_or(0),
        p.next().unwrap_or(0),
        p.next().unwrap_or(0),
    )
}

/// Runs every check. `route` is the source as the target server reaches it (the subscription
/// connects with it). Errors only when a check itself can't run (a statement fails).
pub async fn check_all(
    source: &Client,
    target: &Client,
    target_spec: &ConnectSpec,
    route: &ConnectSpec,
    layout: &Layout,
) -> Result<Plan, (&'static str, StoreError)> {
    let mut checks = Vec::new();
    let s = source_facts(source, layout)
        .await
        .map_err(|e| ("source", e))?;
    let t = target_facts(target, layout)
        .await
        .map_err(|e| ("target", e))?;

    // --- source ---
    let aurora = s.rds_logical.is_some();
    checks.push(check(
        "source",
        "wal_level",
        ok_or_fail(s.wal_level == "logical"),
        if s.wal_level == "logical" {
            "wal_level = logical".to_owned()
        } else if aurora {
            format!(
                "wal_level is {}: set rds.logical_replication = 1 in the cluster's parameter group and reboot the writer",
                s.wal_level
            )
        } else {
            format!(
                "wal_level is {} but logical replication needs logical: run ALTER SYSTEM SET wal_level = logical; and restart the server (on RDS/Aurora: rds.logical_replication = 1 in the parameter group, then reboot)",
                s.wal_level
            )
        },
    ));
    let may_replicate = s.superuser || s.replication || s.rds_replication;
    checks.push(check(
        "source",
        "replication privilege",
        ok_or_fail(may_replicate),
        if may_replicate {
            format!("user \"{}\" may replicate", s.user)
        } else {
            format!(
                "user \"{u}\" lacks the replication privilege: run ALTER ROLE \"{u}\" REPLICATION; (on RDS/Aurora: GRANT rds_replication TO \"{u}\";)",
                u = s.user
            )
        },
    ));
    let free_slots = s.max_slots - s.used_slots;
    checks.push(check(
        "source",
        "replication slots",
        ok_or_fail(free_slots >= 2),
        format!(
            "{free_slots} of max_replication_slots = {} free; replication needs 2 (one for the subscription, one while the table is copied){}",
            s.max_slots,
            if free_slots >= 2 { "" } else { ": raise max_replication_slots and restart, or drop unused slots (see pg_replication_slots)" }
        ),
    ));
    let free_senders = s.max_senders - s.used_senders;
    checks.push(check(
        "source",
        "wal senders",
        ok_or_fail(free_senders >= 2),
        format!(
            "{free_senders} of max_wal_senders = {} free; replication needs 2{}",
            s.max_senders,
            if free_senders >= 2 {
                ""
            } else {
                ": raise max_wal_senders and restart"
            }
        ),
    ));
    let table = layout.display_name();
    let source_shape = s.shape.clone();
    let dimension = source_shape
        .as_ref()
        .and_then(|sh| sh.dimension_of(&layout.embedding));
    match (&s.table, &source_shape) {
        (None, _) | (_, None) => checks.push(check(
            "source",
            "table",
            Level::Fail,
            format!("there is no table {table} on the source: check [source] schema and table"),
        )),
        (Some(tf), Some(shape)) => {
            let embedding = shape.columns.iter().find(|c| c.name == layout.embedding);
            checks.push(check(
                "source",
                "table",
                ok_or_fail(embedding.is_some()),
                match embedding {
                    Some(c) => format!(
                        "{table} {shape}, {} {}, ~{} rows",
                        c.name,
                        c.type_name,
                        tf.estimated_rows.max(0)
                    ),
                    None => format!(
                        "{table} has no column \"{}\": set [source] embedding_column",
                        layout.embedding
                    ),
                },
            ));
            let (level, detail) = match (tf.replident.as_str(), tf.has_pk) {
                ("d", true) => (Level::Ok, "primary key (replica identity default)".to_owned()),
                ("i", _) => (Level::Ok, "replica identity using a unique index".to_owned()),
                ("f", _) => (
                    Level::Warn,
                    "replica identity full: works, but every update and delete is matched by a full scan on the target; a primary key is much faster".to_owned(),
                ),
                _ => (
                    Level::Fail,
                    format!(
                        "{table} has no primary key or replica identity, so once published its UPDATEs and DELETEs would fail: ALTER TABLE {q} ADD PRIMARY KEY ({id}); (or ALTER TABLE {q} REPLICA IDENTITY FULL;)",
                        q = layout.qualified(),
                        id = ragshift_store::quote_ident(&layout.id)
                    ),
                ),
            };
            checks.push(check(
                "source",
                "primary key or replica identity",
                level,
                detail,
            ));
            let may_publish = s.superuser || (tf.owned && s.create_on_db);
            checks.push(check(
                "source",
                "publication privilege",
                ok_or_fail(may_publish),
                if may_publish {
                    format!("user \"{}\" may publish {table}", s.user)
                } else {
                    format!(
                        "user \"{}\" must own {table} and have CREATE on the database to publish it: connect as the table's owner, or GRANT CREATE ON DATABASE and ALTER TABLE ... OWNER TO",
                        s.user
                    )
                },
            ));
            checks.push(check(
                "source",
                "write fence",
                if tf.may_fence { Level::Ok } else { Level::Warn },
                if tf.may_fence {
                    format!("user \"{}\" may fence writes to {table} at cutover (a trigger)", s.user)
                } else {
                    format!(
                        "user \"{}\" may not fence writes to {table} at cutover (it needs TRIGGER on the table and CREATE on schema {}): grant them before cutover, or cutover would need --no-fence --accept-losing-writes",
                        s.user, layout.schema
                    )
                },
            ));
        }
    }

    // --- target ---
    let may_subscribe = t.superuser || t.subscription_role;
    checks.push(check(
        "target",
        "subscription privilege",
        ok_or_fail(may_subscribe),
        if may_subscribe {
            format!("user \"{}\" may create subscriptions", t.user)
        } else {
            format!(
                "user \"{}\" may not create subscriptions: that needs a superuser (PostgreSQL 15 and older), a member of pg_create_subscription (16+), or rds_superuser on RDS/Aurora",
                t.user
            )
        },
    ));
    let free_workers = t.max_workers - t.used_workers;
    checks.push(check(
        "target",
        "logical replication workers",
        if free_workers >= 2 { Level::Ok } else if free_workers == 1 { Level::Warn } else { Level::Fail },
        format!(
            "{free_workers} of max_logical_replication_workers = {} free (one applies changes, one more copies the table){}",
            t.max_workers,
            if free_workers >= 2 { "" } else { ": raise max_logical_replication_workers (and max_worker_processes) and restart" }
        ),
    ));
    if let Some(used) = t.used_origins {
        let free = t.max_slots - used;
        checks.push(check(
            "target",
            "replication origins",
            ok_or_fail(free >= 1),
            format!(
                "{free} of max_replication_slots = {} free on the target (each subscription takes a replication origin){}",
                t.max_slots,
                if free >= 1 { "" } else { ": raise max_replication_slots on the target and restart" }
            ),
        ));
    }
    let src_vec = s.vector_version.clone().unwrap_or_default();
    let tgt_vec = t.vector_installed.clone().or(t.vector_available.clone());
    checks.push(match &tgt_vec {
        None => check(
            "target",
            "pgvector",
            Level::Fail,
            "pgvector is not installed on the target server: install it (RDS/Aurora include it) so that the vector extension can be created".to_owned(),
        ),
        Some(v) if version_tuple(v) < version_tuple(&src_vec) => check(
            "target",
            "pgvector",
            Level::Warn,
            format!(
                "the target has pgvector {v}, older than the source's {src_vec}: the vector type is compatible, but indexes or types newer than {v} won't be; upgrade pgvector on the target (ALTER EXTENSION vector UPDATE) if you can"
            ),
        ),
        Some(v) => check(
            "target",
            "pgvector",
            Level::Ok,
            format!(
                "pgvector {v}{} (source {src_vec})",
                if t.vector_installed.is_some() { "" } else { " available, will be created" }
            ),
        ),
    });
    let create_table = t.shape.is_none();
    match (&t.shape, &source_shape) {
        (Some(have), Some(want)) => {
            let missing: Vec<String> = want
                .columns
                .iter()
                .filter(|c| !have.columns.contains(c))
                .map(|c| format!("{} {}", c.name, c.type_name))
                .collect();
            if !missing.is_empty() {
                checks.push(check(
                    "target",
                    "table",
                    Level::Fail,
                    format!(
                        "{table} exists on the target with other columns (missing or different: {}): drop it, or replicate into another database",
                        missing.join(", ")
                    ),
                ));
            } else if t.has_rows {
                checks.push(check(
                    "target",
                    "table",
                    Level::Fail,
                    format!(
                        "{table} on the target already has rows, and the initial copy would collide with them: TRUNCATE {} first, or use an empty database",
                        layout.qualified()
                    ),
                ));
            } else if !t.vector_indexes.is_empty() {
                checks.push(check(
                    "target",
                    "table",
                    Level::Warn,
                    format!(
                        "{table} exists, empty, with vector index {}: the initial copy into an HNSW/IVFFlat index is several times slower; drop it (cutover builds one)",
                        t.vector_indexes.join(", ")
                    ),
                ));
            } else {
                checks.push(check(
                    "target",
                    "table",
                    Level::Ok,
                    format!("{table} exists, empty, same columns, no vector index"),
                ));
            }
        }
        (None, _) => checks.push(check(
            "target",
            "table",
            Level::Ok,
            format!("{table} will be created like the source's, without the vector index (built at cutover)"),
        )),
        (Some(_), None) => {}
    }
    let (src_host, tgt_host) = (host_of(route.label()), host_of(target_spec.label()));
    let loopback_from_afar = is_loopback(&src_host) && !is_loopback(&tgt_host);
    let (level, detail) = if loopback_from_afar {
        (
            Level::Fail,
            format!(
                "the source is given as {src_host}, but the subscription connects from the TARGET server ({tgt_host}), where that name means the target itself: give the source's address as the target sees it with --source-from-target"
            ),
        )
    } else if !may_subscribe {
        (
            Level::Warn,
            format!("not tried: the target server will connect to {src_host} once it may create subscriptions"),
        )
    } else {
        match subscription::probe(target, route.libpq_conninfo().expose()).await {
            Ok(Ok(())) => (
                Level::Ok,
                format!("the target server reached the source at {}", route.label()),
            ),
            Ok(Err(reason)) => (
                Level::Fail,
                format!(
                    "the target server could not connect to the source at {} ({reason}); the subscription connects FROM the target's network: give the source's address as the target sees it with --source-from-target, and allow the target in the source's pg_hba.conf / security group",
                    route.label()
                ),
            ),
            Err(e) => (
                Level::Warn,
                format!("could not try the route to {src_host} ({e}); it is tried again when the subscription is created"),
            ),
        }
    };
    checks.push(check("target", "route to the source", level, detail));
    let leaks = subscription::quiet_log(target).await;
    subscription::loud_log(target).await;
    checks.push(match subscription::leak_warning(&leaks) {
        Some(warning) => check("target", "server log", Level::Warn, warning),
        None => check(
            "target",
            "server log",
            Level::Ok,
            "the CREATE SUBSCRIPTION statement (it carries the source's password) is kept out of the target's server log".to_owned(),
        ),
    });

    let transfer = if s.version_num < 140_000 || t.version_num < 140_000 {
        Transfer {
            binary: false,
            reason: "text transfer: binary needs PostgreSQL 14 or newer on both sides".to_owned(),
        }
    } else if !s.vector_binary || t.vector_binary == Some(false) {
        Transfer {
            binary: false,
            reason: "text transfer: the vector type has no binary send/receive on one side"
                .to_owned(),
        }
    } else {
        Transfer {
            binary: true,
            reason: format!(
                "binary transfer: PostgreSQL {} and {} and pgvector's binary send/receive{}",
                s.version_num / 10_000,
                t.version_num / 10_000,
                if s.version_num < 160_000 || t.version_num < 160_000 {
                    " (the initial copy is text before PostgreSQL 16; changes are binary)"
                } else {
                    ""
                }
            ),
        }
    };
    let referenced = referenced_checks(source, target, layout, &mut checks).await?;
    let plan = Plan {
        checks,
        transfer,
        source_shape,
        dimension,
        platform_key: s
            .table
            .as_ref()
            .is_some_and(|t| t.pk_columns == [layout.id.clone()]),
        create_schema: !t.schema_exists,
        create_extension: t.vector_installed.is_none(),
        create_table,
        referenced,
    };
    Ok(plan)
}

/// Each table the chunk table refers to: on the source it needs a primary key or replica
/// identity (once published, its UPDATEs and DELETEs would fail without one); on the target it
/// must be missing (start creates it) or empty with the same columns (the initial copy fills
/// it).
async fn referenced_checks(
    source: &Client,
    target: &Client,
    layout: &Layout,
    checks: &mut Vec<Check>,
) -> Result<Vec<Referenced>, (&'static str, StoreError)> {
    let found = ragshift_store::schema::referenced_tables(source, layout)
        .await
        .map_err(|e| ("source", e))?;
    let mut out = Vec::new();
    for r in &found {
        let (parent, _) = ragshift_store::schema::counterpart(layout, layout, r);
        let name = parent.display_name();
        let identity = source
            .query_one(
                "SELECT c.relreplident::text,
                        EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p')
                   FROM pg_class c WHERE c.oid = to_regclass($1)",
                &[&parent.qualified()],
            )
            .await
            .map_err(|e| ("source", StoreError::query(format!("reading {name}"), e)))?;
        let (replident, has_pk): (String, bool) = (identity.get(0), identity.get(1));
        let ok = matches!(
            (replident.as_str(), has_pk),
            ("d", true) | ("i", _) | ("f", _)
        );
        checks.push(check(
            "source",
            "referenced table",
            ok_or_fail(ok),
            if ok {
                format!("{name} (moved with the chunk table) is published with it")
            } else {
                format!(
                    "{name}, moved with the chunk table, has no primary key or replica identity, so once published its UPDATEs and DELETEs would fail: ALTER TABLE {} REPLICA IDENTITY FULL; (or add a primary key)",
                    parent.qualified()
                )
            },
        ));
        let (s_def, t_def) = (
            ragshift_store::catalog::read_table(source, &parent)
                .await
                .map_err(|e| ("source", e))?,
            ragshift_store::catalog::read_table(target, &parent)
                .await
                .map_err(|e| ("target", e))?,
        );
        let create = t_def.is_none();
        if let (Some(s_def), Some(t_def)) = (&s_def, &t_def) {
            let missing = s_def.incompatible_columns(t_def);
            let has_rows: bool = target
                .query_one(
                    &format!("SELECT EXISTS (SELECT 1 FROM {})", parent.qualified()),
                    &[],
                )
                .await
                .map_err(|e| ("target", StoreError::query(format!("reading {name}"), e)))?
                .get(0);
            let (level, detail) = if !missing.is_empty() {
                (
                    Level::Fail,
                    format!(
                        "{name} exists on the target with other columns: found {}, the source has {}: drop it, or replicate into another database",
                        t_def.shape(),
                        s_def.shape()
                    ),
                )
            } else if has_rows {
                (
                    Level::Fail,
                    format!(
                        "{name} on the target already has rows, and the initial copy would collide with them: TRUNCATE {} first, or use an empty database",
                        parent.qualified()
                    ),
                )
            } else {
                (
                    Level::Ok,
                    format!("{name} exists on the target, empty, same columns"),
                )
            };
            checks.push(check("target", "referenced table", level, detail));
        } else if create {
            checks.push(check(
                "target",
                "referenced table",
                Level::Ok,
                format!("{name} will be created like the source's"),
            ));
        }
        out.push(Referenced {
            table: name,
            layout: parent,
            create,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_out_of_masked_labels() {
        assert_eq!(
            host_of("postgres://u:****@db.example:5432/rag"),
            "db.example"
        );
        assert_eq!(host_of("postgres://u@127.0.0.1:6000/x"), "127.0.0.1");
        assert!(is_loopback("localhost") && is_loopback("127.0.0.1"));
        assert!(!is_loopback("10.0.0.5"));
        assert!(version_tuple("0.8.0") > version_tuple("0.7.4"));
    }
}
