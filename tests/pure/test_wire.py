import datetime
import json

import pytest
from standardwebhooks import Webhook

from engine import wire

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_record_event_envelope():
    body = wire.record_event(
        "evt-1",
        "res.partner",
        7,
        "update",
        {"name", "email"},
        datetime.datetime(2024, 1, 2, 3, 4, 5),
        {"name": "A"},
        datetime.datetime(2024, 1, 2, 3, 4, 6),
    )
    assert body == {
        "id": "evt-1",
        "type": "res.partner.updated",
        "timestamp": "2024-01-02T03:04:06Z",
        "model": "res.partner",
        "record_id": 7,
        "operation": "update",
        "changed_fields": ["email", "name"],
        "version": "2024-01-02T03:04:05Z",
        "data": {"name": "A"},
    }
    deleted = wire.record_event(
        "e", "res.partner", 7, "delete", None, None, {}, datetime.date(2024, 1, 1)
    )
    assert deleted["type"] == "res.partner.deleted"
    assert deleted["changed_fields"] is None and deleted["version"] is None


def test_batch_event_envelope():
    body = wire.batch_event(
        "b-1", "res.partner", [(1, "update", None, {"a": 1})], datetime.datetime(2024, 1, 1)
    )
    assert body["type"] == "res.partner.batch"
    assert body["records"] == [
        {"record_id": 1, "operation": "update", "version": None, "data": {"a": 1}}
    ]


def test_encode_is_compact_utf8():
    assert wire.encode({"name": "Zoë"}) == '{"name":"Zoë"}'.encode()


def test_signature_verifies_with_the_standard_webhooks_library():
    body = wire.encode({"id": "msg_1", "x": "é"})
    timestamp = int(datetime.datetime.now().timestamp())
    headers = wire.headers_for("msg_1", body, timestamp, "ua", signing_secret=SECRET)
    lowered = {name.lower(): value for name, value in headers.items()}
    assert Webhook(SECRET).verify(body, lowered) == json.loads(body)
    assert wire.verify(SECRET, lowered, body, timestamp)
    with pytest.raises(ValueError, match="no webhook-signature matches"):
        wire.verify(SECRET, lowered, body + b" ", timestamp)
    with pytest.raises(ValueError, match="too old"):
        wire.verify(SECRET, lowered, body, timestamp + 3600)


def test_headers_without_secret_have_no_signature():
    headers = wire.headers_for("e", b"{}", 1, "ua/1", auth={"Authorization": "Bearer t"})
    assert headers == {
        "Content-Type": "application/json",
        "Idempotency-Key": "e",
        "User-Agent": "ua/1",
        "Authorization": "Bearer t",
    }


def test_auth_headers():
    assert wire.auth_headers("none") == {}
    assert wire.auth_headers("basic", "u", "p") == {"Authorization": "Basic dTpw"}
    assert wire.auth_headers("bearer", token="t") == {"Authorization": "Bearer t"}
    assert wire.auth_headers("api_key", key_header="X-Key", key="k") == {"X-Key": "k"}


def test_secret_format():
    assert wire.secret_key(SECRET)
    new = wire.new_secret()
    assert new.startswith("whsec_") and wire.secret_key(new)
    for bad in ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!"):
        with pytest.raises(ValueError):
            wire.secret_key(bad)


def test_masked_headers_hide_credentials_and_signatures():
    headers = wire.headers_for(
        "evt", b"{}", 1_700_000_000, "ua", {"Authorization": "Bearer tok"}, wire.new_secret()
    )
    headers["X-API-Key"] = "key-1"
    shown = wire.masked_headers(headers, secrets=["key-1"])
    assert shown["Authorization"] == "Bearer ***"
    assert shown["webhook-signature"] == "v1,***"
    assert shown["X-API-Key"] == "***"
    assert shown["Idempotency-Key"] == "evt"
    assert "tok" not in str(shown)


def test_an_api_key_sent_as_authorization_is_masked_whole():
    headers = wire.auth_headers("api_key", key_header="Authorization", key="sk_live_SECRET 123")
    assert wire.masked_headers(headers) == {"Authorization": "***"}
