"""The watch: while api_sync's jobs run, a job every few seconds gives back the places in the job
runner's channels that dead workers hold.

A worker killed with its node (``kill -9``, a crash, the machine gone) leaves its job
``started``. queue_job's runner still counts it as running, so it keeps a place in its channel
until someone changes the job row: with every place of ``root.api_sync`` held that way,
nothing is delivered, on any node, however healthy. The recovery scheduled action finds such
jobs too, but Odoo runs it once a minute at best. So while an api_sync job is enqueued, started
or ready to run, a watch job runs every ``WATCH_SECONDS``:

1. it stores the next watch first, committed at once (a watch dying with its node leaves the
   next one), and deletes the watches that ended (queue_job's table keeps two or three);
2. it takes over every api_sync job whose worker is gone (started more than a few seconds ago
   and its advisory lock free, or enqueued long ago: see ``api.sync.log._grace_limit``): the
   job's pending events are queued again with the same event ids and the job is cancelled,
   which the runner hears at once (queue_job's trigger on its table) and fills the place; a
   run's progress job is queued again; a dead watch is cancelled.

The watch runs in the ``root`` channel, not in ``root.api_sync``, whose places dead jobs may
all hold: the root channel's capacity must leave it one (``root:N,root.api_sync:M`` with
N > M). Every api_sync job starts the watch when none is due: each worker process looks at most
once per ``WATCH_SECONDS`` (a short transaction of its own). Nothing here depends on the
queue_job release (the newer ones requeue dead jobs themselves, when their runner wakes up).
"""

import datetime
import logging
import time

import psycopg2

from odoo import SUPERUSER_ID, fields

from . import queue_jobs
from .transactions import own_transaction

_logger = logging.getLogger(__name__)

WATCH_SECONDS = 2
WATCH_PRIORITY = 1  # before other jobs of the root channel (queue_job's default is 10)
DESCRIPTION = "API sync: watch for jobs whose worker is gone"


class Watch:
    """One pass of the watch (the job ``api.sync.log._watch``), and its start by the jobs."""

    next_look = 0.0  # per process: when ``keep`` looks again whether a watch is due (monotonic)

    def __init__(self, env, job_uuid=None):
        self.env = env(su=True)
        self.job_uuid = job_uuid

    @classmethod
    def keep(cls, env):
        """From an api_sync job that started: make sure a watch is due (looked at most once
        per ``WATCH_SECONDS`` in this process)."""
        if time.monotonic() < cls.next_look:
            return
        cls.next_look = time.monotonic() + WATCH_SECONDS
        with own_transaction(env) as cr:
            # the watch is the system's job, as the recovery scheduled action is: not the job
            # of whoever's delivery happened to start it
            own = env(cr=cr, user=SUPERUSER_ID)
            queue_jobs.lock_watches(cr)
            if queue_jobs.watch_due(cr, own["api.sync.log"]._grace_limit().enqueued) is None:
                cls._store_next(own)

    @classmethod
    def _store_next(cls, env):
        eta = fields.Datetime.now() + datetime.timedelta(seconds=WATCH_SECONDS)
        queue_jobs.store_watch(env, env["api.sync.log"]._watch, eta, DESCRIPTION, WATCH_PRIORITY)

    def run(self):
        """The job: the next watch, then the jobs whose worker is gone taken over."""
        if not queue_jobs.claim_running_job(self.env, self.job_uuid):
            return  # a watch that was taken for dead: the next one does the work
        self._next()
        self.take_over_dead_jobs()

    def _next(self):
        """Store the next watch (committed now) while api_sync has work in flight."""
        with own_transaction(self.env) as cr:
            own = self.env(cr=cr)
            queue_jobs.lock_watches(cr)
            queue_jobs.drop_finished_watches(cr)
            grace = own["api.sync.log"]._grace_limit()
            soon = fields.Datetime.now() + datetime.timedelta(seconds=WATCH_SECONDS)
            if queue_jobs.work_in_flight(cr, soon) and (
                queue_jobs.watch_due(cr, grace.enqueued, but=self.job_uuid) is None
            ):
                self._store_next(own)

    def take_over_dead_jobs(self, lost_before=None):
        """Take over api_sync's jobs whose worker is gone (see the module's docstring), each
        in a savepoint; returns how many. ``lost_before``: see ``_grace_limit``."""
        Logs = self.env["api.sync.log"]
        grace = Logs._grace_limit(lost_before)
        taken = 0
        for job_id, job_uuid, model, method in queue_jobs.dead_jobs(self.env, grace):
            job = self.env["queue.job"].browse(job_id)
            try:
                with self.env.cr.savepoint():
                    logs = Logs
                    if model == "api.sync.log" and method != "_watch":
                        logs = Logs.search([("job_uuid", "=", job_uuid), ("state", "=", "pending")])
                    if logs:  # their job is cancelled with them
                        taken += bool(logs._recover_lost(lost_before=lost_before))
                    elif queue_jobs.job_is_lost(self.env, job_id, grace):
                        taken += 1
                        if method == "_advance":  # a run's progress: it is idempotent
                            # (not requeue(): newer queue_job releases leave started jobs be)
                            job._change_job_state("pending", result=DESCRIPTION)
                        else:
                            job._change_job_state("cancelled", result=DESCRIPTION)
            except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
                continue  # changed meanwhile: looked at again next time
        if taken:
            _logger.info("api_sync: %s jobs whose worker is gone were taken over", taken)
        return taken
