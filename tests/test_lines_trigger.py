"""A change of a mapped line field sends an update of its document, in both trigger modes:
bank accounts (``res.partner.bank``) are the lines of contacts (``bank_ids``), and the contacts
of a company (``child_ids``) list their own bank accounts (two levels); tags (``category_id``)
are many2many lines."""

from odoo import Command
from odoo.tests import tagged

from .delivery_common import DeliveryCase, TriggerModeSetup
from .test_mapping_lines import line


class LineTriggerCases(TriggerModeSetup):
    """Cases run once per trigger mode (``mode``)."""

    @classmethod
    def map_before_mode(cls):
        accounts = line("bank_ids", "accounts", "lines", [line("acc_number", "number")])
        cls.add_line(**accounts, sequence=3)
        cls.add_line(
            **line("child_ids", "contacts", "lines", [line("name", "name"), accounts]), sequence=4
        )
        cls.add_line(**line("category_id", "tags", "lines", [line("name", "name")]), sequence=5)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ann, cls.bob = cls.env["res.partner"].create(
            [{"name": "Ann", "parent_id": cls.company.id}, {"name": "Bob"}]
        )
        cls.account = cls.env["res.partner.bank"].create(
            {"partner_id": cls.ann.id, "acc_number": "BE01"}
        )

    def setUp(self):
        super().setUp()
        self.env.cr.flush()  # the setup's own events are queued: tests look at theirs
        self.before = self.Log.search([]).ids

    def events(self):
        """``{record: (operation, changed fields)}`` of the events queued since the test began."""
        self.env.cr.flush()  # as at commit: events are queued just before it
        logs = self.Log.search([("id", "not in", self.before)], order="id")
        self.assertEqual(len(logs), len(set(logs.mapped("res_id"))), "one event per record")
        return {
            self.env[log.res_model].browse(log.res_id): (log.operation, log.changed_fields)
            for log in logs
        }

    def test_a_write_on_a_mapped_line_field_updates_the_documents(self):
        self.account.acc_number = "BE02"
        self.assertEqual(
            self.events(),
            {self.ann: ("update", "bank_ids"), self.company: ("update", "child_ids")},
        )
        self.run_jobs()
        sent = {
            request.json["record_id"]: request.json["data"] for request in self.receiver.received
        }
        self.assertEqual(sent[self.ann.id]["accounts"], [{"number": "BE02"}])
        self.assertEqual(
            sent[self.company.id]["contacts"], [{"name": "Ann", "accounts": [{"number": "BE02"}]}]
        )

    def test_a_write_of_an_unmapped_line_field_sends_nothing(self):
        self.account.acc_holder_name = "Someone"
        self.ann.function = "Buyer"
        self.assertEqual(self.events(), {})

    def test_creating_and_deleting_a_line_update_its_document(self):
        account = self.env["res.partner.bank"].create(
            {"partner_id": self.bob.id, "acc_number": "X1"}
        )
        self.assertEqual(self.events(), {self.bob: ("update", "bank_ids")})
        self.before = self.Log.search([]).ids
        account.unlink()
        self.assertEqual(self.events(), {self.bob: ("update", "bank_ids")})

    def test_archiving_a_line_updates_its_document(self):
        # an archived line leaves the document's list (some Odoo versions archive bank accounts
        # on unlink)
        account = self.env["res.partner.bank"].create(
            {"partner_id": self.bob.id, "acc_number": "A1"}
        )
        self.events()  # its creation's event
        self.before = self.Log.search([]).ids
        account.active = False
        self.assertEqual(self.events(), {self.bob: ("update", "bank_ids")})

    def test_editing_lines_in_the_document_form_sends_one_event(self):
        self.bob.write(
            {
                "email": "bob@x.io",
                "bank_ids": [
                    Command.create({"acc_number": "LU01"}),
                    Command.create({"acc_number": "LU02"}),
                ],
            }
        )
        self.assertEqual(self.events(), {self.bob: ("update", "bank_ids,email")})
        self.before = self.Log.search([]).ids
        first, second = self.bob.bank_ids.sorted("acc_number")
        self.bob.write(
            {
                "bank_ids": [
                    Command.update(first.id, {"acc_number": "LU03"}),
                    Command.delete(second.id),
                ]
            }
        )
        self.assertEqual(self.events(), {self.bob: ("update", "bank_ids")})

    def test_a_line_moved_to_another_document_updates_both(self):
        self.account.partner_id = self.bob
        self.assertEqual(
            self.events(),
            {
                self.ann: ("update", "bank_ids"),
                self.bob: ("update", "bank_ids"),
                self.company: ("update", "child_ids"),
            },
        )

    def test_a_contact_edited_as_a_line_updates_its_company(self):
        self.ann.name = "Ann B."
        self.assertEqual(
            self.events(),
            {self.ann: ("update", "name"), self.company: ("update", "child_ids")},
        )

    def test_a_document_deleted_after_its_lines_sends_its_deletion_only(self):
        bob_id = self.bob.id
        self.env["res.partner.bank"].create({"partner_id": bob_id, "acc_number": "X2"})
        self.env.cr.flush()
        self.before = self.Log.search([]).ids
        self.bob.bank_ids.unlink()
        self.bob.unlink()
        self.env.cr.flush()
        logs = self.Log.search([("id", "not in", self.before), ("res_id", "=", bob_id)])
        self.assertEqual(logs.mapped("operation"), ["delete"])

    def test_a_many2many_line_updates_every_document_listing_it(self):
        tag = self.env["res.partner.category"].create({"name": "Gold"})
        (self.ann | self.bob).category_id = tag
        self.assertEqual(
            self.events(),
            {self.ann: ("update", "category_id"), self.bob: ("update", "category_id")},
        )
        self.before = self.Log.search([]).ids
        tag.name = "Platinum"
        self.assertEqual(
            self.events(),
            {self.ann: ("update", "category_id"), self.bob: ("update", "category_id")},
        )

    def test_a_new_document_with_lines_sends_one_creation(self):
        carol = self.env["res.partner"].create(
            {"name": "Carol", "bank_ids": [Command.create({"acc_number": "NL01"})]}
        )
        self.assertEqual(self.events(), {carol: ("create", False)})


