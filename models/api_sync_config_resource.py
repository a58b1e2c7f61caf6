"""Resource mode of a configuration: the mapped object itself as the body, one request per
operation (method and path template), external ids bound to records, and extra headers."""

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError

from ..engine import mapping, resource, wire
from .adapters import METHOD_FIELDS, PATH_FIELDS

OPERATION_METHODS = [
    ("POST", "POST"),
    ("PUT", "PUT"),
    ("PATCH", "PATCH"),
    ("DELETE", "DELETE"),
    (resource.NOT_SENT, "Do not send"),
]


class ApiSyncConfig(models.Model):
    _inherit = "api.sync.config"

    payload_format = fields.Selection(
        [("envelope", "Event envelope"), ("resource", "Resource")],
        default="envelope",
        required=True,
        tracking=True,
        help="Event envelope: every change is an event (id, type, record id, data) sent to the "
        "endpoint URL. Resource: the body is the mapped object itself, created, updated and "
        "deleted with the requests set on the Requests tab.",
    )
    root_key = fields.Char(
        help='Resource mode: wrap the body under this key ({"customer": {...}}; a batch: '
        '{"customers": [...]}). Empty: the object itself (a batch: a JSON array).',
    )
    create_method = fields.Selection(OPERATION_METHODS, default="POST", required=True)
    update_method = fields.Selection(OPERATION_METHODS, default="PATCH", required=True)
    delete_method = fields.Selection(OPERATION_METHODS, default="DELETE", required=True)
    create_path = fields.Char(
        help="Relative to the endpoint URL; empty: the endpoint URL itself. Placeholders such "
        "as {{ref}} are replaced by URL-encoded values.",
    )
    update_path = fields.Char(
        default="/{{external_id}}",
        help="Relative to the endpoint URL. Placeholders: {{external_id}}, {{id}}, a target key "
        "of the mapping, or a field path of the model ({{partner_id.ref}}), URL-encoded.",
    )
    delete_path = fields.Char(
        default="/{{external_id}}",
        help="Relative to the endpoint URL; values are those of the record when it was deleted.",
    )
    external_id_path = fields.Char(
        string="External ID Path",
        default="id",
        help="Where a create response gives the new object's id: a dotted path of its JSON body "
        "(id, data.id). When the body has none: the last segment of its Location header.",
    )
    on_remote_missing = fields.Selection(
        [("recreate", "Create it again"), ("fail", "Fail the event")],
        string="Update of a Missing Object",
        default="recreate",
        required=True,
        help="When an update is answered 404 or 410: drop the external id and create the "
        "object again, or fail the event.",
    )
    request_header_ids = fields.One2many(
        "api.sync.request.header", "config_id", string="Extra Headers", copy=True
    )
    binding_count = fields.Integer(string="External IDs", compute="_compute_binding_count")

    def _compute_binding_count(self):
        counts = dict(
            self.env["api.sync.binding"]._read_group(
                [("config_id", "in", self.ids)], ["config_id"], ["__count"]
            )
        )
        for config in self:
            config.binding_count = counts.get(config, 0)

    def _forget_captured_data(self):
        """The placeholder values read as the previous Integration User go too."""
        result = super()._forget_captured_data()
        self.env["api.sync.log"].sudo().search(
            [
                ("config_id", "in", self.ids),
                ("state", "=", "pending"),
                ("operation", "!=", "delete"),
                ("resource_values", "!=", False),
            ]
        ).resource_values = False
        return result

    def action_view_bindings(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("api_sync.action_api_sync_binding")
        action["domain"] = [("config_id", "=", self.id)]
        return action

    # -- validation -----------------------------------------------------------------------------

    @api.constrains(
        "payload_format",
        "create_path",
        "update_path",
        "delete_path",
        "external_id_path",
        "model_id",
        "mapping_ids",
        "integration_user_id",
    )
    def _check_resource_requests(self):
        for config in self.filtered(lambda config: config.payload_format == "resource"):
            keys = config._target_keys()
            for kind, fname in PATH_FIELDS.items():
                try:
                    names = resource.check_template(config[fname], kind)
                except resource.TemplateError as exc:
                    raise config._field_error(fname, exc) from None
                for name in names:
                    if name not in (resource.EXTERNAL_ID, resource.RECORD_ID, *keys):
                        config._placeholder_line(name, fname)
            path = (config.external_id_path or "").strip()
            if path and any(not segment for segment in path.split(".")):
                raise config._field_error(
                    "external_id_path",
                    self.env._("%(path)r has an empty segment (e.g. data.id).", path=path),
                )

    def _field_error(self, fname, problem):
        return ValidationError(
            self.env._(
                "%(field)s of %(config)s: %(problem)s",
                field=self._field_label(fname),
                config=self.display_name,
                problem=problem,
            )
        )

    def _field_label(self, fname):
        return self._fields[fname].get_description(self.env)["string"]

    def _target_keys(self):
        return {line.target_key.strip() for line in self.mapping_ids if line.target_key}

    def _placeholder_line(self, path, fname=None):
        """The engine line reading the field path of placeholder ``path`` (raw value); raises
        ValidationError naming the placeholder (and the field ``fname``) when it is unknown,
        not a single value or not readable by the Integration User."""
        Mapping = self.env["api.sync.field.mapping"]
        try:
            field_type = mapping.validate_source_path(
                path, self.model_name, Mapping._fields_of, "raw"
            )
        except mapping.ConfigurationError as exc:
            problem = self.env._(
                "unknown placeholder {{%(name)s}}: it is not {{external_id}}, {{id}}, a target "
                "key of the mapping nor a field path of %(model)s (%(error)s).",
                name=path,
                model=self.model_name,
                error=exc,
            )
            raise self._field_error(fname or "update_path", problem) from None
        if field_type in mapping.X2MANY_TYPES or field_type == "binary":
            problem = self.env._(
                "placeholder {{%(name)s}} is a %(type)s field, not a single value.",
                name=path,
                type=field_type,
            )
            raise self._field_error(fname or "update_path", problem)
        self._check_path_readable(path, "many2one_id")
        return mapping.MappingLine(
            source_path=mapping.split_path(path),
            target_key=path,
            transform="raw",
            field_type=field_type,
        )

    @api.constrains("auth_type", "api_key_header")
    def _check_request_headers(self):
        for config in self:
            taken = config._auth_header_names()
            seen = set()
            for header in config.request_header_ids:
                name = (header.name or "").strip()
                problem = wire.extra_header_problem(name, header.value or "", taken)
                if name.lower() in seen:
                    problem = self.env._("%(name)r is there twice.", name=name)
                seen.add(name.lower())
                if problem:
                    raise ValidationError(
                        self.env._(
                            "Extra Headers of %(config)s: %(problem)s",
                            config=config.display_name,
                            problem=problem,
                        )
                    )

    def _auth_header_names(self):
        return [name.strip() for name in self.sudo()._auth_headers()]

    # -- wire -----------------------------------------------------------------------------------

    def _operation_methods(self):
        return {kind: self[fname] for kind, fname in METHOD_FIELDS.items()}

    def _needs_external_id(self):
        return {
            kind: resource.EXTERNAL_ID in resource.placeholders(self[fname])
            for kind, fname in PATH_FIELDS.items()
        }

    def _external_id_needed(self):
        """Whether an update or delete this configuration sends is addressed by external id."""
        methods, needs = self._operation_methods(), self._needs_external_id()
        return any(needs[kind] and methods[kind] != resource.NOT_SENT for kind in needs)

    def _request_url(self, kind, values):
        """The URL of a ``kind`` request; raises MissingValue."""
        return resource.join_url(
            self.endpoint_url, resource.render(self[PATH_FIELDS[kind]], values)
        )

    def _preview_request(self, record, data):
        """``(request line, body)`` of the request ``record`` (mapped as ``data``) would
        make now, as a create or update (the request line says what is missing, if anything)."""
        bound = self.env["api.sync.binding"]._external_id(self, record.id)
        step = resource.plan("update", bound, self._operation_methods(), {})
        if step.skip:
            field = self._field_label(METHOD_FIELDS[step.kind])
            return self.env._("(not sent: %(field)s is Do not send)", field=field), data
        try:
            (values,) = self._placeholder_values(record, [data])
            url = self._request_url(step.kind, {**values, resource.EXTERNAL_ID: bound})
        except (resource.MissingValue, mapping.MappingError) as exc:
            url = self.env._("(cannot be sent: %(problem)s)", problem=exc)
        return f"{step.method} {url}", resource.body(data, (self.root_key or "").strip())

    def _placeholder_values(self, records, payloads):
        """Per record, the values of the placeholders of its paths but ``{{external_id}}``:
        ``{{id}}``, target keys from its mapped ``payloads``, field paths read as the
        Integration User. Raises MappingError when they cannot be read."""
        self.ensure_one()
        names = set()
        for fname in PATH_FIELDS.values():
            names.update(resource.placeholders(self[fname]))
        names -= {resource.EXTERNAL_ID, resource.RECORD_ID}
        keys = names & self._target_keys()
        try:
            lines = [self._placeholder_line(path) for path in sorted(names - keys)]
        except ValidationError as exc:  # the mapping changed since the paths were saved
            raise mapping.MappingError(exc.args[0]) from None
        readable = records.with_env(self._reader_env()).browse(records.ids)
        try:
            rows = self.env["api.sync.field.mapping"]._read_source_values(readable, lines)
        except AccessError:
            raise mapping.MappingError(
                self.env._(
                    "The Integration User %(user)s cannot read what the request paths need.",
                    user=self.sudo().integration_user_id.name,
                )
            ) from None
        return [
            {
                resource.RECORD_ID: record.id,
                **{key: resource.lookup(data, key) for key in keys},
                **{
                    line.target_key: mapping.convert(line, value)
                    for line, value in zip(lines, row, strict=True)
                },
            }
            for record, data, row in zip(records, payloads, rows, strict=True)
        ]
