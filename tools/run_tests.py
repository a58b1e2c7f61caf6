"""The test command's driver (started by tools/test inside the virtualenv).

Runs, in order: the pure-Python tests (pytest), the linters (ruff, pylint-odoo), and the Odoo
tests with Odoo's own runner on a fresh database, once per Odoo combination given (an Odoo tree
with the virtualenv of its queue_job). Ends with one line per part and a total line; exits non-zero
when anything failed, when Odoo could not install the module, when api_sync logged a
WARNING/ERROR, or when a query on an api_sync table logged an ``odoo.sql_db`` ERROR.
"""

import argparse
import shutil
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from export_pot import run_check as run_pot_check
from odoo_process import Combination, drop_database, run_logged, server_arguments
from schema_check import run_schema_check, schema
from upgrade_check import run_upgrade
from wheel_check import run_wheel_check

REPO = Path(__file__).resolve().parent.parent


def run_pure(python):
    """Pytest over tests/pure; returns (passed, failed)."""
    report = REPO / ".build" / "pytest.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "--rootdir",
            str(REPO / "tests" / "pure"),
            str(REPO / "tests" / "pure"),
        ],
        cwd=REPO,
        check=False,
    )
    if not report.exists():
        return 0, 1
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    total, failed = int(suite.get("tests")), int(suite.get("failures")) + int(suite.get("errors"))
    skipped = int(suite.get("skipped"))
    if completed.returncode not in (0, 1) and not failed:
        failed = 1  # pytest itself failed (usage or collection error)
    return total - failed - skipped, failed


def run_lint(python):
    checks = [["check", "."], ["format", "--check", "."]]
    results = [
        subprocess.run([python, "-m", "ruff", *check], cwd=REPO, check=False) for check in checks
    ]
    # pylint-odoo checks the addon under its module name (a clone may be called anything).
    addons = REPO / ".build" / "addons"
    addons.mkdir(parents=True, exist_ok=True)
    if not (addons / "api_sync").exists():
        (addons / "api_sync").symlink_to(REPO)
    results.append(
        subprocess.run(
            [python, "-m", "pylint", f"--rcfile={REPO / '.pylintrc'}", "--score=n", "api_sync"],
            cwd=addons,
            check=False,
        )
    )
    return all(result.returncode == 0 for result in results)


def run_odoo(combination, logfile, db_args, test_tags, keep_db):
    """Install api_sync on a fresh database, run its tests; returns (passed, failed, problems)
    and the api_sync tables' schema in that database (None when it could not be read)."""
    dbname = f"api_sync_test_{uuid.uuid4().hex[:8]}"
    arguments = [
        *server_arguments(combination, db_args, dbname),
        *combination.demo_arguments(),
        "-i",
        "api_sync",
        "--test-enable",
        f"--test-tags={test_tags}",
        "--stop-after-init",
        "--log-level=info",
        "--log-handler=odoo.tests.stats:INFO",
    ]
    print(
        f"[api_sync] Odoo tests of {combination.label} on fresh database {dbname} (log: {logfile})",
        flush=True,
    )
    started = time.monotonic()
    with open(logfile, "w", encoding="utf-8") as log:
        output = run_logged(combination, arguments, log)
    try:
        tables = schema(dbname)
    except Exception as error:  # noqa: BLE001 - reported as a problem of the schema check
        print(f"[api_sync] schema of {dbname} not read: {error}", flush=True)
        tables = None
    if not keep_db:
        drop_database(dbname)
    counts, failed_tests, problems = output.counts, output.failed_tests, output.problems
    total = sum(counts.values())
    if not total:
        problems.append("Odoo ran no test (did the module install?)")
    print(
        f"[api_sync] Odoo tests of {combination.label} took {time.monotonic() - started:.0f}s: "
        + ", ".join(f"{module} {count}" for module, count in sorted(counts.items())),
        flush=True,
    )
    failed = max(len(failed_tests), 1 if problems else 0)
    return (max(total - len(failed_tests), 0), failed, problems), tables


