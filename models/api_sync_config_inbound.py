"""The inbound side of a configuration (two-way sync): its URL, how senders authenticate, where
the parts of an event are, and which mapping lines are written back.

The URL is ``/api_sync/inbound/<token>`` (controllers/inbound.py); what a verified request
becomes is applied by ``Inbound`` (models/inbound.py). The pure rules (verification, reading an
event, mapping back) are in ``engine/inbound.py``.
"""

import secrets

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..engine import inbound, mapping, wire
from .constants import MANAGER_GROUP

INBOUND_AUTH_TYPES = [
    ("standard_webhooks", "Standard Webhooks"),
    ("hmac", "HMAC-SHA256 of the body in a header"),
    ("token", "Static token in a header"),
]
INBOUND_SECRET_FIELDS = ("inbound_secret", "inbound_previous_secret")
# what the inbound URL reads at each request (``_inbound_by_token``, one query)
INBOUND_SETTINGS_FIELDS = {
    "inbound_enabled",
    "inbound_token",
    "inbound_auth_type",
    "inbound_secret",
    "inbound_previous_secret",
    "inbound_previous_secret_expires_at",
    "inbound_hmac_header",
    "inbound_hmac_encoding",
    "inbound_token_header",
    "inbound_tolerance",
    "inbound_event_id_path",
    "inbound_event_id_header",
    "inbound_operation_source",
    "inbound_operation_path",
    "inbound_operation_header",
    "inbound_operation_map",
    "inbound_external_id_path",
    "inbound_timestamp_path",
    "inbound_root_key",
    "inbound_concurrency",
}
TOKEN_BYTES = 24


def new_token():
    return secrets.token_urlsafe(TOKEN_BYTES)


