"""A small REST API on 127.0.0.1 for the resource mode tests: a collection of objects that
POST creates (answering their id), PATCH/PUT update and DELETE removes, 404 for unknown ids."""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class Call:
    method: str
    path: str
    headers: dict
    body: bytes
    status: int = 0

    @property
    def json(self):
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up is expected here; nothing to report."""


class RestApi:
    """Objects live under ``prefix`` (``/contacts``): ``objects[id] = body``.

    ``id_style``: where a create answers the new id: ``body`` (``{"id": ...}``), ``nested``
    (``{"data": {"id": ...}}``), ``location`` (only a Location header) or ``none``. Ids in
    ``gone`` answer 410 instead of 404 once removed.
    """

    def __init__(self, prefix="/contacts"):
        self.prefix = prefix
        self.calls = []
        self.objects = {}
        self.gone = set()
        self.id_style = "body"
        self.next_id = 1
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def reset(self):
        with self._lock:
            self.calls.clear()
            self.objects.clear()
            self.gone.clear()
            self.id_style = "body"
            self.next_id = 1

    def close(self):
        self._server.shutdown()
        self._server.server_close()

    def lines(self):
        """The requests received, as ``METHOD /path`` lines."""
        return [f"{call.method} {call.path}" for call in self.calls]

    def _answer(self, call):
        """``(status, headers, body)`` for a call."""
        path = urlsplit(call.path).path
        if not path.startswith(self.prefix):
            return 404, {}, {"error": "no such collection"}
        object_id = unquote(path[len(self.prefix) :].strip("/"))
        if call.method == "GET" and not object_id:
            return 200, {}, [{"id": key} for key in self.objects]
        if call.method == "POST" and not object_id:
            new_id = f"c{self.next_id}"
            self.next_id += 1
            self.objects[new_id] = json.loads(call.body or b"null")
            body = {
                "body": {"id": new_id, "object": self.objects[new_id]},
                "nested": {"data": {"id": new_id}},
            }.get(self.id_style, {"created": True})
            location = {"Location": f"{self.prefix}/{new_id}"}
            return 201, location if self.id_style == "location" else {}, body
        if object_id not in self.objects:
            return (410 if object_id in self.gone else 404), {}, {"error": "not found"}
        if call.method in ("PATCH", "PUT"):
            self.objects[object_id] = json.loads(call.body or b"null")
            return (204, {}, None) if self.id_style == "none" else (200, {}, {"id": object_id})
        if call.method == "DELETE":
            del self.objects[object_id]
            return 204, {}, None
        return 405, {}, {"error": "method not allowed"}

    def _handler_class(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                call = Call(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                with api._lock:
                    status, headers, body = api._answer(call)
                    call.status = status
                    api.calls.append(call)
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format, *args):
                """Quiet: the tests read ``calls``."""

        return Handler
