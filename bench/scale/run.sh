#!/usr/bin/env bash
# bench/scale/run.sh — how ragshift's time and memory grow with the data: the platform's table
# (Bedrock Chat's `items`, BOTS bots) at each of SIZES rows x vector(DIM), ~1 KB of content a
# row. At each size, on the same data in the same run:
#   copy     ragshift copy --jobs JOBS (verification on) against pgcopydb clone, time to a target
#            ready to serve; medians of RUNS interleaved rounds at the first size, RUNS_BIG
#            rounds at the others
#   export   ragshift export to a local directory
#   import   ragshift import of that export into a fresh database
#   verify   ragshift verify of the source against the imported database
# each with its time and peak RSS (the process's own high-water mark, from getrusage), and for
# each the ratio last size / first size (goal <= 11x for 10x the data), copy / pgcopydb (goal
# <= 0.5) and peak RSS against the documented bound (README: "Memory").
#
#   bench/scale/run.sh                          # 100k and 1M rows x vector(1024)
#   SIZES="20000 200000" RUNS=1 bench/scale/run.sh   # a quicker look
#   RAGSHIFT_BIN=path/to/ragshift ...           # use a release binary built already
#
# Needs about 25 GB of free disk at 1M rows (the source, one target and the export at once).
# The rebuild side (2,000 bots against a provider's shared limit) is bench/scale/rebuild.sh.
set -euo pipefail
shopt -s inherit_errexit  # a failing step inside $(...) stops the run too

SIZES=${SIZES:-"100000 1000000"}
DIM=${DIM:-1024}
BOTS=${BOTS:-50}
JOBS=${JOBS:-2}
RUNS=${RUNS:-3}
RUNS_BIG=${RUNS_BIG:-1}
RSS_BOUND_MB=${RSS_BOUND_MB:-500}
. "$(dirname "$0")/../lib/clusters.sh"
count() { psql -X -Atc "SELECT count(*) FROM items" "$1"; }

# Runs a command with its stdout in file $1; prints "seconds peak-RSS-MB". The Python parent
# has this one child, so RUSAGE_CHILDREN's ru_maxrss is the child's own peak.
measured() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
out = open(sys.argv[1], "w")
t0 = time.monotonic()
r = subprocess.run(sys.argv[2:], stdout=out)
took = time.monotonic() - t0
if r.returncode != 0:
    sys.exit(f"{sys.argv[2:4]} exited {r.returncode}")
print(f"{took:.1f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f}")
PY
}

load_source() { # db rows
  local url="postgres://postgres@127.0.0.1:$SP/$1"
  psql_q "$SRC_ADMIN" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  load_items "$url" "$2"
  echo "$url"
}

