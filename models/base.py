"""A sync status button on the form of every model that an active configuration syncs; records
noted for the commit forgotten when unlinked."""

from lxml import etree

from odoo import api, models

from .api_sync_config_commit import NOTED_KEY
from .constants import USER_GROUP


class Base(models.AbstractModel):
    _inherit = "base"

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

    def unlink(self):
        noted = self.env.cr.precommit.data.get(NOTED_KEY)
        if noted and self:  # they no longer exist at commit
            noted.difference_update((self._name, record_id) for record_id in self.ids)
        return super().unlink()
