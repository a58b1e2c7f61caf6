"""Endpoint health shared by every worker: circuit breaker, 410 Gone, 429 and rate limits.

One ``api.sync.endpoint.state`` row per configuration holds what the workers share about its
endpoint (see ``engine/health.py`` for the states and transitions); the model owns what a
delivery asks of it: a pass to send (``_gate``), the record of an answer (``_record``), the
probe of a paused endpoint and the send slots of a rate limit. The row is read and written only
on short transactions of their own (``transactions.own_transaction``), committed at once.

- Exactly one probe at a time: a paused endpoint's probe lease is taken by a conditional
  ``UPDATE ... RETURNING``; a second worker's update waits for the first and then matches nothing.
- Rate limit: a send slot is reserved by one ``UPDATE`` moving ``next_slot_at`` forward by
  ``1 / rate`` seconds; slots are spaced by that much whichever worker takes them.
"""

import contextlib
import dataclasses
import logging
import time
from datetime import datetime, timedelta

from odoo import SUPERUSER_ID, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import format_datetime

from ..engine import health, wire
from . import compat, queue_jobs
from .constants import MANAGER_GROUP
from .transactions import fetch, own_transaction

_logger = logging.getLogger(__name__)

COLUMNS = [field.name for field in dataclasses.fields(health.Health)]
SELECT_COLUMNS = ", ".join(
    f"COALESCE({column}, 0)" if column.endswith("_count") else column for column in COLUMNS
)
# seconds a probe holds its lease beyond twice the timeout (the lease of a dead worker expires)
PROBE_LEASE = 30
# seconds a healthy endpoint's pass serves the next deliveries of a job, while they are answered
# (the state another worker changes meanwhile is seen after that)
GATE_REUSE = 1


@dataclasses.dataclass
class Gate:
    """A delivery's pass to send: what the endpoint's state was, and whether it is the probe."""

    health: health.Health
    probe: bool = False
    wait_until: datetime | None = None  # set: the delivery waits until then instead
    # set: the next delivery of the same job may go on this pass until then, if this one's
    # answer changed nothing of the endpoint's state
    reusable_until: datetime | None = None


@dataclasses.dataclass
class After:
    """What the endpoint's state makes of an attempt, for its event."""

    wait_until: datetime | None = None  # the endpoint is paused or disabled: the event waits
    charged: bool = True  # the error counts toward the event's Max Attempts
    give_up: bool = False  # retried for longer than Give Up After


