"""The api_sync fault-injection run (issues 10 and 22), started by ``tools/chaos``; see
BENCHMARKS.md.

A real Odoo server (2 workers, the queue_job runner, a cron thread) and a receiver on 127.0.0.1
that answers 500 to 30% of the requests and too late (after the client's timeout, with a 200
nobody reads) to 10%. Four writers create and edit contacts over JSON-RPC, some of their writes
rolled back on purpose. Faults, in order: ``kill -9`` of a worker running a delivery,
``pg_terminate_backend`` of the server's connections in a transaction, the receiver down for
20 s, ``kill -9`` of the whole server while deliveries run, then a restart. Nobody acts after
that: writers stop, and the run waits until every committed change has reached the receiver
(bounded) and prints the figures. Everything stays on the loopback interface and is bounded in time.

With two nodes (two ``--conf`` and ``--haproxy``): two Odoo servers on the one database, HAProxy
in front of both for the writers and the job runner's calls; both run queue_job's runner (one
holds the lead). Faults: ``kill -9`` of the node whose runner does not lead, its restart, then
``kill -9`` of the node whose runner leads, its restart. For each death, the time to the next
delivery and the longest pause of deliveries in the minute after it are printed, and the
deliveries each node made.
"""

# pylint: disable=print-used  # a command-line report

import contextlib
import itertools
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
JOB_TABLE = re.compile(r"\bqueue_job\b")  # api_sync claims, wakes and marks jobs there too
CONNECTION_LOST = re.compile(
    r"server closed the connection|terminating connection|connection already|cursor already closed"
)
ROLLBACK_RATIO = 0.1  # writes that fail on purpose (recursive parent): never to be sent
RUNNER_LOCK = 2293787760715711918  # queue_job's runner takes this advisory lock to lead
AFTER_DEATH = 60  # seconds after a death looked at for pauses of the deliveries


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
        self.accepted_at = []  # the time of each (time.monotonic())
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
            self.accepted_at.append(time.monotonic())
            return Reply(delay=LATE_DELAY) if draw < ERROR_RATIO + LATE_RATIO else Reply()

    def down(self):
        self.server.close()

    def up(self):
        self.server = Receiver(self.port, keep=False, policy=self.policy).__enter__()

    def close(self):
        with contextlib.suppress(Exception):
            self.server.close()


class Node:
    """One Odoo server of the run, in a process group of its own (``kill -9`` takes all of it:
    master, workers, cron, job runner); its connections are named ``odoo-<name>-<pid>``."""

    def __init__(self, name, args, conf, logfile):
        self.name, self.args, self.conf, self.log = name, args, conf, logfile
        self.process = None
        self.pids = set()  # its processes seen so far (``sample``): the workers' pids of jobs

    def start(self):
        self.process = start_odoo(
            self.args.odoo,
            self.conf,
            self.log,
            launcher=self.args.launcher,
            start_new_session=True,
            env=dict(os.environ, ODOO_PGAPPNAME=f"odoo-{self.name}-{{pid}}"),
        )
        self.sample()

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def sample(self):
        import psutil  # noqa: PLC0415

        with contextlib.suppress(psutil.Error, AttributeError):
            root = psutil.Process(self.process.pid)
            self.pids |= {root.pid, *(child.pid for child in root.children(recursive=True))}

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


