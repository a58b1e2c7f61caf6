"""Short transactions of their own, committed at once: what the workers share (an endpoint's
state, a record's external id) is read and written there, never in a delivery's transaction
(whose snapshot is as old as its job) nor in a user's, so a worker never waits for a user
saving records and sees what the other workers did a moment ago."""

import contextlib

from psycopg2.extensions import ISOLATION_LEVEL_READ_COMMITTED

from odoo import sql_db


@contextlib.contextmanager
def own_transaction(env):
    """A cursor on a short transaction of its own, committed on leaving."""
    with own_cursor(env.registry) as cr:
        yield cr


@contextlib.contextmanager
def own_cursor(registry):
    """``own_transaction`` where there is no environment yet (a thread of its own)."""
    with registry.cursor() as cr:
        if isinstance(cr, sql_db.Cursor):
            # each statement sees the latest committed state; an update of a row another
            # worker is changing waits for it, then applies to its result (no serialization
            # failure)
            cr.connection.set_isolation_level(ISOLATION_LEVEL_READ_COMMITTED)
        yield cr


def fetch(env, cr, query, params):
    """Run ``query`` on ``cr``, or on a short transaction of its own when ``cr`` is None;
    returns its rows."""
    if cr is not None:
        cr.execute(query, params)
        return cr.fetchall()
    with own_transaction(env) as own:
        own.execute(query, params)
        return own.fetchall()
