"""Inbound sync: refusals before parsing, event extraction, mapping back, stale updates."""

import base64
import contextlib
import datetime
import hashlib
import hmac
import io
import json

import pytest
from standardwebhooks import Webhook

from engine import inbound, mapping, wire
from engine.inbound import EventError, InboundLine, Lookup, Refused, Settings
from engine.mapping import ConfigurationError, MappingLine

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
NOW = 1_800_000_000
BODY = b'{"type":"contact.updated","data":{"id":"ct_1","name":"Zo\xc3\xab"}}'
UTC = datetime.UTC
MINUS_5 = datetime.timezone(datetime.timedelta(hours=-5))


def signed(secret=SECRET, body=BODY, timestamp=NOW, message_id="msg_1"):
    """Headers made by the standardwebhooks library, as a sender sends them."""
    moment = datetime.datetime.fromtimestamp(timestamp, UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(secret).sign(message_id, moment, body.decode()),
    }


@contextlib.contextmanager
def refused(status, reason):
    """Expects a :class:`Refused` of exactly this status and reason."""
    with pytest.raises(Refused) as info:
        yield info
    assert (info.value.status, info.value.reason) == (status, reason)


# Standard Webhooks ---------------------------------------------------------------------------


def test_standard_webhooks_signature_of_the_library_is_accepted():
    inbound.verify_standard_webhooks([SECRET], signed(), BODY, NOW)
    title_case = {name.title(): value for name, value in signed().items()}
    inbound.verify_standard_webhooks([SECRET], title_case, BODY, NOW)


def test_standard_webhooks_refuses_another_body_id_or_secret():
    for secrets, headers, body in (
        ([SECRET], signed(), BODY + b" "),
        ([SECRET], {**signed(), "webhook-id": "msg_2"}, BODY),
        ([OLD_SECRET], signed(), BODY),
    ):
        with refused(401, "bad signature"):
            inbound.verify_standard_webhooks(secrets, headers, body, NOW)


def test_standard_webhooks_accepts_every_secret_of_a_rotation():
    old_signed = signed(OLD_SECRET)
    inbound.verify_standard_webhooks([SECRET, OLD_SECRET], old_signed, BODY, NOW)
    inbound.verify_standard_webhooks([SECRET, OLD_SECRET], signed(), BODY, NOW)
    # a sender in rotation signs with both secrets: either one alone verifies
    both = wire.headers_for(
        "msg_1", BODY, NOW, "ua", signing_secret=SECRET, previous_secrets=[OLD_SECRET]
    )
    assert len(both["webhook-signature"].split()) == 2
    inbound.verify_standard_webhooks([SECRET], both, BODY, NOW)
    inbound.verify_standard_webhooks([OLD_SECRET], both, BODY, NOW)
    with refused(401, "bad signature"):
        inbound.verify_standard_webhooks([wire.new_secret()], both, BODY, NOW)


@pytest.mark.parametrize(
    ("now", "tolerance", "accepted"),
    [
        (NOW + 300, 300, True),
        (NOW - 300, 300, True),
        (NOW + 301, 300, False),
        (NOW - 301, 300, False),
        (NOW + 3600, 3600, True),
        (NOW + 61, 60, False),
    ],
)
def test_standard_webhooks_timestamp_tolerance_edges(now, tolerance, accepted):
    if accepted:
        inbound.verify_standard_webhooks([SECRET], signed(), BODY, now, tolerance)
    else:
        with refused(401, "timestamp too old or too new"):
            inbound.verify_standard_webhooks([SECRET], signed(), BODY, now, tolerance)


def test_standard_webhooks_default_tolerance_is_the_specification_s():
    with refused(401, "timestamp too old or too new"):
        inbound.verify_standard_webhooks([SECRET], signed(), BODY, NOW + 301)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_webhooks_missing_header(missing):
    headers = signed()
    del headers[missing]
    with refused(401, "missing signature headers"):
        inbound.verify_standard_webhooks([SECRET], headers, BODY, NOW)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-timestamp", "1800000000.5"),
        ("webhook-timestamp", "1e9"),
        ("webhook-timestamp", "١٨٠٠٠٠٠٠٠٠"),  # digits int() would read
        ("webhook-timestamp", "-1800000000"),
        ("webhook-id", "msg 1"),
        ("webhook-id", "é"),
        ("webhook-id", "m" * 256),
    ],
)
def test_standard_webhooks_malformed_headers(name, value):
    with refused(401, "malformed signature headers"):
        inbound.verify_standard_webhooks([SECRET], {**signed(), name: value}, BODY, NOW)


