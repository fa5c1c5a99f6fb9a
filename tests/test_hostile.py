"""Hostile input: search parameters and bulk-write fields from the internet.

Every search call either returns a valid page or raises ValidationError, never a
database error, and the tables are intact afterwards. Text the database cannot store
(NUL bytes) is a ValidationError naming the field before anything is sent.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import fields, replace
from typing import Any

import pytest
from helpers import diamond, scalar
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diamond_db import (
    Database,
    Diamond,
    DiamondInput,
    Page,
    QueryEvent,
    RawDiamondInput,
    ValidationError,
)
from diamond_db.testing import reset_database

SEARCH_PARAMETERS = (
    "shape",
    "carat_min",
    "carat_max",
    "colors",
    "clarities",
    "cuts",
    "polishes",
    "symmetries",
    "fluorescences",
    "certificate_labs",
    "lab_grown",
    "treated",
    "price_min",
    "price_max",
    "rating_min",
    "availability",
    "page",
    "limit",
    "sort_by",
    "sort_order",
    "cursor",
    "count",
    "count_cap",
)

NASTY_STRINGS = (
    "'",
    "''",
    '"',
    ";",
    "'; DROP TABLE diamonds; --",
    "x' OR '1'='1",
    "-- comment",
    "/* open",
    "*/",
    "\\",
    "\\'",
    "%",
    "%%",
    "%(limit)s",
    "%s",
    "$1",
    ":colors",
    "_",
    "\x00",
    "G\x00",
    "\ud800",  # a lone surrogate, as json.loads produces from "\ud800"
    "NaN",
    "nan",
    "Infinity",
    "-inf",
    "1e999",
    "9" * 400,
    "x" * 100_000,
    "１２",  # fullwidth digits  # noqa: RUF001
    "٣",
    "💎",
    "Ｄ",  # noqa: RUF001
    " ",
    "",
    "G",
    "VS1",
    "ROUND",
    "available",
    "carats",
    "created_at; DROP TABLE diamonds",
    "asc",
    "DESC",
    "id",
    "exact",
    "0",
    "-1",
    "1.5",
    "2147483648",
)

texts = st.one_of(st.sampled_from(NASTY_STRINGS), st.text(max_size=40))
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 10, 100, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
anything = st.one_of(
    texts,
    numbers,
    st.none(),
    st.lists(st.one_of(texts, numbers), max_size=4),
    st.dictionaries(texts, texts, max_size=2),
    st.just(b"G"),
)
# Mostly the right type with hostile content (so it reaches the database as a bound
# value), sometimes anything at all.
LIST_FILTERS = frozenset(
    [
        *("shape", "colors", "clarities", "cuts", "polishes", "symmetries"),
        *("fluorescences", "certificate_labs", "availability"),
    ]
)
NUMBER_FILTERS = frozenset(
    ["carat_min", "carat_max", "price_min", "price_max", "rating_min", "page", "limit", "count_cap"]
)


def _parameter(name: str) -> st.SearchStrategy[Any]:
    if name in LIST_FILTERS:
        typed = st.one_of(texts, st.lists(texts, max_size=4))
    elif name in NUMBER_FILTERS:
        typed = st.one_of(st.integers(0, 1000), st.decimals("0", "20", places=2), numbers, texts)
    elif name in ("lab_grown", "treated"):
        typed = st.one_of(st.booleans(), texts)
    else:
        typed = texts
    return st.one_of(typed, typed, typed, anything)


# One to three parameters per call, so that a fair share passes validation.
hostile_searches = st.lists(
    st.sampled_from(SEARCH_PARAMETERS), min_size=1, max_size=3, unique=True
).flatmap(lambda names: st.fixed_dictionaries({name: _parameter(name) for name in names}))
unknown_keys = st.dictionaries(
    st.sampled_from(["status", "id; DROP TABLE diamonds", "sort_by ", "deleted_at"]),
    anything,
    max_size=1,
).filter(lambda d: not d or hash(tuple(d)) % 5 == 0)  # an unknown key in a few calls


def _table_counts(url: str) -> dict[str, int]:
    tables = ("diamonds", "raw_diamonds_nivoda", "pricing_rules", "run_metadata")
    return {table: int(scalar(url, f"SELECT count(*) FROM {table}")) for table in tables}


def _assert_valid_page(page: object) -> None:
    assert isinstance(page, Page)
    assert all(isinstance(d, Diamond) and d.status == "active" for d in page.items)
    assert 1 <= page.limit <= 100
    assert len(page.items) <= page.limit
    assert page.page >= 1
    assert page.total is None or page.total >= len(page.items)


def test_hostile_search_parameters_give_a_page_or_a_validation_error(diamond_db_url: str) -> None:
    reset_database(diamond_db_url)
    with asyncio.Runner() as runner:
        db = Database(diamond_db_url, min_size=1, max_size=2)
        seeded = [diamond(f"h{i}", color="DEFGH"[i % 5]) for i in range(30)]
        assert runner.run(db.upsert_diamonds(seeded)) == 30
        before = _table_counts(diamond_db_url)
        first = runner.run(db.search_diamonds(limit=5))
        outcomes = {"page": 0, "invalid": 0}

        @settings(
            max_examples=2000,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        )
        @given(search=hostile_searches, unknown=unknown_keys, with_cursor=st.integers(0, 9))
        def search(search: dict[str, Any], unknown: dict[str, Any], with_cursor: int) -> None:
            search = {**search, **unknown}
            if with_cursor == 0 and "cursor" not in search:  # a real cursor, other filters
                search["cursor"] = first.next_cursor
            try:
                page = runner.run(db.search_diamonds(**search))
            except ValidationError:
                outcomes["invalid"] += 1
                return
            _assert_valid_page(page)
            outcomes["page"] += 1

        try:
            search()
        finally:
            runner.run(db.close())
    assert _table_counts(diamond_db_url) == before
    assert outcomes["page"] > 0
    assert outcomes["invalid"] > 0
    print(f"\nhostile searches: {outcomes}")


@pytest.mark.parametrize(
    "bad",
    [
        "\x00",
        "A\x00B",
        "\ud800",
    ],
)
async def test_unstorable_text_in_bulk_writes_is_named_before_sending(
    diamond_db_url: str, bad: str
) -> None:
    reset_database(diamond_db_url)
    events: list[QueryEvent] = []
    text_columns = [
        f.name
        for f in fields(DiamondInput)
        if f.name not in ("availability", "status") and "str" in str(f.type)
    ]
    async with Database(diamond_db_url, min_size=1, on_query=events.append) as db:
        for column in text_columns:
            rows = [diamond(f"s{i}") for i in range(3)]
            changes: dict[str, Any] = {column: f"ok{bad}"}
            rows[1] = replace(rows[1], **changes)
            with pytest.raises(ValidationError) as raised:
                await db.upsert_diamonds(rows)
            assert "[1]" in raised.value.argument, column
            assert column in str(raised.value), column
        for where, row in [
            ("payload", RawDiamondInput("r1", "o1", {"note": bad})),
            ("payload", RawDiamondInput("r1", "o1", {"deep": [{"x": bad}]})),
            ("payload", RawDiamondInput("r1", "o1", {f"key{bad}": 1})),
            ("supplier_stone_id", RawDiamondInput(f"r{bad}", "o1", {})),
            ("offer_id", RawDiamondInput("r1", f"o{bad}", {})),
        ]:
            rows_raw = [RawDiamondInput("r0", "o0", {}), row]
            with pytest.raises(ValidationError) as raised_raw:
                await db.upsert_raw_diamonds(uuid.uuid4(), rows_raw)
            assert "[1]" in raised_raw.value.argument
            assert where in str(raised_raw.value)
    assert events == []
    counts = _table_counts(diamond_db_url)
    assert counts["diamonds"] == 0
    assert counts["raw_diamonds_nivoda"] == 0
