"""Inbound sync: what a remote system sends to Odoo, checked, read and mapped back to fields.

A request is handled in this order, each step on what the previous one let through::

    body = read_bounded(request.stream, limit, request.content_length)   # 413
    verify_standard_webhooks(secrets, headers, body, time.time())         # or verify_hmac,
                                                                          # verify_token: 401
    document = parse_json(body)                                           # 400
    event = read_event(settings, method, headers, document)               # EventError
    mapped = map_inbound(lines, event.data, known=event.consumed)         # MappingError
    is_stale(event.timestamp, binding_version, rule)                      # skip the update

The first three steps raise :class:`Refused`, which carries the HTTP status and a short reason
meant for the sender (``refused.body()`` is the JSON answer). A reason never holds a secret, a
header value, a configured path or any other setting. An unknown configuration token is
``Refused(404, NOT_FOUND)``, raised by the caller. Nothing is parsed before the signature is
checked: verifying needs the raw bytes only.

Once the sender is verified, the event is the caller's to record: :class:`EventError` (the
envelope lacks an event id, an operation, an object id...) and :class:`MappingError` (a value
that does not convert, a required key missing) carry a message for a person reading the log,
which names the configured paths and keys involved. Both are ``ValueError``.

Replays inside the timestamp tolerance are the caller's to refuse: the event id
(:attr:`Event.event_id`) is unique per configuration.

Mapping back: an :class:`InboundLine` writes one field of the model from one key of the data,
through the inverse of the outbound transform (see :func:`inverse_problem` for the lines that
have none). A line whose source path is ``partner_id.ref`` writes the many2one ``partner_id``
with the record whose ``ref`` is the value: :func:`map_inbound` gives a :class:`Lookup` for
the caller to resolve, never a record. The inverses live here rather than next to the forward
transforms in :mod:`engine.mapping`: they read hostile JSON and report per key of the data,
where the forward ones read Odoo's own values and report per record. Nothing here imports Odoo.
"""

import base64
import datetime
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .mapping import ConfigurationError, MappingLine
from .mapping import MappingError as _OutboundMappingError
from .resource import lookup

DEFAULT_MAX_BODY = 1024 * 1024  # bytes
MAX_DEPTH = 64  # nesting of the JSON body
MAX_ID_LENGTH = 255  # event ids and object ids
MAX_UNKNOWN = 100  # unknown keys listed (all are counted)
CHUNK = 65536
NOT_FOUND = "not found"
OPERATIONS = ("create", "update", "delete")
OPERATION_SOURCES = (
    ("path", "JSON path"),
    ("event_type", "Event type"),
    ("method", "HTTP method"),
)
# Values an operation path or event type may hold, and the operation each means.
DEFAULT_OPERATION_MAP = {
    "create": "create",
    "created": "create",
    "update": "update",
    "updated": "update",
    "delete": "delete",
    "deleted": "delete",
}
METHOD_OPERATIONS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
STALE_RULES = (("newest_wins", "Newest wins"), ("remote_wins", "Remote wins"))
HMAC_ENCODINGS = (("hex", "Hexadecimal (GitHub)"), ("base64", "Base64 (Shopify)"))
HMAC_PREFIX = "sha256="
TYPE_WORD = re.compile(r"[./_:\-\s]")
DIGITS = re.compile(r"[0-9]{1,15}\Z")
PRINTABLE = re.compile(r"[\x21-\x7e]+\Z")
INTEGER = re.compile(r"[+-]?[0-9]+\Z")
INT32 = 2**31 - 1  # Odoo integer fields are PostgreSQL integers
TRUE_TEXTS = frozenset({"true", "1", "yes", "on"})
FALSE_TEXTS = frozenset({"false", "0", "no", "off"})