@tagged("post_install", "-at_install")
class TestLinesRuleMode(LineTriggerCases, DeliveryCase):
    mode = "rules"

    def test_rules_are_generated_on_the_line_models(self):
        rules = self.config.automation_ids
        line_rules = rules.filtered(lambda rule: rule.action_server_ids.api_sync_lines_path)
        self.assertEqual(
            sorted(
                (rule.model_id.model, rule.trigger, rule.action_server_ids.api_sync_lines_path)
                for rule in line_rules
            ),
            [
                ("res.partner", "on_create_or_write", "child_ids"),
                ("res.partner", "on_unlink", "child_ids"),
                ("res.partner.bank", "on_create_or_write", "bank_ids"),
                ("res.partner.bank", "on_create_or_write", "child_ids.bank_ids"),
                ("res.partner.bank", "on_unlink", "bank_ids"),
                ("res.partner.bank", "on_unlink", "child_ids.bank_ids"),
                ("res.partner.category", "on_create_or_write", "category_id"),
                ("res.partner.category", "on_unlink", "category_id"),
            ],
        )
        save = line_rules.filtered(
            lambda rule: (
                rule.action_server_ids.api_sync_lines_path == "child_ids"
                and rule.trigger == "on_create_or_write"
            )
        )
        self.assertEqual(
            sorted(save.trigger_field_ids.mapped("name")),
            ["active", "bank_ids", "name", "parent_id"],
        )
        self.assertEqual(self.config._generate_automation_rules(True, True, True), rules)

    def test_the_rules_of_removed_lines_send_nothing_more(self):
        self.config.mapping_ids.filtered(lambda mapped: mapped.target_key == "contacts").unlink()
        self.ann.name = "Ann C."
        self.assertEqual(self.events(), {self.ann: ("update", "name")})
        rules = self.config._generate_automation_rules(True, True, True)
        self.assertEqual(
            set(rules.action_server_ids.mapped("api_sync_lines_path")),
            {False, "bank_ids", "category_id"},
        )


@tagged("post_install", "-at_install")
class TestLinesListenerMode(LineTriggerCases, DeliveryCase):
    mode = "listener"

    def test_the_line_models_are_listened_to(self):
        self.assertEqual(
            self.config._listened_models(),
            frozenset({"res.partner", "res.partner.bank", "res.partner.category"}),
        )
