"""One delivery attempt of an event: when, what came back, how long it took, what was next."""

from odoo import fields, models

MANAGER_GROUP = "api_sync.group_api_sync_manager"


class ApiSyncLogAttempt(models.Model):
    _name = "api.sync.log.attempt"
    _description = "API Sync Delivery Attempt"
    _order = "log_id, number desc, id desc"
    _rec_name = "number"

    log_id = fields.Many2one(
        "api.sync.log", string="Event", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="log_id.company_id", store=True, precompute=True)
    number = fields.Integer(string="Attempt", aggregator=None)
    attempted_at = fields.Datetime(string="At", required=True)
    outcome = fields.Selection(
        [("done", "Delivered"), ("retry", "Will retry"), ("failed", "Failed")], required=True
    )
    response_status = fields.Integer(string="Status", aggregator=None)
    duration_ms = fields.Integer(string="Duration (ms)")
    failure_reason = fields.Char(string="Reason")
    error_class = fields.Char()
    error_message = fields.Text(groups=MANAGER_GROUP)
    response_excerpt = fields.Text(groups=MANAGER_GROUP)
    next_retry_at = fields.Datetime(string="Next Retry")
    request_headers = fields.Text(
        help="The headers sent, credentials and signatures masked.",
    )
    details_visible = fields.Boolean(compute="_compute_details")
    response_preview = fields.Text(string="Response", compute="_compute_details")

    def _compute_details(self):
        """The response excerpt, for those who may read the event's details (see the log)."""
        visible = self.log_id._details_visible()
        for attempt in self:
            shown = attempt.log_id in visible
            attempt.details_visible = shown
            attempt.response_preview = shown and attempt.sudo().response_excerpt
