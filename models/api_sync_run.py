"""One scheduled or manual batch sync of a configuration: what it selected, sent, and where it left
the checkpoint."""

import json

import psycopg2

from odoo import api, fields, models
from odoo.tools import SQL

from odoo.addons.queue_job.exception import RetryableJobError

from . import queue_jobs
from .api_sync_log import notify_viewers
from .mapper import Mapper
from .watch import Watch

RUN_STATES = [
    ("running", "Running"),
    ("success", "Success"),
    ("partial", "Partial"),
    ("failed", "Failed"),
    ("skipped", "Skipped"),
]
SETTLE_PARAMETER = "api_sync.batch_settle_seconds"
PASSABLE_ERRORS = ("RecordDeleted", "MappingError", "Superseded")


def checkpoint_label(write_date, res_id):
    """A (write_date, id) checkpoint as people read it."""
    if not write_date:
        return False
    return f"{fields.Datetime.to_string(write_date)}.{write_date.microsecond:06d} / #{res_id}"


class ApiSyncRun(models.Model):
    _name = "api.sync.run"
    _description = "API Sync Run"
    _order = "id desc"

    config_id = fields.Many2one(
        "api.sync.config", string="Configuration", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="config_id.company_id", store=True)
    trigger = fields.Selection(
        [("cron", "Scheduled"), ("manual", "Manual"), ("full_resync", "Full resync")],
        required=True,
    )
    state = fields.Selection(RUN_STATES, required=True, default="running", index=True)
    count_selected = fields.Integer(string="Selected")
    count_sent = fields.Integer(string="Sent")
    count_failed = fields.Integer(string="Failed")
    count_skipped = fields.Integer(
        string="Skipped",
        help="Selected records not sent: already delivered unchanged, or deleted before delivery.",
    )
    skipped_at_selection = fields.Integer(
        help="Records this run found already delivered in their current version, or that its "
        "Integration User cannot read."
    )
    skipped_not_readable = fields.Integer(
        string="Not Readable",
        help="Records in the domain that the Integration User cannot read: never sent.",
    )
    checkpoint_before = fields.Char()
    checkpoint_after = fields.Char()
    selection_end_date = fields.Datetime(help="write_date of the last record the run selected.")
    selection_end_id = fields.Integer(help="id of the last record the run selected.")
    date_start = fields.Datetime(string="Start", required=True, default=fields.Datetime.now)
    date_end = fields.Datetime(string="End")
    duration = fields.Float(string="Duration (s)", compute="_compute_duration", store=True)
    note = fields.Text()
    log_ids = fields.One2many("api.sync.log", "run_id", string="Logs")
    log_count = fields.Integer(compute="_compute_log_count")

    @api.depends("date_start", "date_end")
    def _compute_duration(self):
        for run in self:
            run.duration = (run.date_end - run.date_start).total_seconds() if run.date_end else 0.0

    def _compute_log_count(self):
        counts = dict(
            self.env["api.sync.log"]._read_group(
                [("run_id", "in", self.ids)], ["run_id"], ["__count"]
            )
        )
        for run in self:
            run.log_count = counts.get(run, 0)

    @api.depends("config_id", "date_start")
    def _compute_display_name(self):
        for run in self:
            run.display_name = f"{run.config_id.name} {fields.Datetime.to_string(run.date_start)}"

    # -- starting a run -----------------------------------------------------------------------

    @api.model
    def _start(self, config, trigger):
        """Select the records of ``config`` changed after its checkpoint and queue them.

        Records are taken in ``(write_date, id)`` order, chunk by chunk. Runs of a configuration
        never overlap: a run that finds another one still delivering is recorded as skipped; one
        whose deliveries were lost (crash) is closed, and this run resumes from the checkpoint.
        """
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    "SELECT id FROM api_sync_config WHERE id = %s FOR UPDATE NOWAIT",
                    (config.id,),
                    log_exceptions=False,  # another run starting: expected, handled below
                )
        except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
            return self._create_skipped(config, trigger, self.env._("Another run was starting."))
        for running in self.search([("config_id", "=", config.id), ("state", "=", "running")]):
            if running._is_alive():
                return self._create_skipped(
                    config,
                    trigger,
                    self.env._("Run %(run)s is still delivering.", run=running.display_name),
                )
            running._close_interrupted()
        if trigger == "full_resync":
            config.write({"checkpoint_date": False, "checkpoint_res_id": 0})
        run = self.create(
            {
                "config_id": config.id,
                "trigger": trigger,
                "checkpoint_before": checkpoint_label(
                    config.checkpoint_date, config.checkpoint_res_id
                ),
            }
        )
        run._select_and_queue()
        return run

    @api.model
    def _create_skipped(self, config, trigger, reason):
        now = fields.Datetime.now()
        return self.create(
            {
                "config_id": config.id,
                "trigger": trigger,
                "state": "skipped",
                "date_start": now,
                "date_end": now,
                "note": reason,
                "checkpoint_before": config.checkpoint_display,
                "checkpoint_after": config.checkpoint_display,
            }
        )

    def _select_and_queue(self):
        """Page through the records after the checkpoint and queue one delivery per chunk.

        Records already delivered in their current version (by real-time syncs or an earlier
        run) are skipped, so resuming after a failed chunk sends nothing twice; a full resync
        sends them all.
        """
        config = self.config_id
        last_date, last_id = config.checkpoint_date, config.checkpoint_res_id
        Log = self.env["api.sync.log"].sudo()
        waiting = Log  # batch events not queued yet: the batches of several pages share a job
        batches_per_job = config._batches_per_job()
        selected = skipped = not_readable = 0
        self.env.flush_all()
        # The selection reads in a transaction of its own, whose snapshot is taken by the
        # horizon query: a transaction committing meanwhile is either seen or below the horizon.
        with self.env.registry.cursor() as select_cr:
            horizon = self._selection_horizon(select_cr)
            for page in self._select_pages(select_cr, last_date, last_id, horizon):
                selected += len(page)
                last_id, last_date = page[-1]
                readable = set(
                    Mapper(config)
                    .split_readable(
                        self.env[config.model_name].browse([res_id for res_id, _date in page])
                    )[0]
                    .ids
                )
                not_readable += len(page) - len(readable)
                delivered = (
                    {}
                    if self.trigger == "full_resync"
                    else self._delivered_versions(list(readable))
                )
                todo = [
                    (res_id, date)
                    for res_id, date in page
                    if res_id in readable and delivered.get(res_id) != date
                ]
                skipped += len(page) - len(todo)
                if todo:
                    logs = Log.create(self._log_values(todo))
                    if config.delivery_mode == "batch":
                        waiting |= logs
                        if len(waiting) >= batches_per_job:
                            waiting._enqueue()
                            waiting = Log
                    else:
                        logs._enqueue()
                # keep memory flat over large selections
                self.env.flush_all()
                self.env.invalidate_all()
        waiting._enqueue()
        # written once: each update of the run's row in this transaction leaves a version that
        # the next one, and the foreign key check of every log inserted after it, walks past
        values = {
            "selection_end_date": last_date if selected else False,
            "selection_end_id": last_id if selected else 0,
            "count_selected": selected,
            "skipped_at_selection": skipped,
            "skipped_not_readable": not_readable,
        }
        if not_readable:
            values["note"] = self.env._(
                "%(count)s records in the domain were not sent: the Integration User %(user)s "
                "cannot read them.",
                count=not_readable,
                user=config.integration_user_id.name,
            )
        self.write(values)
        self._advance()

    def _log_values(self, todo):
        """Log values of one chunk: one batch event, or one event per record."""
        config = self.config_id
        Log = self.env["api.sync.log"]
        if config.delivery_mode == "batch":
            return [
                Log._event_values(
                    config,
                    "batch",
                    run_id=self.id,
                    batch_res_ids=json.dumps([res_id for res_id, _date in todo]),
                    record_name=self.env._("%(count)s records", count=len(todo)),
                    record_count=len(todo),
                    checkpoint_date=todo[-1][1],
                    checkpoint_res_id=todo[-1][0],
                )
            ]
        records = (
            self.env[config.model_name]
            .with_env(config._reader_env())
            .with_context(active_test=False)
            .browse([res_id for res_id, _date in todo])
        )
        names = {record.id: record.display_name for record in records}
        return [
            Log._event_values(
                config,
                "update",
                run_id=self.id,
                res_id=res_id,
                record_name=names.get(res_id),
                checkpoint_date=date,
                checkpoint_res_id=res_id,
            )
            for res_id, date in todo
        ]

    def _selection_horizon(self, cr):
        """Records written at or after this instant may belong to transactions still running.

        It is the start of the oldest other transaction in progress on this database, and no
        later than a few seconds ago: a run never moves its checkpoint past records that are not
        committed yet, so they are picked up by the next run instead of being skipped.
        """
        settle = int(self.env["ir.config_parameter"].sudo().get_param(SETTLE_PARAMETER, "2"))
        cr.execute(
            """SELECT LEAST(
                   (SELECT min(xact_start) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()
                       AND state <> 'idle' AND xact_start IS NOT NULL),
                   statement_timestamp() - make_interval(secs => %s)
               ) AT TIME ZONE 'UTC'""",
            (settle,),
        )
        return cr.fetchone()[0]

    def _select_pages(self, cr, last_date, last_id, horizon):
        """``(id, write_date)`` pairs of the domain after the given pair, in pages of Batch
        Size (records of another company than the configuration's are left out).

        One ordered query read through a server-side cursor: the table is sorted once, however
        many pages it takes, and only one page is in memory at a time.
        """
        config = self.config_id
        Model = self.env[config.model_name].sudo().with_context(active_test=False)
        domain = config._get_domain()
        if config.company_id and "company_id" in Model._fields:
            domain += ["|", ("company_id", "=", False), ("company_id", "=", config.company_id.id)]
        query = Model._search(domain)
        table = Model._table
        write_date = SQL("COALESCE(%s, '1970-01-01')", SQL.identifier(table, "write_date"))
        record_id = SQL.identifier(table, "id")
        active = Model._active_name
        if active and not config._domain_names(active, domain):
            # as Odoo counts: archived records only when the domain asks for them, except
            # those delivered before (archiving one is sent once, so the other side follows)
            query.add_where(
                SQL(
                    """(%s OR %s IN (SELECT res_id FROM api_sync_record_status
                                     WHERE config_id = %s AND last_done_at IS NOT NULL))""",
                    SQL.identifier(table, active),
                    record_id,
                    config.id,
                )
            )
        if last_date:
            query.add_where(SQL("(%s, %s) > (%s, %s)", write_date, record_id, last_date, last_id))
        query.add_where(SQL("%s < %s", write_date, horizon))
        query.order = SQL("%s, %s", write_date, record_id)
        select = query.select(record_id, write_date)
        # a test cursor (tests) wraps the cursor whose connection it shares
        connection = getattr(cr, "_cnx", None) or cr._cursor._cnx
        with connection.cursor(name=f"api_sync_run_{self.id}") as stream:
            stream.itersize = config.batch_size
            stream.execute(select.code, select.params)
            while page := stream.fetchmany(config.batch_size):
                yield page

    def _delivered_versions(self, res_ids):
        """``{record id: version}`` of the records last delivered to the configuration."""
        self.env.cr.execute(
            """SELECT res_id, last_version FROM api_sync_record_status
                WHERE (config_id, res_id) IN (SELECT %s, unnest(%s::int[]))
                  AND last_state = 'done'""",
            (self.config_id.id, res_ids),
        )
        return dict(self.env.cr.fetchall())

    # -- liveness -----------------------------------------------------------------------------

    def _is_alive(self):
        """Whether this running run still has deliveries that will finish on their own."""
        self.ensure_one()
        pending = self.log_ids.filtered(lambda log: log.state == "pending")
        return bool(pending._with_live_job())

    def _close_interrupted(self):
        """A run whose deliveries were lost (crash): cancel what is left, keep what was done."""
        self.ensure_one()
        lost = self.log_ids.filtered(lambda log: log.state == "pending")
        lost.write(
            {
                "state": "cancelled",
                "error_class": "Interrupted",
                "error_message": self.env._(
                    "The run was interrupted before this delivery finished; the next run "
                    "selects these records again."
                ),
            }
        )
        if lost:
            self.note = self.env._(
                "Interrupted: %(count)s deliveries were lost and cancelled.", count=len(lost)
            )
        self._advance()

    # -- progress -----------------------------------------------------------------------------

    def _queue_advance(self):
        """Recompute the run's progress in a job of its own (deliveries never wait for it)."""
        for run in self:
            queue_jobs.delay(run, f"API sync: progress of run {run.id}")._advance()

    def _advance(self):
        """Move the checkpoint past the deliveries done in order, count, and close when over.

        The checkpoint stops before the first delivery that is not done: records after it are
        selected again by the next run (those already delivered unchanged are then skipped).
        """
        if not queue_jobs.claim_running_job(self.env, self.env.context.get("job_uuid")):
            return  # recovery queued this progress job again
        if self.env.context.get("job_uuid"):  # should this worker die: queued again in seconds
            Watch.keep(self.env)
        for run in self.sudo():
            if run.state != "running":
                continue
            # NO KEY UPDATE: deliveries writing logs of this run (foreign key checks take KEY
            # SHARE locks on it) are not blocked by it. Another progress job holding it, or having
            # committed since this one began, makes this one start again on fresh data, soon.
            try:
                with self.env.cr.savepoint(flush=False):
                    self.env.cr.execute(
                        "SELECT id FROM api_sync_run WHERE id = %s FOR NO KEY UPDATE NOWAIT",
                        (run.id,),
                        log_exceptions=False,  # expected, handled below
                    )
            except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
                raise RetryableJobError(
                    "another progress update of this run is running", seconds=1, ignore_retry=True
                ) from None
            config = run.config_id
            self.env["api.sync.log"].flush_model()
            self.env.cr.execute(
                """SELECT state, error_class, operation, record_count, sent_count,
                          checkpoint_date, checkpoint_res_id
                     FROM api_sync_log WHERE run_id = %s ORDER BY id""",
                (run.id,),
            )
            checkpoint = None
            stopped = False
            over = True
            counts = {"done": 0, "failed": 0, "skipped": run.skipped_at_selection}
            for state, error, operation, records, sent, date, res_id in self.env.cr.fetchall():
                if state == "done":
                    sent = sent if operation == "batch" else records
                    counts["done"] += sent
                    counts["skipped"] += records - sent
                elif state == "failed":
                    counts["failed"] += records
                elif state == "cancelled":
                    counts["skipped"] += records
                else:
                    over = False
                # A record deleted, or that cannot be mapped, is selected again once edited.
                passable = state == "done" or error in PASSABLE_ERRORS
                if not stopped and passable:
                    checkpoint = (date, res_id)
                elif not passable:
                    stopped = True
            if over and not stopped and run.selection_end_date:
                checkpoint = (run.selection_end_date, run.selection_end_id)
            if checkpoint:
                config._move_checkpoint(*checkpoint)
            values = {
                "count_sent": counts["done"],
                "count_failed": counts["failed"],
                "count_skipped": counts["skipped"],
            }
            if over:
                if not counts["failed"] and not stopped:
                    state = "success"
                elif counts["done"]:
                    state = "partial"
                else:
                    state = "failed"
                values.update(
                    state=state,
                    date_end=fields.Datetime.now(),
                    checkpoint_after=checkpoint_label(
                        config.checkpoint_date, config.checkpoint_res_id
                    ),
                )
            run.write(values)
            notify_viewers(run)
            if over and values["state"] == "success":
                config._record_success(run)

    def _action_open(self):
        return {
            "type": "ir.actions.act_window",
            "res_model": "api.sync.run",
            "res_id": self.id,
            "view_mode": "form",
            "target": "current",
        }

    def action_view_logs(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("api_sync.action_api_sync_log")
        action["domain"] = [("run_id", "=", self.id)]
        return action
