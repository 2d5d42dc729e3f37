//! What `plan` estimates and from what: characters from document bytes (a documented ratio per
//! file type), chunks from characters and the bot's chunk size/overlap, tokens from characters
//! (÷4 when the provider doesn't say), cost from a dated price table (overridable with
//! `[embedding] price_per_1k_tokens`), time from the configured or an assumed provider rate.
//! Every assumption is reported with the plan, so a number is never taken for a measurement.

use ragshift_config::EmbeddingConfig;
use ragshift_embed::{catalog, estimate_tokens, PriceTable, PRICES_AS_OF};
use ragshift_model::EmbeddingParams;
use serde::Serialize;

/// Characters of text per byte of file, by extension. Text formats are ~1; binary formats hold
/// less text than their size (PDF: fonts, images and compressed streams; PPTX: mostly media);
/// zipped XML formats (DOCX, XLSX) about as much text as bytes. Unknown types count as text,
/// which over- rather than under-estimates.
pub const TEXT_PER_BYTE: &[(&str, f64)] = &[
    ("txt", 1.0),
    ("md", 1.0),
    ("markdown", 1.0),
    ("csv", 1.0),
    ("tsv", 1.0),
    ("json", 1.0),
    ("xml", 0.7),
    ("html", 0.5),
    ("htm", 0.5),
    ("pdf", 0.2),
    ("docx", 0.8),
    ("xlsx", 1.0),
    ("pptx", 0.05),
];

/// The estimate of one document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DocEstimate {
    /// Characters of text.
    pub chars: u64,
    /// Chunks.
    pub chunks: u64,
    /// Tokens sent to the embedder (chunks overlap, so more than the document's).
    pub tokens: u64,
}

/// The model, its price and its rate, with where each came from.
#[derive(Debug, Clone, Serialize)]
pub struct Estimator {
    /// `local`, `bedrock` or `openai`.
    pub provider: &'static str,
    /// The model id (the provider's default when unset).
    pub model: String,
    /// USD per 1,000 tokens; `None` when the model isn't in the table and no override is set.
    pub price_per_1k_tokens: Option<f64>,
    /// `[embedding] price_per_1k_tokens` or `built-in table (as of …)`.
    pub price_source: String,
    /// Texts per request.
    pub texts_per_request: usize,
    /// Requests per minute the provider allows (or is assumed to).
    pub requests_per_minute: Option<u32>,
    /// Tokens per minute the provider allows (or is assumed to).
    pub tokens_per_minute: u32,
    /// `[embedding] …` or `assumed …`.
    pub rate_source: String,
}

impl Estimator {
    /// Reads the provider, model, price and rate from `[embedding]`.
    pub fn from_config(e: &EmbeddingConfig) -> Self {
        let provider = e.provider.name();
        let model = e
            .model
            .clone()
            .unwrap_or_else(|| catalog::default_model(provider).to_owned());
        let (price_per_1k_tokens, price_source) = match e.price_per_1k_tokens {
            Some(p) => (Some(p), "[embedding] price_per_1k_tokens".to_owned()),
            None => (
                PriceTable::default().price(provider, &model),
                format!("built-in price table (as of {PRICES_AS_OF})"),
            ),
        };
        // A model the catalogue doesn't know gets its provider's default model's limit.
        let max_texts = catalog::lookup(provider, Some(&model))
            .or_else(|| catalog::lookup(provider, None))
            .map_or(1, |m| m.max_texts);
        let texts_per_request = e.batch_size.unwrap_or(max_texts).clamp(1, max_texts);
        let (assumed_rpm, assumed_tpm) = catalog::assumed_rates(provider);
        let configured = e.requests_per_minute.is_some() || e.tokens_per_minute.is_some();
        let rate_source = if configured {
            "[embedding] requests_per_minute/tokens_per_minute".to_owned()
        } else {
            format!("assumed default for {provider}")
        };
        // The configured limits hold per `budget_window_secs` (a minute unless shortened).
        let window = e.budget_window_secs.max(1);
        let per_minute = |v: u32| u32::try_from(u64::from(v) * 60 / window).unwrap_or(u32::MAX);
        Self {
            provider,
            model,
            price_per_1k_tokens,
            price_source,
            texts_per_request,
            requests_per_minute: e.requests_per_minute.map(per_minute).or(if configured {
                None
            } else {
                assumed_rpm
            }),
            tokens_per_minute: e
                .tokens_per_minute
                .map(per_minute)
                .unwrap_or(assumed_tpm)
                .max(1),
            rate_source,
        }
    }

    /// Estimates one document of `bytes` bytes named `filename`, chunked with `params`.
    pub fn document(&self, filename: &str, bytes: u64, params: &EmbeddingParams) -> DocEstimate {
        let chars = (bytes as f64 * text_per_byte(filename)).round() as u64;
        let chunks = chunks(chars, params);
        // Each chunk after the first repeats `overlap` characters of the previous one.
        let embedded = chars + chunks.saturating_sub(1) * params.chunk_overlap as u64;
        DocEstimate {
            chars,
            chunks,
            tokens: if chunks == 0 {
                0
            } else {
                estimate_tokens(embedded)
            },
        }
    }

    /// The cost of embedding `tokens` tokens, when the price is known.
    pub fn cost(&self, tokens: u64) -> Option<f64> {
        self.price_per_1k_tokens.map(|p| p * tokens as f64 / 1000.0)
    }

