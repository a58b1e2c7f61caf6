"""What the writer's commit reads, without a query: the configuration from a cache, and the
existence of the records the transaction noted.

Every transaction that changed a synced record queues its events just before it commits
(``_queue_pending``). The few fields of the configuration it needs come from an ormcache,
cleared whenever one of them changes (``CACHED_FIELDS``). The records ``_sync_at_commit`` noted
exist at commit unless unlinked since (``Base.unlink`` forgets them): a configuration without a
domain sends them with no query. A record deleted in the same transaction by the database alone (a
cascade, no ``unlink``) gets an event that its delivery cancels (RecordDeleted).
"""

from odoo import api, models, tools

from . import compat
from .api_sync_config import CONFIG_FIELDS

# (model name, record id) of the records noted for the commit and not unlinked since
NOTED_KEY = "api_sync.noted"


class ApiSyncConfig(models.Model):
    _inherit = "api.sync.config"

    @api.model
    @tools.ormcache("config_id")
    def _commit_values(self, config_id):
        """``((field name, cache value), ...)`` of ``CONFIG_FIELDS`` of an active
        configuration, or ``None`` when it is archived or deleted."""
        config = self.sudo().with_context(active_test=False).browse(config_id).exists()
        if not config.active:
            return None
        return tuple(
            (name, config._fields[name].convert_to_cache(config[name], config))
            for name in CONFIG_FIELDS
        )

    @api.model
    def _browse_for_commit(self, config_ids):
        """The active configurations among ``config_ids``, their ``CONFIG_FIELDS`` in the
        environment's cache (values changed in this transaction and not saved yet stay)."""
        active = []
        for config_id in config_ids:
            values = self._commit_values(config_id)
            if values is None:
                continue
            active.append(config_id)
            config = self.browse(config_id)
            for name, value in values:
                compat.cache_insert_missing(config, self._fields[name], [value])
        return self.browse(active)

    def _sync_at_commit(self, records, operation, changed_fields=None):
        noted = self.env.cr.precommit.data.setdefault(NOTED_KEY, set())
        noted.update((records._name, record_id) for record_id in records.ids)
        return super()._sync_at_commit(records, operation, changed_fields)

    def _filter_in_domain(self, records):
        """Records noted in this transaction exist: without a domain, nothing to query."""
        noted = self.env.cr.precommit.data.get(NOTED_KEY)
        if (
            noted
            and records
            and not self._get_domain()
            and all((records._name, record_id) in noted for record_id in records.ids)
        ):
            return records
        return super()._filter_in_domain(records)
