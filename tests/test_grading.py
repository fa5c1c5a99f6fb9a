"""Grading data (issue 13): the typed columns of 0005, their validation and CHECKs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from helpers import diamond, fetch

from diamond_db import Database, DiamondInput, QueryEvent, ValidationError

GRADED: dict[str, Any] = {
    "fancy_color": "Yellow",
    "fancy_intensity": "Fancy Intense",
    "fancy_overtone": "Greenish",
    "fluorescence_intensity": "Faint",
    "ratio": Decimal("1.352"),
    "table_pct": Decimal("57.50"),
    "depth_pct": Decimal("61.80"),
    "crown_angle": Decimal("34.50"),
    "crown_height": Decimal("15.00"),
    "pavilion_angle": Decimal("40.80"),
    "pavilion_depth": Decimal("43.10"),
    "length_mm": Decimal("8.12"),
    "width_mm": Decimal("6.01"),
    "depth_mm": Decimal("3.71"),
    "girdle": "MED-STK",
    "culet_size": "NON",
    "brown": "None",
    "green": "NONE",
    "milky": "no",
    "eye_clean": True,
    "meta_images": [
        {"url": "https://images.example.com/g-1/front.jpg", "display_index": 0},
        {"url": "https://images.example.com/g-1/side.jpg", "display_index": 1},
    ],
}


async def test_every_grading_field_round_trips(diamond_db: Database) -> None:
    stored = await diamond_db.upsert_diamond(diamond("g-1", **GRADED))
    assert {name: getattr(stored, name) for name in GRADED} == GRADED
    fetched = await diamond_db.get_diamond_by_id(stored.id)
    assert fetched == stored
    page = await diamond_db.search_diamonds(limit=5)
    assert [{name: getattr(d, name) for name in GRADED} for d in page.items] == [GRADED]


async def test_the_batch_upsert_writes_and_overwrites_them(
    diamond_db: Database, diamond_db_url: str
) -> None:
    assert await diamond_db.upsert_diamonds([diamond("g-1", **GRADED), diamond("g-2")]) == 2
    query = "SELECT supplier_stone_id, table_pct, eye_clean, meta_images FROM diamonds"
    rows = sorted(fetch(diamond_db_url, query))
    assert rows == [
        ("g-1", Decimal("57.50"), True, GRADED["meta_images"]),
        ("g-2", None, None, None),
    ]
    # The supplier's values are the truth: a later batch without them clears them.
    await diamond_db.upsert_diamonds([diamond("g-1", table_pct=Decimal("58"))])
    assert fetch(diamond_db_url, query + " WHERE supplier_stone_id = 'g-1'") == [
        ("g-1", Decimal("58.00"), None, None)
    ]


async def test_values_are_stored_rounded_as_the_column_does(diamond_db: Database) -> None:
    stored = await diamond_db.upsert_diamond(
        diamond("g-1", ratio=1.3456, table_pct="57.555", length_mm=6)
    )
    assert (stored.ratio, stored.table_pct, stored.length_mm) == (
        Decimal("1.346"),
        Decimal("57.56"),
        Decimal("6.00"),
    )


REFUSED: list[tuple[str, Any]] = [
    ("table_pct", Decimal("100.01")),
    ("depth_pct", Decimal("-0.5")),
    ("crown_height", 120),
    ("pavilion_depth", "abc"),
    ("crown_angle", Decimal("90.5")),
    ("pavilion_angle", -1),
    ("length_mm", 0),
    ("width_mm", Decimal("0.004")),  # rounds to 0.00
    ("depth_mm", Decimal("10000")),
    ("ratio", 0),
    ("ratio", Decimal("99.9996")),  # rounds to 100.000: beyond NUMERIC(5,3)
    ("ratio", float("nan")),
    ("eye_clean", "yes"),
    ("fancy_color", 5),
    ("brown", "a\x00b"),
    ("meta_images", "https://images.example.com/a.jpg"),
    ("meta_images", [{"url": "https://images.example.com/a.jpg"}]),
    ("meta_images", [{"url": "", "display_index": 0}]),
    ("meta_images", [{"url": "https://images.example.com/a.jpg", "display_index": -1}]),
    ("meta_images", [{"url": "u", "display_index": 0, "alt": "front"}]),
]


async def test_out_of_range_or_mistyped_values_are_refused_before_sql(
    diamond_db: Database, diamond_db_url: str
) -> None:
    events: list[QueryEvent] = []
    async with Database(diamond_db_url, min_size=1, on_query=events.append) as db:
        for field, value in REFUSED:
            with pytest.raises(ValidationError) as raised:
                await db.upsert_diamonds([diamond("g-0"), diamond("g-1", **{field: value})])
            assert raised.value.argument.startswith(f"diamonds[1].{field}"), (field, value)
    assert events == []


async def test_the_bounds_themselves_are_accepted(diamond_db: Database) -> None:
    bounds = {"table_pct": 100, "depth_pct": 0, "crown_angle": 90, "pavilion_angle": 0}
    stored = await diamond_db.upsert_diamond(diamond("g-1", **bounds))
    assert (stored.table_pct, stored.depth_pct, stored.crown_angle) == (
        Decimal(100),
        Decimal(0),
        Decimal(90),
    )


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("table_pct", "101", "diamonds_table_pct_check"),
        ("crown_angle", "91", "diamonds_crown_angle_check"),
        ("length_mm", "0", "diamonds_length_mm_check"),
        ("ratio", "-1", "diamonds_ratio_check"),
        ("meta_images", '{"url": "x"}', "diamonds_meta_images_check"),
    ],
)
def test_the_checks_refuse_what_bypasses_the_library(
    diamond_db_url: str, column: str, value: str, constraint: str
) -> None:
    with (
        psycopg.connect(diamond_db_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.CheckViolation) as raised,
    ):
        conn.execute(
            psycopg.sql.SQL(
                "INSERT INTO diamonds (supplier_stone_id, offer_id, shape, carats,"
                " supplier_price_cents, price_per_carat_cents, {})"
                " VALUES ('c-1', 'o-1', 'ROUND', 1, 1, 1, {})"
            ).format(psycopg.sql.Identifier(column), psycopg.sql.Literal(value))
        )
    assert raised.value.sqlstate == "23514"
    assert raised.value.diag.constraint_name == constraint


def test_a_diamond_input_needs_none_of_them() -> None:
    plain = DiamondInput(
        supplier_stone_id="s",
        offer_id="o",
        shape="ROUND",
        carats=Decimal(1),
        supplier_price_cents=1,
        price_per_carat_cents=1,
    )
    assert all(getattr(plain, name) is None for name in GRADED)
