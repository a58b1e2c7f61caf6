"""One outbound event of a configuration and what happened to it, attempt after attempt."""

import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections import defaultdict
from functools import lru_cache, partial
from urllib.parse import urlsplit

import psycopg2
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import split_every

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job

from ..engine import delivery, wire
from ..engine.mapping import MappingError, parse_iso_datetime
from .constants import CHANNEL, MANAGER_GROUP, USER_GROUP

_logger = logging.getLogger(__name__)

REFRESH_KEY = "api_sync.refresh"
BUSY_RETRY_SECONDS = 3
GROUP_SECONDS = 60  # a job's group queues the events it did not reach by then as another job
GROUP_KEY = "api_sync_group"  # context key: the DeliveryGroup of the job running
LOG_STATES = [
    ("pending", "Pending"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]


@dataclasses.dataclass
class Capture:
    """A record event's record as its delivery reads it: deleted (None), not readable by the
    Integration User, or with its mapped data (None: mapped when the body is made), name and
    version."""

    record: object
    readable: bool = False
    data: object = None
    name: str | None = None
    version: object = None


@dataclasses.dataclass(eq=False)
class DeliveryGroup:
    """What the deliveries of one job share: the work around their requests, done in bulk."""

    captures: dict  # {(config id, record id): Capture} of the record events without a body yet
    batches: dict  # {log id: (records, their payloads or MappingErrors)} of such batch events
    versions: dict  # {(config id, record id): last version delivered}
    named: dict = dataclasses.field(default_factory=dict)  # the same, of the rows with a name
    attempts: list = dataclasses.field(default_factory=list)  # attempt lines to create
    changed: list = dataclasses.field(default_factory=list)  # ids of logs whose status changed
    gates: dict = dataclasses.field(default_factory=dict)  # {config id: its endpoint's Gate}
    # {(config id, eta): ids of the logs waiting for their endpoint until then}, queued together
    waiting: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)  # {(name, config id): request setting}
    # resource mode: {(config id, record id): external id or None} of the record events
    bindings: dict = dataclasses.field(default_factory=dict)


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


