"""The inbound URL of a configuration: ``POST /api_sync/inbound/<token>`` (PUT, PATCH and DELETE
too). It only verifies and stores; ``Inbound`` (models/inbound.py) applies the event in a job.

In order: the configuration found by its token (constant-time comparison; unknown: 404), a slot
among the configuration's concurrent requests (none free: 429 with Retry-After), the body read
with a bound (413), the signature or token checked on the raw bytes (401), the JSON parsed
(400), the event read (its id, operation, remote id; unusable: stored as a failed event, 400),
then the event and its job stored in one statement before the answer: 202, or 200 for a
redelivery (the sender's event id is known). Answers are ``{"error": reason}`` or
``{"status": ...}``: nothing about the configuration. The superuser is used only to find the
configuration and store the event. The route is bound to the request's database as Odoo's own
webhook route (``/web/hook/<uuid>``) is: a single database, or the one ``dbfilter`` selects.
"""

import hmac
import time

import psycopg2

from odoo import http
from odoo.http import request

from ..engine import inbound
from ..models.api_sync_config_inbound import INBOUND_SETTINGS_FIELDS

SLOT_LOCK_CLASS = 1634759561  # advisory lock namespace of the inbound slots ("apsi")
MAX_SLOTS = 64
RETRY_AFTER = "1"


class InboundController(http.Controller):
    @http.route(
        "/api_sync/inbound/<string:token>",
        type="http",
        auth="public",
        methods=["POST", "PUT", "PATCH", "DELETE"],
        csrf=False,
        save_session=False,
    )
    def receive(self, token, **_params):
        try:
            return self._receive(token)
        except inbound.Refused as refused:
            headers = [("Retry-After", RETRY_AFTER)] if refused.status in (429, 503) else []
            return request.make_json_response(
                {"error": refused.reason}, status=refused.status, headers=headers
            )

    def _receive(self, token):
        config = self._config_by_token(token)
        self._take_slot(config)
        httprequest = request.httprequest
        body = inbound.read_bounded(
            _stream(httprequest),
            inbound.DEFAULT_MAX_BODY,
            httprequest.headers.get("Content-Length"),
        )
        headers = dict(httprequest.headers)
        config._verify_inbound(headers, body, time.time())
        document = inbound.parse_json(body)
        settings = config._inbound_settings()
        method = httprequest.method
        kept = self._kept_headers(settings, headers)
        Log = request.env["api.sync.log"].sudo()
        try:
            event = inbound.read_event(settings, method, headers, document)
        except inbound.EventError as exc:
            Log._store_refused_event(config, exc, body, method, kept)
            raise inbound.Refused(400, "not a usable event") from None
        try:
            with request.env.cr.savepoint(flush=False):
                stored = Log._store_inbound(config, event, body, method, kept)
        except psycopg2.errors.SerializationFailure:
            # the same event id stored by a concurrent request: its sender retries later
            raise inbound.Refused(503, "busy, retry later") from None
        if not stored:
            return request.make_json_response({"status": "duplicate"}, status=200)
        return request.make_json_response({"status": "accepted"}, status=202)

    def _config_by_token(self, token):
        """The active configuration whose inbound token is ``token``: every enabled one is
        compared in constant time (the token's bytes never decide which row a query reads)."""
        cr = request.env.cr
        cr.execute(
            """SELECT id, inbound_token FROM api_sync_config
                WHERE active AND inbound_enabled AND inbound_token IS NOT NULL"""
        )
        given = (token or "").encode("utf-8", "backslashreplace")
        found = None
        for config_id, expected in cr.fetchall():
            if hmac.compare_digest(given, expected.encode()) and found is None:
                found = config_id
        if found is None:
            raise inbound.Refused(404, inbound.NOT_FOUND)
        config = request.env["api.sync.config"].sudo().browse(found)
        config.fetch(list(INBOUND_SETTINGS_FIELDS))
        return config

    def _take_slot(self, config):
        """One of the configuration's slots, held until this request's transaction ends (a
        transaction-level advisory lock): at most ``inbound_concurrency`` requests of one
        configuration are read, verified and stored at once, whatever they carry."""
        cr = request.env.cr
        for slot in range(min(config.inbound_concurrency, MAX_SLOTS)):
            cr.execute(
                "SELECT pg_try_advisory_xact_lock(%s, %s)",
                (SLOT_LOCK_CLASS, config.id * MAX_SLOTS + slot),
            )
            if cr.fetchone()[0]:
                return
        raise inbound.Refused(429, "too many requests")

    def _kept_headers(self, settings, headers):
        """The headers the event is read from (event id, operation), kept with it; never the
        signature nor the token."""
        names = {settings.event_id_header, settings.operation_header} - {"", None}
        kept = {}
        for name in names:
            value = inbound.header(headers, name)
            if value is not None:
                kept[name] = value
        return kept


def _stream(httprequest):
    """The body's stream (werkzeug's, which stops at the Content-Length): Odoo's request
    wrapper only offers ``get_data``, which reads the whole body before any bound applies."""
    wrapped = getattr(httprequest, "_HTTPRequest__wrapped", httprequest)
    return wrapped.stream
