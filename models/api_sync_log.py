"""One outbound event of a configuration and what happened to it, attempt after attempt."""

from odoo import api, fields, models

RESPONSE_EXCERPT = 4000


class ApiSyncLog(models.Model):
    _name = "api.sync.log"
    _description = "API Sync Log"
    _order = "id desc"
    _rec_name = "idempotency_key"

    config_id = fields.Many2one(
        "api.sync.config", string="Configuration", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="config_id.company_id", store=True)
    res_model = fields.Char(string="Model", index=True)
    res_id = fields.Many2oneReference(string="Record ID", model_field="res_model", index=True)
    record_name = fields.Char(string="Record")
    operation = fields.Selection(
        [("create", "Create"), ("update", "Update"), ("delete", "Delete"), ("batch", "Batch")],
        required=True,
    )
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("done", "Done"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
        ],
        required=True,
        default="pending",
        index=True,
    )
    idempotency_key = fields.Char(
        string="Event ID",
        required=True,
        index=True,
        readonly=True,
        help="Sent as Idempotency-Key and webhook-id; the same on every retry of this event.",
    )
    attempt_count = fields.Integer(string="Attempts")
    request_body = fields.Text()
    response_status = fields.Integer(string="Response Status")
    response_body = fields.Text(string="Response Excerpt")
    duration_ms = fields.Integer(string="Duration (ms)")
    error_message = fields.Text()
    last_attempt_at = fields.Datetime(string="Last Attempt")
    done_at = fields.Datetime(string="Delivered At")

    _sql_constraints = [
        ("idempotency_key_unique", "UNIQUE(idempotency_key)", "Event IDs are unique."),
    ]

    @api.model
    def _truncate(self, text):
        """Keep logs small: long response bodies are cut with a marker."""
        if text and len(text) > RESPONSE_EXCERPT:
            return text[:RESPONSE_EXCERPT] + "\n[… truncated]"
        return text
