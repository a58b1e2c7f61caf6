"""Fixtures for delivery tests: a real HTTP receiver on 127.0.0.1 and a job runner stand-in."""

from urllib.parse import urlsplit

from odoo.tests import tagged
from odoo.tests.common import _super_send

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job

from ..engine.receiver import Receiver
from .common import ApiSyncCase

SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLWFwaS1zeW5jLXRlc3Rz"


def perform(env, records):
    """Perform the queue_job jobs ``records`` as the job runner would, without waiting for
    their eta."""
    for record in records:
        job = Job.load(env, record.uuid)
        try:
            job.perform()
        except RetryableJobError as exc:
            job.postpone(result=str(exc), seconds=exc.seconds)
            job.set_pending(reset_retry=False)
        else:
            job.set_done()
        job.store()


class LoopbackRequests:
    """Mixin of test cases: requests to the local receiver go out (Odoo's test harness blocks
    outgoing requests)."""

    @classmethod
    def _request_handler(cls, session, request, /, **kwargs):
        """Requests to the local receiver keep their configured timeout (Odoo 18.0 of 2025 and
        later raises any timeout under 10 s to 10 s in tests, which the timeout tests need)."""
        if urlsplit(request.url).hostname == "127.0.0.1":
            return _super_send(session, request, **kwargs)
        return super()._request_handler(session, request, **kwargs)


@tagged("post_install", "-at_install")
class DeliveryCase(LoopbackRequests, ApiSyncCase):
    """A contacts configuration pointing at a receiver started for each test class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.receiver = Receiver(secret=SECRET)
        cls.receiver.__enter__()
        cls.addClassCleanup(cls.receiver.close)
        cls.config.write(
            {
                "endpoint_url": f"{cls.receiver.url}/hooks/contacts",
                "auth_type": "bearer",
                "auth_token": "tok-SECRET-bearer",
                "signing_secret": SECRET,
                "timeout": 2,
                "max_attempts": 3,
                "backoff_base": 10,
                "backoff_max": 600,
            }
        )
        for sequence, (path, key) in enumerate([("name", "name"), ("email", "email")]):
            cls.add_line(path, key, sequence=sequence)

    def setUp(self):
        super().setUp()
        self.receiver.received.clear()
        self.receiver.replies.clear()

    def jobs(self):
        self.env.cr.flush()  # as at commit (automation rules queue their events then)
        return self.env["queue.job"].search(
            [("channel", "=", "root.api_sync"), ("state", "=", "pending")], order="id"
        )

    def age_events(self, logs, hours=25):
        """Move the events' creation ``hours`` back: a retryable error then fails them (Give Up
        After, 24 h by default), as an unreachable endpoint spends no attempts."""
        self.env.cr.execute(
            "UPDATE api_sync_log SET create_date = create_date - make_interval(hours => %s) "
            "WHERE id IN %s",
            (hours, tuple(logs.ids)),
        )
        logs.invalidate_recordset()

    def run_jobs(self, once=False):
        """Perform queued api_sync jobs as the job runner would, without waiting for their eta.

        ``once``: only the jobs queued now (a retry they queue stays queued); otherwise until
        none is left.
        """
        for _round in range(1 if once else 10):
            records = self.jobs()
            if not records:
                return
            perform(self.env, records)
        if not once:
            self.fail("api_sync jobs are still queued after 10 rounds")


class RunCase(DeliveryCase):
    """For runs: no settle time (their own selection cursor sees the test transaction: see
    ApiSyncCase)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].set_param("api_sync.batch_settle_seconds", "0")


class TriggerModeSetup:
    """Mixin of cases run once per trigger mode (``mode``) on DeliveryCase's configuration:
    ``rules`` (its generated automation rules) or ``listener`` (its built-in listener)."""

    mode = None
    allow_inherited_tests_method = True  # Odoo's loader: run the cases of the mixins too

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Log = cls.env["api.sync.log"]
        cls.map_before_mode()
        if cls.mode == "rules":
            cls.config._generate_automation_rules(True, True, True)
        else:
            cls.config.trigger_mode = "listener"

    @classmethod
    def map_before_mode(cls):
        """Mapping lines the cases add before the rules are generated (or the listener set)."""
