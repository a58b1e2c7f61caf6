"""Lines as nested lists: a Lines (list of objects) line maps the records of a one2many or
many2many field, each as an object built by its own Line Fields.

Documents are contacts (``res.partner``) and their lines are bank accounts
(``res.partner.bank``, one2many ``bank_ids``), nested under the company's contacts (``child_ids``)
for two levels: models of ``base``, so the suite needs no other module.
"""

import json

from odoo import Command
from odoo.tests import Form, tagged

from .common import ApiSyncCase


def line(source_path, target_key, transform="raw", children=(), **values):
    """The values of a mapping line (and of its Line Fields) for a create."""
    return {
        "source_path": source_path,
        "target_key": target_key,
        "transform": transform,
        "child_line_ids": [Command.create(child) for child in children],
        **values,
    }


ACCOUNTS = line(
    "bank_ids",
    "accounts",
    "lines",
    [
        line("acc_number", "number", "string", required=True, sequence=1),
        line("bank_id.name", "bank.name", "string", sequence=2),
        line("allow_out_payment", "trusted", "boolean", sequence=3),
        line("bank_id.city", "bank.city", "string", default_value="n/a", sequence=4),
    ],
)


class LinesCase(ApiSyncCase):
    """The contacts configuration mapping names and bank accounts as lines."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bank = cls.env["res.bank"].create({"name": "Sync Bank", "bic": "SYNCBEBB"})
        cls.add_line("name", "name", sequence=1)
        cls.lines = cls.add_line(**ACCOUNTS, sequence=2)

    @classmethod
    def accounts(cls, partner, *numbers):
        return cls.env["res.partner.bank"].create(
            [
                {"partner_id": partner.id, "acc_number": number, "bank_id": cls.bank.id}
                for number in numbers
            ]
        )


@tagged("post_install", "-at_install")
class TestMappingLines(LinesCase):
    def test_lines_become_a_list_of_objects(self):
        self.accounts(self.company, "BE01 0001", "BE02 0002")
        empty = self.env["res.partner"].create({"name": "No Bank"})
        payloads = self.config.prepare_outbound_data(self.company | empty)
        self.assertEqual(
            payloads[0],
            {
                "name": "Azure Sync",
                "accounts": [
                    {
                        "number": "BE01 0001",
                        "bank": {"name": "Sync Bank", "city": "n/a"},
                        "trusted": False,
                    },
                    {
                        "number": "BE02 0002",
                        "bank": {"name": "Sync Bank", "city": "n/a"},
                        "trusted": False,
                    },
                ],
            },
        )
        self.assertEqual(payloads[1], {"name": "No Bank", "accounts": []})

    def test_the_form_says_a_many2many_line_is_seen_when_its_document_is_saved(self):
        tags = self.add_line(**line("category_id", "tags", "lines", [line("name", "name")]))
        self.assertTrue(tags.lines_many2many)
        self.assertFalse(self.lines.lines_many2many, "a one2many has its link back")
        tag_ids = self.add_line("category_id", "tag_ids", "x2many_ids")
        self.assertFalse(tag_ids.lines_many2many, "not a Lines line")
        arch = tags.get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn("A many2many has no link back to the document", arch)

    def test_lines_nest_two_levels_deep(self):
        self.lines.unlink()
        self.add_line(
            **line(
                "child_ids",
                "contacts",
                "lines",
                [line("name", "name", sequence=1), {**ACCOUNTS, "sequence": 2}],
            ),
            sequence=2,
        )
        ann, bob = self.env["res.partner"].create(
            [
                {"name": "Ann", "parent_id": self.company.id},
                {"name": "Bob", "parent_id": self.company.id},
            ]
        )
        self.accounts(bob, "LU01")
        payload = self.config.prepare_outbound_data(self.company)
        self.assertEqual(
            payload["contacts"],
            [
                {"name": "Ann", "accounts": []},
                {
                    "name": "Bob",
                    "accounts": [
                        {
                            "number": "LU01",
                            "bank": {"name": "Sync Bank", "city": "n/a"},
                            "trusted": False,
                        }
                    ],
                },
            ],
        )
        self.assertIn(ann.id, self.company.child_ids.ids)

    def test_a_line_missing_a_required_value_names_the_record_and_the_line(self):
        self.lines.child_line_ids.filtered(
            lambda child: child.target_key == "bank.name"
        ).required = True
        self.accounts(self.company, "BE01")
        self.accounts(self.company, "BE02").bank_id = False
        with self.assertRaisesRegex(
            Exception,
            r"Azure Sync \(res.partner,\d+\) > accounts\[1\]: required field 'bank_id.name'",
        ):
            self.config.prepare_outbound_data(self.company)

    def test_bad_line_fields_are_refused_at_save(self):
        Mapping = self.env["api.sync.field.mapping"]
        # a path of the line model, not of the document's
        with self.assertRefused(r"model res.partner.bank has no field 'email'"):
            Mapping.create(
                {"parent_line_id": self.lines.id, "source_path": "email", "target_key": "e"}
            )
        with self.assertRefused(r"Transform 'lines' cannot be applied to 'name', a char field"):
            self.add_line(**line("name", "names", "lines", [line("name", "n")]))
        with self.assertRefused(r"'contacts' \(Lines\) needs Line Fields"):
            self.add_line(**line("child_ids", "contacts", "lines"))
        with self.assertRefused(r"'accounts' \(Lines\) needs Line Fields"):
            self.lines.child_line_ids.unlink()
        with self.assertRefused(
            r"'accounts' has Line Fields \(number, bank.name, trusted, bank.city\)"
        ):
            self.lines.transform = "x2many_ids"
        # the second level is checked against its own model
        with self.assertRefused(r"model res.partner.bank has no field 'phone'"):
            self.add_line(
                **line(
                    "child_ids",
                    "contacts",
                    "lines",
                    [line("bank_ids", "b", "lines", [line("phone", "p")])],
                )
            )
        # a path change that the Line Fields no longer fit
        with self.assertRefused(r"model res.partner.category has no field 'acc_number'"):
            self.lines.source_path = "category_id"
        with self.assertRefused(r"Line Fields of 'accounts'.*'number' is mapped twice"):
            Mapping.create(
                {"parent_line_id": self.lines.id, "source_path": "id", "target_key": "number"}
            )

    def test_mapping_reads_lines_in_bulk(self):
        """Documents of 10 lines: 500 cost about as many queries as 50."""
        partners = self.env["res.partner"].create(
            [{"name": f"Bulk {i}", "is_company": True} for i in range(500)]
        )
        self.env["res.partner.bank"].create(
            [
                {
                    "partner_id": partner.id,
                    "acc_number": f"{partner.id}-{i}",
                    "bank_id": self.bank.id,
                }
                for partner in partners
                for i in range(10)
            ]
        )
        self.config.prepare_outbound_data(self.company)  # the reading user's rights, cached once
        counts = []
        for documents in (partners[:50], partners):
            self.env.invalidate_all()
            documents = self.env["res.partner"].browse(documents.ids)
            before = self.cr.sql_log_count
            payloads = self.config.prepare_outbound_data(documents)
            counts.append(self.cr.sql_log_count - before)
            self.assertEqual(len(payloads[-1]["accounts"]), 10)
        self.assertLessEqual(counts[1], counts[0] + 6, f"queries for 50 and 500: {counts}")

    def test_preview_shows_the_lines(self):
        self.accounts(self.company, "BE01")
        preview = Form(self.env["api.sync.preview"].with_context(default_config_id=self.config.id))
        preview.record_ref = self.company
        self.assertEqual(json.loads(preview.payload)["accounts"][0]["number"], "BE01")

    def test_a_copy_has_its_own_line_fields(self):
        copy = self.config.copy()
        copied = copy.mapping_ids.filtered(lambda mapped: mapped.transform == "lines")
        self.assertEqual(
            copied.child_line_ids.mapped("target_key"),
            self.lines.child_line_ids.mapped("target_key"),
        )
        self.assertEqual(copied.child_line_ids.config_id, copy)
        self.assertNotEqual(copied.child_line_ids, self.lines.child_line_ids)
        self.assertEqual(len(copy.mapping_ids), 2, "Line Fields are not lines of the configuration")
        self.accounts(self.company, "BE01")
        self.assertEqual(
            copy.prepare_outbound_data(self.company),
            self.config.prepare_outbound_data(self.company),
        )

    def test_line_fields_are_edited_in_the_form_of_their_line(self):
        form = Form(self.config)
        with form.mapping_ids.new() as mapped:
            mapped.source_path = "category_id"
            mapped.transform = "lines"
            mapped.target_key = "tags"
            with mapped.child_line_ids.new() as child:
                self.assertEqual(child.model_name, "res.partner.category")
                child.source_path = "color"
                self.assertEqual(child.transform, "integer", "suggested for the line model's field")
                child.target_key = "color"
        form.save()
        tags = self.config.mapping_ids.filtered(lambda mapped: mapped.target_key == "tags")
        self.assertEqual(tags.child_line_ids.mapped("source_path"), ["color"])
        self.company.category_id = self.env["res.partner.category"].create(
            {"name": "T", "color": 3}
        )
        self.assertEqual(self.config.prepare_outbound_data(self.company)["tags"], [{"color": 3}])