class ApiSyncEndpointState(models.Model):
    _name = "api.sync.endpoint.state"
    _description = "API Sync Endpoint State"
    _rec_name = "config_id"
    _log_access = False  # written by the workers with SQL, on transactions of their own

    config_id = fields.Many2one(
        "api.sync.config", string="Configuration", required=True, ondelete="cascade", readonly=True
    )
    state = fields.Selection(health.STATES, required=True, default=health.HEALTHY, readonly=True)
    failure_count = fields.Integer(readonly=True, help="Retryable errors in a row.")
    failing_since = fields.Datetime(readonly=True)
    last_answered_at = fields.Datetime(
        readonly=True, help="Last answer of the endpoint (2xx, or an error about the event)."
    )
    paused_until = fields.Datetime(string="Next Probe", readonly=True)
    probe_count = fields.Integer(string="Failed Probes", readonly=True)
    probe_until = fields.Datetime(string="Probe Lease", readonly=True)
    not_before = fields.Datetime(readonly=True, help="No request before this (429 Retry-After).")
    next_slot_at = fields.Datetime(readonly=True, help="Next free send slot (rate limit).")
    resumed_at = fields.Datetime(readonly=True)
    last_error = fields.Char(readonly=True)

    _config_unique = compat.unique("config_id", "A configuration has one endpoint state.")

    @api.model
    def _load(self, cr, config_id, lock=False):
        """The endpoint's Health as committed now (None when nothing was ever recorded)."""
        cr.execute(
            f"SELECT {SELECT_COLUMNS} FROM api_sync_endpoint_state WHERE config_id = %s"
            + (" FOR UPDATE" if lock else ""),
            (config_id,),
        )
        row = cr.fetchone()
        return health.Health(*row) if row else None

    @api.model
    def _ensure(self, cr, config_id):
        cr.execute(
            """INSERT INTO api_sync_endpoint_state (config_id, state, failure_count, probe_count)
               VALUES (%s, 'healthy', 0, 0) ON CONFLICT (config_id) DO NOTHING""",
            (config_id,),
        )

    @api.model
    def _store(self, cr, config_id, state, last_error=None):
        values = dataclasses.asdict(state)
        if last_error is not None:
            values["last_error"] = last_error[:200]
        assignments = ", ".join(f"{column} = %({column})s" for column in values)
        cr.execute(
            f"UPDATE api_sync_endpoint_state SET {assignments} WHERE config_id = %(config_id)s",
            {**values, "config_id": config_id},
        )

    # -- what a delivery asks -------------------------------------------------------------------

    @api.model
    def _gate(self, config):
        """Whether a delivery to ``config``'s endpoint goes now: a ``Gate``.

        Waits for a paused or disabled endpoint and for a 429's Retry-After; makes one waiting
        delivery the probe of a paused endpoint; holds the rate limit (sleeping at most
        ``MAX_SLEEP`` for a slot, else waiting for it).
        """
        config = config.sudo()
        now = wire.utc_now()
        sleep = 0
        with own_transaction(self.env) as cr:
            state = self._load(cr, config.id) or health.Health()
            timeout = config.timeout or 10
            action, until = health.gate(state, now, recheck=timeout)
            if action == "wait":
                return Gate(state, wait_until=health.spread(until))
            if action == "probe":  # a probe is one request: it ignores the rate limit
                if self._claim_probe(config, cr):
                    return Gate(state, probe=True)
                # another worker took it meanwhile: look again after its timeout
                return Gate(state, wait_until=health.spread(now + timedelta(seconds=timeout)))
            if config.rate_limit > 0:
                slot = self._reserve_slot(config, cr=cr)
                if slot is None:
                    cr.execute(
                        "SELECT next_slot_at FROM api_sync_endpoint_state WHERE config_id = %s",
                        (config.id,),
                    )
                    wake = cr.fetchone()[0] - timedelta(seconds=health.MAX_SLEEP)
                    return Gate(state, wait_until=health.spread(max(wake, now)))
                sleep = health.slot_wait(slot, wire.utc_now()) or 0
        if sleep:
            time.sleep(sleep)  # committed: nothing is held for the other workers meanwhile
            return Gate(state)
        reusable = state.clean and not config.rate_limit
        return Gate(state, reusable_until=now + timedelta(seconds=GATE_REUSE) if reusable else None)

    @api.model
    def _record(self, config, outcome, gate, previous_attempt_at, created):
        """Record an attempt's outcome on ``config``'s endpoint state; returns an ``After``."""
        config = config.sudo()
        if outcome.status == 410 and not outcome.object_url:
            kind = "gone"
        elif outcome.verdict == "retry":
            kind = "failed"
        elif outcome.verdict == "done" or outcome.status:
            kind = "answered"  # 2xx, or an error about the event: the endpoint works
        else:
            return After()  # a request that could not be made says nothing of the endpoint
        if kind == "answered" and gate.health.clean and not gate.probe:
            return After()  # the usual case: nothing to write
        gate.reusable_until = None
        now = wire.utc_now()
        with own_transaction(self.env) as cr:
            self._ensure(cr, config.id)
            before = self._load(cr, config.id, lock=True)
            if kind == "gone":
                state, event = health.gone(before, now)
            elif kind == "failed":
                retry_after = outcome.retry_after
                if outcome.status == 429 and retry_after is None:
                    retry_after = config.backoff_base
                state, event = health.failed(
                    before,
                    now,
                    config.circuit_threshold,
                    config.backoff_base,
                    config.backoff_max,
                    retry_after=retry_after,
                    probe=gate.probe,
                )
            else:
                state, event = health.answered(before, now)
            error = None if kind == "answered" else (outcome.error_class or "")
            self._store(cr, config.id, state, last_error=error)
            if event == "resumed":
                queue_jobs.wake_endpoint_jobs(cr, config.id, now)
        if event:
            self._tell(config, event, state, error)
        if kind != "answered" and state.state in (health.PAUSED, health.DISABLED):
            until = state.paused_until if state.state == health.PAUSED else None
            until = until or now + timedelta(seconds=health.DISABLED_RECHECK)
            return After(wait_until=health.spread(until), charged=False)
        if kind != "failed":
            return After()
        return After(
            charged=health.charged("retry", previous_attempt_at, before),
            give_up=health.gives_up(created, state.resumed_at, now, config.give_up_hours),
        )

    @api.model
    def _claim_probe(self, config, cr=None):
        """Take the probe lease of ``config``'s paused endpoint; False when another worker
        holds it."""
        lease = 2 * (config.sudo().timeout or 10) + PROBE_LEASE
        rows = fetch(
            self.env,
            cr,
            """UPDATE api_sync_endpoint_state
                  SET probe_until = %(now)s + make_interval(secs => %(lease)s)
                WHERE config_id = %(id)s AND state = 'paused'
                  AND (paused_until IS NULL OR paused_until <= %(now)s)
                  AND (probe_until IS NULL OR probe_until <= %(now)s)
            RETURNING config_id""",
            {"id": config.id, "now": wire.utc_now(), "lease": lease},
        )
        return bool(rows)

    @api.model
    def _reserve_slot(self, config, horizon=health.MAX_SLEEP, cr=None):
        """Reserve the next send slot of ``config``'s endpoint under its rate limit, if it comes
        within ``horizon`` seconds: returns its time (naive UTC), else None (nothing
        reserved)."""
        interval = health.slot_interval(config.sudo().rate_limit)
        query = """
            UPDATE api_sync_endpoint_state
               SET next_slot_at = GREATEST(COALESCE(next_slot_at, %(now)s), %(now)s)
                                  + make_interval(secs => %(interval)s)
             WHERE config_id = %(id)s
               AND COALESCE(next_slot_at, %(now)s) <= %(now)s + make_interval(secs => %(horizon)s)
         RETURNING next_slot_at - make_interval(secs => %(interval)s)"""
        params = {"id": config.id, "interval": interval, "horizon": horizon}
        with contextlib.ExitStack() as stack:
            if cr is None:
                cr = stack.enter_context(own_transaction(self.env))
            self._ensure(cr, config.id)
            rows = fetch(self.env, cr, query, {**params, "now": wire.utc_now()})
        return rows[0][0] if rows else None

    # -- what a manager or a configuration change asks ------------------------------------------

    @api.model
    def _reset(self, configs):
        """A new URL is a new endpoint: what the old one answered (failing, paused, disabled,
        a 429's pause) no longer holds, and the deliveries waiting for it go."""
        now = wire.utc_now()
        with own_transaction(self.env) as cr:
            for config in configs:
                before = self._load(cr, config.id, lock=True)
                if before and before != health.Health():
                    self._store(cr, config.id, health.Health())
                    queue_jobs.wake_endpoint_jobs(cr, config.id, now)
        self.invalidate_model()

    @api.model
    def _resume(self, configs):
        """Resume the paused endpoints of ``configs`` now, re-enable the disabled ones: waiting
        deliveries go."""
        now = wire.utc_now()
        for config in configs:
            with own_transaction(self.env) as cr:
                before = self._load(cr, config.id, lock=True)
                if not before or before.state not in (health.PAUSED, health.DISABLED):
                    continue
                self._store(cr, config.id, health.reenabled(before, now))
                queue_jobs.wake_endpoint_jobs(cr, config.id, now)
            self._tell(
                config,
                "resumed",
                feedback=self.env._(
                    "Endpoint resumed by %(user)s: waiting deliveries go.", user=self.env.user.name
                ),
            )
        self.invalidate_model()

    # -- telling the manager --------------------------------------------------------------------

    @api.model
    def _summaries(self):
        return {
            "paused": self.env._("API sync endpoint paused"),
            "disabled": self.env._("API sync endpoint disabled"),
        }

    @api.model
    def _tell(self, config, event, state=None, error=None, feedback=None):
        """Tell the configuration's manager once: an activity when the endpoint is paused or
        disabled (a note when nobody can get one), marked done when it resumes."""
        config = config.sudo()
        _logger.info("api_sync: endpoint of %s %s", config.name, event)
        summaries = self._summaries()
        if event == "resumed":
            activities = config.activity_ids.filtered(
                lambda activity: activity.summary in summaries.values()
            )
            feedback = feedback or self.env._("The endpoint answers again: waiting deliveries go.")
            if activities:
                activities.action_feedback(feedback)
            else:
                config.message_post(body=feedback, subtype_xmlid="mail.mt_note")
            return
        if event == "paused":
            note = self.env._(
                "%(config)s: %(count)s errors in a row since %(since)s (last: %(error)s). "
                "Deliveries wait without spending attempts; one probe at a time checks the "
                "endpoint (next: %(until)s) and they resume on their own once it answers.",
                config=config.name,
                count=state.failure_count,
                since=format_datetime(self.env, state.failing_since),
                error=error or "",
                until=format_datetime(self.env, state.paused_until),
            )
        else:
            note = self.env._(
                "%(config)s: the endpoint answered 410 Gone. Nothing is sent to it and "
                "deliveries wait until a manager clicks Re-enable Endpoint.",
                config=config.name,
            )
        managers = config.responsible_id or self.env.ref(MANAGER_GROUP).users.filtered(
            lambda user: user.active and not user.share and user.id != SUPERUSER_ID
        )
        if not managers:
            config.message_post(body=note, subtype_xmlid="mail.mt_note")
        for manager in managers:
            config.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=summaries[event],
                note=note,
                user_id=manager.id,
            )


