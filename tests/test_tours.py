"""Issue 11: the journeys of the people who watch syncs, in a real browser (headless Chromium).

Odoo skips these when no Chromium is installed; tools/test then says so loudly, and .ci/run
installs it.
"""

from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from .delivery_common import DeliveryCase

LOG_MODULE = "odoo.addons.api_sync.models.api_sync_log"
# seconds a whole tour may take (Odoo: 60), its steps 30 s each (static/tests/tours): a machine
# loaded by other tests or servers beside exceeds the defaults now and then
TOUR_TIMEOUT = 180


@tagged("post_install", "-at_install")
class TestTours(HttpCase, DeliveryCase):
    registry_test_mode = False  # ApiSyncCase puts the registry in test mode already

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.config.name = "Tour Receiver"
        cls.down = cls.config.copy(
            {
                "name": "Tour Down",
                "endpoint_url": "http://127.0.0.1:9/down",
                "max_attempts": 1,
            }
        )
        cls.partners = cls.env["res.partner"].create(
            [
                {"name": "Tour Paula", "email": "p@x.io"},
                {"name": "Tour Fred", "email": "f@x.io"},
                {"name": "Tour Dora", "email": "d@x.io"},
                {"name": "Tour Rita", "email": "r@x.io"},
            ]
        )

    @mute_logger(LOG_MODULE)
    def prepare(self):
        self.config._generate_automation_rules(True, True, True)
        paula, fred, dora, rita = self.partners
        self.config.sync_record(paula | rita, "update")
        down = self.down.sync_record(fred, "update")
        self.run_jobs(once=True)
        self.age_events(down)  # an unreachable endpoint fails the event after Give Up After
        self.run_jobs()
        self.config.sync_record(dora, "update")
        self.config.sync_record(dora, "delete")
        dora.unlink()

    def test_dashboard(self):
        self.prepare()
        self.start_tour("/odoo", "api_sync_dashboard", login="admin", timeout=TOUR_TIMEOUT)

    def test_configure_from_scratch(self):
        self.start_tour(
            "/odoo/action-api_sync.action_api_sync_config",
            "api_sync_configure",
            login="admin",
            timeout=TOUR_TIMEOUT,
        )
        config = self.env["api.sync.config"].search([("name", "=", "Tour From Scratch")])
        self.assertEqual(len(config.automation_ids), 2)

    def test_lines_are_mapped_in_dialogs(self):
        self.start_tour(
            f"/odoo/action-api_sync.action_api_sync_config/{self.config.id}",
            "api_sync_mapping_lines",
            login="admin",
            timeout=TOUR_TIMEOUT,
        )
        accounts = self.config.mapping_ids.filtered(lambda line: line.transform == "lines")
        self.assertEqual(accounts.source_path, "bank_ids")
        self.assertEqual(
            [(line.source_path, line.target_key) for line in accounts.child_line_ids],
            [("acc_number", "number")],
        )

    def test_edit_and_delete_a_contact_then_its_logs(self):
        self.prepare()
        rita = self.partners[3]
        self.start_tour(
            f"/odoo/res.partner/{rita.id}",
            "api_sync_record_logs",
            login="admin",
            timeout=TOUR_TIMEOUT,
        )
        self.assertFalse(rita.exists())
        logs = self.env["api.sync.log"].search([("res_id", "=", rita.id)])
        self.assertIn("delete", logs.mapped("operation"))

    def test_deleted_record_logs_open(self):
        self.prepare()
        self.start_tour(
            "/odoo/action-api_sync.action_api_sync_log",
            "api_sync_deleted_record_logs",
            login="admin",
            timeout=TOUR_TIMEOUT,
        )

    def test_failed_banner_and_bulk_retry(self):
        self.prepare()
        self.start_tour(
            "/odoo/action-api_sync.action_api_sync_log",
            "api_sync_failed_and_bulk_retry",
            login="admin",
            timeout=TOUR_TIMEOUT,
        )
        fred = self.env["api.sync.log"].search([("res_id", "=", self.partners[1].id)])
        self.assertEqual(fred.state, "pending", "retried")
