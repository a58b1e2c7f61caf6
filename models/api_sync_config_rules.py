"""The automation rules a configuration generates (trigger mode "Automation rules"): on its
model, and for its Lines on the models they list."""

from odoo import Command, api, fields, models

from .api_sync_config import GENERATED_TRIGGERS


class ApiSyncConfig(models.Model):
    _inherit = "api.sync.config"

    no_rule_sends = fields.Boolean(
        compute="_compute_no_rule_sends",
        help="Trigger mode Automation rules, and no active rule calls this configuration: "
        "its records' changes are not sent until rules are created.",
    )

    @api.depends("trigger_mode", "active", "action_ids.base_automation_id.active")
    def _compute_no_rule_sends(self):
        for config in self:
            rules = config.sudo().action_ids.base_automation_id.filtered("active")
            config.no_rule_sends = config.active and config.trigger_mode == "rules" and not rules

    def _generated_rules(self):
        """The standard rules generated for this configuration (archived ones too)."""
        self.ensure_one()
        return self.with_context(active_test=False).automation_ids.filtered(
            lambda rule: (
                rule.trigger in GENERATED_TRIGGERS
                and all(action.api_sync_config_id == self for action in rule.action_server_ids)
            )
        )

    def action_create_automation_rules(self):
        self.ensure_one()
        self.check_access("write")
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Create Automation Rules"),
            "res_model": "api.sync.automation.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_config_id": self.id},
        }

    def action_view_automations(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "base_automation.base_automation_act"
        )
        action["domain"] = [("id", "in", self.automation_ids.ids)]
        action["context"] = {"active_test": False}
        return action

    def _generate_automation_rules(self, on_create, on_update, on_delete):
        """Create the standard automation rules calling this configuration; returns them.

        With updates, the models its Lines list get rules too (on save of a mapped line field,
        on deletion) sending an update of the lines' documents."""
        self.ensure_one()
        if on_create and on_update:
            triggers = [("on_create_or_write", self.env._("on save"))]
        elif on_create:
            triggers = [("on_create", self.env._("on creation"))]
        elif on_update:
            triggers = [("on_write", self.env._("on update"))]
        else:
            triggers = []
        if on_delete:
            triggers.append(("on_unlink", self.env._("on deletion")))
        # (model, lines path or "", watched fields, triggers), the configuration's own first
        targets = [(self.model_name, "", self._mapped_field_names(), triggers)]
        if on_update:
            line_triggers = [
                ("on_create_or_write", self.env._("on save")),
                ("on_unlink", self.env._("on deletion")),
            ]
            targets += [
                (model, ".".join(path), names, line_triggers)
                for path, model, names, _link in self._line_levels()
            ]
        # generating again updates the rules generated before (per kind and lines path)
        generated = {
            (
                "delete" if rule.trigger == "on_unlink" else "save",
                rule.action_server_ids[:1].api_sync_lines_path or "",
            ): rule
            for rule in self._generated_rules()
        }
        rules = self.env["base.automation"]
        for model_name, lines_path, names, model_triggers in targets:
            model = self.env["ir.model"]._get(model_name)
            model_fields = self.env["ir.model.fields"].search(
                [("model_id", "=", model.id), ("name", "in", sorted(names)), ("store", "=", True)]
            )
            for trigger, label in model_triggers:
                kind = "delete" if trigger == "on_unlink" else "save"
                if lines_path:
                    label = self.env._("%(when)s of %(lines)s lines", when=label, lines=lines_path)
                name = self.env._("%(config)s: sync %(when)s", config=self.name, when=label)
                values = {"name": name, "model_id": model.id, "trigger": trigger}
                values["trigger_field_ids"] = [
                    Command.set(
                        model_fields.ids if trigger in ("on_write", "on_create_or_write") else []
                    )
                ]
                rule = generated.pop((kind, lines_path), None)
                if rule:
                    rule.write({**values, "active": self.active})
                    rule.action_server_ids.name = name
                else:
                    values["action_server_ids"] = [
                        Command.create(
                            {
                                "name": name,
                                "model_id": model.id,
                                "state": "api_sync",
                                "api_sync_config_id": self.id,
                                "api_sync_lines_path": lines_path or False,
                            }
                        )
                    ]
                    rule = self.env["base.automation"].create({**values, "active": self.active})
                rules |= rule
        for rule in generated.values():  # a kind no longer ticked (its action goes with it)
            rule.unlink()
        return rules
