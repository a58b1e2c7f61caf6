# shellcheck shell=bash
# Shared set-up for tools/run, tools/test and tools/bench: finds Python 3.12, an Odoo source tree
# (either layout) and PostgreSQL, picks the queue_job release that fits the tree, and builds (once,
# then reuses) a virtualenv per combination with Odoo's requirements and that queue_job.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${API_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/api_sync}"
# Empty: the newest release that installs on the tree found (see queue_job_version).
QUEUE_JOB_VERSION="${QUEUE_JOB_VERSION:-}"
# The tree in the cache: $CACHE/odoo-$ODOO_TREE (18.0: the default, cloned when missing).
ODOO_TREE="${ODOO_TREE:-18.0}"
ODOO_BRANCH="18.0"
ODOO_GIT_URL="${ODOO_GIT_URL:-https://github.com/odoo/odoo.git}"
# Newest queue_job of a series measured with api_sync: used when the registry cannot be asked.
declare -A QUEUE_JOB_KNOWN=([18.0]=18.0.4.1.2.2 [19.0]=19.0.2.4.0.1)
# Days a looked-up "newest release" is remembered before it is looked up again.
QUEUE_JOB_LOOKUP_DAYS=30
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

# Prints the launcher of the Odoo tree $1, either layout: source (odoo-bin, addons/) or package
# (setup/odoo, every addon in odoo/addons). Fails when $1 is neither.
odoo_launcher() {
    if [ -f "$1/odoo-bin" ] && [ -d "$1/odoo/addons" ]; then echo "$1/odoo-bin"
    elif [ -f "$1/setup/odoo" ] && [ -d "$1/odoo/addons" ]; then echo "$1/setup/odoo"
    else return 1; fi
}

# Prints the series of the Odoo tree $1 (18.0, 19.0, ...) from its odoo/release.py.
odoo_series() {
    sed -n 's/^version_info = (\([0-9]*\), *\([0-9]*\),.*/\1.\2/p' "$1/odoo/release.py"
}

# Prints the Odoo source directory: ODOO_SRC, else $CACHE/odoo-$ODOO_TREE, else (default tree
# only, and not with API_SYNC_NO_CLONE=1, as in CI) a shallow clone of upstream 18.0 into it.
# With $1 = "optional", prints nothing (and succeeds) when no source can be had.
find_odoo() {
    local mode="${1:-required}" dir
    if [ -n "${ODOO_SRC:-}" ]; then
        odoo_launcher "$ODOO_SRC" > /dev/null \
            || die "ODOO_SRC=$ODOO_SRC is no Odoo tree (neither odoo-bin nor setup/odoo + odoo/addons)"
        echo "$ODOO_SRC"; return 0
    fi
    dir="$CACHE/odoo-$ODOO_TREE"
    if odoo_launcher "$dir" > /dev/null; then echo "$dir"; return 0; fi
    if [ "$ODOO_TREE" = "$ODOO_BRANCH" ] && [ "${API_SYNC_NO_CLONE:-0}" != 1 ]; then
        say "no Odoo source in ODOO_SRC or $dir: cloning $ODOO_BRANCH (shallow) into $dir"
        mkdir -p "$CACHE"
        if git clone --quiet --depth 1 --branch "$ODOO_BRANCH" "$ODOO_GIT_URL" "$dir.part" 2>/dev/null
        then
            mv "$dir.part" "$dir"; echo "$dir"; return 0
        fi
        rm -rf "$dir.part"
    fi
    [ "$mode" = optional ] && return 0
    die "no Odoo tree $ODOO_TREE: put it in $dir (see README.md, Requirements) or set ODOO_SRC"
}

# Prints the option that loads demo data into a new database with the Odoo tree $1.
# 18.0: demo data unless --without-demo (nothing to print) / 19.0: only with --with-demo.
demo_args() {
    [ "$(odoo_series "$1")" = 18.0 ] || echo --with-demo
}

# Exports what running the Odoo tree $1 needs: ODOO_LAUNCHER, and the tree first on PYTHONPATH
# (setup/odoo does not put it there, and queue_job's odoo/ namespace folder in site-packages
# would otherwise be found as "odoo").
use_odoo() {
    ODOO_LAUNCHER="$(odoo_launcher "$1")" || die "$1 is no Odoo tree"
    export ODOO_LAUNCHER PYTHONPATH="$1${PYTHONPATH:+:$PYTHONPATH}"
}

