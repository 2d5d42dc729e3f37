# Helpers shared by the setup scripts; sourced, never run.
# shellcheck shell=bash

RAGSHIFT_HOME="${RAGSHIFT_HOME:-$HOME/.cache/ragshift}"
export RAGSHIFT_HOME

# One short line per step, prefixed with the script's name.
step() { printf '%s: %s\n' "$(basename "$0")" "$*"; }

# Stop with a clear message.
die() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for: $* (run as root or install sudo)"
    fi
}

# apt-get without prompts or chatter; output goes to a log that is shown on failure.
APT_LOG="${TMPDIR:-/tmp}/ragshift-apt.$$.log"
apt_get() {
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get -y -q "$@" >"$APT_LOG" 2>&1; then
        tail -n 30 "$APT_LOG" >&2
        rm -f "$APT_LOG"
        die "apt-get $* failed"
    fi
    rm -f "$APT_LOG"
}

# `apt-get update` at most once per script run.
APT_UPDATED=""
apt_update_once() {
    if [ -z "$APT_UPDATED" ]; then
        apt_get update
        APT_UPDATED=1
    fi
}
