import datetime

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..engine.receiver import Reply
from ..models.api_sync_log_recovery import MAX_RECOVERIES
from ..models.queue_jobs import JOB_LOCK_CLASS
from .delivery_common import DeliveryCase

LOG_MODULE = "odoo.addons.api_sync.models.api_sync_log"
AN_HOUR_AGO = datetime.timedelta(hours=1)


@tagged("post_install", "-at_install")
class TestRecovery(DeliveryCase):
    def queue_event(self, name="Rita Recover"):
        partner = self.env["res.partner"].create({"name": name, "email": "r@x.io"})
        log = self.Config.sync_record(partner, "update", ["name"])
        return log, self.job_of(log)

    def job_of(self, log):
        return self.env["queue.job"].search([("uuid", "=", log.job_uuid)])

    def kill_worker(self, job):
        """As a worker killed (kill -9, server crash) while running the job: the job row stays
        ``started`` with the pid of a process that is gone, and nobody holds its lock."""
        job.write(
            {
                "state": "started",
                "date_enqueued": fields.Datetime.now() - AN_HOUR_AGO,
                "date_started": fields.Datetime.now() - AN_HOUR_AGO,
                "worker_pid": 2**22 + 1,  # above Linux's pid_max: no such process
            }
        )

    def recover(self):
        self.env.flush_all()
        self.env["api.sync.log"]._cron_recover_lost()
        self.env.invalidate_all()

    def assert_delivered_once(self, log, event_id):
        self.assertEqual((log.state, log.idempotency_key), ("done", event_id))
        self.assertEqual([r.headers["Idempotency-Key"] for r in self.receiver.received], [event_id])

    def test_a_job_killed_while_started_is_queued_again_and_delivered(self):
        log, job = self.queue_event()
        event_id, old_uuid = log.idempotency_key, log.job_uuid
        self.kill_worker(job)
        self.run_jobs()
        self.assertEqual(log.state, "pending", "nothing runs it: its worker is gone")
        self.recover()
        self.assertNotEqual(log.job_uuid, old_uuid, "a new job")
        self.assertEqual((log.recovery_count, log.idempotency_key), (1, event_id))
        self.assertIn(old_uuid, log.recovery_note)
        self.assertEqual(job.state, "cancelled", "its channel slot is given back")
        self.assertIn(log.job_uuid, job.result)
        self.run_jobs()
        self.assert_delivered_once(log, event_id)
        self.recover()
        self.assertEqual(log.recovery_count, 1)

    def test_a_job_whose_worker_is_alive_is_left_alone(self):
        log, job = self.queue_event()
        self.kill_worker(job)
        self.env.flush_all()
        with self.registry.cursor() as worker:  # the worker's transaction holds the job's lock
            worker.execute("SELECT pg_advisory_xact_lock(%s, %s)", (JOB_LOCK_CLASS, job.id))
            self.recover()
            self.assertEqual(
                (job.state, log.job_uuid, log.recovery_count), ("started", job.uuid, 0)
            )
            self.assertFalse(log.delivery_lost)
            with self.assertRaisesRegex(UserError, "stuck"):
                log.action_retry()
            worker.rollback()
        log.invalidate_recordset(["delivery_lost"])
        self.assertTrue(log.delivery_lost)
        self.recover()
        self.assertEqual(log.recovery_count, 1)

    def test_a_job_that_failed_for_a_technical_reason_is_queued_again(self):
        log, job = self.queue_event()
        job.write(
            {
                "state": "failed",
                "exc_name": "psycopg2.errors.AdminShutdown",
                "exc_message": "terminating connection due to administrator command",
            }
        )
        self.recover()
        self.assertEqual((log.state, log.recovery_count, job.state), ("pending", 1, "cancelled"))
        self.assertIn("AdminShutdown", log.recovery_note)
        self.run_jobs()
        self.assert_delivered_once(log, log.idempotency_key)

    @mute_logger(LOG_MODULE)
    def test_a_job_that_failed_otherwise_fails_its_event_visibly(self):
        log, job = self.queue_event()
        partner = self.env["res.partner"].browse(log.res_id)
        job.write({"state": "failed", "exc_name": "builtins.KeyError", "exc_message": "'x'"})
        self.recover()
        self.assertEqual(
            (log.state, log.error_class, log.recovery_count), ("failed", "builtins.KeyError", 0)
        )
        self.assertIn("Not synced", partner.message_ids[:1].body)
        log.action_retry()
        self.run_jobs()
        self.assertEqual(log.state, "done")

    def test_retry_of_a_stuck_pending_event(self):
        log, job = self.queue_event()
        event_id = log.idempotency_key
        with self.assertRaisesRegex(UserError, "stuck"):
            log.action_retry()  # its job is queued: it will run
        job.unlink()  # lost (deleted by hand, crash)
        self.env.invalidate_all()
        self.assertTrue(log.delivery_lost)
        log.action_retry()
        self.assertEqual(log.recovery_count, 1)
        self.run_jobs()
        self.assert_delivered_once(log, event_id)

    def test_the_replaced_job_delivers_nothing_if_it_runs_again(self):
        log, job = self.queue_event()
        self.kill_worker(job)
        self.recover()
        job.requeue()  # an operator requeues the old job in queue_job's views
        self.assertEqual(len(self.jobs()), 2)
        self.run_jobs()
        self.assert_delivered_once(log, log.idempotency_key)

    def test_a_newer_event_waits_for_an_older_lost_one(self):
        older, job = self.queue_event()
        self.kill_worker(job)
        self.env["res.partner"].browse(older.res_id).name = "Rita Newer"
        newer = self.Config.sync_record(older.env["res.partner"].browse(older.res_id), "create")
        self.run_jobs()
        self.assertEqual((older.state, newer.state, older.recovery_count), ("done", "done", 1))
        self.assertEqual(
            [r.json["id"] for r in self.receiver.received],
            [older.idempotency_key, newer.idempotency_key],
        )

    @mute_logger(LOG_MODULE)
    def test_a_delivery_whose_job_keeps_dying_fails(self):
        log, job = self.queue_event()
        log.recovery_count = MAX_RECOVERIES
        self.kill_worker(job)
        self.recover()
        self.assertEqual((log.state, log.error_class), ("failed", "JobLost"))
        self.assertFalse(self.jobs())

    def test_a_delivery_over_wakes_the_next_event_of_its_record(self):
        self.receiver.script(Reply(500))
        first, _job = self.queue_event()
        self.run_jobs(once=True)  # its retry waits
        partner = self.env["res.partner"].browse(first.res_id)
        partner.name = "Rita Next"
        second = self.Config.sync_record(partner, "update", ["name"])
        second._deliver()  # waits for the first one
        waiting = self.jobs().filtered(lambda job: job.uuid == second.job_uuid)
        self.assertTrue(waiting.eta)
        first.action_cancel()
        self.assertFalse(waiting.eta, "woken: it runs now")

    def test_at_server_start_jobs_left_by_the_previous_server_are_lost_at_once(self):
        log, job = self.queue_event()
        job.write({"state": "started", "date_started": fields.Datetime.now()})
        self.assertFalse(log._lost_jobs(), "just started: its worker may be on its way")
        at_start = fields.Datetime.now() + AN_HOUR_AGO
        self.assertEqual(list(log._lost_jobs(lost_before=at_start)), log.ids)
        log._recover_lost(lost_before=at_start)
        self.assertEqual((log.recovery_count, job.state), (1, "cancelled"))
