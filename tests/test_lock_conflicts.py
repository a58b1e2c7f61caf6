from contextlib import ExitStack

from odoo import SUPERUSER_ID, api
from odoo.tests import TransactionCase, tagged

from odoo.addons.queue_job.exception import RetryableJobError


@tagged("post_install", "-at_install")
class TestLockConflicts(TransactionCase):
    """Conflicts between concurrent transactions that the code expects and handles log no ERROR.

    Two transactions of their own see the same committed event (removed afterwards): one plays
    a running delivery or a writer, the other the delivery or the writer that meets it.
    """

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            config = env["api.sync.config"].create(
                {
                    "name": "Lock conflicts",
                    "model_id": env["ir.model"]._get_id("res.partner.category"),
                    "endpoint_url": "http://127.0.0.1:9/hook",
                    "company_id": False,
                }
            )
            self.tag = env["res.partner.category"].create({"name": "Conflicting"})
            log = config.sync_record(self.tag, "update", ["name"])
            cr.commit()  # pylint: disable=invalid-commit
            self.config_id, self.log_id, self.job_uuid = config.id, log.id, log.job_uuid
        self.addCleanup(self.remove_committed)
        self.stack = ExitStack()
        self.addCleanup(self.stack.close)

    def remove_committed(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["queue.job"].search([("uuid", "=", self.job_uuid)]).unlink()
            env["api.sync.config"].browse(self.config_id).unlink()
            env["res.partner.category"].browse(self.tag.id).unlink()

    def transaction(self):
        cr = self.stack.enter_context(self.registry.cursor())
        self.stack.callback(cr.rollback)
        return api.Environment(cr, SUPERUSER_ID, {})

    def assert_busy_without_error(self, env):
        log = env["api.sync.log"].browse(self.log_id)
        with self.assertNoLogs("odoo.sql_db", "ERROR"), self.assertRaises(RetryableJobError):
            log._deliver()

    def test_a_delivery_meeting_a_running_one(self):
        running = self.transaction()
        running.cr.execute("SELECT id FROM api_sync_log WHERE id = %s FOR UPDATE", (self.log_id,))
        self.assert_busy_without_error(self.transaction())

    def test_a_delivery_meeting_one_committed_since_it_began(self):
        late = self.transaction()
        late.cr.execute("SELECT 1")  # its snapshot is taken
        earlier = self.transaction()
        config = earlier["api.sync.config"].browse(self.config_id)
        earlier["api.sync.record.status"]._ensure(config, self.tag.ids)
        earlier.cr.commit()
        self.assert_busy_without_error(late)

    def test_a_writer_meeting_a_delivery_committed_since_it_began(self):
        writer = self.transaction()
        writer.cr.execute("SELECT 1")
        delivery = self.transaction()
        delivery["api.sync.log"].browse(self.log_id).changed_fields = "color"
        delivery.cr.commit()
        config = writer["api.sync.config"].browse(self.config_id)
        tag = writer["res.partner.category"].browse(self.tag.id)
        with self.assertNoLogs("odoo.sql_db", "ERROR"):
            self.assertFalse(config._merge_into_pending(tag, ["name"]))
