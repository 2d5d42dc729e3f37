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
#
# Needs about 6 GB of free disk (each target database is dropped once measured).
set -euo pipefail
shopt -s inherit_errexit  # a failing step inside $(...) stops the run too

ROWS=${ROWS:-100000}
DIM=${DIM:-1024}
JOBS=${JOBS:-2}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ragshift/target}

BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$BIN/initdb" ] || { echo "PostgreSQL server binaries not found: run scripts/setup-postgres.sh" >&2; exit 2; }
export PATH="$BIN:$PATH"
if ! command -v pgcopydb >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing pgcopydb (Debian package)..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgcopydb >/dev/null \
      || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgcopydb >/dev/null; }
  else
    echo "pgcopydb is missing: sudo apt-get install pgcopydb" >&2; exit 2
  fi
fi

if [ -n "${RAGSHIFT_BIN:-}" ]; then
  RAGSHIFT="$RAGSHIFT_BIN"   # a release binary built already
else
  echo "building ragshift (release)..." >&2
  cargo build --release -q -p ragshift --manifest-path "$ROOT/Cargo.toml"
  RAGSHIFT="$CARGO_TARGET_DIR/release/ragshift"
fi

WORK=$(mktemp -d /tmp/ragshift-bench-copy.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$WORK"
SP=$((20000 + RANDOM % 20000)); TP=$((SP + 1))

cleanup() {
  for c in src tgt; do
    [ -f "$WORK/$c/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$WORK/$c" -m immediate stop >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

start_cluster() { # name port
  as_pg "$BIN/initdb" -D "$WORK/$1" -U postgres --auth=trust --no-sync -E UTF8 --no-locale >/dev/null
  cat >>"$WORK/$1/postgresql.conf" <<CONF
port = $2
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
shared_buffers = '1GB'
max_wal_size = '4GB'
min_wal_size = '80MB'
checkpoint_timeout = '1h'
maintenance_work_mem = '1GB'
max_connections = 100
CONF
  as_pg "$BIN/pg_ctl" -D "$WORK/$1" -l "$WORK/$1.log" -w start >/dev/null
}
start_cluster src "$SP"
start_cluster tgt "$TP"
SRC="postgres://postgres@127.0.0.1:$SP/rag"
tgt_url() { echo "postgres://postgres@127.0.0.1:$TP/$1"; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
count() { psql -X -Atc "SELECT count(*) FROM items" "$(tgt_url "$1")"; }

echo "loading $ROWS rows of vector($DIM) with ~1 KB of content into the source..." >&2
psql_q "postgres://postgres@127.0.0.1:$SP/postgres" -c "CREATE DATABASE rag"
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
createdb_t() { psql_q "$(tgt_url postgres)" -c "CREATE DATABASE $1"; }
# Each target database is dropped once measured and checked, to keep the disk footprint small.
checkpoint_t() { psql_q "$(tgt_url postgres)" -c "DROP DATABASE IF EXISTS ${1:-none}" -c "CHECKPOINT"; }

# Every contender runs RUNS times, interleaved so that they share the machine's moods; the
# medians are compared.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

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
  checkpoint_t t_pipe
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
  checkpoint_t "$2"
  secs "$t0" "$t1"
}
data_of() { python3 -c "import json,sys; print('%.1f' % json.load(open(sys.argv[1]))['data_seconds'])" "$WORK/$1.json"; }

# 3. pgcopydb clone (copies the whole database: the extension, the table, its indexes).
run_pgcopydb() {
  createdb_t t_pgc
  rm -rf "$WORK/pgcopydb"
  local t0 t1
  t0=$(now)
  # In its own session: pgcopydb signals its whole process group when it ends.
  setsid --wait pgcopydb clone --source "$SRC" --target "$(tgt_url t_pgc)" --dir "$WORK/pgcopydb" \
    --table-jobs "$JOBS" --index-jobs "$JOBS" --no-owner --no-acl >"$WORK/pgcopydb.log" 2>&1 \
    || { grep -E "ERROR|FATAL" "$WORK/pgcopydb.log" | head -20 >&2; exit 1; }
  t1=$(now)
  [ "$(count t_pgc)" = "$ROWS" ] || { echo "pgcopydb: wrong row count" >&2; exit 1; }
  checkpoint_t t_pgc
  echo "  pgcopydb: $(secs "$t0" "$t1")s" >&2
  secs "$t0" "$t1"
}

declare -a PD PI PA R1 R1D RN RND PG
for run in $(seq "$RUNS"); do
  echo "round $run of $RUNS..." >&2
  run_pipe; PD+=("$PIPE_DATA_1"); PI+=("$PIPE_INDEX_1"); PA+=("$PIPE_ALL_1")
  R1+=("$(run_ragshift 1 t_rs1 --no-verify)"); R1D+=("$(data_of t_rs1)")
  RN+=("$(run_ragshift "$JOBS" t_rsn)"); RND+=("$(data_of t_rsn)")
  PG+=("$(run_pgcopydb)")
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
  checkpoint_t "$1"
  secs "$t0" "$t1"
}
if [ -z "${SKIP_DUMP:-}" ]; then
  echo "pg_dump -Fc | pg_restore -j $JOBS..." >&2
  DUMP_ALL=$(run_dump t_dump "")
  echo "pg_dump -Fc -Z0 | pg_restore -j $JOBS..." >&2
  DUMP0_ALL=$(run_dump t_dump0 "-Z0")
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
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