def test_standard_webhooks_hostile_signature_text_is_refused_not_raised():
    for value in ("v1,é", "v1,\udcff", "v2,abc", "v1," + "A" * 5000, "  "):
        with pytest.raises(Refused) as info:
            inbound.verify_standard_webhooks(
                [SECRET], {**signed(), "webhook-signature": value}, BODY, NOW
            )
        assert info.value.status == 401


def test_standard_webhooks_needs_a_secret():
    with pytest.raises(ValueError, match="no secret"):
        inbound.verify_standard_webhooks([], signed(), BODY, NOW)


def test_wire_verify_refuses_non_ascii_signatures_as_a_mismatch():
    with pytest.raises(ValueError, match="no webhook-signature matches"):
        wire.verify(SECRET, {**signed(), "webhook-signature": "v1,é"}, BODY, NOW)


# HMAC of the body and static tokens ------------------------------------------------------------

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
# GitHub's documented example of X-Hub-Signature-256
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_hmac_in_github_s_shape():
    inbound.verify_hmac(GITHUB_SECRET, GITHUB_SIGNATURE, GITHUB_BODY, "hex")
    upper = "sha256=" + GITHUB_SIGNATURE.removeprefix("sha256=").upper()
    inbound.verify_hmac(GITHUB_SECRET, upper, GITHUB_BODY, "hex")
    inbound.verify_hmac(GITHUB_SECRET, GITHUB_SIGNATURE.removeprefix("sha256="), GITHUB_BODY, "hex")
    with refused(401, "bad signature"):
        inbound.verify_hmac(GITHUB_SECRET, GITHUB_SIGNATURE, GITHUB_BODY + b"!", "hex")
    with refused(401, "bad signature"):
        inbound.verify_hmac("another secret", GITHUB_SIGNATURE, GITHUB_BODY, "hex")


def test_hmac_in_shopify_s_shape():
    body = b'{"id":820982911946154508,"email":"jon@example.com"}'
    digest = hmac.new(b"shpss_secret", body, hashlib.sha256).digest()
    header = base64.b64encode(digest).decode()
    inbound.verify_hmac("shpss_secret", header, body, "base64")
    with refused(401, "bad signature"):
        inbound.verify_hmac("shpss_secret", header, body.replace(b"jon", b"jan"), "base64")
    with refused(401, "bad signature"):  # the right digest, in the other encoding
        inbound.verify_hmac("shpss_secret", digest.hex(), body, "base64")


@pytest.mark.parametrize("value", ["", "   ", None])
def test_hmac_missing(value):
    with refused(401, "missing signature"):
        inbound.verify_hmac(GITHUB_SECRET, value, GITHUB_BODY, "hex")


@pytest.mark.parametrize(
    ("value", "encoding"),
    [("sha256=zz", "hex"), ("sha256=abc", "hex"), ("not base64!", "base64"), ("é", "hex")],
)
def test_hmac_malformed_is_a_bad_signature(value, encoding):
    with refused(401, "bad signature"):
        inbound.verify_hmac(GITHUB_SECRET, value, GITHUB_BODY, encoding)


def test_hmac_settings_errors_are_not_refusals():
    with pytest.raises(ValueError, match="no secret"):
        inbound.verify_hmac("", GITHUB_SIGNATURE, GITHUB_BODY, "hex")
    with pytest.raises(ValueError, match="unknown HMAC encoding"):
        inbound.verify_hmac(GITHUB_SECRET, GITHUB_SIGNATURE, GITHUB_BODY, "base32")


def test_static_token():
    inbound.verify_token("tok-123", "tok-123")
    for given, reason in (
        ("tok-124", "bad token"),
        ("tok-1234", "bad token"),
        ("Bearer tok-123", "bad token"),
        ("tök", "bad token"),
        ("", "missing token"),
        (None, "missing token"),
    ):
        with refused(401, reason):
            inbound.verify_token("tok-123", given)
    with pytest.raises(ValueError, match="no token"):
        inbound.verify_token("", "")