class ApiSyncConfig(models.Model):
    _inherit = "api.sync.config"

    rate_limit = fields.Float(
        string="Rate Limit (req/s)",
        default=0.0,
        help="Most requests per second sent to the endpoint, by all workers together "
        "(0: unlimited).",
    )
    circuit_threshold = fields.Integer(
        string="Pause After (failures)",
        default=5,
        help="Retryable errors in a row (connection errors, timeouts, 408, 425, 429, 5xx), over "
        "at least a minute, after which the endpoint is paused: deliveries wait without spending "
        "attempts and one probe at a time checks the endpoint.",
    )
    give_up_hours = fields.Integer(
        string="Give Up After (h)",
        default=24,
        help="An event still getting retryable errors this many hours after it was created (or "
        "after its endpoint last resumed) fails, unless its endpoint is paused.",
    )
    endpoint_state = fields.Selection(
        health.STATES, string="Endpoint", compute="_compute_endpoint_state"
    )
    endpoint_status = fields.Char(compute="_compute_endpoint_state")
    endpoint_failing_since = fields.Datetime(
        string="Failing Since", compute="_compute_endpoint_state"
    )
    endpoint_paused_until = fields.Datetime(string="Next Probe", compute="_compute_endpoint_state")

    def _compute_endpoint_state(self):
        states = {
            state.config_id.id: state
            for state in self.env["api.sync.endpoint.state"]
            .sudo()
            .search([("config_id", "in", [config_id for config_id in self.ids if config_id])])
        }
        for config in self:
            state = states.get(config.id)
            config.endpoint_state = state.state if state else health.HEALTHY
            config.endpoint_failing_since = state.failing_since if state else False
            config.endpoint_paused_until = state.paused_until if state else False
            config.endpoint_status = config._endpoint_label(state)

    def _endpoint_label(self, state):
        if not state or state.state == health.HEALTHY:
            return self.env._("Healthy")
        when = {
            "since": format_datetime(self.env, state.failing_since) if state.failing_since else "",
            "until": format_datetime(self.env, state.paused_until) if state.paused_until else "",
            "count": state.failure_count,
            "error": state.last_error or "",
        }
        if state.state == health.FAILING:
            return self.env._(
                "Failing since %(since)s (%(count)s errors in a row, last: %(error)s)", **when
            )
        if state.state == health.PAUSED:
            return self.env._(
                "Paused until %(until)s (next probe), failing since %(since)s "
                "(%(count)s errors in a row, last: %(error)s)",
                **when,
            )
        return self.env._("Disabled: the endpoint answered 410 Gone")

    @api.constrains("rate_limit", "circuit_threshold", "give_up_hours")
    def _check_endpoint_settings(self):
        for config in self:
            problems = {
                "rate_limit": config.rate_limit < 0
                and self.env._("cannot be negative (0: unlimited)"),
                "circuit_threshold": config.circuit_threshold < 1
                and self.env._("must be at least 1 (errors in a row)"),
                "give_up_hours": config.give_up_hours < 1
                and self.env._("must be at least 1 (hours)"),
            }
            for fname, problem in problems.items():
                if problem:
                    raise ValidationError(
                        self.env._(
                            "%(field)s of %(config)s %(problem)s.",
                            field=self._fields[fname].get_description(self.env)["string"],
                            config=config.display_name,
                            problem=problem,
                        )
                    )

    def action_endpoint_resume(self):
        """Resume a paused endpoint now, or re-enable a disabled one: waiting deliveries go."""
        self._check_manager()
        self.check_access("write")
        self.env["api.sync.endpoint.state"]._resume(self)
        return True
