"""The upgrade check of the test command: a database of the previous release, upgraded, loses
nothing.

On a fresh database it installs the previous release (``PREVIOUS_RELEASE``, taken from this
repository's history), fills it with every kind of api_sync data (tools/upgrade_fill.py, run in
``odoo shell`` on that release), snapshots the api_sync tables and the rows of other tables that
belong to api_sync, upgrades to the checkout with ``-u api_sync``, snapshots again and compares:
every row must still be there with the same value in every column it had (no column is
ignored: Odoo's update rewrites none of these rows, write dates included, when nothing changed).

A series no earlier release installs on (19.0: the previous release is 18.0 only) has no previous
release to upgrade from: there the checkout itself is installed, filled and updated (``-u``), the
same comparison showing that an update on that series loses nothing.
"""

import ast
import dataclasses
import io
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

from odoo_process import drop_database, install_arguments, run_logged, server_arguments

REPO = Path(__file__).resolve().parent.parent
# The release a database is upgraded from: main when the code was reshaped (manifest 18.0.1.0.0),
# on the series it installs on.
PREVIOUS_RELEASE = "1cc8055"
PREVIOUS_SERIES = ("18.0",)
PREVIOUS = REPO / ".build" / "previous"  # holds api_sync/, the previous release's tree
FILL_SCRIPT = Path(__file__).resolve().parent / "upgrade_fill.py"
# Rows of other modules' tables that belong to api_sync: (table, condition).
OWNED_ROWS = [
    ("ir_model_data", "module = 'api_sync'"),
    ("ir_act_server", "state = 'api_sync'"),
    ("base_automation", "TRUE"),
    ("queue_job", "channel = 'root.api_sync'"),
    ("ir_cron", "id IN (SELECT cron_id FROM api_sync_config)"),  # the configurations' schedules
]
MAX_REPORTED = 40  # differences printed per table (all are counted)


class UpgradeError(Exception):
    """A step of the upgrade check could not be done; the message says which and why."""


def git(*arguments, **kwargs):
    return subprocess.run(["git", "-C", str(REPO), *arguments], check=False, **kwargs)


def extract_previous():
    """``PREVIOUS_RELEASE``'s tree into .build/previous/api_sync (replacing any earlier copy)."""
    if git("cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}", capture_output=True).returncode:
        shallow = git("rev-parse", "--is-shallow-repository", capture_output=True, text=True)
        reason = (
            "this clone is shallow (git fetch --unshallow fetches the history)"
            if shallow.stdout.strip() == "true"
            else "the history of this checkout does not contain it"
        )
        raise UpgradeError(f"the previous release {PREVIOUS_RELEASE} cannot be extracted: {reason}")
    archive = git("archive", "--format=tar", PREVIOUS_RELEASE, capture_output=True)
    if archive.returncode:
        raise UpgradeError(f"git archive {PREVIOUS_RELEASE} failed: {archive.stderr.decode()}")
    target = PREVIOUS / "api_sync"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")


def previous_combination(combination):
    """The same combination with the previous release as api_sync instead of the checkout."""
    checkout = str(REPO / ".build" / "addons")
    folders = combination.addons_path.split(",")
    if checkout not in folders:
        raise UpgradeError(f"the addons path {combination.addons_path} lacks {checkout}")
    folders[folders.index(checkout)] = str(PREVIOUS)
    return dataclasses.replace(combination, addons_path=",".join(folders))


def snapshot(dbname):
    """``{table: (columns, {key: row})}`` of every api_sync table and of ``OWNED_ROWS``; rows
    are keyed by id (by their whole value in relation tables, which have none)."""
    import psycopg2  # noqa: PLC0415 - only present in the Odoo virtualenv

    result = {}
    with psycopg2.connect(dbname=dbname) as connection, connection.cursor() as cursor:
        cursor.execute(
            r"""SELECT table_name FROM information_schema.tables
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
                   AND table_name LIKE 'api\_sync\_%' ORDER BY table_name"""
        )
        tables = [(name, "TRUE") for (name,) in cursor.fetchall()] + OWNED_ROWS
        for table, condition in tables:
            cursor.execute(f'SELECT * FROM "{table}" WHERE {condition}')
            columns = [column.name for column in cursor.description]
            rows = {}
            for values in cursor.fetchall():
                row = dict(zip(columns, values, strict=True))
                rows[row["id"] if "id" in row else tuple(map(str, values))] = row
            result[table] = (columns, rows)
    connection.close()
    return result


def compare(before, after):
    """``{table: [difference, ...]}`` (every table of ``before``) and notes on what is new."""
    differences, notes = {}, []
    for table, (columns, rows) in before.items():
        found = differences[table] = []
        if table not in after:
            found.append(f"{table}: table gone ({len(rows)} rows)")
            continue
        new_columns, new_rows = after[table]
        if "id" not in columns:  # a relation table: its rows keyed by the columns it had
            new_rows = {
                tuple(str(row.get(column)) for column in columns): row for row in new_rows.values()
            }
        if added := [column for column in new_columns if column not in columns]:
            notes.append(f"{table}: new columns {', '.join(added)}")
        for key, row in sorted(rows.items()):
            if key not in new_rows:
                where = f"id {key}" if "id" in row else "row"  # relation rows are their values
                found.append(f"{table} {where}: gone (was {row})")
                continue
            for column in columns:
                if column not in new_rows[key]:
                    found.append(f"{table} id {key} {column}: column gone (was {row[column]!r})")
                elif new_rows[key][column] != row[column]:
                    found.append(
                        f"{table} id {key} {column}: {row[column]!r} -> {new_rows[key][column]!r}"
                    )
        if added_rows := len(new_rows.keys() - rows.keys()):
            notes.append(f"{table}: {added_rows} new row(s)")
    notes += [f"{table}: new table" for table in after.keys() - before.keys()]
    return differences, notes


