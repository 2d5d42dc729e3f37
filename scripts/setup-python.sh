#!/usr/bin/env bash
# A Python virtual environment for the tests: moto's AWS server (DynamoDB, S3, ECS, Secrets
# Manager, CloudFormation on loopback), pyarrow and DuckDB, and the RAG libraries whose pgvector stores the
# tests move (langchain-postgres, llama-index-vector-stores-postgres, with their PostgreSQL
# drivers; crates/testkit/python/rag_stores.py drives them). Idempotent and quick when done; an
# existing venv without the RAG libraries gets them added.
#
# Nothing here downloads models or NLTK data: the tests embed with hashes, and LlamaIndex's NLTK
# and tiktoken data ship inside llama-index-core's wheel (rag_stores.py points NLTK_DATA and
# TIKTOKEN_CACHE_DIR at that copy).
#
#   RAGSHIFT_HOME  the venv goes to $RAGSHIFT_HOME/venv (default ~/.cache/ragshift)
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

VENV="$RAGSHIFT_HOME/venv"
# Versions verified with the tests; change both together with the code that relies on them.
MOTO_SPEC='moto[server]==5.2.*'
PYARROW_SPEC='pyarrow==26.*'
# DuckDB: the tests read exported Parquet files with it, as users do.
DUCKDB_SPEC='duckdb==1.*'
RAG_SPECS=(
    'langchain-postgres==0.0.19'
    'llama-index-vector-stores-postgres==0.9.0'
    'psycopg[binary]==3.*'
    'psycopg2-binary==2.*'
    'asyncpg==0.*'
    'sqlalchemy[asyncio]==2.*'
)
RAG_IMPORTS='import langchain_postgres, langchain_postgres.v2, langchain_core.embeddings, llama_index.core, llama_index.vector_stores.postgres, psycopg, psycopg2, asyncpg, sqlalchemy'

venv_ready() {
    [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/moto_server" ] \
        && "$VENV/bin/python" -c 'import moto, moto.server, flask, boto3, pyarrow, duckdb' >/dev/null 2>&1 \
        && "$VENV/bin/python" -c "$RAG_IMPORTS" >/dev/null 2>&1
}

if venv_ready; then
    step "venv: already set up ($VENV)"
    exit 0
fi

PYTHON="$(command -v python3 || true)"
if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    step "python3: installing"
    apt_update_once
    apt_get install --no-install-recommends python3 python3-venv python3-pip
    PYTHON="$(command -v python3)" || die "python3 missing after install"
fi

if [ ! -x "$VENV/bin/python" ]; then
    step "venv: creating $VENV"
    mkdir -p "$RAGSHIFT_HOME"
    "$PYTHON" -m venv "$VENV" || die "could not create a venv with $PYTHON"
fi

step "venv: installing $MOTO_SPEC $PYARROW_SPEC $DUCKDB_SPEC ${RAG_SPECS[*]}"
LOG="$RAGSHIFT_HOME/pip.log"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$MOTO_SPEC" "$PYARROW_SPEC" "$DUCKDB_SPEC" "${RAG_SPECS[@]}" >"$LOG" 2>&1 \
    || { tail -n 30 "$LOG" >&2; die "pip install failed (log: $LOG)"; }
rm -f "$LOG"

venv_ready || die "packages installed but moto/pyarrow/duckdb/the RAG libraries do not import in $VENV"
"$VENV/bin/moto_server" --help >/dev/null 2>&1 || die "$VENV/bin/moto_server --help fails"
VERSIONS="$("$VENV/bin/python" -c 'from importlib.metadata import version as v
print(", ".join(f"{p} {v(p)}" for p in ("moto", "pyarrow", "langchain-postgres", "llama-index-vector-stores-postgres")))')"
step "venv: done ($VERSIONS)"
