//! The pipeline for one source: get its bytes (file, object, stream, URL, sitemap), pick the
//! loader, turn it into text, split it, and hand the chunks on in bounded batches, recording a
//! [`SourceReport`] whatever happens.
//!
//! Memory: plain text, Markdown and CSV from a file or a stream are decoded and split block by
//! block ([`StreamSplitter`]), so a 200 MB text file needs a few hundred KiB of buffers, not
//! 200 MB several times over; the other formats need the whole document and are capped by
//! `max_document_bytes` / `max_body_bytes`. Chunks go out through a bounded
//! [`tokio::sync::mpsc`] channel in batches of `batch_size`, so a slow embedder slows the
//! reader instead of filling memory. Parsing and splitting run on blocking threads, never on
//! the async runtime's workers.

use std::fmt;
use std::fs::File;
use std::io::{Cursor, Read};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use ragshift_model::{Chunk, EmbeddingParams, Knowledge};
use tokio::sync::mpsc::Sender;

use crate::encoding::TextStream;
use crate::error::{ErrorKind, SourceError};
use crate::fetch::{is_youtube, Fetcher};
use crate::loader::{self, CsvRenderer, Detected, Hint, LoaderKind};
use crate::options::IngestOptions;
use crate::outcome::{SourceOutcome, SourceReport};
use crate::sitemap;
use crate::splitter::{Splitter, StreamSplitter};

/// Bytes looked at to detect the format of a streamed source.
const HEAD_BYTES: usize = 8192;

/// One source of a bot, in the form the caller has it.
pub enum SourceInput {
    /// A local file; its source string is the path as given.
    Path(PathBuf),
    /// A document already in memory, such as an S3 object; `source` is what chunks will carry
    /// (`s3://bucket/key`), `name_hint` its file name or key (for the extension).
    Bytes {
        /// The source string chunks carry.
        source: String,
        /// A file name or key whose extension hints at the format.
        name_hint: String,
        /// The document.
        bytes: Bytes,
    },
    /// A document as a blocking byte stream (an S3 body bridged with
    /// `tokio_util::io::SyncIoBridge`, say); text formats are split while reading.
    Reader {
        /// The source string chunks carry.
        source: String,
        /// A file name or key whose extension hints at the format.
        name_hint: String,
        /// The stream; read on a blocking thread.
        reader: Box<dyn Read + Send>,
    },
    /// A web page or a document behind a URL (a sitemap URL is expanded too).
    Url(String),
    /// A sitemap or sitemap index; each page becomes a source.
    Sitemap(String),
}

impl SourceInput {
    /// The source string this input's chunks (or its failure) will carry.
    pub fn source(&self) -> String {
        match self {
            Self::Path(p) => p.display().to_string(),
            Self::Bytes { source, .. } | Self::Reader { source, .. } => source.clone(),
            Self::Url(u) | Self::Sitemap(u) => u.clone(),
        }
    }

    /// The URL and sitemap sources of a bot's knowledge (its files live in the object store
    /// and are turned into [`SourceInput::Bytes`] or [`SourceInput::Reader`] by the caller).
    pub fn web_sources(knowledge: &Knowledge) -> Vec<SourceInput> {
        knowledge
            .source_urls
            .iter()
            .map(|u| Self::Url(u.clone()))
            .chain(
                knowledge
                    .sitemap_urls
                    .iter()
                    .map(|u| Self::Sitemap(u.clone())),
            )
            .collect()
    }
}

impl fmt::Debug for SourceInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::Path(_) => "Path",
            Self::Bytes { .. } => "Bytes",
            Self::Reader { .. } => "Reader",
            Self::Url(_) => "Url",
            Self::Sitemap(_) => "Sitemap",
        };
        write!(f, "{kind}({})", self.source())
    }
}

/// What ingesting one or more inputs produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// One report per source (a sitemap contributes one per page, plus one per failed child
    /// sitemap, or a single failed report when the sitemap itself failed).
    pub sources: Vec<SourceReport>,
    /// Things cut off by caps (sitemap pages beyond the page cap, say).
    pub notes: Vec<String>,
}

impl IngestReport {
    fn extend(&mut self, other: IngestReport) {
        self.sources.extend(other.sources);
        self.notes.extend(other.notes);
    }

    fn single(report: SourceReport) -> Self {
        Self {
            sources: vec![report],
            notes: Vec::new(),
        }
    }
}

