"""What every request of a configuration needs from it besides its body, read once per job."""

from odoo import models

from .api_sync_log import GROUP_KEY


class ApiSyncConfig(models.Model):
    _inherit = "api.sync.config"

    def _per_group(self, name, compute):
        """``compute()``, computed once per job's delivery group (see ``api.sync.log._deliver``)
        and configuration: the target policy, credentials and extra headers do not change
        within a job's transaction. Outside a group, computed at each call."""
        group = self.env.context.get(GROUP_KEY)
        if group is None:
            return compute()
        key = (name, self.id)
        if key not in group.settings:
            group.settings[key] = compute()
        return group.settings[key]
