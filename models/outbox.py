"""The outbox: the writer's side of a change, from the trigger to the events and their jobs.

A creation or an update that the listener or a rule sends is only noted (``Outbox.note``): the
events of the whole transaction are created together just before it commits (``_flush``, a
precommit hook), so a transaction that rolls back never creates them, and updates of one record
in one transaction become one event carrying every field that changed. A deletion is queued at
once (``Outbox.queue``, as ``sync_record`` does): its record is about to go, so its payload is
captured now. Queuing keeps what the configuration may send (domain, company, what its
Integration User may read), folds an update into the record's event not sent yet, and inserts
the events with their jobs in one statement (``_insert``, ``queue_jobs.insert_sql``).

No echo: the inbound side marks the records it writes for a configuration (``applying``); their
changes are not sent back to that configuration, in this transaction only (both trigger modes go
through ``note`` and ``queue``), and still are to the records' other configurations.

What the transaction holds lives in ``cr.precommit.data``: the noted changes, the records the
inbound side writes, and the records noted that still exist (``Base.unlink`` forgets them),
which a configuration without a domain sends with no query. A record deleted in the same
transaction by the database alone (a cascade, no ``unlink``) gets an event that its delivery
cancels (RecordDeleted).
"""

import logging
import uuid
from collections import defaultdict
from functools import partial

import psycopg2

from odoo.models import LOG_ACCESS_COLUMNS
from odoo.tools import SQL

from ..engine import mapping, wire
from . import queue_jobs
from .adapters import adapter_for
from .at_commit import AtCommit
from .mapper import Mapper

_logger = logging.getLogger(__name__)

PENDING_KEY = "api_sync.pending"  # {(config id, record id): [operation, changed fields]}
NOTED_KEY = "api_sync.noted"  # {(model name, record id)} noted and not unlinked since
APPLIED_KEY = "api_sync.applied"  # {(config id, record id)} written by the inbound side


