from engine import triggers
from engine.triggers import CHANGES, LINES, NO_OLD_VALUES

CREATE_TRIGGERS = ("on_create", "on_create_or_write", "on_stage_set")


def test_only_the_set_fields_someone_watches_are_compared():
    vals = {"name": "x", "email": "y", "comment": "z"}
    assert triggers.watched_in(vals, [{"name", "phone"}, {"email"}]) == {"name", "email"}
    assert triggers.watched_in(vals, [{"phone"}]) == set()
    assert triggers.watched_in(vals, iter([])) == set()


def test_changed_fields_compare_the_values_before_and_after():
    old = {1: {"name": "a", "email": "e"}, 2: {"name": "b", "email": "f"}, 3: {"name": "c"}}
    new = {1: {"name": "a", "email": "E"}, 2: {"name": "B", "email": "F"}, 3: {"name": "c"}}
    assert triggers.changed_fields(old, new) == {1: {"email"}, 2: {"name", "email"}, 3: set()}


def test_a_record_without_old_values_has_no_change():
    # a rule's records absent from base_automation's old_values: nothing is read for them
    assert triggers.changed_fields({1: {"name": "a"}}, {1: {"name": "b"}, 2: {}}) == {
        1: {"name"},
        2: set(),
    }


def test_updates_group_the_records_with_the_same_changed_watched_fields():
    changes = {1: {"name"}, 2: {"name", "comment"}, 3: {"comment"}, 4: {"name", "email"}}
    assert triggers.updates(changes, frozenset({"name", "email"})) == {
        frozenset({"name"}): [1, 2],
        frozenset({"name", "email"}): [4],
    }
    assert triggers.updates(changes, frozenset({"phone"})) == {}


def test_without_names_every_record_gets_an_update_with_what_changed():
    changes = {1: {"name"}, 2: set(), 3: {"name"}}
    assert triggers.updates(changes) == {frozenset({"name"}): [1, 3], frozenset(): [2]}


def test_lines_changed_are_those_with_a_watched_change_in_order():
    changes = {5: {"qty"}, 2: {"note"}, 9: {"order_id", "note"}, 1: set()}
    assert triggers.lines_changed(changes, frozenset({"qty", "order_id"})) == [5, 9]


def test_a_line_moved_to_another_document_leaves_its_old_one_too():
    old = {
        1: {"order_id": frozenset({"A"}), "qty": 1},
        2: {"order_id": frozenset({"B"}), "qty": 2},
        3: {"order_id": frozenset({"A"}), "qty": 3},
    }
    changes = {1: {"order_id"}, 2: {"qty"}, 3: {"order_id", "qty"}}
    assert triggers.old_holders(changes, old, "order_id") == frozenset({"A"})
    changes[2].add("order_id")
    assert triggers.old_holders(changes, old, "order_id") == frozenset({"A", "B"})


def test_no_move_no_old_holders():
    old = {1: {"qty": 1}}
    assert triggers.old_holders({1: {"qty"}}, old, "order_id") is None
    assert triggers.old_holders({1: {"qty"}}, old, None) is None  # a many2many has no link


def test_what_a_rule_trigger_sends():
    def op(trigger, old_values=NO_OLD_VALUES, lines=False):
        return triggers.rule_operation(trigger, old_values, CREATE_TRIGGERS, lines)

    assert op("on_create_or_write", None, lines=True) == LINES
    assert op("on_unlink", {1: {"name": "a"}}, lines=True) == LINES
    assert op("on_unlink") == "delete"
    assert op("on_create", None) == "create"
    assert op("on_stage_set", None) == "create"
    assert op("on_archive", None) == "update"  # not a creation trigger
    assert op("on_write", {1: {"name": "a"}}) == CHANGES
    assert op("on_write", {}) == "update"
    assert op("on_time") == "update"
    assert op(False) == "update"  # a context action, no rule


def test_a_save_rule_sends_only_relevant_changes():
    changes = {1: {"name", "comment"}, 2: {"comment"}, 3: set()}
    relevant = {"name", "email"}
    for trigger in triggers.SAVE_TRIGGERS:
        assert triggers.rule_updates(trigger, changes, relevant) == {frozenset({"name"}): [1]}
    assert triggers.rule_updates("on_state_set", changes, relevant) == {
        frozenset({"name", "comment"}): [1],
        frozenset({"comment"}): [2],
        frozenset(): [3],
    }
