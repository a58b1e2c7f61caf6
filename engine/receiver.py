"""A small webhook receiver on 127.0.0.1, for the demo, the tests and the benchmarks.

It records every request, answers with scripted responses (status, headers, delay), else with the
reply a ``policy`` picks (fault injection: errors, slow answers; :class:`RestResources`, a small
in-memory REST API), else 200, and, given a signing secret, verifies Standard Webhooks signatures.
Run it as a program for the demo: ``python -m engine.receiver --port 8075 --secret whsec_...``
prints each event it receives and serves ``/resources/<collection>[/<id>]``. Given an inbound
URL and secret (``--inbound-url``, ``--inbound-secret``: two-way sync),
``POST /demo/change/<collection>/<id>`` with a JSON object changes that resource as the remote
system would and sends the change back to Odoo, signed (``send_signed``), e.g.
``curl -d '{"name": "Ada L."}' http://127.0.0.1:8075/demo/change/contacts/con_1001``.
"""

# pylint: disable=print-used  # printing received events is what the demo receiver is for

import argparse
import collections
import contextlib
import datetime
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
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


class RestResources:
    """In-memory REST collections under ``prefix``, answering like a typical REST API.

    ``POST /resources/contacts`` stores the body and answers 201 with it, a new string ``id`` and
    a ``Location`` header; ``GET``, ``PUT`` (replace), ``PATCH`` (merge) and ``DELETE`` (204) on
    ``/resources/contacts/<id>`` act on that object, 404 when the id is unknown. Other paths are
    left to the receiver (``None``). Used as a receiver ``policy``: it is called under the
    receiver's lock.
    """

    CHANGE_PREFIX = "/demo/change/"

    def __init__(self, prefix="/resources/", notify=None):
        self.prefix = prefix
        self.notify = notify  # callable(event document), given a change to send back
        self.collections = collections.defaultdict(dict)  # name -> {id: object}
        self._numbers = itertools.count(1001)

    def __call__(self, request):
        path = request.path.split("?", 1)[0]
        if path.startswith(self.CHANGE_PREFIX):
            return self._change(request, path[len(self.CHANGE_PREFIX) :])
        if not path.startswith(self.prefix):
            return None
        name, _slash, resource_id = path[len(self.prefix) :].strip("/").partition("/")
        if not name or "/" in resource_id:
            return _json_reply(404, {"error": "not found"})
        items = self.collections[name]
        if not resource_id:
            if request.method == "GET":
                return _json_reply(200, list(items.values()))
            if request.method != "POST":
                return _json_reply(405, {"error": f"{request.method} needs an id"})
            body = self._object(request)
            if body is None:
                return _json_reply(400, {"error": "the body is not a JSON object"})
            resource_id = f"{name[:3]}_{next(self._numbers)}"
            items[resource_id] = {**body, "id": resource_id}
            location = f"{self.prefix}{name}/{resource_id}"
            return _json_reply(201, items[resource_id], {"Location": location})
        if resource_id not in items:
            return _json_reply(404, {"error": f"no {name} {resource_id}"})
        if request.method == "GET":
            return _json_reply(200, items[resource_id])
        if request.method == "DELETE":
            del items[resource_id]
            return Reply(status=204, body="")
        if request.method not in ("PUT", "PATCH"):
            return _json_reply(405, {"error": f"{request.method} is not supported"})
        body = self._object(request)
        if body is None:
            return _json_reply(400, {"error": "the body is not a JSON object"})
        base = items[resource_id] if request.method == "PATCH" else {}
        items[resource_id] = {**base, **body, "id": resource_id}
        return _json_reply(200, items[resource_id])

    def _change(self, request, where):
        """A change made on the remote side: ``POST /demo/change/<collection>/<id>`` merges the
        JSON object into the resource (``DELETE`` removes it) and sends the event back
        (``<singular>.updated`` or ``.deleted``, with the object and its ``updated_at``)."""
        name, _slash, resource_id = where.strip("/").partition("/")
        items = self.collections[name]
        if self.notify is None:
            return _json_reply(404, {"error": "no inbound URL to send changes back to"})
        if resource_id not in items:
            return _json_reply(404, {"error": f"no {name} {resource_id}"})
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")[:-6]
        if request.method == "DELETE":
            data, kind = {"id": resource_id, "updated_at": now + "Z"}, "deleted"
            del items[resource_id]
        else:
            body = self._object(request)
            if body is None:
                return _json_reply(400, {"error": "the body is not a JSON object"})
            items[resource_id] = {**items[resource_id], **body, "id": resource_id}
            data, kind = {**items[resource_id], "updated_at": now + "Z"}, "updated"
        event_id = f"msg_{uuid.uuid4().hex}"
        document = {"type": f"{name.rstrip('s')}.{kind}", "data": data}
        # sent from a thread of its own: Odoo may be delivering to this receiver meanwhile
        threading.Thread(target=self.notify, args=(document, event_id), daemon=True).start()
        return _json_reply(202, {"event_id": event_id, "sent": document})

    @staticmethod
    def _object(request):
        try:
            body = request.json
        except ValueError:
            return None
        return body if isinstance(body, dict) else None


