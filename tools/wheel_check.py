"""The packaging check of the test command: the addon as a wheel, installed like OCA's.

Builds a wheel of the checkout (``pip wheel --no-deps``: pyproject.toml, whool), reads what it
holds and requires, installs it with ``--no-deps`` into a fresh virtualenv, finds
``odoo.addons.api_sync`` there as a namespace package location, and has Odoo install the module
from that virtualenv's ``odoo/addons`` on a fresh database, with an addons path that does not
hold the checkout. Odoo runs in the combination's virtualenv, which has the requirements (the
fresh one has only the wheel).
"""

import dataclasses
import email.parser
import os
import subprocess
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

from odoo_process import drop_database, install_arguments, run_logged

REPO = Path(__file__).resolve().parent.parent
ADDON = "odoo/addons/api_sync/"
# What the wheel must hold, and must not (the repository's tools and development files).
REQUIRED_FILES = ("__manifest__.py", "__init__.py", "models/__init__.py", "i18n/api_sync.pot")
NOT_SHIPPED = ("tools/", "bench/", ".ci/", "docs/", "tests/pure/", "requirements", ".git")
REQUIRED_DEPENDENCIES = ("odoo-addon-queue_job", "requests")
FIND_SPEC = (
    "import importlib.util; spec = importlib.util.find_spec('odoo.addons.api_sync');"
    "print(spec.submodule_search_locations[0] if spec else '')"
)


class Check:
    """Named checks, counted: each passes or fails with a reason."""

    def __init__(self):
        self.passed, self.problems = 0, []

    def __call__(self, name, ok, reason=""):
        print(f"[api_sync] wheel check: {name}: {'ok' if ok else 'FAILED ' + reason}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.problems.append(f"{name}: {reason}")
        return ok


def run(command, log, **kwargs):
    log.write(f"\n$ {' '.join(map(str, command))}\n")
    log.flush()
    return subprocess.run(
        command, stdout=log, stderr=subprocess.STDOUT, check=False, text=True, **kwargs
    )


def inspect_wheel(wheel, check, series):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_name = next(name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = email.parser.HeaderParser().parsestr(archive.read(metadata_name).decode())
    inside = [name.removeprefix(ADDON) for name in names if name.startswith(ADDON)]
    missing = [name for name in REQUIRED_FILES if name not in inside]
    check("the addon at odoo/addons/api_sync", not missing, f"missing {missing}")
    junk = sorted({item for name in inside for item in NOT_SHIPPED if name.startswith(item)})
    outside = [name for name in names if not name.startswith((ADDON, "odoo_addon_api_sync-"))]
    check("nothing else shipped", not junk and not outside, f"found {junk or outside}")
    requires = metadata.get_all("Requires-Dist") or []
    absent = [
        dependency
        for dependency in REQUIRED_DEPENDENCIES
        if not any(requirement.startswith(dependency) for requirement in requires)
    ]
    check(
        f"{metadata['Name']} {metadata['Version']} requires queue_job and requests",
        metadata["Name"] == "odoo-addon-api_sync" and not absent,
        f"Requires-Dist {requires}",
    )
    check(
        f"built for Odoo {series}",
        metadata["Version"].startswith(f"{series}."),
        f"version {metadata['Version']}",
    )
    return len(names)


def run_wheel_check(combination, logfile, db_args, keep_db):
    """The check on one combination; returns (passed, failed, problems)."""
    print(f"[api_sync] wheel check of {combination.label} (log: {logfile})", flush=True)
    started = time.monotonic()
    check = Check()
    dbname = f"api_sync_wheel_{uuid.uuid4().hex[:8]}"
    with open(logfile, "w", encoding="utf-8") as log, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        built = run(
            [combination.python, "-m", "pip", "wheel", "--no-deps", "-w", tmp / "dist", REPO],
            log,
            env={**os.environ, "API_SYNC_ODOO_SERIES": combination.series},
        )
        wheels = sorted((tmp / "dist").glob("*.whl"))
        if check("wheel built", not built.returncode and len(wheels) == 1, f"see {logfile}"):
            files = inspect_wheel(wheels[0], check, combination.series)
            print(f"[api_sync] wheel check: {wheels[0].name}, {files} files", flush=True)
            venv = tmp / "venv"
            python = venv / "bin" / "python"
            installed = (
                run([combination.python, "-m", "venv", venv], log).returncode
                or run(
                    [python, "-m", "pip", "install", "--no-deps", "--no-index", wheels[0]], log
                ).returncode
            )
            site = subprocess.run(
                [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            found = subprocess.run(
                [python, "-c", FIND_SPEC], capture_output=True, text=True, check=False, cwd=tmp
            ).stdout.strip()
            addons = Path(site) / "odoo" / "addons"
            check(
                "installed in a fresh virtualenv, odoo.addons.api_sync found there",
                not installed and found == str(addons / "api_sync"),
                f"found at {found!r}",
            )
            # Odoo's addons and queue_job's, then the fresh virtualenv's: not the checkout
            folders = [
                folder
                for folder in combination.addons_path.split(",")
                if not folder.endswith("/.build/addons")
            ]
            installed_from = dataclasses.replace(
                combination, addons_path=",".join([*folders, str(addons)])
            )
            output = run_logged(
                installed_from,
                install_arguments(installed_from, db_args, dbname),
                log,
            )
            state = module_state(dbname)
            check(
                "Odoo installs api_sync from the virtualenv",
                not output.problems and state == "installed",
                f"state {state}; " + "; ".join(output.problems),
            )
        if not keep_db:
            drop_database(dbname)
    print(
        f"[api_sync] wheel check of {combination.label} took {time.monotonic() - started:.0f}s",
        flush=True,
    )
    return check.passed, len(check.problems), check.problems


def module_state(dbname):
    import psycopg2  # noqa: PLC0415 - only present in the Odoo virtualenv

    try:
        connection = psycopg2.connect(dbname=dbname)
    except psycopg2.OperationalError:
        return None
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT state FROM ir_module_module WHERE name = 'api_sync'")
        row = cursor.fetchone()
    connection.close()
    return row and row[0]
