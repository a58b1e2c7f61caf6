"""Configuration of one outbound sync: which model, which endpoint, how to authenticate and map."""

import json
import uuid
from functools import cache
from urllib.parse import urlparse

from markupsafe import Markup

from odoo import SUPERUSER_ID, Command, api, fields, models, tools
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.modules.module import get_manifest
from odoo.tools import safe_eval, split_every

from ..engine import mapping, wire
from . import compat
from .adapters import adapter_for
from .api_sync_run import checkpoint_label
from .constants import ADMIN_GROUP, MANAGER_GROUP, USER_GROUP
from .mapper import Mapper
from .outbox import Outbox

RECORDS_PER_JOB = 50  # a job's attempts are bounded in time (delivery.GROUP_SECONDS)
# batches of a send_batch or a run share jobs up to about this many records (a job's own cost,
# about 20 ms and a dozen statements, is then a tenth of its work: BENCHMARKS.md)
BATCH_RECORDS_PER_JOB = 2500
# what the writer's commit reads of a configuration (one query for them all)
CONFIG_FIELDS = [
    "active",
    "name",
    "model_name",
    "domain",
    "company_id",
    "integration_user_id",
    "timeout",
    "max_attempts",
]
GENERATED_TRIGGERS = ("on_create_or_write", "on_create", "on_write", "on_unlink")
OPERATIONS = ("create", "update", "delete")
SECRET_FIELDS = ("auth_password", "auth_token", "api_key", "signing_secret")
# What a change of a configuration's fields calls for (see ``write``), as base_automation does.
# read by its caches (``_invalidate_caches``; model_name follows model_id)
CACHED_FIELDS = {*CONFIG_FIELDS, "model_id", "trigger_mode", "listen_field_ids"}
# which of its rules are active (``_sync_rules``)
RULE_FIELDS = {"active", "trigger_mode"}
# the context actions of the synced models (``_sync_record_log_actions``) and their forms'
# status button (``_invalidate_caches(views=True)``)
CONTEXT_ACTION_FIELDS = {"active", "model_id", "payload_format"}
# its scheduled action (``_sync_cron``)
SCHEDULE_FIELDS = {
    "active",
    "name",
    "schedule_active",
    "schedule_interval_number",
    "schedule_interval_type",
}
# its endpoint: a new one starts healthy (``api.sync.endpoint.state._reset``)
ENDPOINT_FIELDS = {"endpoint_url"}
INTERVAL_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}


@cache
def user_agent():
    """The User-Agent of api_sync's requests (the manifest is read once per process)."""
    return f"Odoo-api_sync/{get_manifest('api_sync').get('version', '')}"


