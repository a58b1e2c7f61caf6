"""The semantics of real-time events, the same for both trigger modes: the generated automation
rules (``rules``) and the configuration's built-in listener (``listener``)."""

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..models.api_sync_config import RECORDS_PER_JOB
from .delivery_common import DeliveryCase, TriggerModeSetup


class TriggerModeCases(TriggerModeSetup):
    """Cases run once per trigger mode (``mode``), on the contacts configuration of
    DeliveryCase (name and email mapped) sending creations, updates and deletions."""

    def logs(self, record):
        self.env.cr.flush()  # as at commit: events are queued just before it
        return self.Log.search(
            [("res_model", "=", record._name), ("res_id", "=", record.id)], order="id"
        )

    def field(self, name, model="res.partner"):
        return self.env["ir.model.fields"]._get(model, name)

    def watch(self, name):
        """Also send updates when ``name`` (not mapped) changes."""
        if self.mode == "rules":
            save_rule = self.config.automation_ids.filtered(
                lambda rule: rule.trigger == "on_create_or_write"
            )
            save_rule.trigger_field_ids |= self.field(name)
        else:
            self.config.listen_field_ids |= self.field(name)

    def test_create_and_update(self):
        partner = self.env["res.partner"].create({"name": "Auto", "email": "a@x.io"})
        (created,) = self.logs(partner)
        self.assertEqual((created.operation, created.changed_fields), ("create", False))
        self.run_jobs()
        partner.write({"name": "Auto 2", "comment": "not mapped"})
        update = self.logs(partner) - created
        self.assertEqual((update.operation, update.changed_fields), ("update", "name"))
        self.run_jobs()
        self.assertEqual(
            [r.json["type"] for r in self.receiver.received],
            ["res.partner.created", "res.partner.updated"],
        )
        self.assertEqual(self.receiver.received[-1].json["changed_fields"], ["name"])

    def test_events_are_queued_in_bulk_at_commit(self):
        count = RECORDS_PER_JOB + 10
        partners = self.env["res.partner"].create([{"name": f"Bulk {i}"} for i in range(count)])
        for partner in partners:
            partner.email = f"{partner.id}@x.io"
        self.assertFalse(self.Log.search([("res_id", "in", partners.ids)]), "not before commit")
        self.env.cr.flush()
        logs = self.Log.search([("res_id", "in", partners.ids)])
        self.assertEqual(len(logs), count, "one event per record for the whole transaction")
        self.assertEqual(set(logs.mapped("operation")), {"create"})
        self.assertEqual(len(set(logs.mapped("job_uuid"))), 2, "grouped jobs")
        self.run_jobs()
        self.assertEqual(len(self.receiver.received), count)

    def test_archived_records_are_sent_as_runs_send_them(self):
        self.watch("active")
        archived = self.env["res.partner"].create({"name": "Archived", "active": False})
        archived.email = "archived@x.io"
        self.assertFalse(self.logs(archived), "runs leave archived records out")
        partner = self.env["res.partner"].create({"name": "Synced", "email": "s@x.io"})
        self.run_jobs()
        partner.active = False  # archived after it was synced: sent
        self.assertEqual(self.logs(partner).mapped("operation"), ["create", "update"])
        self.run_jobs()
        partner.email = "s2@x.io"
        self.assertEqual(len(self.logs(partner)), 3, "as a run sends it")

    def test_one_event_per_record_and_transaction(self):
        partner = self.env["res.partner"].create({"name": "Gen"})
        partner.email = "gen@x.io"
        self.env.cr.flush()  # commit: one event for the transaction's creation and update
        partner.name = "Gen 2"
        partner.email = "gen2@x.io"
        self.env.cr.flush()  # one update carrying both fields
        partner_id = partner.id
        partner.unlink()
        logs = self.Log.search([("res_id", "=", partner_id)], order="id")
        self.assertEqual(logs.mapped("operation"), ["create", "update", "delete"])
        self.assertEqual(logs[1].changed_fields, "email,name")

    def test_a_rolled_back_transaction_queues_nothing(self):
        with self.assertRaises(ZeroDivisionError), self.env.cr.savepoint():
            partner = self.env["res.partner"].create({"name": "Never"})
            partner_id = partner.id
            _boom = 1 / 0
        self.env.cr.flush()
        self.assertFalse(self.Log.search([("res_id", "=", partner_id)]))

    def test_a_save_that_changes_nothing_mapped_sends_nothing(self):
        partner = self.env["res.partner"].create({"name": "Quiet", "email": "q@x.io"})
        self.run_jobs()
        before = self.logs(partner)
        partner.write({"name": "Quiet"})  # same value
        partner.write({"comment": "internal note", "function": "CEO"})  # not mapped
        self.assertEqual(self.logs(partner), before)
        self.run_jobs()
        self.assertEqual(len(self.receiver.received), 1)

    def test_a_watched_unmapped_field_sends_an_update(self):
        self.watch("function")
        partner = self.env["res.partner"].create({"name": "Job"})
        self.env.cr.flush()
        partner.function = "Buyer"
        log = self.logs(partner)[-1]
        self.assertEqual((log.operation, log.changed_fields), ("update", "function"))

    def test_the_domain_is_checked_at_commit(self):
        self.config.domain = "[('email', '!=', False)]"
        outside = self.env["res.partner"].create({"name": "No mail"})
        joining = self.env["res.partner"].create({"name": "Later mail"})
        joining.email = "later@x.io"  # inside the domain when the transaction commits
        self.assertFalse(self.logs(outside))
        self.assertEqual(self.logs(joining).operation, "create")
        outside.name = "Still no mail"
        self.assertFalse(self.logs(outside), "an update outside the domain sends nothing")

    def test_deletion_sends_the_payload_captured_before_unlink(self):
        partner = self.env["res.partner"].create({"name": "Doomed", "email": "d@x.io"})
        partner_id = partner.id
        partner.unlink()
        (log,) = self.Log.search([("res_id", "=", partner_id)])
        self.assertEqual(log.operation, "delete")
        self.run_jobs()
        (request,) = self.receiver.received
        self.assertEqual(request.json["type"], "res.partner.deleted")
        self.assertEqual(request.json["data"], {"name": "Doomed", "email": "d@x.io"})

    def test_archive_sends_an_update(self):
        if self.mode == "rules":  # a rule of its own; the listener always reacts to archiving
            self.env["base.automation"].create(
                {
                    "name": "Sync on archive",
                    "model_id": self.partner_model.id,
                    "trigger": "on_archive",
                    "action_server_ids": [
                        Command.create(
                            {
                                "name": "Sync on archive",
                                "model_id": self.partner_model.id,
                                "state": "api_sync",
                                "api_sync_config_id": self.config.id,
                            }
                        )
                    ],
                }
            )
        partner = self.env["res.partner"].create({"name": "Old"})
        self.env.cr.flush()
        partner.active = False
        log = self.logs(partner)[-1]
        self.assertEqual((log.operation, log.changed_fields), ("update", "active"))

    def test_an_archived_configuration_sends_nothing(self):
        self.config.active = False
        partner = self.env["res.partner"].create({"name": "Off"})
        partner.email = "off@x.io"
        partner_id = partner.id
        partner.unlink()
        self.env.cr.flush()
        self.assertFalse(self.Log.search([("res_id", "=", partner_id)]))


