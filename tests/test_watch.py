"""The watch (models/watch.py): while api_sync's jobs run, a job every few seconds takes over the
jobs whose worker is gone, so that the job runner gives their places to live jobs."""

import datetime

from odoo import SUPERUSER_ID, fields
from odoo.tests import tagged

from .. import uninstall_hook
from ..models.queue_jobs import JOB_LOCK_CLASS, WATCH_INDEX
from ..models.watch import WATCH_SECONDS, Watch
from .delivery_common import DeliveryCase, perform

TEN_SECONDS_AGO = datetime.timedelta(seconds=10)


@tagged("post_install", "-at_install")
class TestWatch(DeliveryCase):
    def setUp(self):
        super().setUp()
        Watch.next_look = 0.0  # this process has not looked yet
        self.addCleanup(setattr, Watch, "next_look", 0.0)
        # watches stored by the jobs of tests that commit (their own cursors), before this one
        self.env["queue.job"].search([("method_name", "=", "_watch")]).unlink()

    def watches(self, states=("pending",)):
        self.env.flush_all()
        self.env.invalidate_all()
        return self.env["queue.job"].search(
            [("method_name", "=", "_watch"), ("state", "in", list(states))], order="id"
        )

    def queue_event(self, name="Walter Watch"):
        partner = self.env["res.partner"].create({"name": name})
        log = self.Config.sync_record(partner, "update", ["name"])
        return log, self.env["queue.job"].search([("uuid", "=", log.job_uuid)])

    def kill_worker(self, job, ago=TEN_SECONDS_AGO):
        """As a worker killed with its node while running ``job`` (started ``ago``)."""
        when = fields.Datetime.now() - ago
        job.write({"state": "started", "date_enqueued": when, "date_started": when})
        self.env.flush_all()

    def keep(self):
        """``Watch.keep`` in a process that has not looked yet (its own transaction sees what
        this one wrote: see ApiSyncCase)."""
        self.env.flush_all()
        Watch.next_look = 0.0
        Watch.keep(self.env)

    def run_watch(self):
        """Perform the watch that is due, as the job runner would."""
        (watch,) = self.watches()
        perform(self.env, watch)
        return watch

    def test_a_delivery_starts_the_watch_and_one_watch_is_due_at_a_time(self):
        self.assertFalse(self.watches())
        self.queue_event()
        self.run_jobs()
        (watch,) = self.watches()
        self.assertEqual((watch.channel, watch.priority), ("root", 1), "outside root.api_sync")
        self.assertEqual(watch.user_id.id, SUPERUSER_ID, "the system's job")
        self.assertAlmostEqual(
            watch.eta,
            fields.Datetime.now() + datetime.timedelta(seconds=WATCH_SECONDS),
            delta=datetime.timedelta(seconds=2),
        )
        Watch.next_look = 0.0
        self.queue_event("Wanda Watch")
        self.run_jobs()
        self.assertEqual(self.watches(), watch, "one is due already")

    def test_a_job_whose_worker_is_gone_is_taken_over_within_seconds(self):
        log, job = self.queue_event()
        event_id, dead_uuid = log.idempotency_key, log.job_uuid
        fresh, fresh_job = self.queue_event("Wilma Fresh")
        self.kill_worker(job)
        self.kill_worker(fresh_job, ago=datetime.timedelta(seconds=1))
        self.keep()
        self.run_watch()
        self.assertEqual(job.state, "cancelled", "its place in the channel is given back")
        self.assertNotEqual(log.job_uuid, dead_uuid)
        self.assertEqual(
            (log.state, log.idempotency_key, log.recovery_count), ("pending", event_id, 1)
        )
        self.assertEqual(
            (fresh_job.state, fresh.job_uuid),
            ("started", fresh_job.uuid),
            "its worker may be on its way",
        )
        self.assertEqual(len(self.watches()), 1, "work in flight: the next watch is due")
        self.run_jobs()
        self.assertEqual(log.state, "done")
        self.assertEqual([r.json["id"] for r in self.receiver.received], [event_id])

    def test_a_job_whose_worker_holds_its_lock_is_left_alone(self):
        log, job = self.queue_event()
        self.kill_worker(job)
        with self.registry.cursor() as worker:  # the worker's transaction holds the job's lock
            worker.execute("SELECT pg_advisory_xact_lock(%s, %s)", (JOB_LOCK_CLASS, job.id))
            self.assertEqual(Watch(self.env).take_over_dead_jobs(), 0)
            self.assertEqual((job.state, log.job_uuid), ("started", job.uuid))

    def test_the_watch_stops_when_nothing_is_in_flight_and_leaves_no_rows(self):
        log, _job = self.queue_event()
        self.run_jobs()
        self.assertEqual(log.state, "done")
        for _cycle in range(3):
            self.run_watch()
            self.keep()  # a job starting later starts the watch again
        self.assertEqual(len(self.watches(("pending", "done", "cancelled"))), 2, "flat")
        self.run_watch()
        self.assertFalse(self.watches(), "nothing in flight: no next watch")
        self.keep()
        self.run_watch()
        self.assertEqual(len(self.watches(("done",))), 1, "the ended ones are deleted")

    def test_waiting_work_keeps_the_watch_only_when_it_is_due_soon(self):
        _log, job = self.queue_event()
        self.keep()
        job.eta = fields.Datetime.now() + datetime.timedelta(hours=1)  # a retry's backoff
        self.run_watch()
        self.assertFalse(self.watches(), "its job starts the watch again when it runs")
        job.eta = False
        self.keep()
        self.run_watch()
        self.assertEqual(len(self.watches()), 1, "ready to run: watched")

    def test_a_dead_watch_and_a_dead_progress_job_are_given_back(self):
        self.keep()
        (dead_watch,) = self.watches()
        self.kill_worker(dead_watch)
        run = self.config.sudo()._start_run("full_resync")
        run._queue_advance()
        progress = self.env["queue.job"].search(
            [("model_name", "=", "api.sync.run"), ("method_name", "=", "_advance")],
            order="id desc",
            limit=1,
        )
        self.kill_worker(progress)
        self.keep()
        self.assertEqual(len(self.watches()), 1, "a dead watch is not due: a new one is")
        self.assertGreaterEqual(Watch(self.env).take_over_dead_jobs(), 2)
        self.env.invalidate_all()  # newer queue_job releases store job states in SQL
        self.assertEqual(dead_watch.state, "cancelled")
        self.assertEqual(progress.state, "pending", "queued again (it is idempotent)")

    def test_api_sync_jobs_the_watch_index_and_settings_go_at_uninstallation(self):
        self.queue_event()
        self.keep()
        Parameters = self.env["ir.config_parameter"].sudo()
        Parameters.set_param("api_sync.metrics_token", "a-secret-token")
        Parameters.set_param("api_sync_other.kept", "not ours")
        self.env.flush_all()
        index = "SELECT count(*) FROM pg_indexes WHERE indexname = %s"
        self.env.cr.execute(index, (WATCH_INDEX,))
        self.assertEqual(self.env.cr.fetchone()[0], 1, "made at installation")
        uninstall_hook(self.env)
        self.env.cr.execute(index, (WATCH_INDEX,))
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        self.env.invalidate_all()
        self.assertFalse(
            self.env["queue.job"].search([("model_name", "in", ["api.sync.log", "api.sync.run"])])
        )
        self.assertFalse(Parameters.get_param("api_sync.metrics_token"))
        self.assertEqual(Parameters.get_param("api_sync_other.kept"), "not ours")