def module_version(dbname):
    import psycopg2  # noqa: PLC0415 - only present in the Odoo virtualenv

    with psycopg2.connect(dbname=dbname) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT latest_version FROM ir_module_module WHERE name = 'api_sync'")
        row = cursor.fetchone()
    connection.close()
    return row and row[0]


def manifest_version(series):
    """The version Odoo of ``series`` installs the checkout at: as Odoo's ``adapt_version``
    does, a version of up to three parts is prefixed with the series (1.1.0 -> 18.0.1.1.0)."""
    manifest = (REPO / "__manifest__.py").read_text(encoding="utf-8")
    version = ast.literal_eval(manifest)["version"]
    return version if len(version.split(".")) > 3 else f"{series}.{version}"


def run_step(name, combination, arguments, log, stdin=None):
    """Run one Odoo step; raises UpgradeError with the problems its output showed."""
    print(f"[api_sync] upgrade check: {name}", flush=True)
    log.write(f"\n===== {name} =====\n")
    log.flush()
    output = run_logged(combination, arguments, log, stdin=stdin)
    if output.problems:
        raise UpgradeError(f"{name}: " + "; ".join(output.problems))


def upgrade(combination, dbname, db_args, log):
    """Install the previous release, fill, snapshot, upgrade, snapshot; returns both snapshots.
    On a series the previous release does not install on, the checkout stands for it."""
    if combination.series in PREVIOUS_SERIES:
        extract_previous()
        previous, release = previous_combination(combination), PREVIOUS_RELEASE
    else:
        previous, release = combination, "the checkout"
    run_step(
        f"install api_sync {release} (no demo data)",
        previous,
        install_arguments(previous, db_args, dbname),
        log,
    )
    run_step(
        f"fill it with {FILL_SCRIPT.name} (odoo shell)",
        previous,
        ["shell", *server_arguments(previous, db_args, dbname), "--log-level=warn"],
        log,
        stdin=(
            f"import runpy\nrunpy.run_path({str(FILL_SCRIPT)!r})['fill'](env)\nenv.cr.commit()\n"
        ),
    )
    before = snapshot(dbname)
    version_before = module_version(dbname)
    run_step(
        "upgrade to the checkout (-u api_sync)",
        combination,
        [
            *server_arguments(combination, db_args, dbname),
            "-u",
            "api_sync",
            "--stop-after-init",
            "--log-level=info",
        ],
        log,
    )
    version_after, expected = module_version(dbname), manifest_version(combination.series)
    print(f"[api_sync] upgrade check: api_sync {version_before} -> {version_after}", flush=True)
    if version_after != expected:
        raise UpgradeError(f"api_sync is at {version_after} after -u, its manifest {expected}")
    return before, snapshot(dbname)


def run_upgrade(combination, logfile, db_args, keep_db):
    """The upgrade check on one combination; returns (passed, failed, problems), counting one
    check per table compared (one failure when a step could not be done)."""
    dbname = f"api_sync_upgrade_{uuid.uuid4().hex[:8]}"
    release = PREVIOUS_RELEASE if combination.series in PREVIOUS_SERIES else "checkout"
    print(
        f"[api_sync] upgrade check of {combination.label}: {release} -> checkout "
        f"on fresh database {dbname} (log: {logfile})",
        flush=True,
    )
    started = time.monotonic()
    try:
        with open(logfile, "w", encoding="utf-8") as log:
            before, after = upgrade(combination, dbname, db_args, log)
    except UpgradeError as error:
        return 0, 1, [str(error)]
    finally:
        if not keep_db:
            drop_database(dbname)
    differences, notes = compare(before, after)
    print(
        "[api_sync] upgrade check: rows compared: "
        + ", ".join(f"{table} {len(rows)}" for table, (_columns, rows) in sorted(before.items())),
        flush=True,
    )
    for note in notes:
        print(f"[api_sync] upgrade check: {note}")
    problems = []
    for table, found in sorted(differences.items()):
        if not found:
            continue
        problems.append(f"upgrade changed {len(found)} value(s) or row(s) of {table}")
        for difference in found[:MAX_REPORTED]:
            print(f"[api_sync] upgrade difference: {difference}")
        if len(found) > MAX_REPORTED:
            print(f"[api_sync] upgrade difference: ... and {len(found) - MAX_REPORTED} more")
    rows = sum(len(rows) for _columns, rows in before.values())
    failed = sum(1 for found in differences.values() if found)
    print(
        f"[api_sync] upgrade check of {combination.label} took {time.monotonic() - started:.0f}s: "
        f"{len(differences)} tables ({rows} rows) compared, {failed} changed",
        flush=True,
    )
    return len(differences) - failed, failed, problems
