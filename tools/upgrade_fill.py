"""Fills a database of the previous release with every kind of api_sync data (tools/upgrade_check).

Run inside ``odoo shell`` on the previous release's code (on 19.0, which no earlier release
supports, on the checkout's), with its own ORM API: ``fill(env)``
creates configurations of both payload formats and both trigger modes (mapping lines with Lines
and their child lines, extra headers, secrets, a schedule, generated automation rules), events in
every state with their attempts (record events and batches, resource-mode ones), bindings, runs,
endpoint states and record status rows. Nothing is sent: the endpoints are 127.0.0.1:9 (discard),
the shell runs no job, and the outcomes are written with the ORM as a delivery would leave them.
The caller commits.
"""

import json
from datetime import datetime, timedelta

from odoo import Command

# Fixed dates: the snapshot compares values, so nothing of the fill depends on the clock.
T0 = datetime(2026, 1, 5, 9, 30, 0)
ENDPOINT = "http://127.0.0.1:9"


def line(source_path, target_key, transform="raw", **values):
    """The create command of a mapping line (``child_line_ids``: its own lines' commands)."""
    return Command.create(
        {"source_path": source_path, "target_key": target_key, "transform": transform, **values}
    )


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def make_configs(env):
    """The four configurations (payload format x trigger mode) on contacts, and a tag one."""
    Config = env["api.sync.config"].with_context(tracking_disable=True)
    partner_model = env["ir.model"]._get("res.partner")
    common = {"model_id": partner_model.id, "company_id": False, "timeout": 5}
    mapping = [
        line("name", "name", "string", required=True, sequence=1),
        line("email", "contact.email", sequence=2),
        line("parent_id", "company", "many2one_name", sequence=3),
        line("country_id.code", "address.country", "string", sequence=4),
        line("category_id", "tags", "x2many_names", sequence=5),
        line(False, "source", "constant", default_value="odoo", sequence=6),
        # Lines: the company's contacts, each with its bank accounts as lines of its own.
        line(
            "child_ids",
            "contacts",
            "lines",
            sequence=7,
            child_line_ids=[
                line("name", "name", "string", sequence=1),
                line("email", "email", sequence=2),
                line(
                    "bank_ids",
                    "accounts",
                    "lines",
                    sequence=3,
                    child_line_ids=[line("acc_number", "number", "string", required=True)],
                ),
            ],
        ),
    ]
    envelope_rules = Config.create(
        {
            **common,
            "name": "Upgrade: envelope, rules",
            "endpoint_url": f"{ENDPOINT}/hooks/contacts",
            "auth_type": "bearer",
            "auth_token": "upgrade-token",
            "signing_secret": "whsec_dXBncmFkZS1jaGVjay1zZWNyZXQ=",
            "payload_format": "envelope",
            "trigger_mode": "rules",
            "domain": "[('type', '=', 'contact')]",
            "max_attempts": 4,
            "backoff_base": 7,
            "backoff_max": 600,
            "schedule_active": True,
            "schedule_interval_number": 3,
            "schedule_interval_type": "hours",
            "log_retention_days": 45,
            "rate_limit": 2.5,
            "mapping_ids": mapping,
        }
    )
    envelope_listener = Config.create(
        {
            **common,
            "name": "Upgrade: envelope, listener, batches",
            "endpoint_url": f"{ENDPOINT}/hooks/batches",
            "auth_type": "basic",
            "auth_username": "upgrade",
            "auth_password": "upgrade-password",
            "payload_format": "envelope",
            "trigger_mode": "listener",
            "delivery_mode": "batch",
            "batch_size": 2,
            "listen_field_ids": [
                Command.set([env["ir.model.fields"]._get("res.partner", "phone").id])
            ],
            "mapping_ids": [line("name", "name", sequence=1)],
        }
    )
    resource_listener = Config.create(
        {
            **common,
            "name": "Upgrade: resource, listener",
            "endpoint_url": f"{ENDPOINT}/resources/contacts",
            "auth_type": "api_key",
            "api_key_header": "X-Upgrade-Key",
            "api_key": "upgrade-api-key",
            "payload_format": "resource",
            "trigger_mode": "listener",
            "root_key": "contact",
            "create_method": "POST",
            "update_method": "PUT",
            "update_path": "/{{external_id}}",
            "delete_method": "DELETE",
            "delete_path": "/{{external_id}}",
            "external_id_path": "data.id",
            "on_remote_missing": "fail",
            "circuit_threshold": 3,
            "give_up_hours": 12,
            "request_header_ids": [
                Command.create({"name": "Accept-Version", "value": "2", "sequence": 1}),
                Command.create({"name": "X-Tenant", "value": "upgrade", "sequence": 2}),
            ],
            "mapping_ids": [
                line("name", "name", "string", sequence=1),
                line("email", "email", sequence=2),
            ],
        }
    )
    resource_rules = Config.create(
        {
            **common,
            "name": "Upgrade: resource, rules",
            "endpoint_url": f"{ENDPOINT}/resources/companies",
            "payload_format": "resource",
            "trigger_mode": "rules",
            "create_method": "PUT",
            "create_path": "/{{ref}}",
            "update_method": "PATCH",
            "update_path": "/{{ref}}",
            "delete_method": "POST",
            "delete_path": "/{{ref}}/archive",
            "domain": "[('is_company', '=', True)]",
            "request_header_ids": [Command.create({"name": "Accept", "value": "application/json"})],
            "mapping_ids": [line("name", "name", sequence=1)],
        }
    )
    tags = Config.create(
        {
            "name": "Upgrade: tags (archived)",
            "model_id": env["ir.model"]._get("res.partner.category").id,
            "company_id": False,
            "endpoint_url": f"{ENDPOINT}/hooks/tags",
            "active": False,
            "mapping_ids": [line("name", "label", sequence=1)],
        }
    )
    # The standard rules of the rules-mode ones (the contacts one also gets its Lines' rules).
    envelope_rules._generate_automation_rules(True, True, True)
    resource_rules._generate_automation_rules(True, False, True)
    return envelope_rules, envelope_listener, resource_listener, resource_rules, tags


