"""search_diamonds against an independent Python oracle over the same seeded rows, and its plans.

The plans section seeds 100,000 diamonds and checks with EXPLAIN that rows come from an
index (README example, deep cursor pages, every clarity tier), never from a sequential scan
of diamonds.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import random
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest
from helpers import fetch, fetch_dicts, scalar
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from benchmarks.search import QUERIES
from diamond_db import (
    Database,
    DiamondInput,
    DiamondSearch,
    DiamondSummary,
    Page,
    RenderedQuery,
    ValidationError,
    render_search,
)
from diamond_db._server import Server
from diamond_db.records import Diamond
from diamond_db.search import CLARITY_GRADES, SORT_KEYS, SUMMARY_FIELDS

Row = dict[str, Any]

SHAPES = ["ROUND", "ROUND", "ROUND", "OVAL", "PRINCESS", "PEAR", "CUSHION"]
COLORS = [*"DEFGHIJK", None]
GRADES = ["FL", "IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "SI3", "I1", "I2", "I3"]
UNKNOWN_GRADES = ["N/A", "AA", "vs1"]  # "vs1": a grade's spelling is exact, case included
CLARITIES = [*GRADES, *UNKNOWN_GRADES, None]
FINISHES = ["EX", "VG", "GD", None]
FLUORESCENCES = ["NON", "FNT", "MED", None]
LABS = ["GIA", "IGI", "HRD", None]
AVAILABILITIES = ["available"] * 6 + ["on_hold", "sold", "unavailable"]
SUPPLIERS = ["nivoda", "nivoda", "vdb", "rapnet"]
FANCY_COLORS = ["Yellow", "Pink", "Blue"]  # distinct initials: any collation orders them alike
FANCY_INTENSITIES = ["Faint", "Fancy", "Intense", "Vivid", None]
FLUORESCENCE_INTENSITIES = ["None", "Faint", "Medium", "Strong", None]
TINTS = ["None", "none", "NO", "n/a", "N/A", "", None, None, "Light Brown", "Faint", "nonE"]
NONE_TINTS = {"none", "no", "n/a", ""}
SORTS = list(SORT_KEYS)  # the whitelist itself
NEW_SORTS = ["ratio", "certificate_lab", "fluorescence_intensity", "fancy_color"]
NEW_SORTS += ["table_pct", "depth_pct"]  # issue 13
ROWS = 2400
BATCH = 400  # every row of a batch gets the same created_at: ties broken by id


def synthetic(n: int, rng: random.Random) -> DiamondInput:
    """A random supplier diamond with frequent ties and NULLs in the nullable columns."""
    carats = Decimal(rng.randint(30, 300)) / 100
    price = rng.randint(1, 200) * 5_000
    return DiamondInput(
        supplier_stone_id=f"S{n}",
        offer_id=f"O{n}",
        shape=rng.choice(SHAPES),
        carats=carats,
        color=rng.choice(COLORS),
        clarity=rng.choice(CLARITIES),
        cut=rng.choice(FINISHES),
        polish=rng.choice(FINISHES),
        symmetry=rng.choice(FINISHES),
        fluorescence=rng.choice(FLUORESCENCES),
        lab_grown=rng.random() < 0.4,
        treated=rng.random() < 0.1,
        supplier_price_cents=price,
        price_per_carat_cents=int(price / carats),
        retail_price_cents=None if rng.random() < 0.2 else price * 115 // 100,
        rating=None if rng.random() < 0.25 else rng.randint(1, 10),
        availability=rng.choice(AVAILABILITIES),  # type: ignore[arg-type]
        certificate_lab=rng.choice(LABS),
        status="deleted" if rng.random() < 0.05 else "active",
        **grading(rng),
    )


def _maybe(rng: random.Random, low: int, high: int, places: int) -> Decimal | None:
    """A Decimal in [low, high] / 10**places from few distinct values (ties), or NULL (20%)."""
    if rng.random() < 0.2:
        return None
    return Decimal(rng.randrange(low, high + 1, (high - low) // 8 or 1)).scaleb(-places)


def grading(rng: random.Random) -> dict[str, Any]:
    """The grading columns of issue 13: supplier, fancy colours, proportions, tints."""
    fancy = rng.random() < 0.15
    return {
        "supplier": rng.choice(SUPPLIERS),
        "fancy_color": rng.choice(FANCY_COLORS) if fancy else None,
        "fancy_intensity": rng.choice(FANCY_INTENSITIES) if fancy else None,
        "fluorescence_intensity": rng.choice(FLUORESCENCE_INTENSITIES),
        "ratio": _maybe(rng, 1000, 2000, 3),
        "table_pct": _maybe(rng, 5000, 7000, 2),
        "depth_pct": _maybe(rng, 5500, 7500, 2),
        "crown_angle": _maybe(rng, 2800, 4000, 2),
        "pavilion_angle": _maybe(rng, 3900, 4300, 2),
        "length_mm": _maybe(rng, 400, 1200, 2),
        "width_mm": _maybe(rng, 400, 1000, 2),
        "depth_mm": _maybe(rng, 250, 700, 2),
        "eye_clean": rng.choice([True, True, False, None]),
        "brown": rng.choice(TINTS),
        "green": rng.choice(TINTS),
        "milky": rng.choice(TINTS),
    }


async def _seed(url: str) -> None:
    rng = random.Random(20240601)
    stones = [synthetic(n, rng) for n in range(ROWS)]
    async with Database(url, min_size=1) as db:
        for start in range(0, ROWS, BATCH):
            assert await db.upsert_diamonds(stones[start : start + BATCH]) == BATCH


@pytest.fixture(scope="module")
def search_url(diamond_db_server: Server) -> Iterator[str]:
    """The oracle's database, seeded once through upsert_diamonds."""
    with diamond_db_server.database() as url:
        asyncio.run(_seed(url))
        yield url


@pytest.fixture(scope="module")
def rows(search_url: str) -> list[Row]:
    """Every stored diamond, read directly: the oracle's input."""
    return fetch_dicts(search_url, "SELECT * FROM diamonds")


@pytest.fixture
async def db(search_url: str) -> AsyncIterator[Database]:
    async with Database(search_url, min_size=1) as database:
        yield database


# -- the oracle ----------------------------------------------------------------


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    return values or None


