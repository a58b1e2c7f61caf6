"""Where each record stands with each configuration, without touching other modules' tables."""

from collections import defaultdict

from odoo import api, fields, models
from odoo.tools import SQL

from . import compat
from .api_sync_log import LOG_STATES

ROW_KEYS = ("log", "state", "attempt", "done_at", "version", "name")
# Every delivery updates its records' rows: free room on each page keeps those updates on the
# page (HOT: no new index entries, old versions pruned without a vacuum).
FILLFACTOR = 50


class ApiSyncRecordStatus(models.Model):
    _name = "api.sync.record.status"
    _inherit = "api.sync.record.mixin"
    _description = "API Sync Record Status"
    _order = "id desc"
    _rec_name = "record_name"

    record_name = fields.Char(string="Record")
    record_ref = fields.Reference(string="Open Record")
    last_log_id = fields.Many2one("api.sync.log", string="Last Event", ondelete="set null")
    last_state = fields.Selection(LOG_STATES)
    last_attempt_at = fields.Datetime(string="Last Attempt")
    last_done_at = fields.Datetime()
    last_version = fields.Datetime(
        string="Last Version Sent", help="The record's update time carried by the last delivery."
    )
    external_id = fields.Char(
        string="External ID",
        compute="_compute_external_id",
        help="The id of the record's object at the endpoint (resource mode).",
    )

    _record_unique = compat.unique("config_id, res_id", "One status per record and configuration.")

    def init(self):
        self.env.cr.execute(
            SQL("ALTER TABLE %s SET (fillfactor = %s)", SQL.identifier(self._table), FILLFACTOR)
        )

    @api.depends("config_id", "res_id")
    def _compute_external_id(self):
        self.env["api.sync.binding"]._fill_external_ids(self)

    @api.model
    def _ensure(self, config, res_ids):
        """Create the missing status rows (never waits for a running delivery).

        A row created by a transaction that committed after this one began is a serialization
        failure, expected and handled by the caller (``Delivery._lock``): not logged as an error.
        """
        if not res_ids:
            return
        self.env.cr.execute(
            """INSERT INTO api_sync_record_status
                   (config_id, company_id, res_model, res_id, create_uid, create_date,
                    write_uid, write_date)
               SELECT %(config)s, %(company)s, %(model)s, res_id, %(uid)s,
                      now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC'
                 FROM unnest(%(ids)s) AS res_id
               ON CONFLICT (config_id, res_id) DO NOTHING""",
            {
                "config": config.id,
                "company": config.company_id.id or None,
                "model": config.model_name,
                "uid": self.env.uid,
                "ids": list(res_ids),
            },
            log_exceptions=False,
        )

    @api.model
    def _lock_rows(self, config, res_ids):
        """Lock the existing status rows of ``config`` and ``res_ids`` (NOWAIT: the caller
        handles the conflict); returns ``{record id: (last version delivered, whether the row
        has a name)}`` of them."""
        # Records looked up by (config_id, res_id) pairs: one probe of that index each, whatever
        # the statistics say (a status table grown by a million rows during a run and not
        # analyzed since made "config_id = x" look selective: every delivery then read all the
        # configuration's status rows).
        self.env.cr.execute(
            """SELECT res_id, last_version, record_name IS NOT NULL FROM api_sync_record_status
                WHERE (config_id, res_id) IN (SELECT %s, unnest(%s::int[]))
                ORDER BY id FOR UPDATE NOWAIT""",
            (config.id, res_ids),
            log_exceptions=False,
        )
        return {res_id: (version, named) for res_id, version, named in self.env.cr.fetchall()}

    @api.model
    def _record_outcome(self, logs, named=None):
        """Reflect the latest state of ``logs`` on their records' status rows: one upsert per
        configuration, the same as one per log in order (a record's later log wins).

        ``named``: ``{(config id, record id): last version delivered}`` of the rows that have a
        name, as the caller read them while holding their lock (else read here)."""
        rows = defaultdict(dict)  # {config: {record id: row}}
        batch_names = self._batch_names(logs.filtered(lambda log: log.operation == "batch"), named)
        for log in logs:
            versions = log._record_versions()
            if not versions:
                continue
            if log.operation == "batch":
                names = batch_names[log.res_model]
            else:
                names = dict.fromkeys(versions, log.record_name or None)
            log_id, state, attempt = log.id, log.state, log.last_attempt_at or None
            done = state == "done"
            done_at = done and log.done_at
            config_rows = rows[log.config_id]
            for res_id, version in versions.items():
                before = config_rows.get(res_id, {})
                delivered = [v for v in (before.get("version"), done and version) if v]
                config_rows[res_id] = {
                    "log": log_id,
                    "state": state,
                    "attempt": attempt,
                    "done_at": done_at or before.get("done_at"),
                    "version": max(delivered, default=None),
                    "name": names.get(res_id) or before.get("name"),
                }
        for config, config_rows in rows.items():
            columns = {key: [row[key] for row in config_rows.values()] for key in ROW_KEYS}
            self.env.cr.execute(
                """INSERT INTO api_sync_record_status AS s
                       (config_id, company_id, res_model, res_id, last_log_id, last_state,
                        last_attempt_at, last_done_at, last_version, record_name,
                        create_uid, create_date, write_uid, write_date)
                   SELECT %(config)s, %(company)s, %(model)s, v.res_id, v.log, v.state,
                          v.attempt, v.done_at, v.version, v.name,
                          %(uid)s, now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC'
                     FROM unnest(%(ids)s::int[], %(log)s::int[], %(state)s::varchar[],
                                 %(attempt)s::timestamp[], %(done_at)s::timestamp[],
                                 %(version)s::timestamp[], %(name)s::varchar[])
                          AS v(res_id, log, state, attempt, done_at, version, name)
                   ON CONFLICT (config_id, res_id) DO UPDATE
                      SET last_log_id = EXCLUDED.last_log_id,
                          last_state = EXCLUDED.last_state,
                          last_attempt_at = EXCLUDED.last_attempt_at,
                          last_done_at = COALESCE(EXCLUDED.last_done_at, s.last_done_at),
                          last_version = GREATEST(s.last_version, EXCLUDED.last_version),
                          record_name = COALESCE(EXCLUDED.record_name, s.record_name),
                          write_uid = EXCLUDED.write_uid, write_date = EXCLUDED.write_date""",
                {
                    "config": config.id,
                    "company": config.company_id.id or None,
                    "model": config.model_name,
                    "uid": self.env.uid,
                    "ids": list(config_rows),
                    **columns,
                },
            )
        self.invalidate_model()

    @api.model
    def _batch_names(self, logs, named=None):
        """``{model: {record id: name}}`` of the existing records the batches ``logs`` carry,
        read together, except those whose status row already names the version carried (read
        when that version was delivered: a resync of unchanged records reads no name; ``named``:
        see ``_record_outcome``)."""
        ids = defaultdict(set)
        for (config, model_name), batches in logs.grouped(
            lambda log: (log.config_id, log.res_model)
        ).items():
            versions = {}
            for log in batches:
                versions.update(log._record_versions())
            if named is None:
                known = self._named_versions(config, versions)
            else:
                known = {
                    res_id
                    for res_id, version in versions.items()
                    if version and named.get((config.id, res_id)) == version
                }
            ids[model_name].update(versions.keys() - known)
        return {
            model_name: {
                record.id: record.display_name
                for record in self.env[model_name].sudo().browse(list(res_ids)).exists()
            }
            for model_name, res_ids in ids.items()
        }

    @api.model
    def _named_versions(self, config, versions):
        """The record ids of ``versions`` (``{record id: version or None}``) whose status row
        with ``config`` has a name and holds that version as its last one delivered."""
        known = {res_id: version for res_id, version in versions.items() if version}
        if not known:
            return set()
        self.env.cr.execute(
            """SELECT s.res_id FROM api_sync_record_status AS s
                 JOIN unnest(%s::int[], %s::timestamp[]) AS v(res_id, version)
                   ON v.res_id = s.res_id
                WHERE s.config_id = %s AND s.record_name IS NOT NULL
                  AND s.last_version = v.version""",
            (list(known), list(known.values()), config.id),
        )
        return {row[0] for row in self.env.cr.fetchall()}

    @api.model
    def get_status_summary(self, res_model, res_id):
        """The record's latest sync state for its form's status button (None if never synced
        or not readable)."""
        record = self.env[res_model].browse(int(res_id)).exists()
        if not record or not record.has_access("read"):
            return None
        status = self.search(
            [("res_model", "=", res_model), ("res_id", "=", record.id)],
            order="last_attempt_at desc nulls last, id desc",
            limit=1,
        )
        if not status:
            return None
        states = dict(self._fields["last_state"]._description_selection(self.env))
        css = {"done": "text-success", "failed": "text-danger", "pending": "text-info"}
        return {
            "state": status.last_state,
            "label": states.get(status.last_state) or self.env._("Synced"),
            "at": fields.Datetime.to_string(status.last_done_at or status.last_attempt_at),
            "config": status.config_id.display_name,
            "css": css.get(status.last_state, "text-muted"),
            "external_id": status.external_id or None,
        }

    @api.model
    def action_open_history(self, res_model, res_id):
        """The sync log of one record, batch deliveries included."""
        record = self.env[res_model].browse(int(res_id))
        record.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("api_sync.action_api_sync_log")
        action["domain"] = [("res_model", "=", res_model), ("covers_res_id", "=", record.id)]
        action["context"] = {"create": False}
        action["name"] = self.env._("Sync History")
        return action

    @api.model
    def get_sync_status(self, records, config=None):
        """``{record id: {"state", "done_at", "log_id", "config_id", "external_id"}}`` of
        ``records`` for ``config`` (``external_id``: the id of the record's object at the
        endpoint in resource mode, else None).

        With no config, the status of every configuration of the records' model is merged,
        keeping the most recent event. Records never synced are absent.
        """
        domain = [("res_model", "=", records._name), ("res_id", "in", records.ids)]
        if config:
            domain.append(("config_id", "=", config.id))
        result = {}
        for status in self.search(domain, order="last_attempt_at asc nulls first, id"):
            result[status.res_id] = {
                "state": status.last_state,
                "done_at": status.last_done_at,
                "log_id": status.last_log_id.id,
                "config_id": status.config_id.id,
                "external_id": status.external_id or None,
            }
        return result