class Outbox:
    """The events of one transaction (see the module's docstring)."""

    def __init__(self, env):
        self.env = env
        self.data = env.cr.precommit.data

    # -- noted now, queued at commit -------------------------------------------------------------

    def note(self, config, records, operation, changed_fields=None):
        """Note a creation or an update of ``records`` for ``config``, queued at commit."""
        self.data.setdefault(NOTED_KEY, set()).update(
            (records._name, record_id) for record_id in records.ids
        )
        records = self._not_applied(config, records)
        pending = self.data.get(PENDING_KEY)
        if pending is None:
            pending = self.data[PENDING_KEY] = {}
            self.env.cr.precommit.add(partial(_flush, self.env))
        for record_id in records.ids:
            key = (config.id, record_id)
            earlier = pending.get(key)
            if earlier is None:
                pending[key] = [operation, set(changed_fields) if changed_fields else None]
                continue
            if earlier[0] != "create":
                earlier[0] = operation
            if earlier[1] is not None and changed_fields:
                earlier[1] |= set(changed_fields)
            else:
                earlier[1] = None

    def forget(self, records):
        """``records`` are being unlinked: they no longer exist at commit."""
        noted = self.data.get(NOTED_KEY)
        if noted and records:
            noted.difference_update((records._name, record_id) for record_id in records.ids)

    def applying(self, config, records):
        """The inbound side of ``config`` writes ``records`` in this transaction: what they
        send is not sent back to ``config`` (it would loop), whatever triggers it (listener,
        rules, deletions); their other configurations get their events, and the next
        transaction sends as usual."""
        self.data.setdefault(APPLIED_KEY, set()).update(
            (config.id, record_id) for record_id in records.ids
        )

    def _not_applied(self, config, records):
        """``records`` but those the inbound side of ``config`` writes in this transaction."""
        applied = self.data.get(APPLIED_KEY)
        if not applied:
            return records
        return records.browse(
            [record_id for record_id in records.ids if (config.id, record_id) not in applied]
        )

    def all_noted(self, records):
        """Whether every one of ``records`` was noted in this transaction (and still exists)."""
        noted = self.data.get(NOTED_KEY)
        return bool(noted) and all((records._name, rid) in noted for rid in records.ids)

    # -- queued ------------------------------------------------------------------------------------

    def queue(self, config, records, operation, changed_fields, merge=True, final=False):
        """Create the pending events of ``records`` for ``config`` and store their jobs (a few
        statements); returns the events (those folded into earlier ones, and those not sent
        because the Integration User cannot read their record, included). ``final``: the
        records are as the transaction commits them (``_flush``)."""
        config.ensure_one()
        Log = self.env["api.sync.log"].sudo()
        records = self._not_applied(config, records)
        records, unreadable = Mapper(config).split_readable(config._records_to_send(records))
        skipped = self._not_readable(config, unreadable, operation)
        if not records:
            return skipped
        fields_text = ",".join(sorted(set(changed_fields))) if changed_fields else False
        merged = Log
        if merge and operation == "update":  # a new record has no earlier event to fold into
            merged = self._merge_into_pending(config, records, changed_fields)
        merged_ids = set(merged.mapped("res_id"))
        todo = records.filtered(lambda record: record.id not in merged_ids)
        values = [
            Log._event_values(
                config,
                operation,
                res_id=record.id,
                # creations and updates are named when sent (the writer skips that read)
                record_name=record.display_name if operation == "delete" else False,
                changed_fields=fields_text,
            )
            for record in todo
        ]
        if operation == "delete":
            self._name_earlier_events(config, todo)
            event_ids = [vals["idempotency_key"] for vals in values]
            captured = self._capture_deletions(config, todo, event_ids)
            for vals, frozen in zip(values, captured, strict=True):
                vals.update(frozen)
        # link each event to its job in the same insert
        size = config._records_per_job()
        job_uuids = [str(uuid.uuid4()) for _chunk in range(0, len(values), size)]
        for index, vals in enumerate(values):
            if vals.get("state") != "failed":
                vals["job_uuid"] = job_uuids[index // size]
        # this process may deliver the jobs after the commit: they wait, as its fallback
        eta = AtCommit.take(self.env, list({v["job_uuid"] for v in values if v.get("job_uuid")}))
        if eta and final and operation != "delete":
            self._freeze(config, todo, values, operation, changed_fields)
        logs = self._insert(config, values, eta=eta)  # with their jobs, in one statement
        for log in logs.filtered(lambda log: log.state == "failed"):
            log._surface_failure()
        return merged | logs | skipped

    def _not_readable(self, config, records, operation):
        """Cancelled events saying why ``records`` (unreadable for the Integration User) were
        not sent."""
        Log = self.env["api.sync.log"].sudo()
        if not records:
            return Log
        return Log.create(
            [
                Log._event_values(
                    config,
                    operation,
                    res_id=record.id,
                    record_name=record.sudo().display_name,
                    state="cancelled",
                    error_class="NotReadable",
                    error_message=config._not_readable_message(),
                )
                for record in records
            ]
        )

    def _merge_into_pending(self, config, records, changed_fields):
        """Fold an update into the record's event that is queued and not yet attempted.

        The event reads the record when it is sent, so it will carry this change too. Events
        that a running delivery holds are skipped (SKIP LOCKED): the change then gets its own.
        """
        candidates = (
            self.env["api.sync.log"]
            .sudo()
            .search(
                [
                    ("config_id", "=", config.id),
                    ("res_id", "in", records.ids),
                    ("state", "=", "pending"),
                    ("direction", "=", "outbound"),
                    ("attempt_count", "=", 0),
                    ("request_body", "=", False),
                    ("operation", "in", ("create", "update")),
                ]
            )
        )
        if not candidates:
            return candidates
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    "SELECT id FROM api_sync_log WHERE id IN %s FOR UPDATE SKIP LOCKED",
                    (tuple(candidates.ids),),
                    log_exceptions=False,  # the conflict below is expected
                )
                locked = candidates.browse([row[0] for row in self.env.cr.fetchall()])
        except psycopg2.errors.SerializationFailure:
            # a delivery changed one of them since this transaction began: no merge
            return candidates.browse()
        merged = locked.browse()
        for log in locked:
            if log.res_id in merged.mapped("res_id"):
                continue
            if changed_fields is None or not log.changed_fields:
                union = False
            else:
                union = ",".join(sorted(set(log.changed_fields.split(",")) | set(changed_fields)))
            log.changed_fields = union
            merged |= log
        return merged

    def _name_earlier_events(self, config, records):
        """Events of ``records`` not sent yet are named when sent: name them now, before the
        records are deleted (their logs stay readable afterwards).

        A delivery may hold one of these events, or have updated it since this transaction
        began (a conflict the writer must not fail on): that event is left as it is. A delivery
        names the events it sends; one it did not name shows its model and record id.
        """
        self.env["api.sync.log"].flush_model(["record_name"])
        names = [record.sudo().display_name for record in records]
        if not self._name_events_or_conflict(
            """UPDATE api_sync_log AS l SET record_name = v.name
                 FROM unnest(%s::int[], %s::varchar[]) AS v(res_id, name)
                WHERE l.res_id = v.res_id
                  AND l.id IN (SELECT id FROM api_sync_log
                                WHERE config_id = %s AND res_id = ANY(%s)
                                  AND record_name IS NULL
                                  FOR UPDATE SKIP LOCKED)""",
            (records.ids, names, config.id, records.ids),
        ):
            # some event conflicts: name the others one by one
            self.env.cr.execute(
                """SELECT id, res_id FROM api_sync_log
                    WHERE config_id = %s AND res_id = ANY(%s) AND record_name IS NULL""",
                (config.id, records.ids),
            )
            name_of = dict(zip(records.ids, names, strict=True))
            for log_id, res_id in self.env.cr.fetchall():
                self._name_events_or_conflict(
                    """UPDATE api_sync_log SET record_name = %s
                        WHERE id IN (SELECT id FROM api_sync_log WHERE id = %s
                                        FOR UPDATE SKIP LOCKED)""",
                    (name_of[res_id], log_id),
                )
        self.env["api.sync.log"].invalidate_model(["record_name"])

    def _name_events_or_conflict(self, query, params):
        """Run ``query`` (naming events) in a savepoint; False if it met an event a delivery
        updated since this transaction began (expected: no ERROR logged)."""
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(query, params, log_exceptions=False)
        except psycopg2.errors.SerializationFailure:
            return False
        return True

    def _freeze(self, config, records, values, operation, changed_fields):
        """For a delivery at commit: the bodies of the events ``values`` of ``records`` made
        now, from the records as this transaction commits them (as a deletion's are; its cache
        holds them), so that the delivery reads nothing before it sends. An event made so is
        not folded with a later change: that change gets an event of its own. A record that
        cannot be mapped, or anything else failing here, is left to the delivery, which records
        why: the save goes on."""
        mapper = Mapper(config)
        now = self.env.cr.now()  # the events' creation time (``_insert``)
        changed = sorted(set(changed_fields)) if changed_fields else None
        try:  # whatever fails here fails the delivery, which records why, never the save
            with self.env.cr.savepoint(flush=False):
                payloads = mapper.payloads_or_errors(records)
                frozen = [
                    None
                    if isinstance(data, mapping.MappingError)
                    else {
                        "request_body": wire.encode(
                            mapper.record_body(
                                vals["idempotency_key"], record, operation, changed, now, data
                            )
                        ).decode(),
                        "record_version": record.write_date,
                        "record_name": record.display_name,
                    }
                    for record, vals, data in zip(records, values, payloads, strict=True)
                ]
        except Exception as error:  # noqa: BLE001 - left to the delivery
            _logger.debug("api_sync: bodies left to their delivery (%s)", type(error).__name__)
            return
        for vals, made in zip(values, frozen, strict=True):
            if made:
                vals.update(made)

    def _capture_deletions(self, config, records, event_ids):
        """Per record, the log values that freeze its deletion event before it is removed.

        A record that cannot be mapped gets a failed log (the deletion itself goes on).
        """
        now = wire.utc_now()
        payloads = Mapper(config).payloads_or_errors(records)
        captured = []
        for record, event_id, data in zip(records, event_ids, payloads, strict=True):
            if isinstance(data, mapping.MappingError):
                captured.append(
                    {"state": "failed", "error_class": "MappingError", "error_message": str(data)}
                )
                continue
            body = wire.record_event(
                event_id, record._name, record.id, "delete", None, record.write_date, data, now
            )
            captured.append(
                {"request_body": wire.encode(body).decode(), "record_version": record.write_date}
            )
        return adapter_for(config).deletion_values(records, captured)

    # -- the events and their jobs, in one statement ---------------------------------------------

    def _insert(self, config, values_list, skip_conflicts=False, store_jobs=True, eta=None):
        """Insert the events ``values_list`` of ``config`` and one job per ``job_uuid`` they
        carry (delivering the events that carry it, or applying them for inbound events), in
        one statement; returns the events, in order. ``skip_conflicts``: an event whose unique
        keys are taken is not inserted, nor its job (the inbound URL's redeliveries).
        ``store_jobs``: False when the jobs exist (an inbound event joining a job not started).
        ``eta``: the jobs wait that many seconds (None: they run at once).

        ``create`` of a log and of its job would cost the writer two statements and the ORM's
        per-record work at every commit. This does what ``create`` does for these two models:
        the fields' defaults, the precomputed company, the log-access columns, the values
        queue_job's ``Job._store_values`` gives a new job, and the environment's cache kept in
        step (``_created_in_cache``). queue_job's trigger notifies its runner of the new jobs as
        for any insert. ``values_list`` holds stored column values only (no relational
        commands); fields left out get their default.
        """
        Log = self.env["api.sync.log"].sudo()
        if not values_list:
            return Log
        uid, now = self.env.uid, self.env.cr.now()
        defaults = {
            name: field.default(Log)
            for name, field in Log._fields.items()
            if field.store and field.column_type and field.default and name != "company_id"
        }
        rows = [
            {
                **defaults,
                **values,
                "company_id": config.company_id.id,
                **dict.fromkeys(("create_uid", "write_uid"), uid),
                **dict.fromkeys(("create_date", "write_date"), now),
            }
            for values in values_list
        ]
        columns = sorted({name for row in rows for name in row})
        job_uuids = dict.fromkeys(
            row["job_uuid"] for row in rows if row.get("job_uuid") and store_jobs
        )
        jobs = []
        for index, job_uuid in enumerate(job_uuids):
            group = [row for row in rows if row.get("job_uuid") == job_uuid]
            first = group[0]
            inbound = first.get("direction") == "inbound"
            if inbound:
                description = queue_jobs.inbound_description(config)
            else:
                description = queue_jobs.delivery_description(
                    len(group), first["res_model"], first.get("res_id"), first["operation"], config
                )
            jobs.append(
                queue_jobs.insert_sql(Log, job_uuid, description, f"job_{index}", inbound, eta)
            )
        self.env.cr.execute(
            SQL(
                "WITH logs AS (INSERT INTO api_sync_log (%s) VALUES %s %s RETURNING id, job_uuid)"
                "%s SELECT id FROM logs ORDER BY id",
                SQL(", ").join(map(SQL.identifier, columns)),
                SQL(", ").join(
                    tuple(
                        Log._fields[name].convert_to_column_insert(row.get(name), Log, row)
                        for name in columns
                    )
                    for row in rows
                ),
                SQL("ON CONFLICT DO NOTHING" if skip_conflicts else ""),
                SQL("").join(jobs),
            ),
            log_exceptions=not skip_conflicts,  # the caller handles a concurrent duplicate
        )
        logs = Log.browse([log_id for (log_id,) in self.env.cr.fetchall()])
        if len(logs) < len(rows):
            return logs  # some skipped: read from the database when needed
        _created_in_cache(logs, columns, rows)
        return logs


