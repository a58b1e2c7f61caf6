"""Settings > API Sync: the token of the metrics route, for Settings administrators only."""

from odoo import fields, models

from .constants import ADMIN_GROUP
from .metrics import TOKEN_PARAM


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    api_sync_metrics_token = fields.Char(
        string="Metrics Token",
        config_parameter=TOKEN_PARAM,
        groups=ADMIN_GROUP,
        help="Bearer token of /api_sync/metrics (Prometheus). Empty: the route answers 404.",
    )
