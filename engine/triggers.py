"""What a change of records sends, for the built-in listener and the automation rules alike:
which records get an update and with which changed fields, which documents a moved line
leaves, and what operation a rule's trigger sends.

Values are ``{record id: {field name: value}}`` and are only compared with ``!=``: Odoo passes
record values (recordsets for relational fields, united with ``|``), the tests plain ones.
"""

from functools import reduce
from operator import or_

# what a rule's action sends besides create, update and delete
LINES = "lines"  # an update of the documents of the lines it runs on
CHANGES = "changes"  # updates carrying the fields that changed
# base_automation triggers that fire on any save: an update is sent only when a relevant field
# (mapped, or watched by the rule) changed
SAVE_TRIGGERS = ("on_write", "on_create_or_write")
# ``old_values`` absent from a rule's context (``None`` there means records being created)
NO_OLD_VALUES = object()


def watched_in(vals, name_sets):
    """The field names among ``vals`` (what a save sets) that one of ``name_sets`` watches."""
    return {name for names in name_sets for name in names if name in vals}


def changed_fields(old_values, new_values):
    """``{record id: names whose value changed}`` for every record of ``new_values``; both are
    the values of the same names before and after the change."""
    return {
        record_id: {name for name, value in new.items() if value != old_values[record_id][name]}
        for record_id, new in new_values.items()
    }


def updates(changes, names=None):
    """``{frozenset of changed names: [record ids]}``: the records that get an update, those
    with the same changed fields together, in the order of ``changes``. With ``names`` (what
    a listener watches, what matters to a save rule) only those count and a record with none
    of them changed gets none; without, every record gets one (an empty set: no field named)."""
    grouped = {}
    for record_id, changed in changes.items():
        if names is not None:
            changed = changed & names
            if not changed:
                continue
        grouped.setdefault(frozenset(changed), []).append(record_id)
    return grouped


def lines_changed(changes, names):
    """Ids of the records (lines) with a change of one of ``names``, in the order of
    ``changes``."""
    return [record_id for record_id, changed in changes.items() if changed & names]


def old_holders(changes, old_values, link):
    """What the lines whose ``link`` changed were linked to before, united (the documents a
    line moved to another one leaves: they are updated too), or ``None``."""
    holders = [
        old_values[record_id][link] for record_id, changed in changes.items() if link in changed
    ]
    return reduce(or_, holders) if holders else None


def rule_operation(trigger, old_values, create_triggers, lines=False):
    """What a rule's action on a model's records sends: ``LINES`` (the action runs on lines),
    ``delete``, ``create``, ``CHANGES`` or ``update`` (time-based triggers, context actions).

    ``trigger`` is the rule's trigger (``False`` without a rule), ``old_values`` the
    ``old_values`` of base_automation's context (``None`` for records being created,
    ``NO_OLD_VALUES`` when absent), ``create_triggers`` base_automation's triggers that also
    fire on creation."""
    if lines:
        return LINES
    if trigger == "on_unlink":
        return "delete"
    if old_values is None and trigger in create_triggers:
        return "create"
    if old_values and old_values is not NO_OLD_VALUES:
        return CHANGES
    return "update"


def rule_updates(trigger, changes, relevant):
    """``updates`` of a rule's records: a save trigger sends only the changes of ``relevant``
    fields (mapped or watched by the rule), other triggers every record with what changed."""
    return updates(changes, relevant if trigger in SAVE_TRIGGERS else None)