/// Loads sources and sends their chunks on; cheap to clone (shares its HTTP client).
#[derive(Debug, Clone)]
pub struct Ingestor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    opts: IngestOptions,
    fetcher: Fetcher,
}

impl Ingestor {
    /// Builds the HTTP client and keeps the options.
    pub fn new(opts: IngestOptions) -> Result<Self, ErrorKind> {
        let fetcher = Fetcher::new(&opts)?;
        Ok(Self {
            inner: Arc::new(Inner { opts, fetcher }),
        })
    }

    /// The options in force.
    pub fn options(&self) -> &IngestOptions {
        &self.inner.opts
    }

    /// The HTTP client (for callers that fetch something themselves under the same rules).
    pub fn fetcher(&self) -> &Fetcher {
        &self.inner.fetcher
    }

    /// `max_body_bytes` holds for every source, not only fetched ones: a document handed over
    /// in memory, or a local file (by its size, before it is opened), above it is refused.
    fn over_limit(&self, input: &SourceInput) -> Option<ErrorKind> {
        let limit = self.inner.opts.max_body_bytes;
        let size = match input {
            SourceInput::Bytes { bytes, .. } => bytes.len() as u64,
            SourceInput::Path(path) => std::fs::metadata(path).ok()?.len(),
            _ => return None,
        };
        (size > limit).then_some(ErrorKind::TooLarge { limit })
    }

    /// Ingests several inputs one after the other.
    pub async fn ingest_all(
        &self,
        inputs: Vec<SourceInput>,
        params: &EmbeddingParams,
        tx: &Sender<Vec<Chunk>>,
    ) -> IngestReport {
        let mut report = IngestReport::default();
        for input in inputs {
            report.extend(self.ingest(input, params, tx).await);
        }
        report
    }

    /// Loads one input, splits it with `params` and sends its chunks to `tx` in batches.
    /// Never fails as a whole: every source ends in the report as loaded or failed.
    pub async fn ingest(
        &self,
        input: SourceInput,
        params: &EmbeddingParams,
        tx: &Sender<Vec<Chunk>>,
    ) -> IngestReport {
        let source = input.source();
        let splitter = match Splitter::new(params) {
            Ok(s) => s,
            Err(kind) => {
                return IngestReport::single(SourceReport::failed(
                    SourceError::new(source, kind),
                    None,
                ))
            }
        };
        if let Some(kind) = self.over_limit(&input) {
            return IngestReport::single(SourceReport::failed(
                SourceError::new(source, kind),
                None,
            ));
        }
        // A file, bytes or a reader are loaded alike, named by the source or the hint given.
        let (source, name, data) = match input {
            SourceInput::Url(url) => return self.ingest_url(url, splitter, tx, true).await,
            SourceInput::Sitemap(url) => return self.ingest_sitemap(url, None, splitter, tx).await,
            SourceInput::Path(path) => (source.clone(), source, Data::Path(path)),
            SourceInput::Bytes {
                source,
                name_hint,
                bytes,
            } => (source, name_hint, Data::Bytes(bytes)),
            SourceInput::Reader {
                source,
                name_hint,
                reader,
            } => (source, name_hint, Data::Reader(reader)),
        };
        let hint = HintOwned::name(&name);
        IngestReport::single(self.blocking_load(source, hint, data, splitter, tx).await)
    }

    async fn ingest_url(
        &self,
        url: String,
        splitter: Splitter,
        tx: &Sender<Vec<Chunk>>,
        expand_sitemaps: bool,
    ) -> IngestReport {
        if is_youtube(&url) {
            let kind = ErrorKind::Unsupported {
                what: "YouTube videos (the platform used their transcripts, which ragshift \
                       cannot fetch); add the transcript as a document instead"
                    .into(),
            };
            return IngestReport::single(SourceReport::failed(SourceError::new(url, kind), None));
        }
        let fetched = match self.inner.fetcher.get(&url).await {
            Ok(f) => f,
            Err(kind) => {
                return IngestReport::single(SourceReport::failed(
                    SourceError::new(url, kind),
                    None,
                ))
            }
        };
        let hint = HintOwned {
            name: fetched.final_url.clone(),
            content_type: fetched.content_type.clone(),
        };
        let head = &fetched.bytes[..fetched.bytes.len().min(HEAD_BYTES)];
        if let Ok(Detected::Sitemap) = loader::detect(&hint.as_hint(), head) {
            if expand_sitemaps {
                return self
                    .ingest_sitemap(url, Some(fetched.bytes), splitter, tx)
                    .await;
            }
            let kind = ErrorKind::Unsupported {
                what: "a sitemap listed as a page of a sitemap index is not followed".into(),
            };
            return IngestReport::single(SourceReport::failed(SourceError::new(url, kind), None));
        }
        IngestReport::single(
            self.blocking_load(url, hint, Data::Bytes(fetched.bytes), splitter, tx)
                .await,
        )
    }

