"""Resource mode: one remote object per record, created, updated and deleted with the requests of
a typical REST API (``POST /contacts``, ``PATCH /contacts/{{external_id}}``, ...).

Path templates are relative to the endpoint URL. Their ``{{name}}`` placeholders are replaced
by values, URL-encoded: nothing in a template is evaluated.
"""

import json
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

EXTERNAL_ID = "external_id"
RECORD_ID = "id"
KINDS = ("create", "update", "delete")
MISSING_STATUSES = frozenset({404, 410})  # the remote object is not there (any more)
NOT_SENT = "none"
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*\Z")
PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class TemplateError(ValueError):
    """A path template that cannot be used (said in words an admin can act on)."""


class MissingValue(ValueError):
    """A placeholder whose value cannot go in a URL at send time; ``name`` names it."""

    def __init__(self, name, message):
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class Step:
    """What to send for an event: ``kind`` (create, update, delete), its HTTP ``method``, and
    ``skip`` (None, ``disabled``: the configuration does not send this kind, ``unbound``: the
    request needs an external id the record does not have)."""

    kind: str
    method: str
    skip: str | None = None


def placeholders(template):
    """The placeholder names of ``template``, in order, each once; raises TemplateError."""
    template = template or ""
    names = []
    for match in PLACEHOLDER.finditer(template):
        name = match.group(1).strip()
        if not NAME.match(name):
            raise TemplateError(
                f"{match.group(0)!r} is not a placeholder: use {{{{external_id}}}}, {{{{id}}}}, "
                "a target key of the mapping or a field path such as {{partner_id.ref}}."
            )
        if name not in names:
            names.append(name)
    _check_literal(template, PLACEHOLDER.sub("x", template))
    return names


def _check_literal(template, literal):
    if "{" in literal or "}" in literal:
        raise TemplateError(
            f"{template!r} has an unmatched brace: placeholders are written {{{{name}}}}."
        )
    if not literal:
        return
    if literal[0] not in "/?":
        raise TemplateError(f"{template!r} must be empty or start with / or ?.")
    problems = (
        (any(char.isspace() for char in literal), "a space"),
        ("://" in literal, "'://': a path is relative to the endpoint URL"),
        (literal.startswith("//"), "'//' at its start: a path is relative to the endpoint URL"),
        (".." in literal.split("?")[0].split("/"), "a '..' segment"),
        (bool(PERCENT.search(literal)), "a % not followed by two hexadecimal digits"),
    )
    for found, what in problems:
        if found:
            raise TemplateError(f"{template!r} contains {what}.")
    if not PATH_CHARS.match(literal):
        bad = next(char for char in literal if not PATH_CHARS.match(char))
        raise TemplateError(f"{template!r} contains the character {bad!r}, not allowed in a URL.")


def check_template(template, kind):
    """The placeholders of the ``kind`` (create, update, delete) path; raises TemplateError."""
    names = placeholders(template)
    if kind == "create" and EXTERNAL_ID in names:
        raise TemplateError(
            "the create path cannot use {{external_id}}: a record has none before it is created."
        )
    return names


def _segment(name, value):
    """``value`` as one URL-encoded piece of a URL; raises MissingValue."""
    if value is None or value is False or value == "" or value == []:
        raise MissingValue(name, f"{{{{{name}}}}} has no value for this record.")
    if isinstance(value, dict | list):
        raise MissingValue(name, f"{{{{{name}}}}} is not a single value (it is a {type(value)}).")
    text = "true" if value is True else str(value)
    if text in (".", ".."):
        raise MissingValue(name, f"{{{{{name}}}}} is {text!r}, which cannot go in a URL path.")
    return quote(text, safe="")


def render(template, values):
    """``template`` with each placeholder replaced by its URL-encoded value in ``values``."""
    template = template or ""
    placeholders(template)
    return PLACEHOLDER.sub(
        lambda match: _segment(match.group(1).strip(), values.get(match.group(1).strip())),
        template,
    )


def join_url(endpoint, path):
    """The URL of a rendered ``path`` relative to ``endpoint`` (their queries are merged)."""
    parts = urlsplit(endpoint)
    path_part, _sep, query = path.partition("?")
    new_path = parts.path.rstrip("/") + path_part if path_part else parts.path
    merged = "&".join(item for item in (parts.query, query) if item)
    return urlunsplit((parts.scheme, parts.netloc, new_path, merged, ""))


def lookup(data, dotted):
    """The value at a dotted path (``data.id``, ``items.0.id``) of parsed JSON, else None."""
    value = data
    for segment in dotted.split("."):
        if isinstance(value, dict):
            value = value.get(segment)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None
    return value


def location_id(location):
    """The last path segment of a Location header, decoded, else None."""
    if not location:
        return None
    segment = urlsplit(location.strip()).path.rstrip("/").rpartition("/")[2]
    return unquote(segment) or None


def external_id(body_text, path, location):
    """The id a create response gives the new object: at the dotted ``path`` of its JSON body,
    else the last segment of its Location header; None when neither has one."""
    if path:
        try:
            value = lookup(json.loads(body_text or ""), path)
        except ValueError:
            value = None
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return location_id(location)


def plan(operation, bound_id, methods, needs_external_id):
    """The request an event of ``operation`` becomes, given the record's external id
    ``bound_id`` (None when not bound): an update of an unbound record creates it (upsert), a
    create of a bound one updates it. ``methods`` and ``needs_external_id`` are per kind."""
    if operation == "delete":
        kind = "delete"
    else:
        kind = "update" if bound_id else "create"
    method = methods[kind]
    if method == NOT_SENT:
        return Step(kind, method, "disabled")
    if not bound_id and needs_external_id.get(kind):
        return Step(kind, method, "unbound")
    return Step(kind, method)


def body(data, root_key):
    """The body of a record (a dict) or of a batch (a list), wrapped under ``root_key``."""
    return {root_key: data} if root_key else data
