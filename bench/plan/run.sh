#!/usr/bin/env bash
# Registry benchmark (issue 8), one command: finding every bot of a platform table.
#
#   (a) live table: `ragshift plan` (parallel filtered scan, 1 and 4 segments) vs the platform's
#       own migration script's loop (boto3: one sequential Scan with
#       FilterExpression contains(SK, '#BOT#'), paging with LastEvaluatedKey), against the same
#       moto server and table, in this run;
#   (b) offline: `ragshift plan --registry-file` on a gzipped DynamoDB export vs a Python loop
#       over the same export (gzip + json per line, keep `#BOT#` items).
#
#   bench/plan/run.sh                     # 2,000 bots among 40,000 items
#   BOTS=500 OTHERS=5000 bench/plan/run.sh
#
# Needs the venv from scripts/setup.sh (moto_server, boto3). Numbers against moto measure
# ragshift's client side and moto's speed, not DynamoDB's: see the report.
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
VENV="$RAGSHIFT_HOME/venv"
BOTS="${BOTS:-2000}"
OTHERS="${OTHERS:-38000}"
WORK="$(mktemp -d)"
MOTO_PID=""
cleanup() {
    if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

cd "$ROOT"
cargo build --release -q -p ragshift
BIN="$CARGO_TARGET_DIR/release/ragshift"

PORT="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export ENDPOINT="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
    if "$VENV/bin/python" -c "import urllib.request,os; urllib.request.urlopen(os.environ['ENDPOINT']+'/moto-api/')" 2>/dev/null; then break; fi
    sleep 0.1
done

echo "== loading $BOTS bots among $((BOTS + OTHERS)) items (aliases, conversations) =="
"$VENV/bin/python" "$ROOT/bench/plan/fixture.py" "$ENDPOINT" "$WORK" "$BOTS" "$OTHERS"

time_of() { # prints seconds taken by the command
    local start end
    start=$(date +%s.%N)
    "$@" >"$WORK/last.out" 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; return 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
bots_in() { "$VENV/bin/python" -c "import json,sys; d=json.load(open('$WORK/last.out')); print(d['totals']['bots'] + d['totals']['skipped'])"; }

echo
echo "== (a) live table =="
export RAGSHIFT_AWS_ENDPOINT_URL="$ENDPOINT"
base=$(time_of "$VENV/bin/python" "$ROOT/bench/plan/baseline_scan.py" "$ENDPOINT" bench_table)
echo "baseline (sequential filtered scan, boto3): ${base}s, $(cat "$WORK/last.out") bots"
for seg in 1 4; do
    t=$(time_of "$BIN" plan --json -q --registry-table bench_table --scan-segments "$seg" --documents-dir "$WORK")
    echo "ragshift plan, $seg segment(s): ${t}s, $(bots_in) bots; ratio baseline/ragshift = $(echo "scale=2; $base / $t" | bc -l)x"
done

echo
echo "== (b) offline export (gzipped JSON lines) =="
base=$(time_of "$VENV/bin/python" "$ROOT/bench/plan/baseline_export.py" "$WORK/export")
echo "baseline (python gzip+json): ${base}s, $(cat "$WORK/last.out") bots"
t=$(time_of "$BIN" plan --json -q --registry-file "$WORK/export" --documents-dir "$WORK")
echo "ragshift plan --registry-file: ${t}s, $(bots_in) bots; ratio baseline/ragshift = $(echo "scale=2; $base / $t" | bc -l)x"
