#!/usr/bin/env bash
# bench/copy/run.sh — `ragshift copy` against pgcopydb and pg_dump | pg_restore, on the same data
# in the same run, to the point where the target is ready to serve (data + primary key + btree
# + vector index), plus the data phase against the practical floor: one plain
# `COPY TO STDOUT (FORMAT binary) | COPY FROM STDIN (FORMAT binary)` pipe.
#
# It starts two PostgreSQL clusters (source and target) on this machine with initdb, loads
# ROWS rows of vector(DIM) with ~1 KB of content each (the platform's table, ivfflat lists = 100),
# runs every contender into a fresh target database, checks each one's row count, and prints
# the times and ratios.
#
#   bench/copy/run.sh                    # 100k rows x vector(1024), --jobs 2
#   ROWS=20000 JOBS=2 bench/copy/run.sh  # a quicker look
#   SKIP_DUMP=1 bench/copy/run.sh        # without the (slow) pg_dump -Fc runs
#   RUNS=5 bench/copy/run.sh             # medians of 5 rounds (default 3; pg_dump runs once)
#   RAGSHIFT_BIN=path/to/ragshift ...    # use a release binary built already
#   BASELINE_BIN=path/to/old/ragshift ...  # also time another ragshift (before a change), interleaved
#
# Needs about 6 GB of free disk (each target database is dropped once measured).
set -euo pipefail
shopt -s inherit_errexit  # a failing step inside $(...) stops the run too

: "${ROWS:=100000}" "${DIM:=1024}" "${JOBS:=2}" "${RUNS:=3}"  # defaults; set any to change
. "$(dirname "$0")/../lib/clusters.sh"
SRC="postgres://postgres@127.0.0.1:$SP/rag"
count() { psql -X -Atc "SELECT count(*) FROM items" "$(tgt_url "$1")"; }

echo "loading $ROWS rows of vector($DIM) with ~1 KB of content into the source..." >&2
psql_q "$SRC_ADMIN" -c "CREATE DATABASE rag"
psql_q "$SRC" <<SQL
CREATE EXTENSION vector;
CREATE TABLE items(id CHAR(26) PRIMARY KEY, botid CHAR(26), content text, source text, embedding vector($DIM));
INSERT INTO items
SELECT lpad(i::text, 26, '0'),
       'BOT' || lpad((i % 50)::text, 23, '0'),
       (SELECT string_agg(md5(random()::text), ' ') FROM generate_series(1, 30) g WHERE i > 0),
       's3://bucket/' || (i % 50) || '/documents/doc-' || (i % 37) || '.pdf',
       (SELECT array_agg(random()::real) FROM generate_series(1, $DIM) g WHERE i > 0)::vector
  FROM generate_series(1, $ROWS) i;
CREATE INDEX idx_items_embedding ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 100);
CREATE INDEX idx_items_botid ON items (botid);
VACUUM ANALYZE items;
CHECKPOINT;
SQL
SIZE=$(psql -X -Atc "SELECT pg_size_pretty(pg_table_size('items'))" "$SRC")
echo "source table: $SIZE" >&2

# Every contender runs RUNS times, interleaved so that they share the machine's moods; the
# medians are compared.

# 1. The floor: one plain binary COPY pipe, then the three indexes one after another.
run_pipe() { # sets PIPE_DATA_1 PIPE_INDEX_1 PIPE_ALL_1
  createdb_t t_pipe
  psql_q "$(tgt_url t_pipe)" -c "CREATE EXTENSION vector; CREATE TABLE items(id CHAR(26) NOT NULL, botid CHAR(26), content text, source text, embedding vector($DIM))"
  local t0 t1 t2
  t0=$(now)
  psql -X -q -c "COPY (SELECT * FROM items) TO STDOUT (FORMAT binary)" "$SRC" \
    | psql_q "$(tgt_url t_pipe)" -c "COPY items FROM STDIN (FORMAT binary)"
  t1=$(now)
  psql_q "$(tgt_url t_pipe)" -c "SET maintenance_work_mem = '1GB'" \
    -c "ALTER TABLE items ADD PRIMARY KEY (id)" \
    -c "CREATE INDEX idx_items_botid ON items (botid)" \
    -c "CREATE INDEX idx_items_embedding ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 100)"
  t2=$(now)
  PIPE_DATA_1=$(secs "$t0" "$t1"); PIPE_INDEX_1=$(secs "$t1" "$t2"); PIPE_ALL_1=$(secs "$t0" "$t2")
  [ "$(count t_pipe)" = "$ROWS" ] || { echo "plain pipe: wrong row count" >&2; exit 1; }
  dropdb_t t_pipe
  echo "  pipe: data ${PIPE_DATA_1}s, indexes ${PIPE_INDEX_1}s" >&2
}

