"""The mapper: what a configuration sends of its records, read as its Integration User (never
as superuser: model access, record rules and field groups apply), mapped by its mapping lines
(``api.sync.field.mapping`` reads the values column by column, ``engine.mapping`` converts and
nests them), and the event bodies that carry them (``engine.wire``)."""

from functools import partial

from odoo import models
from odoo.exceptions import AccessError

from ..engine import mapping, wire

# up to this many records, the record rules are applied in Python (see ``split_readable``)
RULES_IN_PYTHON_MAX = 50


def record_label(record):
    """How a record is named in mapping errors."""
    return f"{record.sudo().display_name} ({record._name},{record.id})"


class Mapper:
    """The records of one configuration as it sends them."""

    def __init__(self, config):
        self.config = config
        self.env = config.env

    def split_readable(self, records):
        """``(readable, unreadable)`` parts of ``records`` for the Integration User.

        A few records (a writer's transaction) are checked by ``_filtered_access``, which applies
        the record rules in Python to values mostly in cache: no query. More (batches, runs) go
        into one query where the model checks access as Odoo does (in Python, record by record,
        1,000 contacts took 50 ms)."""
        reader = records.with_env(self.config._reader_env())
        if (
            len(records) <= RULES_IN_PYTHON_MAX
            or type(reader)._check_access is not models.BaseModel._check_access
        ):
            ids = reader._filtered_access("read").ids
        elif not records or not reader.browse().has_access("read"):
            ids = []
        else:
            found = set(reader.with_context(active_test=False)._search([("id", "in", records.ids)]))
            ids = [record_id for record_id in records.ids if record_id in found]
        return records.browse(ids), records - records.browse(ids)

    def payloads(self, records):
        """Map ``records`` (in bulk) as the Integration User; returns one payload dict per
        record, in order. Raises MappingError for what cannot be mapped or read."""
        config = self.config
        config.ensure_one()
        # only these records: another one of the prefetch set may be unreadable
        records = records.with_env(config._reader_env()).browse(records.ids)
        try:
            if not config.mapping_ids:
                records.fetch(["display_name"])
                return [
                    {"id": record.id, "display_name": record.display_name} for record in records
                ]
            lines = config._mapping_lines()
            values = self.env["api.sync.field.mapping"]._read_source_values(records, lines)
        except AccessError:
            raise mapping.MappingError(
                self.env._(
                    "The Integration User %(user)s cannot read what the mapping needs from "
                    "%(records)s.",
                    user=config.sudo().integration_user_id.name,
                    records=", ".join(record_label(record) for record in records[:5]),
                )
            ) from None
        return [
            mapping.build_payload(lines, record_values, partial(record_label, record))
            for record, record_values in zip(records, values, strict=True)
        ]

    def payloads_or_errors(self, records):
        """Like ``payloads``, but a record that cannot be mapped gets its MappingError in place
        of a payload instead of failing the others."""
        try:
            return self.payloads(records)
        except mapping.MappingError:
            results = []
            for record in records:
                try:
                    results.extend(self.payloads(record))
                except mapping.MappingError as exc:
                    results.append(exc)
            return results

    def record_body(self, event_id, record, operation, changed_fields, timestamp, data=None):
        """The event body of one record, mapped from its current values (``data``: already)."""
        if data is None:
            (data,) = self.payloads(record)
        return wire.record_event(
            event_id,
            record._name,
            record.id,
            operation,
            changed_fields,
            record.write_date,
            data,
            timestamp,
        )

    def batch_body(self, event_id, records, timestamp, payloads=None):
        """The body of a batch, and ``{record: MappingError}`` for the records left out
        (``payloads``: the records' payloads or MappingErrors, already mapped)."""
        items, failures = [], {}
        if payloads is None:
            payloads = self.payloads_or_errors(records)
        for record, data in zip(records, payloads, strict=True):
            if isinstance(data, mapping.MappingError):
                failures[record] = data
            else:
                items.append((record.id, "update", record.write_date, data))
        return wire.batch_event(event_id, self.config.model_name, items, timestamp), failures