def _flush(env):
    """Precommit: create the events and jobs noted by ``Outbox.note``, grouped."""
    pending = env.cr.precommit.data.pop(PENDING_KEY, {})
    groups = defaultdict(list)
    for (config_id, record_id), (operation, changed) in pending.items():
        frozen = frozenset(changed) if changed else None
        groups[config_id, operation, frozen].append(record_id)
    # read from a cache: no query
    configs = env["api.sync.config"].sudo()._browse_for_commit({key[0] for key in groups})
    outbox = Outbox(env)
    for (config_id, operation, changed), record_ids in groups.items():
        config = configs.browse(config_id) & configs
        if not config:  # archived or deleted meanwhile
            continue
        records = config._archived_left_out(env[config.model_name].browse(record_ids))
        outbox.queue(
            config, records, operation, sorted(changed) if changed else None, False, final=True
        )
    env.flush_all()  # this runs after the transaction's last flush


def _created_in_cache(logs, columns, rows):
    """What ``create`` does after its insert: the new logs' values in cache, the fields
    depending on them marked as modified, the inverse one2many fields updated."""
    cache = logs.env.cache
    for name in columns:
        if name in LOG_ACCESS_COLUMNS:
            continue
        field = logs._fields[name]
        cache.update(logs, field, [field.convert_to_cache(row.get(name), logs) for row in rows])
    logs.modified([name for name in columns if name not in LOG_ACCESS_COLUMNS], create=True)
    for name in columns:
        field = logs._fields[name]
        if field.type == "many2one" and logs.pool.field_inverses[field]:
            by_value = {}
            for log, row in zip(logs, rows, strict=True):
                by_value.setdefault(row.get(name), []).append(log.id)
            for value, ids in by_value.items():
                field._update_inverses(logs.browse(ids), value)
