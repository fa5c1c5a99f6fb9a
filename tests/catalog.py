"""The schema of a database as comparable rows, and a comparison that names the first difference."""

from __future__ import annotations

from typing import Any

import psycopg

# Every object kind the migrations issue asks to compare; invalid indexes and
# NOT VALID constraints show in their definitions, so they count as differences.
CATALOG = """
SELECT 'table' AS kind, c.relname AS object, c.relkind::text || ' '
    || coalesce(pg_get_partkeydef(c.oid), '') AS definition
FROM pg_class AS c
WHERE c.relnamespace = current_schema()::regnamespace
    AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
UNION ALL
SELECT 'column', c.relname || '.' || a.attname,
    format_type(a.atttypid, a.atttypmod)
    || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' NULL' END
    || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
    AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', con.conrelid::regclass || '.' || con.conname, pg_get_constraintdef(con.oid)
FROM pg_constraint AS con
WHERE con.connamespace = current_schema()::regnamespace
UNION ALL
SELECT 'index', i.indexrelid::regclass::text,
    pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE c.relnamespace = current_schema()::regnamespace
UNION ALL
SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
    pg_get_functiondef(p.oid)
FROM pg_proc AS p
WHERE p.pronamespace = current_schema()::regnamespace
UNION ALL
SELECT 'trigger', t.tgrelid::regclass || '.' || t.tgname, pg_get_triggerdef(t.oid)
FROM pg_trigger AS t
JOIN pg_class AS c ON c.oid = t.tgrelid
WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'statistics', s.stxname, pg_get_statisticsobjdef(s.oid)
FROM pg_statistic_ext AS s
WHERE s.stxnamespace = current_schema()::regnamespace
ORDER BY 1, 2
"""

Entry = tuple[str, str, str]


def catalog(url_or_conn: str | psycopg.Connection[Any]) -> list[Entry]:
    """Every table, column, constraint, index, function, trigger and statistics object."""
    if isinstance(url_or_conn, str):
        with psycopg.connect(url_or_conn, autocommit=True) as conn:
            return catalog(conn)
    return [(str(k), str(o), str(d)) for k, o, d in url_or_conn.execute(CATALOG).fetchall()]


def first_difference(expected: list[Entry], actual: list[Entry]) -> str | None:
    """The first object (in catalog order) that differs between two catalogs, described."""
    want = {(kind, name): definition for kind, name, definition in expected}
    have = {(kind, name): definition for kind, name, definition in actual}
    for key in sorted(want.keys() | have.keys()):
        kind, name = key
        if key not in have:
            return f"{kind} {name} is missing (expected: {want[key]})"
        if key not in want:
            return f"{kind} {name} is unexpected ({have[key]})"
        if want[key] != have[key]:
            return f"{kind} {name} differs: expected {want[key]!r}, got {have[key]!r}"
    return None


def assert_same_catalog(expected: list[Entry], actual: list[Entry]) -> None:
    difference = first_difference(expected, actual)
    assert difference is None, difference
