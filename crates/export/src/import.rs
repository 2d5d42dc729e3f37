//! `ragshift import`: an export back into a target. The manifest's SHA-256 of every file is
//! checked before anything is written (a corrupted file stops the import, named); then each bot
//! is written in ONE transaction (its old rows deleted, the file's rows loaded with binary COPY)
//! and the target's checksums are compared with the ones the export recorded. A version 2
//! export's tables are recreated as they were ([`crate::tables`]); a version 1 export (Bedrock
//! Chat's five columns) goes into the target's layout, its vector index built afterwards.

use std::path::{Path, PathBuf};
use std::time::Instant;

use pgvector::Vector;
use ragshift_config::Loaded;
use serde::Serialize;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use ragshift_store::checksum::{bot_checksums, filtered_checksum, BotChecksum};
use ragshift_store::compare::{compare_groups, GroupComparison, Match};
use ragshift_store::ident::quote_ident;
use ragshift_store::index::{ensure_vector_index_with, VectorIndex};
use ragshift_store::journal::{Journal, Status, UnitResult};
use ragshift_store::lock::TargetLock;
use ragshift_store::writer::{column_types, CopyFailure, RowCopy};
use ragshift_store::{connect, schema, ConnectSpec, Layout, StoreError};

use crate::hash::sha256_file;
use crate::location::{download, Location};
use crate::manifest::{FileEntry, Manifest, FORMAT, MANIFEST, VERSION};
use crate::parquet_file::RowFileReader;
use crate::ExportError;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Build this vector index afterwards (`None`: none).
    pub vector_index: Option<VectorIndex>,
    /// Memory, parallel workers and progress reports for the index builds (`[index]`, the one
    /// build engine).
    pub index_build: ragshift_store::index_build::IndexBuildOptions,
    /// Compare the target's checksums with the manifest's afterwards.
    pub verify: bool,
    /// The run journal in the target (`[run] journal_schema`).
    pub journal: Journal,
    /// Where a version 2 export's chunk table goes when not under its exported name.
    pub rename: Rename,
}

impl ImportOptions {
    /// The options the configuration decides: the vector index to build unless `build_index`
    /// is off (`[target] index`), the journal (`[run]`), and only the target names the user gave
    /// (a version 2 export keeps its own names otherwise).
    pub fn configured(
        loaded: &Loaded,
        build_index: bool,
        index_build: ragshift_store::index_build::IndexBuildOptions,
        verify: bool,
    ) -> Self {
        let config = &loaded.config;
        Self {
            vector_index: build_index.then_some(VectorIndex::from_config(&config.target)),
            index_build,
            verify,
            journal: Journal::from_config(&config.run),
            rename: Rename::from_config(loaded),
        }
    }
}

/// Another schema or name on the target for a version 2 export's chunk table (`--target-schema`,
/// `--target-table`): restoring beside the original, or into a schema of its own. The tables it
/// refers to keep their names and follow it into the new schema when they shared its schema.
#[derive(Debug, Clone, Default)]
pub struct Rename {
    /// The chunk table's schema (and its parents', where they shared it).
    pub schema: Option<String>,
    /// The chunk table's name.
    pub table: Option<String>,
}

/// A bot (or file) that failed to import or doesn't match the manifest afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct BotProblem {
    /// The bot (`None`: rows without a bot id).
    pub bot_id: Option<String>,
    /// Its file.
    pub file: String,
    /// What is wrong.
    pub error: String,
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The run, as the target's journal records it (`ragshift status`).
    pub run_id: String,
    /// Where from.
    pub location: String,
    /// Target server (password masked).
    pub target: String,
    /// Target table.
    pub table: String,
    /// Files written (one per bot or collection; version 2: also per key range of a table
    /// without one).
    pub bots: usize,
    /// Rows written.
    pub rows: u64,
    /// Bots that failed or don't match.
    pub problems: Vec<BotProblem>,
    /// The vector index built, if any.
    pub index: Option<String>,
    /// Whether the checksums were compared.
    pub verified: bool,
    /// Why the checksums were not compared although asked (an export from a ragshift that
    /// computed them another way: row counts were still compared).
    pub unverified_reason: Option<String>,
    /// Seconds it took.
    pub seconds: f64,
}

