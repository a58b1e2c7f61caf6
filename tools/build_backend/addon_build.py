"""PEP 517 build backend of the addon: OCA's whool, on a copy named ``api_sync``.

whool names a package after the folder it builds (OCA repositories keep one folder per addon)
and ships what git tracks there. This repository's root is the addon, and a clone may be called
anything, so each build copies what the addon ships (``addon_files.py``) into a folder
``api_sync`` of its own and lets whool build it: ``odoo/addons/api_sync`` in the wheel,
``odoo-addon-queue_job`` and the manifest's Python dependencies as requirements.
"""

import ast
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from addon_files import copy_shipped
from whool import buildapi

ADDON = "api_sync"
# The Odoo series a wheel is built for: the manifest's version has no series (both 18.0 and
# 19.0 prefix their own), a wheel's has one (OCA's packages are per series).
SERIES_VARIABLE = "API_SYNC_ODOO_SERIES"
DEFAULT_SERIES = "18.0"
BACKEND = ("tools/build_backend/addon_build.py", "tools/build_backend/addon_files.py")


@contextlib.contextmanager
def staged(with_backend=False):
    """A copy of what the addon ships, in a folder named ``api_sync``, as the current folder
    (``with_backend``: this backend too, which an sdist needs to build its wheel)."""
    root = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="api_sync-build-") as tmp:
        stage = Path(tmp) / ADDON
        copy_shipped(root, stage, BACKEND if with_backend else ())
        with_series(stage / "__manifest__.py", os.environ.get(SERIES_VARIABLE) or DEFAULT_SERIES)
        # whool reads its options there; it leaves the file out of the wheel
        shutil.copy2(root / "pyproject.toml", stage / "pyproject.toml")
        if (root / "PKG-INFO").is_file():  # building from an sdist: its name and version
            shutil.copy2(root / "PKG-INFO", stage / "PKG-INFO")
        os.chdir(stage)
        try:
            yield
        finally:
            os.chdir(root)


def with_series(manifest, series):
    """Prefix the manifest's version with ``series`` (``1.1.0`` becomes ``18.0.1.1.0``), as
    Odoo does when it loads it."""
    text = manifest.read_text(encoding="utf-8")
    version = ast.literal_eval(text)["version"]
    if not version.startswith(f"{series}."):
        text = text.replace(f'"version": "{version}"', f'"version": "{series}.{version}"', 1)
        manifest.write_text(text, encoding="utf-8")


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    wheel_directory = os.path.abspath(wheel_directory)
    with staged():
        return buildapi.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    sdist_directory = os.path.abspath(sdist_directory)
    with staged(with_backend=True):
        return buildapi.build_sdist(sdist_directory, config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    metadata_directory = os.path.abspath(metadata_directory)
    with staged():
        return buildapi.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []
