"""What the writer's commit does in few statements (issue 13) stays what the ORM did: the
configuration's values read from a cache follow its changes, the events and their jobs inserted
in one statement are the rows ``create`` and queue_job's ``Job.store()`` made, and the
environment sees them. Run for both trigger modes."""

import uuid

from odoo.tests import tagged

from odoo.addons.queue_job.job import Job

from .delivery_common import DeliveryCase, TriggerModeSetup

# what a job row says, uuid and creation time aside
JOB_FIELDS = [
    "name",
    "model_name",
    "method_name",
    "func_string",
    "channel",
    "channel_method_name",
    "job_function_id",
    "state",
    "priority",
    "retry",
    "max_retries",
    "user_id",
    "company_id",
    "args",
    "kwargs",
    "dependencies",
    "eta",
    "identity_key",
]


class EventsAtCommitCases(TriggerModeSetup):
    def committed(self, *values_list):
        """Contacts created, and the events of the transaction as queued at its commit."""
        partners = self.env["res.partner"].create(list(values_list))
        self.env.cr.flush()
        return partners, self.Log.search([("res_id", "in", partners.ids)], order="id")

    def test_the_commit_of_one_saved_record_is_one_statement(self):
        self.committed({"name": "Warm"})  # the caches a first commit fills
        partner = self.env["res.partner"].create({"name": "Cheap"})
        self.env.flush_all()  # the writer's own statements
        before = self.env.cr.sql_log_count
        self.env.cr.flush()  # what runs just before the commit
        self.assertEqual(self.env.cr.sql_log_count - before, 1, "the events' and jobs' insert")
        self.assertTrue(self.Log.search([("res_id", "=", partner.id)]))

    def test_the_job_is_the_one_queue_job_stores(self):
        _partner, log = self.committed({"name": "Stored", "email": "s@x.io"})
        inserted = self.env["queue.job"].search([("uuid", "=", log.job_uuid)])
        reference_uuid = str(uuid.uuid4())
        log._store_job(reference_uuid)  # queue_job's own way, through the ORM
        stored = self.env["queue.job"].search([("uuid", "=", reference_uuid)])
        for name in JOB_FIELDS:
            self.assertEqual(inserted[name], stored[name], name)
        self.assertEqual(inserted.records, log)
        self.assertEqual(inserted.func_string, f"api.sync.log({log.id},)._deliver()")
        job = Job.load(self.env, log.job_uuid)
        self.assertEqual(job.recordset, log)
        self.assertTrue(job.recordset.env.su)
        self.run_jobs()
        self.assertEqual(log.state, "done")

    def test_a_job_of_several_events_names_them_all(self):
        _partners, logs = self.committed({"name": "One"}, {"name": "Two"}, {"name": "Three"})
        (job,) = self.env["queue.job"].search([("uuid", "in", logs.mapped("job_uuid"))])
        self.assertEqual(job.records, logs)
        ids = ", ".join(map(str, logs.ids))
        self.assertEqual(job.func_string, f"api.sync.log({ids})._deliver()")
        self.assertEqual(job.name, f"API sync: 3 events ({self.config.name})")

    def test_the_events_are_the_rows_create_makes(self):
        _partner, log = self.committed({"name": "Row"})
        self.assertEqual(
            (log.state, log.record_count, log.company_id, log.attempts_allowed),
            ("pending", 1, self.config.company_id, self.config.max_attempts),
        )
        self.assertEqual(log.create_uid, self.env.user)
        self.assertEqual(log.create_date, self.env.cr.now())
        self.assertEqual(log.write_date, self.env.cr.now())

    def test_the_configuration_read_at_commit_follows_its_changes(self):
        self.committed({"name": "Before"})  # the configuration's values now cached
        self.config.write({"max_attempts": 7, "name": "Renamed", "timeout": 40})
        self.env.invalidate_all()  # as in the next request: only the cache may remember
        _partners, logs = self.committed({"name": "After 1"}, {"name": "After 2"})
        self.assertEqual(logs.mapped("attempts_allowed"), [7, 7])
        self.assertEqual(len(set(logs.mapped("job_uuid"))), 1, "one commit's events share a job")
        jobs = self.env["queue.job"].search([("uuid", "in", logs.mapped("job_uuid"))])
        self.assertTrue(all("(Renamed)" in name for name in jobs.mapped("name")))
        self.config.active = False
        _partner, none = self.committed({"name": "Archived"})
        self.assertFalse(none)
        self.config.active = True  # its rules patch the models again (the test rollback won't)
        _partner, log = self.committed({"name": "Back"})
        self.assertTrue(log)

    def test_a_record_unlinked_before_commit_gets_no_creation_event(self):
        partner = self.env["res.partner"].create({"name": "Brief"})
        partner_id = partner.id
        partner.unlink()  # the creation was noted: its unlink forgets it
        self.env.cr.flush()
        logs = self.Log.search([("res_id", "=", partner_id)])
        self.assertEqual(logs.mapped("operation"), ["delete"])

    def test_the_environment_sees_the_new_events(self):
        before = self.config.log_ids  # in cache, as is the count depending on them
        count = self.config.log_count
        _partner, log = self.committed({"name": "Seen"})
        self.assertEqual(self.config.log_ids, before | log)
        self.assertEqual(self.config.log_count, count + 1)
        self.assertEqual(log.config_id, self.config)


@tagged("post_install", "-at_install")
class TestEventsAtCommitRules(EventsAtCommitCases, DeliveryCase):
    mode = "rules"


@tagged("post_install", "-at_install")
class TestEventsAtCommitListener(EventsAtCommitCases, DeliveryCase):
    mode = "listener"


@tagged("post_install", "-at_install")
class TestEventRows(DeliveryCase):
    def event_id_indexes(self):
        self.env.cr.execute(
            """SELECT indexname FROM pg_indexes
                WHERE tablename = 'api_sync_log' AND indexdef LIKE '%%(idempotency_key)%%'"""
        )
        return [row[0] for row in self.env.cr.fetchall()]

    def test_the_event_id_is_indexed_once(self):
        """Every event inserts one entry per index: its unique constraint is the lookup."""
        self.assertEqual(self.event_id_indexes(), ["api_sync_log_idempotency_key_unique"])
        # a database upgraded from a version that had a second index loses it
        self.env.cr.execute(
            "CREATE INDEX api_sync_log__idempotency_key_index ON api_sync_log (idempotency_key)"
        )
        self.env["api.sync.log"].init()
        self.assertEqual(self.event_id_indexes(), ["api_sync_log_idempotency_key_unique"])