def test_refusals_say_nothing_of_secrets_or_settings():
    reasons = []
    attempts = (
        lambda: inbound.verify_standard_webhooks([SECRET], signed(), BODY + b"x", NOW),
        lambda: inbound.verify_hmac(GITHUB_SECRET, GITHUB_SIGNATURE, b"x", "hex"),
        lambda: inbound.verify_token("tok-123", "tok-12"),
        lambda: inbound.read_bounded(BODY, 10),
        lambda: inbound.parse_json(b"[1]"),
    )
    for attempt in attempts:
        with pytest.raises(Refused) as info:
            attempt()
        reasons.append(info.value.reason)
        assert json.loads(info.value.body()) == {"error": info.value.reason}
    shown = " ".join(reasons)
    for secret in (SECRET[6:], GITHUB_SECRET, "tok-12", "757107ea", "msg_1", "contact"):
        assert secret not in shown
    assert all(len(reason) < 40 for reason in reasons), reasons


# Bounded reading and JSON ----------------------------------------------------------------------


class Trickle(io.RawIOBase):
    """A stream giving at most ``step`` bytes a read, ``size`` in all; counts what was read."""

    def __init__(self, size, step=7):
        self.left, self.step, self.given = size, step, 0

    def readable(self):
        return True

    def read(self, size=-1):
        count = min(self.left, self.step, size if size >= 0 else self.left)
        self.left -= count
        self.given += count
        return b"x" * count


def test_read_bounded_reads_the_whole_body_up_to_the_limit():
    assert inbound.read_bounded(b"abc", 3) == b"abc"
    assert inbound.read_bounded(bytearray(b"abc"), 3) == b"abc"
    stream = Trickle(100)
    assert inbound.read_bounded(stream, 100) == b"x" * 100
    assert inbound.read_bounded(io.BytesIO(b""), 100) == b""


def test_read_bounded_refuses_a_larger_body_reading_one_byte_more_at_most():
    with refused(413, "body too large"):
        inbound.read_bounded(b"abcd", 3)
    endless = Trickle(10**9, step=10**6)
    with refused(413, "body too large"):
        inbound.read_bounded(endless, 1000)
    assert endless.given == 1001


def test_read_bounded_trusts_a_content_length_over_the_limit_without_reading():
    stream = Trickle(10)
    with refused(413, "body too large"):
        inbound.read_bounded(stream, 100, declared_length="101")
    assert stream.given == 0
    # a smaller or malformed declared length does not spare the check of what is read
    with refused(413, "body too large"):
        inbound.read_bounded(Trickle(200), 100, declared_length="50")
    for malformed in ("x", "²", "-1", ""):
        assert inbound.read_bounded(Trickle(5), 100, declared_length=malformed) == b"xxxxx"
    with refused(413, "body too large"):
        inbound.read_bounded(b"", 100, declared_length=101)


def test_parse_json():
    assert inbound.parse_json(BODY)["data"]["name"] == "Zoë"
    for body, reason in (
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b'{"a": NaN}', "not JSON"),
        (b'{"a": Infinity}', "not JSON"),
        ('{"a": "é"}'.encode("latin-1"), "not JSON"),
        ('{"a": 1}'.encode("utf-16"), "not JSON"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (b'{"a":' * 65 + b"1" + b"}" * 65, "JSON nested too deeply"),
        (b'{"a":' + b"[" * 64 + b"]" * 64 + b"}", "JSON nested too deeply"),
    ):
        with refused(400, reason):
            inbound.parse_json(body)
    assert inbound.parse_json(b'{"a":' * 64 + b"1" + b"}" * 64)


# Events ---------------------------------------------------------------------------------------

ENVELOPE = Settings(
    external_id_path="data.id",
    timestamp_path="data.updated_at",
    data_path="data",
)


def document(**changes):
    body = {
        "type": "contact.updated",
        "data": {"id": "ct_1", "name": "Ada", "updated_at": "2026-01-02T10:00:00+02:00"},
    }
    body.update(changes)
    return body


def test_read_event_from_a_standard_webhooks_envelope():
    event = inbound.read_event(ENVELOPE, "POST", {"Webhook-Id": "msg_1"}, document())
    assert event == inbound.Event(
        event_id="msg_1",
        operation="update",
        external_id="ct_1",
        timestamp=datetime.datetime(2026, 1, 2, 8, 0),
        data={"id": "ct_1", "name": "Ada", "updated_at": "2026-01-02T10:00:00+02:00"},
        consumed=("id", "updated_at"),
    )


