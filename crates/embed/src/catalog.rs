//! What ragshift knows of each embedding model without asking it: its provider, the vectors it
//! makes, how many texts one request takes, the price and the rates a fresh account gets, with
//! the date all of it was read off the providers' pages. One table, so that the plan's
//! estimate, the dimension guard before a run and the providers themselves agree.

/// When the prices and rates below were read off the providers' public pages. They change:
/// `[embedding] price_per_1k_tokens`, `requests_per_minute` and `tokens_per_minute` override
/// them.
pub const AS_OF: &str = "2024-11";

/// One model as the catalogue knows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// `local`, `bedrock` or `openai`.
    pub provider: &'static str,
    /// The provider's model id (Bedrock inference profiles and ARNs that name it match too).
    pub id: &'static str,
    /// Vector dimension it makes unless asked for another.
    pub dimension: usize,
    /// Texts one request may carry.
    pub max_texts: usize,
    /// USD per 1,000 input tokens.
    pub usd_per_1k_tokens: f64,
}

/// Every model ragshift knows by name.
pub const MODELS: &[Model] = &[
    Model {
        provider: "local",
        id: LOCAL_MODEL,
        dimension: 384,
        max_texts: 32,
        usd_per_1k_tokens: 0.0,
    },
    Model {
        provider: "bedrock",
        id: DEFAULT_BEDROCK_MODEL,
        dimension: 1024,
        max_texts: crate::bedrock::COHERE_MAX_TEXTS,
        usd_per_1k_tokens: 0.0001,
    },
    Model {
        provider: "bedrock",
        id: "cohere.embed-english-v3",
        dimension: 1024,
        max_texts: crate::bedrock::COHERE_MAX_TEXTS,
        usd_per_1k_tokens: 0.0001,
    },
    Model {
        provider: "bedrock",
        id: "amazon.titan-embed-text-v2",
        dimension: 1024,
        max_texts: 1,
        usd_per_1k_tokens: 0.00002,
    },
    Model {
        provider: "bedrock",
        id: "amazon.titan-embed-text-v1",
        dimension: 1536,
        max_texts: 1,
        usd_per_1k_tokens: 0.0001,
    },
    Model {
        provider: "openai",
        id: DEFAULT_OPENAI_MODEL,
        dimension: 1536,
        max_texts: 2048,
        usd_per_1k_tokens: 0.00002,
    },
    Model {
        provider: "openai",
        id: "text-embedding-3-large",
        dimension: 3072,
        max_texts: 2048,
        usd_per_1k_tokens: 0.00013,
    },
    Model {
        provider: "openai",
        id: "text-embedding-ada-002",
        dimension: 1536,
        max_texts: 2048,
        usd_per_1k_tokens: 0.0001,
    },
];

/// The local provider's bundled model, sentence-transformers/all-MiniLM-L6-v2 (`[embedding]
/// model_dir` may name another folder; its name is then the model's).
pub const LOCAL_MODEL: &str = "all-MiniLM-L6-v2";

/// Bedrock's model when `[embedding] model` is unset.
pub const DEFAULT_BEDROCK_MODEL: &str = "cohere.embed-multilingual-v3";

/// OpenAI's model when `[embedding] model` is unset.
pub const DEFAULT_OPENAI_MODEL: &str = "text-embedding-3-small";

/// Requests and tokens per minute a provider is assumed to allow when the configuration doesn't
/// say: (provider, requests, tokens). Conservative on purpose: Bedrock's default on-demand
/// quotas for the embedding models, OpenAI's lowest paid tier, and the local model on 2 CPU
/// cores (no request limit).
pub const ASSUMED_RATES: &[(&str, Option<u32>, u32)] = &[
    ("bedrock", Some(2_000), 300_000),
    ("openai", Some(3_000), 1_000_000),
    ("local", None, 120_000),
];

/// The model a provider uses when `[embedding] model` is unset.
pub fn default_model(provider: &str) -> &'static str {
    match provider {
        "bedrock" => DEFAULT_BEDROCK_MODEL,
        "openai" => DEFAULT_OPENAI_MODEL,
        _ => LOCAL_MODEL,
    }
}

/// The catalogue's entry for `model` on `provider` (`None` or empty: the provider's default). A
/// Bedrock id with a version suffix, an inference profile (`us.amazon.titan-…`) or an ARN
/// naming a known model finds it; the local provider always has its one model.
pub fn lookup(provider: &str, model: Option<&str>) -> Option<&'static Model> {
    let model = match model {
        Some(m) if !m.is_empty() && provider != "local" => m,
        _ => default_model(provider),
    };
    MODELS.iter().find(|m| {
        m.provider == provider && (m.id == model || (provider == "bedrock" && model.contains(m.id)))
    })
}

/// Assumed (requests, tokens) per minute for `provider` ([`ASSUMED_RATES`]).
pub fn assumed_rates(provider: &str) -> (Option<u32>, u32) {
    ASSUMED_RATES
        .iter()
        .find(|(p, _, _)| *p == provider)
        .map(|(_, r, t)| (*r, *t))
        .unwrap_or((None, 120_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_found_by_id_profile_or_default() {
        assert_eq!(lookup("bedrock", None).map(|m| m.dimension), Some(1024));
        let titan = lookup("bedrock", Some("us.amazon.titan-embed-text-v2:0")).unwrap();
        assert_eq!((titan.dimension, titan.max_texts), (1024, 1));
        assert_eq!(
            lookup("openai", Some("text-embedding-3-large")).map(|m| m.dimension),
            Some(3072)
        );
        assert_eq!(lookup("openai", Some("my-own-model")), None);
        assert_eq!(
            lookup("local", Some("anything")).map(|m| m.dimension),
            Some(384)
        );
        // A model of one provider isn't found under another.
        assert_eq!(lookup("openai", Some("cohere.embed-english-v3")), None);
    }
}
