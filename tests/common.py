"""Shared fixtures of the api_sync Odoo tests."""

from contextlib import contextmanager

from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase


class ApiSyncCase(TransactionCase):
    """Creates a contacts configuration (no mapping lines) and a few partners."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # deliveries (endpoint state) and runs (selection) use cursors of their own
        # (registry.cursor()): in tests, those share the test's transaction
        cls.registry.enter_test_mode(cls.cr)
        cls.addClassCleanup(cls.registry.leave_test_mode)
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
