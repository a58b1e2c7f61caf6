"""The cross-series check of the test command: api_sync's tables are the same on every tree.

A database moved from Odoo 18.0 to 19.0 keeps api_sync's configurations, logs and bindings with
no api_sync step only if both series make the same tables. ``schema`` reads, from a database
where the checkout was installed (the Odoo tests' database, before it is dropped), every api_sync
table's columns (name, type, nullability, default), indexes (name, definition) and constraints
(name, definition); ``compare`` lists what differs between two trees' databases.
"""

import re

# The tables api_sync creates: its models' and its many2many relations' (all named api_sync_*).
TABLES = r"api\_sync\_%"


def schema(dbname):
    """``{table: {"column name": ..., "index name": ..., "constraint name": ...}}``."""
    import psycopg2  # noqa: PLC0415 - only present in the Odoo virtualenv

    result = {}
    with psycopg2.connect(dbname=dbname) as connection, connection.cursor() as cursor:
        cursor.execute(
            """SELECT table_name, column_name, data_type, is_nullable, column_default
                 FROM information_schema.columns
                WHERE table_schema = 'public' AND table_name LIKE %s""",
            (TABLES,),
        )
        for table, column, data_type, nullable, default in cursor.fetchall():
            not_null = "" if nullable == "YES" else " NOT NULL"
            result.setdefault(table, {})[f"column {column}"] = (
                f"{data_type}{not_null}{f' DEFAULT {default}' if default else ''}"
            )
        cursor.execute(
            """SELECT tablename, indexname, indexdef FROM pg_indexes
                WHERE schemaname = 'public' AND tablename LIKE %s""",
            (TABLES,),
        )
        for table, index, definition in cursor.fetchall():
            result.setdefault(table, {})[f"index {index}"] = definition
        cursor.execute(
            """SELECT t.relname, c.conname, pg_get_constraintdef(c.oid)
                 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
                WHERE t.relnamespace = current_schema::regnamespace AND t.relname LIKE %s""",
            (TABLES,),
        )
        for table, constraint, definition in cursor.fetchall():
            result.setdefault(table, {})[f"constraint {constraint}"] = definition
    connection.close()
    return result


def compare(first, other):
    """``{table: [difference, ...]}`` over the tables of both (empty lists: the same)."""
    differences = {}
    for table in sorted(first.keys() | other.keys()):
        found = differences[table] = []
        if table not in other or table not in first:
            found.append(f"{table}: only on {'the first' if table in first else 'the other'} tree")
            continue
        for key in sorted(first[table].keys() | other[table].keys()):
            mine, theirs = first[table].get(key), other[table].get(key)
            if normalise(mine) != normalise(theirs):
                found.append(f"{table} {key}: {mine or '(none)'} | {theirs or '(none)'}")
    return differences


def normalise(definition):
    """A definition without the spaces PostgreSQL's versions or Odoo's writers differ in."""
    return definition and re.sub(r"\s+", " ", definition).strip()


def run_schema_check(schemas, max_reported=20):
    """Compare every tree's schema with the first's; returns (passed, failed, problems), one check
    per table and tree compared. ``schemas``: ``[(label, schema or None), ...]``."""
    (first_label, first), *others = schemas
    passed = failed = 0
    problems = []
    for label, other in others:
        if first is None or other is None:
            failed += 1
            problems.append(f"schema of {first_label if first is None else label} not read")
            continue
        differences = compare(first, other)
        changed = {table: found for table, found in differences.items() if found}
        passed, failed = passed + len(differences) - len(changed), failed + len(changed)
        print(
            f"[api_sync] schema check: {first_label} and {label}: {len(differences)} api_sync "
            f"tables compared (columns, indexes, constraints), {len(changed)} differ",
            flush=True,
        )
        for table, found in changed.items():
            problems.append(f"api_sync table {table} differs between {first_label} and {label}")
            for difference in found[:max_reported]:
                print(f"[api_sync] schema difference: {difference}")
    return passed, failed, problems
