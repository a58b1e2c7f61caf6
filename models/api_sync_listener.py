"""The built-in listener: a configuration in ``listener`` mode reacts to create, write and unlink
of its model by itself, with the semantics of the generated automation rules and no rule.

Here: its trigger mode and the listeners' tables, cached on the configuration (cleared with its
other caches, ``_invalidate_caches``). The create/write/unlink override of every model that
reads them is ``Base`` (base.py).
"""

from odoo import api, fields, models, tools
from odoo.exceptions import UserError

from .outbox import Outbox


class ApiSyncConfig(models.Model):
    _inherit = "api.sync.config"

    trigger_mode = fields.Selection(
        [("rules", "Automation rules"), ("listener", "Built-in listener")],
        required=True,
        default="rules",
        tracking=True,
        help="Built-in listener: the configuration itself sends creations, updates of the "
        "mapped (or also watched) fields and deletions of its model, with no automation rule; "
        "the cheapest for the people who save records. Automation rules: send what the rules "
        "calling this configuration decide; choose them to add conditions (before-update "
        "domains, a state going from one value to another, time-based triggers).",
    )
    listen_field_ids = fields.Many2many(
        "ir.model.fields",
        "api_sync_config_listen_field_rel",
        "config_id",
        "field_id",
        string="Also Watched Fields",
        domain="[('model_id', '=', model_id), ('store', '=', True)]",
        help="Built-in listener: a change of one of these fields sends an update too, even when "
        "it is not mapped (the mapped fields are always watched, and so is archiving).",
    )

    # -- the listeners' cache (cleared whenever a configuration or a mapping changes) ----------

    @api.model
    @tools.ormcache()
    def _listened_models(self):
        """Names of the models that an active configuration in listener mode listens to: its
        model and the models of the records its Lines list."""
        configs = self.sudo().search([("trigger_mode", "=", "listener")])
        names = set(configs.mapped("model_name"))
        names.update(level[1] for config in configs for level in config._line_levels())
        return frozenset(name for name in names if not name.startswith("api.sync."))

    @api.model
    @tools.ormcache("model_name")
    def _listeners(self, model_name):
        """``((config id, field names whose change sends an update), ...)`` of the active
        listening configurations of ``model_name``."""
        model = self.env[model_name]
        configs = self.sudo().search(
            [("trigger_mode", "=", "listener"), ("model_name", "=", model_name)]
        )
        archiving = {model._active_name} if model._active_name else set()
        return tuple(
            (
                config.id,
                frozenset(
                    config._mapped_field_names()
                    | set(config.listen_field_ids.mapped("name"))
                    | archiving
                ),
            )
            for config in configs
        )

    @api.model
    @tools.ormcache("model_name")
    def _line_listeners(self, model_name):
        """``((config id, path, watched field names, link field), ...)`` of the Lines of the
        active listening configurations that list records of ``model_name``."""
        configs = self.sudo().search([("trigger_mode", "=", "listener")])
        return tuple(
            (config.id, path, names, link)
            for config in configs
            for path, line_model, names, link in config._line_levels()
            if line_model == model_name
        )

    # -- what it sends and the rules it refuses -----------------------------------------------

    def _listener_lines_changed(self, path, lines, old_holders=None):
        """Note an update of the documents of ``lines`` (listed at ``path``), naming the
        document's field that leads to them."""
        documents = self._documents_of_lines(path, lines, old_holders)
        if documents:
            Outbox(self.env).note(self, documents, "update", {path[0]})

    def _generate_automation_rules(self, on_create, on_update, on_delete):
        if self.trigger_mode == "listener":
            raise UserError(
                self.env._(
                    "%(config)s sends its events with its built-in listener: it needs no "
                    "automation rule (set Trigger Mode to Automation rules to use rules).",
                    config=self.display_name,
                )
            )
        return super()._generate_automation_rules(on_create, on_update, on_delete)
