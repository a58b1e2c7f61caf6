"""Inbound events: what a remote system sent to a configuration's inbound URL, stored before the
answer and applied to Odoo by a job (``Inbound``, models/inbound.py)."""

import json
import uuid

from odoo import api, fields, models

from . import compat, queue_jobs
from .constants import MANAGER_GROUP
from .inbound import Inbound
from .outbox import Outbox

INBOUND_OUTCOMES = [
    ("created", "Created"),
    ("updated", "Updated"),
    ("archived", "Archived"),
    ("deleted", "Deleted"),
    ("stale", "Skipped: stale"),
    ("missing", "Skipped: nothing to delete"),
]


class ApiSyncLog(models.Model):
    _inherit = "api.sync.log"

    inbound_body = fields.Text(
        string="Received Body", groups=MANAGER_GROUP, help="The verified JSON body received."
    )
    inbound_headers = fields.Text(
        groups=MANAGER_GROUP,
        help="The headers the event was read from (event id, operation), never signatures.",
    )
    inbound_method = fields.Char(string="HTTP Method Received")
    sender_event_id = fields.Char(
        string="Sender Event ID",
        readonly=True,
        help="The event id the sender gave (webhook-id or the Event ID Path): a redelivery "
        "with the same id is answered 200 and not applied twice.",
    )
    remote_id = fields.Char(string="Remote Object ID", readonly=True)
    remote_timestamp = fields.Datetime(
        readonly=True, help="The remote change time the event carries (Timestamp Path)."
    )
    inbound_outcome = fields.Selection(INBOUND_OUTCOMES, string="Outcome", readonly=True)
    unknown_keys = fields.Text(
        readonly=True, help="Keys of the data that no inbound mapping line reads: ignored."
    )

    _sender_event_unique = compat.unique(
        "config_id, sender_event_id", "A sender's event id is applied once per configuration."
    )

    # -- stored by the inbound URL ----------------------------------------------------------------

    @api.model
    def _store_inbound(self, config, event, body, method, headers):
        """Store the verified ``event`` (``engine.inbound.Event``) of ``config`` and the job
        applying it, in one statement (or add it to a job of the configuration not started
        yet: a flood of events costs a job per group, not per event); returns the new event,
        or an empty recordset when the sender's event id is known (a redelivery). Raises
        SerializationFailure when a concurrent request stores the same id (the caller answers:
        retry)."""
        job_uuid = queue_jobs.open_inbound_job(self.env, config.id, config._records_per_job())
        values = self._event_values(
            config,
            event.operation,
            direction="inbound",
            sender_event_id=event.event_id,
            remote_id=event.external_id or False,
            remote_timestamp=event.timestamp or False,
            inbound_body=body.decode(),
            inbound_headers=json.dumps(headers, sort_keys=True),
            inbound_method=method,
            job_uuid=job_uuid or str(uuid.uuid4()),
        )
        return Outbox(self.env)._insert(
            config, [values], skip_conflicts=True, store_jobs=not job_uuid
        )

    @api.model
    def _store_refused_event(self, config, error, body, method, headers):
        """A verified request that is not a usable event: a failed inbound event saying why."""
        values = self._event_values(
            config,
            "update",
            direction="inbound",
            state="failed",
            error_class="EventError",
            error_message=str(error),
            inbound_body=body.decode(),
            inbound_headers=json.dumps(headers, sort_keys=True),
            inbound_method=method,
        )
        return Outbox(self.env)._insert(config, [values], skip_conflicts=True)

    # -- the job ----------------------------------------------------------------------------------

    def _enqueue_inbound(self, eta=None):
        """Queue the job applying each of these inbound events (a retry, a recovery)."""
        for log in self:
            log.job_uuid = str(uuid.uuid4())
            queue_jobs.store(
                log,
                log.job_uuid,
                queue_jobs.inbound_description(log.config_id),
                eta,
                inbound=True,
            )

    def _apply_inbound(self):
        """Job: apply these inbound events (see ``Inbound``)."""
        return Inbound(self, self.env.context.get("job_uuid")).run()
