//! The embedded default provider: a sentence-transformers BERT model (all-MiniLM-L6-v2 unless
//! told otherwise) run on the CPU with candle and tokenizers, so a rebuild needs no cloud
//! account at all.
//!
//! It reproduces sentence-transformers: the tokenizer's fixed 128-token truncation and padding
//! from `tokenizer.json` are replaced by the model's real limit (`max_seq_length` from
//! `sentence_bert_config.json`) and no padding; texts are sorted by length and run in
//! micro-batches bounded by a token budget; pooling follows `1_Pooling/config.json` (mean over
//! the attention mask by default) and vectors are L2-normalised.
//!
//! Inference runs on one dedicated thread (candle spreads each matrix product over the cores);
//! async callers only wait on a channel.

mod bert;
pub(crate) mod kernels;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::embedder::{Embedder, Embeddings, InputKind};
use crate::error::{Error, Result};
use bert::{Bert, BertConfig};

/// Environment variable naming ragshift's data directory (default `$HOME/.cache/ragshift`).
pub const RAGSHIFT_HOME_ENV: &str = "RAGSHIFT_HOME";

/// Name of the default model's folder under `$RAGSHIFT_HOME/models`.
pub const DEFAULT_MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// ragshift's data directory: `$RAGSHIFT_HOME`, else `$HOME/.cache/ragshift`.
pub fn ragshift_home() -> PathBuf {
    if let Some(home) = std::env::var_os(RAGSHIFT_HOME_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache").join("ragshift")
}

/// Environment variable naming the model directory outright (as scripts/setup-model.sh and
/// the test kit understand it).
pub const RAGSHIFT_MODEL_DIR_ENV: &str = "RAGSHIFT_MODEL_DIR";

/// Where the setup script puts the default model: `$RAGSHIFT_MODEL_DIR` if set, else
/// `$RAGSHIFT_HOME/models/all-MiniLM-L6-v2`.
pub fn default_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(RAGSHIFT_MODEL_DIR_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    ragshift_home().join("models").join(DEFAULT_MODEL_NAME)
}

/// How the local model is found and run. Plain data; the CLI fills it from its config.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// A sentence-transformers folder (config.json, model.safetensors, tokenizer.json,
    /// 1_Pooling); `None` means [`default_model_dir`].
    pub model_dir: Option<PathBuf>,
    /// Model id for reports and the cache; `None` means the folder's name.
    pub model_id: Option<String>,
    /// Overrides `max_seq_length` from sentence_bert_config.json (tokens, incl. special ones).
    pub max_seq_length: Option<usize>,
    /// Most texts per request from the throughput wrapper.
    pub batch_size: usize,
    /// Padded tokens per forward pass: bounds the attention buffers (batch × heads × seq²)
    /// so they stay in cache-friendly, reusable sizes.
    pub max_tokens_per_forward: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            model_dir: None,
            model_id: None,
            max_seq_length: None,
            batch_size: 64,
            max_tokens_per_forward: 2048,
        }
    }
}

#[derive(Debug, Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

/// How token vectors become one text vector (`1_Pooling/config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the real (unpadded) tokens.
    Mean,
    /// The `[CLS]` token's vector.
    Cls,
    /// Element-wise maximum over the real tokens.
    Max,
}

#[derive(Debug, Default, Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
}

struct Job {
    texts: Vec<String>,
    reply: tokio::sync::oneshot::Sender<Result<Embeddings>>,
}

/// The model itself, owned by the inference thread.
struct Model {
    dir: PathBuf,
    bert: Bert,
    tokenizer: Tokenizer,
    pooling: Pooling,
    max_tokens_per_forward: usize,
}

/// The local sentence-transformers embedder.
pub struct LocalEmbedder {
    model_id: String,
    cache_model: String,
    dir: PathBuf,
    dimension: usize,
    max_seq_length: usize,
    batch_size: usize,
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model_id", &self.model_id)
            .field("dir", &self.dir)
            .field("dimension", &self.dimension)
            .field("max_seq_length", &self.max_seq_length)
            .finish()
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(dir: &Path, file: &str) -> Result<T> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Model {
        path: dir.to_path_buf(),
        message: format!("reading {file}: {e}"),
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Model {
        path: dir.to_path_buf(),
        message: format!("parsing {file}: {e}"),
    })
}

/// Checks that `dir` holds a usable sentence-transformers model, naming the first missing file.
pub fn check_model_dir(dir: &Path) -> Result<()> {
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        if !dir.join(file).is_file() {
            return Err(Error::ModelMissing {
                path: dir.to_path_buf(),
                missing: file.to_string(),
            });
        }
    }
    Ok(())
}

