"""Checks a running api_sync server end to end over JSON-RPC (``tools/run --smoke``)."""

import argparse
import sys
import time

import requests


def call(session, url, service, method, *args):
    response = session.post(
        f"{url}/jsonrpc",
        json={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": args},
        },
        timeout=60,
    )
    response.raise_for_status()
    body = response.json()
    if "error" in body:
        raise RuntimeError(body["error"]["data"]["message"])
    return body["result"]


def wait_for_server(session, url, deadline):
    while time.monotonic() < deadline:
        try:
            if session.get(f"{url}/web/login", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    raise RuntimeError(f"no answer from {url}")


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

    def wait_for_log(partner_id, operation):
        while time.monotonic() < deadline:
            logs = execute(
                "api.sync.log",
                "search_read",
                [
                    ("res_id", "=", partner_id),
                    ("res_model", "=", "res.partner"),
                    ("operation", "=", operation),
                ],
                ["state", "attempt_count", "response_status", "error_message"],
            )
            if logs and logs[0]["state"] != "pending":
                if logs[0]["state"] != "done":
                    raise RuntimeError(f"{operation} event {logs[0]['state']}: {logs[0]}")
                return logs[0]
            time.sleep(0.5)
        raise RuntimeError(f"the {operation} event of contact {partner_id} was not delivered")

    partner_id = execute("res.partner", "create", {"name": "Smoke Test", "email": "s@x.io"})
    log = wait_for_log(partner_id, "create")
    print(
        f"[smoke] contact {partner_id} created: event delivered "
        f"(HTTP {log['response_status']}, {log['attempt_count']} attempt)"
    )
    execute("res.partner", "write", [partner_id], {"email": "smoke@x.io"})
    log = wait_for_log(partner_id, "update")
    print(f"[smoke] contact {partner_id} edited: event delivered (HTTP {log['response_status']})")
    execute("res.partner", "unlink", [partner_id])
    wait_for_log(partner_id, "delete")
    print(f"[smoke] contact {partner_id} deleted: event delivered")
    print("[smoke] OK")


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, requests.RequestException) as exc:
        print(f"[smoke] FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
