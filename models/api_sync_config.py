"""Configuration of one outbound sync: which model, which endpoint, how to authenticate and map."""

from urllib.parse import urlparse

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import safe_eval

from ..engine import mapping

MANAGER_GROUP = "api_sync.group_api_sync_manager"


class ApiSyncConfig(models.Model):
    _name = "api.sync.config"
    _description = "API Sync Configuration"
    _inherit = ["mail.thread"]
    _order = "sequence, name, id"

    name = fields.Char(required=True, tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True, tracking=True)
    company_id = fields.Many2one(
        "res.company",
        default=lambda self: self.env.company,
        help="Leave empty to share the configuration between companies.",
    )
    model_id = fields.Many2one(
        "ir.model",
        string="Model",
        required=True,
        ondelete="cascade",
        domain=[("transient", "=", False), ("model", "not like", "api.sync.%")],
        tracking=True,
    )
    model_name = fields.Char(
        related="model_id.model", string="Model Name", store=True, index=True, precompute=True
    )
    endpoint_url = fields.Char(string="Endpoint URL", required=True, tracking=True)
    http_method = fields.Selection(
        [("POST", "POST"), ("PUT", "PUT"), ("PATCH", "PATCH")],
        string="HTTP Method",
        required=True,
        default="POST",
        tracking=True,
    )
    auth_type = fields.Selection(
        [
            ("none", "None"),
            ("basic", "Basic authentication"),
            ("bearer", "Bearer token"),
            ("api_key", "API key header"),
        ],
        string="Authentication",
        required=True,
        default="none",
        tracking=True,
    )
    auth_username = fields.Char(string="Username", groups=MANAGER_GROUP)
    auth_password = fields.Char(string="Password", groups=MANAGER_GROUP)
    auth_token = fields.Char(string="Bearer Token", groups=MANAGER_GROUP)
    api_key_header = fields.Char(string="API Key Header", default="X-API-Key")
    api_key = fields.Char(string="API Key", groups=MANAGER_GROUP)
    signing_secret = fields.Char(
        groups=MANAGER_GROUP,
        help="Standard Webhooks secret (whsec_<base64>). When set, every request carries "
        "webhook-id, webhook-timestamp and webhook-signature headers.",
    )
    timeout = fields.Float(
        string="Timeout (s)", default=10.0, help="Connect and read timeout, in seconds."
    )
    max_attempts = fields.Integer(
        default=5, help="Deliveries are marked failed after this many attempts."
    )
    backoff_base = fields.Integer(
        string="Backoff Base (s)", default=10, help="Delay before the first retry, in seconds."
    )
    backoff_max = fields.Integer(
        string="Backoff Max (s)", default=3600, help="Longest delay between two retries."
    )
    batch_size = fields.Integer(default=100, help="Records per request in batch syncs.")
    delivery_mode = fields.Selection(
        [("record", "One request per record"), ("batch", "One request per chunk of records")],
        required=True,
        default="record",
        tracking=True,
    )
    domain = fields.Char(
        default="[]",
        help="Only records matching this domain are sent; the others are never sent.",
    )
    mapping_ids = fields.One2many("api.sync.field.mapping", "config_id", string="Field Mapping")
    log_ids = fields.One2many("api.sync.log", "config_id", string="Logs")
    log_count = fields.Integer(compute="_compute_log_count", string="Log Count")
    failed_log_count = fields.Integer(compute="_compute_log_count", string="Failed Logs")

    @api.depends("log_ids.state")
    def _compute_log_count(self):
        counts = {
            (config.id, state): count
            for config, state, count in self.env["api.sync.log"]._read_group(
                [("config_id", "in", self.ids)], ["config_id", "state"], ["__count"]
            )
        }
        for config in self:
            config.log_count = sum(
                count for (config_id, _state), count in counts.items() if config_id == config.id
            )
            config.failed_log_count = counts.get((config.id, "failed"), 0)

    # -- validation -----------------------------------------------------------------------------

    @api.constrains("endpoint_url")
    def _check_endpoint_url(self):
        for config in self:
            parsed = urlparse((config.endpoint_url or "").strip())
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ValidationError(
                    self.env._(
                        "Endpoint URL of %(config)s must be an http:// or https:// URL with a "
                        "host, e.g. https://api.example.com/hooks (got %(url)r).",
                        config=config.display_name,
                        url=config.endpoint_url,
                    )
                )

    @api.constrains("timeout", "max_attempts", "backoff_base", "backoff_max", "batch_size")
    def _check_limits(self):
        for config in self:
            for fname in ("timeout", "max_attempts", "backoff_base", "backoff_max", "batch_size"):
                if config[fname] <= 0:
                    raise ValidationError(
                        self.env._(
                            "%(field)s of %(config)s must be greater than zero.",
                            field=self._fields[fname].get_description(self.env)["string"],
                            config=config.display_name,
                        )
                    )
            if config.backoff_max < config.backoff_base:
                raise ValidationError(
                    self.env._(
                        "Backoff Max of %(config)s must not be smaller than Backoff Base.",
                        config=config.display_name,
                    )
                )

    @api.constrains("domain", "model_id")
    def _check_domain(self):
        for config in self:
            try:
                config._get_domain()
            except Exception as exc:  # noqa: BLE001 - any evaluation error is the admin's to fix
                raise ValidationError(
                    self.env._(
                        "Domain of %(config)s is not valid for model %(model)s: %(error)s",
                        config=config.display_name,
                        model=config.model_name,
                        error=exc,
                    )
                ) from None

    @api.constrains("model_id")
    def _check_mapping_model(self):
        self.mapping_ids._check_source_path()

    # -- domain ---------------------------------------------------------------------------------

    def _domain_eval_context(self):
        return {
            "datetime": safe_eval.datetime,
            "dateutil": safe_eval.dateutil,
            "time": safe_eval.time,
            "uid": self.env.uid,
            "user": self.env.user,
            "context_today": lambda: fields.Date.context_today(self),
        }

    def _get_domain(self):
        """The evaluated domain, checked against the model's fields."""
        self.ensure_one()
        domain = safe_eval.safe_eval(self.domain or "[]", self._domain_eval_context())
        if not isinstance(domain, list | tuple):
            raise ValueError(self.env._("a domain is a list, e.g. [('active', '=', True)]"))
        self.env[self.model_name]._search(domain)
        return list(domain)

    def _filter_in_domain(self, records):
        """The part of ``records`` that this configuration may send."""
        self.ensure_one()
        domain = self._get_domain()
        if not domain or not records:
            return records
        matching = set(
            records.sudo()
            .with_context(active_test=False)
            .search([("id", "in", records.ids), *domain])
            .ids
        )
        return records.filtered(lambda record: record.id in matching)

    # -- mapping --------------------------------------------------------------------------------

    def _mapping_lines(self):
        """The mapping as engine lines, in sequence order."""
        self.ensure_one()
        return [line._to_engine_line() for line in self.mapping_ids.sorted()]

    def _outbound_payloads(self, records):
        """Map ``records`` (in bulk); returns one payload dict per record, in order."""
        self.ensure_one()
        if not self.mapping_ids:
            records.fetch(["display_name"])
            return [{"id": record.id, "display_name": record.display_name} for record in records]
        lines = self._mapping_lines()
        values = self.env["api.sync.field.mapping"]._read_source_values(records, lines)
        return [
            mapping.build_payload(lines, record_values, self._record_label(record))
            for record, record_values in zip(records, values, strict=True)
        ]

    @api.model
    def _record_label(self, record):
        return f"{record.display_name} ({record._name},{record.id})"

    def prepare_outbound_data(self, records):
        """Mapped payload of ``records``: a dict for one record, a list of dicts for several.

        Raises :class:`~odoo.exceptions.UserError` (a ``ValidationError``) naming the record and
        the field when a required value is missing or a value cannot be converted.
        """
        self.ensure_one()
        if records._name != self.model_name:
            raise ValidationError(
                self.env._(
                    "Configuration %(config)s maps %(model)s records, not %(given)s.",
                    config=self.display_name,
                    model=self.model_name,
                    given=records._name,
                )
            )
        try:
            payloads = self._outbound_payloads(records)
        except mapping.MappingError as exc:
            raise ValidationError(str(exc)) from None
        return payloads[0] if len(records) == 1 else payloads

    # -- actions --------------------------------------------------------------------------------

    def action_preview_payload(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Preview Payload"),
            "res_model": "api.sync.preview",
            "view_mode": "form",
            "target": "new",
            "context": {"default_config_id": self.id},
        }

    def action_view_logs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("api_sync.action_api_sync_log")
        action["domain"] = [("config_id", "=", self.id)]
        action["context"] = {"default_config_id": self.id}
        return action
