"""Sending an event's request: the envelope to the endpoint, or in resource mode the request
its operation and the record's external id call for (create, update, delete)."""

import json

from odoo import api, fields, models

from ..engine import mapping, resource, wire
from ..engine.delivery import Outcome
from .api_sync_config_resource import METHOD_FIELDS, PATH_FIELDS
from .api_sync_log import GROUP_KEY
from .constants import MANAGER_GROUP


class ApiSyncLog(models.Model):
    _inherit = "api.sync.log"

    request_line = fields.Char(
        help="Resource mode: the method and URL of the last request sent for this event."
    )
    resource_values = fields.Text(
        groups=MANAGER_GROUP,
        help="Resource mode: the values of the request paths' placeholders, frozen at the first "
        "attempt (at the call for deletions).",
    )
    external_id = fields.Char(
        string="External ID",
        compute="_compute_external_id",
        help="The id of the record's object at the endpoint (resource mode).",
    )

    @api.depends("config_id", "res_id")
    def _compute_external_id(self):
        self.env["api.sync.binding"]._fill_external_ids(self)

    @api.depends(
        "request_body",
        "response_body",
        "error_message",
        "state",
        "response_status",
        "config_id.payload_format",
        "config_id.root_key",
    )
    @api.depends_context("uid")
    def _compute_previews(self):
        """Resource mode: the request shown is the body sent, not the event kept."""
        result = super()._compute_previews()
        for log in self.filtered(lambda log: log.request_preview and log._is_resource()):
            event = json.loads(log.sudo().request_body)
            if log.operation == "delete":
                sent = None
            elif log.operation == "batch":
                sent = resource.body([item["data"] for item in event["records"]], log._root_key())
            else:
                sent = resource.body(event["data"], log._root_key())
            log.request_preview = sent and json.dumps(sent, indent=2, ensure_ascii=False)
        return result

    def _start_group(self, status_rows):
        """Resource mode: the external ids of the group's records, read together."""
        group = super()._start_group(status_rows)
        events = self.filtered(lambda log: log.res_id and log._is_resource())
        for config, logs in events.grouped("config_id").items():
            bound = config._bound_external_ids(set(logs.mapped("res_id")))
            group.bindings.update({(config.id, res_id): ext for res_id, ext in bound.items()})
        return group

    def _bound(self):
        """The record's external id as committed: the job's group's, else read now."""
        group = self.env.context.get(GROUP_KEY)
        key = (self.config_id.id, self.res_id)
        if group is not None and key in group.bindings:
            return group.bindings[key]
        return self.config_id._bound_external_id(self.res_id)

    def _set_bound(self, external_id):
        """Bind the record to ``external_id`` (None: unbind), committed at once, and tell the
        job's group."""
        if external_id:
            self.config_id._bind(self.res_id, external_id, self.record_version)
        else:
            self.config_id._unbind(self.res_id)
        group = self.env.context.get(GROUP_KEY)
        if group is not None:
            group.bindings[self.config_id.id, self.res_id] = external_id or None

    def _is_resource(self):
        return self.config_id.payload_format == "resource"

    def _root_key(self):
        return (self.config_id.root_key or "").strip()

    # -- sending (hook of _attempt) --------------------------------------------------------------

    def _send_request(self):
        """Send this event's request; returns its Outcome, or None when nothing is to be sent
        (the log then says why).

        The log keeps the event envelope; in resource mode the body sent is its data (a batch:
        the list of its records' data), wrapped under the Root Key."""
        config = self.config_id
        if not self._is_resource():
            return super()._send_request()
        event = json.loads(self.request_body)
        if self.operation == "batch":
            items = [item["data"] for item in event["records"]]
            return config._send(
                self.idempotency_key, wire.encode(resource.body(items, self._root_key()))
            )
        return self._send_resource(event["data"])

    def _send_resource(self, data):
        """The create, update or delete request of a record event, by its external id."""
        config = self.config_id.sudo()
        try:
            values = self._frozen_resource_values(data)
        except mapping.MappingError as exc:
            return Outcome("failed", error_class="MappingError", error_message=str(exc))
        bound = self._bound()
        step = self._plan(bound)
        if step.skip:
            self._not_sent(step)
            return None
        outcome = self._send_step(step, bound, data, values)
        missing = outcome.status in resource.MISSING_STATUSES
        if step.kind == "update" and missing and config.on_remote_missing == "recreate":
            self._set_bound(None)
            recreate = self._plan(None)
            if not recreate.skip:
                step = recreate
                outcome = self._send_step(step, None, data, values)
        return self._after_response(step, bound, outcome)

    def _plan(self, bound):
        config = self.config_id
        return resource.plan(
            self.operation, bound, config._operation_methods(), config._needs_external_id()
        )

    def _frozen_resource_values(self, data):
        """The placeholder values of this event, computed once (captured at the call for
        deletions)."""
        log = self.sudo()
        if log.resource_values:
            return json.loads(log.resource_values)
        record = self.env[self.res_model].browse(self.res_id).exists()
        if record:
            (values,) = self.config_id._placeholder_values(record, [data])
        else:  # a deletion whose values could not be captured: the paths say what is missing
            values = {resource.RECORD_ID: self.res_id}
        log.resource_values = json.dumps(values)
        return values

    def _send_step(self, step, bound, data, values):
        config = self.config_id
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
        body = b"" if step.kind == "delete" else wire.encode(resource.body(data, self._root_key()))
        self.request_line = f"{step.method} {url}"
        outcome = config._send(self._request_key(step.kind), body, method=step.method, url=url)
        outcome.object_url = step.kind != "create"
        return outcome

    def _attempt_values(self, outcome, at):
        return {**super()._attempt_values(outcome, at), "request_line": self.request_line or False}

    def _request_key(self, kind):
        """The Idempotency-Key of this event's ``kind`` request, the same on every retry: the
        event id for the request of its own operation, the event id and the kind for the other
        request of an upsert (an update sent as a create, a create of a bound record sent as an
        update): an API that ties a key to the first request carrying it refuses it on
        another."""
        if kind == self.operation:
            return self.idempotency_key
        return f"{self.idempotency_key}-{kind}"

    def _after_response(self, step, bound, outcome):
        """Bind, refresh or drop the record's external id after a response."""
        config = self.config_id
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
            self._set_bound(None)
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
        self._set_bound(external_id)
        return outcome

    def _not_sent(self, step):
        """Cancel an event its configuration does not send (the log says why)."""
        if step.skip == "disabled":
            message = self.env._(
                "Not sent: %(field)s is Do not send.",
                field=self.config_id._field_label(METHOD_FIELDS[step.kind]),
            )
        else:
            message = self.env._(
                "Not sent: the record has no external id with this configuration (it was never "
                "created at the endpoint, or its deletion was delivered already)."
            )
        if step.kind == "delete":
            self._set_bound(None)
        self.write({"state": "cancelled", "error_class": "NotSent", "error_message": message})
        self._update_status()
