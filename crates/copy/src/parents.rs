//! The tables the chunk table refers to by foreign key, such as LangChain's
//! `langchain_pg_collection` (and the tables those refer to, and the `--extra-table`s): without
//! them the moved chunks point at nothing and the library creates new, empty collections. Each
//! is copied whole, after the tables it refers to, in the run's snapshot, in one target
//! transaction that also creates its indexes, constraints and sequences and compares its
//! checksum with the source's before committing; one already on the target with the same rows
//! is left as it is.

use std::sync::atomic::AtomicU64;

use serde::Serialize;
use tokio_postgres::{Client, GenericClient};

use ragshift_store::checksum::table_checksum;
use ragshift_store::compare::{compare_tables, TableComparison};
use ragshift_store::ident::Layout;
use ragshift_store::StoreError;

use crate::catalog::{read_table, sync_sequences};
use crate::indexes::plan_builds;
use crate::pipe::stream_copy;

/// A referenced table on both sides.
#[derive(Debug, Clone)]
pub struct Parent {
    /// On the source.
    pub source: Layout,
    /// On the target: the chunk table's target schema when it shares the chunk table's
    /// schema on the source, else the same schema.
    pub target: Layout,
}

/// What happened to one referenced table.
#[derive(Debug, Clone, Serialize)]
pub struct ParentCopied {
    /// The target table.
    pub table: String,
    /// Rows it holds.
    pub rows: i64,
    /// `copied`, or `already there` (the same rows were on the target).
    pub action: String,
}

/// The tables `chunk` refers to by foreign key (itself excluded), with their target names.
pub async fn referenced_tables(
    source: &impl GenericClient,
    chunk: &Layout,
    target_chunk: &Layout,
) -> Result<Vec<Parent>, StoreError> {
    let found = ragshift_store::schema::referenced_tables(source, chunk).await?;
    Ok(found
        .iter()
        .map(|r| {
            let (source, target) = ragshift_store::schema::counterpart(chunk, target_chunk, r);
            Parent { source, target }
        })
        .collect())
}

/// Copies one referenced table whole from `source` (inside the run's snapshot), unless the
/// target already holds exactly its rows. Refuses a target table with other rows: the chunks
/// would point at the wrong parents.
pub async fn copy_parent(
    source: &Client,
    target: &mut Client,
    parent: &Parent,
) -> Result<ParentCopied, StoreError> {
    let (sl, tl) = (&parent.source, &parent.target);
    let def = read_table(source, sl).await?.ok_or_else(|| {
        StoreError::new(
            ragshift_store::StoreErrorKind::ShapeMismatch,
            format!(
                "referenced table {} vanished from the source",
                sl.display_name()
            ),
        )
    })?;
    let existing = read_table(&*target, tl).await?;
    let before = compare_tables(source, sl, &*target, tl)
        .await
        .map_err(|e| e.error)?;
    let rows = before.source.0;
    if existing.is_some() {
        if before.same() {
            return Ok(ParentCopied {
                table: tl.display_name(),
                rows,
                action: "already there".into(),
            });
        }
        if let Some((t_rows, _)) = before.target.as_ref().filter(|(n, _)| *n > 0) {
            return Err(StoreError::new(
                ragshift_store::StoreErrorKind::ShapeMismatch,
                format!(
                    "target table {} (moved with the chunk table) already holds {t_rows} rows that differ from the source's {rows}; the moved chunks would point at the wrong rows. Empty or drop it on the target, then run again",
                    tl.display_name()
                ),
            ));
        }
    }
    let tx = target
        .transaction()
        .await
        .map_err(|e| StoreError::query("starting the referenced table's transaction", e))?;
    let created = existing.is_none();
    if created {
        tx.batch_execute(&def.create_sql(tl, sl))
            .await
            .map_err(|e| StoreError::query(format!("creating {}", tl.display_name()), e))?;
    }
    let columns = def.column_list();
    let copy_out = format!(
        "COPY (SELECT {columns} FROM {}) TO STDOUT (FORMAT binary)",
        sl.qualified()
    );
    let copy_in = format!(
        "COPY {} ({columns}) FROM STDIN (FORMAT binary)",
        tl.qualified()
    );
    stream_copy(source, &tx, &copy_out, &copy_in, &AtomicU64::new(0))
        .await
        .map_err(|e| {
            StoreError::new(
                e.store().kind(),
                format!("copying {}: {e}", tl.display_name()),
            )
        })?;
    if created {
        let now = read_table(&tx, tl).await?.unwrap_or_else(|| def.clone());
        // Its own foreign keys too: the tables it refers to were copied before it (parents
        // first), under the same names when the schema is the same.
        let plan = plan_builds(&def, sl, &now, tl, None, rows, sl.schema == tl.schema);
        for step in plan.indexes.iter().chain(plan.constraints.iter()) {
            tx.batch_execute(&step.sql).await.map_err(|e| {
                StoreError::query(
                    format!("building {} on {}", step.name, tl.display_name()),
                    e,
                )
            })?;
            if let Some(attach) = &step.attach {
                tx.batch_execute(attach)
                    .await
                    .map_err(|e| StoreError::query(format!("attaching {}", step.name), e))?;
            }
        }
    }
    sync_sequences(source, &tx, &def, sl, tl).await?;
    let after = TableComparison {
        target: Some(table_checksum(&tx, tl).await?),
        ..before
    };
    if let (false, Some((t_rows, t_sum)), (rows, sum)) =
        (after.same(), &after.target, &after.source)
    {
        return Err(StoreError::new(
            ragshift_store::StoreErrorKind::InvalidData,
            format!(
                "{} on the target would hold {t_rows} rows with checksum {t_sum}, the source holds {rows} with {sum}; nothing was committed",
                tl.display_name()
            ),
        ));
    }
    tx.commit()
        .await
        .map_err(|e| StoreError::query(format!("committing {}", tl.display_name()), e))?;
    Ok(ParentCopied {
        table: tl.display_name(),
        rows,
        action: "copied".into(),
    })
}
