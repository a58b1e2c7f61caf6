"""One delivery job, as one recipe (the exporter).

A job delivers a group of events (a retry is a group of one). ``Delivery.run`` is the whole
path, top to bottom: claim the job, lock the events and their records' status rows, read and
map the records as the Integration User, then per event: wait for older events of its record,
pass the endpoint's gate, freeze the body, drop what a newer delivery superseded, send through
the configuration's adapter, record the endpoint's health, write the outcome; finally write the
attempt lines, the records' status and wake the next events. What the events share is done in
bulk and kept on the ``Delivery`` object, passed explicitly: nothing travels in the context.
"""

import contextlib
import dataclasses
import json
import logging
import math
import time
from collections import defaultdict
from functools import partial

import psycopg2

from odoo import fields

from odoo.addons.queue_job.exception import RetryableJobError

from ..engine import delivery, wire
from ..engine.mapping import MappingError
from . import queue_jobs
from .adapters import adapter_for
from .mapper import Mapper
from .watch import Watch

_logger = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 3
GROUP_SECONDS = 60  # a job queues the events it did not reach by then as another job


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


class Delivery:
    """The deliveries of one job, and what they share (see the module's docstring)."""

    def __init__(self, logs, job_uuid=None, claimed=False, gates=None):
        self.env = logs.env
        self.logs = logs.sudo()
        self.job_uuid = job_uuid
        # the caller holds the job's lock: a job run in place at commit (models/at_commit.py),
        # still pending, which needs no watch (should its process die, it runs at its time)
        self.claimed = claimed
        self.captures = {}  # {(config id, record id): Capture} of record events without body
        self.batches = {}  # {log id: (records, payloads or MappingErrors)} of such batches
        self.versions = {}  # {(config id, record id): last version delivered}
        self.named = {}  # the same, of the status rows with a name
        self.attempts = []  # attempt lines to create
        self.changed = []  # ids of logs whose status changed
        # {config id: its endpoint's Gate}, shared with the deliveries that follow this one in
        # the same thread when given (models/at_commit.py)
        self.gates = {} if gates is None else gates
        self.waiting = defaultdict(list)  # {(config id, eta): ids of logs waiting until then}
        self.adapters = {}  # {config id: its Adapter}

    def run(self):
        """The recipe: the job's events, each in turn, with what they share done in bulk."""
        logs = self._claim()  # the events still linked to this job
        logs, status_rows = self._lock(logs)  # with their records' status rows
        logs = logs.filtered(lambda log: log.state == "pending")
        if not logs:
            return
        self._read(logs, status_rows)  # the records, read and mapped as the Integration User
        older = self._older_events(logs)  # of the same records; those whose job was lost requeued
        deadline = time.monotonic() + GROUP_SECONDS
        for index, log in enumerate(logs):
            if index and time.monotonic() + (log.config_id.timeout or 10) > deadline:
                logs[index:]._enqueue()  # an attempt that times out ends before the deadline
                break
            waited = [e for e in older[log.config_id.id, log.res_id] if e.id < log.id]
            if any(event.state == "pending" for event in waited):
                self._wait_for_older(log, waited)  # one record's events go in order
                continue
            self._attempt(log)
        self._wait_in_place(logs)  # every event waits for its endpoint: the job itself waits
        self._finish(logs)

    def _attempt(self, log):
        """One attempt of one event: gate, body, send, health, outcome."""
        gate = self._gate(log)  # endpoint paused, disabled or rate limited: waits
        if not gate:
            return
        started = wire.utc_now()
        if not self._capture(log, started) or not self._drop_superseded(log):
            return
        outcome = self.adapter(log.config_id).send(log)
        if outcome is None:  # nothing to send (resource mode): the log says why
            return
        after = self.env["api.sync.endpoint.state"]._record(
            log.config_id, outcome, gate, log.last_attempt_at, log.create_date
        )
        self._write_outcome(log, outcome, after, started)  # and the next attempt, if any

    def adapter(self, config):
        """The adapter of ``config`` for this job (its settings read once)."""
        if config.id not in self.adapters:
            self.adapters[config.id] = adapter_for(config)
        return self.adapters[config.id]

    # -- claim and lock -------------------------------------------------------------------------

    def _claim(self):
        """The logs still linked to this job (recovery may have given others a new one); none
        when recovery took the job over."""
        if self.claimed:
            return self.logs
        if not queue_jobs.claim_running_job(self.env, self.job_uuid):
            _logger.info("api_sync: job %s was taken over by recovery", self.job_uuid)
            return self.logs.browse()
        if self.job_uuid:  # should this worker die, its job is taken over within seconds
            Watch.keep(self.env)
        logs = self.logs.exists()
        if self.job_uuid:
            logs = logs.filtered(lambda log: log.job_uuid == self.job_uuid)
        return logs

    def _lock(self, logs):
        """Lock the logs and their records' status rows; returns those locked, and what was
        read of the rows.

        All together first (a few statements); on a conflict, each on its own: those that
        another delivery holds are queued again (alone in its job, one makes queue_job postpone
        the job).
        """
        if not logs:
            return logs, {}
        try:
            with self.env.cr.savepoint():
                return logs, self._lock_rows(logs)
        except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
            if len(logs) == 1:
                raise RetryableJobError(
                    "another delivery of this record is running",
                    seconds=BUSY_RETRY_SECONDS,
                    ignore_retry=True,
                ) from None
        locked, status_rows = logs.browse(), {}
        for log in logs:
            try:
                with self.env.cr.savepoint():
                    status_rows.update(self._lock_rows(log))
            except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
                log._enqueue(eta=BUSY_RETRY_SECONDS)
                continue
            locked |= log
        return locked, status_rows

    def _lock_rows(self, logs):
        """Lock ``logs`` and the sync status rows of their records (NOWAIT: never block a
        worker); returns ``{(config id, record id): (last version delivered, whether the row
        has a name)}`` of those rows, as locked.

        Its conflicts are expected and handled by the caller: they are not logged as errors.
        Under Odoo's repeatable-read isolation, a row changed by a delivery that committed after
        this job began raises a serialization failure here, so a delivery never sends data older
        than the one before it: it is postponed and starts again on fresh data.
        """
        cr = self.env.cr
        cr.execute(
            "SELECT id FROM api_sync_log WHERE id IN %s ORDER BY id FOR UPDATE NOWAIT",
            (tuple(logs.ids),),
            log_exceptions=False,
        )
        logs.invalidate_recordset()  # what was read of them before they were locked
        Status = self.env["api.sync.record.status"]
        status_rows = {}
        for config, config_logs in logs.grouped("config_id").items():
            res_ids = sorted({res_id for log in config_logs for res_id in log._res_ids()})
            found = Status._lock_rows(config, res_ids) if res_ids else {}
            missing = [res_id for res_id in res_ids if res_id not in found]
            if missing:  # created now, they stay locked until this transaction ends
                Status._ensure(config, missing)
                found.update(Status._lock_rows(config, missing))
            status_rows.update({(config.id, res_id): row for res_id, row in found.items()})
        return status_rows

    # -- read and map, as the Integration User ----------------------------------------------------

    def _read(self, logs, status_rows):
        """What the deliveries need, read together: the versions and names the status rows
        hold, the records of the events without a body yet, mapped (when that fails, each
        event reads its own records and fails alone), and each adapter's own (external ids)."""
        self.versions = {key: version for key, (version, _named) in status_rows.items() if version}
        self.named = {key: version for key, (version, named) in status_rows.items() if named}
        todo = logs.filtered(
            lambda log: (log.res_id or log.operation == "batch") and not log.request_body
        )
        try:
            with self.env.cr.savepoint(flush=False) if todo else contextlib.nullcontext():
                for (config, model_name), group in todo.grouped(
                    lambda log: (log.config_id, log.res_model)
                ).items():
                    Model = self.env[model_name]
                    events = group.filtered(lambda log: log.operation != "batch")
                    if events:
                        self.captures.update(
                            self._captures_of(config, Model.browse(events.mapped("res_id")))
                        )
                    if group - events:
                        self.batches.update(self._batches_of(config, Model, group - events))
        except Exception:  # noqa: BLE001 - each event meets the error again, and records it
            self.captures, self.batches = {}, {}
        for config, config_logs in logs.grouped("config_id").items():
            self.adapter(config).prefetch(config_logs)

    def _captures_of(self, config, records):
        """``{(config id, record id): Capture}`` of ``records`` (some perhaps deleted) as
        ``config`` sends them."""
        existing = records.exists()
        existing.fetch(["write_date"])  # the version alone: not every column of the model
        mapper = Mapper(config)
        readable = mapper.split_readable(existing)[0]
        payloads = dict(zip(readable.ids, mapper.payloads_or_errors(readable), strict=True))
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

    def _batches_of(self, config, Model, logs):
        """``{log id: (records, payloads or MappingErrors)}`` of the batch events ``logs``."""
        ids = [res_id for log in logs for res_id in log._res_ids()]
        records = Model.browse(ids).exists()
        records.fetch(["write_date"])  # the version alone: not every column of the model
        payloads = dict(zip(records.ids, Mapper(config).payloads_or_errors(records), strict=True))
        batches = {}
        for log in logs:
            mine = records.browse([i for i in log._res_ids() if i in payloads])
            batches[log.id] = (mine, [payloads[i] for i in mine.ids])
        return batches

    # -- events of one record reach the endpoint in order ----------------------------------------

    def _older_events(self, logs):
        """``{(config id, record id): [pending events]}`` of the records of ``logs``, older
        than one of them; those whose job was lost are queued again first."""
        older = logs._older_pending()
        if older:
            older._recover_lost()
        by_record = defaultdict(list)
        for event in older.filtered(lambda log: log.state == "pending"):
            by_record[event.config_id.id, event.res_id].append(event)
        return by_record

    def _wait_for_older(self, log, waited):
        """Queue ``log`` again for when the older events of its record may be over."""
        pending = [event for event in waited if event.state == "pending"]
        wake = max([wire.utc_now(), *filter(None, (e.next_retry_at for e in pending))])
        log._enqueue(eta=fields.Datetime.add(wake, seconds=BUSY_RETRY_SECONDS))

    # -- the endpoint's gate ---------------------------------------------------------------------

    def _gate(self, log):
        """A ``Gate`` to send, or None when the delivery waits for its endpoint (paused,
        disabled, Retry-After, rate limit): queued again when the job ends, no attempt spent.

        The pass of a healthy endpoint without rate limit serves the job's next deliveries for
        a moment, as long as their answers change nothing; an endpoint to wait for holds them
        too, and those waiting share their jobs again."""
        config = log.config_id
        gate = self.gates.get(config.id)
        reusable = gate and (
            gate.wait_until or (gate.reusable_until and wire.utc_now() < gate.reusable_until)
        )
        if not reusable:
            gate = self.gates[config.id] = self.env["api.sync.endpoint.state"]._gate(config)
        if gate.wait_until:
            log.next_retry_at = gate.wait_until
            self.waiting[config.id, gate.wait_until].append(log.id)
            return None
        return gate

    def _wait_in_place(self, logs):
        """When every event of the job waits for its endpoint and nothing else was done, the
        job waits itself: queue_job postpones it (the same job, no new one at each probe cycle
        of a paused endpoint); the events' Next Retry is written once its transaction is rolled
        back. Outside a job, or with anything else done, ``_finish`` queues them again."""
        if not self.job_uuid or self.attempts or self.changed or len(self.waiting) != 1:
            return
        (((_config_id, eta), ids),) = self.waiting.items()
        if set(ids) != set(logs.ids):
            return
        self.env.cr.postrollback.add(
            partial(_note_waiting, self.env.registry, ids, self.job_uuid, eta)
        )
        seconds = max(1, math.ceil((eta - wire.utc_now()).total_seconds()))
        raise RetryableJobError(
            "api_sync: waiting for the endpoint", seconds=seconds, ignore_retry=True
        )

    # -- the body, frozen at the first attempt ---------------------------------------------------

    def _capture(self, log, started):
        """Freeze the event's body, if not yet; returns whether it is still to be sent."""
        if log.request_body:
            return True
        try:
            # no flush: the attempt writes its log once (a second update would re-check the
            # run's foreign key and clash with the run's progress updates); a record read with
            # the job's touches no table here
            with self._capture_guard(log):
                self._capture_body(log)
        except Exception as exc:  # noqa: BLE001 - recorded on the log for the admin
            log.write(
                {
                    "state": "failed",
                    "error_class": type(exc).__name__,
                    "error_message": str(exc),
                    "last_attempt_at": started,
                }
            )
            log._surface_failure(self)
            return False
        return log.state == "pending"

    def _capture_guard(self, log):
        """A savepoint around the capture, unless the job already read the records (the
        capture then runs no statement)."""
        if (
            log.id in self.batches
            if log.operation == "batch"
            else (log.config_id.id, log.res_id) in self.captures
        ):
            return contextlib.nullcontext()
        return self.env.cr.savepoint(flush=False)

    def _capture_body(self, log):
        """The body, from the records as they are now (read by the job, else here)."""
        config = log.config_id
        if log.operation == "batch":
            records, payloads = self.batches.get(log.id) or (
                self.env[log.res_model].browse(log._res_ids()).exists(),
                None,
            )
            body, failures = Mapper(config).batch_body(
                log.idempotency_key, records, log.create_date, payloads
            )
            self._split_failures(log, failures)
            if not body["records"]:
                log.sent_count = 0
                self._cancel(
                    log,
                    "MappingError" if failures else "RecordDeleted",
                    self.env._("No record of this batch is left to send."),
                )
                return
            captured = {"sent_count": len(body["records"])}
        else:
            capture = self._record_capture(log)
            if capture.record and not capture.readable:
                self._cancel(log, "NotReadable", config._not_readable_message())
                return
            if not capture.record:
                message = self.env._(
                    "The record was deleted before its %(operation)s was sent.",
                    operation=log.operation,
                )
                self._cancel(log, "RecordDeleted", message)
                return
            if isinstance(capture.data, MappingError):
                raise capture.data
            body = Mapper(config).record_body(
                log.idempotency_key,
                capture.record,
                log.operation,
                log._changed_fields(),
                log.create_date,
                data=capture.data,
            )
            captured = {"record_version": capture.version, "record_name": capture.name}
        log.write({**captured, "request_body": wire.encode(body).decode()})

    def _record_capture(self, log):
        """The ``Capture`` of a record event: the job's, else read now."""
        capture = self.captures.get((log.config_id.id, log.res_id))
        if capture:
            return capture
        record = self.env[log.res_model].browse(log.res_id).exists()
        if not record or not Mapper(log.config_id).split_readable(record)[0]:
            return Capture(record)
        return Capture(record, True, None, record.display_name, record.write_date)

    def _split_failures(self, log, failures):
        """Records of a batch that cannot be mapped get a failed event each (the others go)."""
        Log = log.browse()
        for record, error in failures.items():
            failed = Log.create(
                log._event_values(
                    log.config_id,
                    "update",
                    res_id=record.id,
                    run_id=log.run_id.id,
                    record_name=record.display_name,
                    state="failed",
                    error_class="MappingError",
                    error_message=str(error),
                    last_attempt_at=fields.Datetime.now(),
                    checkpoint_date=log.checkpoint_date,
                    checkpoint_res_id=log.checkpoint_res_id,
                )
            )
            failed._surface_failure(self)

    # -- never older data than what reached the endpoint -----------------------------------------

    def _drop_superseded(self, log):
        """A record event whose record was delivered in a newer version (e.g. before this
        retry) is cancelled; a batch leaves such records out. Returns whether anything is left
        to send."""
        config_id = log.config_id.id
        superseded = {
            res_id
            for res_id, version in log._record_versions().items()
            if version and self.versions.get((config_id, res_id), version) > version
        }
        if not superseded:
            return True
        if log.operation == "batch":
            body = json.loads(log.request_body)
            body["records"] = [i for i in body["records"] if i["record_id"] not in superseded]
            if body["records"]:
                log.write(
                    {"request_body": wire.encode(body).decode(), "sent_count": len(body["records"])}
                )
                return True
        self._cancel(
            log,
            "Superseded",
            self.env._("A newer version was delivered meanwhile: this older data is not sent."),
        )
        return False

    # -- the outcome -----------------------------------------------------------------------------

    def _write_outcome(self, log, outcome, after, now):
        """Write the outcome of the attempt started ``now`` on its log, keep its attempt line,
        and queue the next attempt or surface the failure."""
        config = log.config_id
        attempt = log.attempt_count + 1
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
        allowed = log.attempts_allowed or config.max_attempts
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
        log.write(values)
        self.attempts.append(log._attempt_values(outcome, now))
        if log.next_retry_at:
            log._enqueue(eta=log.next_retry_at)
        if log.state == "failed":
            log._surface_failure(self)
        else:
            self.status_changed(log)

    def _cancel(self, log, error_class, message):
        log.write({"state": "cancelled", "error_class": error_class, "error_message": message})
        self.status_changed(log)

    def status_changed(self, logs):
        """Reflect the outcome of ``logs`` on their records' status when the job ends; the
        versions delivered count for the job's next events at once."""
        self.changed.extend(logs.ids)
        for log in logs.filtered(lambda log: log.state == "done"):
            for res_id, version in log._record_versions().items():
                key = (log.config_id.id, res_id)
                if version and (key not in self.versions or self.versions[key] < version):
                    self.versions[key] = version

    def _finish(self, logs):
        """Write what the job did: its attempt lines, the events waiting for their endpoint
        (sharing jobs again), the records' status, the next events of the records woken."""
        self.env["api.sync.log.attempt"].sudo()._insert(self.attempts)
        for (_config_id, eta), ids in self.waiting.items():
            logs.browse(ids)._enqueue(eta=eta)
        changed = logs.browse(list(dict.fromkeys(self.changed)))
        changed._update_status(named=self.named)


def _note_waiting(registry, log_ids, job_uuid, eta):
    """After the rollback of a job that waits in place: its events' Next Retry."""
    with registry.cursor() as cr:
        cr.execute(
            """UPDATE api_sync_log SET next_retry_at = %s
                WHERE id = ANY(%s) AND job_uuid = %s AND state = 'pending'""",
            (eta, list(log_ids), job_uuid),
        )
