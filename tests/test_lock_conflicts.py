from odoo.tests import tagged

from odoo.addons.queue_job.exception import RetryableJobError

from ..models.outbox import Outbox
from .common import CommittedEventsCase


@tagged("post_install", "-at_install")
class TestLockConflicts(CommittedEventsCase):
    """Conflicts between concurrent transactions that the code expects and handles log no ERROR.

    Two transactions of their own see the same committed event (removed afterwards).
    """

    def setUp(self):
        super().setUp()
        (self.log_id,), (tag_id,) = self.log_ids, self.tag_ids
        self.tag = self.env["res.partner.category"].browse(tag_id)

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

    def writer_after_a_delivery(self):
        """A writer's environment, the configuration and the tag in it: a delivery updated the
        tag's event after the writer's transaction began."""
        writer = self.transaction()
        writer.cr.execute("SELECT 1")
        delivery = self.transaction()
        delivery["api.sync.log"].browse(self.log_id).changed_fields = "color"
        delivery.cr.commit()
        config = writer["api.sync.config"].browse(self.config_id)
        return writer, config, writer["res.partner.category"].browse(self.tag.id)

    def test_a_writer_meeting_a_delivery_committed_since_it_began(self):
        writer, config, tag = self.writer_after_a_delivery()
        with self.assertNoLogs("odoo.sql_db", "ERROR"):
            self.assertFalse(Outbox(writer)._merge_into_pending(config, tag, ["name"]))

    def test_a_deletion_meeting_a_delivery_committed_since_it_began(self):
        """The deletion names the record's earlier events; one a delivery updated since the
        writer's transaction began is left unnamed (a delivery names what it sends), and the
        deletion goes on without an ERROR."""
        writer, config, tag = self.writer_after_a_delivery()
        with self.assertNoLogs("odoo.sql_db", "ERROR"):
            deletion = Outbox(writer).queue(config, tag, "delete", None)
        self.assertEqual(deletion.operation, "delete")
        self.assertEqual(deletion.record_name, "Conflicting 0")
        self.assertFalse(writer["api.sync.log"].browse(self.log_id).record_name)
