"""The figures of the metrics route (``controllers/metrics.py``), read with two aggregate queries.

``Metrics(env).text()`` is the exposition (``engine/metrics.py`` renders it). The events are read
in one scan of ``api_sync_log`` grouped by configuration, state and error class, the duration
buckets counted by PostgreSQL in that scan; the configurations with their endpoint's state in
another. Nothing is read per event, so the number of queries does not grow with the logs.

Inbound sync: once ``api.sync.log`` tells the direction of an event, add it to ``GROUPED`` and to
the labels of the events families (``engine.metrics.families``): the outbound figures stay as
they are, inbound ones come as series of their own.
"""

import time
from datetime import UTC

from odoo.tools import SQL

from ..engine import health
from ..engine import metrics as exposition
from .api_sync_log import LOG_STATES

TOKEN_PARAM = "api_sync.metrics_token"  # ir.config_parameter, set in Settings (admins only)
GROUPED = ("config_id", "state", "error_class")


class Metrics:
    """What ``/api_sync/metrics`` answers, read on ``env``'s cursor (as superuser)."""

    def __init__(self, env):
        self.env = env
        self.cr = env.cr

    def _log_groups(self):
        buckets = SQL(", ").join(
            SQL("count(*) FILTER (WHERE duration_ms <= %s AND attempt_count > 0)", bound)
            for bound in exposition.DURATION_BUCKETS_MS
        )
        self.cr.execute(
            SQL(
                """SELECT %(grouped)s, count(*), COALESCE(sum(attempt_count), 0),
                          EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC')
                                             - min(create_date) FILTER (WHERE state = 'pending')),
                          count(*) FILTER (WHERE attempt_count > 0 AND duration_ms IS NOT NULL),
                          COALESCE(sum(duration_ms) FILTER (WHERE attempt_count > 0), 0),
                          %(buckets)s
                     FROM api_sync_log
                    GROUP BY %(grouped)s""",
                grouped=SQL(", ").join(SQL.identifier(name) for name in GROUPED),
                buckets=buckets,
            )
        )
        size = len(exposition.DURATION_BUCKETS_MS)
        return [
            exposition.LogGroup(
                config_id,
                state,
                error_class,
                events,
                int(attempts),
                None if age is None else max(float(age), 0.0),
                timed,
                int(total),
                tuple(rest[:size]),
            )
            for config_id, state, error_class, events, attempts, age, timed, total, *rest in (
                self.cr.fetchall()
            )
        ]

    def _configs(self):
        self.cr.execute(
            """SELECT c.id, c.name, c.active, c.last_success_at, c.is_stale, e.state,
                      COALESCE(e.failure_count, 0)
                 FROM api_sync_config AS c
                 LEFT JOIN api_sync_endpoint_state AS e ON e.config_id = c.id
                ORDER BY c.id"""
        )
        return [
            exposition.ConfigRow(
                config_id,
                name,
                bool(active),
                last_success and last_success.replace(tzinfo=UTC).timestamp(),
                bool(stale),
                endpoint_state,
                failures,
            )
            for config_id, name, active, last_success, stale, endpoint_state, failures in (
                self.cr.fetchall()
            )
        ]

    def families(self):
        started = time.perf_counter()
        # what this transaction wrote (a test's, or a caller's) is read by the queries
        for model in ("api.sync.log", "api.sync.config", "api.sync.endpoint.state"):
            self.env[model].flush_model()
        configs, groups = self._configs(), self._log_groups()
        return exposition.families(
            configs,
            groups,
            [state for state, _label in LOG_STATES],
            [state for state, _label in health.STATES],
            scrape_seconds=time.perf_counter() - started,
        )

    def text(self):
        return exposition.render(self.families())