TEXT_TYPES = frozenset({"char", "text", "html"})
NUMBER_TYPES = frozenset({"integer", "float", "monetary"})
KEY_TYPES = frozenset({"char", "text", "integer"})  # fields a many2one may be found by
KEY_TRANSFORMS = frozenset({"raw", "string", "integer"})  # and the transforms that send them
# Field types each transform's inverse can write (the last segment of the source path).
WRITABLE = {
    "raw": TEXT_TYPES | NUMBER_TYPES | {"boolean", "date", "datetime", "selection", "many2one"},
    "string": TEXT_TYPES | NUMBER_TYPES | {"boolean", "date", "datetime", "selection"},
    "integer": TEXT_TYPES | NUMBER_TYPES | {"boolean", "selection"},
    "float": TEXT_TYPES | NUMBER_TYPES | {"selection"},
    "boolean": frozenset({"boolean"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"date", "datetime"}),
    "many2one_id": frozenset({"many2one"}),
}
# Why the other transforms are refused for inbound lines.
NO_INVERSE = {
    "many2one_name": (
        "display names are not unique: map a key field of the related record instead "
        "(e.g. partner_id.ref) or its id, with the external ids of another configuration"
    ),
    "x2many_ids": "lists of related records are not written back",
    "x2many_names": "lists of related records are not written back",
    "lines": "lists of objects are not written back",
    "constant": "a constant comes from no field, so there is no field to write",
}
_MISSING = object()


class Refused(Exception):
    """A request refused before it is an event: ``status`` (HTTP) and a short ``reason`` that
    may be shown to anyone (it says nothing about the configuration)."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def body(self):
        """The JSON answer: ``{"error": reason}``."""
        return wire.encode({"error": self.reason})


class EventError(ValueError):
    """A verified request that is not a usable event (said for the person reading the log)."""


class MappingError(_OutboundMappingError):
    """Data that cannot be written; ``problems`` lists ``(key, what is wrong)``, all of them
    (the message joins them). A :class:`engine.mapping.MappingError` too."""

    def __init__(self, problems):
        super().__init__("; ".join(f"{key}: {problem}" for key, problem in problems))
        self.problems = tuple(problems)


# Verification ------------------------------------------------------------------------------


def header(headers, name):
    """The value of header ``name`` in a mapping of headers, whatever the case of its name."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def verify_standard_webhooks(secrets, headers, body, now, tolerance=wire.SIGNATURE_TOLERANCE):
    """Check the ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers of a
    Standard Webhooks request against the raw ``body``.

    ``secrets`` are ``whsec_`` secrets: every one is accepted (a rotation in progress), none
    may be malformed (ValueError). ``now`` is a Unix time; a timestamp more than ``tolerance``
    seconds away from it, in either direction, is refused. Raises :class:`Refused` (401).
    """
    secrets = tuple(secrets)
    if not secrets:
        raise ValueError("no secret to verify Standard Webhooks signatures with")
    message_id = header(headers, "webhook-id")
    timestamp = header(headers, "webhook-timestamp")
    signatures = header(headers, "webhook-signature")
    if not (message_id and timestamp and signatures):
        raise Refused(401, "missing signature headers")
    if not (
        PRINTABLE.match(message_id)
        and len(message_id) <= MAX_ID_LENGTH
        and DIGITS.match(timestamp.strip())
    ):
        raise Refused(401, "malformed signature headers")
    timestamp = int(timestamp)
    if abs(now - timestamp) > tolerance:
        raise Refused(401, "timestamp too old or too new")
    if not wire.signature_matches(secrets, message_id, timestamp, body, signatures):
        raise Refused(401, "bad signature")


