"""Issue 11: what people watching syncs hit on the screens."""

import json

from odoo.tests import Form, tagged
from odoo.tools import mute_logger
from odoo.tools.safe_eval import safe_eval

from ..engine.receiver import Reply
from .delivery_common import RunCase

LOG_MODULE = "odoo.addons.api_sync.models.api_sync_log"


@tagged("post_install", "-at_install")
class TestScreens(RunCase):
    def run_now(self):
        return self.env["api.sync.run"].browse(self.config.action_run_now()["res_id"])

    def age(self, records, minutes=1):
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE res_partner SET write_date = now() at time zone 'UTC' - %s * interval "
            "'1 minute' WHERE id IN %s",
            (minutes, tuple(records.ids)),
        )
        records.invalidate_recordset(["write_date"])

    # -- bug 2: runs select what the domain selects, archived only when asked -----------------

    def test_runs_leave_archived_records_out_unless_the_domain_asks(self):
        self.config.domain = "[('ref', '=', 'ARCH')]"
        live, archived = self.env["res.partner"].create(
            [{"name": "Live", "ref": "ARCH"}, {"name": "Archived", "ref": "ARCH", "active": False}]
        )
        self.age(live | archived, 10)
        self.run_now()
        self.run_jobs()
        self.assertEqual([r.json["record_id"] for r in self.receiver.received], [live.id])
        self.assertEqual(
            self.env["res.partner"].search_count([("ref", "=", "ARCH")]), 1, "as Odoo counts"
        )
        # archiving a record that was synced sends it once, so the other side can deactivate it
        live.active = False
        self.age(live, 5)
        self.receiver.received.clear()
        self.run_now()
        self.run_jobs()
        (request,) = self.receiver.received
        self.assertEqual(request.json["record_id"], live.id)
        self.receiver.received.clear()
        self.run_now()
        self.run_jobs()
        self.assertFalse(self.receiver.received, "sent once")
        # a domain that asks for archived records gets them
        self.config.domain = "[('ref', '=', 'ARCH'), ('active', 'in', [True, False])]"
        self.config.action_full_resync()
        self.run_jobs()
        sent = {r.json["record_id"] for r in self.receiver.received}
        self.assertEqual(sent, {live.id, archived.id})

    # -- bug 3: generating rules twice --------------------------------------------------------

    def test_generating_rules_twice_updates_them(self):
        first = self.config._generate_automation_rules(True, True, True)
        second = self.config._generate_automation_rules(True, True, True)
        self.assertEqual(first, second)
        self.assertEqual(len(self.config.automation_ids), 2)
        partner = self.env["res.partner"].create({"name": "Once"})
        self.env.flush_all()
        partner.unlink()
        deletes = self.env["api.sync.log"].search(
            [("res_id", "=", partner.id), ("operation", "=", "delete")]
        )
        self.assertEqual(len(deletes), 1)
        # a narrower choice replaces the save rule instead of adding one
        self.config._generate_automation_rules(True, False, False)
        self.assertEqual(self.config.automation_ids.mapped("trigger"), ["on_create"])

    # -- bug 4: record status and a record's logs ---------------------------------------------

    def test_batch_deliveries_show_on_record_status_and_the_record_logs(self):
        self.config.write({"domain": "[('ref', '=', 'STAT')]", "delivery_mode": "batch"})
        partner = self.env["res.partner"].create({"name": "Batched Bob", "ref": "STAT"})
        self.age(partner)
        self.run_now()
        self.run_jobs()
        status = self.env["api.sync.record.status"].search([("res_id", "=", partner.id)])
        self.assertEqual(status.record_name, "Batched Bob")
        self.assertEqual(status.record_ref, partner)
        self.assertNotIn(status.last_log_id.idempotency_key, status.last_log_id.display_name)
        action = self.env["ir.actions.act_window"].search(
            [("res_model", "=", "api.sync.log"), ("binding_model_id.model", "=", "res.partner")]
        )
        domain = safe_eval(action.domain, {"active_ids": partner.ids})
        self.assertEqual(
            self.env["api.sync.log"].search(domain), status.last_log_id, "batch delivery listed"
        )

    def test_log_titles_name_the_record_and_operation(self):
        partner = self.env["res.partner"].create({"name": "Titled Tom"})
        log = self.Config.sync_record(partner, "update")
        self.run_jobs()
        self.assertIn("Titled Tom", log.display_name)
        self.assertIn("Update", log.display_name)
        self.assertEqual(log.record_ref, partner)
        partner.unlink()
        log.invalidate_recordset()
        self.assertFalse(log.record_ref, "no link to a deleted record (the form shows its id)")

    # -- bug 6: lists, smart buttons, duplication ---------------------------------------------

    def test_grouped_lists_do_not_sum_statuses_or_attempts(self):
        described = self.env["api.sync.log"].fields_get(
            ["response_status", "attempt_count", "attempts_allowed"], ["aggregator"]
        )
        for fname, description in described.items():
            self.assertFalse(description.get("aggregator"), fname)

    def test_failed_button_lists_failed_logs_only(self):
        action = self.config.action_view_failed_logs()
        domain = action["domain"]
        self.assertIn(("state", "=", "failed"), [tuple(leaf) for leaf in domain])

    def test_duplicate_gets_a_new_name_and_no_credentials(self):
        self.config.api_key = "key-1"
        copy = self.config.copy()
        self.assertNotEqual(copy.name, self.config.name)
        for fname in ("auth_token", "auth_password", "api_key", "signing_secret"):
            self.assertFalse(copy[fname], fname)
        self.assertEqual(len(copy.mapping_ids), len(self.config.mapping_ids))

    # -- 10, 11: failures a person understands, the status on the record ----------------------

    @mute_logger(LOG_MODULE)
    def test_failures_read_as_plain_reasons_on_the_log_and_the_record(self):
        partner = self.env["res.partner"].create({"name": "Failing Fay"})
        self.config.write({"endpoint_url": "http://127.0.0.1:9/hook", "max_attempts": 1})
        log = self.Config.sync_record(partner, "update")
        self.run_jobs(once=True)
        # an unreachable endpoint fails events after Give Up After (its creation event too)
        self.age_events(self.env["api.sync.log"].search([("res_id", "=", partner.id)]))
        self.run_jobs()
        self.assertEqual(log.failure_reason, "Connection refused by 127.0.0.1:9")
        self.assertFalse(log.response_status)
        note = partner.message_ids[:1]
        self.assertEqual(note.author_id, self.env.ref("base.partner_root"))
        self.assertIn("Connection refused by 127.0.0.1:9", note.body)
        self.assertNotIn(log.idempotency_key, note.body)
        self.assertIn(f"/odoo/action-api_sync.action_api_sync_log/{log.id}", note.body)
        self.config.endpoint_url = f"{self.receiver.url}/hooks/contacts"
        self.receiver.script(Reply(422, body='{"error": "email is invalid"}'))
        log = self.Config.sync_record(partner, "update", ["email"])
        self.run_jobs()
        self.assertEqual(log.failure_reason, 'HTTP 422: {"error": "email is invalid"}')

    def test_synced_records_show_their_sync_status_on_their_form(self):
        arch = self.env["res.partner"].get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn('name="api_sync_status"', arch)
        arch = self.env["res.country"].get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertNotIn("api_sync_status", arch, "models without configuration are untouched")
        partner = self.env["res.partner"].create({"name": "Status Sue"})
        Status = self.env["api.sync.record.status"]
        self.assertIsNone(Status.get_status_summary("res.partner", partner.id))
        self.Config.sync_record(partner, "update")
        self.run_jobs()
        summary = Status.get_status_summary("res.partner", partner.id)
        self.assertEqual((summary["state"], summary["config"]), ("done", self.config.name))
        action = Status.action_open_history("res.partner", partner.id)
        self.assertEqual(self.env["api.sync.log"].search(action["domain"]).res_id, partner.id)
        self.config.active = False
        arch = self.env["res.partner"].get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertNotIn("api_sync_status", arch)

    # -- 13: mapping without knowing technical names ------------------------------------------

    def test_picking_a_field_suggests_its_transform(self):
        form = Form(self.config)
        with form.mapping_ids.new() as line:
            line.source_path = "parent_id"
            self.assertEqual(line.transform, "many2one_id")
            line.source_path = "create_date"
            self.assertEqual(line.transform, "datetime")
            line.source_path = "category_id"
            self.assertEqual(line.transform, "x2many_ids")
            line.target_key = "tags"
        form.save()
        self.assertEqual(self.config.mapping_ids[-1:].transform, "x2many_ids")

    # -- 12: bulk actions do what they can -----------------------------------------------------

    @mute_logger(LOG_MODULE)
    def test_bulk_retry_and_cancel_act_on_what_they_can(self):
        self.receiver.script(Reply(400))
        partners = self.env["res.partner"].create([{"name": "Bulk A"}, {"name": "Bulk B"}])
        failed = self.Config.sync_record(partners[0], "update")
        self.run_jobs()
        pending = self.Config.sync_record(partners[1], "update")
        answer = (failed | pending).action_retry()
        self.assertIn("1 event(s) queued again", answer["params"]["message"])
        self.assertIn("1 left as they were", answer["params"]["message"])
        self.assertEqual((failed.state, pending.state), ("pending", "pending"))
        answer = (failed | pending).action_cancel()
        self.assertIn("2 event(s) cancelled", answer["params"]["message"])

    # -- 9: every attempt kept ----------------------------------------------------------------

    @mute_logger(LOG_MODULE)
    def test_every_attempt_is_kept_with_masked_headers(self):
        self.receiver.script(Reply(500, body="busy"))
        partner = self.env["res.partner"].create({"name": "Attempt Amy"})
        log = self.Config.sync_record(partner, "update")
        self.run_jobs()
        self.assertEqual(log.state, "done")
        second, first = log.attempt_ids  # newest first
        self.assertEqual((first.number, first.outcome, first.response_status), (1, "retry", 500))
        self.assertEqual((first.failure_reason, first.response_preview), ("HTTP 500", "busy"))
        self.assertTrue(first.next_retry_at)
        self.assertEqual((second.number, second.outcome, second.response_status), (2, "done", 200))
        headers = json.loads(first.request_headers)
        self.assertEqual(headers["Authorization"], "Bearer ***")
        self.assertEqual(headers["webhook-signature"], "v1,***")
        self.assertEqual(headers["Idempotency-Key"], log.idempotency_key)
        self.assertNotIn("tok-SECRET-bearer", first.request_headers)
        # nothing answered: no status, no duration
        self.config.write({"endpoint_url": "http://127.0.0.1:9/hook", "max_attempts": 1})
        log = self.Config.sync_record(partner, "update", ["name"])
        self.run_jobs(once=True)
        (attempt,) = log.attempt_ids
        self.assertEqual((attempt.response_status, attempt.duration_ms), (0, 0))
        self.assertEqual(attempt.failure_reason, "Connection refused by 127.0.0.1:9")

    # -- 12: open views follow what changes ----------------------------------------------------

    def test_open_views_are_told_what_changed(self):
        partner = self.env["res.partner"].create({"name": "Watched Will"})
        log = self.Config.sync_record(partner, "update")
        self.run_jobs()
        self.env.cr.precommit.run()  # as at commit
        group = self.env.ref("api_sync.group_api_sync_user")
        notes = self.env["bus.bus"].sudo().search([("message", "like", "api_sync/updated")])
        channels = {tuple(json.loads(note.channel)[1:]) for note in notes}
        self.assertEqual(channels, {("res.groups", group.id)}, "API Sync users only")
        payloads = [json.loads(note.message) for note in notes]
        self.assertIn(
            {"type": "api_sync/updated", "payload": {"model": "api.sync.log", "ids": log.ids}},
            payloads,
        )