impl ImportReport {
    /// The report of run `run_id` from `from` into `table` of `target`, before anything is
    /// written.
    pub(crate) fn new(run_id: &str, from: &Location, target: &str, table: String) -> Self {
        Self {
            run_id: run_id.to_owned(),
            location: from.display(),
            target: target.to_owned(),
            table,
            bots: 0,
            rows: 0,
            problems: Vec::new(),
            index: None,
            verified: false,
            unverified_reason: None,
            seconds: 0.0,
        }
    }

    /// Records that the checksums were compared with `manifest`'s, or, when the export
    /// computed them another way, that only the row counts were, and why.
    pub(crate) fn compared_with(&mut self, manifest: &Manifest) {
        if manifest.checksum_scheme == ragshift_store::checksum::SCHEME {
            self.verified = true;
        } else {
            self.unverified_reason = Some(format!(
                "the export's checksums were computed as {:?} and this ragshift computes {:?}: \
                 row counts were compared, rows were not; run `ragshift verify` against the \
                 exported database if it still exists",
                manifest.checksum_scheme,
                ragshift_store::checksum::SCHEME
            ));
        }
    }
}

/// Reads and checks an export's manifest.
pub async fn read_manifest(
    from: &Location,
    s3: Option<&aws_sdk_s3::Client>,
    staging: &Path,
) -> Result<Manifest, ExportError> {
    let path = fetch(from, s3, MANIFEST, staging).await?;
    let text = std::fs::read(&path).map_err(|e| ExportError::Io {
        path: from.name_of(MANIFEST),
        error: e,
    })?;
    let m: Manifest = serde_json::from_slice(&text).map_err(|e| {
        ExportError::Refused(format!(
            "{} is not a ragshift export manifest ({e})",
            from.name_of(MANIFEST)
        ))
    })?;
    if m.format != FORMAT || m.version > VERSION {
        return Err(ExportError::Refused(format!(
            "{} is format {} version {}; this ragshift reads {FORMAT} up to version {VERSION}",
            from.name_of(MANIFEST),
            m.format,
            m.version
        )));
    }
    Ok(m)
}

/// The local path of a file of the export (downloaded into `staging` from S3).
async fn fetch(
    from: &Location,
    s3: Option<&aws_sdk_s3::Client>,
    name: &str,
    staging: &Path,
) -> Result<PathBuf, ExportError> {
    if name.contains("..") || name.starts_with('/') {
        return Err(ExportError::Refused(format!(
            "the manifest names a file outside the export: {name}"
        )));
    }
    match (from, s3) {
        (Location::Dir(dir), _) => Ok(dir.join(name)),
        (Location::S3 { .. }, Some(s3)) => {
            let local = staging.join(name);
            if let Some(parent) = local.parent() {
                std::fs::create_dir_all(parent).map_err(|e| ExportError::Io {
                    path: parent.display().to_string(),
                    error: e,
                })?;
            }
            download(s3, from, name, &local).await?;
            Ok(local)
        }
        (Location::S3 { .. }, None) => Err(ExportError::Refused(
            "an S3 location needs an S3 client".into(),
        )),
    }
}

/// Imports the export at `from` into `layout`'s table on `target`.
pub async fn import(
    from: &Location,
    s3: Option<&aws_sdk_s3::Client>,
    target: &ConnectSpec,
    layout: &Layout,
    opts: &ImportOptions,
) -> Result<ImportReport, ExportError> {
    let started = Instant::now();
    let staging = std::env::temp_dir().join(format!("ragshift-import-{}", std::process::id()));
    std::fs::create_dir_all(&staging).map_err(|e| ExportError::Io {
        path: staging.display().to_string(),
        error: e,
    })?;
    let result = import_staged(from, s3, target, layout, opts, &staging, started).await;
    let _ = std::fs::remove_dir_all(&staging);
    result
}

