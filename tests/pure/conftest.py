"""Makes the Odoo-independent ``engine`` package importable without Odoo."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
