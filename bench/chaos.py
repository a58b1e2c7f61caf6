"""The api_sync fault-injection run (issue 10), started by ``tools/chaos``; see BENCHMARKS.md.

A real Odoo server (2 workers, the queue_job runner, a cron thread) and a receiver on 127.0.0.1
that answers 500 to 30% of the requests and too late (after the client's timeout, with a 200
nobody reads) to 10%. Four writers create and edit contacts over JSON-RPC, some of their writes
rolled back on purpose. Faults, in order: ``kill -9`` of a worker running a delivery,
``pg_terminate_backend`` of the server's connections in a transaction, the receiver down for
20 s, ``kill -9`` of the whole server while deliveries run, then a restart. Nobody acts after
that: writers stop, and the run waits until every committed change has reached the receiver
(bounded) and prints the figures. Everything stays on the loopback interface and is bounded in time.
"""

# pylint: disable=print-used  # a command-line report

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import psycopg2
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.driver import command_arguments, conf_value, json_rpc, start_odoo  # noqa: E402
from engine.receiver import Receiver, Reply  # noqa: E402

WRITERS = 4
ERROR_RATIO = 0.30
LATE_RATIO = 0.10
TIMEOUT = 1.0  # the configuration's timeout; a late answer comes after LATE_DELAY
LATE_DELAY = 2.0
OUTAGE_SECONDS = 20
RECOVERY_LIMIT = 300  # seconds after the last fault: the run gives up waiting then
OWN_TABLE = re.compile(r"\bapi_sync_(log|record_status|run|config|field_mapping)\b")
CONNECTION_LOST = re.compile(
    r"server closed the connection|terminating connection|connection already|cursor already closed"
)
ROLLBACK_RATIO = 0.1  # writes that fail on purpose (recursive parent): never to be sent


def log(message):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Rpc:
    """JSON-RPC ``execute_kw`` as admin; one session per writer."""

    def __init__(self, url, db):
        self.url, self.db = f"{url}/jsonrpc", db
        self.session = requests.Session()
        self.uid = self.call("common", "login", db, "admin", "admin")

    def call(self, service, method, *args):
        return json_rpc(
            self.session, self.url, {"service": service, "method": method, "args": args}
        )

    def __call__(self, model, method, *args, **kwargs):
        return self.call(
            "object", "execute_kw", self.db, self.uid, "admin", model, method, list(args), kwargs
        )


class FaultyReceiver:
    """The receiver with faults; survives being taken down (a new server on the same port)."""

    def __init__(self, seed):
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.accepted = []  # (event id, record id, version, name) of the 2xx answers, in order
        self.requests = 0
        self.server = Receiver(0, keep=False, policy=self.policy).__enter__()
        self.port = self.server.port

    def policy(self, request):
        with self.lock:
            self.requests += 1
            draw = self.random.random()
            if draw < ERROR_RATIO:
                return Reply(500)
            body = request.json
            self.accepted.append(
                (body["id"], body["record_id"], body["version"], body["data"].get("name"))
            )
            return Reply(delay=LATE_DELAY) if draw < ERROR_RATIO + LATE_RATIO else Reply()

    def down(self):
        self.server.close()

    def up(self):
        self.server = Receiver(self.port, keep=False, policy=self.policy).__enter__()

    def close(self):
        with contextlib.suppress(Exception):
            self.server.close()


