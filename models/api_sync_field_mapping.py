"""One line of a configuration's field mapping: a source field path and where it lands in JSON."""

from itertools import chain, islice

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.models import PREFETCH_MAX

from ..engine import mapping

NAME_TRANSFORMS = ("string", "many2one_name", "x2many_names")
# the transform suggested when a source field of this type is picked
SUGGESTED_TRANSFORMS = {
    "date": "date",
    "datetime": "datetime",
    "boolean": "boolean",
    "integer": "integer",
    "float": "float",
    "monetary": "float",
    "many2one": "many2one_id",
    "one2many": "x2many_ids",
    "many2many": "x2many_ids",
    "char": "string",
    "text": "string",
    "html": "string",
    "selection": "string",
}


class ApiSyncFieldMapping(models.Model):
    _name = "api.sync.field.mapping"
    _description = "API Sync Field Mapping"
    _order = "config_id, sequence, id"

    config_id = fields.Many2one(
        "api.sync.config", string="Configuration", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="config_id.company_id")
    model_name = fields.Char(related="config_id.model_name")
    sequence = fields.Integer(default=10)
    source_path = fields.Char(
        help="Dotted path from the synced record, e.g. parent_id.country_id.code. "
        "Only many2one fields can be followed; x2many fields end a path.",
    )
    target_key = fields.Char(
        required=True,
        help="Key in the JSON payload; dots build nested objects, e.g. address.country.",
    )
    transform = fields.Selection(list(mapping.TRANSFORMS), required=True, default="raw")
    default_value = fields.Char(
        help="Used when the source is empty, and the value of a Constant. Read as JSON when it "
        'parses (42, true, "text", {"a": 1}), otherwise as plain text.',
    )
    required = fields.Boolean(help="Refuse to send a record whose value is empty.")

    @api.model_create_multi
    def create(self, vals_list):
        self.env.registry.clear_cache()  # _mapped_field_names_cached
        lines = super().create(vals_list)
        lines.config_id._check_can_change()  # defaults (also from the context) applied by now
        return lines

    def write(self, vals):
        self.config_id._check_can_change()
        if vals.get("config_id"):
            self.config_id.browse(vals["config_id"])._check_can_change()
        self.env.registry.clear_cache()
        return super().write(vals)

    def unlink(self):
        self.config_id._check_can_change()
        self.env.registry.clear_cache()
        return super().unlink()

    @api.onchange("source_path")
    def _onchange_source_path_suggest_transform(self):
        """Picking a field suggests the transform that fits its type (raw stays raw for the
        types it fits)."""
        for line in self:
            if not line.source_path or not line.config_id.model_name:
                continue
            try:
                field_type = mapping.validate_source_path(
                    line.source_path, line.config_id.model_name, line._fields_of, "raw"
                )
            except mapping.ConfigurationError:
                continue
            if line.transform in ("raw", False) or line.transform not in self._fitting(field_type):
                line.transform = SUGGESTED_TRANSFORMS.get(field_type, "raw")

    @api.model
    def _fitting(self, field_type):
        return [
            key
            for key, accepted in mapping.ACCEPTED_TYPES.items()
            if accepted is None or field_type in accepted
        ]

    @api.constrains("source_path", "transform", "default_value", "config_id")
    def _check_source_path(self):
        for line in self:
            try:
                mapping.parse_default(line.default_value)
            except mapping.ConfigurationError as exc:
                raise ValidationError(
                    self.env._(
                        "Field mapping of %(config)s, line %(key)r: %(error)s",
                        config=line.config_id.display_name,
                        key=line.target_key,
                        error=exc,
                    )
                ) from None
            if line.transform == "constant":
                if not line.default_value:
                    raise ValidationError(
                        self.env._(
                            "Mapping line %(key)r: a Constant needs a Default Value.",
                            key=line.target_key,
                        )
                    )
                continue
            if not line.source_path:
                raise ValidationError(
                    self.env._(
                        "Mapping line %(key)r needs a Source Path (or the Constant transform).",
                        key=line.target_key,
                    )
                )
            try:
                line._source_field_type()
            except mapping.ConfigurationError as exc:
                raise ValidationError(
                    self.env._(
                        "Field mapping of %(config)s: %(error)s",
                        config=line.config_id.display_name,
                        error=exc,
                    )
                ) from None
            line.config_id._check_path_readable(line.source_path, line.transform)

    @api.constrains("target_key", "config_id")
    def _check_target_key(self):
        for config in self.config_id:
            try:
                mapping.validate_target_keys(config.mapping_ids.mapped("target_key"))
            except mapping.ConfigurationError as exc:
                raise ValidationError(
                    self.env._(
                        "Field mapping of %(config)s: %(error)s",
                        config=config.display_name,
                        error=exc,
                    )
                ) from None

    def _fields_of(self, model_name):
        return {
            name: (field.type, field.comodel_name)
            for name, field in self.env[model_name]._fields.items()
        }

    def _source_field_type(self):
        self.ensure_one()
        return mapping.validate_source_path(
            self.source_path, self.config_id.model_name, self._fields_of, self.transform
        )

    def _to_engine_line(self):
        self.ensure_one()
        constant = self.transform == "constant"
        return mapping.MappingLine(
            source_path=() if constant else mapping.split_path(self.source_path),
            target_key=self.target_key.strip(),
            transform=self.transform,
            field_type=None if constant else self._source_field_type(),
            default=mapping.parse_default(self.default_value),
            required=self.required,
            label=self.source_path or self.target_key,
        )

    # -- bulk reading -------------------------------------------------------------------------

    @api.model
    def _read_source_values(self, records, lines):
        """Source values of every line for every record, read with a bounded number of queries.

        Returns one list per record, each holding one normalised value per line: plain values as
        the ORM gives them, :class:`~..engine.mapping.Relation` for many2one and lists of them
        for x2many fields.
        """
        tree = {}
        for line in lines:
            node = tree
            for segment in line.source_path:
                node = node.setdefault(segment, {"children": {}, "names": False})
                last = node
                node = node["children"]
            if line.source_path and line.transform in NAME_TRANSFORMS:
                last["names"] = True
        self._prefetch_tree(records, tree)
        names_wanted = {line.source_path for line in lines if line.transform in NAME_TRANSFORMS}
        return [
            [
                self._source_value(record, line.source_path, line.source_path in names_wanted)
                if line.source_path
                else None
                for line in lines
            ]
            for record in records
        ]

    @api.model
    def _prefetch_tree(self, records, tree):
        """Load every field of ``tree`` for all ``records`` at once, level by level.

        The records' prefetch set is loaded too (up to Odoo's prefetch size): mapping the events
        of one job record by record then reads them all in the first query.
        """
        if not records or not tree:
            return
        records = records.browse(
            list(dict.fromkeys(islice(chain(records._ids, records._prefetch_ids), PREFETCH_MAX)))
        )
        records.fetch(list(tree))
        for fname, node in tree.items():
            field = records._fields[fname]
            if not field.relational or not (node["children"] or node["names"]):
                continue
            related = records.mapped(fname)
            if node["names"]:
                related.mapped("display_name")
            self._prefetch_tree(related, node["children"])

    @api.model
    def _source_value(self, record, path, with_names):
        value = record
        for segment in path[:-1]:
            value = value[segment]
            if not value:
                return None
        field = value._fields[path[-1]]
        result = value[path[-1]]
        if field.type == "many2one":
            if not result:
                return None
            return mapping.Relation(result.id, result.display_name if with_names else None)
        if field.type in mapping.X2MANY_TYPES:
            return [
                mapping.Relation(item.id, item.display_name if with_names else None)
                for item in result
            ]
        return result
