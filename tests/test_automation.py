from odoo import Command
from odoo.tests import new_test_user, tagged

from ..models import compat
from .delivery_common import DeliveryCase


@tagged("post_install", "-at_install")
class TestAutomation(DeliveryCase):
    """Syncs wired through real ``base.automation`` rules and the "Sync to external API" action
    (what both trigger modes share is in test_trigger_modes)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Log = cls.env["api.sync.log"]
        cls.Rule = cls.env["base.automation"]

    def rule(self, trigger, model=None, **values):
        model = model or self.partner_model
        config = values.pop("config", self.config)
        return self.Rule.create(
            {
                "name": f"Sync {trigger}",
                "model_id": model.id,
                "trigger": trigger,
                "action_server_ids": [
                    Command.create(
                        {
                            "name": f"Sync {trigger}",
                            "model_id": model.id,
                            "state": "api_sync",
                            "api_sync_config_id": config.id,
                        }
                    )
                ],
                **values,
            }
        )

    def logs(self, record):
        self.env.cr.flush()  # as at commit: rules queue their events just before it
        return self.Log.search(
            [("res_model", "=", record._name), ("res_id", "=", record.id)], order="id"
        )

    def field(self, name, model="res.partner"):
        return self.env["ir.model.fields"]._get(model, name)

    def test_the_form_says_when_no_rule_sends_the_changes(self):
        config = self.config.with_user(
            new_test_user(self.env, "rules_manager", groups="api_sync.group_api_sync_manager")
        )
        self.assertEqual(config.trigger_mode, "rules")
        self.assertTrue(config.no_rule_sends, "the default trigger mode, no rule yet")
        arch = config.get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn("No automation rule sends", arch)
        rules = self.config._generate_automation_rules(True, True, True)
        self.env.invalidate_all()
        self.assertFalse(config.no_rule_sends)
        rules.active = False
        self.env.invalidate_all()
        self.assertTrue(config.no_rule_sends, "archived rules send nothing")
        self.config.trigger_mode = "listener"
        self.assertFalse(config.no_rule_sends, "the listener sends them")

    def test_watched_fields_filter_the_rule(self):
        self.rule("on_write", trigger_field_ids=[Command.set(self.field("email").ids)])
        partner = self.env["res.partner"].create({"name": "Watch", "email": "w@x.io"})
        self.assertFalse(self.logs(partner), "no creation trigger")
        partner.name = "Watch 2"  # mapped but not watched: the rule does not fire
        self.assertFalse(self.logs(partner))
        partner.email = "w2@x.io"
        (log,) = self.logs(partner)
        self.assertEqual((log.operation, log.changed_fields), ("update", "email"))

    def test_state_transition_with_before_and_apply_domains(self):
        """Like "sale.order goes from draft to sale", on mail.mail going outgoing -> sent."""
        mail_model = self.env["ir.model"]._get("mail.mail")
        config = self.Config.create(
            {
                "name": "Sent mails",
                "model_id": mail_model.id,
                "endpoint_url": f"{self.receiver.url}/mails",
                "company_id": False,
            }
        )
        self.env["api.sync.field.mapping"].create(
            {"config_id": config.id, "source_path": "state", "target_key": "state"}
        )
        self.rule(
            "on_create_or_write",
            model=mail_model,
            config=config,
            filter_pre_domain="[('state', '=', 'outgoing')]",
            filter_domain="[('state', '=', 'sent')]",
            trigger_field_ids=[Command.set(self.field("state", "mail.mail").ids)],
        )
        mail = self.env["mail.mail"].create({"subject": "Hi", "state": "outgoing"})
        cancelled = self.env["mail.mail"].create({"subject": "Bye", "state": "outgoing"})
        self.assertFalse(self.logs(mail), "created outgoing: not the transition")
        cancelled.state = "cancel"
        self.assertFalse(self.logs(cancelled), "outgoing -> cancel is not the transition")
        mail.state = "sent"
        (log,) = self.logs(mail)
        self.assertEqual((log.operation, log.changed_fields), ("update", "state"))
        mail.state = "exception"
        mail.state = "sent"
        self.assertEqual(len(self.logs(mail)), 1, "sent again, but not from outgoing")
        self.run_jobs()
        self.assertEqual(self.receiver.received[-1].json["data"], {"state": "sent"})

    def test_state_set_trigger(self):
        mail_model = self.env["ir.model"]._get("mail.mail")
        config = self.Config.create(
            {
                "name": "Mails",
                "model_id": mail_model.id,
                "endpoint_url": f"{self.receiver.url}/mails",
                "company_id": False,
            }
        )
        state_field = self.field("state", "mail.mail")
        self.rule(
            "on_state_set",
            model=mail_model,
            config=config,
            trigger_field_ids=[Command.set(state_field.ids)],
            trg_selection_field_id=self.env["ir.model.fields.selection"]
            .search([("field_id", "=", state_field.id), ("value", "=", "sent")])
            .id,
        )
        mail = self.env["mail.mail"].create({"subject": "Hi", "state": "outgoing"})
        mail.state = "exception"
        self.assertFalse(self.logs(mail))
        mail.state = "sent"
        (log,) = self.logs(mail)
        self.assertEqual(log.operation, "update")

    def test_time_based_trigger_sends_updates(self):
        partner = self.env["res.partner"].create({"name": "Timer"})
        # created a minute ago: the scheduler takes the records created before it runs (19.0
        # runs at the transaction's time, the test's creation time)
        self.env.cr.execute(
            "UPDATE res_partner SET create_date = create_date - interval '1 minute' WHERE id = %s",
            (partner.id,),
        )
        partner.invalidate_recordset(["create_date"])
        self.rule(
            "on_time_created",
            trg_date_range=0,
            trg_date_range_type="minutes",
            filter_domain=f"[('id', '=', {partner.id})]",
        )
        compat.run_time_based_rules(self.env)
        (log,) = self.logs(partner)
        self.assertEqual((log.operation, log.changed_fields), ("update", False))

    def test_contextual_server_action_on_selected_records(self):
        action = self.env["ir.actions.server"].create(
            {
                "name": "Push to CRM",
                "model_id": self.partner_model.id,
                "state": "api_sync",
                "api_sync_config_id": self.config.id,
            }
        )
        action.create_action()
        partners = self.env["res.partner"].create([{"name": "P1"}, {"name": "P2"}])
        action.with_context(
            active_model="res.partner", active_ids=partners.ids, active_id=partners[0].id
        ).run()
        self.env.cr.flush()
        logs = self.Log.search([("res_id", "in", partners.ids)])
        self.assertEqual(set(logs.mapped("operation")), {"update"})
        self.assertEqual(len(logs), 2)

    def test_python_code_rules_can_call_the_service(self):
        self.Rule.create(
            {
                "name": "Code sync",
                "model_id": self.partner_model.id,
                "trigger": "on_create_or_write",
                "action_server_ids": [
                    Command.create(
                        {
                            "name": "Code sync",
                            "model_id": self.partner_model.id,
                            "state": "code",
                            "code": "env['api.sync.config'].sync_record(record, 'update')",
                        }
                    )
                ],
            }
        )
        partner = self.env["res.partner"].create({"name": "Coded"})
        self.assertEqual(self.logs(partner).operation, "update")

    def test_action_needs_a_config_of_its_model(self):
        with self.assertRefused("choose the API Sync Configuration"):
            self.env["ir.actions.server"].create(
                {"name": "x", "model_id": self.partner_model.id, "state": "api_sync"}
            )
        with self.assertRefused("syncs res.partner"):
            self.env["ir.actions.server"].create(
                {
                    "name": "x",
                    "model_id": self.env["ir.model"]._get("res.country").id,
                    "state": "api_sync",
                    "api_sync_config_id": self.config.id,
                }
            )

    def test_generated_rules_follow_the_config(self):
        wizard = self.env["api.sync.automation.wizard"].create(
            {"config_id": self.config.id, "on_create": True, "on_update": True, "on_delete": True}
        )
        wizard.action_generate()
        rules = self.config.automation_ids
        self.assertEqual(sorted(rules.mapped("trigger")), ["on_create_or_write", "on_unlink"])
        save_rule = rules.filtered(lambda rule: rule.trigger == "on_create_or_write")
        self.assertEqual(set(save_rule.trigger_field_ids.mapped("name")), {"name", "email"})
        self.assertEqual(rules.action_server_ids.api_sync_config_id, self.config)
        self.assertEqual(self.config.automation_count, 2)

        partner = self.env["res.partner"].create({"name": "Gen"})
        partner.email = "gen@x.io"
        self.env.cr.flush()  # commit: one event for the transaction's creation and update
        partner_id = partner.id
        partner.unlink()
        operations = self.Log.search([("res_id", "=", partner_id)], order="id").mapped("operation")
        self.assertEqual(operations, ["create", "delete"], "the update merged into the create")

        self.config.active = False
        self.assertFalse(any(rules.mapped("active")), "archiving the config disables its rules")
        self.assertFalse(self.Config.sync_record(self.company, "update"))
        self.config.active = True
        self.assertTrue(all(rules.mapped("active")))

    def test_only_create_or_only_update_rules(self):
        self.config._generate_automation_rules(True, False, False)
        self.assertEqual(self.config.automation_ids.trigger, "on_create")
        self.config.automation_ids.unlink()
        self.config._generate_automation_rules(False, True, False)
        self.assertEqual(self.config.automation_ids.trigger, "on_write")

    def test_log_context_action_per_configured_model(self):
        Action = self.env["ir.actions.act_window"]

        def log_actions(model):
            return Action.search(
                [
                    ("res_model", "=", "api.sync.log"),
                    ("binding_model_id", "=", self.env["ir.model"]._get(model).id),
                ]
            )

        action = log_actions("res.partner")
        self.assertEqual(len(action), 1)
        self.assertEqual(action.binding_view_types, "list,form")
        self.assertIn("active_ids", action.domain)
        self.assertFalse(log_actions("res.country"))
        country_config = self.Config.create(
            {
                "name": "Countries",
                "model_id": self.env["ir.model"]._get("res.country").id,
                "endpoint_url": "https://example.com/c",
            }
        )
        self.assertEqual(len(log_actions("res.country")), 1)
        country_config.active = False
        self.assertFalse(log_actions("res.country"))
        country_config.active = True
        self.assertTrue(log_actions("res.country"))
        country_config.unlink()
        self.assertFalse(log_actions("res.country"))
        self.assertTrue(log_actions("res.partner"), "the partner config still has its action")

    def test_sync_status_of_records(self):
        Status = self.env["api.sync.record.status"]
        partners = self.env["res.partner"].create([{"name": "S1"}, {"name": "S2"}])
        self.Config.sync_record(partners[0], "update")
        self.run_jobs()
        status = Status.get_sync_status(partners, self.config)
        self.assertEqual(list(status), [partners[0].id])
        self.assertEqual(status[partners[0].id]["state"], "done")
        self.assertTrue(status[partners[0].id]["done_at"])
        row = Status.search([("res_id", "=", partners[0].id)])
        self.assertEqual((row.last_state, row.record_name), ("done", "S1"))
