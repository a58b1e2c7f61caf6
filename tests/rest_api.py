"""A small REST API on 127.0.0.1 for the resource mode tests: a collection of objects that
POST creates (answering their id), PATCH/PUT update and DELETE removes, 404 for unknown ids."""

import json
from urllib.parse import unquote, urlsplit

from ..engine.receiver import Receiver, Reply


class RestApi(Receiver):
    """Objects live under ``prefix`` (``/contacts``): ``objects[id] = body``; ``calls`` are the
    requests received (:class:`~..engine.receiver.Received`).

    ``id_style``: where a create answers the new id: ``body`` (``{"id": ...}``), ``nested``
    (``{"data": {"id": ...}}``), ``location`` (only a Location header) or ``none``. Ids in
    ``gone`` answer 410 instead of 404 once removed. As APIs that keep idempotency keys do, an
    ``Idempotency-Key`` is tied to the first request that carried it: another method or path
    with the same key answers 400.
    """

    def __init__(self, prefix="/contacts"):
        self.prefix = prefix
        self.objects = {}
        self.gone = set()
        self.id_style = "body"
        self.next_id = 1
        self.keys = {}  # Idempotency-Key -> "METHOD /path" of its first request
        super().__init__(policy=self._reply)
        self.__enter__()

    @property
    def calls(self):
        return self.received

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def reset(self):
        with self._lock:
            self.received.clear()
            self.objects.clear()
            self.gone.clear()
            self.keys.clear()
            self.id_style = "body"
            self.next_id = 1

    def lines(self):
        """The requests received, as ``METHOD /path`` lines."""
        return [f"{call.method} {call.path}" for call in self.calls]

    def _reply(self, call):
        status, headers, body = self._answer(call)
        return Reply(status, headers, body="" if body is None else json.dumps(body))

    def _answer(self, call):
        """The reply to a call (the receiver's policy, called under its lock)."""
        path = urlsplit(call.path).path
        key = call.headers.get("Idempotency-Key")
        if key and self.keys.setdefault(key, f"{call.method} {path}") != f"{call.method} {path}":
            return 400, {}, {"error": f"Idempotency-Key {key} was used for another request"}
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
