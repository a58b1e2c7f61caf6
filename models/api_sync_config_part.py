"""What belongs to a configuration (its mapping lines, its extra headers): changed only by those
who may change the configuration itself."""

from odoo import api, models


class ApiSyncConfigPart(models.AbstractModel):
    _name = "api.sync.config.part"
    _description = "API Sync Configuration Part"

    @api.model_create_multi
    def create(self, vals_list):
        parts = super().create(vals_list)
        parts.config_id._check_can_change()  # defaults (also from the context) applied by now
        return parts

    def write(self, vals):
        self.config_id._check_can_change()
        if vals.get("config_id"):
            self.config_id.browse(vals["config_id"])._check_can_change()
        return super().write(vals)

    def unlink(self):
        self.config_id._check_can_change()
        return super().unlink()
