//! Importing a version 2 export: the store's tables as the manifest describes them. Before
//! anything is written, every table is checked: one that exists on the target must have the
//! exported shape (else the import is refused, both shapes shown), one that doesn't must be
//! creatable (a type the target lacks is named). Then, parents first, each table is created
//! as it was (columns, types, defaults, identity and serial sequences, generated columns), its
//! files are loaded — each partition key value or key range in ONE transaction that replaces
//! those rows, checks their count and checksum against the manifest and records the file in the
//! journal — its sequences are set, its indexes and constraints built; foreign keys come last.
//!
//! Rows are written with the store's binary COPY ([`ragshift_store::writer::RowCopy`]); a table with a column carried as text (`tsvector`,
//! `bit`, `numeric`, ...) is loaded through a temporary table holding those columns as text and
//! cast into place.

use std::path::PathBuf;
use std::time::Instant;

use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use ragshift_store::catalog::indexes::{plan_builds, target_name, BuildStep};
use ragshift_store::catalog::{read_table, set_sequences, types_missing_on, TableDef};
use ragshift_store::checksum::{bot_checksums, filtered_checksum, table_checksum, NULL_KEY};
use ragshift_store::compare::{compare_groups, Match};
use ragshift_store::ident::{quote_ident, quote_literal};
use ragshift_store::index_build::{build_index, IndexBuild};
use ragshift_store::journal::{Status, UnitResult};
use ragshift_store::lock::TargetLock;
use ragshift_store::writer::{column_types, RowCopy};
use ragshift_store::{schema, ConnectSpec, Layout, StoreError};

use crate::columns::{Cell, ColumnKind};
use crate::import::{
    copy_failed, differing_files, mismatch, recorded_sums, BotFailure, BotProblem, ImportOptions,
    ImportReport, Rename,
};
use crate::location::Location;
use crate::manifest::{FileEntry, Manifest, TableEntry};
use crate::parquet_file::{FileColumn, TableFileReader};
use crate::ExportError;

/// The chunk table of a version 2 manifest (its last table), or `None` for version 1.
pub(crate) fn chunk_layout(manifest: &Manifest) -> Option<Layout> {
    let t = manifest.tables.last()?;
    let mut layout = table_layout(t);
    if let Some(l) = &manifest.layout {
        layout.id = l.id.clone();
        layout.content = l.content.clone();
        layout.source = l.source.clone();
        layout.embedding = l.embedding.clone();
    }
    Some(layout)
}

/// A table of the manifest as a layout: its name and its partition key as the bot column.
fn table_layout(t: &TableEntry) -> Layout {
    Layout {
        schema: t.schema.clone(),
        table: t.table.clone(),
        bot: t.partition_key.clone().unwrap_or_default(),
        ..Layout::default()
    }
}

/// `exported` (a table of the export; `chunk` tells whether it is the chunk table, exported as
/// `chunk_table`) under the names `rename` gives it on the target: the chunk table renamed, the
/// others placed as [`schema::counterpart`] places a store's tables.
pub(crate) fn renamed(
    exported: &Layout,
    chunk_table: &Layout,
    chunk: bool,
    rename: &Rename,
) -> Layout {
    let mut target = chunk_table.clone();
    if let Some(schema) = &rename.schema {
        target.schema = schema.clone();
    }
    if let Some(table) = &rename.table {
        target.table = table.clone();
    }
    if chunk {
        return target;
    }
    let named = (exported.schema.clone(), exported.table.clone());
    let (_, placed) = schema::counterpart(chunk_table, &target, &named);
    Layout {
        schema: placed.schema,
        table: placed.table,
        ..exported.clone()
    }
}

/// A table checked against the target, ready to load.
pub(crate) struct Prepared {
    entry: TableEntry,
    /// Its names in the export.
    exported: Layout,
    /// Its names on the target.
    layout: Layout,
    /// Whether it was on the target before this import.
    existed: bool,
    /// Whether it is the chunk table (the others are the tables it refers to).
    chunk: bool,
    columns: Vec<FileColumn>,
}

