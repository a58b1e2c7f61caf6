"""Delivery at commit: the server that saved a change sends its event right after the commit,
without waiting for the job runner.

A save's event is delivered by a queue_job job of its own. Between the writer's commit and that
job's start lies queue_job's dispatch: its runner hears the new job, marks it enqueued, asks a
server over HTTP to run it, and a worker marks it started and commits. That is about half of the
delay from a save to the other side's answer (BENCHMARKS.md, part 4). With the setting
``api_sync.deliver_at_commit`` (Settings > API Sync), the saving process does it itself:

1. while queuing (``Outbox.queue``), the one job of a change is stored as usual, in the same
   statement as its events, but due a little later (``FALLBACK_SECONDS``): it is the fallback;
2. once the transaction has committed, a thread of the same process (one per process, which
   delivers what the process's commits hand it in turn) runs that job in place (``deliver``):
   the job's advisory lock, then the same recipe as a job (``Delivery``), in one transaction;
   then the job marked done, in another;
3. when it cannot (``MAX_QUEUED`` jobs already waiting for that thread, one waiting longer
   than ``MAX_WAIT_SECONDS``, the job's events held by another delivery, an endpoint to wait
   for, anything unexpected), the job is given back to the runner: due now, or when the
   delivery asked to try again.

Nothing is lost or sent twice on the way: should the process die before the delivery commits,
its transaction is rolled back and the job, still pending, runs at its time on any server; should
it die after, before the job is marked done, that run finds the events done. The runner never
takes the job before its time, and the thread never claims a job that is due. A job
the runner took while the thread delivered it (a delivery longer than ``FALLBACK_SECONDS``)
finds the job's lock held and ends; the events the thread then leaves pending are queued again
(``give_back``). Transactions that queue several jobs (a bulk change, a manual sync of many
records) keep the runner: what they queue goes faster in parallel jobs.

What this costs: each server process may run one delivery besides the job runner's channels
(``root.api_sync`` no longer bounds how many deliveries run at once), in the process that saved.
"""

import logging
import os
import threading
import time
from collections import defaultdict, deque
from functools import partial

import psycopg2

from odoo import SUPERUSER_ID, api, fields
from odoo.modules.registry import Registry

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job

from . import queue_jobs
from .delivery import Delivery
from .transactions import own_cursor

_logger = logging.getLogger(__name__)

PARAM = "api_sync.deliver_at_commit"  # ir.config_parameter, set in Settings
FALLBACK_SECONDS = 30  # when the job runner runs a job this process did not deliver
MAX_WAIT_SECONDS = 2  # a job waiting longer for this process's thread goes to the runner
HANDED_KEY = "api_sync.at_commit"  # in cr.postcommit.data: the uuids of the jobs handed over
MAX_JOBS = 4  # jobs of one transaction delivered at commit (one per configuration changed)
MAX_QUEUED = 8  # jobs waiting for this process's thread, at the most (others: the runner's)
THREAD_NAME = "api_sync at commit"
LINGER_SECONDS = 2  # the thread waits that long for the next job before it ends
CRON_CONTEXT_KEY = "ir_cron_progress_id"  # set by ir.cron on what its jobs run (18.0, 19.0)


