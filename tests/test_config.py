import re

from odoo.tests import tagged

from .common import ApiSyncCase


@tagged("post_install", "-at_install")
class TestConfigValidation(ApiSyncCase):
    def test_endpoint_url_needs_http_scheme_and_host(self):
        for url in ("ftp://example.com/x", "example.com/hook", "http://", "https:///path"):
            with self.subTest(url=url), self.assertRefused("Endpoint URL"):
                self.config.endpoint_url = url
                self.config.flush_recordset()
        self.config.endpoint_url = "https://api.example.com:8443/hooks?x=1"
        self.config.flush_recordset()

    def test_limits_must_be_positive(self):
        for fname in ("timeout", "max_attempts", "backoff_base", "backoff_max", "batch_size"):
            label = re.escape(self.config._fields[fname].string)
            with self.subTest(field=fname), self.assertRefused(rf"{label}.*greater than zero"):
                self.config.write({fname: 0})
        with self.assertRefused("Backoff Max"):
            self.config.write({"backoff_base": 100, "backoff_max": 10})

    def test_domain_is_checked_against_the_model(self):
        with self.assertRefused(r"Domain .* res.partner.*no_such_field"):
            self.config.domain = "[('no_such_field', '=', 1)]"
        with self.assertRefused("Domain"):
            self.config.domain = "[('name', '=', "
        with self.assertRefused("Domain"):
            self.config.domain = "'name'"
        self.config.domain = "[('is_company', '=', True), ('create_uid', '=', uid)]"

    def test_domain_limits_what_is_sent(self):
        self.config.domain = "[('is_company', '=', True)]"
        person = self.env["res.partner"].create({"name": "Person"})
        self.assertEqual(self.config._filter_in_domain(self.company | person), self.company)

    def test_source_path_segments_are_checked(self):
        with self.assertRefused(r"model res.country has no field 'iso'"):
            self.add_line("country_id.iso", "country")
        with self.assertRefused(r"model res.partner has no field 'nope'"):
            self.add_line("nope", "x")
        with self.assertRefused(r"'child_ids' on model res.partner"):
            self.add_line("child_ids.name", "children")
        with self.assertRefused("Transform 'many2one_id'"):
            self.add_line("name", "name", "many2one_id")
        with self.assertRefused("needs a Source Path"):
            self.add_line(False, "x")
        with self.assertRefused("Constant needs a Default Value"):
            self.add_line(False, "x", "constant")

    def test_target_keys_must_not_clash(self):
        self.add_line("name", "name")
        with self.assertRefused("mapped twice"):
            self.add_line("email", "name")
        self.add_line("city", "address.city")
        with self.assertRefused("'address' is a value"):
            self.add_line("street", "address")

    def test_changing_the_model_revalidates_the_mapping(self):
        self.add_line("is_company", "company")
        with self.assertRefused("model res.country has no field 'is_company'"):
            self.config.model_id = self.env["ir.model"]._get("res.country")