/// Checks every table of the manifest against the target before anything is written.
pub(crate) async fn prepare(
    client: &Client,
    manifest: &Manifest,
    server: &str,
    rename: &Rename,
) -> Result<Vec<Prepared>, ExportError> {
    let db = ExportError::target(server);
    let mut out = Vec::new();
    let mut refused = Vec::new();
    let mut missing = Vec::new();
    let last = manifest.tables.len().saturating_sub(1);
    for (i, t) in manifest.tables.iter().enumerate() {
        let chunk = i == last;
        let chunk_table = chunk_layout(manifest).unwrap_or_else(|| table_layout(t));
        let exported = if chunk {
            chunk_table.clone()
        } else {
            table_layout(t)
        };
        let layout = renamed(&exported, &chunk_table, chunk, rename);
        let def = &t.definition;
        let existing = read_table(client, &layout).await.map_err(db)?;
        match &existing {
            Some(have) => {
                let diff = def.shape_differences(have);
                if !diff.is_empty() {
                    refused.push(format!(
                        "table {} exists on the target with another shape and is left untouched:\n  export: {}\n  target: {}\n  ({})",
                        t.name,
                        def.shape(),
                        have.shape(),
                        diff.join("; ")
                    ));
                }
            }
            None => missing.extend(
                types_missing_on(client, def)
                    .await
                    .map_err(db)?
                    .into_iter()
                    .map(|m| format!("{}.{m}", t.name)),
            ),
        }
        out.push(Prepared {
            columns: file_columns(def),
            entry: t.clone(),
            exported,
            layout,
            existed: existing.is_some(),
            chunk,
        });
    }
    if !refused.is_empty() {
        return Err(ExportError::Refused(format!(
            "{}\nnothing was written: drop or rename the table on the target, or import into another database",
            refused.join("\n")
        )));
    }
    if !missing.is_empty() {
        return Err(ExportError::Refused(format!(
            "the target can't hold every column of the export, so nothing was written: {}",
            missing.join("; ")
        )));
    }
    Ok(out)
}

/// The columns a table's files hold: all but generated ones (export writes them, import reads
/// them).
pub(crate) fn file_columns(def: &TableDef) -> Vec<FileColumn> {
    def.columns
        .iter()
        .filter(|c| c.copied())
        .map(|c| FileColumn {
            name: c.name.clone(),
            kind: ColumnKind::of(&c.type_sql),
            type_sql: c.type_sql.clone(),
        })
        .collect()
}

/// One import run of a version 2 export, once it is in the journal.
pub(crate) struct TablesRun<'a> {
    pub target: &'a ConnectSpec,
    pub lock: &'a TargetLock,
    pub run_id: &'a str,
    pub server: &'a str,
    pub from: &'a Location,
    pub manifest: &'a Manifest,
    pub opts: &'a ImportOptions,
    pub started: Instant,
}

