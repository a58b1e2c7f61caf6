"""The translation template ``i18n/api_sync.pot``, exported by Odoo's own exporter.

api_sync is installed (no demo data) on a fresh database, Odoo exports its terms with
``--i18n-export=... --modules=api_sync`` and no language (a template), and the header's dates are
blanked so that an export of unchanged terms is the same file. ``--check`` (tools/test's ``pot``
part) compares that export with the committed file instead of writing it.
"""

import argparse
import dataclasses
import difflib
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

from build_backend.addon_files import copy_shipped
from odoo_process import (
    Combination,
    drop_database,
    install_arguments,
    run_logged,
    server_arguments,
)

REPO = Path(__file__).resolve().parent.parent
POT = REPO / "i18n" / "api_sync.pot"
DATES = re.compile(r'^"(POT-Creation-Date|PO-Revision-Date): [^"\\]*\\n"$', re.MULTILINE)
# the server's version: a nightly adds its date (18.0-20250925)
SERVER = re.compile(r'^"Project-Id-Version: Odoo Server (\d+\.\d+)[^"\\]*\\n"$', re.MULTILINE)


def normalize(text):
    """The export without what changes from one run or tree to the next: the header's dates
    and the nightly's date in the server's version."""
    text = SERVER.sub(lambda match: f'"Project-Id-Version: Odoo Server {match[1]}\\n"', text)
    return DATES.sub(lambda match: f'"{match[1]}: \\n"', text)


def export(combination, db_args, log, keep_db=False):
    """Install api_sync on a fresh database and export its template; returns (text, problems).

    The module is a copy of the files a package ships (tools/build_backend/addon_files.py):
    Odoo's exporter reads every file below the module's folder, which in a checkout holds
    .build/ (previous releases, a link back to the checkout)."""
    with tempfile.TemporaryDirectory(prefix="api_sync-pot-") as tmp:
        copy_shipped(REPO, Path(tmp) / "api_sync")
        folders = [
            tmp if folder == str(REPO / ".build" / "addons") else folder
            for folder in combination.addons_path.split(",")
        ]
        if tmp not in folders:
            return None, [f"the addons path {combination.addons_path} lacks .build/addons"]
        shipped = dataclasses.replace(combination, addons_path=",".join(folders))
        return _export(shipped, db_args, log, keep_db)


def _export(combination, db_args, log, keep_db):
    dbname = f"api_sync_pot_{uuid.uuid4().hex[:8]}"
    try:
        install = run_logged(
            combination,
            install_arguments(combination, db_args, dbname, log_level="warn"),
            log,
        )
        if install.problems:
            return None, [f"install for the export: {problem}" for problem in install.problems]
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "api_sync.pot"
            exported = run_logged(
                combination,
                [
                    *server_arguments(combination, db_args, dbname),
                    f"--i18n-export={target}",
                    "--modules=api_sync",
                    "--log-level=warn",
                ],
                log,
            )
            if exported.problems or not target.is_file():
                return None, [f"export: {problem}" for problem in exported.problems] or [
                    "Odoo wrote no template"
                ]
            return normalize(target.read_text(encoding="utf-8")), []
    finally:
        if not keep_db:
            drop_database(dbname)


def run_check(combination, logfile, db_args, keep_db=False):
    """tools/test's ``pot`` part: the committed template is the one the code gives; returns
    (passed, failed, problems)."""
    print(f"[api_sync] pot check of {combination.label} (log: {logfile})", flush=True)
    started = time.monotonic()
    with open(logfile, "w", encoding="utf-8") as log:
        text, problems = export(combination, db_args, log, keep_db)
    if problems:
        return 0, 1, problems
    committed = POT.read_text(encoding="utf-8") if POT.is_file() else ""
    print(f"[api_sync] pot check took {time.monotonic() - started:.0f}s", flush=True)
    if committed == text:
        return 1, 0, []
    diff = list(
        difflib.unified_diff(
            committed.splitlines(), text.splitlines(), "committed", "exported", lineterm="", n=1
        )
    )
    for line in diff[:40]:
        print(f"[api_sync] pot difference: {line}")
    return (
        0,
        1,
        [
            f"i18n/api_sync.pot is not the template of the code ({len(diff)} diff lines above): "
            "run tools/export_pot and commit i18n/api_sync.pot"
        ],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--odoo-run", required=True, type=Combination.parse)
    parser.add_argument("--db-arg", action="append", default=[])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    logfile = REPO / ".build" / "odoo-pot.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    if args.check:
        passed, _failed, problems = run_check(args.odoo_run, logfile, args.db_arg)
        for problem in problems:
            print(f"[api_sync] problem: {problem}")
        return 0 if passed and not problems else 1
    with open(logfile, "w", encoding="utf-8") as log:
        text, problems = export(args.odoo_run, args.db_arg, log)
    if problems:
        for problem in problems:
            print(f"[api_sync] problem: {problem}")
        return 1
    POT.parent.mkdir(exist_ok=True)
    POT.write_text(text, encoding="utf-8")
    print(f"[api_sync] wrote {POT.relative_to(REPO)} ({text.count('msgid ') - 1} terms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