# Prints the queue_job release for the Odoo tree $1: QUEUE_JOB_VERSION when set; for an 18.0 tree
# without api.private (before 2025), 18.0.1.7.0.1, the last release that runs there; else the
# newest release of the tree's series, looked up with pip and remembered in the cache for
# QUEUE_JOB_LOOKUP_DAYS days (QUEUE_JOB_KNOWN when it cannot be looked up).
queue_job_version() {
    local odoo="$1" python="$2" series memo version
    if [ -n "$QUEUE_JOB_VERSION" ]; then echo "$QUEUE_JOB_VERSION"; return 0; fi
    series="$(odoo_series "$odoo")"
    [ -n "$series" ] || die "$odoo/odoo/release.py has no version_info"
    if [ "$series" = 18.0 ] && ! grep -qs '^def private' "$odoo/odoo/api.py"; then
        echo 18.0.1.7.0.1; return 0
    fi
    memo="$CACHE/queue-job-newest-$series"
    if [ -s "$memo" ] && [ -n "$(find "$memo" -mtime -"$QUEUE_JOB_LOOKUP_DAYS")" ]; then
        cat "$memo"; return 0
    fi
    version="$("$python" -m pip index versions --disable-pip-version-check odoo-addon-queue-job \
                2>/dev/null | sed -n 's/^Available versions: //p' | tr -d ' ' | tr ',' '\n' \
                | grep -m1 "^${series//./\\.}\.")" || version=""
    if [ -n "$version" ]; then
        mkdir -p "$CACHE"; echo "$version" > "$memo"; echo "$version"; return 0
    fi
    if [ -s "$memo" ]; then cat "$memo"; return 0; fi
    version="${QUEUE_JOB_KNOWN[$series]:-}"
    [ -n "$version" ] || die "no queue_job release found for Odoo $series: set QUEUE_JOB_VERSION"
    say "could not look up queue_job releases: using $version, the newest measured for $series"
    echo "$version"
}

# Creates (or reuses) the virtualenv for this Odoo tree ($1, may be empty), its queue_job and these
# pins; prints its path. Its name tells the series and queue_job; its key hashes every input.
ensure_venv() {
    local odoo="$1" python key venv queue_job="" name="venv"
    python="$(find_python)" || die "Python 3.12 not found: install it or set PYTHON=/path/to/python3.12"
    if [ -n "$odoo" ]; then
        queue_job="$(queue_job_version "$odoo" "$python")"
        name="venv-$(odoo_series "$odoo")-qj$queue_job"
    fi
    key="$( { "$python" --version; cat "$REPO/requirements.txt" "$REPO/requirements-dev.txt";
              echo "$queue_job"; [ -n "$odoo" ] && cat "$odoo/requirements.txt"; } 2>&1 \
            | sha256sum | cut -c1-12)"
    venv="$CACHE/$name-$key"
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
                "odoo-addon-queue-job==$queue_job" >&2
            # Its other requirements (19.0 releases add openupgradelib), installed with ours below.
            "$venv/bin/python" -c 'import importlib.metadata as m, re
print(*(r for r in m.requires("odoo-addon-queue-job") or () if not re.match(r"odoo\b", r)), sep="\n")' \
                > "$venv/queue-job-requirements.txt"
        else
            : > "$venv/queue-job-requirements.txt"
        fi
        "$venv/bin/pip" install --quiet --disable-pip-version-check \
            -r "$venv/queue-job-requirements.txt" \
            -r "$REPO/requirements.txt" -r "$REPO/requirements-dev.txt" >&2
        "$venv/bin/pip" freeze --all > "$venv/pip-freeze.txt"  # what was installed, for reports
        touch "$venv/.complete"
    fi
    flock -u 9
    say "Odoo ${odoo:-(none)}, queue_job ${queue_job:-(none)}, virtualenv $venv"
    echo "$venv"
}

# The addons path: Odoo's own, queue_job's namespace folder, and a folder where this repository
# appears under its module name (a clone may be called anything).
addons_path() {
    local odoo="$1" venv="$2" site
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    mkdir -p "$BUILD/addons"
    ln -sfn "$REPO" "$BUILD/addons/api_sync"
    # addons/ holds Odoo's addons in the source layout only (empty in some 19.0 trees).
    if compgen -G "$odoo/addons/*/__manifest__.py" > /dev/null; then printf '%s,' "$odoo/addons"; fi
    echo "$odoo/odoo/addons,$site/odoo/addons,$BUILD/addons"
}

# PGPASSWORD, when set, reaches PostgreSQL through the environment (never a command line).
db_args() {
    printf '%s\n' --db_host="$PGHOST" --db_port="$PGPORT" --db_user="$PGUSER"
}
