"""One scheduled or manual batch sync of a configuration: what it selected, sent, and where it left
the checkpoint."""

from odoo import api, fields, models

RUN_STATES = [
    ("running", "Running"),
    ("success", "Success"),
    ("partial", "Partial"),
    ("failed", "Failed"),
    ("skipped", "Skipped"),
]
LIVE_JOB_STATES = ("wait_dependencies", "pending", "enqueued", "started")


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
        help="Records this run found already delivered in their current version."
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

    # -- liveness -----------------------------------------------------------------------------

    def _is_alive(self):
        """Whether this running run still has deliveries that will finish on their own."""
        self.ensure_one()
        pending = self.log_ids.filtered(lambda log: log.state == "pending")
        if not pending:
            return False
        uuids = [uuid for uuid in pending.mapped("job_uuid") if uuid]
        return bool(
            uuids
            and self.env["queue.job"]
            .sudo()
            .search_count([("uuid", "in", uuids), ("state", "in", LIVE_JOB_STATES)], limit=1)
        )

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
            run.with_delay(
                channel="root.api_sync",
                max_retries=0,
                identity_key=f"api_sync_run_advance_{run.id}",
                description=f"API sync: progress of run {run.id}",
            )._advance()

    def _advance(self):
        """Move the checkpoint past the deliveries done in order, count, and close when over.

        The checkpoint stops before the first delivery that is not done: records after it are
        selected again by the next run (those already delivered unchanged are then skipped).
        """
        for run in self.sudo():
            if run.state != "running":
                continue
            self.env.cr.execute("SELECT id FROM api_sync_run WHERE id = %s FOR UPDATE", (run.id,))
            config = run.config_id
            logs = run.log_ids.sorted("id")
            checkpoint = None
            stopped = False
            counts = {"done": 0, "failed": 0, "skipped": run.skipped_at_selection}
            for log in logs:
                records = len(log._res_ids())
                if log.state == "done":
                    sent = log._sent_count()
                    counts["done"] += sent
                    counts["skipped"] += records - sent
                elif log.state == "failed":
                    counts["failed"] += records
                elif log.state == "cancelled":
                    counts["skipped"] += records
                passable = log.state == "done" or log.error_class == "RecordDeleted"
                if not stopped and passable:
                    checkpoint = (log.checkpoint_date, log.checkpoint_res_id)
                elif not passable:
                    stopped = True
            over = all(log.state != "pending" for log in logs)
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
        action = self.env["ir.actions.act_window"]._for_xml_id("api_sync.action_api_sync_log")
        action["domain"] = [("run_id", "=", self.id)]
        return action
