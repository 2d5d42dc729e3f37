#!/usr/bin/env bash
# Everything the test suite needs on this machine: PostgreSQL + pgvector, the Python venv with
# moto and pyarrow, and the local embedding model. Each step is idempotent and quick when done.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/setup-postgres.sh"
"$here/setup-python.sh"
"$here/setup-model.sh"