def _matches(row: Row, f: dict[str, Any]) -> bool:
    for name, column in [
        ("shape", "shape"),
        ("colors", "color"),
        ("clarities", "clarity"),
        ("cuts", "cut"),
        ("polishes", "polish"),
        ("symmetries", "symmetry"),
        ("fluorescences", "fluorescence"),
        ("certificate_labs", "certificate_lab"),
        ("availability", "availability"),
        ("supplier", "supplier"),
        ("fancy_colors", "fancy_color"),
        ("fancy_intensities", "fancy_intensity"),
        ("fluorescence_intensities", "fluorescence_intensity"),
    ]:
        values = _as_list(f.get(name))
        if values is not None and row[column] not in values:
            return False
    for name in ("lab_grown", "treated", "eye_clean"):
        if f.get(name) is not None and row[name] is not f[name]:
            return False
    if f.get("fancy_color") is not None and (row["fancy_color"] is not None) != f["fancy_color"]:
        return False
    if f.get("no_bgm") and any(
        row[tint] is not None and row[tint].lower() not in NONE_TINTS
        for tint in ("brown", "green", "milky")
    ):
        return False
    return all(_within(row, f, name, column) for name, column in BOUNDS)


# Range filters: name (without _min/_max) -> column.
BOUNDS = {
    "carat": "carats",
    "price": "supplier_price_cents",
    "retail_price": "retail_price_cents",
    "rating": "rating",
    "ratio": "ratio",
    "table": "table_pct",
    "depth_pct": "depth_pct",
    "crown_angle": "crown_angle",
    "pavilion_angle": "pavilion_angle",
    "length": "length_mm",
    "width": "width_mm",
    "depth_mm": "depth_mm",
}.items()


def _within(row: Row, f: dict[str, Any], name: str, column: str) -> bool:
    for bound_name, sign in ((f"{name}_min", 1), (f"{name}_max", -1)):
        if f.get(bound_name) is None:
            continue
        bound = _number(f[bound_name])
        if row[column] is None or (row[column] - bound) * sign < 0:
            return False
    return True


def _number(value: Any) -> Decimal:
    """A Decimal-like bound as the library reads it (a float through its shortest repr)."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _tier(value: Any, sort_by: str) -> int:
    """Where a sort value goes in both directions: 0 first, 1 unknown clarity grades, 2 NULL."""
    if value is None:
        return 2
    return 1 if sort_by == "clarity" and value not in GRADES else 0


def _sort_value(value: Any, sort_by: str) -> Any:
    return GRADES.index(value) if sort_by == "clarity" and value in GRADES else value


def oracle(rows: Sequence[Row], **f: Any) -> list[UUID]:
    """The ids a search must return, in order: filters, then sort values (ties by id) in the
    sort's direction, except that unknown clarity grades and then NULLs come last both ways."""
    sort_by = f.get("sort_by", "created_at")
    reverse = f.get("sort_order", "desc") == "desc"
    live = [r for r in rows if r["status"] == "active" and _matches(r, f)]
    tiers: list[list[Row]] = [[], [], []]
    for r in live:
        tiers[_tier(r[sort_by], sort_by)].append(r)
    ordered: list[Row] = []
    for number, tier in enumerate(tiers):
        if number == 2:  # every value NULL: by id alone
            tier.sort(key=lambda r: r["id"], reverse=reverse)
        else:
            tier.sort(key=lambda r: (_sort_value(r[sort_by], sort_by), r["id"]), reverse=reverse)
        ordered += tier
    return [r["id"] for r in ordered]


def ids(page: Page[Diamond]) -> list[UUID]:
    return [d.id for d in page.items]


async def walk(db: Database, *, by_cursor: bool, **f: Any) -> list[Page[Diamond]]:
    """Every page of a search, following next_cursor or page numbers."""
    pages = [await db.search_diamonds(**f)]
    while pages[-1].next_cursor is not None:
        if by_cursor:
            pages.append(await db.search_diamonds(**f, cursor=pages[-1].next_cursor))
        else:
            pages.append(await db.search_diamonds(**f, page=len(pages) + 1))
    return pages


