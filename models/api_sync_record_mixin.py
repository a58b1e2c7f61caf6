"""What points to one record of a synced model for one configuration (record status, external
ids): the configuration, the record's model and id, and the record itself for who may read it."""

from odoo import api, fields, models

from .api_sync_log import readable_records


class ApiSyncRecordMixin(models.AbstractModel):
    _name = "api.sync.record.mixin"
    _description = "API Sync Record Reference"

    config_id = fields.Many2one(
        "api.sync.config", string="Configuration", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="config_id.company_id", store=True)
    res_model = fields.Char(string="Model", required=True, index=True)
    res_id = fields.Many2oneReference(
        string="Record ID", model_field="res_model", required=True, index=True
    )
    record_ref = fields.Reference(
        selection="_selection_record_model",
        string="Record",
        compute="_compute_record_ref",
        help="The record, while it exists and you may read it.",
    )

    @api.model
    def _selection_record_model(self):
        return self.env["api.sync.log"]._selection_record_model()

    @api.depends("res_model", "res_id")
    @api.depends_context("uid")
    def _compute_record_ref(self):
        existing = readable_records(self)
        for row in self:
            row.record_ref = existing.get((row.res_model, row.res_id), False)
