#!/usr/bin/env bash
# bench/scale/rebuild.sh — the rebuild side of the scale benchmark: BOTS bots (the platform's
# registry in moto's DynamoDB, each bot's document in moto's S3) rebuilt by `ragshift rebuild`
# against a loopback embedding provider with Bedrock's latency (LATENCY_MS a request) and one
# request limit (LIMIT per WINDOW seconds) that answers 429 above it, as a provider account's
# quota does. ragshift is told the same limit; the provider counts what it saw.
#
# Prints: time, peak RSS, bots succeeded/failed, the provider's busiest window against the limit
# (must not exceed it), refusals, and the utilisation of the limit while the run was embedding
# (goal >= 0.90), with ragshift's own budget report beside it.
#
#   bench/scale/rebuild.sh                       # 2,000 bots, 600 requests per 10 s, 80 ms
#   BOTS=200 bench/scale/rebuild.sh              # a quicker look
#   RAGSHIFT_BIN=path/to/ragshift ...            # use a release binary built already
set -euo pipefail
shopt -s inherit_errexit

BOTS=${BOTS:-2000}
LIMIT=${LIMIT:-600}
WINDOW=${WINDOW:-10}
LATENCY_MS=${LATENCY_MS:-80}
CONCURRENCY=${CONCURRENCY:-16}
EMBED_CONCURRENCY=${EMBED_CONCURRENCY:-16}  # requests in flight at once, for the whole process
DIM=${DIM:-1024}
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/../../scripts/setup-python.sh" >&2
. "$HERE/../lib/clusters.sh"
PY="${RAGSHIFT_HOME:-$HOME/.cache/ragshift}/venv/bin/python"
MOTO_PORT=$((TP + 1)) PROVIDER_PORT=$((TP + 2))

"$PY" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
"$PY" "$HERE/rebuild_fixture.py" provider "$PROVIDER_PORT" "$LIMIT" "$WINDOW" "$LATENCY_MS" "$DIM" \
  >"$WORK/provider.log" 2>&1 &
PROVIDER_PID=$!
trap 'kill $MOTO_PID $PROVIDER_PID 2>/dev/null || true; cleanup' EXIT
MOTO="http://127.0.0.1:$MOTO_PORT"
for _ in $(seq 100); do
  curl -sf "$MOTO/moto-api/" >/dev/null 2>&1 && curl -sf "http://127.0.0.1:$PROVIDER_PORT/stats" >/dev/null 2>&1 && break
  sleep 0.2  # waiting for two servers to listen, not synchronising work
done

echo "writing $BOTS bots into moto (DynamoDB registry, S3 documents)..." >&2
read -r TABLE BUCKET <<<"$("$PY" "$HERE/rebuild_fixture.py" registry "$MOTO" "$BOTS")"
createdb_t rebuilt

echo "rebuilding $BOTS bots ($CONCURRENCY at once; provider: $LIMIT requests per ${WINDOW}s, ${LATENCY_MS} ms each)..." >&2
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export RAGSHIFT_AWS_ENDPOINT_URL="$MOTO" RAGSHIFT_AWS_REGION=us-east-1
export RAGSHIFT_REGISTRY_KIND=dynamodb RAGSHIFT_REGISTRY_TABLE="$TABLE"
export RAGSHIFT_DOCUMENTS_KIND=s3 RAGSHIFT_DOCUMENTS_BUCKET="$BUCKET"
export RAGSHIFT_TARGET_URL="$(tgt_url rebuilt)"
export RAGSHIFT_EMBEDDING_PROVIDER=openai RAGSHIFT_EMBEDDING_MODEL=fake-embed
export RAGSHIFT_EMBEDDING_BASE_URL="http://127.0.0.1:$PROVIDER_PORT/v1"
export RAGSHIFT_EMBEDDING_DIMENSIONS="$DIM" RAGSHIFT_EMBEDDING_BATCH_SIZE=1
export RAGSHIFT_EMBEDDING_CACHE=false RAGSHIFT_EMBEDDING_CONCURRENCY="$EMBED_CONCURRENCY"
export RAGSHIFT_EMBEDDING_REQUESTS_PER_MINUTE="$LIMIT" RAGSHIFT_EMBEDDING_BUDGET_WINDOW_SECS="$WINDOW"
export OPENAI_API_KEY=sk-bench
res=$(python3 - "$WORK/rebuild.json" "$RAGSHIFT" rebuild --yes --json -q --concurrency "$CONCURRENCY" <<'PY'
import resource, subprocess, sys, time
out = open(sys.argv[1], "w")
t0 = time.monotonic()
r = subprocess.run(sys.argv[2:], stdout=out)
print(f"{time.monotonic() - t0:.1f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} {r.returncode}")
PY
)
read -r TOOK RSS CODE <<<"$res"
STATS=$(curl -sf "http://127.0.0.1:$PROVIDER_PORT/stats")
ROWS=$(psql -X -Atc "SELECT count(*) || ' rows, ' || count(DISTINCT botid) || ' bots' FROM items" "$(tgt_url rebuilt)")

python3 - "$WORK/rebuild.json" "$STATS" "$TOOK" "$RSS" "$CODE" "$ROWS" "$BOTS" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
report = json.loads(lines[-1]).get("report", {}) if lines else {}
stats = json.loads(sys.argv[2])
took, rss, code, rows, bots = sys.argv[3:8]
ok, failed = report.get("succeeded"), report.get("failed")
print()
print(f"rebuild scale benchmark: {bots} bots, provider limit {stats['limit']} requests per {stats['window_secs']:g} s")
print(f"  ragshift rebuild          {took} s, peak RSS {rss} MB, exit {code}")
print(f"  target                    {rows}")
print(f"  bots                      succeeded {ok}, failed {failed}")
print(f"  provider                  {stats['accepted']} requests accepted, {stats['rejected']} refused (429)")
print(f"  busiest window            {stats['most_in_a_window']} of {stats['limit']} (never above the limit: {stats['most_in_a_window'] <= stats['limit']})")
print(f"  utilisation while busy    {stats['utilisation']} over {stats['busy_secs']} s  (goal >= 0.90)")
if report.get("budget"):
    print(f"  ragshift's budget report  {json.dumps(report['budget'])}")
PY
[ "$CODE" = 0 ] || { echo "ragshift rebuild exited $CODE: see above" >&2; exit 1; }
