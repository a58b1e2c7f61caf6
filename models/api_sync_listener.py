"""The built-in listener: a configuration in ``listener`` mode reacts to create, write and unlink
of its model by itself, with the semantics of the generated automation rules and no rule.

The override sits in the class hierarchy of every model (``_inherit = "base"``), so a model
without a listening configuration pays one lookup in a cached frozenset per call.
"""

from collections import defaultdict

from odoo import api, fields, models, tools
from odoo.exceptions import UserError

# what a configuration's listener depends on: a change empties the listeners' cache
LISTENER_FIELDS = {"trigger_mode", "listen_field_ids", "active", "model_id"}


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

    # -- trigger mode and generated rules -----------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        configs = super().create(vals_list)
        if any(vals.get("trigger_mode") == "listener" for vals in vals_list):
            self.env.registry.clear_cache()  # _listened_models, _listeners
        return configs

    def write(self, vals):
        result = super().write(vals)
        if LISTENER_FIELDS & set(vals):
            self.env.registry.clear_cache()  # _listened_models, _listeners
        if {"trigger_mode", "active"} & set(vals):
            for config in self.sudo().with_context(active_test=False):
                wanted = config.active and config.trigger_mode == "rules"
                rules = config._generated_rules()
                rules.filtered(lambda rule, wanted=wanted: rule.active != wanted).active = wanted
        return result

    def _listener_lines_changed(self, path, lines, old_holders=None):
        """Note an update of the documents of ``lines`` (listed at ``path``), naming the
        document's field that leads to them."""
        documents = self._documents_of_lines(path, lines, old_holders)
        if documents:
            self._sync_at_commit(documents, "update", {path[0]})

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


class Base(models.AbstractModel):
    _inherit = "base"

    def _api_sync_listeners(self):
        """The listeners of this model as a document and as a line (see
        ``api.sync.config._listeners`` and ``_line_listeners``), or ``((), ())``: one lookup in a
        cached frozenset for a model that nobody listens to."""
        if not self.pool.ready:  # loading modules: automation rules do not run either
            return (), ()
        Config = self.env["api.sync.config"]
        if self._name not in Config._listened_models():
            return (), ()
        return Config._listeners(self._name), Config._line_listeners(self._name)

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        listeners, line_listeners = self._api_sync_listeners()
        if not (listeners or line_listeners):
            return records
        configs = self.env["api.sync.config"].sudo()
        for config_id, _names in listeners:
            configs.browse(config_id)._sync_at_commit(records, "create")
        for config_id, path, _names, _link in line_listeners:
            configs.browse(config_id)._listener_lines_changed(path, records)
        return records

    def write(self, vals):
        listeners, line_listeners = self._api_sync_listeners() if self else ((), ())
        # only the fields this write sets and a listener cares about are compared
        watched = {name for _id, names in listeners for name in names if name in vals}
        watched.update(
            name for _id, _path, names, _link in line_listeners for name in names if name in vals
        )
        if not watched:
            return super().write(vals)
        records = self.sudo()
        old_values = {record.id: {name: record[name] for name in watched} for record in records}
        result = super().write(vals)
        changes = {
            record.id: {name for name in watched if record[name] != old_values[record.id][name]}
            for record in records
        }
        configs = self.env["api.sync.config"].sudo()
        for config_id, names in listeners:
            by_fields = defaultdict(list)
            for record_id, changed in changes.items():
                if changed & names:
                    by_fields[frozenset(changed & names)].append(record_id)
            for changed, record_ids in by_fields.items():
                configs.browse(config_id)._sync_at_commit(
                    self.browse(record_ids), "update", changed
                )
        for config_id, path, names, link in line_listeners:
            lines = records.browse(
                [record_id for record_id, changed in changes.items() if changed & names]
            )
            # a line moved to another document leaves its old one too
            holders = [old_values[line.id][link] for line in lines if link in changes[line.id]]
            old_holders = holders[0].union(*holders[1:]) if holders else None
            configs.browse(config_id)._listener_lines_changed(path, lines, old_holders)
        return result

    def unlink(self):
        listeners, line_listeners = self._api_sync_listeners() if self else ((), ())
        if not (listeners or line_listeners):
            return super().unlink()
        configs = self.env["api.sync.config"].sudo()
        for config_id, path, _names, _link in line_listeners:  # their documents, before they go
            configs.browse(config_id)._listener_lines_changed(path, self)
        if listeners:  # the payload is captured now, before the records go
            configs.browse([config_id for config_id, _names in listeners]).sync_record(
                self, "delete"
            )
        return super().unlink()
