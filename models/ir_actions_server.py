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

    @api.constrains("state", "api_sync_config_id", "model_id")
    def _check_api_sync_config(self):
        for action in self.filtered(lambda action: action.state == "api_sync"):
            if not action.api_sync_config_id:
                raise ValidationError(
                    self.env._(
                        "Server action %(action)s: choose the API Sync Configuration to use.",
                        action=action.name,
                    )
                )
            if action.api_sync_config_id.model_id != action.model_id:
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

    def _run_action_api_sync_multi(self, eval_context=None):
        """Queue the sync of the records the action runs on, with the operation of the trigger."""
        records = (eval_context or {}).get("records")
        config = self.api_sync_config_id
        if not records or not config.sudo()._browse_for_commit([config.id]):  # active? (cached)
            return False
        automation = self.base_automation_id
        context = self.env.context
        if automation.trigger == "on_unlink":
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
