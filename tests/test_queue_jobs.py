"""api_sync's statements on queue_job's tables (models/queue_jobs.py), on the queue_job release
of the combination the suite runs on (CI runs it on each supported one)."""

import datetime
import uuid

from odoo import fields, sql_db
from odoo.tests import tagged

from odoo.addons.queue_job.job import Job

from ..models import queue_jobs
from ..models.outbox import Outbox
from .common import ApiSyncCase

AN_HOUR = datetime.timedelta(hours=1)


@tagged("post_install", "-at_install")
class TestQueueJobs(ApiSyncCase):
    def event(self, name="Queued"):
        partner = self.env["res.partner"].create({"name": name})
        log = Outbox(self.env).queue(self.config, partner, "update", ["name"], merge=False)
        self.env.flush_all()
        return log

    def job(self, log):
        return self.env["queue.job"].search([("uuid", "=", log.job_uuid)])

    def set_job(self, log, **values):
        self.job(log).write(values)
        self.env.flush_all()

    def test_a_stored_job_is_the_one_queue_job_loads(self):
        log = self.event()
        job_uuid = str(uuid.uuid4())
        log.job_uuid = job_uuid
        queue_jobs.store(log, job_uuid, "API sync: stored", eta=60)
        job = Job.load(self.env, job_uuid)
        self.assertEqual((job.recordset, job.method_name), (log, "_deliver"))
        self.assertEqual((job.channel, job.max_retries), ("root.api_sync", 0))
        self.assertEqual(job.description, "API sync: stored")
        self.assertTrue(job.eta, "the eta is kept")

    def test_the_job_description_names_the_record_or_the_count(self):
        self.assertEqual(
            queue_jobs.delivery_description(1, "res.partner", 7, "update", self.config),
            "API sync: res.partner #7 update (Contacts)",
        )
        self.assertEqual(
            queue_jobs.delivery_description(3, "res.partner", 7, "update", self.config),
            "API sync: 3 events (Contacts)",
        )

    def test_an_answering_endpoint_wakes_its_waiting_jobs_only(self):
        waiting, other = self.event("Waiting"), self.event("Other config")
        other_config = self.config.copy({"name": "Other"})
        other.config_id = other_config
        later = fields.Datetime.now() + AN_HOUR
        for log in waiting | other:
            self.set_job(log, eta=later)
        queue_jobs.wake_endpoint_jobs(self.env.cr, self.config.id, fields.Datetime.now())
        self.env.invalidate_all()
        self.assertFalse(self.job(waiting).eta, "woken")
        self.assertEqual(self.job(other).eta, later, "another endpoint's job waits on")

    def test_an_event_over_wakes_the_next_of_its_record_unless_it_backs_off(self):
        partner = self.env["res.partner"].create({"name": "Ordered"})
        first = Outbox(self.env).queue(self.config, partner, "update", ["name"], merge=False)
        second = Outbox(self.env).queue(self.config, partner, "update", ["email"], merge=False)
        self.env.flush_all()
        later = fields.Datetime.now() + AN_HOUR
        self.set_job(second, eta=later)
        second.next_retry_at = later  # a backoff of its own: left to it
        self.env.flush_all()
        queue_jobs.wake_next_events(self.env, first.ids)
        self.assertEqual(self.job(second).eta, later)
        second.next_retry_at = False
        self.env.flush_all()
        queue_jobs.wake_next_events(self.env, first.ids)
        self.assertFalse(self.job(second).eta, "woken: the event before it is over")

    def test_lost_jobs_are_those_gone_final_or_held_by_no_worker(self):
        gone, done, started, fresh = (self.event(name) for name in "ABCD")
        self.job(gone).unlink()
        self.set_job(done, state="done")
        an_hour_ago = fields.Datetime.now() - AN_HOUR
        self.set_job(started, state="started", date_enqueued=an_hour_ago, date_started=an_hour_ago)
        grace_time = fields.Datetime.now() - datetime.timedelta(seconds=30)
        grace = queue_jobs.Grace(enqueued=grace_time, started=grace_time)
        ids = (gone | done | started | fresh).ids
        lost = queue_jobs.lost_jobs(self.env, ids, grace)
        self.assertEqual(sorted(lost), sorted((gone | done | started).ids))
        self.assertEqual(lost[done.id][2], "done")
        self.assertIsNone(lost[gone.id][1], "no job row")
        self.assertTrue(queue_jobs.job_is_lost(self.env, self.job(started).id, grace))
        self.assertFalse(queue_jobs.job_is_lost(self.env, self.job(fresh).id, grace))

    def test_a_job_claimed_elsewhere_is_not_claimed_again(self):
        log = self.event()
        self.assertTrue(queue_jobs.claim_running_job(self.env, False), "no job: nothing to claim")
        job_id = self.job(log).id
        # another connection (a recovery, a second worker) holds the job's lock
        other = sql_db.db_connect(self.env.cr.dbname).cursor()
        try:
            other.execute(
                "SELECT pg_try_advisory_xact_lock(%s, %s)", (queue_jobs.JOB_LOCK_CLASS, job_id)
            )
            self.assertTrue(other.fetchone()[0])
            self.assertFalse(queue_jobs.claim_running_job(self.env, log.job_uuid))
        finally:
            other.rollback()
            other.close()
        self.assertTrue(queue_jobs.claim_running_job(self.env, log.job_uuid), "free again")
