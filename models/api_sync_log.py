"""One event of a configuration and what happened to it: an outbound one, attempt after
attempt, or an inbound one (what a remote system sent, see ``api_sync_log_inbound``)."""

import contextlib
import json
import logging
import uuid
from functools import lru_cache, partial
from urllib.parse import urlsplit

import psycopg2
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import split_every

from ..engine.mapping import parse_iso_datetime
from . import compat, queue_jobs
from .adapters import adapter_for
from .constants import MANAGER_GROUP, USER_GROUP
from .delivery import Delivery

_logger = logging.getLogger(__name__)

REFRESH_KEY = "api_sync.refresh"
DIRECTIONS = [("outbound", "Outbound"), ("inbound", "Inbound")]
LOG_STATES = [
    ("pending", "Pending"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]


def notify_viewers(records):
    """Tell the API Sync users' open views that ``records`` changed: one bus notification per
    model and transaction, sent just before it commits (ids only, no data)."""
    if not records:
        return
    cr = records.env.cr
    pending = cr.precommit.data.get(REFRESH_KEY)
    if pending is None:
        pending = cr.precommit.data[REFRESH_KEY] = {}
        cr.precommit.add(partial(_send_refresh, records.env))
    pending.setdefault(records._name, set()).update(records.ids)


def _send_refresh(env):
    group = env.ref(USER_GROUP, raise_if_not_found=False)
    for model, ids in env.cr.precommit.data.pop(REFRESH_KEY, {}).items():
        if group:
            message = {"model": model, "ids": sorted(ids)}
            env["bus.bus"].sudo()._sendone(group, "api_sync/updated", message)


@lru_cache(maxsize=16)
def carried_versions(batch_body):
    """``{record id: version}`` of the records a batch body (JSON) carries: parsed once,
    though a delivery asks several times (superseded check, versions delivered, status)."""
    return {
        item["record_id"]: parse_iso_datetime(item["version"])
        for item in json.loads(batch_body)["records"]
    }


def readable_records(rows):
    """``{(model, id): record}`` of the records ``rows`` (with ``res_model`` and ``res_id``)
    point to that exist and that the current user may read."""
    env, existing = rows.env, {}
    for model_name in set(rows.filtered("res_id").mapped("res_model")):
        if model_name in env and env[model_name].has_access("read"):
            records = env[model_name].browse(
                rows.filtered(lambda row, m=model_name: row.res_model == m).mapped("res_id")
            )
            readable = records.exists()._filtered_access("read")
            existing.update({(model_name, record.id): record for record in readable})
    return existing


class ApiSyncLog(models.Model):
    _name = "api.sync.log"
    _description = "API Sync Log"
    _order = "id desc"

    config_id = fields.Many2one(
        "api.sync.config", string="Configuration", required=True, ondelete="cascade", index=True
    )
    direction = fields.Selection(
        DIRECTIONS,
        required=True,
        default="outbound",
        help="Outbound: a change of Odoo sent to the endpoint. Inbound: a change the remote "
        "system sent to the configuration's inbound URL, applied to Odoo.",
    )
    company_id = fields.Many2one(related="config_id.company_id", store=True, precompute=True)
    res_model = fields.Char(string="Model", index=True)
    res_id = fields.Many2oneReference(string="Record ID", model_field="res_model", index=True)
    batch_res_ids = fields.Text(
        string="Batch Record IDs", help="JSON list of the ids a batch event carries."
    )
    record_name = fields.Char(string="Record")
    record_ref = fields.Reference(
        selection="_selection_record_model",
        string="Open Record",
        compute="_compute_record_ref",
        help="The record, while it exists and you may read it.",
    )
    attempt_ids = fields.One2many("api.sync.log.attempt", "log_id", string="Attempt History")
    covers_res_id = fields.Integer(
        string="Covers Record",
        compute="_compute_covers_res_id",
        search="_search_covers_res_id",
        help="Search: the events about a record, batches carrying it included.",
    )
    record_count = fields.Integer(default=1, help="Records the event covers.")
    sent_count = fields.Integer(
        help="Records a batch carried when sent (records deleted meanwhile are left out)."
    )
    operation = fields.Selection(
        [("create", "Create"), ("update", "Update"), ("delete", "Delete"), ("batch", "Batch")],
        required=True,
    )
    changed_fields = fields.Char(help="Comma-separated fields that triggered the event.")
    state = fields.Selection(LOG_STATES, required=True, default="pending", index=True)
    idempotency_key = fields.Char(
        string="Event ID",
        required=True,
        readonly=True,
        help="Sent as Idempotency-Key and webhook-id, the same on every retry of this event (in "
        "resource mode an upsert's other request adds -create or -update).",
    )
    attempt_count = fields.Integer(string="Attempts", aggregator=None)
    attempts_allowed = fields.Integer(
        aggregator=None,
        help="Attempts after which the event fails: the configuration's Max Attempts, "
        "extended by each manual retry.",
    )
    # What was sent and answered is readable by managers only; others read the previews below,
    # which are empty unless they may read the records the event is about.
    request_body = fields.Text(
        groups=MANAGER_GROUP,
        help="The exact JSON sent; captured at the first attempt (at the call for deletions).",
    )
    request_preview = fields.Text(
        string="Request", compute="_compute_previews", help="The request body, indented."
    )
    response_preview = fields.Text(string="Response", compute="_compute_previews")
    error_detail = fields.Text(string="Error", compute="_compute_previews")
    failure_reason = fields.Char(
        compute="_compute_previews", help="Why the last attempt did not deliver, in plain words."
    )
    record_version = fields.Datetime(help="The record's last update time carried by the event.")
    response_status = fields.Integer(aggregator=None)
    response_body = fields.Text(string="Response Excerpt", groups=MANAGER_GROUP)
    duration_ms = fields.Integer(string="Duration (ms)")
    error_class = fields.Char()
    error_message = fields.Text(groups=MANAGER_GROUP)
    last_attempt_at = fields.Datetime(string="Last Attempt")
    next_retry_at = fields.Datetime()
    done_at = fields.Datetime(string="Delivered At")
    job_uuid = fields.Char(string="Job UUID", readonly=True, index=True)
    run_id = fields.Many2one("api.sync.run", ondelete="set null", index=True)
    replay_of_id = fields.Many2one(
        "api.sync.log",
        ondelete="set null",
        index="btree_not_null",
        readonly=True,
        help="A replay (sent again with a new event id by Replay / Recover): the event it "
        "sends again.",
    )
    checkpoint_date = fields.Datetime(
        help="Within a run: write_date of the last record this event carries."
    )
    checkpoint_res_id = fields.Integer(help="Within a run: id of the last record it carries.")
    # resource mode
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

    _idempotency_key_unique = compat.unique("idempotency_key", "Event IDs are unique.")

    def init(self):
        # The unique constraint indexes the event id; the plain index it once had too cost
        # every event an index entry more (Odoo keeps an index its field no longer asks for).
        self.env.cr.execute("DROP INDEX IF EXISTS api_sync_log__idempotency_key_index")

    @api.depends("record_name", "res_model", "res_id", "operation")
    def _compute_display_name(self):
        labels = dict(self._fields["operation"]._description_selection(self.env))
        for log in self:
            subject = log.record_name or (
                f"{log.res_model},{log.res_id}" if log.res_id else log.res_model or ""
            )
            log.display_name = f"{subject} · {labels.get(log.operation, '')}".strip(" ·")

    @api.model
    def _selection_record_model(self):
        return [(model.model, model.name) for model in self.env["ir.model"].sudo().search([])]

    @api.depends("res_model", "res_id")
    @api.depends_context("uid")
    def _compute_record_ref(self):
        """A link to the record while it exists and the user may read it (a deleted record's
        log shows its model and id instead of a broken link)."""
        existing = readable_records(self)
        for log in self:
            log.record_ref = existing.get((log.res_model, log.res_id), False)

    def _compute_covers_res_id(self):
        for log in self:
            log.covers_res_id = log.res_id

    @api.model
    def _search_covers_res_id(self, operator, value):
        """Events about the records ``value``: their own, and the batches carrying them."""
        if operator not in ("=", "in"):
            raise UserError(self.env._("Search events by record with = or in."))
        values = [value] if isinstance(value, int | str) else value or []
        ids = [int(res_id) for res_id in values]
        domain = [("res_id", "in", ids)]
        for res_id in ids:  # batch_res_ids is a JSON list: "[1, 2, 3]"
            for pattern in (f"[{res_id}]", f"[{res_id}, %", f"%, {res_id}, %", f"%, {res_id}]"):
                domain = ["|", ("batch_res_ids", "=like", pattern), *domain]
        return domain

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
        """The request shown is the body sent, as its configuration's adapter sends it (in
        resource mode not the event kept)."""
        visible = self._details_visible()
        for log in self:
            # nothing (an empty recordset, read as superuser: the fields' groups are checked on
            # any read in 19.0) when the user may not see them
            details = log.sudo() if log in visible else log.sudo().browse()
            try:
                event = json.loads(details.request_body)
            except (TypeError, ValueError):
                request = details.request_body
            else:
                shown = adapter_for(log.config_id).shown_request(log, event)
                request = shown and json.dumps(shown, indent=2, ensure_ascii=False)
            log.request_preview = request or False
            log.response_preview = details.response_body or False
            log.error_detail = details.error_message or False
            failed = log.state != "done" and (log.error_class or log.response_status)
            log.failure_reason = failed and log._failure_reason(with_excerpt=bool(details))

    def _details_visible(self):
        """The logs whose payload, response and error the current user may read: all for
        managers; otherwise those whose records (all of a batch's) the user may read, and
        the inbound events that reached no record, of the models the user may read."""
        if self.env.su or self.env.user.has_group(MANAGER_GROUP):
            return self
        by_model = {}
        for log in self.sudo():
            by_model.setdefault(log.res_model, []).append(log)
        visible = self.browse()
        for model_name, logs in by_model.items():
            if model_name not in self.env or not self.env[model_name].has_access("read"):
                continue
            wanted = {log: set(log._res_ids()) for log in logs}
            Model = self.env[model_name]
            existing = Model.browse(set().union(*wanted.values())).sudo().exists()
            readable = set(Model.browse(existing.ids)._filtered_access("read").ids)
            visible |= self.browse(
                [
                    log.id
                    for log, ids in wanted.items()
                    # an inbound event that reached no record: why it failed is about the
                    # data received, not about a record the user may not read
                    if (ids and ids <= readable) or (not ids and log.direction == "inbound")
                ]
            )
        return visible

    # -- enqueueing ---------------------------------------------------------------------------

    def _enqueue(self, eta=None):
        """Queue the delivery of these logs, in the current transaction."""
        if not self:
            return
        inbound = self.filtered(lambda log: log.direction == "inbound")
        inbound._enqueue_inbound(eta)
        for group in (self - inbound)._job_groups():
            job_uuid = str(uuid.uuid4())
            group.job_uuid = job_uuid
            group._store_job(job_uuid, eta)

    def _enqueue_grouped(self, eta=None):
        """Queue these logs, of any configurations and kinds, sharing jobs where they may."""
        for _key, group in self.grouped(
            lambda log: (log.config_id, log.operation == "batch")
        ).items():
            group._enqueue(eta)

    def _job_groups(self):
        """Events share jobs in groups (see ``Delivery``): record events, and batch events of
        one call."""
        config = self.config_id[:1]
        if self[:1].operation == "batch":
            size = config._batches_per_job()
        else:
            size = config._records_per_job()
        return [self.browse(ids) for ids in split_every(size, self.ids)]

    def _store_job(self, job_uuid, eta=None):
        """Store the queue_job job ``job_uuid`` (a new uuid) delivering these logs (already
        linked to it)."""
        first = self[:1]
        description = queue_jobs.delivery_description(
            len(self), first.res_model, first.res_id, first.operation, self.config_id[:1]
        )
        queue_jobs.store(self, job_uuid, description, eta)

    @api.model
    def _event_values(self, config, operation, **values):
        """The values of a new event of ``config``: every producer's (a new event id, the
        Max Attempts it has), ``values`` adding to them or replacing them."""
        return {
            "config_id": config.id,
            "res_model": config.model_name,
            "operation": operation,
            "idempotency_key": str(uuid.uuid4()),
            "attempts_allowed": config.max_attempts,
            **values,
        }

    # -- delivery (the job) -------------------------------------------------------------------

    def _deliver(self):
        """Job: one delivery attempt of each pending log of this job (see ``Delivery``);
        retries are queued as new jobs."""
        return Delivery(self, self.env.context.get("job_uuid")).run()

    def _older_pending(self):
        """The pending events of these events' records that are older than one of them (those
        of the same record among these included)."""
        events = self.filtered("res_id")
        if not events:
            return self.browse()
        newest = {}
        for log in events:
            key = (log.config_id.id, log.res_id)
            newest[key] = max(newest.get(key, 0), log.id)
        found = self.search(
            [
                ("config_id", "in", events.config_id.ids),
                ("res_id", "in", list({key[1] for key in newest})),
                ("state", "=", "pending"),
                ("direction", "=", "outbound"),
                ("id", "<", max(newest.values())),
            ]
        )
        return found.filtered(lambda log: log.id < newest.get((log.config_id.id, log.res_id), 0))

    def _res_ids(self):
        if self.operation == "batch":
            return json.loads(self.batch_res_ids or "[]")
        return [self.res_id] if self.res_id else []

    def _attempt_values(self, outcome, at):
        """The values of the attempt line of the attempt just made (the same keys for all)."""
        outcome_state = {"done": "done", "failed": "failed"}.get(self.state, "retry")
        return {
            "log_id": self.id,
            "number": self.attempt_count,
            "attempted_at": at,
            "outcome": outcome_state,
            "response_status": outcome.status or False,
            "duration_ms": outcome.duration_ms if outcome.status else False,
            "failure_reason": outcome_state != "done" and self._failure_reason(with_excerpt=False),
            "error_class": outcome.error_class or False,
            "error_message": outcome.error_message or False,
            "response_excerpt": outcome.response_excerpt or False,
            "next_retry_at": self.next_retry_at,
            "request_headers": json.dumps(outcome.sent_headers or {}, indent=2),
            "request_line": self.request_line or False,
        }

    def _changed_fields(self):
        return self.changed_fields.split(",") if self.changed_fields else None

    def _surface_failure(self, delivery=None):
        """A final failure: logged, shown on the record's chatter, reflected in its status
        (with the ``delivery`` running it, when there is one; else now)."""
        _logger.warning(
            "api_sync: event %s of %s failed after %s attempt(s): %s",
            self.idempotency_key,
            self.config_id.name,
            self.attempt_count,
            self.error_message or self.error_class,
        )
        self._post_failure_message()
        if delivery is not None:
            delivery.status_changed(self)
        else:
            self._update_status()

    def _post_failure_message(self):
        """Tell the record's followers, when the record has a chatter and still exists."""
        if self.operation in ("batch", "delete") and self.direction == "outbound":
            return
        if not self.res_id or self.res_model not in self.env:
            return
        record = self.env[self.res_model].browse(self.res_id).exists()
        if not record or not hasattr(record, "message_post"):
            return
        link = Markup('<a href="/odoo/action-api_sync.action_api_sync_log/%s">%s</a>') % (
            self.id,
            self.env._("Open the sync log"),
        )
        if self.direction == "inbound":
            text = self.env._(
                "A change from %(config)s was not applied: %(reason)s.",
                config=self.config_id.name,
                reason=self._failure_reason(),
            )
        elif self.attempt_count > 1:
            text = self.env._(
                "Not synced to %(config)s after %(attempts)s attempt(s): %(reason)s.",
                config=self.config_id.name,
                attempts=self.attempt_count,
                reason=self._failure_reason(),
            )
        else:
            text = self.env._(
                "Not synced to %(config)s: %(reason)s.",
                config=self.config_id.name,
                reason=self._failure_reason(),
            )
        record.message_post(
            body=Markup("%s %s") % (text, link),
            author_id=self.env.ref("base.partner_root").id,
            message_type="notification",
            subtype_xmlid="mail.mt_note",
        )

    def _failure_reason(self, with_excerpt=True):
        """Why the last attempt did not deliver, as a person reads it (``with_excerpt``: with
        the response excerpt and error text, for those who may read them)."""
        self.ensure_one()
        log = self.sudo()
        error, message = log.error_class or "", log.error_message or ""
        host = urlsplit(log.config_id.endpoint_url or "").netloc
        if log.response_status:
            excerpt = " ".join((log.response_body or "").split())[:200]
            if with_excerpt and excerpt:
                return f"HTTP {log.response_status}: {excerpt}"
            return f"HTTP {log.response_status}"
        if "Timeout" in error:
            return self.env._("Timed out after %(seconds)s s", seconds=f"{log.config_id.timeout:g}")
        if error == "ConnectionError":
            if "refused" in message.lower():
                return self.env._("Connection refused by %(host)s", host=host)
            if "resolve" in message.lower() or "known" in message.lower():
                return self.env._("Could not resolve %(host)s", host=host.split(":")[0])
            return self.env._("Could not connect to %(host)s", host=host)
        if with_excerpt and message:
            return message.splitlines()[0]
        return error

    def _update_status(self, named=None):
        """Reflect the outcome on the records' status, and on the run the events belong to
        (``named``: see ``_record_outcome``); wake the next events of the records."""
        notify_viewers(self)
        self.env["api.sync.record.status"]._record_outcome(self, named)
        finished = self.filtered(lambda log: log.state != "pending")
        finished.run_id.filtered(lambda run: run.state == "running")._queue_advance()
        finished._wake_next_events()

    def _wake_next_events(self):
        """A delivery that is over wakes the next event of its record, which waits for it (a
        backlog of one record's events then drains at the pace of its deliveries); an event in
        a retry backoff of its own is left to it."""
        over = self.filtered("res_id")
        if not over:
            return
        self.flush_model(["state"])
        with (
            contextlib.suppress(psycopg2.errors.SerializationFailure),
            self.env.cr.savepoint(flush=False),
        ):
            queue_jobs.wake_next_events(self.env, over.ids)

    def _record_versions(self):
        """``{record id: version sent or to be sent}`` (version None when not captured)."""
        if self.operation != "batch":
            return {self.res_id: self.record_version or None} if self.res_id else {}
        if self.request_body:  # the records the batch carries
            return dict(carried_versions(self.request_body))
        return dict.fromkeys(self._res_ids())

    # -- buttons ------------------------------------------------------------------------------

    def action_retry(self):
        """Queue again, with the same event id, what of the selection can be; say how many."""
        self._check_manager()
        self.check_access("read")
        retried = self._retry_now()
        why_not = self.env._(
            "only failed or cancelled events, and stuck pending ones (their job was lost), can "
            "be retried: a pending event whose job is queued or running is delivered by that job"
        )
        if not retried:
            raise UserError(why_not[:1].upper() + why_not[1:] + ".")
        return self._bulk_notice(
            retried,
            self.env._("%(count)s event(s) queued again.", count=len(retried)),
            why_not,
        )

    def _retry_now(self):
        """Queue the failed and cancelled events again; returns them."""
        retried = self.filtered(lambda log: log.state in ("failed", "cancelled"))
        for log in retried.sudo():
            log.write(
                {
                    "state": "pending",
                    "attempts_allowed": log.attempt_count + log.config_id.max_attempts,
                    "next_retry_at": False,
                }
            )
        retried.sudo()._enqueue_grouped()
        retried._update_status()
        return retried

    def action_cancel(self):
        """Cancel pending events: their jobs find them cancelled and send nothing."""
        self._check_manager()
        self.check_access("read")
        cancelled = self.filtered(lambda log: log.state == "pending")
        if not cancelled:
            raise UserError(self.env._("Only pending events can be cancelled."))
        cancelled.sudo().write({"state": "cancelled", "next_retry_at": False})
        cancelled.sudo()._update_status()
        return self._bulk_notice(
            cancelled,
            self.env._("%(count)s event(s) cancelled.", count=len(cancelled)),
            self.env._("only pending events can be cancelled"),
        )

    def _bulk_notice(self, acted, done, why_not):
        """Say what a button did on a selection (and what it left), then refresh the view."""
        left = len(self - acted)
        message = done
        if left:
            message += " " + self.env._(
                "%(count)s left as they were (%(why)s).", count=left, why=why_not
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": message,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _check_manager(self):
        if not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(self.env._("Only API Sync managers can retry or cancel events."))

    @api.model
    def _job_related_action(self, job=None):
        """The job's "Related" button opens its logs."""
        action = self.env["ir.actions.act_window"]._for_xml_id("api_sync.action_api_sync_log")
        action["domain"] = [("id", "in", self.ids)]
        return action
