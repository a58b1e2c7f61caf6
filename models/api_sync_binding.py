"""Which remote object a record is, for a configuration in resource mode: its external id."""

from odoo import api, fields, models

from .api_sync_log import readable_records


class ApiSyncBinding(models.Model):
    _name = "api.sync.binding"
    _description = "API Sync External ID"
    _order = "id desc"
    _rec_name = "external_id"

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
    external_id = fields.Char(
        string="External ID",
        required=True,
        index=True,
        help="The id the endpoint gave the object when it was created.",
    )
    synced_version = fields.Datetime(help="The record's update time carried by the last delivery.")
    synced_at = fields.Datetime(help="When the last delivery succeeded.")

    _sql_constraints = [
        (
            "record_unique",
            "UNIQUE(config_id, res_id)",
            "A record has one external id per configuration.",
        ),
    ]

    @api.model
    def _selection_record_model(self):
        return self.env["api.sync.log"]._selection_record_model()

    @api.depends("res_model", "res_id")
    @api.depends_context("uid")
    def _compute_record_ref(self):
        existing = readable_records(self)
        for binding in self:
            binding.record_ref = existing.get((binding.res_model, binding.res_id), False)

    @api.model
    def _fill_external_ids(self, rows):
        """Set the ``external_id`` of ``rows`` (logs, record status: with ``config_id`` and
        ``res_id``) to their record's, as the caller may read them."""
        bindings = self.search_fetch(
            [("config_id", "in", rows.config_id.ids), ("res_id", "in", rows.mapped("res_id"))],
            ["config_id", "res_id", "external_id"],
        )
        bound = {
            (binding.config_id.id, binding.res_id): binding.external_id for binding in bindings
        }
        for row in rows:
            row.external_id = bound.get((row.config_id.id, row.res_id), False)
