"""Scenario: the ways of writing a raw batch that were measured for upsert_raw_diamonds.

Each contender writes the same N full-size payloads (the ingest scenario's) into an
empty raw table, with the library's semantics (every row encoded and hashed in the
timed region; unchanged payloads untouched), against the streaming COPY floor:
- pipelined:     the library as shipped (upsert_raw_diamonds: ~2 MiB statements,
                 pipelined in one transaction, rows encoded while earlier ones are written)
- one_statement: the library's own statement for the whole batch at once (its previous
                 form: MAX_STATEMENT_CHARS raised for this contender only)
- staging_text:  COPY (text) into an ON COMMIT DROP staging table, then one merge; the rows
                 checked and encoded first by the library's own encoder (the list rule)
- staging_binary: the same with binary COPY
- copy:          the floor (benchmarks/ingest.py's streaming COPY into an empty copy)
"""

from __future__ import annotations

from typing import Any, Final

from diamond_db import RawDiamondInput
from diamond_db.operations import raw_diamonds

from . import baselines
from .payloads import full_inputs
from .plan import Bench
from .stats import Contender, alternate

SCENARIO: Final = "ingest_candidates"
CANDIDATES: Final = ("pipelined", "one_statement", "staging_text", "staging_binary")


def _staged(rows: list[RawDiamondInput]) -> list[tuple[Any, ...]]:
    """The staging rows as the library's list path prepares them: every row checked and
    encoded by the library's own encoder before anything is sent, distinct, sorted."""
    return list(raw_diamonds._encode_batch(rows))


async def run(bench: Bench) -> None:
    plan = bench.plan
    db = bench.db
    rows = list(full_inputs(plan.ingest_rows, plan.seed, start=50_000_000))
    run_id = (await db.create_run_metadata("full", 1)).run_id
    async with db.pool.connection() as conn:
        await baselines.create_copy_table(conn)

    async def empty(_: int) -> None:
        async with db.pool.connection() as conn:
            await baselines.empty_raw_table(conn)
            await baselines.empty_copy_table(conn)

    async def pipelined(_: int) -> None:
        assert await db.upsert_raw_diamonds(run_id, rows) == len(rows)

    async def one_statement(_: int) -> None:
        limit = raw_diamonds.MAX_STATEMENT_CHARS
        raw_diamonds.MAX_STATEMENT_CHARS = 2**40  # type: ignore[misc]  # this contender only
        try:
            assert await db.upsert_raw_diamonds(run_id, rows) == len(rows)
        finally:
            raw_diamonds.MAX_STATEMENT_CHARS = limit  # type: ignore[misc]

    def staging(binary: bool) -> Any:
        async def staged(_: int) -> None:
            async with db.pool.connection() as conn:
                written = await baselines.staged_upsert(conn, run_id, _staged(rows), binary=binary)
            assert written == len(rows)

        return staged

    async def copy(_: int) -> None:
        async with db.pool.connection() as conn:
            await baselines.copy_rows(conn, baselines.encoded_raw_rows(run_id, rows))

    n = len(rows)
    runs = {
        "pipelined": pipelined,
        "one_statement": one_statement,
        "staging_text": staging(False),
        "staging_binary": staging(True),
        "copy": copy,
    }
    contenders = [Contender(name, fn, setup=empty, items=n) for name, fn in runs.items()]
    try:
        case = await alternate(
            SCENARIO, f"ingest candidates, {n:,} rows", contenders, rounds=plan.ingest_rounds
        )
    finally:
        async with db.pool.connection() as conn:
            await baselines.drop_copy_table(conn)
            await baselines.empty_raw_table(conn)
    for name in CANDIDATES:
        case.ratio("copy", name)  # below 1: the candidate is slower than the floor
    bench.add(case)