@pytest.mark.parametrize(
    ("event_type", "operation"),
    [
        ("contact.created", "create"),
        ("contact.deleted", "delete"),
        ("Contact.Updated", "update"),
        ("customers/update", "update"),
        ("order_deleted", "delete"),
        ("delete", "delete"),
    ],
)
def test_operation_from_the_event_type(event_type, operation):
    event = inbound.read_event(ENVELOPE, "POST", {"webhook-id": "1"}, document(type=event_type))
    assert event.operation == operation


def test_operation_from_an_event_type_header_with_a_map():
    settings = Settings(
        event_id_header="X-Shopify-Webhook-Id",
        operation_header="X-Shopify-Topic",
        operation_map={"customers/enable": "update", "Redact": "delete"},
    )
    headers = {"x-shopify-webhook-id": "b54557e4", "x-shopify-topic": "customers/enable"}
    event = inbound.read_event(settings, "POST", headers, {"id": 1})
    assert (event.event_id, event.operation, event.data) == ("b54557e4", "update", {"id": 1})
    assert event.consumed == ()  # the type is read from a header
    headers["x-shopify-topic"] = "customers/redact"
    assert inbound.read_event(settings, "POST", headers, {}).operation == "delete"
    headers["x-shopify-topic"] = "customers/update"  # not in the admin's map
    with pytest.raises(EventError, match="'customers/update' at the header X-Shopify-Topic"):
        inbound.read_event(settings, "POST", headers, {})


def test_operation_from_a_json_path_is_matched_whole():
    settings = Settings(
        event_id_path="delivery",
        operation_source="path",
        operation_path="action",
        operation_map=inbound.parse_operation_map("opened: create\nedited=update, closed: delete"),
    )
    body = {"delivery": 72, "action": "edited", "issue": {}}
    event = inbound.read_event(settings, "POST", {}, body)
    assert (event.event_id, event.operation) == ("72", "update")
    assert event.consumed == ("delivery", "action")
    with pytest.raises(EventError, match=r"'issue.edited' at 'action' is not one"):
        inbound.read_event(settings, "POST", {}, {**body, "action": "issue.edited"})


@pytest.mark.parametrize(
    ("method", "operation"),
    [("POST", "create"), ("put", "update"), ("PATCH", "update"), ("DELETE", "delete")],
)
def test_operation_from_the_http_method(method, operation):
    settings = Settings(operation_source="method")
    event = inbound.read_event(settings, method, {"webhook-id": "e"}, {})
    assert event.operation == operation


def test_operation_failures():
    with pytest.raises(EventError, match="HTTP method 'GET'"):
        inbound.read_event(Settings(operation_source="method"), "GET", {"webhook-id": "e"}, {})
    for value in (None, True, "", {"a": 1}):
        with pytest.raises(EventError, match="No operation at 'type'"):
            inbound.read_event(Settings(), "POST", {"webhook-id": "e"}, {"type": value})
    with pytest.raises(EventError, match=r"'contact\.archived' at 'type'"):
        inbound.read_event(Settings(), "POST", {"webhook-id": "e"}, {"type": "contact.archived"})
    with pytest.raises(ValueError, match="unknown operation source"):
        inbound.read_event(Settings(operation_source="x"), "POST", {"webhook-id": "e"}, {})


def test_parse_operation_map_refuses_what_is_not_a_pair():
    assert inbound.parse_operation_map("") == {}
    assert inbound.parse_operation_map(" A = create ,") == {"a": "create"}
    for text in ("opened", "opened: open", ": create"):
        with pytest.raises(ConfigurationError, match="is not 'value: operation'") as info:
            inbound.parse_operation_map(text, "inbound_operation_map")
        assert info.value.field == "inbound_operation_map"


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, document(), r"No event id in the header webhook-id"),
        ({"webhook-id": ""}, document(), r"No event id"),
        ({"webhook-id": "e" * 256}, document(), r"No event id"),
        ({"webhook-id": "e"}, document(data={"name": "x"}), r"No object id at 'data.id'"),
        ({"webhook-id": "e"}, document(data={"id": True}), r"No object id at 'data.id'"),
        ({"webhook-id": "e"}, document(data={"id": ["a"]}), r"No object id at 'data.id'"),
        (
            {"webhook-id": "e"},
            document(data={"id": 1, "updated_at": "yesterday"}),
            r"Timestamp at 'data.updated_at': \"yesterday\" is not an ISO 8601",
        ),
        (
            {"webhook-id": "e"},
            document(data={"id": 1, "updated_at": 10**20}),
            r"Timestamp at 'data.updated_at': .* is not a Unix time",
        ),
    ],
)
def test_event_failures_name_what_is_missing(headers, body, message):
    with pytest.raises(EventError, match=message):
        inbound.read_event(ENVELOPE, "POST", headers, body)


