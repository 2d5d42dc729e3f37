//! The worker for one bot, the job the platform ran as an ECS task per bot: fetch the bot's
//! sources, load and split them, embed the chunks, then replace the bot's rows and record its
//! journal row in ONE transaction, and set `SyncStatus` as the platform's worker does.
//!
//! A bot never ends half-written: if anything fails before the commit, its old rows stay.
//! Chunks are embedded while later sources are still loading (a bounded channel between the
//! two), and written once the bot's outcome is known, because a source that fails late must not
//! leave its early chunks behind. Until then the embedded rows wait on disk ([`Spool`]), and
//! they are read back and written in batches of `write_batch` rows: a worker's memory holds a
//! batch, not the bot.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ragshift_documents::DocumentStore;
use ragshift_embed::Embedder;
use ragshift_ingest::{
    decide, BotOutcome, Chunk, ErrorKind, Ingestor, OutcomePolicy, SourceError, SourceInput,
    SourceOutcome, SourceReport,
};
use ragshift_model::{Bot, StoredRow, SyncStatus};
use ragshift_registry::{Registry, RegistryError, StatusUpdate};
use ragshift_store::journal::{Journal, Status, UnitResult};
use ragshift_store::writer::BotReplacement;
use ragshift_store::{connect, BotRows, ConnectSpec};
use serde_json::json;
use tokio::sync::mpsc;

use crate::events::{BotFinished, Observer, SourceResult};
use crate::spool::{Spool, SpoolReader};
use crate::{REASON_INSERTED, REASON_NO_CONTENT};

/// How workers behave.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Let a bot succeed with a warning when some (not all) of its sources failed.
    pub allow_partial: bool,
    /// Write `SyncStatus` to the registry (off with `--no-status-updates`).
    pub status_updates: bool,
    /// Load and split only: no embedding, no writes anywhere.
    pub dry_run: bool,
    /// Chunks handed to the embedder at once (it splits them into provider batches and runs
    /// several requests in flight).
    pub embed_group: usize,
    /// Rows per COPY batch.
    pub write_batch: usize,
    /// Check before each bot's commit that the run's coordinator (`rebuild run <id>`) still
    /// holds the target lock; off for a standalone `embed-bot`, which has no coordinator.
    pub check_run_lock: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            allow_partial: false,
            status_updates: true,
            dry_run: false,
            embed_group: 256,
            write_batch: 1000,
            check_run_lock: false,
        }
    }
}

/// One bot's job within a run.
#[derive(Debug, Clone)]
pub struct BotJob {
    /// The run (journal) id.
    pub run_id: String,
    /// The run journal in the target (`[run] journal_schema`), where the bot's result is
    /// recorded in the transaction that writes its rows.
    pub journal: Journal,
    /// The id written to `LastExecId`; a later run with another id owns the bot.
    pub exec_id: String,
    /// The bot.
    pub bot: Bot,
}

/// Everything a worker needs, shared by all jobs of a run: assembled by the caller from its
/// parts (see `components::BotSources::worker` for the configured ones).
pub struct Worker {
    /// Fetches, loads and splits the bot's sources.
    pub ingestor: Ingestor,
    /// Embeds the chunks.
    pub embedder: Arc<dyn Embedder>,
    /// Where uploaded files are.
    pub documents: Arc<dyn DocumentStore>,
    /// Where `SyncStatus` is set.
    pub registry: Arc<dyn Registry>,
    /// The target database.
    pub target: ConnectSpec,
    /// The chunk table and how it keeps bots (the `[target] layout`).
    pub rows: BotRows,
    /// How the worker behaves.
    pub options: WorkerOptions,
}

/// Why a bot failed, before it is turned into a report.
struct Failed(String);

