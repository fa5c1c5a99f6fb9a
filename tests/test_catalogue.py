"""The catalogue reads against Python oracles: facets, related, recommended, quick lookup, on hold.

One dense random inventory serves facets, related and recommended. Facets reuse the
search oracle's filter strategy and matcher (tests/test_search.py), so every search
filter is checked here too. The recommended tolerances are small enough that its pool
relaxes and runs empty. The plans section checks on 6,000 diamonds that quick lookup
and a facet query read indexes.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from helpers import diamond, fetch_dicts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_search import SEARCH_STRATEGY, SEED, _matches, _ordered, plan_nodes

from diamond_db import (
    Database,
    DiamondInput,
    Facets,
    RenderedQuery,
    ValidationError,
    default_registry,
)
from diamond_db._server import Server
from diamond_db.facets import FACET_NAMES, FACETS, compose_facets
from diamond_db.records import Diamond
from diamond_db.search import DiamondSearch, build_search

Row = dict[str, Any]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


# -- the inventory ---------------------------------------------------------

SHAPES = ["ROUND", "OVAL", "PEAR"]
TRAITS = {
    "color": ["D", "E", "F", None],
    "clarity": ["VS1", "VS2", "SI1", None],
    "cut": ["EX", "VG", None],
    "polish": ["EX", "VG", None],
    "symmetry": ["EX", None],
    "fluorescence": ["NON", "FNT", None],
    "certificate_lab": ["GIA", "IGI", None],
    "fancy_color": [None] * 6 + ["Yellow", "Pink"],
}
AVAILABLE = ["available"] * 8 + ["on_hold", "sold"]
STONES = 700


def stone(n: int, rng: random.Random) -> DiamondInput:
    retail = None if rng.random() < 0.15 else rng.randrange(100_000, 400_000, 5_000)
    return diamond(
        f"R{n}",
        supplier="nivoda" if n % 3 else "vdb",
        shape=rng.choice(SHAPES) if n else "HEART",  # R0: the one heart, nothing like it
        carats=Decimal(rng.randint(90, 130)) / 100,
        lab_grown=rng.random() < 0.3,
        retail_price_cents=retail,
        rating=None if rng.random() < 0.2 else rng.randint(1, 10),
        availability=rng.choice(AVAILABLE),
        status="deleted" if rng.random() < 0.05 else "active",
        certificate_number=f"C{n:05d}",
        **{trait: rng.choice(values) for trait, values in TRAITS.items()},
    )


async def _seed_stones(url: str) -> None:
    rng = random.Random(1313)
    stones = [stone(n, rng) for n in range(STONES)]
    async with Database(url, min_size=1) as db:
        for start in range(0, STONES, 100):  # created_at differs between batches only
            await db.upsert_diamonds(stones[start : start + 100])


@pytest.fixture(scope="module")
def stones_url(diamond_db_server: Server) -> Iterator[str]:
    with diamond_db_server.database() as url:
        asyncio.run(_seed_stones(url))
        yield url


@pytest.fixture(scope="module")
def stones(stones_url: str) -> dict[UUID, Row]:
    return {r["id"]: r for r in fetch_dicts(stones_url, "SELECT * FROM diamonds")}


@pytest.fixture
async def sdb(stones_url: str) -> AsyncIterator[Database]:
    async with Database(stones_url, min_size=1) as database:
        yield database


# -- facets --------------------------------------------------------------------

COUNTED = FACET_NAMES


def facet_oracle(rows: Sequence[Row], facets: Sequence[str], **f: Any) -> dict[str, Counter[Any]]:
    """Each facet's counts over the live rows matching every filter but the facet's own."""
    counts: dict[str, Counter[Any]] = {}
    for facet in facets:
        others = {k: v for k, v in f.items() if k not in FACETS[facet]}
        live = (r for r in rows if r["status"] == "active" and _matches(r, others))
        counts[facet] = Counter(r[facet] for r in live)
    return counts


def check_facets(rows: Sequence[Row], got: Facets, facets: Sequence[str], **f: Any) -> None:
    expected = facet_oracle(rows, facets, **f)
    assert list(got) == list(facets)
    cap = f.get("count_cap", 10_000) if f.get("count") == "capped" else None
    for facet in facets:
        want = expected[facet]
        if cap is not None:
            assert {(facet, v) for v, n in want.items() if n > cap} <= got.capped
            want = Counter({v: min(n, cap) for v, n in want.items()})
        assert dict(got[facet]) == dict(want), facet
        assert list(got[facet].values()) == sorted(got[facet].values(), reverse=True)
    if cap is None:
        assert got.is_exact
        assert got.capped == frozenset()


FACET_CASES: list[dict[str, Any]] = [
    {},
    {"shape": "ROUND"},
    {"shape": ["ROUND", "OVAL"], "colors": ["D", "E"], "lab_grown": False},
    {"clarities": ["VVS1", "N/A"], "cuts": "EX", "certificate_labs": ["GIA"]},
    {"carat_min": Decimal("1"), "price_max": 500_000, "availability": "available"},
    {"shape": "HEART"},  # nothing matches, yet other shapes are counted
]


@pytest.mark.parametrize("f", FACET_CASES)
async def test_facets_match_the_oracle(
    sdb: Database, stones: dict[UUID, Row], f: dict[str, Any]
) -> None:
    got = await sdb.search_facets(COUNTED, **f)
    check_facets(list(stones.values()), got, COUNTED, **f)


async def test_choosing_a_value_still_counts_the_others(
    sdb: Database, stones: dict[UUID, Row]
) -> None:
    """Disjunctive: ROUND chosen, the shape facet still shows OVALs; other facets only ROUNDs."""
    got = await sdb.search_facets(("shape", "color"), shape="ROUND")
    assert got["shape"]["OVAL"] > 0
    rounds = [r for r in stones.values() if r["status"] == "active" and r["shape"] == "ROUND"]
    assert sum(got["color"].values()) == len(rounds)
    assert got["color"][None] == sum(r["color"] is None for r in rounds)  # NULL under None


async def test_capped_counts_say_so(sdb: Database, stones: dict[UUID, Row]) -> None:
    got = await sdb.search_facets(("shape", "lab_grown"), count="capped", count_cap=150)
    check_facets(list(stones.values()), got, ("shape", "lab_grown"), count="capped", count_cap=150)
    assert ("shape", "ROUND") in got.capped
    assert got["shape"]["ROUND"] == 150
    assert not got.is_exact
    assert got.count_cap == 150
    assert set(got["lab_grown"]) == {True, False}


async def test_facet_requests(sdb: Database) -> None:
    every = await sdb.search_facets()
    assert tuple(every) == FACET_NAMES
    twice = await sdb.search_facets(["cut", "cut", "shape"])
    assert list(twice) == ["cut", "shape"]
    assert dict(await sdb.search_facets(())) == {}


BAD_FACETS: list[tuple[str, dict[str, Any]]] = [
    ("facets[1]", {"facets": ["shape", "polish"]}),
    ("facets", {"facets": 3}),
    ("count", {"count": "none"}),
    ("count_cap", {"count": "capped", "count_cap": 0}),
    ("sort_by", {"sort_by": "carats"}),
    ("colour", {"colour": "D"}),
    ("carat_min", {"carat_min": 2, "carat_max": 1}),
]


@pytest.mark.parametrize(("argument", "f"), BAD_FACETS)
async def test_bad_facet_requests_name_the_argument(argument: str, f: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:  # before any SQL: nothing listens there
        await Database("postgresql://nobody@127.0.0.1:1/none").search_facets(**f)
    assert caught.value.argument == argument


FACET_FILTERS = SEARCH_STRATEGY.map(
    lambda f: {k: v for k, v in _ordered(f).items() if k not in ("sort_by", "sort_order", "page")}
).map(lambda f: {k: v for k, v in f.items() if k not in ("limit", "count")})


def test_random_facets_match_the_oracle(stones_url: str, stones: dict[UUID, Row]) -> None:
    rows = list(stones.values())
    loop = asyncio.new_event_loop()
    database = Database(stones_url, min_size=1)
    loop.run_until_complete(database.open())

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        FACET_FILTERS,
        st.lists(st.sampled_from(COUNTED), min_size=1, unique=True),
        st.sampled_from([{}, {"count": "capped", "count_cap": 40}]),
    )
    def check(f: dict[str, Any], facets: list[str], count: dict[str, Any]) -> None:
        got = loop.run_until_complete(database.search_facets(facets, **f, **count))
        check_facets(rows, got, facets, **f, **count)

    try:
        check()
    finally:
        loop.run_until_complete(database.close())
        loop.close()


def test_facets_compile_filters_as_the_search_does() -> None:
    """One catalogue: the facet statement's conditions are the search's own text."""
    search = build_search(None, {"shape": "ROUND", "colors": ["D"], "price_max": 5})
    sql = compose_facets(search, ["shape", "cut"]).sql
    assert sql.count("UNION ALL") == 1  # shape without its filter; cut under all three
    assert "d.shape = ANY(%(shape)s)" in sql
    assert "d.supplier_price_cents <= %(price_max)s" in sql
    assert sql.count("FROM diamonds") == 2


# -- related and recommended -------------------------------------------------


def _newest(r: Row) -> int:
    """Sorts newest first when ascending (microseconds before the epoch)."""
    return int(-((r["created_at"] - EPOCH) // timedelta(microseconds=1)))


def _desc(value: int | None) -> tuple[bool, int]:
    """Sorts a nullable number highest first, NULL last."""
    return value is None, -(value or 0)


def _candidate(a: Row, c: Row, tolerance: Decimal) -> bool:
    return bool(
        c["status"] == "active"
        and c["availability"] == "available"
        and c["id"] != a["id"]
        and c["lab_grown"] == a["lab_grown"]
        and abs(c["carats"] - a["carats"]) <= tolerance
    )


def related_oracle(
    stones: dict[UUID, Row],
    anchor: UUID,
    *,
    limit: int = 12,
    carat_tolerance: Decimal = Decimal("0.15"),
    price_tolerance_cents: int = 25_000,
    match: Sequence[str] = ("shape", "lab_grown", "color", "clarity", "cut"),
) -> list[UUID] | None:
    a = stones.get(anchor)
    if a is None or a["status"] != "active":
        return None
    price = a["retail_price_cents"]

    def related(c: Row) -> bool:
        if not _candidate(a, c, carat_tolerance):
            return False
        if price is not None and (
            c["retail_price_cents"] is None
            or abs(c["retail_price_cents"] - price) > price_tolerance_cents
        ):
            return False
        return all(a[f] is None or c[f] == a[f] for f in match)

    def order(c: Row) -> tuple[Any, ...]:
        gap = (
            None
            if price is None or c["retail_price_cents"] is None
            else abs(c["retail_price_cents"] - price)
        )
        return abs(c["carats"] - a["carats"]), gap is None, gap or 0, _newest(c), c["id"]

    return [c["id"] for c in sorted(filter(related, stones.values()), key=order)][:limit]


def recommended_oracle(
    stones: dict[UUID, Row], anchor: UUID, tolerance: Decimal
) -> tuple[int, list[UUID | None]] | None:
    """(the level used, [highest_rated, most_expensive, mid_rated] ids)."""
    a = stones.get(anchor)
    if a is None or a["status"] != "active":
        return None

    def level(c: Row) -> int:
        clarity = a["clarity"] is None or c["clarity"] == a["clarity"]
        cut = a["cut"] is None or c["cut"] == a["cut"]
        return 1 if clarity and cut else 2 if clarity else 3

    pool = [c for c in stones.values() if _candidate(a, c, tolerance) and c["shape"] == a["shape"]]
    levels = Counter(level(c) for c in pool)
    used = 1 if levels[1] >= 3 else 2 if levels[1] + levels[2] >= 3 else 3
    left = [c for c in pool if level(c) <= used]
    orders = [
        lambda c: (_desc(c["rating"]), _desc(c["retail_price_cents"]), _newest(c), c["id"]),
        lambda c: (_desc(c["retail_price_cents"]), _newest(c), c["id"]),
        lambda c: (
            c["rating"] is None,
            abs(c["rating"] - Decimal("7.5")) if c["rating"] is not None else 0,
            _desc(c["rating"]),
            _desc(c["retail_price_cents"]),
            _newest(c),
            c["id"],
        ),
    ]
    picks: list[UUID | None] = []
    for order in orders:
        best = min(left, key=order, default=None)
        picks.append(None if best is None else best["id"])
        left = [c for c in left if best is None or c["id"] != best["id"]]
    return used, picks


def _ids(found: Sequence[Diamond] | None) -> list[UUID] | None:
    return None if found is None else [d.id for d in found]


def _anchors(stones: dict[UUID, Row], n: int, seed: int) -> list[UUID]:
    rng = random.Random(seed)
    heart = next(i for i, r in stones.items() if r["shape"] == "HEART")  # an empty pool
    return [*rng.sample(sorted(stones), n), heart, uuid4()]  # deleted ones too; one unknown


async def test_related_match_the_oracle(sdb: Database, stones: dict[UUID, Row]) -> None:
    rng = random.Random(7)
    fields = ["shape", "lab_grown", "color", "clarity", "cut", "certificate_lab", "fancy_color"]
    for anchor in _anchors(stones, 80, 1):
        options: dict[str, Any] = {
            "limit": rng.choice([1, 5, 12, 50]),
            "carat_tolerance": rng.choice([Decimal(0), Decimal("0.02"), Decimal("0.15")]),
            "price_tolerance_cents": rng.choice([0, 25_000, 100_000]),
            "match": rng.sample(fields, rng.randint(0, 4)),
        }
        got = await sdb.get_related_diamonds(anchor, **options)
        assert _ids(got) == related_oracle(stones, anchor, **options), options
    some = next(i for i, r in stones.items() if r["status"] == "active")
    assert _ids(await sdb.get_related_diamonds(some)) == related_oracle(stones, some)


async def test_related_for_an_unknown_or_deleted_anchor_is_none(
    sdb: Database, stones: dict[UUID, Row]
) -> None:
    deleted = next(i for i, r in stones.items() if r["status"] == "deleted")
    assert await sdb.get_related_diamonds(deleted) is None
    assert await sdb.get_related_diamonds(uuid4()) is None
    lonely = next(i for i, r in stones.items() if r["status"] == "active")
    assert await sdb.get_related_diamonds(lonely, carat_tolerance=Decimal(0), match=[]) is not None


async def test_recommended_match_the_oracle(sdb: Database, stones: dict[UUID, Row]) -> None:
    used: Counter[int] = Counter()
    empty = 0
    for n, anchor in enumerate(_anchors(stones, 100, 2)):
        tolerance = [Decimal(0), Decimal("0.01"), Decimal("0.03"), Decimal("0.15")][n % 4]
        got = await sdb.get_recommended_diamonds(anchor, carat_tolerance=tolerance)
        expected = recommended_oracle(stones, anchor, tolerance)
        if expected is None:
            assert got is None
            continue
        assert got is not None
        level, picks = expected
        slots = [got.highest_rated, got.most_expensive, got.mid_rated]
        assert [None if d is None else d.id for d in slots] == picks, (anchor, tolerance)
        used[level] += 1
        empty += picks == [None, None, None]
    # Relaxation and empty levels were all exercised.
    assert min(used[1], used[2], used[3], empty) > 0, (used, empty)


async def test_recommended_stones_are_distinct_and_fill_from_relaxed_levels(
    sdb: Database, stones: dict[UUID, Row]
) -> None:
    for anchor in _anchors(stones, 40, 3):
        got = await sdb.get_recommended_diamonds(anchor)
        if got is None:
            continue
        ids = [d.id for d in (got.highest_rated, got.most_expensive, got.mid_rated) if d]
        assert len(ids) == len(set(ids))
        assert anchor not in ids


BAD_RELATED: list[tuple[str, dict[str, Any]]] = [
    ("match[1]", {"match": ["shape", "price"]}),
    ("match", {"match": "shape"}),
    ("limit", {"limit": 51}),
    ("limit", {"limit": 0}),
    ("carat_tolerance", {"carat_tolerance": Decimal("-0.1")}),
    ("price_tolerance_cents", {"price_tolerance_cents": -1}),
    ("id", {"id": "not-a-uuid"}),
]


@pytest.mark.parametrize(("argument", "options"), BAD_RELATED)
async def test_bad_related_arguments(argument: str, options: dict[str, Any]) -> None:
    nowhere = Database("postgresql://nobody@127.0.0.1:1/none")
    anchor = options.pop("id", uuid4())
    with pytest.raises(ValidationError) as caught:
        await nowhere.get_related_diamonds(anchor, **options)
    assert caught.value.argument == argument
    if argument in ("carat_tolerance", "id"):
        with pytest.raises(ValidationError):
            await nowhere.get_recommended_diamonds(anchor, **options)


# -- quick lookup --------------------------------------------------------------

LOOKUP = [
    diamond("Ab_1%x", offer_id="OFF-9", certificate_number="GIA-77"),
    diamond("AbC1xx", offer_id="off-a_b", certificate_number="gia%55"),
    diamond("ab%1", offer_id="Q-1", certificate_number=None),
    diamond("zz", offer_id="ab_offer", supplier="vdb"),
    diamond("ab-deleted", status="deleted"),
]


@pytest.fixture
async def lookup_db(diamond_db: Database) -> Database:
    for stone_input in LOOKUP:  # one by one: each newer than the one before
        await diamond_db.upsert_diamond(stone_input)
    return diamond_db


def _stones(found: Sequence[Diamond]) -> list[str]:
    return [d.supplier_stone_id for d in found]


QUICK: list[tuple[str, dict[str, Any], list[str]]] = [
    ("ab", {}, ["zz", "ab%1", "AbC1xx", "Ab_1%x"]),  # 2 characters; newest first; mixed case
    ("AB_", {}, ["zz", "Ab_1%x"]),  # _ is a literal underscore, not any character
    ("ab%", {}, ["ab%1"]),  # % is literal too
    ("ab_1%", {}, ["Ab_1%x"]),
    ("OFF-", {}, ["AbC1xx", "Ab_1%x"]),  # offer ids
    ("gia", {}, ["AbC1xx", "Ab_1%x"]),  # certificate numbers
    ("GIA%5", {}, ["AbC1xx"]),
    ("ab", {"supplier": "vdb"}, ["zz"]),
    ("ab", {"limit": 2}, ["zz", "ab%1"]),
    ("b_", {}, []),  # a prefix, not a substring
    ("%%", {}, []),
]


@pytest.mark.parametrize(("text", "options", "expected"), QUICK)
async def test_quick_search(
    lookup_db: Database, text: str, options: dict[str, Any], expected: list[str]
) -> None:
    assert _stones(await lookup_db.quick_search_diamonds(text, **options)) == expected


@pytest.mark.parametrize(
    ("text", "options", "argument"),
    [
        ("a", {}, "text"),
        ("x" * 101, {}, "text"),
        ("ab\x00", {}, "text"),
        ("ab", {"limit": 0}, "limit"),
        ("ab", {"limit": 51}, "limit"),
        ("ab", {"supplier": ""}, "supplier"),
    ],
)
async def test_bad_quick_search(text: str, options: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValidationError) as caught:
        await Database("postgresql://nobody@127.0.0.1:1/none").quick_search_diamonds(
            text, **options
        )
    assert caught.value.argument == argument


# -- on hold -------------------------------------------------------------------


async def test_on_hold_pages_most_recent_first(diamond_db: Database) -> None:
    await diamond_db.upsert_diamonds(
        [diamond(f"H{n}", supplier="vdb" if n % 4 == 0 else "nivoda") for n in range(23)]
    )
    page = await diamond_db.search_diamonds(limit=100)
    held: list[UUID] = []
    for d in sorted(page.items, key=lambda d: d.supplier_stone_id)[:20]:  # each its own moment
        assert await diamond_db.update_diamond_availability(d.id, "on_hold", f"hold-{d.id}")
        held.append(d.id)
    await diamond_db.soft_delete_diamond(held[0])
    expected = held[1:][::-1]
    pages = [await diamond_db.get_diamonds_on_hold(limit=6)]
    while pages[-1].next_cursor is not None:
        cursor = pages[-1].next_cursor
        pages.append(await diamond_db.get_diamonds_on_hold(limit=6, cursor=cursor))
    assert [d.id for p in pages for d in p.items] == expected
    assert [p.page for p in pages] == [1, 2, 3, 4]
    assert {(p.total, p.total_pages, p.limit) for p in pages} == {(None, None, 6)}
    vdb = await diamond_db.get_diamonds_on_hold(supplier="vdb")
    assert [d.id for d in vdb.items] == [i for i in expected if i in {d.id for d in vdb.items}]
    assert {d.supplier for d in vdb.items} == {"vdb"}
    assert (await diamond_db.get_diamonds_on_hold(limit=1000)).limit == 100  # never unbounded


@pytest.mark.parametrize("cursor", ["", "nope", "e30", 12])
async def test_on_hold_refuses_malformed_cursors(cursor: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        await Database("postgresql://nobody@127.0.0.1:1/none").get_diamonds_on_hold(cursor=cursor)
    assert caught.value.argument == "cursor"


# -- plans on 30,000 diamonds: quick lookup and a facet query read indexes ------------

PLAN_ROWS = 6_000


@pytest.fixture(scope="module")
def seeded_url(diamond_db_server: Server) -> Iterator[str]:
    with diamond_db_server.database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT setseed(0.13)")
            conn.execute(SEED.encode(), {"rows": PLAN_ROWS})  # stones S1..., offers O1...
            conn.execute("VACUUM ANALYZE diamonds")
        yield url


def _scans(url: str, query: RenderedQuery) -> list[dict[str, Any]]:
    return [n for n in plan_nodes(url, query) if n.get("Relation Name") == "diamonds"]


def _quick_plan(url: str, text: str) -> list[dict[str, Any]]:
    statement = default_registry()["quick_search_diamonds"]
    params = {"prefix": text, "supplier": None, "row_limit": 10}
    return plan_nodes(url, RenderedQuery(statement.sql, params))


@pytest.mark.parametrize("text", ["s1234", "S9876", "o4321", "O7777"])
def test_quick_search_reads_the_prefix_indexes(seeded_url: str, text: str) -> None:
    nodes = _quick_plan(seeded_url, text)
    scanned = {n.get("Index Name") for n in nodes if n["Node Type"] == "Bitmap Index Scan"}
    assert scanned == {
        "diamonds_quick_stone_idx",
        "diamonds_quick_offer_idx",
        "diamonds_quick_certificate_idx",
    }, nodes


@pytest.mark.parametrize("text", ["s1", "O2", "xx"])
def test_quick_search_never_scans_the_table(seeded_url: str, text: str) -> None:
    """A 2-character prefix matching many stones: newest first from an index, or the bitmap."""
    types = {n["Node Type"] for n in _quick_plan(seeded_url, text)}
    assert "Seq Scan" not in types
    assert types & {"Index Scan", "Bitmap Index Scan"}


def test_a_facet_query_reads_an_index(seeded_url: str) -> None:
    """The README search's facets: every scan of diamonds is an index scan."""
    search = DiamondSearch(
        shape="ROUND", lab_grown=False, colors=["D", "E"], carat_min=Decimal("2")
    )
    scans = _scans(seeded_url, compose_facets(search, ["shape", "cut", "clarity"]))
    assert len(scans) == 2
    assert {n["Node Type"] for n in scans} <= {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}
