"""One delivery attempt of an event: when, what came back, how long it took, what was next."""

from odoo import api, fields, models
from odoo.tools import SQL

from .constants import MANAGER_GROUP


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
    request_line = fields.Char(
        string="Request",
        help="Resource mode: the method and URL of the attempt's request (its last one, when an "
        "update answered 404 was followed by a create).",
    )
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

    @api.model
    def _insert(self, vals_list):
        """Create the attempt lines ``vals_list`` (stored fields of their own, the same keys in
        each) in one ``INSERT``, as ``create`` stores them, without its work per field and line:
        a job's group writes up to one per event. Returns nothing (the lines are not read)."""
        if not vals_list:
            return
        logs = self.env["api.sync.log"].browse([vals["log_id"] for vals in vals_list])
        names = [
            *vals_list[0],
            "company_id",
            "create_uid",
            "create_date",
            "write_uid",
            "write_date",
        ]
        access = (self.env.uid, self.env.cr.now(), self.env.uid, self.env.cr.now())
        rows = [
            (
                *(
                    self._fields[name].convert_to_column_insert(value, self)
                    for name, value in vals.items()
                ),
                log.company_id.id or None,
                *access,
            )
            for vals, log in zip(vals_list, logs, strict=True)
        ]
        self.env.cr.execute(
            SQL(
                "INSERT INTO api_sync_log_attempt (%s) VALUES %s",
                SQL(", ").join(SQL.identifier(name) for name in names),
                SQL(", ").join(SQL("%s", row) for row in rows),
            )
        )
        logs.invalidate_recordset(["attempt_ids"])
