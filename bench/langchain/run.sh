#!/usr/bin/env bash
# bench/langchain/run.sh — `ragshift copy --layout langchain` against `pgcopydb clone` on a
# LangChain v1 store (langchain-postgres `PGVector`): the collection table and
# `langchain_pg_embedding` with ROWS rows of vector(DIM), ~1 KB of text and nested jsonb
# metadata each, over 3 collections, to the point where the target is ready to serve (data,
# both tables, their keys, the library's GIN index on the metadata and an IVFFlat index).
#
# The tables are created by the real library (from the test venv, scripts/setup-python.sh),
# the rows bulk-loaded by SQL; each contender copies into a fresh target database, its row
# counts are checked, and the medians of RUNS interleaved rounds are compared.
#
#   bench/langchain/run.sh                   # 100k rows x vector(1536), --jobs 2, 3 rounds
#   ROWS=20000 RUNS=1 bench/langchain/run.sh # a quicker look
#   RAGSHIFT_BIN=path/to/ragshift ...        # use a release binary built already
#
# Needs about 8 GB of free disk.
set -euo pipefail
shopt -s inherit_errexit  # a failing step inside $(...) stops the run too

: "${ROWS:=100000}" "${DIM:=1536}" "${JOBS:=2}" "${RUNS:=3}"  # defaults; set any to change
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/../../scripts/setup-python.sh" >&2
. "$HERE/../lib/clusters.sh"
PY="${RAGSHIFT_HOME:-$HOME/.cache/ragshift}/venv/bin/python"
SRC="postgres://postgres@127.0.0.1:$SP/rag"

echo "creating a LangChain v1 store with the library, then $ROWS rows of vector($DIM)..." >&2
psql_q "$SRC_ADMIN" -c "CREATE DATABASE rag"
"$PY" - "$SRC" "$DIM" <<'PY'
import sys
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_postgres import PGVector
from sqlalchemy.engine import make_url

url = make_url(sys.argv[1]).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
for name in ["manuals", "tickets", "wiki"]:
    PGVector(embeddings=DeterministicFakeEmbedding(size=int(sys.argv[2])), connection=url,
             collection_name=name, collection_metadata={"team": name},
             embedding_length=int(sys.argv[2]), use_jsonb=True)
PY
psql_q "$SRC" <<SQL
INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
SELECT 'doc-' || i,
       (SELECT uuid FROM langchain_pg_collection ORDER BY name OFFSET i % 3 LIMIT 1),
       (SELECT array_agg(random()::real) FROM generate_series(1, $DIM) g WHERE i > 0)::vector,
       (SELECT string_agg(md5(random()::text), ' ') FROM generate_series(1, 30) g WHERE i > 0),
       jsonb_build_object('source', 's3://bucket/doc-' || (i % 997) || '.pdf', 'page', i % 40,
                          'tags', jsonb_build_array('t' || (i % 7), 'ü'), 'meta', jsonb_build_object('n', i))
  FROM generate_series(1, $ROWS) i;
CREATE INDEX lc_embedding_ivfflat ON langchain_pg_embedding USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
VACUUM ANALYZE;
CHECKPOINT;
SQL
SIZE=$(psql -X -Atc "SELECT pg_size_pretty(pg_total_relation_size('langchain_pg_embedding'))" "$SRC")
echo "source: $SIZE" >&2
# Rows of both tables and indexes of both, as the source has them.
SHAPE_SQL="SELECT (SELECT count(*) FROM langchain_pg_embedding) || ' ' || (SELECT count(*) FROM langchain_pg_collection) || ' ' || (SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'langchain_pg_%')"
WANT=$(psql -X -Atc "$SHAPE_SQL" "$SRC")
check() { # db contender
  local got
  got=$(psql -X -Atc "$SHAPE_SQL" "$(tgt_url "$1")")
  [ "$got" = "$WANT" ] || { echo "$2: rows, collections and indexes on the target are '$got', not '$WANT'" >&2; exit 1; }
}

run_ragshift() {
  createdb_t t_rs
  local t0 t1
  t0=$(now)
  "$RAGSHIFT" copy -q --json --layout langchain --source "$SRC" --target "$(tgt_url t_rs)" --jobs "$JOBS" --progress-secs 60 >"$WORK/rs.json"
  t1=$(now)
  check t_rs ragshift
  dropdb_t t_rs
  echo "  ragshift: $(secs "$t0" "$t1")s" >&2
  secs "$t0" "$t1"
}

run_pgcopydb_checked() {
  local took
  took=$(run_pgcopydb "$SRC" t_pgc "$JOBS")
  check t_pgc pgcopydb
  dropdb_t t_pgc
  echo "  pgcopydb: ${took}s" >&2
  echo "$took"
}

declare -a RS PG
for run in $(seq "$RUNS"); do
  echo "round $run of $RUNS..." >&2
  RS+=("$(run_ragshift)")
  PG+=("$(run_pgcopydb_checked)")
done
RS_ALL=$(median "${RS[@]}"); PG_ALL=$(median "${PG[@]}")
echo
echo "LangChain v1 store: $ROWS rows x vector($DIM), nested jsonb metadata, 3 collections, $SIZE, $(nproc) cores, jobs $JOBS, medians of $RUNS rounds"
echo "time to a target ready to serve (both tables, keys, GIN and IVFFlat indexes):"
printf "  %-52s %6ss  (rounds %s)\n" "ragshift copy --layout langchain --jobs $JOBS (verified)" "$RS_ALL" "${RS[*]}"
printf "  %-52s %6ss  (rounds %s)\n" "pgcopydb clone --table-jobs $JOBS --index-jobs $JOBS" "$PG_ALL" "${PG[*]}"
printf "  %-52s %6s\n" "ragshift / pgcopydb" "$(ratio "$RS_ALL" "$PG_ALL")"
