from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import ApiSyncCase

SECRETS = ("auth_password", "auth_token", "api_key", "signing_secret")


@tagged("post_install", "-at_install")
class TestSecurity(ApiSyncCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.config.write(
            {
                "auth_type": "bearer",
                "auth_token": "tok-secret",
                "auth_password": "pw-secret",
                "api_key": "key-secret",
                "signing_secret": "whsec_c2VjcmV0",
            }
        )
        cls.user = new_test_user(cls.env, "sync_user", groups="api_sync.group_api_sync_user")
        cls.manager = new_test_user(
            cls.env, "sync_manager", groups="api_sync.group_api_sync_manager"
        )
        cls.other = new_test_user(cls.env, "plain_user", groups="base.group_user")

    def test_user_reads_config_and_logs_but_not_secrets(self):
        config = self.config.with_user(self.user)
        self.assertEqual(config.name, "Contacts")
        self.assertEqual(config.read(["endpoint_url"])[0]["endpoint_url"], self.config.endpoint_url)
        for fname in SECRETS:
            with self.subTest(field=fname), self.assertRaises(AccessError):
                config.read([fname])
        self.assertFalse(set(SECRETS) & set(config.read()[0]), "default read hides secrets")
        self.assertFalse(set(SECRETS) & set(config.fields_get()))
        self.env["api.sync.log"].with_user(self.user).search([])

    def test_user_cannot_configure(self):
        with self.assertRaises(AccessError):
            self.config.with_user(self.user).write({"endpoint_url": "http://127.0.0.1:1/x"})
        with self.assertRaises(AccessError):
            self.env["api.sync.field.mapping"].with_user(self.user).create(
                {"config_id": self.config.id, "source_path": "name", "target_key": "n"}
            )

    def test_only_managers_start_syncs_or_test_endpoints(self):
        for user in (self.user, self.other):
            config = self.config.with_user(user)
            for action in (
                "action_run_now",
                "action_full_resync",
                "action_test_connection",
                "action_generate_signing_secret",
            ):
                with self.subTest(user=user.login, action=action), self.assertRaises(AccessError):
                    getattr(config, action)()

    def test_nobody_writes_logs_by_hand(self):
        log = self.env["api.sync.log"].create(
            {"config_id": self.config.id, "operation": "update", "idempotency_key": "by-module"}
        )
        for user in (self.user, self.manager):
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                log.with_user(user).write({"request_body": "{}", "state": "done"})
        with self.assertRaises(AccessError):
            log.with_user(self.user).action_cancel()
        log.with_user(self.manager).action_cancel()  # the module writes; the manager decides
        self.assertEqual(log.state, "cancelled")
        for user in (self.user, self.manager):
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                self.env["api.sync.log"].with_user(user).create(
                    {
                        "config_id": self.config.id,
                        "operation": "update",
                        "idempotency_key": f"hand-{user.id}",
                    }
                )

    def test_manager_reads_and_writes_secrets(self):
        self.config.integration_user_id = self.manager  # managers change their own configurations
        config = self.config.with_user(self.manager)
        self.assertEqual(config.auth_token, "tok-secret")
        config.api_key = "rotated"
        self.assertEqual(self.config.api_key, "rotated")

    def test_plain_user_sees_nothing(self):
        with self.assertRaises(AccessError):
            self.config.with_user(self.other).read(["name"])

    def test_configs_of_another_company_are_hidden(self):
        other_company = self.env["res.company"].create({"name": "Other Co"})
        self.config.company_id = other_company
        self.assertFalse(self.Config.with_user(self.manager).search([("id", "=", self.config.id)]))
        self.config.company_id = False
        self.assertTrue(self.Config.with_user(self.manager).search([("id", "=", self.config.id)]))
