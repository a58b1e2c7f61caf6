import datetime
import json

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged

from .common import ApiSyncCase


@tagged("post_install", "-at_install")
class TestMapping(ApiSyncCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tags = cls.env["res.partner.category"].create([{"name": "Gold"}, {"name": "VIP"}])
        cls.person = cls.env["res.partner"].create(
            {
                "name": "Ann Sync",
                "parent_id": cls.company.id,
                "email": "ann@example.com",
                "color": 4,
                "category_id": [Command.set(cls.tags.ids)],
            }
        )
        lines = [
            ("name", "name", "string", {"required": True}),
            ("email", "contact.email", "raw", {}),
            ("phone", "contact.phone", "raw", {}),
            ("function", "contact.function", "string", {"default_value": "unknown"}),
            ("color", "color", "integer", {}),
            ("color", "color_float", "float", {}),
            ("is_company", "flags.company", "raw", {}),
            ("employee", "flags.employee", "boolean", {}),
            ("write_date", "since", "date", {}),
            ("write_date", "updated_at", "datetime", {}),
            ("parent_id", "company.id", "many2one_id", {}),
            ("parent_id", "company.name", "many2one_name", {}),
            ("parent_id.country_id.code", "company.country", "string", {}),
            ("category_id", "tags.ids", "x2many_ids", {}),
            ("category_id", "tags.names", "x2many_names", {}),
            ("child_ids", "children", "raw", {}),
            (False, "source", "constant", {"default_value": "odoo"}),
            (False, "schema", "constant", {"default_value": "2"}),
        ]
        for sequence, (path, key, transform, extra) in enumerate(lines):
            cls.add_line(path, key, transform, sequence=sequence, **extra)

    def test_every_transform_with_nulls_and_nesting(self):
        self.env.cr.execute(
            "UPDATE res_partner SET write_date = %s WHERE id = %s",
            (datetime.datetime(2024, 5, 6, 7, 8, 9), self.person.id),
        )
        self.person.invalidate_recordset(["write_date"])
        payload = self.config.prepare_outbound_data(self.person)
        self.assertEqual(
            payload,
            {
                "name": "Ann Sync",
                "contact": {"email": "ann@example.com", "phone": None, "function": "unknown"},
                "color": 4,
                "color_float": 4.0,
                "flags": {"company": False, "employee": False},
                "since": "2024-05-06",
                "updated_at": "2024-05-06T07:08:09Z",
                "company": {"id": self.company.id, "name": "Azure Sync", "country": "QZ"},
                "tags": {"ids": self.tags.ids, "names": ["Gold", "VIP"]},
                "children": [],
                "source": "odoo",
                "schema": 2,
            },
        )
        json.dumps(payload)  # JSON-ready as it is

    def test_several_records_give_a_list_and_empty_relations_give_null(self):
        payloads = self.config.prepare_outbound_data(self.person | self.company)
        self.assertIsInstance(payloads, list)
        self.assertEqual([p["name"] for p in payloads], ["Ann Sync", "Azure Sync"])
        self.assertEqual(payloads[1]["company"], {"id": None, "name": None, "country": None})
        self.assertEqual(payloads[1]["tags"], {"ids": [], "names": []})
        self.assertEqual(payloads[1]["children"], [self.person.id])

    def test_archived_related_records_are_left_out_as_the_orm_does(self):
        self.tags[0].active = False
        payload = self.config.prepare_outbound_data(self.person | self.company)
        self.assertEqual(payload[0]["tags"], {"ids": self.tags[1:].ids, "names": ["VIP"]})
        self.assertEqual(self.person.category_id, self.tags[1:])
        self.assertEqual(payload[1]["company"]["country"], None)

    def test_required_missing_names_record_and_field(self):
        self.config.mapping_ids.filtered(lambda line: line.source_path == "email").required = True
        self.person.email = False
        with self.assertRaisesRegex(ValidationError, r"Ann Sync .*res.partner,\d+.*'email'"):
            self.config.prepare_outbound_data(self.person)

    def test_wrong_model_is_refused(self):
        with self.assertRaisesRegex(ValidationError, "maps res.partner records, not res.country"):
            self.config.prepare_outbound_data(self.country)

    def test_mapping_reads_in_bulk(self):
        countries = self.env["res.country"].search([], limit=50)
        parents = self.env["res.partner"].create(
            [
                {"name": f"Parent {i}", "is_company": True, "country_id": country.id}
                for i, country in enumerate(countries)
            ]
        )
        tags = self.env["res.partner.category"].create([{"name": f"T{i}"} for i in range(50)])
        partners = self.env["res.partner"].create(
            [
                {
                    "name": f"Bulk {i}",
                    "parent_id": parents[i % len(parents)].id,
                    "category_id": [Command.set(tags[i : i + 2].ids)],
                }
                for i in range(50)
            ]
        )
        counts = []
        self.config.prepare_outbound_data(self.person)  # the reading user's rights, cached once
        for records in (partners[:1], partners):
            self.env.invalidate_all()
            records = self.env["res.partner"].browse(records.ids)
            before = self.cr.sql_log_count
            self.config.prepare_outbound_data(records)
            counts.append(self.cr.sql_log_count - before)
        self.assertEqual(counts[0], counts[1], "mapping 50 records costs as many queries as 1")

    def test_without_mapping_sends_id_and_name(self):
        self.config.mapping_ids.unlink()
        self.assertEqual(
            self.config.prepare_outbound_data(self.company),
            {"id": self.company.id, "display_name": "Azure Sync"},
        )

    def test_preview_shows_the_payload_of_the_picked_record(self):
        preview = Form(self.env["api.sync.preview"].with_context(default_config_id=self.config.id))
        preview.record_ref = self.person
        self.assertTrue(preview.in_domain)
        self.assertEqual(json.loads(preview.payload)["name"], "Ann Sync")
        self.config.domain = "[('is_company', '=', True)]"
        preview = Form(self.env["api.sync.preview"].with_context(default_config_id=self.config.id))
        preview.record_ref = self.person
        self.assertFalse(preview.in_domain)
        self.config.mapping_ids.filtered(lambda line: line.source_path == "email").required = True
        self.person.email = False
        preview = Form(self.env["api.sync.preview"].with_context(default_config_id=self.config.id))
        preview.record_ref = self.person
        self.assertIn("'email'", preview.error_message)
        self.assertFalse(preview.payload)
