"""Issue 9: what an API Sync Manager who is not an administrator, or an API Sync User, tries."""

import datetime
import json

from markupsafe import Markup
from standardwebhooks import Webhook

from odoo import Command, fields
from odoo.exceptions import AccessError, ValidationError
from odoo.models import BaseModel
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from ..engine.receiver import Reply
from ..models import compat
from .delivery_common import SECRET, DeliveryCase

LOG_MODULE = "odoo.addons.api_sync.models.api_sync_log"
ESCALATION = (
    "[('id', '!=', user.has_group('base.group_system') and "
    "user.browse({uid}).write({{'groups_id': [(4, user.env.ref('base.group_system').id)]}}) "
    "and 0)]"
).replace("groups_id", compat.USER_GROUPS)  # the users' groups field of the running series


@tagged("post_install", "-at_install")
class TestAttacks(DeliveryCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other_company = cls.env["res.company"].create({"name": "Other Sync Co"})
        cls.manager = new_test_user(
            cls.env, "sync_attacker", groups="api_sync.group_api_sync_manager"
        )
        cls.viewer = new_test_user(cls.env, "sync_viewer", groups="api_sync.group_api_sync_user")
        cls.mine = cls.env["res.partner"].create({"name": "Readable", "email": "r@x.io"})
        cls.foreign = cls.env["res.partner"].create(
            {"name": "Foreign", "email": "f@x.io", "company_id": cls.other_company.id}
        )

    def own_config(self, **values):
        """A configuration the manager creates: it reads with the manager's rights."""
        config = (
            self.env["api.sync.config"]
            .with_user(self.manager)
            .create(
                {
                    "name": "Mine",
                    "model_id": self.partner_model.id,
                    "endpoint_url": f"{self.receiver.url}/hooks/mine",
                    "company_id": False,
                    **values,
                }
            )
        )
        config.mapping_ids = [
            Command.create({"source_path": "name", "target_key": "name"}),
            Command.create({"source_path": "email", "target_key": "email"}),
        ]
        return config

    def is_admin(self, user):
        user.invalidate_recordset()
        return user.has_group("base.group_system")

    # -- 1. the domain ------------------------------------------------------------------------

    def test_the_domain_reaches_no_records_and_cannot_escalate(self):
        config = self.own_config()
        with self.assertRefused("Domain"):
            config.domain = ESCALATION.format(uid=self.manager.id)
        with self.assertRefused("Domain"):
            config.domain = "[('id', '=', user.env.cr.execute('SELECT 1') or 1)]"
        # even if such a domain were stored, evaluating it where syncs run does nothing
        self.env.cr.execute(
            "UPDATE api_sync_config SET domain = %s WHERE id = %s",
            (ESCALATION.format(uid=self.manager.id), config.id),
        )
        config.invalidate_recordset()
        with self.assertRaises(Exception):  # noqa: B017 - 'user' is not defined
            config.sudo()._filter_in_domain(self.mine)
        self.assertFalse(self.is_admin(self.manager))
        context = self.config._domain_eval_context()
        self.assertFalse([v for v in context.values() if isinstance(v, BaseModel)])
        self.assertIn("company_ids", context)
        config.domain = "[('company_id', 'in', company_ids + [False]), ('create_uid', '!=', uid)]"

    def test_domain_errors_do_not_echo_evaluated_values(self):
        with self.assertRaises(ValidationError) as caught:
            self.config.domain = "[('name', '=', 'AB' * 3), ('no_such_field', '=', 'CD' * 3)]"
        message = str(caught.exception)
        self.assertIn("no_such_field", message)
        self.assertNotIn("ABABAB", message)
        self.assertNotIn("CDCDCD", message)
        self.env.invalidate_all()

    # -- 2. who reads the data ----------------------------------------------------------------

    def test_integration_user_is_the_creator_and_only_admins_pick_another(self):
        config = self.own_config()
        self.assertEqual(config.integration_user_id, self.manager)
        with self.assertRaises(AccessError):
            config.integration_user_id = self.env.ref("base.user_admin")
        config.sudo().integration_user_id = self.env.ref("base.user_admin")
        self.assertEqual(self.config.integration_user_id, self.env.ref("base.user_admin"))
        with self.assertRefused("Integration User"):
            self.config.integration_user_id = self.env.ref("base.user_root")

    def test_a_manager_cannot_redirect_a_config_reading_as_someone_else(self):
        config = self.config.with_user(self.manager)  # reads as the administrator
        with self.assertRaises(AccessError):
            config.endpoint_url = "http://127.0.0.1:1/attacker"
        with self.assertRaises(AccessError):
            self.env["api.sync.field.mapping"].with_user(self.manager).create(
                {"config_id": self.config.id, "source_path": "phone", "target_key": "phone"}
            )
        with self.assertRaises(AccessError):
            config.mapping_ids[:1].unlink()
        # taking it over makes it read with the manager's own rights
        config.write({"integration_user_id": self.manager.id, "endpoint_url": "http://x.io/h"})
        self.assertEqual(self.config.integration_user_id, self.manager)

    def test_mapping_what_the_integration_user_cannot_read_is_refused(self):
        config = self.own_config()
        Mapping = self.env["api.sync.field.mapping"].with_user(self.manager)
        # a model the manager may not read (login history of users)
        with self.assertRefused(r"res\.users\.log.*create_uid\.log_ids"):
            Mapping.create(
                {
                    "config_id": config.id,
                    "source_path": "create_uid.log_ids",
                    "target_key": "logins",
                    "transform": "x2many_ids",
                }
            )
        # a field restricted by groups= (internal users only), for a portal integration user
        portal = new_test_user(self.env, "sync_portal", groups="base.group_portal")
        self.config.integration_user_id = portal
        with self.assertRefused(r"res\.partner\.message_attachment_count"):
            self.add_line("message_attachment_count", "attachments")
        # and choosing a user who cannot read the existing mapping is refused too
        self.config.integration_user_id = self.env.ref("base.user_admin")
        self.add_line("message_attachment_count", "attachments")
        with self.assertRefused("message_attachment_count"):
            self.config.integration_user_id = portal

    def test_records_the_integration_user_cannot_read_are_not_sent(self):
        config = self.own_config()
        logs = config.sync_record(self.mine | self.foreign, "update")
        self.run_jobs()
        sent = [request.json["record_id"] for request in self.receiver.received]
        self.assertEqual(sent, [self.mine.id])
        skipped = logs.filtered(lambda log: log.res_id == self.foreign.id)
        self.assertEqual((skipped.state, skipped.error_class), ("cancelled", "NotReadable"))
        self.assertIn(self.manager.name, skipped.sudo().error_message)

    def test_a_batch_sends_what_the_integration_user_reads_archived_included(self):
        archived = self.env["res.partner"].create({"name": "Archived", "active": False})
        config = self.own_config(delivery_mode="batch")
        logs = config.send_batch(self.foreign | archived | self.mine)
        self.run_jobs()
        self.assertEqual(logs.mapped("state"), ["done"])
        (request,) = self.receiver.received
        sent = [item["record_id"] for item in request.json["records"]]
        self.assertEqual(sent, [archived.id, self.mine.id])

    def test_runs_skip_what_the_integration_user_cannot_read(self):
        self.env["ir.config_parameter"].set_param("api_sync.batch_settle_seconds", "0")
        (self.mine | self.foreign).write({"ref": "RUN"})
        self.env.cr.execute(
            "UPDATE res_partner SET write_date = now() - interval '1 minute' WHERE id IN %s",
            (tuple((self.mine | self.foreign).ids),),
        )
        config = self.own_config(domain="[('ref', '=', 'RUN')]")
        run = self.env["api.sync.run"].browse(config.action_run_now()["res_id"])
        self.run_jobs()
        self.assertEqual([r.json["record_id"] for r in self.receiver.received], [self.mine.id])
        self.assertEqual((run.state, run.count_sent, run.count_skipped), ("success", 1, 1))
        self.assertIn("Integration User", run.note)

    # -- 3. what log readers see --------------------------------------------------------------

    def test_log_payloads_only_for_those_who_can_read_the_record(self):
        self.env.ref("base.user_admin").company_ids |= self.other_company  # it sends both
        logs = self.Config.sync_record(self.mine | self.foreign, "update")
        self.run_jobs()
        self.env.invalidate_all()
        by_record = {log.res_id: log.with_user(self.viewer) for log in logs}
        readable, foreign = by_record[self.mine.id], by_record[self.foreign.id]
        self.assertIn("Readable", readable.request_preview)
        self.assertEqual(readable.response_preview, '{"ok": true}')
        self.assertFalse(foreign.request_preview)
        self.assertFalse(foreign.response_preview)
        self.assertEqual(foreign.state, "done", "state and counts stay visible")
        for fname in ("request_body", "response_body", "error_message"):
            with self.subTest(field=fname), self.assertRaises(AccessError):
                foreign.read([fname])
            with self.subTest(field=fname), self.assertRaises(AccessError):
                self.env["api.sync.log"].with_user(self.viewer).search([(fname, "ilike", "F")])
        manager_view = by_record[self.foreign.id].with_user(self.manager)
        self.assertIn("Foreign", manager_view.request_preview)

    # -- 4. buttons on records of another company ---------------------------------------------

    def test_buttons_check_access_to_their_record(self):
        self.config.company_id = self.other_company
        log = self.Config.sync_record(self.mine, "update")
        config = self.config.with_user(self.manager)
        for action in (
            "action_run_now",
            "action_full_resync",
            "action_test_connection",
            "action_generate_signing_secret",
            "action_preview_payload",
            "action_view_logs",
            "action_view_runs",
        ):
            with self.subTest(action=action), self.assertRaises(AccessError):
                getattr(config, action)()
        for action in ("action_cancel", "action_retry"):
            with self.subTest(action=action), self.assertRaises(AccessError):
                getattr(log.with_user(self.manager), action)()
        self.assertFalse(self.env["api.sync.run"].search([("config_id", "=", self.config.id)]))
        self.assertEqual(log.state, "pending")

    # -- 5, 10. the endpoint URL --------------------------------------------------------------

    def test_endpoint_urls_with_credentials_or_garbage_are_refused(self):
        with self.assertRefused("Basic authentication"):
            self.config.endpoint_url = "http://user:pass@127.0.0.1/hook"
        with self.assertRefused("Endpoint URL"):
            self.config.endpoint_url = "http://[::1"
        with self.assertRefused("Default Value"):
            self.add_line(False, "deep", "constant", default_value="[" * 100_000 + "]" * 100_000)

    # -- 6. outbound targets ------------------------------------------------------------------

    @mute_logger(LOG_MODULE)
    def test_outbound_targets_can_be_restricted(self):
        params = self.env["ir.config_parameter"]
        params.set_param("api_sync.deny_private_targets", "True")
        with self.assertRefused("non-public address"):
            self.config.endpoint_url = "http://127.0.0.1:9/other"
        log = self.Config.sync_record(self.mine, "update")  # saved before the restriction
        self.run_jobs()
        self.assertEqual((log.state, log.error_class), ("failed", "TargetRefused"))
        self.assertFalse(self.receiver.received)
        params.set_param("api_sync.allowed_targets", "127.0.0.1/32")
        self.config.endpoint_url = f"{self.receiver.url}/hooks/contacts"
        log = self.Config.sync_record(self.mine, "update")
        self.run_jobs()
        self.assertEqual(log.state, "done")
        params.set_param("api_sync.allowed_targets", "api.example.com")
        with self.assertRefused("not in the allowed outbound targets"):
            self.config.endpoint_url = "http://127.0.0.1:9/other"
        with self.assertRefused("neither a host name nor a network"):
            params.set_param("api_sync.allowed_targets", "http://x/")
            self.config.endpoint_url = "https://api.example.com/x"

    # -- 9. activity notes --------------------------------------------------------------------

    def test_stale_activity_note_escapes_the_config_name(self):
        self.config.write(
            {
                "name": '<a href="http://evil.example">click</a>',
                "schedule_active": True,
                "schedule_interval_number": 1,
                "schedule_interval_type": "minutes",
            }
        )
        self.env.cr.execute(
            "UPDATE api_sync_config SET create_date = now() - interval '1 day' WHERE id = %s",
            (self.config.id,),
        )
        self.config.invalidate_recordset()
        self.Config._cron_check_stale()
        note = self.config.activity_ids.note
        self.assertTrue(note)
        self.assertNotIn("<a", note)
        self.assertIn("&lt;a", note)
        self.assertIsInstance(note, Markup)

    # -- 11. a manager configures end to end --------------------------------------------------

    def test_a_manager_configures_end_to_end_without_being_admin(self):
        self.assertFalse(self.is_admin(self.manager))
        model = self.env["ir.model"].with_user(self.manager).search([("model", "=", "res.partner")])
        self.assertEqual(model, self.partner_model)
        config = self.own_config()
        preview = (
            self.env["api.sync.preview"]
            .with_user(self.manager)
            .create({"config_id": config.id, "record_ref": f"res.partner,{self.mine.id}"})
        )
        self.assertEqual(json.loads(preview.payload), {"name": "Readable", "email": "r@x.io"})
        result = config.action_test_connection()
        self.assertEqual(result["params"]["type"], "success")
        config.action_generate_signing_secret()
        config.sync_record(self.mine, "update")
        self.run_jobs()
        self.assertEqual(len(self.receiver.received), 2)  # the ping and the event

    def test_preview_does_not_show_what_the_viewer_cannot_read(self):
        preview = (
            self.env["api.sync.preview"]
            .with_user(self.manager)
            .create(
                {"config_id": self.own_config().id, "record_ref": f"res.partner,{self.foreign.id}"}
            )
        )
        self.assertFalse(preview.payload)
        self.assertIn("cannot read", preview.error_message)

    # -- 12. secret rotation ------------------------------------------------------------------

    def test_signing_secret_rotation_keeps_the_old_secret_valid_for_a_while(self):
        self.config.action_generate_signing_secret()
        new_secret = self.config.signing_secret
        self.assertNotEqual(new_secret, SECRET)
        self.assertEqual(self.config.previous_signing_secret, SECRET)
        self.Config.sync_record(self.mine, "update")
        self.run_jobs()
        (request,) = self.receiver.received
        headers = {name.lower(): value for name, value in request.headers.items()}
        for secret in (SECRET, new_secret):
            Webhook(secret).verify(request.body, headers)
        self.config.previous_secret_expires_at = fields.Datetime.now() - datetime.timedelta(
            seconds=1
        )
        self.receiver.received.clear()
        self.Config.sync_record(self.mine, "update", ["name"])
        self.run_jobs()
        (request,) = self.receiver.received
        self.assertEqual(len(request.headers["webhook-signature"].split(" ")), 1)
        log = self.env["api.sync.log"].search([], limit=1)
        self.assertNotIn(SECRET, json.dumps(log.sudo().read()[0], default=str))


@tagged("post_install", "-at_install")
class TestAttacksOverRpc(HttpCase):
    """The same attacks as a real client makes them: JSON-RPC with the attacker's session."""

    def setUp(self):
        super().setUp()
        self.manager = new_test_user(
            self.env, "rpc_attacker", groups="api_sync.group_api_sync_manager"
        )
        self.other_company = self.env["res.company"].create({"name": "Other RPC Co"})
        self.foreign_config = self.env["api.sync.config"].create(
            {
                "name": "Foreign",
                "model_id": self.env["ir.model"]._get_id("res.partner"),
                "endpoint_url": "http://127.0.0.1:9/x",
                "company_id": self.other_company.id,
            }
        )
        self.authenticate("rpc_attacker", "rpc_attacker")

    def call(self, model, method, *args, **kwargs):
        response = self.url_open(
            "/web/dataset/call_kw",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {"model": model, "method": method, "args": args, "kwargs": kwargs},
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        return response.json()

    @mute_logger("odoo.http")
    def test_domain_escalation_over_rpc(self):
        result = self.call(
            "api.sync.config",
            "create",
            {
                "name": "Escalate",
                "model_id": self.env["ir.model"]._get_id("res.partner"),
                "endpoint_url": "http://127.0.0.1:9/x",
                "domain": ESCALATION.format(uid=self.manager.id),
            },
        )
        self.assertIn("error", result)
        self.assertFalse(self.manager.has_group("base.group_system"))

    @mute_logger("odoo.http")
    def test_run_now_on_another_company_config_over_rpc(self):
        result = self.call("api.sync.config", "action_run_now", [self.foreign_config.id])
        self.assertIn("error", result)
        self.assertEqual(result["error"]["data"]["name"], "odoo.exceptions.AccessError")
        self.assertFalse(
            self.env["api.sync.run"].search([("config_id", "=", self.foreign_config.id)])
        )


@tagged("post_install", "-at_install")
class TestAttacksThroughDefaults(DeliveryCase):
    """Review findings: defaults from the context must not get around the guards."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env, "sync_defaulter", groups="api_sync.group_api_sync_manager"
        )

    def test_a_context_default_cannot_pick_another_integration_user(self):
        admin = self.env.ref("base.user_admin")
        Config = self.env["api.sync.config"].with_user(self.manager)
        with self.assertRaises(AccessError):
            Config.with_context(default_integration_user_id=admin.id).create(
                {
                    "name": "Reads as admin",
                    "model_id": self.partner_model.id,
                    "endpoint_url": "http://127.0.0.1:1/attacker",
                }
            )
        with self.assertRaises(AccessError):
            self.config.with_user(self.manager).with_context(
                default_integration_user_id=admin.id
            ).copy({"endpoint_url": "http://127.0.0.1:1/attacker"})

    def test_a_context_default_cannot_add_lines_to_another_users_config(self):
        with self.assertRaises(AccessError):
            self.env["api.sync.field.mapping"].with_user(self.manager).with_context(
                default_config_id=self.config.id
            ).create({"source_path": "phone", "target_key": "phone"})

    def test_a_new_integration_user_does_not_send_what_the_previous_one_read(self):
        partner = self.env["res.partner"].create({"name": "Captured Carl", "email": "c@x.io"})
        self.receiver.script(Reply(500))
        update = self.Config.sync_record(partner, "update")
        self.run_jobs(once=True)  # body captured with the administrator's rights, retry queued
        self.assertTrue(update.sudo().request_body)
        deletion = self.Config.sync_record(partner, "delete")
        self.config.with_user(self.manager).write(
            {"integration_user_id": self.manager.id, "endpoint_url": "http://127.0.0.1:1/new"}
        )
        self.assertFalse(update.sudo().request_body, "captured again when sent")
        self.assertEqual(
            (deletion.state, deletion.error_class), ("cancelled", "IntegrationUserChanged")
        )
