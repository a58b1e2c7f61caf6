"""Issue 21: two-way sync, the Odoo side. Real signed requests (the ``standardwebhooks`` library
is the sender) posted to the inbound URL of a configuration, then its jobs run."""

import base64
import datetime
import hashlib
import hmac
import json
import uuid

from standardwebhooks import Webhook

from odoo import Command, sql_db
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.job import Job

from ..controllers.inbound import MAX_SLOTS, SLOT_LOCK_CLASS
from ..engine import inbound
from ..models import compat
from .delivery_common import perform

SECRET = "whsec_aW5ib3VuZC1zZWNyZXQtZm9yLWFwaS1zeW5jLXRlc3Q="
OTHER_SECRET = "whsec_b3RoZXItc2VjcmV0LWZvci1hcGktc3luYy10ZXN0cw=="
LOG_MODULE = "odoo.addons.api_sync.models.api_sync_log"


def utc_now():
    return datetime.datetime.now(datetime.UTC)


class InboundCase(HttpCase):
    """A contacts configuration with inbound sync on, its name, email and ref lines applied
    inbound (phone only sent), and another configuration of contacts (outbound only)."""

    mode = "listener"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        Config = cls.env["api.sync.config"]
        Config.search([]).active = False
        partner_model = cls.env["ir.model"]._get("res.partner")
        cls.config = Config.create(
            {
                "name": "CRM two-way",
                "model_id": partner_model.id,
                "endpoint_url": "http://127.0.0.1:9/crm",
                "company_id": False,
                "inbound_enabled": True,
                "inbound_secret": SECRET,
                "inbound_root_key": "data",
                "inbound_external_id_path": "data.id",
                "inbound_timestamp_path": "data.updated_at",
                "inbound_key_field": "ref",
                "mapping_ids": [
                    Command.create({"source_path": "name", "target_key": "name", "inbound": 1}),
                    Command.create({"source_path": "email", "target_key": "email", "inbound": 1}),
                    Command.create({"source_path": "ref", "target_key": "code", "inbound": 1}),
                    Command.create({"source_path": "phone", "target_key": "phone"}),
                ],
            }
        )
        cls.other = Config.create(
            {
                "name": "Warehouse (outbound only)",
                "model_id": partner_model.id,
                "endpoint_url": "http://127.0.0.1:9/warehouse",
                "company_id": False,
            }
        )
        configs = cls.config | cls.other
        if cls.mode == "rules":
            for config in configs:
                config._generate_automation_rules(True, True, True)
        else:
            configs.trigger_mode = "listener"
        cls.Log = cls.env["api.sync.log"]

    # -- the sender -------------------------------------------------------------------------------

    def url(self, token=None):
        return f"/api_sync/inbound/{token or self.config.inbound_token}"

    def send(self, payload, msg_id=None, timestamp=None, secret=SECRET, method="POST", **kw):
        """Post ``payload`` signed with the Standard Webhooks library; returns the response."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        timestamp = timestamp or utc_now()
        signature = Webhook(secret).sign(msg_id, timestamp, body.decode("utf-8", "replace"))
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature,
            **kw.pop("headers", {}),
        }
        return self.raw(body, headers, method=method, **kw)

    def raw(self, body, headers, method="POST", token=None):
        return self.opener.request(
            method, self.base_url() + self.url(token), data=body, headers=headers, timeout=12
        )

    def event(self, kind, remote_id, updated_at=None, **data):
        document = {"type": f"contact.{kind}", "data": {"id": remote_id, **data}}
        if updated_at:
            document["data"]["updated_at"] = updated_at
        return document

    def received(self, msg_id):
        return self.Log.search([("sender_event_id", "=", msg_id)])

    def run_jobs(self):
        """Perform the pending inbound jobs as the job runner would (eta ignored); the
        deliveries they cause stay queued."""
        for _round in range(10):
            jobs = self.inbound_jobs()
            if not jobs:
                return
            perform(self.env, jobs)
        self.fail("api_sync jobs still queued after 10 rounds")

    def inbound_jobs(self):
        self.env.cr.flush()
        return self.env["queue.job"].search(
            [("method_name", "=", "_apply_inbound"), ("state", "=", "pending")], order="id"
        )

    def outbound(self, config, partner):
        self.env.cr.flush()
        return self.Log.search(
            [
                ("config_id", "=", config.id),
                ("res_id", "=", partner.id),
                ("direction", "=", "outbound"),
            ]
        )

    def partner_of(self, remote_id):
        res_id = self.env["api.sync.binding"]._bound_record(self.config, remote_id)
        return self.env["res.partner"].with_context(active_test=False).browse(res_id)


@tagged("post_install", "-at_install")
class TestInbound(InboundCase):
    def test_create_update_delete_end_to_end(self):
        response = self.send(self.event("created", "c-1", name="Ada", email="ada@x.io", code="A1"))
        self.assertEqual((response.status_code, response.json()), (202, {"status": "accepted"}))
        log = self.Log.search([("direction", "=", "inbound")], limit=1)
        self.assertEqual((log.state, log.operation, log.remote_id), ("pending", "create", "c-1"))
        self.assertTrue(log.sudo().inbound_body.startswith('{"type"'))
        self.assertEqual(len(self.inbound_jobs()), 1)
        self.run_jobs()
        partner = self.partner_of("c-1")
        self.assertEqual((partner.name, partner.email, partner.ref), ("Ada", "ada@x.io", "A1"))
        self.assertEqual(
            (log.state, log.inbound_outcome, log.res_id), ("done", "created", partner.id)
        )
        status = self.env["api.sync.record.status"].get_sync_status(partner, self.config)
        self.assertEqual(status[partner.id]["external_id"], "c-1")

        self.send(self.event("updated", "c-1", email="ada@lovelace.io", phone="+1", extra=1))
        self.run_jobs()
        self.assertEqual(partner.email, "ada@lovelace.io")
        self.assertEqual(partner.name, "Ada", "keys absent from the data write nothing")
        self.assertFalse(partner.phone, "outbound-only lines are not written back")
        update = self.Log.search([("direction", "=", "inbound")], limit=1)
        self.assertEqual((update.inbound_outcome, update.unknown_keys), ("updated", "extra"))

        self.send(self.event("deleted", "c-1"))
        self.run_jobs()
        self.assertFalse(partner.active, "archived: res.partner can be archived")
        self.assertEqual(
            self.Log.search([("direction", "=", "inbound")], limit=1).inbound_outcome, "archived"
        )

    def test_a_record_is_found_by_its_key_field_then_bound(self):
        partner = self.env["res.partner"].create({"name": "Known", "ref": "K-7"})
        self.send(self.event("updated", "c-7", name="Known Ltd", code="K-7"))
        self.run_jobs()
        self.assertEqual(partner.name, "Known Ltd")
        self.assertEqual(self.partner_of("c-7"), partner)

    def test_redelivery_is_answered_200_and_applied_once(self):
        payload = self.event("created", "c-2", name="Once")
        first = self.send(payload, msg_id="msg_same")
        again = self.send(payload, msg_id="msg_same")
        self.assertEqual((first.status_code, again.status_code), (202, 200))
        self.assertEqual(again.json(), {"status": "duplicate"})
        self.assertEqual(len(self.received("msg_same")), 1)
        self.run_jobs()
        self.assertEqual(self.env["res.partner"].search_count([("name", "=", "Once")]), 1)
        self.assertEqual(self.send(payload, msg_id="msg_same").status_code, 200)

    def test_events_of_one_object_apply_in_order_and_stale_ones_are_skipped(self):
        # events stored while their job has not started join it: one job applies both
        self.send(self.event("created", "c-0", name="first"))
        self.send(self.event("updated", "c-0", name="second"))
        self.assertEqual(len(self.inbound_jobs()), 1)
        self.run_jobs()
        self.assertEqual(self.partner_of("c-0").name, "second")
        # in two jobs, the newer one first: it applies the older event of the object first
        self.send(self.event("created", "c-3", "2026-01-01T10:00:00Z", name="v1"))
        self.inbound_jobs().eta = datetime.datetime(2099, 1, 1)  # waiting: not joined
        self.send(self.event("updated", "c-3", "2026-01-01T10:05:00Z", name="v2"))
        jobs = self.inbound_jobs()
        self.assertEqual(len(jobs), 2)
        Job.load(self.env, jobs[1].uuid).perform()
        partner = self.partner_of("c-3")
        self.assertEqual(partner.name, "v2")
        self.assertEqual(
            set(self.Log.search([("remote_id", "=", "c-3")]).mapped("state")), {"done"}
        )
        # out of order: an update sent before the last one applied arrives late
        self.send(self.event("updated", "c-3", "2026-01-01T10:03:00Z", name="late"))
        self.run_jobs()
        late = self.Log.search([("direction", "=", "inbound")], limit=1)
        self.assertEqual((late.state, late.inbound_outcome), ("done", "stale"))
        self.assertEqual(partner.name, "v2")
        # older than the version Odoo last sent: skipped too
        self.env["api.sync.binding"].search(
            [("config_id", "=", self.config.id)]
        ).synced_version = datetime.datetime(2026, 1, 1, 11, 0)
        self.send(self.event("updated", "c-3", "2026-01-01T10:30:00Z", name="older"))
        self.run_jobs()
        self.assertEqual(partner.name, "v2")
        # remote wins: applied whatever its time
        self.config.inbound_stale_rule = "remote_wins"
        self.send(self.event("updated", "c-3", "2026-01-01T10:30:00Z", name="remote"))
        self.run_jobs()
        self.assertEqual(partner.name, "remote")

    def test_delete_of_an_unknown_object_does_nothing(self):
        self.send(self.event("deleted", "nobody"))
        self.run_jobs()
        log = self.Log.search([("direction", "=", "inbound")], limit=1)
        self.assertEqual((log.state, log.inbound_outcome), ("done", "missing"))

    # -- what is refused before anything is stored ------------------------------------------

    @mute_logger("odoo.http")
    def test_refused_requests_store_nothing_and_say_nothing(self):
        payload = self.event("created", "c-4", name="Nope")
        body = json.dumps(payload).encode()
        cases = {
            "unknown token": (self.send(payload, token="not-a-token"), 404),
            "bad signature": (self.send(payload, secret=OTHER_SECRET), 401),
            "replayed timestamp": (
                self.send(payload, timestamp=utc_now() - datetime.timedelta(minutes=10)),
                401,
            ),
            "no signature": (
                self.raw(body, {"Content-Type": "application/json", "webhook-id": "m1"}),
                401,
            ),
            "too large": (
                self.send({"data": {"id": "big", "name": "x" * inbound.DEFAULT_MAX_BODY}}),
                413,
            ),
            "not JSON": (self.send(b"{not json"), 400),
            "not an object": (self.send(b"[1, 2]"), 400),
        }
        for name, (response, status) in cases.items():
            with self.subTest(name):
                self.assertEqual(response.status_code, status)
                answer = response.json()
                self.assertEqual(list(answer), ["error"])
                self.assertNotIn(self.config.name, response.text)
                self.assertNotIn("data.id", response.text)
        self.assertFalse(self.Log.search([("direction", "=", "inbound")]))
        self.assertFalse(self.inbound_jobs())

    def test_a_rotated_token_is_unknown_at_once(self):
        old = self.config.inbound_token
        self.config.action_rotate_inbound_token()
        self.assertNotEqual(self.config.inbound_token, old)
        self.assertEqual(self.send(self.event("created", "c-5"), token=old).status_code, 404)
        self.assertEqual(self.send(self.event("created", "c-5", name="N")).status_code, 202)
        self.assertIn(self.config.inbound_token, self.config.inbound_url)

    def test_the_previous_secret_is_accepted_while_it_is_valid(self):
        self.config.inbound_secret = OTHER_SECRET
        self.assertEqual(self.send(self.event("created", "c-6", name="Old")).status_code, 202)
        self.assertEqual(
            self.send(self.event("created", "c-6b", name="New"), secret=OTHER_SECRET).status_code,
            202,
        )
        self.config.inbound_previous_secret_expires_at = datetime.datetime(2000, 1, 1)
        self.assertEqual(self.send(self.event("created", "c-6c", name="Old")).status_code, 401)

    def test_an_event_without_what_the_settings_read_fails_visibly(self):
        response = self.send({"type": "contact.updated", "data": {"name": "No id"}})
        self.assertEqual(response.json(), {"error": "not a usable event"})
        log = self.Log.search([("direction", "=", "inbound")], limit=1)
        self.assertEqual(log.state, "failed")
        self.assertIn("data.id", log.failure_reason)

    # -- the flood bound ----------------------------------------------------------------------

    def test_a_flood_gets_429_beyond_the_concurrent_slots(self):
        """Every slot of the configuration held by requests in progress (here another
        connection): the next request is answered 429 at once, before its body is read."""
        self.config.inbound_concurrency = 2
        self.env.cr.flush()
        connection = sql_db.db_connect(self.env.cr.dbname)
        with connection.cursor() as other:
            for slot in range(2):
                other.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)",
                    (SLOT_LOCK_CLASS, self.config.id * MAX_SLOTS + slot),
                )
            response = self.send(self.event("created", "c-8", name="Flood"))
            self.assertEqual(response.status_code, 429)
            self.assertEqual(response.headers["Retry-After"], "1")
            other.rollback()
        self.assertEqual(self.send(self.event("created", "c-8", name="Flood")).status_code, 202)

    # -- other authentications ------------------------------------------------------------------

    def test_hmac_and_token_authentication(self):
        body = json.dumps(self.event("created", "c-9", name="Hub")).encode()
        self.config.write(
            {
                "inbound_auth_type": "hmac",
                "inbound_secret": "shared-key",
                "inbound_event_id_path": "data.id",
            }
        )
        digest = hmac.new(b"shared-key", body, hashlib.sha256)
        good = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + digest.hexdigest(),
        }
        self.assertEqual(self.raw(body, good).status_code, 202)
        bad = {**good, "X-Hub-Signature-256": "sha256=" + "0" * 64}
        self.assertEqual(self.raw(body, bad).status_code, 401)
        self.config.write(
            {"inbound_hmac_encoding": "base64", "inbound_hmac_header": "X-Shopify-Hmac-Sha256"}
        )
        shopify = {"X-Shopify-Hmac-Sha256": base64.b64encode(digest.digest()).decode()}
        self.assertEqual(self.raw(body, shopify).status_code, 200, "same event id: a redelivery")
        self.config.write({"inbound_auth_type": "token", "inbound_secret": "tok-123"})
        self.assertEqual(self.raw(body, {"X-Api-Token": "tok-123"}).status_code, 200)
        self.assertEqual(self.raw(body, {"X-Api-Token": "tok-124"}).status_code, 401)

    # -- failures applying ------------------------------------------------------------------------

    @mute_logger(LOG_MODULE)
    def test_a_value_that_does_not_convert_fails_with_a_reason(self):
        self.env["api.sync.field.mapping"].create(
            {
                "config_id": self.config.id,
                "source_path": "is_company",
                "target_key": "company",
                "transform": "boolean",
                "inbound": True,
            }
        )
        self.send(self.event("created", "c-10", name="Bad", company="perhaps"))
        self.run_jobs()
        log = self.Log.search([("direction", "=", "inbound")], limit=1)
        self.assertEqual(log.state, "failed")
        self.assertIn("company", log.failure_reason)
        self.assertIn("not true or false", log.failure_reason)
        self.assertFalse(self.partner_of("c-10"))
        self.env.invalidate_all()
        self.assertEqual(self.config.inbound_failed, 1)

    @mute_logger(LOG_MODULE)
    def test_a_required_line_missing_fails(self):
        self.config.mapping_ids.filtered(lambda line: line.target_key == "name").required = True
        self.send(self.event("created", "c-11", email="x@y.io"))
        self.run_jobs()
        log = self.Log.search([("direction", "=", "inbound")], limit=1)
        self.assertEqual(log.state, "failed")
        self.assertIn("name: required, but missing", log.failure_reason)

    @mute_logger(LOG_MODULE, "odoo.http")
    def test_an_integration_user_without_rights_writes_nothing(self):
        reader = new_test_user(
            self.env, "inbound_reader", groups="base.group_user,api_sync.group_api_sync_manager"
        )
        self.env.ref("base.group_partner_manager").write(
            {compat.GROUP_USERS: [Command.unlink(reader.id)]}
        )
        self.config.integration_user_id = reader
        partner = self.env["res.partner"].create({"name": "Guarded", "ref": "G-1"})
        self.send(self.event("updated", "c-12", name="Hijacked", code="G-1"))
        self.run_jobs()
        log = self.Log.search([("direction", "=", "inbound")], limit=1)
        self.assertEqual(log.state, "failed")
        self.assertEqual(log.error_class, "AccessError")
        self.assertEqual(partner.name, "Guarded")
        # shown where the record stands: its status button and its chatter
        status = self.env["api.sync.record.status"].get_status_summary("res.partner", partner.id)
        self.assertEqual(status["state"], "failed")
        self.assertIn("was not applied", partner.message_ids[:1].body)

    @mute_logger(LOG_MODULE)
    def test_only_managers_see_the_settings_and_the_body_all_readers_see_why(self):
        viewer = new_test_user(self.env, "inbound_viewer", groups="api_sync.group_api_sync_user")
        config = self.config.with_user(viewer)
        with self.assertRaises(AccessError):
            config.action_rotate_inbound_token()
        with self.assertRaises(AccessError):
            config.read(["inbound_secret"])
        with self.assertRaises(AccessError):
            config.read(["inbound_token"])
        self.send(self.event("created", "c-13", name="Why", email=["not", "text"]))
        self.run_jobs()
        log = self.Log.search([("direction", "=", "inbound")], limit=1).with_user(viewer)
        self.assertEqual(log.state, "failed")
        self.assertIn("email: expected text, got a list", log.failure_reason)
        with self.assertRaises(AccessError):
            log.read(["inbound_body"])
        self.assertNotIn(SECRET, json.dumps(log.sudo().read()[0], default=str))

    def test_an_inbound_event_whose_job_was_lost_is_queued_again(self):
        self.send(self.event("created", "c-14", name="Lost"))
        self.inbound_jobs().unlink()  # the job is gone (a crash before it ran)
        self.Log._cron_recover_lost()
        log = self.Log.search([("direction", "=", "inbound")], limit=1)
        self.assertEqual(log.recovery_count, 1)
        self.assertEqual(len(self.inbound_jobs()), 1)
        self.run_jobs()
        self.assertEqual((log.state, self.partner_of("c-14").name), ("done", "Lost"))

    @mute_logger(LOG_MODULE)
    def test_a_many2one_by_key_field_and_a_missing_one_retried(self):
        self.env["api.sync.field.mapping"].create(
            {
                "config_id": self.config.id,
                "source_path": "country_id.code",
                "target_key": "country",
                "transform": "string",
                "inbound": True,
            }
        )
        self.send(self.event("created", "c-15", name="Belgian", country="BE"))
        self.run_jobs()
        self.assertEqual(self.partner_of("c-15").country_id, self.env.ref("base.be"))
        self.send(self.event("created", "c-16", name="Nowhere", country="QQ"))
        self.env["queue.job"].flush_model()
        jobs = self.inbound_jobs()
        perform(self.env, jobs)
        log = self.Log.search([("direction", "=", "inbound")], limit=1)
        self.assertEqual((log.state, log.error_class), ("pending", "Retry"))
        self.assertIn("no related record has code = 'QQ'", log.error_message)
        self.assertTrue(log.next_retry_at)
        self.assertEqual(len(self.inbound_jobs()), 1, "queued again, later")

    def test_a_many2one_by_another_configurations_external_ids(self):
        self.env["api.sync.field.mapping"].create(
            {
                "config_id": self.config.id,
                "source_path": "parent_id",
                "target_key": "company",
                "transform": "many2one_id",
                "inbound": True,
                "inbound_id_config_id": self.other.id,
            }
        )
        acme = self.env["res.partner"].create({"name": "Acme", "is_company": True})
        self.env["api.sync.binding"]._bind(self.other, acme.id, "wh-acme", None)
        self.send(self.event("created", "c-17", name="Ann at Acme", company="wh-acme"))
        self.run_jobs()
        self.assertEqual(self.partner_of("c-17").parent_id, acme, "found by its external id")
        self.send(self.event("created", "c-18", name="Bob at Nowhere", company="wh-none"))
        self.env["queue.job"].flush_model()
        perform(self.env, self.inbound_jobs())
        log = self.Log.search([("direction", "=", "inbound")], limit=1)
        self.assertEqual((log.state, log.error_class), ("pending", "Retry"), "it may come later")
        self.assertIn("parent_id", log.error_message)
        self.assertFalse(self.partner_of("c-18"))

    def test_the_operation_from_the_http_method(self):
        self.config.write({"inbound_operation_source": "method"})
        self.assertEqual(
            self.send({"data": {"id": "c-17", "name": "Patched"}}, method="PATCH").status_code, 202
        )
        self.run_jobs()
        partner = self.partner_of("c-17")
        self.assertEqual(partner.name, "Patched", "an update of an unknown object creates it")
        self.send({"data": {"id": "c-17"}}, method="DELETE")
        self.run_jobs()
        self.assertFalse(partner.active)

    def test_lines_without_inverse_are_refused_for_inbound_at_save(self):
        with self.assertRaisesRegex(Exception, "cannot be applied inbound"):
            self.env["api.sync.field.mapping"].create(
                {
                    "config_id": self.config.id,
                    "source_path": "country_id",
                    "target_key": "country",
                    "transform": "many2one_name",
                    "inbound": True,
                }
            )
        with self.assertRaisesRegex(Exception, "Operation Map"):
            self.config.inbound_operation_map = "opened create"


class NoEcho:
    """The no-echo rule, run in each trigger mode."""

    allow_inherited_tests_method = True

    def test_an_inbound_change_is_not_sent_back_but_to_the_other_configurations(self):
        self.send(self.event("created", "e-1", name="Echo"))
        self.run_jobs()
        partner = self.partner_of("e-1")
        self.assertFalse(self.outbound(self.config, partner), "not sent back")
        self.assertEqual(self.outbound(self.other, partner).mapped("operation"), ["create"])
        self.send(self.event("updated", "e-1", name="Echo 2"))
        self.run_jobs()
        self.assertFalse(self.outbound(self.config, partner))
        self.assertEqual(len(self.outbound(self.other, partner)), 2)
        # a later change made in Odoo is sent as usual, to both
        partner.name = "Changed in Odoo"
        self.assertEqual(self.outbound(self.config, partner).mapped("operation"), ["update"])
        # an inbound delete is not sent back either
        self.config.inbound_archive_on_delete = False
        self.send(self.event("deleted", "e-1"))
        self.run_jobs()
        self.assertFalse(partner.exists())
        self.assertNotIn("delete", self.outbound(self.config, partner).mapped("operation"))
        self.assertIn("delete", self.outbound(self.other, partner).mapped("operation"))


@tagged("post_install", "-at_install")
class TestInboundNoEchoListener(NoEcho, InboundCase):
    mode = "listener"


@tagged("post_install", "-at_install")
class TestInboundNoEchoRules(NoEcho, InboundCase):
    mode = "rules"
