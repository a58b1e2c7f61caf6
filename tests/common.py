"""Shared fixtures of the api_sync Odoo tests."""

from contextlib import ExitStack, contextmanager

from odoo import SUPERUSER_ID, api
from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase

from ..models import compat


class ApiSyncCase(TransactionCase):
    """Creates a contacts configuration (no mapping lines) and a few partners."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # deliveries (endpoint state) and runs (selection) use cursors of their own
        # (registry.cursor()): in tests, those share the test's transaction
        compat.registry_test_mode(cls)
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        cls.Config = cls.env["api.sync.config"]
        cls.Config.search([]).active = False  # the demo configuration must not interfere
        cls.partner_model = cls.env["ir.model"]._get("res.partner")
        cls.config = cls.Config.create(
            {
                "name": "Contacts",
                "model_id": cls.partner_model.id,
                "endpoint_url": "http://127.0.0.1:9/hook",
                "company_id": False,
            }
        )
        cls.country = cls.env["res.country"].create({"name": "Sync Land", "code": "QZ"})
        cls.company = cls.env["res.partner"].create(
            {"name": "Azure Sync", "is_company": True, "country_id": cls.country.id}
        )

    @classmethod
    def add_line(cls, source_path, target_key, transform="raw", **values):
        return cls.env["api.sync.field.mapping"].create(
            {
                "config_id": cls.config.id,
                "source_path": source_path,
                "target_key": target_key,
                "transform": transform,
                **values,
            }
        )

    @contextmanager
    def assertRefused(self, regex):
        """A ValidationError matching ``regex``; the refused values leave the cache too."""
        with self.assertRaises(ValidationError) as caught:
            yield
        self.assertRegex(str(caught.exception), regex)
        self.env.invalidate_all()


class CommittedEventsCase(TransactionCase):
    """Events of contact tags committed in ``setUp`` (removed afterwards), seen by transactions
    of their own: one plays a running delivery or a writer, another the one that meets it."""

    tag_count = 1

    def endpoint_url(self):
        return "http://127.0.0.1:9/hook"

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            config = env["api.sync.config"].create(
                {
                    "name": "Committed events",
                    "model_id": env["ir.model"]._get_id("res.partner.category"),
                    "endpoint_url": self.endpoint_url(),
                    "company_id": False,
                }
            )
            tags = env["res.partner.category"].create(
                [{"name": f"Conflicting {index}"} for index in range(self.tag_count)]
            )
            logs = config.sync_record(tags, "update", ["name"])
            cr.commit()  # pylint: disable=invalid-commit
            self.config_id, self.tag_ids, self.log_ids = config.id, tags.ids, logs.ids
            self.job_uuids = set(logs.mapped("job_uuid"))
        self.addCleanup(self.remove_committed)
        self.stack = ExitStack()
        self.addCleanup(self.stack.close)

    def remove_committed(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["queue.job"].search([("uuid", "in", list(self.job_uuids))]).unlink()
            env["api.sync.config"].browse(self.config_id).unlink()
            env["res.partner.category"].browse(self.tag_ids).unlink()

    def transaction(self):
        cr = self.stack.enter_context(self.registry.cursor())
        self.stack.callback(cr.rollback)
        return api.Environment(cr, SUPERUSER_ID, {})
