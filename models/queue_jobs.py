"""Every statement api_sync makes on OCA queue_job's tables, in one place.

queue_job keeps its ``Job`` logic in a plain class and stores jobs through the ``queue.job``
model; api_sync uses both as they are, and adds here what it needs beyond them, tested on every
supported queue_job release (tests/test_queue_jobs.py):

- storing the delivery jobs of new events in the same statement as the events (the writer's
  commit), with the values ``Job.store()`` would give them; the same for the job applying an
  inbound event (the inbound URL stores the event and its job in one statement);
- waking jobs waiting with an ``eta`` (a record's next event, an endpoint that answers again);
- finding jobs that will not run any more (their worker is gone), and claiming a running job;
- the watch's job (models/watch.py): storing it, whether one is due, dropping finished ones.

A delivery job holds a PostgreSQL advisory lock keyed by its queue_job id for as long as its
transaction lives: a ``started`` job whose lock is free has no worker any more (PostgreSQL
releases it when the worker's connection goes, whatever killed it). Taking that lock is also how
recovery claims a job, so a job and its recovery never both deliver.
"""

from collections import namedtuple

import psycopg2

from odoo.tools import SQL

from odoo.addons.queue_job.job import Job

from .constants import CHANNEL

JOB_LOCK_CLASS = 1634759545  # advisory lock namespace ("apsy"); the second key is queue_job.id
WATCH_LOCK = (JOB_LOCK_CLASS, 0)  # taken while deciding whether a watch is due (no job id is 0)
FINAL_JOB_STATES = ("done", "cancelled", "failed")
# the job's columns naming the logs it delivers: filled in once they are inserted (queue_job
# stores ``records`` as a JSON string holding the serialized recordset)
RECORDS_COLUMNS = ("records", "func_string")
# Jobs enqueued or started before these times whose worker is gone are lost (see ``lost_jobs``).
Grace = namedtuple("Grace", "enqueued started")
# api_sync's jobs, each holding its advisory lock while it runs: (model, method)
JOBS = """((j.model_name = 'api.sync.log'
             AND j.method_name IN ('_deliver', '_apply_inbound', '_watch'))
           OR (j.model_name = 'api.sync.run' AND j.method_name = '_advance'))"""
NO_WORKER = """NOT EXISTS (
        SELECT 1 FROM pg_locks AS k
         WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 2
           AND k.classid = %(lock_class)s::oid AND k.objid = j.id::oid
           AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database()))"""
GONE = f"""((j.state = 'enqueued' AND j.date_enqueued < %(enqueued)s)
            OR (j.state = 'started' AND j.date_started < %(started)s AND {NO_WORKER}))"""
LOST_JOBS = f"""
    SELECT l.id, l.job_uuid, j.id, j.state
      FROM api_sync_log AS l
      LEFT JOIN queue_job AS j ON j.uuid = l.job_uuid
     WHERE l.state = 'pending' AND (%(all)s OR l.id = ANY(%(ids)s))
       AND (j.id IS NULL OR j.state IN ('done', 'cancelled', 'failed') OR {GONE})
     ORDER BY l.id
"""
DEAD_JOBS = f"""
    SELECT j.id, j.uuid, j.model_name, j.method_name FROM queue_job AS j
     WHERE j.state IN ('enqueued', 'started') AND {JOBS} AND {GONE}
     ORDER BY j.id
"""


def delivery_description(count, res_model, res_id, operation, config):
    """The name of a job delivering ``count`` events of ``config`` (the event's record and
    operation when there is one)."""
    what = f"{count} events" if count > 1 else f"{res_model} #{res_id or ''} {operation}"
    return f"API sync: {what} ({config.name})"


def inbound_description(config):
    """The name of a job applying an inbound event of ``config``."""
    return f"API sync: inbound event ({config.name})"


def delivery_job(logs, job_uuid, description, eta=None, inbound=False):
    """The queue_job ``Job`` delivering ``logs`` (``inbound``: applying them; not stored)."""
    return Job(
        logs._apply_inbound if inbound else logs._deliver,
        job_uuid=job_uuid,
        eta=eta,
        max_retries=0,
        channel=CHANNEL,
        description=description,
    )


def store(logs, job_uuid, description, eta=None, inbound=False):
    """Store the job ``job_uuid`` (a new uuid) delivering ``logs`` (``inbound``: applying
    them), as ``Job.store()`` does for a job it does not find, without its lookup of the uuid
    (made just now): a query saved."""
    _create(logs.env, delivery_job(logs.sudo(), job_uuid, description, eta, inbound))


