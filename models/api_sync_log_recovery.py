"""Deliveries whose job will not run any more (a dead worker, a crash, a technical failure) are
found and queued again, with the same event id.

How a lost job is told from a live one (its advisory lock) is in ``queue_jobs``. Nothing here
depends on the queue_job release: when queue_job puts a dead job back to ``pending`` first, it
is alive again and left alone.
"""

import logging
import sys
from collections import defaultdict

import psycopg2

from odoo import api, fields, models
from odoo.modules import module as odoo_module
from odoo.tools import config as odoo_config

from . import queue_jobs
from .watch import Watch

_logger = logging.getLogger(__name__)

# A job started this recently may not hold its advisory lock yet (its worker is on its way to
# the claim): given that time. Taking a live job for dead costs a job, never an event: the job's
# claim fails and its events go to the job that replaces it.
STARTED_GRACE_SECONDS = 3
# queue_job's runner puts back to pending a job whose start request failed or took more than a
# second; one enqueued for longer lost its runner (or the node it was sent to) on the way.
ENQUEUED_GRACE_SECONDS = 10
MAX_RECOVERIES = 10  # a delivery whose job keeps dying fails then, visibly
LOADED_AT = fields.Datetime.now()  # this server started then (the module loads at its start)
TECHNICAL_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


