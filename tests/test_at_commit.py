"""Delivery at commit (models/at_commit.py): with the setting on, the process that saved a change
delivers its job right after the commit; the job, stored as usual but due a little later, is
the fallback, and goes back to the job runner whenever this process cannot deliver it."""

import datetime
import json
import threading
import time
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from ..engine import wire
from ..engine.receiver import Receiver
from ..models import compat, queue_jobs
from ..models.at_commit import (
    CRON_CONTEXT_KEY,
    FALLBACK_SECONDS,
    HANDED_KEY,
    MAX_QUEUED,
    MAX_WAIT_SECONDS,
    PARAM,
    THREAD_NAME,
    AtCommit,
    deliver,
    deliver_in_transaction,
    give_back,
    mark_done,
)
from ..models.delivery import Delivery
from ..models.mapper import Mapper
from ..models.queue_jobs import JOB_LOCK_CLASS
from .common import CommittedEventsCase
from .delivery_common import DeliveryCase, LoopbackRequests, TriggerModeSetup


@tagged("post_install", "-at_install")
class TestDeliveryAtCommit(DeliveryCase):
    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].sudo().set_param(PARAM, "True")

    def queue_event(self, name="Cora Commit"):
        partner = self.env["res.partner"].create({"name": name, "email": "cora@example.com"})
        log = self.Config.sync_record(partner, "update", ["name"])
        self.env.flush_all()
        return log, self.env["queue.job"].search([("uuid", "=", log.job_uuid)])

    def handed(self):
        return self.env.cr.postcommit.data.get(HANDED_KEY, [])

    def hand_over(self, *job_uuids):
        """What the postcommit does: the jobs queued for this process's thread, which is then
        waited for."""
        with compat.test_cursors_for_threads():
            if job_uuids:
                AtCommit._start(self.env.cr.dbname, list(job_uuids))
            elif AtCommit._queue:
                AtCommit._running = True
                threading.Thread(target=AtCommit._run, name=THREAD_NAME).start()
            for thread in threading.enumerate():
                if thread.name == THREAD_NAME:
                    thread.join(30)

    def fill_queue(self):
        """As while this process's thread delivers what other commits handed it."""
        waiting = [("elsewhere", str(n), time.monotonic()) for n in range(MAX_QUEUED)]
        AtCommit._queue.extend(waiting)
        self.addCleanup(AtCommit._queue.clear)

    def assertDueIn(self, job, seconds):
        job.invalidate_recordset()
        expected = fields.Datetime.now() + datetime.timedelta(seconds=seconds)
        self.assertAlmostEqual(job.eta, expected, delta=datetime.timedelta(seconds=2))

    def test_off_the_job_runs_at_once(self):
        self.env["ir.config_parameter"].sudo().set_param(PARAM, False)
        _log, job = self.queue_event()
        self.assertFalse(job.eta)
        self.assertFalse(self.handed())

    def test_the_saving_process_delivers_the_event_after_its_commit(self):
        log, job = self.queue_event()
        self.assertEqual(self.handed(), [log.job_uuid], "handed to this process at commit")
        self.assertDueIn(job, FALLBACK_SECONDS)  # the fallback: the runner leaves it until then
        started = deliver(self.env, log.job_uuid)
        self.assertTrue(started)
        with compat.test_cursors_for_threads():  # its own transaction, after the commit
            mark_done(self.env.registry, log.job_uuid, started)
        self.env.invalidate_all()
        self.assertEqual(log.state, "done")
        (request,) = self.receiver.received
        body = request.json
        self.assertEqual(body["id"], log.idempotency_key)
        self.assertEqual(body["data"]["name"], "Cora Commit")
        self.assertEqual(job.state, "done")
        self.assertTrue(job.date_started and job.date_done)
        self.assertIn("delivered at commit", job.result)
        self.assertFalse(deliver(self.env, log.job_uuid), "once")
        self.assertEqual(len(self.receiver.received), 1)

    def test_the_postcommit_thread_delivers_the_jobs_in_turn_and_ends(self):
        first, _job = self.queue_event()
        second, _job = self.queue_event("Cora Second")
        self.hand_over(first.job_uuid, second.job_uuid)
        self.env.invalidate_all()
        self.assertEqual((first.state, second.state), ("done", "done"))
        names = [request.json["data"]["name"] for request in self.receiver.received]
        self.assertEqual(names, ["Cora Commit", "Cora Second"], "in the order of the commits")
        self.assertFalse(AtCommit._running or AtCommit._queue, "the thread ended")

    def test_a_job_the_runner_took_is_left_to_it(self):
        log, job = self.queue_event()
        job.write({"state": "enqueued", "date_enqueued": fields.Datetime.now()})
        self.env.flush_all()
        self.assertFalse(deliver(self.env, log.job_uuid))
        self.assertFalse(self.receiver.received)
        self.assertEqual(log.state, "pending")
        job.invalidate_recordset()
        self.assertEqual(job.state, "enqueued")

    def test_a_job_come_due_is_left_to_the_runner(self):
        log, job = self.queue_event()
        job.eta = fields.Datetime.now() - datetime.timedelta(seconds=1)  # its fallback time
        self.env.flush_all()
        self.assertFalse(deliver(self.env, log.job_uuid), "the runner is taking it")
        self.assertFalse(self.receiver.received)

    def held_job_locks(self):
        """Ids of the jobs whose advisory lock this transaction holds."""
        self.env.cr.execute(
            """SELECT objid::int FROM pg_locks WHERE locktype = 'advisory' AND granted
                  AND classid = %s::oid AND objsubid = 2 AND pid = pg_backend_pid()""",
            (JOB_LOCK_CLASS,),
        )
        return {row[0] for row in self.env.cr.fetchall()}

    def test_claiming_a_job_locks_that_job_alone(self):
        _other, other_job = self.queue_event("Other Job")
        due, due_job = self.queue_event("Due Job")
        due_job.eta = fields.Datetime.now() - datetime.timedelta(seconds=1)
        log, job = self.queue_event()
        self.env.flush_all()
        before = self.held_job_locks()
        # whatever plan PostgreSQL picks (a sequential scan evaluates every condition of rows
        # that do not match)
        self.env.cr.execute("SET LOCAL enable_indexscan = off")
        self.env.cr.execute("SET LOCAL enable_bitmapscan = off")
        self.assertFalse(queue_jobs.claim_waiting_job(self.env.cr, due.job_uuid), "due")
        self.assertTrue(queue_jobs.claim_waiting_job(self.env.cr, log.job_uuid))
        self.assertEqual(self.held_job_locks() - before, {job.id})
        self.assertNotIn(other_job.id, self.held_job_locks())

    def test_a_job_that_waited_too_long_for_the_thread_goes_to_the_runner(self):
        log, job = self.queue_event()
        long_ago = time.monotonic() - MAX_WAIT_SECONDS - 1
        AtCommit._queue.append((self.env.cr.dbname, log.job_uuid, long_ago))
        self.addCleanup(AtCommit._queue.clear)
        self.hand_over()  # the thread starts with the next commit's job: none here
        job.invalidate_recordset()
        self.assertFalse(job.eta, "the runner runs it now")
        self.assertEqual(log.state, "pending")
        self.assertFalse(self.receiver.received)

    def test_events_left_by_a_job_the_runner_ended_are_queued_again(self):
        log, job = self.queue_event()
        # it came due while this process delivered it: the runner found its lock held, and
        # ended it; this process's delivery then waits for the endpoint
        job.write({"state": "done", "date_done": fields.Datetime.now()})
        self.env.flush_all()
        give_back(self.env.registry, log.job_uuid, 3)
        self.env.invalidate_all()
        self.assertEqual(log.state, "pending")
        self.assertNotEqual(log.job_uuid, job.uuid)
        new_job = self.env["queue.job"].search([("uuid", "=", log.job_uuid)])
        self.assertEqual(new_job.state, "pending")
        self.assertDueIn(new_job, 3)
        self.assertEqual(log.recovery_count, 0, "no recovery: nothing was lost")

    def test_events_of_a_job_the_runner_took_meanwhile_are_queued_again(self):
        """Its run may have found the job's lock held by this process and ended: the events
        get a new job at once (the run that delivers them second finds them done, or not its
        own), rather than waiting for the recovery."""
        log, job = self.queue_event()
        job.write({"state": "enqueued", "date_enqueued": fields.Datetime.now()})
        self.env.flush_all()
        give_back(self.env.registry, log.job_uuid)
        self.env.invalidate_all()
        self.assertNotEqual(log.job_uuid, job.uuid)
        new_job = self.env["queue.job"].search([("uuid", "=", log.job_uuid)])
        self.assertEqual((new_job.state, new_job.eta), ("pending", False))
        self.assertEqual(log.recovery_count, 0)

    def test_a_full_queue_leaves_the_next_changes_to_the_runner(self):
        self.fill_queue()
        _log, job = self.queue_event()
        self.assertFalse(job.eta, "queued as usual")
        self.assertFalse(self.handed())

    def test_a_queue_full_by_the_commit_gives_the_job_back_at_once(self):
        log, job = self.queue_event()
        self.fill_queue()  # other commits of this process were quicker
        AtCommit._start(self.env.cr.dbname, [log.job_uuid])
        job.invalidate_recordset()
        self.assertFalse(job.eta, "the runner runs it now")
        self.assertFalse(self.receiver.received)

    def test_no_thread_to_be_had_gives_the_job_back_and_fails_no_commit(self):
        """A postcommit hook that raises would show the writer an error after its commit:
        without a thread, the job goes to the runner at once and the next commit tries again."""
        log, job = self.queue_event()
        with (
            patch.object(threading.Thread, "start", side_effect=RuntimeError("can't start")),
            self.assertLogs("odoo.addons.api_sync.models.at_commit", "WARNING") as logged,
        ):
            AtCommit._start(self.env.cr.dbname, [log.job_uuid])
        self.assertIn("RuntimeError", logged.output[0])
        self.assertFalse(AtCommit._running or AtCommit._queue, "nothing left behind")
        job.invalidate_recordset()
        self.assertFalse(job.eta, "the runner runs it now")
        self.assertEqual((log.state, job.state), ("pending", "pending"))

    def test_thread_start_failures_of_any_kind_are_caught(self):
        log, job = self.queue_event()
        with (
            patch.object(threading.Thread, "start", side_effect=MemoryError()),
            self.assertLogs("odoo.addons.api_sync.models.at_commit", "WARNING"),
        ):
            AtCommit._start(self.env.cr.dbname, [log.job_uuid])
        self.assertFalse(AtCommit._running)
        job.invalidate_recordset()
        self.assertFalse(job.eta, "the runner runs it now")

    def test_not_while_modules_load_nor_in_scheduled_actions(self):
        """A server loading modules may fork its workers next (the thread and its connection
        are not theirs); a scheduled action's changes keep the runner (no user waits, and a
        cron worker serving several databases closes their connections after each pass)."""
        with patch.object(self.env.registry, "ready", False):
            _log, job = self.queue_event("While Loading")
        self.assertFalse(job.eta)
        self.assertFalse(self.handed())
        cron_env = self.env(context={**self.env.context, CRON_CONTEXT_KEY: 1})
        partner = cron_env["res.partner"].create({"name": "By Cron"})
        log = self.Config.with_env(cron_env).sync_record(partner, "update", ["name"])
        self.env.flush_all()
        self.assertFalse(self.env["queue.job"].search([("uuid", "=", log.job_uuid)]).eta)
        self.assertFalse(self.handed())

    def test_a_forked_process_starts_with_nothing_queued(self):
        condition = AtCommit._ready
        AtCommit._queue.append((self.env.cr.dbname, "parent's", time.monotonic()))
        AtCommit._running = True
        self.addCleanup(AtCommit._forget)
        AtCommit._forget()  # what os.fork() runs in the child
        self.assertFalse(AtCommit._queue or AtCommit._running)
        self.assertIsNot(AtCommit._ready, condition, "a lock the parent may hold is not its")

    def test_only_settings_administrators_switch_it(self):
        admin = new_test_user(self.env, "at_commit_admin", groups="base.group_system")
        manager = new_test_user(
            self.env, "at_commit_manager", groups="api_sync.group_api_sync_manager"
        )
        Param = self.env["ir.config_parameter"].sudo()
        Param.set_param(PARAM, False)
        Settings = self.env["res.config.settings"]
        self.assertFalse(Settings.with_user(admin).create({}).api_sync_deliver_at_commit)
        self.assertNotIn("api_sync_deliver_at_commit", Settings.with_user(manager).fields_get())
        with self.assertRaises(AccessError):
            Settings.with_user(manager).create({"api_sync_deliver_at_commit": True}).execute()
        self.assertFalse(Param.get_param(PARAM))
        Settings.with_user(admin).create({"api_sync_deliver_at_commit": True}).execute()
        self.assertEqual(Param.get_param(PARAM), "True")
        _log, job = self.queue_event()
        self.assertDueIn(job, FALLBACK_SECONDS)

    def test_many_jobs_of_one_change_keep_the_runner(self):
        partners = self.env["res.partner"].create([{"name": f"Bulk {n}"} for n in range(5)])
        with patch.object(type(self.config), "_records_per_job", return_value=2):
            logs = self.Config.sync_record(partners, "update", ["name"])
        self.env.flush_all()
        jobs = self.env["queue.job"].search([("uuid", "in", logs.mapped("job_uuid"))])
        self.assertEqual(len(jobs), 3)
        self.assertFalse(any(jobs.mapped("eta")), "in parallel through the runner")
        self.assertFalse(self.handed())

    def test_a_paused_endpoint_gives_the_job_back_for_its_probe(self):
        until = fields.Datetime.add(fields.Datetime.now(), seconds=600)
        self.env["api.sync.endpoint.state"].sudo().create(
            {"config_id": self.config.id, "state": "paused", "paused_until": until}
        )
        log, job = self.queue_event()
        self.hand_over(log.job_uuid)
        self.env.invalidate_all()
        self.assertFalse(self.receiver.received)
        self.assertEqual((log.state, log.attempt_count, job.state), ("pending", 0, "pending"))
        self.assertEqual(log.job_uuid, job.uuid, "the same job waits")
        self.assertGreaterEqual(job.eta, until - datetime.timedelta(seconds=1))

    def test_a_failing_delivery_goes_back_to_the_runner_now(self):
        log, job = self.queue_event()
        with (
            patch.object(Delivery, "run", side_effect=ValueError("mapping broke")),
            self.assertLogs("odoo.addons.api_sync.models.at_commit", "WARNING") as logged,
        ):
            self.hand_over(log.job_uuid)
        self.assertIn("given back to the job runner", logged.output[0])
        self.assertNotIn("mapping broke", "".join(logged.output), "the runner records why")
        self.env.invalidate_all()
        self.assertEqual((log.state, job.state), ("pending", "pending"))
        self.assertFalse(job.eta, "the runner runs it now, and records the failure")


