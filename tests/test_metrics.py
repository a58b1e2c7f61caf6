"""The metrics route: hidden (404) unless called with the token a Settings administrator set,
then Prometheus' text format with the figures of every configuration, read by a few queries."""

import re
from datetime import UTC, timedelta

from prometheus_client.parser import text_string_to_metric_families

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from ..models.metrics import TOKEN_PARAM, Metrics

CSRF = re.compile(r'csrf_token: "[^"]*"')

TOKEN = "s3cret-metrics-token-0123456789"
ROUTE = "/api_sync/metrics"


@tagged("post_install", "-at_install")
class TestMetrics(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Config = cls.env["api.sync.config"].with_context(tracking_disable=True)
        Config.search([]).active = False  # the demo configurations' events stay out of the way
        model_id = cls.env["ir.model"]._get_id("res.partner")
        cls.config = Config.create(
            {
                "name": 'Contacts "main" \\ feed',
                "model_id": model_id,
                "endpoint_url": "http://127.0.0.1:9/hook",
                "company_id": False,
            }
        )
        cls.other = Config.create(
            {
                "name": "Quiet",
                "model_id": model_id,
                "endpoint_url": "http://127.0.0.1:9/quiet",
                "company_id": False,
            }
        )
        now = fields.Datetime.now()
        cls.config.write({"last_success_at": now - timedelta(days=2), "is_stale": True})
        cls.env["api.sync.endpoint.state"].create(
            {"config_id": cls.config.id, "state": "paused", "failure_count": 6}
        )
        cls.logs = cls.make_logs(cls.config, 1)

    @classmethod
    def make_logs(cls, config, copies, tag="setup"):
        """Per copy: 2 delivered (40 ms, 700 ms), 1 failed on a 404, 1 waiting for a retry after
        a timeout, 1 pending never attempted."""
        kinds = [
            {"state": "done", "attempt_count": 1, "duration_ms": 40, "response_status": 200},
            {"state": "done", "attempt_count": 2, "duration_ms": 700, "response_status": 200},
            {
                "state": "failed",
                "attempt_count": 1,
                "duration_ms": 30,
                "response_status": 404,
                "error_class": "HTTP 404",
            },
            {
                "state": "pending",
                "attempt_count": 3,
                "duration_ms": 10000,
                "error_class": "ReadTimeout",
            },
            {"state": "pending", "attempt_count": 0},
        ]
        logs = cls.env["api.sync.log"].create(
            [
                {
                    "config_id": config.id,
                    "res_model": "res.partner",
                    "res_id": 1,
                    "operation": "update",
                    "idempotency_key": f"metrics-{tag}-{config.id}-{copy}-{index}",
                    **values,
                }
                for copy in range(copies)
                for index, values in enumerate(kinds)
            ]
        )
        logs.flush_recordset()
        return logs

    def scrape(self, token=TOKEN, method="get", **headers):
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return getattr(self.opener, method)(self.base_url() + ROUTE, headers=headers, timeout=30)

    def set_token(self, token):
        self.env["ir.config_parameter"].sudo().set_param(TOKEN_PARAM, token)

    @mute_logger("odoo.http")
    def test_the_route_is_hidden_without_a_token_set(self):
        self.set_token(False)
        nowhere = "/api_sync/no-such-route"
        unknown = self.opener.get(self.base_url() + nowhere, timeout=30)
        self.assertEqual(unknown.status_code, 404)
        for token in (TOKEN, "", None):
            response = self.scrape(token)
            self.assertEqual(response.status_code, 404)
            # the answer of a path that does not exist: nothing says the route is there (but
            # the page's CSRF token, which changes with the time of the request)
            self.assertEqual(
                CSRF.sub("", response.text.replace(ROUTE, "/path")),
                CSRF.sub("", unknown.text.replace(nowhere, "/path")),
            )
            self.assertEqual(response.headers["Content-Type"], unknown.headers["Content-Type"])
            self.assertNotIn("api_sync_", response.text)

    @mute_logger("odoo.http")
    def test_a_wrong_token_or_method_gets_404(self):
        self.set_token(TOKEN)
        for token in ("wrong", TOKEN[:-1], TOKEN + "x", None, ""):
            self.assertEqual(self.scrape(token).status_code, 404, token)
        self.assertEqual(self.scrape(None, Authorization=f"Basic {TOKEN}").status_code, 404)
        self.assertEqual(self.scrape(None, Authorization=TOKEN).status_code, 404)
        self.assertEqual(self.scrape(method="post").status_code, 404)

    def test_the_right_token_gets_the_figures_in_the_text_format(self):
        self.set_token(TOKEN)
        response = self.scrape()
        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8"
        )
        self.assertNotIn(TOKEN, response.text)
        families = {f.name: f for f in text_string_to_metric_families(response.text)}

        def value(name, config, suffix="", **labels):
            found = [
                sample.value
                for sample in families[name].samples
                if sample.name == name + suffix
                and sample.labels.get("config_id") == str(config.id)
                and all(sample.labels.get(key) == val for key, val in labels.items())
            ]
            self.assertEqual(len(found), 1, (name, suffix, labels, found))
            return found[0]

        main, quiet = self.config, self.other
        expected_events = {"done": 2, "failed": 1, "pending": 2, "cancelled": 0}
        for state, count in expected_events.items():
            self.assertEqual(value("api_sync_events", main, state=state), count)
            self.assertEqual(value("api_sync_events", quiet, state=state), 0)
        self.assertEqual(value("api_sync_event_attempts", main, state="pending"), 3)
        self.assertEqual(value("api_sync_event_attempts", main, state="done"), 3)
        self.assertEqual(value("api_sync_event_errors", main, state="failed", reason="http_4xx"), 1)
        self.assertEqual(value("api_sync_event_errors", main, state="pending", reason="timeout"), 1)
        histogram = "api_sync_delivery_duration_seconds"
        self.assertEqual(families[histogram].type, "histogram")
        self.assertEqual(value(histogram, main, "_count"), 4)
        self.assertAlmostEqual(value(histogram, main, "_sum"), 10.77)
        self.assertEqual(value(histogram, main, "_bucket", le="0.05"), 2)
        self.assertEqual(value(histogram, main, "_bucket", le="1.0"), 3)
        self.assertEqual(value(histogram, main, "_bucket", le="10.0"), 4)
        self.assertEqual(value(histogram, main, "_bucket", le="+Inf"), 4)
        self.assertEqual(value(histogram, quiet, "_count"), 0)
        self.assertGreaterEqual(value("api_sync_oldest_pending_age_seconds", main), 0)
        self.assertEqual(value("api_sync_oldest_pending_age_seconds", quiet), 0)
        self.assertEqual(value("api_sync_endpoint_state", main, state="paused"), 1)
        self.assertEqual(value("api_sync_endpoint_state", main, state="healthy"), 0)
        self.assertEqual(value("api_sync_endpoint_state", quiet, state="healthy"), 1)
        self.assertEqual(value("api_sync_endpoint_failures", main), 6)
        self.assertEqual(value("api_sync_stale", main), 1)
        self.assertEqual(value("api_sync_stale", quiet), 0)
        self.assertEqual(
            value("api_sync_last_success_timestamp_seconds", main),
            main.last_success_at.replace(tzinfo=UTC).timestamp(),
        )
        labels = [
            sample.labels
            for sample in families["api_sync_events"].samples
            if sample.labels["config_id"] == str(main.id)
        ]
        self.assertEqual(labels[0]["config"], 'Contacts "main" \\ feed')

    def test_the_oldest_pending_age_is_the_oldest_pending_events(self):
        hour_ago = self.env.cr.now() - timedelta(hours=1)  # now() of the queries' transaction
        self.env.cr.execute(
            "UPDATE api_sync_log SET create_date = %s WHERE id = %s",
            (hour_ago, self.logs.filtered(lambda log: log.state == "pending")[-1].id),
        )
        self.env.cr.execute(  # an older event done does not count
            "UPDATE api_sync_log SET create_date = %s WHERE id = %s",
            (
                hour_ago - timedelta(days=1),
                self.logs.filtered(lambda log: log.state == "done")[0].id,
            ),
        )
        families = {family.name: family for family in Metrics(self.env).families()}
        (age,) = [
            value
            for _suffix, labels, value in families["oldest_pending_age_seconds"].samples
            if labels["config_id"] == self.config.id
        ]
        self.assertEqual(age, 3600)

    def test_the_number_of_queries_does_not_grow_with_the_logs(self):
        def queries():
            before = self.env.cr.sql_log_count
            Metrics(self.env).text()
            return self.env.cr.sql_log_count - before

        few = queries()
        self.make_logs(self.config, 40, "more")
        self.make_logs(self.other, 40, "more")
        self.assertEqual(self.env["api.sync.log"].search_count([]), 5 * 81 + self.demo_logs())
        self.assertEqual(queries(), few)
        self.assertEqual(few, 2)  # the configurations, the events

    def demo_logs(self):
        return self.env["api.sync.log"].search_count(
            [("config_id", "not in", (self.config | self.other).ids)]
        )

    def test_only_settings_administrators_read_or_set_the_token(self):
        admin = new_test_user(self.env, "metrics_admin", groups="base.group_system")
        manager = new_test_user(
            self.env, "metrics_manager", groups="api_sync.group_api_sync_manager"
        )
        settings = (
            self.env["res.config.settings"]
            .with_user(admin)
            .create({"api_sync_metrics_token": "set-by-admin"})
        )
        settings.execute()
        self.assertEqual(
            self.env["ir.config_parameter"].sudo().get_param(TOKEN_PARAM), "set-by-admin"
        )
        self.assertEqual(
            self.env["res.config.settings"].with_user(admin).create({}).api_sync_metrics_token,
            "set-by-admin",
        )
        Settings = self.env["res.config.settings"].with_user(manager)
        self.assertNotIn("api_sync_metrics_token", Settings.fields_get())
        with self.assertRaises(AccessError):
            Settings.create({"api_sync_metrics_token": "set-by-manager"}).execute()
        with self.assertRaises(AccessError):
            self.env["ir.config_parameter"].with_user(manager).search(
                [("key", "=", TOKEN_PARAM)]
            ).read(["value"])
        self.assertEqual(
            self.env["ir.config_parameter"].sudo().get_param(TOKEN_PARAM), "set-by-admin"
        )
