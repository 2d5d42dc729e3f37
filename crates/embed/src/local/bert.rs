//! A BERT encoder forward pass for sentence embeddings, on candle's CPU tensors.
//!
//! Written here rather than taken from candle-transformers so that every step that isn't a
//! matrix product is one fused, in-place pass ([`super::kernels`]), the attention mask is a
//! length per sequence (batches are sorted and right-padded), and the attention scale is folded
//! into the query weights at load time.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::kernels::{layer_norm_row, Activation, BiasAct, BiasResidualNorm, MaskedSoftmax};

/// The fields of a Hugging Face `config.json` a BERT-family encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    #[allow(dead_code)]
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

struct Layer {
    wqkv: Tensor,
    bqkv: Vec<f32>,
    wo: Tensor,
    attn_norm: (Vec<f32>, Vec<f32>, Vec<f32>),
    wi: Tensor,
    bi: Vec<f32>,
    wo2: Tensor,
    out_norm: (Vec<f32>, Vec<f32>, Vec<f32>),
}

/// The loaded encoder: embedding tables as plain vectors (gathered by hand), layer weights as
/// pre-transposed `[in, out]` tensors.
pub(crate) struct Bert {
    hidden: usize,
    heads: usize,
    eps: f32,
    act: Activation,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type0: Vec<f32>,
    emb_norm: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
    vocab: usize,
    max_positions: usize,
    device: Device,
}

type Weights = HashMap<String, Tensor>;

fn get(w: &Weights, prefixes: &[String], names: &[&str]) -> Result<Tensor, String> {
    for p in prefixes {
        for n in names {
            if let Some(t) = w.get(&format!("{p}{n}")) {
                return t.to_dtype(DType::F32).map_err(|e| e.to_string());
            }
        }
    }
    Err(format!(
        "weight {} not found in model.safetensors",
        names[0]
    ))
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>, String> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| e.to_string())
}

fn transposed(t: Tensor) -> Result<Tensor, String> {
    t.t()
        .and_then(|t| t.contiguous())
        .map_err(|e| e.to_string())
}

