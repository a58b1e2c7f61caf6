"""Turn values read from records into JSON payloads, following an admin's field mapping.

The Odoo side reads each mapping line's source value in bulk and normalises it (plain values,
:class:`Relation` for related records, lists of them for x2many fields, and for a ``lines`` line
one list of child values per related record); this module applies the transforms, defaults,
required checks and builds nested JSON from dotted target keys.
"""

import datetime
import json
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any

TRANSFORMS = (
    ("raw", "Raw value"),
    ("string", "Text"),
    ("integer", "Integer"),
    ("float", "Decimal number"),
    ("boolean", "True/false"),
    ("date", "Date (ISO 8601)"),
    ("datetime", "Date and time (ISO 8601, UTC)"),
    ("many2one_id", "Many2one: id"),
    ("many2one_name", "Many2one: display name"),
    ("x2many_ids", "x2many: list of ids"),
    ("x2many_names", "x2many: list of display names"),
    ("constant", "Constant"),
    ("lines", "Lines (list of objects)"),
)
TRANSFORM_KEYS = frozenset(key for key, _label in TRANSFORMS)

# Field types whose values have no JSON form (a reference is a record of any model).
UNSUPPORTED_TYPES = frozenset({"reference", "properties_definition"})
X2MANY_TYPES = frozenset({"one2many", "many2many"})
MAX_DEFAULT_DEPTH = 32
# Field types each transform accepts as the last segment of its source path (None: any type).
ACCEPTED_TYPES = {
    "raw": None,
    "string": None,
    "integer": frozenset({"integer", "float", "monetary", "char", "text", "selection", "boolean"}),
    "float": frozenset({"integer", "float", "monetary", "char", "text", "selection"}),
    "boolean": None,
    "date": frozenset({"date", "datetime"}),
    "datetime": frozenset({"date", "datetime"}),
    "many2one_id": frozenset({"many2one"}),
    "many2one_name": frozenset({"many2one"}),
    "x2many_ids": X2MANY_TYPES,
    "x2many_names": X2MANY_TYPES,
    "lines": X2MANY_TYPES,
}


class MappingError(ValueError):
    """A record cannot be mapped (missing required value, unconvertible value)."""


class ConfigurationError(ValueError):
    """A mapping line is invalid; ``field`` names the offending setting."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Relation:
    """A related record as read from Odoo: its id and display name."""

    id: int
    name: str | None = None


@dataclass(frozen=True)
class MappingLine:
    """One line of a field mapping, already validated.

    ``field_type`` is the Odoo type of the last source segment (``None`` for constants).
    ``default`` is the parsed default value (see :func:`parse_default`), ``None`` when unset.
    ``children`` are the lines of a ``lines`` line: their source paths start on the related
    model and their target keys are relative to each object of the list.
    """

    source_path: tuple
    target_key: str
    transform: str
    field_type: str | None = None
    default: Any = None
    required: bool = False
    label: str = ""
    children: tuple = ()

    @cached_property
    def target_parts(self):
        return tuple(self.target_key.split("."))


def parse_default(text):
    """Read a default/constant value: JSON when it parses (``42``, ``true``, ``"x"``), else text.

    Raises :class:`ConfigurationError` for JSON nested deeper than MAX_DEFAULT_DEPTH.
    """
    if not text:
        return None
    if _nesting(text) > MAX_DEFAULT_DEPTH:
        raise ConfigurationError(
            "default_value",
            f"Default Value is nested {MAX_DEFAULT_DEPTH}+ levels deep: use a flatter JSON value.",
        )
    try:
        return json.loads(text)
    except ValueError:
        return text


def _nesting(text):
    """The deepest bracket nesting of ``text`` outside JSON strings (a linear scan: the JSON
    parser itself would exhaust the stack first)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def split_path(path):
    """Split a dotted source path, refusing empty segments."""
    parts = tuple(part.strip() for part in (path or "").split("."))
    if not parts or any(not part for part in parts):
        raise ConfigurationError("source_path", f"Source path {path!r} has an empty segment.")
    return parts


def validate_source_path(path, model, fields_of, transform):
    """Check every segment of ``path`` against the models it crosses.

    ``fields_of(model)`` returns ``{field name: (type, comodel or None)}`` for a model.
    Returns the type of the last field. Raises :class:`ConfigurationError` naming the bad segment
    and the model it was looked up on.
    """
    field_type, _comodel = _walk(path, model, fields_of)
    if field_type in UNSUPPORTED_TYPES:
        raise ConfigurationError(
            "source_path",
            f"Source path {path!r} ends on a {field_type} field, which has no JSON form; "
            "map one of its parts instead (e.g. the related record's id through a many2one).",
        )
    accepted = ACCEPTED_TYPES.get(transform)
    if accepted is not None and field_type not in accepted:
        raise ConfigurationError(
            "transform",
            f"Transform {transform!r} cannot be applied to {path!r}, a {field_type} field; "
            f"it accepts {', '.join(sorted(accepted))} fields.",
        )
    return field_type


def source_comodel(path, model, fields_of):
    """The model the last field of ``path`` points to (``None`` for a plain field): the model
    of the records a ``lines`` line lists, which its child lines' paths start from."""
    return _walk(path, model, fields_of)[1]


def _walk(path, model, fields_of):
    """``(type, comodel)`` of the last field of ``path``, every segment checked."""
    parts = split_path(path)
    current = model
    field_type = comodel = None
    for position, segment in enumerate(parts):
        fields = fields_of(current)
        if segment not in fields:
            raise ConfigurationError(
                "source_path",
                f"Source path {path!r}: model {current} has no field {segment!r}.",
            )
        field_type, comodel = fields[segment]
        if position < len(parts) - 1:
            if field_type != "many2one":
                raise ConfigurationError(
                    "source_path",
                    f"Source path {path!r}: segment {segment!r} on model {current} is a "
                    f"{field_type} field; only many2one fields can be followed. "
                    "End the path there and use an x2many transform (or Lines) for lists.",
                )
            current = comodel
    return field_type, comodel