# One size: sets COPY_S COPY_MB PGC_S EXPORT_S EXPORT_MB IMPORT_S IMPORT_MB VERIFY_S VERIFY_MB
# EXPORT_SIZE TABLE_SIZE.
run_size() { # rows rounds
  local rows=$1 rounds=$2 src t m res
  echo "size $rows: loading $rows rows of vector($DIM)..." >&2
  src=$(load_source "rag_$rows" "$rows")
  TABLE_SIZE=$(psql -X -Atc "SELECT pg_size_pretty(pg_total_relation_size('items'))" "$src")
  echo "  source table with indexes: $TABLE_SIZE" >&2
  local -a cs cm ps
  for round in $(seq "$rounds"); do
    createdb_t t_copy
    res=$(measured "$WORK/copy.json" "$RAGSHIFT" copy --json -q --source "$src" \
      --target "$(tgt_url t_copy)" --jobs "$JOBS" --progress-secs 600)
    t=${res% *} m=${res#* }
    [ "$(count "$(tgt_url t_copy)")" = "$rows" ] || { echo "copy: wrong row count" >&2; exit 1; }
    python3 -c "import json,sys; s=json.loads(open(sys.argv[1]).read().splitlines()[-1]); assert s['succeeded'] and s.get('verify'), s" "$WORK/copy.json"
    dropdb_t t_copy
    cs+=("$t"); cm+=("$m")
    ps+=("$(run_pgcopydb "$src" t_pgc "$JOBS")")
    [ "$(count "$(tgt_url t_pgc)")" = "$rows" ] || { echo "pgcopydb: wrong row count" >&2; exit 1; }
    dropdb_t t_pgc
    echo "  round $round: ragshift copy ${t}s (${m} MB), pgcopydb ${ps[-1]}s" >&2
  done
  COPY_S=$(median "${cs[@]}"); COPY_MB=$(printf '%s\n' "${cm[@]}" | sort -n | tail -1)
  PGC_S=$(median "${ps[@]}")

  rm -rf "$WORK/kb"
  res=$(measured "$WORK/export.json" "$RAGSHIFT" export --json -q --source "$src" --to "$WORK/kb")
  EXPORT_S=${res% *} EXPORT_MB=${res#* }
  EXPORT_SIZE=$(du -sh "$WORK/kb" | cut -f1)
  echo "  export ${EXPORT_S}s (${EXPORT_MB} MB), $EXPORT_SIZE on disk" >&2
  createdb_t t_import
  res=$(measured "$WORK/import.json" "$RAGSHIFT" import --json -q --from "$WORK/kb" \
    --target "$(tgt_url t_import)")
  IMPORT_S=${res% *} IMPORT_MB=${res#* }
  [ "$(count "$(tgt_url t_import)")" = "$rows" ] || { echo "import: wrong row count" >&2; exit 1; }
  rm -rf "$WORK/kb"
  echo "  import ${IMPORT_S}s (${IMPORT_MB} MB)" >&2
  res=$(measured "$WORK/verify.json" "$RAGSHIFT" verify --json -q --source "$src" \
    --target "$(tgt_url t_import)")
  VERIFY_S=${res% *} VERIFY_MB=${res#* }
  echo "  verify ${VERIFY_S}s (${VERIFY_MB} MB)" >&2
  dropdb_t t_import
  psql_q "$SRC_ADMIN" -c "DROP DATABASE rag_$rows" -c "CHECKPOINT"
}

declare -A R
FIRST="" LAST=""
for rows in $SIZES; do
  rounds=$RUNS_BIG
  [ -z "$FIRST" ] && { FIRST=$rows; rounds=$RUNS; }
  LAST=$rows
  run_size "$rows" "$rounds"
  for k in COPY_S COPY_MB PGC_S EXPORT_S EXPORT_MB IMPORT_S IMPORT_MB VERIFY_S VERIFY_MB EXPORT_SIZE TABLE_SIZE; do
    R[$rows.$k]=${!k}
  done
done

echo
echo "scale benchmark: platform layout, $BOTS bots, vector($DIM), ~1 KB content a row, $(nproc) cores, jobs $JOBS; copy medians of $RUNS rounds at $FIRST rows, $RUNS_BIG at larger sizes"
echo
echo "| rows | table + indexes | copy | pgcopydb clone | copy / pgcopydb | export | import | verify | export on disk |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for rows in $SIZES; do
  printf "| %s | %s | %ss, %s MB | %ss | %s | %ss, %s MB | %ss, %s MB | %ss, %s MB | %s |\n" "$rows" \
    "${R[$rows.TABLE_SIZE]}" "${R[$rows.COPY_S]}" "${R[$rows.COPY_MB]}" "${R[$rows.PGC_S]}" \
    "$(ratio "${R[$rows.COPY_S]}" "${R[$rows.PGC_S]}")" \
    "${R[$rows.EXPORT_S]}" "${R[$rows.EXPORT_MB]}" "${R[$rows.IMPORT_S]}" "${R[$rows.IMPORT_MB]}" \
    "${R[$rows.VERIFY_S]}" "${R[$rows.VERIFY_MB]}" "${R[$rows.EXPORT_SIZE]}"
done
if [ "$FIRST" != "$LAST" ]; then
  growth=$(awk -v a="$LAST" -v b="$FIRST" 'BEGIN { printf "%g", a / b }')
  printf "| %s / %s (%sx the data; goal <= %sx) | | %s | %s | | %s | %s | %s | |\n" "$LAST" "$FIRST" "$growth" \
    "$(awk -v g="$growth" 'BEGIN { printf "%g", g * 1.1 }')" \
    "$(ratio "${R[$LAST.COPY_S]}" "${R[$FIRST.COPY_S]}")x" "$(ratio "${R[$LAST.PGC_S]}" "${R[$FIRST.PGC_S]}")x" \
    "$(ratio "${R[$LAST.EXPORT_S]}" "${R[$FIRST.EXPORT_S]}")x" "$(ratio "${R[$LAST.IMPORT_S]}" "${R[$FIRST.IMPORT_S]}")x" \
    "$(ratio "${R[$LAST.VERIFY_S]}" "${R[$FIRST.VERIFY_S]}")x"
fi
echo
peak=0
for rows in $SIZES; do
  for k in COPY_MB EXPORT_MB IMPORT_MB VERIFY_MB; do
    [ "${R[$rows.$k]}" -gt "$peak" ] && peak=${R[$rows.$k]}
  done
done
echo "peak RSS of any ragshift run: $peak MB (bound: $RSS_BOUND_MB MB)"
