"""The "Sync to external API" server action, usable in automation rules and as a context action."""

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.base_automation.models.base_automation import CREATE_TRIGGERS

# Triggers that fire on any save: an update is sent only when a mapped or watched field changed.
SAVE_TRIGGERS = ("on_write", "on_create_or_write")


class IrActionsServer(models.Model):
    _inherit = "ir.actions.server"

    state = fields.Selection(
        selection_add=[("api_sync", "Sync to external API")],
        ondelete={"api_sync": "cascade"},
    )
    api_sync_config_id = fields.Many2one(
        "api.sync.config",
        string="API Sync Configuration",
        ondelete="cascade",
        index="btree_not_null",
        domain="[('model_id', '=', model_id)]",
    )
    api_sync_lines_path = fields.Char(
        string="API Sync Lines Path",
        help="Set on the rules generated for the Lines of a configuration: the path from the "
        "configuration's model to the lines this action runs on (e.g. order_line). The action "
        "then sends an update of the documents of these lines.",
    )

    @api.constrains("state", "api_sync_config_id", "model_id", "api_sync_lines_path")
    def _check_api_sync_config(self):
        for action in self.filtered(lambda action: action.state == "api_sync"):
            if not action.api_sync_config_id:
                raise ValidationError(
                    self.env._(
                        "Server action %(action)s: choose the API Sync Configuration to use.",
                        action=action.name,
                    )
                )
            if action.api_sync_lines_path:
                action._check_api_sync_lines_path()
            elif action.api_sync_config_id.model_id != action.model_id:
                raise ValidationError(
                    self.env._(
                        "Server action %(action)s runs on %(model)s but configuration "
                        "%(config)s syncs %(config_model)s.",
                        action=action.name,
                        model=action.model_id.model,
                        config=action.api_sync_config_id.display_name,
                        config_model=action.api_sync_config_id.model_name,
                    )
                )

    def _check_api_sync_lines_path(self):
        config = self.api_sync_config_id
        models_by_path = {".".join(path): model for path, model, *_rest in config._line_levels()}
        if models_by_path.get(self.api_sync_lines_path) != self.model_id.model:
            raise ValidationError(
                self.env._(
                    "Server action %(action)s runs on %(model)s, which configuration %(config)s "
                    "does not list at %(path)s (its Lines list: %(lines)s).",
                    action=self.name,
                    model=self.model_id.model,
                    config=config.display_name,
                    path=self.api_sync_lines_path,
                    lines=", ".join(f"{path} ({model})" for path, model in models_by_path.items()),
                )
            )

    def _run_action_api_sync_multi(self, eval_context=None):
        """Queue the sync of the records the action runs on, with the operation of the trigger."""
        records = (eval_context or {}).get("records")
        config = self.api_sync_config_id
        if not records or not config.sudo()._browse_for_commit([config.id]):  # active? (cached)
            return False
        automation = self.base_automation_id
        context = self.env.context
        if self.api_sync_lines_path:
            self._sync_line_documents(records, context.get("old_values") or {})
        elif automation.trigger == "on_unlink":
            config.sync_record(records, "delete")
        elif (
            "old_values" in context
            and context["old_values"] is None
            and automation.trigger in CREATE_TRIGGERS
        ):
            config._sync_at_commit(records, "create")
        elif context.get("old_values"):
            self._sync_changes(records, context["old_values"])
        else:
            config._sync_at_commit(records, "update")
        return False

    def _sync_changes(self, records, old_values):
        """Send updates carrying the fields that changed and matter to the configuration."""
        config = self.api_sync_config_id
        automation = self.base_automation_id
        watched = set(automation.trigger_field_ids.mapped("name"))
        relevant = config._mapped_field_names() | watched
        for record in records:
            old = old_values.get(record.id, {})
            changed = {name for name in old if record[name] != old[name]}
            if automation.trigger in SAVE_TRIGGERS:
                changed &= relevant
                if not changed:
                    continue
            config._sync_at_commit(record, "update", changed or None)

    def _sync_line_documents(self, lines, old_values):
        """Send an update of the documents of ``lines`` (created, saved or about to be deleted),
        and of the documents that moved lines left."""
        config = self.api_sync_config_id
        path = tuple(self.api_sync_lines_path.split("."))
        links = {level[0]: level[3] for level in config._line_levels()}
        if path not in links:  # its Lines line was removed: generating the rules again drops it
            return
        link = links[path]
        holders = [
            old_values[line.id][link]
            for line in lines
            if link in old_values.get(line.id, {}) and old_values[line.id][link] != line[link]
        ]
        documents = config._documents_of_lines(
            path, lines, holders[0].union(*holders[1:]) if holders else None
        )
        if documents:
            config._sync_at_commit(documents, "update", [path[0]])