class AtCommitModeCases(TriggerModeSetup):
    """What a save queues at its commit with Deliver at Commit on, in each trigger mode."""

    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].sudo().set_param(PARAM, "True")

    def committed(self, partner_values):
        partner = self.env["res.partner"].create(partner_values)
        self.env.cr.flush()  # what runs just before the commit
        return partner, self.Log.search([("res_id", "=", partner.id)])

    def test_the_body_is_made_at_the_commit_and_sent_as_made(self):
        partner, log = self.committed({"name": "Frozen Fay", "email": "fay@example.com"})
        self.assertEqual(log.operation, "create")
        body = json.loads(log.request_body)
        self.assertEqual(body["id"], log.idempotency_key)
        self.assertEqual(body["data"], {"name": "Frozen Fay", "email": "fay@example.com"})
        self.assertEqual(body["timestamp"], wire.iso_datetime(log.create_date))
        self.assertEqual((log.record_name, log.record_version), ("Frozen Fay", partner.write_date))
        self.assertEqual(self.handed(), [log.job_uuid])
        self.assertTrue(deliver(self.env, log.job_uuid))
        self.env.invalidate_all()
        (request,) = self.receiver.received
        self.assertEqual(request.body.decode(), log.request_body, "sent as made")
        self.assertEqual(log.state, "done")

    def test_a_later_change_gets_an_event_of_its_own(self):
        partner, first = self.committed({"name": "Once", "email": "once@example.com"})
        partner.name = "Twice"
        self.env.cr.flush()
        second = self.Log.search([("res_id", "=", partner.id)]) - first
        self.assertEqual(second.operation, "update", "not folded into the frozen creation")
        self.assertEqual(json.loads(first.request_body)["data"]["name"], "Once")
        self.assertEqual(json.loads(second.request_body)["data"]["name"], "Twice")
        self.assertEqual(self.handed(), [first.job_uuid, second.job_uuid])
        # the process delivers them in order; should it not, the runner does
        for log in (first, second):
            self.assertTrue(deliver(self.env, log.job_uuid))
        self.env.invalidate_all()
        names = [request.json["data"]["name"] for request in self.receiver.received]
        self.assertEqual(names, ["Once", "Twice"])
        self.assertEqual((first.state, second.state), ("done", "done"))

    def test_a_body_that_fails_to_be_made_is_left_to_its_delivery(self):
        """Anything failing while the body is made at the commit (a computed field raising, a
        query failing) fails neither the save nor its transaction: the delivery records why."""

        def broken(mapper, records):
            self.env.cr.execute("SELECT 1 / 0", log_exceptions=False)  # aborts the transaction

        with patch.object(Mapper, "payloads_or_errors", broken):
            _partner, log = self.committed({"name": "Cannot Freeze"})
        self.env.cr.execute("SELECT 1")  # the transaction goes on
        self.assertEqual(log.state, "pending")
        self.assertFalse(log.request_body, "made by its delivery")
        self.assertTrue(deliver(self.env, log.job_uuid))
        self.env.invalidate_all()
        self.assertEqual(log.state, "done")
        self.assertEqual(self.receiver.received[0].json["data"]["name"], "Cannot Freeze")

    @mute_logger("odoo.addons.api_sync.models.api_sync_log")  # the failure, logged
    def test_a_record_that_cannot_be_mapped_is_left_to_its_delivery(self):
        self.config.mapping_ids.filtered(lambda line: line.source_path == "email").required = True
        _partner, log = self.committed({"name": "Unmapped"})
        self.assertFalse(log.request_body, "made by its delivery, which records why")
        self.assertTrue(deliver(self.env, log.job_uuid))
        self.assertEqual(log.state, "failed")
        self.assertIn("'email'", log.error_message)
        self.assertFalse(self.receiver.received)

    def handed(self):
        return self.env.cr.postcommit.data.get(HANDED_KEY, [])


