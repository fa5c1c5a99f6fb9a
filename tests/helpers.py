"""Helpers shared by the tests: raw reads behind the library's back, and diamonds to write.

Test modules import it as `helpers` (pytest's default rootdir-relative import mode puts
tests/ on sys.path, as it does for the test modules themselves).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from diamond_db import DiamondInput


def fetch(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a raw query, read over a fresh connection (not through the library)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def fetch_dicts(url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    """`fetch`, each row a dict keyed by column name."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def scalar(url: str, sql: str, *params: Any) -> Any:
    """The first value of the first row of a raw query (there must be a row)."""
    rows = fetch(url, sql, *params)
    assert rows, "the query returned no row"
    return rows[0][0]


def diamond(stone: str, **changes: Any) -> DiamondInput:
    """A valid supplier diamond keyed by `stone` (offer `offer-<stone>`), with `changes` applied."""
    base = DiamondInput(
        supplier_stone_id=stone,
        offer_id=f"offer-{stone}",
        shape="ROUND",
        carats=Decimal("1.01"),
        supplier_price_cents=100_000,
        price_per_carat_cents=99_010,
        color="G",
        clarity="VS1",
        certificate_lab="GIA",
        measurements={"length": 6.4, "width": 6.41},
    )
    return replace(base, **changes)


_stones = itertools.count()


def insert_diamond(url: str, *, availability: str = "available", status: str = "active") -> UUID:
    """A minimal diamond, inserted directly (for domains that do not own diamond upserts)."""
    n = next(_stones)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO diamonds (supplier_stone_id, offer_id, shape, carats,"
            " supplier_price_cents, price_per_carat_cents, availability, status)"
            " VALUES (%s, %s, 'ROUND', 1.00, 100000, 100000, %s, %s) RETURNING id",
            (f"stone-{n}", f"offer-{n}", availability, status),
        ).fetchone()
    assert row is not None
    return UUID(str(row[0]))
