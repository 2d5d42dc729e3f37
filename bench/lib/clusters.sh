# bench/lib/clusters.sh — what the copy benchmarks share: PostgreSQL's binaries, pgcopydb
# (Debian's package, installed when missing), a release ragshift, two throwaway clusters
# (source and target) started with initdb, and the arithmetic (medians, ratios).
#
# Source it from a benchmark after `set -euo pipefail`; it sets BIN, RAGSHIFT, WORK, SP, TP,
# SRC_ADMIN, and defines start_cluster, tgt_url, psql_q, now, secs, median, ratio, load_items,
# createdb_t, dropdb_t and run_pgcopydb. The clusters are stopped and WORK removed on exit.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
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

WORK=$(mktemp -d /tmp/ragshift-bench.XXXXXX)
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
SRC_ADMIN="postgres://postgres@127.0.0.1:$SP/postgres"
tgt_url() { echo "postgres://postgres@127.0.0.1:$TP/$1"; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
createdb_t() { psql_q "$(tgt_url postgres)" -c "CREATE DATABASE $1"; }
# Each target database is dropped once measured and checked, to keep the disk footprint small.
dropdb_t() { psql_q "$(tgt_url postgres)" -c "DROP DATABASE IF EXISTS ${1:-none}" -c "CHECKPOINT"; }

# pgcopydb clone of database $1 (URL) into a fresh target database $2, to ready (data and
# indexes); prints the seconds. $3: jobs.
run_pgcopydb() {
  createdb_t "$2"
  rm -rf "$WORK/pgcopydb"
  local t0 t1
  t0=$(now)
  # In its own session: pgcopydb signals its whole process group when it ends.
  setsid --wait pgcopydb clone --source "$1" --target "$(tgt_url "$2")" --dir "$WORK/pgcopydb" \
    --table-jobs "$3" --index-jobs "$3" --no-owner --no-acl >"$WORK/pgcopydb.log" 2>&1 \
    || { grep -E "ERROR|FATAL" "$WORK/pgcopydb.log" | head -20 >&2; exit 1; }
  t1=$(now)
  secs "$t0" "$t1"
}

# The platform's table (`items`: BOTS bots, vector(DIM), ~1 KB of content a row, the ivfflat
# and bot indexes) with $2 rows, in the empty database at URL $1.
load_items() { # url rows
  psql_q "$1" <<SQL
CREATE EXTENSION vector;
CREATE TABLE items(id CHAR(26) PRIMARY KEY, botid CHAR(26), content text, source text, embedding vector($DIM));
INSERT INTO items
SELECT lpad(i::text, 26, '0'),
       'BOT' || lpad((i % $BOTS)::text, 23, '0'),
       (SELECT string_agg(md5(random()::text), ' ') FROM generate_series(1, 30) g WHERE i > 0),
       's3://bucket/' || (i % $BOTS) || '/documents/doc-' || (i % 37) || '.pdf',
       (SELECT array_agg(random()::real) FROM generate_series(1, $DIM) g WHERE i > 0)::vector
  FROM generate_series(1, $2) i;
CREATE INDEX idx_items_embedding ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 100);
CREATE INDEX idx_items_botid ON items (botid);
VACUUM ANALYZE items;
CHECKPOINT;
SQL
}
