"""One line of a configuration's field mapping: a source field path and where it lands in JSON."""

from itertools import chain, islice

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..engine import mapping
from . import compat
from .compat import PREFETCH_MAX

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
    _inherit = "api.sync.config.part"
    _description = "API Sync Field Mapping"
    _order = "config_id, sequence, id"
    _rec_name = "target_key"

    config_id = fields.Many2one(
        "api.sync.config", string="Configuration", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="config_id.company_id")
    parent_line_id = fields.Many2one(
        "api.sync.field.mapping",
        string="Lines Line",
        ondelete="cascade",
        index="btree_not_null",
        help="The Lines (list of objects) line whose objects this line fills.",
    )
    child_line_ids = fields.One2many(
        "api.sync.field.mapping",
        "parent_line_id",
        string="Line Fields",
        copy=True,
        help="What each object of the list holds: source paths start from the listed records "
        "(e.g. product_id.default_code of an order line), target keys are keys of each object.",
    )
    model_name = fields.Char(
        compute="_compute_model_name",
        recursive=True,
        string="Source Model",
        help="The model the source path starts from: the configuration's model, or for the "
        "fields of a Lines line the model of the records it lists.",
    )
    line_fields = fields.Char(compute="_compute_line_fields", string="Line Fields Summary")
    lines_many2many = fields.Boolean(
        compute="_compute_lines_many2many",
        help="A Lines line on a many2many field: its records have no link back to the document.",
    )
    sequence = fields.Integer(default=10)
    source_path = fields.Char(
        help="Dotted path from the synced record (from each listed record for the fields of a "
        "Lines line), e.g. parent_id.country_id.code. Only many2one fields can be followed; "
        "x2many fields end a path.",
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
    inbound = fields.Boolean(
        help="Two-way sync: write this field from the target key of the events the remote "
        "system sends to the inbound URL, through the inverse of the transform.",
    )
    inbound_id_config_id = fields.Many2one(
        "api.sync.config",
        string="External IDs Of",
        ondelete="set null",
        help="Inbound many2one by id: the configuration whose external ids the remote system "
        "sends for the related record (its External IDs find it).",
    )

    @api.depends("config_id.model_name", "parent_line_id.model_name", "parent_line_id.source_path")
    def _compute_model_name(self):
        for line in self:
            parent = line.parent_line_id
            line.model_name = (
                parent._listed_model() if parent else line.config_id.model_name
            ) or False

    @api.depends("transform", "source_path", "model_name")
    def _compute_lines_many2many(self):
        for line in self:
            line.lines_many2many = line.transform == "lines" and line._last_field_type() == (
                "many2many"
            )

    def _last_field_type(self):
        """The type of the field the source path ends on (None when it names none)."""
        model_name, field = self.model_name, None
        for name in (self.source_path or "").split("."):
            model = self.env.get(model_name) if model_name else None
            field = model._fields.get(name.strip()) if model is not None else None
            if field is None:
                return None
            model_name = field.comodel_name
        return field.type if field else None

    @api.depends("child_line_ids.target_key")
    def _compute_line_fields(self):
        for line in self:
            line.line_fields = ", ".join(filter(None, line.child_line_ids.mapped("target_key")))

    def _listed_model(self):
        """The model of the records this line's path lists (``None`` when it lists none)."""
        if not (self.model_name and self.source_path):
            return None
        try:
            return mapping.source_comodel(self.source_path, self.model_name, self._fields_of)
        except mapping.ConfigurationError:
            return None

    @api.model_create_multi
    def create(self, vals_list):
        self.env["api.sync.config"]._invalidate_caches()
        for vals in vals_list:  # the fields of a Lines line belong to its configuration
            if vals.get("parent_line_id"):
                vals["config_id"] = self.browse(vals["parent_line_id"]).config_id.id
        return super().create(vals_list)

    def write(self, vals):
        self.env["api.sync.config"]._invalidate_caches()
        configs = self.config_id
        result = super().write(vals)
        (configs | self.config_id)._check_resource_requests()  # request paths use target keys
        return result

    def unlink(self):
        self.env["api.sync.config"]._invalidate_caches()
        parents = self.parent_line_id - self
        configs = self.config_id
        result = super().unlink()
        parents.exists()._check_lines()  # a Lines line keeps at least one field
        configs.exists()._check_resource_requests()  # request paths use target keys
        return result

    @api.onchange("source_path")
    def _onchange_source_path_suggest_transform(self):
        """Picking a field suggests the transform that fits its type (raw stays raw for the
        types it fits)."""
        for line in self:
            if not line.source_path or not line.model_name:
                continue
            try:
                field_type = mapping.validate_source_path(
                    line.source_path, line.model_name, line._fields_of, "raw"
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

    @api.constrains("source_path", "transform", "default_value", "config_id", "parent_line_id")
    def _check_source_path(self):
        """Every line and the fields of its Lines (their paths start where its path ends)."""
        for line in self._with_descendants():
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
            line.config_id._check_path_readable(line._full_path(), line.transform)

    @api.constrains("transform", "parent_line_id", "child_line_ids", "config_id")
    def _check_lines(self):
        for line in self:
            parent = line.parent_line_id
            for lines_line in (line | parent).filtered("child_line_ids"):
                if lines_line.transform != "lines":
                    raise ValidationError(
                        self.env._(
                            "Mapping line %(key)r has Line Fields (%(fields)s): set its "
                            "Transform to Lines (list of objects), or remove them.",
                            key=lines_line.target_key,
                            fields=lines_line.line_fields,
                        )
                    )
            if parent and parent.config_id != line.config_id:
                raise ValidationError(
                    self.env._(
                        "Mapping line %(key)r fills the objects of %(parent)r, a line of another "
                        "configuration.",
                        key=line.target_key,
                        parent=parent.target_key,
                    )
                )
            if line.transform == "lines" and not line.child_line_ids:
                raise ValidationError(
                    self.env._(
                        "Mapping line %(key)r (Lines) needs Line Fields: add what each object "
                        "of its list holds (e.g. product_id.default_code as sku).",
                        key=line.target_key,
                    )
                )
        if self._has_cycle("parent_line_id"):
            raise ValidationError(
                self.env._("A mapping line cannot be among the Line Fields of its own fields.")
            )

    @api.constrains("target_key", "config_id", "parent_line_id")
    def _check_target_key(self):
        siblings = {
            line.parent_line_id.child_line_ids
            if line.parent_line_id
            else line.config_id.mapping_ids
            for line in self
        }
        for lines in siblings:
            try:
                mapping.validate_target_keys(lines.mapped("target_key"))
            except mapping.ConfigurationError as exc:
                where = lines.parent_line_id[:1]
                raise ValidationError(
                    self.env._(
                        "Field mapping of %(config)s%(lines)s: %(error)s",
                        config=lines.config_id[:1].display_name,
                        lines=self.env._(", Line Fields of %r", where.target_key) if where else "",
                        error=exc,
                    )
                ) from None

    @api.constrains("inbound", "inbound_id_config_id", "transform", "source_path", "parent_line_id")
    def _check_inbound(self):
        """Lines applied inbound need an inverse (checked with all the configuration's)."""
        for line in self.filtered("inbound"):
            if line.parent_line_id:
                raise ValidationError(
                    self.env._(
                        "Mapping line %(key)r: the Line Fields of a Lines line are not written "
                        "back inbound.",
                        key=line.target_key,
                    )
                )
        self.config_id.filtered(
            lambda config: config.mapping_ids.filtered("inbound")
        )._check_inbound()

    def _with_descendants(self):
        """These lines and the fields of their Lines, at any depth."""
        lines = todo = self
        while todo := todo.child_line_ids - lines:
            lines |= todo
        return lines

    def _full_path(self):
        """The source path from the configuration's model, through the Lines above it."""
        self.ensure_one()
        parent = self.parent_line_id
        return f"{parent._full_path()}.{self.source_path}" if parent else self.source_path

    def _fields_of(self, model_name):
        return {
            name: (field.type, field.comodel_name)
            for name, field in self.env[model_name]._fields.items()
        }

    def _source_field_type(self):
        self.ensure_one()
        if not self.model_name:  # the path of its Lines line lists no records
            self.parent_line_id._source_field_type()  # that line's own error first
            raise mapping.ConfigurationError(
                "source_path",
                f"line {self.target_key!r} fills the objects of Lines line "
                f"{self.parent_line_id.target_key!r}, whose source path lists no records.",
            )
        return mapping.validate_source_path(
            self.source_path, self.model_name, self._fields_of, self.transform
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
            children=tuple(line._to_engine_line() for line in self.child_line_ids.sorted())
            if self.transform == "lines"
            else (),
        )

    # -- bulk reading -------------------------------------------------------------------------

    @api.model
    def _read_source_values(self, records, lines):
        """Source values of every line for every record, read with a bounded number of queries
        (the records of Lines lines too, level by level, whatever the number of records).

        Returns one list per record, each holding one normalised value per line: plain values as
        the ORM gives them, :class:`~..engine.mapping.Relation` for many2one and lists of them
        for x2many fields, and for a Lines line one such list of its fields' values per listed
        record.
        """
        tree = {}
        self._add_to_tree(tree, lines)
        self._prefetch_tree(records, tree)
        return self._values_of(records, lines)

    @api.model
    def _add_to_tree(self, tree, lines):
        """Merge the source paths of ``lines`` (and of their fields) into ``tree``."""
        for line in lines:
            if not line.source_path:
                continue
            node = tree
            for segment in line.source_path:
                last = node.setdefault(segment, {"children": {}, "names": False})
                node = last["children"]
            if line.transform in NAME_TRANSFORMS:
                last["names"] = True
            self._add_to_tree(node, line.children)

    @api.model
    def _prefetch_tree(self, records, tree):
        """Load every field of ``tree`` for all ``records`` at once, level by level.

        The records' prefetch set is loaded too (up to Odoo's prefetch size): mapping the events
        of one job record by record then reads them all in the first query.
        """
        if not records or not tree:
            return
        records = records.browse(
            list(dict.fromkeys(chain(records._ids, islice(records._prefetch_ids, PREFETCH_MAX))))
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
    def _values_of(self, records, lines):
        """``_read_source_values`` of records already read: taken column by column, each
        field's values for all records at once."""
        columns = [self._source_column(records, line) for line in lines]
        return [[column[index] for column in columns] for index in range(len(records))]

    @api.model
    def _source_column(self, records, line):
        """The source value of ``line`` for each of ``records``, in their order."""
        if not line.source_path:
            return [None] * len(records)
        *path, last = line.source_path
        model, ids = records.browse(), list(records._ids)
        for segment in path:  # many2one fields (checked at save)
            values = self._field_values(model, ids, segment)
            model = model.env[model._fields[segment].comodel_name]
            ids = [values.get(res_id) for res_id in ids]
        values = self._field_values(model, ids, last)
        column = [values[res_id] if res_id else None for res_id in ids]
        field = model._fields[last]
        if not field.relational:
            return column
        related = model.env[field.comodel_name]
        if field.type == "many2one":
            names = self._display_names(related, column, line)
            return [mapping.Relation(item, names.get(item)) if item else None for item in column]
        lists = [item_ids or [] for item_ids in column]
        items = list(dict.fromkeys(item for item_ids in lists for item in item_ids))
        if line.transform == "lines":
            children = self._values_of(related.browse(items), line.children)
            by_item = dict(zip(items, children, strict=True))
            return [[by_item[item] for item in item_ids] for item_ids in lists]
        names = self._display_names(related, items, line)
        return [
            [mapping.Relation(item, names.get(item)) for item in item_ids] for item_ids in lists
        ]

    @api.model
    def _display_names(self, related, ids, line):
        """``{id: display name}`` of the related records ``ids`` (empty ones skipped), read
        together, when ``line`` sends names."""
        if line.transform not in NAME_TRANSFORMS:
            return {}
        records = related.browse(list(dict.fromkeys(filter(None, ids))))
        return dict(zip(records._ids, records.mapped("display_name"), strict=True))

    @api.model
    def _field_values(self, model, ids, fname):
        """``{record id: value}`` of the field ``fname`` for the records ``ids`` of ``model``
        (empty ids skipped), as reading ``record[fname]`` gives it, but for all of them at
        once: a plain value, the related id (or None) of a many2one, the list of related ids of
        an x2many (inactive ones left out, as the ORM does)."""
        records = model.browse(list(dict.fromkeys(filter(None, ids))))
        field = records._fields[fname]
        # reads what the cache misses, recomputes, raises AccessError as reading one would
        values = records.mapped(fname)
        if not field.relational:
            return dict(zip(records._ids, values, strict=True))
        stored = compat.cached_values(records, field)
        if field.type == "many2one":
            return {
                res_id: value or None for res_id, value in zip(records._ids, stored, strict=True)
            }
        kept = set(values._ids)
        return {
            res_id: [item for item in value if item in kept]
            for res_id, value in zip(records._ids, stored, strict=True)
        }
