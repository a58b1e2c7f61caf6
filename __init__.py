from . import controllers
from . import models
from . import wizard
from .models import queue_jobs


def uninstall_hook(env):
    """api_sync's jobs go with it (their models are gone), its index on queue_job's table, and
    the system parameters set in its Settings (the metrics token is a secret)."""
    queue_jobs.forget_api_sync_jobs(env.cr)
    env["ir.config_parameter"].sudo().search([("key", "=like", "api_sync.%")]).unlink()
