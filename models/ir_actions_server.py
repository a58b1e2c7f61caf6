"""The "Sync to external API" server action, usable in automation rules and as a context action."""

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.base_automation.models.base_automation import CREATE_TRIGGERS

from ..engine import triggers
from .outbox import Outbox


def _changes(records, old_values, names=None):
    """``{record id: names whose value changed}`` of ``records`` from base_automation's
    ``old_values`` (only ``names`` when given)."""
    new_values = {
        record.id: {
            name: record[name]
            for name in old_values.get(record.id, {})
            if names is None or name in names
        }
        for record in records
    }
    return triggers.changed_fields(old_values, new_values)


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
        """Queue the sync of the records the action runs on, with the operation of the trigger
        (``engine.triggers.rule_operation``)."""
        records = (eval_context or {}).get("records")
        config = self.api_sync_config_id
        if not records or not config.sudo()._browse_for_commit([config.id]):  # active? (cached)
            return False
        old_values = self.env.context.get("old_values", triggers.NO_OLD_VALUES)
        operation = triggers.rule_operation(
            self.base_automation_id.trigger,
            old_values,
            CREATE_TRIGGERS,
            lines=bool(self.api_sync_lines_path),
        )
        if operation == triggers.LINES:
            self._sync_line_documents(records, self.env.context.get("old_values") or {})
        elif operation == triggers.CHANGES:
            self._sync_changes(records, old_values)
        elif operation == "delete":
            config.sync_record(records, "delete")
        else:
            Outbox(self.env).note(config, records, operation)
        return False

    def _sync_changes(self, records, old_values):
        """Send updates carrying the fields that changed and matter to the configuration."""
        config = self.api_sync_config_id
        automation = self.base_automation_id
        relevant = config._mapped_field_names() | set(automation.trigger_field_ids.mapped("name"))
        changes = _changes(records, old_values)
        for changed, record_ids in triggers.rule_updates(
            automation.trigger, changes, relevant
        ).items():
            Outbox(self.env).note(config, records.browse(record_ids), "update", changed)

    def _sync_line_documents(self, lines, old_values):
        """Send an update of the documents of ``lines`` (created, saved or about to be deleted),
        and of the documents that moved lines left."""
        config = self.api_sync_config_id
        path = tuple(self.api_sync_lines_path.split("."))
        links = {level[0]: level[3] for level in config._line_levels()}
        if path not in links:  # its Lines line was removed: generating the rules again drops it
            return
        link = links[path]
        changes = _changes(lines, old_values, {link})
        documents = config._documents_of_lines(
            path, lines, triggers.old_holders(changes, old_values, link)
        )
        if documents:
            Outbox(self.env).note(config, documents, "update", [path[0]])