# 2. ragshift copy --jobs $JOBS as an operator runs it (verification on), and --jobs 1 --no-verify
#    for the data phase against the pipe: with verification on, ragshift reads the source's
#    checksums during the data phase on purpose, which makes that phase longer and the whole
#    copy shorter.
run_ragshift() { # jobs db [--no-verify]
  createdb_t "$2"
  local t0 t1 out
  t0=$(now)
  out=$("$RAGSHIFT" copy --json -q --source "$SRC" --target "$(tgt_url "$2")" --jobs "$1" --progress-secs 60 ${3:-})
  t1=$(now)
  echo "$out" | tail -1 > "$WORK/$2.json"
  python3 - "$WORK/$2.json" "$1 ${3:-}" "$(secs "$t0" "$t1")" <<'PY' >&2
import json, sys
s = json.load(open(sys.argv[1]))
assert s["succeeded"], s
v = s.get("verify")
checked = f"verify {v['seconds']:.1f}s (the source's half during the data)" if v else "not verified"
print(f"  ragshift --jobs {sys.argv[2].strip()}: {sys.argv[3]}s = data {s['data_seconds']:.1f}s + indexes {s['index_seconds']:.1f}s; {checked}; {s['partitions']} partitions, {s['bytes']/1e6:.0f} MB")
PY
  [ "$(count "$2")" = "$ROWS" ] || { echo "ragshift: wrong row count" >&2; exit 1; }
  dropdb_t "$2"
  secs "$t0" "$t1"
}
data_of() { python3 -c "import json,sys; print('%.1f' % json.load(open(sys.argv[1]))['data_seconds'])" "$WORK/$1.json"; }

# 3. pgcopydb clone (copies the whole database: the extension, the table, its indexes).
run_pgcopydb_checked() {
  local took
  took=$(run_pgcopydb "$SRC" t_pgc "$JOBS")
  [ "$(count t_pgc)" = "$ROWS" ] || { echo "pgcopydb: wrong row count" >&2; exit 1; }
  dropdb_t t_pgc
  echo "  pgcopydb: ${took}s" >&2
  echo "$took"
}

declare -a PD PI PA R1 R1D RN RND PG BN
for run in $(seq "$RUNS"); do
  echo "round $run of $RUNS..." >&2
  run_pipe; PD+=("$PIPE_DATA_1"); PI+=("$PIPE_INDEX_1"); PA+=("$PIPE_ALL_1")
  R1+=("$(run_ragshift 1 t_rs1 --no-verify)"); R1D+=("$(data_of t_rs1)")
  RN+=("$(run_ragshift "$JOBS" t_rsn)"); RND+=("$(data_of t_rsn)")
  PG+=("$(run_pgcopydb_checked)")
  if [ -n "${BASELINE_BIN:-}" ]; then
    # The same copy by another ragshift (the one before a change), in the same round.
    BN+=("$(RAGSHIFT="$BASELINE_BIN" run_ragshift "$JOBS" t_base)")
  fi
done
PIPE_DATA=$(median "${PD[@]}"); PIPE_INDEX=$(median "${PI[@]}"); PIPE_ALL=$(median "${PA[@]}")
RS1_ALL=$(median "${R1[@]}"); RS1_DATA=$(median "${R1D[@]}")
RSN_ALL=$(median "${RN[@]}"); RSN_DATA=$(median "${RND[@]}")
PGC_ALL=$(median "${PG[@]}")

