"""The api_sync benchmark driver (issue 6), started by ``tools/bench``; see BENCHMARKS.md.

Parts 1 to 3 run inside this process on an Odoo registry of the bench database; parts 4 to 6
start an Odoo server with workers and the queue_job runner. Receivers are processes of their own
(``bench/receiver_proc.py``) on 127.0.0.1. Every figure that matters is a ratio of two medians
measured in the same run, in interleaved rounds, except part 4's delay from a save's commit to
the receiver's 2xx: percentiles of one series at a steady rate. Everything is bounded in time.
"""

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Sizes: (full, quick).
SIZES = {
    "rounds": (3, 3),
    "write_n": (500, 100),  # contacts created then updated per setup (parts 1, 2)
    "write_n_slow": (40, 10),  # the same with Odoo's webhook to the 200 ms receiver
    "mapping_n": (10_000, 2_000),  # part 3
    "naive_n": (
        2_500,
        1_000,
    ),  # part 3: the naive implementation's sample (per-record figures)
    "record_m": (300, 100),  # part 4, events per round in record mode
    "batch_m": (10_000, 2_000),  # part 4, records per round in batch mode
    "latency_s": (30, 10),  # part 4: seconds of writes at half the record-mode rate
    "latency_min": (300, 100),  # part 4: at least this many writes (for a p99)
    "latency_capacity_n": (200, 100),  # part 4: writes back to back for the path's capacity
    "scale_small": (10_000, 2_000),  # part 5
    "scale_large": (100_000, 20_000),
    "scale_huge": (1_000_000, 200_000),  # part 5 with --large only
    "scrape_logs": (100_000, 20_000),  # part 5: logs in the database when /api_sync/metrics is read
    "scrape_logs_huge": (1_000_000, 200_000),  # the same with --large
    "inbound_n": (1_000, 200),  # part 6, inbound events (and bare writes) per round
}
INBOUND_CLIENTS = 2  # part 6: concurrent senders (the server has 2 workers)
WRITE_BLOCK = 100  # parts 1 and 2: calls per setup before the next setup takes its turn
BATCH_SIZE = 100  # part 4
SCALE_BATCH_SIZE = 500  # part 5
LATENCY_LOAD = 0.5  # part 4: the writes' rate, as a share of the record-mode rate measured
LATENCY_MARKER = "Latency probe"  # part 4: names the receiver notes the answer times of
AT_COMMIT_PARAM = "api_sync.deliver_at_commit"  # Settings > API Sync > Deliver at Commit
LATENCY_WARM = 10  # part 4: writes before the timed ones (the rule's registry reload, caches)
LATENCY_WARM_RATE = 2  # their rate (per second), and that of the writes without load
LATENCY_UNLOADED = 20  # part 4: writes at that rate, after the capacity's (warm caches)
PERCENTILES = {"min": 0, "p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1}
WAIT_LIMIT = 900  # seconds: no wait for deliveries lasts longer than this
HUGE_WAIT_LIMIT = 3600  # the same for the full sync of --large

TARGETS = {
    # key: (comparison, threshold)
    "write_overhead_ratio": ("<=", 1.10),
    "listener_overhead_vs_no_rule": ("<=", 1.15),
    "latency_independence_ratio": ("<=", 1.05),
    "mapping_vs_naive_ratio": ("<=", 0.25),
    "record_vs_bare_ratio": (">=", 0.25),
    "latency_p99_vs_p50_ratio": ("<=", 3.0),
    "latency_p50_vs_bare_ratio": ("<=", 10.0),
    "latency_at_commit_p99_vs_p50_ratio": ("<=", 3.0),
    "latency_at_commit_p50_vs_bare_ratio": ("<=", 10.0),
    "batch_vs_handwritten_ratio": (">=", 0.7),
    "batch_vs_record_ratio": (">=", 20.0),
    "scaling_ratio": ("<=", 11.0),
    "scaling_peak_rss_ratio": ("<=", 1.10),
    "scaling_1m_ratio": ("<=", 10.5),
    "scaling_1m_peak_rss_ratio": ("<=", 1.10),
}

MAPPED_FIELDS = ["name", "email", "phone", "parent_id", "country_id", "category_id"]
SYNC_LINES = [  # part 1 (c), part 4: the "few mapping lines" of the brief
    ("name", "name", "raw"),
    ("email", "contact.email", "raw"),
    ("phone", "contact.phone", "raw"),
    ("parent_id", "company", "many2one_name"),
    ("country_id.code", "address.country", "raw"),
    ("category_id", "tags", "x2many_names"),
]
MAPPING_LINES = [  # part 3: 10 fields including relations
    *SYNC_LINES,
    ("street", "address.street", "raw"),
    ("city", "address.city", "raw"),
    ("parent_id.country_id.code", "company_country", "raw"),
    ("write_date", "updated_at", "datetime"),
]


def log(message):
    print(f"[bench] {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def command_arguments(description, several_confs=False):
    """The arguments a driver gets from its tools/ command (more are added by the caller);
    ``several_confs``: ``--conf`` may be given once per server."""
    parser = argparse.ArgumentParser(description=description)
    for name in ("--odoo", "--db", "--log", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--conf", required=True, action="append" if several_confs else "store")
    parser.add_argument("--launcher", help="odoo-bin or setup/odoo (default: ODOO/odoo-bin)")
    return parser


def json_rpc(session, url, params, timeout=60):
    """Post a JSON-RPC ``call`` with ``params`` to an Odoo route over ``session`` (requests);
    returns its result, raises RuntimeError with the server's message on an error."""
    response = session.post(
        url, json={"jsonrpc": "2.0", "method": "call", "params": params}, timeout=timeout
    )
    response.raise_for_status()
    body = response.json()
    if "error" in body:
        raise RuntimeError(body["error"]["data"]["message"])
    return body["result"]


def conf_value(conf, key):
    """A value of the ``[options]`` of an Odoo configuration file."""
    with open(conf) as handle:
        for line in handle:
            name, _, value = line.partition("=")
            if name.strip() == key:
                return value.strip()
    return None


def start_odoo(odoo, conf, logfile, launcher=None, **popen_args):
    """Start an Odoo server; returns its process once it answers (within 120 s)."""
    import requests  # noqa: PLC0415

    launcher = launcher or os.path.join(odoo, "odoo-bin")
    with open(logfile, "a") as server_log:
        server = subprocess.Popen(
            [sys.executable, launcher, "-c", conf, "--logfile", logfile],
            stdout=server_log,
            stderr=subprocess.STDOUT,
            **popen_args,
        )
    url = f"http://127.0.0.1:{conf_value(conf, 'http_port')}/web/health"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Odoo server stopped; see {logfile}")
        try:
            if requests.get(url, timeout=2).ok:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError("the Odoo server did not answer within 120 s")


def median(values):
    return statistics.median(values) if values else None


def _medians(runs):
    """Per setup, the median of each figure over the rounds."""
    return {name: {key: median([r[key] for r in rs]) for key in rs[0]} for name, rs in runs.items()}


def _in_ms(med):
    """The medians with their seconds (keys ending in ``_s``) in milliseconds."""
    return {
        name: {
            key: round(values[key] * 1000, 3) if key.endswith("_s") else values[key]
            for key in values
        }
        for name, values in med.items()
    }


def ratio(a, b):
    return a / b if a is not None and b else None


def percentile(values, share):
    """The nearest-rank percentile: the smallest value with ``share`` of them at or below it."""
    ranked = sorted(values)
    return ranked[max(0, math.ceil(share * len(ranked)) - 1)] if ranked else None


# -- receivers ------------------------------------------------------------------------------------


class ReceiverProcess:
    """``bench/receiver_proc.py`` in a process of its own; with ``times_marker``, it notes when
    it answered 2xx each body holding that text (``answer_times``)."""

    def __init__(self, python, delay, workdir, times_marker=None):
        self.count_file = os.path.join(workdir, f"receiver-{delay}-{os.getpid()}.count")
        self.times_file = self.count_file[: -len(".count")] + ".times"
        command = [
            python,
            os.path.join(HERE, "receiver_proc.py"),
            "--delay",
            str(delay),
            "--count-file",
            self.count_file,
            "--lifetime",
            "7200",
        ]
        if times_marker:
            command += ["--times-file", self.times_file, "--times-marker", times_marker]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            raise RuntimeError("the receiver did not start")
        self.port = int(line[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def count(self):
        time.sleep(0.25)
        try:
            with open(self.count_file) as handle:
                return int(handle.read() or 0)
        except FileNotFoundError:
            return 0

    def answer_times(self):
        """``{data.name: epoch seconds of its first 2xx answer}`` of the marked bodies."""
        times = {}
        try:
            with open(self.times_file) as handle:
                for line in handle:
                    answered, _, name = line.rstrip("\n").partition("\t")
                    times.setdefault(name, float(answered))
        except FileNotFoundError:
            pass
        return times

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for path in (self.count_file, self.count_file + ".tmp", self.times_file):
            if os.path.exists(path):
                os.unlink(path)


# -- Odoo in this process ---------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.results = {}
        self.details = {}
        sys.path.insert(0, args.odoo)
        import odoo  # noqa: PLC0415 - the tree is on the path only now

        odoo.tools.config.parse_config(["-c", args.conf, "--log-level=warn"])
        self.odoo = odoo
        self.registry = odoo.modules.registry.Registry(args.db)
        self.api = odoo.api
        self.Command = odoo.Command

    def size(self, name):
        return SIZES[name][1 if self.quick else 0]

    def cursor(self):
        return self.registry.cursor()

    def env(self, cr, uid=2):
        return self.api.Environment(cr, uid, {"lang": "en_US", "tz": "UTC"})

    # -- data -------------------------------------------------------------------------------

    def prepare_data(self):
        """Companies, tags, and the contacts the parts read (SQL: fast; not measured)."""
        with self.cursor() as cr:
            env = self.env(cr, self.odoo.SUPERUSER_ID)
            env["api.sync.config"].search([]).active = False
            tags = env["res.partner.category"].search([("name", "=like", "Bench tag %")])
            tags = tags or env["res.partner.category"].create(
                [{"name": f"Bench tag {i}"} for i in range(5)]
            )
            countries = env["res.country"].search([("code", "!=", False)], limit=20, order="id")
            companies = env["res.partner"].search([("ref", "=", "bench-company")])
            companies = companies or env["res.partner"].create(
                [
                    {
                        "name": f"Bench Company {i}",
                        "is_company": True,
                        "country_id": countries[i % len(countries)].id,
                        "ref": "bench-company",
                    }
                    for i in range(50)
                ]
            )
            cr.commit()
        self.tag_ids = tags.ids
        self.country_ids = countries.ids
        self.company_ids = companies.ids
        started = time.perf_counter()
        self.insert_contacts(self.size("scale_small"), "b-small")
        self.insert_contacts(self.size("write_n"), "writer")
        self.writer_ids = self.contact_ids("writer")
        log(f"data: {self.size('scale_small')} contacts in {time.perf_counter() - started:.1f} s")

    def insert_contacts(self, count, ref):
        """``count`` contacts with ``ref``, written an hour ago, by SQL (not measured)."""
        count -= len(self.contact_ids(ref))  # --reuse-db: only what is missing
        if count <= 0:
            return
        with self.cursor() as cr:
            cr.execute(
                """
                INSERT INTO res_partner
                    (name, complete_name, email, email_normalized, phone, street, city, zip,
                     country_id, parent_id, type, active, is_company, ref, lang, tz,
                     partner_share, create_uid, write_uid, create_date, write_date)
                SELECT 'Bench Contact ' || %(ref)s || ' ' || g,
                       'Bench Contact ' || %(ref)s || ' ' || g,
                       'contact' || g || '.' || %(ref)s || '@example.com',
                       'contact' || g || '.' || %(ref)s || '@example.com',
                       '+1 555 ' || lpad(g::text, 7, '0'),
                       g || ' Benchmark Street', 'Bench City ' || (g %% 97),
                       lpad((g %% 99999)::text, 5, '0'),
                       (%(countries)s::int[])[1 + g %% array_length(%(countries)s::int[], 1)],
                       CASE WHEN g %% 5 = 0 THEN NULL
                            ELSE (%(companies)s::int[])
                                 [1 + g %% array_length(%(companies)s::int[], 1)]
                       END,
                       'contact', true, false, %(ref)s, 'en_US', 'UTC', true, 2, 2,
                       now() AT TIME ZONE 'UTC' - interval '1 hour',
                       now() AT TIME ZONE 'UTC' - interval '1 hour' + g * interval '1 millisecond'
                  FROM generate_series(1, %(count)s) AS g
                """,
                {
                    "ref": ref,
                    "count": count,
                    "countries": self.country_ids,
                    "companies": self.company_ids,
                },
            )
            cr.execute(
                """UPDATE res_partner p
                      SET complete_name = c.name || ', ' || p.name,
                          commercial_partner_id = c.id, commercial_company_name = c.name
                     FROM res_partner c
                    WHERE p.parent_id = c.id AND p.ref = %s""",
                (ref,),
            )
            cr.execute(
                """UPDATE res_partner SET commercial_partner_id = id
                    WHERE parent_id IS NULL AND ref = %s""",
                (ref,),
            )
            cr.execute(
                """INSERT INTO res_partner_res_partner_category_rel (category_id, partner_id)
                   SELECT (%(tags)s::int[])[1 + id %% 5], id FROM res_partner
                    WHERE ref = %(ref)s AND id %% 3 <> 0
                   UNION
                   SELECT (%(tags)s::int[])[1 + (id + 2) %% 5], id FROM res_partner
                    WHERE ref = %(ref)s AND id %% 3 = 1
                   ON CONFLICT DO NOTHING""",
                {"tags": self.tag_ids, "ref": ref},
            )
            cr.commit()
        self.vacuum("res_partner", "res_partner_res_partner_category_rel")

    def vacuum(self, *tables):
        """What autovacuum does after an insert of that size (this server runs without it): the
        planner's statistics of the tables the deliveries read, and their rows marked visible
        and the versions left by the preparation's own updates removed, so that the timed
        deliveries do not do that work instead (VACUUM runs outside a transaction)."""
        import psycopg2  # noqa: PLC0415

        connection = psycopg2.connect(dbname=self.args.db)
        connection.autocommit = True
        try:
            with connection.cursor() as cur:
                cur.execute(f"VACUUM ANALYZE {', '.join(tables)}")
        finally:
            connection.close()

    def contact_ids(self, ref, limit=None):
        with self.cursor() as cr:
            cr.execute(
                "SELECT id FROM res_partner WHERE ref = %s ORDER BY id"
                + (f" LIMIT {int(limit)}" if limit else ""),
                (ref,),
            )
            return [row[0] for row in cr.fetchall()]

    def make_config(self, env, name, url, lines, **values):
        config = env["api.sync.config"].create(
            {
                "name": name,
                "model_id": env["ir.model"]._get("res.partner").id,
                "endpoint_url": url,
                "company_id": False,
                **values,
            }
        )
        env["api.sync.field.mapping"].create(
            [
                {
                    "config_id": config.id,
                    "sequence": index,
                    "source_path": path,
                    "target_key": key,
                    "transform": transform,
                }
                for index, (path, key, transform) in enumerate(lines)
            ]
        )
        return config

    # -- part 1 and 2: the write path ---------------------------------------------------------

    def _setup(self, env, kind, url):
        """Create the rule of one setup (in the caller's transaction); returns the config."""
        sudo = env(su=True)
        model = sudo["ir.model"]._get("res.partner")
        watched = sudo["ir.model.fields"].search(
            [("model", "=", "res.partner"), ("name", "in", MAPPED_FIELDS)]
        )
        config = None
        if kind == "empty":
            sudo["base.automation"].create(
                {
                    "name": "bench: empty code",
                    "model_id": model.id,
                    "trigger": "on_create_or_write",
                    "trigger_field_ids": [self.Command.set(watched.ids)],
                    "action_server_ids": [
                        self.Command.create(
                            {
                                "name": "bench: pass",
                                "model_id": model.id,
                                "state": "code",
                                "code": "pass",
                            }
                        )
                    ],
                }
            )
        elif kind == "api_sync":
            config = self.make_config(sudo, "bench write path", url, SYNC_LINES)
            config._generate_automation_rules(True, True, False)
        elif kind == "listener":
            config = self.make_config(
                sudo, "bench listener", url, SYNC_LINES, trigger_mode="listener"
            )
        elif kind == "webhook":
            sudo["base.automation"].create(
                {
                    "name": "bench: native webhook",
                    "model_id": model.id,
                    "trigger": "on_create_or_write",
                    "trigger_field_ids": [self.Command.set(watched.ids)],
                    "action_server_ids": [
                        self.Command.create(
                            {
                                "name": "bench: webhook",
                                "model_id": model.id,
                                "state": "webhook",
                                "webhook_url": url,
                                "webhook_field_ids": [self.Command.set(watched.ids)],
                            }
                        )
                    ],
                }
            )
        self._reregister(sudo)
        return config

    def _reregister(self, env):
        """Patch the models after the rules in the current transaction (and after rollbacks)."""
        automation = env["base.automation"]
        automation._unregister_hook()
        automation._register_hook()

    def _timed_call(self, call, config):
        """``call(env)`` in a transaction of its own, timed up to what a commit would run (the
        ORM flush and the precommit hooks), then rolled back: (seconds, queries, logs made)."""
        with self.cursor() as cr:
            env = self.env(cr)
            q0, t0 = cr.sql_log_count, time.perf_counter()
            call(env)
            cr.flush()
            seconds, queries = time.perf_counter() - t0, cr.sql_log_count - q0
            logs = 0
            if config:
                cr.execute("SELECT count(*) FROM api_sync_log WHERE config_id = %s", (config.id,))
                logs = cr.fetchone()[0]
            cr.rollback()
        return seconds, queries, logs

    def _write_run(self, kind, url, start, n, tag):
        """One block of a setup: ``n`` creations, then ``n`` updates of existing contacts (from
        ``start`` in the pool), each call in a transaction of its own (as an RPC call would be)
        that is rolled back. The setup's rule is committed before and removed after (neither is
        measured). Returns the seconds of every call and the query counts."""
        with self.cursor() as cr:
            env = self.env(cr, self.odoo.SUPERUSER_ID)
            rules_before = set(
                env["base.automation"].with_context(active_test=False).search([]).ids
            )
            config = self._setup(env, kind, url)
            cr.commit()
        companies, countries, tags = self.company_ids, self.country_ids, self.tag_ids
        create_s, write_s = [], []
        create_q = write_q = 0
        logs = 0
        try:
            self._settle(config, start, tag)
            for i in range(n):
                values = {
                    "name": f"Writer {tag} {start + i}",
                    "email": f"writer{i}.{tag}@example.com",
                    "phone": f"+1 555 {i:07d}",
                    "parent_id": companies[i % len(companies)],
                    "country_id": countries[i % len(countries)],
                    "category_id": [self.Command.set([tags[i % len(tags)]])],
                }
                seconds, queries, created = self._timed_call(
                    lambda env, values=values: env["res.partner"].create(values), config
                )
                create_s.append(seconds)
                create_q += queries
                logs += created
            for i, partner_id in enumerate(self.writer_ids[start : start + n]):
                values = {"email": f"edited{i}.{tag}@example.com", "phone": f"+1 666 {i:07d}"}
                seconds, queries, created = self._timed_call(
                    lambda env, partner_id=partner_id, values=values: (
                        env["res.partner"].browse(partner_id).write(values)
                    ),
                    config,
                )
                write_s.append(seconds)
                write_q += queries
                logs += created
        finally:
            with self.cursor() as cr:
                env = self.env(cr, self.odoo.SUPERUSER_ID)
                Automation = env["base.automation"].with_context(active_test=False)
                rules = Automation.search([("id", "not in", list(rules_before))])
                actions = rules.action_server_ids
                rules.unlink()
                actions.exists().unlink()
                if config:
                    config.with_env(env).unlink()
                cr.commit()
                self._reregister(env)
                cr.commit()
        if config and logs != 2 * n:
            raise RuntimeError(f"api_sync setup queued {logs} events for {2 * n} calls")
        return {
            "create": create_s,
            "write": write_s,
            "create_q": create_q,
            "write_q": write_q,
        }

    def _settle(self, config, start, tag):
        """A creation and a write after the setup, not measured: saving a configuration or a
        rule empties the registry's caches (access rights, record rules), which the first call
        of a block would otherwise refill on its own time."""
        self._timed_call(lambda env: env["res.partner"].create({"name": f"Settle {tag}"}), config)
        self._timed_call(
            lambda env: env["res.partner"].browse(self.writer_ids[start]).write({"phone": "0"}),
            config,
        )

    @staticmethod
    def _summary(blocks):
        """Per-call medians (robust to the other tenants of this machine) of pooled blocks."""
        creates = [t for block in blocks for t in block["create"]]
        writes = [t for block in blocks for t in block["write"]]
        return {
            "create_s": median(creates),
            "write_s": median(writes),
            "pair_s": median(creates) + median(writes),
            "pair_mean_s": (sum(creates) + sum(writes)) / len(creates),
            "create_queries": sum(block["create_q"] for block in blocks) / len(creates),
            "write_queries": sum(block["write_q"] for block in blocks) / len(writes),
        }

    def part_write_path(self, fast, slow):
        n, n_slow, rounds = (
            self.size("write_n"),
            self.size("write_n_slow"),
            self.size("rounds"),
        )
        setups = [
            ("none", "none", None, n),
            ("empty", "empty", None, n),
            ("api_sync", "api_sync", fast, n),
            ("listener", "listener", fast, n),
            ("webhook", "webhook", fast, n),
            ("api_sync_slow", "api_sync", slow, n),
            ("webhook_slow", "webhook", slow, n_slow),
        ]
        # Warm-up (caches, first-use code paths); not counted.
        for name, kind, receiver, _n in setups[:5]:
            self._write_run(kind, receiver.url if receiver else None, 0, 20, f"warm-{name}")
        # The setups alternate in blocks of a few seconds, so that the load of the other tenants
        # of this machine falls on all of them alike.
        block = min(WRITE_BLOCK, n)
        blocks = max(1, n // block)
        runs = {name: [] for name, *_ in setups}
        hits = {
            "api_sync_fast": 0,
            "api_sync_slow": 0,
            "listener_fast": 0,
            "webhook_fast": 0,
            "webhook_slow": 0,
        }
        for round_no in range(rounds):
            pooled = {name: [] for name, *_ in setups}
            for block_no in range(blocks):
                shift = (round_no + block_no) % len(setups)
                for name, kind, receiver, size in setups[shift:] + setups[:shift]:
                    count = max(1, size // blocks)
                    before = receiver.count() if receiver else 0
                    pooled[name].append(
                        self._write_run(
                            kind,
                            receiver.url if receiver else None,
                            block_no * count,
                            count,
                            f"r{round_no}-{name}",
                        )
                    )
                    if receiver:
                        key = f"{kind}_{'slow' if receiver is slow else 'fast'}"
                        hits[key] += receiver.count() - before
            for name, *_ in setups:
                result = self._summary(pooled[name])
                runs[name].append(result)
                log(
                    f"write path round {round_no + 1}/{rounds} {name:14s} "
                    f"{result['pair_s'] * 1000:7.2f} ms/contact (create+write), "
                    f"{result['create_queries']:.1f} q/create, "
                    f"{result['write_queries']:.1f} q/write"
                )
        med = _medians(runs)
        pair = {name: values["pair_s"] for name, values in med.items()}
        self.results["write_overhead_ratio"] = ratio(pair["api_sync"], pair["empty"])
        self.results["rule_floor_ratio"] = ratio(pair["empty"], pair["none"])
        self.results["native_webhook_overhead_ratio"] = ratio(pair["webhook"], pair["none"])
        self.results["api_sync_overhead_vs_no_rule"] = ratio(pair["api_sync"], pair["none"])
        self.results["listener_overhead_vs_no_rule"] = ratio(pair["listener"], pair["none"])
        self.results["listener_vs_rule_ratio"] = ratio(pair["listener"], pair["api_sync"])
        self.results["latency_independence_ratio"] = ratio(pair["api_sync_slow"], pair["api_sync"])
        self.results["native_webhook_slow_overhead_ratio"] = ratio(
            pair["webhook_slow"], pair["none"]
        )
        self.results["native_webhook_latency_ratio"] = ratio(pair["webhook_slow"], pair["webhook"])
        self.results["create_overhead_ratio"] = ratio(
            med["api_sync"]["create_s"], med["empty"]["create_s"]
        )
        self.results["update_overhead_ratio"] = ratio(
            med["api_sync"]["write_s"], med["empty"]["write_s"]
        )
        for name in ("none", "empty", "api_sync", "listener", "webhook"):
            self.results[f"queries_per_create_{name}"] = med[name]["create_queries"]
            self.results[f"queries_per_write_{name}"] = med[name]["write_queries"]
        self.details["write_path"] = {
            "contacts_per_setup": n,
            "block": block,
            "contacts_per_setup_webhook_slow": n_slow,
            "rounds": rounds,
            "median_ms_per_contact": _in_ms(med),
            "receiver_requests_during_runs": hits,
        }

    def _unconfigured_run(self, listening, url, category_ids, tag):
        """One block on a model without configuration (contact tags): a creation and a rename
        per tag, each in a transaction of its own, rolled back; with a listening configuration
        on contacts (``listening``) or with no configuration at all."""
        config = None
        if listening:
            with self.cursor() as cr:
                env = self.env(cr, self.odoo.SUPERUSER_ID)
                config = self.make_config(
                    env, "bench listener elsewhere", url, SYNC_LINES, trigger_mode="listener"
                )
                cr.commit()
        result = {"create": [], "write": [], "create_q": 0, "write_q": 0}
        try:
            # the first pair settles the caches (see _settle) and is not counted
            for i, category_id in enumerate([category_ids[0], *category_ids]):
                create = self._timed_call(
                    lambda env, i=i: env["res.partner.category"].create(
                        {"name": f"Bench new tag {tag} {i}"}
                    ),
                    None,
                )
                write = self._timed_call(
                    lambda env, i=i, category_id=category_id: (
                        env["res.partner.category"]
                        .browse(category_id)
                        .write({"name": f"Bench tag renamed {tag} {i}"})
                    ),
                    None,
                )
                if i:
                    result["create"].append(create[0])
                    result["create_q"] += create[1]
                    result["write"].append(write[0])
                    result["write_q"] += write[1]
        finally:
            if config:
                with self.cursor() as cr:
                    config.with_env(self.env(cr, self.odoo.SUPERUSER_ID)).unlink()
                    cr.commit()
        return result

    def part_unconfigured_model(self, fast):
        """Writes on a model that no configuration syncs, with a listener on another model
        against no configuration at all: the listener's lookup is all they pay."""
        n, rounds = self.size("write_n"), self.size("rounds")
        with self.cursor() as cr:
            env = self.env(cr, self.odoo.SUPERUSER_ID)
            Category = env["res.partner.category"]
            pool = Category.search([("name", "=like", "Bench pool tag %")], order="id")
            pool |= Category.create([{"name": f"Bench pool tag {i}"} for i in range(len(pool), n)])
            cr.commit()
            category_ids = pool.ids[:n]
        setups = [("none", False), ("listener_elsewhere", True)]
        for name, listening in setups:  # warm-up, not counted
            self._unconfigured_run(listening, fast.url, category_ids[:20], f"warm-{name}")
        block = min(WRITE_BLOCK, n)
        runs = {name: [] for name, _ in setups}
        for round_no in range(rounds):
            pooled = {name: [] for name, _ in setups}
            for block_no, start in enumerate(range(0, n, block)):
                order = setups if (round_no + block_no) % 2 == 0 else setups[::-1]
                for name, listening in order:
                    pooled[name].append(
                        self._unconfigured_run(
                            listening,
                            fast.url,
                            category_ids[start : start + block],
                            f"r{round_no}-{name}",
                        )
                    )
            for name, _ in setups:
                runs[name].append(self._summary(pooled[name]))
            log(
                "unconfigured model round "
                f"{round_no + 1}/{rounds}: "
                + ", ".join(
                    f"{name} {runs[name][-1]['pair_s'] * 1000:.2f} ms/tag (create+write)"
                    for name, _ in setups
                )
            )
        med = _medians(runs)
        self.results["unconfigured_model_ratio"] = ratio(
            med["listener_elsewhere"]["pair_s"], med["none"]["pair_s"]
        )
        per_round = [
            ratio(a["pair_s"], b["pair_s"])
            for a, b in zip(runs["listener_elsewhere"], runs["none"], strict=True)
        ]
        # what the lookup itself costs, per call, with the listener on contacts active
        with self.cursor() as cr:
            env = self.env(cr, self.odoo.SUPERUSER_ID)
            self.make_config(
                env, "bench listener lookup", fast.url, SYNC_LINES, trigger_mode="listener"
            )
            Category = env["res.partner.category"]
            Category._api_sync_listeners()
            calls = 100_000
            t0 = time.perf_counter()
            for _call in range(calls):
                Category._api_sync_listeners()
            lookup_us = (time.perf_counter() - t0) / calls * 1e6
            cr.rollback()
        self.results["unconfigured_lookup_us"] = lookup_us
        self.details["unconfigured_model"] = {
            "model": "res.partner.category",
            "calls_per_setup": n,
            "rounds": rounds,
            "ratio_per_round": per_round,
            "median_ms_per_tag": _in_ms(med),
        }

    # -- part 3: mapping --------------------------------------------------------------------

    def _naive_payloads(self, env, config, ids):
        """A per-record implementation: each record read on its own, with a cold cache."""
        from odoo.addons.api_sync.engine import mapping  # noqa: PLC0415

        lines = config._mapping_lines()
        Partner, Country, Category = (
            env["res.partner"],
            env["res.country"],
            env["res.partner.category"],
        )
        direct = [
            "name",
            "email",
            "phone",
            "street",
            "city",
            "write_date",
            "country_id",
            "parent_id",
            "category_id",
        ]
        payloads = []
        for record_id in ids:
            env.invalidate_all()
            values = Partner.browse(record_id).read(direct, load=None)[0]
            country = (
                values["country_id"] and Country.browse(values["country_id"]).read(["code"])[0]
            )
            parent = (
                values["parent_id"]
                and Partner.browse(values["parent_id"]).read(
                    ["display_name", "country_id"], load=None
                )[0]
            )
            parent_country = (
                parent
                and parent["country_id"]
                and Country.browse(parent["country_id"]).read(["code"])[0]
            )
            tags = Category.browse(values["category_id"]).read(["display_name"])
            by_path = {
                ("name",): values["name"],
                ("email",): values["email"],
                ("phone",): values["phone"],
                ("street",): values["street"],
                ("city",): values["city"],
                ("write_date",): values["write_date"],
                ("parent_id",): parent and mapping.Relation(parent["id"], parent["display_name"]),
                ("country_id", "code"): country and country["code"],
                ("category_id",): [mapping.Relation(t["id"], t["display_name"]) for t in tags],
                ("parent_id", "country_id", "code"): parent_country and parent_country["code"],
            }
            payloads.append(
                mapping.build_payload(lines, [by_path[line.source_path] for line in lines])
            )
        return payloads

    def part_mapping(self, fast):
        n, rounds = self.size("mapping_n"), self.size("rounds")
        ids = self.contact_ids("b-small", n)
        # The naive implementation reads each record cold, so its cost per record does not depend
        # on how many there are: it is timed on a sample of the same contacts, per record.
        naive_ids = ids[:: max(1, len(ids) // self.size("naive_n"))][: self.size("naive_n")]
        sizes = {"ours": len(ids), "naive": len(naive_ids)}
        with self.cursor() as cr:
            env = self.env(cr)
            config = self.make_config(env(su=True), "bench mapping", fast.url, MAPPING_LINES)
            config = config.with_env(env)
            env.flush_all()
            # Equal payloads, or the comparison means nothing.
            sample = ids[:50]
            env.invalidate_all()
            ours = config.prepare_outbound_data(env["res.partner"].browse(sample))
            naive = self._naive_payloads(env, config, sample)
            same = json.dumps(ours, sort_keys=True, default=str) == json.dumps(
                naive, sort_keys=True, default=str
            )
            if not same:
                log("WARNING: the naive payloads differ from prepare_outbound_data's")
            timings = {"ours": [], "naive": []}
            queries = {"ours": [], "naive": []}
            ours_small_queries = None
            for round_no in range(rounds):
                for name in ("ours", "naive") if round_no % 2 == 0 else ("naive", "ours"):
                    env.invalidate_all()
                    records = env["res.partner"].browse(ids)
                    q0, t0 = cr.sql_log_count, time.perf_counter()
                    if name == "ours":
                        config.prepare_outbound_data(records)
                    else:
                        self._naive_payloads(env, config, naive_ids)
                    timings[name].append((time.perf_counter() - t0) / sizes[name])
                    queries[name].append((cr.sql_log_count - q0) / sizes[name])
                log(
                    f"mapping round {round_no + 1}/{rounds}: ours {timings['ours'][-1] * 1e6:.0f} "
                    f"us/record ({sizes['ours']} contacts), naive "
                    f"{timings['naive'][-1] * 1e6:.0f} us/record ({sizes['naive']} contacts)"
                )
            env.invalidate_all()
            q0 = cr.sql_log_count
            config.prepare_outbound_data(env["res.partner"].browse(ids[: n // 10]))
            ours_small_queries = cr.sql_log_count - q0
            cr.rollback()
        self.results["mapping_vs_naive_ratio"] = ratio(
            median(timings["ours"]), median(timings["naive"])
        )
        self.results["mapping_queries_ours"] = median(queries["ours"]) * sizes["ours"]
        self.results["mapping_queries_naive_per_record"] = median(queries["naive"])
        self.details["mapping"] = {
            "records": sizes,
            "lines": len(MAPPING_LINES),
            "median_us_per_record": {name: median(v) * 1e6 for name, v in timings.items()},
            "records_per_s_ours": 1 / median(timings["ours"]),
            "queries_per_record": {name: median(values) for name, values in queries.items()},
            f"queries_ours_{n // 10}_records": ours_small_queries,
            "naive_payloads_equal": same,
        }

    # -- part 6: inbound sync ---------------------------------------------------------------

    def _post_all(self, requests_to_send):
        """Post ``(url, body, headers, cookies)`` from INBOUND_CLIENTS threads, each over one
        keep-alive session; seconds for all, and the statuses."""
        import requests  # noqa: PLC0415

        statuses, lock = {}, threading.Lock()

        def client(part):
            with requests.Session() as session:
                for url, body, headers, cookies in part:
                    status = session.post(
                        url, data=body, headers=headers, cookies=cookies, timeout=30
                    ).status_code
                    with lock:
                        statuses[status] = statuses.get(status, 0) + 1

        threads = [
            threading.Thread(target=client, args=(requests_to_send[i::INBOUND_CLIENTS],))
            for i in range(INBOUND_CLIENTS)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started, statuses

    def part_inbound(self, fast):
        """Inbound events per second accepted by the inbound URL (202: verified, stored, job
        queued) and applied by the jobs (the record written as the Integration User, bound),
        each as a ratio to a bare Odoo JSON route (``/web/dataset/call_kw``, a logged-in
        session) doing the same ``write`` of the same contacts, with as many clients."""
        sys.path.insert(0, REPO)
        from engine import wire  # noqa: PLC0415

        rounds, count = self.size("rounds"), self.size("inbound_n")
        ids = self.contact_ids("b-small", count)
        secret = _secret()
        with self.cursor() as cr:
            env = self.env(cr, self.odoo.SUPERUSER_ID)
            env["api.sync.config"].search([]).active = False
            config = self.make_config(
                env, "bench inbound", fast.url, [("name", "name", "raw"), ("email", "email", "raw")]
            )
            config.mapping_ids.inbound = True
            config.write(
                {
                    "inbound_enabled": True,
                    "inbound_secret": secret,
                    "inbound_root_key": "data",
                    "inbound_external_id_path": "data.id",
                    "inbound_allow_create": False,
                }
            )
            for res_id in ids:
                env["api.sync.binding"]._bind_inbound(config, res_id, f"r-{res_id}", None)
            cr.commit()
            config_id, token = config.id, config.inbound_token
        base = self._base_url()
        inbound_url = f"{base}/api_sync/inbound/{token}"
        with self._session() as session:
            cookies = session.cookies.get_dict()

        def signed(round_no, res_id):
            event_id = f"bench-{round_no}-{res_id}-{time.time_ns()}"
            body = wire.encode(
                {
                    "type": "contact.updated",
                    "data": {"id": f"r-{res_id}", "name": f"In {round_no} {res_id}"},
                }
            )
            now = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "webhook-id": event_id,
                "webhook-timestamp": str(now),
                "webhook-signature": wire.sign(secret, event_id, now, body),
            }
            return inbound_url, body, headers, None

        def bare(round_no, res_id):
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {
                        "model": "res.partner",
                        "method": "write",
                        "args": [[res_id], {"name": f"Bare {round_no} {res_id}"}],
                        "kwargs": {},
                    },
                }
            )
            headers = {"Content-Type": "application/json"}
            return f"{base}/web/dataset/call_kw", body, headers, cookies

        self._post_all([signed(0, res_id) for res_id in ids[:20]])  # warm-up
        self._post_all([bare(0, res_id) for res_id in ids[:20]])
        runs = {"accepted": [], "applied": [], "bare": []}
        for round_no in range(1, rounds + 1):
            steps = ["inbound", "bare"] if round_no % 2 else ["bare", "inbound"]
            for step in steps:
                if step == "bare":
                    seconds, statuses = self._post_all([bare(round_no, i) for i in ids])
                    runs["bare"].append(count / seconds)
                    continue
                seconds, statuses = self._post_all([signed(round_no, i) for i in ids])
                if statuses != {202: count}:
                    raise RuntimeError(f"inbound requests answered {statuses}")
                with self.cursor() as cr:
                    cr.execute(
                        "SELECT id, create_date FROM api_sync_log WHERE config_id = %s "
                        "AND sender_event_id LIKE %s",
                        (config_id, f"bench-{round_no}-%"),
                    )
                    log_ids = [row[0] for row in cr.fetchall()]
                elapsed, states = self._wait_logs(log_ids)
                if set(states) != {"done"}:
                    raise RuntimeError(f"inbound events not all applied: {states}")
                runs["accepted"].append(count / seconds)
                runs["applied"].append(count / (seconds + elapsed))
            log(
                f"inbound round {round_no}/{rounds}: {count} events accepted at "
                f"{runs['accepted'][-1]:.0f}/s, applied at {runs['applied'][-1]:.0f}/s "
                f"(from the first request); bare call_kw write {runs['bare'][-1]:.0f}/s"
            )
        med = {name: median(values) for name, values in runs.items()}
        self.results["inbound_accepted_vs_bare_ratio"] = ratio(med["accepted"], med["bare"])
        self.results["inbound_applied_vs_bare_ratio"] = ratio(med["applied"], med["bare"])
        self.details["inbound"] = {
            "rounds": rounds,
            "events": count,
            "clients": INBOUND_CLIENTS,
            "median_per_s": med,
            "per_s": runs,
        }

    # -- parts 4 and 5: the server ---------------------------------------------------------

    def start_server(self):
        self.server = start_odoo(
            self.args.odoo, self.args.conf, self.args.log, launcher=self.args.launcher
        )
        log(f"Odoo server with workers and the job runner on port {self._conf_value('http_port')}")

    def stop_server(self):
        if getattr(self, "server", None) and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(10)

    def _conf_value(self, key):
        return conf_value(self.args.conf, key)

    def _base_url(self):
        return f"http://127.0.0.1:{self._conf_value('http_port')}"

    def _session(self):
        """A ``requests`` session logged in to the server as admin."""
        import requests  # noqa: PLC0415

        session = requests.Session()
        session.post(
            f"{self._base_url()}/web/session/authenticate",
            json={"params": {"db": self.args.db, "login": "admin", "password": "admin"}},
            timeout=30,
        ).raise_for_status()
        return session

    def _worker_pids(self):
        import psutil  # noqa: PLC0415

        try:
            return [child.pid for child in psutil.Process(self.server.pid).children()]
        except psutil.Error:
            return []

    def _wait_logs(self, log_ids):
        """Seconds until every log is out of ``pending`` (polled every 50 ms), and the states."""
        import psycopg2  # noqa: PLC0415

        started = time.perf_counter()
        connection = psycopg2.connect(dbname=self.args.db)
        connection.autocommit = True
        try:
            with connection.cursor() as cur:
                while True:
                    cur.execute(
                        "SELECT state, count(*) FROM api_sync_log WHERE id = ANY(%s) "
                        "GROUP BY state",
                        (log_ids,),
                    )
                    states = dict(cur.fetchall())
                    elapsed = time.perf_counter() - started
                    if not states.get("pending") or elapsed > WAIT_LIMIT:
                        return elapsed, states
                    time.sleep(0.05)
        finally:
            connection.close()

    def _bodies(self, log_ids):
        with self.cursor() as cr:
            cr.execute(
                "SELECT request_body FROM api_sync_log WHERE id = ANY(%s) ORDER BY id",
                (log_ids,),
            )
            return [row[0].encode() for row in cr.fetchall()]

    def _bare(self, url, bodies):
        """A plain loop of ``requests`` over one keep-alive session: seconds for the bodies."""
        import requests  # noqa: PLC0415

        with requests.Session() as session:
            session.post(
                url,
                data=bodies[0],
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            started = time.perf_counter()
            for body in bodies:
                response = session.post(
                    url,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=10,
                )
                response.raise_for_status()
            return time.perf_counter() - started

    def _handwritten(self, url, ids):
        """What a user would write instead of a batch sync: a scheduled action's code that
        search_reads the mapped fields in chunks of BATCH_SIZE by id and posts each chunk as
        JSON over one ``requests.Session``; no log, retry nor checkpoint. Run here, in one
        process and thread as a cron worker runs it; returns its seconds for ``ids``."""
        import requests  # noqa: PLC0415

        started = time.perf_counter()
        with self.cursor() as cr, requests.Session() as session:
            Partner = self.env(cr)["res.partner"]
            domain = [("ref", "=", "b-small"), ("id", ">=", ids[0]), ("id", "<=", ids[-1])]
            last = 0
            while True:
                rows = Partner.search_read(
                    [*domain, ("id", ">", last)], MAPPED_FIELDS, order="id", limit=BATCH_SIZE
                )
                if not rows:
                    break
                response = session.post(
                    url,
                    data=json.dumps(rows, default=str),
                    headers={"Content-Type": "application/json"},
                    timeout=10,
                )
                response.raise_for_status()
                last = rows[-1]["id"]
        return time.perf_counter() - started

    def _enqueue_records(self, config_id, ids):
        with self.cursor() as cr:
            env = self.env(cr)
            config = env["api.sync.config"].browse(config_id)
            logs = config.sync_record(env["res.partner"].browse(ids), "update")
            cr.commit()
            return logs.ids

    def _enqueue_batch(self, config_id, ids):
        with self.cursor() as cr:
            env = self.env(cr)
            config = env["api.sync.config"].browse(config_id)
            logs = config.send_batch(env["res.partner"].browse(ids))
            cr.commit()
            return logs.ids

    def part_throughput(self, fast):
        rounds, record_m, batch_m = (
            self.size("rounds"),
            self.size("record_m"),
            self.size("batch_m"),
        )
        ids = self.contact_ids("b-small")
        with self.cursor() as cr:
            env = self.env(cr, self.odoo.SUPERUSER_ID)
            record_config = self.make_config(
                env, "bench record", fast.url, SYNC_LINES, signing_secret=_secret()
            )
            batch_config = self.make_config(
                env,
                "bench batch",
                fast.url,
                SYNC_LINES,
                signing_secret=_secret(),
                delivery_mode="batch",
                batch_size=BATCH_SIZE,
            )
            cr.commit()
            record_id, batch_id = record_config.id, batch_config.id
        # Warm-up: every worker loads the registry and runs a job of each kind.
        warm = self._enqueue_records(record_id, ids[-20:]) + self._enqueue_batch(
            batch_id, ids[-400:]
        )
        elapsed, states = self._wait_logs(warm)
        log(f"throughput warm-up: {states} in {elapsed:.1f} s")
        runs = {
            "record": [],
            "batch": [],
            "batch_total": [],
            "handwritten": [],
            "bare_record": [],
            "bare_batch": [],
        }
        for round_no in range(rounds):
            chunk = ids[round_no * record_m : (round_no + 1) * record_m]
            batch_ids = ids[:batch_m]
            steps = [("record", chunk), ("batch", batch_ids), ("handwritten", batch_ids)]
            for name, step_ids in steps if round_no % 2 == 0 else steps[::-1]:
                if name == "handwritten":
                    handwritten_s = self._handwritten(fast.url, step_ids)
                    runs[name].append(len(step_ids) / handwritten_s)
                    log(
                        f"throughput round {round_no + 1}/{rounds} hand-written: "
                        f"{len(step_ids)} records in {handwritten_s:.2f} s = "
                        f"{runs[name][-1]:.0f} records/s"
                    )
                    continue
                started = time.perf_counter()
                if name == "record":
                    log_ids = self._enqueue_records(record_id, step_ids)
                else:
                    log_ids = self._enqueue_batch(batch_id, step_ids)
                enqueue_s = time.perf_counter() - started
                elapsed, states = self._wait_logs(log_ids)
                if set(states) != {"done"}:
                    raise RuntimeError(f"{name} deliveries did not all succeed: {states}")
                runs[name].append(len(step_ids) / elapsed)
                if name == "batch":  # from the call, as the hand-written code is timed
                    runs["batch_total"].append(len(step_ids) / (enqueue_s + elapsed))
                bodies = self._bodies(log_ids)
                bare_s = median([self._bare(fast.url, bodies) for _ in range(3)])
                runs[f"bare_{name}"].append(len(step_ids) / bare_s)
                log(
                    f"throughput round {round_no + 1}/{rounds} {name}: {len(step_ids)} records, "
                    f"{len(log_ids)} requests, enqueued in {enqueue_s:.2f} s, delivered in "
                    f"{elapsed:.2f} s = {runs[name][-1]:.0f} records/s; bare loop "
                    f"{runs[f'bare_{name}'][-1]:.0f} records/s"
                )
        med = {name: median(values) for name, values in runs.items()}
        self.record_rates = med  # the delay's part takes its rate and its bare loop from here
        self.results["record_vs_bare_ratio"] = ratio(med["record"], med["bare_record"])
        self.results["batch_vs_handwritten_ratio"] = ratio(med["batch_total"], med["handwritten"])
        self.results["batch_vs_bare_ratio"] = ratio(med["batch"], med["bare_batch"])
        self.results["batch_vs_record_ratio"] = ratio(med["batch"], med["record"])
        self.details["throughput"] = {
            "rounds": rounds,
            "record_mode_events": record_m,
            "batch_mode_records": batch_m,
            "batch_size": BATCH_SIZE,
            "workers": self._conf_value("workers"),
            "channels": self._conf_value("channels"),
            "median_records_per_s": med,
            "records_per_s": runs,
        }

    # -- part 4, then: the delay from the writer's commit to the receiver's 2xx -----------------

    def _call_kw(self, session, model, method, *args):
        """``model.method(*args)`` over Odoo's JSON route, as the web client calls it."""
        return json_rpc(
            session,
            f"{self._base_url()}/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": list(args), "kwargs": {}},
        )

    def _latency_writes(self, tag, count, update_ids):
        """``count`` writes, each naming its contact ``<LATENCY_MARKER> <tag> <n>`` (the value the
        receiver notes): creations of contacts as part 1 makes them, alternating with renames
        (and a new email) of ``update_ids``, each written once. Returns ``[(name, call_kw
        arguments)]``."""
        companies, countries, tags = self.company_ids, self.country_ids, self.tag_ids
        writes = []
        for index in range(count):
            name = f"{LATENCY_MARKER} {tag} {index}"
            email = f"latency{index}.{tag}@example.com"
            if index % 2:
                values = {"name": name, "email": email}
                args = ("res.partner", "write", [update_ids[index // 2]], values)
            else:
                values = {
                    "name": name,
                    "email": email,
                    "phone": f"+1 555 {index:07d}",
                    "parent_id": companies[index % len(companies)],
                    "country_id": countries[index % len(countries)],
                    "category_id": [self.Command.set([tags[index % len(tags)]])],
                    "ref": "b-latency-new",
                }
                args = ("res.partner", "create", values)
            writes.append((name, args))
        return writes

    def _open_loop(self, writes, rate, writers):
        """Make the writes from ``writers`` threads, with a logged-in session each: at a steady
        rate, write ``i`` due at ``start + i / rate`` by the clock whatever the others' progress
        (an open loop; a write starts late only when every thread is busy), or, without
        ``rate``, each thread's next write as soon as its last one returned (a closed loop).
        Returns ``{name: (due, started, returned)}`` in epoch seconds; raises if one failed."""
        timings, errors, lock = {}, [], threading.Lock()
        indexes = itertools.count()
        sessions = [self._session() for _ in range(writers)]
        start = time.time() + 0.5

        def writer(session):
            while (index := next(indexes)) < len(writes):
                name, args = writes[index]
                due = start + index / rate if rate else start
                if due > time.time():
                    time.sleep(due - time.time())
                started = time.time()
                try:
                    self._call_kw(session, *args)
                except Exception as exc:  # noqa: BLE001 - counted, reported
                    with lock:
                        errors.append(f"{name}: {exc!r}")
                    continue
                timings[name] = (due, started, time.time())

        threads = [threading.Thread(target=writer, args=(session,)) for session in sessions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for session in sessions:
            session.close()
        if errors:
            raise RuntimeError(f"{len(errors)} writes of {len(writes)} failed: {errors[:3]}")
        return timings

    def _write_and_deliver(self, fast, config_id, writes, rate, writers):
        """The writes (see ``_open_loop``), then, once all are delivered, per write: its
        timings, its event (``_events_after``) and when the receiver answered it 2xx."""
        after = self._last_event()
        timings = self._open_loop(writes, rate, writers)
        events = self._events_after(config_id, after)
        answered = fast.answer_times()
        missing = set(timings) - (set(events) & set(answered))
        if missing or len(events) != len(timings):
            raise RuntimeError(
                f"{len(events)} events for {len(timings)} writes, {len(missing)} of them "
                "without an event or a 2xx noted by the receiver"
            )
        return {
            name: {
                "due": due,
                "started": started,
                "returned": returned,
                "job_began": events[name]["began"],
                "answered": answered[name],
                "job": events[name]["job"],
            }
            for name, (due, started, returned) in timings.items()
        }

    def _events_after(self, config_id, after):
        """``{data.name: event}`` of the events of ``config_id`` after the event ``after``, once
        none is pending (bounded): its state, job and when its delivering transaction began (the
        log's ``write_date``, written by its attempt)."""
        with self.cursor() as cr:
            cr.execute(
                "SELECT id FROM api_sync_log WHERE config_id = %s AND id > %s",
                (config_id, after),
            )
            _elapsed, states = self._wait_logs([row[0] for row in cr.fetchall()])
        if set(states) - {"done"}:
            raise RuntimeError(f"latency events not all delivered: {states}")
        with self.cursor() as cr:
            cr.execute(
                "SELECT state, job_uuid, write_date, request_body FROM api_sync_log "
                "WHERE config_id = %s AND id > %s",
                (config_id, after),
            )
            return {
                json.loads(body)["data"]["name"]: {
                    "state": state,
                    "job": job_uuid,
                    "began": write_date.replace(tzinfo=datetime.UTC).timestamp(),
                }
                for state, job_uuid, write_date, body in cr.fetchall()
            }

    def _last_event(self):
        with self.cursor() as cr:
            cr.execute("SELECT coalesce(max(id), 0) FROM api_sync_log")
            return cr.fetchone()[0]

    def part_latency(self, fast, at_commit=False):
        """The delay from a writer's commit to the receiver's 2xx, at a steady rate of half the
        capacity of the same path (see BENCHMARKS.md); ``at_commit``: with Deliver at Commit
        (the saving server delivers), else through the job runner."""
        rates = getattr(self, "record_rates", None)
        if not rates or not rates.get("record") or not rates.get("bare_record"):
            raise RuntimeError("the delay needs part 4's record-mode rates (part 4 failed)")
        capacity_n, seconds = self.size("latency_capacity_n"), self.size("latency_s")
        tag = f"t{int(time.time())}"
        with self.cursor() as cr:
            env = self.env(cr, self.odoo.SUPERUSER_ID)
            env["api.sync.config"].search([]).active = False
            config = self.make_config(
                env, "bench latency", fast.url, SYNC_LINES, signing_secret=_secret()
            )
            config._generate_automation_rules(True, True, False)
            env["ir.config_parameter"].set_param(AT_COMMIT_PARAM, at_commit)
            cr.commit()
            config_id = config.id
        self.registry.signal_changes()  # the server's workers load the new rules
        taken = 0

        def writes(prefix, count):
            """``count`` writes; those that rename take contacts no write touched yet."""
            nonlocal taken
            self.insert_contacts(taken + count // 2, "b-latency")
            pool = self.contact_ids("b-latency")[taken : taken + count // 2]
            taken += count // 2
            return self._latency_writes(f"{tag}{prefix}", count, pool)

        def run(prefix, count, rate, writers):
            return self._write_and_deliver(fast, config_id, writes(prefix, count), rate, writers)

        try:
            run("w", LATENCY_WARM, LATENCY_WARM_RATE, 2)  # the workers reload their registry
            # the capacity of the path: writes back to back from as many writers as the server
            # has workers, twice over, until the last is delivered
            writers = 2 * int(self._conf_value("workers") or 2)
            closed = run("c", capacity_n, None, writers)
            first = min(write["started"] for write in closed.values())
            last = max(write["answered"] for write in closed.values())
            capacity = len(closed) / (last - first)
            self.details[f"latency{'_at_commit' if at_commit else ''}_capacity"] = {
                "writes": len(closed),
                "writer_threads": writers,
                "writes_per_s": len(closed)
                / (max(write["returned"] for write in closed.values()) - first),
                "delivered_per_s": capacity,
                "write_call_ms": percentile(self._delays_ms(closed, "started", "returned"), 0.5),
            }
            unloaded = run("u", LATENCY_UNLOADED, LATENCY_WARM_RATE, 2)
            rate = LATENCY_LOAD * capacity
            count = max(self.size("latency_min"), round(rate * seconds))
            # enough threads for calls of up to 100 ms at that rate, twice over
            writers = max(4, math.ceil(rate * 0.2))
            log(
                f"latency: path capacity {capacity:.1f} writes/s ({len(closed)} writes back to "
                f"back until delivered); {count} writes at {rate:.1f}/s from {writers} threads"
            )
            steady = run("", count, rate, writers)
        finally:
            with self.cursor() as cr:
                env = self.env(cr, self.odoo.SUPERUSER_ID)
                env["api.sync.config"].browse(config_id).active = False  # and its rules
                env["ir.config_parameter"].set_param(AT_COMMIT_PARAM, False)
                cr.commit()
            self.registry.signal_changes()
        key = "latency_at_commit" if at_commit else "latency"
        self._latency_figures(key, rates, capacity, rate, writers, steady, unloaded)

    @staticmethod
    def _delays_ms(writes, since="committed", until="answered"):
        """Milliseconds from ``since`` to ``until`` of each write. ``committed``: the latest
        moment the writer's commit may have been, the earlier of the call's return and the
        start of the delivering transaction (both come after it)."""

        def moment(write, name):
            if name == "committed":
                return min(write["returned"], write["job_began"])
            return write[name]

        return [(moment(write, until) - moment(write, since)) * 1000 for write in writes.values()]

    def _latency_figures(self, key, rates, capacity, rate, writers, steady, unloaded):
        ms = self._delays_ms(steady)
        bare_ms = 1000 / rates["bare_record"]
        p50, p99 = percentile(ms, 0.5), percentile(ms, 0.99)
        started = [write["started"] for write in steady.values()]
        held = (len(started) - 1) / (max(started) - min(started))
        ordered = sorted(steady.values(), key=lambda write: write["due"])

        def spread(values):
            return {key: percentile(values, share) for key, share in PERCENTILES.items()}

        self.results[f"{key}_p50_ms"] = p50
        self.results[f"{key}_p99_ms"] = p99
        self.results[f"{key}_p99_vs_p50_ratio"] = ratio(p99, p50)
        self.results[f"{key}_p50_vs_bare_ratio"] = ratio(p50, bare_ms)
        self.results[f"{key}_rate_per_s"] = rate
        self.results[f"{key}_path_capacity_per_s"] = capacity
        self.results[f"{key}_samples"] = len(ms)
        self.details[key] = {
            "rate_per_s": rate,
            "rate_held_per_s": held,
            "path_capacity_per_s": capacity,
            "record_mode_per_s": rates["record"],
            "bare_record_ms": bare_ms,
            "writes": len(steady),
            "writer_threads": writers,
            "jobs": len({write["job"] for write in steady.values()}),
            "ms": {**spread(ms), "mean": statistics.fmean(ms)},
            "write_call_ms": spread(self._delays_ms(steady, "started", "returned")),
            "call_start_to_2xx_ms": spread(self._delays_ms(steady, "started")),
            "commit_to_job_start_ms": spread(self._delays_ms(steady, until="job_began")),
            "job_start_to_2xx_ms": spread(self._delays_ms(steady, since="job_began")),
            "started_late_ms": spread(self._delays_ms(steady, "due", "started")),
            # per save, in order: [seconds after the first was due, delay ms, of which to the
            # job's start ms, ms it started late] (are the slow ones together: a stall?)
            "series": [
                [
                    round(write["due"] - ordered[0]["due"], 2),
                    round((write["answered"] - write["returned"]) * 1000, 1),
                    round((write["job_began"] - write["returned"]) * 1000, 1),
                    round((write["started"] - write["due"]) * 1000, 1),
                ]
                for write in ordered
            ],
            "unloaded_ms": {
                "rate_per_s": LATENCY_WARM_RATE,
                **spread(self._delays_ms(unloaded)),
                "commit_to_job_start_p50": percentile(
                    self._delays_ms(unloaded, until="job_began"), 0.5
                ),
            },
        }
        log(
            f"{key}: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(ms)} writes at "
            f"{rate:.1f}/s (held {held:.1f}/s); medians: commit to job start "
            f"{percentile(self._delays_ms(steady, until='job_began'), 0.5):.1f} ms, job start "
            f"to 2xx {percentile(self._delays_ms(steady, since='job_began'), 0.5):.1f} ms; "
            f"unloaded p50 {percentile(self._delays_ms(unloaded), 0.5):.1f} ms; "
            f"bare request {bare_ms:.2f} ms"
        )

    def part_scaling(self, fast):
        small, large, rounds = (
            self.size("scale_small"),
            self.size("scale_large"),
            self.size("rounds"),
        )
        # --large: a million contacts too, after the rounds: a first full sync (its status rows
        # created, its names read), then a second one, as the rounds of the other sizes do
        huge = self.size("scale_huge") if self.args.large else None
        started = time.perf_counter()
        self.insert_contacts(large - small, "b-large")
        log(f"data: {large - small} more contacts in {time.perf_counter() - started:.1f} s")
        refs = {small: ["b-small"], large: ["b-small", "b-large"]}
        if huge:
            started = time.perf_counter()
            self.insert_contacts(huge - large, "b-huge")
            log(f"data: {huge - large} more contacts in {time.perf_counter() - started:.1f} s")
            refs[huge] = ["b-small", "b-large", "b-huge"]
        with self.cursor() as cr:
            env = self.env(cr, self.odoo.SUPERUSER_ID)
            use_runs = "api.sync.run" in env and hasattr(
                env["api.sync.config"], "action_full_resync"
            )
            configs = {}
            for size, size_refs in refs.items():
                configs[size] = self.make_config(
                    env,
                    f"bench scaling {size}",
                    fast.url,
                    SYNC_LINES,
                    signing_secret=_secret(),
                    delivery_mode="batch",
                    batch_size=SCALE_BATCH_SIZE,
                    domain=repr([("ref", "in", size_refs)]),
                ).id
            cr.commit()
        api = "action_full_resync" if use_runs else "send_batch"
        log(f"scaling: full batch sync through {api}")
        times, rss, starter_growth, starts = ({size: [] for size in refs} for _i in range(4))
        runs = [
            (round_no, size)
            for round_no in range(rounds)
            for size in ((small, large) if round_no % 2 == 0 else (large, small))
        ]
        if huge:
            runs += [(rounds - 1, huge), (rounds - 1, huge)]
        for round_no, size in runs:
            sampler = RssSampler(self._worker_pids)
            sampler.start()
            try:
                elapsed, enqueue_s, outcome, growth = self._full_sync(
                    configs[size], use_runs, HUGE_WAIT_LIMIT if size == huge else WAIT_LIMIT
                )
            finally:
                peak = sampler.stop()
            if use_runs and outcome["sent"] != size:
                raise RuntimeError(f"the run sent {outcome['sent']} records, not {size}")
            times[size].append(elapsed)
            starts[size].append(enqueue_s)
            rss[size].append(peak)
            starter_growth[size].append(growth)
            log(
                f"scaling round {round_no + 1}/{rounds}: {size} contacts in {elapsed:.1f} s "
                f"(selection and queueing {enqueue_s:.1f} s), {size / elapsed:.0f} records/s, "
                f"worker peak RSS {peak / 2**20:.0f} MiB, starting process grew "
                f"{growth / 2**20:.0f} MiB, {outcome}"
            )
            self._drain_jobs()
        self.results["scaling_ratio"] = ratio(median(times[large]), median(times[small]))
        # The two phases apart: selecting and queueing (one transaction in the starting process),
        # then delivering (the workers).
        self.results["scaling_selection_ratio"] = ratio(
            median(starts[large]), median(starts[small])
        )
        self.results["scaling_delivery_ratio"] = ratio(
            median([t - e for t, e in zip(times[large], starts[large], strict=True)]),
            median([t - e for t, e in zip(times[small], starts[small], strict=True)]),
        )
        self.results["scaling_peak_rss_ratio"] = ratio(median(rss[large]), median(rss[small]))
        if huge:
            # Like with like: a configuration's first full sync creates its records' status
            # rows and reads their names, the next ones update the rows (about half the work);
            # each size's first round is its first sync.
            self.results["scaling_1m_ratio"] = ratio(
                median(times[huge][1:]), median(times[large][1:])
            )
            self.results["scaling_1m_first_sync_ratio"] = ratio(times[huge][0], times[large][0])
            self.results["scaling_1m_selection_ratio"] = ratio(
                median(starts[huge]), median(starts[large])
            )
            self.results["scaling_1m_peak_rss_ratio"] = ratio(median(rss[huge]), median(rss[small]))
        self.details["scaling"] = {
            "api": api,
            "sizes": list(refs),
            "batch_size": SCALE_BATCH_SIZE,
            "median_s": {str(size): median(values) for size, values in times.items()},
            "all_s": times,
            "median_selection_s": {str(size): median(values) for size, values in starts.items()},
            "median_records_per_s": {
                str(size): size / median(values) for size, values in times.items()
            },
            "median_worker_peak_rss_mib": {
                str(size): median(values) / 2**20 for size, values in rss.items()
            },
            "median_starting_process_rss_growth_mib": {
                str(size): median(values) / 2**20 for size, values in starter_growth.items()
            },
        }

    def part_metrics_scrape(self):
        """The time of one read of /api_sync/metrics (Prometheus) with ``scrape_logs`` events in
        the database (a million with --large): the logs missing are inserted by SQL (not
        measured), spread over 10 configurations and every state, then the route is read once
        cold and 5 times more over HTTP from the server with workers."""
        import requests  # noqa: PLC0415

        total = self.size("scrape_logs_huge" if self.args.large else "scrape_logs")
        token = _secret()
        with self.cursor() as cr:
            env = self.env(cr, self.odoo.SUPERUSER_ID)
            configs = env["api.sync.config"].search([("name", "=like", "bench scrape %")])
            configs = configs or env["api.sync.config"].create(
                [
                    {
                        "name": f"bench scrape {index}",
                        "model_id": env["ir.model"]._get_id("res.partner"),
                        "endpoint_url": "http://127.0.0.1:9/unused",
                        "company_id": False,
                        "active": False,
                    }
                    for index in range(10)
                ]
            )
            env["ir.config_parameter"].set_param("api_sync.metrics_token", token)
            cr.execute("SELECT count(*) FROM api_sync_log")
            missing = total - cr.fetchone()[0]
            started = time.perf_counter()
            if missing > 0:
                # 90 % done, 4 % cancelled, 5 % failed (404s and timeouts), 1 % pending
                cr.execute(
                    """
                    INSERT INTO api_sync_log
                        (config_id, res_model, res_id, record_count, operation, state,
                         idempotency_key, attempt_count, duration_ms, response_status,
                         error_class, create_uid, write_uid, create_date, write_date,
                         last_attempt_at, done_at)
                    SELECT (%(configs)s::int[])[1 + g %% 10], 'res.partner', g, 1, 'update',
                           CASE WHEN g %% 100 < 90 THEN 'done' WHEN g %% 100 < 94 THEN 'cancelled'
                                WHEN g %% 100 < 99 THEN 'failed' ELSE 'pending' END,
                           'bench-scrape-' || %(stamp)s || '-' || g,
                           CASE WHEN g %% 100 < 90 THEN 1 + g %% 3 WHEN g %% 100 < 99 THEN 5
                                ELSE 0 END,
                           (g::bigint * 7919) %% 3000,
                           CASE WHEN g %% 100 < 90 THEN 200 WHEN g %% 100 < 97 THEN 404 END,
                           CASE WHEN g %% 100 BETWEEN 94 AND 96 THEN 'HTTP 404'
                                WHEN g %% 100 BETWEEN 97 AND 98 THEN 'ReadTimeout' END,
                           2, 2, now() AT TIME ZONE 'UTC' - (g %% 86400) * interval '1 second',
                           now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC',
                           CASE WHEN g %% 100 < 90 THEN now() AT TIME ZONE 'UTC' END
                      FROM generate_series(1, %(count)s) AS g
                    """,
                    {"configs": configs.ids, "count": missing, "stamp": int(time.time())},
                )
            cr.commit()
        log(f"data: {max(missing, 0)} logs in {time.perf_counter() - started:.1f} s")
        self.vacuum("api_sync_log")
        url = f"http://127.0.0.1:{self._conf_value('http_port')}/api_sync/metrics"
        headers = {"Authorization": f"Bearer {token}"}
        times, size = [], 0
        for _index in range(6):
            started = time.perf_counter()
            response = requests.get(url, headers=headers, timeout=300)
            times.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"/api_sync/metrics answered {response.status_code}")
            size = len(response.content)
        self.results["metrics_scrape_s"] = median(times[1:])
        self.details["metrics_scrape"] = {
            "logs": total,
            "configurations": len(configs),
            "first_s": times[0],
            "all_s": times,
            "bytes": size,
        }
        log(
            f"metrics: one scrape of {total} logs in {median(times[1:]):.3f} s "
            f"(first {times[0]:.3f} s), {size} bytes"
        )

    def _drain_jobs(self):
        """Wait (not measured) until the jobs a run left behind are done: its last progress
        updates find the run closed, but the next run would queue behind them."""
        import psycopg2  # noqa: PLC0415

        connection = psycopg2.connect(dbname=self.args.db)
        connection.autocommit = True
        deadline = time.time() + WAIT_LIMIT
        try:
            with connection.cursor() as cur:
                while time.time() < deadline:
                    cur.execute(
                        "SELECT count(*) FROM queue_job WHERE channel = 'root.api_sync'"
                        " AND state IN ('pending', 'enqueued', 'started')"
                    )
                    if not cur.fetchone()[0]:
                        return
                    time.sleep(0.5)
        finally:
            connection.close()

    def _full_sync(self, config_id, use_runs, wait_limit):
        """One full batch sync of a configuration, started in a process of its own (as a user's
        request would be); returns seconds until every delivery is done, the seconds the start
        took, the outcome, and that process's peak RSS growth while it selected and queued."""
        import psycopg2  # noqa: PLC0415

        child = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--odoo",
                self.args.odoo,
                "--conf",
                self.args.conf,
                "--db",
                self.args.db,
                "--log",
                self.args.log,
                "--out",
                "-",
                "--child-full-sync",
                str(config_id),
            ],
            capture_output=True,
            text=True,
            timeout=wait_limit,
            check=False,
        )
        if child.returncode:
            raise RuntimeError(f"full sync start failed: {child.stderr[-2000:]}")
        started = json.loads(child.stdout.strip().splitlines()[-1])
        enqueue_s = started["enqueue_s"]
        if not use_runs:
            _elapsed, states = self._wait_logs(started["log_ids"])
            if set(states) != {"done"}:
                raise RuntimeError(f"batch deliveries did not all succeed: {states}")
            return time.time() - started["t0"], enqueue_s, states, started["rss_growth"]
        connection = psycopg2.connect(dbname=self.args.db)
        connection.autocommit = True
        try:
            with connection.cursor() as cur:
                while True:
                    cur.execute(
                        "SELECT state, count_sent FROM api_sync_run WHERE id = %s",
                        (started["run_id"],),
                    )
                    state, sent = cur.fetchone()
                    if state != "running" or time.time() - started["t0"] > wait_limit:
                        break
                    time.sleep(0.05)
        finally:
            connection.close()
        elapsed = time.time() - started["t0"]
        if state != "success":
            raise RuntimeError(f"run {started['run_id']} ended {state} ({sent} sent)")
        return elapsed, enqueue_s, {"run": state, "sent": sent}, started["rss_growth"]


def child_full_sync(args):
    """In a process of its own: start the full sync of one configuration and commit."""
    import psutil  # noqa: PLC0415

    bench = Bench(args)
    process = psutil.Process()
    with bench.cursor() as cr:
        env = bench.env(cr)
        env["res.partner"].search([], limit=1)
        rss_before = process.memory_info().rss
        sampler = RssSampler(lambda: [process.pid])
        sampler.start()
        t0, started = time.time(), time.perf_counter()
        config = env["api.sync.config"].browse(args.child_full_sync)
        result = {}
        if "api.sync.run" in env and hasattr(config, "action_full_resync"):
            action = config.action_full_resync()
            result["run_id"] = action["res_id"] if isinstance(action, dict) else action.id
        else:
            records = env["res.partner"].search(config._get_domain())
            result["log_ids"] = config.send_batch(records).ids
        cr.commit()
        result["enqueue_s"] = time.perf_counter() - started
        result["rss_growth"] = max(sampler.stop(), process.memory_info().rss) - rss_before
        result["t0"] = t0
    print(json.dumps(result), flush=True)
    return 0


class RssSampler:
    """Peak resident memory of any one Odoo worker, sampled every 0.2 s in a thread."""

    def __init__(self, pids):
        self.pids = pids
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil  # noqa: PLC0415

        while not self._stop.is_set():
            for pid in self.pids():
                try:
                    self.peak = max(self.peak, psutil.Process(pid).memory_info().rss)
                except psutil.Error:
                    pass
            self._stop.wait(0.2)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        return self.peak


def _secret():
    sys.path.insert(0, REPO)
    from engine import wire  # noqa: PLC0415

    return wire.new_secret()


# -- report ---------------------------------------------------------------------------------------


def environment():
    import psycopg2  # noqa: PLC0415

    info = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/meminfo") as handle:
            info["memory_gib"] = round(int(handle.readline().split()[1]) / 2**20, 1)
        with open("/proc/loadavg") as handle:
            info["loadavg_at_start"] = handle.read().split()[:3]
    except OSError:
        pass
    connection = psycopg2.connect(dbname="postgres")
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        info["postgresql"] = cur.fetchone()[0]
    connection.close()
    return info


def met(key, value):
    if key not in TARGETS or value is None:
        return None
    comparison, threshold = TARGETS[key]
    return value <= threshold if comparison == "<=" else value >= threshold


def print_table(results):
    rows = [("figure", "value", "target", "met?")]
    for key, value in results.items():
        target = " ".join(map(str, TARGETS[key])) if key in TARGETS else "-"
        verdict = {True: "yes", False: "NO", None: "-"}[met(key, value)]
        shown = (
            "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
        )
        rows.append((key, shown, target, verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main():
    parser = command_arguments(__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default="1,2,3,4,5,6")
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--child-full-sync", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_full_sync:
        return child_full_sync(args)
    parts = set(args.parts.split(","))
    started = time.perf_counter()
    info = environment()
    log(f"environment: {info}")
    workdir = os.path.join(REPO, ".build")
    fast = ReceiverProcess(sys.executable, 0.0, workdir, times_marker=LATENCY_MARKER)
    slow = ReceiverProcess(sys.executable, 0.2, workdir)
    bench = Bench(args)
    failures = []
    try:
        bench.prepare_data()
        steps = [
            ({"1", "2"}, "write path", lambda: bench.part_write_path(fast, slow)),
            ({"1"}, "unconfigured model", lambda: bench.part_unconfigured_model(fast)),
            ({"3"}, "mapping", lambda: bench.part_mapping(fast)),
        ]
        for wanted, name, step in steps:
            if wanted & parts:
                part_started = time.perf_counter()
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - reported, the other parts still run
                    log(f"ERROR in {name}: {exc!r}\n{traceback.format_exc()}")
                    failures.append(f"{name}: {exc!r}")
                bench.details.setdefault("part_seconds", {})[name] = round(
                    time.perf_counter() - part_started, 1
                )
        if {"4", "5", "6", "scrape"} & parts:
            bench.start_server()
            for wanted, name, step in [
                ({"4"}, "throughput", lambda: bench.part_throughput(fast)),
                ({"4"}, "latency", lambda: bench.part_latency(fast)),
                ({"4"}, "latency at commit", lambda: bench.part_latency(fast, at_commit=True)),
                ({"5"}, "scaling", lambda: bench.part_scaling(fast)),
                ({"5", "scrape"}, "metrics scrape", bench.part_metrics_scrape),
                ({"6"}, "inbound", lambda: bench.part_inbound(fast)),
            ]:
                if wanted & parts:
                    part_started = time.perf_counter()
                    try:
                        step()
                    except Exception as exc:  # noqa: BLE001
                        log(f"ERROR in {name}: {exc!r}\n{traceback.format_exc()}")
                        failures.append(f"{name}: {exc!r}")
                    bench.details.setdefault("part_seconds", {})[name] = round(
                        time.perf_counter() - part_started, 1
                    )
    finally:
        bench.stop_server()
        fast.stop()
        slow.stop()
    results = {key: bench.results.get(key) for key in TARGETS if key not in bench.results}
    results = {**bench.results, **{k: v for k, v in results.items() if v is not None}}
    print_table(results)
    output = {
        **results,
        "targets": {
            key: {"comparison": c, "threshold": t, "met": met(key, results.get(key))}
            for key, (c, t) in TARGETS.items()
        },
        "quick": args.quick,
        "environment": info,
        "details": bench.details,
        "failures": failures,
        "seconds": round(time.perf_counter() - started, 1),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(output, handle, indent=2, sort_keys=False, default=str)
    log(f"figures written to {args.out} ({output['seconds']} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