def test_event_id_and_object_id_from_paths_and_numbers():
    settings = Settings(event_id_path="meta.id", external_id_path="id")
    event = inbound.read_event(
        settings, "POST", {}, {"meta": {"id": 9}, "type": "x.deleted", "id": 42}
    )
    assert (event.event_id, event.external_id, event.operation) == ("9", "42", "delete")
    assert event.consumed == ("meta.id", "type", "id")
    with pytest.raises(EventError, match=r"No event id at 'meta.id'"):
        inbound.read_event(settings, "POST", {"webhook-id": "e"}, {"type": "x.deleted", "id": 1})


def test_event_data_under_a_root_key():
    settings = Settings(data_path="contact")
    headers = {"webhook-id": "e"}
    data = inbound.read_event(settings, "POST", headers, {"type": "c.created", "contact": {"a": 1}})
    assert data.data == {"a": 1}
    deleted = inbound.read_event(settings, "POST", headers, {"type": "c.deleted"})
    assert deleted.data == {}
    with pytest.raises(EventError, match="The data at 'contact' is not a JSON object"):
        inbound.read_event(settings, "POST", headers, {"type": "c.created"})
    with pytest.raises(EventError, match="The data at 'contact' is not a JSON object"):
        inbound.read_event(settings, "POST", headers, {"type": "c.updated", "contact": [1]})


def test_missing_timestamp_is_none():
    body = document(data={"id": "ct_1"})
    assert inbound.read_event(ENVELOPE, "POST", {"webhook-id": "e"}, body).timestamp is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02T10:00:00Z", datetime.datetime(2026, 1, 2, 10)),
        ("2026-01-02T10:00:00.250+02:00", datetime.datetime(2026, 1, 2, 8, 0, 0, 250000)),
        ("2026-01-02T23:30:00-05:00", datetime.datetime(2026, 1, 3, 4, 30)),
        ("2026-01-02T10:00:00", datetime.datetime(2026, 1, 2, 10)),
        ("2026-01-02", datetime.datetime(2026, 1, 2)),
        (1_767_348_000, datetime.datetime(2026, 1, 2, 10)),
        (1_767_348_000.5, datetime.datetime(2026, 1, 2, 10, 0, 0, 500000)),
    ],
)
def test_parse_timestamp(value, expected):
    assert inbound.parse_timestamp(value) == expected


@pytest.mark.parametrize("value", [True, None, [], "10:00", "2026-13-01", float("nan")])
def test_parse_timestamp_refuses(value):
    with pytest.raises(ValueError):
        inbound.parse_timestamp(value)


# Mapping back ---------------------------------------------------------------------------------


def in_line(transform, field_type, key="v", path=("f",), **kwargs):
    return InboundLine(path, key, transform, field_type, **kwargs)


STATES = (("draft", "Draft"), ("sale", "Sales Order"))