# 4. pg_dump -Fc | pg_restore -j (a file in between: pg_restore -j needs one).
run_dump() { # db extra-pg_dump-flags
  createdb_t "$1"
  local t0 t1
  t0=$(now)
  pg_dump -Fc $2 -f "$WORK/$1.dump" "$SRC"
  pg_restore -j "$JOBS" --no-owner --exit-on-error -d "$(tgt_url "$1")" "$WORK/$1.dump"
  t1=$(now)
  rm -f "$WORK/$1.dump"
  [ "$(count "$1")" = "$ROWS" ] || { echo "pg_restore: wrong row count" >&2; exit 1; }
  dropdb_t "$1"
  secs "$t0" "$t1"
}
if [ -z "${SKIP_DUMP:-}" ]; then
  echo "pg_dump -Fc | pg_restore -j $JOBS..." >&2
  DUMP_ALL=$(run_dump t_dump "")
  echo "pg_dump -Fc -Z0 | pg_restore -j $JOBS..." >&2
  DUMP0_ALL=$(run_dump t_dump0 "-Z0")
fi

echo
echo "copy benchmark: $ROWS rows x vector($DIM), ~1 KB content each, source table $SIZE, $(nproc) cores, jobs $JOBS, medians of $RUNS rounds"
echo "time to a target ready to serve (data + primary key + btree + vector index):"
printf "  %-52s %6ss\n" "ragshift copy --jobs $JOBS (incl. verification)" "$RSN_ALL"
printf "  %-52s %6ss\n" "ragshift copy --jobs 1 --no-verify" "$RS1_ALL"
printf "  %-52s %6ss\n" "pgcopydb clone --table-jobs $JOBS --index-jobs $JOBS" "$PGC_ALL"
if [ -z "${SKIP_DUMP:-}" ]; then
  printf "  %-52s %6ss\n" "pg_dump -Fc | pg_restore -j $JOBS" "$DUMP_ALL"
  printf "  %-52s %6ss\n" "pg_dump -Fc -Z0 | pg_restore -j $JOBS" "$DUMP0_ALL"
fi
printf "  %-52s %6ss (data %ss + indexes one after another %ss)\n" "plain binary COPY pipe" "$PIPE_ALL" "$PIPE_DATA" "$PIPE_INDEX"
echo "ratios:"
printf "  %-52s %6s  (goal <= 0.50)\n" "ragshift --jobs $JOBS / pgcopydb clone" "$(ratio "$RSN_ALL" "$PGC_ALL")"
if [ -z "${SKIP_DUMP:-}" ]; then
  printf "  %-52s %6s\n" "ragshift --jobs $JOBS / pg_dump -Fc | pg_restore" "$(ratio "$RSN_ALL" "$DUMP_ALL")"
  printf "  %-52s %6s\n" "ragshift --jobs $JOBS / pg_dump -Fc -Z0 | pg_restore" "$(ratio "$RSN_ALL" "$DUMP0_ALL")"
fi
printf "  %-52s %6s  (goal <= 1.20; %ss vs %ss)\n" "ragshift --jobs 1 --no-verify data phase / pipe data" "$(ratio "$RS1_DATA" "$PIPE_DATA")" "$RS1_DATA" "$PIPE_DATA"
printf "  %-52s %6s  (%ss, the source's checksums read meanwhile)\n" "ragshift --jobs $JOBS data phase / plain pipe data" "$(ratio "$RSN_DATA" "$PIPE_DATA")" "$RSN_DATA"
if [ -n "${BASELINE_BIN:-}" ]; then
  BASE_ALL=$(median "${BN[@]}")
  printf "  %-52s %6s  (goal <= 1.00; %ss vs %ss, rounds: %s / %s)\n" "ragshift --jobs $JOBS / baseline ragshift --jobs $JOBS" "$(ratio "$RSN_ALL" "$BASE_ALL")" "$RSN_ALL" "$BASE_ALL" "${RN[*]}" "${BN[*]}"
fi
