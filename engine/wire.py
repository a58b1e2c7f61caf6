"""What goes on the wire: event bodies, headers, and Standard Webhooks signatures."""

import base64
import datetime
import hashlib
import hmac
import json
import os
import re

from .mapping import iso_datetime

AUTH_SCHEMES = ("Basic", "Bearer", "Token", "Digest")
OPERATION_TYPES = {"create": "created", "update": "updated", "delete": "deleted"}
SECRET_PREFIX = "whsec_"
SIGNATURE_TOLERANCE = 300  # seconds, as in the Standard Webhooks specification
# headers api_sync sets itself (with the authentication's), and those the HTTP client computes
OWN_HEADERS = (
    "Content-Type",
    "Idempotency-Key",
    "User-Agent",
    "Authorization",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)
TRANSPORT_HEADERS = (
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "Proxy-Authorization",
    "Cookie",
)
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?\Z")


def utc_now():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def record_event(event_id, model, record_id, operation, changed_fields, version, data, timestamp):
    """Body of a create/update/delete event."""
    return {
        "id": event_id,
        "type": f"{model}.{OPERATION_TYPES[operation]}",
        "timestamp": iso_datetime(timestamp),
        "model": model,
        "record_id": record_id,
        "operation": operation,
        "changed_fields": sorted(changed_fields) if changed_fields is not None else None,
        "version": iso_datetime(version, precise=True) if version else None,
        "data": data,
    }


def batch_event(event_id, model, items, timestamp):
    """Body of a batch: ``items`` are ``(record_id, operation, version, data)`` tuples."""
    return {
        "id": event_id,
        "type": f"{model}.batch",
        "timestamp": iso_datetime(timestamp),
        "model": model,
        "records": [
            {
                "record_id": record_id,
                "operation": operation,
                "version": iso_datetime(version, precise=True) if version else None,
                "data": data,
            }
            for record_id, operation, version, data in items
        ],
    }


def ping_event(event_id, model, timestamp):
    """Body of the connection test."""
    return {
        "id": event_id,
        "type": "api_sync.ping",
        "timestamp": iso_datetime(timestamp),
        "model": model,
    }


def encode(body):
    """The exact bytes sent (compact JSON, UTF-8)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def secret_key(secret):
    """The HMAC key of a ``whsec_<base64>`` secret; raises ValueError when malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a signing secret starts with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        raise ValueError(f"a signing secret is {SECRET_PREFIX} followed by base64") from None
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def new_secret():
    """A fresh random ``whsec_`` secret (24 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(24)).decode()


def sign(secret, message_id, timestamp, body):
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` for a secret and an integer timestamp."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret, headers, body, now):
    """Check Standard Webhooks headers (a case-insensitive mapping) against ``body``.

    ``now`` is a Unix time. Returns True, or raises ValueError saying what does not match.
    """
    message_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (message_id and timestamp and signatures):
        raise ValueError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if abs(now - int(timestamp)) > SIGNATURE_TOLERANCE:
        raise ValueError("webhook-timestamp is too old or too new")
    if signature_matches((secret,), message_id, int(timestamp), body, signatures):
        return True
    raise ValueError("no webhook-signature matches")


def signature_matches(secrets, message_id, timestamp, body, signatures):
    """Whether one of the space-separated ``v1,<base64>`` ``signatures`` (a
    ``webhook-signature`` header) signs ``body`` with one of ``secrets``.

    Every comparison is constant-time, and text that is not ASCII (a hostile header) is
    compared as its bytes instead of raising.
    """
    expected = [sign(secret, message_id, timestamp, body).encode() for secret in secrets]
    found = False
    for candidate in signatures.split():
        given = candidate.encode("utf-8", "backslashreplace")
        for signature in expected:
            found |= hmac.compare_digest(given, signature)
    return found


def extra_header_problem(name, value, taken=()):
    """Why an admin's extra header cannot be sent (None when it can): an invalid name or value,
    or a name clashing (case-insensitively) with a header api_sync sets, ``taken`` included."""
    if not HEADER_NAME.match(name or ""):
        return f"{name!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)."
    for reserved in (*OWN_HEADERS, *TRANSPORT_HEADERS, *taken):
        if name.lower() == reserved.lower():
            return f"{name!r} is a header api_sync sets itself ({reserved})."
    if not HEADER_VALUE.match(value or ""):
        return (
            f"the value of {name!r} must be printable ASCII text, without line breaks nor "
            "leading or trailing spaces."
        )
    return None


def headers_for(
    event_id,
    body,
    timestamp,
    user_agent,
    auth=None,
    signing_secret=None,
    previous_secrets=(),
    extra=None,
):
    """Request headers; ``auth`` is the dict made by :func:`auth_headers`, ``extra`` the
    admin's extra headers (api_sync's own headers win over them).

    ``previous_secrets`` (a rotation in progress) sign too: every signature goes in
    ``webhook-signature``, space separated, so receivers with either secret verify the request.
    """
    headers = {
        **(extra or {}),
        "Content-Type": "application/json",
        "Idempotency-Key": event_id,
        "User-Agent": user_agent,
        **(auth or {}),
    }
    if signing_secret:
        headers["webhook-id"] = event_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = " ".join(
            sign(secret, event_id, timestamp, body)
            for secret in (signing_secret, *previous_secrets)
        )
    return headers


def masked_headers(headers, secrets=()):
    """``headers`` as they may be shown: credentials and signatures replaced by ``***`` (the
    authentication scheme and signature versions stay readable)."""
    shown = {}
    for name, value in headers.items():
        lower, value = name.lower(), str(value)
        scheme, _sep, credentials = value.partition(" ")
        if lower == "webhook-signature":
            value = " ".join(f"{part.partition(',')[0]},***" for part in value.split())
        elif lower == "authorization" and scheme in AUTH_SCHEMES and credentials:
            value = f"{scheme} ***"
        elif lower == "authorization" or value in secrets:
            value = "***"
        shown[name] = value
    return shown


def auth_headers(auth_type, username=None, password=None, token=None, key_header=None, key=None):
    """Authentication headers for an auth type (none, basic, bearer, api_key)."""
    if auth_type == "basic":
        credentials = f"{username or ''}:{password or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
    if auth_type == "bearer":
        return {"Authorization": f"Bearer {token or ''}"}
    if auth_type == "api_key":
        return {key_header or "X-API-Key": key or ""}
    return {}
