#!/usr/bin/env bash
# Embedding benchmarks (issue 4), one command:
#   (a) throughput wrapper vs the platform's loop against a local fake provider
#   (b) local model (candle) texts/s vs sentence-transformers on PyTorch CPU, same texts
# Needs the model (scripts/setup-model.sh). For (b)'s Python side it uses the venv
# $RAGSHIFT_HOME/bench-venv with sentence-transformers, creating it with pip if missing
# (skipped with a note if that fails).
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
MODEL_DIR="${RAGSHIFT_MODEL_DIR:-$RAGSHIFT_HOME/models/all-MiniLM-L6-v2}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

cd "$ROOT"
cargo build --release -q -p ragshift-embed --example bench_throughput --example bench_local
BIN="$CARGO_TARGET_DIR/release/examples"

echo "== (a) throughput: 10,000 chunks, fake provider =="
"$BIN/bench_throughput" "$@"

echo
echo "== (b) local model: 512 chunks of ~1000 characters (English + Vietnamese) =="
VENV="$RAGSHIFT_HOME/bench-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sentence_transformers' 2>/dev/null; then
    echo "(installing sentence-transformers into $VENV)"
    { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q sentence-transformers; } || echo "could not install sentence-transformers"
fi
"$BIN/bench_local" --out "$OUT"
if "$VENV/bin/python" -c 'import sentence_transformers' 2>/dev/null; then
    HF_HUB_OFFLINE=1 "$VENV/bin/python" "$ROOT/bench/embed/st_bench.py" "$MODEL_DIR" "$OUT" 2>/dev/null
    python3 - "$OUT" <<'PY'
import json, sys
d = sys.argv[1]
c = json.load(open(f"{d}/candle_result.json"))
s = json.load(open(f"{d}/st_result.json"))
print(f"ratio candle / sentence-transformers: {c['texts_per_second'] / s['texts_per_second']:.2f}x (goal >= 1.0x)")
PY
else
    echo "sentence-transformers unavailable: only the candle side was measured"
fi
