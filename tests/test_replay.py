import json

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from ..engine.receiver import Reply
from .delivery_common import DeliveryCase

LOG_MODULE = "odoo.addons.api_sync.models.api_sync_log"


@tagged("post_install", "-at_install")
class TestReplay(DeliveryCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Log = cls.env["api.sync.log"]
        cls.manager = new_test_user(
            cls.env, "replay_manager", groups="api_sync.group_api_sync_manager"
        )
        cls.user = new_test_user(cls.env, "replay_user", groups="api_sync.group_api_sync_user")

    def partner(self, name):
        return self.env["res.partner"].create({"name": name, "email": f"{name}@x.io"})

    def wizard(self, mode, **values):
        since = fields.Datetime.subtract(fields.Datetime.now(), hours=1)
        return self.env["api.sync.replay.wizard"].create(
            {"config_id": self.config.id, "mode": mode, "since": since, **values}
        )

    @mute_logger(LOG_MODULE)
    def make_events(self):
        """Two delivered events (one of them of ``self.ada``), one failed, one cancelled, one
        delivered before the time asked, one inbound failed."""
        self.ada, bob, cyd, dee, old = (
            self.partner(n) for n in ("ada", "bob", "cyd", "dee", "old")
        )
        done = self.Config.sync_record(self.ada, "update") | self.Config.sync_record(bob, "update")
        older = self.Config.sync_record(old, "update")
        self.run_jobs()
        self.receiver.script(Reply(400))
        failed = self.Config.sync_record(cyd, "update")
        self.run_jobs()
        cancelled = self.Config.sync_record(dee, "update")
        cancelled.action_cancel()
        self.run_jobs()  # its job finds it cancelled
        self.age_events(older, hours=2)
        inbound = self.Log.create(
            self.Log._event_values(
                self.config, "update", direction="inbound", state="failed", res_id=cyd.id
            )
        )
        self.receiver.received.clear()
        self.assertEqual(done.mapped("state"), ["done", "done"])
        self.assertEqual(
            (failed.state, cancelled.state, older.state), ("failed", "cancelled", "done")
        )
        return done, failed | cancelled, inbound

    def test_recover_keeps_the_event_ids_and_delivers_once_more(self):
        _done, lost, inbound = self.make_events()
        wizard = self.wizard("recover")
        self.assertEqual(wizard.event_count, 2)
        self.assertIn("2 failed or cancelled", wizard.preview)
        ids = lost.mapped("idempotency_key")
        wizard.action_send()
        self.assertEqual(lost.mapped("state"), ["pending", "pending"])
        self.run_jobs()
        self.assertEqual(lost.mapped("state"), ["done", "done"])
        self.assertEqual(lost.mapped("idempotency_key"), ids)
        self.assertCountEqual([r.headers["Idempotency-Key"] for r in self.receiver.received], ids)
        self.assertEqual(inbound.state, "failed", "inbound events are not touched")
        self.assertIn("recovered 2", self.config.message_ids[0].body)
        self.assertEqual(self.wizard("recover").event_count, 0)

    def test_replay_sends_new_events_linked_to_their_originals(self):
        done, lost, inbound = self.make_events()
        wizard = self.wizard("replay")
        self.assertEqual(wizard.event_count, 2, "the event older than the time is left")
        self.assertIn("2 delivered", wizard.preview)
        wizard.action_send()
        replays = self.Log.search([("replay_of_id", "in", done.ids)])
        self.assertEqual(len(replays), 2)
        self.assertEqual(replays.replay_of_id, done)
        self.assertFalse(
            set(replays.mapped("idempotency_key")) & set(done.mapped("idempotency_key"))
        )
        self.assertEqual(len(self.jobs()), 1, "the replays share a job")
        self.run_jobs()
        self.assertEqual(replays.mapped("state"), ["done", "done"])
        received = {r.json["id"]: r for r in self.receiver.received}
        self.assertEqual(set(received), set(replays.mapped("idempotency_key")))
        for replay in replays:
            original = json.loads(replay.replay_of_id.request_body)
            sent = received[replay.idempotency_key]
            self.assertEqual(sent.headers["Idempotency-Key"], replay.idempotency_key)
            self.assertEqual(
                {
                    **original,
                    "id": replay.idempotency_key,
                    "replay_of": replay.replay_of_id.idempotency_key,
                },
                sent.json,
            )
        self.assertEqual(lost.mapped("state"), ["failed", "cancelled"], "replay leaves them")
        self.assertEqual(inbound.state, "failed")
        self.assertIn("replayed 2", self.config.message_ids[0].body)

    def test_record_wizard_touches_only_that_record(self):
        done, _lost, _inbound = self.make_events()
        wizard = (
            self.env["api.sync.replay.wizard"]
            .with_context(active_model="res.partner", active_id=self.ada.id)
            .create(
                {
                    "mode": "replay",
                    "since": fields.Datetime.subtract(fields.Datetime.now(), hours=1),
                }
            )
        )
        self.assertEqual((wizard.config_id, wizard.res_id), (self.config, self.ada.id))
        self.assertEqual(wizard.event_count, 1)
        self.assertEqual(
            self.wizard("recover", res_model="res.partner", res_id=self.ada.id).event_count, 0
        )
        wizard.action_send()
        replay = self.Log.search([("replay_of_id", "!=", False)])
        self.assertEqual(replay.replay_of_id, done.filtered(lambda log: log.res_id == self.ada.id))
        self.run_jobs()
        self.assertEqual([r.json["record_id"] for r in self.receiver.received], [self.ada.id])
        self.assertIn("replayed 1", self.ada.message_ids[0].body)

    def test_only_managers(self):
        self.make_events()
        with self.assertRaises(AccessError):
            self.wizard("recover").with_user(self.user).action_send()
        with self.assertRaises(AccessError):
            self.env["api.sync.replay.wizard"].with_user(self.user).create(
                {"config_id": self.config.id, "mode": "recover", "since": fields.Datetime.now()}
            )
        wizard = self.wizard("recover").with_user(self.manager)
        self.assertEqual(wizard.event_count, 2)
        wizard.action_send()
        self.assertEqual(len(self.jobs()), 1, "recovered events share a job")

    def test_context_action_on_synced_models(self):
        self.config._sync_record_log_actions()
        action = self.env["ir.actions.act_window"].search(
            [("res_model", "=", "api.sync.replay.wizard"), ("binding_model_id", "!=", False)]
        )
        self.assertEqual(action.binding_model_id.model, "res.partner")
        self.assertEqual(action.target, "new")
        self.assertEqual(
            self.config.action_replay_wizard()["context"]["default_config_id"], self.config.id
        )