@tagged("post_install", "-at_install")
class TestAtCommitWithRules(AtCommitModeCases, DeliveryCase):
    mode = "rules"


@tagged("post_install", "-at_install")
class TestAtCommitWithListener(AtCommitModeCases, DeliveryCase):
    mode = "listener"


@tagged("post_install", "-at_install")
class TestAtCommitMeetingTheRunner(LoopbackRequests, CommittedEventsCase):
    """The runner changes the job's row while the thread delivers it (it wakes the job for an
    older event done, or takes it once due): the delivery, whose request went out, stays
    committed, and no ERROR is logged (under the delivery's snapshot, a write of that row
    would fail)."""

    def setUp(self):
        self.receiver = Receiver()
        self.receiver.__enter__()
        self.addCleanup(self.receiver.close)
        super().setUp()
        (self.log_id,), (self.job_uuid,) = self.log_ids, self.job_uuids
        with self.registry.cursor() as cr:  # as stored for a delivery at commit
            cr.execute(
                "UPDATE queue_job SET eta = (now() AT TIME ZONE 'UTC') + interval '30 seconds' "
                "WHERE uuid = %s",
                (self.job_uuid,),
            )

    def endpoint_url(self):
        return f"{self.receiver.url}/hook"

    def deliver_while_the_runner(self, statement):
        """Deliver at commit; ``statement`` on the job's row is committed by another
        transaction once the request is answered. Returns the log and job as they end."""
        run = Delivery.run

        def run_then_meet_the_runner(delivery):
            run(delivery)
            with self.registry.cursor() as cr:
                cr.execute(statement, (self.job_uuid,))

        with (
            patch.object(Delivery, "run", run_then_meet_the_runner),
            self.assertNoLogs("odoo.sql_db", "ERROR"),
        ):
            deliver_in_transaction(self.registry, self.job_uuid)
        env = self.transaction()
        job = env["queue.job"].search([("uuid", "=", self.job_uuid)])
        return env["api.sync.log"].browse(self.log_id), job

    def test_woken_meanwhile(self):
        log, job = self.deliver_while_the_runner("UPDATE queue_job SET eta = NULL WHERE uuid = %s")
        self.assertEqual((log.state, log.attempt_count), ("done", 1))
        self.assertEqual(len(self.receiver.received), 1)
        self.assertEqual(job.state, "done", "marked done after the delivery's commit")

    def test_taken_once_due_meanwhile(self):
        log, job = self.deliver_while_the_runner(
            "UPDATE queue_job SET state = 'enqueued', date_enqueued = now() WHERE uuid = %s"
        )
        self.assertEqual((log.state, log.attempt_count), ("done", 1))
        self.assertEqual(job.state, "enqueued", "its run finds the event done")