def validate_target_keys(keys):
    """Refuse empty segments, duplicates, and keys that are both a value and an object."""
    seen = set()
    for key in keys:
        parts = tuple(part.strip() for part in (key or "").split("."))
        if not parts or any(not part for part in parts):
            raise ConfigurationError("target_key", f"Target key {key!r} has an empty segment.")
        if parts in seen:
            raise ConfigurationError("target_key", f"Target key {key!r} is mapped twice.")
        seen.add(parts)
    for parts in seen:
        for size in range(1, len(parts)):
            if parts[:size] in seen:
                raise ConfigurationError(
                    "target_key",
                    f"Target key {'.'.join(parts[:size])!r} is a value, so "
                    f"{'.'.join(parts)!r} cannot nest below it.",
                )


def _iso_date(value):
    if isinstance(value, datetime.datetime):
        return _as_utc(value).date().isoformat()
    return value.isoformat()


def _as_utc(value):
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def iso_datetime(value, precise=False):
    """A naive (UTC, as Odoo stores it) or aware datetime, or a date, as ISO 8601 with ``Z``.

    ``precise`` keeps microseconds (for versions, which order the updates of a record).
    """
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime.combine(value, datetime.time())
    value = _as_utc(value)
    if precise and value.microsecond:
        return value.isoformat(timespec="microseconds") + "Z"
    return value.isoformat(timespec="seconds") + "Z"


def parse_iso_datetime(text):
    """The naive UTC datetime of an ISO 8601 text made by :func:`iso_datetime`."""
    return datetime.datetime.fromisoformat(text.removesuffix("Z")) if text else None


def _is_empty(value):
    return value is None or value is False or value == [] or value == ""


def _raw(value, field_type):
    if isinstance(value, Relation):
        return value.id
    if isinstance(value, list):
        return [item.id if isinstance(item, Relation) else item for item in value]
    if isinstance(value, datetime.datetime):
        return iso_datetime(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("ascii")
    return value


def _to_string(value, field_type):
    if isinstance(value, Relation):
        return value.name
    if isinstance(value, list):
        return ", ".join(str(item.name if isinstance(item, Relation) else item) for item in value)
    raw = _raw(value, field_type)
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw)) if field_type == "integer" else str(raw)
    return str(raw)


def _to_integer(value, field_type):
    if isinstance(value, str):
        value = value.strip()
        return int(float(value)) if "." in value else int(value)
    return int(value)


def _to_float(value, field_type):
    return float(value.strip() if isinstance(value, str) else value)


def _to_boolean(value, field_type):
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def _names(value, field_type):
    return [item.name for item in value]


def _ids(value, field_type):
    return [item.id for item in value]


CONVERTERS = {
    "raw": _raw,
    "string": _to_string,
    "integer": _to_integer,
    "float": _to_float,
    "boolean": _to_boolean,
    "date": lambda value, field_type: _iso_date(value),
    "datetime": lambda value, field_type: iso_datetime(value),
    "many2one_id": lambda value, field_type: value.id,
    "many2one_name": lambda value, field_type: value.name,
    "x2many_ids": _ids,
    "x2many_names": _names,
}


def _label(record_label):
    return record_label() if callable(record_label) else record_label


def convert(line, value, record_label="record"):
    """Apply one mapping line to a source value; returns the JSON-ready value.

    Empty Odoo values (``False``, ``None``, empty lists) become the line's default, else ``null``;
    but booleans are kept as ``false`` and x2many transforms (lines too) give ``[]``.
    ``record_label`` (text, or a function giving it) names the record in errors.
    """
    if line.transform == "constant":
        result = line.default
    elif line.field_type == "boolean" and line.transform in ("raw", "boolean", "string"):
        result = CONVERTERS[line.transform](bool(value), "boolean")
    elif _is_empty(value):
        if line.default is not None:
            result = line.default
        elif line.transform in ("x2many_ids", "x2many_names", "lines") or (
            line.transform == "raw" and line.field_type in X2MANY_TYPES
        ):
            result = []
        elif line.transform == "boolean":
            result = False
        else:
            result = None
    elif line.transform == "lines":
        result = [
            build_payload(line.children, item, partial(_item_label, record_label, line, index))
            for index, item in enumerate(value)
        ]
    else:
        try:
            result = CONVERTERS[line.transform](value, line.field_type)
        except (TypeError, ValueError, AttributeError) as exc:
            raise MappingError(
                f"{_label(record_label)}: value of {'.'.join(line.source_path)!r} cannot be "
                "converted "
                f"with transform {line.transform!r} ({exc})."
            ) from None
    if line.required and (result is None or result == "" or result == []):
        raise MappingError(
            f"{_label(record_label)}: required field {line.label or '.'.join(line.source_path)!r} "
            f"(target {line.target_key!r}) has no value."
        )
    return result


def _item_label(record_label, line, index):
    """Names the ``index``-th object of a lines line in errors, e.g. ``... > lines[2]``."""
    return f"{_label(record_label)} > {line.target_key}[{index}]"


def build_payload(lines, values, record_label="record"):
    """Build the nested payload of one record (or of one object of a lines list).

    ``values`` holds one source value per line, in the same order as ``lines``; a ``lines``
    line's value is a list holding, per related record, the values of its children.
    """
    payload = {}
    for line, value in zip(lines, values, strict=True):
        node = payload
        *parents, leaf = line.target_parts
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = convert(line, value, record_label)
    return payload
