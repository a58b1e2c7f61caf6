"""Events and the jobs delivering them, inserted in one statement (the writer's commit).

``create`` of a log and of its queue_job job costs the writer two statements and the ORM's
per-record work (defaults, conversions, access and company checks, ...) at every commit. Here
both inserts are one SQL statement, doing what ``create`` would do for these two models: the
fields' defaults, the precomputed company, the log-access columns, the values queue_job's
``Job._store_values`` gives to a new job, and the environment's cache kept in step (the new
logs in cache, their dependent fields marked as modified, the inverse one2many fields
updated). queue_job's trigger notifies its runner of the new jobs as for any insert.
"""

from odoo import api, models
from odoo.models import LOG_ACCESS_COLUMNS
from odoo.tools import SQL

from . import queue_jobs


class ApiSyncLog(models.Model):
    _inherit = "api.sync.log"

    @api.model
    def _insert_events(self, config, values_list):
        """Insert the logs ``values_list`` of ``config`` and one job per ``job_uuid`` they carry
        (delivering the logs that carry it), in one statement. Returns the logs, in order.

        ``values_list`` holds stored column values only (no relational commands); fields left
        out get their default.
        """
        Log = self.sudo()
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
        jobs = [
            Log._job_row(config, rows, job_uuid, index)
            for index, job_uuid in enumerate(_job_uuids(rows))
        ]
        self.env.cr.execute(
            SQL(
                "WITH logs AS (INSERT INTO api_sync_log (%s) VALUES %s RETURNING id, job_uuid)"
                "%s SELECT id FROM logs ORDER BY id",
                SQL(", ").join(map(SQL.identifier, columns)),
                SQL(", ").join(
                    tuple(
                        Log._fields[name].convert_to_column_insert(row.get(name), Log, row)
                        for name in columns
                    )
                    for row in rows
                ),
                SQL("").join(jobs),
            )
        )
        logs = Log.browse([log_id for (log_id,) in self.env.cr.fetchall()])
        Log._created_in_cache(logs, columns, rows)
        return logs

    def _job_row(self, config, rows, job_uuid, index):
        """``, job_<index> AS (INSERT INTO queue_job ...)`` storing the job ``job_uuid``, its
        records the logs of ``rows`` carrying that uuid (see ``queue_jobs.insert_sql``)."""
        group = [row for row in rows if row.get("job_uuid") == job_uuid]
        first = group[0]
        description = queue_jobs.delivery_description(
            len(group), first["res_model"], first.get("res_id"), first["operation"], config
        )
        return queue_jobs.insert_sql(self, job_uuid, description, f"job_{index}")

    def _created_in_cache(self, logs, columns, rows):
        """What ``create`` does after its insert: the new logs' values in cache, the fields
        depending on them marked as modified, the inverse one2many fields updated."""
        cache = self.env.cache
        for name in columns:
            if name in LOG_ACCESS_COLUMNS:
                continue
            field = self._fields[name]
            cache.update(logs, field, [field.convert_to_cache(row.get(name), logs) for row in rows])
        logs.modified([name for name in columns if name not in LOG_ACCESS_COLUMNS], create=True)
        for name in columns:
            field = self._fields[name]
            if field.type == "many2one" and self.pool.field_inverses[field]:
                by_value = {}
                for log, row in zip(logs, rows, strict=True):
                    by_value.setdefault(row.get(name), []).append(log.id)
                for value, ids in by_value.items():
                    field._update_inverses(logs.browse(ids), value)


def _job_uuids(rows):
    """The job uuids ``rows`` carry, in order of first appearance."""
    return list(dict.fromkeys(row["job_uuid"] for row in rows if row.get("job_uuid")))