@tagged("post_install", "-at_install")
class TestRuleMode(TriggerModeCases, DeliveryCase):
    mode = "rules"


@tagged("post_install", "-at_install")
class TestListenerMode(TriggerModeCases, DeliveryCase):
    mode = "listener"

    def test_no_rule_is_needed_nor_generated(self):
        self.assertFalse(self.config.with_context(active_test=False).automation_ids)
        with self.assertRaisesRegex(UserError, "listener"):
            self.config._generate_automation_rules(True, True, True)

    def test_switching_to_the_listener_archives_the_generated_rules(self):
        self.config.trigger_mode = "rules"
        rules = self.config._generate_automation_rules(True, True, True)
        self.config.trigger_mode = "listener"
        self.assertFalse(any(rules.mapped("active")), "no event twice")
        partner = self.env["res.partner"].create({"name": "Once"})
        self.assertEqual(len(self.logs(partner)), 1)
        self.config.active = False
        self.config.active = True
        self.assertFalse(any(rules.mapped("active")), "still off when the config comes back")
        self.config.trigger_mode = "rules"
        self.assertTrue(all(rules.mapped("active")), "back to the rules")

    def test_two_listeners_each_get_their_own_fields(self):
        other = self.Config.create(
            {
                "name": "Phones",
                "model_id": self.partner_model.id,
                "endpoint_url": f"{self.receiver.url}/phones",
                "company_id": False,
                "trigger_mode": "listener",
            }
        )
        self.env["api.sync.field.mapping"].create(
            {"config_id": other.id, "source_path": "phone", "target_key": "phone"}
        )
        partner = self.env["res.partner"].create({"name": "Two"})
        self.env.cr.flush()
        partner.phone = "+1 555"
        partner.email = "two@x.io"
        self.env.cr.flush()
        updates = self.Log.search([("res_id", "=", partner.id), ("operation", "=", "update")])
        self.assertEqual(
            {(log.config_id, log.changed_fields) for log in updates},
            {(other, "phone"), (self.config, "email")},
        )

    def test_models_without_a_listener_are_untouched(self):
        country = self.env["res.country"].create({"name": "Quiet Land", "code": "QX"})

        def queries_of_a_write(name):
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            country.write({"name": name})
            self.env.flush_all()
            return self.env.cr.sql_log_count - before

        self.config._listened_models()  # a cache filled once, not per write
        with_listener = queries_of_a_write("Quiet Land 2")
        self.config.active = False
        self.config._listened_models()
        without = queries_of_a_write("Quiet Land 3")
        self.assertEqual(with_listener, without)
        self.env.cr.flush()
        self.assertFalse(self.Log.search([("res_model", "=", "res.country")]))