def make_partners(env):
    """A company with contacts and bank accounts: the rules and listeners queue their events."""
    Partner = env["res.partner"].with_context(tracking_disable=True)
    country = env["res.country"].create({"name": "Upgrade Land", "code": "QU"})
    category = env["res.partner.category"].create({"name": "Upgraded"})
    company = Partner.create(
        {"name": "Upgrade Co", "is_company": True, "ref": "UPG", "country_id": country.id}
    )
    contacts = Partner.create(
        [
            {
                "name": f"Contact {index}",
                "email": f"contact{index}@upgrade.example",
                "parent_id": company.id,
                "category_id": [Command.set(category.ids)],
            }
            for index in range(1, 6)
        ]
    )
    bank = env["res.bank"].create({"name": "Upgrade Bank", "bic": "UPGRBEBB"})
    env["res.partner.bank"].create(
        [
            {"partner_id": contacts[0].id, "acc_number": "BE71096123456769", "bank_id": bank.id},
            {"partner_id": contacts[1].id, "acc_number": "BE68539007547034", "bank_id": bank.id},
        ]
    )
    return company, contacts


def attempt(number, minutes, outcome, **values):
    return Command.create(
        {"number": number, "attempted_at": at(minutes), "outcome": outcome, **values}
    )


def settle_logs(env, configs, company, contacts):
    """Events in every state, with the attempts a delivery would have recorded."""
    envelope_rules, envelope_listener, resource_listener, _resource_rules, _tags = configs
    Log = env["api.sync.log"]
    done = envelope_rules.sync_record(contacts[0], "update", ["name", "email"])
    done.write(
        {
            "state": "done",
            "attempt_count": 1,
            "last_attempt_at": at(1),
            "done_at": at(1),
            "response_status": 200,
            "response_body": '{"ok": true}',
            "duration_ms": 42,
            "record_version": contacts[0].write_date,
            "request_body": json.dumps({"name": contacts[0].name}),
            "attempt_ids": [
                attempt(
                    1,
                    1,
                    "done",
                    response_status=200,
                    duration_ms=42,
                    response_excerpt='{"ok": true}',
                    request_line=f"POST {ENDPOINT}/hooks/contacts",
                    request_headers="Content-Type: application/json",
                )
            ],
        }
    )
    failed = envelope_rules.sync_record(contacts[1], "update", ["email"])
    failed.write(
        {
            "state": "failed",
            "attempt_count": 4,
            "last_attempt_at": at(20),
            "response_status": 422,
            "failure_reason": "rejected",
            "error_class": "HTTPError",
            "error_message": "422 Unprocessable Entity: email is invalid",
            "attempt_ids": [
                attempt(1, 2, "retry", response_status=503, next_retry_at=at(3)),
                attempt(2, 3, "retry", error_class="ConnectionError", next_retry_at=at(10)),
                attempt(3, 10, "retry", response_status=429, next_retry_at=at(20)),
                attempt(
                    4,
                    20,
                    "failed",
                    response_status=422,
                    failure_reason="rejected",
                    error_class="HTTPError",
                    error_message="422 Unprocessable Entity: email is invalid",
                ),
            ],
        }
    )
    retrying = envelope_rules.sync_record(contacts[2], "create")
    retrying.write(
        {
            "attempt_count": 1,
            "last_attempt_at": at(5),
            "next_retry_at": at(6),
            "error_class": "Timeout",
            "recovery_count": 1,
            "recovery_note": "2026-01-05 09:40: job lost, queued again",
            "attempt_ids": [attempt(1, 5, "retry", error_class="Timeout", next_retry_at=at(6))],
        }
    )
    cancelled = envelope_rules.sync_record(contacts[3], "delete")
    cancelled.write({"state": "cancelled", "error_message": "Cancelled by the upgrade check"})
    # Batches: one delivered (part of a run), one still pending.
    batches = envelope_listener.send_batch(contacts)
    batches[0].write(
        {
            "state": "done",
            "sent_count": 2,
            "attempt_count": 1,
            "done_at": at(30),
            "last_attempt_at": at(30),
            "response_status": 202,
            "attempt_ids": [attempt(1, 30, "done", response_status=202)],
        }
    )
    # Resource mode: a creation that stored its external id, an update that failed.
    created = resource_listener.sync_record(contacts[0], "create")
    created.write(
        {
            "state": "done",
            "attempt_count": 1,
            "done_at": at(40),
            "last_attempt_at": at(40),
            "response_status": 201,
            "request_line": f"POST {ENDPOINT}/resources/contacts",
            "resource_values": json.dumps({"external_id": None}),
            "attempt_ids": [
                attempt(1, 40, "done", response_status=201, request_line="POST /contacts")
            ],
        }
    )
    missing = resource_listener.sync_record(contacts[1], "update", ["name"])
    missing.write(
        {
            "state": "failed",
            "attempt_count": 1,
            "last_attempt_at": at(41),
            "response_status": 404,
            "failure_reason": "remote_missing",
            "request_line": f"PUT {ENDPOINT}/resources/contacts/con_1002",
            "resource_values": json.dumps({"external_id": "con_1002"}),
            "attempt_ids": [attempt(1, 41, "failed", response_status=404)],
        }
    )
    return done | failed | retrying | cancelled | batches | created | missing | Log