impl LocalEmbedder {
    /// Loads the model (blocking: reads ~100 MB and builds the tokenizer; call it from
    /// `spawn_blocking` in async code, or use [`crate::build_embedder`]) and starts its
    /// inference thread.
    pub fn load(options: &LocalOptions) -> Result<Self> {
        let dir = options.model_dir.clone().unwrap_or_else(default_model_dir);
        check_model_dir(&dir)?;
        let model_err = |message: String| Error::Model {
            path: dir.clone(),
            message,
        };
        let config: BertConfig = read_json(&dir, "config.json")?;
        let st_max = if dir.join("sentence_bert_config.json").is_file() {
            read_json::<SentenceBertConfig>(&dir, "sentence_bert_config.json")?.max_seq_length
        } else {
            None
        };
        let pooling = if dir.join("1_Pooling/config.json").is_file() {
            let p: PoolingConfig = read_json(&dir, "1_Pooling/config.json")?;
            if p.pooling_mode_mean_tokens {
                Pooling::Mean
            } else if p.pooling_mode_cls_token {
                Pooling::Cls
            } else if p.pooling_mode_max_tokens {
                Pooling::Max
            } else {
                return Err(model_err(
                    "1_Pooling/config.json asks for a pooling mode other than mean, cls or max"
                        .into(),
                ));
            }
        } else {
            tracing::warn!(dir = %dir.display(), "no 1_Pooling/config.json: using mean pooling");
            Pooling::Mean
        };
        let bert = Bert::load(&dir, &config).map_err(model_err)?;
        let max_seq_length = options
            .max_seq_length
            .or(st_max)
            .unwrap_or(512)
            .min(bert.max_positions())
            .min(config.max_position_embeddings)
            .max(2);

        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| model_err(format!("reading tokenizer.json: {e}")))?;
        // tokenizer.json ships with a fixed 128-token truncation and padding; the model's real
        // limit is max_seq_length and padding is done per micro-batch.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| model_err(format!("setting truncation: {e}")))?;
        tokenizer.with_padding(None);

        let model_id = options.model_id.clone().unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| DEFAULT_MODEL_NAME.into())
        });
        let dimension = bert.hidden_size();
        let cache_model =
            format!("local:{model_id}:seq{max_seq_length}:{pooling:?}").to_lowercase();
        let model = Model {
            dir: dir.clone(),
            bert,
            tokenizer,
            pooling,
            max_tokens_per_forward: options.max_tokens_per_forward.max(1),
        };
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ragshift-embed-local".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    let out = model.embed(&job.texts);
                    let _ = job.reply.send(out);
                }
            })
            .map_err(|e| Error::Model {
                path: dir.clone(),
                message: format!("starting the inference thread: {e}"),
            })?;
        Ok(LocalEmbedder {
            model_id,
            cache_model,
            dir,
            dimension,
            max_seq_length,
            batch_size: options.batch_size.max(1),
            jobs: Mutex::new(tx),
        })
    }

    /// The model directory in use.
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// The sequence length texts are truncated to (tokens, including special tokens).
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }
}

impl Model {
    fn err(&self, message: String) -> Error {
        Error::Model {
            path: self.dir.clone(),
            message,
        }
    }

    fn embed(&self, texts: &[String]) -> Result<Embeddings> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| self.err(format!("tokenizing: {e}")))?;
        let truncated = encodings
            .iter()
            .filter(|e| !e.get_overflowing().is_empty())
            .count() as u64;
        let tokens: u64 = encodings.iter().map(|e| e.len() as u64).sum();
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();

        // Longest first, then micro-batches that stay within the token budget, so padding is
        // small and the attention buffers stay bounded.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let dim = self.bert.hidden_size();
        let mut vectors = vec![Vec::new(); ids.len()];
        let mut start = 0;
        while start < order.len() {
            let longest = ids[order[start]].len().max(1);
            let per_batch = (self.max_tokens_per_forward / longest).max(1);
            let end = (start + per_batch).min(order.len());
            let group: Vec<&[u32]> = order[start..end].iter().map(|&i| ids[i]).collect();
            let (hidden, seq) = self.bert.forward(&group).map_err(|m| self.err(m))?;
            for (gi, &orig) in order[start..end].iter().enumerate() {
                let len = group[gi].len().max(1);
                let rows = &hidden[gi * seq * dim..(gi * seq + len) * dim];
                vectors[orig] = pool(rows, dim, self.pooling);
            }
            start = end;
        }
        Ok(Embeddings {
            vectors,
            tokens: Some(tokens),
            truncated,
        })
    }
}

/// Pools `rows` (one per real token, `dim` wide) into one L2-normalised vector.
fn pool(rows: &[f32], dim: usize, pooling: Pooling) -> Vec<f32> {
    let n = (rows.len() / dim).max(1);
    let mut v = match pooling {
        Pooling::Cls => rows[..dim].to_vec(),
        Pooling::Mean => {
            let mut acc = vec![0f32; dim];
            for r in rows.chunks_exact(dim) {
                acc.iter_mut().zip(r).for_each(|(a, x)| *a += x);
            }
            acc.iter_mut().for_each(|a| *a /= n as f32);
            acc
        }
        Pooling::Max => {
            let mut acc = vec![f32::NEG_INFINITY; dim];
            for r in rows.chunks_exact(dim) {
                acc.iter_mut().zip(r).for_each(|(a, x)| *a = a.max(*x));
            }
            acc
        }
    };
    let norm = crate::embedder::l2_norm(&v).max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn provider(&self) -> &'static str {
        "local"
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn cache_model(&self) -> String {
        self.cache_model.clone()
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn max_batch_size(&self) -> usize {
        self.batch_size
    }

    fn max_input_chars(&self) -> usize {
        // Truncation happens on tokens (max_seq_length); characters are not limited.
        usize::MAX
    }

    async fn embed(&self, texts: &[String], _kind: InputKind) -> Result<Embeddings> {
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job {
            texts: texts.to_vec(),
            reply,
        };
        let sent = match self.jobs.lock() {
            Ok(tx) => tx.send(job).is_ok(),
            Err(_) => false,
        };
        let stopped = || Error::Model {
            path: self.dir.clone(),
            message: "the inference thread has stopped".into(),
        };
        if !sent {
            return Err(stopped());
        }
        rx.await.map_err(|_| stopped())?
    }
}