def _create(env, job):
    Jobs = env["queue.job"]
    Jobs.with_context(_job_edit_sentinel=Jobs.EDIT_SENTINEL).sudo().create(
        job._store_values(create=True)
    )


def insert_sql(Log, job_uuid, description, name, inbound=False, eta=None):
    """``, <name> AS (INSERT INTO queue_job ...)``: the job ``job_uuid`` stored as
    ``Job.store()`` would, delivering (``inbound``: applying) the rows of the CTE ``logs``
    (with ``id`` and ``job_uuid``) that carry that uuid, due at ``eta`` (seconds from now;
    None: at once); none when no row does (an insert that skipped a conflict). For
    ``Outbox._insert``."""
    job = delivery_job(Log.browse(), job_uuid, description, eta=eta, inbound=inbound)
    Jobs = Log.env["queue.job"]
    values = job._store_values(create=True)
    if Jobs._log_access:
        uid, now = Log.env.uid, Log.env.cr.now()
        values.update(create_uid=uid, write_uid=uid, create_date=now, write_date=now)
    columns = sorted(name for name in values if name not in RECORDS_COLUMNS)
    return SQL(
        """, %s AS (
            INSERT INTO queue_job (%s, records, func_string)
            SELECT %s,
                   to_jsonb(jsonb_set(
                       (%s::jsonb #>> '{}')::jsonb,
                       '{ids}',
                       to_jsonb(array_agg(logs.id ORDER BY logs.id))
                   )::text),
                   'api.sync.log(' || CASE count(*) WHEN 1 THEN min(logs.id) || ','
                        ELSE string_agg(logs.id::text, ', ' ORDER BY logs.id) END
                   || ')' || %s || '()'
              FROM logs WHERE logs.job_uuid = %s HAVING count(*) > 0)""",
        SQL.identifier(name),
        SQL(", ").join(map(SQL.identifier, columns)),
        SQL(", ").join(
            Jobs._fields[name].convert_to_column_insert(values[name], Jobs, values)
            for name in columns
        ),
        Jobs._fields["records"].convert_to_column_insert(values["records"], Jobs, values),
        f".{job.method_name}",
        job_uuid,
    )


def open_inbound_job(env, config_id, size):
    """The uuid of a job applying inbound events of ``config_id`` that has not started and
    applies fewer than ``size`` events, its row locked until this transaction ends: the job
    runner waits for the lock to start it, so the job sees what this transaction adds to it.
    None when there is none (or it is being started)."""
    cr = env.cr
    cr.execute(
        """SELECT job_uuid FROM api_sync_log
            WHERE config_id = %s AND direction = 'inbound' AND state = 'pending'
              AND job_uuid IS NOT NULL AND COALESCE(attempt_count, 0) = 0
            ORDER BY id DESC LIMIT 1""",
        (config_id,),
    )
    row = cr.fetchone()
    if not row:
        return None
    try:
        with cr.savepoint(flush=False):
            cr.execute(
                """SELECT job.uuid FROM queue_job AS job
                    WHERE job.uuid = %s AND job.state = 'pending' AND job.eta IS NULL
                      AND (SELECT count(*) FROM api_sync_log WHERE job_uuid = job.uuid) < %s
                      FOR UPDATE OF job SKIP LOCKED""",
                (row[0], size),
                log_exceptions=False,  # a job the runner started meanwhile: expected
            )
            found = cr.fetchone()
    except psycopg2.errors.SerializationFailure:
        return None
    return found[0] if found else None


def delay(records, description):
    """``records.with_delay()`` in api_sync's channel, retried without end (its jobs are
    idempotent): call the job's method on the result."""
    return records.with_delay(channel=CHANNEL, max_retries=0, description=description)


def claim_running_job(env, job_uuid):
    """In a job: hold its advisory lock until the transaction ends; False when recovery holds
    it (the job then leaves its work to the job that replaces it). True outside a job."""
    if not job_uuid:
        return True
    env.cr.execute(
        "SELECT pg_try_advisory_xact_lock(%s, id) FROM queue_job WHERE uuid = %s",
        (JOB_LOCK_CLASS, job_uuid),
    )
    row = env.cr.fetchone()
    return not row or row[0]


