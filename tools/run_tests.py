"""The test command's driver (started by tools/test inside the virtualenv).

Runs, in order: the pure-Python tests (pytest), the linters (ruff, pylint-odoo), and the Odoo
tests with Odoo's own runner on a fresh database, once per Odoo combination given (an Odoo tree
with the virtualenv of its queue_job). Ends with one line per part and a total line; exits non-zero
when anything failed, when Odoo could not install the module, when api_sync logged a
WARNING/ERROR, or when a query on an api_sync table logged an ``odoo.sql_db`` ERROR.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z]+) (?P<db>\S+) (?P<logger>[\w.]+): "
    r"(?P<message>.*)$"
)
STATS = re.compile(r"^(?P<module>\w+): (?P<count>\d+) tests ")
FAILURE = re.compile(r"^(?P<kind>FAIL|ERROR): (?P<test>.+)$")
OWN_TABLE = re.compile(r"\bapi_sync_\w+")


@dataclass
class Combination:
    """One Odoo tree and the virtualenv of its queue_job (tools/test passes one per --odoo-run)."""

    label: str  # shown in the summary, e.g. "odoo-18.0 + queue_job 18.0.1.7.0.1"
    python: str  # the combination's virtualenv
    odoo: str  # the tree, put first on PYTHONPATH
    launcher: str  # odoo-bin (source layout) or setup/odoo (package layout)
    addons_path: str

    @classmethod
    def parse(cls, value):
        """From tools/test's --odoo-run: the five fields, one per line."""
        return cls(*value.split("\n"))


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


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def drop_database(dbname):
    import psycopg2  # noqa: PLC0415 - only present in the Odoo virtualenv

    connection = psycopg2.connect(dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
    connection.close()


def run_odoo(combination, logfile, db_args, test_tags, keep_db):
    """Install api_sync on a fresh database, run its tests; returns (passed, failed, problems)."""
    dbname = f"api_sync_test_{uuid.uuid4().hex[:8]}"
    command = [
        combination.python,
        combination.launcher,
        f"--addons-path={combination.addons_path}",
        *db_args,
        "-d",
        dbname,
        "-i",
        "api_sync",
        "--test-enable",
        f"--test-tags={test_tags}",
        "--stop-after-init",
        "--http-interface=127.0.0.1",
        f"--http-port={free_port()}",
        "--max-cron-threads=0",
        "--log-level=info",
        "--log-handler=odoo.tests.stats:INFO",
    ]
    print(
        f"[api_sync] Odoo tests of {combination.label} on fresh database {dbname} (log: {logfile})",
        flush=True,
    )
    started = time.monotonic()
    counts, failed_tests, problems = {}, set(), []
    with (
        open(logfile, "w", encoding="utf-8") as log,
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=combination.odoo,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                # Else "odoo" may be found as queue_job's namespace folder in site-packages.
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [combination.odoo, os.environ.get("PYTHONPATH")])
                ),
            },
        ) as process,
    ):
        current = None
        sql_errors = []  # odoo.sql_db ERROR entries, with the query lines that follow them
        for line in process.stdout:
            log.write(line)
            match = LOG_LINE.match(line)
            if not match:
                if current is not None and current["level"] in ("ERROR", "CRITICAL"):
                    print(line, end="")
                    current["message"] += line
                continue
            current = match.groupdict()
            if current["logger"] == "odoo.sql_db" and current["level"] == "ERROR":
                sql_errors.append(current)
            level, logger, message = current["level"], current["logger"], current["message"]
            if logger == "odoo.tests.stats" and (stats := STATS.match(message)):
                counts[stats["module"]] = int(stats["count"])
            if failure := FAILURE.match(message):
                failed_tests.add(failure["test"])
            own = logger.startswith("odoo.addons.api_sync")
            if level in ("ERROR", "CRITICAL") or (level == "WARNING" and own):
                problems.append(f"{level} {logger}: {message}")
                print(line, end="")
            elif (
                logger.startswith("odoo.addons.")
                and ".tests." in logger
                and message.startswith("Starting ")
            ):
                print(f"  {message.removeprefix('Starting ').removesuffix(' ...')}", flush=True)
        returncode = process.wait()
    if not keep_db:
        drop_database(dbname)
    own_sql = [error for error in sql_errors if OWN_TABLE.search(error["message"])]
    if own_sql:
        problems.append(
            f"{len(own_sql)} odoo.sql_db ERROR line(s) from queries on api_sync tables "
            f"(a conflict the code handles must not log as an error): "
            f"{own_sql[0]['message'].splitlines()[0]}"
        )
    if returncode:
        problems.append(f"Odoo exited with status {returncode}")
    total = sum(counts.values())
    if not total:
        problems.append("Odoo ran no test (did the module install?)")
    print(
        f"[api_sync] Odoo tests of {combination.label} took {time.monotonic() - started:.0f}s: "
        + ", ".join(f"{module} {count}" for module, count in sorted(counts.items())),
        flush=True,
    )
    failed = max(len(failed_tests), 1 if problems else 0)
    return max(total - len(failed_tests), 0), failed, problems


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
    args = parser.parse_args()
    python = sys.executable

    pure_passed, pure_failed = run_pure(python)
    lint_ok = run_lint(python)
    parts = [
        f"pure {pure_passed} passed, {pure_failed} failed",
        f"lint {'clean' if lint_ok else 'FAILED'}",
    ]
    odoo_passed = odoo_failed = 0
    problems = []
    for index, combination in enumerate(args.odoo_run):
        # The first combination's log keeps the usual name; the others are named by their tree.
        suffix = f"-{Path(combination.odoo).name.removeprefix('odoo-')}" if index else ""
        passed, failed, found = run_odoo(
            combination,
            REPO / ".build" / f"odoo-test{suffix}.log",
            args.db_arg,
            args.test_tags,
            args.keep_db,
        )
        odoo_passed, odoo_failed = odoo_passed + passed, odoo_failed + failed
        problems += [f"{combination.label}: {problem}" for problem in found]
        parts.append(f"odoo [{combination.label}] {passed} passed, {failed} failed")
    if args.odoo_run and not browser_found():
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
    failed = pure_failed + odoo_failed + (0 if lint_ok else 1)
    print(f"[api_sync] summary: {'; '.join(parts)}")
    print(f"total: {pure_passed + odoo_passed} passed, {failed} failed")
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
