"""Health figures of a configuration for its dashboard card and lists, from its logs."""

from odoo import api, fields, models

HEALTH_STATES = [
    ("healthy", "Healthy"),
    ("failing", "Failing"),
    ("idle", "No deliveries yet"),
]


class ApiSyncConfig(models.Model):
    _inherit = "api.sync.config"

    health_state = fields.Selection(HEALTH_STATES, string="Health", compute="_compute_health")
    health_failing_since = fields.Datetime(
        string="Deliveries Failing Since",
        compute="_compute_health",
        help="First failed attempt since the last delivery.",
    )
    health_last_done_at = fields.Datetime(string="Last Delivery", compute="_compute_health")
    health_pending = fields.Integer(string="Pending", compute="_compute_health")
    health_rate_24h = fields.Float(string="Success Rate 24 h (%)", compute="_compute_health")
    health_rate_7d = fields.Float(string="Success Rate 7 days (%)", compute="_compute_health")
    health_p50_24h = fields.Integer(string="p50 24 h (ms)", compute="_compute_health")
    health_p95_24h = fields.Integer(string="p95 24 h (ms)", compute="_compute_health")
    health_p50_7d = fields.Integer(string="p50 7 days (ms)", compute="_compute_health")
    health_p95_7d = fields.Integer(string="p95 7 days (ms)", compute="_compute_health")

    inbound_received_24h = fields.Integer(
        string="Inbound Received 24 h", compute="_compute_inbound_figures"
    )
    inbound_applied_24h = fields.Integer(
        string="Inbound Applied 24 h", compute="_compute_inbound_figures"
    )
    inbound_failed = fields.Integer(
        compute="_compute_inbound_figures",
        help="Inbound events that failed (until retried or cancelled).",
    )
    inbound_pending = fields.Integer(compute="_compute_inbound_figures")

    @api.depends("log_ids.state")
    def _compute_inbound_figures(self):
        """Inbound events: received and applied in the last 24 hours, failed, pending."""
        figures = {}
        if self.ids:
            self.env["api.sync.log"].flush_model()
            self.env.cr.execute(
                """SELECT config_id,
                          count(*) FILTER (WHERE day),
                          count(*) FILTER (WHERE day AND state = 'done'),
                          count(*) FILTER (WHERE state = 'failed'),
                          count(*) FILTER (WHERE state = 'pending')
                     FROM (SELECT config_id, state,
                                  create_date > now() AT TIME ZONE 'UTC' - interval '1 day' AS day
                             FROM api_sync_log
                            WHERE config_id = ANY(%s) AND direction = 'inbound'
                              AND (state IN ('failed', 'pending')
                                   OR create_date > now() AT TIME ZONE 'UTC' - interval '1 day')
                          ) AS l
                    GROUP BY config_id""",
                (self.ids,),
            )
            figures = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        for config in self:
            (
                config.inbound_received_24h,
                config.inbound_applied_24h,
                config.inbound_failed,
                config.inbound_pending,
            ) = figures.get(config.id, (0, 0, 0, 0))

    @api.depends("log_ids.state")
    def _compute_health(self):
        """One query for all the configurations shown: events finished (done or failed) in the
        last 24 hours and 7 days, durations of the attempts that got an answer."""
        figures = {}
        if self.ids:
            self.env["api.sync.log"].flush_model()
            self.env.cr.execute(
                """WITH last AS (
                       SELECT config_id, max(done_at) AS done_at FROM api_sync_log
                        WHERE config_id = ANY(%(ids)s) AND direction = 'outbound'
                        GROUP BY config_id)
                   SELECT l.config_id,
                          count(*) FILTER (WHERE l.state = 'pending'),
                          max(last.done_at),
                          min(l.last_attempt_at) FILTER (
                              WHERE l.error_class IS NOT NULL
                                AND l.last_attempt_at > COALESCE(last.done_at, '1970-01-01')),
                          count(*) FILTER (WHERE l.state IN ('done', 'failed') AND l.day),
                          count(*) FILTER (WHERE l.state = 'done' AND l.day),
                          count(*) FILTER (WHERE l.state IN ('done', 'failed')),
                          count(*) FILTER (WHERE l.state = 'done'),
                          percentile_cont(0.5) WITHIN GROUP (ORDER BY l.duration_ms)
                              FILTER (WHERE l.answered AND l.day),
                          percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms)
                              FILTER (WHERE l.answered AND l.day),
                          percentile_cont(0.5) WITHIN GROUP (ORDER BY l.duration_ms)
                              FILTER (WHERE l.answered),
                          percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms)
                              FILTER (WHERE l.answered)
                     FROM (SELECT *, create_date > now() AT TIME ZONE 'UTC' - interval '1 day'
                                     AS day,
                                  COALESCE(response_status, 0) > 0 AS answered
                             FROM api_sync_log
                            WHERE config_id = ANY(%(ids)s) AND direction = 'outbound'
                              AND (state = 'pending'
                                   OR create_date > now() AT TIME ZONE 'UTC' - interval '7 days'
                                   OR last_attempt_at > now() AT TIME ZONE 'UTC'
                                                        - interval '7 days')) AS l
                     JOIN last ON last.config_id = l.config_id
                    GROUP BY l.config_id""",
                {"ids": self.ids},
            )
            figures = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        for config in self:
            (
                pending,
                last_done,
                failing_since,
                finished_day,
                done_day,
                finished_week,
                done_week,
                *durations,
            ) = figures.get(config.id, (0, None, None, 0, 0, 0, 0, None, None, None, None))
            config.health_pending = pending
            config.health_last_done_at = last_done
            config.health_failing_since = failing_since
            if failing_since:
                config.health_state = "failing"
            else:
                config.health_state = "healthy" if last_done else "idle"
            config.health_rate_24h = 100.0 * done_day / finished_day if finished_day else 0.0
            config.health_rate_7d = 100.0 * done_week / finished_week if finished_week else 0.0
            (
                config.health_p50_24h,
                config.health_p95_24h,
                config.health_p50_7d,
                config.health_p95_7d,
            ) = (round(value or 0) for value in durations)
