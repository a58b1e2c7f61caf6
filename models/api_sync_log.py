"""One outbound event of a configuration and what happened to it, attempt after attempt."""

import json
import logging
import uuid

import psycopg2
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import split_every

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job

from ..engine import delivery, wire
from ..engine.mapping import parse_iso_datetime

_logger = logging.getLogger(__name__)

CHANNEL = "root.api_sync"
BUSY_RETRY_SECONDS = 3
LOG_STATES = [
    ("pending", "Pending"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]


class ApiSyncLog(models.Model):
    _name = "api.sync.log"
    _description = "API Sync Log"
    _order = "id desc"
    _rec_name = "idempotency_key"

    config_id = fields.Many2one(
        "api.sync.config", string="Configuration", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="config_id.company_id", store=True)
    res_model = fields.Char(string="Model", index=True)
    res_id = fields.Many2oneReference(string="Record ID", model_field="res_model", index=True)
    batch_res_ids = fields.Text(
        string="Batch Record IDs", help="JSON list of the ids a batch event carries."
    )
    record_name = fields.Char(string="Record")
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
        index=True,
        readonly=True,
        help="Sent as Idempotency-Key and webhook-id; the same on every retry of this event.",
    )
    attempt_count = fields.Integer(string="Attempts")
    attempts_allowed = fields.Integer(
        help="Attempts after which the event fails: the configuration's Max Attempts, "
        "extended by each manual retry."
    )
    request_body = fields.Text(
        help="The exact JSON sent; captured at the first attempt (at the call for deletions)."
    )
    request_preview = fields.Text(
        string="Request", compute="_compute_request_preview", help="The request body, indented."
    )
    record_version = fields.Datetime(help="The record's last update time carried by the event.")
    response_status = fields.Integer()
    response_body = fields.Text(string="Response Excerpt")
    duration_ms = fields.Integer(string="Duration (ms)")
    error_class = fields.Char()
    error_message = fields.Text()
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

    @api.depends("request_body")
    def _compute_request_preview(self):
        for log in self:
            try:
                log.request_preview = json.dumps(
                    json.loads(log.request_body), indent=2, ensure_ascii=False
                )
            except (TypeError, ValueError):
                log.request_preview = log.request_body

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
        """Record events share jobs in small groups: a group's attempts, at the
        configuration's timeout each, stay well within a worker's time limit."""
        size = self.config_id[:1]._records_per_job()
        return [self.browse(ids) for ids in split_every(size, self.ids)]

    def _store_job(self, job_uuid, eta=None):
        """Store the queue_job job ``job_uuid`` delivering these logs (already linked to it)."""
        what = (
            f"{len(self)} events"
            if len(self) > 1
            else f"{self.res_model} #{self.res_id or ''} {self.operation}"
        )
        Job(
            self.sudo()._deliver,
            job_uuid=job_uuid,
            eta=eta,
            max_retries=0,
            channel=CHANNEL,
            description=f"API sync: {what} ({self.config_id[:1].name})",
        ).store()

    # -- delivery (the job) -------------------------------------------------------------------

    def _deliver(self):
        """Job: one delivery attempt of each pending log; retries are queued as new jobs."""
        prefetch = self._prefetch_by_model()
        for log in self.sudo().exists():
            try:
                with self.env.cr.savepoint():
                    log._lock()
            except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
                if len(self) == 1:
                    raise RetryableJobError(
                        "another delivery of this record is running",
                        seconds=BUSY_RETRY_SECONDS,
                        ignore_retry=True,
                    ) from None
                log._enqueue(eta=BUSY_RETRY_SECONDS)
                continue
            if log.state != "pending":
                continue
            older = log._older_pending()
            if older:
                # Events of one record reach the endpoint in order: wait for the older one.
                wake = max([wire.utc_now(), *filter(None, older.mapped("next_retry_at"))])
                log._enqueue(eta=fields.Datetime.add(wake, seconds=BUSY_RETRY_SECONDS))
                continue
            log.with_context(api_sync_prefetch=prefetch)._attempt()

    def _prefetch_by_model(self):
        """``{model: record ids}`` of this job's record events, read together when mapped."""
        by_model = {}
        for log in self:
            if log.res_id and not log.request_body:
                by_model.setdefault(log.res_model, []).append(log.res_id)
        return by_model

    def _lock(self):
        """Lock this log and the sync status rows of its records (NOWAIT: never block a worker).

        Its conflicts are expected and handled by the caller: they are not logged as errors.

        Under Odoo's repeatable-read isolation, a row changed by a delivery that committed after
        this job began raises a serialization failure here, so a delivery never sends data older
        than the one before it: it is postponed and starts again on fresh data.
        """
        self.env.cr.execute(
            "SELECT id FROM api_sync_log WHERE id = %s FOR UPDATE NOWAIT",
            (self.id,),
            log_exceptions=False,
        )
        res_ids = self._res_ids()
        if res_ids:
            self.env["api.sync.record.status"]._ensure(self.config_id, res_ids)
            self.env.cr.execute(
                """SELECT id FROM api_sync_record_status
                    WHERE config_id = %s AND res_id IN %s ORDER BY id FOR UPDATE NOWAIT""",
                (self.config_id.id, tuple(res_ids)),
                log_exceptions=False,
            )
        self.invalidate_recordset()

    def _res_ids(self):
        if self.operation == "batch":
            return json.loads(self.batch_res_ids or "[]")
        return [self.res_id] if self.res_id else []

    def _older_pending(self):
        if not self.res_id:
            return self.browse()
        return self.search(
            [
                ("config_id", "=", self.config_id.id),
                ("res_id", "=", self.res_id),
                ("state", "=", "pending"),
                ("id", "<", self.id),
            ]
        )

    def _attempt(self):
        """Send once, record the outcome, and queue the next attempt or surface the failure."""
        config = self.config_id
        now = wire.utc_now()
        if not self.request_body:
            try:
                # no flush: the attempt writes its log once (a second update would re-check the
                # run's foreign key and clash with the run's progress updates)
                with self.env.cr.savepoint(flush=False):
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
        outcome = config._send(self.idempotency_key, self.request_body.encode())
        attempt = self.attempt_count + 1
        values = {
            "attempt_count": attempt,
            "last_attempt_at": now,
            "response_status": outcome.status or False,
            "response_body": outcome.response_excerpt or False,
            "duration_ms": outcome.duration_ms,
            "error_class": outcome.error_class or False,
            "error_message": outcome.error_message or False,
            "next_retry_at": False,
        }
        allowed = self.attempts_allowed or config.max_attempts
        if outcome.verdict == "done":
            values.update(state="done", done_at=now)
        elif outcome.verdict == "retry" and attempt < allowed:
            delay = delivery.next_delay(outcome, attempt, config.backoff_base, config.backoff_max)
            values["next_retry_at"] = fields.Datetime.add(now, seconds=delay)
        else:
            values["state"] = "failed"
        self.write(values)
        if self.next_retry_at:
            self._enqueue(eta=self.next_retry_at)
        if self.state == "failed":
            self._surface_failure()
        else:
            self._update_status()

    def _capture_body(self):
        """Freeze the body at the first attempt, from the record as it is now."""
        config = self.config_id
        if self.operation == "batch":
            records = self.env[self.res_model].browse(self._res_ids()).exists()
            body, failures = config._batch_body(self.idempotency_key, records, self.create_date)
            self._split_failures(failures)
            self.sent_count = len(body["records"])
            if not body["records"]:
                self.write(
                    {
                        "state": "cancelled",
                        "error_class": "MappingError" if failures else "RecordDeleted",
                        "error_message": self.env._("No record of this batch is left to send."),
                    }
                )
                self._update_status()
                return
        else:
            prefetch = self.env.context.get("api_sync_prefetch", {}).get(self.res_model, ())
            record = self.env[self.res_model].browse(self.res_id).with_prefetch(prefetch).exists()
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
                self._update_status()
                return
            body = config._record_body(
                self.idempotency_key,
                record,
                self.operation,
                self._changed_fields(),
                self.create_date,
            )
            self.record_version = record.write_date
            self.record_name = record.display_name
        self.request_body = wire.encode(body).decode()

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
        self.env.cr.execute(
            """SELECT s.res_id FROM api_sync_record_status AS s
                 JOIN unnest(%s::int[], %s::timestamp[]) AS v(res_id, version)
                   ON v.res_id = s.res_id
                WHERE s.config_id = %s AND s.last_version > v.version""",
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
        self._update_status()
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
        self._update_status()

    def _post_failure_message(self):
        """Tell the record's followers, when the record has a chatter and still exists."""
        if self.operation in ("batch", "delete") or self.res_model not in self.env:
            return
        record = self.env[self.res_model].browse(self.res_id).exists()
        if not record or not hasattr(record, "message_post"):
            return
        link = Markup('<a href="#" data-oe-model="api.sync.log" data-oe-id="%s">%s</a>') % (
            self.id,
            self.env._("sync log"),
        )
        record.message_post(
            body=Markup("%s<br/>%s (%s)")
            % (
                self.env._(
                    "Sync to %(config)s failed after %(attempts)s attempt(s): %(error)s",
                    config=self.config_id.name,
                    attempts=self.attempt_count,
                    error=self.error_message or self.error_class or "",
                ),
                link,
                self.idempotency_key,
            ),
            message_type="notification",
            subtype_xmlid="mail.mt_note",
        )

    def _update_status(self):
        """Reflect the outcome on the records' status, and on the run the events belong to."""
        self.env["api.sync.record.status"]._record_outcome(self)
        finished = self.filtered(lambda log: log.state != "pending")
        finished.run_id.filtered(lambda run: run.state == "running")._queue_advance()

    def _record_versions(self):
        """``{record id: version sent or to be sent}`` (version None when not captured)."""
        if self.operation != "batch":
            return {self.res_id: self.record_version or None} if self.res_id else {}
        if self.request_body:  # the records the batch carries
            return {
                item["record_id"]: parse_iso_datetime(item["version"])
                for item in json.loads(self.request_body)["records"]
            }
        return dict.fromkeys(self._res_ids())

    # -- buttons ------------------------------------------------------------------------------

    def action_retry(self):
        """Queue failed or cancelled events again, with the same event id."""
        self._check_manager()
        if any(log.state not in ("failed", "cancelled") for log in self):
            raise UserError(self.env._("Only failed or cancelled events can be retried."))
        for log in self.sudo():
            log.write(
                {
                    "state": "pending",
                    "attempts_allowed": log.attempt_count + log.config_id.max_attempts,
                    "next_retry_at": False,
                }
            )
            log._enqueue()
        self._update_status()
        return True

    def action_cancel(self):
        """Cancel pending events: their jobs find them cancelled and send nothing."""
        self._check_manager()
        if any(log.state != "pending" for log in self):
            raise UserError(self.env._("Only pending events can be cancelled."))
        self.sudo().write({"state": "cancelled", "next_retry_at": False})
        self.sudo()._update_status()
        return True

    def _check_manager(self):
        if not self.env.user.has_group("api_sync.group_api_sync_manager"):
            raise AccessError(self.env._("Only API Sync managers can retry or cancel events."))

    @api.model
    def _job_related_action(self, job=None):
        """The job's "Related" button opens its logs."""
        action = self.env["ir.actions.act_window"]._for_xml_id("api_sync.action_api_sync_log")
        action["domain"] = [("id", "in", self.ids)]
        return action
