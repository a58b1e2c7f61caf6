"""What api_sync adds to every model (``_inherit = "base"``): the built-in listener's
create/write/unlink, the sync status button on the forms of synced models, records noted for
the commit forgotten when unlinked, and the external ids of deleted records that no delete
event needs removed with them.

A model without a listening configuration pays one lookup in a cached frozenset per call (see
``api.sync.config._listened_models``); what a change sends is decided by ``engine.triggers``.
"""

from itertools import chain

from lxml import etree

from odoo import api, models

from ..engine import triggers
from .constants import USER_GROUP
from .outbox import Outbox


class Base(models.AbstractModel):
    _inherit = "base"

    # -- the built-in listener -----------------------------------------------------------------

    def _api_sync_listeners(self):
        """The listeners of this model as a document and as a line (see
        ``api.sync.config._listeners`` and ``_line_listeners``), or ``((), ())``: one lookup in a
        cached frozenset for a model that nobody listens to."""
        if not self.pool.ready:  # loading modules: automation rules do not run either
            return (), ()
        Config = self.env["api.sync.config"]
        if self._name not in Config._listened_models():
            return (), ()
        return Config._listeners(self._name), Config._line_listeners(self._name)

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        listeners, line_listeners = self._api_sync_listeners()
        if not (listeners or line_listeners):
            return records
        configs, outbox = self.env["api.sync.config"].sudo(), Outbox(self.env)
        for config_id, _names in listeners:
            outbox.note(configs.browse(config_id), records, "create")
        for config_id, path, _names, _link in line_listeners:
            configs.browse(config_id)._listener_lines_changed(path, records)
        return records

    def write(self, vals):
        listeners, line_listeners = self._api_sync_listeners() if self else ((), ())
        if not (listeners or line_listeners):
            return super().write(vals)
        # only the fields this write sets and a listener cares about are compared
        watched = triggers.watched_in(
            vals,
            chain(
                (names for _id, names in listeners),
                (names for _id, _path, names, _link in line_listeners),
            ),
        )
        if not watched:
            return super().write(vals)
        records = self.sudo()
        old_values = {record.id: {name: record[name] for name in watched} for record in records}
        result = super().write(vals)
        changes = triggers.changed_fields(
            old_values,
            {record.id: {name: record[name] for name in watched} for record in records},
        )
        configs, outbox = self.env["api.sync.config"].sudo(), Outbox(self.env)
        for config_id, names in listeners:
            for changed, record_ids in triggers.updates(changes, names).items():
                outbox.note(configs.browse(config_id), self.browse(record_ids), "update", changed)
        for config_id, path, names, link in line_listeners:
            configs.browse(config_id)._listener_lines_changed(
                path,
                records.browse(triggers.lines_changed(changes, names)),
                triggers.old_holders(changes, old_values, link),
            )
        return result

    def unlink(self):
        listeners, line_listeners = self._api_sync_listeners() if self else ((), ())
        if listeners or line_listeners:
            configs = self.env["api.sync.config"].sudo()
            for config_id, path, _names, _link in line_listeners:  # their documents, before they go
                configs.browse(config_id)._listener_lines_changed(path, self)
            if listeners:  # the payload is captured now, before the records go
                configs.browse([config_id for config_id, _names in listeners]).sync_record(
                    self, "delete"
                )
        Outbox(self.env).forget(self)  # noted records: they no longer exist at commit
        synced = self.pool.ready and self._name in self.env["api.sync.config"]._synced_models()
        ids = self.ids
        result = super().unlink()  # the deletion rules queue their events meanwhile
        if synced and ids:  # external ids no delete event needs go with their records
            self.env["api.sync.binding"].sudo()._forget_deleted(self._name, ids)
        return result

    # -- the status button -----------------------------------------------------------------------

    @api.model
    def _get_view(self, view_id=None, view_type="form", **options):
        arch, view = super()._get_view(view_id, view_type, **options)
        if view_type == "form" and self._name in self.env["api.sync.config"]._synced_models():
            sheet = arch.find(".//sheet")
            box = arch.find(".//div[@name='button_box']")
            if box is None and sheet is not None:
                box = etree.Element("div", {"name": "button_box", "class": "oe_button_box"})
                sheet.insert(0, box)
            if box is not None:
                box.insert(
                    0,
                    etree.Element(
                        "widget",
                        {"name": "api_sync_status", "groups": USER_GROUP},
                    ),
                )
        return arch, view
