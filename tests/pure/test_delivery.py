import random

import pytest

from engine import delivery
from engine.receiver import Receiver, Reply


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def send(receiver, **kwargs):
    return delivery.send(
        "POST", f"{receiver.url}/hook", b"{}", {}, kwargs.pop("timeout", 2), **kwargs
    )


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "done"),
        (201, "done"),
        (204, "done"),
        (400, "failed"),
        (401, "failed"),
        (404, "failed"),
        (422, "failed"),
        (408, "retry"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (301, "failed"),
    ],
)
def test_status_classification(receiver, status, verdict):
    receiver.script(Reply(status))
    outcome = send(receiver)
    assert (outcome.verdict, outcome.status) == (verdict, status)


def test_retry_after_is_read_only_when_retrying(receiver):
    receiver.script(
        Reply(503, headers={"Retry-After": "30"}), Reply(400, headers={"Retry-After": "30"})
    )
    assert send(receiver).retry_after == 30
    assert send(receiver).retry_after is None


def test_timeout_and_refused_connections_are_retried(receiver):
    receiver.script(Reply(delay=1))
    outcome = send(receiver, timeout=0.2)
    assert (outcome.verdict, outcome.error_class) == ("retry", "ReadTimeout")
    receiver.close()
    outcome = send(receiver)
    assert (outcome.verdict, outcome.error_class) == ("retry", "ConnectionError")


def test_secrets_are_redacted_from_excerpts(receiver):
    receiver.script(Reply(500, body="you sent token s3cr3t"))
    outcome = send(receiver, secrets=["s3cr3t"])
    assert outcome.response_excerpt == "you sent token ***"


def test_long_responses_are_cut(receiver):
    receiver.script(Reply(200, body="x" * 10000))
    assert len(send(receiver).response_excerpt) < 4100


def test_one_session_per_endpoint_per_thread():
    first = delivery.session_for("http://127.0.0.1:1/a")
    assert delivery.session_for("http://127.0.0.1:1/b") is first
    assert delivery.session_for("http://127.0.0.1:2/a") is not first


def test_parse_retry_after():
    now = 1_700_000_000.0
    assert delivery.parse_retry_after("120", now) == 120
    assert delivery.parse_retry_after("Tue, 14 Nov 2023 22:15:20 GMT", now) == pytest.approx(120)
    assert delivery.parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0
    assert delivery.parse_retry_after("soon", now) is None
    assert delivery.parse_retry_after(None, now) is None


def test_backoff_grows_with_full_jitter_within_bounds():
    rng = random.Random(4)
    for attempt in range(1, 12):
        for _ in range(50):
            delay = delivery.backoff_delay(attempt, 10, 600, rng)
            assert 10 <= delay <= min(600, 10 * 2 ** (attempt - 1))
    assert delivery.backoff_delay(1, 10, 600, rng) == 10
    high = [delivery.backoff_delay(8, 10, 600, rng) for _ in range(200)]
    assert max(high) > 400 and min(high) < 200, "full jitter spreads retries"


def test_next_delay_honours_retry_after():
    outcome = delivery.Outcome("retry", 429, retry_after=900)
    assert delivery.next_delay(outcome, 1, 10, 600) == 900
    assert delivery.next_delay(delivery.Outcome("retry", 503), 1, 10, 600) == 10


def test_redact_hides_url_credentials():
    assert (
        delivery.redact("GET http://user:pw@host/x failed", [])
        == "GET http://***:***@host/x failed"
    )
