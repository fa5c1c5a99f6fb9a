"""JSONB parsed by orjson gives exactly what json.loads gives, big integers included."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from helpers import diamond
from hypothesis import given, settings
from hypothesis import strategies as st

from diamond_db import Database
from diamond_db._json import loads

# Integers on both sides of 64 bits, floats, strings with long digit runs, nesting.
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.from_regex(r"[0-9]{18,24}", fullmatch=True)
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_DOCUMENTS)
def test_loads_equals_json_loads(document: Any) -> None:
    text = json.dumps(document)
    assert _same(loads(text.encode()), json.loads(text))


def test_loads_keeps_what_orjson_alone_would_round_or_refuse() -> None:
    for text in (
        '{"stone": 123456789012345678901234}',  # beyond 64 bits: orjson gives a float
        "[18446744073709551616, -9223372036854775809]",  # 19 digits suffice below zero
        "[1e400]",  # orjson refuses a number beyond a double's range
        '{"id": "12345678901234567890123"}',
    ):
        assert _same(loads(text.encode()), json.loads(text))


async def test_a_diamond_reads_back_its_big_integers_exactly(
    diamond_db: Database, diamond_db_url: str
) -> None:
    big = 123456789012345678901234567
    measurements = {"length": 6.4, "serial": big, "nested": [big, -big, 0.1]}
    await diamond_db.upsert_diamonds([diamond("big", measurements=measurements)])
    with psycopg.connect(diamond_db_url) as conn:  # what the database holds
        row = conn.execute(
            b"SELECT id, measurements->>'serial' FROM diamonds WHERE supplier_stone_id = 'big'"
        ).fetchone()
    assert row is not None
    assert row[1] == str(big)
    got = await diamond_db.get_diamond_by_id(row[0])
    assert got is not None
    assert _same(got.measurements, measurements)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 would hide a float)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
