"""Checks a running api_sync server end to end over JSON-RPC (``tools/run --smoke``)."""

import argparse
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.driver import json_rpc


def call(session, url, service, method, *args):
    return json_rpc(session, f"{url}/jsonrpc", {"service": service, "method": method, "args": args})


def wait_for_server(session, url, deadline):
    while time.monotonic() < deadline:
        try:
            if session.get(f"{url}/web/login", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    raise RuntimeError(f"no answer from {url}")


def outbound_count(execute, config_id, partner_id):
    return execute(
        "api.sync.log",
        "search_count",
        [
            ("config_id", "=", config_id),
            ("res_id", "=", partner_id),
            ("direction", "=", "outbound"),
        ],
    )


def two_way(session, execute, args, deadline, partner_id, bound, config_ids):
    """The REST API changes the contact and sends the change back, signed: Odoo stores it (202),
    its job applies it, and it is sent on to the other configuration but not back."""
    envelope_id, rest_id = config_ids
    before = {cid: outbound_count(execute, cid, partner_id) for cid in config_ids}
    started = time.monotonic()
    change = session.post(
        f"http://127.0.0.1:{args.receiver_port}/demo/change/contacts/{bound}",
        json={"name": "Smoke Remote", "phone": "+44 20 7946 0000"},
        timeout=10,
    )
    if change.status_code != 202:
        raise RuntimeError(f"the receiver did not send the change back: {change.text}")
    event_id = change.json()["event_id"]
    fields = ["state", "inbound_outcome", "error_message", "res_id", "remote_id"]
    while time.monotonic() < deadline:
        found = execute("api.sync.log", "search_read", [("sender_event_id", "=", event_id)], fields)
        if found and found[0]["state"] != "pending":
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"the inbound event {event_id} was not applied")
    log = found[0]
    if log["state"] != "done" or log["res_id"] != partner_id:
        raise RuntimeError(f"the inbound event {event_id} was not applied: {log}")
    applied = time.monotonic() - started
    (partner,) = execute("res.partner", "read", [partner_id], ["name", "phone"])
    if (partner["name"], partner["phone"]) != ("Smoke Remote", "+44 20 7946 0000"):
        raise RuntimeError(f"the inbound change did not reach contact {partner_id}: {partner}")
    print(
        f"[smoke] two-way: /resources/contacts/{bound} changed remotely and sent back signed "
        f"(event {event_id}): {log['inbound_outcome']} contact {partner_id} in {applied:.1f} s "
        f"(name {partner['name']!r}, phone {partner['phone']!r})"
    )
    while time.monotonic() < deadline:
        if outbound_count(execute, envelope_id, partner_id) > before[envelope_id]:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError("the inbound change was not sent to the other configuration")
    if outbound_count(execute, rest_id, partner_id) != before[rest_id]:
        raise RuntimeError("the inbound change was sent back to the REST API (echo)")
    print(
        "[smoke] two-way: not sent back to the REST API (no echo), sent on to "
        "'Contacts to demo receiver'"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--receiver-port", type=int, default=8075)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    session = requests.Session()
    wait_for_server(session, args.url, deadline)
    uid = call(session, args.url, "common", "login", args.db, "admin", "admin")

    def execute(model, method, *params):
        return call(
            session, args.url, "object", "execute", args.db, uid, "admin", model, method, *params
        )

    configs = execute("api.sync.config", "search_read", [], ["name", "model_name"])
    print(
        f"[smoke] server up, {len(configs)} configuration(s): "
        + ", ".join(f"{c['name']} ({c['model_name']})" for c in configs)
    )
    if not configs:
        raise RuntimeError("the demo configuration is missing")
    config_id = execute(
        "ir.model.data", "check_object_reference", "api_sync", "demo_config_contacts"
    )[1]
    (config,) = execute("api.sync.config", "read", [config_id], ["endpoint_url"])
    if f":{args.receiver_port}/" not in config["endpoint_url"]:
        raise RuntimeError(f"the demo configuration posts to {config['endpoint_url']}")
    answer = execute("api.sync.config", "action_test_connection", [config_id])
    if answer["params"]["type"] != "success":
        raise RuntimeError(f"test connection failed: {answer['params']['message']}")
    print(f"[smoke] test connection to the demo receiver: {answer['params']['message'][:60]}")

    rest_id = execute(
        "ir.model.data", "check_object_reference", "api_sync", "demo_config_contacts_rest"
    )[1]
    resources = f"http://127.0.0.1:{args.receiver_port}/resources/contacts"

    def wait_for_log(config, partner_id, operation):
        while time.monotonic() < deadline:
            logs = execute(
                "api.sync.log",
                "search_read",
                [
                    ("config_id", "=", config),
                    ("res_id", "=", partner_id),
                    ("res_model", "=", "res.partner"),
                    ("operation", "=", operation),
                    ("direction", "=", "outbound"),
                ],
                ["state", "attempt_count", "response_status", "error_message"],
            )
            if logs and logs[0]["state"] != "pending":
                if logs[0]["state"] != "done":
                    raise RuntimeError(f"{operation} event {logs[0]['state']}: {logs[0]}")
                return logs[0]
            time.sleep(0.5)
        raise RuntimeError(f"the {operation} event of contact {partner_id} was not delivered")

    def external_id(partner_id):
        bindings = execute(
            "api.sync.binding",
            "search_read",
            [("config_id", "=", rest_id), ("res_id", "=", partner_id)],
            ["external_id"],
        )
        return bindings[0]["external_id"] if bindings else None

    def remote(resource_id):
        response = session.get(f"{resources}/{resource_id}", timeout=10)
        return response.json() if response.status_code == 200 else response.status_code

    partner_id = execute("res.partner", "create", {"name": "Smoke Test", "email": "s@x.io"})
    log = wait_for_log(config_id, partner_id, "create")
    print(
        f"[smoke] contact {partner_id} created: event delivered "
        f"(HTTP {log['response_status']}, {log['attempt_count']} attempt)"
    )
    log = wait_for_log(rest_id, partner_id, "create")
    bound = external_id(partner_id)
    if not bound or remote(bound) == 404:
        raise RuntimeError(f"the REST API has no resource for contact {partner_id} ({bound})")
    print(f"[smoke] REST: POST answered HTTP {log['response_status']}, external id {bound} stored")
    execute("res.partner", "write", [partner_id], {"email": "smoke@x.io"})
    log = wait_for_log(config_id, partner_id, "update")
    print(f"[smoke] contact {partner_id} edited: event delivered (HTTP {log['response_status']})")
    wait_for_log(rest_id, partner_id, "update")
    if remote(bound).get("email") != "smoke@x.io":
        raise RuntimeError(f"the update did not reach {resources}/{bound}: {remote(bound)}")
    print(f"[smoke] REST: update sent to /resources/contacts/{bound}")
    two_way(session, execute, args, deadline, partner_id, bound, (config_id, rest_id))
    execute("res.partner", "unlink", [partner_id])
    wait_for_log(config_id, partner_id, "delete")
    print(f"[smoke] contact {partner_id} deleted: event delivered")
    wait_for_log(rest_id, partner_id, "delete")
    if remote(bound) != 404 or external_id(partner_id):
        raise RuntimeError(f"the deletion left {resources}/{bound} or its binding")
    print(f"[smoke] REST: /resources/contacts/{bound} deleted, binding removed")
    print("[smoke] OK")


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, requests.RequestException) as exc:
        print(f"[smoke] FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
