import datetime

from odoo import fields
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..engine.receiver import Reply
from .delivery_common import RunCase

LOG_MODULE = "odoo.addons.api_sync.models.api_sync_log"
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, 123456)


@tagged("post_install", "-at_install")
class TestBatchSync(RunCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.config.write(
            {"domain": "[('ref', '=', 'BATCH')]", "batch_size": 2, "delivery_mode": "batch"}
        )
        cls.partners = cls.env["res.partner"].create(
            [{"name": f"Batch {i}", "ref": "BATCH"} for i in range(5)]
        )

    def set_write_dates(self, records, *dates):
        for record, date in zip(records, dates, strict=True):
            self.env.cr.execute(
                "UPDATE res_partner SET write_date = %s WHERE id = %s", (date, record.id)
            )
        records.invalidate_recordset(["write_date"])

    def distinct_dates(self):
        self.set_write_dates(self.partners, *(T0 + datetime.timedelta(minutes=i) for i in range(5)))

    def sent_ids(self):
        """Record ids in the order the receiver got them (batch and record events)."""
        ids = []
        for request in self.receiver.received:
            body = request.json
            ids += [item["record_id"] for item in body.get("records", [])] or [body["record_id"]]
        return ids

    def run_now(self):
        run = self.env["api.sync.run"].browse(self.config.action_run_now()["res_id"])
        self.assertTrue(run)
        return run

    def test_the_batches_of_a_run_share_jobs(self):
        self.distinct_dates()
        before = self.jobs()
        run = self.run_now()
        self.assertEqual(len(run.log_ids), 3, "5 records in chunks of 2")
        (job,) = self.jobs() - before
        self.assertEqual(set(run.log_ids.mapped("job_uuid")), {job.uuid})
        self.run_jobs()
        self.assertEqual((run.state, run.count_sent), ("success", 5))
        self.assertEqual(self.sent_ids(), self.partners.ids, "in (write_date, id) order")

    def test_incremental_runs(self):
        self.distinct_dates()
        run = self.run_now()
        self.assertEqual((run.state, run.count_selected), ("running", 5))
        self.run_jobs()
        self.assertEqual((run.state, run.count_sent, run.count_failed), ("success", 5, 0))
        self.assertEqual(len(self.receiver.received), 3, "5 records in chunks of 2")
        self.assertEqual(self.sent_ids(), self.partners.ids, "in (write_date, id) order")
        last = self.partners[-1]
        self.assertEqual(
            (self.config.checkpoint_date, self.config.checkpoint_res_id),
            (last.write_date, last.id),
        )
        self.assertTrue(run.checkpoint_after.endswith(f"#{last.id}"))
        self.assertEqual(self.config.last_success_at, run.date_end)

        self.receiver.received.clear()
        changed = self.partners[1]
        changed.name = "Batch changed"
        self.set_write_dates(changed, T0 + datetime.timedelta(hours=1))
        second = self.run_now()
        self.run_jobs()
        self.assertEqual(
            (second.state, second.count_selected, second.count_sent), ("success", 1, 1)
        )
        self.assertEqual(self.sent_ids(), changed.ids)
        self.assertEqual(
            self.receiver.received[0].json["records"][0]["data"]["name"], "Batch changed"
        )

        self.receiver.received.clear()
        third = self.run_now()
        self.assertEqual((third.state, third.count_selected), ("success", 0))
        self.assertFalse(self.receiver.received)

    def test_equal_write_dates_are_ordered_by_id_and_none_is_skipped(self):
        self.set_write_dates(self.partners, *[T0] * 5)
        self.config.write({"checkpoint_date": T0, "checkpoint_res_id": self.partners[1].id})
        run = self.run_now()
        self.run_jobs()
        self.assertEqual(run.count_selected, 3)
        self.assertEqual(self.sent_ids(), self.partners[2:].ids)

    @mute_logger(LOG_MODULE)
    def test_failed_chunk_stops_the_checkpoint_and_the_next_run_recovers(self):
        self.distinct_dates()
        self.receiver.script(Reply(200), Reply(400))  # the 2nd chunk fails for good
        run = self.run_now()
        self.run_jobs()
        self.assertEqual((run.state, run.count_sent, run.count_failed), ("partial", 3, 2))
        self.assertEqual(
            self.config.checkpoint_res_id,
            self.partners[1].id,
            "the checkpoint stops before the failed chunk",
        )
        recovery = self.run_now()
        self.run_jobs()
        self.assertEqual(recovery.state, "success")
        self.assertEqual(recovery.count_selected, 3)
        self.assertEqual(recovery.count_skipped, 1, "the 5th, delivered in its version, is skipped")
        self.assertEqual(self.config.checkpoint_res_id, self.partners[-1].id)
        done = [
            record_id
            for request in self.receiver.received
            if request is not self.receiver.received[1]
            for record_id in [item["record_id"] for item in request.json["records"]]
        ]
        self.assertEqual(sorted(done), sorted(self.partners.ids), "each record delivered once")

    def test_records_changed_during_a_run_are_sent_by_the_next(self):
        self.distinct_dates()
        run = self.run_now()
        later = self.partners[0]
        later.name = "Changed while running"
        self.set_write_dates(later, T0 + datetime.timedelta(hours=2))
        self.run_jobs()
        self.assertEqual(run.state, "success")
        first_body = self.receiver.received[0].json
        self.assertEqual(
            first_body["records"][0]["data"]["name"],
            "Changed while running",
            "a delivery sends the record as it is when it is sent",
        )
        self.receiver.received.clear()
        follow_up = self.run_now()
        self.run_jobs()
        self.assertEqual(follow_up.count_selected, 1, "the change is picked up, not skipped")
        self.assertEqual(follow_up.count_skipped, 1, "already delivered in that version")
        self.assertFalse(self.receiver.received, "and not sent twice")

    def test_overlapping_run_is_skipped(self):
        first = self.run_now()
        # a person clicking Run Now is told, and no run is opened
        answer = self.config.action_run_now()
        self.assertEqual(answer["tag"], "display_notification")
        self.assertIn("still delivering", answer["params"]["message"])
        self.assertEqual(self.env["api.sync.run"].search_count([]), 1)
        # the schedule records the skipped run
        self.config._run_scheduled()
        second = self.env["api.sync.run"].search([], limit=1)
        self.assertEqual(second.state, "skipped")
        self.assertIn("still delivering", second.note)
        self.run_jobs()
        self.assertEqual(first.state, "success")
        self.assertEqual(sorted(self.sent_ids()), sorted(self.partners.ids))

    def test_interrupted_run_is_detected_and_resumed(self):
        self.distinct_dates()
        crashed = self.run_now()
        # the worker died mid-delivery: queue_job leaves its jobs "started" for good
        self.jobs().write(
            {
                "state": "started",
                "date_started": fields.Datetime.now() - datetime.timedelta(hours=1),
            }
        )
        resumed = self.run_now()
        self.assertEqual(crashed.state, "failed")
        self.assertIn("Interrupted", crashed.note)
        self.assertEqual(set(crashed.log_ids.mapped("state")), {"cancelled"})
        self.assertEqual(resumed.count_selected, 5)
        self.run_jobs()
        self.assertEqual(resumed.state, "success")
        self.assertEqual(self.sent_ids(), self.partners.ids)

    def test_a_started_job_within_the_time_limit_keeps_the_run_alive(self):
        first = self.run_now()
        self.jobs().write({"state": "started", "date_started": fields.Datetime.now()})
        self.config._run_scheduled()
        self.assertEqual(self.env["api.sync.run"].search([], limit=1).state, "skipped")
        self.assertEqual(first.state, "running")

    @mute_logger(LOG_MODULE)
    def test_a_record_that_cannot_be_mapped_does_not_block_its_chunk(self):
        self.distinct_dates()
        self.add_line("comment", "comment", required=True)
        self.partners.write({"comment": "ok"})
        self.distinct_dates()
        self.partners[0].comment = False
        run = self.run_now()
        self.run_jobs()
        self.assertEqual(self.sent_ids(), self.partners[1:].ids, "the others are sent")
        failed = run.log_ids.filtered(lambda log: log.state == "failed")
        self.assertEqual((failed.res_id, failed.error_class), (self.partners[0].id, "MappingError"))
        self.assertEqual((run.state, run.count_sent, run.count_failed), ("partial", 4, 1))
        self.assertEqual(
            self.config.checkpoint_res_id,
            self.partners[-1].id,
            "the record comes back when it is edited; it does not block the others",
        )

    def test_records_of_another_company_are_not_selected(self):
        other = self.env["res.company"].create({"name": "Other Sync Co"})
        self.config.company_id = self.env.company
        self.partners[:2].company_id = other
        run = self.run_now()
        self.run_jobs()
        self.assertEqual(run.count_selected, 3)
        self.assertEqual(sorted(self.sent_ids()), sorted(self.partners[2:].ids))

    def test_batch_and_record_mode_request_counts(self):
        run = self.run_now()
        self.run_jobs()
        self.assertEqual((run.log_count, len(self.receiver.received)), (3, 3))
        self.receiver.received.clear()
        self.config.delivery_mode = "record"
        run = self.config.sudo()._start_run("full_resync")
        self.run_jobs()
        self.assertEqual((run.state, run.log_count, len(self.receiver.received)), ("success", 5, 5))
        self.assertEqual(
            {request.json["type"] for request in self.receiver.received}, {"res.partner.updated"}
        )

    def test_full_resync_sends_everything_again(self):
        self.run_now()
        self.run_jobs()
        self.receiver.received.clear()
        run = self.env["api.sync.run"].browse(self.config.action_full_resync()["res_id"])
        self.assertEqual((run.trigger, run.checkpoint_before), ("full_resync", False))
        self.run_jobs()
        self.assertEqual(run.state, "success")
        self.assertEqual(sorted(self.sent_ids()), sorted(self.partners.ids))

    def test_settle_time_keeps_fresh_records_for_the_next_run(self):
        self.env["ir.config_parameter"].set_param("api_sync.batch_settle_seconds", "3600")
        self.set_write_dates(self.partners, *[fields.Datetime.now()] * 5)
        run = self.run_now()
        self.assertEqual((run.state, run.count_selected), ("success", 0))

    def test_schedule_owns_a_cron(self):
        self.config.write(
            {
                "schedule_active": True,
                "schedule_interval_number": 15,
                "schedule_interval_type": "minutes",
            }
        )
        cron = self.config.cron_id
        self.assertTrue(cron.active)
        self.assertEqual((cron.interval_number, cron.interval_type), (15, "minutes"))
        cron.ir_actions_server_id.run()
        run = self.config.run_ids
        self.assertEqual((len(run), run.trigger), (1, "cron"))
        self.config.active = False
        self.assertFalse(cron.active, "archiving the config stops its schedule")
        with self.assertRefused("Every"):
            self.config.write({"active": True, "schedule_interval_number": 0})

    def test_log_retention_keeps_failed_logs(self):
        self.config.log_retention_days = 10
        logs = self.env["api.sync.log"].create(
            [
                {
                    "config_id": self.config.id,
                    "operation": "update",
                    "state": state,
                    "idempotency_key": f"old-{state}",
                }
                for state in ("done", "failed", "cancelled", "pending")
            ]
        )
        recent = logs[0].copy({"idempotency_key": "recent-done"})
        old = fields.Datetime.now() - datetime.timedelta(days=11)
        self.env.cr.execute(
            "UPDATE api_sync_log SET create_date = %s WHERE id IN %s", (old, tuple(logs.ids))
        )
        self.Config._cron_cleanup_logs()
        self.assertEqual(
            sorted((logs | recent).exists().mapped("idempotency_key")),
            ["old-failed", "old-pending", "recent-done"],
        )

    def test_stale_schedule_is_flagged_with_an_activity(self):
        self.config.write(
            {
                "schedule_active": True,
                "schedule_interval_number": 1,
                "schedule_interval_type": "hours",
                "responsible_id": self.env.uid,
                "last_success_at": fields.Datetime.now() - datetime.timedelta(hours=4),
            }
        )
        self.Config._cron_check_stale()
        self.assertTrue(self.config.is_stale)
        self.assertIn(self.config, self.Config.search([("is_stale", "=", True)]))
        self.assertEqual(len(self.config.activity_ids), 1)
        self.Config._cron_check_stale()
        self.assertEqual(len(self.config.activity_ids), 1, "one activity, not one per check")
        self.run_now()
        self.run_jobs()
        self.assertFalse(self.config.is_stale, "a successful run clears the flag")
        self.config.last_success_at = fields.Datetime.now() - datetime.timedelta(hours=2)
        self.Config._cron_check_stale()
        self.assertFalse(self.config.is_stale)
