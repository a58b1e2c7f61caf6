"""A job delivers a group of events: one request each, the rest of the work in bulk."""

import datetime
import json
from unittest.mock import patch

from odoo import SUPERUSER_ID, api, fields
from odoo.tests import tagged

from ..engine.receiver import Receiver, Reply
from ..models import delivery
from ..models.outbox import Outbox
from .common import CommittedEventsCase
from .delivery_common import DeliveryCase, LoopbackRequests


@tagged("post_install", "-at_install")
class TestDeliveryGroups(DeliveryCase):
    def partners(self, count):
        return self.env["res.partner"].create(
            [{"name": f"Grouped {index}", "email": f"g{index}@x.io"} for index in range(count)]
        )

    def deliver(self, logs):
        """Deliver ``logs`` as one job; returns the number of statements it ran."""
        before = self.env.cr.sql_log_count
        logs._deliver()
        self.env.flush_all()
        return self.env.cr.sql_log_count - before

    def test_the_statements_of_a_group_do_not_grow_with_its_events(self):
        partners = self.partners(125)
        self.deliver(self.Config.sync_record(partners[:5], "update"))  # caches filled
        small = self.Config.sync_record(partners[5:25], "update")
        large = self.Config.sync_record(partners[25:], "update")
        small_count, large_count = self.deliver(small), self.deliver(large)
        self.assertEqual(set((small | large).mapped("state")), {"done"})
        self.assertEqual(len(self.receiver.received), 125)
        self.assertEqual(len(large.attempt_ids), 100)
        statuses = self.env["api.sync.record.status"].get_sync_status(partners, self.config)
        self.assertEqual({status["state"] for status in statuses.values()}, {"done"})
        self.assertEqual(len(statuses), 125)
        self.assertLessEqual(large_count, small_count + 2, "100 events cost what 20 do")

    def test_the_attempt_lines_of_a_group_are_complete(self):
        done, retried = self.Config.sync_record(self.partners(2), "update")
        self.receiver.script(Reply(200), Reply(503))
        (done | retried).read(["attempt_ids"])  # cached before the group writes them
        self.deliver(done | retried)
        for log, outcome, reason in ((done, "done", False), (retried, "retry", "HTTP 503")):
            (line,) = log.attempt_ids
            self.assertEqual(
                (line.number, line.outcome, line.response_status, line.failure_reason),
                (1, outcome, 200 if outcome == "done" else 503, reason),
            )
            self.assertEqual(line.attempted_at, log.last_attempt_at)
            self.assertEqual(line.next_retry_at, log.next_retry_at)
            self.assertEqual(line.company_id, log.company_id)
            self.assertEqual(line.create_uid, self.env.user)
            self.assertTrue(line.create_date)
            self.assertEqual(
                json.loads(line.request_headers)["Idempotency-Key"], log.idempotency_key
            )

    def test_a_group_reads_the_request_settings_of_its_configuration_once(self):
        Config = type(self.env["api.sync.config"])
        logs = self.Config.sync_record(self.partners(3), "update")
        with (
            patch.object(
                Config, "_target_policy", autospec=True, wraps=Config._target_policy
            ) as policy,
            patch.object(
                Config, "_secret_values", autospec=True, wraps=Config._secret_values
            ) as secrets,
        ):
            self.deliver(logs)
        self.assertEqual(set(logs.mapped("state")), {"done"})
        self.assertEqual((policy.call_count, secrets.call_count), (1, 1))
        signatures = {request.headers["webhook-signature"] for request in self.receiver.received}
        self.assertEqual(len(signatures), 3, "each body signed on its own")

    def test_events_of_one_record_keep_their_order_in_a_group(self):
        partner, other = self.partners(2)
        first = Outbox(self.env).queue(self.config, partner, "update", ["name"], merge=False)
        partner.name = "Grouped Later"
        second = Outbox(self.env).queue(self.config, partner, "update", ["name"], merge=False)
        third = Outbox(self.env).queue(self.config, other, "update", ["name"], merge=False)
        self.receiver.script(Reply(500))
        self.deliver(first | second | third)
        self.assertEqual((first.state, first.attempt_count), ("pending", 1))
        self.assertEqual((second.state, second.attempt_count), ("pending", 0))
        self.assertEqual(third.state, "done")
        waiting = self.jobs().filtered(lambda job: job.uuid == second.job_uuid)
        self.assertGreaterEqual(waiting.eta, first.next_retry_at, "it waits for the first")
        self.deliver(first | second)
        self.assertEqual((first.state, second.state), ("done", "done"))
        keys = [request.headers["Idempotency-Key"] for request in self.receiver.received]
        expected = [first, third, first, second]
        self.assertEqual(keys, [log.idempotency_key for log in expected])
        self.assertEqual(self.receiver.received[-1].json["data"]["name"], "Grouped Later")
        status = self.env["api.sync.record.status"].get_sync_status(partner, self.config)
        self.assertEqual(status[partner.id]["log_id"], second.id, "the later event wins")

    def test_a_429_holds_the_next_events_of_the_group(self):
        self.receiver.script(Reply(429, headers={"Retry-After": "120"}))
        logs = self.Config.sync_record(self.partners(3), "update")
        before = fields.Datetime.now()
        self.deliver(logs)
        self.assertEqual(len(self.receiver.received), 1, "no request after the Retry-After")
        for log in logs[1:]:
            self.assertEqual((log.state, log.attempt_count), ("pending", 0))
            self.assertGreaterEqual(log.next_retry_at, before + datetime.timedelta(seconds=119))

    def test_a_group_past_its_time_queues_the_events_it_did_not_reach(self):
        logs = self.Config.sync_record(self.partners(3), "update")
        jobs_before = self.jobs()
        with patch.object(delivery, "GROUP_SECONDS", 0):
            self.deliver(logs)
        self.assertEqual(logs.mapped("state"), ["done", "pending", "pending"])
        self.assertEqual(len(self.receiver.received), 1)
        (later,) = self.jobs() - jobs_before
        self.assertEqual(set(logs[1:].mapped("job_uuid")), {later.uuid}, "one job for the rest")

    def test_the_batches_of_one_call_share_a_job(self):
        self.config.batch_size = 2
        partners = self.partners(5)
        jobs_before = self.jobs()
        logs = self.config.send_batch(partners)
        self.assertEqual(len(logs), 3)
        self.assertEqual(len(self.jobs() - jobs_before), 1)
        self.run_jobs()
        self.assertEqual(set(logs.mapped("state")), {"done"})
        carried = [item["record_id"] for r in self.receiver.received for item in r.json["records"]]
        self.assertEqual(carried, partners.ids)
        statuses = self.env["api.sync.record.status"].get_sync_status(partners, self.config)
        self.assertEqual({status["state"] for status in statuses.values()}, {"done"})

    def test_the_statements_of_a_batch_group_do_not_grow_with_its_batches(self):
        self.config.batch_size = 5
        partners = self.partners(25)
        for chunk in (partners[:5], partners[5:]):  # caches filled, names stored
            self.deliver(self.config.send_batch(chunk))
        one, four = self.config.send_batch(partners[:5]), self.config.send_batch(partners[5:])
        self.env.invalidate_all()
        one_count = self.deliver(one)
        self.env.invalidate_all()
        four_count = self.deliver(four)
        self.assertEqual(set((one | four).mapped("state")), {"done"})
        self.assertEqual(len(four), 4)
        self.assertLessEqual(four_count, one_count, "4 batches cost what 1 does")

    def status_statements(self, logs):
        """Deliver ``logs`` as one job; returns the statements it ran on the status table."""
        Cursor, seen = type(self.env.cr), []
        execute = Cursor.execute

        def spy(cr, query, params=None, log_exceptions=True):
            seen.append(str(getattr(query, "code", query)))
            return execute(cr, query, params, log_exceptions)

        with patch.object(Cursor, "execute", spy):
            self.deliver(logs)
        return [query for query in seen if "api_sync_record_status" in query]

    def test_a_batch_reads_and_writes_the_status_of_its_records_once(self):
        self.config.batch_size = 10
        partners = self.partners(10)
        first = self.status_statements(self.config.send_batch(partners))
        self.assertEqual(len(first), 4, "new rows: locked, created, locked, written")
        self.env.invalidate_all()
        again = self.config.send_batch(partners)
        statements = self.status_statements(again)
        self.assertEqual(again.state, "done")
        self.assertEqual(len(statements), 2, "rows there: locked with what they hold, written")
        self.assertIn("FOR UPDATE NOWAIT", statements[0])
        statuses = self.env["api.sync.record.status"].get_sync_status(partners, self.config)
        self.assertEqual({status["log_id"] for status in statuses.values()}, {again.id})

    def test_a_batch_reads_the_names_of_the_versions_it_did_not_deliver_yet(self):
        self.config.batch_size = 2
        partners = self.partners(3)
        self.config.send_batch(partners)
        self.run_jobs()
        rows = self.env["api.sync.record.status"].search(
            [("config_id", "=", self.config.id), ("res_id", "in", partners.ids)]
        )
        self.assertEqual(set(rows.mapped("record_name")), set(partners.mapped("display_name")))
        self.env.cr.execute(
            "UPDATE api_sync_record_status SET record_name = 'Name kept' WHERE id IN %s",
            (tuple(rows.ids),),
        )
        partners[0].name = "Grouped Renamed"
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE res_partner SET write_date = write_date + interval '1 minute' WHERE id = %s",
            (partners[0].id,),
        )
        self.env.invalidate_all()
        self.config.send_batch(partners)
        self.run_jobs()
        names = {row.res_id: row.record_name for row in rows}
        self.assertEqual(names[partners[0].id], "Grouped Renamed", "a new version: read")
        self.assertEqual(
            [names[partner.id] for partner in partners[1:]],
            ["Name kept", "Name kept"],
            "the version delivered last time: its name is not read again",
        )


