# bench/lib/env.sh — where a benchmark finds the checkout and ragshift's local state: sets ROOT
# (the repository), RAGSHIFT_HOME (default ~/.cache/ragshift) and exports CARGO_TARGET_DIR
# (default $RAGSHIFT_HOME/target). Source it from a benchmark after `set -euo pipefail`.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RAGSHIFT_HOME=${RAGSHIFT_HOME:-$HOME/.cache/ragshift}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$RAGSHIFT_HOME/target}