class Chaos:
    def __init__(self, args):
        self.args = args
        self.port = int(conf_value(args.conf, "http_port"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.receiver = FaultyReceiver(args.seed)
        self.stop_writing = threading.Event()
        self.server_down = threading.Event()
        self.committed = {}  # partner id -> names written by calls that returned
        self.uncertain = set()  # names of calls cut by the server kill (committed or not)
        self.rolled_back = set()
        self.writer_errors = []
        self.faults = []
        self.lock = threading.Lock()
        self.server = None

    def db(self):
        connection = psycopg2.connect(dbname=self.args.db)
        connection.autocommit = True
        return connection

    def query(self, sql, params=()):
        with contextlib.closing(self.db()) as connection, connection.cursor() as cr:
            cr.execute(sql, params)
            return cr.fetchall() if cr.description else None

    # -- the server ---------------------------------------------------------------------------

    def start_server(self):
        # its own process group: kill -9 takes all of it
        self.server = start_odoo(
            self.args.odoo,
            self.args.conf,
            self.args.log,
            launcher=self.args.launcher,
            start_new_session=True,
        )

    def stop_server(self):
        if self.server and self.server.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait(10)

    def setup(self):
        rpc = Rpc(self.url, self.args.db)
        model_id = rpc("ir.model", "search", [("model", "=", "res.partner")])[0]
        config_id = rpc(
            "api.sync.config",
            "create",
            {
                "name": "Chaos",
                "model_id": model_id,
                "endpoint_url": f"http://127.0.0.1:{self.receiver.port}/hooks",
                "timeout": TIMEOUT,
                "max_attempts": 50,
                "backoff_base": 1,
                "backoff_max": 5,
                "domain": "[('ref', '=', 'CHAOS')]",
                "mapping_ids": [
                    (0, 0, {"source_path": "name", "target_key": "name", "transform": "raw"})
                ],
            },
        )
        wizard = rpc(
            "api.sync.automation.wizard",
            "create",
            {"config_id": config_id, "on_create": True, "on_update": True, "on_delete": False},
        )
        rpc("api.sync.automation.wizard", "action_generate", [wizard])

    # -- writers ------------------------------------------------------------------------------

    def writer(self, index):
        rng = random.Random(self.args.seed * 100 + index)
        rpc = Rpc(self.url, self.args.db)
        mine = []
        for seq in range(self.args.writes):
            if self.stop_writing.is_set():
                return
            while self.server_down.is_set():
                time.sleep(0.2)
            name = f"w{index}-{seq}"
            rollback = bool(mine) and rng.random() < ROLLBACK_RATIO
            try:
                if rollback:
                    partner_id = rng.choice(mine)
                    name = f"rb-{name}"
                    # a recursive parent fails the write after the name changed: rolled back
                    rpc(
                        "res.partner",
                        "write",
                        [partner_id],
                        {"name": name, "parent_id": partner_id},
                    )
                elif not mine or rng.random() < 0.15:
                    partner_id = rpc("res.partner", "create", {"name": name, "ref": "CHAOS"})
                    mine.append(partner_id)
                else:
                    partner_id = rng.choice(mine)
                    rpc("res.partner", "write", [partner_id], {"name": name})
            except requests.RequestException:
                with self.lock:
                    self.uncertain.add(name)  # cut by the server kill: committed or not
                time.sleep(0.5)
                continue
            except RuntimeError as exc:
                with self.lock:
                    if rollback:
                        self.rolled_back.add(name)
                    elif "connection" in str(exc):  # pg_terminate_backend: not api_sync's doing
                        self.uncertain.add(name)
                    else:
                        self.writer_errors.append(f"{name}: {exc}")
                continue
            with self.lock:
                if rollback:
                    self.writer_errors.append(f"{name}: the rolled-back write went through")
                self.committed.setdefault(partner_id, []).append(name)
            time.sleep(rng.uniform(0.2, 0.6))

    # -- faults -------------------------------------------------------------------------------

    def started_delivery(self, limit=30):
        """A worker pid running a delivery now (waits for one, bounded)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            rows = self.query(
                """SELECT worker_pid FROM queue_job WHERE state = 'started'
                      AND method_name = '_deliver' AND worker_pid IS NOT NULL"""
            )
            if rows:
                return rows[0][0]
            time.sleep(0.05)
        return None

    def fault(self, what):
        self.faults.append((round(time.monotonic() - self.t0, 1), what))
        log(what)

    def kill_worker(self):
        pid = self.started_delivery()
        if pid:
            os.kill(pid, signal.SIGKILL)
            self.fault(f"kill -9 of worker {pid} running a delivery")

    def terminate_connections(self):
        rows = self.query(
            """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND xact_start IS NOT NULL""",
        )
        self.fault(f"pg_terminate_backend of {len(rows)} server connections in a transaction")

    def kill_server(self):
        self.started_delivery()
        self.server_down.set()
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.wait(10)
        self.fault("kill -9 of the whole server (master, workers, cron, job runner)")
        time.sleep(3)
        self.start_server()
        self.stop_writing.set()
        self.server_down.clear()
        self.fault("server restarted")

    def timeline(self):
        time.sleep(15)
        self.kill_worker()
        time.sleep(10)
        self.terminate_connections()
        time.sleep(5)
        self.receiver.down()
        self.fault(f"receiver down for {OUTAGE_SECONDS} s")
        time.sleep(OUTAGE_SECONDS)
        self.receiver.up()
        self.fault("receiver up")
        time.sleep(10)
        self.kill_server()

    # -- the figures --------------------------------------------------------------------------

    def final_names(self):
        rows = self.query("SELECT id, name FROM res_partner WHERE ref = 'CHAOS'")
        return dict(rows)

    def pending(self):
        return self.query("SELECT count(*) FROM api_sync_log WHERE state = 'pending'")[0][0]

    def undelivered(self, final):
        with self.receiver.lock:
            seen = {(record_id, name) for _id, record_id, _v, name in self.receiver.accepted}
        return [record_id for record_id, name in final.items() if (record_id, name) not in seen]

    def figures(self, recovered_after):
        final = self.final_names()
        with self.receiver.lock:
            accepted = list(self.receiver.accepted)
        written = {name for names in self.committed.values() for name in names}
        phantom = [
            name
            for _id, _record, _version, name in accepted
            if name in self.rolled_back or (name not in written and name not in self.uncertain)
        ]
        out_of_order, last_version = 0, {}
        for _id, record_id, version, _name in accepted:
            if version < last_version.get(record_id, ""):
                out_of_order += 1
            last_version[record_id] = max(version, last_version.get(record_id, ""))
        ids = [event_id for event_id, *_rest in accepted]
        done = {
            row[0]
            for row in self.query("SELECT idempotency_key FROM api_sync_log WHERE state = 'done'")
        }
        states = dict(self.query("SELECT state, count(*) FROM api_sync_log GROUP BY state"))
        recoveries = self.query("SELECT coalesce(sum(recovery_count), 0) FROM api_sync_log")[0][0]
        with open(self.args.log, errors="replace") as server_log:
            text = server_log.read()
        # a query on an api_sync table that failed for another reason than the connection
        # the run itself terminated
        sql_errors = sum(
            1
            for entry in text.split("\n20")
            if " ERROR " in entry.split("\n")[0]
            and "odoo.sql_db" in entry
            and OWN_TABLE.search(entry)
            and not CONNECTION_LOST.search(entry)
        )
        return {
            "events": sum(states.values()),
            "log_states": states,
            "records": len(final),
            "writes_committed": len(written),
            "writes_rolled_back": len(self.rolled_back),
            "writes_cut_by_the_kill": len(self.uncertain),
            "requests_received": self.receiver.requests,
            "lost": len(self.undelivered(final)),
            "phantom": len(phantom),
            "out_of_order": out_of_order,
            "duplicates": len(ids) - len(set(ids)),
            "done_without_2xx": len(done - set(ids)),
            "pending_at_end": self.pending(),
            "time_to_recover_s": recovered_after,
            "recoveries": recoveries,
            "writer_errors": len(self.writer_errors),
            "sql_error_lines_on_api_sync_tables": sql_errors,
            "faults": self.faults,
        }

    def run(self):
        self.start_server()
        self.setup()
        log(f"receiver on port {self.receiver.port}; {WRITERS} writers start")
        self.t0 = time.monotonic()
        writers = [threading.Thread(target=self.writer, args=(i,)) for i in range(WRITERS)]
        for thread in writers:
            thread.start()
        self.timeline()
        for thread in writers:
            thread.join(120)
        last_fault = time.monotonic()
        log("last fault done; nobody acts from now on: waiting for every change to arrive")
        recovered_after = None
        while time.monotonic() - last_fault < RECOVERY_LIMIT:
            if not self.pending() and not self.undelivered(self.final_names()):
                recovered_after = round(time.monotonic() - last_fault, 1)
                break
            time.sleep(1)
        return self.figures(recovered_after)


def main():
    parser = command_arguments(__doc__)
    parser.add_argument("--writes", type=int, default=200, help="at most, per writer")
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    chaos = Chaos(args)
    try:
        results = chaos.run()
    finally:
        chaos.stop_server()
        chaos.receiver.close()
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=2)
    for error in chaos.writer_errors[:5]:
        log(f"writer error: {error}")
    width = max(len(key) for key in results)
    for key, value in results.items():
        if key != "faults":
            print(f"{key:<{width}}  {value}")
    print("faults (seconds after the writers started):")
    for when, what in results["faults"]:
        print(f"  {when:>6}  {what}")
    targets = ("lost", "phantom", "out_of_order", "pending_at_end", "writer_errors")
    ok = all(results[key] == 0 for key in targets) and results["time_to_recover_s"] is not None
    ok = ok and results["time_to_recover_s"] <= 120
    print(
        f"chaos: {'PASS' if ok else 'FAIL'} (target: 0 lost, phantom, out-of-order, pending; "
        "recovered within 120 s of the last fault, nobody acting)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
