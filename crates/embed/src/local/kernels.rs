//! Fused CPU kernels for the BERT forward pass, run in place on candle tensors.
//!
//! candle's generic ops each allocate a fresh tensor and make a full pass over memory; for a
//! small model like MiniLM those passes (bias add, the scalar `erf` in GELU, mask add + softmax,
//! residual add + layer norm) cost as much as the matrix products. Each kernel here does one pass,
//! in place, split over rows with rayon.

use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout};
use rayon::prelude::*;

/// Rows handed to one rayon task: big enough to amortise scheduling, small enough to balance.
const ROWS_PER_TASK: usize = 32;

fn f32_slice_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a mut [f32]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: input must be contiguous")))?;
    match storage {
        CpuStorage::F32(v) => Ok(&mut v[start..end]),
        _ => Err(candle_core::Error::Msg(format!("{op}: expects f32"))),
    }
}

fn f32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: input must be contiguous")))?;
    match storage {
        CpuStorage::F32(v) => Ok(&v[start..end]),
        _ => Err(candle_core::Error::Msg(format!("{op}: expects f32"))),
    }
}

/// `erf(x)` for f32 as a rational minimax approximation (the one Eigen and XLA use), accurate to
/// a few ulp and branch-free, so the compiler can vectorise it — unlike libm's scalar `erf`.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the published coefficients, as published
pub(crate) fn fast_erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_5e-5;
    p = x2 * p + -7.349_906e-4;
    p = x2 * p + -2.954_599_8e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

/// The activation between a BERT layer's two feed-forward products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (`hidden_act = "gelu"`).
    Gelu,
    /// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

#[inline(always)]
fn activate(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Gelu => 0.5 * x * (1.0 + fast_erf(x * std::f32::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            let c = (2.0f32 / std::f32::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044_715 * x * x * x)).tanh())
        }
        Activation::Relu => x.max(0.0),
    }
}

/// `x[r, c] = act(x[r, c] + bias[c])` (or just the bias add when `act` is `None`).
pub(crate) struct BiasAct {
    pub bias: Vec<f32>,
    pub act: Option<Activation>,
}

impl InplaceOp1 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-act"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let data = f32_slice_mut(storage, layout, self.name())?;
        let n = self.bias.len();
        let bias = &self.bias[..];
        let act = self.act;
        data.par_chunks_mut(n * ROWS_PER_TASK).for_each(|rows| {
            for row in rows.chunks_exact_mut(n) {
                match act {
                    None => row.iter_mut().zip(bias).for_each(|(x, b)| *x += b),
                    Some(Activation::Gelu) => row
                        .iter_mut()
                        .zip(bias)
                        .for_each(|(x, b)| *x = activate(Activation::Gelu, *x + b)),
                    Some(a) => row
                        .iter_mut()
                        .zip(bias)
                        .for_each(|(x, b)| *x = activate(a, *x + b)),
                }
            }
        });
        Ok(())
    }
}

/// Softmax over the last dimension of attention scores `[batch, heads, seq, seq]`, where key
/// positions at or past each sequence's length are padding and get probability 0. Sequences are
/// right-padded, so a length per sequence is the whole mask.
pub(crate) struct MaskedSoftmax {
    pub lengths: Vec<usize>,
    pub heads: usize,
    pub seq: usize,
}

impl InplaceOp1 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let data = f32_slice_mut(storage, layout, self.name())?;
        let s = self.seq;
        let per_seq = self.heads * s * s;
        data.par_chunks_mut(s * ROWS_PER_TASK)
            .enumerate()
            .for_each(|(chunk_i, rows)| {
                for (ri, row) in rows.chunks_exact_mut(s).enumerate() {
                    let flat_row = chunk_i * ROWS_PER_TASK + ri;
                    let seq_i = flat_row * s / per_seq;
                    let len = self.lengths.get(seq_i).copied().unwrap_or(s).clamp(1, s);
                    let (live, pad) = row.split_at_mut(len);
                    let max = live.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0f32;
                    for x in live.iter_mut() {
                        *x = (*x - max).exp();
                        sum += *x;
                    }
                    let inv = 1.0 / sum;
                    live.iter_mut().for_each(|x| *x *= inv);
                    pad.iter_mut().for_each(|x| *x = 0.0);
                }
            });
        Ok(())
    }
}

/// `x = layer_norm(x + bias + residual) * gamma + beta`, row by row: the end of both halves of
/// a BERT layer in one pass.
pub(crate) struct BiasResidualNorm {
    pub bias: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

impl InplaceOp2 for BiasResidualNorm {
    fn name(&self) -> &'static str {
        "bias-residual-layernorm"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        src: &CpuStorage,
        src_l: &Layout,
    ) -> candle_core::Result<()> {
        let residual = f32_slice(src, src_l, self.name())?;
        let data = f32_slice_mut(dst, dst_l, self.name())?;
        if residual.len() != data.len() {
            return Err(candle_core::Error::Msg(format!(
                "{}: residual has {} values, input {}",
                self.name(),
                residual.len(),
                data.len()
            )));
        }
        let n = self.bias.len();
        data.par_chunks_mut(n * ROWS_PER_TASK)
            .zip(residual.par_chunks(n * ROWS_PER_TASK))
            .for_each(|(rows, res)| {
                for (row, r) in rows.chunks_exact_mut(n).zip(res.chunks_exact(n)) {
                    layer_norm_row(row, Some(r), &self.bias, &self.gamma, &self.beta, self.eps);
                }
            });
        Ok(())
    }
}

/// Layer norm of one row after adding `bias` and an optional residual.
#[inline]
pub(crate) fn layer_norm_row(
    row: &mut [f32],
    residual: Option<&[f32]>,
    bias: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    match residual {
        Some(r) => row
            .iter_mut()
            .zip(r)
            .zip(bias)
            .for_each(|((x, r), b)| *x += r + b),
        None => row.iter_mut().zip(bias).for_each(|(x, b)| *x += b),
    }
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    row.iter_mut()
        .zip(gamma)
        .zip(beta)
        .for_each(|((x, g), b)| *x = (*x - mean) * inv * g + b);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64 (converges fast for |x| <= 4 with enough terms).
    fn erf_ref(x: f64) -> f64 {
        if x.abs() > 5.0 {
            return x.signum();
        }
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while n < 200.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn fast_erf_matches_reference() {
        let mut worst = 0.0f64;
        let mut x = -6.0f64;
        while x <= 6.0 {
            let err = (fast_erf(x as f32) as f64 - erf_ref(x)).abs();
            worst = worst.max(err);
            x += 0.001;
        }
        assert!(worst < 2e-6, "worst error {worst}");
    }

    #[test]
    fn layer_norm_row_normalises() {
        let mut row = vec![1.0, 2.0, 3.0, 4.0];
        let ones = vec![1.0; 4];
        let zeros = vec![0.0; 4];
        layer_norm_row(&mut row, None, &zeros, &ones, &zeros, 1e-12);
        let mean: f32 = row.iter().sum::<f32>() / 4.0;
        let var: f32 = row.iter().map(|x| x * x).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-4);
    }
}
