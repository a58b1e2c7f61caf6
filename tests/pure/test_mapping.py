import datetime

import pytest

from engine import mapping
from engine.mapping import ConfigurationError, MappingError, MappingLine, Relation

FIELDS = {
    "res.partner": {
        "name": ("char", None),
        "active": ("boolean", None),
        "parent_id": ("many2one", "res.partner"),
        "country_id": ("many2one", "res.country"),
        "category_id": ("many2many", "res.partner.category"),
        "child_ids": ("one2many", "res.partner"),
        "date": ("date", None),
        "write_date": ("datetime", None),
        "color": ("integer", None),
        "ref_doc": ("reference", None),
    },
    "res.country": {
        "code": ("char", None),
        "name": ("char", None),
        "state_ids": ("one2many", "res.country.state"),
    },
}


def line(transform, field_type=None, target="value", **kwargs):
    return MappingLine(("f",), target, transform, field_type, **kwargs)


@pytest.mark.parametrize(
    ("transform", "field_type", "value", "expected"),
    [
        ("raw", "char", "Azure", "Azure"),
        ("raw", "char", False, None),
        ("raw", "integer", 0, 0),
        ("raw", "boolean", False, False),
        ("raw", "many2one", Relation(7, "Azure"), 7),
        ("raw", "many2one", None, None),
        ("raw", "many2many", [Relation(1), Relation(2)], [1, 2]),
        ("raw", "many2many", [], []),
        ("raw", "date", datetime.date(2024, 2, 29), "2024-02-29"),
        ("raw", "datetime", datetime.datetime(2024, 2, 29, 13, 5, 7), "2024-02-29T13:05:07Z"),
        ("string", "integer", 42, "42"),
        ("string", "float", 1.5, "1.5"),
        ("string", "boolean", True, "true"),
        ("string", "boolean", False, "false"),
        ("string", "many2one", Relation(7, "Azure"), "Azure"),
        ("string", "char", False, None),
        ("integer", "char", " 12 ", 12),
        ("integer", "float", 3.9, 3),
        ("integer", "char", False, None),
        ("float", "char", "2.50", 2.5),
        ("float", "integer", 3, 3.0),
        ("boolean", "char", "no", False),
        ("boolean", "char", "yes", True),
        ("boolean", "char", False, False),
        ("boolean", "integer", 0, False),
        ("date", "datetime", datetime.datetime(2024, 1, 2, 23, 59), "2024-01-02"),
        ("date", "date", False, None),
        ("datetime", "date", datetime.date(2024, 1, 2), "2024-01-02T00:00:00Z"),
        (
            "datetime",
            "datetime",
            datetime.datetime(
                2024, 1, 2, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            "2024-01-02T10:00:00Z",
        ),
        ("datetime", "datetime", False, None),
        ("many2one_id", "many2one", Relation(3, "X"), 3),
        ("many2one_id", "many2one", None, None),
        ("many2one_name", "many2one", Relation(3, "X"), "X"),
        ("many2one_name", "many2one", None, None),
        ("x2many_ids", "one2many", [Relation(4, "a"), Relation(5, "b")], [4, 5]),
        ("x2many_ids", "one2many", [], []),
        ("x2many_names", "many2many", [Relation(4, "a"), Relation(5, "b")], ["a", "b"]),
        ("x2many_names", "many2many", [], []),
    ],
)
def test_transforms(transform, field_type, value, expected):
    result = mapping.convert(line(transform, field_type), value)
    assert result == expected
    assert type(result) is type(expected)


def test_every_transform_is_covered_by_a_converter_or_constant():
    assert mapping.TRANSFORM_KEYS == set(mapping.CONVERTERS) | {"constant", "lines"}


def test_default_replaces_empty_values_only():
    with_default = line("raw", "char", default="n/a")
    assert mapping.convert(with_default, False) == "n/a"
    assert mapping.convert(with_default, "set") == "set"


def test_constant_is_the_parsed_default():
    assert mapping.convert(line("constant", default=mapping.parse_default("42")), None) == 42
    assert mapping.convert(line("constant", default=mapping.parse_default("odoo")), None) == "odoo"
    assert mapping.parse_default('{"a": [1, true]}') == {"a": [1, True]}
    assert mapping.parse_default("") is None


def test_required_value_missing_names_record_and_field():
    required = MappingLine(("email",), "contact.email", "raw", "char", required=True, label="email")
    with pytest.raises(MappingError, match=r"Azure \(res.partner,7\).*'email'.*contact.email"):
        mapping.convert(required, False, "Azure (res.partner,7)")


def test_unconvertible_value_names_record_and_path():
    with pytest.raises(MappingError, match=r"Azure.*'f'.*integer"):
        mapping.convert(line("integer", "char"), "abc", "Azure")


def test_nested_payload_from_dotted_keys():
    lines = [
        MappingLine(("name",), "name", "raw", "char"),
        MappingLine(("country_id", "code"), "address.country", "raw", "char"),
        MappingLine(("city",), "address.city", "raw", "char"),
        MappingLine(("zip",), "address.geo.zip", "raw", "char"),
    ]
    payload = mapping.build_payload(lines, ["Azure", "BE", False, "1000"])
    assert payload == {
        "name": "Azure",
        "address": {"country": "BE", "city": None, "geo": {"zip": "1000"}},
    }


def test_source_path_validation_names_segment_and_model():
    fields_of = FIELDS.__getitem__
    assert (
        mapping.validate_source_path("parent_id.country_id.code", "res.partner", fields_of, "raw")
        == "char"
    )
    with pytest.raises(ConfigurationError, match=r"model res.country has no field 'iso'"):
        mapping.validate_source_path("parent_id.country_id.iso", "res.partner", fields_of, "raw")
    with pytest.raises(ConfigurationError, match=r"'child_ids' on model res.partner is a one2many"):
        mapping.validate_source_path("child_ids.name", "res.partner", fields_of, "raw")
    with pytest.raises(ConfigurationError, match="empty segment"):
        mapping.validate_source_path("parent_id..name", "res.partner", fields_of, "raw")


def test_fields_without_a_json_form_are_refused():
    with pytest.raises(ConfigurationError, match="reference field, which has no JSON form"):
        mapping.validate_source_path("ref_doc", "res.partner", FIELDS.__getitem__, "raw")


def test_transform_must_fit_the_field_type():
    fields_of = FIELDS.__getitem__
    with pytest.raises(ConfigurationError, match="many2one_id") as info:
        mapping.validate_source_path("name", "res.partner", fields_of, "many2one_id")
    assert info.value.field == "transform"
    with pytest.raises(ConfigurationError, match="x2many_names"):
        mapping.validate_source_path("parent_id", "res.partner", fields_of, "x2many_names")
    assert (
        mapping.validate_source_path("category_id", "res.partner", fields_of, "x2many_names")
        == "many2many"
    )


def test_target_keys_validation():
    mapping.validate_target_keys(["a", "b.c", "b.d"])
    with pytest.raises(ConfigurationError, match="mapped twice"):
        mapping.validate_target_keys(["a", "a"])
    with pytest.raises(ConfigurationError, match="'b' is a value"):
        mapping.validate_target_keys(["b", "b.c"])
    with pytest.raises(ConfigurationError, match="empty segment"):
        mapping.validate_target_keys(["a."])


ORDER_LINES = MappingLine(
    ("order_line",),
    "lines",
    "lines",
    "one2many",
    children=(
        MappingLine(("product_id", "default_code"), "sku", "string", "char", required=True),
        MappingLine(("product_uom_qty",), "quantity", "float", "float"),
        MappingLine(("price_unit",), "price.unit", "raw", "float", default=0),
    ),
)


def test_lines_become_a_list_of_objects_built_by_the_child_lines():
    lines = [MappingLine(("name",), "name", "raw", "char"), ORDER_LINES]
    payload = mapping.build_payload(lines, ["SO1", [["A1", 2, 9.5], ["B2", "3", False]]])
    assert payload == {
        "name": "SO1",
        "lines": [
            {"sku": "A1", "quantity": 2.0, "price": {"unit": 9.5}},
            {"sku": "B2", "quantity": 3.0, "price": {"unit": 0}},
        ],
    }
    assert mapping.build_payload(lines, ["SO2", []]) == {"name": "SO2", "lines": []}


def test_lines_nest_two_levels_deep():
    states = MappingLine(
        ("state_ids",),
        "states",
        "lines",
        "one2many",
        children=(MappingLine(("code",), "code", "raw", "char"),),
    )
    countries = MappingLine(
        ("country_ids",),
        "countries",
        "lines",
        "many2many",
        children=(MappingLine(("code",), "code", "raw", "char"), states),
    )
    payload = mapping.build_payload([countries], [[["BE", [["BRU"], ["VLG"]]], ["LU", []]]])
    assert payload == {
        "countries": [
            {"code": "BE", "states": [{"code": "BRU"}, {"code": "VLG"}]},
            {"code": "LU", "states": []},
        ]
    }


def test_a_line_object_missing_a_required_value_is_named_by_its_position():
    with pytest.raises(MappingError, match=r"SO1 \(sale.order,3\) > lines\[1\]: .*'sku'"):
        mapping.build_payload(
            [ORDER_LINES], [[["A1", 1, 1.0], [None, 1, 1.0]]], "SO1 (sale.order,3)"
        )
    required = MappingLine(("order_line",), "lines", "lines", "one2many", required=True)
    with pytest.raises(MappingError, match="required field 'order_line'"):
        mapping.convert(required, [])


def test_lines_accept_x2many_fields_only_and_name_their_model():
    fields_of = FIELDS.__getitem__
    assert (
        mapping.validate_source_path("child_ids", "res.partner", fields_of, "lines") == "one2many"
    )
    assert mapping.source_comodel("child_ids", "res.partner", fields_of) == "res.partner"
    assert mapping.source_comodel("parent_id.country_id", "res.partner", fields_of) == "res.country"
    assert mapping.source_comodel("name", "res.partner", fields_of) is None
    with pytest.raises(ConfigurationError, match="Transform 'lines' cannot be applied") as info:
        mapping.validate_source_path("parent_id", "res.partner", fields_of, "lines")
    assert info.value.field == "transform"