def claim_waiting_job(cr, job_uuid):
    """The job ``job_uuid`` claimed while no worker has it: its advisory lock held until the
    transaction ends; returns its user's id and the ids of the events linked to it, None when
    it is no longer pending, came due at its time (the runner's now: a fallback), or someone
    holds its lock. A job woken to run at once (the record's older event delivered) may be
    claimed: should the runner start it meanwhile, it finds the lock held and ends."""
    # the lock is taken in the select list, on the job's row alone: in the WHERE clause,
    # PostgreSQL may try it on rows the other conditions then leave out (other jobs' locks)
    cr.execute(
        """SELECT j.user_id, ARRAY(SELECT l.id FROM api_sync_log AS l
                                     WHERE l.job_uuid = j.uuid ORDER BY l.id),
                  pg_try_advisory_xact_lock(%s, j.id)
             FROM queue_job AS j
            WHERE j.uuid = %s AND j.state = 'pending'
              AND (j.eta IS NULL OR j.eta > statement_timestamp() AT TIME ZONE 'UTC')""",
        (JOB_LOCK_CLASS, job_uuid),
    )
    row = cr.fetchone()
    return row[:2] if row and row[2] else None


def lock_job_state(cr, job_uuid):
    """The state of the job ``job_uuid`` (None when it is gone), its row locked until the
    transaction ends."""
    cr.execute("SELECT state FROM queue_job WHERE uuid = %s FOR UPDATE", (job_uuid,))
    row = cr.fetchone()
    return row and row[0]


def wake_job(cr, job_uuid, seconds=None):
    """The job ``job_uuid``, while it waits for its time, runs now (or in ``seconds``);
    returns whether it was waiting."""
    cr.execute(
        """UPDATE queue_job
              SET eta = CASE WHEN %s::int IS NULL THEN NULL
                        ELSE (statement_timestamp() AT TIME ZONE 'UTC')
                             + make_interval(secs => %s::int) END
            WHERE uuid = %s AND state = 'pending'""",
        (seconds, seconds, job_uuid),
    )
    return bool(cr.rowcount)


def pending_events_of(cr, job_uuid):
    """Ids of the pending events still linked to the job ``job_uuid``, locked (those another
    transaction holds are left out)."""
    cr.execute(
        """SELECT id FROM api_sync_log WHERE job_uuid = %s AND state = 'pending'
            ORDER BY id FOR UPDATE SKIP LOCKED""",
        (job_uuid,),
    )
    return [row[0] for row in cr.fetchall()]


def lost_jobs(env, log_ids, grace, everywhere=False):
    """``{log id: (job uuid, job id, job state)}`` of the pending logs ``log_ids`` (or all of
    them) whose job is gone, final, or enqueued or started before ``grace`` (a ``Grace``) by
    a worker that is gone."""
    env["api.sync.log"].flush_model(["state", "job_uuid"])
    env["queue.job"].flush_model(["uuid", "state", "date_enqueued", "date_started"])
    env.cr.execute(LOST_JOBS, _params(grace, all=everywhere, ids=list(log_ids)))
    return {log_id: tuple(job) for log_id, *job in env.cr.fetchall()}


def dead_jobs(env, grace):
    """``[(job id, uuid, model, method)]`` of api_sync's jobs that hold a place in the job
    runner's channels (enqueued or started before ``grace``) while their worker is gone."""
    env["queue.job"].flush_model(["state", "date_enqueued", "date_started"])
    env.cr.execute(DEAD_JOBS, _params(grace))
    return env.cr.fetchall()


def _params(grace, **params):
    return {
        "enqueued": grace.enqueued,
        "started": grace.started,
        "lock_class": JOB_LOCK_CLASS,
        **params,
    }


def job_is_lost(env, job_id, grace):
    """Under lock: whether the job will not run (queue_job may have brought it back); takes
    its advisory lock when it was started (before ``grace``, a ``Grace``) by a worker that is
    gone."""
    env["queue.job"].flush_model(["state", "date_enqueued", "date_started"])
    cr = env.cr
    cr.execute(
        """SELECT state, date_enqueued, date_started FROM queue_job
            WHERE id = %s FOR UPDATE SKIP LOCKED""",
        (job_id,),
        log_exceptions=False,
    )
    row = cr.fetchone()
    if not row:
        return False  # being changed by someone else
    state, enqueued, started = row
    if state in FINAL_JOB_STATES:
        return True
    if state == "enqueued":
        return bool(enqueued and enqueued < grace.enqueued)
    if state != "started" or not started or started >= grace.started:
        return False
    cr.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (JOB_LOCK_CLASS, job_id))
    return cr.fetchone()[0]


# -- the watch (models/watch.py) ---------------------------------------------------------------

