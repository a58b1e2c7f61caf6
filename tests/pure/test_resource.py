import pytest

from engine import resource, wire

METHODS = {"create": "POST", "update": "PATCH", "delete": "DELETE"}


def test_placeholders_in_order_without_repeats():
    assert resource.placeholders("/{{ external_id }}/x/{{partner_id.ref}}?v={{id}}&w={{id}}") == [
        "external_id",
        "partner_id.ref",
        "id",
    ]
    assert resource.placeholders("") == []
    assert resource.placeholders("/orders") == []


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{id}}", "start with / or ?"),
        ("/{{id}", "brace"),
        ("/{id}}", "brace"),
        ("/{{}}", "placeholder"),
        ("/{{a b}}", "placeholder"),
        ("/{{__import__('os')}}", "placeholder"),
        ("/{{a..b}}", "placeholder"),
        ("/x y", "space"),
        ("/a/../b", ".."),
        ("/a#frag", "character"),
        ("//evil.example/x", "//"),
        ("/https://evil.example", "://"),
        ("/100%zz", "%"),
        ("/a\\b", "character"),
    ],
)
def test_bad_templates_refused(template, problem):
    with pytest.raises(resource.TemplateError, match=problem):
        resource.placeholders(template)


def test_create_path_cannot_use_the_external_id():
    with pytest.raises(resource.TemplateError, match="external_id"):
        resource.check_template("/{{external_id}}", "create")
    assert resource.check_template("/{{external_id}}", "update") == ["external_id"]


def test_render_url_encodes_every_value():
    values = {"external_id": "a/b c?d", "id": 7, "partner_id.ref": "R&D#1"}
    rendered = resource.render("/{{external_id}}/{{partner_id.ref}}?odoo={{id}}", values)
    assert rendered == "/a%2Fb%20c%3Fd/R%26D%231?odoo=7"


@pytest.mark.parametrize("empty", [None, False, "", []])
def test_render_refuses_an_empty_value_naming_it(empty):
    with pytest.raises(resource.MissingValue, match="ref") as caught:
        resource.render("/{{ref}}", {"ref": empty})
    assert caught.value.name == "ref"


@pytest.mark.parametrize("value", [".", "..", {"a": 1}, [1, 2]])
def test_render_refuses_values_that_are_not_one_path_segment(value):
    with pytest.raises(resource.MissingValue):
        resource.render("/{{ref}}", {"ref": value})


def test_render_of_a_boolean_and_a_float():
    assert resource.render("/{{a}}/{{b}}", {"a": True, "b": 2.5}) == "/true/2.5"


@pytest.mark.parametrize(
    ("endpoint", "path", "url"),
    [
        ("https://api.example.com/v1/contacts", "", "https://api.example.com/v1/contacts"),
        ("https://api.example.com/v1/contacts", "/42", "https://api.example.com/v1/contacts/42"),
        ("https://api.example.com/v1/contacts/", "/42", "https://api.example.com/v1/contacts/42"),
        ("https://api.example.com", "/42", "https://api.example.com/42"),
        (
            "https://api.example.com/v1/contacts?key=1",
            "/42?expand=all",
            "https://api.example.com/v1/contacts/42?key=1&expand=all",
        ),
        ("https://api.example.com/c", "?id=42", "https://api.example.com/c?id=42"),
    ],
)
def test_join_url(endpoint, path, url):
    assert resource.join_url(endpoint, path) == url


def test_lookup_dotted_paths_through_objects_and_lists():
    body = {"data": {"id": 12, "items": [{"id": "x"}]}, "flag": True}
    assert resource.lookup(body, "data.id") == 12
    assert resource.lookup(body, "data.items.0.id") == "x"
    assert resource.lookup(body, "data.missing") is None
    assert resource.lookup(body, "data.items.7.id") is None
    assert resource.lookup("text", "id") is None


@pytest.mark.parametrize(
    ("body", "path", "location", "expected"),
    [
        ('{"id": 42}', "id", None, "42"),
        ('{"data": {"id": "c_1"}}', "data.id", "/contacts/9", "c_1"),
        ('{"data": {}}', "data.id", "https://crm.example.com/contacts/c%2077/", "c 77"),
        ("", "id", "/v1/contacts/abc?x=1", "abc"),
        ("not json", "id", None, None),
        ('{"id": true}', "id", None, None),
        ('{"id": {"nested": 1}}', "id", None, None),
        ('{"id": ""}', "id", "/", None),
        ('{"id": 5}', "", None, None),
    ],
)
def test_external_id_from_body_else_location(body, path, location, expected):
    assert resource.external_id(body, path, location) == expected


@pytest.mark.parametrize(
    ("operation", "bound", "kind"),
    [
        ("create", None, "create"),
        ("create", "42", "update"),  # already bound: sent as an update
        ("update", None, "create"),  # never created there: upsert
        ("update", "42", "update"),
        ("delete", "42", "delete"),
    ],
)
def test_plan_upserts(operation, bound, kind):
    step = resource.plan(operation, bound, METHODS, needs_external_id={"delete": True})
    assert (step.kind, step.method, step.skip) == (kind, METHODS[kind], None)


def test_plan_skips_what_is_not_sent():
    step = resource.plan("delete", None, METHODS, needs_external_id={"delete": True})
    assert step.skip == "unbound"
    step = resource.plan("delete", None, METHODS, needs_external_id={"delete": False})
    assert (step.kind, step.skip) == ("delete", None)
    step = resource.plan("update", "42", {**METHODS, "update": "none"}, needs_external_id={})
    assert (step.kind, step.skip) == ("update", "disabled")


def test_bodies():
    assert resource.body({"a": 1}, None) == {"a": 1}
    assert resource.body({"a": 1}, "customer") == {"customer": {"a": 1}}
    assert resource.body([{"a": 1}], "customers") == {"customers": [{"a": 1}]}
    assert resource.body([{"a": 1}], "") == [{"a": 1}]


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("accept-version", "2", None),
        ("X-Tenant", "acme corp", None),
        ("content-type", "text/plain", "Content-Type"),
        ("IDEMPOTENCY-KEY", "x", "Idempotency-Key"),
        ("Authorization", "Bearer x", "Authorization"),
        ("X-Api-Key", "k", "X-API-Key"),
        ("Webhook-Signature", "v1,x", "webhook-signature"),
        ("Host", "evil", "Host"),
        ("Content-Length", "3", "Content-Length"),
        ("Bad Name", "x", "not a valid header name"),
        ("X:Y", "x", "not a valid header name"),
        ("", "x", "not a valid header name"),
        ("X-Ok", "a\r\nInjected: 1", "value"),
        ("X-Ok", "", "value"),
        ("X-Ok", "caf\u00e9", "value"),
    ],
)
def test_extra_header_problems(name, value, problem):
    found = wire.extra_header_problem(name, value, taken={"X-API-Key"})
    if problem is None:
        assert found is None
    else:
        assert problem in found


def test_extra_headers_are_sent_but_never_replace_api_syncs_own():
    headers = wire.headers_for(
        "evt", b"{}", 1, "ua", extra={"Accept-Version": "2", "User-Agent": "x"}
    )
    assert headers["Accept-Version"] == "2"
    assert headers["User-Agent"] == "ua"