impl Worker {
    /// Runs one bot to its end and reports it. Never panics on bad input: every failure becomes
    /// a failed bot with a reason (and, unless dry-running, a journal row and a FAILED status).
    pub async fn run(&self, job: &BotJob, observer: &dyn Observer) -> BotFinished {
        let started = Instant::now();
        let key = &job.bot.key;
        let mut client = None;
        if !self.options.dry_run {
            match self.begin(job).await {
                Ok(c) => client = Some(c),
                Err(Failed(reason)) => {
                    return self
                        .finish_failed(job, None, reason, Vec::new(), started)
                        .await;
                }
            }
        }
        let (reports, embedded) = self.load_and_embed(job, observer).await;
        let sources = source_results(&reports);
        let outcome = decide(
            &reports,
            OutcomePolicy {
                allow_partial: self.options.allow_partial,
            },
        );
        let warning = match outcome {
            BotOutcome::Failed { reason } => {
                return self
                    .finish_failed(job, client.as_mut(), reason, sources, started)
                    .await;
            }
            BotOutcome::Succeeded { warning } => warning,
        };
        let spool = match embedded {
            Ok(spool) => spool,
            Err(reason) => {
                return self
                    .finish_failed(job, client.as_mut(), reason, sources, started)
                    .await;
            }
        };
        // With --allow-partial, chunks a failed source handed on before failing are dropped.
        let failed: HashSet<String> = reports
            .iter()
            .filter(|r| r.error().is_some())
            .map(|r| r.source.clone())
            .collect();
        let mut rows = match spool.into_reader() {
            Ok(r) => Kept {
                reader: r,
                failed,
                batch: self.options.write_batch,
            },
            Err(e) => {
                let reason = format!("reading back the embedded rows failed: {e}");
                return self
                    .finish_failed(job, client.as_mut(), reason, sources, started)
                    .await;
            }
        };
        let counted = match client.as_mut() {
            Some(client) => self.write(job, client, &mut rows, &sources, &warning).await,
            None => rows.count(),
        };
        let (chunks, chars) = match counted {
            Ok(c) => c,
            Err(Failed(reason)) => {
                return self
                    .finish_failed(job, client.as_mut(), reason, sources, started)
                    .await;
            }
        };
        if client.is_some() {
            let reason = if chunks == 0 {
                REASON_NO_CONTENT
            } else {
                REASON_INSERTED
            };
            self.set_status(job, SyncStatus::Succeeded, reason, true)
                .await;
        }
        if let Some(w) = &warning {
            tracing::warn!(bot = %key.bot_id, "{w}");
        }
        BotFinished::new(key, Ok(((chunks, chars), warning)), sources, started)
    }

    /// Opens the journal connection, marks the unit running and the bot RUNNING.
    async fn begin(&self, job: &BotJob) -> Result<tokio_postgres::Client, Failed> {
        let key = &job.bot.key;
        let app = format!("ragshift worker {}", key.bot_id);
        let client = connect(&self.target, &app)
            .await
            .map_err(|e| Failed(format!("cannot reach the target: {e}")))?;
        job.journal
            .mark_running(&client, &job.run_id, &key.bot_id, Some(&job.exec_id))
            .await
            .map_err(|e| Failed(format!("cannot record the job in the journal: {e}")))?;
        if self.options.status_updates {
            let update = StatusUpdate {
                status: SyncStatus::Running,
                reason: String::new(),
                exec_id: job.exec_id.clone(),
                expected_exec_id: None,
            };
            if let Err(e) = self.registry.set_status(key, &update).await {
                return Err(Failed(format!("cannot set RUNNING in the registry: {e}")));
            }
        }
        Ok(client)
    }