def browser_found():
    """Whether Odoo's browser tests find a Chromium (they are skipped without one)."""
    return any(
        shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome", "chrome")
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--odoo-run",
        action="append",
        default=[],
        type=Combination.parse,
        metavar="LABEL\\nPYTHON\\nTREE\\nLAUNCHER\\nADDONS_PATH",
        help="an Odoo combination to run the Odoo tests on (repeatable); none: only the pure part",
    )
    parser.add_argument("--db-arg", action="append", default=[])
    parser.add_argument(
        "--require-odoo", action="store_true", help="fail when no Odoo source is available (CI)"
    )
    parser.add_argument("--test-tags", default="/api_sync,/base_automation")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--only-upgrade",
        action="store_true",
        help="run only the upgrade check (no pure tests, lint or Odoo tests)",
    )
    parser.add_argument(
        "--only-packaging",
        action="store_true",
        help="run only the packaging checks (the wheel installed like OCA's, i18n/api_sync.pot)",
    )
    parser.add_argument(
        "--only-odoo",
        action="store_true",
        help="run only the Odoo tests (no pure tests, lint, upgrade or packaging checks)",
    )
    args = parser.parse_args()
    python = sys.executable
    only = args.only_upgrade or args.only_packaging
    checks = not args.only_odoo  # the upgrade and packaging checks

    passed_total = failed_total = 0
    parts, problems = [], []
    if not only and checks:
        pure_passed, pure_failed = run_pure(python)
        lint_ok = run_lint(python)
        parts += [
            f"pure {pure_passed} passed, {pure_failed} failed",
            f"lint {'clean' if lint_ok else 'FAILED'}",
        ]
        passed_total, failed_total = pure_passed, pure_failed + (0 if lint_ok else 1)
    schemas = []  # (label, api_sync tables' schema) of each tree's test database
    for index, combination in enumerate(args.odoo_run):
        # The first combination's logs keep the usual names; the others are named by their tree.
        suffix = f"-{Path(combination.odoo).name.removeprefix('odoo-')}" if index else ""
        build = REPO / ".build"
        results = []
        if not only:
            result, tables = run_odoo(
                combination,
                build / f"odoo-test{suffix}.log",
                args.db_arg,
                args.test_tags,
                args.keep_db,
            )
            results.append(("odoo", result))
            schemas.append((Path(combination.odoo).name, tables))
        if not args.only_packaging and checks:
            results.append(
                (
                    "upgrade",
                    run_upgrade(
                        combination, build / f"odoo-upgrade{suffix}.log", args.db_arg, args.keep_db
                    ),
                )
            )
        # the packaging checks on the first combination (the packages are the same for all)
        if not index and not args.only_upgrade and checks:
            results.append(
                (
                    "wheel",
                    run_wheel_check(
                        combination, build / "wheel-check.log", args.db_arg, args.keep_db
                    ),
                )
            )
            results.append(
                (
                    "pot",
                    run_pot_check(combination, build / "odoo-pot.log", args.db_arg, args.keep_db),
                )
            )
        for part, (passed, failed, found) in results:
            passed_total, failed_total = passed_total + passed, failed_total + failed
            problems += [f"{combination.label}: {problem}" for problem in found]
            parts.append(f"{part} [{combination.label}] {passed} passed, {failed} failed")
    if len(schemas) > 1:
        # the same tables on every tree: a database moves between series with no api_sync step
        passed, failed, found = run_schema_check(schemas)
        passed_total, failed_total = passed_total + passed, failed_total + failed
        problems += found
        parts.append(
            f"schema [{' = '.join(label for label, _tables in schemas)}] "
            f"{passed} passed, {failed} failed"
        )
    if args.odoo_run and not only and not browser_found():
        banner = "!" * 78
        print(
            f"\n{banner}\n!! NO CHROMIUM FOUND: the browser tests (tours) were SKIPPED.\n"
            f"!! Install Debian's chromium package (.ci/run does) to run them.\n{banner}\n",
            flush=True,
        )
        parts.append("browser tests SKIPPED (no Chromium)")
    if not args.odoo_run:
        banner = "!" * 78
        print(
            f"\n{banner}\n!! NO ODOO SOURCE FOUND: the Odoo tests did NOT run.\n"
            f"!! Set ODOO_SRC or see README.md (Requirements).\n{banner}\n",
            flush=True,
        )
        parts.append("odoo NOT RUN (no Odoo source)")
        if args.require_odoo:
            problems.append("no Odoo source and --require-odoo is set")
    for problem in problems:
        print(f"[api_sync] problem: {problem}")
    print(f"[api_sync] summary: {'; '.join(parts)}")
    print(f"total: {passed_total} passed, {failed_total} failed")
    return 1 if failed_total or problems else 0


if __name__ == "__main__":
    sys.exit(main())