def hmac_digest(secret, body):
    """The HMAC-SHA256 digest (bytes) of ``body`` keyed with the UTF-8 text ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def verify_hmac(secret, header_value, body, encoding):
    """Check a header holding the HMAC-SHA256 of the raw ``body`` keyed with ``secret``.

    ``encoding`` is ``hex`` (GitHub's ``X-Hub-Signature-256: sha256=<hex>``, any case) or
    ``base64`` (Shopify's ``X-Shopify-Hmac-Sha256: <base64>``); a ``sha256=`` prefix is
    accepted with either. Raises :class:`Refused` (401).
    """
    if not secret:
        raise ValueError("no secret to verify HMAC signatures with")
    if encoding not in dict(HMAC_ENCODINGS):
        raise ValueError(f"unknown HMAC encoding {encoding!r}")
    if not header_value or not header_value.strip():
        raise Refused(401, "missing signature")
    text = header_value.strip().removeprefix(HMAC_PREFIX)
    try:
        if encoding == "hex":
            given = bytes.fromhex(text)
        else:
            given = base64.b64decode(text, validate=True)
    except ValueError:
        raise Refused(401, "bad signature") from None
    if not hmac.compare_digest(given, hmac_digest(secret, body)):
        raise Refused(401, "bad signature")


def verify_token(expected, given):
    """Check a static token: the whole header value ``given`` must equal ``expected``
    (constant-time). Raises :class:`Refused` (401)."""
    if not expected:
        raise ValueError("no token to compare with")
    if not given:
        raise Refused(401, "missing token")
    if not hmac.compare_digest(_bytes(given), _bytes(expected)):
        raise Refused(401, "bad token")


def _bytes(text):
    return text.encode("utf-8", "backslashreplace")


# Reading -----------------------------------------------------------------------------------


def read_bounded(source, limit=DEFAULT_MAX_BODY, declared_length=None):
    """The body, as bytes, from bytes or a stream with ``read(size)``, reading at most
    ``limit + 1`` bytes. Raises :class:`Refused` (413) when it is longer than ``limit``, or
    when ``declared_length`` (the Content-Length) already says so, before anything is read."""
    declared = str(declared_length).strip() if declared_length is not None else ""
    if DIGITS.match(declared) and int(declared) > limit:
        raise Refused(413, "body too large")
    if isinstance(source, bytes | bytearray):
        body = bytes(source)
    else:
        chunks, size = [], 0
        while size <= limit:
            chunk = source.read(min(CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        body = b"".join(chunks)
    if len(body) > limit:
        raise Refused(413, "body too large")
    return body


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_json(body):
    """The JSON object of a UTF-8 ``body``. Raises :class:`Refused` (400) when it is not UTF-8
    JSON (``NaN`` and ``Infinity`` are not), is not an object at the top level, or nests deeper
    than MAX_DEPTH."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused(400, "not JSON") from None
    if not isinstance(document, dict):
        raise Refused(400, "not a JSON object")
    if _depth(document) > MAX_DEPTH:
        raise Refused(400, "JSON nested too deeply")
    return document


def _depth(document):
    deepest, stack = 0, [(document, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


# Events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Where the parts of an event are, as a configuration sets them. Paths are dotted
    (``data.id``, ``items.0.id``) and relative to the whole JSON body.

    - the event id: at ``event_id_path`` when set, else in the header ``event_id_header``;
    - the operation, by ``operation_source``: ``path``, the value at ``operation_path``
      looked up in ``operation_map``; ``event_type``, the event type (at ``operation_path``,
      or in the header ``operation_header`` when set) looked up whole in ``operation_map``,
      else by its last word (``contact.updated``, ``customers/update``, ``order_deleted``:
      ``updated``, ``update``, ``deleted``); ``method``, the HTTP method (METHOD_OPERATIONS).
      Lookups ignore case; ``operation_map`` defaults to DEFAULT_OPERATION_MAP;
    - the remote object's id at ``external_id_path`` (optional);
    - the remote change time at ``timestamp_path`` (optional): ISO 8601 (an offset or ``Z``;
      without one it is UTC) or Unix seconds;
    - the object's data at ``data_path`` (optional, e.g. the root key ``contact``), else the
      whole body.
    """

    event_id_header: str = "webhook-id"
    event_id_path: str = ""
    operation_source: str = "event_type"
    operation_path: str = "type"
    operation_header: str = ""
    operation_map: dict = field(default_factory=lambda: dict(DEFAULT_OPERATION_MAP))
    external_id_path: str = ""
    timestamp_path: str = ""
    data_path: str = ""


@dataclass(frozen=True)
class Event:
    """What an inbound request asks: ``event_id`` (text), ``operation`` (create, update,
    delete), ``external_id`` (text, or None without External ID Path), ``timestamp`` (naive
    UTC, or None), ``data`` (a dict) and ``consumed``, the keys of ``data`` that the settings
    read (the envelope, when the data is the whole body): not unknown to :func:`map_inbound`."""

    event_id: str
    operation: str
    external_id: str | None
    timestamp: datetime.datetime | None
    data: dict
    consumed: tuple = ()


def parse_operation_map(text, field_name="operation_map"):
    """An operation map from an admin's text: ``value: operation`` pairs (``=`` works too),
    separated by commas or new lines, e.g. ``opened: create, edited: update``. Raises
    :class:`ConfigurationError` naming ``field_name``."""
    result = {}
    for item in re.split(r"[,\n]", text or ""):
        if not item.strip():
            continue
        value, sep, operation = item.replace("=", ":", 1).partition(":")
        value, operation = value.strip().lower(), operation.strip().lower()
        if not sep or not value or operation not in OPERATIONS:
            raise ConfigurationError(
                field_name,
                f"{item.strip()!r} is not 'value: operation' with an operation among "
                f"{', '.join(OPERATIONS)}.",
            )
        result[value] = operation
    return result


def read_event(settings, method, headers, document):
    """The :class:`Event` of a verified request (``document`` from :func:`parse_json`).
    Raises :class:`EventError`."""
    if settings.event_id_path:
        event_id = _identifier(lookup(document, settings.event_id_path))
        where = f"at {settings.event_id_path!r}"
    else:
        event_id = _identifier(header(headers, settings.event_id_header))
        where = f"in the header {settings.event_id_header}"
    if event_id is None:
        raise EventError(f"No event id {where} (text or number of 1 to {MAX_ID_LENGTH} chars).")
    operation = _operation(settings, method, headers, document)
    external_id = None
    if settings.external_id_path:
        external_id = _identifier(lookup(document, settings.external_id_path))
        if external_id is None:
            raise EventError(
                f"No object id at {settings.external_id_path!r} "
                f"(text or number of 1 to {MAX_ID_LENGTH} chars)."
            )
    timestamp = None
    if settings.timestamp_path:
        value = lookup(document, settings.timestamp_path)
        if value is not None:
            try:
                timestamp = parse_timestamp(value)
            except ValueError as exc:
                raise EventError(f"Timestamp at {settings.timestamp_path!r}: {exc}.") from None
    data = lookup(document, settings.data_path) if settings.data_path else document
    if data is None and operation == "delete":
        data = {}
    if not isinstance(data, dict):
        raise EventError(f"The data at {settings.data_path!r} is not a JSON object.")
    return Event(event_id, operation, external_id, timestamp, data, _consumed(settings))


def _identifier(value):
    """An event or object id as text, None when missing, empty, too long or not a scalar."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if 0 < len(text) <= MAX_ID_LENGTH else None


def _operation(settings, method, headers, document):
    mapping = {key.lower(): value for key, value in (settings.operation_map or {}).items()}
    mapping = mapping or DEFAULT_OPERATION_MAP
    if settings.operation_source == "method":
        operation = METHOD_OPERATIONS.get((method or "").upper())
        if operation is None:
            raise EventError(
                f"The HTTP method {method!r} is not one of {', '.join(METHOD_OPERATIONS)}."
            )
        return operation
    if settings.operation_source not in ("path", "event_type"):
        raise ValueError(f"unknown operation source {settings.operation_source!r}")
    if settings.operation_source == "event_type" and settings.operation_header:
        value = header(headers, settings.operation_header)
        where = f"the header {settings.operation_header}"
    else:
        value, where = lookup(document, settings.operation_path), repr(settings.operation_path)
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise EventError(f"No operation at {where}.")
    text = str(value).strip().lower()
    operation = mapping.get(text)
    if operation is None and settings.operation_source == "event_type":
        operation = mapping.get(TYPE_WORD.split(text)[-1])
    if operation not in OPERATIONS:
        shown = text if len(text) <= 80 else text[:80] + "..."
        raise EventError(f"The operation {shown!r} at {where} is not one the configuration maps.")
    return operation


def _consumed(settings):
    """The paths the settings read, relative to the data (those inside it)."""
    reads_type = settings.operation_source == "path" or (
        settings.operation_source == "event_type" and not settings.operation_header
    )
    paths = [
        settings.event_id_path,
        settings.operation_path if reads_type else "",
        settings.external_id_path,
        settings.timestamp_path,
    ]
    prefix = f"{settings.data_path}." if settings.data_path else ""
    return tuple(path[len(prefix) :] for path in paths if path and path.startswith(prefix))


def parse_timestamp(value):
    """A naive UTC datetime from ISO 8601 text (with an offset or ``Z``; without, it is UTC)
    or Unix seconds (a number). Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("true/false is not a time")
    if isinstance(value, int | float):
        try:
            moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{value} is not a Unix time in seconds") from None
        return moment.replace(tzinfo=None)
    if not isinstance(value, str):
        raise ValueError(f"expected ISO 8601 text or Unix seconds, not {_kind(value)}")
    try:
        moment = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{_shown(value)} is not an ISO 8601 date and time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return moment


# Mapping back ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundLine:
    """A mapping line applied inbound: the value at ``key`` (dotted, in the data) is written to
    the field ``source_path[0]``.

    ``source_path`` is the field (``("email",)``) or a many2one and the key field its record is
    found by (``("partner_id", "ref")``). ``field_type`` is the type of its last segment,
    ``related_type`` the type of its first when the path has two. ``selection`` holds the
    ``(key, label)`` pairs of a selection field: values are checked against the keys, then the
    labels (ignoring case). ``id_configuration`` (many2one only: ``raw`` or ``many2one_id``)
    names the configuration whose external ids the value is one of.
    """

    source_path: tuple
    key: str
    transform: str
    field_type: str | None
    related_type: str | None = None
    required: bool = False
    label: str = ""
    selection: tuple = ()
    id_configuration: Any = None

    @classmethod
    def of(cls, line: MappingLine, related_type=None, selection=(), id_configuration=None):
        """The inbound line of an outbound :class:`MappingLine`."""
        return cls(
            source_path=line.source_path,
            key=line.target_key,
            transform=line.transform,
            field_type=line.field_type,
            related_type=related_type,
            required=line.required,
            label=line.label,
            selection=tuple(selection),
            id_configuration=id_configuration,
        )

    @property
    def field(self):
        return self.source_path[0]


@dataclass(frozen=True)
class Lookup:
    """A related record for the caller to find and write to ``field``: the record whose field
    ``by`` equals ``value``, or, when ``by`` is None, the record bound to the external id
    ``value`` in ``configuration``."""

    field: str
    value: Any
    by: str | None = None
    configuration: Any = None

    def problem(self, count):
        """None when ``count`` records were found and that is exactly one, else why not."""
        if count == 1:
            return None
        what = f"{self.by} = {self.value!r}" if self.by else f"the external id {self.value!r}"
        if count == 0:
            return f"no related record has {what}"
        return f"{count} related records have {what}; it must name one"


@dataclass(frozen=True)
class Mapped:
    """What :func:`map_inbound` found: ``values`` to write (``{field: value or Lookup}``,
    ``False`` clears a field), the ``unknown`` keys of the data (at most MAX_UNKNOWN, in
    document order) and how many there are, ``unknown_count``."""

    values: dict
    unknown: tuple
    unknown_count: int


def has_inverse(transform):
    """Whether values made by ``transform`` can be read back into some field."""
    return transform in WRITABLE


def inverse_problem(line):
    """Why ``line`` (an :class:`InboundLine`) cannot be applied inbound, None when it can: the
    message to refuse it with when a configuration is saved."""
    name = line.label or ".".join(line.source_path)
    transform = line.transform
    if not has_inverse(transform):
        reason = NO_INVERSE.get(transform, f"the transform {transform!r} has no inverse")
        return f"{name!r} cannot be applied inbound: {reason}."
    if len(line.source_path) > 2:
        return (
            f"{name!r} cannot be applied inbound: only a field of the model, or a many2one "
            "and the key field its record is found by (e.g. partner_id.ref), can be written."
        )
    if len(line.source_path) == 2:
        if (
            line.related_type != "many2one"
            or line.field_type not in KEY_TYPES
            or transform not in KEY_TRANSFORMS
        ):
            return (
                f"{name!r} cannot be applied inbound: a related record is found by a text "
                "or integer field (e.g. partner_id.ref) with the raw, string or integer "
                "transform."
            )
        return None
    if line.field_type not in WRITABLE[transform]:
        if transform == "string" and line.field_type == "many2one":
            return f"{name!r} cannot be applied inbound: {NO_INVERSE['many2one_name']}."
        if transform == "date" and line.field_type == "datetime":
            return (
                f"{name!r} cannot be applied inbound: the date transform sends no time of "
                "day, which writing back would lose; use the datetime transform."
            )
        if transform == "boolean":
            return (
                f"{name!r} cannot be applied inbound: true/false is written to boolean "
                f"fields only (a {line.field_type} field sends true for many values)."
            )
        return (
            f"{name!r} cannot be applied inbound: the {transform} transform cannot write a "
            f"{line.field_type} field."
        )
    if line.field_type == "many2one" and line.id_configuration is None:
        return (
            f"{name!r} cannot be applied inbound: choose the configuration whose external "
            "ids the remote system sends, or map a key field of the related record "
            "(e.g. partner_id.ref) instead."
        )
    return None


def check_inbound_lines(lines):
    """Refuse, at save, inbound lines without inverse and two lines writing the same field.
    Raises :class:`ConfigurationError` (``field``: ``inbound``)."""
    written = {}
    for line in lines:
        problem = inverse_problem(line)
        if problem:
            raise ConfigurationError("inbound", problem)
        if line.field in written:
            raise ConfigurationError(
                "inbound",
                f"Keys {written[line.field]!r} and {line.key!r} both write the field "
                f"{line.field!r}: apply only one of them inbound.",
            )
        written[line.field] = line.key


def map_inbound(lines, data, known=()):
    """The values the inbound ``lines`` read from ``data`` (a dict), as a :class:`Mapped`.

    A key absent from the data (or below a ``null`` object) writes nothing, unless its line is
    required; ``null`` clears the field (``False``). Every other value is converted to the
    field's type (see :func:`convert_inbound`). Keys of the data neither mapped nor in
    ``known`` (dotted, e.g. :attr:`Event.consumed` and the keys of outbound-only lines) are
    listed as unknown. Raises :class:`MappingError` listing every key that fails.
    """
    values, problems = {}, []
    for line in lines:
        try:
            value = _value_at(data, line.key)
        except ValueError as exc:
            problems.append((line.key, str(exc)))
            continue
        if value is _MISSING or value is None:
            if line.required:
                problems.append(
                    (line.key, "required, but " + ("null" if value is None else "missing"))
                )
            elif value is None:
                values[line.field] = False
            continue
        try:
            values[line.field] = convert_inbound(line, value)
        except ValueError as exc:
            problems.append((line.key, str(exc)))
    if problems:
        raise MappingError(problems)
    unknown, count = unknown_keys(data, [line.key for line in lines] + list(known))
    return Mapped(values, unknown, count)


def _value_at(data, key):
    """The value at dotted ``key``; _MISSING when a part is absent or null; ValueError when a
    part above it is not an object."""
    value = data
    parts = key.split(".")
    for position, part in enumerate(parts):
        if value is None:
            return _MISSING
        if not isinstance(value, dict):
            raise ValueError(f"{'.'.join(parts[:position])!r} is {_kind(value)}, not an object")
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def unknown_keys(data, keys):
    """``(first MAX_UNKNOWN unknown keys, count)``: the dotted keys of ``data`` that are not
    in ``keys`` nor above one of them, in document order (lists are not entered; a ``null``
    above a key is not unknown)."""
    keys = set(keys)
    parents = {
        ".".join(key.split(".")[:size]) for key in keys for size in range(1, key.count(".") + 1)
    }
    unknown, count = [], 0
    stack = [("", iter(data.items()))]
    while stack:
        prefix, items = stack[-1]
        entry = next(items, None)
        if entry is None:
            stack.pop()
            continue
        path, value = prefix + entry[0], entry[1]
        if path in keys or (path in parents and value is None):
            continue
        if path in parents and isinstance(value, dict):
            stack.append((path + ".", iter(value.items())))
            continue
        count += 1
        if len(unknown) < MAX_UNKNOWN:
            unknown.append(path)
    return tuple(unknown), count


def convert_inbound(line, value):
    """The field value (or :class:`Lookup`) of a non-null JSON ``value`` for ``line``.

    - text fields: text, or a number written as text;
    - integer fields: integers, integral decimals (``3.0``) and integer text (``" 12 "``),
      within PostgreSQL's integer range;
    - float and monetary fields: numbers and decimal text (not NaN nor infinite);
    - boolean fields: ``true``/``false``, ``1``/``0``, and the texts true/false, 1/0, yes/no,
      on/off (ignoring case); anything else is refused, not taken as true;
    - date fields: ISO 8601 dates; an ISO 8601 date and time gives the date it writes;
    - datetime fields: ISO 8601 (an offset or ``Z``; without one it is UTC) or Unix seconds,
      made naive UTC as Odoo stores them;
    - selection fields: a key, else (when ``line.selection`` is known) a label;
    - many2one fields: a :class:`Lookup` by the key field, or by external id.

    Raises ValueError saying what is wrong with the value (never which record).
    """
    if len(line.source_path) == 2:
        return Lookup(line.field, _scalar(line, value), by=line.source_path[1])
    if line.field_type == "many2one":
        external_id = _identifier(value)
        if external_id is None:
            raise ValueError(f"{_shown(value)} is not an external id")
        return Lookup(line.field, external_id, configuration=line.id_configuration)
    return _scalar(line, value)


def _scalar(line, value):
    field_type = line.field_type
    if field_type in TEXT_TYPES:
        return _text(value)
    if field_type == "integer":
        return _integer(value)
    if field_type in ("float", "monetary"):
        return _float(value)
    if field_type == "boolean":
        return _boolean(value)
    if field_type == "date":
        return _date(value)
    if field_type == "datetime":
        return parse_timestamp(value)
    if field_type == "selection":
        return _selection(line, value)
    raise ValueError(f"a {field_type} field is not written inbound")


def _text(value):
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected text, got {_kind(value)}")


def _integer(value):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and INTEGER.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{_shown(value)} is not an integer")
    if abs(value) > INT32:
        raise ValueError(f"{value} is out of the integer range")
    return value


def _float(value):
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{_shown(value)} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{_shown(value)} is not a number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    return value


def _boolean(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_TEXTS or text in FALSE_TEXTS:
            return text in TRUE_TEXTS
    raise ValueError(f"{_shown(value)} is not true or false")


def _date(value):
    """The date of ISO 8601 text: a date, or the date a date and time writes (its offset
    ignored: a date has no time zone)."""
    text = value.strip() if isinstance(value, str) else ""
    parse = datetime.date.fromisoformat if len(text) <= 10 else datetime.datetime.fromisoformat
    try:
        moment = parse(text)
    except ValueError:
        raise ValueError(f"{_shown(value)} is not an ISO 8601 date") from None
    return moment.date() if isinstance(moment, datetime.datetime) else moment


def _selection(line, value):
    key = _text(value) if not isinstance(value, bool) else None
    if key is None:
        raise ValueError(f"{_shown(value)} is not a choice")
    if not line.selection:
        return key
    keys = [str(option) for option, _label in line.selection]
    if key in keys:
        return key
    folded = key.strip().casefold()
    for option, label in line.selection:
        if str(label).casefold() == folded:
            return str(option)
    raise ValueError(f"{_shown(value)} is not one of the choices ({', '.join(keys)})")


def _kind(value):
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", bool: "true/false", str: "text"}.get(
        type(value), "a number"
    )


def _shown(value):
    """A value as it may appear in a message: short, and its kind for objects and lists."""
    if isinstance(value, dict | list):
        return _kind(value)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:60] + "..."


# Stale updates and upserts -----------------------------------------------------------------


def is_stale(remote_timestamp, last_synced_version, rule):
    """Whether an inbound update must be skipped as older than what Odoo last sent.

    ``newest_wins``: stale when ``remote_timestamp`` is before ``last_synced_version`` (both
    naive UTC); a remote time in whole seconds is compared with the version cut to the second,
    so that an API without sub-second times does not lose a change made in the same second.
    Without either time nothing is stale. ``remote_wins``: never stale.
    """
    if rule == "remote_wins":
        return False
    if rule != "newest_wins":
        raise ValueError(f"unknown stale rule {rule!r}")
    if remote_timestamp is None or last_synced_version is None:
        return False
    if not remote_timestamp.microsecond:
        last_synced_version = last_synced_version.replace(microsecond=0)
    return remote_timestamp < last_synced_version


def action(operation, exists):
    """What an inbound ``operation`` does to the Odoo record, given whether one is bound to the
    object (``exists``): an update of an unknown object creates it, a create of a known one
    updates it, a delete of an unknown one does nothing (None)."""
    if operation == "delete":
        return "delete" if exists else None
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}")
    return "update" if exists else "create"