    /// Feeds every source through the ingestor and the embedder; returns the per-source reports
    /// and the embedded rows, spooled to disk (or why embedding failed).
    async fn load_and_embed(
        &self,
        job: &BotJob,
        observer: &dyn Observer,
    ) -> (Vec<SourceReport>, Result<Spool, String>) {
        let bot = &job.bot;
        let (tx, mut rx) = mpsc::channel::<Vec<Chunk>>(4);
        let embedder = self.embedder.clone();
        let dry_run = self.options.dry_run;
        let group = self.options.embed_group.max(1);
        let bot_id = bot.key.bot_id.clone();
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<(u64, u64)>();
        let consumer = tokio::spawn(async move {
            let mut spool = Spool::new().map_err(|e| {
                format!("cannot create a temporary file for the embedded rows (TMPDIR): {e}")
            });
            let mut pending: Vec<Chunk> = Vec::new();
            while let Some(batch) = rx.recv().await {
                let _ = progress_tx.send((batch.len() as u64, 0));
                let Ok(rows) = spool.as_mut() else {
                    continue; // keep draining so loading can finish and report
                };
                pending.extend(batch);
                if pending.len() >= group {
                    let n = pending.len() as u64;
                    if let Err(e) =
                        embed_into(&*embedder, &bot_id, &mut pending, rows, dry_run).await
                    {
                        spool = Err(e);
                    }
                    let _ = progress_tx.send((0, n));
                }
            }
            if let Ok(rows) = spool.as_mut() {
                if !pending.is_empty() {
                    let n = pending.len() as u64;
                    if let Err(e) =
                        embed_into(&*embedder, &bot_id, &mut pending, rows, dry_run).await
                    {
                        spool = Err(e);
                    }
                    let _ = progress_tx.send((0, n));
                }
            }
            spool
        });

        let mut reports = Vec::new();
        let ingest = async {
            for filename in &bot.knowledge.filenames {
                let input = match self.documents.get(&bot.key, filename).await {
                    Ok(doc) => SourceInput::Bytes {
                        source: doc.source_uri,
                        name_hint: filename.clone(),
                        bytes: Bytes::from(doc.bytes),
                    },
                    Err(e) => {
                        let source = self.documents.source_uri(&bot.key, filename);
                        reports.push(SourceReport::failed(
                            SourceError::new(
                                source,
                                ErrorKind::Io {
                                    detail: e.to_string(),
                                },
                            ),
                            None,
                        ));
                        continue;
                    }
                };
                let r = self
                    .ingestor
                    .ingest(input, &bot.embedding_params, &tx)
                    .await;
                reports.extend(r.sources);
            }
            for url in &bot.knowledge.source_urls {
                let r = self
                    .ingestor
                    .ingest(SourceInput::Url(url.clone()), &bot.embedding_params, &tx)
                    .await;
                reports.extend(r.sources);
            }
            for sitemap in &bot.knowledge.sitemap_urls {
                let r = self
                    .ingestor
                    .ingest(
                        SourceInput::Sitemap(sitemap.clone()),
                        &bot.embedding_params,
                        &tx,
                    )
                    .await;
                reports.extend(r.sources);
            }
            drop(tx);
        };
        let progress = async {
            while let Some((found, embedded)) = progress_rx.recv().await {
                if found > 0 {
                    observer.chunks_found(found);
                }
                if embedded > 0 {
                    observer.chunks_embedded(embedded);
                }
            }
        };
        let ((), ()) = tokio::join!(ingest, progress);
        let embedded = match consumer.await {
            Ok(r) => r,
            Err(e) => Err(format!("the embedding task ended unexpectedly: {e}")),
        };
        (reports, embedded)
    }

