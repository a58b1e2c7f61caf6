from . import controllers
from . import models
from . import wizard
from .models import queue_jobs


def uninstall_hook(env):
    """api_sync's jobs go with it (their models are gone), and its index on queue_job's table."""
    queue_jobs.forget_api_sync_jobs(env.cr)
