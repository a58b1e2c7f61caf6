"""The adapters: what talks to the endpoint, one per payload format, chosen once per
configuration (``adapter_for``).

An adapter owns what differs between the formats: the request an event becomes, what its
response means, and (resource mode) the record's external id. What every request needs from
its configuration besides its body (the outbound target policy, credentials, previous signing
secrets, extra headers) is read once per adapter, that is once per delivery job and
configuration: it does not change within a job's transaction.

- ``EnvelopeAdapter``: the event envelope (id, type, record id, data) to the endpoint URL with
  the HTTP Method.
- ``ResourceAdapter``: the mapped object itself, created, updated or deleted at the paths of
  the Requests tab by the record's external id (``api.sync.binding``, the binder).
"""

import json
import time
from functools import cached_property

from ..engine import delivery, mapping, resource, wire
from ..engine.delivery import Outcome

PATH_FIELDS = {"create": "create_path", "update": "update_path", "delete": "delete_path"}
METHOD_FIELDS = {"create": "create_method", "update": "update_method", "delete": "delete_method"}


def adapter_for(config):
    """The adapter of ``config``'s payload format."""
    if config.sudo().payload_format == "resource":
        return ResourceAdapter(config)
    return EnvelopeAdapter(config)


class Adapter:
    """The requests of one configuration (see the module's docstring)."""

    def __init__(self, config):
        self.config = config.sudo()
        self.env = config.env

    # what every request needs, read once
    @cached_property
    def policy(self):
        return self.config._target_policy()  # raises ValueError: not kept, raised each time

    @cached_property
    def auth(self):
        return self.config._auth_headers()

    @cached_property
    def previous_secrets(self):
        return self.config._previous_secrets()

    @cached_property
    def secrets(self):
        return self.config._secret_values()

    @cached_property
    def extra_headers(self):
        return {header.name.strip(): header.value for header in self.config.request_header_ids}

    def headers(self, event_id, body, timestamp):
        """The headers of a request: the extra headers, then api_sync's own (which win); no
        Content-Type without a body."""
        headers = wire.headers_for(
            event_id,
            body,
            timestamp,
            self.config._user_agent(),
            auth=self.auth,
            signing_secret=self.config.signing_secret or None,
            previous_secrets=self.previous_secrets,
        )
        if not body:
            headers.pop("Content-Type", None)
        return {**self.extra_headers, **headers}

    def send_body(self, event_id, body, method=None, url=None):
        """One request carrying ``body`` (bytes) to the endpoint with the HTTP Method (or to
        ``url``, an address of the endpoint's host, with ``method``); returns its Outcome."""
        config = self.config
        try:
            policy = self.policy
        except ValueError as exc:
            return Outcome("failed", error_class="TargetRefused", error_message=str(exc))
        headers = self.headers(event_id, body, int(time.time()))
        outcome = delivery.send(
            method or config.http_method,
            url or config.endpoint_url,
            body,
            headers,
            config.timeout,
            secrets=self.secrets,
            policy=policy,
        )
        outcome.sent_headers = wire.masked_headers(headers, self.secrets)
        return outcome

    # what differs between the formats
    def prefetch(self, logs):
        """Read what the events ``logs`` of this configuration need, together."""

    def send(self, log):
        """Send the event ``log`` (its frozen body); returns its Outcome, or None when nothing
        is to be sent (the log then says why)."""
        raise NotImplementedError

    def shown_request(self, log, event):
        """The body to show for the event ``log`` (its envelope ``event``), as sent."""
        return event

    def test_request(self, event_id):
        """``(method, body)`` of the connection test (method None: the HTTP Method)."""
        raise NotImplementedError

    def deletion_values(self, records, captured):
        """What the deletion events of ``records`` (their log values ``captured``) need beyond
        their body, captured before the records go."""
        return captured


class EnvelopeAdapter(Adapter):
    """Every change is an event envelope posted to the endpoint URL."""

    def send(self, log):
        return self.send_body(log.idempotency_key, log.request_body.encode())

    def test_request(self, event_id):
        """A signed ``api_sync.ping`` event with the HTTP Method."""
        ping = wire.ping_event(event_id, self.config.model_name, wire.utc_now())
        return None, wire.encode(ping)