async fn import_staged(
    from: &Location,
    s3: Option<&aws_sdk_s3::Client>,
    target: &ConnectSpec,
    layout: &Layout,
    opts: &ImportOptions,
    staging: &Path,
    started: Instant,
) -> Result<ImportReport, ExportError> {
    let manifest = read_manifest(from, s3, staging).await?;
    // Every file is checked before anything is written.
    let mut files = Vec::new();
    let mut corrupted = Vec::new();
    for f in &manifest.files {
        let local = fetch(from, s3, &f.path, staging).await?;
        match sha256_file(&local) {
            Ok((sha, bytes)) if sha == f.sha256 && bytes == f.bytes => files.push((f, local)),
            Ok((sha, bytes)) => corrupted.push(format!(
                "{} (sha256 {sha}, {bytes} bytes; the manifest says {}, {} bytes)",
                from.name_of(&f.path),
                f.sha256,
                f.bytes
            )),
            Err(e) => corrupted.push(format!("{} ({e})", from.name_of(&f.path))),
        }
    }
    if !corrupted.is_empty() {
        return Err(ExportError::Corrupted(corrupted));
    }

    let server = target.label().to_owned();
    let db = ExportError::target(&server);
    let run_id = ulid::Ulid::new().to_string();
    // A version 2 manifest names its tables: they are recreated as they were (or loaded into
    // tables of the same shape). A version 1 manifest holds Bedrock Chat's five columns, loaded
    // into the target's layout.
    let tables_layout = crate::tables::chunk_layout(&manifest)
        .map(|l| crate::tables::renamed(&l, &l, true, &opts.rename));
    let layout = tables_layout.as_ref().unwrap_or(layout);
    let lock = TargetLock::acquire(target, layout, &format!("import run {run_id}"))
        .await
        .map_err(db)?;
    let mut client = connect(target, "ragshift import").await.map_err(db)?;
    let mut types: Vec<Type> = Vec::new();
    let tables = if tables_layout.is_some() {
        Some(crate::tables::prepare(&client, &manifest, &server, &opts.rename).await?)
    } else {
        schema::init_target(&mut client, layout, manifest.dimension)
            .await
            .map_err(db)?;
        types = column_types(&client, &layout.qualified(), &layout.column_list())
            .await
            .map_err(|e| db(StoreError::query("reading the target's column types", e)))?;
        None
    };

    opts.journal.ensure_schema(&client).await.map_err(db)?;
    let selection = serde_json::json!({
        "from": from.display(),
        "table": layout.display_name(),
        "files": manifest.files.len(),
    });
    // Runs of this target left `running` by a process that died are over: say so.
    opts.journal
        .fail_interrupted_runs(&client, RUN_KIND, &server, &run_id)
        .await
        .map_err(db)?;
    if let Err(e) = opts
        .journal
        .start_run(&client, &run_id, RUN_KIND, &server, &selection)
        .await
    {
        // A connection lost on the way leaves it unknown whether the run was recorded: then the
        // work may have started, as far as the journal is concerned.
        return Err(if client.is_closed() {
            ExportError::Stopped {
                state: format!("whether import run {run_id} was recorded is unknown (nothing was imported); run the same import again"),
                error: Box::new(db(e)),
            }
        } else {
            db(e)
        });
    }
    let units: Vec<(String, Option<String>)> = files
        .iter()
        .map(|(f, _)| (f.path.clone(), f.bot_id.clone()))
        .collect();
    // From here on the run is in the journal: it ends there `succeeded` or `failed` with why.
    let recorded = async {
        opts.journal
            .queue_units(&client, &run_id, "file", &units)
            .await
            .map_err(db)?;
        if let Some(tables) = &tables {
            let run = crate::tables::TablesRun {
                target,
                lock: &lock,
                run_id: &run_id,
                server: &server,
                from,
                manifest: &manifest,
                opts,
                started,
            };
            return run.load(&mut client, tables, &files).await;
        }
        let run = ImportRun {
            target,
            lock: &lock,
            run_id: &run_id,
            server: &server,
            from,
            layout,
            manifest: &manifest,
            types: &types,
            opts,
            started,
        };
        run.load(&mut client, &files).await
    }
    .await;
    match recorded {
        Ok(report) => {
            let (status, why) = match report.problems.first() {
                None => (Status::Succeeded, None),
                Some(p) => (
                    Status::Failed,
                    Some(format!(
                        "{} problem(s); the first, {}: {}",
                        report.problems.len(),
                        p.file,
                        p.error
                    )),
                ),
            };
            let value = serde_json::to_value(&report).unwrap_or_default();
            opts.journal.finish_run(&client, &run_id, status, &value, why.as_deref())
                .await
                .map_err(|e| ExportError::Stopped {
                    state: format!("the import itself ended, but run {run_id} could not be recorded as finished"),
                    error: Box::new(db(e)),
                })?;
            let _ = lock.release().await;
            Ok(report)
        }
        Err(error) => {
            // The run's own connection may be what failed: record it on a new one then.
            let recorded = if client.is_closed() {
                match connect(target, "ragshift import (journal)").await {
                    Ok(c) => opts.journal.fail_run(&c, &run_id, &error.to_string()).await,
                    Err(e) => Err(e),
                }
            } else {
                opts.journal
                    .fail_run(&client, &run_id, &error.to_string())
                    .await
            };
            if let Err(e) = recorded {
                tracing::error!("could not record the failure of import run {run_id} (the next import will): {e}");
            }
            Err(ExportError::Stopped {
                state: format!("import run {run_id} is recorded as failed: bots imported before keep their new rows, the others their old ones; run the same import again"),
                error: Box::new(error),
            })
        }
    }
}