@tagged("post_install", "-at_install")
class TestGroupLockConflict(LoopbackRequests, CommittedEventsCase):
    """A group meeting a record another delivery holds."""

    tag_count = 3

    def setUp(self):
        self.receiver = Receiver()
        self.receiver.__enter__()
        self.addCleanup(self.receiver.close)
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            config = env["api.sync.config"].browse(self.config_id)
            env["api.sync.record.status"]._ensure(config, self.tag_ids)

    def endpoint_url(self):
        return f"{self.receiver.url}/hook"

    def test_the_others_go_and_the_held_one_is_queued_again(self):
        running = self.transaction()
        running.cr.execute(
            "SELECT id FROM api_sync_record_status WHERE config_id = %s AND res_id = %s FOR UPDATE",
            (self.config_id, self.tag_ids[1]),
        )
        env = self.transaction()
        logs = env["api.sync.log"].browse(self.log_ids)
        with self.assertNoLogs("odoo.sql_db", "ERROR"):
            logs._deliver()
        self.assertEqual(logs.mapped("state"), ["done", "pending", "done"])
        self.assertEqual(logs[1].attempt_count, 0)
        self.assertNotIn(logs[1].job_uuid, self.job_uuids, "queued again, in a job of its own")
        sent = sorted(request.json["record_id"] for request in self.receiver.received)
        self.assertEqual(sent, [self.tag_ids[0], self.tag_ids[2]])
