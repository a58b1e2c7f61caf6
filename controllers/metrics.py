"""``/api_sync/metrics``: api_sync's figures for Prometheus, behind a bearer token.

Off until a Settings administrator sets the token (Settings > API Sync > Monitoring, stored in
the system parameter ``api_sync.metrics_token``). Without it, with another token or another
method than GET, the answer is Odoo's own 404, as for a path that does not exist. The database is
the request's, found as for any route that needs no login (Odoo's webhook routes): the only one,
or the one ``dbfilter`` leaves.
"""

import hmac

from werkzeug.exceptions import NotFound

from odoo import SUPERUSER_ID, http
from odoo.http import request

from ..engine.metrics import CONTENT_TYPE
from ..models.metrics import TOKEN_PARAM, Metrics


def bearer_token(header):
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class MetricsController(http.Controller):
    # website=True: a refusal is rendered as the 404 page of a path no route serves
    @http.route(
        "/api_sync/metrics",
        type="http",
        auth="none",
        csrf=False,
        save_session=False,
        website=True,
        multilang=False,
    )
    def metrics(self, **_kwargs):
        env = request.env(user=SUPERUSER_ID)
        expected = env["ir.config_parameter"].get_param(TOKEN_PARAM) or ""
        given = bearer_token(request.httprequest.headers.get("Authorization"))
        # GET only; any other method is refused as a wrong token is (the route stays hidden)
        if (
            request.httprequest.method != "GET"
            or not expected
            or given is None
            or not hmac.compare_digest(given.encode(), expected.encode())
        ):
            raise NotFound()
        return request.make_response(
            Metrics(env).text(),
            headers=[("Content-Type", CONTENT_TYPE), ("Cache-Control", "no-store")],
        )
