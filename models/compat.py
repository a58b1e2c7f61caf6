"""What differs between the Odoo series api_sync runs on (18.0, 19.0), in one place.

Every other file is written in the form both series accept and takes from here what has no
common form: each shim says which series needs what. ``SERIES`` is the running one.
"""

import contextlib

from odoo import models, release
from odoo.fields import Command

SERIES = release.major_version  # "18.0" or "19.0"
V19 = release.version_info[0] >= 19

try:  # 18.0: odoo.models / 19.0: odoo.tools.constants
    from odoo.tools.constants import PREFETCH_MAX
except ImportError:  # 18.0
    from odoo.models import PREFETCH_MAX

try:  # 18.0: odoo.osv.expression / 19.0: odoo.orm.domains (odoo.osv is deprecated)
    from odoo.orm.domains import CONDITION_OPERATORS as TERM_OPERATORS
except ImportError:  # 18.0
    from odoo.osv.expression import TERM_OPERATORS

# 18.0: res.users.groups_id, ir.actions.*.groups_id / 19.0: group_ids (both renamed).
USER_GROUPS = ACTION_GROUPS = "group_ids" if V19 else "groups_id"
# 18.0: res.groups.users / 19.0: res.groups.user_ids.
GROUP_USERS = "user_ids" if V19 else "users"

__all__ = [
    "ACTION_GROUPS",
    "GROUP_USERS",
    "PREFETCH_MAX",
    "SERIES",
    "TERM_OPERATORS",
    "USER_GROUPS",
    "V19",
    "cache_insert_missing",
    "cached_values",
    "field_readable",
    "registry_test_mode",
    "run_time_based_rules",
    "setup_groups",
    "test_cursors_for_threads",
    "unique",
]


class _SqlConstraint:
    """18.0: a constraint is a ``(name, definition, message)`` of the class's
    ``_sql_constraints``; this adds itself there under its attribute's name."""

    def __init__(self, definition, message):
        self.definition, self.message = definition, message

    def __set_name__(self, owner, name):
        own = owner.__dict__.get("_sql_constraints", [])
        owner._sql_constraints = [*own, (name.removeprefix("_"), self.definition, self.message)]


def unique(columns, message):
    """A unique constraint on ``columns``, declared as ``_<name> = unique(...)`` in a model.

    Both series name it ``<table>_<name>`` in PostgreSQL, so a database keeps it across them.
    18.0: ``_sql_constraints`` (``_SqlConstraint``) / 19.0: ``models.Constraint`` (18.0's list
    is ignored there, with a warning).
    """
    definition = f"UNIQUE({columns})"
    if V19:
        return models.Constraint(definition, message)
    return _SqlConstraint(definition, message)


def cached_values(records, field):
    """The values of ``field`` in cache for ``records``, in order, up to the first missing.

    18.0: ``env.cache.get_until_miss`` / 19.0: the field's own cache (that method warns).
    """
    if not V19:
        return records.env.cache.get_until_miss(records, field)
    cache = field._get_cache(records.env)
    values = []
    for record_id in records._ids:
        if record_id not in cache:
            break
        values.append(cache[record_id])
    return values


def cache_insert_missing(records, field, values):
    """Put ``values`` of ``field`` in cache for those of ``records`` that have none.

    18.0: ``env.cache.insert_missing`` / 19.0: ``field._insert_cache`` (that method warns).
    """
    if V19:
        field._insert_cache(records, values)
    else:
        records.env.cache.insert_missing(records, field, values)


def field_readable(model, field):
    """Whether the user of ``model``'s environment may read ``field`` (its ``groups``).

    18.0: ``field.is_accessible(env)`` / 19.0: ``model._has_field_access(field, "read")``.
    """
    if V19:
        return model._has_field_access(field, "read")
    return field.is_accessible(model.env)


def setup_groups(env, category, groups, members):
    """Put ``groups`` (xml ids) under the module category ``category`` and the users of
    ``members`` (``{group xml id: [user xml id, ...]}``) in their groups: the data files declare
    the groups in the form both series accept.

    18.0: res.groups.category_id is the module category / 19.0: res.groups.privilege_id, a
    ``res.groups.privilege`` (made here, with an xml id of its own) under that category.
    """
    category = env.ref(category)
    records = [env.ref(xmlid) for xmlid in groups]
    if V19:
        module, _dot, name = category.get_external_id()[category.id].partition(".")
        xmlid = f"{module}.{name.replace('module_category_', 'privilege_')}"
        # loaded on every install and update, so that the update keeps its xml id
        privilege = env["res.groups.privilege"]._load_records(
            [
                {
                    "xml_id": xmlid,
                    "values": {
                        "name": category.name,
                        "sequence": category.sequence,
                        "category_id": category.id,
                    },
                }
            ],
            update=True,
        )
        values = {"privilege_id": privilege.id}
    else:
        values = {"category_id": category.id}
    for group in records:
        if any(group[field].id != value for field, value in values.items()):
            group.write(values)
    for group, users in members.items():
        env.ref(group).write({GROUP_USERS: [Command.link(env.ref(user).id) for user in users]})


def test_cursors_for_threads():
    """A context in which other threads of a test open test cursors (``registry.cursor()``),
    one at a time, as the workers of a server do.

    18.0: always (the registry's test lock is free) / 19.0: the test holds that lock but while
    it serves HTTP requests (``release_test_lock``).
    """
    if V19:
        from odoo.tests.common import release_test_lock  # noqa: PLC0415 - tests only

        return release_test_lock()
    return contextlib.nullcontext()


def run_time_based_rules(env):
    """Run the time-based automation rules once, in a test, as their scheduled action does.

    18.0: ``base.automation._check()`` (the scheduled action passes ``automatic=True``, which
    commits) / 19.0: the scheduled action itself (``_check`` refuses to run but automatically;
    the cron's cursor is a test cursor in registry test mode).
    """
    if V19:
        env.ref("base_automation.ir_cron_data_base_automation_check").method_direct_trigger()
    else:
        env["base.automation"]._check()


def registry_test_mode(case_class):
    """Make ``registry.cursor()`` return cursors on the test's transaction for the tests of
    ``case_class`` (from its ``setUpClass``).

    18.0: ``registry.enter_test_mode(cr)`` / 19.0: ``registry_enter_test_mode_cls()`` (the
    registry's own test mode is gone; the test case patches it).
    """
    if V19:
        case_class.registry_enter_test_mode_cls()
    else:
        case_class.registry.enter_test_mode(case_class.cr)
        case_class.addClassCleanup(case_class.registry.leave_test_mode)