def send_signed(url, secret, document, event_id=None, timeout=10):
    """POST ``document`` to ``url`` signed as a Standard Webhooks sender (``secret``:
    ``whsec_...``); returns ``(status, answer text)`` (status 0: no answer)."""
    body = wire.encode(document)
    event_id = event_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": wire.sign(secret, event_id, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


def _json_reply(status, body, headers=None):
    return Reply(status=status, headers=headers or {}, body=json.dumps(body))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up (timeout) is expected here; nothing to report."""


class Receiver:
    """Start with ``with Receiver() as receiver:``; ``receiver.url`` is its base URL."""

    def __init__(
        self, port=0, secret=None, delay=0.0, echo=False, keep=True, policy=None, on_answer=None
    ):
        self.secret = secret
        self.policy = policy  # callable(Received) -> Reply or None, when nothing is scripted
        # callable(Received), called once its answer is written to the socket (its ``status``
        # set): the moment the client is answered, e.g. for a benchmark's latency
        self.on_answer = on_answer
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
                if receiver.secret and self.command != "GET":  # reads are not signed
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
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                if receiver.on_answer:
                    receiver.on_answer(request)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = _handle

            def log_message(self, format, *args):
                """Quiet: the receiver reports through ``received`` or ``echo``."""

        return Handler

    @staticmethod
    def print_event(request):
        try:
            shown = json.dumps(request.json, indent=2, ensure_ascii=False)
            summary = request.json.get("type", "") if isinstance(request.json, dict) else ""
        except ValueError:
            shown, summary = request.body[:200].decode(errors="replace"), ""
        signature = {
            True: "signature OK",
            False: f"signature BAD ({request.signature_error})",
            None: "unsigned",
        }[request.signature_ok]
        head = f"[receiver] {request.method} {request.path} -> {request.status}"
        line = " ".join(filter(None, (head, summary, signature)))
        print(line + (f"\n{shown}" if shown else ""), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8075)
    parser.add_argument("--secret", help="whsec_... secret to verify signatures with")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering")
    parser.add_argument("--inbound-url", help="Odoo's inbound URL, to send changes back to")
    parser.add_argument("--inbound-secret", help="whsec_... secret to sign them with")
    args = parser.parse_args()
    notify = None
    if args.inbound_url and args.inbound_secret:

        def notify(document, event_id):
            status, answer = send_signed(args.inbound_url, args.inbound_secret, document, event_id)
            print(
                f"[receiver] sent {document['type']} {document['data'].get('id')} back to Odoo "
                f"(event {event_id}) -> {status} {answer}",
                flush=True,
            )

    resources = RestResources(notify=notify)
    with Receiver(
        args.port, args.secret, args.delay, echo=True, keep=False, policy=resources
    ) as receiver:
        print(
            f"[receiver] listening on {receiver.url} (REST resources under "
            f"{receiver.url}{resources.prefix})",
            flush=True,
        )
        if notify:
            print(
                f"[receiver] two-way: POST {receiver.url}{resources.CHANGE_PREFIX}"
                "<collection>/<id> with a JSON object changes it and sends it back to Odoo",
                flush=True,
            )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