@pytest.mark.parametrize(
    ("transform", "field_type", "value", "expected"),
    [
        ("raw", "char", "Zoë", "Zoë"),
        ("raw", "char", 42, "42"),
        ("string", "text", "a\nb", "a\nb"),
        ("integer", "char", 12, "12"),
        ("float", "char", 2.5, "2.5"),
        ("raw", "integer", 7, 7),
        ("raw", "integer", 7.0, 7),
        ("string", "integer", " -12 ", -12),
        ("integer", "integer", -(2**31) + 1, -(2**31) + 1),
        ("raw", "float", 3, 3.0),
        ("string", "monetary", "19.99", 19.99),
        ("float", "float", "1e3", 1000.0),
        ("raw", "boolean", True, True),
        ("raw", "boolean", False, False),
        ("integer", "boolean", 1, True),
        ("integer", "boolean", 0, False),
        ("string", "boolean", "TRUE", True),
        ("string", "boolean", "false", False),
        ("string", "boolean", " yes", True),
        ("string", "boolean", "No", False),
        ("string", "boolean", "on", True),
        ("string", "boolean", "0", False),
        ("raw", "date", "2024-02-29", datetime.date(2024, 2, 29)),
        ("date", "date", "2024-02-29T23:30:00-05:00", datetime.date(2024, 2, 29)),
        ("datetime", "date", "2024-02-29T00:00:00Z", datetime.date(2024, 2, 29)),
        ("datetime", "datetime", "2024-02-29T13:05:07Z", datetime.datetime(2024, 2, 29, 13, 5, 7)),
        (
            "raw",
            "datetime",
            "2024-02-29T23:30:00-05:00",
            datetime.datetime(2024, 3, 1, 4, 30),
        ),
        ("string", "datetime", "2024-02-29T13:05:07", datetime.datetime(2024, 2, 29, 13, 5, 7)),
        ("datetime", "datetime", 1_709_211_907, datetime.datetime(2024, 2, 29, 13, 5, 7)),
        ("raw", "selection", "sale", "sale"),
        ("string", "selection", "Sales order", "sale"),
        ("integer", "selection", 2, "2"),
    ],
)
def test_inverse_conversions(transform, field_type, value, expected):
    line = in_line(transform, field_type, selection=STATES if transform == "string" else ())
    assert inbound.inverse_problem(line) is None
    result = inbound.convert_inbound(line, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("field_type", "value", "message"),
    [
        ("char", True, "expected text, got true/false"),
        ("char", {"a": 1}, "expected text, got an object"),
        ("integer", 3.5, "3.5 is not an integer"),
        ("integer", "3.0", '"3.0" is not an integer'),
        ("integer", True, "true is not an integer"),
        ("integer", 2**31, "2147483648 is out of the integer range"),
        ("float", "abc", '"abc" is not a number'),
        ("float", "nan", "nan is not a finite number"),
        ("float", "-inf", "-inf is not a finite number"),
        ("float", [1], "a list is not a number"),
        ("boolean", "maybe", '"maybe" is not true or false'),
        ("boolean", "", '"" is not true or false'),
        ("boolean", 2, "2 is not true or false"),
        ("date", "29/02/2024", '"29/02/2024" is not an ISO 8601 date'),
        ("date", 20240229, "20240229 is not an ISO 8601 date"),
        ("datetime", "2024-02-30T00:00:00Z", "is not an ISO 8601 date and time"),
        ("datetime", False, "true/false is not a time"),
        ("selection", "cancel", r'"cancel" is not one of the choices \(draft, sale\)'),
        ("selection", True, "true is not a choice"),
    ],
)
def test_inverse_conversion_errors_say_what_is_wrong(field_type, value, message):
    line = in_line("raw", field_type, selection=STATES)
    with pytest.raises(ValueError, match=message):
        inbound.convert_inbound(line, value)


def test_selection_without_known_choices_passes_the_key_on():
    assert inbound.convert_inbound(in_line("raw", "selection"), "anything") == "anything"


@pytest.mark.parametrize(
    ("transform", "field_type", "odoo_value"),
    [
        ("raw", "char", "Zoë"),
        ("string", "integer", 42),
        ("raw", "float", 2.5),
        ("integer", "boolean", True),
        ("string", "boolean", False),
        ("raw", "date", datetime.date(2024, 2, 29)),
        ("datetime", "date", datetime.date(2024, 2, 29)),
        ("datetime", "datetime", datetime.datetime(2024, 2, 29, 13, 5, 7)),
        ("string", "datetime", datetime.datetime(2024, 2, 29, 13, 5, 7)),
        ("raw", "selection", "sale"),
    ],
)
def test_inverse_undoes_the_outbound_transform(transform, field_type, odoo_value):
    sent = mapping.convert(MappingLine(("f",), "v", transform, field_type), odoo_value)
    line = InboundLine.of(MappingLine(("f",), "v", transform, field_type))
    assert inbound.convert_inbound(line, json.loads(json.dumps(sent))) == odoo_value


