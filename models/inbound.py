"""Applying inbound events (the importer): one job, as one recipe.

``Inbound.run`` reads top to bottom: claim the job, lock its events (and the older pending
events of the same remote objects, applied first: one object's events apply in order), then per
event: read it, find the record (its binding to the remote id, else the key field), skip a stale
update, map the data back through the inverse of each inbound line, write as the Integration
User (marked in the outbox so that it is not sent back to this configuration), bind the record
to the remote id, record the outcome. What the events share is kept on the ``Inbound`` object,
passed explicitly: nothing travels in the context.
"""

import dataclasses
import json
import logging

import psycopg2

from odoo import fields
from odoo.exceptions import UserError

from odoo.addons.queue_job.exception import RetryableJobError

from ..engine import inbound
from . import queue_jobs
from .outbox import Outbox
from .watch import Watch

_logger = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 2
CONFLICTS = (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure)


class Retry(Exception):
    """A failure that a later attempt may not meet (a related record not there yet)."""


class Inbound:
    """The inbound events of one job (see the module's docstring)."""

    def __init__(self, logs, job_uuid=None):
        self.env = logs.env
        self.logs = logs.sudo()
        self.job_uuid = job_uuid
        self.outbox = Outbox(self.env)
        self.deleted_names = {}  # {record id: name} of the records deleted by this job
        self.settings = {}  # {config id: (engine Settings, inbound lines)}, read once
        self.changed = self.logs.browse()  # events whose outcome changed: status in bulk
        self.bound = False  # whether the event's record was found by its remote id
        self.found = None  # the record the event is about, once found (shown if it fails)

    def run(self):
        """The recipe: claim, lock, then each event in order; the records' status at the
        end, in bulk."""
        logs = self._claim()
        for log in self._lock(logs):
            self._apply(log)
        self.changed._update_status()

    def status_changed(self, log):
        """``_surface_failure`` of an event of this job: its status is written at the end."""
        self.changed |= log

    # -- claim and lock -------------------------------------------------------------------------

    def _claim(self):
        if not queue_jobs.claim_running_job(self.env, self.job_uuid):
            _logger.info("api_sync: job %s was taken over by recovery", self.job_uuid)
            return self.logs.browse()
        if self.job_uuid:  # should this worker die, its job is taken over within seconds
            Watch.keep(self.env)
        logs = self.logs.exists().filtered(lambda log: log.direction == "inbound")
        if self.job_uuid:  # events stored later join a job not started yet (_store_inbound)
            logs = logs.search(
                [
                    ("job_uuid", "=", self.job_uuid),
                    ("direction", "=", "inbound"),
                    ("state", "=", "pending"),
                ]
            )
        return logs

    def _lock(self, logs):
        """These events and the older pending events of their remote objects, locked (NOWAIT)
        and pending, in the order received. A conflict (another job applies one of them, or
        applied it since this job began) retries the job shortly."""
        if not logs:
            return logs
        Log = self.logs.browse()
        older = Log.search(
            [
                ("direction", "=", "inbound"),
                ("state", "=", "pending"),
                ("config_id", "in", logs.config_id.ids),
                ("remote_id", "in", [rid for rid in logs.mapped("remote_id") if rid]),
                ("id", "<", max(logs.ids)),
            ]
        ).filtered(
            lambda event: any(
                event.config_id == log.config_id
                and event.remote_id == log.remote_id
                and event.id < log.id
                for log in logs
            )
        )
        events = (logs | older).sorted("id")
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    """SELECT id FROM api_sync_log WHERE id IN %s AND state = 'pending'
                        ORDER BY id FOR UPDATE NOWAIT""",
                    (tuple(events.ids),),
                    log_exceptions=False,
                )
                locked = {row[0] for row in self.env.cr.fetchall()}
        except CONFLICTS:
            raise RetryableJobError(
                "another job applies an event of this object",
                seconds=BUSY_RETRY_SECONDS,
                ignore_retry=True,
            ) from None
        return events.filtered(lambda event: event.id in locked)

    # -- one event ------------------------------------------------------------------------------

    def _apply(self, log):
        """Apply one event in a savepoint; its outcome (or why it failed) on its log."""
        config = log.config_id.sudo()
        self.found = None
        try:
            with self.env.cr.savepoint():
                outcome, record, unknown = self._apply_event(log, config)
        except CONFLICTS:
            raise RetryableJobError(
                "a concurrent change of the record", seconds=BUSY_RETRY_SECONDS, ignore_retry=True
            ) from None
        except Retry as exc:
            self._retry_or_fail(log, config, str(exc))
            return
        except (ValueError, UserError, psycopg2.IntegrityError) as exc:
            self._fail(log, exc)
            return
        values = {
            "state": "done",
            "inbound_outcome": outcome,
            "done_at": fields.Datetime.now(),
            "attempt_count": log.attempt_count + 1,
            "last_attempt_at": fields.Datetime.now(),
            "error_class": False,
            "error_message": False,
            "next_retry_at": False,
            "unknown_keys": unknown,
        }
        if record:
            name = self.deleted_names.get(record.id) or record.sudo().display_name
            values.update(res_id=record.id, record_name=name)
        log.write(values)
        self.changed |= log

    def _apply_event(self, log, config):
        """``(outcome, record, unknown keys)`` of one event; raises what makes it fail (a
        ValueError from the engine, an access or validation error of the ORM) or ``Retry``."""
        if config.id not in self.settings:
            self.settings[config.id] = (config._inbound_settings(), config._inbound_lines())
        settings, lines = self.settings[config.id]
        event = inbound.read_event(
            settings,
            log.inbound_method,
            json.loads(log.inbound_headers or "{}"),
            inbound.parse_json(log.inbound_body.encode()),
        )
        Model = self.env[config.model_name].with_env(config._reader_env())
        if event.operation == "delete":  # only what finds the record matters
            lines = [dataclasses.replace(line, required=False) for line in lines]
        mapped = inbound.map_inbound(lines, event.data, known=self._known_keys(config, event))
        unknown = self._unknown_text(mapped)
        record = self._find(config, Model, event, mapped.values)
        action = inbound.action(event.operation, bool(record))
        if action is None:
            return "missing", None, unknown
        if action == "update" and self._is_stale(config, record, event):
            return "stale", record, unknown
        if action == "delete":
            return self._delete(config, record, event), record, unknown
        values = self._resolve(config, Model, mapped.values)
        if action == "create":
            if not config.inbound_allow_create:
                raise inbound.EventError(
                    self.env._(
                        "No record matches this object and Create Missing Records is off: "
                        "nothing was created."
                    )
                )
            record = Model.create(values)
            self.outbox.applying(config, record)
        else:
            self.outbox.applying(config, record)
            record.write(values)
        if event.external_id and (action == "create" or event.timestamp or not self.bound):
            self.env["api.sync.binding"]._bind_inbound(
                config, record.id, event.external_id, event.timestamp
            )
        return ("created" if action == "create" else "updated"), record, unknown

    # -- the steps ------------------------------------------------------------------------------

    def _known_keys(self, config, event):
        """Keys that are not unknown: the envelope the settings read, and the target keys of
        the outbound-only mapping lines (sent, not written back)."""
        outbound = config.mapping_ids.filtered(lambda line: not line.inbound)
        return (*event.consumed, *(key.strip() for key in outbound.mapped("target_key")))

    def _unknown_text(self, mapped):
        if not mapped.unknown_count:
            return False
        text = ", ".join(mapped.unknown)
        more = mapped.unknown_count - len(mapped.unknown)
        return text + (f" (+{more})" if more > 0 else "")

    def _find(self, config, Model, event, values):
        """The record the event is about: bound to its remote id, else matched by the key
        field (as the Integration User sees records, archived ones included)."""
        Model = Model.with_context(active_test=False)
        self.bound = False
        if event.external_id:
            res_id = self.env["api.sync.binding"]._bound_record(config, event.external_id)
            record = Model.browse(res_id).exists() if res_id else Model.browse()
            if record:
                self.bound = True  # to this remote id already: no binding to write
                self.found = record
                return record
        key = (config.inbound_key_field or "").strip()
        value = values.get(key)
        if key and value not in (None, False):
            found = Model.search([(key, "=", value)], limit=2)
            if len(found) > 1:
                raise inbound.EventError(
                    self.env._(
                        "Several records have %(field)s = %(value)r: the event cannot tell "
                        "which one it changes.",
                        field=key,
                        value=value,
                    )
                )
            self.found = found or None
            return found
        return Model.browse()

    def _is_stale(self, config, record, event):
        """Newest wins: an update older than the record's last synced version (sent by Odoo,
        or applied from the remote system) is skipped."""
        if event.timestamp is None or config.inbound_stale_rule == "remote_wins":
            return False  # nothing to compare: no query
        versions = self.env["api.sync.binding"]._versions(config, record.id)
        Status = self.env["api.sync.record.status"].sudo()
        status = Status.search([("config_id", "=", config.id), ("res_id", "=", record.id)])
        versions.append(status.last_version)
        last = max(filter(None, versions), default=None)
        return inbound.is_stale(event.timestamp, last, config.inbound_stale_rule)

    def _delete(self, config, record, event):
        """Archive the record when the model can be archived (and the configuration says so),
        else delete it (its binding goes)."""
        self.outbox.applying(config, record)
        if config.inbound_archive_on_delete and "active" in record._fields:
            record.action_archive()
            return "archived"
        self.deleted_names[record.id] = record.sudo().display_name
        record.unlink()
        if event.external_id:
            self.env["api.sync.binding"]._unbind(config, record.id, here=True)
        return "deleted"

    def _resolve(self, config, Model, values):
        """The values with each ``Lookup`` replaced by the id of the related record it names
        (read as the Integration User); ``Retry`` when one is missing (it may be created by a
        later event), a MappingError when several match."""
        resolved, problems = {}, []
        for name, value in values.items():
            if not isinstance(value, inbound.Lookup):
                resolved[name] = value
                continue
            Related = Model.env[Model._fields[name].comodel_name].with_context(active_test=False)
            if value.by:
                found = Related.search([(value.by, "=", value.value)], limit=2)
            else:
                other = self.env["api.sync.config"].sudo().browse(value.configuration)
                res_id = self.env["api.sync.binding"]._bound_record(other, value.value)
                found = Related.browse(res_id).exists() if res_id else Related.browse()
            problem = value.problem(len(found))
            if problem and not found:
                raise Retry(f"{name}: {problem}")
            if problem:
                problems.append((name, problem))
            resolved[name] = found.id
        if problems:
            raise inbound.MappingError(problems)
        return resolved

    # -- failures -------------------------------------------------------------------------------

    def _retry_or_fail(self, log, config, reason):
        """Try again later (backoff), until the event's attempts are spent."""
        attempts = log.attempt_count + 1
        if attempts >= (log.attempts_allowed or 1):
            self._fail(log, inbound.MappingError([("", reason)]), attempts, reason)
            return
        delay = min(config.backoff_max, config.backoff_base * 2 ** (attempts - 1))
        eta = fields.Datetime.add(fields.Datetime.now(), seconds=delay)
        log.write(
            {
                "attempt_count": attempts,
                "last_attempt_at": fields.Datetime.now(),
                "error_class": "Retry",
                "error_message": reason,
                "next_retry_at": eta,
            }
        )
        log._enqueue(eta=eta)
        self.changed |= log

    def _fail(self, log, error, attempts=None, message=None):
        """The event fails, with a reason a person understands."""
        if message is None:
            message = error.args[0] if isinstance(error, UserError) and error.args else str(error)
            if isinstance(error, psycopg2.IntegrityError):
                message = self.env._(
                    "The record could not be saved: a required value is missing or a value "
                    "is not allowed (%(detail)s).",
                    detail=(error.diag.message_primary or "").strip(),
                )
        values = {
            "state": "failed",
            "attempt_count": attempts or log.attempt_count + 1,
            "last_attempt_at": fields.Datetime.now(),
            "error_class": type(error).__name__,
            "error_message": message,
            "next_retry_at": False,
        }
        record = self.found and self.found.sudo().exists()
        if record and not log.res_id:  # its chatter and status button show the failure
            values.update(res_id=record.id, record_name=record.display_name)
        log.write(values)
        log._surface_failure(self)