/// The journal's name for import runs.
pub const RUN_KIND: &str = "import";

/// What one import run works with once it is in the journal.
struct ImportRun<'a> {
    target: &'a ConnectSpec,
    lock: &'a TargetLock,
    run_id: &'a str,
    server: &'a str,
    from: &'a Location,
    layout: &'a Layout,
    manifest: &'a Manifest,
    types: &'a [Type],
    opts: &'a ImportOptions,
    started: Instant,
}

impl ImportRun<'_> {
    /// Writes every bot's file (each in its own transaction, recorded with its journal unit), then
    /// the index and the comparison with the manifest.
    async fn load(
        &self,
        client: &mut Client,
        files: &[(&FileEntry, PathBuf)],
    ) -> Result<ImportReport, ExportError> {
        let ImportRun {
            target,
            lock,
            run_id,
            server,
            from,
            layout,
            manifest,
            types,
            opts,
            started,
        } = *self;
        let db = ExportError::target(server);
        let mut report = ImportReport::new(run_id, from, server, layout.display_name());
        let mut lost_lock: Option<String> = None;
        for (entry, local) in files {
            let problem = |error: String| BotProblem {
                bot_id: entry.bot_id.clone(),
                file: entry.path.clone(),
                error,
            };
            let opened = match &lost_lock {
                Some(why) => Err(format!("not imported: {why}")),
                None => RowFileReader::open(local, manifest.dimension)
                    .map_err(|e| format!("{} is unreadable: {e}", from.name_of(&entry.path))),
            };
            let failed = match opened {
                Err(why) => why,
                Ok(reader) => {
                    let same_scheme = manifest.checksum_scheme == ragshift_store::checksum::SCHEME;
                    let unit = (&opts.journal, run_id, entry.path.as_str());
                    let file = (*entry, reader, from.name_of(&entry.path));
                    match write_bot(client, lock, unit, layout, types, file, same_scheme).await {
                        Ok(n) => {
                            report.bots += 1;
                            report.rows += n;
                            continue;
                        }
                        Err(BotFailure::LockLost(e)) => {
                            lost_lock = Some(e.clone());
                            e
                        }
                        Err(BotFailure::Other(e)) => e,
                    }
                }
            };
            let result = UnitResult {
                error: Some(failed.clone()),
                ..UnitResult::default()
            };
            opts.journal
                .mark_finished(&*client, run_id, &entry.path, Status::Failed, &result)
                .await
                .map_err(db)?;
            report.problems.push(problem(failed));
        }
        if let Some(why) = lost_lock {
            // Nothing more may be written: another run may hold the table now.
            return Err(db(StoreError::new(
                ragshift_store::StoreErrorKind::LockLost,
                why,
            )));
        }
        if let Some(kind) = opts.vector_index {
            match ensure_vector_index_with(client, Some(target), layout, kind, &opts.index_build)
                .await
            {
                Ok(ragshift_store::index::IndexOutcome::Built { definition, .. }) => {
                    report.index = Some(definition)
                }
                Ok(ragshift_store::index::IndexOutcome::Present(i)) => {
                    report.index = Some(i.definition)
                }
                Err(e) => report.problems.push(BotProblem {
                    bot_id: None,
                    file: String::new(),
                    error: format!("building the vector index: {e}"),
                }),
            }
        }
        if opts.verify {
            let bots: Vec<String> = manifest
                .files
                .iter()
                .filter_map(|f| f.bot_id.clone())
                .collect();
            let same_scheme = manifest.checksum_scheme == ragshift_store::checksum::SCHEME;
            // The rows are written by now: a failure to read them back is a problem of the result,
            // not a reason to stop as if nothing had happened.
            let sums = match bot_checksums(&*client, layout, Some(&bots)).await {
                Ok(s) => s,
                Err(e) => {
                    report.problems.push(BotProblem {
                        bot_id: None,
                        file: String::new(),
                        error: format!(
                            "comparing the target's checksums with the export's failed: {}",
                            db(e)
                        ),
                    });
                    report.seconds = started.elapsed().as_secs_f64();
                    return Ok(report);
                }
            };
            let recorded = recorded_sums(&manifest.files, None);
            let found = compare_groups(&recorded, &sums, Match::of(same_scheme));
            let checked: Vec<(&FileEntry, &str)> = manifest
                .files
                .iter()
                .filter(|f| !report.problems.iter().any(|p| p.file == f.path))
                .filter_map(|f| Some((f, f.bot_id.as_deref()?)))
                .collect();
            let differing = differing_files(checked, &found, "the target");
            report.problems.extend(differing);
            report.compared_with(manifest);
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}

/// Replaces one bot's rows with the file's in one transaction, which commits only when the rows
/// it wrote have the row count and (same scheme) the checksum the export recorded for the bot:
/// a file altered after the export, even with its SHA-256 recomputed, leaves the old rows. The
/// file is streamed batch by batch into the COPY, so memory holds one batch whatever the bot's
/// size; a row of another bot fails the bot (its transaction rolls back).
async fn write_bot(
    client: &mut Client,
    lock: &TargetLock,
    (journal, run_id, unit_id): (&Journal, &str, &str),
    layout: &Layout,
    types: &[Type],
    (entry, mut reader, file_name): (&FileEntry, RowFileReader, String),
    same_scheme: bool,
) -> Result<u64, BotFailure> {
    let bot = entry.bot_id.as_deref();
    let who = bot
        .map(|b| format!("bot {b}"))
        .unwrap_or_else(|| "rows without a bot id".into());
    let q = |what: &str| {
        let what = format!("{what} for {who}");
        move |e| BotFailure::Other(StoreError::query(what, e).to_string())
    };
    let tx = client
        .transaction()
        .await
        .map_err(q("starting the transaction"))?;
    let botcol = quote_ident(&layout.bot);
    match bot {
        Some(b) => tx
            .execute(
                &format!("DELETE FROM {} WHERE {botcol} = $1", layout.qualified()),
                &[&b],
            )
            .await
            .map_err(q("deleting old rows"))?,
        None => tx
            .execute(
                &format!("DELETE FROM {} WHERE {botcol} IS NULL", layout.qualified()),
                &[],
            )
            .await
            .map_err(q("deleting old rows"))?,
    };
    let mut copy = RowCopy::start(&tx, &layout.qualified(), &layout.column_list(), types)
        .await
        .map_err(q("starting COPY"))?;
    while let Some(rows) = reader
        .next_batch()
        .map_err(|e| BotFailure::Other(format!("{file_name} is unreadable: {e}")))?
    {
        for r in rows {
            if r.bot_id.as_deref() != bot {
                return Err(BotFailure::Other(format!(
                    "{} holds row {} of bot {:?}, not of {who}",
                    entry.path,
                    r.id.as_deref().unwrap_or("?"),
                    r.bot_id
                )));
            }
            let v = r.embedding.map(Vector::from);
            let values: [&(dyn ToSql + Sync); 5] = [&r.id, &r.bot_id, &r.content, &r.source, &v];
            copy.write(&values).await.map_err(q("writing rows"))?;
        }
    }
    let n = copy.finish().await.map_err(copy_failed(&who))?;
    let filter = match bot {
        Some(_) => format!("rtrim({botcol}::text) = $1"),
        None => format!("{botcol} IS NULL AND $1::text IS NULL"),
    };
    let (count, checksum) = filtered_checksum(
        &tx,
        layout,
        &filter,
        &[&bot.map(str::trim_end)],
        format!("checksumming the written rows for {who}"),
    )
    .await
    .map_err(|e| BotFailure::Other(e.to_string()))?;
    if count != entry.rows || (same_scheme && checksum != entry.checksum) {
        // Dropping the transaction rolls it back: the bot keeps its old rows.
        return Err(BotFailure::Other(format!(
            "the rows of {} don't match what the export recorded for {who} ({count} rows with checksum {checksum}; the manifest says {} rows with checksum {}): the file was changed after the export; {who} keeps its old rows",
            entry.path, entry.rows, entry.checksum
        )));
    }
    let result = UnitResult {
        row_count: Some(count),
        checksum: Some(checksum),
        ..UnitResult::default()
    };
    journal
        .mark_finished(&tx, run_id, unit_id, Status::Succeeded, &result)
        .await
        .map_err(|e| BotFailure::Other(format!("recording {who} in the journal: {e}")))?;
    // Last, right before the commit: a run that lost its lock commits nothing more.
    lock.ensure_held()
        .await
        .map_err(|e| BotFailure::LockLost(e.to_string()))?;
    tx.commit().await.map_err(q("committing"))?;
    Ok(n)
}

/// The row counts and checksums the export recorded, one per file, keyed by its bot id: files
/// without one are keyed `null`, or left out when it is `None`.
pub(crate) fn recorded_sums<'a>(
    files: impl IntoIterator<Item = &'a FileEntry>,
    null: Option<&str>,
) -> Vec<BotChecksum> {
    files
        .into_iter()
        .filter_map(|f| {
            let key = f.bot_id.as_deref().or(null)?;
            Some(BotChecksum {
                bot_id: key.to_owned(),
                rows: f.rows,
                checksum: f.checksum.clone(),
            })
        })
        .collect()
}