def test_many2one_by_key_field_and_by_external_id():
    by_ref = in_line("string", "char", "customer", ("partner_id", "ref"), related_type="many2one")
    assert inbound.inverse_problem(by_ref) is None
    assert inbound.convert_inbound(by_ref, "C-1001") == Lookup("partner_id", "C-1001", by="ref")
    by_number = in_line(
        "integer", "integer", "n", ("partner_id", "number"), related_type="many2one"
    )
    assert inbound.convert_inbound(by_number, "12") == Lookup("partner_id", 12, by="number")
    by_id = in_line("many2one_id", "many2one", "company", ("company_id",), id_configuration=7)
    assert inbound.inverse_problem(by_id) is None
    assert inbound.convert_inbound(by_id, 42) == Lookup("company_id", "42", configuration=7)
    with pytest.raises(ValueError, match="is not an external id"):
        inbound.convert_inbound(by_id, {"id": 42})


def test_lookup_problem_counts_the_records_found():
    by_ref = Lookup("partner_id", "C-1", by="ref")
    assert by_ref.problem(1) is None
    assert by_ref.problem(0) == "no related record has ref = 'C-1'"
    assert by_ref.problem(2) == "2 related records have ref = 'C-1'; it must name one"
    by_id = Lookup("company_id", "co_9", configuration=3)
    assert by_id.problem(0) == "no related record has the external id 'co_9'"


CONTACT_LINES = (
    in_line("raw", "char", "name", ("name",), required=True),
    in_line("raw", "char", "contact.email", ("email",)),
    in_line("raw", "boolean", "active", ("active",)),
    in_line("string", "char", "company.ref", ("parent_id", "ref"), related_type="many2one"),
    in_line("datetime", "date", "birthday", ("birthdate",)),
)


def test_map_inbound_writes_mapped_keys_and_lists_unknown_ones():
    data = {
        "id": "ct_1",
        "name": "Ada",
        "contact": {"email": "ada@example.com", "phone": "+44"},
        "company": {"ref": "AE", "name": "Analytical Engines"},
        "active": None,
        "tags": [{"name": "vip"}],
        "extra": {"deep": {"er": 1}},
    }
    mapped = inbound.map_inbound(CONTACT_LINES, data, known=("id",))
    assert mapped.values == {
        "name": "Ada",
        "email": "ada@example.com",
        "active": False,  # null clears
        "parent_id": Lookup("parent_id", "AE", by="ref"),
    }  # birthday absent: not written
    assert mapped.unknown == ("contact.phone", "company.name", "tags", "extra")
    assert mapped.unknown_count == 4


def test_unknown_keys_are_counted_all_and_listed_up_to_the_cap():
    data = {"name": "x", **{f"k{index}": index for index in range(250)}}
    mapped = inbound.map_inbound(CONTACT_LINES, data)
    assert mapped.unknown_count == 250
    assert len(mapped.unknown) == inbound.MAX_UNKNOWN
    assert mapped.unknown[:2] == ("k0", "k1")


def test_map_inbound_reports_every_failing_key_at_once():
    data = {
        "contact": "ada@example.com",
        "active": "maybe",
        "company": None,
        "birthday": "soon",
    }
    with pytest.raises(inbound.MappingError) as info:
        inbound.map_inbound(CONTACT_LINES, data)
    assert info.value.problems == (
        ("name", "required, but missing"),
        ("contact.email", "'contact' is text, not an object"),
        ("active", '"maybe" is not true or false'),
        ("birthday", '"soon" is not an ISO 8601 date'),
    )
    assert str(info.value).startswith("name: required, but missing; contact.email: 'contact'")
    assert isinstance(info.value, mapping.MappingError)
    with pytest.raises(inbound.MappingError, match=r"^name: required, but null$"):
        inbound.map_inbound(CONTACT_LINES, {"name": None})


def test_a_null_object_leaves_the_keys_below_it_unwritten():
    mapped = inbound.map_inbound(CONTACT_LINES, {"name": "Ada", "company": None, "contact": {}})
    assert mapped.values == {"name": "Ada"}
    assert mapped.unknown == ()


# Which lines can be applied inbound --------------------------------------------------------------