impl TablesRun<'_> {
    /// Creates, loads and indexes every table, parents first; foreign keys last; then compares
    /// each table with the manifest. When the import fails, a table it created and left empty
    /// is removed again (children first), so the target holds no debris; one with rows stays
    /// (those rows are whole, and the next import resumes).
    pub(crate) async fn load(
        &self,
        client: &mut Client,
        tables: &[Prepared],
        files: &[(&FileEntry, PathBuf)],
    ) -> Result<ImportReport, ExportError> {
        let result = self.load_all(client, tables, files).await;
        if !matches!(&result, Ok(report) if report.problems.is_empty()) {
            for t in tables.iter().rev().filter(|t| !t.existed) {
                let table = t.layout.qualified();
                let sql = format!(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM {table}) THEN DROP TABLE {table}; END IF; END $$"
                );
                // Best effort: on a broken connection the empty table stays, and the next
                // import loads into it (it has the export's shape).
                match client.batch_execute(&sql).await {
                    Ok(()) => {
                        tracing::debug!("{} removed if it was left empty", t.layout.display_name())
                    }
                    Err(e) => {
                        tracing::warn!("could not remove {} if empty: {e}", t.layout.display_name())
                    }
                }
            }
        }
        result
    }

    async fn load_all(
        &self,
        client: &mut Client,
        tables: &[Prepared],
        files: &[(&FileEntry, PathBuf)],
    ) -> Result<ImportReport, ExportError> {
        let db = ExportError::target(self.server);
        let table = tables
            .iter()
            .find(|t| t.chunk)
            .map_or_else(|| self.manifest.table.clone(), |t| t.layout.display_name());
        let mut report = ImportReport::new(self.run_id, self.from, self.server, table);
        let same_scheme = self.manifest.checksum_scheme == ragshift_store::checksum::SCHEME;
        let pgvector = tables.iter().any(|t| {
            t.entry.definition.columns.iter().any(|c| {
                matches!(
                    ColumnKind::of(&c.type_sql),
                    ColumnKind::Vector(_) | ColumnKind::Halfvec(_) | ColumnKind::Sparsevec
                )
            })
        });
        if pgvector {
            schema::ensure_vector_extension(&*client)
                .await
                .map_err(db)?;
        }
        let mut lost_lock: Option<String> = None;
        for t in tables {
            if !t.existed {
                client
                    .batch_execute(&t.entry.definition.create_sql(&t.layout, &t.exported))
                    .await
                    .map_err(|e| {
                        db(StoreError::query(
                            format!("creating {}", t.layout.display_name()),
                            e,
                        ))
                    })?;
            }
            let mine: Vec<&(&FileEntry, PathBuf)> = files
                .iter()
                .filter(|(f, _)| f.table == t.entry.name)
                .collect();
            // Files of a table without a partition key or primary key load together.
            let groups: Vec<Vec<&(&FileEntry, PathBuf)>> =
                if t.entry.partition_key.is_some() || t.entry.split_key.is_some() {
                    mine.iter().map(|f| vec![*f]).collect()
                } else if mine.is_empty() {
                    Vec::new()
                } else {
                    vec![mine]
                };
            for group in groups {
                let failed = match &lost_lock {
                    Some(why) => format!("not imported: {why}"),
                    None => match self.write_group(client, t, &group, same_scheme).await {
                        Ok(rows) => {
                            report.bots += group.len();
                            report.rows += rows;
                            continue;
                        }
                        Err(BotFailure::LockLost(e)) => {
                            lost_lock = Some(e.clone());
                            e
                        }
                        Err(BotFailure::Other(e)) => e,
                    },
                };
                for (f, _) in &group {
                    let result = UnitResult {
                        error: Some(failed.clone()),
                        ..UnitResult::default()
                    };
                    self.opts
                        .journal
                        .mark_finished(&*client, self.run_id, &f.path, Status::Failed, &result)
                        .await
                        .map_err(db)?;
                    report.problems.push(BotProblem {
                        bot_id: f.bot_id.clone(),
                        file: f.path.clone(),
                        error: failed.clone(),
                    });
                }
            }
            if lost_lock.is_some() {
                continue;
            }
            set_sequences(&*client, &t.layout, &t.entry.sequences)
                .await
                .map_err(db)?;
            let steps = self.build_steps(client, t, false).await.map_err(db)?;
            self.run_steps(client, t, &steps, &mut report).await;
        }
        if let Some(why) = lost_lock {
            // Nothing more may be written: another run may hold the tables now.
            return Err(db(StoreError::new(
                ragshift_store::StoreErrorKind::LockLost,
                why,
            )));
        }
        // Foreign keys once every table they point at is loaded.
        for t in tables {
            let steps = self.build_steps(client, t, true).await.map_err(db)?;
            self.run_steps(client, t, &steps, &mut report).await;
        }
        if self.opts.verify {
            for t in tables {
                if let Err(e) = self.compare(client, t, &mut report).await {
                    report.problems.push(BotProblem {
                        bot_id: None,
                        file: String::new(),
                        error: format!(
                            "comparing {} with the export failed: {}",
                            t.entry.name,
                            db(e)
                        ),
                    });
                }
            }
            report.compared_with(self.manifest);
        }
        report.seconds = self.started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// What the table still lacks of the source's indexes and constraints: with
    /// `foreign_keys`, only foreign keys (run once every table is loaded); without, the rest.
    /// Without a vector index asked for (`--no-index`), vector indexes are left out.
    async fn build_steps(
        &self,
        client: &Client,
        t: &Prepared,
        foreign_keys: bool,
    ) -> Result<Vec<BuildStep>, StoreError> {
        let def = &t.entry.definition;
        let now = read_table(client, &t.layout)
            .await?
            .unwrap_or_else(|| def.clone());
        // A foreign key names the table it refers to as the source's catalog printed it: in
        // another schema it would point at the wrong table, so it is left out, and said.
        let same_schema = t.exported.schema == t.layout.schema;
        let plan = plan_builds(
            def,
            &t.exported,
            &now,
            &t.layout,
            self.bedrock_vector_index(t),
            t.entry.rows,
            foreign_keys && same_schema,
        );
        if foreign_keys {
            for skipped in plan.skipped.iter().filter(|s| s.starts_with("foreign key")) {
                tracing::warn!("{}: {skipped}", t.layout.display_name());
            }
        }
        let is_fk = |s: &BuildStep| {
            def.constraints
                .iter()
                .any(|c| c.kind == "f" && target_name(&c.name, &t.exported, &t.layout) == s.name)
        };
        let mut steps = Vec::new();
        for s in plan.indexes {
            if foreign_keys || (s.vector && self.opts.vector_index.is_none()) {
                continue;
            }
            let attach = s.attach.clone();
            steps.push(s);
            if let Some(sql) = attach {
                steps.push(BuildStep {
                    name: format!("{} (constraint)", steps[steps.len() - 1].name),
                    sql,
                    attach: None,
                    vector: false,
                });
            }
        }
        steps.extend(
            plan.constraints
                .into_iter()
                .filter(|s| is_fk(s) == foreign_keys),
        );
        for s in &mut steps {
            s.attach = None;
        }
        Ok(steps)
    }

    /// The vector index asked for (`--target-index`), for the chunk table of an export of
    /// Bedrock Chat's layout whose source had none (as a version 1 import builds it); every
    /// other table gets exactly the source's indexes.
    fn bedrock_vector_index(&self, t: &Prepared) -> Option<ragshift_store::index::VectorIndex> {
        let bedrock = Layout::default();
        let same = self.manifest.layout.as_ref().is_some_and(|l| {
            (
                l.id.as_str(),
                l.bot.as_str(),
                l.content.as_str(),
                l.source.as_str(),
                l.embedding.as_str(),
            ) == (
                bedrock.id.as_str(),
                bedrock.bot.as_str(),
                bedrock.content.as_str(),
                bedrock.source.as_str(),
                bedrock.embedding.as_str(),
            )
        });
        let def = &t.entry.definition;
        let typed = def.columns.iter().any(|c| {
            c.name == t.layout.embedding
                && matches!(ColumnKind::of(&c.type_sql), ColumnKind::Vector(Some(_)))
        });
        let has_one = def.indexes.iter().any(|i| i.is_vector());
        if t.chunk && same && typed && !has_one {
            self.opts.vector_index
        } else {
            None
        }
    }

    /// Runs build steps one by one on the run's connection, each index through the one build
    /// engine (memory from its estimate, parallel workers, progress); a failed one is a problem
    /// of the result (the rows are in), not a reason to stop.
    async fn run_steps(
        &self,
        client: &mut Client,
        t: &Prepared,
        steps: &[BuildStep],
        report: &mut ImportReport,
    ) {
        for s in steps {
            let result = if s.sql.trim_start().starts_with("CREATE") {
                let build = IndexBuild {
                    schema: &t.layout.schema,
                    table: &t.layout.table,
                    name: &s.name,
                    sql: &s.sql,
                    rows: u64::try_from(t.entry.rows).ok(),
                    parallel_workers: None,
                };
                build_index(client, Some(self.target), &build, &self.opts.index_build)
                    .await
                    .map(|_| ())
            } else {
                client
                    .batch_execute(&s.sql)
                    .await
                    .map_err(|e| StoreError::query(&s.sql, e))
            };
            match result {
                Ok(()) if s.vector => report.index = Some(s.sql.clone()),
                Ok(()) => {}
                Err(e) => report.problems.push(BotProblem {
                    bot_id: None,
                    file: String::new(),
                    error: format!("building {}: {e}", s.name),
                }),
            }
        }
    }

    /// Loads one group of files (one partition key value, one key range, or all files of a
    /// table without either) in one transaction that replaces those rows, and commits only
    /// when they have the manifest's row count and (same scheme) checksum.
    async fn write_group(
        &self,
        client: &mut Client,
        t: &Prepared,
        group: &[&(&FileEntry, PathBuf)],
        same_scheme: bool,
    ) -> Result<u64, BotFailure> {
        let Some((first, _)) = group.first() else {
            return Ok(0);
        };
        let def = &t.entry.definition;
        let table = t.layout.qualified();
        let column_type = |name: &str| {
            def.columns
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.type_sql.clone())
                .unwrap_or_else(|| "text".into())
        };
        let (filter, who) = match (&t.entry.partition_key, &t.entry.split_key, &first.range) {
            (Some(k), _, _) => match &first.bot_id {
                Some(v) => (
                    format!(
                        "{} = {}::{}",
                        quote_ident(k),
                        quote_literal(v),
                        column_type(k)
                    ),
                    format!("{k} {v} of {}", t.entry.name),
                ),
                None => (
                    format!("{} IS NULL", quote_ident(k)),
                    format!("rows of {} without a {k}", t.entry.name),
                ),
            },
            (None, Some(k), Some(r)) => {
                let ty = column_type(k);
                (
                    format!(
                        "{col} >= {}::{ty} AND {col} <= {}::{ty}",
                        quote_literal(&r.first),
                        quote_literal(&r.last),
                        col = quote_ident(k)
                    ),
                    format!("{} {k} {} to {}", t.entry.name, r.first, r.last),
                )
            }
            _ => ("TRUE".to_owned(), format!("all rows of {}", t.entry.name)),
        };
        let q = |what: &str| {
            let what = format!("{what} for {who}");
            move |e| BotFailure::Other(StoreError::query(what, e).to_string())
        };
        let want_rows: i64 = group.iter().map(|(f, _)| f.rows).sum();
        let want_sum: Option<i128> = group
            .iter()
            .map(|(f, _)| f.checksum.parse::<i128>().ok())
            .sum();
        let want_sum = want_sum.map(|s| s.to_string()).unwrap_or_default();
        let tx = client
            .transaction()
            .await
            .map_err(q("starting the transaction"))?;
        let checksum = |doing: &str| {
            let doing = format!("{doing} for {who}");
            let tx = &tx;
            let filter = &filter;
            async move {
                filtered_checksum(tx, &t.layout, filter, &[], doing)
                    .await
                    .map_err(|e| BotFailure::Other(e.to_string()))
            }
        };
        let matches = |count: i64, sum: &str| {
            Match::of(same_scheme).same((count, sum), (want_rows, want_sum.as_str()))
        };
        // A referenced table (LangChain's collections) that already holds the exported rows is
        // left as it is: rewriting it would cascade to, or be refused by, the rows referring to
        // it. The chunk table's rows are always rewritten from the file, so a file changed after
        // the export is caught by the checksum below.
        // Other rows there are refused, never deleted: the deletion would cascade to (or be
        // refused by) rows of the target that refer to them, which this import doesn't own.
        let mut already = false;
        if t.existed && !t.chunk {
            let (count, sum) = checksum("checksumming the rows already there").await?;
            already = same_scheme && matches(count, &sum);
            if !already && count > 0 {
                return Err(BotFailure::Other(format!(
                    "{} already holds {count} rows for {who} that differ from the export's {want_rows}; they are left as they are, since deleting them would reach the rows that refer to them: empty or drop {} on the target (or import into another database), then run again",
                    t.layout.display_name(),
                    t.layout.display_name()
                )));
            }
        }
        if t.existed && !already {
            tx.execute(&format!("DELETE FROM {table} WHERE {filter}"), &[])
                .await
                .map_err(q("deleting old rows"))?;
        }
        if !already {
            self.copy_files(&tx, t, group, &who).await?;
        }
        let (count, sum) = checksum("checksumming the written rows").await?;
        if !matches(count, &sum) {
            // Dropping the transaction rolls it back: the rows stay as they were.
            let files: Vec<&str> = group.iter().map(|(f, _)| f.path.as_str()).collect();
            return Err(BotFailure::Other(format!(
                "the rows of {} don't match what the export recorded for {who} ({count} rows with checksum {sum}; the manifest says {want_rows} rows with checksum {want_sum}): the file was changed after the export; {who} keeps its old rows",
                files.join(", ")
            )));
        }
        for (f, _) in group {
            let result = UnitResult {
                row_count: Some(f.rows),
                checksum: Some(f.checksum.clone()),
                ..UnitResult::default()
            };
            self.opts
                .journal
                .mark_finished(&tx, self.run_id, &f.path, Status::Succeeded, &result)
                .await
                .map_err(|e| BotFailure::Other(format!("recording {who} in the journal: {e}")))?;
        }
        // Last, right before the commit: a run that lost its lock commits nothing more.
        self.lock
            .ensure_held()
            .await
            .map_err(|e| BotFailure::LockLost(e.to_string()))?;
        tx.commit().await.map_err(q("committing"))?;
        Ok(want_rows as u64)
    }

    /// Streams the group's files into the table with binary COPY (through a temporary table
    /// when a column is carried as text).
    async fn copy_files(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        t: &Prepared,
        group: &[&(&FileEntry, PathBuf)],
        who: &str,
    ) -> Result<(), BotFailure> {
        let q = |what: &str| {
            let what = format!("{what} for {who}");
            move |e| BotFailure::Other(StoreError::query(what, e).to_string())
        };
        let columns = &t.columns;
        let list = columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let staged = columns.iter().any(|c| c.kind.is_text_form());
        let into = if staged {
            let cols: Vec<String> = columns
                .iter()
                .map(|c| {
                    let ty = if c.kind.is_text_form() {
                        "text"
                    } else {
                        c.type_sql.as_str()
                    };
                    format!("{} {ty}", quote_ident(&c.name))
                })
                .collect();
            tx.batch_execute(&format!(
                "CREATE TEMP TABLE ragshift_import_stage ({}) ON COMMIT DROP",
                cols.join(", ")
            ))
            .await
            .map_err(q("creating the staging table"))?;
            "ragshift_import_stage".to_owned()
        } else {
            t.layout.qualified()
        };
        let types = column_types(tx, &into, &list)
            .await
            .map_err(q("reading the column types"))?;
        let mut copy = RowCopy::start(tx, &into, &list, &types)
            .await
            .map_err(q("starting COPY"))?;
        for (f, local) in group {
            let unreadable = |e: crate::parquet_file::FileError| {
                BotFailure::Other(format!("{} is unreadable: {e}", self.from.name_of(&f.path)))
            };
            let mut reader = TableFileReader::open(local, columns).map_err(unreadable)?;
            while let Some(batch) = reader.next_batch().map_err(unreadable)? {
                let rows = batch.first().map(Vec::len).unwrap_or(0);
                for i in 0..rows {
                    let cells: Vec<Cell> = columns
                        .iter()
                        .zip(&batch)
                        .map(|(c, values)| Cell {
                            kind: &c.kind,
                            value: &values[i],
                        })
                        .collect();
                    let refs: Vec<&(dyn ToSql + Sync)> =
                        cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
                    copy.write(&refs).await.map_err(q("writing rows"))?;
                }
            }
        }
        copy.finish().await.map_err(copy_failed(who))?;
        if staged {
            let casts: Vec<String> = columns
                .iter()
                .map(|c| {
                    let col = quote_ident(&c.name);
                    if c.kind.is_text_form() {
                        format!("{col}::{}", c.type_sql)
                    } else {
                        col
                    }
                })
                .collect();
            tx.execute(
                &format!(
                    "INSERT INTO {} ({list}) OVERRIDING SYSTEM VALUE SELECT {} FROM ragshift_import_stage",
                    t.layout.qualified(),
                    casts.join(", ")
                ),
                &[],
            )
            .await
            .map_err(q("moving the rows into place"))?;
            tx.batch_execute("DROP TABLE ragshift_import_stage")
                .await
                .map_err(q("dropping the staging table"))?;
        }
        Ok(())
    }

    /// Compares a table on the target with the manifest: per partition key value where it has
    /// one, whole otherwise. Differences are problems of the result.
    async fn compare(
        &self,
        client: &Client,
        t: &Prepared,
        report: &mut ImportReport,
    ) -> Result<(), StoreError> {
        let same_scheme = self.manifest.checksum_scheme == ragshift_store::checksum::SCHEME;
        let files: Vec<&FileEntry> = self
            .manifest
            .files
            .iter()
            .filter(|f| f.table == t.entry.name)
            .filter(|f| !report.problems.iter().any(|p| p.file == f.path))
            .collect();
        let how = Match::of(same_scheme);
        let holder = &t.entry.name;
        if t.entry.partition_key.is_some() {
            let recorded = recorded_sums(files.iter().copied(), Some(NULL_KEY));
            let keys: Vec<String> = recorded.iter().map(|r| r.bot_id.clone()).collect();
            let sums = bot_checksums(client, &t.layout, Some(&keys)).await?;
            let found = compare_groups(&recorded, &sums, how);
            let checked = files.iter().copied().zip(keys.iter().map(String::as_str));
            report
                .problems
                .extend(differing_files(checked, &found, holder));
            return Ok(());
        }
        if files.len()
            != self
                .manifest
                .files
                .iter()
                .filter(|f| f.table == t.entry.name)
                .count()
        {
            return Ok(()); // a file failed: already reported
        }
        let (rows, sum) = table_checksum(client, &t.layout).await?;
        let want_rows: i64 = files.iter().map(|f| f.rows).sum();
        let want_sum: i128 = files
            .iter()
            .map(|f| f.checksum.parse::<i128>().unwrap_or_default())
            .sum();
        let want_sum = want_sum.to_string();
        if !how.same((rows, &sum), (want_rows, &want_sum)) {
            let got = Some((rows, sum.as_str()));
            report
                .problems
                .push(mismatch(None, holder, got, (want_rows, &want_sum)));
        }
        Ok(())
    }
}