class AtCommit:
    """The jobs of one process delivered at commit (see the module's docstring): a queue of
    jobs handed over by the commits of this process, and the thread delivering them in turn,
    started when the first arrives and gone when none is left."""

    _ready = threading.Condition()  # guards the two below; notified when a job is queued
    # (database name, job uuid, when) handed over, not delivered yet
    _queue = deque()
    _running = False  # whether the thread is running

    @classmethod
    def take(cls, env, job_uuids):
        """While queuing the jobs ``job_uuids`` of one change: the ``eta`` (seconds) to store
        them with when this process delivers them after the commit, else None (the runner's,
        as usual). Not while modules load (the server may fork workers next), nor in a
        scheduled action (no user waits; a cron worker serving several databases closes their
        connections after each pass, a delivery's included)."""
        if len(job_uuids) != 1 or len(cls._queue) >= MAX_QUEUED or not cls.enabled(env):
            return None
        if not env.registry.ready or env.context.get(CRON_CONTEXT_KEY):
            return None
        handed = env.cr.postcommit.data.get(HANDED_KEY)
        if handed is None:
            handed = env.cr.postcommit.data[HANDED_KEY] = []
            env.cr.postcommit.add(partial(cls._start, env.cr.dbname, handed))
        if len(handed) >= MAX_JOBS:
            return None
        handed.extend(job_uuids)
        return FALLBACK_SECONDS

    @staticmethod
    def enabled(env):
        """Whether Settings ask for delivery at commit (a cached read: no query)."""
        return bool(env["ir.config_parameter"].sudo().get_param(PARAM))

    @classmethod
    def _start(cls, dbname, job_uuids):
        """Postcommit: the jobs ``job_uuids`` queued for this process's thread (started if it
        is not running), or given back to the runner when the queue is full meanwhile or no
        thread can be started. Raises nothing the writer would see."""
        start, returned = False, [(dbname, job_uuid) for job_uuid in job_uuids]
        with cls._ready:
            if len(cls._queue) + len(job_uuids) <= MAX_QUEUED:
                now = time.monotonic()
                cls._queue.extend((dbname, job_uuid, now) for job_uuid in job_uuids)
                start, cls._running, returned = not cls._running, True, []
                cls._ready.notify()
        if start:
            try:
                threading.Thread(target=cls._run, name=THREAD_NAME).start()
            except Exception as error:  # noqa: BLE001 - no thread to be had (a process limit)
                # raising would fail a postcommit: the writer's save is done
                _logger.warning(
                    "api_sync: no thread to deliver at commit (%s): jobs given back to the "
                    "job runner",
                    type(error).__name__,
                )
                with cls._ready:  # all of them: other commits may have queued some meanwhile
                    cls._running = False
                    returned = [(queued_db, job_uuid) for queued_db, job_uuid, _ in cls._queue]
                    cls._queue.clear()
        for queued_db, job_uuid in returned:
            give_back(Registry(queued_db), job_uuid)

    @classmethod
    def _forget(cls):
        """In a process just forked (a server's new worker): nothing queued, no thread; what
        the parent had queued is the parent's to deliver."""
        cls._ready = threading.Condition()
        cls._queue = deque()
        cls._running = False

    @classmethod
    def _run(cls):
        """The thread: each job queued delivered in a transaction of its own, in turn, until
        none is left for ``LINGER_SECONDS``. A process that ends waits for it (not a daemon
        thread). The endpoint's pass of a delivery serves the next ones for a moment, as the
        deliveries of one job share it (``Delivery._gate``)."""
        gates = defaultdict(dict)  # {database name: {config id: Gate}}
        while True:
            with cls._ready:
                if not cls._queue:
                    cls._ready.wait(LINGER_SECONDS)
                if not cls._queue:
                    cls._running = False
                    return
                dbname, job_uuid, queued_at = cls._queue.popleft()
            try:
                if time.monotonic() - queued_at > MAX_WAIT_SECONDS:  # a slow endpoint before
                    give_back(Registry(dbname), job_uuid)
                    continue
                deliver_in_transaction(Registry(dbname), job_uuid, gates[dbname])
                # only a healthy endpoint's pass serves the next ones (while it lasts): a
                # delivery waiting for its endpoint looks at its state again
                for config_id, gate in list(gates[dbname].items()):
                    if gate.wait_until or not gate.reusable_until:
                        del gates[dbname][config_id]
            except Exception as error:  # noqa: BLE001 - the job keeps its time: the runner's
                _logger.warning(
                    "api_sync: job %s not delivered at commit (%s)", job_uuid, type(error).__name__
                )


os.register_at_fork(after_in_child=AtCommit._forget)