def make_runs(env, configs, contacts, logs):
    envelope_rules, envelope_listener = configs[0], configs[1]
    Run = env["api.sync.run"]
    success = Run.create(
        {
            "config_id": envelope_listener.id,
            "trigger": "manual",
            "state": "success",
            "count_selected": 5,
            "count_sent": 4,
            "count_skipped": 1,
            "skipped_at_selection": 1,
            "checkpoint_before": False,
            "checkpoint_after": f"2026-01-05 10:00:00.000000 / #{contacts[-1].id}",
            "selection_end_date": at(29),
            "selection_end_id": contacts[-1].id,
            "date_start": at(29),
            "date_end": at(31),
            "note": "Delivered by the upgrade check's fill",
        }
    )
    logs.filtered(lambda log: log.operation == "batch").write({"run_id": success.id})
    Run.create(
        [
            {
                "config_id": envelope_rules.id,
                "trigger": "cron",
                "state": "partial",
                "count_selected": 3,
                "count_sent": 2,
                "count_failed": 1,
                "date_start": at(50),
                "date_end": at(52),
            },
            {
                "config_id": envelope_rules.id,
                "trigger": "full_resync",
                "state": "failed",
                "count_selected": 0,
                "skipped_not_readable": 2,
                "date_start": at(60),
                "date_end": at(60),
                "note": "Endpoint disabled",
            },
            {"config_id": envelope_rules.id, "trigger": "manual", "date_start": at(70)},
        ]
    )
    envelope_listener.write(
        {
            "checkpoint_date": at(29),
            "checkpoint_res_id": contacts[-1].id,
            "last_success_at": at(31),
        }
    )


