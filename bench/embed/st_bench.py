"""Benchmark (b), Python side: sentence-transformers on PyTorch CPU over the same texts the
Rust side embedded (texts.json written by the bench_local example), and the agreement between
the two sets of vectors.

    python st_bench.py MODEL_DIR OUT_DIR
"""
import json
import sys
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def main() -> None:
    model_dir, out_dir = sys.argv[1], sys.argv[2]
    texts = json.load(open(f"{out_dir}/texts.json"))
    model = SentenceTransformer(model_dir, device="cpu")
    model.encode(texts[:16], batch_size=32)  # warm-up
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
    secs = time.perf_counter() - start
    candle = np.array(json.load(open(f"{out_dir}/candle_vectors.json")), dtype=np.float32)
    cos = (candle * vectors).sum(axis=1) / (
        np.linalg.norm(candle, axis=1) * np.linalg.norm(vectors, axis=1)
    )
    result = {
        "texts": len(texts),
        "seconds": secs,
        "texts_per_second": len(texts) / secs,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "min_cosine_vs_candle": float(cos.min()),
        "mean_cosine_vs_candle": float(cos.mean()),
    }
    json.dump(result, open(f"{out_dir}/st_result.json", "w"))
    print(
        f"sentence-transformers (torch {torch.__version__}, {torch.get_num_threads()} threads): "
        f"{len(texts)} texts in {secs:.2f} s = {len(texts) / secs:.1f} texts/s; "
        f"cosine vs candle min {cos.min():.6f} mean {cos.mean():.6f}"
    )


if __name__ == "__main__":
    main()