def deliver_in_transaction(registry, job_uuid, gates=None):
    """Deliver the job ``job_uuid`` in a transaction of its own (committed when it ends), then
    mark the job done in another; on any failure the job goes back to the job runner.
    ``gates``: see ``Delivery``."""
    try:
        with registry.cursor() as cr:
            started = deliver(api.Environment(cr, SUPERUSER_ID, {}), job_uuid, gates)
    except RetryableJobError as error:  # a conflict, an endpoint to wait for: rolled back
        give_back(registry, job_uuid, error.seconds)
    except psycopg2.Error as error:  # a concurrency conflict, most likely
        _logger.info(
            "api_sync: job %s not delivered at commit (%s): given back to the job runner",
            job_uuid,
            type(error).__name__,
        )
        give_back(registry, job_uuid)
    except Exception as error:  # noqa: BLE001 - the job runner runs the job and records why
        _logger.warning(
            "api_sync: job %s not delivered at commit (%s): given back to the job runner",
            job_uuid,
            type(error).__name__,
        )
        give_back(registry, job_uuid)
    else:
        if started:
            mark_done(registry, job_uuid, started)


def deliver(env, job_uuid, gates=None):
    """Deliver the events of the job ``job_uuid`` here, in ``env``'s transaction, as its worker
    would: its advisory lock, its events (``Delivery``). Returns when it started (for
    ``mark_done``, once this transaction has committed), None when it did not run: the job is
    no longer waiting for its time (the runner took it) or another delivery holds its lock.
    Raises what the delivery raises (``RetryableJobError`` included).

    Before the request, as few statements as can be: the job claimed and its events found in
    one (their bodies were made at the commit: ``Outbox._freeze``). The job's row is not
    written here: the runner may change it meanwhile (waking it, taking it once due), which,
    under this transaction's snapshot, would fail the delivery after its request."""
    claimed = queue_jobs.claim_waiting_job(env.cr, job_uuid)
    if not claimed:
        return None
    user_id, log_ids = claimed
    started = fields.Datetime.now()
    # as its user, as queue_job runs it; the job is still pending: should this process die,
    # it runs at its time, and finds the events this transaction committed done
    env = env(user=user_id, su=True)
    Delivery(env["api.sync.log"].browse(log_ids), job_uuid, claimed=True, gates=gates).run()
    return started


def mark_done(registry, job_uuid, started):
    """After the delivery's commit: the job ``job_uuid`` done, as its worker would mark it,
    unless the runner took it meanwhile (its run finds the events done)."""
    try:
        with own_cursor(registry) as cr:
            if queue_jobs.lock_job_state(cr, job_uuid) != "pending":
                return
            job = Job.load(api.Environment(cr, SUPERUSER_ID, {}), job_uuid)
            job.set_started()
            job.date_started = started
            job.set_done(result=f"delivered at commit by process {job.worker_pid}")
            job.store()
    except psycopg2.Error as error:  # the job runs at its time and finds nothing left to do
        _logger.info(
            "api_sync: job %s delivered at commit, left pending (%s)",
            job_uuid,
            type(error).__name__,
        )


def give_back(registry, job_uuid, seconds=None):
    """The job ``job_uuid``, still waiting for its time, runs now (or in ``seconds``) through
    the job runner. When the runner took it meanwhile (it came due, or was woken, while this
    process held it), the events left pending that no delivery holds are queued again in a new
    job (the same event ids): its run may have found the job's lock held and ended, and
    nothing waits for a recovery. Should that run deliver them after all, one of the two finds
    them done or no longer its own."""
    try:
        with own_cursor(registry) as cr:
            if queue_jobs.wake_job(cr, job_uuid, seconds):
                return
            env = api.Environment(cr, SUPERUSER_ID, {})
            left = env["api.sync.log"].browse(queue_jobs.pending_events_of(cr, job_uuid))
            left._enqueue(eta=seconds)
    except psycopg2.Error:  # changed meanwhile: the job, or the recovery, runs them
        _logger.info("api_sync: job %s left to the job runner", job_uuid)
