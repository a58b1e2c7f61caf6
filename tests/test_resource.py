import json
from unittest.mock import patch

from odoo import SUPERUSER_ID, api
from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from ..engine.receiver import Reply
from ..models import compat
from ..models.outbox import Outbox
from .delivery_common import DeliveryCase
from .rest_api import RestApi
from .test_mapping_lines import line

LOG_MODULE = "odoo.addons.api_sync.models.api_sync_log"


class ResourceCase(DeliveryCase):
    """The contacts configuration in resource mode, pointed at a REST API."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rest = RestApi()
        cls.addClassCleanup(cls.rest.close)
        cls.config.write({"endpoint_url": cls.rest.url, "payload_format": "resource"})

    def setUp(self):
        super().setUp()
        self.rest.reset()

    def create_partner(self, **values):
        return self.env["res.partner"].create({"name": "Ada Rest", "email": "ada@x.io", **values})

    def binding(self, partner):
        return self.env["api.sync.binding"].search(
            [("config_id", "=", self.config.id), ("res_id", "in", partner.ids)]
        )

    def sync(self, partner, operation):
        log = self.config.sync_record(partner, operation)
        self.run_jobs()
        return log

    def created(self, **values):
        """A partner created at the endpoint (bound to its new id)."""
        partner = self.create_partner(**values)
        log = self.sync(partner, "create")
        self.assertEqual(log.state, "done")
        self.rest.calls.clear()
        return partner


@tagged("post_install", "-at_install")
class TestResourceRequests(ResourceCase):
    def test_create_posts_the_object_and_binds_the_id_it_answers(self):
        partner = self.create_partner()
        log = self.sync(partner, "create")
        self.assertEqual(log.state, "done")
        self.assertEqual(self.rest.lines(), ["POST /contacts"])
        (call,) = self.rest.calls
        self.assertEqual(call.json, {"name": "Ada Rest", "email": "ada@x.io"}, "no envelope")
        self.assertEqual(call.headers["Idempotency-Key"], log.idempotency_key)
        self.assertEqual(call.headers["Content-Type"], "application/json")
        binding = self.binding(partner)
        self.assertEqual(binding.external_id, "c1")
        self.assertEqual(binding.synced_version, partner.write_date)
        self.assertTrue(binding.synced_at)
        self.assertEqual(log.request_line, f"POST {self.rest.url}")
        self.assertEqual(log.external_id, "c1")
        self.assertEqual(json.loads(log.request_preview), call.json)
        Status = self.env["api.sync.record.status"]
        self.assertEqual(
            Status.get_sync_status(partner, self.config)[partner.id]["external_id"], "c1"
        )
        self.assertEqual(Status.get_status_summary("res.partner", partner.id)["external_id"], "c1")
        status = Status.search([("config_id", "=", self.config.id), ("res_id", "in", partner.ids)])
        self.assertEqual(status.external_id, "c1")

    def test_root_key_wraps_the_object(self):
        self.config.root_key = "contact"
        log = self.sync(self.create_partner(), "create")
        self.assertEqual(
            self.rest.calls[0].json, {"contact": {"name": "Ada Rest", "email": "ada@x.io"}}
        )
        self.assertEqual(json.loads(log.request_preview), self.rest.calls[0].json)

    def test_update_and_delete_of_a_bound_record_use_its_external_id(self):
        partner = self.created()
        partner.email = "ada@new.io"
        self.sync(partner, "update")
        log = self.sync(partner, "delete")
        self.assertEqual(self.rest.lines(), ["PATCH /contacts/c1", "DELETE /contacts/c1"])
        self.assertEqual(self.rest.calls[0].json["email"], "ada@new.io")
        self.assertEqual(self.rest.calls[1].body, b"", "a delete has no body")
        self.assertNotIn("Content-Type", self.rest.calls[1].headers)
        self.assertEqual((log.state, log.response_status), ("done", 204))
        self.assertFalse(self.binding(partner), "removed once its delete was delivered")

    def test_a_record_deleted_without_a_delete_event_loses_its_external_id(self):
        partner = self.created()  # no deletion rule: its deletion sends nothing
        partner.unlink()
        self.env.flush_all()
        self.assertFalse(self.binding(partner))

    def test_a_record_deleted_outside_the_domain_loses_its_external_id(self):
        self.config.trigger_mode = "listener"
        partner = self.created()
        self.config.domain = "[('email', '!=', 'gone@x.io')]"
        partner.email = "gone@x.io"  # out of the domain: no event
        partner.unlink()
        self.env.flush_all()
        self.assertFalse(self.binding(partner))
        deletions = [("res_id", "=", partner.id), ("operation", "=", "delete")]
        self.assertFalse(self.env["api.sync.log"].search(deletions), "no delete event")

    def test_a_record_whose_delete_event_is_queued_keeps_its_external_id_until_sent(self):
        self.config.trigger_mode = "listener"
        partner = self.created()
        partner.unlink()
        self.env.flush_all()
        self.assertEqual(self.binding(partner).external_id, "c1", "the delete request needs it")
        self.run_jobs()
        self.assertEqual(self.rest.lines(), ["DELETE /contacts/c1"])
        self.assertFalse(self.binding(partner))

    def test_a_document_with_lines_is_one_object_with_a_list(self):
        self.add_line(**line("bank_ids", "accounts", "lines", [line("acc_number", "number")]))
        partner = self.create_partner()
        account = self.env["res.partner.bank"].create(
            {"partner_id": partner.id, "acc_number": "B1"}
        )
        self.sync(partner, "create")
        account.acc_number = "B2"
        self.sync(partner, "update")
        self.assertEqual(self.rest.lines(), ["POST /contacts", "PATCH /contacts/c1"])
        sent = [call.json["accounts"] for call in self.rest.calls]
        self.assertEqual(sent, [[{"number": "B1"}], [{"number": "B2"}]])

    def test_upsert_an_update_of_an_unbound_record_creates_it(self):
        partner = self.create_partner()
        log = self.sync(partner, "update")
        self.assertEqual((log.state, self.rest.lines()), ("done", ["POST /contacts"]))
        self.assertEqual(self.binding(partner).external_id, "c1")

    def test_upsert_a_create_of_a_bound_record_updates_it(self):
        partner = self.created()
        log = self.sync(partner, "create")
        self.assertEqual((log.state, self.rest.lines()), ("done", ["PATCH /contacts/c1"]))
        self.assertEqual(log.request_line, f"PATCH {self.rest.url}/c1")

    def test_events_of_one_job_see_the_binding_an_earlier_one_made(self):
        partner = self.create_partner()
        logs = self.config.sync_record(partner, "create")
        logs |= Outbox(self.env).queue(self.config, partner, "update", ["email"], merge=False)
        logs |= self.config.sync_record(partner, "delete")
        logs._enqueue()
        self.assertEqual(len(set(logs.mapped("job_uuid"))), 1)
        self.run_jobs()
        self.assertEqual(
            self.rest.lines(), ["POST /contacts", "PATCH /contacts/c1", "DELETE /contacts/c1"]
        )
        self.assertEqual(set(logs.mapped("state")), {"done"})

    def test_external_id_in_a_nested_body_or_the_location_header(self):
        self.config.external_id_path = "data.id"
        self.rest.id_style = "nested"
        nested = self.create_partner()
        self.sync(nested, "create")
        self.rest.id_style = "location"
        located = self.create_partner()
        self.sync(located, "create")
        self.assertEqual(
            (self.binding(nested).external_id, self.binding(located).external_id), ("c1", "c2")
        )

    @mute_logger(LOG_MODULE)
    def test_a_create_answered_without_an_id_fails_without_retrying(self):
        self.rest.id_style = "none"
        partner = self.create_partner()
        log = self.sync(partner, "create")
        self.assertEqual(
            (log.state, log.error_class, log.attempt_count), ("failed", "NoExternalId", 1)
        )
        self.assertIn("External ID Path", log.sudo().error_message)
        self.assertFalse(self.binding(partner))

    def test_update_answered_404_creates_the_object_again(self):
        partner = self.created()
        self.rest.objects.clear()  # removed at the endpoint
        log = self.sync(partner, "update")
        self.assertEqual(self.rest.lines(), ["PATCH /contacts/c1", "POST /contacts"])
        self.assertEqual((log.state, log.response_status), ("done", 201))
        self.assertEqual(self.binding(partner).external_id, "c2")
        keys = [call.headers["Idempotency-Key"] for call in self.rest.calls]
        key = log.idempotency_key
        self.assertEqual(keys, [key, f"{key}-create"], "an API ties a key to its first request")

    def test_a_group_reads_the_external_ids_of_its_records_once(self):
        partners = self.created() | self.created() | self.created()
        Binding = type(self.env["api.sync.binding"])
        logs = self.config.sync_record(partners, "update")
        with patch.object(
            Binding, "_external_id", autospec=True, wraps=Binding._external_id
        ) as one_by_one:
            self.run_jobs()
        self.assertEqual(set(logs.mapped("state")), {"done"})
        self.assertEqual(one_by_one.call_count, 0, "read for the whole group")
        self.assertEqual(
            self.rest.lines(), ["PATCH /contacts/c1", "PATCH /contacts/c2", "PATCH /contacts/c3"]
        )

    def test_each_attempt_keeps_its_request_line(self):
        partner = self.created()
        self.rest.script(Reply(500))
        log = self.config.sync_record(partner, "update")
        self.run_jobs(once=True)
        self.assertEqual((log.state, log.attempt_count), ("pending", 1))
        self.rest.objects.clear()  # then removed at the endpoint: created again
        self.run_jobs()
        self.assertEqual((log.state, log.attempt_count), ("done", 2))
        lines = log.attempt_ids.sorted("number").mapped("request_line")
        self.assertEqual(lines, [f"PATCH {self.rest.url}/c1", f"POST {self.rest.url}"])

    def test_an_update_without_external_id_creates_with_a_key_of_its_own(self):
        partner = self.create_partner()
        log = self.sync(partner, "update")
        (call,) = self.rest.calls
        self.assertEqual(call.headers["Idempotency-Key"], f"{log.idempotency_key}-create")
        self.assertEqual(call.headers["webhook-id"], f"{log.idempotency_key}-create")
        self.assertEqual(self.binding(partner).external_id, "c1")

    def test_update_answered_410_creates_it_again_and_the_endpoint_stays_healthy(self):
        partner = self.created()
        self.rest.objects.clear()
        self.rest.gone.add("c1")
        log = self.sync(partner, "update")
        self.assertEqual(self.rest.lines(), ["PATCH /contacts/c1", "POST /contacts"])
        self.assertEqual(log.state, "done")
        self.config.invalidate_recordset(["endpoint_state"])
        self.assertEqual(self.config.endpoint_state, "healthy", "the object is gone, not the API")

    @mute_logger(LOG_MODULE)
    def test_update_answered_404_fails_when_so_configured(self):
        self.config.on_remote_missing = "fail"
        partner = self.created()
        self.rest.objects.clear()
        log = self.sync(partner, "update")
        self.assertEqual(self.rest.lines(), ["PATCH /contacts/c1"])
        self.assertEqual((log.state, log.response_status, log.attempt_count), ("failed", 404, 1))
        self.assertIn("c1 is no longer at the endpoint", log.sudo().error_message)
        self.assertEqual(self.binding(partner).external_id, "c1", "kept for the admin to decide")

    def test_delete_answered_404_or_410_is_done(self):
        first, second = self.created(), self.created()
        self.rest.objects.clear()
        self.rest.gone.add("c2")
        logs = self.config.sync_record(first | second, "delete")
        self.run_jobs()
        self.assertEqual(self.rest.lines(), ["DELETE /contacts/c1", "DELETE /contacts/c2"])
        self.assertEqual(logs.mapped("state"), ["done", "done"])
        self.assertEqual(logs.mapped("response_status"), [404, 410])
        self.assertFalse(self.binding(first) | self.binding(second))
        self.config.invalidate_recordset(["endpoint_state"])
        self.assertEqual(self.config.endpoint_state, "healthy")

    def test_operations_not_sent(self):
        self.config.delete_method = "none"
        partner = self.created()
        log = self.sync(partner, "delete")
        self.assertEqual((log.state, log.error_class), ("cancelled", "NotSent"))
        self.assertIn("Delete Method", log.sudo().error_message)
        self.assertFalse(self.rest.calls)
        self.assertFalse(self.binding(partner))
        self.config.delete_method = "DELETE"
        never_created = self.create_partner()
        log = self.sync(never_created, "delete")
        self.assertEqual((log.state, log.error_class), ("cancelled", "NotSent"))
        self.assertIn("no external id", log.sudo().error_message)
        self.assertFalse(self.rest.calls)

    def test_methods_and_paths_with_field_values_url_encoded(self):
        self.add_line("ref", "code")
        self.config.write(
            {
                "create_method": "PUT",
                "create_path": "/by-code/{{code}}?parent={{parent_id.name}}&odoo={{id}}",
                "delete_path": "/by-code/{{code}}",
            }
        )
        partner = self.create_partner(ref="A/1 b", parent_id=self.company.id)
        self.rest.objects["by-code/A/1 b"] = {}
        self.sync(partner, "create")
        self.config.sync_record(partner, "delete")
        partner.unlink()  # the delete path's values were captured before
        self.run_jobs()
        self.assertEqual(
            self.rest.lines(),
            [
                f"PUT /contacts/by-code/A%2F1%20b?parent=Azure%20Sync&odoo={partner.id}",
                "DELETE /contacts/by-code/A%2F1%20b",
            ],
        )

    def test_paths_by_a_key_of_ours_need_no_external_id(self):
        self.add_line("ref", "code")
        by_code = "/by-code/{{code}}"
        self.config.write(
            {
                "create_method": "PUT",
                "create_path": by_code,
                "update_method": "PUT",
                "update_path": by_code,
                "delete_path": by_code,
            }
        )
        self.rest.id_style = "none"  # 204, no id
        self.rest.objects["by-code/R7"] = {}
        partner = self.create_partner(ref="R7")
        logs = self.sync(partner, "create") | self.sync(partner, "update")
        self.assertEqual(logs.mapped("state"), ["done", "done"])
        self.assertEqual(self.rest.lines(), ["PUT /contacts/by-code/R7"] * 2)
        self.assertFalse(self.binding(partner))

    @mute_logger(LOG_MODULE)
    def test_an_empty_value_fails_the_event_with_a_clear_message(self):
        self.config.create_path = "/by-ref/{{ref}}"
        partner = self.create_partner()
        log = self.sync(partner, "create")
        self.assertEqual(
            (log.state, log.error_class, log.attempt_count), ("failed", "MissingValue", 1)
        )
        self.assertIn("Create Path", log.failure_reason)
        self.assertIn("{{ref}} has no value", log.failure_reason)
        self.assertFalse(self.rest.calls)

    def test_a_mapping_line_a_path_uses_cannot_go_or_change_its_key(self):
        line = self.add_line("ref", "code")
        self.config.create_path = "/by-code/{{code}}"
        with self.assertRefused(r"Create Path .*unknown placeholder \{\{code\}\}"):
            line.unlink()
        with self.assertRefused(r"Create Path .*unknown placeholder \{\{code\}\}"):
            line.target_key = "reference"
        line.write({"transform": "string", "source_path": "email"})  # the key stays: fine
        self.assertEqual((line.source_path, line.target_key), ("email", "code"))

    def test_batch_sends_an_array_or_wraps_it(self):
        partners = self.create_partner() | self.create_partner(name="Bob Rest")
        self.config.send_batch(partners)
        self.run_jobs()
        self.config.root_key = "contacts"
        self.config.send_batch(partners)
        self.run_jobs()
        first, second = (call.json for call in self.rest.calls)
        self.assertEqual([item["name"] for item in first], ["Ada Rest", "Bob Rest"])
        self.assertEqual([item["name"] for item in second["contacts"]], ["Ada Rest", "Bob Rest"])
        self.assertEqual(self.rest.lines(), ["POST /contacts", "POST /contacts"])
        self.assertFalse(self.binding(partners), "a batch binds nothing")

    def test_extra_headers_are_sent_in_both_formats(self):
        self.config.request_header_ids = [(0, 0, {"name": "Accept-Version", "value": "2"})]
        self.sync(self.create_partner(), "create")
        self.config.payload_format = "envelope"
        self.sync(self.create_partner(), "create")
        self.assertEqual([call.headers["Accept-Version"] for call in self.rest.calls], ["2", "2"])

    def test_test_connection_creates_nothing(self):
        action = self.config.action_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(self.rest.lines(), ["GET /contacts"])
        self.assertFalse(self.rest.objects)

    def test_preview_shows_the_request_line_and_the_object(self):
        partner = self.created()
        preview = self.env["api.sync.preview"].create(
            {"config_id": self.config.id, "record_ref": f"res.partner,{partner.id}"}
        )
        self.assertEqual(preview.request_line, f"PATCH {self.rest.url}/c1")
        self.assertEqual(json.loads(preview.payload), {"name": "Ada Rest", "email": "ada@x.io"})

    def test_bindings_readable_by_users_removable_by_managers(self):
        partner = self.created()
        binding = self.binding(partner)
        user = self.env["res.users"].create(
            {
                "name": "Sync Reader",
                "login": "sync_reader_resource",
                compat.USER_GROUPS: [(6, 0, [self.env.ref("api_sync.group_api_sync_user").id])],
            }
        )
        self.assertEqual(binding.with_user(user).external_id, "c1")
        with self.assertRaises(AccessError):
            binding.with_user(user).unlink()
        binding.unlink()  # a manager: the next update creates the object again
        self.sync(partner, "update")
        self.assertEqual(self.rest.lines(), ["POST /contacts"])

    def test_bindings_in_the_records_action_menu(self):
        actions = self.env["ir.actions.act_window"].search(
            [
                ("res_model", "=", "api.sync.binding"),
                ("binding_model_id", "=", self.partner_model.id),
            ]
        )
        self.assertEqual(len(actions), 1)
        self.config.payload_format = "envelope"
        self.assertFalse(actions.exists(), "only for models of resource configurations")


@tagged("post_install", "-at_install")
class TestResourceResync(ResourceCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].set_param("api_sync.batch_settle_seconds", "0")
        cls.config.domain = "[('email', '=like', '%@resync.io')]"

    def test_full_resync_upserts(self):
        bound = self.created(email="b@resync.io")
        self.create_partner(email="n@resync.io")
        self.config.action_full_resync()
        self.run_jobs()
        self.assertCountEqual(self.rest.lines(), ["PATCH /contacts/c1", "POST /contacts"])
        self.assertEqual(self.binding(bound).external_id, "c1")


@tagged("post_install", "-at_install")
class TestResourceSettings(ResourceCase):
    def test_bad_templates_refused_at_save_naming_the_problem(self):
        cases = [
            (
                {"update_path": "/{{nickname}}"},
                r"Update Path .*unknown placeholder \{\{nickname\}\}",
            ),
            ({"delete_path": "/{{child_ids}}"}, r"Delete Path .*\{\{child_ids\}\} is a one2many"),
            ({"create_path": "/{{external_id}}"}, r"Create Path .*cannot use \{\{external_id\}\}"),
            ({"update_path": "/{{external_id}"}, "unmatched brace"),
            ({"update_path": "/{{1 + 1}}"}, "is not a placeholder"),
            ({"update_path": "https://evil.example/{{external_id}}"}, "start with / or"),
            ({"delete_path": "/a/../{{external_id}}"}, r"'\.\.' segment"),
            ({"update_path": "/x y/{{external_id}}"}, "a space"),
            ({"external_id_path": "data..id"}, "External ID Path .*empty segment"),
        ]
        for values, message in cases:
            with self.subTest(values=values), self.assertRefused(message):
                self.config.write(values)
        self.config.write({"update_path": "/{{email}}/{{parent_id.ref}}?odoo={{id}}"})

    def test_templates_checked_when_switching_to_resource(self):
        self.config.write({"payload_format": "envelope", "update_path": "/{{nickname}}"})
        with self.assertRefused("nickname"):
            self.config.payload_format = "resource"

    def test_headers_clashing_with_api_syncs_own_are_refused(self):
        Header = self.env["api.sync.request.header"]
        for name, value, message in [
            ("content-type", "text/plain", "Content-Type"),
            ("Authorization", "Bearer x", "Authorization"),
            ("Idempotency-Key", "k", "Idempotency-Key"),
            ("webhook-signature", "v1,x", "webhook-signature"),
            ("Bad Header", "1", "not a valid header name"),
            ("X-Ok", "a\nInjected: 1", "printable"),
        ]:
            with self.subTest(name=name), self.assertRefused(f"Extra Headers of .*{message}"):
                Header.create({"config_id": self.config.id, "name": name, "value": value})
        Header.create({"config_id": self.config.id, "name": "X-API-Key", "value": "public"})
        with self.assertRefused("X-API-Key"):
            self.config.write({"auth_type": "api_key", "api_key": "k"})
        with self.assertRefused("accept-version"):
            self.config.request_header_ids = [
                (0, 0, {"name": "Accept-Version", "value": "2"}),
                (0, 0, {"name": "accept-version", "value": "3"}),
            ]


@tagged("post_install", "-at_install")
class TestBindingSurvivesAFailedJob(TransactionCase):
    """A create whose response arrived is never sent again as a create, even when the job's
    transaction fails after it: the binding is committed on its own. Runs on committed data
    (removed afterwards) and real transactions."""

    _request_handler = DeliveryCase._request_handler

    def setUp(self):
        super().setUp()
        self.rest = RestApi()
        self.addCleanup(self.rest.close)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            config = env["api.sync.config"].create(
                {
                    "name": "Committed resource",
                    "model_id": env["ir.model"]._get_id("res.partner.category"),
                    "endpoint_url": self.rest.url,
                    "payload_format": "resource",
                    "company_id": False,
                    "mapping_ids": [(0, 0, {"source_path": "name", "target_key": "name"})],
                }
            )
            tag = env["res.partner.category"].create({"name": "Committed tag"})
            log = config.sync_record(tag, "create")
            cr.commit()  # pylint: disable=invalid-commit
            self.config_id, self.tag_id, self.log_id = config.id, tag.id, log.id
        self.addCleanup(self.remove_committed)

    def remove_committed(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            logs = env["api.sync.log"].search([("config_id", "=", self.config_id)])
            env["queue.job"].search([("uuid", "in", logs.mapped("job_uuid"))]).unlink()
            env["api.sync.config"].browse(self.config_id).unlink()
            env["res.partner.category"].browse(self.tag_id).unlink()

    def deliver(self, fail_after_response=False):
        """One delivery in a transaction of its own, failing after the response if asked."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            log = env["api.sync.log"].browse(self.log_id)
            if fail_after_response:
                with (
                    patch.object(
                        type(env["api.sync.endpoint.state"]),
                        "_record",
                        side_effect=RuntimeError("lost"),
                    ),
                    self.assertRaises(RuntimeError),
                ):
                    log._deliver()
                cr.rollback()
            else:
                log._deliver()
                cr.commit()  # pylint: disable=invalid-commit

    def test_the_retry_patches_the_bound_id(self):
        self.deliver(fail_after_response=True)
        self.assertEqual(self.rest.lines(), ["POST /contacts"])
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            log = env["api.sync.log"].browse(self.log_id)
            self.assertEqual((log.state, log.attempt_count), ("pending", 0), "rolled back")
            binding = env["api.sync.binding"].search([("config_id", "=", self.config_id)])
            self.assertEqual((binding.res_id, binding.external_id), (self.tag_id, "c1"))
        self.deliver()
        self.assertEqual(self.rest.lines(), ["POST /contacts", "PATCH /contacts/c1"])
        with self.registry.cursor() as cr:
            log = api.Environment(cr, SUPERUSER_ID, {})["api.sync.log"].browse(self.log_id)
            self.assertEqual(log.state, "done")
            event_id = log.idempotency_key
        keys = [call.headers["Idempotency-Key"] for call in self.rest.calls]
        self.assertEqual(
            keys,
            [event_id, f"{event_id}-update"],
            "the update: a key of its own, the same on retries",
        )
