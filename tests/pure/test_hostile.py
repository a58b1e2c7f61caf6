"""What a hostile or careless endpoint cannot do: exhaust a worker with its answer, read secrets
back from logs, or receive requests at a forbidden address; and what a careless admin cannot
save."""

import base64
import json
import socket
import threading
import time
from urllib.parse import quote

import pytest
from standardwebhooks import Webhook

from engine import delivery, mapping, wire
from engine.receiver import Receiver, Reply
from engine.targets import TargetPolicy, TargetRefused, check_url

SECRET = "s3cr3t/t0ken+value=="


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def send(receiver, **kwargs):
    return delivery.send("POST", f"{receiver.url}/hook", b"{}", {}, 2, **kwargs)


class EndlessServer:
    """Answers 200 with a body that never ends; counts the bytes the client made it send."""

    def __init__(self, charset=None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sent = 0
        self.charset = charset
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def serve(self):
        connection, _address = self.sock.accept()
        with connection:
            connection.recv(65536)
            content_type = "text/plain" + (f"; charset={self.charset}" if self.charset else "")
            connection.sendall(
                f"HTTP/1.1 500 Oops\r\nContent-Type: {content_type}\r\n"
                "Content-Length: 200000000\r\n\r\n".encode()
            )
            block = "é".encode("latin-1") * 65536
            try:
                while self.sent < 200_000_000:
                    connection.sendall(block)
                    self.sent += len(block)
            except OSError:
                pass  # the client closed: it read what it wanted

    def close(self):
        self.thread.join(timeout=10)
        self.sock.close()


def test_huge_response_is_not_read_beyond_a_bounded_excerpt():
    server = EndlessServer()
    outcome = delivery.send("POST", server.url, b"{}", {}, 5)
    server.close()
    assert outcome.status == 500
    assert len(outcome.response_excerpt) < delivery.EXCERPT + 50
    # the client stopped reading: only what socket buffers hold was ever sent
    assert server.sent < 20_000_000, server.sent


def test_bodies_without_charset_are_decoded_as_utf8_without_guessing():
    server = EndlessServer()
    outcome = delivery.send("POST", server.url, b"{}", {}, 5)
    server.close()
    assert outcome.response_excerpt.startswith("\ufffd\ufffd"), "latin-1 bytes are not guessed"
    server = EndlessServer(charset="latin-1")
    outcome = delivery.send("POST", server.url, b"{}", {}, 5)
    server.close()
    assert outcome.response_excerpt.startswith("éé"), "a declared charset is used"


def test_small_bodies_keep_the_connection_alive(receiver):
    receiver.script(Reply(body="ok"), Reply(body="ok"))
    session = delivery.session_for(receiver.url)
    send(receiver)
    send(receiver)
    pool = session.get_adapter(receiver.url).poolmanager.connection_from_url(receiver.url)
    assert pool.num_connections == 1, "the second request reused the first connection"


def test_a_secret_echoed_across_the_cut_is_redacted(receiver):
    body = "x" * (delivery.EXCERPT - 5) + SECRET + "y" * 100
    receiver.script(Reply(500, body=body))
    excerpt = send(receiver, secrets=[SECRET]).response_excerpt
    assert "s3cr" not in excerpt
    assert excerpt.endswith("[… truncated]")


@pytest.mark.parametrize(
    "echo",
    [
        SECRET,
        json.dumps(SECRET)[1:-1].replace("/", "\\/"),
        quote(SECRET, safe=""),
        base64.b64encode(SECRET.encode()).decode(),
    ],
)
def test_encoded_echoes_of_secrets_are_redacted(receiver, echo):
    receiver.script(Reply(401, body=f'{{"error": "bad key {echo}"}}'))
    excerpt = send(receiver, secrets=[SECRET]).response_excerpt
    assert echo not in excerpt and "***" in excerpt


def test_basic_credentials_echoed_in_base64_are_redacted(receiver):
    header = wire.auth_headers("basic", username="bob", password="pa55word")["Authorization"]
    encoded = header.removeprefix("Basic ")
    receiver.script(Reply(401, body=f"rejected {encoded}"))
    excerpt = send(receiver, secrets=["pa55word", header]).response_excerpt
    assert encoded not in excerpt


def test_target_policy_parses_hosts_and_networks():
    policy = TargetPolicy.parse("api.example.com, *.corp.example  10.1.0.0/16 2001:db8::/32")
    assert policy.hosts == ("api.example.com", "*.corp.example")
    assert len(policy.networks) == 2
    assert not TargetPolicy.parse("").active
    with pytest.raises(ValueError, match="neither a host name nor a network"):
        TargetPolicy.parse("http://x/y")


@pytest.mark.parametrize(
    ("allowed", "deny", "host", "addresses", "ok"),
    [
        ("", False, "127.0.0.1", ["127.0.0.1"], True),
        ("", True, "127.0.0.1", ["127.0.0.1"], False),
        ("", True, "metadata", ["169.254.169.254"], False),
        ("", True, "intranet", ["10.0.0.5"], False),
        ("", True, "v6", ["::1"], False),
        ("", True, "mapped", ["::ffff:127.0.0.1"], False),
        ("", True, "public", ["93.184.215.14"], True),
        ("10.0.0.0/8", True, "intranet", ["10.0.0.5"], True),
        ("api.example.com", False, "api.example.com", ["93.184.215.14"], True),
        ("api.example.com", False, "evil.example.com", ["93.184.215.14"], False),
        ("*.example.com", False, "a.b.example.com", ["93.184.215.14"], True),
        ("*.example.com", False, "example.com.evil.io", ["93.184.215.14"], False),
        ("api.example.com", True, "api.example.com", ["127.0.0.1"], False),
    ],
)
def test_target_policy(allowed, deny, host, addresses, ok):
    policy = TargetPolicy.parse(allowed, deny)
    if ok:
        policy.check(host, addresses)
    else:
        with pytest.raises(TargetRefused):
            policy.check(host, addresses)


def test_refused_targets_receive_nothing(receiver):
    policy = TargetPolicy.parse("", deny_private=True)
    with pytest.raises(TargetRefused):
        check_url(receiver.url, policy)
    outcome = send(receiver, policy=policy)
    assert (outcome.verdict, outcome.error_class) == ("failed", "TargetRefused")
    assert not receiver.received
    allowed = TargetPolicy.parse("127.0.0.0/8", deny_private=True)
    assert send(receiver, policy=allowed).verdict == "done"


def test_a_name_resolving_elsewhere_at_connection_time_is_refused(receiver):
    """DNS rebinding: the name passed the check, the connection lands on a refused address."""
    policy = TargetPolicy.parse("", deny_private=True)
    session = delivery.session_for(receiver.url, policy)
    with pytest.raises(TargetRefused):
        session.post(f"{receiver.url}/hook", data=b"{}", timeout=2)
    assert not receiver.received


def test_rotated_secrets_both_sign():
    old, new = wire.new_secret(), wire.new_secret()
    now = int(time.time())
    headers = wire.headers_for("evt_1", b"{}", now, "ua", None, new, (old,))
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(b"{}", {k.lower(): v for k, v in headers.items()})


def test_deeply_nested_default_values_are_refused():
    with pytest.raises(mapping.ConfigurationError, match="nested"):
        mapping.parse_default("[" * 100_000 + "]" * 100_000)
    assert mapping.parse_default('{"a": [1, {"b": "[[[["}]}') == {"a": [1, {"b": "[[[["}]}


def test_a_body_trickled_slowly_is_cut_at_twice_the_timeout():
    sock = socket.create_server(("127.0.0.1", 0))
    sent = []

    def serve():
        connection, _address = sock.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 500 Slow\r\nContent-Length: 100000\r\n\r\n")
            try:
                for _ in range(200):
                    connection.sendall(b"x" * 10)
                    sent.append(10)
                    time.sleep(0.05)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = sock.getsockname()[1]
    outcome = delivery.send("POST", f"http://127.0.0.1:{port}/hook", b"{}", {}, 0.3)
    thread.join(timeout=15)
    sock.close()
    assert outcome.status == 500
    assert outcome.response_excerpt.endswith("[… truncated]")
    assert sum(sent) < 2000, "the client stopped reading at its deadline"