class ResourceAdapter(Adapter):
    """The mapped object itself, one request per operation, by the record's external id."""

    def __init__(self, config):
        super().__init__(config)
        self.bindings = {}  # {record id: external id or None}, as committed, read together
        self.Binding = self.env["api.sync.binding"].sudo()

    @property
    def root_key(self):
        return (self.config.root_key or "").strip()

    def prefetch(self, logs):
        res_ids = set(logs.filtered("res_id").mapped("res_id"))
        if res_ids:
            self.bindings.update(self.Binding._external_ids(self.config, res_ids))

    def shown_request(self, log, event):
        if log.operation == "delete":
            return None
        if log.operation == "batch":
            return resource.body([item["data"] for item in event["records"]], self.root_key)
        return resource.body(event["data"], self.root_key)

    def test_request(self, event_id):
        """A ``GET`` of the endpoint URL, which creates nothing there."""
        return "GET", b""

    def deletion_values(self, records, captured):
        """The values the delete path needs, captured with the deletion."""
        kept = [
            (record, vals)
            for record, vals in zip(records, captured, strict=True)
            if vals.get("request_body")
        ]
        payloads = [json.loads(vals["request_body"])["data"] for _record, vals in kept]
        try:
            values = self.config._placeholder_values(
                records.browse([record.id for record, _vals in kept]), payloads
            )
        except mapping.MappingError:
            return captured  # the delivery fails naming what is missing; the deletion goes on
        for (_record, vals), record_values in zip(kept, values, strict=True):
            vals["resource_values"] = json.dumps(record_values)
        return captured

    # -- sending --------------------------------------------------------------------------------

    def send(self, log):
        """The log keeps the event envelope; the body sent is its data (a batch: the list of
        its records' data), wrapped under the Root Key."""
        event = json.loads(log.request_body)
        if log.operation == "batch":
            items = [item["data"] for item in event["records"]]
            return self.send_body(
                log.idempotency_key, wire.encode(resource.body(items, self.root_key))
            )
        return self._send_record(log, event["data"])

    def _send_record(self, log, data):
        """The create, update or delete request of a record event, by its external id."""
        try:
            values = self._frozen_values(log, data)
        except mapping.MappingError as exc:
            return Outcome("failed", error_class="MappingError", error_message=str(exc))
        bound = self._bound(log)
        step = self._plan(log, bound)
        if step.skip:
            self._not_sent(log, step)
            return None
        outcome = self._send_step(log, step, bound, data, values)
        missing = outcome.status in resource.MISSING_STATUSES
        if step.kind == "update" and missing and self.config.on_remote_missing == "recreate":
            self._set_bound(log, None)
            recreate = self._plan(log, None)
            if not recreate.skip:
                step = recreate
                outcome = self._send_step(log, step, None, data, values)
        return self._after_response(log, step, bound, outcome)

    def _plan(self, log, bound):
        config = self.config
        return resource.plan(
            log.operation, bound, config._operation_methods(), config._needs_external_id()
        )

    def _frozen_values(self, log, data):
        """The placeholder values of the event, computed once (captured at the call for
        deletions)."""
        if log.resource_values:
            return json.loads(log.resource_values)
        record = self.env[log.res_model].browse(log.res_id).exists()
        if record:
            (values,) = self.config._placeholder_values(record, [data])
        else:  # a deletion whose values could not be captured: the paths say what is missing
            values = {resource.RECORD_ID: log.res_id}
        log.resource_values = json.dumps(values)
        return values

    def _send_step(self, log, step, bound, data, values):
        config = self.config
        try:
            url = config._request_url(step.kind, {**values, resource.EXTERNAL_ID: bound})
        except resource.MissingValue as exc:
            return Outcome(
                "failed",
                error_class="MissingValue",
                error_message=self.env._(
                    "%(field)s: %(problem)s Fill it in on the record, or change the path.",
                    field=config._field_label(PATH_FIELDS[step.kind]),
                    problem=exc,
                ),
            )
        body = b"" if step.kind == "delete" else wire.encode(resource.body(data, self.root_key))
        log.request_line = f"{step.method} {url}"
        outcome = self.send_body(_request_key(log, step.kind), body, method=step.method, url=url)
        outcome.object_url = step.kind != "create"
        return outcome

    def _after_response(self, log, step, bound, outcome):
        """Bind, refresh or drop the record's external id after a response."""
        config = self.config
        missing = outcome.status in resource.MISSING_STATUSES
        if step.kind == "delete" and missing:  # already gone: what the delete wanted
            outcome.verdict, outcome.error_class, outcome.error_message = "done", None, None
        if outcome.verdict != "done":
            if step.kind == "update" and missing:
                outcome.error_message = self.env._(
                    "%(error)s: the object %(external_id)s is no longer at the endpoint.",
                    error=outcome.error_message,
                    external_id=bound,
                )
            return outcome
        if step.kind == "delete":
            self._set_bound(log, None)
            return outcome
        external_id = bound
        if step.kind == "create":
            text = outcome.response_data.decode(errors="replace")
            external_id = resource.external_id(text, config.external_id_path, outcome.location)
        if not external_id and not config._external_id_needed():
            return outcome  # its paths address it by its own values: nothing to bind
        if not external_id:
            outcome.verdict, outcome.error_class = "failed", "NoExternalId"
            outcome.error_message = self.env._(
                "Created, but the response gives no id: none at External ID Path %(path)r of "
                "its body, and no Location header. Set the External ID Path; retrying would "
                "create the object again.",
                path=config.external_id_path or "",
            )
            return outcome
        self._set_bound(log, external_id)
        return outcome

    def _not_sent(self, log, step):
        """Cancel an event its configuration does not send (the log says why)."""
        if step.skip == "disabled":
            message = self.env._(
                "Not sent: %(field)s is Do not send.",
                field=self.config._field_label(METHOD_FIELDS[step.kind]),
            )
        else:
            message = self.env._(
                "Not sent: the record has no external id with this configuration (it was never "
                "created at the endpoint, or its deletion was delivered already)."
            )
        if step.kind == "delete":
            self._set_bound(log, None)
        log.write({"state": "cancelled", "error_class": "NotSent", "error_message": message})
        log._update_status()

    # -- the record's external id (the binder) --------------------------------------------------

    def _bound(self, log):
        """The record's external id as committed: read with the job's events, else now."""
        if log.res_id in self.bindings:
            return self.bindings[log.res_id]
        return self.Binding._external_id(self.config, log.res_id)

    def _set_bound(self, log, external_id):
        """Bind the record to ``external_id`` (None: unbind), committed at once."""
        if external_id:
            self.Binding._bind(self.config, log.res_id, external_id, log.record_version)
        else:
            self.Binding._unbind(self.config, log.res_id)
        self.bindings[log.res_id] = external_id or None


def _request_key(log, kind):
    """The Idempotency-Key of the event's ``kind`` request, the same on every retry: the event
    id for the request of its own operation, the event id and the kind for the other request of
    an upsert (an update sent as a create, a create of a bound record sent as an update): an API
    that ties a key to the first request carrying it refuses it on another."""
    if kind == log.operation:
        return log.idempotency_key
    return f"{log.idempotency_key}-{kind}"