class ApiSyncConfig(models.Model):
    _name = "api.sync.config"
    _description = "API Sync Configuration"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "sequence, name, id"

    name = fields.Char(required=True, tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True, tracking=True)
    company_id = fields.Many2one(
        "res.company",
        default=lambda self: self.env.company,
        help="Leave empty to share the configuration between companies.",
    )
    model_id = fields.Many2one(
        "ir.model",
        required=True,
        ondelete="cascade",
        domain=[("transient", "=", False), ("model", "not like", "api.sync.%")],
        tracking=True,
    )
    model_name = fields.Char(
        related="model_id.model", string="Model Name", store=True, index=True, precompute=True
    )
    endpoint_url = fields.Char(string="Endpoint URL", required=True, tracking=True)
    http_method = fields.Selection(
        [("POST", "POST"), ("PUT", "PUT"), ("PATCH", "PATCH")],
        string="HTTP Method",
        required=True,
        default="POST",
        tracking=True,
    )
    auth_type = fields.Selection(
        [
            ("none", "None"),
            ("basic", "Basic authentication"),
            ("bearer", "Bearer token"),
            ("api_key", "API key header"),
        ],
        string="Authentication",
        required=True,
        default="none",
        tracking=True,
    )
    auth_username = fields.Char(string="Username", groups=MANAGER_GROUP)
    auth_password = fields.Char(string="Password", groups=MANAGER_GROUP, copy=False)
    auth_token = fields.Char(string="Bearer Token", groups=MANAGER_GROUP, copy=False)
    api_key_header = fields.Char(string="API Key Header", default="X-API-Key")
    api_key = fields.Char(string="API Key", groups=MANAGER_GROUP, copy=False)
    signing_secret = fields.Char(
        groups=MANAGER_GROUP,
        copy=False,
        help="Standard Webhooks secret (whsec_<base64>). When set, every request carries "
        "webhook-id, webhook-timestamp and webhook-signature headers.",
    )
    timeout = fields.Float(
        string="Timeout (s)", default=10.0, help="Connect and read timeout, in seconds."
    )
    max_attempts = fields.Integer(
        default=5, help="Deliveries are marked failed after this many attempts."
    )
    backoff_base = fields.Integer(
        string="Backoff Base (s)", default=10, help="Delay before the first retry, in seconds."
    )
    backoff_max = fields.Integer(
        string="Backoff Max (s)", default=3600, help="Longest delay between two retries."
    )
    batch_size = fields.Integer(
        default=100,
        help="Records per chunk in scheduled and manual runs (one request per chunk in batch "
        "mode).",
    )
    delivery_mode = fields.Selection(
        [("record", "One request per record"), ("batch", "One request per chunk of records")],
        required=True,
        default="record",
        tracking=True,
        help="How scheduled and manual runs (and send_batch) send the records they select. "
        "Real-time events (automation rules, sync_record) are always one request per record.",
    )
    domain = fields.Char(
        default="[]",
        help="Only records matching this domain are sent; the others are never sent.",
    )
    mapping_ids = fields.One2many(
        "api.sync.field.mapping",
        "config_id",
        string="Field Mapping",
        domain=[("parent_line_id", "=", False)],  # the fields of Lines lines are theirs
        copy=True,
    )
    log_ids = fields.One2many("api.sync.log", "config_id", string="Logs")
    action_ids = fields.One2many(
        "ir.actions.server",
        "api_sync_config_id",
        string="Server Actions",
        readonly=True,
        groups=ADMIN_GROUP,
    )
    automation_ids = fields.Many2many(
        "base.automation",
        compute="_compute_automation_ids",
        string="Automation Rules",
        groups=ADMIN_GROUP,
    )
    automation_count = fields.Integer(compute="_compute_automation_ids", groups=ADMIN_GROUP)
    # scheduled batch sync
    schedule_active = fields.Boolean(
        string="Scheduled Sync",
        tracking=True,
        help="Send the records changed since the last run, every interval.",
    )
    schedule_interval_number = fields.Integer(string="Every", default=1)
    schedule_interval_type = fields.Selection(
        [("minutes", "Minutes"), ("hours", "Hours"), ("days", "Days"), ("weeks", "Weeks")],
        string="Interval Unit",
        default="hours",
    )
    cron_id = fields.Many2one(
        "ir.cron", string="Scheduled Action", readonly=True, ondelete="set null", copy=False
    )
    checkpoint_date = fields.Datetime(
        readonly=True,
        copy=False,
        help="Runs send records changed after this (write_date, id) pair.",
    )
    checkpoint_res_id = fields.Integer(string="Checkpoint Record ID", readonly=True, copy=False)
    checkpoint_display = fields.Char(string="Checkpoint", compute="_compute_checkpoint_display")
    run_ids = fields.One2many("api.sync.run", "config_id", string="Runs")
    run_count = fields.Integer(compute="_compute_run_count")
    last_success_at = fields.Datetime(string="Last Successful Run", readonly=True, copy=False)
    is_stale = fields.Boolean(
        string="Stale",
        readonly=True,
        copy=False,
        help="The last successful run is older than three intervals.",
    )
    responsible_id = fields.Many2one(
        "res.users",
        default=lambda self: self.env.user,
        help="Gets an activity when the scheduled sync goes stale.",
    )
    log_retention_days = fields.Integer(
        default=30,
        help="Delivered and cancelled logs older than this are removed daily (0: keep them). "
        "Failed logs are kept until retried or cancelled.",
    )
    log_count = fields.Integer(compute="_compute_log_count")
    failed_log_count = fields.Integer(compute="_compute_log_count", string="Failed Logs")

    @api.depends("action_ids.base_automation_id")
    def _compute_automation_ids(self):
        for config in self:
            automations = config.with_context(active_test=False).action_ids.base_automation_id
            config.automation_ids = automations
            config.automation_count = len(automations)

    @api.depends("checkpoint_date", "checkpoint_res_id")
    def _compute_checkpoint_display(self):
        for config in self:
            config.checkpoint_display = checkpoint_label(
                config.checkpoint_date, config.checkpoint_res_id
            ) or self.env._("start (nothing sent yet)")

    def _compute_run_count(self):
        counts = dict(
            self.env["api.sync.run"]._read_group(
                [("config_id", "in", self.ids)], ["config_id"], ["__count"]
            )
        )
        for config in self:
            config.run_count = counts.get(config, 0)

    @api.depends("log_ids.state")
    def _compute_log_count(self):
        counts = {
            (config.id, state): count
            for config, state, count in self.env["api.sync.log"]._read_group(
                [("config_id", "in", self.ids)], ["config_id", "state"], ["__count"]
            )
        }
        for config in self:
            config.log_count = sum(
                count for (config_id, _state), count in counts.items() if config_id == config.id
            )
            config.failed_log_count = counts.get((config.id, "failed"), 0)

    # -- CRUD: access checks, then side effects chosen by the fields changed -------------------

    @api.model_create_multi
    def create(self, vals_list):
        self._inbound_defaults(vals_list)
        configs = super().create(vals_list)
        # even when the check fails: the caches filled meanwhile are then emptied at rollback
        self._invalidate_caches(views=True)
        # checked on the result: defaults (also from the context) are applied by now
        configs._check_created_integration_user()
        self._sync_record_log_actions()
        configs._sync_cron()
        return configs

    def write(self, vals):
        self._check_can_change(vals)
        if "signing_secret" in vals:
            self._keep_previous_secret(vals["signing_secret"])
        self._inbound_prepare(vals)
        if vals.get("integration_user_id"):
            self.filtered(
                lambda config: config.sudo().integration_user_id.id != vals["integration_user_id"]
            )._forget_captured_data()
        result = super().write(vals)
        changed = set(vals)
        if changed & (CACHED_FIELDS | CONTEXT_ACTION_FIELDS):  # first: the rest reads new values
            self._invalidate_caches(views=bool(changed & CONTEXT_ACTION_FIELDS))
        if changed & RULE_FIELDS:
            self._sync_rules(vals)
        if changed & CONTEXT_ACTION_FIELDS:
            self._sync_record_log_actions()
        if changed & SCHEDULE_FIELDS:
            self._sync_cron()
        if changed & ENDPOINT_FIELDS:
            self.env["api.sync.endpoint.state"].sudo()._reset(self)
        return result

    def unlink(self):
        self._check_can_change()
        rules = (
            self.sudo()
            .with_context(active_test=False)
            .automation_ids.filtered(
                lambda rule: all(
                    action.api_sync_config_id in self for action in rule.action_server_ids
                )
            )
        )
        crons = self.sudo().cron_id
        result = super().unlink()
        self._invalidate_caches(views=True)
        rules.unlink()
        crons.unlink()
        self._sync_record_log_actions()
        return result

    @api.model
    def _invalidate_caches(self, views=False):
        """Empty the caches that read configurations and their mappings (``_commit_values``,
        ``_mapped_field_names_cached``, the listeners' tables, ``_synced_models``) and, with
        ``views``, the forms' (their status button)."""
        self.env.registry.clear_cache(*(("templates", "default") if views else ()))

    def _sync_rules(self, vals):
        """Rules follow their configuration: archiving it archives all its rules (restoring it
        restores them), and its generated ones are active only in rules mode."""
        configs = self.sudo().with_context(active_test=False)
        if "active" in vals:
            rules = configs.automation_ids
            rules.filtered(lambda rule: rule.active != vals["active"]).active = vals["active"]
        for config in configs:
            wanted = config.active and config.trigger_mode == "rules"
            rules = config._generated_rules()
            rules.filtered(lambda rule, wanted=wanted: rule.active != wanted).active = wanted

    @api.model
    @tools.ormcache()
    def _synced_models(self):
        """Names of the models an active configuration syncs (their forms get a status
        button)."""
        return frozenset(self.sudo().search([("active", "=", True)]).mapped("model_name"))

    @api.model
    def _sync_record_log_actions(self):
        """The context actions of the synced models: "API Sync Logs" on each model that has
        an active configuration, "API Sync External IDs" on those of resource configurations
        (the caches, the forms' with them, are invalidated by the caller)."""
        configs = self.sudo().search([("active", "=", True)])
        self._sync_context_actions(
            "api.sync.log",
            self.env._("API Sync Logs"),
            "('covers_res_id', 'in', active_ids)",
            configs.model_id,
        )
        self._sync_context_actions(
            "api.sync.binding",
            self.env._("API Sync External IDs"),
            "('res_id', 'in', active_ids)",
            configs.filtered(lambda config: config.payload_format == "resource").model_id,
        )
        self._sync_context_actions(
            "api.sync.replay.wizard",
            self.env._("API Sync Replay / Recover"),
            None,
            configs.model_id,
            extra={"view_mode": "form", "target": "new", "binding_view_types": "form"},
            group=MANAGER_GROUP,
        )

    @api.model
    def _sync_context_actions(
        self, res_model, name, record_domain, wanted, extra=None, group=USER_GROUP
    ):
        """One context action opening ``res_model`` (filtered by ``record_domain`` and the
        model; a wizard: None, with ``extra`` values) in the Action menu of each of the models
        ``wanted``, and none elsewhere, for the users of ``group``."""
        Action = self.env["ir.actions.act_window"].sudo()
        actions = Action.search([("res_model", "=", res_model), ("binding_model_id", "!=", False)])
        stale = actions.filtered(lambda action: action.binding_model_id not in wanted)
        missing = wanted - (actions - stale).binding_model_id
        stale.unlink()
        Action.create(
            [
                {
                    "name": name,
                    "res_model": res_model,
                    "view_mode": "list,form",
                    "binding_model_id": model.id,
                    "binding_view_types": "list,form",
                    "domain": record_domain
                    and f"[('res_model', '=', {model.model!r}), {record_domain}]",
                    "context": "{'create': False}",
                    compat.ACTION_GROUPS: [Command.set(self.env.ref(group).ids)],
                    **(extra or {}),
                }
                for model in missing
            ]
        )

    # -- validation -----------------------------------------------------------------------------

    @api.constrains("endpoint_url")
    def _check_endpoint_url(self):
        for config in self:
            try:
                parsed = urlparse((config.endpoint_url or "").strip())
                # hostname and port raise ValueError for a malformed host or port
                valid = parsed.scheme in ("http", "https") and parsed.hostname
                valid = valid and (parsed.port or True)
            except ValueError:
                valid = False
            if not valid:
                raise ValidationError(
                    self.env._(
                        "Endpoint URL of %(config)s must be an http:// or https:// URL with a "
                        "host, e.g. https://api.example.com/hooks.",
                        config=config.display_name,
                    )
                )
            if parsed.username or parsed.password:
                raise ValidationError(
                    self.env._(
                        "Endpoint URL of %(config)s must not contain a user name or password "
                        "(they would be shown to everyone who reads the configuration): remove "
                        "them and use Authentication > Basic authentication instead.",
                        config=config.display_name,
                    )
                )
        self._check_target()

    @api.constrains("schedule_active", "schedule_interval_number", "log_retention_days")
    def _check_schedule(self):
        for config in self:
            if config.schedule_active and config.schedule_interval_number <= 0:
                raise ValidationError(
                    self.env._(
                        "Every (interval) of %(config)s must be greater than zero.",
                        config=config.display_name,
                    )
                )
            if config.log_retention_days < 0:
                raise ValidationError(
                    self.env._(
                        "Log Retention Days of %(config)s cannot be negative (0 keeps logs).",
                        config=config.display_name,
                    )
                )

    @api.constrains("timeout", "max_attempts", "backoff_base", "backoff_max", "batch_size")
    def _check_limits(self):
        for config in self:
            for fname in ("timeout", "max_attempts", "backoff_base", "backoff_max", "batch_size"):
                if config[fname] <= 0:
                    raise ValidationError(
                        self.env._(
                            "%(field)s of %(config)s must be greater than zero.",
                            field=self._fields[fname].get_description(self.env)["string"],
                            config=config.display_name,
                        )
                    )
            if config.backoff_max < config.backoff_base:
                raise ValidationError(
                    self.env._(
                        "Backoff Max of %(config)s must not be smaller than Backoff Base.",
                        config=config.display_name,
                    )
                )

    @api.constrains("domain", "model_id", "integration_user_id")
    def _check_domain(self):
        for config in self:
            try:
                domain = config._get_domain()
            except Exception as exc:  # noqa: BLE001 - any evaluation error is the admin's to fix
                raise config._domain_error(
                    self.env._(
                        "it cannot be evaluated (%(error)s). It may use literals, uid, "
                        "company_ids, company_id, context_today(), datetime, dateutil and time.",
                        error=f"{type(exc).__name__}: {exc}"[:200],
                    )
                ) from None
            model = config._reader_env()[config.model_name]
            try:
                model._search(domain)
            except AccessError:
                raise config._domain_error(
                    self.env._(
                        "it filters on a field the Integration User %(user)s cannot read.",
                        user=config.sudo().integration_user_id.name,
                    )
                ) from None
            except Exception:  # noqa: BLE001 - named below without echoing values
                raise config._domain_error(config._domain_problem(domain, model)) from None

    def _domain_error(self, problem):
        return ValidationError(
            self.env._(
                "Domain of %(config)s is not valid for model %(model)s: %(problem)s",
                config=self.display_name,
                model=self.model_name,
                problem=problem,
            )
        )

    def _domain_problem(self, domain, model):
        """What is wrong with a domain, naming fields and operators but no evaluated value."""
        for leaf in domain:
            if not isinstance(leaf, list | tuple) or len(leaf) != 3:
                if leaf in ("&", "|", "!"):
                    continue
                return self.env._("each condition is a (field, operator, value) triple.")
            path, operator, _value = leaf
            if not isinstance(path, str):
                return self.env._("a condition does not start with a field name.")
            if operator not in compat.TERM_OPERATORS:
                return self.env._("unknown operator %(operator)r.", operator=str(operator)[:30])
            current = model
            for segment in path.split("."):
                field = current._fields.get(segment)
                if field is None:
                    return self.env._(
                        "unknown field %(field)r on %(model)s.",
                        field=segment[:60],
                        model=current._name,
                    )
                if field.relational:
                    current = current.env[field.comodel_name]
        return self.env._("check its field names, operators and values.")

    @api.constrains("signing_secret")
    def _check_signing_secret(self):
        for config in self.sudo():
            if config.signing_secret:
                try:
                    wire.secret_key(config.signing_secret)
                except ValueError as exc:
                    raise ValidationError(
                        self.env._(
                            "Signing Secret of %(config)s is not valid: %(error)s "
                            "(use Generate Signing Secret for a new one).",
                            config=config.display_name,
                            error=exc,
                        )
                    ) from None

    @api.constrains("model_id", "integration_user_id")
    def _check_mapping_model(self):
        self.mapping_ids._check_source_path()

    # -- domain ---------------------------------------------------------------------------------

    def _domain_eval_context(self):
        """Names a domain may use: plain values only (no record, environment or cursor is
        reachable from an expression an admin typed), as for record rules."""
        user = self.sudo().integration_user_id if self else self.env.user
        return {
            "datetime": safe_eval.datetime,
            "dateutil": safe_eval.dateutil,
            "time": safe_eval.time,
            "uid": user.id,
            "company_ids": user.company_ids.ids,
            "company_id": user.company_id.id,
            "context_today": lambda: fields.Date.context_today(self),
        }

    def _get_domain(self):
        """The evaluated domain (checked against the model's fields when saved)."""
        self.ensure_one()
        if not self.domain or self.domain.strip() == "[]":
            return []
        domain = safe_eval.safe_eval(self.domain, self._domain_eval_context())
        if not isinstance(domain, list | tuple):
            raise ValueError(self.env._("a domain is a list, e.g. [('active', '=', True)]"))
        return list(domain)

    def _filter_in_domain(self, records):
        """The part of ``records`` that this configuration may send (records noted by the
        transaction exist: without a domain, nothing to query)."""
        self.ensure_one()
        domain = self._get_domain()
        if not records or (not domain and Outbox(self.env).all_noted(records)):
            return records
        matching = set(
            records.sudo()
            .with_context(active_test=False)
            .search([("id", "in", records.ids), *domain])
            .ids
        )
        return records.filtered(lambda record: record.id in matching)

    # -- what the writer's commit reads, from a cache -------------------------------------------

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
        environment's cache from ``_commit_values`` (values changed in this transaction and not
        saved yet stay): the writer's commit reads them without a query."""
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

    # -- mapping --------------------------------------------------------------------------------

    def _mapped_field_names(self):
        """Fields of the model whose change alters the payload (first segments of the paths)."""
        self.ensure_one()
        return set(self._mapped_field_names_cached(self.id))

    @tools.ormcache("config_id")
    def _mapped_field_names_cached(self, config_id):
        """Cached per configuration (every save of a watched record asks): the mapping's
        create, write and unlink clear it."""
        config = self.sudo().browse(config_id)
        names = {
            line.source_path.split(".")[0].strip()
            for line in config.mapping_ids
            if line.source_path
        }
        return frozenset(names or {self.env[config.model_name]._rec_name or "display_name"})

    def _mapping_lines(self):
        """The mapping as engine lines, in sequence order."""
        self.ensure_one()
        return [line._to_engine_line() for line in self.mapping_ids.sorted()]

    def _check_records_model(self, records):
        if records._name != self.model_name:
            raise ValidationError(
                self.env._(
                    "Configuration %(config)s maps %(model)s records, not %(given)s.",
                    config=self.display_name,
                    model=self.model_name,
                    given=records._name,
                )
            )

    def prepare_outbound_data(self, records):
        """Mapped payload of ``records``: a dict for one record, a list of dicts for several.

        Raises :class:`~odoo.exceptions.UserError` (a ``ValidationError``) naming the record and
        the field when a required value is missing or a value cannot be converted.
        """
        self.ensure_one()
        self._check_records_model(records)
        try:
            payloads = Mapper(self).payloads(records)
        except mapping.MappingError as exc:
            raise ValidationError(str(exc)) from None
        return payloads[0] if len(records) == 1 else payloads

    # -- wire -----------------------------------------------------------------------------------

    @api.model
    def _user_agent(self):
        return user_agent()

    def _secret_values(self):
        """Every credential of this configuration, and the headers made from them."""
        config = self.sudo()
        values = [config[fname] for fname in SECRET_FIELDS if config[fname]]
        values += list(config._previous_secrets())
        values += list(config._auth_headers().values())
        return [value for value in values if value]

    def _auth_headers(self):
        config = self.sudo()
        return wire.auth_headers(
            config.auth_type,
            username=config.auth_username,
            password=config.auth_password,
            token=config.auth_token,
            key_header=config.api_key_header,
            key=config.api_key,
        )

    # -- service API ----------------------------------------------------------------------------

    @api.model
    def sync_record(self, records, operation, changed_fields=None):
        """Queue the sync of ``records`` to every active configuration of their model.

        Called on one configuration, only that one is used. Only records inside each
        configuration's domain are queued. Logs are created ``pending`` and their delivery is
        queued with queue_job in the caller's transaction: if it rolls back, nothing is sent.
        ``operation`` is ``create``, ``update`` or ``delete``; for deletions, call this before
        the records are removed: their payload is captured now. Returns the logs.
        """
        if operation not in OPERATIONS:
            raise UserError(
                self.env._(
                    "Unknown sync operation %(operation)r: use one of %(allowed)s.",
                    operation=operation,
                    allowed=", ".join(OPERATIONS),
                )
            )
        logs = self.env["api.sync.log"].sudo()
        if not records:
            return logs
        configs = (self.sudo() if self else self._configs_for(records._name)).filtered("active")
        for config in configs:
            config._check_records_model(records)
            logs |= Outbox(self.env).queue(config, records, operation, changed_fields)
        return logs

    @api.model
    def _configs_for(self, model_name):
        return self.sudo().search([("model_name", "=", model_name)])

    def _records_to_send(self, records):
        """The existing ``records`` inside the domain and, for a company-bound configuration,
        of its company."""
        records = self._filter_in_domain(records.sudo())
        if self.company_id and "company_id" in records._fields:
            records = records.filtered(
                lambda record: not record.company_id or record.company_id == self.company_id
            )
        return records

    def _archived_left_out(self, records):
        """``records`` but the archived ones this configuration never sent nor queued, left
        out as runs leave archived records out (unless the domain names the archive field): a
        record created archived is not sent; one archived after it was synced or queued is."""
        active = records._active_name
        if not active or not records or self._domain_names(active):
            return records
        try:
            archived = records.sudo().filtered(lambda record: not record[active])
        except MissingError:  # deleted meanwhile (queue leaves them out)
            archived = records.sudo().exists().filtered(lambda record: not record[active])
        if not archived:
            return records
        self.env["api.sync.log"].flush_model(["config_id", "res_id", "state", "direction"])
        self.env.cr.execute(
            """SELECT DISTINCT res_id FROM api_sync_log
                WHERE config_id = %s AND res_id = ANY(%s) AND direction = 'outbound'
                  AND state IN ('pending', 'done')""",
            (self.id, archived.ids),
        )
        known = {row[0] for row in self.env.cr.fetchall()}
        left_out = set(archived.ids) - known
        return records.browse([record_id for record_id in records.ids if record_id not in left_out])

    def _domain_names(self, field_name, domain=None):
        """Whether ``domain`` (the configuration's by default) has a condition on
        ``field_name``."""
        return any(
            isinstance(leaf, list | tuple) and len(leaf) == 3 and leaf[0] == field_name
            for leaf in (self._get_domain() if domain is None else domain)
        )

    def _records_per_job(self):
        """Record events share jobs in groups: their bookkeeping is done in bulk, and a group
        queues what it did not reach within ``GROUP_SECONDS`` as another job."""
        return RECORDS_PER_JOB

    def _batches_per_job(self):
        """Batch events of one call or run share jobs too, up to ``BATCH_RECORDS_PER_JOB``
        records."""
        return max(1, BATCH_RECORDS_PER_JOB // max(self.batch_size, 1))

    def send_batch(self, records):
        """Send ``records`` to this configuration in chunks of Batch Size, one request per chunk.

        Returns the batch logs (one per chunk), queued like any other event.
        """
        self.ensure_one()
        Log = self.env["api.sync.log"].sudo()
        if not self.active:
            return Log
        records, _unreadable = Mapper(self).split_readable(self._records_to_send(records))
        values = [
            Log._event_values(
                self,
                "batch",
                batch_res_ids=json.dumps(chunk.ids),
                record_name=self.env._("%(count)s records", count=len(chunk)),
                record_count=len(chunk),
            )
            for chunk in split_every(self.batch_size, records.ids, records.browse)
        ]
        logs = Log.create(values)
        logs._enqueue()
        return logs

    # -- scheduled batch sync -------------------------------------------------------------------

    def _sync_cron(self):
        """Keep each configuration's own scheduled action in line with its schedule."""
        for config in self.sudo().with_context(active_test=False):
            wanted = config.schedule_active and config.active
            if not config.cron_id and not wanted:
                continue
            values = {
                "name": self.env._("API Sync: %(config)s", config=config.name),
                "active": wanted,
                "interval_number": max(config.schedule_interval_number, 1),
                "interval_type": config.schedule_interval_type or "hours",
            }
            if config.cron_id:
                config.cron_id.write(values)
            else:
                config.cron_id = self.env["ir.cron"].create(
                    {
                        **values,
                        "model_id": self.env["ir.model"]._get_id("api.sync.config"),
                        "state": "code",
                        "code": f"model.browse({config.id})._run_scheduled()",
                        "user_id": self.env.ref("base.user_root").id,
                    }
                )

    def _run_scheduled(self):
        """Entry point of the configuration's scheduled action."""
        for config in self.filtered("active"):
            config._start_run("cron")

    def _check_manager(self):
        """Buttons that send data or reset state are for API Sync managers (also over RPC),
        on configurations they may change (company rules)."""
        if not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(
                self.env._("Only API Sync managers can start syncs or test endpoints.")
            )
        self.check_access("write")

    def action_run_now(self):
        """Start a run now; it sends the records changed since the checkpoint."""
        self.ensure_one()
        self._check_manager()
        return self._running_notice() or self._start_run("manual")._action_open()

    def action_replay_wizard(self):
        """Open Replay / Recover on this configuration."""
        self.ensure_one()
        self._check_manager()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "api_sync.action_api_sync_replay_wizard"
        )
        action["context"] = {"default_config_id": self.id}
        return action

    def action_full_resync(self):
        """Reset the checkpoint and start a run: every record in the domain is sent again."""
        self.ensure_one()
        self._check_manager()
        return self._running_notice() or self._start_run("full_resync")._action_open()

    def _running_notice(self):
        """A notification when a run of this configuration is still delivering, else None."""
        running = (
            self.env["api.sync.run"]
            .sudo()
            .search([("config_id", "=", self.id), ("state", "=", "running")])
            .filtered(lambda run: run._is_alive())
        )
        if not running:
            return None
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "warning",
                "message": self.env._(
                    "Run %(run)s is still delivering: start another one when it is over.",
                    run=running[0].display_name,
                ),
            },
        }

    def action_view_runs(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("api_sync.action_api_sync_run")
        action["domain"] = [("config_id", "=", self.id)]
        return action

    def _move_checkpoint(self, write_date, res_id):
        """Move the checkpoint forward (never back) to ``(write_date, res_id)``."""
        self.ensure_one()
        current = (self.checkpoint_date, self.checkpoint_res_id)
        if self.checkpoint_date and current >= (write_date, res_id):
            return
        self.sudo().write({"checkpoint_date": write_date, "checkpoint_res_id": res_id})

    def _record_success(self, run):
        config = self.sudo()
        if config.is_stale:
            config.activity_ids.filtered(
                lambda activity: activity.summary == config._stale_summary()
            ).action_feedback(self.env._("A run succeeded again."))
        config.write({"last_success_at": run.date_end, "is_stale": False})

    def _stale_summary(self):
        return self.env._("API sync is stale")

    def _start_run(self, trigger):
        """Start a batch run of this configuration (see ``api.sync.run._start``)."""
        self.ensure_one()
        return self.env["api.sync.run"].sudo()._start(self.sudo(), trigger)

    @api.model
    def _cron_cleanup_logs(self):
        """Daily: remove delivered and cancelled logs older than each configuration keeps."""
        Log = self.env["api.sync.log"].sudo()
        for config in (
            self.sudo().with_context(active_test=False).search([("log_retention_days", ">", 0)])
        ):
            limit = fields.Datetime.subtract(fields.Datetime.now(), days=config.log_retention_days)
            Log.search(
                [
                    ("config_id", "=", config.id),
                    ("state", "in", ("done", "cancelled")),
                    ("create_date", "<", limit),
                ]
            ).unlink()

    @api.model
    def _cron_check_stale(self):
        """Flag scheduled configurations whose last success is older than three intervals."""
        now = fields.Datetime.now()
        for config in self.sudo().search([("schedule_active", "=", True)]):
            interval = INTERVAL_SECONDS[config.schedule_interval_type or "hours"]
            limit = fields.Datetime.subtract(
                now, seconds=3 * interval * config.schedule_interval_number
            )
            reference = config.last_success_at or config.create_date
            stale = reference < limit
            if stale and not config.is_stale:
                managers = config.responsible_id or self.env.ref(MANAGER_GROUP).users.filtered(
                    lambda user: user.active and not user.share and user.id != SUPERUSER_ID
                )
                for manager in managers:
                    config.activity_schedule(
                        "mail.mail_activity_data_todo",
                        summary=config._stale_summary(),
                        note=Markup("<p>%s</p>")
                        % self.env._(
                            "No successful run of %(config)s since %(when)s: check its runs "
                            "and logs.",
                            config=config.name,
                            when=reference,
                        ),
                        user_id=manager.id,
                    )
            config.is_stale = stale

    # -- actions --------------------------------------------------------------------------------

    def action_generate_signing_secret(self):
        self._check_manager()
        for config in self:
            config.signing_secret = wire.new_secret()

    def action_test_connection(self):
        """Send a signed ``api_sync.ping`` event now and show the answer."""
        self.ensure_one()
        self._check_manager()
        event_id = str(uuid.uuid4())
        adapter = adapter_for(self)
        method, body = adapter.test_request(event_id)
        outcome = adapter.send_body(event_id, body, method=method)
        if outcome.verdict == "done":
            kind, title = "success", self.env._("Connection OK")
        else:
            kind, title = "danger", self.env._("Connection failed")
        details = outcome.error_message or ""
        if outcome.status:
            details = (
                f"HTTP {outcome.status} in {outcome.duration_ms} ms. "
                + (outcome.response_excerpt or "")[:300]
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": title,
                "message": details,
                "type": kind,
                "sticky": kind != "success",
            },
        }

    def action_preview_payload(self):
        self.ensure_one()
        self.check_access("read")
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Preview Payload"),
            "res_model": "api.sync.preview",
            "view_mode": "form",
            "target": "new",
            "context": {"default_config_id": self.id},
        }

    def action_view_logs(self):
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id("api_sync.action_api_sync_log")
        action["domain"] = [("config_id", "=", self.id)]
        action["context"] = {"default_config_id": self.id}
        return action

    def action_view_failed_logs(self):
        action = self.action_view_logs()
        action["domain"] = [("config_id", "=", self.id), ("state", "=", "failed")]
        action["name"] = self.env._("Failed Logs")
        return action

    def copy_data(self, default=None):
        vals_list = super().copy_data(default=default)
        for config, vals in zip(self, vals_list, strict=True):
            if "name" not in (default or {}):
                vals["name"] = self.env._("%(name)s (copy)", name=config.name)
        return vals_list
