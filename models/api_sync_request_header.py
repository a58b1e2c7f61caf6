"""An extra header a configuration sends with every request (non-secret, e.g. Accept-Version)."""

from odoo import api, fields, models


class ApiSyncRequestHeader(models.Model):
    _name = "api.sync.request.header"
    _inherit = "api.sync.config.part"
    _description = "API Sync Extra Request Header"
    _order = "config_id, sequence, id"

    config_id = fields.Many2one(
        "api.sync.config", string="Configuration", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="config_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    name = fields.Char(string="Header", required=True, help="e.g. Accept-Version")
    value = fields.Char(
        required=True,
        help="Sent as it is and shown to everyone who reads the configuration and its logs: "
        "never put credentials here (use Authentication).",
    )

    @api.constrains("name", "value", "config_id")
    def _check_header(self):
        self.config_id._check_request_headers()