def test_every_transform_has_an_inverse_or_a_reason():
    for transform in mapping.TRANSFORM_KEYS:
        assert inbound.has_inverse(transform) != (transform in inbound.NO_INVERSE), transform
    assert not inbound.has_inverse("many2one_name")
    assert inbound.has_inverse("datetime")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (in_line("many2one_name", "many2one"), "display names are not unique"),
        (in_line("string", "many2one"), "display names are not unique"),
        (in_line("x2many_ids", "many2many"), "lists of related records are not written back"),
        (in_line("lines", "one2many"), "lists of objects are not written back"),
        (in_line("constant", None), "a constant comes from no field"),
        (in_line("date", "datetime"), "sends no time of day"),
        (in_line("boolean", "char"), "true/false is written to boolean fields only"),
        (in_line("float", "boolean"), "the float transform cannot write a boolean field"),
        (in_line("raw", "binary"), "the raw transform cannot write a binary field"),
        (in_line("raw", "many2many"), "cannot write a many2many field"),
        (in_line("raw", "many2one"), "choose the configuration whose external ids"),
        (in_line("raw", "char", path=("a", "b", "c"), related_type="many2one"), "only a field"),
        (in_line("raw", "float", path=("a", "b"), related_type="many2one"), "text or integer"),
        (in_line("float", "char", path=("a", "b"), related_type="many2one"), "text or integer"),
        (in_line("raw", "char", path=("a", "b"), related_type="many2many"), "text or integer"),
    ],
)
def test_lines_without_inverse_are_refused_with_a_reason(line, message):
    problem = inbound.inverse_problem(line)
    assert message in problem
    assert problem.startswith(f"{'.'.join(line.source_path)!r} cannot be applied inbound")
    with pytest.raises(ConfigurationError, match=message):
        inbound.check_inbound_lines([line])


def test_check_inbound_lines_refuses_two_lines_writing_one_field():
    inbound.check_inbound_lines(CONTACT_LINES)
    twice = (
        *CONTACT_LINES,
        in_line("raw", "char", "company.email", ("parent_id", "email"), related_type="many2one"),
    )
    with pytest.raises(ConfigurationError, match=r"'company\.ref' and 'company\.email' both write"):
        inbound.check_inbound_lines(twice)


def test_inbound_line_of_a_mapping_line():
    line = MappingLine(("state",), "status", "raw", "selection", required=True, label="Status")
    assert InboundLine.of(line, selection=STATES) == InboundLine(
        ("state",), "status", "raw", "selection", None, True, "Status", STATES
    )
    assert inbound.inverse_problem(InboundLine.of(MappingLine(("a",), "k", "raw", "x"))).startswith(
        "'a' cannot"
    )
    named = InboundLine.of(MappingLine(("a",), "k", "constant", None, label="Kind"))
    assert inbound.inverse_problem(named).startswith("'Kind' cannot")


# Stale updates and upserts ----------------------------------------------------------------------

VERSION = datetime.datetime(2026, 1, 2, 10, 0, 0, 500000)


@pytest.mark.parametrize(
    ("remote", "version", "rule", "stale"),
    [
        (datetime.datetime(2026, 1, 2, 9, 59, 59), VERSION, "newest_wins", True),
        (datetime.datetime(2026, 1, 2, 10, 0, 0, 400000), VERSION, "newest_wins", True),
        (datetime.datetime(2026, 1, 2, 10, 0, 0, 500000), VERSION, "newest_wins", False),
        (datetime.datetime(2026, 1, 2, 10, 0, 0), VERSION, "newest_wins", False),  # same second
        (datetime.datetime(2026, 1, 2, 10, 0, 1), VERSION, "newest_wins", False),
        (None, VERSION, "newest_wins", False),
        (datetime.datetime(2026, 1, 1), None, "newest_wins", False),
        (datetime.datetime(2026, 1, 1), VERSION, "remote_wins", False),
    ],
)
def test_is_stale(remote, version, rule, stale):
    assert inbound.is_stale(remote, version, rule) is stale


def test_is_stale_refuses_an_unknown_rule():
    with pytest.raises(ValueError, match="unknown stale rule"):
        inbound.is_stale(VERSION, VERSION, "oldest_wins")


@pytest.mark.parametrize(
    ("operation", "exists", "expected"),
    [
        ("create", False, "create"),
        ("create", True, "update"),
        ("update", False, "create"),
        ("update", True, "update"),
        ("delete", True, "delete"),
        ("delete", False, None),
    ],
)
def test_action_upserts(operation, exists, expected):
    assert inbound.action(operation, exists) == expected


def test_action_refuses_an_unknown_operation():
    with pytest.raises(ValueError, match="unknown operation"):
        inbound.action("archive", True)