    /// Replaces the bot's rows and records its journal row in one transaction; returns the rows
    /// written and their characters.
    async fn write(
        &self,
        job: &BotJob,
        client: &mut tokio_postgres::Client,
        rows: &mut Kept,
        sources: &[SourceResult],
        warning: &Option<String>,
    ) -> Result<(usize, usize), Failed> {
        let bot_id = &job.bot.key.bot_id;
        let fail = |what: &str, e: ragshift_store::StoreError| Failed(format!("{what}: {e}"));
        // Who this session is, so that after a lost COMMIT answer it can be ended for sure
        // before the journal is read.
        let session = ragshift_store::session::session_id(&*client)
            .await
            .map_err(|e| fail("cannot start writing", e))?;
        let mut rep = BotReplacement::begin(client, &self.rows, bot_id)
            .await
            .map_err(|e| fail("cannot start writing", e))?;
        let (mut chunks, mut chars) = (0, 0);
        while let Some(batch) = rows.next()? {
            chunks += batch.len();
            chars += batch
                .iter()
                .map(|r| r.content.chars().count())
                .sum::<usize>();
            rep.write(batch)
                .await
                .map_err(|e| fail("writing rows failed", e))?;
        }
        let (tx, counts) = rep
            .finish()
            .await
            .map_err(|e| fail("writing rows failed", e))?;
        let sum = self
            .rows
            .checksum(&tx, bot_id)
            .await
            .map_err(|e| fail("checksumming the new rows failed", e))?;
        let result = UnitResult {
            row_count: Some(counts.written as i64),
            checksum: sum.map(|s| s.checksum),
            error: warning.clone(),
            detail: Some(json!({ "sources": sources, "replaced_rows": counts.deleted })),
        };
        job.journal
            .mark_finished(&tx, &job.run_id, bot_id, Status::Succeeded, &result)
            .await
            .map_err(|e| fail("recording the result failed", e))?;
        if self.options.check_run_lock {
            let holder = crate::rebuild::lock_holder(&job.run_id);
            ragshift_store::lock::ensure_run_holds(&tx, &self.rows.layout, &holder)
                .await
                .map_err(|e| fail("not committed", e))?;
        }
        match tx.commit().await {
            Ok(()) => Ok((chunks, chars)),
            Err(e) if ragshift_retry::pg::outcome_unknown(&e) => self
                .committed_after_all(job, &session)
                .await
                .map(|()| (chunks, chars))
                .map_err(|why| Failed(format!("committing the bot's rows failed: {e}; {why}"))),
            Err(e) => Err(Failed(format!("committing the bot's rows failed: {e}"))),
        }
    }

    /// After a COMMIT whose answer was lost: ends the old session, then asks the journal (which
    /// commits with the rows) whether the bot's rows committed. `Ok` when they did.
    async fn committed_after_all(
        &self,
        job: &BotJob,
        old: &ragshift_store::session::SessionId,
    ) -> Result<(), String> {
        let bot_id = &job.bot.key.bot_id;
        let client = connect(&self.target, &format!("ragshift worker {bot_id} (check)"))
            .await
            .map_err(|e| format!("whether they committed is unknown: {e}"))?;
        ragshift_store::session::end_session(&client, old)
            .await
            .map_err(|e| e.to_string())?;
        let units = job
            .journal
            .units(&client, &job.run_id)
            .await
            .map_err(|e| format!("whether they committed is unknown: {e}"))?;
        let done = units.iter().any(|u| {
            u.unit_id == *bot_id
                && u.status == Status::Succeeded
                && u.exec_id.as_deref() == Some(job.exec_id.as_str())
        });
        if done {
            tracing::info!(bot = %bot_id, "the answer to the bot's COMMIT was lost, but the journal says it committed");
            Ok(())
        } else {
            Err("the journal says they did not commit: the bot keeps its old rows".to_owned())
        }
    }

    async fn finish_failed(
        &self,
        job: &BotJob,
        client: Option<&mut tokio_postgres::Client>,
        reason: String,
        sources: Vec<SourceResult>,
        started: Instant,
    ) -> BotFinished {
        let key = &job.bot.key;
        tracing::debug!(bot = %key.bot_id, "failed: {reason}");
        if let Some(client) = client {
            let result = UnitResult {
                error: Some(reason.clone()),
                detail: Some(json!({ "sources": sources })),
                ..UnitResult::default()
            };
            if let Err(e) = job
                .journal
                .mark_finished(&*client, &job.run_id, &key.bot_id, Status::Failed, &result)
                .await
            {
                tracing::error!(bot = %key.bot_id, "cannot record the failure in the journal: {e}");
            }
            self.set_status(job, SyncStatus::Failed, &reason, true)
                .await;
        }
        BotFinished::new(key, Err(reason), sources, started)
    }

