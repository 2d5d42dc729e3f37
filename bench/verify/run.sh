#!/usr/bin/env bash
# Verification benchmark: `ragshift verify` on 100k rows x vector(1024) per side (100 bots of
# 1,000 chunks, vectors TOASTed) vs a plain read of every column of the same tables
# (`SELECT sum(length(content) + length(vector_send(embedding))) FROM items`), both sides read
# at the same time as verify does. Goal: verify (checksums) <= 2x the plain read.
#
#   bench/verify/run.sh               # 100,000 rows per side
#   ROWS=20000 bench/verify/run.sh    # smaller
#   RUNS=5 bench/verify/run.sh        # median of 5 (default 3)
#
# Starts its own PostgreSQL (the testkit's ragshift-test-servers), builds both databases (the
# target is a copy of the source), runs baseline and ragshift in the same run, prints the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ragshift/target}"
ROWS="${ROWS:-100000}"
RUNS="${RUNS:-3}"
BOTS=100
PER_BOT=$(( ROWS / BOTS ))

echo "building the verification (release) and the test servers..." >&2
# The example runs exactly what `ragshift verify` runs (ragshift_verify::verify), without the
# rest of the CLI, so the bench builds even when another command is half-way through a change.
cargo build --release -q -p ragshift-verify --example verify_bench
cargo build -q -p ragshift-testkit --bin ragshift-test-servers
BENCH="$CARGO_TARGET_DIR/release/examples/verify_bench"
PSQL="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/psql"
[ -x "$PSQL" ] || { echo "psql not found: run scripts/setup.sh" >&2; exit 1; }

coproc SERVERS { exec "$CARGO_TARGET_DIR/debug/ragshift-test-servers"; }
servers_in=${SERVERS[1]}
servers_out=${SERVERS[0]}
trap 'eval "exec ${servers_in}>&-" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
PG=""
while IFS= read -r -t 180 -u "$servers_out" line; do
  case "$line" in
    RAGSHIFT_TEST_PG_URL=*) PG="${line#RAGSHIFT_TEST_PG_URL=}" ;;
    ready) break ;;
  esac
done
[ -n "$PG" ] || { echo "the PostgreSQL server did not start" >&2; exit 1; }
PG="${PG%/}"
SRC="$PG/bench_src"
TGT="$PG/bench_tgt"

echo "generating $ROWS rows x vector(1024) ($BOTS bots)..." >&2
"$PSQL" -q "$PG/postgres" -c "CREATE DATABASE bench_src"
"$PSQL" -q "$SRC" <<SQL
CREATE EXTENSION vector;
CREATE TABLE items (id character(26) PRIMARY KEY, botid character(26), content text, source text, embedding vector(1024));
INSERT INTO items
SELECT lpad(b::text, 4, '0') || lpad(i::text, 22, '0'), 'BOT' || lpad(b::text, 23, '0'),
       repeat('chunk text of bot ' || b || ' number ' || i || '. ', 25),
       's3://docs/user/' || b || '/documents/file.pdf',
       (SELECT array_agg(random()::real) FROM generate_series(1, 1024 + (b * 0 + i * 0)))::vector
  FROM generate_series(1, $BOTS) b, generate_series(1, $PER_BOT) i;
CREATE INDEX ON items (botid);
VACUUM ANALYZE items;
SQL
"$PSQL" -q "$PG/postgres" -c "CREATE DATABASE bench_tgt TEMPLATE bench_src"
"$PSQL" -At "$SRC" -c "SELECT 'source: ' || pg_size_pretty(pg_total_relation_size('items')) || ' (TOAST ' || pg_size_pretty(pg_total_relation_size(reltoastrelid)) || ')' FROM pg_class WHERE relname = 'items'" >&2

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }
median() { python3 -c "import sys, statistics; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }

READ="SELECT sum(length(content) + length(vector_send(embedding))) FROM items"
baseline() {
  "$PSQL" -qAt "$SRC" -c "$READ" >/dev/null &
  local a=$!
  "$PSQL" -qAt "$TGT" -c "$READ" >/dev/null
  wait "$a"
}
one_side() { "$PSQL" -qAt "$SRC" -c "$READ" >/dev/null; }
verify() {
  local out
  out="$("$BENCH" "$SRC" "$TGT" "$1")"
  case "$out" in *'"passed":true'*) ;; *) echo "verification did not pass: $out" >&2; exit 1 ;; esac
}

echo "warming the cache..." >&2
baseline
declare -a B S V0 V5
for _ in $(seq "$RUNS"); do
  t0=$(now); one_side; t1=$(now); S+=("$(elapsed "$t0" "$t1")")
  t0=$(now); baseline; t1=$(now); B+=("$(elapsed "$t0" "$t1")")
  t0=$(now); verify 0; t1=$(now); V0+=("$(elapsed "$t0" "$t1")")
  t0=$(now); verify 5; t1=$(now); V5+=("$(elapsed "$t0" "$t1")")
done
b=$(median "${B[@]}"); s=$(median "${S[@]}"); v0=$(median "${V0[@]}"); v5=$(median "${V5[@]}")
python3 - "$ROWS" "$s" "$b" "$v0" "$v5" <<'PY'
import sys
rows, s, b, v0, v5 = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"rows per side: {rows} x vector(1024), 100 bots; median of runs; 2 cores shared")
print(f"plain read, one side:                      {s:7.3f} s")
print(f"plain read, both sides at once (baseline): {b:7.3f} s")
print(f"ragshift verify --queries 0 (checksums):   {v0:7.3f} s   ratio {v0 / b:.2f}x   goal <= 2x")
print(f"ragshift verify (checksums + 5 queries/bot, overlap@20 and recall@20): {v5:7.3f} s   ratio {v5 / b:.2f}x")
PY
