"""What a package of the addon holds: the files git lists (tracked, or new and not ignored) or,
outside a checkout, every file, less the repository's own tools and development files. The
wheel (``addon_build.py``) and the translation template (``tools/export_pot.py``) are made from a
copy of these files alone."""

import shutil
import subprocess
from pathlib import Path

# Paths relative to the addon's root, and names anywhere, that a package of it leaves out.
NOT_SHIPPED = ("tools", "bench", ".ci", "docs", "tests/pure", "BENCHMARKS.md", "pyproject.toml")
NOT_SHIPPED_NAMES = ("__pycache__", ".git", ".build", ".venv", "build", "dist")


def shipped(root):
    """The files of the addon at ``root`` that a package holds, relative to it."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        files = [Path(name) for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # no git, or not a checkout
        files = [path.relative_to(root) for path in root.rglob("*") if path.is_file()]
    return sorted(
        path
        for path in files
        if (root / path).is_file()
        and not any(part in NOT_SHIPPED_NAMES for part in path.parts)
        and not any(path == Path(item) or Path(item) in path.parents for item in NOT_SHIPPED)
        and not (len(path.parts) == 1 and (path.name.startswith(".") or path.match("*.txt")))
        and path.suffix not in (".pyc", ".pyo")
    )


def copy_shipped(root, target, extra=()):
    """Copy what the addon at ``root`` ships, and the files ``extra`` (relative to it), into
    the folder ``target``."""
    for path in [*shipped(root), *extra]:
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / path, target / path)
