"""Screenshots of the README, taken from the demo database that tools/run serves.

Started by tools/screenshots with the server up: it makes a few events (a contact created and
edited, one delivery that fails and is retried), then drives headless Chromium through its
devtools protocol (logged in as admin) and saves PNG files in docs/screenshots/.
"""

import argparse
import base64
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests
import websocket

REPO = Path(__file__).resolve().parent.parent
DOWN_URL = "http://127.0.0.1:9/hooks/contacts"  # nothing listens there
OUT = REPO / "docs" / "screenshots"


def rpc(session, url, model, method, *args, **kwargs):
    response = session.post(
        f"{url}/web/dataset/call_kw",
        json={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"model": model, "method": method, "args": args, "kwargs": kwargs},
        },
        timeout=60,
    )
    body = response.json()
    if "error" in body:
        raise RuntimeError(body["error"]["data"]["message"])
    return body["result"]


def login(url, db):
    session = requests.Session()
    response = session.post(
        f"{url}/web/session/authenticate",
        json={"jsonrpc": "2.0", "params": {"db": db, "login": "admin", "password": "admin"}},
        timeout=60,
    )
    response.raise_for_status()
    return session


def wait_for(predicate, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(1)
    raise RuntimeError("timed out waiting for the demo to deliver")


def make_events(session, url):
    """A contact created while the endpoint does not answer, then delivered once it does (an
    event with two attempts), and edited."""
    config_id = rpc(
        session, url, "ir.model.data", "check_object_reference", "api_sync", "demo_config_contacts"
    )[1]
    (config,) = rpc(session, url, "api.sync.config", "read", [config_id], ["endpoint_url"])
    rpc(session, url, "api.sync.config", "write", [config_id], {"endpoint_url": DOWN_URL})
    partner = rpc(session, url, "res.partner", "create", {"name": "Ada Screenshot"})

    def attempted():
        return rpc(
            session,
            url,
            "api.sync.log",
            "search_count",
            [("res_id", "=", partner), ("attempt_count", ">", 0)],
        )

    wait_for(attempted)
    endpoint = {"endpoint_url": config["endpoint_url"]}
    rpc(session, url, "api.sync.config", "write", [config_id], endpoint)  # back up: it resumes
    rpc(session, url, "res.partner", "write", [partner], {"email": "ada@example.com"})

    def delivered():
        logs = rpc(
            session,
            url,
            "api.sync.log",
            "search_read",
            [("res_id", "=", partner), ("state", "=", "done"), ("attempt_count", ">", 1)],
            ["id"],
        )
        return logs and logs[0]["id"]

    log_id = wait_for(delivered)
    return config_id, log_id


class Browser:
    """Headless Chromium driven through the devtools protocol (only loopback pages)."""

    def __init__(self, executable, width=1400, height=900):
        self.profile = tempfile.mkdtemp(prefix="api_sync_shots_")
        self.process = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        wait_for(port_file.exists, 30)
        port = int(port_file.read_text().split()[0])
        targets = wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/json", timeout=5).json())
        page = next(target for target in targets if target["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                return message.get("result", {})

    def rendered(self):
        result = self.call(
            "Runtime.evaluate",
            expression="!!document.querySelector('.o_action_manager .o_view_controller')",
            returnByValue=True,
        )
        return result.get("result", {}).get("value")

    def shoot(self, url, target, settle=2, tab=None):
        """Photograph the page at ``url``, after opening its notebook page named ``tab``."""
        self.call("Page.navigate", url=url)
        time.sleep(1)
        wait_for(self.rendered, 60)  # the first page also builds the web client's assets
        time.sleep(settle)  # the view's own requests
        if tab:
            self.call(
                "Runtime.evaluate",
                expression=f"""const link = document.querySelector('.o_notebook a[name="{tab}"]');
                    link.click(); link.scrollIntoView();""",
            )
            time.sleep(1)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        target.write_bytes(base64.b64decode(data))
        print(f"[screenshots] {target.relative_to(REPO)}", flush=True)

    def close(self):
        self.socket.close()
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    executable = shutil.which("chromium") or shutil.which("google-chrome")
    if not executable:
        raise SystemExit("Chromium is needed: install Debian's chromium package")
    session = login(args.url, args.db)
    config_id, log_id = make_events(session, args.url)
    OUT.mkdir(parents=True, exist_ok=True)
    browser = Browser(executable)
    try:
        host = args.url.split("//", 1)[1].split(":")[0]
        browser.call(
            "Network.setCookie",
            name="session_id",
            value=session.cookies["session_id"],
            domain=host,
            path="/",
        )
        base = f"{args.url}/odoo"
        browser.shoot(f"{base}/action-api_sync.action_api_sync_dashboard", OUT / "dashboard.png")
        browser.shoot(f"{base}/action-api_sync.action_api_sync_log/{log_id}", OUT / "log.png")
        browser.shoot(
            f"{base}/action-api_sync.action_api_sync_config/{config_id}", OUT / "config.png"
        )
        rest_id = rpc(
            session,
            args.url,
            "ir.model.data",
            "check_object_reference",
            "api_sync",
            "demo_config_contacts_rest",
        )[1]
        browser.shoot(
            f"{base}/action-api_sync.action_api_sync_config/{rest_id}",
            OUT / "config-requests.png",
            tab="requests",
        )
        browser.shoot(f"{base}/action-api_sync.action_api_sync_binding", OUT / "external-ids.png")
    finally:
        browser.close()


if __name__ == "__main__":
    main()
