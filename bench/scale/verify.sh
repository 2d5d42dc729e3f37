#!/usr/bin/env bash
# bench/scale/verify.sh — how `ragshift verify` grows with the data, against a baseline build:
# the platform's table (BOTS bots, vector(DIM), ~1 KB of content a row) at each of SIZES rows,
# cloned inside one cluster (CREATE DATABASE ... TEMPLATE, so both sides hold the same bytes),
# then verified ROUNDS times by each binary, with retrieval (--queries 5, the default) and with
# checksums only (--queries 0). Prints the medians and, per binary, the growth last / first size.
#
#   BASELINE_BIN=path/to/old/ragshift RAGSHIFT_BIN=path/to/new/ragshift bench/scale/verify.sh
#   SIZES="100000 500000" ...                    # a quicker look
#
# Needs about 30 GB of free disk at 1M rows (two copies of a 14 GB table with its indexes).
set -euo pipefail
shopt -s inherit_errexit

SIZES=${SIZES:-"100000 1000000"}
DIM=${DIM:-1024}
BOTS=${BOTS:-50}
ROUNDS=${ROUNDS:-2}
. "$(dirname "$0")/../lib/clusters.sh"
BINS=("$RAGSHIFT")
[ -n "${BASELINE_BIN:-}" ] && BINS+=("$BASELINE_BIN")

load() { # rows
  local url="postgres://postgres@127.0.0.1:$SP/rag"
  psql_q "$SRC_ADMIN" -c "DROP DATABASE IF EXISTS rag" -c "DROP DATABASE IF EXISTS rag2" -c "CREATE DATABASE rag"
  load_items "$url" "$1"
  psql_q "$SRC_ADMIN" -c "CREATE DATABASE rag2 TEMPLATE rag"
}

declare -A R
for rows in $SIZES; do
  echo "size $rows: loading..." >&2
  load "$rows"
  for b in "${!BINS[@]}"; do
    for q in 5 0; do
      ts=()
      for _ in $(seq "$ROUNDS"); do
        t0=$(now)
        "${BINS[$b]}" verify --json -q --queries "$q" --source "postgres://postgres@127.0.0.1:$SP/rag" \
          --target "postgres://postgres@127.0.0.1:$SP/rag2" >"$WORK/verify.json" \
          || { echo "verify by ${BINS[$b]} exited $?" >&2; exit 1; }
        ts+=("$(secs "$t0" "$(now)")")
      done
      R[$rows.$b.$q]=$(median "${ts[@]}")
      echo "  ${BINS[$b]} --queries $q: ${R[$rows.$b.$q]}s" >&2
    done
  done
done

echo
echo "verify benchmark: $BOTS bots, vector($DIM), both sides in one cluster, medians of $ROUNDS runs"
for b in "${!BINS[@]}"; do
  echo
  echo "${BINS[$b]}"
  echo "| rows | --queries 5 | --queries 0 |"
  echo "|---:|---:|---:|"
  for rows in $SIZES; do
    echo "| $rows | ${R[$rows.$b.5]}s | ${R[$rows.$b.0]}s |"
  done
  set -- $SIZES
  first=$1; last=${!#}
  [ "$first" != "$last" ] && echo "| growth $last / $first | $(ratio "${R[$last.$b.5]}" "${R[$first.$b.5]}")x | $(ratio "${R[$last.$b.0]}" "${R[$first.$b.0]}")x |"
done