async def check_walk(
    db: Database, rows: Sequence[Row], *, by_cursor: bool, **f: Any
) -> list[Page[Diamond]]:
    """Walk every page of a search and check them against the oracle; the pages."""
    expected = oracle(rows, **f)
    pages = await walk(db, by_cursor=by_cursor, **f)
    limit = f.get("limit", 50)
    assert [i for p in pages for i in ids(p)] == expected
    assert [p.page for p in pages] == list(range(1, len(pages) + 1))
    for p in pages:
        assert (p.total, p.total_is_exact, p.limit) == (len(expected), True, limit)
        assert p.total_pages == -(-len(expected) // limit)
    assert len(pages) == max(1, -(-len(expected) // limit))
    return pages


# -- filters -------------------------------------------------------------------

ONE_FILTER: list[tuple[str, Any]] = [
    ("shape", "ROUND"),
    ("shape", ["OVAL", "PEAR"]),
    ("shape", []),
    ("carat_min", Decimal("1.5")),
    ("carat_min", "2"),
    ("carat_max", 0.75),
    ("carat_max", 1),
    ("colors", ["D", "E"]),
    ("colors", "F"),
    ("clarities", ["VVS1", "N/A"]),
    ("cuts", ["EX"]),
    ("polishes", "VG"),
    ("symmetries", ("GD",)),
    ("fluorescences", ["NON", "FNT"]),
    ("certificate_labs", ["GIA"]),
    ("certificate_labs", []),
    ("lab_grown", True),
    ("lab_grown", False),
    ("treated", True),
    ("price_min", 500_000),
    ("price_max", 100_000),
    ("rating_min", 8),
    ("rating_min", 1),
    ("availability", "available"),
    ("availability", ["sold", "on_hold"]),
    # issue 13
    ("supplier", "vdb"),
    ("supplier", ["nivoda", "rapnet"]),
    ("fancy_colors", ["Pink", "Blue"]),
    ("fancy_color", True),
    ("fancy_color", False),
    ("fancy_intensities", "Vivid"),
    ("fluorescence_intensities", ["None", "Faint"]),
    ("ratio_min", Decimal("1.5")),
    ("ratio_max", "1.125"),
    ("table_min", 60),
    ("table_max", 57.5),
    ("depth_pct_min", "62.5"),
    ("depth_pct_max", Decimal("60")),
    ("crown_angle_min", 35),
    ("crown_angle_max", "31.5"),
    ("pavilion_angle_min", Decimal("41")),
    ("pavilion_angle_max", 40.5),
    ("length_min", 9),
    ("length_max", "6.5"),
    ("width_min", 8),
    ("width_max", 5.25),
    ("depth_mm_min", 5),
    ("depth_mm_max", "3.5"),
    ("eye_clean", True),
    ("eye_clean", False),
    ("no_bgm", True),
    ("no_bgm", False),
    ("rating_max", 3),
    ("retail_price_min", 700_000),
    ("retail_price_max", 150_000),
]


@pytest.mark.parametrize(("name", "value"), ONE_FILTER)
async def test_each_filter_alone(db: Database, rows: list[Row], name: str, value: Any) -> None:
    await check_walk(db, rows, by_cursor=True, limit=100, **{name: value})


# The seed README's example search, as it is written there.
README_SEARCH: dict[str, Any] = {
    "shape": "ROUND",
    "carat_min": 1.0,
    "carat_max": 2.0,
    "colors": ["D", "E", "F"],
    "clarities": ["VVS1", "VVS2"],
    "lab_grown": False,
    "price_min": 500_000,
    "price_max": 1_000_000,
    "page": 1,
    "limit": 50,
    "sort_by": "supplier_price_cents",
    "sort_order": "asc",
}

COMBINED: list[dict[str, Any]] = [
    README_SEARCH,
    {**README_SEARCH, "price_min": 100_000, "clarities": ["VVS1", "VVS2", "VS1"]},
    {"shape": ["ROUND", "OVAL"], "lab_grown": True, "rating_min": 5, "sort_by": "rating"},
    {"colors": ["D", "E", "G"], "clarities": GRADES[:6], "sort_by": "clarity", "sort_order": "asc"},
    {"cuts": "EX", "polishes": "EX", "symmetries": ["EX", "VG"], "sort_by": "color"},
    {"availability": ["available"], "treated": False, "price_max": 300_000, "sort_by": "carats"},
    {"certificate_labs": ["IGI", "HRD"], "fluorescences": "NON", "sort_by": "retail_price_cents"},
    {"carat_min": "0.5", "carat_max": "0.5"},
    {"shape": "HEART"},  # nothing matches
    {  # issue 13: a storefront's oval search
        "shape": "OVAL",
        "ratio_min": "1.3",
        "ratio_max": "1.8",
        "table_max": 65,
        "depth_pct_min": 58,
        "eye_clean": True,
        "no_bgm": True,
        "sort_by": "ratio",
    },
    {
        "fancy_color": True,
        "fancy_colors": ["Yellow", "Pink"],
        "fancy_intensities": ["Intense", "Vivid"],
        "sort_by": "fancy_color",
        "sort_order": "asc",
    },
    {"supplier": ["vdb", "rapnet"], "rating_min": 3, "rating_max": 7, "sort_by": "certificate_lab"},
    {
        "retail_price_min": 100_000,
        "retail_price_max": 600_000,
        "crown_angle_min": 30,
        "pavilion_angle_max": 42,
        "sort_by": "table_pct",
    },
    {
        "length_min": 5,
        "width_max": 9,
        "depth_mm_min": 3,
        "fluorescence_intensities": ["None", "Faint", "Medium"],
        "sort_by": "fluorescence_intensity",
        "sort_order": "asc",
    },
    {"fancy_color": False, "no_bgm": True, "lab_grown": True, "sort_by": "depth_pct"},
]


@pytest.mark.parametrize("f", COMBINED)
async def test_combined_filters(db: Database, rows: list[Row], f: dict[str, Any]) -> None:
    await check_walk(db, rows, by_cursor=True, **{**f, "limit": 20})


async def test_nothing_matches(db: Database) -> None:
    page = await db.search_diamonds(shape="HEART")
    assert (page.items, page.total, page.total_pages, page.next_cursor) == ([], 0, 0, None)
    past = await db.search_diamonds(shape="OVAL", page=1000)
    assert past.items == []
    assert past.total is not None
    assert past.total > 0


# -- pagination and sorting ----------------------------------------------------


@pytest.mark.parametrize("sort_by", [s for s in SORTS if s not in NEW_SORTS])
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
async def test_every_row_once_in_order(
    db: Database, rows: list[Row], sort_by: str, sort_order: str
) -> None:
    """Offset pages and cursor pages cover every match once, in the oracle's order."""
    sort = {"sort_by": sort_by, "sort_order": sort_order}
    await check_walk(db, rows, by_cursor=False, limit=100, **sort)
    await check_walk(db, rows, by_cursor=True, limit=100, **sort)
    await check_walk(db, rows, by_cursor=False, limit=7, shape="OVAL", **sort)
    await check_walk(db, rows, by_cursor=True, limit=7, shape="OVAL", **sort)


@pytest.mark.parametrize("sort_by", NEW_SORTS)
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
async def test_new_sorts_every_row_once_in_order(
    db: Database, rows: list[Row], sort_by: str, sort_order: str
) -> None:
    """The same for issue 13's sorts, one walk of each kind (they share the machinery)."""
    sort = {"sort_by": sort_by, "sort_order": sort_order}
    await check_walk(db, rows, by_cursor=True, limit=100, **sort)
    await check_walk(db, rows, by_cursor=False, limit=7, shape="OVAL", **sort)


async def test_cursor_pages_equal_offset_pages(db: Database) -> None:
    f: dict[str, Any] = {"sort_by": "rating", "sort_order": "asc", "limit": 33}
    by_offset = await walk(db, by_cursor=False, **f)
    by_cursor = await walk(db, by_cursor=True, **f)
    assert [ids(p) for p in by_offset] == [ids(p) for p in by_cursor]
    assert [p.next_cursor for p in by_offset] == [p.next_cursor for p in by_cursor]
    assert by_cursor[-1].next_cursor is None
    assert len(by_cursor) > 3


def cursor_value(cursor: str) -> Any:
    """The last sort value a cursor carries (it is opaque to callers, not to these tests)."""
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["v"]


async def test_clarity_desc_starts_with_the_worst_real_grade(db: Database, rows: list[Row]) -> None:
    """Worst first means I3 first: unknown grades are missing data, not grades below I3."""
    page = await db.search_diamonds(sort_by="clarity", sort_order="desc", limit=20)
    assert {d.clarity for d in page.items} == {"I3"}
    assert ids(page) == oracle(rows, sort_by="clarity", sort_order="desc")[:20]
    best = await db.search_diamonds(sort_by="clarity", sort_order="asc", limit=20)
    assert {d.clarity for d in best.items} == {"FL"}


@pytest.mark.parametrize("sort_order", ["asc", "desc"])
async def test_clarity_tiers_known_then_unknown_then_null(
    db: Database, rows: list[Row], sort_order: str
) -> None:
    """Grades in order, then unknown grades, then NULLs, in both directions; walked at small
    limits by cursor (one stops on every row, so on each tier's last row too) and by offset."""
    f: dict[str, Any] = {"sort_by": "clarity", "sort_order": sort_order, "shape": "PEAR"}
    expected = oracle(rows, **f)
    clarity = {r["id"]: r["clarity"] for r in rows}
    values = [clarity[i] for i in expected]
    tiers = [_tier(v, "clarity") for v in values]
    assert tiers == sorted(tiers)
    assert set(tiers) == {0, 1, 2}
    desc = sort_order == "desc"
    known = [GRADES.index(v) for v in values if v in GRADES]
    assert known == sorted(known, reverse=desc)
    unknown = [v for v in values if _tier(v, "clarity") == 1]
    assert unknown == sorted(unknown, reverse=desc)
    for limit in (2, 5):
        await check_walk(db, rows, by_cursor=True, limit=limit, **f)
        await check_walk(db, rows, by_cursor=False, limit=limit, **f)
    await check_walk(db, rows, by_cursor=False, limit=1, **f)
    pages = await check_walk(db, rows, by_cursor=True, limit=1, **f)
    stops = [cursor_value(p.next_cursor) for p in pages if p.next_cursor is not None]
    assert stops == values[:-1]  # a cursor stopped on every row, in each of the three tiers


def test_clarity_grades_agree_with_the_sql_function(search_url: str) -> None:
    """CLARITY_GRADES, which puts a cursor in its tier, ranks as diamond_clarity_rank() does."""
    assert tuple(GRADES) == CLARITY_GRADES
    probes = [*CLARITY_GRADES, *UNKNOWN_GRADES, "VS1 ", " FL", "I4", "", None]
    ranks = fetch(
        search_url,
        "SELECT diamond_clarity_rank(v) FROM unnest(%s::TEXT[]) WITH ORDINALITY AS t (v, n)"
        " ORDER BY n",
        probes,
    )
    assert [rank for (rank,) in ranks] == [*range(1, 13), *[13] * 7, None]  # 13: unknown
    definition = scalar(
        search_url, "SELECT pg_get_functiondef('diamond_clarity_rank(TEXT)'::REGPROCEDURE)"
    )
    assert re.findall(r"'([^']*)'::text", definition) == list(CLARITY_GRADES)


async def test_default_sort_and_limit_cap(db: Database, rows: list[Row]) -> None:
    page = await db.search_diamonds()
    assert page.limit == 50
    assert ids(page) == oracle(rows)[:50]
    capped = await db.search_diamonds(limit=1000)
    assert capped.limit == 100
    assert len(capped.items) == 100


async def test_params_record_and_keyword_override(db: Database, rows: list[Row]) -> None:
    search = DiamondSearch(shape="OVAL", limit=10)
    assert ids(await db.search_diamonds(search)) == oracle(rows, shape="OVAL")[:10]
    page = await db.search_diamonds(search, shape="PEAR", sort_by="carats")
    assert ids(page) == oracle(rows, shape="PEAR", sort_by="carats")[:10]
    assert search.shape == ("OVAL",)  # the record is frozen; filters made a new one


# -- count modes ---------------------------------------------------------------


async def test_count_modes(db: Database, rows: list[Row]) -> None:
    everything = len(oracle(rows))
    capped = await db.search_diamonds(count="capped", count_cap=1000, limit=100)
    assert (capped.total, capped.total_is_exact, capped.total_pages) == (1000, False, 10)
    under = await db.search_diamonds(count="capped", count_cap=everything, limit=100)
    assert (under.total, under.total_is_exact) == (everything, True)
    default_cap = await db.search_diamonds(count="capped")
    assert (default_cap.total, default_cap.total_is_exact) == (everything, True)
    none = await db.search_diamonds(count="none", limit=100)
    assert (none.total, none.total_pages, none.total_is_exact) == (None, None, False)
    assert ids(none) == oracle(rows)[:100]
    assert none.next_cursor is not None
    pages = await walk(db, by_cursor=True, count="none", limit=100)
    assert [i for p in pages for i in ids(p)] == oracle(rows)
    empty = await db.search_diamonds(count="none", shape="HEART")
    assert (empty.items, empty.total, empty.next_cursor) == ([], None, None)


# -- projections ---------------------------------------------------------------


@pytest.mark.parametrize("sort_by", ["created_at", "clarity", "ratio", "price_per_carat_cents"])
async def test_list_projection_is_the_same_pages_as_summaries(
    db: Database, rows: list[Row], sort_by: str
) -> None:
    """Same ids, totals and cursors as the full projection, each item a DiamondSummary of its
    row; a cursor of either projection continues the other."""
    f: dict[str, Any] = {"sort_by": sort_by, "shape": ["ROUND", "PEAR"], "limit": 40}
    stored = {r["id"]: r for r in rows}
    full = await walk(db, by_cursor=True, **f)
    pages = [await db.search_diamonds(**f, projection="list")]
    while pages[-1].next_cursor is not None:
        cursor = pages[-1].next_cursor
        pages.append(await db.search_diamonds(**f, cursor=cursor, projection="list"))
    assert [ids(p) for p in pages] == [ids(p) for p in full]
    assert [(p.next_cursor, p.total, p.page) for p in pages] == [
        (p.next_cursor, p.total, p.page) for p in full
    ]
    assert len(pages) > 2
    for item in (item for page in pages for item in page.items):
        assert type(item) is DiamondSummary
        assert dataclasses.asdict(item) == {name: stored[item.id][name] for name in SUMMARY_FIELDS}
    continued = await db.search_diamonds(**f, cursor=full[0].next_cursor, projection="list")
    assert ids(continued) == ids(full[1])


@pytest.mark.parametrize(("sort_by", "extra"), [("rating", []), ("table_pct", ["table_pct"])])
def test_list_projection_sends_only_the_summary_columns(
    search_url: str, sort_by: str, extra: list[str]
) -> None:
    """The summary's columns, plus the sort key's when it is not one (the cursor needs it)."""
    for count in ("exact", "none"):
        query = render_search(projection="list", sort_by=sort_by, count=count, limit=5)
        with psycopg.connect(search_url) as conn:
            cursor = conn.execute(query.sql.encode(), query.params)
            names = [column.name for column in cursor.description or ()]
        total = ["search_total"] if count == "exact" else []
        assert names == [*SUMMARY_FIELDS, *extra, *total]


# -- rendering -----------------------------------------------------------------


@pytest.mark.parametrize("count", ["exact", "capped", "none"])
async def test_rendered_query_runs_the_same(db: Database, search_url: str, count: str) -> None:
    f: dict[str, Any] = {**README_SEARCH, "count": count, "price_min": 0}
    first = await db.search_diamonds(**f)
    for page in (first, await db.search_diamonds(**f, cursor=first.next_cursor)):
        cursor = first.next_cursor if page is not first else None
        query = render_search(**f, cursor=cursor)
        assert "%(" in query.sql
        assert all(f"%({k})s" in query.sql for k in query.params)
        with psycopg.connect(search_url, row_factory=dict_row) as conn:
            raw = conn.execute(query.sql.encode(), query.params).fetchall()
        assert [r["id"] for r in raw][: len(page.items)] == ids(page)
        if count != "none":
            assert {r["search_total"] for r in raw} == {page.total}


def test_render_binds_numeric_as_decimal() -> None:
    query = render_search(carat_min=1.1, carat_max=2, price_min=5, shape="ROUND")
    assert query.params["carat_min"] == Decimal("1.1")
    assert type(query.params["carat_min"]) is Decimal
    assert type(query.params["carat_max"]) is Decimal
    assert query.params["shape"] == ["ROUND"]
    assert "ROUND" not in query.sql
    assert "1.1" not in query.sql


def test_sql_injection_attempts_stay_values() -> None:
    evil = "'; DROP TABLE diamonds; --"
    query = render_search(shape=evil, colors=[evil])
    assert evil not in query.sql
    assert query.params["shape"] == [evil]
    with pytest.raises(ValidationError):
        render_search(sort_by="id; DROP TABLE diamonds")


# -- validation ----------------------------------------------------------------

BAD_SEARCHES: list[tuple[str, dict[str, Any]]] = [
    ("colour", {"colour": ["D"]}),
    ("sort_by", {"sort_by": "id"}),
    ("sort_by", {"sort_by": "supplier_price_cents DESC"}),
    ("sort_order", {"sort_order": "up"}),
    ("page", {"page": 0}),
    ("page", {"page": "2"}),
    ("limit", {"limit": 0}),
    ("limit", {"limit": -5}),
    ("limit", {"limit": 2.5}),
    ("carat_min", {"carat_min": 2, "carat_max": 1}),
    ("carat_min", {"carat_min": float("nan")}),
    ("carat_max", {"carat_max": float("inf")}),
    ("carat_min", {"carat_min": "heavy"}),
    ("carat_min", {"carat_min": True}),
    ("price_min", {"price_min": -1}),
    ("price_max", {"price_max": -100}),
    ("price_min", {"price_min": 10, "price_max": 5}),
    ("price_min", {"price_min": 1.5}),
    ("rating_min", {"rating_min": 0}),
    ("rating_min", {"rating_min": 11}),
    ("lab_grown", {"lab_grown": "yes"}),
    ("lab_grown", {"lab_grown": 1}),
    ("treated", {"treated": "false"}),
    ("colors", {"colors": 5}),
    ("colors[1]", {"colors": ["D", 7]}),
    ("colors[0]", {"colors": ["D\x00"]}),
    ("shape", {"shape": {"ROUND": 1}}),
    ("shape[0]", {"shape": [" "]}),
    ("cuts[0]", {"cuts": "\ud800"}),
    ("availability[0]", {"availability": "reserved"}),
    ("availability[1]", {"availability": ["available", "gone"]}),
    ("count", {"count": "approximate"}),
    ("count_cap", {"count_cap": 0}),
    ("cursor", {"cursor": 12}),
    ("cursor", {"cursor": "not a cursor"}),
    ("cursor", {"cursor": "e30"}),  # {}
    # issue 13
    ("supplier", {"supplier": 3}),
    ("supplier[0]", {"supplier": [""]}),
    ("fancy_colors[1]", {"fancy_colors": ["Pink", None]}),
    ("fancy_intensities", {"fancy_intensities": {"Vivid": 1}}),
    ("fluorescence_intensities[0]", {"fluorescence_intensities": [1]}),
    ("fancy_color", {"fancy_color": "yes"}),
    ("eye_clean", {"eye_clean": 1}),
    ("no_bgm", {"no_bgm": "true"}),
    ("ratio_min", {"ratio_min": "long"}),
    ("ratio_max", {"ratio_max": 100}),  # NUMERIC(5,3): under 100
    ("ratio_min", {"ratio_min": 2, "ratio_max": "1.5"}),
    ("table_min", {"table_min": float("nan")}),
    ("table_max", {"table_max": True}),
    ("table_min", {"table_min": 70, "table_max": 60}),
    ("depth_pct_min", {"depth_pct_min": 1000}),
    ("depth_pct_max", {"depth_pct_max": [60]}),
    ("depth_pct_min", {"depth_pct_min": 65, "depth_pct_max": 60}),
    ("crown_angle_min", {"crown_angle_min": "steep"}),
    ("crown_angle_max", {"crown_angle_max": float("-inf")}),
    ("crown_angle_min", {"crown_angle_min": 40, "crown_angle_max": 30}),
    ("pavilion_angle_min", {"pavilion_angle_min": False}),
    ("pavilion_angle_max", {"pavilion_angle_max": "4e3"}),
    ("pavilion_angle_min", {"pavilion_angle_min": 43, "pavilion_angle_max": 41}),
    ("length_min", {"length_min": "x"}),
    ("length_max", {"length_max": 10_000}),  # NUMERIC(6,2): under 10,000
    ("length_min", {"length_min": 9, "length_max": 5}),
    ("width_min", {"width_min": object()}),
    ("width_max", {"width_max": float("inf")}),
    ("width_min", {"width_min": "9.01", "width_max": 9}),
    ("depth_mm_min", {"depth_mm_min": "five"}),
    ("depth_mm_max", {"depth_mm_max": Decimal("NaN")}),
    ("depth_mm_min", {"depth_mm_min": 6, "depth_mm_max": 3}),
    ("rating_max", {"rating_max": 0}),
    ("rating_max", {"rating_max": 11}),
    ("rating_min", {"rating_min": 8, "rating_max": 2}),
    ("retail_price_min", {"retail_price_min": -1}),
    ("retail_price_max", {"retail_price_max": 2.5}),
    ("retail_price_min", {"retail_price_min": 900, "retail_price_max": 100}),
    ("projection", {"projection": "short"}),
]


@pytest.mark.parametrize(("argument", "f"), BAD_SEARCHES)
async def test_bad_search_names_the_field(argument: str, f: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        render_search(**f)
    assert caught.value.argument == argument
    with pytest.raises(TypeError if argument in ("colour", "projection") else ValidationError):
        DiamondSearch(**f)  # the record itself refuses it too (an unknown name: TypeError)
    # and nothing is sent: the Database is never even opened here
    with pytest.raises(ValidationError):
        await Database("postgresql://nobody@127.0.0.1:1/none").search_diamonds(**f)


def test_single_string_is_one_value() -> None:
    search = DiamondSearch(colors="VVS1", shape="ROUND", availability="sold")
    assert (search.colors, search.shape, search.availability) == (("VVS1",), ("ROUND",), ("sold",))


def test_params_must_be_a_search() -> None:
    with pytest.raises(ValidationError) as caught:
        render_search({"shape": "ROUND"})  # type: ignore[arg-type]
    assert caught.value.argument == "params"


def _tampered(cursor: str, **changes: Any) -> str:
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    data.update(changes)
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_foreign_and_malformed_cursors(db: Database) -> None:
    page = await db.search_diamonds(shape="ROUND", sort_by="carats", limit=10)
    cursor = page.next_cursor
    assert cursor is not None
    others: list[dict[str, Any]] = [
        {"shape": "OVAL", "sort_by": "carats", "limit": 10},
        {"shape": "ROUND", "sort_by": "rating", "limit": 10},
        {"shape": "ROUND", "sort_by": "carats", "sort_order": "asc", "limit": 10},
        {"shape": "ROUND", "sort_by": "carats", "limit": 11},
        {"shape": "ROUND", "sort_by": "carats", "limit": 10, "count": "none"},
    ]
    for other in others:
        with pytest.raises(ValidationError, match="different search"):
            await db.search_diamonds(**other, cursor=cursor)
    same: dict[str, Any] = {"shape": "ROUND", "sort_by": "carats", "limit": 10}
    for bad in [
        cursor[:-3],
        cursor + "!!",
        "",
        _tampered(cursor, v="heavy"),
        _tampered(cursor, v=None),
        _tampered(cursor, i="x"),
        _tampered(cursor, p=0),
        _tampered(cursor, p="2"),
        _tampered(cursor, extra=1),
    ]:
        with pytest.raises(ValidationError) as caught:
            await db.search_diamonds(**same, cursor=bad)
        assert caught.value.argument == "cursor"
    second = await db.search_diamonds(**same, cursor=cursor)
    assert second.page == 2
    assert not set(ids(second)) & set(ids(page))


# -- property ------------------------------------------------------------------


def _values(domain: Sequence[str | None]) -> st.SearchStrategy[Any]:
    known = st.sampled_from([v for v in domain if v is not None])
    odd = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=4)
    odd = odd.filter(str.strip)  # blank values are refused (see BAD_SEARCHES)
    return st.none() | known | st.lists(known | odd, max_size=4)


# The measurement filters' ranges in the seeded rows: name -> (low, high, decimal places).
MEASURES = {
    "ratio": (1, 2, 3),
    "table": (50, 70, 2),
    "depth_pct": (55, 75, 2),
    "crown_angle": (28, 40, 2),
    "pavilion_angle": (39, 43, 2),
    "length": (4, 12, 2),
    "width": (4, 10, 2),
    "depth_mm": (2, 7, 2),
}


def _numbers(low: int, high: int, places: int) -> st.SearchStrategy[Any]:
    """Decimal-like bounds as callers pass them: Decimal, str, int or float."""
    decimals = st.decimals(low, high, places=places)
    return (
        decimals
        | decimals.map(str)
        | st.integers(low, high)
        | st.floats(low, high).map(lambda x: round(x, places))
    )


OLD_SEARCH_STRATEGY = st.fixed_dictionaries(
    {},
    optional={
        "shape": _values(SHAPES),
        "colors": _values(COLORS),
        "clarities": _values(CLARITIES),
        "cuts": _values(FINISHES),
        "polishes": _values(FINISHES),
        "symmetries": _values(FINISHES),
        "fluorescences": _values(FLUORESCENCES),
        "certificate_labs": _values(LABS),
        "availability": st.lists(st.sampled_from(sorted(set(AVAILABILITIES))), max_size=3),
        "carat_min": st.decimals(0, 3, places=2) | st.floats(0, 3).map(lambda x: round(x, 2)),
        "carat_max": st.decimals(0, 3, places=2) | st.integers(0, 3),
        "price_min": st.integers(0, 1_000_000),
        "price_max": st.integers(0, 1_000_000),
        "rating_min": st.integers(1, 10),
        "lab_grown": st.booleans(),
        "treated": st.booleans(),
        "sort_by": st.sampled_from(SORTS),
        "sort_order": st.sampled_from(["asc", "desc"]),
        "limit": st.integers(1, 120),
        "page": st.integers(1, 4),
        "count": st.sampled_from(["exact", "capped", "none"]),
    },
)
# Issue 13's filters, up to three at a time on top of the others (all of them at once
# would leave nothing to find).
NEW_FILTERS: dict[str, st.SearchStrategy[Any]] = {
    "rating_max": st.integers(1, 10),
    "supplier": _values(SUPPLIERS),
    "fancy_colors": _values(FANCY_COLORS),
    "fancy_intensities": _values(FANCY_INTENSITIES),
    "fluorescence_intensities": _values(FLUORESCENCE_INTENSITIES),
    "fancy_color": st.booleans(),
    "eye_clean": st.booleans(),
    "no_bgm": st.booleans(),
    "retail_price_min": st.integers(0, 1_200_000),
    "retail_price_max": st.integers(0, 1_200_000),
    **{
        f"{name}_{end}": _numbers(low, high, places)
        for name, (low, high, places) in MEASURES.items()
        for end in ("min", "max")
    },
}
SEARCH_STRATEGY = st.tuples(
    OLD_SEARCH_STRATEGY,
    st.lists(st.sampled_from(sorted(NEW_FILTERS)), max_size=3, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: NEW_FILTERS[name] for name in names})
    ),
).map(lambda parts: {**parts[0], **parts[1]})


def _ordered(f: dict[str, Any]) -> dict[str, Any]:
    for name in dict(BOUNDS):
        low, high = f"{name}_min", f"{name}_max"
        both = f.get(low) is not None and f.get(high) is not None
        if both and _number(f[low]) > _number(f[high]):
            f[low], f[high] = f[high], f[low]
    return f


def test_random_searches_match_the_oracle(search_url: str, rows: list[Row]) -> None:
    loop = asyncio.new_event_loop()
    database = Database(search_url, min_size=1)
    loop.run_until_complete(database.open())

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(SEARCH_STRATEGY.map(_ordered))
    def check(f: dict[str, Any]) -> None:
        page = loop.run_until_complete(database.search_diamonds(**f))
        expected = oracle(rows, **f)
        limit = min(f.get("limit", 50), 100)
        start = (f.get("page", 1) - 1) * limit
        assert ids(page) == expected[start : start + limit]
        assert (page.next_cursor is not None) == (len(expected) > start + limit)
        if f.get("count", "exact") != "none":
            assert page.total == len(expected)
            assert page.total_is_exact

    try:
        check()
    finally:
        loop.run_until_complete(database.close())
        loop.close()


# -- plans on 100,000 diamonds: rows come from an index, never a sequential scan ---

PLAN_ROWS = 100_000

# One statement, realistic distributions; about 3% soft-deleted, 3% NULL colours and
# clarities, 2% unknown clarity grades, 10% NULL retail prices, 20% NULL ratings; grading
# data (issue 13): 2% fancy colours, 5% NULL proportions, eye-clean mostly, 10% tinted.
SEED = """
INSERT INTO diamonds (
    supplier_stone_id, offer_id, shape, carats, color, clarity, cut, polish, symmetry,
    fluorescence, lab_grown, treated, supplier_price_cents, price_per_carat_cents,
    retail_price_cents, rating, availability, certificate_lab, status, deleted_at, created_at,
    supplier, fancy_color, fancy_intensity, fluorescence_intensity, ratio, table_pct,
    depth_pct, eye_clean, brown, green, milky
)
SELECT
    'S' || i, 'O' || i, shape, carats, color, clarity, cut, cut, cut, fluorescence,
    lab_grown, treated, price, (price / carats)::BIGINT,
    CASE WHEN x < 0.1 THEN NULL ELSE (price * 1.15)::BIGINT END,
    CASE WHEN x < 0.3 THEN NULL ELSE 1 + mod((x * 1000)::INT, 10) END,
    availability, lab, status, CASE WHEN status = 'deleted' THEN now() END,
    TIMESTAMPTZ '2024-01-01' + mod(i, 5000) * INTERVAL '10 minutes',
    (ARRAY['nivoda', 'nivoda', 'vdb'])[1 + mod(i, 3)],
    CASE WHEN y < 0.02 THEN (ARRAY['Yellow', 'Pink', 'Blue'])[1 + mod(i, 3)] END,
    CASE WHEN y < 0.02 THEN (ARRAY['Fancy', 'Intense', 'Vivid'])[1 + mod(i, 7 * 3) / 7] END,
    (ARRAY['None', 'None', 'Faint', 'Medium', 'Strong'])[1 + mod(i, 5)],
    CASE WHEN y > 0.95 THEN NULL
        WHEN shape = 'ROUND' THEN round((1 + random() * 0.02)::NUMERIC, 3)
        ELSE round((1 + random())::NUMERIC, 3) END,
    CASE WHEN y > 0.95 THEN NULL ELSE round((52 + random() * 14)::NUMERIC, 1) END,
    CASE WHEN y > 0.95 THEN NULL ELSE round((58 + random() * 10)::NUMERIC, 1) END,
    random() < 0.85,
    CASE WHEN y BETWEEN 0.5 AND 0.55 THEN 'Light Brown' ELSE 'None' END,
    CASE WHEN y BETWEEN 0.6 AND 0.62 THEN 'Faint Green' END,
    CASE WHEN y BETWEEN 0.7 AND 0.73 THEN 'Milky' ELSE 'No' END
FROM (
    SELECT
        s.*,
        (s.carats * CASE WHEN s.lab_grown THEN 30000 ELSE 150000 END
            * (0.5 + random() * 2))::BIGINT AS price
    FROM (
        SELECT
            g.i,
            (ARRAY['ROUND', 'ROUND', 'ROUND', 'ROUND', 'OVAL', 'PRINCESS', 'CUSHION',
                'EMERALD', 'PEAR', 'RADIANT', 'MARQUISE', 'ASSCHER', 'HEART'])
                [1 + floor(random() * 13)::INT] AS shape,
            round((0.3 + random() ^ 2 * 4.7)::NUMERIC, 2) AS carats,
            CASE WHEN random() < 0.03 THEN NULL
                ELSE (ARRAY['D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M'])
                    [1 + floor(random() * 10)::INT] END AS color,
            CASE WHEN random() < 0.03 THEN NULL
                WHEN random() < 0.02 THEN (ARRAY['N/A', 'SI', 'I4'])[1 + floor(random() * 3)::INT]
                ELSE (ARRAY['FL', 'IF', 'VVS1', 'VVS2', 'VS1', 'VS2', 'SI1', 'SI2', 'SI3',
                    'I1', 'I2', 'I3'])[1 + floor(random() * 12)::INT] END AS clarity,
            (ARRAY['EX', 'EX', 'VG', 'GD'])[1 + floor(random() * 4)::INT] AS cut,
            (ARRAY['NON', 'NON', 'FNT', 'MED', 'STG'])[1 + floor(random() * 5)::INT]
                AS fluorescence,
            random() < 0.4 AS lab_grown,
            random() < 0.02 AS treated,
            random() AS x,
            random() AS y,
            CASE WHEN random() < 0.9 THEN 'available' ELSE 'sold' END AS availability,
            (ARRAY['GIA', 'GIA', 'IGI', 'HRD'])[1 + floor(random() * 4)::INT] AS lab,
            CASE WHEN random() < 0.03 THEN 'deleted' ELSE 'active' END AS status
        FROM generate_series(1, %(rows)s) AS g (i)
    ) AS s
) AS r;
"""


@pytest.fixture(scope="module")
def seeded_url(diamond_db_server: Server) -> Iterator[str]:
    """A database of its own with 100,000 diamonds, vacuumed and analysed."""
    with diamond_db_server.database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT setseed(0.42)")  # the same rows every run
            conn.execute(SEED.encode(), {"rows": PLAN_ROWS})
            conn.execute("VACUUM ANALYZE diamonds")
        yield url


# Nullable sort keys with an index (sql/bootstrap.sql); the sorts of issue 13 not listed
# have none, by choice (measured there).
INDEXED_NULLABLE_SORTS = (
    "clarity", "rating", "color", "retail_price_cents",
    "ratio", "table_pct", "depth_pct", "fancy_color",
)  # fmt: skip


def plan_nodes(url: str, query: RenderedQuery) -> list[dict[str, Any]]:
    """Every node of the statement's EXPLAIN (ANALYZE) plan, flattened."""
    with psycopg.connect(url, autocommit=True) as conn:
        explain = "EXPLAIN (ANALYZE, FORMAT JSON) " + query.sql
        row = conn.execute(explain.encode(), query.params).fetchone()
    assert row is not None
    nodes: list[dict[str, Any]] = []
    pending = [row[0][0]["Plan"]]
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending.extend(node.get("Plans", []))
    return nodes


def scans_of_diamonds(nodes: list[dict[str, Any]]) -> list[str]:
    return [n["Node Type"] for n in nodes if n.get("Relation Name") == "diamonds"]


@pytest.mark.parametrize("count", ["none", "exact", "capped"])
def test_readme_search_uses_an_index(seeded_url: str, count: str) -> None:
    nodes = plan_nodes(seeded_url, render_search(**README_SEARCH, count=count))
    scans = scans_of_diamonds(nodes)
    assert scans, nodes
    assert "Seq Scan" not in scans, scans
    assert set(scans) <= {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


# Issue 13: new filters added to the benchmark's searches (benchmarks/search.py, Q1-Q6).
NEW_FILTER_SET: dict[str, Any] = {
    "supplier": ["nivoda", "vdb"],
    "fancy_color": False,
    "ratio_min": "1.0",
    "ratio_max": "1.9",
    "table_max": 65,
    "eye_clean": True,
    "no_bgm": True,
}
# A storefront's searches on the new columns, sorted as a result list is.
STOREFRONT_SEARCHES: dict[str, dict[str, Any]] = {
    "oval": {
        "shape": "OVAL",
        "lab_grown": False,
        "carat_min": 1,
        "ratio_min": "1.3",
        "ratio_max": "1.5",
        "table_max": 64,
        "depth_pct_min": 60,
        "eye_clean": True,
        "no_bgm": True,
        "sort_by": "supplier_price_cents",
        "sort_order": "asc",
    },
    "fancy": {"fancy_color": True, "fancy_colors": ["Pink", "Blue"], "sort_by": "created_at"},
    "ratio": {"ratio_min": "1.45", "ratio_max": "1.5", "sort_by": "ratio"},
}


@pytest.mark.parametrize("q", sorted(QUERIES))
def test_benchmark_searches_with_new_filters_read_their_page_from_an_index(
    seeded_url: str, q: str
) -> None:
    nodes = plan_nodes(seeded_url, render_search(**QUERIES[q], **NEW_FILTER_SET, count="none"))
    scans = scans_of_diamonds(nodes)
    assert scans, nodes
    assert "Seq Scan" not in scans, scans


@pytest.mark.parametrize("count", ["none", "exact"])
@pytest.mark.parametrize("name", sorted(STOREFRONT_SEARCHES))
def test_storefront_searches_on_new_columns_use_an_index(
    seeded_url: str, name: str, count: str
) -> None:
    """Page and count: the oval search from the shape index, the fancy one from the small
    partial index of fancy colours, the ratio range from the ratio index."""
    search = STOREFRONT_SEARCHES[name]
    nodes = plan_nodes(seeded_url, render_search(**search, count=count, projection="list"))
    scans = scans_of_diamonds(nodes)
    assert scans, nodes
    assert "Seq Scan" not in scans, scans


async def test_deep_cursor_page_by_price_starts_in_the_index(seeded_url: str) -> None:
    search: dict[str, Any] = {"sort_by": "supplier_price_cents", "sort_order": "asc", "limit": 100}
    async with Database(seeded_url, min_size=1) as db:
        deep = await db.search_diamonds(**search, page=900, count="none")
        cursor = deep.next_cursor
        assert cursor is not None
        following = await db.search_diamonds(**search, cursor=cursor, count="none")
    assert following.page == 901
    last = deep.items[-1]
    assert all(
        (d.supplier_price_cents, d.id) > (last.supplier_price_cents, last.id)
        for d in following.items
    )
    nodes = plan_nodes(seeded_url, render_search(**search, cursor=cursor, count="none"))
    assert "Seq Scan" not in scans_of_diamonds(nodes)
    [scan] = [n for n in nodes if n.get("Relation Name") == "diamonds"]
    assert scan["Node Type"] == "Index Scan"
    assert scan["Index Name"] == "diamonds_search_price_idx"
    assert "ROW(supplier_price_cents, id) >" in scan["Index Cond"]  # the keyset, not an OFFSET
    assert scan["Actual Rows"] == 101  # the page plus one row telling a next page exists


@pytest.mark.parametrize("sort_order", ["asc", "desc"])
@pytest.mark.parametrize("sort_by", [*INDEXED_NULLABLE_SORTS])
async def test_nullable_sorts_read_index_ranges(
    seeded_url: str, sort_by: str, sort_order: str
) -> None:
    """NULLs last in both directions, still from the index: a deep cursor page reads ~a page."""
    search: dict[str, Any] = {"sort_by": sort_by, "sort_order": sort_order, "count": "none"}
    async with Database(seeded_url, min_size=1) as db:
        cursor = (await db.search_diamonds(**search, page=300)).next_cursor
    nodes = plan_nodes(seeded_url, render_search(**search, cursor=cursor))
    scans = [n for n in nodes if n.get("Relation Name") == "diamonds"]
    assert {n["Node Type"] for n in scans} == {"Index Scan"}
    assert sum(n["Actual Rows"] for n in scans) <= len(SORT_KEYS[sort_by].tiers) * 51
    if sort_by in NEW_SORTS:  # issue 13: read from its own index
        assert f"diamonds_search_{sort_by}_idx" in {n.get("Index Name") for n in scans}


CLARITY_TIERS = {  # the rows of each tier of the clarity sort, in order
    "known": "diamond_clarity_rank(clarity) < 13",
    "unknown": "diamond_clarity_rank(clarity) = 13",
    "null": "clarity IS NULL",
}


@pytest.mark.parametrize("sort_order", ["desc", "asc"])
async def test_clarity_pages_are_index_ranges_in_every_tier(
    seeded_url: str, sort_order: str
) -> None:
    """Page 1 and cursor pages among unknown grades and among NULLs, both directions: each
    tier still to read is one range of the clarity index holding ~a page, nothing sorts all
    matches."""
    search: dict[str, Any] = {"sort_by": "clarity", "sort_order": sort_order, "count": "none"}
    live = "SELECT count(*) FROM diamonds WHERE status = 'active' AND "
    sizes = {tier: scalar(seeded_url, live + where) for tier, where in CLARITY_TIERS.items()}
    assert min(sizes.values()) > 1000
    middle_of_unknown = (sizes["known"] + sizes["unknown"] // 2) // 50
    middle_of_nulls = (sizes["known"] + sizes["unknown"] + sizes["null"] // 2) // 50
    async with Database(seeded_url, min_size=1) as db:
        first = await db.search_diamonds(**search)
        among_unknown = (await db.search_diamonds(**search, page=middle_of_unknown)).next_cursor
        among_nulls = (await db.search_diamonds(**search, page=middle_of_nulls)).next_cursor
    assert {d.clarity for d in first.items} == {"I3" if sort_order == "desc" else "FL"}
    assert among_unknown is not None
    assert among_nulls is not None
    assert cursor_value(among_unknown) in {"N/A", "SI", "I4"}
    assert cursor_value(among_nulls) is None
    for cursor, tiers in [(None, 3), (among_unknown, 2), (among_nulls, 1)]:
        nodes = plan_nodes(seeded_url, render_search(**search, cursor=cursor))
        scans = [n for n in nodes if n.get("Relation Name") == "diamonds"]
        assert len(scans) == tiers, scans  # a cursor page skips the tiers before its own
        assert {n["Node Type"] for n in scans} == {"Index Scan"}
        assert {n["Index Name"] for n in scans} == {"diamonds_search_clarity_idx"}
        direction = "Backward" if sort_order == "desc" else "Forward"
        assert {n["Scan Direction"] for n in scans} == {direction}
        assert sum(n["Actual Rows"] for n in scans) <= tiers * 51
        for sort in (n for n in nodes if n["Node Type"] == "Sort"):  # merges short lists only
            assert sum(child["Actual Rows"] for child in sort["Plans"]) <= tiers * 51
        if cursor is among_unknown:  # it starts in the index, past the cursor: no OFFSET
            assert any("ROW(clarity, id)" in n["Index Cond"] for n in scans), scans
