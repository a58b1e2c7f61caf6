"""Settings > API Sync, for Settings administrators only: delivery at commit, the token of the
metrics route."""

from odoo import fields, models

from .at_commit import PARAM as AT_COMMIT_PARAM
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
    api_sync_deliver_at_commit = fields.Boolean(
        string="Deliver at Commit",
        config_parameter=AT_COMMIT_PARAM,
        groups=ADMIN_GROUP,
        help="The server that saves a change sends its event right after the commit, without "
        "waiting for the job runner; when it cannot, the job runner delivers the event, within "
        "30 seconds. Each server process may then run one delivery besides the job channels.",
    )