/// The files (each with its key) whose rows after the import differ from what the export
/// recorded, as `found` compared them, as problems naming `holder`.
pub(crate) fn differing_files<'a>(
    files: impl IntoIterator<Item = (&'a FileEntry, &'a str)>,
    found: &GroupComparison,
    holder: &str,
) -> Vec<BotProblem> {
    files
        .into_iter()
        .filter_map(|(f, key)| {
            let got = found.difference(key)?.target();
            let got = got.map(|g| (g.rows, g.checksum.as_str()));
            Some(mismatch(Some(f), holder, got, (f.rows, &f.checksum)))
        })
        .collect()
}

/// A file (`None`: a whole table) whose rows in `holder` differ after the import from what the
/// export recorded (`want`); `got` is `None` when there are none.
pub(crate) fn mismatch(
    f: Option<&FileEntry>,
    holder: &str,
    got: Option<(i64, &str)>,
    want: (i64, &str),
) -> BotProblem {
    let (rows, sum) = got.unwrap_or((0, "-"));
    BotProblem {
        bot_id: f.and_then(|f| f.bot_id.clone()),
        file: f.map(|f| f.path.clone()).unwrap_or_default(),
        error: format!(
            "after import {holder} holds {rows} rows with checksum {sum}, the export recorded {} rows with checksum {}",
            want.0, want.1
        ),
    }
}

/// A failed end of an import's COPY, for `who` (the bot, key or table written).
pub(crate) fn copy_failed(who: &str) -> impl Fn(CopyFailure) -> BotFailure + '_ {
    move |e| {
        BotFailure::Other(match e {
            CopyFailure::Server(e) => {
                StoreError::query(format!("finishing COPY for {who}"), e).to_string()
            }
            CopyFailure::Count { written, sent } => {
                format!("COPY of {who} wrote {written} rows, {sent} were sent")
            }
        })
    }
}

/// Why one bot's file was not imported.
pub(crate) enum BotFailure {
    /// The run's target lock is gone: this and every later bot stay as they were.
    LockLost(String),
    /// This bot only.
    Other(String),
}