    /// Seconds to embed `chunks` chunks holding `tokens` tokens at the rate limit: the slower
    /// of the request and the token budget.
    pub fn seconds(&self, chunks: u64, tokens: u64) -> f64 {
        let by_tokens = tokens as f64 / f64::from(self.tokens_per_minute) * 60.0;
        let by_requests = self.requests_per_minute.map_or(0.0, |rpm| {
            chunks.div_ceil(self.texts_per_request as u64) as f64 / f64::from(rpm.max(1)) * 60.0
        });
        by_tokens.max(by_requests)
    }
}

/// The text-per-byte ratio of a file name's extension ([`TEXT_PER_BYTE`]).
pub fn text_per_byte(filename: &str) -> f64 {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    TEXT_PER_BYTE
        .iter()
        .find(|(e, _)| *e == ext)
        .map_or(1.0, |(_, r)| *r)
}

/// Chunks of a `chars`-character document: one up to `chunk_size`, then one more per
/// `chunk_size - chunk_overlap` characters (the splitter cuts at sentence boundaries, so real
/// counts land a little above this).
pub fn chunks(chars: u64, params: &EmbeddingParams) -> u64 {
    let size = params.chunk_size.max(1) as u64;
    let step = size.saturating_sub(params.chunk_overlap as u64).max(1);
    match chars {
        0 => 0,
        c if c <= size => 1,
        c => 1 + (c - size).div_ceil(step),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ragshift_config::EmbeddingProvider;

    fn params(size: usize, overlap: usize) -> EmbeddingParams {
        EmbeddingParams {
            chunk_size: size,
            chunk_overlap: overlap,
            enable_partition_pdf: false,
        }
    }

    #[test]
    fn chunks_follow_size_and_overlap() {
        let p = params(1000, 200);
        assert_eq!(chunks(0, &p), 0);
        assert_eq!(chunks(1, &p), 1);
        assert_eq!(chunks(1000, &p), 1);
        assert_eq!(chunks(1001, &p), 2);
        assert_eq!(chunks(1800, &p), 2);
        assert_eq!(chunks(1801, &p), 3);
        assert_eq!(chunks(100_000, &p), 1 + 99_000_u64.div_ceil(800));
    }

    #[test]
    fn binary_formats_hold_less_text_than_bytes() {
        assert_eq!(text_per_byte("notes.TXT"), 1.0);
        assert_eq!(text_per_byte("deck.pptx"), 0.05);
        assert_eq!(text_per_byte("paper.pdf"), 0.2);
        assert_eq!(text_per_byte("no-extension"), 1.0);
    }

    #[test]
    fn prices_come_from_the_table_or_the_override() {
        let mut e = EmbeddingConfig {
            provider: EmbeddingProvider::Bedrock,
            ..EmbeddingConfig::default()
        };
        let est = Estimator::from_config(&e);
        assert_eq!(est.model, "cohere.embed-multilingual-v3");
        assert_eq!(est.price_per_1k_tokens, Some(0.0001));
        assert!(est.price_source.contains(PRICES_AS_OF));
        assert_eq!(est.texts_per_request, 96);
        // 4,000 chars of text → 2 tokens per 8 chars … 1000 tokens → $0.0001.
        let doc = est.document("a.txt", 4000, &params(4000, 0));
        assert_eq!((doc.chunks, doc.tokens), (1, 1000));
        assert_eq!(est.cost(doc.tokens), Some(0.0001));

        e.model = Some("amazon.titan-embed-text-v2:0".into());
        let est = Estimator::from_config(&e);
        assert_eq!(est.price_per_1k_tokens, Some(0.00002));
        assert_eq!(est.texts_per_request, 1);

        e.price_per_1k_tokens = Some(0.5);
        e.model = Some("some-new-model".into());
        let est = Estimator::from_config(&e);
        assert_eq!(est.price_per_1k_tokens, Some(0.5));
        e.price_per_1k_tokens = None;
        assert_eq!(Estimator::from_config(&e).price_per_1k_tokens, None);

        let local = Estimator::from_config(&EmbeddingConfig::default());
        assert_eq!(local.cost(1_000_000), Some(0.0));
        let openai = Estimator::from_config(&EmbeddingConfig {
            provider: EmbeddingProvider::Openai,
            model: Some("text-embedding-3-large".into()),
            ..EmbeddingConfig::default()
        });
        assert_eq!(openai.price_per_1k_tokens, Some(0.00013));
    }

    #[test]
    fn time_is_the_slower_of_the_request_and_token_budgets() {
        let e = EmbeddingConfig {
            provider: EmbeddingProvider::Bedrock,
            requests_per_minute: Some(60),
            tokens_per_minute: Some(6_000),
            ..EmbeddingConfig::default()
        };
        let est = Estimator::from_config(&e);
        assert!(est.rate_source.starts_with("[embedding]"));
        // 96 chunks = 1 request = 1 s; 6,000 tokens = 60 s.
        assert_eq!(est.seconds(96, 6_000), 60.0);
        // 960 chunks = 10 requests = 10 s; 600 tokens = 6 s.
        assert_eq!(est.seconds(960, 600), 10.0);

        // The same limits per 6-second window are ten times the rate.
        let short = Estimator::from_config(&EmbeddingConfig {
            budget_window_secs: 6,
            ..e
        });
        assert_eq!(short.requests_per_minute, Some(600));
        assert_eq!(short.seconds(96, 6_000), 6.0);
    }
}
