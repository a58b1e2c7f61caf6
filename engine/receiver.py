"""A small webhook receiver on 127.0.0.1, for the demo, the tests and the benchmarks.

It records every request, answers with scripted responses (status, headers, delay), else with the
reply a ``policy`` picks (fault injection: errors, slow answers), else 200, and, given a signing
secret, verifies Standard Webhooks signatures. Run it as a program for the demo:
``python -m engine.receiver --port 8075 --secret whsec_...`` prints each event it receives.
"""

# pylint: disable=print-used  # printing received events is what the demo receiver is for

import argparse
import collections
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import wire


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes
    signature_ok: bool | None = None
    signature_error: str | None = None
    status: int | None = None  # the status it was answered with

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    body: str = '{"ok": true}'


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up (timeout) is expected here; nothing to report."""


class Receiver:
    """Start with ``with Receiver() as receiver:``; ``receiver.url`` is its base URL."""

    def __init__(self, port=0, secret=None, delay=0.0, echo=False, keep=True, policy=None):
        self.secret = secret
        self.policy = policy  # callable(Received) -> Reply or None, when nothing is scripted
        self.delay = delay
        self.echo = echo
        self.keep = keep
        self.received = []
        self.count = 0
        self.replies = collections.deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), self._handler_class())
        self._thread = None

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies):
        """Queue replies for the next requests; afterwards every request gets 200."""
        self.replies.extend(replies)

    def __enter__(self):
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._server.shutdown()
        self._server.server_close()

    def _record(self, request):
        with self._lock:
            self.count += 1
            if self.keep:
                self.received.append(request)
            reply = self.replies.popleft() if self.replies else None
            if reply is None and self.policy:
                reply = self.policy(request)
            reply = reply or Reply(delay=self.delay)
            request.status = reply.status
            return reply

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go in two writes: without this, each keep-alive answer waits
            # for the client's delayed ACK (~40 ms)
            disable_nagle_algorithm = True

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                request = Received(self.command, self.path, dict(self.headers.items()), body)
                if receiver.secret:
                    try:
                        request.signature_ok = wire.verify(
                            receiver.secret, self.headers, body, time.time()
                        )
                    except ValueError as exc:
                        request.signature_ok, request.signature_error = False, str(exc)
                reply = receiver._record(request)
                if receiver.echo:
                    receiver.print_event(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body.encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = do_PATCH = _handle

            def log_message(self, format, *args):
                """Quiet: the receiver reports through ``received`` or ``echo``."""

        return Handler

    @staticmethod
    def print_event(request):
        try:
            body = request.json
        except ValueError:
            body = request.body[:200]
        signature = {
            True: "signature OK",
            False: f"signature BAD ({request.signature_error})",
            None: "unsigned",
        }[request.signature_ok]
        summary = body.get("type") if isinstance(body, dict) else "?"
        print(
            f"[receiver] {request.method} {request.path} {summary} {signature}\n"
            f"{json.dumps(body, indent=2, ensure_ascii=False)}",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8075)
    parser.add_argument("--secret", help="whsec_... secret to verify signatures with")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering")
    args = parser.parse_args()
    with Receiver(args.port, args.secret, args.delay, echo=True, keep=False) as receiver:
        print(f"[receiver] listening on {receiver.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
