"""Shows the JSON a configuration would send for a record the admin picks."""

import json

from odoo import api, fields, models
from odoo.exceptions import ValidationError


class ApiSyncPreview(models.TransientModel):
    _name = "api.sync.preview"
    _description = "API Sync Payload Preview"

    config_id = fields.Many2one("api.sync.config", string="Configuration", required=True)
    model_name = fields.Char(related="config_id.model_name")
    record_ref = fields.Reference(
        selection="_selection_target_model",
        string="Record",
        compute="_compute_record_ref",
        readonly=False,
        store=True,
    )
    in_domain = fields.Boolean(compute="_compute_payload")
    payload = fields.Text(compute="_compute_payload")
    request_line = fields.Char(
        compute="_compute_payload", help="Resource mode: the method and URL the record goes to."
    )
    error_message = fields.Text(compute="_compute_payload")

    @api.model
    def _selection_target_model(self):
        return [(model.model, model.name) for model in self.env["ir.model"].sudo().search([])]

    @api.depends("config_id")
    def _compute_record_ref(self):
        for preview in self:
            model = preview.config_id.model_name
            if model and (not preview.record_ref or preview.record_ref._name != model):
                record = self.env[model].search([], limit=1)
                preview.record_ref = f"{model},{record.id}" if record else False

    @api.depends("config_id", "record_ref")
    def _compute_payload(self):
        for preview in self:
            preview.payload = preview.error_message = preview.request_line = False
            preview.in_domain = False
            record = preview.record_ref
            config = preview.config_id
            if not record or record._name != config.model_name:
                continue
            preview.error_message = preview._refusal(config, record)
            if preview.error_message:
                continue
            preview.in_domain = bool(config._filter_in_domain(record))
            try:
                data = config.prepare_outbound_data(record)
            except ValidationError as exc:
                preview.error_message = exc.args[0]
                continue
            if config.payload_format == "resource":
                preview.request_line, data = config._preview_request(record, data)
            preview.payload = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False)

    def _refusal(self, config, record):
        """Why the current user may not see this record's payload, if they may not: it is
        read as the Integration User, so only that user or an administrator previews it, and
        only records the viewer may read."""
        config.check_access("read")
        integration_user = config.sudo().integration_user_id
        if not config._is_admin() and integration_user != self.env.user:
            return self.env._(
                "The payload is read as the Integration User %(user)s: only that user or a "
                "Settings administrator can preview it.",
                user=integration_user.name,
            )
        if not record.with_env(self.env).exists() or not record.has_access("read"):
            return self.env._("You cannot read this record: pick another one.")
        return False