    async fn ingest_sitemap(
        &self,
        url: String,
        first: Option<Bytes>,
        splitter: Splitter,
        tx: &Sender<Vec<Chunk>>,
    ) -> IngestReport {
        let opts = &self.inner.opts;
        let expansion = match sitemap::expand(
            &self.inner.fetcher,
            &url,
            first,
            opts.sitemap_page_cap,
            opts.sitemap_max_children,
            opts.max_body_bytes,
        )
        .await
        {
            Ok(e) => e,
            Err(kind) => {
                return IngestReport::single(SourceReport::failed(
                    SourceError::new(url, kind),
                    None,
                ))
            }
        };
        let mut report = IngestReport {
            sources: expansion
                .failed_children
                .iter()
                .cloned()
                .map(|e| {
                    let mut r = SourceReport::failed(e, None);
                    r.sitemap = Some(url.clone());
                    r
                })
                .collect(),
            notes: expansion.notes(&url),
        };
        for note in &report.notes {
            tracing::warn!("{note}");
        }
        let pages: Vec<IngestReport> = stream::iter(expansion.pages)
            .map(|page| self.ingest_url(page, splitter, tx, false))
            .buffered(opts.fetch_concurrency.max(1))
            .collect()
            .await;
        for mut page in pages {
            for r in &mut page.sources {
                r.sitemap = Some(url.clone());
            }
            report.extend(page);
        }
        report
    }

    async fn blocking_load(
        &self,
        source: String,
        hint: HintOwned,
        data: Data,
        splitter: Splitter,
        tx: &Sender<Vec<Chunk>>,
    ) -> SourceReport {
        let tx = tx.clone();
        let batch = self.inner.opts.batch_size.max(1);
        let cap = self.inner.opts.max_document_bytes;
        let origin = source.clone();
        let job = tokio::task::spawn_blocking(move || {
            let mut sink = BatchSink::new(tx, batch);
            load_and_split(
                Document {
                    source: &source,
                    hint: &hint,
                    data,
                },
                splitter,
                cap,
                &mut sink,
            )
        });
        match job.await {
            Ok(report) => report,
            Err(join) => SourceReport::failed(
                SourceError::new(
                    origin,
                    ErrorKind::corrupt("document", format!("the loader crashed ({join})")),
                ),
                None,
            ),
        }
    }
}

/// A hint with owned strings, to move into a blocking task.
#[derive(Debug, Clone, Default)]
struct HintOwned {
    name: String,
    content_type: Option<String>,
}

impl HintOwned {
    fn name(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            content_type: None,
        }
    }

    fn as_hint(&self) -> Hint<'_> {
        Hint {
            name: &self.name,
            content_type: self.content_type.as_deref(),
        }
    }
}

/// Where a document's bytes come from.
enum Data {
    Bytes(Bytes),
    Reader(Box<dyn Read + Send>),
    Path(PathBuf),
}

/// Collects chunks into batches and sends them through the bounded channel, waiting when the
/// receiver is behind.
struct BatchSink {
    tx: Sender<Vec<Chunk>>,
    batch: Vec<Chunk>,
    size: usize,
    sent: usize,
}

impl BatchSink {
    fn new(tx: Sender<Vec<Chunk>>, size: usize) -> Self {
        Self {
            tx,
            batch: Vec::with_capacity(size),
            size,
            sent: 0,
        }
    }

    fn push(&mut self, chunk: Chunk) -> Result<(), ErrorKind> {
        self.batch.push(chunk);
        if self.batch.len() >= self.size {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.size));
        let n = batch.len();
        self.tx
            .blocking_send(batch)
            .map_err(|_| ErrorKind::SinkClosed)?;
        self.sent += n;
        Ok(())
    }
}

/// One document to load: where it is from, the name its type is guessed from, its bytes.
struct Document<'a> {
    source: &'a str,
    hint: &'a HintOwned,
    data: Data,
}