class ApiSyncLog(models.Model):
    _inherit = "api.sync.log"

    recovery_count = fields.Integer(
        string="Recoveries",
        readonly=True,
        help="Times the delivery was queued again because its job was lost.",
    )
    recovery_note = fields.Text(string="Recovery History", readonly=True)
    delivery_lost = fields.Boolean(
        compute="_compute_delivery_lost",
        help="Pending, but its job will not run: Retry queues it again.",
    )

    def init(self):
        result = super().init()
        queue_jobs.create_watch_index(self.env.cr)
        return result

    def _compute_delivery_lost(self):
        pending = self.filtered(lambda log: log.state == "pending" and log.id)
        lost = pending.browse(list(pending._lost_jobs()))
        for log in self:
            log.delivery_lost = log in lost

    # -- liveness -----------------------------------------------------------------------------

    @api.model
    def _grace_limit(self, lost_before=None):
        """Jobs enqueued or started before these times (a ``queue_jobs.Grace``), and not alive,
        are lost: ``lost_before`` (at a server's start, the start), else
        ``ENQUEUED_GRACE_SECONDS`` and ``STARTED_GRACE_SECONDS`` ago."""
        if lost_before:
            return queue_jobs.Grace(lost_before, lost_before)
        now = fields.Datetime.now()
        return queue_jobs.Grace(
            fields.Datetime.subtract(now, seconds=ENQUEUED_GRACE_SECONDS),
            fields.Datetime.subtract(now, seconds=STARTED_GRACE_SECONDS),
        )

    def _lost_jobs(self, everywhere=False, lost_before=None):
        """``{log id: (job uuid, job id, job state)}`` of the pending logs (of these, or all of
        them) whose job is gone, final, or started by a worker that is gone."""
        grace = self._grace_limit(lost_before)
        return queue_jobs.lost_jobs(self.env, self.ids, grace, everywhere)

    def _with_live_job(self):
        """The pending logs whose delivery job will still run."""
        return self - self.browse(list(self._lost_jobs()))

    # -- recovery -----------------------------------------------------------------------------

    def _register_hook(self):
        """At server start, before the job runner counts them as running, deliveries whose
        worker died with the previous server are queued again (the cron's first pass comes a
        minute after the start, and dead jobs may hold every slot of the channel meanwhile)."""
        super()._register_hook()
        if odoo_config["test_enable"] or odoo_config["stop_after_init"]:
            return
        try:
            with self.env.cr.savepoint():
                logs = self.sudo()
                lost = logs._lost_jobs(True, lost_before=LOADED_AT)
                logs.browse(list(lost))._recover_lost(lost_before=LOADED_AT)
                Watch(self.env).take_over_dead_jobs(lost_before=LOADED_AT)
        except Exception:  # pylint: disable=broad-exception-caught
            # the cron does it later; never prevent the server from starting
            _logger.info("api_sync: recovery at start left to the cron", exc_info=True)

    def _watch(self):
        """Job: the watch (see ``Watch``)."""
        return Watch(self.env, self.env.context.get("job_uuid")).run()

    @api.model
    def _cron_recover_lost(self):
        """Every minute: queue again the deliveries whose job was lost, and give back the queue
        capacity that dead jobs hold (as the watch does every few seconds while jobs run)."""
        auto_commit = not odoo_module.current_test  # set while Odoo runs tests (both series)
        by_job = defaultdict(list)
        for log_id, (job_uuid, _job_id, _state) in self.sudo()._lost_jobs(True).items():
            by_job[job_uuid].append(log_id)
        for log_ids in by_job.values():
            self.sudo().browse(log_ids)._recover_lost()
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        Watch(self.env).take_over_dead_jobs()

    def _recover_lost(self, force=False, lost_before=None):
        """Queue again those of these pending logs whose job is lost; returns them.

        Each lost job is taken under lock (the logs, the job row, the job's advisory lock) and
        checked again: a job that a worker or queue_job itself brought back is left alone. A job
        that failed for a non-technical reason fails its logs instead (shown on the record).
        ``force`` (manual retry): no limit on the number of recoveries. ``lost_before``: see
        ``_grace_limit``.
        """
        recovered = self.browse()
        by_job = defaultdict(list)
        grace = self._grace_limit(lost_before)
        for log_id, job in self._lost_jobs(lost_before=lost_before).items():
            by_job[job].append(log_id)
        for (job_uuid, job_id, _state), log_ids in by_job.items():
            try:
                with self.env.cr.savepoint():
                    recovered |= self.browse(log_ids)._take_over(job_uuid, job_id, force, grace)
            except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
                continue  # changed meanwhile: looked at again next time
        return recovered

    def _take_over(self, job_uuid, job_id, force, grace):
        cr = self.env.cr
        cr.execute(
            """SELECT id FROM api_sync_log WHERE id = ANY(%s) AND state = 'pending'
                  AND job_uuid IS NOT DISTINCT FROM %s ORDER BY id FOR UPDATE SKIP LOCKED""",
            (self.ids, job_uuid),
            log_exceptions=False,
        )
        logs = self.browse([row[0] for row in cr.fetchall()])
        job = self.env["queue.job"].sudo().browse(job_id)
        if not logs or (job_id and not queue_jobs.job_is_lost(self.env, job_id, grace)):
            return self.browse()
        logs.invalidate_recordset()
        if job and job.state == "failed" and not self._is_technical(job.exc_name):
            logs._fail(job.exc_name or "JobFailed", job.exc_message or job.exc_name)
            return self.browse()
        reason = logs._loss_reason(job)
        # a job still waiting for a worker may only be slow to start (a busy or recycled
        # worker's backlog): taking it over costs a job, never a recovery of the event's
        counted = not (job and job.state == "enqueued")
        if counted and not force and max(logs.mapped("recovery_count")) >= MAX_RECOVERIES:
            logs._fail(
                "JobLost",
                self.env._("%(reason)s, %(count)s times.", reason=reason, count=MAX_RECOVERIES),
            )
            return self.browse()
        logs._enqueue()
        if job and job.state not in ("done", "cancelled"):
            job._change_job_state(
                "cancelled",
                result=self.env._(
                    "api_sync: %(reason)s; its events were queued again in job %(job)s.",
                    reason=reason,
                    job=", ".join(sorted(set(logs.mapped("job_uuid")))),
                ),
            )
        now = fields.Datetime.now()
        for log in logs:
            line = self.env._(
                "%(when)s: %(reason)s; queued again as job %(job)s.",
                when=fields.Datetime.to_string(now),
                reason=reason,
                job=log.job_uuid,
            )
            log.write(
                {
                    "recovery_count": log.recovery_count + counted,
                    "recovery_note": "\n".join(filter(None, [log.recovery_note, line])),
                    "next_retry_at": False,
                }
            )
            _logger.info(
                "api_sync: event %s: %s; queued again as job %s (recovery %s)",
                log.idempotency_key,
                reason,
                log.job_uuid,
                log.recovery_count,
            )
        return logs

    def _loss_reason(self, job):
        if not job:
            return self.env._("its job %(job)s is gone", job=self[:1].job_uuid)
        if job.state == "failed":
            return self.env._(
                "its job %(job)s failed (%(error)s)", job=job.uuid, error=job.exc_name
            )
        if job.state in ("started", "enqueued"):
            return self.env._(
                "the worker running its job %(job)s is gone (job %(state)s since %(since)s)",
                job=job.uuid,
                state=job.state,
                since=fields.Datetime.to_string(job.date_started or job.date_enqueued),
            )
        return self.env._(
            "its job %(job)s is %(state)s but did not deliver it", job=job.uuid, state=job.state
        )

    @api.model
    def _is_technical(self, exc_name):
        """A failure of the database connection or the worker, not of the delivery itself."""
        module, _dot, name = (exc_name or "").rpartition(".")
        error = getattr(sys.modules.get(module), name, None)
        return isinstance(error, type) and issubclass(error, TECHNICAL_ERRORS)

    def _fail(self, error_class, message):
        for log in self:
            log.write(
                {
                    "state": "failed",
                    "error_class": error_class,
                    "error_message": message,
                    "next_retry_at": False,
                }
            )
            log._surface_failure()

    # -- buttons ------------------------------------------------------------------------------

    def _retry_now(self):
        """Also queues again pending events whose job was lost (stuck)."""
        pending = self.filtered(lambda log: log.state == "pending")
        recovered = pending.sudo()._recover_lost(force=True) if pending else pending
        return super(ApiSyncLog, self - pending)._retry_now() | self.browse(recovered.ids)
