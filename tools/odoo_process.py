"""Running Odoo for the test command (tools/run_tests.py, tools/upgrade_check.py).

An Odoo combination (tree, virtualenv, addons path), the options every run shares, and one run
with its output logged and scanned for problems: ERROR/CRITICAL lines, api_sync's WARNINGs, and
``odoo.sql_db`` ERRORs of queries on api_sync tables.
"""

import os
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

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

    @property
    def series(self):
        """The tree's Odoo series, e.g. "18.0" (its odoo/release.py)."""
        release = Path(self.odoo, "odoo", "release.py").read_text(encoding="utf-8")
        major, minor = re.search(r"^version_info = \((\d+), *(\d+),", release, re.M).groups()
        return f"{major}.{minor}"

    def demo_arguments(self, demo=True):
        """Demo data (or none) in a new database. 18.0: loaded unless --without-demo=all /
        19.0: only with --with-demo (--without-demo takes a boolean there)."""
        if self.series < "19.0":
            return [] if demo else ["--without-demo=all"]
        return ["--with-demo"] if demo else []


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


@dataclass
class OdooOutput:
    """What ``run_logged`` read in Odoo's output."""

    returncode: int
    counts: dict  # tests run per module (odoo.tests.stats)
    failed_tests: set
    problems: list  # ERROR/CRITICAL lines, api_sync's WARNINGs, SQL errors on api_sync tables


def run_logged(combination, arguments, log, stdin=None):
    """Run Odoo of ``combination`` with ``arguments``, its output written to ``log`` and scanned.

    Echoes the ERROR lines and the test classes as they start; ``stdin``: a text fed to Odoo
    (``odoo shell`` runs it).
    """
    counts, failed_tests, problems = {}, set(), []
    with subprocess.Popen(
        [combination.python, combination.launcher, *arguments],
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
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
    ) as process:
        if stdin is not None:
            process.stdin.write(stdin)
            process.stdin.close()
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
    own_sql = [error for error in sql_errors if OWN_TABLE.search(error["message"])]
    if own_sql:
        problems.append(
            f"{len(own_sql)} odoo.sql_db ERROR line(s) from queries on api_sync tables "
            f"(a conflict the code handles must not log as an error): "
            f"{own_sql[0]['message'].splitlines()[0]}"
        )
    if returncode:
        problems.append(f"Odoo exited with status {returncode}")
    return OdooOutput(returncode, counts, failed_tests, problems)


def server_arguments(combination, db_args, dbname):
    """The options every Odoo run of the tests shares: database, addons, no HTTP clash, no cron."""
    return [
        f"--addons-path={combination.addons_path}",
        *db_args,
        "-d",
        dbname,
        "--http-interface=127.0.0.1",
        f"--http-port={free_port()}",
        "--max-cron-threads=0",
    ]


def install_arguments(combination, db_args, dbname, log_level="info"):
    """Odoo's options to install api_sync (no demo data) on the new database ``dbname``."""
    return [
        *server_arguments(combination, db_args, dbname),
        "-i",
        "api_sync",
        *combination.demo_arguments(demo=False),
        "--stop-after-init",
        f"--log-level={log_level}",
    ]
