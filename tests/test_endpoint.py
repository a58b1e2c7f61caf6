import datetime
import threading
from itertools import pairwise

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from ..engine.receiver import Reply
from ..models import compat
from .common import ApiSyncCase
from .delivery_common import DeliveryCase

LOG_MODULE = "odoo.addons.api_sync.models.api_sync_log"


@tagged("post_install", "-at_install")
class TestEndpointHealth(DeliveryCase):
    """Circuit breaker, 410 and rate limits, against the real receiver."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.config.write(
            {"circuit_threshold": 3, "responsible_id": cls.env.ref("base.user_admin").id}
        )
        cls.user = new_test_user(cls.env, "ep_user", groups="api_sync.group_api_sync_user")

    def sync(self, count=1):
        partners = self.env["res.partner"].create(
            [{"name": f"Endpoint {i}", "email": f"e{i}@x.io"} for i in range(count)]
        )
        return self.Config.sync_record(partners, "update")

    def endpoint(self):
        self.env.invalidate_all()
        return self.env["api.sync.endpoint.state"].search([("config_id", "=", self.config.id)])

    def backdate(self, column, seconds):
        """Move one of the endpoint's times into the past, as if that time had passed."""
        self.env.cr.execute(
            f"UPDATE api_sync_endpoint_state SET {column} = {column} - make_interval(secs => %s) "
            "WHERE config_id = %s",
            (seconds, self.config.id),
        )
        self.env.invalidate_all()

    def spent(self, logs):
        """Attempts spent by each log (its budget is Max Attempts, extended when not spent)."""
        return [
            log.attempt_count
            - ((log.attempts_allowed or self.config.max_attempts) - self.config.max_attempts)
            for log in logs
        ]

    def endpoint_activities(self):
        return self.config.activity_ids.filtered(
            lambda activity: "endpoint" in (activity.summary or "")
        )

    def test_outage_pauses_and_resumes_without_failing_events_or_spending_attempts(self):
        self.receiver.script(*[Reply(503)] * 4)
        logs = self.sync(3)
        self.run_jobs(once=True)
        state = self.endpoint()
        self.assertEqual((state.state, state.failure_count), ("failing", 3), "3 in a row, < 60 s")
        self.assertEqual(self.config.endpoint_state, "failing")
        self.backdate("failing_since", 120)
        logs |= self.sync()
        self.run_jobs(once=True)  # the first retry fails and opens the circuit; the rest wait
        self.assertEqual(len(self.receiver.received), 4)
        state = self.endpoint()
        self.assertEqual(state.state, "paused")
        self.assertGreater(state.paused_until, fields.Datetime.now())
        self.assertEqual(set(logs.mapped("state")), {"pending"})
        self.assertEqual(self.spent(logs), [0, 0, 0, 0])
        for job in self.jobs():
            self.assertGreaterEqual(job.eta, state.paused_until)
        self.assertEqual(len(self.endpoint_activities()), 1, "the manager is told once")
        self.assertIn("Paused until", self.config.endpoint_status)
        self.run_jobs(once=True)
        self.assertEqual(len(self.receiver.received), 4, "nothing is sent while paused")
        self.assertEqual(self.spent(logs), [0, 0, 0, 0])
        self.backdate("paused_until", 3600)  # the probe time has come; the endpoint is back
        self.run_jobs()
        self.assertEqual(set(logs.mapped("state")), {"done"})
        self.assertEqual(len(self.receiver.received), 8)
        self.assertEqual(self.endpoint().state, "healthy")
        self.assertFalse(self.endpoint_activities(), "the activity is done once it resumes")
        self.assertFalse(logs.filtered(lambda log: log.state == "failed"))

    def test_the_events_waiting_for_a_paused_endpoint_share_their_jobs(self):
        until = fields.Datetime.add(fields.Datetime.now(), seconds=600)
        self.env["api.sync.endpoint.state"].sudo().create(
            {"config_id": self.config.id, "state": "paused", "paused_until": until}
        )
        logs = self.sync(5)
        self.assertEqual(len(self.jobs()), 1)
        self.run_jobs(once=True)
        self.assertFalse(self.receiver.received)
        (job,) = self.jobs()
        self.assertEqual(set(logs.mapped("job_uuid")), {job.uuid}, "one job, as before")
        self.assertGreaterEqual(job.eta, until)
        self.assertEqual((set(logs.mapped("state")), self.spent(logs)), ({"pending"}, [0] * 5))

    def test_a_paused_endpoint_keeps_the_jobs_of_its_waiting_events(self):
        """Probe cycles do not queue the waiting events again: their job waits (the same row),
        and goes when the endpoint answers again."""
        State = self.env["api.sync.endpoint.state"].sudo()
        State.create({"config_id": self.config.id, "state": "paused"})
        logs = self.sync(5)
        (job,) = self.jobs()
        for _cycle in range(3):
            self.pause_for(600)
            self.run_jobs(once=True)  # paused: they wait for the next probe
            self.backdate("paused_until", 3600)  # the probe time has come
            self.assertTrue(State._claim_probe(self.config))  # another worker probes
            self.run_jobs(once=True)  # they wait for that probe
        self.assertFalse(self.receiver.received)
        self.assertEqual(self.jobs(), job, "the same job waits")
        self.assertEqual(set(logs.mapped("job_uuid")), {job.uuid})
        all_jobs = self.env["queue.job"].search([("channel", "=", "root.api_sync")])
        self.assertEqual(all_jobs, job, "no job queued again")
        self.assertEqual((set(logs.mapped("state")), self.spent(logs)), ({"pending"}, [0] * 5))
        self.assertTrue(all(logs.mapped("next_retry_at")))
        State._resume(self.config)  # the endpoint answers again (as after a good probe)
        self.env.invalidate_all()
        self.assertFalse(job.eta, "woken")
        self.run_jobs()
        self.assertEqual(set(logs.mapped("state")), {"done"})

    def pause_for(self, seconds):
        """A failed probe: the endpoint is paused for ``seconds`` more."""
        self.env.cr.execute(
            "UPDATE api_sync_endpoint_state SET probe_until = NULL, paused_until = "
            "(now() AT TIME ZONE 'UTC') + make_interval(secs => %s) WHERE config_id = %s",
            (seconds, self.config.id),
        )
        self.env.invalidate_all()

    def test_one_probe_at_a_time_and_a_failed_probe_backs_off(self):
        past = fields.Datetime.subtract(fields.Datetime.now(), seconds=5)
        self.env["api.sync.endpoint.state"].sudo().create(
            {
                "config_id": self.config.id,
                "state": "paused",
                "paused_until": past,
                "failure_count": 9,
            }
        )
        State = self.env["api.sync.endpoint.state"]
        self.assertTrue(State._claim_probe(self.config))
        self.assertFalse(State._claim_probe(self.config), "a second worker does not probe")
        waiting = self.sync()
        waiting._deliver()  # another worker's probe is under way: look again after its timeout
        self.assertFalse(self.receiver.received)
        self.assertEqual((waiting.state, waiting.attempt_count), ("pending", 0))
        recheck = fields.Datetime.now() + datetime.timedelta(seconds=self.config.timeout + 7)
        self.assertLessEqual(waiting.next_retry_at, recheck)
        waiting.action_cancel()
        self.backdate("probe_until", 3600)  # that probe's worker died: its lease expired
        self.receiver.script(Reply(503))
        log = self.sync()
        before = fields.Datetime.now()
        self.run_jobs(once=True)
        self.assertEqual(len(self.receiver.received), 1)
        state = self.endpoint()
        self.assertEqual((state.state, state.probe_count), ("paused", 1))
        self.assertFalse(state.probe_until)
        self.assertGreaterEqual(state.paused_until, before + datetime.timedelta(seconds=19))
        self.assertEqual((log.state, self.spent(log)), ("pending", [0]))

    @mute_logger(LOG_MODULE)
    def test_410_disables_the_endpoint_until_a_manager_re_enables_it(self):
        self.receiver.script(Reply(410))
        first = self.sync()
        self.run_jobs(once=True)
        second = self.sync()
        self.run_jobs(once=True)
        self.assertEqual(len(self.receiver.received), 1, "nothing more is sent")
        self.assertEqual(self.endpoint().state, "disabled")
        self.assertEqual((first.state, second.state), ("pending", "pending"))
        self.assertEqual(second.attempt_count, 0)
        self.assertEqual(len(self.endpoint_activities()), 1)
        self.run_jobs(once=True)
        self.assertEqual(len(self.receiver.received), 1)
        with self.assertRaises(AccessError):
            self.config.with_user(self.user).action_endpoint_resume()
        self.config.action_endpoint_resume()
        self.assertEqual(self.endpoint().state, "healthy")
        self.assertFalse(self.endpoint_activities())
        self.run_jobs()
        self.assertEqual((first.state, second.state), ("done", "done"))
        self.assertEqual(len(self.receiver.received), 3)

    def test_429_slows_the_other_deliveries_of_the_endpoint(self):
        self.receiver.script(Reply(429, headers={"Retry-After": "120"}))
        first = self.sync()
        self.run_jobs(once=True)
        second = self.sync()
        before = fields.Datetime.now()
        self.run_jobs(once=True)
        self.assertEqual(len(self.receiver.received), 1, "no delivery goes before the Retry-After")
        not_before = before + datetime.timedelta(seconds=119)
        self.assertEqual((second.state, second.attempt_count), ("pending", 0))
        self.assertGreaterEqual(second.next_retry_at, not_before)
        self.assertEqual(first.attempt_count, 1)
        for job in self.jobs():
            self.assertGreaterEqual(job.eta, not_before)

    def test_rate_limit_is_held_by_two_workers(self):
        self.config.rate_limit = 20  # one request every 50 ms
        self.env.flush_all()
        slots, start = [], threading.Barrier(2)
        State = self.env["api.sync.endpoint.state"]

        def worker():
            start.wait()
            for _i in range(10):
                slots.append(State._reserve_slot(self.config, horizon=60))

        threads = [threading.Thread(target=worker) for _i in range(2)]
        with compat.test_cursors_for_threads():
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        self.assertEqual(len(slots), 20)
        self.assertNotIn(None, slots)
        gaps = [(b - a).total_seconds() for a, b in pairwise(sorted(slots))]
        self.assertGreaterEqual(min(gaps), 0.05 - 1e-6)

    def test_a_slot_too_far_postpones_the_delivery(self):
        self.config.rate_limit = 0.01  # one request every 100 s
        first, second = self.sync(2)
        before = fields.Datetime.now()
        self.run_jobs(once=True)
        self.assertEqual(len(self.receiver.received), 1)
        self.assertEqual((first.state, second.state), ("done", "pending"))
        self.assertEqual(second.attempt_count, 0)
        self.assertGreaterEqual(second.next_retry_at, before + datetime.timedelta(seconds=90))

    @mute_logger(LOG_MODULE)
    def test_an_event_gives_up_after_the_configured_hours(self):
        self.receiver.script(Reply(503), Reply(503))
        log = self.sync()
        self.run_jobs(once=True)
        self.age_events(log)
        self.run_jobs()
        self.assertEqual((log.state, log.attempt_count), ("failed", 2))

    def test_a_new_endpoint_url_starts_healthy(self):
        self.receiver.script(Reply(410))
        event = self.sync()
        self.run_jobs(once=True)
        self.assertEqual(self.endpoint().state, "disabled")
        self.config.endpoint_url = f"{self.receiver.url}/hooks/moved"
        self.assertEqual(self.endpoint().state, "healthy", "what the old URL answered is gone")
        self.run_jobs()
        self.assertEqual(event.state, "done")
        self.assertEqual(self.receiver.received[-1].path, "/hooks/moved")


@tagged("post_install", "-at_install")
class TestEndpointSettings(ApiSyncCase):
    def test_endpoint_settings_are_checked(self):
        with self.assertRefused("Rate Limit"):
            self.config.rate_limit = -1
            self.config.flush_recordset()
        with self.assertRefused("Pause After"):
            self.config.circuit_threshold = 0
            self.config.flush_recordset()
        with self.assertRefused("Give Up After"):
            self.config.give_up_hours = 0
            self.config.flush_recordset()
        self.config.write({"rate_limit": 2.5, "circuit_threshold": 1, "give_up_hours": 72})
        self.assertEqual(self.config.endpoint_state, "healthy")
