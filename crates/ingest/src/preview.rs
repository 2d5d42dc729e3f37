//! `ragshift chunk <file-or-url>...`: shows how sources become chunks, so a user can check the
//! result before paying for embeddings. The CLI calls [`preview`] and prints either
//! [`PreviewReport::render`] or the report as JSON, exiting 1 when [`PreviewReport::any_failed`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use ragshift_model::{Chunk, EmbeddingParams};
use serde::Serialize;

use crate::error::SourceError;
use crate::ingest::{Ingestor, SourceInput};
use crate::loader::LoaderKind;
use crate::options::IngestOptions;
use crate::outcome::{SourceOutcome, SourceReport};
use crate::ErrorKind;

/// The preview of every source given, in the JSON shape
/// `{"sources":[{"source","loader","status","error","chars","chunks":[{"index","text","chars"}]}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewReport {
    /// One entry per source (a sitemap contributes one per page).
    pub sources: Vec<PreviewSource>,
}

/// One source's preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewSource {
    /// The file path or URL.
    pub source: String,
    /// The loader used, when the format was recognised.
    pub loader: Option<LoaderKind>,
    /// `loaded` or `failed`.
    pub status: PreviewStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Characters of text loaded.
    pub chars: usize,
    /// The chunks, in order.
    pub chunks: Vec<PreviewChunk>,
    /// Non-fatal findings, shown in the human output only (the JSON shape is fixed).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Whether a source loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PreviewStatus {
    /// Loaded and split.
    Loaded,
    /// Not loaded; see `error`.
    Failed,
}

/// One chunk as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewChunk {
    /// Position within its document, from 0.
    pub index: usize,
    /// The text.
    pub text: String,
    /// Its length in characters.
    pub chars: usize,
}

impl PreviewReport {
    /// Whether any source failed (the command then exits 1).
    pub fn any_failed(&self) -> bool {
        self.sources
            .iter()
            .any(|s| s.status == PreviewStatus::Failed)
    }

    /// The human-readable preview: per source the loader, the character count and the chunks.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.sources {
            let (no_loader, outcome) = match s.status {
                PreviewStatus::Loaded => (
                    "?",
                    format!("{} chars, {} chunk(s)", s.chars, s.chunks.len()),
                ),
                PreviewStatus::Failed => (
                    "-",
                    format!("FAILED: {}", s.error.as_deref().unwrap_or("unknown error")),
                ),
            };
            let loader = s.loader.map_or(no_loader, LoaderKind::as_str);
            let _ = writeln!(out, "== {} [{loader}] {outcome}", s.source);
            for w in &s.warnings {
                let _ = writeln!(out, "   warning: {w}");
            }
            for c in &s.chunks {
                let _ = writeln!(out, "-- chunk {} ({} chars)", c.index, c.chars);
                out.push_str(&c.text);
                out.push('\n');
            }
            out.push('\n');
        }
        let failed = self
            .sources
            .iter()
            .filter(|s| s.status == PreviewStatus::Failed)
            .count();
        let chunks: usize = self.sources.iter().map(|s| s.chunks.len()).sum();
        let _ = writeln!(
            out,
            "{} source(s), {} failed, {} chunk(s)",
            self.sources.len(),
            failed,
            chunks
        );
        out
    }
}

/// Loads and splits each input (a file path, or an `http(s)://` URL; a URL serving a sitemap
/// is expanded into its pages) with the given chunking parameters.
pub async fn preview(
    inputs: &[String],
    params: EmbeddingParams,
    opts: &IngestOptions,
) -> PreviewReport {
    let ingestor = match Ingestor::new(opts.clone()) {
        Ok(i) => i,
        Err(kind) => {
            return PreviewReport {
                sources: inputs
                    .iter()
                    .map(|i| {
                        from_report(
                            SourceReport::failed(SourceError::new(i, kind.clone()), None),
                            &mut HashMap::new(),
                        )
                    })
                    .collect(),
            }
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Chunk>>(16);
    let collector = tokio::spawn(async move {
        let mut by_source: HashMap<String, Vec<Chunk>> = HashMap::new();
        while let Some(batch) = rx.recv().await {
            for c in batch {
                by_source.entry(c.source.clone()).or_default().push(c);
            }
        }
        by_source
    });
    let mut reports = Vec::new();
    for input in inputs {
        let source_input = if input.starts_with("http://") || input.starts_with("https://") {
            SourceInput::Url(input.clone())
        } else if input.contains("://") {
            reports.push(SourceReport::failed(
                SourceError::new(
                    input,
                    ErrorKind::Unsupported {
                        what: "only local files and http(s) URLs can be previewed; download \
                               the object and pass its path"
                            .into(),
                    },
                ),
                None,
            ));
            continue;
        } else {
            SourceInput::Path(PathBuf::from(input))
        };
        let report = ingestor.ingest(source_input, &params, &tx).await;
        reports.extend(report.sources);
    }
    drop(tx);
    let mut chunks = collector.await.unwrap_or_default();
    PreviewReport {
        sources: reports
            .into_iter()
            .map(|r| from_report(r, &mut chunks))
            .collect(),
    }
}

fn from_report(r: SourceReport, chunks: &mut HashMap<String, Vec<Chunk>>) -> PreviewSource {
    let mine = chunks.remove(&r.source).unwrap_or_default();
    match r.outcome {
        SourceOutcome::Loaded { chars, .. } => PreviewSource {
            source: r.source,
            loader: r.loader,
            status: PreviewStatus::Loaded,
            error: None,
            chars,
            chunks: mine
                .into_iter()
                .map(|c| PreviewChunk {
                    index: c.index,
                    chars: c.text.chars().count(),
                    text: c.text,
                })
                .collect(),
            warnings: r.warnings,
        },
        SourceOutcome::Failed { error, .. } => PreviewSource {
            source: r.source,
            loader: r.loader,
            status: PreviewStatus::Failed,
            error: Some(error.kind.to_string()),
            chars: 0,
            chunks: Vec::new(),
            warnings: r.warnings,
        },
    }
}
