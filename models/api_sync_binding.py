"""Which remote object a record is, for a configuration in resource mode: its external id.

The binder: deliveries look bindings up, bind and unbind on short transactions of their own,
committed at once (a delivery sees the binding an earlier one made, even after its own
transaction began; a create whose response arrived is never sent again as a create, whatever
becomes of the delivery's transaction)."""

import contextlib

from odoo import api, fields, models

from . import compat
from .transactions import own_transaction


class ApiSyncBinding(models.Model):
    _name = "api.sync.binding"
    _inherit = "api.sync.record.mixin"
    _description = "API Sync External ID"
    _order = "id desc"
    _rec_name = "external_id"

    external_id = fields.Char(
        string="External ID",
        required=True,
        index=True,
        help="The id the endpoint gave the object when it was created.",
    )
    synced_version = fields.Datetime(help="The record's update time carried by the last delivery.")
    synced_at = fields.Datetime(help="When the last delivery succeeded.")
    remote_version = fields.Datetime(
        help="Inbound sync: the remote change time of the last event applied to the record."
    )

    _record_unique = compat.unique(
        "config_id, res_id", "A record has one external id per configuration."
    )

    @api.model
    def _fill_external_ids(self, rows):
        """Set the ``external_id`` of ``rows`` (logs, record status: with ``config_id`` and
        ``res_id``) to their record's, as the caller may read them."""
        bindings = self.search_fetch(
            [("config_id", "in", rows.config_id.ids), ("res_id", "in", rows.mapped("res_id"))],
            ["config_id", "res_id", "external_id"],
        )
        bound = {
            (binding.config_id.id, binding.res_id): binding.external_id for binding in bindings
        }
        for row in rows:
            row.external_id = bound.get((row.config_id.id, row.res_id), False)

    # -- the binder, on transactions of their own ---------------------------------------------

    @api.model
    def _external_id(self, config, res_id):
        """The external id of the record ``res_id`` with ``config``, as committed (or None)."""
        with own_transaction(self.env) as cr:
            cr.execute(
                "SELECT external_id FROM api_sync_binding WHERE config_id = %s AND res_id = %s",
                (config.id, res_id),
            )
            row = cr.fetchone()
        return row[0] if row else None

    @api.model
    def _external_ids(self, config, res_ids):
        """``{record id: external id or None}`` of ``res_ids`` with ``config``, as committed,
        in one query."""
        with own_transaction(self.env) as cr:
            cr.execute(
                """SELECT res_id, external_id FROM api_sync_binding
                    WHERE config_id = %s AND res_id = ANY(%s)""",
                (config.id, list(res_ids)),
            )
            bound = dict(cr.fetchall())
        return {res_id: bound.get(res_id) for res_id in res_ids}

    @api.model
    def _bind(self, config, res_id, external_id, version):
        """Store (committed at once) that the record ``res_id`` is ``external_id``."""
        config = config.sudo()
        with own_transaction(self.env) as cr:
            cr.execute(
                """INSERT INTO api_sync_binding AS b
                       (config_id, company_id, res_model, res_id, external_id, synced_version,
                        synced_at, create_uid, create_date, write_uid, write_date)
                   VALUES (%(config)s, %(company)s, %(model)s, %(res_id)s, %(external_id)s,
                           %(version)s, now() AT TIME ZONE 'UTC', %(uid)s,
                           now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC')
                   ON CONFLICT (config_id, res_id) DO UPDATE
                      SET external_id = EXCLUDED.external_id,
                          synced_version = EXCLUDED.synced_version,
                          synced_at = EXCLUDED.synced_at,
                          write_uid = EXCLUDED.write_uid, write_date = EXCLUDED.write_date""",
                self._row_values(config, res_id, external_id, version),
            )
        self.invalidate_model()

    @api.model
    def _row_values(self, config, res_id, external_id, version):
        """The parameters of a binding's upsert."""
        return {
            "config": config.id,
            "company": config.company_id.id or None,
            "model": config.model_name,
            "res_id": res_id,
            "external_id": external_id,
            "version": version or None,
            "uid": self.env.uid,
        }

    @api.model
    def _unbind(self, config, res_id, here=False):
        """Forget the external id of the record ``res_id`` with ``config`` (committed at
        once; ``here``: in the current transaction, the inbound side deleting the record)."""
        with contextlib.nullcontext(self.env.cr) if here else own_transaction(self.env) as cr:
            cr.execute(
                "DELETE FROM api_sync_binding WHERE config_id = %s AND res_id = %s",
                (config.id, res_id),
            )
        self.invalidate_model()

    @api.model
    def _forget_deleted(self, res_model, res_ids):
        """The records ``res_ids`` of ``res_model`` were deleted: their external ids go with
        them, but those a delete event still needs (queued, or failed and retried by hand: its
        delivery removes it). In the deleting transaction."""
        self.env["api.sync.log"].flush_model(["config_id", "res_id", "operation", "state"])
        self.env.cr.execute(
            """DELETE FROM api_sync_binding AS b
                WHERE b.res_model = %s AND b.res_id = ANY(%s)
                  AND NOT EXISTS (
                      SELECT 1 FROM api_sync_log AS l
                       WHERE l.config_id = b.config_id AND l.res_id = b.res_id
                         AND l.operation = 'delete' AND l.direction = 'outbound'
                         AND l.state IN ('pending', 'failed'))""",
            (res_model, list(res_ids)),
        )
        self.invalidate_model()

    # -- the inbound side, in the applying job's transaction ----------------------------------

    @api.model
    def _bound_record(self, config, external_id):
        """The id of the record bound to ``external_id`` with ``config`` (or None)."""
        self.flush_model()
        self.env.cr.execute(
            """SELECT res_id FROM api_sync_binding WHERE config_id = %s AND external_id = %s
                ORDER BY id LIMIT 1""",
            (config.id, external_id),
        )
        row = self.env.cr.fetchone()
        return row[0] if row else None

    @api.model
    def _versions(self, config, res_id):
        """``[synced version, remote version]`` of the record's binding (Nones without)."""
        self.flush_model()
        self.env.cr.execute(
            """SELECT synced_version, remote_version FROM api_sync_binding
                WHERE config_id = %s AND res_id = %s""",
            (config.id, res_id),
        )
        return list(self.env.cr.fetchone() or (None, None))

    @api.model
    def _bind_inbound(self, config, res_id, external_id, remote_version):
        """Bind the record ``res_id`` to ``external_id`` in this transaction (the event that
        created or changed it commits with it); keeps the newest remote version."""
        config = config.sudo()
        self.env.cr.execute(
            """INSERT INTO api_sync_binding AS b
                   (config_id, company_id, res_model, res_id, external_id, remote_version,
                    create_uid, create_date, write_uid, write_date)
               VALUES (%(config)s, %(company)s, %(model)s, %(res_id)s, %(external_id)s,
                       %(version)s, %(uid)s, now() AT TIME ZONE 'UTC', %(uid)s,
                       now() AT TIME ZONE 'UTC')
               ON CONFLICT (config_id, res_id) DO UPDATE
                  SET external_id = EXCLUDED.external_id,
                      remote_version = GREATEST(b.remote_version, EXCLUDED.remote_version),
                      write_uid = EXCLUDED.write_uid, write_date = EXCLUDED.write_date""",
            self._row_values(config, res_id, external_id, remote_version),
        )
        self.invalidate_model()
