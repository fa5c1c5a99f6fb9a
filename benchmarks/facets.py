"""Scenario: search_facets of the six search filter sets, against one exact COUNT(*) of each.

The issue's target: at 1,000,000 diamonds each filter set's facets (all eight, one
statement) within 3x one exact COUNT(*) of the same filters, median of paired runs.
Contenders per Q, alternated:
- facets: db.search_facets(**filters) (count="exact")
- count:  the naive search's COUNT(*) statement of the same filters, raw psycopg
"""

from __future__ import annotations

from typing import Any, Final

from diamond_db.search import PREDICATES, DiamondSearch

from . import baselines
from .plan import Bench
from .search import DESCRIPTIONS, QUERIES
from .stats import Contender, alternate

SCENARIO: Final = "facets"
TARGET: Final = 3.0


def _contenders(bench: Bench, filters: dict[str, Any]) -> list[Contender]:
    db = bench.db
    bound = DiamondSearch(**filters).filters()  # as the search binds them (lists, Decimals)
    count_sql, _ = baselines.naive_search(bound, "created_at", "desc")

    async def facets(_: int) -> None:
        await db.search_facets(**filters)

    async def count(_: int) -> None:
        async with db.pool.connection() as conn:
            await (await conn.execute(count_sql, bound)).fetchone()

    return [Contender("facets", facets), Contender("count", count)]


async def run(bench: Bench) -> None:
    for q, query in QUERIES.items():
        filters = {name: value for name, value in query.items() if name in PREDICATES}
        case = await alternate(
            SCENARIO,
            f"{q} facets",
            _contenders(bench, filters),
            rounds=bench.plan.search_rounds,
            warmup=bench.plan.search_warmup,
        )
        case.ratio("facets", "count")
        case.info.update(query=q, description=DESCRIPTIONS[q])
        bench.console.print(f"  {q} ({DESCRIPTIONS[q]}): {case.ratios['facets/count']:.2f}x")
        bench.add(case)
