import datetime
import json
import socket

from standardwebhooks import Webhook

from odoo import fields
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..engine.mapping import iso_datetime
from ..engine.receiver import Reply
from .delivery_common import SECRET, DeliveryCase

LOG_MODULE = "odoo.addons.api_sync.models.api_sync_log"


class Boom(Exception):
    pass


@tagged("post_install", "-at_install")
class TestDelivery(DeliveryCase):
    def create_partner(self, **values):
        return self.env["res.partner"].create({"name": "Dora Sync", "email": "d@x.io", **values})

    def test_success_sends_the_documented_envelope_and_headers(self):
        partner = self.create_partner()
        log = self.Config.sync_record(partner, "create")
        self.assertEqual((log.state, log.operation, log.res_id), ("pending", "create", partner.id))
        self.assertEqual(len(self.jobs()), 1, "delivery is queued, not sent in the transaction")
        self.assertFalse(self.receiver.received)
        self.run_jobs()
        self.assertEqual(log.state, "done")
        self.assertEqual((log.attempt_count, log.response_status), (1, 200))
        (request,) = self.receiver.received
        self.assertEqual(request.method, "POST")
        self.assertEqual(request.path, "/hooks/contacts")
        headers = request.headers
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["Idempotency-Key"], log.idempotency_key)
        self.assertIn("api_sync", headers["User-Agent"])
        self.assertEqual(headers["Authorization"], "Bearer tok-SECRET-bearer")
        body = request.json
        self.assertEqual(body["id"], log.idempotency_key)
        self.assertEqual(body["type"], "res.partner.created")
        self.assertEqual(body["model"], "res.partner")
        self.assertEqual(body["record_id"], partner.id)
        self.assertEqual(body["operation"], "create")
        self.assertIsNone(body["changed_fields"])
        self.assertEqual(body["data"], {"name": "Dora Sync", "email": "d@x.io"})
        self.assertTrue(body["timestamp"].endswith("Z"))
        self.assertEqual(body["version"], iso_datetime(partner.write_date, precise=True))
        self.assertEqual(log.request_body.encode(), request.body)
        self.assertEqual(
            self.env["api.sync.record.status"].get_sync_status(partner, self.config)[partner.id][
                "state"
            ],
            "done",
        )

    def test_signature_verifies_with_an_independent_implementation(self):
        partner = self.create_partner()
        self.Config.sync_record(partner, "update", ["name"])
        self.run_jobs()
        (request,) = self.receiver.received
        headers = {name.lower(): value for name, value in request.headers.items()}
        payload = Webhook(SECRET).verify(request.body, headers)
        self.assertEqual(payload["changed_fields"], ["name"])
        with self.assertRaises(Exception):  # noqa: B017 - the library raises its own error type
            Webhook(SECRET).verify(request.body.replace(b"Dora", b"Eve"), headers)

    def test_500_then_200_keeps_the_event_id(self):
        self.receiver.script(Reply(500))
        partner = self.create_partner()
        log = self.Config.sync_record(partner, "update", ["email"])
        before = fields.Datetime.now()
        self.run_jobs(once=True)
        self.assertEqual((log.state, log.attempt_count, log.response_status), ("pending", 1, 500))
        self.assertEqual(log.error_class, "HTTP 500")
        self.assertGreaterEqual(log.next_retry_at, before + datetime.timedelta(seconds=9))
        self.assertEqual(len(self.jobs()), 1, "the retry is queued")
        self.run_jobs()
        self.assertEqual((log.state, log.attempt_count), ("done", 2))
        first, second = self.receiver.received
        self.assertEqual(first.headers["Idempotency-Key"], second.headers["Idempotency-Key"])
        self.assertEqual(first.body, second.body)
        self.assertEqual(first.json["id"], log.idempotency_key)

    def test_429_retry_after_is_honoured(self):
        self.receiver.script(Reply(429, headers={"Retry-After": "120"}))
        log = self.Config.sync_record(self.create_partner(), "update")
        before = fields.Datetime.now()
        self.run_jobs(once=True)
        self.assertEqual((log.state, log.response_status), ("pending", 429))
        not_before = before + datetime.timedelta(seconds=119)
        self.assertGreaterEqual(log.next_retry_at, not_before)
        self.assertGreaterEqual(self.jobs().eta, not_before)

    def test_429_retry_after_as_http_date(self):
        when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=300)
        self.receiver.script(
            Reply(429, headers={"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")})
        )
        log = self.Config.sync_record(self.create_partner(), "update")
        self.run_jobs(once=True)
        self.assertGreaterEqual(
            log.next_retry_at, fields.Datetime.now() + datetime.timedelta(seconds=290)
        )

    @mute_logger(LOG_MODULE)
    def test_400_fails_at_once(self):
        self.receiver.script(Reply(400, body='{"error": "bad email"}'))
        partner = self.create_partner()
        log = self.Config.sync_record(partner, "update")
        self.run_jobs()
        self.assertEqual((log.state, log.attempt_count, log.response_status), ("failed", 1, 400))
        self.assertIn("bad email", log.response_body)
        self.assertFalse(self.jobs())
        self.assertEqual(len(self.receiver.received), 1)

    def test_timeout_is_retried(self):
        self.config.timeout = 0.3
        self.receiver.script(Reply(delay=1.5))
        log = self.Config.sync_record(self.create_partner(), "update")
        self.run_jobs(once=True)
        self.assertEqual(log.state, "pending")
        self.assertEqual(log.error_class, "ReadTimeout")
        self.assertTrue(log.next_retry_at)

    def test_connection_refused_is_retried(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.config.endpoint_url = f"http://127.0.0.1:{port}/closed"
        log = self.Config.sync_record(self.create_partner(), "update")
        self.run_jobs(once=True)
        self.assertEqual(log.state, "pending")
        self.assertEqual(log.error_class, "ConnectionError")
        self.assertFalse(log.response_status)

    @mute_logger(LOG_MODULE)
    def test_max_attempts_then_failed_with_a_chatter_message(self):
        # A retryable error spends an attempt once the endpoint answered other events since
        # the event's previous attempt (the error is then the event's own); the first one is
        # not counted. Errors while nothing gets through spend nothing (test_endpoint).
        partner = self.create_partner()
        messages_before = partner.message_ids
        log = self.Config.sync_record(partner, "update")
        self.receiver.script(Reply(503))
        log._deliver()
        for name in ("Other 1", "Other 2", "Other 3"):
            other = self.Config.sync_record(self.create_partner(name=name), "update")
            other._deliver()  # the endpoint answers the other events
            self.assertEqual(other.state, "done")
            self.receiver.script(Reply(503))
            log._deliver()
        self.assertEqual((log.state, log.attempt_count), ("failed", 4))
        self.assertEqual(len(self.receiver.received), 7)
        self.run_jobs()  # the retries queued before it failed send nothing
        self.assertEqual(len(self.receiver.received), 7)
        (message,) = partner.message_ids - messages_before
        self.assertIn("after 4 attempt(s): HTTP 503", message.body)
        self.assertIn(f"/odoo/action-api_sync.action_api_sync_log/{log.id}", message.body)
        self.assertIn("Contacts", message.body)

    def test_success_posts_nothing(self):
        partner = self.create_partner()
        messages_before = partner.message_ids
        self.Config.sync_record(partner, "update")
        self.run_jobs()
        self.assertEqual(partner.message_ids, messages_before)

    def test_rollback_of_the_caller_sends_nothing(self):
        partner = self.create_partner()
        with self.assertRaises(Boom), self.env.cr.savepoint():
            log = self.Config.sync_record(partner, "update")
            self.assertTrue(log.exists())
            self.assertTrue(self.jobs())
            raise Boom
        self.env.invalidate_all()
        self.assertFalse(self.env["api.sync.log"].search([("res_id", "=", partner.id)]))
        self.assertFalse(self.jobs())
        self.run_jobs()
        self.assertFalse(self.receiver.received)

    def test_update_after_update_is_merged_and_sends_latest_data(self):
        partner = self.create_partner()
        first = self.Config.sync_record(partner, "update", ["name"])
        partner.write({"name": "Dora Two", "email": "two@x.io"})
        second = self.Config.sync_record(partner, "update", ["email"])
        self.assertEqual(first, second, "an update folds into the queued event")
        self.assertEqual(first.changed_fields, "email,name")
        self.run_jobs()
        (request,) = self.receiver.received
        self.assertEqual(request.json["data"], {"name": "Dora Two", "email": "two@x.io"})
        self.assertEqual(request.json["changed_fields"], ["email", "name"])

    def test_newer_event_never_arrives_with_older_data(self):
        self.receiver.script(Reply(500))
        partner = self.create_partner()
        first = self.Config.sync_record(partner, "update", ["name"])
        self.run_jobs(once=True)  # first attempt fails, the retry waits
        partner.name = "Dora Latest"
        second = self.Config.sync_record(partner, "update", ["name"])
        self.assertNotEqual(first, second, "an attempted event is frozen: a new one is made")
        second._deliver()  # runs before the older event's retry: it must wait for it
        self.assertEqual(len(self.receiver.received), 1)
        self.assertEqual(second.state, "pending")
        waiting = self.jobs().filtered(lambda job: job.uuid == second.job_uuid)
        self.assertGreaterEqual(waiting.eta, first.next_retry_at)
        self.run_jobs()
        self.assertEqual((first.state, second.state), ("done", "done"))
        bodies = [request.json for request in self.receiver.received]
        self.assertEqual(
            [b["id"] for b in bodies], [first.idempotency_key] * 2 + [second.idempotency_key]
        )
        self.assertEqual(bodies[-1]["data"]["name"], "Dora Latest")
        self.assertGreaterEqual(bodies[-1]["version"], bodies[0]["version"])

    @mute_logger(LOG_MODULE)
    def test_a_retried_old_event_never_overwrites_newer_data(self):
        self.receiver.script(Reply(400))
        partner = self.create_partner()
        old = self.Config.sync_record(partner, "update", ["name"])
        self.run_jobs()
        self.assertEqual(old.state, "failed")
        partner.name = "Dora Newer"
        partner.flush_recordset()
        self.env.cr.execute(  # a later transaction (a test runs in a single one)
            "UPDATE res_partner SET write_date = write_date + interval '1 minute' WHERE id = %s",
            (partner.id,),
        )
        partner.invalidate_recordset(["write_date"])
        newer = self.Config.sync_record(partner, "update", ["name"])
        self.run_jobs()
        self.assertEqual(newer.state, "done")
        old.action_retry()
        self.run_jobs()
        self.assertEqual((old.state, old.error_class), ("cancelled", "Superseded"))
        self.assertEqual(len(self.receiver.received), 2, "the stale body is not sent again")

    def test_a_lost_older_event_is_queued_again_before_newer_ones(self):
        self.receiver.script(Reply(500))
        partner = self.create_partner()
        lost = self.Config.sync_record(partner, "update")
        self.run_jobs(once=True)
        self.jobs().unlink()  # its retry job is gone (deleted by hand, lost in a crash)
        partner.name = "Dora Later"
        later = self.Config.sync_record(partner, "update")
        self.run_jobs()
        self.assertEqual((lost.state, later.state, lost.recovery_count), ("done", "done", 1))
        self.assertEqual(
            [r.json["id"] for r in self.receiver.received],
            [lost.idempotency_key] * 2 + [later.idempotency_key],
        )

    def test_delete_payload_is_captured_before_unlink(self):
        partner = self.create_partner(name="Gone Soon")
        partner_id = partner.id
        log = self.Config.sync_record(partner, "delete")
        partner.unlink()
        self.run_jobs()
        self.assertEqual(log.state, "done")
        (request,) = self.receiver.received
        body = request.json
        self.assertEqual(body["type"], "res.partner.deleted")
        self.assertEqual(body["record_id"], partner_id)
        self.assertEqual(body["data"], {"name": "Gone Soon", "email": "d@x.io"})

    def test_update_of_a_record_deleted_before_delivery_is_cancelled(self):
        partner = self.create_partner()
        log = self.Config.sync_record(partner, "update")
        partner.unlink()
        self.run_jobs()
        self.assertEqual(log.state, "cancelled")
        self.assertIn("deleted", log.error_message)
        self.assertFalse(self.receiver.received)

    def test_records_outside_the_domain_are_never_sent(self):
        self.config.domain = "[('is_company', '=', True)]"
        person = self.create_partner()
        self.assertFalse(self.Config.sync_record(person, "update"))
        self.assertEqual(len(self.Config.sync_record(self.company | person, "update")), 1)

    def test_only_active_configs_of_the_model_are_used(self):
        partner = self.create_partner()
        self.config.active = False
        self.assertFalse(self.Config.sync_record(partner, "update"))
        self.config.active = True
        other = self.config.copy({"name": "Second endpoint"})
        logs = self.Config.sync_record(partner, "update")
        self.assertEqual(logs.config_id, self.config | other)
        self.assertEqual(
            other.sync_record(partner, "update"),
            logs.filtered(lambda log: log.config_id == other),
            "an update merges into the queued event",
        )

    def test_unknown_operation_is_refused(self):
        with self.assertRaisesRegex(Exception, "Unknown sync operation 'upsert'"):
            self.Config.sync_record(self.company, "upsert")

    def test_send_batch_in_chunks(self):
        self.config.batch_size = 2
        partners = self.env["res.partner"].create([{"name": f"B{i}"} for i in range(5)])
        logs = self.config.send_batch(partners)
        self.assertEqual(len(logs), 3)
        self.run_jobs()
        self.assertEqual(set(logs.mapped("state")), {"done"})
        bodies = [request.json for request in self.receiver.received]
        self.assertEqual([b["type"] for b in bodies], ["res.partner.batch"] * 3)
        sent = [item["record_id"] for body in bodies for item in body["records"]]
        self.assertEqual(sorted(sent), sorted(partners.ids))
        self.assertEqual(bodies[0]["records"][0]["data"], {"name": "B0", "email": None})

    @mute_logger(LOG_MODULE)
    def test_mapping_error_fails_the_event_with_the_reason(self):
        self.config.mapping_ids.filtered(lambda line: line.source_path == "email").required = True
        log = self.Config.sync_record(self.create_partner(email=False), "update")
        self.run_jobs()
        self.assertEqual(log.state, "failed")
        self.assertIn("'email'", log.error_message)
        self.assertFalse(self.receiver.received)

    @mute_logger(LOG_MODULE)
    def test_retry_and_cancel_buttons(self):
        self.receiver.script(Reply(400))
        log = self.Config.sync_record(self.create_partner(), "update")
        self.run_jobs()
        self.assertEqual(log.state, "failed")
        event_id = log.idempotency_key
        log.action_retry()
        self.assertEqual(log.state, "pending")
        self.run_jobs()
        self.assertEqual((log.state, log.idempotency_key), ("done", event_id))
        self.assertEqual(
            [r.headers["Idempotency-Key"] for r in self.receiver.received], [event_id] * 2
        )
        pending = self.Config.sync_record(self.create_partner(), "update")
        pending.action_cancel()
        self.run_jobs()
        self.assertEqual(pending.state, "cancelled")
        self.assertEqual(len(self.receiver.received), 2, "a cancelled event is not sent")
        with self.assertRaisesRegex(Exception, "Only failed or cancelled events"):
            log.action_retry()

    @mute_logger(LOG_MODULE)
    def test_secrets_never_reach_logs_or_jobs(self):
        self.config.write({"auth_type": "api_key", "api_key": "key-SECRET-value"})
        echo = json.dumps({"echo": "key-SECRET-value Bearer tok-SECRET-bearer"})
        self.receiver.script(Reply(500, body=echo), Reply(400, body=echo))
        log = self.Config.sync_record(self.create_partner(), "update")
        self.run_jobs()
        self.assertEqual(self.receiver.received[0].headers["X-API-Key"], "key-SECRET-value")
        self.assertEqual(log.state, "failed")
        jobs = self.env["queue.job"].search([("channel", "=", "root.api_sync")])
        texts = [
            str(log.read()[0]),
            *(str(job.read()[0]) for job in jobs),
            *log.env["res.partner"].browse(log.res_id).message_ids.mapped("body"),
        ]
        for text in texts:
            for secret in ("key-SECRET-value", "tok-SECRET-bearer", SECRET):
                self.assertNotIn(secret, text)
        self.assertIn("***", log.response_body)

    def test_test_connection_sends_a_signed_ping(self):
        action = self.config.action_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        (request,) = self.receiver.received
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.assertEqual(Webhook(SECRET).verify(request.body, headers)["type"], "api_sync.ping")
        self.receiver.script(Reply(401, body="no"))
        action = self.config.action_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("401", action["params"]["message"])