class ApiSyncConfig(models.Model):
    _inherit = "api.sync.config"

    inbound_enabled = fields.Boolean(
        string="Inbound Sync",
        tracking=True,
        help="Accept changes from the remote system at this configuration's inbound URL and "
        "apply them to Odoo with the Integration User's rights.",
    )
    inbound_token = fields.Char(
        groups=MANAGER_GROUP,
        copy=False,
        help="The random part of the inbound URL. Rotate it to revoke the old URL at once.",
    )
    inbound_url = fields.Char(
        string="Inbound URL", compute="_compute_inbound_url", groups=MANAGER_GROUP
    )
    inbound_auth_type = fields.Selection(
        INBOUND_AUTH_TYPES,
        string="Inbound Authentication",
        default="standard_webhooks",
        required=True,
        help="Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature headers "
        "signed with the inbound secret (whsec_...). HMAC: the HMAC-SHA256 of the body in a "
        "header (GitHub, Shopify). Token: the whole value of a header equals the secret.",
    )
    inbound_secret = fields.Char(
        groups=MANAGER_GROUP,
        copy=False,
        help="Standard Webhooks: a whsec_ secret; HMAC: the shared key; token: the token.",
    )
    inbound_previous_secret = fields.Char(
        groups=MANAGER_GROUP,
        copy=False,
        help="The inbound secret before the last change, still accepted until it expires "
        "(Old Secret Valid For).",
    )
    inbound_previous_secret_expires_at = fields.Datetime(
        string="Previous Inbound Secret Valid Until", copy=False
    )
    inbound_hmac_header = fields.Char(string="Signature Header", default="X-Hub-Signature-256")
    inbound_hmac_encoding = fields.Selection(
        inbound.HMAC_ENCODINGS, string="Signature Encoding", default="hex", required=True
    )
    inbound_token_header = fields.Char(string="Token Header", default="X-Api-Token")
    inbound_tolerance = fields.Integer(
        string="Timestamp Tolerance (s)",
        default=wire.SIGNATURE_TOLERANCE,
        help="Standard Webhooks: requests signed longer ago (or later) than this are refused.",
    )
    inbound_event_id_path = fields.Char(
        string="Event ID Path",
        help="Where the sender's event id is in the JSON body (e.g. id). Empty: the header below.",
    )
    inbound_event_id_header = fields.Char(string="Event ID Header", default="webhook-id")
    inbound_operation_source = fields.Selection(
        inbound.OPERATION_SOURCES,
        string="Operation From",
        default="event_type",
        required=True,
        help="JSON path: the value at the Operation Path, looked up in the Operation Map. "
        "Event type: the type (e.g. contact.updated) at the Operation Path or in the Operation "
        "Header, by its last word. HTTP method: POST creates, PUT/PATCH update, DELETE deletes.",
    )
    inbound_operation_path = fields.Char(string="Operation Path", default="type")
    inbound_operation_header = fields.Char(string="Operation Header")
    inbound_operation_map = fields.Text(
        string="Operation Map",
        help="value: operation pairs, by commas or lines (e.g. opened: create, edited: update). "
        "Empty: create(d), update(d), delete(d).",
    )
    inbound_external_id_path = fields.Char(
        string="Remote ID Path",
        help="Where the remote object's id is in the JSON body (e.g. data.id): the record bound "
        "to it is the one changed, and a record created is bound to it.",
    )
    inbound_timestamp_path = fields.Char(
        string="Timestamp Path",
        help="Where the remote change time is (ISO 8601 or Unix seconds): with Newest wins, an "
        "update older than the record's last synced version is skipped.",
    )
    inbound_stale_rule = fields.Selection(
        inbound.STALE_RULES,
        string="Conflict Rule",
        default="newest_wins",
        required=True,
        help="Newest wins: an inbound update older than what Odoo last sent or applied is "
        "skipped (logged). Remote wins: every inbound update is applied.",
    )
    inbound_root_key = fields.Char(
        string="Data Path",
        help="Where the object's fields are in the JSON body (e.g. data). Empty: the body.",
    )
    inbound_allow_create = fields.Boolean(
        string="Create Missing Records",
        default=True,
        help="An event about an object no record is bound to (nor matched by the key field) "
        "creates the record, bound to it.",
    )
    inbound_key_field = fields.Char(
        string="Match By Field",
        help="A field of the model (e.g. ref, email, code) matching a record when no record is "
        "bound to the remote id: its inbound mapping line gives the value.",
    )
    inbound_archive_on_delete = fields.Boolean(
        string="Archive on Delete",
        default=True,
        help="A delete archives the record when its model can be archived (else deletes it).",
    )
    inbound_concurrency = fields.Integer(
        string="Concurrent Requests",
        default=4,
        help="At most this many requests of this configuration are verified and stored at "
        "once; more are answered 429 with Retry-After.",
    )
    inbound_line_count = fields.Integer(compute="_compute_inbound_line_count")

    @api.depends("inbound_token")
    def _compute_inbound_url(self):
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        for config in self:
            token = config.sudo().inbound_token
            config.inbound_url = token and f"{base.rstrip('/')}/api_sync/inbound/{token}"

    @api.depends("mapping_ids.inbound")
    def _compute_inbound_line_count(self):
        for config in self:
            config.inbound_line_count = len(config.mapping_ids.filtered("inbound"))

    # -- changes (called by create and write) -------------------------------------------------

    def _inbound_prepare(self, vals):
        """Before a write: a token when inbound is enabled; the old inbound secret kept for a
        while when it changes (as the signing secret)."""
        if vals.get("inbound_enabled"):
            for config in self.sudo().filtered(lambda config: not config.inbound_token):
                config.inbound_token = new_token()
        if "inbound_secret" in vals:
            now = fields.Datetime.now()
            for config in self.sudo():
                old, hours = config.inbound_secret, config.secret_rotation_hours
                if not vals["inbound_secret"] or hours <= 0:
                    kept = {}
                elif old and old != vals["inbound_secret"]:
                    kept = {"expires": fields.Datetime.add(now, hours=hours), "secret": old}
                else:
                    continue
                config.write(
                    {
                        "inbound_previous_secret": kept.get("secret", False),
                        "inbound_previous_secret_expires_at": kept.get("expires", False),
                    }
                )

    @api.model
    def _inbound_defaults(self, vals_list):
        for vals in vals_list:
            if vals.get("inbound_enabled") and not vals.get("inbound_token"):
                vals["inbound_token"] = new_token()

    def action_rotate_inbound_token(self):
        """A new inbound URL: the old one answers 404 at once."""
        self._check_manager()
        for config in self:
            config.inbound_token = new_token()

    def action_generate_inbound_secret(self):
        self._check_manager()
        for config in self:
            if config.inbound_auth_type == "standard_webhooks":
                config.inbound_secret = wire.new_secret()
            else:
                config.inbound_secret = secrets.token_urlsafe(32)

    # -- validation -----------------------------------------------------------------------------

    @api.constrains(
        "inbound_enabled",
        "inbound_auth_type",
        "inbound_secret",
        "inbound_hmac_header",
        "inbound_token_header",
        "inbound_tolerance",
        "inbound_operation_source",
        "inbound_operation_path",
        "inbound_operation_map",
        "inbound_event_id_path",
        "inbound_event_id_header",
        "inbound_external_id_path",
        "inbound_timestamp_path",
        "inbound_root_key",
        "inbound_key_field",
        "inbound_concurrency",
        "model_id",
        "mapping_ids",
    )
    def _check_inbound(self):
        for config in self.sudo():
            try:
                inbound.parse_operation_map(config.inbound_operation_map, "inbound_operation_map")
            except mapping.ConfigurationError as exc:
                raise config._field_error(exc.field, str(exc)) from None
            config._check_inbound_paths()
            config._check_inbound_key_field()
            config._inbound_lines()  # refuses lines without inverse, naming them
            if not config.inbound_enabled:
                continue
            if config.inbound_tolerance <= 0:
                raise config._field_error(
                    "inbound_tolerance", self.env._("it must be a positive number of seconds.")
                )
            if config.inbound_concurrency <= 0:
                raise config._field_error(
                    "inbound_concurrency", self.env._("at least one request at a time.")
                )
            if config.inbound_secret:
                config._check_inbound_secret()
            header = {"hmac": "inbound_hmac_header", "token": "inbound_token_header"}.get(
                config.inbound_auth_type
            )
            if header and not inbound.PRINTABLE.match(config[header] or ""):
                raise config._field_error(header, self.env._("a header name is needed."))
            if config.inbound_operation_source == "path" and not config.inbound_operation_path:
                raise config._field_error(
                    "inbound_operation_path",
                    self.env._("the operation is read from a JSON path: set it (e.g. type)."),
                )

    def _check_inbound_secret(self):
        if self.inbound_auth_type == "standard_webhooks":
            try:
                wire.secret_key(self.inbound_secret)
            except ValueError as exc:
                raise self._field_error(
                    "inbound_secret",
                    self.env._("%(error)s (use Generate for a new one).", error=exc),
                ) from None

    def _check_inbound_paths(self):
        for fname in (
            "inbound_event_id_path",
            "inbound_operation_path",
            "inbound_external_id_path",
            "inbound_timestamp_path",
            "inbound_root_key",
        ):
            path = (self[fname] or "").strip()
            if path and any(not segment for segment in path.split(".")):
                raise self._field_error(
                    fname, self.env._("%(path)r has an empty segment (e.g. data.id).", path=path)
                )

    def _check_inbound_key_field(self):
        name = (self.inbound_key_field or "").strip()
        if not name:
            return
        field = self.env[self.model_name]._fields.get(name) if self.model_name else None
        if field is None or not field.store or field.type not in ("char", "integer"):
            raise self._field_error(
                "inbound_key_field",
                self.env._(
                    "%(name)r is not a stored text or integer field of %(model)s.",
                    name=name,
                    model=self.model_name,
                ),
            )
        if name not in self.mapping_ids.filtered("inbound").mapped("source_path"):
            raise self._field_error(
                "inbound_key_field",
                self.env._(
                    "no mapping line applied inbound writes %(name)r: mark the line whose "
                    "source path is %(name)s as Inbound (its value finds the record).",
                    name=name,
                ),
            )

    # -- what the inbound side reads ----------------------------------------------------------

    def _inbound_lines(self):
        """The engine's inbound lines of the mapping lines marked Inbound; ValidationError
        naming the line when one has no inverse (or two write one field)."""
        self.ensure_one()
        lines = []
        Model = self.env[self.model_name] if self.model_name else None
        for line in self.mapping_ids.filtered("inbound").sorted():
            engine_line = line._to_engine_line()
            first = (
                Model._fields.get(engine_line.source_path[0]) if engine_line.source_path else None
            )
            selection = ()
            if first is not None and first.type == "selection":
                selection = first._description_selection(self.env)
            lines.append(
                inbound.InboundLine.of(
                    engine_line,
                    related_type=first.type if len(engine_line.source_path) == 2 else None,
                    selection=selection,
                    id_configuration=line.inbound_id_config_id.id or None,
                )
            )
        try:
            inbound.check_inbound_lines(lines)
        except mapping.ConfigurationError as exc:
            raise ValidationError(
                self.env._(
                    "Field mapping of %(config)s, Inbound: %(error)s",
                    config=self.display_name,
                    error=str(exc),
                )
            ) from None
        return lines

    def _inbound_settings(self):
        """The engine's ``Settings`` of this configuration."""
        config = self.sudo()
        return inbound.Settings(
            event_id_header=config.inbound_event_id_header or "webhook-id",
            event_id_path=(config.inbound_event_id_path or "").strip(),
            operation_source=config.inbound_operation_source,
            operation_path=(config.inbound_operation_path or "").strip(),
            operation_header=(config.inbound_operation_header or "").strip(),
            operation_map=inbound.parse_operation_map(config.inbound_operation_map),
            external_id_path=(config.inbound_external_id_path or "").strip(),
            timestamp_path=(config.inbound_timestamp_path or "").strip(),
            data_path=(config.inbound_root_key or "").strip(),
        )

    def _inbound_secrets(self):
        """The secrets a request may be signed with: the current one, and the previous one
        until it expires."""
        config = self.sudo()
        found = [config.inbound_secret] if config.inbound_secret else []
        expires = config.inbound_previous_secret_expires_at
        if config.inbound_previous_secret and expires and expires > fields.Datetime.now():
            found.append(config.inbound_previous_secret)
        return found

    def _verify_inbound(self, headers, body, now):
        """Raise ``Refused`` (401) unless the request is authenticated as this configuration
        says (before the body is parsed). A configuration without secret refuses all."""
        secrets_ = self._inbound_secrets()
        if not secrets_:
            raise inbound.Refused(401, "bad signature")
        auth = self.inbound_auth_type
        if auth == "standard_webhooks":
            inbound.verify_standard_webhooks(
                secrets_, headers, body, now, tolerance=self.inbound_tolerance
            )
        elif auth == "hmac":
            given = inbound.header(headers, self.inbound_hmac_header)
            for position, secret in enumerate(secrets_):
                try:
                    inbound.verify_hmac(secret, given, body, self.inbound_hmac_encoding)
                    break
                except inbound.Refused:
                    if position == len(secrets_) - 1:
                        raise
        else:
            given = inbound.header(headers, self.inbound_token_header)
            for position, secret in enumerate(secrets_):
                try:
                    inbound.verify_token(secret, given)
                    break
                except inbound.Refused:
                    if position == len(secrets_) - 1:
                        raise

    def action_view_inbound_logs(self):
        action = self.action_view_logs()
        action["domain"] = [("config_id", "=", self.id), ("direction", "=", "inbound")]
        return action
