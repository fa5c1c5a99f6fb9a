"""Grading data (issue 13): the typed columns of 0005, their validation and CHECKs."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from helpers import diamond, fetch
from psycopg.types.json import Jsonb

from diamond_db import Database, DiamondInput, MigrationError, QueryEvent, ValidationError
from diamond_db._resources import data_dir
from diamond_db._server import Server
from diamond_db.migrations import load_migrations

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


# -- the backfill (migration 0006) ------------------------------------------------------

SHIPPED = data_dir("sql") / "migrations"
INSERT_LEGACY = (
    "INSERT INTO diamonds (supplier_stone_id, offer_id, shape, carats, supplier_price_cents,"
    " price_per_carat_cents, measurements, attributes) VALUES (%s, %s, 'OVAL', 1, 1, 1, %s, %s)"
)
# A TypeScript-era row as the feed wrote it; then rows with malformed and out-of-range values.
LEGACY: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {
    "good": (
        {
            "table": 57.5,
            "depthPercentage": "61.8",
            "length": 8.12,
            "width": " 6.01 ",
            "depth": 3.71,
            "crownAngle": 34.5,
            "crownHeight": 15,
            "pavAngle": "40.8",
            "pavDepth": 43.1,
        },
        {"girdle": "MED-STK", "culet": "NON", "eyeClean": "Yes", "brown": "NONE", "green": ""},
    ),
    "malformed": (
        {"table": "abc", "depthPercentage": "55%", "length": [8], "width": True, "depth": "1e2"},
        {"girdle": 3, "culetSize": "SMALL", "culet": "NON", "eyeClean": "maybe", "milky": "M1"},
    ),
    "out_of_range": (
        {"table": 120, "depthPercentage": -1, "length": 0, "crownAngle": "91", "pavDepth": 100.004},
        {"eyeClean": "F", "pavAngle": 45},  # pavAngle from attributes when measurements lack it
    ),
    "nothing": (None, None),
}
TYPED = (
    "SELECT supplier_stone_id, table_pct, depth_pct, length_mm, width_mm, depth_mm, ratio,"
    " crown_angle, crown_height, pavilion_angle, pavilion_depth, girdle, culet_size, eye_clean,"
    " brown, green, milky FROM diamonds ORDER BY supplier_stone_id"
)
D = Decimal
EXPECTED = [
    ("good", D("57.50"), D("61.80"), D("8.12"), D("6.01"), D("3.71"), D("1.351"), D("34.50"),
     D("15.00"), D("40.80"), D("43.10"), "MED-STK", "NON", True, "NONE", None, None),
    ("malformed", None, None, None, None, None, None, None, None, None, None, None, "SMALL",
     None, None, None, "M1"),
    ("nothing", *[None] * 16),
    ("out_of_range", None, None, None, None, None, None, None, None, D("45.00"), D("100.00"),
     None, None, False, None, None, None),
]  # fmt: skip
# Per column, the values left NULL: malformed ("abc", "55%", a list, true, "1e2", 3,
# "maybe") or out of range (120, -1, 0, "91").
REPORTED = {
    "crown_angle": 1,
    "depth_mm": 1,
    "depth_pct": 2,
    "eye_clean": 1,
    "girdle": 1,
    "length_mm": 2,
    "table_pct": 2,
    "width_mm": 1,
}


def _report(notices: list[str]) -> tuple[int, dict[str, int]]:
    """(rows updated, {column: values left NULL}) from the backfill's NOTICE lines."""
    updated = -1
    malformed: dict[str, int] = {}
    for line in notices:
        if match := re.search(r"(\d+) diamonds scanned, (\d+) updated", line):
            updated = int(match[2])
        elif match := re.search(r"(\d+) malformed or out-of-range value\(s\) for (\w+)", line):
            malformed[match[2]] = int(match[1])
    return updated, malformed


def _rerun_backfill(url: str) -> list[str]:
    """Run 0006's statements again, as the runner sends them; the notices."""
    (backfill,) = [m for m in load_migrations(SHIPPED) if m.version == "0006"]
    notices: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        for step in backfill.steps():
            conn.execute(step.sql.encode())
    return notices


@pytest.fixture
def legacy_url(diamond_db_server: Server) -> Iterator[str]:
    """A database at 0005 (columns added, not yet backfilled) holding the LEGACY rows."""
    with diamond_db_server.database("diamond_db_grading", bootstrap=False) as url:
        asyncio.run(Database(url).migrate("0005"))
        with psycopg.connect(url, autocommit=True) as conn:
            for stone, (measurements, attributes) in LEGACY.items():
                conn.execute(INSERT_LEGACY, (stone, stone, Jsonb(measurements), Jsonb(attributes)))
        yield url


async def test_the_backfill_fills_typed_columns_and_reports_what_it_left(
    legacy_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    notices: list[str] = []
    runner = Database(legacy_url).migrator(on_notice=notices.append)
    with caplog.at_level(logging.INFO, logger="diamond_db"):
        assert [s.version for s in await runner.migrate("0006")] == ["0006"]
    assert fetch(legacy_url, TYPED) == EXPECTED
    assert _report(notices) == (3, REPORTED)
    assert all(n.startswith("0006_grading_backfill.sql: ") for n in notices)
    assert any("3 updated" in r.getMessage() for r in caplog.records)  # the log has it too
    # Re-running writes nothing: not one row version changes.
    versions = fetch(legacy_url, "SELECT id, xmin::text FROM diamonds ORDER BY id")
    assert _report(_rerun_backfill(legacy_url)) == (0, REPORTED)
    assert fetch(legacy_url, "SELECT id, xmin::text FROM diamonds ORDER BY id") == versions


async def test_a_row_violating_another_constraint_is_skipped_then_filled(
    legacy_url: str,
) -> None:
    with psycopg.connect(legacy_url, autocommit=True) as conn:  # as an adopted database can be
        conn.execute("ALTER TABLE diamonds DROP CONSTRAINT diamonds_rating_check")
        conn.execute("UPDATE diamonds SET rating = 11 WHERE supplier_stone_id = 'good'")
        conn.execute(
            "ALTER TABLE diamonds ADD CONSTRAINT diamonds_rating_check"
            " CHECK (rating BETWEEN 1 AND 10) NOT VALID"
        )
    notices: list[str] = []
    with pytest.raises(MigrationError, match="diamonds_rating_check"):
        await Database(legacy_url).migrator(on_notice=notices.append).migrate()
    assert any("1 diamond(s) skipped" in n for n in notices)
    assert _report(notices)[0] == 2  # the two others were filled
    assert fetch(legacy_url, "SELECT table_pct FROM diamonds WHERE rating = 11") == [(None,)]
    with psycopg.connect(legacy_url, autocommit=True) as conn:
        conn.execute("UPDATE diamonds SET rating = 10 WHERE rating = 11")
    assert _report(_rerun_backfill(legacy_url))[0] == 1
    assert fetch(legacy_url, TYPED) == EXPECTED
