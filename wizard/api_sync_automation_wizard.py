"""Generates the standard automation rules of a configuration for the operations ticked."""

from odoo import fields, models
from odoo.exceptions import UserError


class ApiSyncAutomationWizard(models.TransientModel):
    _name = "api.sync.automation.wizard"
    _description = "API Sync: Create Automation Rules"

    config_id = fields.Many2one("api.sync.config", string="Configuration", required=True)
    on_create = fields.Boolean(string="On creation", default=True)
    on_update = fields.Boolean(
        string="On update",
        default=True,
        help="Watches the mapped fields: a save that changes none of them sends nothing. "
        "With Lines, rules on the listed records' models send an update of their document when "
        "a mapped line field changes or a line is created or deleted.",
    )
    on_delete = fields.Boolean(string="On deletion", default=True)

    def action_generate(self):
        self.ensure_one()
        if not (self.on_create or self.on_update or self.on_delete):
            raise UserError(self.env._("Tick at least one operation to create rules for."))
        self.config_id._generate_automation_rules(self.on_create, self.on_update, self.on_delete)
        return self.config_id.action_view_automations()