    /// Sets the final status, only if this run still owns the bot (`LastExecId`).
    async fn set_status(&self, job: &BotJob, status: SyncStatus, reason: &str, owned: bool) {
        if !self.options.status_updates || self.options.dry_run {
            return;
        }
        let update = StatusUpdate {
            status,
            reason: reason.to_owned(),
            exec_id: job.exec_id.clone(),
            expected_exec_id: owned.then(|| job.exec_id.clone()),
        };
        match self.registry.set_status(&job.bot.key, &update).await {
            Ok(_) => {}
            Err(e @ (RegistryError::Stale { .. } | RegistryError::BotGone { .. })) => {
                tracing::warn!(bot = %job.bot.key.bot_id, "{e}");
            }
            Err(e) => {
                tracing::error!(bot = %job.bot.key.bot_id, "cannot set {status} in the registry: {e}");
            }
        }
    }
}

/// The spooled rows of a bot read back in batches, without those of the sources that failed
/// (with --allow-partial, chunks a failed source handed on before failing are dropped).
struct Kept {
    reader: SpoolReader,
    failed: HashSet<String>,
    batch: usize,
}

impl Kept {
    /// The next batch of rows kept, `None` at the end.
    fn next(&mut self) -> Result<Option<Vec<StoredRow>>, Failed> {
        loop {
            let batch = self
                .reader
                .next_batch(self.batch)
                .map_err(|e| Failed(format!("reading back the embedded rows failed: {e}")))?;
            if batch.is_empty() {
                return Ok(None);
            }
            let kept: Vec<StoredRow> = batch
                .into_iter()
                .filter(|r| !self.failed.contains(&r.source))
                .collect();
            if !kept.is_empty() {
                return Ok(Some(kept));
            }
        }
    }

    /// Rows kept and their characters, without writing them (a dry run).
    fn count(&mut self) -> Result<(usize, usize), Failed> {
        let (mut chunks, mut chars) = (0, 0);
        while let Some(batch) = self.next()? {
            chunks += batch.len();
            chars += batch
                .iter()
                .map(|r| r.content.chars().count())
                .sum::<usize>();
        }
        Ok((chunks, chars))
    }
}

/// Embeds `pending` (emptying it) and spools the rows; in a dry run spools them unembedded
/// (to be counted).
async fn embed_into(
    embedder: &dyn Embedder,
    bot_id: &str,
    pending: &mut Vec<Chunk>,
    rows: &mut Spool,
    dry_run: bool,
) -> Result<(), String> {
    let spooled = |e: std::io::Error| format!("spooling the embedded rows failed: {e}");
    let chunks = std::mem::take(pending);
    if dry_run {
        for c in chunks {
            rows.push(&StoredRow {
                id: String::new(),
                bot_id: bot_id.to_owned(),
                content: c.text,
                source: c.source,
                embedding: Vec::new(),
            })
            .map_err(spooled)?;
        }
        return Ok(());
    }
    let texts: Vec<String> = chunks.iter().map(|c| c.text.clone()).collect();
    let out = embedder
        .embed_documents(&texts)
        .await
        .map_err(|e| format!("embedding failed: {e}"))?;
    if out.vectors.len() != chunks.len() {
        return Err(format!(
            "embedding failed: the provider returned {} vectors for {} texts",
            out.vectors.len(),
            chunks.len()
        ));
    }
    for (chunk, vector) in chunks.into_iter().zip(out.vectors) {
        rows.push(&StoredRow {
            id: ulid::Ulid::new().to_string(),
            bot_id: bot_id.to_owned(),
            content: chunk.text,
            source: chunk.source,
            embedding: vector,
        })
        .map_err(spooled)?;
    }
    Ok(())
}

/// Per-source results in the shape of `bot_finished` events.
pub fn source_results(reports: &[SourceReport]) -> Vec<SourceResult> {
    reports
        .iter()
        .map(|r| match &r.outcome {
            SourceOutcome::Loaded { chunks, .. } => SourceResult {
                source: r.source.clone(),
                status: "loaded",
                chunks: *chunks,
                error: None,
            },
            SourceOutcome::Failed { error, .. } => SourceResult {
                source: r.source.clone(),
                status: "failed",
                chunks: 0,
                error: Some(error.kind.to_string()),
            },
        })
        .collect()
}