impl Bert {
    /// Loads `model.safetensors` for `config`, accepting weight names with or without the
    /// `bert.` prefix and old `gamma`/`beta` layer-norm names.
    pub(crate) fn load(dir: &Path, config: &BertConfig) -> Result<Self, String> {
        if let Some(kind) = &config.position_embedding_type {
            if kind != "absolute" {
                return Err(format!("position_embedding_type {kind} is not supported"));
            }
        }
        let act = match config.hidden_act.as_str() {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => return Err(format!("hidden_act {other} is not supported")),
        };
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err("hidden_size must be a multiple of num_attention_heads".into());
        }
        let device = Device::Cpu;
        let w = candle_core::safetensors::load(dir.join("model.safetensors"), &device)
            .map_err(|e| format!("reading model.safetensors: {e}"))?;
        let mut prefixes = vec![String::new(), "bert.".to_string()];
        if let Some(mt) = &config.model_type {
            prefixes.push(format!("{mt}."));
        }
        let ln = |base: &str| -> Result<(Vec<f32>, Vec<f32>), String> {
            let g = get(
                &w,
                &prefixes,
                &[&format!("{base}.weight"), &format!("{base}.gamma")],
            )?;
            let b = get(
                &w,
                &prefixes,
                &[&format!("{base}.bias"), &format!("{base}.beta")],
            )?;
            Ok((to_vec(&g)?, to_vec(&b)?))
        };
        let h = config.hidden_size;
        let word = get(&w, &prefixes, &["embeddings.word_embeddings.weight"])?;
        let vocab = word.dims().first().copied().unwrap_or(0);
        let position = get(&w, &prefixes, &["embeddings.position_embeddings.weight"])?;
        let max_positions = position.dims().first().copied().unwrap_or(0);
        let token_type = get(&w, &prefixes, &["embeddings.token_type_embeddings.weight"])?;
        let token_type0 = to_vec(&token_type)?.into_iter().take(h).collect();
        let emb_norm = ln("embeddings.LayerNorm")?;
        let scale = 1.0 / ((h / config.num_attention_heads) as f64).sqrt();

        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}.");
            let lin = |name: &str| -> Result<(Tensor, Tensor), String> {
                Ok((
                    get(&w, &prefixes, &[&format!("{p}{name}.weight")])?,
                    get(&w, &prefixes, &[&format!("{p}{name}.bias")])?,
                ))
            };
            let (wq, bq) = lin("attention.self.query")?;
            let (wk, bk) = lin("attention.self.key")?;
            let (wv, bv) = lin("attention.self.value")?;
            let wq = (wq * scale).map_err(|e| e.to_string())?;
            let bq = (bq * scale).map_err(|e| e.to_string())?;
            let wqkv = Tensor::cat(&[&wq, &wk, &wv], 0).map_err(|e| e.to_string())?;
            let bqkv = Tensor::cat(&[&bq, &bk, &bv], 0).map_err(|e| e.to_string())?;
            let (wo, bo) = lin("attention.output.dense")?;
            let (g1, b1) = ln(&format!("{p}attention.output.LayerNorm"))?;
            let (wi, bi) = lin("intermediate.dense")?;
            let (wo2, bo2) = lin("output.dense")?;
            let (g2, b2) = ln(&format!("{p}output.LayerNorm"))?;
            layers.push(Layer {
                wqkv: transposed(wqkv)?,
                bqkv: to_vec(&bqkv)?,
                wo: transposed(wo)?,
                attn_norm: (to_vec(&bo)?, g1, b1),
                wi: transposed(wi)?,
                bi: to_vec(&bi)?,
                wo2: transposed(wo2)?,
                out_norm: (to_vec(&bo2)?, g2, b2),
            });
        }
        Ok(Bert {
            hidden: h,
            heads: config.num_attention_heads,
            eps: config.layer_norm_eps as f32,
            act,
            word: to_vec(&word)?,
            position: to_vec(&position)?,
            token_type0,
            emb_norm,
            layers,
            vocab,
            max_positions,
            device,
        })
    }

    /// Output width (the embedding dimension before pooling).
    pub(crate) fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// How many positions the model has embeddings for.
    pub(crate) fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// `out = layer_norm(out + bias + residual)` in place, with a `(bias, gamma, beta)` norm:
    /// the step that closes both the attention and the feed-forward half of a layer.
    fn add_and_norm(
        &self,
        out: &Tensor,
        residual: &Tensor,
        (bias, gamma, beta): &(Vec<f32>, Vec<f32>, Vec<f32>),
    ) -> candle_core::Result<()> {
        let norm = BiasResidualNorm {
            bias: bias.clone(),
            gamma: gamma.clone(),
            beta: beta.clone(),
            eps: self.eps,
        };
        out.inplace_op2(residual, &norm)
    }

    /// Runs the encoder on a batch of token-id sequences (already truncated, no padding) and
    /// returns the last hidden states, `seq` rows of `hidden` per sequence, padded to the
    /// longest sequence (`seq`).
    pub(crate) fn forward(&self, ids: &[&[u32]]) -> Result<(Vec<f32>, usize), String> {
        let b = ids.len();
        let s = ids.iter().map(|x| x.len()).max().unwrap_or(0).max(1);
        if s > self.max_positions {
            return Err(format!(
                "sequence of {s} tokens exceeds the model's {} positions",
                self.max_positions
            ));
        }
        let h = self.hidden;
        let nh = self.heads;
        let dh = h / nh;
        let lengths: Vec<usize> = ids.iter().map(|x| x.len().max(1)).collect();

        // Embeddings: word + position + token type 0, then layer norm, gathered by hand.
        let mut x = vec![0f32; b * s * h];
        let zeros = vec![0f32; h];
        for (bi, seq) in ids.iter().enumerate() {
            for pos in 0..s {
                let id = seq.get(pos).copied().unwrap_or(0) as usize;
                if id >= self.vocab {
                    return Err(format!("token id {id} is outside the vocabulary"));
                }
                let row = &mut x[(bi * s + pos) * h..(bi * s + pos + 1) * h];
                let w = &self.word[id * h..(id + 1) * h];
                let p = &self.position[pos * h..(pos + 1) * h];
                for k in 0..h {
                    row[k] = w[k] + p[k] + self.token_type0[k];
                }
                layer_norm_row(
                    row,
                    None,
                    &zeros,
                    &self.emb_norm.0,
                    &self.emb_norm.1,
                    self.eps,
                );
            }
        }
        let e = |e: candle_core::Error| e.to_string();
        let mut x = Tensor::from_vec(x, (b * s, h), &self.device).map_err(e)?;

        for layer in &self.layers {
            // Self-attention.
            let qkv = x.matmul(&layer.wqkv).map_err(e)?;
            qkv.inplace_op1(&BiasAct {
                bias: layer.bqkv.clone(),
                act: None,
            })
            .map_err(e)?;
            let qkv = qkv
                .reshape((b, s, 3, nh, dh))
                .and_then(|t| t.permute((2, 0, 3, 1, 4)))
                .and_then(|t| t.contiguous())
                .map_err(e)?;
            let q = qkv.get(0).map_err(e)?;
            let k = qkv.get(1).map_err(e)?;
            let v = qkv.get(2).map_err(e)?;
            let scores = q.matmul(&k.t().map_err(e)?).map_err(e)?;
            scores
                .inplace_op1(&MaskedSoftmax {
                    lengths: lengths.clone(),
                    heads: nh,
                    seq: s,
                })
                .map_err(e)?;
            let ctx = scores
                .matmul(&v)
                .and_then(|t| t.transpose(1, 2))
                .and_then(|t| t.contiguous())
                .and_then(|t| t.reshape((b * s, h)))
                .map_err(e)?;
            drop(scores);
            let a = ctx.matmul(&layer.wo).map_err(e)?;
            self.add_and_norm(&a, &x, &layer.attn_norm).map_err(e)?;
            x = a;

            // Feed-forward.
            let inter = x.matmul(&layer.wi).map_err(e)?;
            inter
                .inplace_op1(&BiasAct {
                    bias: layer.bi.clone(),
                    act: Some(self.act),
                })
                .map_err(e)?;
            let out = inter.matmul(&layer.wo2).map_err(e)?;
            drop(inter);
            self.add_and_norm(&out, &x, &layer.out_norm).map_err(e)?;
            x = out;
        }
        let flat = x
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(e)?;
        Ok((flat, s))
    }
}