def delivery_description(count, res_model, res_id, operation, config):
    """The name of a job delivering ``count`` events of ``config`` (the event's record and
    operation when there is one)."""
    what = f"{count} events" if count > 1 else f"{res_model} #{res_id or ''} {operation}"
    return f"API sync: {what} ({config.name})"


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
    checkpoint_date = fields.Datetime(
        help="Within a run: write_date of the last record this event carries."
    )
    checkpoint_res_id = fields.Integer(help="Within a run: id of the last record it carries.")

    _sql_constraints = [
        ("idempotency_key_unique", "UNIQUE(idempotency_key)", "Event IDs are unique."),
    ]

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

    @api.depends("request_body", "response_body", "error_message", "state", "response_status")
    @api.depends_context("uid")
    def _compute_previews(self):
        visible = self._details_visible()
        for log in self:
            details = log.sudo() if log in visible else log.browse()
            try:
                request = json.dumps(json.loads(details.request_body), indent=2, ensure_ascii=False)
            except (TypeError, ValueError):
                request = details.request_body
            log.request_preview = request or False
            log.response_preview = details.response_body or False
            log.error_detail = details.error_message or False
            failed = log.state != "done" and (log.error_class or log.response_status)
            log.failure_reason = failed and log._failure_reason(with_excerpt=bool(details))

    def _details_visible(self):
        """The logs whose payload, response and error the current user may read: all for
        managers; otherwise those whose records (all of a batch's) the user may read."""
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
                [log.id for log, ids in wanted.items() if ids and ids <= readable]
            )
        return visible

    # -- enqueueing ---------------------------------------------------------------------------

    def _enqueue(self, eta=None):
        """Queue the delivery of these logs, in the current transaction."""
        if not self:
            return
        for group in self._job_groups():
            job_uuid = str(uuid.uuid4())
            group.job_uuid = job_uuid
            group._store_job(job_uuid, eta)

    def _job_groups(self):
        """Events share jobs in groups (see ``_deliver``): record events, and batch events of
        one call."""
        config = self.config_id[:1]
        if self[:1].operation == "batch":
            size = config._batches_per_job()
        else:
            size = config._records_per_job()
        return [self.browse(ids) for ids in split_every(size, self.ids)]

    def _store_job(self, job_uuid, eta=None):
        """Store the queue_job job ``job_uuid`` (a new uuid) delivering these logs (already
        linked to it).

        As ``Job.store()`` does for a job it does not find, without its lookup of the uuid: the
        uuid was made just now, so the writer saves a query."""
        description = delivery_description(
            len(self), self[:1].res_model, self[:1].res_id, self[:1].operation, self.config_id[:1]
        )
        job = self.sudo()._delivery_job(job_uuid, description, eta)
        Jobs = self.env["queue.job"]
        Jobs.with_context(_job_edit_sentinel=Jobs.EDIT_SENTINEL).sudo().create(
            job._store_values(create=True)
        )

    def _delivery_job(self, job_uuid, description, eta=None):
        """The queue_job ``Job`` delivering these logs (not stored)."""
        return Job(
            self._deliver,
            job_uuid=job_uuid,
            eta=eta,
            max_retries=0,
            channel=CHANNEL,
            description=description,
        )

    # -- delivery (the job) -------------------------------------------------------------------

    def _deliver(self):
        """Job: one delivery attempt of each pending log; retries are queued as new jobs.

        Each event gets a request of its own; what it needs around it is done for the whole
        group: the locks, the older events of its records, the reading and mapping of its
        records, the logs' updates (one flush), their attempt lines (one insert) and the
        records' status (one upsert). A group still running after ``GROUP_SECONDS`` queues the
        events it did not reach as a job of their own.
        """
        logs = self.sudo().exists()
        if not logs:
            return
        logs, status_rows = logs._lock_group()
        logs = logs.filtered(lambda log: log.state == "pending")
        if not logs:
            return
        group = logs._start_group(status_rows)
        logs = logs.with_context(**{GROUP_KEY: group})
        older = defaultdict(list)
        for event in logs._older_pending():
            older[event.config_id.id, event.res_id].append(event)
        deadline = time.monotonic() + GROUP_SECONDS
        for index, log in enumerate(logs):
            if index and time.monotonic() + (log.config_id.timeout or 10) > deadline:
                logs[index:]._enqueue()  # an attempt that times out ends before the deadline
                break
            waited = [
                event
                for event in older[log.config_id.id, log.res_id]
                if event.id < log.id and event.state == "pending"
            ]
            if waited:
                # Events of one record reach the endpoint in order: wait for the older one.
                wake = max([wire.utc_now(), *filter(None, (e.next_retry_at for e in waited))])
                log._enqueue(eta=fields.Datetime.add(wake, seconds=BUSY_RETRY_SECONDS))
                continue
            log._attempt()
        logs._finish_group(group)

    def _lock_group(self):
        """Lock these logs and their records' status rows; returns those locked, and what
        ``_lock`` read of the rows.

        All together first (a few statements); on a conflict, each on its own: those that
        another delivery holds are queued again (alone in its job, one makes queue_job postpone
        the job).
        """
        try:
            with self.env.cr.savepoint():
                return self, self._lock()
        except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
            if len(self) == 1:
                raise RetryableJobError(
                    "another delivery of this record is running",
                    seconds=BUSY_RETRY_SECONDS,
                    ignore_retry=True,
                ) from None
        locked, status_rows = self.browse(), {}
        for log in self:
            try:
                with self.env.cr.savepoint():
                    status_rows.update(log._lock())
            except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
                log._enqueue(eta=BUSY_RETRY_SECONDS)
                continue
            locked |= log
        return locked, status_rows

    def _start_group(self, status_rows):
        """The state the deliveries of these logs share (see ``DeliveryGroup``), with the
        records' status rows as ``_lock`` read them."""
        captures, batches = self._read_records()
        return DeliveryGroup(
            captures=captures,
            batches=batches,
            versions={key: version for key, (version, _named) in status_rows.items() if version},
            named={key: version for key, (version, named) in status_rows.items() if named},
        )

    def _finish_group(self, group):
        """Write what the group's deliveries did: their attempt lines and records' status."""
        self.env["api.sync.log.attempt"].sudo()._insert(group.attempts)
        for (_config_id, eta), ids in group.waiting.items():
            self.browse(ids)._enqueue(eta=eta)
        changed = self.browse(list(dict.fromkeys(group.changed)))
        changed.with_context(**{GROUP_KEY: None})._update_status(named=group.named)

    def _read_records(self):
        """The records of the events without a body yet, read and mapped together:
        ``({(config id, record id): Capture}, {batch log id: (records, payloads or
        MappingErrors)})``. Both empty when that fails: each event then reads its own records
        and fails alone."""
        captures, batches = {}, {}
        todo = self.filtered(lambda log: log.res_id or log.operation == "batch")
        try:
            with self.env.cr.savepoint(flush=False):
                for (config, model_name), logs in (
                    todo.filtered(lambda log: not log.request_body)
                    .grouped(lambda log: (log.config_id, log.res_model))
                    .items()
                ):
                    Model = self.env[model_name]
                    events = logs.filtered(lambda log: log.operation != "batch")
                    if events:
                        records = Model.browse(events.mapped("res_id"))
                        captures.update(self._captures_of(config, records))
                    if logs - events:
                        batches.update(self._batches_of(config, Model, logs - events))
        except Exception:  # noqa: BLE001 - each event meets the error again, and records it
            return {}, {}
        return captures, batches

    @api.model
    def _captures_of(self, config, records):
        """``{(config id, record id): Capture}`` of ``records`` (some perhaps deleted) as
        ``config`` sends them."""
        existing = records.exists()
        existing.fetch(["write_date"])  # the version alone: not every column of the model
        readable = config._split_readable(existing)[0]
        payloads = dict(zip(readable.ids, config._payloads_or_errors(readable), strict=True))
        captures = {(config.id, res_id): Capture(None) for res_id in records.ids}
        for record in existing:
            mapped = record.id in payloads
            captures[config.id, record.id] = Capture(
                record,
                mapped,
                payloads.get(record.id),
                record.display_name if mapped else None,
                record.write_date,
            )
        return captures

    @api.model
    def _batches_of(self, config, Model, logs):
        """``{log id: (records, payloads or MappingErrors)}`` of the batch events ``logs``."""
        ids = [res_id for log in logs for res_id in log._res_ids()]
        records = Model.browse(ids).exists()
        records.fetch(["write_date"])  # the version alone: not every column of the model
        payloads = dict(zip(records.ids, config._payloads_or_errors(records), strict=True))
        batches = {}
        for log in logs:
            mine = records.browse([i for i in log._res_ids() if i in payloads])
            batches[log.id] = (mine, [payloads[i] for i in mine.ids])
        return batches

    def _lock(self):
        """Lock these logs and the sync status rows of their records (NOWAIT: never block a
        worker); returns ``{(config id, record id): (last version delivered, whether the row
        has a name)}`` of those rows, as locked.

        Its conflicts are expected and handled by the caller: they are not logged as errors.

        Under Odoo's repeatable-read isolation, a row changed by a delivery that committed after
        this job began raises a serialization failure here, so a delivery never sends data older
        than the one before it: it is postponed and starts again on fresh data.
        """
        self.env.cr.execute(
            "SELECT id FROM api_sync_log WHERE id IN %s ORDER BY id FOR UPDATE NOWAIT",
            (tuple(self.ids),),
            log_exceptions=False,
        )
        status_rows = {}
        for config, logs in self.grouped("config_id").items():
            res_ids = sorted({res_id for log in logs for res_id in log._res_ids()})
            found = self._lock_status_rows(config, res_ids) if res_ids else {}
            missing = [res_id for res_id in res_ids if res_id not in found]
            if missing:  # created now, they stay locked until this transaction ends
                self.env["api.sync.record.status"]._ensure(config, missing)
                found.update(self._lock_status_rows(config, missing))
            status_rows.update({(config.id, res_id): row for res_id, row in found.items()})
        self.invalidate_recordset()
        return status_rows

    @api.model
    def _lock_status_rows(self, config, res_ids):
        """Lock the existing status rows of ``config`` and ``res_ids``; returns ``{record id:
        (last version delivered, whether the row has a name)}`` of them."""
        # Records looked up by (config_id, res_id) pairs: one probe of that index each, whatever
        # the statistics say (a status table grown by a million rows during a run and not
        # analyzed since made "config_id = x" look selective: every delivery then read all the
        # configuration's status rows).
        self.env.cr.execute(
            """SELECT res_id, last_version, record_name IS NOT NULL FROM api_sync_record_status
                WHERE (config_id, res_id) IN (SELECT %s, unnest(%s::int[]))
                ORDER BY id FOR UPDATE NOWAIT""",
            (config.id, res_ids),
            log_exceptions=False,
        )
        return {res_id: (version, named) for res_id, version, named in self.env.cr.fetchall()}

    def _res_ids(self):
        if self.operation == "batch":
            return json.loads(self.batch_res_ids or "[]")
        return [self.res_id] if self.res_id else []

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
                ("id", "<", max(newest.values())),
            ]
        )
        return found.filtered(lambda log: log.id < newest.get((log.config_id.id, log.res_id), 0))

    def _attempt(self):
        """Send once, record the outcome, and queue the next attempt or surface the failure."""
        config = self.config_id
        gate = self._endpoint_gate()  # endpoint paused, disabled or rate limited: waits
        if not gate:
            return
        now = wire.utc_now()
        if not self.request_body:
            try:
                # no flush: the attempt writes its log once (a second update would re-check the
                # run's foreign key and clash with the run's progress updates); a record read
                # with the group's touches no table here
                with self._capture_guard():
                    self._capture_body()
            except Exception as exc:  # noqa: BLE001 - recorded on the log for the admin
                self.write(
                    {
                        "state": "failed",
                        "error_class": type(exc).__name__,
                        "error_message": str(exc),
                        "last_attempt_at": now,
                    }
                )
                self._surface_failure()
                return
            if self.state != "pending":
                return
        if not self._drop_superseded():
            return
        outcome = self._send_request()
        if outcome is None:  # nothing to send (resource mode): the log says why
            return
        after = self._endpoint_after(outcome, gate)  # endpoint health (api_sync_endpoint.py)
        attempt = self.attempt_count + 1
        values = {
            "attempt_count": attempt,
            "last_attempt_at": now,
            "response_status": outcome.status or False,
            "response_body": outcome.response_excerpt or False,
            "duration_ms": outcome.duration_ms if outcome.status else False,
            "error_class": outcome.error_class or False,
            "error_message": outcome.error_message or False,
            "next_retry_at": False,
        }
        allowed = self.attempts_allowed or config.max_attempts
        if not after.charged:  # the endpoint's error, not the event's: no attempt spent
            allowed = values["attempts_allowed"] = allowed + 1
        if outcome.verdict == "done":
            values.update(state="done", done_at=now)
        elif after.wait_until:  # the endpoint is paused or disabled: the event waits for it
            values["next_retry_at"] = after.wait_until
        elif outcome.verdict == "retry" and attempt < allowed and not after.give_up:
            delay = delivery.next_delay(outcome, attempt, config.backoff_base, config.backoff_max)
            values["next_retry_at"] = fields.Datetime.add(now, seconds=delay)
        else:
            values["state"] = "failed"
        self.write(values)
        self._record_attempt(outcome, now)
        if self.next_retry_at:
            self._enqueue(eta=self.next_retry_at)
        if self.state == "failed":
            self._surface_failure()
        else:
            self._status_changed()

    def _send_request(self):
        """The request of this event (its frozen body) to the endpoint; returns its Outcome."""
        return self.config_id._send(self.idempotency_key, self.request_body.encode())

    def _status_changed(self):
        """Reflect the outcome on the records' status now, or with the rest of the job's group
        (whose view of the versions delivered follows at once)."""
        group = self.env.context.get(GROUP_KEY)
        if group is None:
            self._update_status()
            return
        group.changed.extend(self.ids)
        for log in self.filtered(lambda log: log.state == "done"):
            for res_id, version in log._record_versions().items():
                key = (log.config_id.id, res_id)
                if version and (key not in group.versions or group.versions[key] < version):
                    group.versions[key] = version

    def _record_attempt(self, outcome, at):
        """Keep the attempt just made as a line of the event's history (with the job's group's
        lines, when in a group)."""
        group = self.env.context.get(GROUP_KEY)
        create = (
            group.attempts.append
            if group is not None
            else self.env["api.sync.log.attempt"].sudo().create
        )
        create(self._attempt_values(outcome, at))

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
        }

    def _capture_body(self):
        """Freeze the body at the first attempt, from the record as it is now."""
        config = self.config_id
        if self.operation == "batch":
            group = self.env.context.get(GROUP_KEY)
            records, payloads = (group and group.batches.get(self.id)) or (
                self.env[self.res_model].browse(self._res_ids()).exists(),
                None,
            )
            body, failures = config._batch_body(
                self.idempotency_key, records, self.create_date, payloads
            )
            self._split_failures(failures)
            captured = {"sent_count": len(body["records"])}
            if not body["records"]:
                self.sent_count = captured["sent_count"]
                self.write(
                    {
                        "state": "cancelled",
                        "error_class": "MappingError" if failures else "RecordDeleted",
                        "error_message": self.env._("No record of this batch is left to send."),
                    }
                )
                self._status_changed()
                return
        else:
            capture = self._record_capture()
            record = capture.record
            if record and not capture.readable:
                self.write(
                    {
                        "state": "cancelled",
                        "error_class": "NotReadable",
                        "error_message": config._not_readable_message(),
                    }
                )
                self._status_changed()
                return
            if not record:
                self.write(
                    {
                        "state": "cancelled",
                        "error_class": "RecordDeleted",
                        "error_message": self.env._(
                            "The record was deleted before its %(operation)s was sent.",
                            operation=self.operation,
                        ),
                    }
                )
                self._status_changed()
                return
            if isinstance(capture.data, MappingError):
                raise capture.data
            body = config._record_body(
                self.idempotency_key,
                record,
                self.operation,
                self._changed_fields(),
                self.create_date,
                data=capture.data,
            )
            captured = {"record_version": capture.version, "record_name": capture.name}
        self.write({**captured, "request_body": wire.encode(body).decode()})

    def _record_capture(self):
        """The ``Capture`` of this record event: the job's group's, else read now."""
        group = self.env.context.get(GROUP_KEY)
        capture = group and group.captures.get((self.config_id.id, self.res_id))
        if capture:
            return capture
        record = self.env[self.res_model].browse(self.res_id).exists()
        if not record or not self.config_id._split_readable(record)[0]:
            return Capture(record)
        return Capture(record, True, None, record.display_name, record.write_date)

    def _capture_guard(self):
        """Around the capture of the body: a savepoint, unless the job's group already read
        the record (the capture then runs no statement)."""
        group = self.env.context.get(GROUP_KEY)
        if group and (
            self.id in group.batches
            if self.operation == "batch"
            else (self.config_id.id, self.res_id) in group.captures
        ):
            return contextlib.nullcontext()
        return self.env.cr.savepoint(flush=False)

    def _split_failures(self, failures):
        """Records of a batch that cannot be mapped get a failed event each (the others go)."""
        for record, error in failures.items():
            failed = self.create(
                {
                    "config_id": self.config_id.id,
                    "run_id": self.run_id.id,
                    "res_model": record._name,
                    "res_id": record.id,
                    "record_name": record.display_name,
                    "operation": "update",
                    "state": "failed",
                    "idempotency_key": str(uuid.uuid4()),
                    "error_class": "MappingError",
                    "error_message": str(error),
                    "last_attempt_at": fields.Datetime.now(),
                    "checkpoint_date": self.checkpoint_date,
                    "checkpoint_res_id": self.checkpoint_res_id,
                }
            )
            failed._surface_failure()

    def _superseded_ids(self):
        """Records of the frozen body whose newer version was delivered meanwhile."""
        versions = {res_id: v for res_id, v in self._record_versions().items() if v}
        if not versions:
            return set()
        group = self.env.context.get(GROUP_KEY)
        if group is not None:  # the versions its status rows held, and those it delivered
            config_id = self.config_id.id
            return {
                res_id
                for res_id, version in versions.items()
                if group.versions.get((config_id, res_id), version) > version
            }
        # one probe of the (config_id, res_id) index per record (see _lock)
        self.env.cr.execute(
            """SELECT v.res_id FROM unnest(%s::int[], %s::timestamp[]) AS v(res_id, version)
                 JOIN LATERAL (SELECT last_version FROM api_sync_record_status
                                WHERE config_id = %s AND res_id = v.res_id LIMIT 1) AS s
                   ON s.last_version > v.version""",
            (list(versions), list(versions.values()), self.config_id.id),
        )
        return {row[0] for row in self.env.cr.fetchall()}

    def _drop_superseded(self):
        """Never send data older than what already reached the endpoint (e.g. on a retry).

        A record event whose record was delivered in a newer version is cancelled; a batch
        leaves such records out. Returns whether anything is left to send.
        """
        superseded = self._superseded_ids()
        if not superseded:
            return True
        if self.operation == "batch":
            body = json.loads(self.request_body)
            body["records"] = [i for i in body["records"] if i["record_id"] not in superseded]
            if body["records"]:
                self.write(
                    {"request_body": wire.encode(body).decode(), "sent_count": len(body["records"])}
                )
                return True
        self.write(
            {
                "state": "cancelled",
                "error_class": "Superseded",
                "error_message": self.env._(
                    "A newer version was delivered meanwhile: this older data is not sent."
                ),
            }
        )
        self._status_changed()
        return False

    def _changed_fields(self):
        return self.changed_fields.split(",") if self.changed_fields else None

    def _surface_failure(self):
        """A final failure: logged, shown on the record's chatter, reflected in its status."""
        _logger.warning(
            "api_sync: event %s of %s failed after %s attempt(s): %s",
            self.idempotency_key,
            self.config_id.name,
            self.attempt_count,
            self.error_message or self.error_class,
        )
        self._post_failure_message()
        self._status_changed()

    def _post_failure_message(self):
        """Tell the record's followers, when the record has a chatter and still exists."""
        if self.operation in ("batch", "delete") or self.res_model not in self.env:
            return
        record = self.env[self.res_model].browse(self.res_id).exists()
        if not record or not hasattr(record, "message_post"):
            return
        link = Markup('<a href="/odoo/action-api_sync.action_api_sync_log/%s">%s</a>') % (
            self.id,
            self.env._("Open the sync log"),
        )
        record.message_post(
            body=Markup("%s %s")
            % (
                self.env._(
                    "Not synced to %(config)s after %(attempts)s attempt(s): %(reason)s.",
                    config=self.config_id.name,
                    attempts=self.attempt_count,
                    reason=self._failure_reason(),
                )
                if self.attempt_count > 1
                else self.env._(
                    "Not synced to %(config)s: %(reason)s.",
                    config=self.config_id.name,
                    reason=self._failure_reason(),
                ),
                link,
            ),
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
        (``named``: see ``_record_outcome``)."""
        notify_viewers(self)
        self.env["api.sync.record.status"]._record_outcome(self, named)
        finished = self.filtered(lambda log: log.state != "pending")
        finished.run_id.filtered(lambda run: run.state == "running")._queue_advance()

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
            log._enqueue()
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
