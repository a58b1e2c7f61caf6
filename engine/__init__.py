"""Odoo-independent core of api_sync: payload mapping, wire format and HTTP delivery.

Nothing in this package imports Odoo, so it is tested with plain pytest (``tests/pure``).
"""
