"""Scenario 1: search_diamonds, six parameter sets at page 1, page 200 and page 200 by cursor.

The three depths of one Q alternate together (15 contenders in one A B C ...
rotation), so a depth's figures can be paired with another's round by round.
Contenders per depth:
- exact:  search_diamonds(count="exact")
- capped: search_diamonds(count="capped")
- raw:    the statement of the capped search (render_search) through plain psycopg on the
          library's own pool: the difference to `capped` is the library's overhead
- naive:  COUNT(*) then SELECT * ... ORDER BY <key> LIMIT/OFFSET, no tie-breaker
          (benchmarks/baselines.py), through plain psycopg on the same pool
- floor:  the capped statement's server execution time (EXPLAIN ANALYZE, TIMING OFF)
At page 1 also, the other projection (issue 13), and prepared statements:
- list:     search_diamonds(count="capped", projection="list"), DiamondSummary records of the
            same rows: list/capped is what the short projection saves over the full one
- prepared: the capped search through a second Database with prepare_threshold=0 (what
            PG_PREPARE_THRESHOLD gives a service on a direct connection; the default stays
            off, as a transaction-mode pooler needs): prepared/floor is the page-1 ratio
            without the per-call planning the floor leaves out
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from diamond_db import Database, Diamond, DiamondSearch, render_search
from diamond_db._rows import record_maker
from diamond_db.demo import README_SEARCH

from . import baselines
from .plan import Bench
from .stats import Case, Contender, Measured, alternate, paired_ratio

SCENARIO: Final = "search"
CONTENDERS: Final = ("exact", "capped", "raw", "naive", "floor")
PAGE1_CONTENDERS: Final = (*CONTENDERS, "list", "prepared")

QUERIES: Final[dict[str, dict[str, Any]]] = {
    "Q1": {},  # no filters, default sort (created_at desc)
    "Q2": dict(README_SEARCH),  # the seed README example (as the demo runs it)
    "Q3": {"shape": "OVAL", "sort_by": "carats", "sort_order": "desc"},
    "Q4": {
        "lab_grown": True,
        "price_max": 200_000,
        "sort_by": "supplier_price_cents",
        "sort_order": "asc",
    },
    "Q5": {
        "colors": ["D"],
        "clarities": ["FL", "IF"],
        "sort_by": "created_at",
        "sort_order": "desc",
    },
    "Q6": {"carat_min": Decimal("3"), "sort_by": "supplier_price_cents", "sort_order": "desc"},
}
DESCRIPTIONS: Final = {
    "Q1": "no filters, newest first",
    "Q2": "README example, price asc",
    "Q3": "OVAL, carats desc",
    "Q4": "lab-grown <= 200,000 c, price asc",
    "Q5": "D, FL/IF, newest first",
    "Q6": ">= 3 ct, price desc",
}


async def run(bench: Bench) -> None:
    """Every Q at page 1, at the deep page by number, and at the same depth by cursor."""
    bench.info["row_mapping"] = await profile_row_mapping(bench)
    async with Database(
        bench.url, min_size=1, max_size=2, prepare_threshold=0, slow_query_threshold=3600
    ) as prepared:
        await _queries(bench, prepared)


async def _queries(bench: Bench, prepared: Database) -> None:
    plan = bench.plan
    for q, filters in QUERIES.items():
        base = DiamondSearch(**filters)
        total = (await bench.db.search_diamonds(base)).total or 0
        bench.console.print(f"  {q} ({DESCRIPTIONS[q]}): {total:,} matches")
        depths = [
            Depth("page1", f"{q} p1", 1, None),
            Depth("deep", f"{q} p{plan.deep_page}", plan.deep_page, None),
        ]
        cursor = await _cursor_depth(bench, q, base, total)
        if cursor is not None:
            depths.append(cursor)
        contenders = [c for d in depths for c in _contenders(bench, prepared, base, d)]
        rotation = await alternate(
            SCENARIO, q, contenders, rounds=plan.search_rounds, warmup=plan.search_warmup
        )
        cases = {d.kind: await _case(bench, q, base, total, d, rotation) for d in depths}
        if "cursor" in cases:
            for mode in ("exact", "capped"):  # paired: the same rounds
                ratio = paired_ratio(cases["cursor"].results[mode], cases["page1"].results[mode])
                cases["cursor"].ratios[f"{mode}/{mode} p1"] = ratio
        for case in cases.values():
            bench.add(case)


@dataclass
class Depth:
    """One depth of a Q: page 1, the deep page by number, or the same depth by cursor."""

    kind: str
    label: str
    page: int
    cursors: dict[str, str] | None
    same: bool | None = None
    planning: list[float] = field(default_factory=list)


def _at(search: DiamondSearch, page: int, **changes: Any) -> DiamondSearch:
    return dataclasses.replace(search, page=page, **changes)


async def _cursor_depth(bench: Bench, q: str, base: DiamondSearch, total: int) -> Depth | None:
    """The deep page again, reached by the cursor of the page before it.

    With fewer matches than the deep page needs, the last page is used (by cursor).
    """
    depth = min(bench.plan.deep_page, math.ceil(total / base.limit))
    if depth < 2:
        bench.console.print(f"  {q}: one page of matches only, no cursor page to measure")
        return None
    cursors = {}
    for mode in ("exact", "capped"):
        cursor = (await bench.db.search_diamonds(_at(base, depth - 1, count=mode))).next_cursor
        assert cursor is not None
        cursors[mode] = cursor
    by_number = await bench.db.search_diamonds(_at(base, depth))
    by_cursor = await bench.db.search_diamonds(_at(base, 1, cursor=cursors["exact"]))
    same = [d.id for d in by_number.items] == [d.id for d in by_cursor.items]
    if not same:
        bench.console.print(f"[red]  {q}: the cursor page differs from page {depth}[/red]")
    label = f"{q} cursor p{depth}" + ("" if depth == bench.plan.deep_page else " (last)")
    return Depth("cursor", label, depth, cursors, same)


def _searches(base: DiamondSearch, depth: Depth) -> dict[str, DiamondSearch]:
    """The exact and capped searches of a depth (a cursor is bound to its count mode)."""
    if depth.cursors is None:
        return {m: _at(base, depth.page, count=m) for m in ("exact", "capped")}
    return {m: _at(base, 1, count=m, cursor=depth.cursors[m]) for m in ("exact", "capped")}


def _contenders(
    bench: Bench, prepared: Database, base: DiamondSearch, depth: Depth
) -> list[Contender]:
    db = bench.db
    searches = _searches(base, depth)
    rendered = render_search(searches["capped"])
    naive_sql = baselines.naive_search(base.filters(), base.sort_by, base.sort_order)
    offset = (depth.page - 1) * base.limit
    naive_params = {**base.filters(), "limit": base.limit, "offset": offset}

    async def exact(_: int) -> None:
        await db.search_diamonds(searches["exact"])

    async def capped(_: int) -> None:
        await db.search_diamonds(searches["capped"])

    async def list_(_: int) -> None:
        await db.search_diamonds(searches["capped"], projection="list")

    async def prepared_(_: int) -> None:
        await prepared.search_diamonds(searches["capped"])

    async def raw(_: int) -> None:
        async with db.pool.connection() as conn:
            cur = await conn.execute(rendered.sql.encode(), rendered.params)
            await cur.fetchall()

    async def naive(_: int) -> None:
        async with db.pool.connection() as conn:
            await baselines.run_naive_search(conn, naive_sql, naive_params)

    async def floor(_: int) -> float:
        async with db.pool.connection() as conn:
            execution, planning = await baselines.explain_times(conn, rendered.sql, rendered.params)
        depth.planning.append(planning)
        return execution

    runs = {
        "exact": exact,
        "capped": capped,
        "raw": raw,
        "naive": naive,
        "floor": floor,
        "list": list_,
        "prepared": prepared_,
    }
    return [Contender(f"{depth.kind}:{name}", runs[name]) for name in _names(depth)]


def _names(depth: Depth) -> tuple[str, ...]:
    """The contenders of a depth: page 1 also in the list projection and prepared."""
    return PAGE1_CONTENDERS if depth.kind == "page1" else CONTENDERS


async def _case(
    bench: Bench, q: str, base: DiamondSearch, total: int, depth: Depth, rotation: Case
) -> Case:
    """One depth's share of the Q's rotation, with its ratios and (for reading) its plans."""
    results = {
        name: Measured(name, rotation.results[f"{depth.kind}:{name}"].samples)
        for name in _names(depth)
    }
    case = Case(SCENARIO, depth.label, results)
    case.info.update(query=q, description=DESCRIPTIONS[q], matches=total, page=depth.page)
    case.info.update(kind=depth.kind, floor_planning_median_s=statistics.median(depth.planning))
    if depth.same is not None:
        case.info["cursor_equals_page"] = depth.same
    for a, b in (("capped", "raw"), ("capped", "floor"), ("exact", "naive"), ("capped", "naive")):
        case.ratio(a, b)
    if "list" in results:
        case.ratio("list", "capped")
        case.ratio("prepared", "floor")
    if depth.kind != "deep":
        searches = _searches(base, depth)
        async with bench.db.pool.connection() as conn:
            for mode in ("capped", "exact"):
                r = render_search(searches[mode])
                case.info[f"plan_{mode}"] = await baselines.explain_plan(conn, r.sql, r.params)
    return case


async def profile_row_mapping(bench: Bench, repeat: int = 200) -> dict[str, float]:
    """Microseconds per Diamond built from Q1's page-1 rows: class_row's way vs record_maker's.

    class_row (psycopg) packs each row into keyword arguments for the frozen
    __init__, which sets every field through object.__setattr__; record_maker
    stores each field through its slot's descriptor.
    """
    rendered = render_search(DiamondSearch(**QUERIES["Q1"], count="none"))
    async with bench.db.pool.connection() as conn:
        cur = await conn.execute(rendered.sql.encode(), rendered.params)
        rows = await cur.fetchall()
        names = tuple(column.name for column in cur.description or ())

    def per_row(build: Callable[[tuple[Any, ...]], Diamond]) -> float:
        started = time.perf_counter()
        for _ in range(repeat):
            for row in rows:
                build(row)
        return (time.perf_counter() - started) / (repeat * len(rows)) * 1e6

    make = record_maker(Diamond, names)
    before = per_row(lambda row: Diamond(**dict(zip(names, row, strict=True))))
    after = per_row(make)
    return {"class_row_us": before, "record_maker_us": after, "rows": len(rows)}
