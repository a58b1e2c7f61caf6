"""Where each record stands with each configuration, without touching other modules' tables."""

from odoo import api, fields, models

from .api_sync_log import LOG_STATES


class ApiSyncRecordStatus(models.Model):
    _name = "api.sync.record.status"
    _description = "API Sync Record Status"
    _order = "id desc"
    _rec_name = "record_name"

    config_id = fields.Many2one(
        "api.sync.config", string="Configuration", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="config_id.company_id", store=True)
    res_model = fields.Char(string="Model", required=True, index=True)
    res_id = fields.Many2oneReference(
        string="Record ID", model_field="res_model", required=True, index=True
    )
    record_name = fields.Char(string="Record")
    last_log_id = fields.Many2one("api.sync.log", string="Last Event", ondelete="set null")
    last_state = fields.Selection(LOG_STATES)
    last_attempt_at = fields.Datetime(string="Last Attempt")
    last_done_at = fields.Datetime()
    last_version = fields.Datetime(
        string="Last Version Sent", help="The record's update time carried by the last delivery."
    )

    _sql_constraints = [
        ("record_unique", "UNIQUE(config_id, res_id)", "One status per record and configuration."),
    ]

    @api.model
    def _ensure(self, config, res_ids):
        """Create the missing status rows (never waits for a running delivery).

        A row created by a transaction that committed after this one began is a serialization
        failure, expected and handled by the caller (``_lock``): it is not logged as an error.
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
    def _record_outcome(self, logs):
        """Reflect the latest state of ``logs`` on their records' status rows (one upsert each)."""
        for log in logs:
            versions = log._record_versions()
            if not versions:
                continue
            done = log.state == "done"
            self.env.cr.execute(
                """INSERT INTO api_sync_record_status AS s
                       (config_id, company_id, res_model, res_id, last_log_id, last_state,
                        last_attempt_at, last_done_at, last_version, record_name,
                        create_uid, create_date, write_uid, write_date)
                   SELECT %(config)s, %(company)s, %(model)s, v.res_id, %(log)s, %(state)s,
                          %(attempt)s::timestamp,
                          CASE WHEN %(done)s THEN %(done_at)s::timestamp END,
                          CASE WHEN %(done)s THEN v.version END, %(name)s,
                          %(uid)s, now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC'
                     FROM unnest(%(ids)s::int[], %(versions)s::timestamp[]) AS v(res_id, version)
                   ON CONFLICT (config_id, res_id) DO UPDATE
                      SET last_log_id = EXCLUDED.last_log_id,
                          last_state = EXCLUDED.last_state,
                          last_attempt_at = EXCLUDED.last_attempt_at,
                          last_done_at = COALESCE(EXCLUDED.last_done_at, s.last_done_at),
                          last_version = GREATEST(s.last_version, EXCLUDED.last_version),
                          record_name = COALESCE(EXCLUDED.record_name, s.record_name),
                          write_uid = EXCLUDED.write_uid, write_date = EXCLUDED.write_date""",
                {
                    "config": log.config_id.id,
                    "company": log.config_id.company_id.id or None,
                    "model": log.config_id.model_name,
                    "log": log.id,
                    "state": log.state,
                    "attempt": log.last_attempt_at or None,
                    "done": done,
                    "done_at": log.done_at or None,
                    "name": None if log.operation == "batch" else (log.record_name or None),
                    "uid": self.env.uid,
                    "ids": list(versions),
                    "versions": list(versions.values()),
                },
            )
        self.invalidate_model()

    @api.model
    def get_sync_status(self, records, config=None):
        """``{record id: {"state", "done_at", "log_id"}}`` of ``records`` for ``config``.

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
            }
        return result