/// Loads and splits one document on the current (blocking) thread.
fn load_and_split(
    doc: Document<'_>,
    splitter: Splitter,
    cap: u64,
    sink: &mut BatchSink,
) -> SourceReport {
    let source = doc.source;
    let mut loader_kind = None;
    let mut warnings = Vec::new();
    let result = run(doc, splitter, cap, sink, &mut loader_kind, &mut warnings);
    let flushed = sink.flush();
    let outcome = match result.and_then(|chars| flushed.map(|()| chars)) {
        Ok(chars) => SourceOutcome::Loaded {
            chars,
            chunks: sink.sent,
        },
        Err(kind) => SourceOutcome::Failed {
            error: SourceError::new(source, kind),
            chunks_sent: sink.sent,
        },
    };
    SourceReport {
        source: source.to_owned(),
        loader: loader_kind,
        sitemap: None,
        outcome,
        warnings,
    }
}

fn run(
    Document { source, hint, data }: Document<'_>,
    splitter: Splitter,
    cap: u64,
    sink: &mut BatchSink,
    loader_kind: &mut Option<LoaderKind>,
    warnings: &mut Vec<String>,
) -> Result<usize, ErrorKind> {
    let mut reader: Box<dyn Read + Send> = match data {
        Data::Bytes(bytes) => {
            let loaded = loader::load(&hint.as_hint(), &bytes).inspect_err(|_| {
                *loader_kind = detected_kind(hint, &bytes);
            })?;
            *loader_kind = Some(loaded.loader);
            warnings.extend(loaded.warnings);
            return split_whole(source, &loaded.text, splitter, sink);
        }
        Data::Reader(r) => r,
        Data::Path(p) => Box::new(File::open(&p).map_err(|e| ErrorKind::io(&e))?),
    };
    let mut head = Vec::with_capacity(HEAD_BYTES);
    (&mut reader)
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| ErrorKind::io(&e))?;
    let detected = loader::detect(&hint.as_hint(), &head)?;
    let rest = Cursor::new(head).chain(reader);
    match detected {
        Detected::Kind(kind) if kind.streams() => {
            *loader_kind = Some(kind);
            stream_text(source, kind, rest, splitter, sink, warnings)
        }
        _ => {
            let mut bytes = Vec::new();
            rest.take(cap + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| ErrorKind::io(&e))?;
            if bytes.len() as u64 > cap {
                return Err(ErrorKind::TooLarge { limit: cap });
            }
            *loader_kind = detected_kind(hint, &bytes);
            let loaded = loader::load(&hint.as_hint(), &bytes)?;
            *loader_kind = Some(loaded.loader);
            warnings.extend(loaded.warnings);
            split_whole(source, &loaded.text, splitter, sink)
        }
    }
}

/// The loader a document would get, for reports of documents that then failed to load.
fn detected_kind(hint: &HintOwned, bytes: &[u8]) -> Option<LoaderKind> {
    match loader::detect(&hint.as_hint(), &bytes[..bytes.len().min(HEAD_BYTES)]) {
        Ok(Detected::Kind(k)) => Some(k),
        _ => None,
    }
}

fn split_whole(
    source: &str,
    text: &str,
    splitter: Splitter,
    sink: &mut BatchSink,
) -> Result<usize, ErrorKind> {
    for r in splitter.spans(text) {
        sink.push(Chunk {
            source: source.to_owned(),
            index: sink.sent + sink.batch.len(),
            text: text[r].to_owned(),
        })?;
    }
    Ok(text.chars().count())
}

fn stream_text(
    source: &str,
    kind: LoaderKind,
    reader: impl Read,
    splitter: Splitter,
    sink: &mut BatchSink,
    warnings: &mut Vec<String>,
) -> Result<usize, ErrorKind> {
    let mut split = StreamSplitter::new(splitter, source, |c| sink.push(c));
    let stats = if kind == LoaderKind::Csv {
        let mut csv = CsvRenderer::new(reader)?;
        while let Some(piece) = csv.next_piece()? {
            split.push(&piece)?;
        }
        csv.stats()
    } else {
        let mut text = TextStream::new(reader);
        while let Some(block) = text.next_block().map_err(|e| ErrorKind::io(&e))? {
            split.push(&block)?;
        }
        text.stats()
    };
    let any_chunk = split.chunks_emitted() > 0;
    let chars = split.finish()?;
    warnings.extend(stats.warning());
    if chars == 0 && !any_chunk {
        return Err(ErrorKind::Empty);
    }
    if sink.sent + sink.batch.len() == 0 {
        return Err(ErrorKind::NoText {
            format: kind.as_str().to_owned(),
            hint: String::new(),
        });
    }
    Ok(chars)
}
