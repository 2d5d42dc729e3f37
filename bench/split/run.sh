#!/usr/bin/env bash
# Splitter benchmark: ragshift's splitter vs llama_index's SentenceSplitter (the platform's
# splitter) on the same 50 MB mixed English/Vietnamese corpus, measured in the same run.
#
#   bench/split/run.sh            # 50 MB
#   SIZE_MB=10 bench/split/run.sh # smaller corpus
#
# The baseline runs in a venv at $HOME/.cache/ragshift/bench-venv (llama-index-core from
# PyPI); when it cannot be installed only ragshift's number is printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ragshift/target}"
WORK="${BENCH_DIR:-$HOME/.cache/ragshift/bench-split}"
SIZE_MB="${SIZE_MB:-50}"
VENV="$HOME/.cache/ragshift/bench-venv"
mkdir -p "$WORK"
CORPUS="$WORK/corpus-${SIZE_MB}mb.txt"

echo "building the release bench binary..." >&2
cargo build --release -q -p ragshift-ingest --example split_bench
BIN="$CARGO_TARGET_DIR/release/examples/split_bench"
[ -f "$CORPUS" ] || "$BIN" generate "$CORPUS" "$SIZE_MB"

echo "ragshift splitter..." >&2
RS_JSON="$("$BIN" run "$CORPUS")"

PY_JSON=""
if command -v python3 >/dev/null 2>&1; then
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import llama_index.core' 2>/dev/null; then
    echo "installing llama-index-core into $VENV..." >&2
    { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q llama-index-core; } >&2 || true
  fi
  if "$VENV/bin/python" -c 'import llama_index.core' 2>/dev/null; then
    echo "llama_index SentenceSplitter..." >&2
    PY_JSON="$("$VENV/bin/python" bench/split/llama_split.py "$CORPUS")"
  else
    echo "llama-index-core could not be installed; printing ragshift's number only" >&2
  fi
else
  echo "python3 not found; printing ragshift's number only" >&2
fi

python3 - "$RS_JSON" "$PY_JSON" <<'PY' 2>/dev/null || { echo "ragshift: $RS_JSON"; echo "llama_index: ${PY_JSON:-n/a}"; }
import json, sys
rs = json.loads(sys.argv[1])
print(f"corpus: {rs['bytes']/1048576:.1f} MB, {rs['chars']/1e6:.2f} M characters")
print(f"ragshift splitter (in memory): {rs['mb_per_s']:8.1f} MB/s  {rs['chars_per_s']/1e6:8.2f} M chars/s  {rs['chunks']} chunks of {rs['mean_chunk_chars']} chars on average")
print(f"ragshift splitter (streamed):  {rs['stream_mb_per_s']:8.1f} MB/s  {rs['stream_chars_per_s']/1e6:8.2f} M chars/s")
if sys.argv[2]:
    py = json.loads(sys.argv[2])
    print(f"llama_index SentenceSplitter:  {py['mb_per_s']:8.2f} MB/s  {py['chars_per_s']/1e6:8.2f} M chars/s  {py['chunks']} chunks of {py['mean_chunk_chars']} chars on average")
    print(f"ratio (in memory): {rs['chars_per_s']/py['chars_per_s']:.1f}x   goal: 20x")
PY
