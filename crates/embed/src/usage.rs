//! Usage accounting: what a run sent to each provider and what it probably cost, so a user can
//! see the bill before it arrives and compare a cached rerun with a cold one.

use std::collections::BTreeMap;

use serde::Serialize;

/// When the built-in prices were read off the providers' public price pages ([`catalog::AS_OF`]).
/// Prices change: callers can override them ([`PriceTable::set`]).
///
/// [`catalog::AS_OF`]: crate::catalog::AS_OF
pub const PRICES_AS_OF: &str = crate::catalog::AS_OF;

/// Characters per token used when a provider doesn't report tokens (a common rule of thumb for
/// English; good enough for limits and cost estimates).
pub const CHARS_PER_TOKEN: u64 = 4;

/// Estimates tokens for a text of `chars` characters.
pub fn estimate_tokens(chars: u64) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN).max(1)
}

/// USD per 1,000 input tokens, by model id.
#[derive(Debug, Clone, Serialize)]
pub struct PriceTable {
    /// When these prices were read ([`PRICES_AS_OF`] for the built-in ones).
    pub as_of: String,
    /// Model id → USD per 1k input tokens.
    pub per_1k_tokens: BTreeMap<String, f64>,
}

impl Default for PriceTable {
    fn default() -> Self {
        let p = crate::catalog::MODELS
            .iter()
            .filter(|m| m.provider != "local")
            .map(|m| (m.id.to_owned(), m.usd_per_1k_tokens))
            .collect();
        PriceTable {
            as_of: PRICES_AS_OF.into(),
            per_1k_tokens: p,
        }
    }
}

impl PriceTable {
    /// Sets (or overrides) the price of a model.
    pub fn set(&mut self, model: impl Into<String>, usd_per_1k_tokens: f64) {
        self.per_1k_tokens.insert(model.into(), usd_per_1k_tokens);
    }

    /// The price of `model` on `provider`: the local model is free; unknown remote models have
    /// no estimate rather than a wrong one.
    pub fn price(&self, provider: &str, model: &str) -> Option<f64> {
        if provider == "local" {
            return Some(0.0);
        }
        self.per_1k_tokens.get(model).copied().or_else(|| {
            crate::catalog::lookup(provider, Some(model))
                .and_then(|m| self.per_1k_tokens.get(m.id).copied())
        })
    }
}

/// Counters for one provider/model over a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// `local`, `bedrock`, `openai`.
    pub provider: String,
    /// The model id.
    pub model: String,
    /// Texts embedded by the provider (not counting cache hits).
    pub texts: u64,
    /// Characters of those texts.
    pub characters: u64,
    /// Input tokens: reported by the provider where it says, estimated from characters where
    /// it doesn't.
    pub tokens: u64,
    /// How many of `tokens` were estimated rather than reported.
    pub tokens_estimated: u64,
    /// Requests that succeeded.
    pub calls: u64,
    /// Requests sent again after a retryable failure.
    pub retries: u64,
    /// Of the failures, how many were throttling.
    pub throttled: u64,
    /// Texts cut to fit the model's input limit (each one also logged as a warning).
    pub truncated: u64,
    /// Texts answered from the content-hash cache (no provider call, no cost).
    pub cache_hits: u64,
    /// Estimated cost in USD, if the model's price is known.
    pub estimated_cost_usd: Option<f64>,
}

/// The end-of-run usage report (also the `usage` part of `--json` output).
#[derive(Debug, Clone, Default, Serialize)]
pub struct EmbedReport {
    /// One entry per provider/model used.
    pub usage: Vec<Usage>,
    /// Sum of the known cost estimates, USD.
    pub total_estimated_cost_usd: f64,
    /// Date of the price table used for the estimates.
    pub prices_as_of: String,
}

impl EmbedReport {
    /// Builds a report from per-model counters, pricing each with `prices`.
    pub fn new(usage: impl IntoIterator<Item = Usage>, prices: &PriceTable) -> Self {
        let mut out = Vec::new();
        let mut total = 0.0;
        for mut u in usage {
            u.estimated_cost_usd = prices
                .price(&u.provider, &u.model)
                .map(|p| p * u.tokens as f64 / 1000.0);
            total += u.estimated_cost_usd.unwrap_or(0.0);
            out.push(u);
        }
        EmbedReport {
            usage: out,
            total_estimated_cost_usd: total,
            prices_as_of: prices.as_of.clone(),
        }
    }

    /// Adds another report's counters into this one (e.g. several workers' reports).
    pub fn merge(&mut self, other: &EmbedReport) {
        for u in &other.usage {
            match self
                .usage
                .iter_mut()
                .find(|m| m.provider == u.provider && m.model == u.model)
            {
                Some(m) => {
                    m.texts += u.texts;
                    m.characters += u.characters;
                    m.tokens += u.tokens;
                    m.tokens_estimated += u.tokens_estimated;
                    m.calls += u.calls;
                    m.retries += u.retries;
                    m.throttled += u.throttled;
                    m.truncated += u.truncated;
                    m.cache_hits += u.cache_hits;
                    m.estimated_cost_usd = match (m.estimated_cost_usd, u.estimated_cost_usd) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    };
                }
                None => self.usage.push(u.clone()),
            }
        }
        self.total_estimated_cost_usd += other.total_estimated_cost_usd;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_from_tokens_and_price() {
        let u = Usage {
            provider: "bedrock".into(),
            model: "cohere.embed-multilingual-v3".into(),
            tokens: 2_000_000,
            ..Usage::default()
        };
        let local = Usage {
            provider: "local".into(),
            model: "all-MiniLM-L6-v2".into(),
            tokens: 5,
            ..Usage::default()
        };
        let r = EmbedReport::new([u, local], &PriceTable::default());
        assert!((r.total_estimated_cost_usd - 0.2).abs() < 1e-9);
        assert_eq!(r.usage[1].estimated_cost_usd, Some(0.0));
        let json = serde_json::to_value(&r).expect("serialises");
        assert_eq!(json["prices_as_of"], PRICES_AS_OF);
    }

    #[test]
    fn estimate_rounds_up() {
        assert_eq!(estimate_tokens(0), 1);
        assert_eq!(estimate_tokens(9), 3);
    }
}