WATCH = "model_name = 'api.sync.log' AND method_name = '_watch'"  # as the partial index says
WATCH_INDEX = "api_sync_queue_job_watch_index"
CREATE_WATCH_INDEX = f"CREATE INDEX IF NOT EXISTS {WATCH_INDEX} ON queue_job (state) WHERE {WATCH}"
DROP_WATCH_INDEX = f"DROP INDEX IF EXISTS {WATCH_INDEX}"
DROP_FINISHED_WATCHES = f"DELETE FROM queue_job WHERE {WATCH} AND state IN ('done', 'cancelled')"
WATCH_DUE = f"""
    SELECT min(COALESCE(eta, now() AT TIME ZONE 'UTC')) FROM queue_job
     WHERE {WATCH} AND uuid IS DISTINCT FROM %s
       AND (state = 'pending' OR (state = 'enqueued' AND date_enqueued > %s))
"""
WORK_IN_FLIGHT = f"""
    SELECT EXISTS (
        SELECT 1 FROM queue_job AS j
         WHERE j.state IN ('pending', 'enqueued', 'started') AND {JOBS}
           AND j.method_name != '_watch'
           AND (j.state != 'pending' OR j.eta IS NULL OR j.eta < %s))
"""


def create_watch_index(cr):
    """A partial index of the watch's jobs (two or three rows): looking for them every few
    seconds costs the same however many jobs queue_job's table keeps."""
    cr.execute(CREATE_WATCH_INDEX)


def forget_api_sync_jobs(cr):
    """At api_sync's uninstallation: its jobs (their models are gone) and the watch's index."""
    cr.execute("DELETE FROM queue_job WHERE model_name IN ('api.sync.log', 'api.sync.run')")
    cr.execute(DROP_WATCH_INDEX)


def store_watch(env, method, eta, description, priority):
    """Store the watch's job: ``method`` (bound to an empty recordset), in the root channel
    (outside api_sync's, whose places dead jobs may hold), due at ``eta``."""
    job = Job(
        method,
        eta=eta,
        max_retries=0,
        channel="root",
        description=description,
        priority=priority,
    )
    _create(env, job)


def lock_watches(cr):
    """Until the transaction ends, nobody else decides whether a watch is due."""
    cr.execute("SELECT pg_advisory_xact_lock(%s, %s)", WATCH_LOCK)


def watch_due(cr, enqueued_after, but=None):
    """When the next watch is due (one waiting, or enqueued after ``enqueued_after`` and not
    started yet), other than the job ``but``; None when there is none."""
    cr.execute(WATCH_DUE, (but, enqueued_after))
    return cr.fetchone()[0]


def work_in_flight(cr, ready_before):
    """Whether api_sync has a job (the watch's aside) enqueued, started, or waiting for a
    place in its channel to run before ``ready_before``."""
    cr.execute(WORK_IN_FLIGHT, (ready_before,))
    return cr.fetchone()[0]


def drop_finished_watches(cr):
    """The watch jobs that ended leave queue_job's table (one is stored every few seconds)."""
    cr.execute(DROP_FINISHED_WATCHES)


def wake_endpoint_jobs(cr, config_id, now):
    """The jobs of ``config_id``'s pending events waiting past ``now`` run now (best effort:
    jobs being changed by the job runner are skipped and wake at their own time)."""
    cr.execute(
        """UPDATE queue_job SET eta = NULL
            WHERE id IN (
                SELECT job.id FROM queue_job AS job
                  JOIN api_sync_log AS log ON log.job_uuid = job.uuid
                 WHERE log.config_id = %s AND log.state = 'pending'
                   AND job.state = 'pending' AND job.eta > %s
                   FOR UPDATE OF job SKIP LOCKED)""",
        (config_id, now),
    )


def wake_next_events(env, log_ids):
    """The job of the next pending event of each record of the events ``log_ids`` (over now)
    runs now, unless that event waits in a retry backoff of its own. A job the runner just
    took runs anyway: raises SerializationFailure on a conflict, for the caller to ignore."""
    env.cr.execute(
        """UPDATE queue_job SET eta = NULL WHERE id IN (
               SELECT j.id FROM queue_job AS j
                 JOIN (SELECT DISTINCT ON (n.config_id, n.res_id)
                              n.job_uuid, n.next_retry_at
                         FROM api_sync_log AS n
                         JOIN api_sync_log AS o ON o.config_id = n.config_id
                          AND o.res_id = n.res_id AND n.id > o.id
                        WHERE o.id = ANY(%s) AND n.state = 'pending'
                        ORDER BY n.config_id, n.res_id, n.id) AS nxt
                   ON nxt.job_uuid = j.uuid
                WHERE j.state = 'pending' AND j.eta IS NOT NULL
                  AND nxt.next_retry_at IS NULL  -- not in a backoff of its own
                FOR UPDATE OF j SKIP LOCKED)""",
        (list(log_ids),),
        log_exceptions=False,
    )
    env["queue.job"].invalidate_model(["eta"])
