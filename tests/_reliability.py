"""Helpers shared by the reliability tests (faults, load, hostile input, PgBouncer, replicas)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import psycopg

from diamond_db import DiamondInput


def diamond(stone: str, **changes: Any) -> DiamondInput:
    """A valid diamond keyed by `stone`, with `changes` applied."""
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
    )
    return replace(base, **changes)


def scalar(url: str, query: str, *params: Any) -> Any:
    """The one value of a query, read over a fresh connection (not through the library)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return row[0]
