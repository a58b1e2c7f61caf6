"""Which remote object a record is, for a configuration in resource mode: its external id."""

from odoo import api, fields, models


class ApiSyncBinding(models.Model):
    _name = "api.sync.binding"
    _inherit = "api.sync.record.mixin"
    _description = "API Sync External ID"
    _order = "id desc"
    _rec_name = "external_id"

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
