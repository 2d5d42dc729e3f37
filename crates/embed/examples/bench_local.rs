//! Benchmark (b): local-model texts/s on 512 chunks of ~1000 characters (half English, half
//! Vietnamese), the workload of a rebuild. Writes the texts and vectors to `--out DIR` so
//! bench/embed/st_bench.py can run sentence-transformers on the same texts and compare.
//!
//! Run through bench/embed/run.sh, or:
//! `cargo run --release -p ragshift-embed --example bench_local -- --out /tmp/ragshift-bench`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Instant;

use ragshift_embed::{Embedder, LocalEmbedder, LocalOptions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EN: &[&str] = &[
    "the",
    "migration",
    "tool",
    "copies",
    "every",
    "chunk",
    "of",
    "a",
    "bot's",
    "knowledge",
    "base",
    "into",
    "new",
    "cluster",
    "and",
    "verifies",
    "that",
    "search",
    "still",
    "returns",
    "same",
    "answers",
    "documents",
    "were",
    "split",
    "by",
    "sentences",
    "with",
    "overlap",
    "embedding",
    "model",
    "vector",
    "database",
    "index",
    "query",
    "users",
    "upload",
    "files",
    "pages",
    "sitemap",
    "retrieval",
    "quality",
    "latency",
    "throughput",
    "provider",
    "limits",
];
const VI: &[&str] = &[
    "công", "cụ", "di", "chuyển", "sao", "chép", "mọi", "đoạn", "văn", "bản", "của", "cơ", "sở",
    "tri", "thức", "sang", "cụm", "mới", "và", "kiểm", "tra", "rằng", "tìm", "kiếm", "vẫn", "trả",
    "về", "cùng", "câu", "trả", "lời", "tài", "liệu", "được", "chia", "theo", "mô", "hình",
    "nhúng", "người", "dùng", "tải", "lên", "tệp", "trang", "chất", "lượng",
];

/// Deterministic texts of about `chars` characters: sentences of pseudo-random words.
fn make_texts(n: usize, chars: usize) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(42);
    (0..n)
        .map(|i| {
            let words = if i % 2 == 0 { EN } else { VI };
            let mut s = String::new();
            while s.chars().count() < chars {
                let len = rng.usize(6..16);
                let mut sentence: Vec<&str> =
                    (0..len).map(|_| words[rng.usize(..words.len())]).collect();
                let first = sentence[0].to_string();
                let cap: String = first
                    .chars()
                    .take(1)
                    .flat_map(char::to_uppercase)
                    .chain(first.chars().skip(1))
                    .collect();
                sentence[0] = &cap;
                s.push_str(&sentence.join(" "));
                s.push_str(". ");
            }
            s.chars().take(chars).collect::<String>().trim().to_string()
        })
        .collect()
}

fn main() {
    let mut out_dir: Option<PathBuf> = None;
    let mut n = 512;
    let mut tokens_per_forward = LocalOptions::default().max_tokens_per_forward;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out_dir = args.next().map(PathBuf::from),
            "--n" => n = args.next().unwrap().parse().unwrap(),
            "--tokens-per-forward" => tokens_per_forward = args.next().unwrap().parse().unwrap(),
            other => panic!("unknown argument {other}"),
        }
    }
    let texts = make_texts(n, 1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let model = LocalEmbedder::load(&LocalOptions {
        max_tokens_per_forward: tokens_per_forward,
        ..LocalOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // Warm-up (page in the weights, grow the allocator's pools).
    rt.block_on(model.embed_documents(&texts[..16])).unwrap();
    let start = Instant::now();
    let mut vectors = Vec::with_capacity(n);
    let mut tokens = 0;
    for batch in texts.chunks(model.max_batch_size()) {
        let out = rt.block_on(model.embed_documents(batch)).unwrap();
        tokens += out.tokens.unwrap_or(0);
        vectors.extend(out.vectors);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "candle: {n} texts ({} tokens after truncation to {}) in {secs:.2} s = {:.1} texts/s",
        tokens,
        model.max_seq_length(),
        n as f64 / secs
    );
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("texts.json"),
            serde_json::to_string(&texts).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join("candle_vectors.json"),
            serde_json::to_string(&vectors).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join("candle_result.json"),
            serde_json::json!({"texts": n, "seconds": secs, "texts_per_second": n as f64 / secs})
                .to_string(),
        )
        .unwrap();
    }
}
