# shellcheck shell=bash
# Shared set-up for tools/run, tools/test and tools/bench: finds Python 3.12, the Odoo 18 source and
# PostgreSQL, and builds (once, then reuses) a virtualenv with Odoo's requirements and queue_job.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${API_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/api_sync}"
QUEUE_JOB_VERSION="${QUEUE_JOB_VERSION:-18.0.1.7.0.1}"
ODOO_BRANCH="18.0"
ODOO_GIT_URL="${ODOO_GIT_URL:-https://github.com/odoo/odoo.git}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-$(id -un)}"
BUILD="$REPO/.build"

say() { printf '[api_sync] %s\n' "$*" >&2; }
die() { printf '[api_sync] ERROR: %s\n' "$*" >&2; exit 1; }

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.12; do
        [ -n "$candidate" ] || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
            command -v "$candidate" || echo "$candidate"
            return 0
        fi
    done
    # pyenv installs that are not the selected version are not reachable through the shims.
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
        if [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
    done
    return 1
}

# Prints the Odoo 18 source directory: ODOO_SRC, else the cache, else a shallow clone into the cache.
# With $1 = "optional", prints nothing (and succeeds) when no source can be had.
find_odoo() {
    local mode="${1:-required}" dir
    if [ -n "${ODOO_SRC:-}" ]; then
        [ -f "$ODOO_SRC/odoo-bin" ] || die "ODOO_SRC=$ODOO_SRC has no odoo-bin"
        echo "$ODOO_SRC"; return 0
    fi
    dir="$CACHE/odoo-$ODOO_BRANCH"
    if [ -f "$dir/odoo-bin" ]; then echo "$dir"; return 0; fi
    say "no Odoo source in ODOO_SRC or $dir: cloning $ODOO_BRANCH (shallow) into $dir"
    mkdir -p "$CACHE"
    if git clone --quiet --depth 1 --branch "$ODOO_BRANCH" "$ODOO_GIT_URL" "$dir.part" 2>/dev/null; then
        mv "$dir.part" "$dir"; echo "$dir"; return 0
    fi
    rm -rf "$dir.part"
    [ "$mode" = optional ] && return 0
    die "no Odoo $ODOO_BRANCH source: set ODOO_SRC, or put the tree in $dir"
}

# Creates (or reuses) the virtualenv for this Odoo tree and these pins; prints its path.
ensure_venv() {
    local odoo="$1" python key venv
    python="$(find_python)" || die "Python 3.12 not found: install it or set PYTHON=/path/to/python3.12"
    key="$( { "$python" --version; cat "$REPO/requirements.txt" "$REPO/requirements-dev.txt";
              echo "$QUEUE_JOB_VERSION"; [ -n "$odoo" ] && cat "$odoo/requirements.txt"; } 2>&1 \
            | sha256sum | cut -c1-12)"
    venv="$CACHE/venv-$key"
    mkdir -p "$CACHE"
    # One build at a time (two commands started together share the same virtualenv).
    exec 9> "$venv.lock"
    flock 9
    if [ ! -f "$venv/.complete" ]; then
        say "building virtualenv $venv (once)"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade "pip==24.3.1" >&2
        if [ -n "$odoo" ]; then
            # python-ldap needs system headers and no part of api_sync uses it; psycopg2 is taken as
            # the binary wheel of the same version so that no libpq headers are needed.
            sed -e '/^python-ldap/d' -e 's/^psycopg2==/psycopg2-binary==/' \
                "$odoo/requirements.txt" > "$venv/odoo-requirements.txt"
            "$venv/bin/pip" install --quiet --disable-pip-version-check \
                -r "$venv/odoo-requirements.txt" >&2
            # queue_job's own metadata asks for an "odoo" distribution, which is the tree above.
            "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
                "odoo-addon-queue-job==$QUEUE_JOB_VERSION" >&2
        fi
        "$venv/bin/pip" install --quiet --disable-pip-version-check \
            -r "$REPO/requirements.txt" -r "$REPO/requirements-dev.txt" >&2
        touch "$venv/.complete"
    fi
    flock -u 9
    echo "$venv"
}

# The addons path: Odoo's own, queue_job's namespace folder, and a folder where this repository
# appears under its module name (a clone may be called anything).
addons_path() {
    local odoo="$1" venv="$2" site
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    mkdir -p "$BUILD/addons"
    ln -sfn "$REPO" "$BUILD/addons/api_sync"
    echo "$odoo/addons,$odoo/odoo/addons,$site/odoo/addons,$BUILD/addons"
}

# PGPASSWORD, when set, reaches PostgreSQL through the environment (never a command line).
db_args() {
    printf '%s\n' --db_host="$PGHOST" --db_port="$PGPORT" --db_user="$PGUSER"
}
