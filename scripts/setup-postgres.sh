#!/usr/bin/env bash
# Installs what the tests need from PostgreSQL: the server binaries and the pgvector extension.
# Idempotent and quick when everything is there. Works as root or through sudo on Debian/Ubuntu.
#
#   RAGSHIFT_PG_BINDIR  use the PostgreSQL in this bin directory instead of the newest one
#                       under /usr/lib/postgresql
#   RAGSHIFT_HOME       where the pgvector build happens (default ~/.cache/ragshift)
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

# The bin directory of the PostgreSQL to use, or nothing.
find_bindir() {
    if [ -n "${RAGSHIFT_PG_BINDIR:-}" ]; then
        [ -x "$RAGSHIFT_PG_BINDIR/postgres" ] || die "RAGSHIFT_PG_BINDIR=$RAGSHIFT_PG_BINDIR has no postgres binary"
        echo "$RAGSHIFT_PG_BINDIR"
        return
    fi
    local v
    for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -rn); do
        if [ -x "/usr/lib/postgresql/$v/bin/postgres" ] && [ -x "/usr/lib/postgresql/$v/bin/initdb" ]; then
            echo "/usr/lib/postgresql/$v/bin"
            return
        fi
    done
}

BINDIR="$(find_bindir)"
if [ -z "$BINDIR" ]; then
    step "postgresql: installing"
    apt_update_once
    apt_get install --no-install-recommends postgresql postgresql-client
    BINDIR="$(find_bindir)"
    [ -n "$BINDIR" ] || die "postgresql installed but no /usr/lib/postgresql/<version>/bin/postgres found"
fi
PG_MAJOR="$("$BINDIR/postgres" --version | sed -E 's/^[^0-9]*([0-9]+).*/\1/')"
step "postgresql $PG_MAJOR: $BINDIR"

if [ -x "$BINDIR/pg_config" ]; then
    SHAREDIR="$("$BINDIR/pg_config" --sharedir)"
else
    SHAREDIR="/usr/share/postgresql/$PG_MAJOR"
fi
CONTROL="$SHAREDIR/extension/vector.control"
if [ -f "$CONTROL" ]; then
    step "pgvector: already installed ($CONTROL)"
    exit 0
fi

# A binary package where the distribution has one (Ubuntu, Debian trixie and later, PGDG).
has_candidate() {
    local c
    c="$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p')"
    [ -n "$c" ] && [ "$c" != "(none)" ]
}
PKG="postgresql-$PG_MAJOR-pgvector"
if [ -z "${RAGSHIFT_PG_BINDIR:-}" ] && command -v apt-get >/dev/null 2>&1; then
    if ! has_candidate "$PKG"; then apt_update_once; fi
    if has_candidate "$PKG"; then
        step "pgvector: installing $PKG"
        apt_get install --no-install-recommends "$PKG"
        [ -f "$CONTROL" ] || die "$PKG installed but $CONTROL is missing"
        step "pgvector: done"
        exit 0
    fi
fi

# Otherwise build pgvector from Debian trixie's source package (bookworm has none).
. /etc/os-release
[ "${ID:-}" = debian ] || die "no $PKG package and not Debian: install pgvector for PostgreSQL $PG_MAJOR by hand"

# The mirror this machine already uses for its own suite, read from the apt sources.
debian_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: one stanza per paragraph; take the URIs of a stanza whose Suites has our codename.
        awk -v suite="$VERSION_CODENAME" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; ok = 0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uris = u[1] }
                    if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok = 1 }
                }
                if (ok && uris != "") { print uris; exit }
            }' "$f"
    done
    if [ -f /etc/apt/sources.list ]; then
        awk -v suite="$VERSION_CODENAME" '$1 == "deb" && $0 !~ /^#/ {
            for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i + 1) == suite) print $i; break }
        }' /etc/apt/sources.list
    fi
}
MIRROR="$(debian_mirror | head -n 1)"
[ -n "$MIRROR" ] || die "could not find the Debian mirror for '$VERSION_CODENAME' in /etc/apt/sources.list{,.d}"

step "pgvector: build dependencies"
apt_get install --no-install-recommends "postgresql-server-dev-$PG_MAJOR" dpkg-dev make gcc

SRC_LIST=/etc/apt/sources.list.d/ragshift-pgvector-src.sources
cleanup_src_list() { as_root rm -f "$SRC_LIST"; }
trap cleanup_src_list EXIT
step "pgvector: fetching the trixie source package"
printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$MIRROR" \
    | as_root tee "$SRC_LIST" >/dev/null
apt_get update
BUILD="$RAGSHIFT_HOME/build/pgvector"
rm -rf "$BUILD"
mkdir -p "$BUILD"
(cd "$BUILD" && apt-get -q source --download-only pgvector >download.log 2>&1) \
    || { tail -n 20 "$BUILD/download.log" >&2; die "apt-get source pgvector failed"; }
cleanup_src_list
trap - EXIT

ORIG="$(ls "$BUILD"/pgvector_*.orig.tar.* 2>/dev/null | head -n 1)"
[ -n "$ORIG" ] || die "no pgvector orig tarball in $BUILD"
tar -xf "$ORIG" -C "$BUILD"
SRC_DIR="$(find "$BUILD" -mindepth 1 -maxdepth 1 -type d -name 'pgvector*' | head -n 1)"
[ -n "$SRC_DIR" ] || die "could not unpack $ORIG"

step "pgvector: building $(basename "$ORIG")"
# OPTFLAGS= : a portable build (no -march=native), so the library survives a change of CPU.
make -C "$SRC_DIR" PG_CONFIG="$BINDIR/pg_config" OPTFLAGS= >"$BUILD/build.log" 2>&1 \
    || { tail -n 30 "$BUILD/build.log" >&2; die "pgvector build failed (log: $BUILD/build.log)"; }
as_root make -C "$SRC_DIR" PG_CONFIG="$BINDIR/pg_config" OPTFLAGS= install >>"$BUILD/build.log" 2>&1 \
    || { tail -n 30 "$BUILD/build.log" >&2; die "pgvector install failed (log: $BUILD/build.log)"; }
[ -f "$CONTROL" ] || die "pgvector installed but $CONTROL is missing"
rm -rf "$BUILD"
step "pgvector: done"