def make_states(env, configs, company, contacts, logs):
    envelope_rules, envelope_listener, resource_listener, resource_rules, tags = configs
    env["api.sync.endpoint.state"].create(
        [
            {
                "config_id": envelope_rules.id,
                "state": "paused",
                "failure_count": 6,
                "failing_since": at(100),
                "paused_until": at(130),
                "probe_count": 2,
                "last_error": "ConnectionError: connection refused",
            },
            {
                "config_id": resource_rules.id,
                "state": "disabled",
                "failure_count": 40,
                "failing_since": at(0),
                "probe_count": 9,
                "last_error": "503 Service Unavailable",
            },
            {
                "config_id": envelope_listener.id,
                "state": "failing",
                "failure_count": 2,
                "failing_since": at(110),
                "not_before": at(111),
                "next_slot_at": at(111),
            },
            {
                "config_id": resource_listener.id,
                "state": "healthy",
                "last_answered_at": at(41),
                "resumed_at": at(35),
            },
            {"config_id": tags.id},
        ]
    )
    env["api.sync.binding"].create(
        [
            {
                "config_id": resource_listener.id,
                "res_model": "res.partner",
                "res_id": contacts[0].id,
                "external_id": "con_1001",
                "synced_version": contacts[0].write_date,
                "synced_at": at(40),
            },
            {
                "config_id": resource_listener.id,
                "res_model": "res.partner",
                "res_id": contacts[1].id,
                "external_id": "con_1002",
            },
            {
                "config_id": resource_rules.id,
                "res_model": "res.partner",
                "res_id": company.id,
                "external_id": "UPG",
                "synced_at": at(45),
            },
        ]
    )
    record_logs = logs.filtered(lambda log: log.operation != "batch" and log.res_id)
    env["api.sync.record.status"].create(
        [
            {
                "config_id": log.config_id.id,
                "res_model": log.res_model,
                "res_id": log.res_id,
                "record_name": log.record_name,
                "last_log_id": log.id,
                "last_state": log.state,
                "last_attempt_at": log.last_attempt_at,
                "last_done_at": log.done_at,
                "last_version": log.record_version,
            }
            for log in record_logs
        ]
    )


def fill(env):
    env = env(context=dict(env.context, tracking_disable=True))
    configs = make_configs(env)
    # The listeners' and rules' events of these creations are queued just before a commit (logs
    # and queue_job rows left pending): run those precommit hooks now, before the other events.
    company, contacts = make_partners(env)
    env.flush_all()
    env.cr.precommit.run()
    logs = settle_logs(env, configs, company, contacts)
    make_runs(env, configs, contacts, logs)
    make_states(env, configs, company, contacts, logs)
    env.flush_all()
    counts = {
        model: env[model].with_context(active_test=False).search_count([])
        for model in (
            "api.sync.config",
            "api.sync.field.mapping",
            "api.sync.request.header",
            "api.sync.log",
            "api.sync.log.attempt",
            "api.sync.binding",
            "api.sync.run",
            "api.sync.endpoint.state",
            "api.sync.record.status",
            "base.automation",
        )
    }
    states = sorted(set(env["api.sync.log"].search([]).mapped("state")))
    print(f"[api_sync] filled: {counts}; log states {states}", flush=True)
    return counts
