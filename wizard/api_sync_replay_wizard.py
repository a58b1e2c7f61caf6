"""Replay or recover the outbound events of a configuration (or of one record) since a time.

Recover: the failed and cancelled events are queued again with their event ids (as Retry
does), so receivers deduplicate what they had. Replay: the delivered events are sent again as
new events (new event ids, linked to their original by ``replay_of_id``) carrying the body
delivered, the new event id in its envelope and the original's as ``replay_of``.
"""

import json

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..engine import wire
from ..models.api_sync_log import notify_viewers

MODE_STATES = {"recover": ("failed", "cancelled"), "replay": ("done",)}


class ApiSyncReplayWizard(models.TransientModel):
    _name = "api.sync.replay.wizard"
    _description = "API Sync: Replay / Recover Events"

    config_id = fields.Many2one(
        "api.sync.config",
        string="Configuration",
        required=True,
        ondelete="cascade",
        help="On a record, only the events of that record with this configuration are sent.",
    )
    res_model = fields.Char(string="Model", readonly=True)
    res_id = fields.Integer(string="Record ID", readonly=True)
    record_name = fields.Char(string="Record", compute="_compute_record_name")
    mode = fields.Selection(
        [("recover", "Recover failed or cancelled events"), ("replay", "Replay delivered events")],
        required=True,
        default="recover",
        help="Recover: the failed and cancelled events are queued again with their event ids "
        "(receivers deduplicate them). Replay: the delivered events are sent again as new "
        "events (new event ids), marked as replays of their original.",
    )
    since = fields.Datetime(
        required=True,
        default=lambda self: fields.Datetime.subtract(fields.Datetime.now(), days=1),
        help="The events created since this time.",
    )
    event_count = fields.Integer(string="Events To Send", compute="_compute_events")
    preview = fields.Char(compute="_compute_events")

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        active_model, active_id = context.get("active_model"), context.get("active_id")
        if active_model == "api.sync.config" and active_id:
            values.setdefault("config_id", active_id)
        elif (
            active_model
            and active_id
            and active_model in self.env["api.sync.config"]._synced_models()
        ):
            values.update(res_model=active_model, res_id=active_id)
            if "config_id" not in values:
                config = self.env["api.sync.config"].search(
                    [("model_name", "=", active_model)], limit=1
                )
                values["config_id"] = config.id
        return values

    @api.depends("res_model", "res_id")
    def _compute_record_name(self):
        for wizard in self:
            record = wizard._record()
            wizard.record_name = record.display_name if record else False

    def _record(self):
        """The record the wizard is about, while it exists (else an empty recordset or None)."""
        if not (self.res_model and self.res_id) or self.res_model not in self.env:
            return None
        return self.env[self.res_model].browse(self.res_id).exists()

    @api.depends("config_id", "res_model", "res_id", "mode", "since")
    def _compute_events(self):
        for wizard in self:
            count = len(wizard._events())
            wizard.event_count = count
            if not wizard.config_id or not wizard.since:
                wizard.preview = False
            elif wizard.mode == "recover":
                wizard.preview = self.env._(
                    "%(count)s failed or cancelled event(s) since %(since)s will be queued "
                    "again with their event ids.",
                    count=count,
                    since=wizard._since_label(),
                )
            else:
                wizard.preview = self.env._(
                    "%(count)s delivered event(s) since %(since)s will be sent again as new "
                    "events (new event ids, marked as replays).",
                    count=count,
                    since=wizard._since_label(),
                )

    def _since_label(self):
        return fields.Datetime.to_string(fields.Datetime.context_timestamp(self, self.since))

    def _events(self):
        """The outbound events the wizard sends again, oldest first."""
        Log = self.env["api.sync.log"]
        if not self.config_id or not self.since or not self.mode:
            return Log
        domain = [
            ("config_id", "=", self.config_id.id),
            ("direction", "=", "outbound"),
            ("state", "in", MODE_STATES[self.mode]),
            ("create_date", ">=", self.since),
        ]
        if self.res_model and self.res_id:
            domain += [("res_model", "=", self.res_model), ("covers_res_id", "=", self.res_id)]
        return Log.search(domain, order="id")

    def action_send(self):
        """Recover or replay the events, in bulk through the usual jobs; say so in the
        chatter."""
        self.ensure_one()
        self.config_id._check_manager()
        events = self._events()
        if not events:
            raise UserError(self.env._("No event to send since this time."))
        if self.mode == "recover":
            sent = events._retry_now()
            text = self.env._(
                "%(user)s recovered %(count)s failed or cancelled event(s) since %(since)s "
                "(queued again with their event ids).",
                user=self.env.user.name,
                count=len(sent),
                since=self._since_label(),
            )
        else:
            sent = self._replay(events)
            text = self.env._(
                "%(user)s replayed %(count)s delivered event(s) since %(since)s (sent again "
                "as new events).",
                user=self.env.user.name,
                count=len(sent),
                since=self._since_label(),
            )
        self._post(text)
        return sent._bulk_notice(sent, text, "")

    def _replay(self, originals):
        """New events (new event ids) sending again what ``originals`` delivered."""
        Log = self.env["api.sync.log"].sudo()
        values = []
        for original in originals.sudo():
            new = Log._event_values(
                original.config_id,
                original.operation,
                res_model=original.res_model,
                res_id=original.res_id,
                batch_res_ids=original.batch_res_ids,
                record_name=original.record_name,
                record_count=original.record_count,
                changed_fields=original.changed_fields,
                record_version=original.record_version,
                resource_values=original.resource_values,
                replay_of_id=original.id,
            )
            if original.request_body:  # the body delivered, with the new event id
                body = json.loads(original.request_body)
                body["id"] = new["idempotency_key"]
                body["replay_of"] = original.idempotency_key  # marked: a receiver can tell
                new["request_body"] = wire.encode(body).decode()
            values.append(new)
        replays = Log.create(values)
        replays._enqueue_grouped()
        notify_viewers(replays)
        return replays.sudo(False)

    def _post(self, text):
        """The message on the configuration's chatter, and on the record's when it has one."""
        self.config_id.message_post(body=Markup("<p>%s</p>") % text)
        record = self._record()
        if record and hasattr(record, "message_post"):
            record.message_post(body=Markup("<p>%s</p>") % text)