class Chaos:
    def __init__(self, args):
        self.args = args
        root, ext = os.path.splitext(args.log)
        logs = [args.log] + [f"{root}-node{index}{ext}" for index in range(2, len(args.conf) + 1)]
        self.nodes = [
            Node(f"node{index}", args, conf, logfile)
            for index, (conf, logfile) in enumerate(zip(args.conf, logs, strict=True), 1)
        ]
        self.balancer = None
        if args.haproxy:
            with open(args.haproxy) as handle:
                self.port = int(re.search(r"bind 127\.0\.0\.1:(\d+)", handle.read()).group(1))
        else:
            self.port = int(conf_value(args.conf[0], "http_port"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.receiver = FaultyReceiver(args.seed)
        self.stop_writing = threading.Event()
        self.server_down = threading.Event()
        self.committed = {}  # partner id -> names written by calls that returned
        self.uncertain = set()  # names of calls cut by the server kill (committed or not)
        self.rolled_back = set()
        self.writer_errors = []
        self.faults = []
        self.deaths = []  # (time.monotonic(), what) of each kill -9
        self.fault_times = []  # time.monotonic() of each fault
        self.lock = threading.Lock()

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
        for node in self.nodes:
            node.start()
        if self.args.haproxy and not self.balancer:
            with open(f"{os.path.splitext(self.args.log)[0]}-haproxy.log", "a") as output:
                self.balancer = subprocess.Popen(
                    ["haproxy", "-f", self.args.haproxy, "-db"],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{self.url}/web/health", timeout=2).ok:
                        return
                time.sleep(0.5)
            raise RuntimeError("HAProxy did not answer within 30 s")

    def stop_server(self):
        for node in self.nodes:
            node.stop()
        if self.balancer and self.balancer.poll() is None:
            self.balancer.terminate()
            self.balancer.wait(10)

    def sampler(self):
        """Every half second, the processes of each node (jobs name their worker's pid)."""
        while not self.done.is_set():
            for node in self.nodes:
                if node.alive():
                    node.sample()
            time.sleep(0.5)

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
        if self.args.at_commit:  # the saving process delivers (models/at_commit.py)
            rpc("ir.config_parameter", "set_param", "api_sync.deliver_at_commit", "True")

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

    def started_delivery(self, limit=30, node=None):
        """A worker pid running a delivery now (of ``node``), waiting for one (bounded)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            rows = self.query(
                """SELECT worker_pid FROM queue_job WHERE state = 'started'
                      AND method_name = '_deliver' AND worker_pid IS NOT NULL"""
            )
            pids = [pid for (pid,) in rows if node is None or pid in node.pids]
            if pids:
                return pids[0]
            time.sleep(0.05)
        return None

    def fault(self, what, death=False):
        now = time.monotonic()
        self.faults.append((round(now - self.t0, 1), what))
        self.fault_times.append(now)
        if death:
            self.deaths.append((now, what))
        log(what)

    def kill_worker(self):
        pid = self.started_delivery()
        if pid:
            os.kill(pid, signal.SIGKILL)
            self.fault(f"kill -9 of worker {pid} running a delivery", death=True)

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
        self.nodes[0].kill()
        self.fault("kill -9 of the whole server (master, workers, cron, job runner)", death=True)
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

    # -- two nodes ----------------------------------------------------------------------------

    def leader(self):
        """The node whose job runner leads (holds queue_job's advisory lock), or None."""
        rows = self.query(
            """SELECT a.application_name FROM pg_locks AS l
                 JOIN pg_stat_activity AS a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                  AND l.classid::bigint = %s AND l.objid::bigint = %s""",
            (RUNNER_LOCK >> 32, RUNNER_LOCK & 0xFFFFFFFF),
        )
        names = {row[0].split("-")[1] for row in rows if row[0] and row[0].count("-") >= 2}
        return next((node for node in self.nodes if node.name in names), None)

    def deliveries_on(self, node):
        return self.query(
            """SELECT count(*) FROM queue_job WHERE state = 'started'
                  AND method_name = '_deliver' AND worker_pid = ANY(%s)""",
            (list(node.pids),),
        )[0][0]

    def kill_node(self, node, role, limit=30):
        """kill -9 of ``node`` once its workers run as many deliveries as the channel allows
        (every place of ``root.api_sync`` then dies with it), or, after ``limit`` seconds, once
        they run one."""
        capacity = int(re.search(r"root\.api_sync:(\d+)", conf_value(node.conf, "channels"))[1])
        deadline = time.monotonic() + limit
        while (held := self.deliveries_on(node)) < capacity and (
            time.monotonic() < deadline or not held
        ):
            if time.monotonic() > deadline + limit:
                break
            time.sleep(0.02)
        node.kill()
        self.fault(
            f"kill -9 of {node.name} ({role}; its workers were running {held} of the "
            f"{capacity} deliveries root.api_sync allows)",
            death=True,
        )

    def restart_node(self, node):
        node.start()
        self.fault(f"{node.name} restarted")

    def timeline_nodes(self):
        time.sleep(15)
        leader = self.leader()
        follower = next(node for node in self.nodes if node is not leader)
        self.kill_node(follower, "its job runner does not lead")
        time.sleep(20)
        self.restart_node(follower)
        time.sleep(15)
        leader = self.leader() or self.nodes[0]
        self.kill_node(leader, "its job runner leads")
        time.sleep(20)
        self.restart_node(leader)
        time.sleep(10)
        self.stop_writing.set()

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

    def resumes(self):
        """For each death: seconds to the next 2xx, and the longest pause between 2xx answers
        from it (counting as the first) until the next fault, ``AFTER_DEATH`` seconds at most
        (a receiver outage that follows is not the death's)."""
        with self.receiver.lock:
            times = sorted(self.receiver.accepted_at)
        found = []
        for died, what in self.deaths:
            until = min([t for t in self.fault_times if t > died] + [died + AFTER_DEATH])
            later = [t for t in times if t > died]
            # no delivery before the next fault: the pause lasts until the next one
            points = [died, *([t for t in later if t <= until] or later[:1])]
            found.append(
                {
                    "death": what,
                    "at_s": round(died - self.t0, 1),
                    "next_delivery_s": round(later[0] - died, 1) if later else None,
                    "longest_pause_s": round(max(b - a for a, b in itertools.pairwise(points)), 1)
                    if later
                    else None,
                }
            )
        return found

    def deliveries_by_node(self):
        """Delivery jobs done by the workers of each node (by their pid)."""
        rows = self.query(
            """SELECT worker_pid, count(*) FROM queue_job
                WHERE state = 'done' AND method_name = '_deliver' GROUP BY worker_pid"""
        )
        counts = dict.fromkeys([node.name for node in self.nodes] + ["unknown"], 0)
        for pid, count in rows:
            owner = next((node.name for node in self.nodes if pid in node.pids), "unknown")
            counts[owner] += count
        return counts

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
        text = ""
        for node in self.nodes:
            with open(node.log, errors="replace") as server_log:
                text += server_log.read()
        entries = [entry for entry in text.split("\n20") if " ERROR " in entry.split("\n")[0]]
        # a query on an api_sync table (or queue_job's) that failed for another reason than
        # the connection the run itself terminated
        sql_errors, job_sql_errors = (
            sum(
                1
                for entry in entries
                if "odoo.sql_db" in entry
                and table.search(entry)
                and not CONNECTION_LOST.search(entry)
            )
            for table in (OWN_TABLE, JOB_TABLE)
        )
        # api_sync's own loggers (its handled conflicts log at INFO at most)
        own_errors = sum(1 for entry in entries if "odoo.addons.api_sync" in entry.split("\n")[0])
        # the runner's calls cut by a node's death (expected: README)
        runner_errors = sum(1 for entry in entries if "queue_job.jobrunner" in entry.split("\n")[0])
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
            "sql_error_lines_on_queue_job": job_sql_errors,
            "api_sync_error_lines": own_errors,
            "job_runner_error_lines": runner_errors,
            "deliveries_by_node": self.deliveries_by_node(),
            "resume_after_death": self.resumes(),
            "faults": self.faults,
        }

    def run(self):
        self.done = threading.Event()
        self.start_server()
        threading.Thread(target=self.sampler, daemon=True).start()
        self.setup()
        log(f"receiver on port {self.receiver.port}; {WRITERS} writers start")
        self.t0 = time.monotonic()
        writers = [threading.Thread(target=self.writer, args=(i,)) for i in range(WRITERS)]
        for thread in writers:
            thread.start()
        if len(self.nodes) > 1:
            self.timeline_nodes()
        else:
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
        figures = self.figures(recovered_after)
        self.done.set()
        return figures


def main():
    parser = command_arguments(__doc__, several_confs=True)
    parser.add_argument("--haproxy", help="HAProxy's configuration: two nodes behind it")
    parser.add_argument("--writes", type=int, default=200, help="at most, per writer")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--at-commit", action="store_true", help="Deliver at Commit on")
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
        if key not in ("faults", "resume_after_death"):
            print(f"{key:<{width}}  {value}")
    print("faults (seconds after the writers started):")
    for when, what in results["faults"]:
        print(f"  {when:>6}  {what}")
    print(
        f"deliveries after each death (next 2xx; longest pause until the next fault, "
        f"{AFTER_DEATH} s at most):"
    )
    for resume in results["resume_after_death"]:
        print(
            f"  {resume['at_s']:>6}  {resume['next_delivery_s']} s; {resume['longest_pause_s']} s"
            f"  ({resume['death']})"
        )
    targets = ("lost", "phantom", "out_of_order", "pending_at_end", "writer_errors")
    targets += (
        "sql_error_lines_on_api_sync_tables",
        "sql_error_lines_on_queue_job",
        "api_sync_error_lines",
    )
    ok = all(results[key] == 0 for key in targets) and results["time_to_recover_s"] is not None
    ok = ok and results["time_to_recover_s"] <= 120
    wanted = "0 lost, phantom, out-of-order, pending, ERROR lines of api_sync"
    if len(chaos.nodes) > 1:
        pauses = [resume["longest_pause_s"] for resume in results["resume_after_death"]]
        ok = ok and all(pause is not None and pause <= 10 for pause in pauses)
        by_node = results["deliveries_by_node"]
        ok = ok and all(by_node[node.name] for node in chaos.nodes)
        wanted += "; deliveries on every node; no pause over 10 s after a death"
    print(
        f"chaos: {'PASS' if ok else 'FAIL'} (target: {wanted}; recovered within 120 s of the "
        "last fault, nobody acting)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
